"""Architecture records: the paper's values, Conv8, the builders, the chain checks and unknown names."""

import re

import pytest
import torch

from lt_core import ConfigError, DataConfig, ModelConfig
from lt_core.archs import ARCHS, Arch, Layer, QuickSchedule, fc_arch, get_arch, vgg_arch
from lt_core.data import DATASET_INFO
from lt_core.config import TrainConfig
from lt_core.schedule import dataset_name, total_iterations
from lt_core.models import forward, init_weights, torch_module

CONV8_CONVS = [(64, 3), (64, 64), (128, 64), (128, 128), (256, 128), (256, 256), (512, 256), (512, 512)]


def test_builtin_records_hold_the_protocol_values():
    assert ARCHS.names()[:5] == ("fc", "conv2", "conv4", "conv6", "conv8")
    fc = get_arch("fc")
    assert fc.datasets == ("mnist", "fashion_mnist") and fc.dataset == "mnist" and fc.input_shape == (1, 28, 28)
    # protocol section 2.2 (lr, epochs), 3.1 (prune fractions), 7 (2000 learned-mask epochs for FC)
    assert (fc.lr, fc.epochs, fc.learn_epochs) == (1.2e-3, 55, 2000)
    assert dict(fc.prune_fractions) == {"conv": 0.0, "fc": 0.2, "output": 0.1}
    assert [(a.lr, a.epochs, a.prune_fractions["conv"]) for a in map(get_arch, ("conv2", "conv4", "conv6"))] == \
        [(2e-4, 27, 0.1), (3e-4, 34, 0.1), (3e-4, 40, 0.15)]
    # Table 1 (protocol section 8.1), one row per paper network; Conv8 is not in the paper
    assert dict(get_arch("conv6").paper_table1) == {
        "mask_init": 24.0, "mask_signed_constant": 41.0, "learned_init": 65.3, "learned_signed_constant": 65.4,
        "learned_dwr": 76.3, "dense": 78.3}
    assert get_arch("fc").paper_table1["dense"] == 97.7 and get_arch("conv8").paper_table1 is None
    # the dashboard's quick preset
    assert fc.quick.train_fields() == {"iterations": 300, "eval_every": 50, "eval_train": False}
    assert fc.quick.learn_fields() == {"epochs": 10}
    assert get_arch("conv4").quick == QuickSchedule(200, 50, 2)
    assert [a.label for a in ARCHS.values()][:2] == ["FC 300-100-10 (MNIST)", "Conv2 (CIFAR-10)"]


def test_vgg_builder_gives_the_hand_written_conv2():
    conv2 = get_arch("conv2")
    assert conv2.layers == (Layer("conv1", "conv", (64, 3, 3, 3), False, 1),
                            Layer("conv2", "conv", (64, 64, 3, 3), True, 1),
                            Layer("fc1", "fc", (256, 16 * 16 * 64)), Layer("fc2", "fc", (256, 256)),
                            Layer("fc3", "output", (10, 256)))


def test_conv8_shapes_and_weight_count():
    conv8 = get_arch("conv8")
    assert conv8.datasets == ("cifar10",)
    convs = [layer for layer in conv8.layers if layer.kind == "conv"]
    assert [layer.shape for layer in convs] == [(o, i, 3, 3) for o, i in CONV8_CONVS]
    assert [layer.pool_after for layer in convs] == [False, True] * 4  # a pool after every second conv
    assert all(layer.padding == 1 for layer in convs)
    assert [layer.shape for layer in conv8.layers[8:]] == [(256, 2 * 2 * 512), (256, 256), (10, 256)]
    # weights only, biases excluded, as the paper's counts of FC/Conv2/Conv4/Conv6 (protocol section 1)
    by_hand = sum(9 * o * i for o, i in CONV8_CONVS) + 2048 * 256 + 256 * 256 + 256 * 10
    assert by_hand == 5_275_840 and conv8.num_weights == 5_275_840
    module = torch_module("conv8")
    assert sum(p.numel() for n, p in module.named_parameters() if n.endswith("weight")) == 5_275_840
    biases = sum(o for o, _ in CONV8_CONVS) + 256 + 256 + 10
    assert sum(p.numel() for p in module.parameters()) == 5_275_840 + biases


def test_conv8_forward_matches_its_torch_module():
    arch = get_arch("conv8")
    runs = [init_weights(arch, seed) for seed in (0, 1)]
    weights = {n: torch.stack([r[n] for r in runs]) for n in arch.layer_names}
    biases = {layer.name: 0.01 * torch.randn(2, layer.shape[0], generator=torch.Generator().manual_seed(3))
              for layer in arch.layers}
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    logits = forward(arch, weights, biases, x)
    assert logits.shape == (2, 4, 10)
    for i in range(2):
        module = torch_module("conv8")
        module.load_state_dict({**{f"{n}.weight": weights[n][i] for n in arch.layer_names},
                                **{f"{n}.bias": biases[n][i] for n in arch.layer_names}})
        torch.testing.assert_close(logits[i], module(x), rtol=1e-4, atol=1e-5)


