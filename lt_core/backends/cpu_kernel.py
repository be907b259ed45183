"""The ``cpu_kernel`` backend: fully connected stacks trained and evaluated in C on the CPU.

:class:`lt_core.backends.native.FcStack` computes the first layer's products over each image's
nonzero pixels only and applies Adam row by row as gradients are known (pruned weights' gradients
masked), up to a gathered block of batches per call, each run taking its steps in a row so that its
weights stay in the cache; runs left over after an even split between threads are shared by all of
them. The inputs are in :class:`~lt_core.backends.input_order.InputOrder` as for ``dense_fc`` (the
first-layer weights of inputs that are 0 in every training image are never touched). Each weight
matrix is stored input-major, as the kernel reads it: ``(K, in, out)`` in memory, rows padded to
whole 64-byte lines (:func:`~lt_core.backends.native.input_major`), seen through its
``(K, out, in)`` transpose so that everything else reads the usual layout. The optimiser's moments
take the same layout: the kernel steps the very tensors :class:`StackAdam` holds, so they serve
the kernel and the checkpoints alike.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import torch

from ..batches import BatchOrder
from ..data import Dataset, Split
from ..devices import eval_batch_size
from ..models import Arch
from . import native
from .base import RunSpec, split_metrics
from .dense_fc import DenseFcBackend

Tensor = torch.Tensor


class CpuKernelBackend(DenseFcBackend):
    """Fully connected stacks on the CPU, in C (see the module docstring)."""

    name = "cpu_kernel"
    adam_masks = False  # the kernel masks the gradients as it steps
    # a call takes the batches of a gathered block, up to the next evaluation: 100 batches of 60 a
    # block spread a call's own work (each pruned run's kept-weight lists) over more steps
    batch_block_rows = 6000

    @classmethod
    def unavailable(cls, arch: Arch, device: torch.device) -> Optional[str]:
        if not arch.fully_connected:
            return f"{arch.name} has convolutional layers"
        if arch.activation != "relu":
            return f"its kernels compute ReLU networks, not {arch.activation}"
        if torch.device(device).type != "cpu":
            return f"it runs on the CPU, not {device}"
        if native.library() is None:
            return "the C kernels are not available (no C compiler, or LT_KERNELS=0)"
        return None

    def __init__(self, arch: Arch, data: Dataset, runs: Sequence[RunSpec], lr: float) -> None:
        super().__init__(arch, data, runs, lr)
        names, n = arch.layer_names, len(arch.layers)
        masks = None
        if self.masked:
            masks = [native.input_major(self._stack([r.masks[k] for r in runs], k), torch.uint8) for k in names]
        self.fc_stack = native.FcStack(
            [self.w[k].transpose(1, 2) for k in names], [self.b[k] for k in names],
            exp_avg_w=[t.transpose(1, 2) for t in self.opt.exp_avg[:n]], exp_avg_b=self.opt.exp_avg[n:],
            exp_avg_sq_w=[t.transpose(1, 2) for t in self.opt.exp_avg_sq[:n]], exp_avg_sq_b=self.opt.exp_avg_sq[n:],
            masks=masks, live_in=[self.inputs.live] + [None] * (n - 1))
        self.threads = native.thread_count()

    def _layout(self, t: Tensor) -> Tensor:
        return native.input_major(t).transpose(1, 2)

    def max_steps(self, batches: BatchOrder, it: int) -> int:
        """The steps left in the gathered block of batches (up to 100 of batch 60), in one call."""
        return batches.left_in_block(it)

    def steps(self, batches: BatchOrder, it: int, n: int) -> None:
        x, y = batches.span(it, n)
        adam = [native.adam_step(self.opt.t + 1 + j, self.lr) for j in range(n)]
        self.opt.t += n  # the kernel steps the optimiser's tensors
        self.fc_stack.train_steps(x.reshape(*x.shape[:-3], -1), y, adam, self.threads)

    def evaluate(self, split: str, runs=None):
        w, b = self.chosen(runs)
        return self.evaluate_weights(self.arch, w, b, self.data.splits[split])

    @staticmethod
    def evaluate_weights(arch: Arch, weights: Dict[str, Tensor], biases: Dict[str, Tensor], split: Split,
                         batch: Optional[int] = None):
        names = arch.layer_names
        # input-major copies of the weights (none for the backend's own, which are stored that way)
        fc_stack = native.FcStack([native.input_major(weights[n].detach(), torch.float32) for n in names],
                                  [biases[n].detach().float().contiguous() for n in names])
        batch = max(batch or eval_batch_size(arch, split.x.device), 10000)  # the kernel blocks the images itself
        threads = native.thread_count()
        return split_metrics(split, fc_stack.runs, batch,
                             lambda j, x: fc_stack.forward(x, threads))
