"""The learned-supermask step in C (the ``cpu_kernel`` mask backend, lt_core.backends.learned_fc,
csrc/learned_fc.c) against the ``reference`` mask backend, MaskLearner's autograd step.

Masks must be the reference's bit for bit (same generator consumption). Scores may differ by the
rounding of the matrix products' sums: with the initial weights that is float32 rounding (the
relative difference of a layer's scores after two steps is ~3e-7 measured; bound 1e-5, about
sqrt(784) float32 epsilons, the error bound of a 784-term sum). With signed constants many hidden
pre-activations are sums of +-c x whose exact value is 0 (pixels share values): which side of 0
the rounding puts them, and so whether their ReLU passes the gradient, depends on the summation
order -- in the reference too (f32 and f64 sums already disagree on them). Those units' gradients
differ, ~1.5% of a layer's score change (measured after one step); bound 5%.
"""

import pytest
import torch

from lt_core import LearnConfig, get_arch
from lt_core.backends import CpuKernelMaskBackend, ReferenceMaskBackend, choose_mask_backend, native
from lt_core.supermask import MaskLearner, sampled_masked_weights

from .conftest import needs_mnist

needs_kernels = pytest.mark.skipif(native.library() is None, reason="no C compiler here, or LT_KERNELS=0")
VARIANTS = [LearnConfig(weights=w, dwr=d, device="cpu", eval_every=1000) for w in ("init", "signed_constant")
            for d in (False, True)]


@pytest.fixture(scope="module")
def mnist():
    from lt_core import load_dataset

    return load_dataset("mnist", device="cpu")


def _pair(data, iterations=100):
    """Two learners of the four variants from the same state: the C kernel's and the reference."""
    arch = get_arch("fc")
    fast = MaskLearner(arch, data, VARIANTS, [f"v{i}" for i in range(4)], iterations=iterations)
    ref = MaskLearner(arch, data, VARIANTS, [f"v{i}" for i in range(4)], iterations=iterations, backend="reference")
    assert isinstance(fast.mask_backend, CpuKernelMaskBackend) and isinstance(ref.mask_backend, ReferenceMaskBackend)
    return fast, ref


def _relative(a, b):
    return float((a - b).norm() / b.norm())


def test_kernel_is_used_only_where_it_can_run(monkeypatch):
    cpu, fc = torch.device("cpu"), get_arch("fc")
    unavailable = CpuKernelMaskBackend.unavailable
    assert unavailable(get_arch("conv2"), cpu, "zhou") == "conv2 has convolutional layers"
    assert "CPU" in unavailable(fc, torch.device("cuda"), "zhou")
    assert unavailable(fc, cpu, "edge_popup") == "it computes the zhou method only, not edge_popup"
    assert choose_mask_backend(fc, cpu, "edge_popup") is ReferenceMaskBackend
    assert choose_mask_backend(get_arch("conv2"), cpu, "zhou") is ReferenceMaskBackend
    with pytest.raises(ValueError, match=r"^mask backend: 'cpu_kernel' cannot step signed masks of fc on cpu: it "
                                         r"computes the zhou method only, not signed$"):
        choose_mask_backend(fc, cpu, "signed", "cpu_kernel")
    with pytest.raises(ValueError, match=r"^mask backend: unknown value 'gpu'; allowed values: reference, cpu_kernel$"):
        choose_mask_backend(fc, cpu, "zhou", "gpu")
    monkeypatch.setenv("LT_KERNELS", "0")
    assert "LT_KERNELS=0" in unavailable(fc, cpu, "zhou")
    assert choose_mask_backend(fc, cpu, "zhou") is ReferenceMaskBackend


