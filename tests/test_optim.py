"""Adam for stacks of runs (lt_core.backends.optim.StackAdam): PyTorch's fused Adam bit for bit
without the C kernel, the same update to rounding with it, masks and narrowed gradients exact."""

import os
import shutil
import sys

import pytest
import torch

from lt_core.backends import native
from lt_core.backends.optim import StackAdam, fused_kernel, zeros_in_layout


def _adam_case(seed=0, steps=4):
    gen = torch.Generator().manual_seed(seed)
    start = [torch.randn(3, 4, generator=gen), torch.randn(5, generator=gen)]
    grads = [[torch.randn(t.shape, generator=gen) for t in start] for _ in range(steps)]
    return start, grads


def _run_adam(start, grads, **kwargs):
    params = [t.clone() for t in start]
    opt = StackAdam(params, lr=1e-2, **kwargs)
    for step_grads in grads:
        opt.step([g.clone() for g in step_grads])
    return params, opt


def test_stack_adam_without_the_kernel_is_torch_fused_adam_bit_for_bit():
    start, grads = _adam_case()
    mine, opt = _run_adam(start, grads, use_kernel=False)
    ref = [t.clone().requires_grad_() for t in start]
    ref_opt = torch.optim.Adam(ref, lr=1e-2, eps=1e-8, fused=True)
    for step_grads in grads:
        for q, g in zip(ref, step_grads):
            q.grad = g.clone()
        ref_opt.step()
    assert all(torch.equal(p, q) for p, q in zip(mine, ref))


def test_fused_kernel_builds_where_a_c_compiler_is_found():
    if os.environ.get("LT_KERNELS") == "0":
        pytest.skip("the kernels are switched off (LT_KERNELS=0)")
    if not sys.platform.startswith("linux") or shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler on this machine")
    assert fused_kernel() is not None


def test_kernel_adam_agrees_with_torch_adam_and_masks_exactly():
    if fused_kernel() is None:
        pytest.skip("fused kernel not available here")
    start, grads = _adam_case(steps=6)
    mine, opt = _run_adam(start, grads)
    assert opt.kernel is not None
    ref, _ = _run_adam(start, grads, use_kernel=False)
    for p, q in zip(mine, ref):  # same formula, last-bit rounding may differ
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)
    # masked: pruned entries (starting at 0) stay exactly 0; kept ones follow the masked-gradient update
    mask = torch.tensor([[1, 0, 1, 1], [0, 0, 1, 0], [1, 1, 1, 0]], dtype=torch.bool)
    start0 = [start[0] * mask, start[1]]
    masked, _ = _run_adam(start0, grads, masks=[mask, None])
    assert torch.all(masked[0][~mask] == 0)
    premasked, _ = _run_adam(start0, [[g[0] * mask, g[1]] for g in grads])
    assert all(torch.equal(a, b) for a, b in zip(masked, premasked))


@pytest.mark.parametrize("use_kernel", [None, False])
def test_narrow_first_layer_gradient_equals_zero_padded_gradient(use_kernel):
    start, grads = _adam_case()
    narrow = [[g[0][:, :2].contiguous(), g[1]] for g in grads]
    padded = [[torch.cat([g[0][:, :2], torch.zeros(3, 2)], 1), g[1]] for g in grads]
    a, _ = _run_adam(start, narrow, use_kernel=use_kernel)
    b, _ = _run_adam(start, padded, use_kernel=use_kernel)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    # the last column never has a gradient: skipping it changes nothing
    c, opt = _run_adam(start, narrow, use_kernel=use_kernel, live_cols=[3, None])
    assert all(torch.equal(x, y) for x, y in zip(c, b))
    assert torch.equal(c[0][:, 3], start[0][:, 3]) and torch.all(opt.exp_avg[0][:, 3] == 0)


@pytest.mark.parametrize("use_kernel", [None, False])
def test_adam_on_a_stack_equals_adam_on_each_run(use_kernel):
    gen = torch.Generator().manual_seed(1)
    start = torch.randn(3, 40, 50, generator=gen)  # 3 runs
    grads = [torch.randn(3, 40, 50, generator=gen) for _ in range(3)]
    stacked, _ = _run_adam([start], [[g] for g in grads], use_kernel=use_kernel)
    for k in range(3):
        alone, _ = _run_adam([start[k]], [[g[k]] for g in grads], use_kernel=use_kernel)
        assert torch.equal(stacked[0][k], alone[0])


def test_kernel_flushes_denormal_moments_and_restores_the_callers_float_mode():
    if fused_kernel() is None:
        pytest.skip("fused kernel not available here")
    tiny = torch.finfo(torch.float32).tiny  # 1.18e-38, the smallest normal float32
    params, opt = _run_adam([torch.ones(4)], [[torch.zeros(4)]])
    opt.exp_avg[0].fill_(tiny)  # 0.9 * tiny is denormal: flushed to 0
    opt.step([torch.zeros(4)])
    assert torch.all(opt.exp_avg[0] == 0)
    assert float(torch.tensor(tiny) * 0.5) > 0  # the caller still computes with denormals


def test_stack_adam_state_round_trip():
    start, grads = _adam_case()
    _, opt = _run_adam(start, grads)
    restored = StackAdam([t.clone() for t in start], lr=1e-2)
    restored.load_state_dict(opt.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(restored.exp_avg_sq, opt.exp_avg_sq))
    assert restored.t == 4


def test_stack_adam_moments_keep_a_padded_layout():
    padded = torch.randn(2, 5, 16)[:, :, :10].transpose(1, 2)  # rows 16 apart, seen transposed
    m = zeros_in_layout(padded)
    assert m.shape == padded.shape and m.stride() == padded.stride() and not m.any()
    assert m.untyped_storage().nbytes() == 4 * (1 + 1 * 80 + 9 * 1 + 4 * 16)
    dense = torch.randn(3, 4).t()
    assert zeros_in_layout(dense).stride() == dense.stride()


def test_a_failed_kernel_build_falls_back_to_pytorch_adam_with_a_warning(monkeypatch):
    if not sys.platform.startswith("linux") or os.environ.get("LT_KERNELS") == "0":
        pytest.skip("the kernels are only built on Linux")
    monkeypatch.setattr(native, "_library", None)  # forget this process's build (restored afterwards)
    monkeypatch.setenv("CC", "/bin/false")  # a compiler that fails
    with pytest.warns(RuntimeWarning, match="C kernels are not available"):
        assert fused_kernel() is None
    start, grads = _adam_case()
    mine, opt = _run_adam(start, grads)
    ref, _ = _run_adam(start, grads, use_kernel=False)
    assert opt.kernel is None and all(torch.equal(a, b) for a, b in zip(mine, ref))


def test_stack_adam_refuses_per_tensor_lists_of_the_wrong_length():
    with pytest.raises(ValueError, match=r"StackAdam\.masks: 1 entries for 2 tensors"):
        StackAdam([torch.zeros(2), torch.zeros(3)], lr=0.1, masks=[None])
    with pytest.raises(ValueError, match=r"StackAdam\.live_cols: 3 entries for 2 tensors"):
        StackAdam([torch.zeros(2), torch.zeros(3)], lr=0.1, live_cols=[None, None, 1])
