"""The ``cpu_kernel`` mask backend: Zhou et al.'s learned-supermask step of a fully connected stack in C
(``csrc/learned_fc.c``).

:class:`CpuKernelMaskBackend` does what the reference mask backend does with autograd for
:class:`lt_core.supermask.MaskLearner` -- sample every run's masks from its generator, forward, the
straight-through backward (with the DWR term through the count of ones), SGD with momentum on the
scores -- in one call, on the learner's own tensors: the scores and ``torch.optim.SGD``'s momentum
buffers are updated in place and the generators advanced, so that checkpoints, evaluation and the
stored scores see what the reference would have left. The masks are the reference's bit for bit (same generator states,
same ``sigmoid``, computed here by PyTorch); the scores differ from it by the rounding of the
matrix products' sums.

:func:`lt_core.backends.choose_mask_backend` takes it for Zhou's method on the CPU for fully
connected networks when the C library is available (not with ``LT_KERNELS=0``), by the same rule
as the lottery's ``cpu_kernel`` backend; everywhere else the reference backend computes with autograd.
"""

from __future__ import annotations

import ctypes
import time
from typing import Dict, Optional

import torch

from ..models import Arch
from . import native
from .cpu_kernel import CpuKernelBackend
from .masks import MaskBackend

Tensor = torch.Tensor
STATE_BYTES = 5056  # a CPU generator's get_state(), as learned_fc.c reads it


class CpuKernelMaskBackend(MaskBackend):
    """Steps a :class:`~lt_core.supermask.learned.MaskLearner`'s stack in C; see the module docstring."""

    name = "cpu_kernel"
    methods = ("zhou",)  # Bernoulli-sampled masks with the straight-through gradient, optional DWR

    @classmethod
    def unavailable(cls, arch: Arch, device: torch.device, method: str) -> Optional[str]:
        """The method's and the C library's own conditions (the lottery's ``cpu_kernel`` backend's)."""
        return super().unavailable(arch, device, method) or CpuKernelBackend.unavailable(arch, device)

    def __init__(self, learner) -> None:
        super().__init__(learner)
        self.lib = native.library()
        names = learner.arch.layer_names
        self.layers = (native.MaskLayer * len(names))()
        self.p = {n: torch.empty_like(learner.scores[n]).detach() for n in names}
        self.w_in = {n: native.input_major(learner.w[n]) for n in names}  # frozen: laid out once
        self.dwr = torch.tensor([bool(c.dwr) for c in learner.configs], dtype=torch.uint8)
        self.correct = torch.zeros(len(learner.configs), dtype=torch.int64)
        # all threads, or one: a thread per core is faster on idle cores, one thread when other
        # processes hold a core (each waits at the join for a time slice); the same bits either way
        self._threads = native.FasterOf((native.thread_count(), 1))
        for g in learner.gens:
            if g.device.type != "cpu" or g.get_state().numel() != STATE_BYTES:
                raise ValueError("CpuKernelMaskBackend: expected CPU generators with a state of "
                                 f"{STATE_BYTES} bytes, got {g.get_state().numel()} on {g.device}")

    def _momentum(self, score: Tensor) -> Tensor:
        """The optimiser's momentum buffer of ``score`` (zeros before the first step: the
        reference's first buffer, the gradient itself, is ``0 * momentum + gradient``)."""
        state = self.learner.opt.state[score]
        buf = state.get("momentum_buffer")
        if buf is None or not buf.is_contiguous() or buf.shape != score.shape:
            buf = torch.zeros_like(score).detach() if buf is None else buf.contiguous()
            state["momentum_buffer"] = buf
        return buf

    def _layers(self) -> None:
        """Points the layer records at the learner's tensors, with ``p = sigmoid(scores)`` fresh."""
        ln = self.learner
        with torch.no_grad():
            for j, name in enumerate(ln.arch.layer_names):
                s, w = ln.scores[name], ln.w[name]
                torch.sigmoid(s.detach(), out=self.p[name])
                self.layers[j] = native.MaskLayer(w.shape[2], w.shape[1], w.data_ptr(), self.w_in[name].data_ptr(),
                                                  s.data_ptr(), self.p[name].data_ptr(), self._momentum(s).data_ptr())

    def sampled_weights(self, gens) -> Dict[str, Tensor]:
        """The effective weights ``W * b`` (times ``N / sum(b)`` for DWR runs) with masks drawn
        from ``gens`` (one CPU generator per run, advanced): the same values as
        :func:`~lt_core.supermask.learned.sampled_masked_weights` (masked entries +0)."""
        ln = self.learner
        self._layers()
        eff = {n: torch.empty_like(w) for n, w in ln.w.items()}
        ptrs = (ctypes.c_void_p * len(eff))(*[eff[n].data_ptr() for n in ln.arch.layer_names])
        states = torch.stack([g.get_state() for g in gens])
        rc = self.lib.lt_mask_draw(len(self.layers), self.layers, len(gens), self.dwr.data_ptr(), states.data_ptr(),
                                   STATE_BYTES, ptrs, native.thread_count())
        if rc != 0:
            raise MemoryError("lt_mask_draw: no memory" if rc == -2 else f"lt_mask_draw: bad arguments (code {rc})")
        for g, st in zip(gens, states):
            g.set_state(st.clone())  # (set_state reads a row of the stack wrongly: it ignores the offset)
        return eff

    def step(self, it: int, x: Tensor, y: Tensor) -> Tensor:
        """Step ``it`` of every run on ``x`` (B, ...) shared by all runs, or (K, B, ...) one batch
        each, labels ``y`` (B,) or (K, B); returns each run's training accuracy on it (float32, (K,))."""
        ln = self.learner
        k = len(ln.configs)
        group = ln.opt.param_groups[0]
        self._layers()
        shared = x.dim() == 4
        rows = x.shape[0] if shared else x.shape[1]
        xf = x.reshape(rows, -1) if shared else x.reshape(k, rows, -1)
        xf = xf.to(torch.float32).contiguous()
        yy = y.to(torch.int64).contiguous()
        states = torch.stack([g.get_state() for g in ln.gens])
        threads = self._threads.choice()
        start = time.perf_counter()
        rc = self.lib.lt_mask_train_step(len(self.layers), self.layers, k, self.dwr.data_ptr(), states.data_ptr(),
                                         STATE_BYTES, xf.data_ptr(), 0 if shared else xf.stride(0), yy.data_ptr(),
                                         0 if shared else yy.stride(0), rows, float(group["lr"]),
                                         float(group["momentum"]), threads, self.correct.data_ptr())
        self._threads.record(threads, time.perf_counter() - start)
        if rc != 0:
            raise MemoryError("lt_mask_train_step: no memory for its buffers" if rc == -2 else
                              f"lt_mask_train_step: bad arguments (code {rc})")
        for g, st in zip(ln.gens, states):
            g.set_state(st.clone())  # (set_state reads a row of the stack wrongly: it ignores the offset)
        return self.correct.to(torch.float32) / rows
