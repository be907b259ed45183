"""Adam for stacks of runs, with the pruning mask folded into the update.

:class:`StackAdam` steps a fixed list of tensors (each with a leading run dimension) without
``torch.optim``'s per-step bookkeeping, which costs more than the update itself for a small
network. An optional mask per tensor (pruned entries 0) is applied to the gradient inside the
update, so a pruned weight that starts at 0 stays exactly 0 and no separate masking pass is needed.

Two implementations of the same update (PyTorch's form of Adam; betas (0.9, 0.999) and eps 1e-8
are TF's defaults, as in the original code; no weight decay):

* on the CPU, a small C kernel (``csrc/masked_adam.c``, built by :mod:`lt_core.backends.native`): one
  pass over memory per step, denormal moments flushed to zero (see the kernel's comment for why);
* elsewhere (CUDA, no compiler, or ``LT_KERNELS=0``), the gradient is masked into a reused
  buffer and PyTorch's fused Adam kernel steps, bit for bit ``torch.optim.Adam(fused=True)``
  (tested).

The two round differently in the last bit (tested to agree to float32 precision). The C kernel
computes every element with the same instructions wherever it sits, so a run gets the same bits
alone or in a stack (tested). PyTorch's fused kernel splits each tensor among threads and finishes
a split's ragged end with scalar code that rounds differently, so there a stacked run can differ
from the same run alone in the last bits -- which Adam, dividing tiny gradients by their own
magnitude, can grow to visible differences over many steps. Either way, the same seed gives the
same numbers on the same machine.
"""

from __future__ import annotations

import math
from typing import List, Optional, Sequence

import torch

from . import native

Tensor = torch.Tensor


def fused_kernel():
    """The C kernel ``lt_masked_adam`` (see :mod:`lt_core.backends.native`); None where it is not available."""
    lib = native.library()
    return None if lib is None else lib.lt_masked_adam


def zeros_in_layout(t: Tensor) -> Tensor:
    """Zeros shaped as ``t`` with ``t``'s strides, also where ``t``'s memory has gaps (padded rows),
    which ``zeros_like`` does not keep."""
    if t.numel() == 0 or any(stride < 0 for stride in t.stride()):
        return torch.zeros_like(t)
    span = 1 + sum((size - 1) * stride for size, stride in zip(t.shape, t.stride()))
    if span <= t.numel():  # no gaps (zeros_like keeps such a layout)
        return torch.zeros_like(t)
    return torch.zeros(span, dtype=t.dtype, device=t.device).as_strided(t.shape, t.stride())


