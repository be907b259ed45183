"""What a mask backend is: how a mask learner's training step and its evaluation weights are computed.

A mask learner (:mod:`lt_core.supermask`) trains the scores of K stacked learned masks over frozen
weights; what its method *is* lives in the learner (how a mask follows from the scores, the
straight-through gradient, the optimiser). How a step is *computed* is the business of a
:class:`MaskBackend`, chosen once per learner by :func:`lt_core.backends.choose_mask_backend`, the
place that also chooses the lottery's training backends:

* ``reference`` (:class:`ReferenceMaskBackend`): the learner's own autograd step -- the
  specification, for every method, network and device;
* ``cpu_kernel`` (:class:`lt_core.backends.learned_fc.CpuKernelMaskBackend`): Zhou et al.'s
  Bernoulli masks of a fully connected stack in C on the CPU, the same masks bit for bit, the sums
  rounded in another order.

A backend reads and updates the learner's own tensors (scores, optimiser state, generators), so that
checkpoints, evaluation and the stored scores are the same whichever computed the steps. The learner
offers it :meth:`train_weights` / ``train_biases`` (the masked weights with their gradient path) and
:meth:`sampled_weights` (evaluation weights drawn from given generators), and ``before_update(it)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F

from ..models import Arch, forward

Tensor = torch.Tensor


class MaskBackend(ABC):
    """Computes a mask learner's steps (see the module docstring). Subclasses set ``name`` and, when they
    compute some methods only, ``methods``; they implement :meth:`step` and :meth:`sampled_weights`."""

    name = ""
    methods: Optional[Sequence[str]] = None  # the mask methods it computes (None: any)

    @classmethod
    def unavailable(cls, arch: Arch, device: torch.device, method: str) -> Optional[str]:
        """Why this backend cannot step ``method``'s learner of ``arch`` on ``device``; None when it can."""
        if cls.methods is not None and method not in cls.methods:
            return f"it computes the {', '.join(cls.methods)} method only, not {method}"
        return None

    def __init__(self, learner) -> None:
        self.learner = learner

    @abstractmethod
    def step(self, it: int, x: Tensor, y: Tensor) -> Tensor:
        """Step ``it`` of every run on images ``x`` (B, ...) shared by all runs, or (K, B, ...) one
        batch each, labels ``y`` (B,) or (K, B); returns each run's training accuracy on it ((K,))."""

    @abstractmethod
    def sampled_weights(self, gens) -> Dict[str, Tensor]:
        """The weights every run is evaluated with, masks drawn from ``gens`` (one generator per run,
        advanced; unused by methods whose mask is not sampled)."""


class ReferenceMaskBackend(MaskBackend):
    """The learner's own autograd step: forward with :meth:`train_weights`, the mean cross-entropy of
    each run (summed over runs, so that each run's gradient is the one it has alone), backward,
    ``before_update``, the optimiser's step."""

    name = "reference"

    def step(self, it: int, x: Tensor, y: Tensor) -> Tensor:
        ln = self.learner
        k = len(ln.configs)
        logits = forward(ln.arch, ln.train_weights(), ln.train_biases, x)
        target = y.expand(k, -1) if y.dim() == 1 else y
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1)) * k
        ln.opt.zero_grad(set_to_none=True)
        loss.backward()
        ln.before_update(it)
        ln.opt.step()
        return (logits.detach().argmax(-1) == target).float().mean(1)

    @torch.no_grad()
    def sampled_weights(self, gens) -> Dict[str, Tensor]:
        return self.learner.sampled_weights(gens)
