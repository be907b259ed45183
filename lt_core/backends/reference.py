"""The reference backend: the readable specification of what every backend computes.

Each step is the textbook one over the stack: the logits of :func:`lt_core.models.forward`, the
sum over runs of each run's mean cross-entropy (so every run gets exactly its own gradient),
autograd, and Adam over the stacked tensors with pruned weights' gradients masked
(:class:`lt_core.backends.optim.StackAdam`). It trains any architecture on any device, and it is
the backend of the convolutional networks; the fully connected fast backends are tested against it.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F

from ..batches import BatchOrder
from ..data import Dataset, Split
from ..devices import eval_batch_size
from ..models import Arch, forward
from .base import Backend, RunSpec, split_metrics

Tensor = torch.Tensor


class ReferenceBackend(Backend):
    name = "reference"

    def __init__(self, arch: Arch, data: Dataset, runs: Sequence[RunSpec], lr: float) -> None:
        super().__init__(arch, data, runs, lr)
        for t in (*self.w.values(), *self.b.values()):
            t.requires_grad_()

    def steps(self, batches: BatchOrder, it: int, n: int) -> None:
        for j in range(n):
            self._step(*batches(it + j))

    def _step(self, x: Tensor, y: Tensor) -> None:
        k = len(self.runs)
        logits = forward(self.arch, self.w, self.b, x)
        target = y.expand(k, -1) if y.dim() == 1 else y  # a batch shared by all runs, or one each
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1)) * k
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

    @staticmethod
    def evaluate_weights(arch: Arch, weights: Dict[str, Tensor], biases: Dict[str, Tensor], split: Split,
                         batch: Optional[int] = None):
        k = next(iter(weights.values())).shape[0]
        return split_metrics(split, k, batch or eval_batch_size(arch, split.x.device),
                             lambda j, x: forward(arch, weights, biases, x))