class StackAdam:
    """Adam over a fixed list of tensors; ``masks[i]`` (or None) zeroes the gradient of pruned
    entries of ``params[i]`` inside the update.

    ``use_kernel``: None picks the C kernel wherever it applies (float32 contiguous CPU tensors and
    a compiler at hand); False always takes PyTorch's fused Adam.

    ``live_cols[i]`` (or None): columns of ``params[i]`` from this one on never get a gradient (a
    first layer's weights of inputs that are 0 in every training image): their moments stay 0 and
    their update is exactly 0, so the kernel does not touch them.
    """

    def __init__(self, params: Sequence[Tensor], lr: float, betas=(0.9, 0.999), eps: float = 1e-8,
                 masks: Optional[Sequence[Optional[Tensor]]] = None, use_kernel: Optional[bool] = None,
                 live_cols: Optional[Sequence[Optional[int]]] = None) -> None:
        self.params = list(params)
        self.live_cols = self._per_tensor("live_cols", live_cols)
        self.lr, self.betas, self.eps = float(lr), tuple(betas), float(eps)
        # the moments take their tensor's memory layout (a transposed view gets transposed moments,
        # a view of padded rows padded ones)
        self.exp_avg = [zeros_in_layout(p) for p in self.params]
        self.exp_avg_sq = [zeros_in_layout(p) for p in self.params]
        self.t = 0  # steps taken
        self.masks = [None if m is None else m.to(device=p.device, dtype=torch.bool).contiguous()
                      for m, p in zip(self._per_tensor("masks", masks), self.params)]
        self._float_masks = None  # for the PyTorch path, made when first needed
        applies = all(p.device.type == "cpu" and p.dtype == torch.float32 and p.is_contiguous()
                      for p in self.params)
        self.kernel = fused_kernel() if (use_kernel is not False and applies) else None

    def _per_tensor(self, field: str, values: Optional[Sequence]) -> list:
        """``values`` as a list with one entry per tensor (all None when not given)."""
        values = list(values) if values is not None else [None] * len(self.params)
        if len(values) != len(self.params):
            raise ValueError(f"StackAdam.{field}: {len(values)} entries for {len(self.params)} tensors")
        return values

    @torch.no_grad()
    def step(self, grads: Optional[Sequence[Tensor]] = None) -> None:
        """One update from ``grads`` (default: each tensor's ``.grad``); masked entries' gradients
        are ignored. A gradient may be narrower than its tensor in the last dimension: it is then
        the gradient of the leading columns, and the others' gradient is 0 (a first layer whose
        trailing inputs were all 0 in the batch)."""
        grads = [p.grad for p in self.params] if grads is None else list(grads)
        self.t += 1
        if self.kernel is not None:
            self._kernel_step(grads)
        else:
            self._torch_step(grads)

    def _kernel_step(self, grads: List[Tensor]) -> None:
        b1, b2 = self.betas
        step_size = self.lr / (1.0 - b1 ** self.t)
        bc2_sqrt = math.sqrt(1.0 - b2 ** self.t)
        threads = torch.get_num_threads()
        for p, g, m, v, mask, live in zip(self.params, grads, self.exp_avg, self.exp_avg_sq, self.masks,
                                          self.live_cols):
            if not g.is_contiguous() or g.dtype != torch.float32:
                g = g.contiguous().float()
            cols = p.shape[-1] if p.dim() else 1
            grad_cols = g.shape[-1] if g.dim() else 1
            live = cols if live is None else max(grad_cols, min(live, cols))
            self.kernel(p.data_ptr(), g.data_ptr(), m.data_ptr(), v.data_ptr(),
                        None if mask is None else mask.data_ptr(), p.numel() // cols, cols, grad_cols, live,
                        b1, b2, step_size, bc2_sqrt, self.eps, threads)

    def _torch_step(self, grads: List[Tensor]) -> None:
        if self._float_masks is None:
            self._float_masks = [None if m is None else m.to(p.dtype) for m, p in zip(self.masks, self.params)]
            self._buffers = [None] * len(self.params)  # full-size gradients, reused every step
        full = []
        for i, (p, g, fm) in enumerate(zip(self.params, grads, self._float_masks)):
            if g.shape == p.shape and fm is None:
                full.append(g)
                continue
            if self._buffers[i] is None:
                self._buffers[i] = torch.zeros_like(p)
            buf = self._buffers[i]
            if g.shape != p.shape:  # a narrowed first layer: zero gradient past its columns
                width = g.shape[-1]
                buf[..., :width].copy_(g)
                buf[..., width:].zero_()
                if fm is not None:
                    buf.mul_(fm)
            else:
                torch.mul(g, fm, out=buf)
            full.append(buf)
        steps = [torch.full((), float(self.t), device=p.device) for p in self.params]
        torch._fused_adam_(self.params, full, self.exp_avg, self.exp_avg_sq, [], steps, amsgrad=False,
                           lr=self.lr, beta1=self.betas[0], beta2=self.betas[1], weight_decay=0.0, eps=self.eps,
                           maximize=False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    def state_dict(self) -> dict:
        return {"exp_avg": [t.detach().cpu() for t in self.exp_avg],
                "exp_avg_sq": [t.detach().cpu() for t in self.exp_avg_sq],
                "steps": [torch.tensor(float(self.t)) for _ in self.params]}

    @torch.no_grad()
    def load_state_dict(self, state: dict) -> None:
        for key in ("exp_avg", "exp_avg_sq"):
            for mine, saved in zip(getattr(self, key), state[key]):
                mine.copy_(saved)
        self.t = int(float(state["steps"][0])) if state["steps"] else 0
