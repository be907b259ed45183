import math

import pytest
import torch

from lt_core.archs import get_arch
from lt_core.errors import ConfigError
from lt_core.models import forward, full_masks, glorot_sigma, init_weights, torch_module, zero_biases


@pytest.mark.parametrize("arch,count", [("fc", 266_200), ("conv2", 4_300_992), ("conv4", 2_425_024),
                                        ("conv6", 2_261_184)])
def test_weight_counts(arch, count):
    assert get_arch(arch).num_weights == count
    module = torch_module(arch)
    n = sum(p.numel() for name, p in module.named_parameters() if name.endswith("weight"))
    assert n == count


def test_layer_shapes():
    assert [l.shape for l in get_arch("fc").layers] == [(300, 784), (100, 300), (10, 100)]
    conv6 = get_arch("conv6")
    assert [l.shape[0] for l in conv6.layers] == [64, 64, 128, 128, 256, 256, 256, 256, 10]
    assert conv6.layer("fc1").shape == (256, 4 * 4 * 256)
    assert get_arch("conv2").layer("fc1").shape == (256, 16 * 16 * 64)
    assert get_arch("conv4").layer("fc1").shape == (256, 8 * 8 * 128)


def test_glorot_normal_as_tf_1_10_draws_it():
    """TF 1.10 divides the std by 0.8796 (the std of a standard normal cut at +-2) before truncating at
    +-2 of those stds: the realised std is Glorot's sigma, the largest |w| just under 2 sigma / 0.8796."""
    arch = get_arch("conv2")
    weights = init_weights(arch, seed=0)
    for layer in arch.layers:
        w = weights[layer.name]
        sigma = math.sqrt(2.0 / sum(layer.fans))
        assert glorot_sigma(layer) == pytest.approx(sigma)
        cut = 2 * sigma / 0.87962566103423978
        assert float(w.abs().max()) <= cut * (1 + 1e-6)
        if layer.numel > 50_000:
            assert float(w.std()) == pytest.approx(sigma, rel=0.01)
            assert 1.9 * sigma / 0.8796 <= float(w.abs().max())
            assert abs(float(w.mean())) < 0.01 * sigma
    conv1 = arch.layer("conv1")
    assert conv1.fans == (9 * 3, 9 * 64)
    fc1 = get_arch("fc").layer("fc1")  # 784 x 300: sigma = sqrt(2 / 1084)
    w = init_weights(get_arch("fc"), seed=3)["fc1"]
    assert float(w.std()) == pytest.approx(math.sqrt(2 / 1084), rel=0.01)
    assert fc1.fans == (784, 300)


def test_init_is_seeded():
    arch = get_arch("fc")
    a, b, c = init_weights(arch, 1), init_weights(arch, 1), init_weights(arch, 2)
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert not torch.equal(a["fc1"], c["fc1"])


@pytest.mark.parametrize("arch_name", ["fc", "conv4"])
def test_stacked_forward_equals_torch_module(arch_name):
    arch = get_arch(arch_name)
    torch.manual_seed(0)
    runs = [init_weights(arch, s) for s in (0, 1, 2)]
    biases = [{n: torch.randn(b.shape) * 0.1 for n, b in zero_biases(arch).items()} for _ in runs]
    x = torch.rand(5, *arch.input_shape)
    w = {n: torch.stack([r[n] for r in runs]) for n in arch.layer_names}
    b = {n: torch.stack([bb[n] for bb in biases]) for n in arch.layer_names}
    shared = forward(arch, w, b, x)
    per_run = forward(arch, w, b, x.expand(3, *x.shape))
    assert shared.shape == (3, 5, 10)
    for i in range(3):
        module = torch_module(arch_name)
        module.load_state_dict({**{f"{n}.weight": runs[i][n] for n in arch.layer_names},
                                **{f"{n}.bias": biases[i][n] for n in arch.layer_names}})
        expected = module(x)
        torch.testing.assert_close(shared[i], expected, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(per_run[i], expected, rtol=1e-4, atol=1e-5)


def test_biases_never_masked():
    arch = get_arch("fc")
    assert set(full_masks(arch)) == set(arch.layer_names)
    assert all(m.shape == arch.layer(n).shape for n, m in full_masks(arch).items())


@pytest.mark.parametrize("arch_name", ["fc", "conv2"])
def test_forward_without_biases_equals_zero_biases(arch_name):
    arch = get_arch(arch_name)
    w = {n: torch.stack([init_weights(arch, s)[n] for s in (0, 1)]) for n in arch.layer_names}
    zero = {n: b.expand(2, *b.shape).clone() for n, b in zero_biases(arch).items()}
    x = torch.rand(4, *arch.input_shape)
    for batch in (x, x.expand(2, *x.shape)):  # shared by the runs, and one per run
        assert torch.equal(forward(arch, w, None, batch), forward(arch, w, zero, batch))


def test_an_elu_network_applies_elu_after_every_hidden_layer_by_hand():
    arch = get_arch("fc")
    elu = arch.with_activation("elu")
    assert arch.with_activation("relu") is arch and elu.activation == "elu" and arch.activation == "relu"
    w = {n: torch.zeros(1, *arch.layer(n).shape) for n in arch.layer_names}
    w["fc1"][0, 0, 0], w["fc1"][0, 1, 0] = -2.0, 1.5  # hidden 0: -2, hidden 1: 1.5
    w["fc2"][0, 0, 0], w["fc2"][0, 0, 1] = 1.0, 1.0  # their sum
    w["fc3"][0, 3, 0] = 2.0
    x = torch.zeros(1, *arch.input_shape)
    x[0, 0, 0, 0] = 1.0
    # ELU: fc2 unit 0 = (e^-2 - 1) + 1.5 = 0.6353 (> 0, kept), logit 3 = 2 * 0.6353
    assert forward(elu, w, None, x)[0, 0, 3].item() == pytest.approx(2 * (math.exp(-2.0) - 1.0 + 1.5), rel=1e-6)
    assert forward(arch, w, None, x)[0, 0, 3].item() == pytest.approx(3.0)  # ReLU: 2 * (0 + 1.5)
    with pytest.raises(ConfigError, match="arch 'fc': activation: 'tanh' is not one of relu, elu"):
        arch.with_activation("tanh")

