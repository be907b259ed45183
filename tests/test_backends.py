"""The training backends (lt_core.backends): which one a stack gets, and every fast one against the
reference backend (models.forward + autograd + Adam), on small synthetic datasets.

Tolerance: the backends compute the same function in float32 and differ only in the rounding of
sums. After 15 Adam steps of lr 1.2e-3 each layer's weights (and biases) agree to 1e-3 of how far
training moved them (the norm of their difference over the norm of the update; typically ~1e-5),
and every weight within 2 lr: Adam divides a gradient by its own magnitude, so a weight whose
gradient is rounding noise moves by up to lr a step, either way (a few end up ~1e-4 apart, most
agree to ~1e-8). Evaluation losses agree within a relative 1e-4.
Pruned weights keep their value (0, or the run's frozen value) exactly in every backend.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from lt_core.backends import (BACKENDS, CpuKernelBackend, DenseFcBackend, ReferenceBackend, RunSpec, choose_backend,
                              evaluate, native)
from lt_core.backends.dense_fc import dense_gradients
from lt_core.backends.input_order import InputOrder
from lt_core.batches import BatchOrder
from lt_core.data import Dataset, Split
from lt_core.models import forward, full_masks, get_arch, init_weights, zero_biases
from lt_core.train import Trainer

needs_kernels = pytest.mark.skipif(native.library() is None, reason="no C compiler here, or LT_KERNELS=0")
FAST_FC = ["dense_fc"] + (["cpu_kernel"] if native.library() is not None else [])
CPU = torch.device("cpu")


def synthetic(shape=(1, 28, 28), n_train=200, n_eval=100, seed=0, never=200) -> Dataset:
    """Sparse random images (each input nonzero with its own probability; ``never`` inputs are 0 in
    every image, as MNIST's corners are) with random labels."""
    gen = torch.Generator().manual_seed(seed)
    size = shape[0] * shape[1] * shape[2]
    p = torch.rand(size, generator=gen) ** 2 * 0.8
    p[torch.randperm(size, generator=gen)[:never]] = 0

    def split(n):
        x = torch.rand(n, size, generator=gen) * (torch.rand(n, size, generator=gen) < p)
        return Split(x=x.view(n, *shape), y=torch.randint(0, 10, (n,), generator=gen))

    return Dataset("synthetic", split(n_train), split(n_eval), split(n_eval))


def masked_runs(arch, seeds, keep=0.7, frozen_run=1):
    """Runs with random masks; run ``frozen_run`` keeps its pruned weights at their initial values."""
    runs = []
    for i, seed in enumerate(seeds):
        gen = torch.Generator().manual_seed(10 + i)
        masks = {l.name: (torch.rand(l.shape, generator=gen) < keep).float() for l in arch.layers}
        init = init_weights(arch, i)
        frozen = {n: init[n] * (1 - masks[n]) for n in masks} if i == frozen_run else None
        runs.append(RunSpec(f"r{i}", init, zero_biases(arch), masks, seed, frozen))
    return runs


def assert_agree(got, want, start, lr):
    """``got`` equals ``want``, trained from ``start``, to float32 rounding amplified by Adam (see
    the module docstring)."""
    moved, apart = float((want - start).norm()), float((got - want).norm())
    assert moved > 0 and apart <= 1e-3 * moved, f"{apart:.3g} apart after moving {moved:.3g}"
    assert float((got - want).abs().max()) < 2 * lr


LR = 1.2e-3


def train(arch, data, runs, backend, steps=15, batch_size=20, lr=LR):
    return Trainer(arch, data, runs, lr=lr, batch_size=batch_size, iterations=steps, eval_every=5,
                   backend=backend).run()


# -- which backend ---------------------------------------------------------------------------

def test_the_fastest_backend_that_applies_is_chosen(monkeypatch):
    fc, conv2 = get_arch("fc"), get_arch("conv2")
    assert choose_backend(fc, CPU) is (CpuKernelBackend if native.library() is not None else DenseFcBackend)
    assert choose_backend(fc, torch.device("cuda")) is DenseFcBackend  # the C kernel runs on the CPU only
    assert choose_backend(conv2, CPU) is choose_backend(conv2, torch.device("cuda")) is ReferenceBackend
    monkeypatch.setenv("LT_KERNELS", "0")
    assert choose_backend(fc, CPU) is DenseFcBackend
    assert sorted(BACKENDS) == ["cpu_kernel", "dense_fc", "reference"]


def test_an_elu_network_is_evaluated_by_the_reference_backend_and_gets_its_logits():
    elu = get_arch("fc").with_activation("elu")
    assert choose_backend(elu, CPU) is ReferenceBackend  # the C kernels and dense_fc compute ReLU
    with pytest.raises(ValueError, match="'dense_fc' cannot train fc on cpu: it computes ReLU networks, not elu"):
        choose_backend(elu, CPU, "dense_fc")
    w = {n: torch.zeros(1, *elu.layer(n).shape) for n in elu.layer_names}
    w["fc1"][0, 0, 0], w["fc2"][0, 0, 0], w["fc3"][0, 3, 0] = -2.0, 1.0, 1.0
    b = {n: torch.zeros(1, elu.layer(n).shape[0]) for n in elu.layer_names}
    x = torch.zeros(1, 1, 28, 28)
    x[0, 0, 0, 0] = 1.0
    # fc1 unit 0: -2 -> elu e^-2 - 1; fc2 unit 0: the same -> elu e^(e^-2 - 1) - 1; logit 3: that
    logit = math.exp(math.exp(-2.0) - 1.0) - 1.0
    loss, acc = evaluate(elu, w, b, Split(x, torch.tensor([3])))
    assert logit < 0 and acc.tolist() == [0.0]  # logit 3 is below the other nine zeros
    expected = -(logit - math.log(math.exp(logit) + 9.0))
    assert loss.tolist() == pytest.approx([expected], rel=1e-6)
    relu_loss, _ = evaluate(get_arch("fc"), w, b, Split(x, torch.tensor([3])))  # ReLU: every logit 0
    assert relu_loss.tolist() == pytest.approx([math.log(10.0)], rel=1e-6)


def test_a_backend_asked_for_by_name_says_why_it_cannot_train_a_network():
    assert choose_backend(get_arch("fc"), CPU, "reference") is ReferenceBackend
    with pytest.raises(ValueError, match="backend: 'dense_fc' cannot train conv2 on cpu: conv2 has convolutional"):
        choose_backend(get_arch("conv2"), CPU, "dense_fc")
    with pytest.raises(ValueError, match="backend: 'cpu_kernel' cannot train fc on cuda: it runs on the CPU"):
        choose_backend(get_arch("fc"), torch.device("cuda"), "cpu_kernel")
    with pytest.raises(ValueError, match="backend: unknown value 'fast'; allowed values: reference, dense_fc, cpu_kernel"):
        choose_backend(get_arch("fc"), CPU, "fast")


# -- every fast backend against the reference ------------------------------------------------

@pytest.mark.parametrize("backend", FAST_FC)
@pytest.mark.parametrize("case", ["dense", "masks_and_frozen"])
def test_fast_fc_backends_train_as_the_reference_does(backend, case):
    arch, data = get_arch("fc"), synthetic()
    if case == "dense":  # two runs on one data order
        runs = [RunSpec(f"r{i}", init_weights(arch, i), zero_biases(arch), full_masks(arch), 0) for i in range(2)]
    else:  # three runs, each its own order; pruned weights 0, or frozen at their initial values in run 1
        runs = masked_runs(arch, seeds=[0, 1, 2])
    reference = train(arch, data, runs, "reference")
    fast = train(arch, data, runs, backend)
    for ref, got, run in zip(reference, fast, runs):
        assert (ref.backend, got.backend) == ("reference", backend)
        for n, w in got.final_weights.items():
            kept = run.masks[n].bool()
            start = run.weights[n] * run.masks[n] + (run.frozen[n] if run.frozen else 0)
            assert torch.equal(w[~kept], start[~kept]) and torch.equal(ref.final_weights[n][~kept], start[~kept])
            assert_agree(w, ref.final_weights[n], start, LR)
            assert (w != start)[kept].float().mean() > 0.3  # and it did train
        for n, b in got.final_biases.items():
            assert_agree(b, ref.final_biases[n], run.biases[n], LR)
        assert [e["iteration"] for e in got.evals] == [e["iteration"] for e in ref.evals] == [0, 5, 10, 15]
        for a, b in zip(got.evals, ref.evals):
            for key in ("train_loss", "val_loss", "test_loss"):
                assert a[key] == pytest.approx(b[key], rel=1e-4)


def test_the_reference_backend_trains_a_conv_net_as_a_textbook_loop_does():
    """A stack of two Conv2 runs (own data orders, masks in conv and dense layers, run 1 frozen)
    against each run alone in a textbook loop: forward, autograd, gradient * mask, torch.optim.Adam."""
    arch, data = get_arch("conv2"), synthetic(shape=(3, 32, 32), n_train=40, n_eval=20, never=0)
    runs = masked_runs(arch, seeds=[0, 1], keep=0.8)
    steps, lr, batch_size = 6, 2e-4, 8  # 5 batches an epoch: the run crosses into epoch 1
    stacked = train(arch, data, runs, None, steps=steps, batch_size=batch_size, lr=lr)
    for run, result in zip(runs, stacked):
        assert result.backend == "reference"
        start = {n: run.weights[n] * run.masks[n] + (run.frozen[n] if run.frozen else 0) for n in run.masks}
        w = {n: t.clone().unsqueeze(0).requires_grad_() for n, t in start.items()}
        b = {n: t.clone().unsqueeze(0).requires_grad_() for n, t in run.biases.items()}
        opt = torch.optim.Adam(list(w.values()) + list(b.values()), lr=lr, eps=1e-8)
        batches = BatchOrder(data.train, [run.seed], batch_size)
        for it in range(steps):
            x, y = batches(it)
            loss = F.cross_entropy(forward(arch, w, b, x)[0], y)
            opt.zero_grad()
            loss.backward()
            for n in w:
                w[n].grad.mul_(run.masks[n])
            opt.step()
        for n in w:
            mine, ref = result.final_weights[n], w[n].detach()[0]
            kept = run.masks[n].bool()
            assert torch.equal(mine[~kept], start[n][~kept])
            assert_agree(mine, ref, start[n], lr)


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_every_backend_evaluates_as_the_plain_forward(backend):
    arch, data = get_arch("fc"), synthetic(n_eval=2500)
    if BACKENDS[backend].unavailable(arch, CPU):
        pytest.skip(BACKENDS[backend].unavailable(arch, CPU))
    gen = torch.Generator().manual_seed(4)
    w = {l.name: torch.randn(3, *l.shape, generator=gen) * 0.05 for l in arch.layers}
    b = {l.name: torch.randn(3, l.shape[0], generator=gen) * 0.05 for l in arch.layers}
    logits = forward(arch, w, b, data.test.x)
    target = data.test.y.expand(3, -1)
    ref_loss = F.cross_entropy(logits.reshape(-1, 10), target.reshape(-1), reduction="none").view(3, -1).mean(1)
    ref_acc = (logits.argmax(-1) == target).double().mean(1)
    loss, acc = BACKENDS[backend].evaluate_weights(arch, w, b, data.test, batch=1000)
    torch.testing.assert_close(loss, ref_loss.double(), rtol=1e-5, atol=1e-6)
    assert torch.equal(acc, ref_acc)
    if backend == choose_backend(arch, CPU).name:  # lt_core.backends.evaluate: the chosen backend's
        assert torch.equal(evaluate(arch, w, b, data.test, batch=1000)[0], loss)


# -- the dense_fc backend's pieces -----------------------------------------------------------

@pytest.mark.parametrize("shared", [True, False])
def test_hand_written_gradients_equal_autograd(shared):
    arch = get_arch("fc")
    k, b = 3, 7
    gen = torch.Generator().manual_seed(0)
    w = {l.name: (torch.randn(k, *l.shape, generator=gen) * 0.1).requires_grad_() for l in arch.layers}
    bias = {l.name: (torch.randn(k, l.shape[0], generator=gen) * 0.1).requires_grad_() for l in arch.layers}
    x = torch.rand(b, 1, 28, 28, generator=gen) if shared else torch.rand(k, b, 1, 28, 28, generator=gen)
    y = torch.randint(0, 10, (b,) if shared else (k, b), generator=gen)
    logits = forward(arch, w, bias, x)
    target = y.expand(k, -1) if shared else y
    (F.cross_entropy(logits.reshape(-1, 10), target.reshape(-1)) * k).backward()
    gw, gb = dense_gradients(arch, {n: t.detach() for n, t in w.items()}, {n: t.detach() for n, t in bias.items()}, x, y)
    for n in w:
        torch.testing.assert_close(gw[n], w[n].grad, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(gb[n], bias[n].grad, rtol=1e-4, atol=1e-6)


def test_narrowed_first_layer_gradients_equal_autograd():
    arch = get_arch("fc")
    k, b, width = 2, 5, 300
    gen = torch.Generator().manual_seed(3)
    w = {l.name: (torch.randn(k, *l.shape, generator=gen) * 0.1).requires_grad_() for l in arch.layers}
    bias = {l.name: (torch.randn(k, l.shape[0], generator=gen) * 0.1).requires_grad_() for l in arch.layers}
    x = torch.rand(b, 784, generator=gen)
    x[:, width:] = 0  # every input past `width` is 0 in this batch
    x = x.view(b, 1, 28, 28)
    y = torch.randint(0, 10, (b,), generator=gen)
    (F.cross_entropy(forward(arch, w, bias, x).reshape(-1, 10), y.expand(k, -1).reshape(-1)) * k).backward()
    gw, gb = dense_gradients(arch, {n: t.detach() for n, t in w.items()}, {n: t.detach() for n, t in bias.items()},
                             x, y, width=width)
    assert gw["fc1"].shape == (k, 300, width) and gw["fc1"].is_contiguous()
    torch.testing.assert_close(gw["fc1"], w["fc1"].grad[..., :width], rtol=1e-4, atol=1e-6)
    assert torch.all(w["fc1"].grad[..., width:] == 0)
    for n in ("fc2", "fc3"):
        torch.testing.assert_close(gw[n], w[n].grad, rtol=1e-4, atol=1e-6)
    for n in bias:
        torch.testing.assert_close(gb[n], bias[n].grad, rtol=1e-4, atol=1e-6)


def test_input_order_sorts_inputs_by_how_often_they_are_nonzero():
    # 4 images of 5 inputs; nonzero counts per input: [1, 3, 0, 3, 2] -> order 1, 3, 4, 0, 2
    x = torch.tensor([[0., 1, 0, 1, 0], [0, 1, 0, 1, 1], [2, 1, 0, 0, 1], [0, 0, 0, 1, 0]]).view(4, 1, 1, 5)
    y = torch.arange(4)
    split = Split(x=x, y=y)
    order = InputOrder.of(Dataset("toy", split, split, split))
    assert order.order.tolist() == [1, 3, 4, 0, 2]
    assert order.inverse[order.order].tolist() == [0, 1, 2, 3, 4]
    # reordered images; last = 1 + position of the last nonzero input
    assert order.data.train.x.reshape(4, 5)[2].tolist() == [1, 0, 1, 2, 0]
    assert order.last["train"].tolist() == [2, 3, 4, 2]
    assert order.widths("test", 3) == [4, 2]  # batches of 3 images: max of [2, 3, 4], then [2]
    assert order.data.train.x.shape == x.shape
    assert order.live == 4  # input 2 is 0 in every image: it sorts last, past the live ones


def test_a_batch_width_is_the_shortest_prefix_that_holds_every_nonzero_input():
    arch, data = get_arch("fc"), synthetic()
    runs = [RunSpec(f"r{i}", init_weights(arch, i), zero_biases(arch), full_masks(arch), seed=i) for i in range(2)]
    backend = DenseFcBackend(arch, data, runs, lr=1e-3)
    batches = BatchOrder(backend.data.train, [0, 1], batch_size=20)
    for it in range(batches.spe + 2):  # into the second epoch
        x, _ = batches(it)
        flat = x.reshape(2, 20, -1)
        width = backend.width(batches, it)
        assert torch.all(flat[..., width:] == 0) and flat[..., width - 1].any()
        assert width <= backend.inputs.live < 784


# -- the cpu_kernel backend ------------------------------------------------------------------

@needs_kernels
def test_the_kernel_steps_the_optimisers_own_padded_input_major_tensors():
    arch = get_arch("fc")
    runs = [RunSpec("r", init_weights(arch, 0), zero_biases(arch), full_masks(arch), seed=0)]
    trainer = Trainer(arch, synthetic(), runs, lr=1e-3, batch_size=20, iterations=1, backend="cpu_kernel")
    backend, n = trainer.backend, len(arch.layers)
    for i, name in enumerate(arch.layer_names):
        for t in (backend.w[name], backend.opt.exp_avg[i], backend.opt.exp_avg_sq[i]):
            assert native.is_input_major(t.transpose(1, 2)), name
    assert [backend.w[name].stride(2) for name in arch.layer_names] == [304, 112, 16]
    assert trainer.max_steps(0) == 10  # the 10 batches of 20 of an epoch of 200 lie in one gathered block
    trainer.step(0)
    assert backend.opt.t == 1 and backend.opt.exp_avg[n].abs().sum() > 0


@pytest.mark.parametrize("backend", FAST_FC + ["reference"])
def test_a_checkpointed_backend_continues_to_the_same_bits(backend):
    arch, data = get_arch("fc"), synthetic()
    runs = masked_runs(arch, seeds=[0, 1])
    whole = BACKENDS[backend](arch, data, runs, lr=1.2e-3)
    batches = BatchOrder(whole.data.train, [0, 1], batch_size=20)
    whole.steps(batches, 0, 4)
    state = whole.state_dict()
    assert state["w"]["fc1"].shape == (2, 300, 784) and state["opt"]["steps"][0] == 4
    resumed = BACKENDS[backend](arch, data, runs, lr=1.2e-3)
    resumed.load_state_dict(state)
    for b in (whole, resumed):
        b.steps(batches, 4, 3)
    for i in range(2):
        for got, want in zip(resumed.final(i), whole.final(i)):
            assert all(torch.equal(got[n], want[n]) for n in want)