@needs_kernels
@needs_mnist
def test_masks_are_the_references_bit_for_bit(mnist):
    fast, ref = _pair(mnist)
    with torch.no_grad():  # scores spread over the sigmoid, as after training
        for n, s in fast.scores.items():
            s.copy_(torch.randn(s.shape, generator=torch.Generator().manual_seed(3)) * 2)
            ref.scores[n].copy_(s)
    gens_c = [torch.Generator().manual_seed(40 + i) for i in range(4)]
    gens_r = [torch.Generator().manual_seed(40 + i) for i in range(4)]
    with torch.no_grad():
        eff_c = fast.mask_backend.sampled_weights(gens_c)
        eff_r = sampled_masked_weights(ref.w, ref.scores, gens_r, ref.dwr)
    for n in eff_r:  # the effective weights W b (times N / ones for DWR): same masks, same scale
        assert torch.equal(eff_c[n], eff_r[n]), n
        assert 0.3 < float((eff_r[n] != 0).float().mean()) < 0.7
    assert all(torch.equal(a.get_state(), b.get_state()) for a, b in zip(gens_c, gens_r))
    # a training step consumes each run's generator exactly as the reference's step does
    fast.step(0)
    ref.step(0)
    assert all(torch.equal(a.get_state(), b.get_state()) for a, b in zip(fast.gens, ref.gens))


@needs_kernels
@needs_mnist
def test_training_steps_match_the_reference_within_rounding(mnist):
    fast, ref = _pair(mnist)
    start = {n: s.detach().clone() for n, s in ref.scores.items()}
    for it in range(2):
        fast.step(it)
        ref.step(it)
        assert torch.equal(fast._correct, ref._correct)  # training accuracy: the same predictions
        for n in ref.scores:
            for k, cfg in enumerate(VARIANTS):
                moved = ref.scores[n][k].detach() - start[n][k]
                err = _relative(fast.scores[n][k].detach() - start[n][k], moved)
                bound = 1e-5 if cfg.weights == "init" else 5e-2
                assert err < bound, (it, n, cfg)
    for n in ref.scores:  # the momentum buffers are the optimiser's own (checkpoints save them)
        buf_c = fast.opt.state[fast.scores[n]]["momentum_buffer"]
        buf_r = ref.opt.state[ref.scores[n]]["momentum_buffer"]
        assert _relative(buf_c[:2], buf_r[:2]) < 1e-5


@needs_kernels
@needs_mnist
def test_short_run_reaches_the_references_accuracy(mnist):
    """100 steps both ways: the mean test accuracy over 10 sampled masks within 0.01 (measured
    after 150 steps: at most 0.001 apart), and the expected keep fraction sum(sigmoid) / N."""
    fast, ref = _pair(mnist, iterations=100)
    res_c, res_r = fast.run(), ref.run()
    for c, r in zip(res_c, res_r):
        assert len(c.test_acc_samples) == 10 and c.test_acc_mean == pytest.approx(sum(c.test_acc_samples) / 10)
        assert c.test_acc_mean > 0.7
        assert abs(c.test_acc_mean - r.test_acc_mean) < 0.01
        assert abs(c.expected_keep_fraction - r.expected_keep_fraction) < 0.002
    keep, _ = fast.expected_keep()
    total = sum(torch.sigmoid(s[0]).sum().item() for s in fast.scores.values()) / get_arch("fc").num_weights
    assert keep[0] == pytest.approx(total, rel=1e-6)


@needs_kernels
@needs_mnist
def test_portable_build_steps_alike(mnist, monkeypatch):
    """Without AVX-512 (the scalar code of every function) a step gives the same masks and scores
    (the same sums in the same order; only the DWR count term's double sum may round apart)."""
    portable = native.compile_library([f if f != "-march=native" else "-march=x86-64" for f in native.FLAGS])
    fast, other = _pair(mnist)
    other.mask_backend = CpuKernelMaskBackend(other)
    other.mask_backend.lib = portable
    for it in range(2):
        fast.step(it)
        other.step(it)
    assert all(torch.equal(a.get_state(), b.get_state()) for a, b in zip(fast.gens, other.gens))
    for n in fast.scores:
        torch.testing.assert_close(fast.scores[n], other.scores[n], rtol=1e-6, atol=1e-7)