def test_conv8_schedule_reads_from_its_record():
    train = TrainConfig()
    assert dataset_name(DataConfig(), ModelConfig(arch="conv8")) == "cifar10"
    assert total_iterations(DataConfig(), ModelConfig(arch="conv8"), train) == 40 * (45000 // 60)


def test_fc_builder_and_its_defaults():
    arch = fc_arch("tiny", [50, 10], lr=1e-3, epochs=3)
    assert arch.layers == (Layer("fc1", "fc", (50, 784)), Layer("fc2", "output", (10, 50)))
    assert dict(arch.prune_fractions) == {"conv": 0.0, "fc": 0.2, "output": 0.1}
    assert arch.label == "tiny" and arch.learn_epochs == 2000 and arch.fully_connected
    assert "tiny" not in ARCHS  # building does not register


def test_vgg_builder_kernel_and_pools():
    arch = vgg_arch("k5", [16, "P", 32, "P"], fc=[10], kernel=5, lr=1e-3, epochs=1)
    assert [(layer.shape, layer.padding, layer.pool_after) for layer in arch.layers] == [
        ((16, 3, 5, 5), 2, True), ((32, 16, 5, 5), 2, True), ((10, 8 * 8 * 32), 0, False)]


@pytest.mark.parametrize("make,message", [
    (lambda: Arch("bad", ("mnist",), (1, 28, 28), (Layer("fc1", "fc", (50, 784)), Layer("fc2", "output", (10, 20))),
                  1e-3, 1, {"fc": 0.2, "output": 0.1}, 1, QuickSchedule(1, 1, 1)),
     "arch 'bad': layer 'fc2' takes 20 inputs but layer 'fc1' gives 50"),
    (lambda: Arch("bad", ("cifar10",), (3, 32, 32),
                  (Layer("conv1", "conv", (8, 3, 3, 3), True, 1), Layer("conv2", "conv", (8, 4, 3, 3), False, 1),
                   Layer("fc1", "output", (10, 8 * 16 * 16))), 1e-3, 1, {"conv": 0.1, "output": 0.1}, 1,
                  QuickSchedule(1, 1, 1)),
     "arch 'bad': layer 'conv2' takes 4 input channels but layer 'conv1' gives 8"),
    (lambda: Arch("bad", ("cifar10",), (3, 32, 32), (Layer("conv1", "conv", (8, 3, 3, 3), True, 1),
                                                      Layer("fc1", "output", (10, 8 * 32 * 32))),
                  1e-3, 1, {"conv": 0.1, "output": 0.1}, 1, QuickSchedule(1, 1, 1)),
     "arch 'bad': layer 'fc1' takes 8192 inputs but layer 'conv1' (8x16x16 flattened) gives 2048"),
    (lambda: fc_arch("bad", [50, 7], lr=1e-3, epochs=1),
     "arch 'bad': the output layer has 7 units but mnist has 10 classes"),
    (lambda: fc_arch("bad", [50, 10], dataset=("mnist", "cifar10"), lr=1e-3, epochs=1),
     "arch 'bad': input shape (1, 28, 28) differs from cifar10's (3, 32, 32)"),
    (lambda: vgg_arch("bad", ["P", 8], fc=[10], lr=1e-3, epochs=1),
     "arch 'bad': each 'P' in widths must follow a convolution"),
    (lambda: vgg_arch("bad", [8, "P"], fc=[10], lr=1e-3, epochs=1, prune_fractions={"fc": 0.2, "output": 0.1}),
     "arch 'bad': prune_fractions lacks the layer kind(s) conv"),
    (lambda: vgg_arch("bad", [8, "P"] * 6, fc=[10], lr=1e-3, epochs=1),
     "arch 'bad': layer 'conv6': the feature map shrinks to nothing (0x0)"),
])
def test_layers_that_do_not_chain_are_named(make, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        make()


def test_unknown_arch_is_one_config_error_line():
    for call, field in ((lambda: get_arch("resnet"), "arch"), (lambda: ModelConfig(arch="resnet"), "ModelConfig.arch")):
        with pytest.raises(ConfigError) as err:
            call()
        text = str(err.value)
        assert text.startswith(f"{field}: unknown value 'resnet'; allowed values: fc, conv2, conv4, conv6, conv8")
        assert "\n" not in text and not isinstance(err.value, KeyError)
    with pytest.raises(ConfigError, match="DataConfig.dataset: 'mnist' does not fit arch 'conv8'; allowed values: "
                                          "cifar10"):
        dataset_name(DataConfig(dataset="mnist"), ModelConfig(arch="conv8"))


def test_dataset_sizes_live_with_the_datasets():
    assert {n: (i.train_size, i.test_size) for n, i in DATASET_INFO.items()} == {
        "mnist": (60000, 10000), "fashion_mnist": (60000, 10000), "cifar10": (50000, 10000)}
    assert total_iterations(DataConfig(), ModelConfig(arch="fc"), TrainConfig()) == 55 * (55000 // 60)
