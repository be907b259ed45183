"""What a training backend is: the interface the training loop drives, and the state all keep.

A backend trains one stack of K runs of one architecture; it is built once per stack (see
:func:`lt_core.backends.choose_backend`). It holds each layer's stacked weights ``w[name]`` and
biases ``b[name]`` in its own input order and memory layout, takes the training steps the loop
asks for on the loop's batches, evaluates the stack on a split, and hands out its state (for
checkpoints) and each run's final weights in the canonical layout -- ``(K, *layer.shape)``, inputs
in their own order -- whatever its own.

Every backend computes the same function (the reference backend is its specification): Adam on
the sum over runs of each run's mean cross-entropy, a pruned weight's gradient masked inside the
update. A pruned weight starts at 0, or at the run's frozen value (mask-0 policies), and with a
zero masked gradient its update is exactly 0: the weights are ``w * mask + frozen`` throughout,
with no per-step masking. Backends differ only in the rounding of sums.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from ..batches import BatchOrder
from ..data import Dataset, Split
from ..models import Arch
from .optim import StackAdam

Tensor = torch.Tensor


@dataclass
class RunSpec:
    """One run of a stack: where it starts, what it may change, and its data order."""

    label: str
    weights: Dict[str, Tensor]  # starting (underlying) weights
    biases: Dict[str, Tensor]
    masks: Dict[str, Tensor]
    seed: int  # data order
    frozen: Optional[Dict[str, Tensor]] = None  # fixed values of pruned weights (0 at kept positions)


@torch.no_grad()
def split_metrics(split: Split, k: int, batch: int, logits: Callable[[int, Tensor], Tensor]) -> Tuple[Tensor, Tensor]:
    """Mean cross-entropy and accuracy of each of K networks on ``split`` (float64 tensors (K,)),
    ``batch`` images at a time; ``logits(j, x)``: the ``(K, B, classes)`` logits of batch ``j``,
    images ``x``."""
    loss = torch.zeros(k, dtype=torch.float64, device=split.x.device)
    correct = torch.zeros(k, dtype=torch.float64, device=split.x.device)
    for j, start in enumerate(range(0, len(split), batch)):
        x, y = split.x[start:start + batch], split.y[start:start + batch]
        out = logits(j, x)
        target = y.expand(k, -1)
        loss += F.cross_entropy(out.reshape(-1, out.shape[-1]), target.reshape(-1),
                                reduction="none").view(k, -1).sum(1, dtype=torch.float64)
        correct += (out.argmax(-1) == target).sum(1, dtype=torch.float64)
    n = len(split)
    return loss / n, correct / n


class Backend(ABC):
    """Trains a stack of runs (see the module docstring).

    ``data``: the splits as this backend reads them (a backend may reorder the inputs; batches are
    drawn from ``data.train``); ``opt``: the :class:`StackAdam` whose moments and step count are
    the optimiser's state. Subclasses set ``name``, implement :meth:`steps` and
    :meth:`evaluate_weights`, and may override the layout hooks.
    """

    name = ""
    adam_masks = True  # whether the optimiser masks the gradients (else the backend's own step does)
    batch_block_rows = 1024  # training images gathered at a time (BatchOrder's block_rows)

    @classmethod
    def unavailable(cls, arch: Arch, device: torch.device) -> Optional[str]:
        """Why this backend cannot train ``arch`` on ``device``; None when it can."""
        return None

    def __init__(self, arch: Arch, data: Dataset, runs: Sequence[RunSpec], lr: float) -> None:
        self.arch, self.data, self.runs, self.lr = arch, data, list(runs), lr
        self.device = data.train.x.device
        names = arch.layer_names
        masks = {n: self._stack([r.masks[n] for r in runs], n) for n in names}
        self.w = {n: self._stack([r.weights[n] for r in runs], n) for n in names}
        self.b = {n: torch.stack([r.biases[n] for r in runs]).to(self.device, torch.float32) for n in names}
        self.masked = not all(bool(m.all()) for m in masks.values())
        frozen = any(r.frozen is not None for r in runs)
        with torch.no_grad():
            for n in names:
                self.w[n].mul_(masks[n])
                if frozen:
                    self.w[n].add_(self._stack([r.frozen[n] if r.frozen is not None else
                                                torch.zeros(arch.layer(n).shape) for r in runs], n))
        params = [self.w[n] for n in names] + [self.b[n] for n in names]
        self.opt = StackAdam(params, lr=lr,
                             masks=[masks[n] if self.adam_masks and self.masked else None for n in names]
                             + [None] * len(names),
                             live_cols=[self.live_inputs()] + [None] * (len(params) - 1))

    # -- layout hooks (defaults: the canonical layout) ---------------------------------------
    def live_inputs(self) -> Optional[int]:
        """First-layer inputs from this one on are 0 in every training image (their weights never
        move); None: any may be nonzero."""
        return None

    def _from_canonical(self, name: str, t: Tensor) -> Tensor:
        """Layer ``name``'s stacked tensor (last dimension: its inputs) in this backend's input order."""
        return t

    def _to_canonical(self, name: str, t: Tensor) -> Tensor:
        """The inverse of :meth:`_from_canonical`: inputs back in their own order."""
        return t

    def _layout(self, t: Tensor) -> Tensor:
        """A stacked weight-shaped tensor in this backend's memory layout (same values)."""
        return t

    def _stack(self, tensors: List[Tensor], name: str) -> Tensor:
        return self._layout(self._from_canonical(name, torch.stack(tensors).to(self.device, torch.float32)))

    # -- the interface -----------------------------------------------------------------------
    def max_steps(self, batches: BatchOrder, it: int) -> int:
        """How many steps from ``it`` on one call of :meth:`steps` can take."""
        return 1

    @abstractmethod
    def steps(self, batches: BatchOrder, it: int, n: int) -> None:
        """Training steps ``it`` to ``it + n - 1`` of every run (``n <= max_steps(batches, it)``)."""

    @staticmethod
    @abstractmethod
    def evaluate_weights(arch: Arch, weights: Dict[str, Tensor], biases: Dict[str, Tensor], split: Split,
                         batch: Optional[int] = None) -> Tuple[Tensor, Tensor]:
        """Mean cross-entropy and accuracy (float64 (K,)) of stacked networks (weights
        ``(K, *layer.shape)``, inputs in the split's order), computed as this backend computes;
        ``batch``: images per batch (default :func:`lt_core.devices.eval_batch_size`)."""

    def evaluate(self, split: str, runs: Optional[Sequence[int]] = None) -> Tuple[Tensor, Tensor]:
        """Mean cross-entropy and accuracy (float64 (K,)) of the stack on split ``split``; with
        ``runs``, of those runs only (in that order), each with the numbers it gets in the stack."""
        w, b = self.chosen(runs)
        return self.evaluate_weights(self.arch, w, b, self.data.splits[split])

    def chosen(self, runs: Optional[Sequence[int]] = None) -> Tuple[Dict[str, Tensor], Dict[str, Tensor]]:
        """The stacked weights and biases (detached) of ``runs`` (all: None)."""
        def pick(t: Tensor) -> Tensor:
            t = t.detach()
            return t if runs is None or list(runs) == list(range(t.shape[0])) else t[list(runs)]
        return {n: pick(t) for n, t in self.w.items()}, {n: pick(t) for n, t in self.b.items()}

    def final(self, i: int) -> Tuple[Dict[str, Tensor], Dict[str, Tensor]]:
        """Run ``i``'s weights (``w * mask + frozen``) and biases now, canonical CPU copies."""
        return ({n: self._to_canonical(n, t[i].detach()).cpu().clone() for n, t in self.w.items()},
                {n: t[i].detach().cpu().clone() for n, t in self.b.items()})

    def state_dict(self) -> dict:
        """Weights, biases and optimiser state, canonical (see :meth:`load_state_dict`)."""
        opt = self.opt.state_dict()
        first = self.arch.layers[0].name
        for key in ("exp_avg", "exp_avg_sq"):  # params are [weights..., biases...]: entry 0 is the first layer's
            opt[key][0] = self._to_canonical(first, opt[key][0])
        return {"w": {n: self._to_canonical(n, t.detach()).cpu() for n, t in self.w.items()},
                "b": {n: t.detach().cpu() for n, t in self.b.items()}, "opt": opt}

    def load_state_dict(self, state: dict) -> None:
        """Continue from the output of :meth:`state_dict`."""
        first = self.arch.layers[0].name
        with torch.no_grad():
            for n in self.w:
                self.w[n].copy_(self._from_canonical(n, state["w"][n]))
                self.b[n].copy_(state["b"][n])
        opt = dict(state["opt"])
        for key in ("exp_avg", "exp_avg_sq"):
            opt[key] = [self._from_canonical(first, t) if i == 0 else t for i, t in enumerate(opt[key])]
        self.opt.load_state_dict(opt)
