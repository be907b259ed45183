"""Edge-popup (Ramanujan et al. 2020, "What's Hidden in a Randomly Weighted Neural Network?"): the
mask of a layer keeps the ``keep_fraction`` of its weights with the largest ``|score|``; the scores
are trained by SGD with a straight-through gradient, so every score (kept or not) gets one.

Behaviour, and where it comes from (paper: Ramanujan et al., CVPR 2020; code: the authors' public
repository allenai/hidden-networks, read for behaviour only):

* **Selection** (code): per layer, ``numel - floor((1 - k) * numel)`` weights are kept, those of
  largest ``|score|``; k is chosen, not learned (``keep_fraction``). Ties at the threshold
  (the reference sorts without a stated order for ties) are broken here by the lower flat index,
  so the mask is deterministic -- *our choice*. On the CPU the threshold (the k-th largest
  ``|score|``) comes from numpy's selection on the values alone, elsewhere from ``topk``: the same
  mask either way, and the learner's step multiplies the weights by the selection directly
  (:func:`edge_popup_weights`), with the same values and gradient as ``weights * mask``.
* **Gradient** (paper, code): the top-k step passes the gradient straight through,
  ``dL/d|s| = dL/dmask = dL/dW_eff * W``; through ``|s|`` that is ``sign(s) * dL/dmask`` (code:
  the ranking is on ``scores.abs()`` inside autograd).
* **Every layer** (code, the Frankle-style FC and Conv2-8 models): every layer, the output layer
  included, has a mask at the same k.
* **Weights** (paper, Section 4 "strong" variant; code ``init: signed_constant``,
  ``scale_fan``): signed Kaiming constants, ``+-sqrt(2 / fan_in)`` (ReLU gain, fan-in mode), the
  signs those of the network's own initial draw (so one seed gives one sign pattern across
  families); scaled (``scale_fan=True``) by the fraction kept: ``+-sqrt(2 / (k * fan_in))``. The
  paper scales the fan by the fraction of weights kept; the reference code multiplies it by
  ``1 - prune_rate`` where its top-k keeps ``prune_rate`` -- the two agree at its default k = 0.5;
  for other k we follow the variance argument (kept fan-in ``k * fan_in``) -- UNVERIFIED which the
  authors ran at k != 0.5. ``weights="init"``: the network's initial (Glorot) weights, unscaled.
* **Scores' initialisation** (code): PyTorch's default layer init, Kaiming uniform with
  ``a = sqrt(5)``, i.e. uniform in ``+-1/sqrt(fan_in)``.
* **Optimiser** (code configs, FC/MNIST and Conv2-8/CIFAR-10 alike): SGD, learning rate 0.1,
  momentum 0.9 (not Nesterov), weight decay 1e-4 (coupled, on the scores), batch 128, 100 epochs,
  cosine learning-rate decay stepped once per epoch, ``lr_e = lr * (1 + cos(pi e / E)) / 2``, no
  warm-up.
* **Biases**: zero and unused (code: ``bias=False``). **Not reproduced**: the conv nets' non-affine
  batch norm of the reference code (our networks have none), and its data augmentation.
* **Keep fraction default** 0.5 (code: the README's example runs and ``scale_fan``'s agreement point;
  the paper sweeps k from 10% to 90%, its conv nets best near 30-70%).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import torch

from ..config import check_choice, check_range, no_hash, option
from .methods import MaskMethodConfig, ScoreMaskLearner, kept_count, register_mask_method, straight_through, \
    uniform_scores

Tensor = torch.Tensor

EDGE_POPUP_WEIGHTS = ("signed_constant", "init")
LR_SCHEDULES = ("cosine", "constant")


@dataclass(frozen=True, repr=False)
class EdgePopupConfig(MaskMethodConfig):
    """Edge-popup's settings (module docstring: each default and its source). ``iterations``, when
    set, replaces ``epochs`` as the run's length."""

    keep_fraction: float = option(0.5, "fraction of each layer's weights kept")
    weights: str = "signed_constant"
    scale_fan: bool = option(True, "scale the signed constants by the keep fraction")
    seed: int = 0
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = option(1e-4, "weight decay on the scores")
    lr_schedule: str = option("cosine", "learning-rate schedule, per epoch")
    batch_size: int = 128
    epochs: int = 100
    iterations: Optional[int] = None
    eval_every: Optional[int] = None  # iterations; None = once per epoch
    device: str = no_hash("auto")

    def validate(self) -> None:
        check_range("EdgePopupConfig", "keep_fraction", self.keep_fraction, 0.0, 1.0, lo_open=True)
        check_choice("EdgePopupConfig", "weights", self.weights, EDGE_POPUP_WEIGHTS)
        check_choice("EdgePopupConfig", "lr_schedule", self.lr_schedule, LR_SCHEDULES)
        self.check_training()


def _kth_largest_cpu(flat: Tensor, n: int) -> Tuple[float, bool]:
    """The ``n``-th largest entry of the CPU vector ``flat`` (0 < n < len) and whether an entry
    outside the top ``n`` equals it (a tie at the threshold). numpy's introselect on a copy of the
    values alone: the same value as ``topk(...).values.min()``, an order of magnitude faster
    (``topk`` selects (value, index) pairs)."""
    part = flat.detach().numpy().copy()
    cut = part.size - n
    part.partition(cut)  # part[:cut] <= part[cut] <= part[cut + 1:]
    threshold = part[cut]
    return float(threshold), bool(part[:cut].max() >= threshold)


def _kth_largest(flat: Tensor, n: int) -> Tuple[Tensor, bool]:
    """``_kth_largest_cpu`` elsewhere than on the CPU, from the smaller of the two partial
    selections of ``topk`` (faster than ``kthvalue``)."""
    total = flat.numel()
    if n <= total - n + 1:
        threshold = torch.topk(flat, n, sorted=False).values.min()
    else:
        threshold = -torch.topk(-flat, total - n + 1, sorted=False).values.min()
    return threshold, int((flat >= threshold).sum()) > n


def top_k_keep(values: Tensor, counts: List[int]) -> Tensor:
    """Boolean mask of ``values`` (K, *shape): in run i the ``counts[i]`` largest entries, ties at
    the threshold taken in flat-index order (the lowest first), so the mask is deterministic."""
    keep = torch.empty(values.shape, dtype=torch.bool, device=values.device)
    for i, n in enumerate(counts):
        flat, out = values[i].reshape(-1), keep[i].view(-1)
        total = flat.numel()
        if n >= total or n <= 0:
            out.fill_(n > 0)
            continue
        if flat.device.type == "cpu" and flat.dtype in (torch.float32, torch.float64):
            threshold, tied = _kth_largest_cpu(flat, n)
        else:
            threshold, tied = _kth_largest(flat, n)
        if not tied:
            torch.ge(flat, threshold, out=out)
            continue
        # ties at the threshold: of the entries equal to it, the lowest flat indices
        above = flat > threshold
        ties = flat == threshold
        need = n - int(above.sum())
        torch.logical_or(above, ties & (torch.cumsum(ties, 0) <= need), out=out)
    return keep


def top_k_mask(values: Tensor, counts: List[int]) -> Tensor:
    """0/1 mask of ``values`` (K, *shape): in run i the ``counts[i]`` largest entries, ties at the
    threshold taken in flat-index order (the lowest first)."""
    return top_k_keep(values, counts).to(values.dtype)


def edge_popup_mask(scores: Tensor, keep_fractions: List[float]) -> Tensor:
    """Edge-popup's mask of one layer's stacked ``scores`` (K, *shape), run i keeping
    ``keep_fractions[i]``: 0/1 values, gradient ``sign(score) * dL/dmask`` to every score."""
    numel = scores[0].numel()
    return straight_through(top_k_mask, scores.abs(), [kept_count(numel, k) for k in keep_fractions])


class _MaskedWeights(torch.autograd.Function):
    """``weights * edge_popup_mask(scores, ...)`` in one step: the forward multiplies the weights by
    the boolean top-k selection (no 0/1 float mask is made), the backward is the straight-through
    gradient through ``|score|``, ``(grad * weights) * sign(scores)`` -- the same operations, in
    the same order, as autograd takes through the composed version, so the same bits."""

    @staticmethod
    def forward(ctx, scores, weights, counts):
        ctx.save_for_backward(scores, weights)
        return weights * top_k_keep(scores.detach().abs(), counts)

    @staticmethod
    def backward(ctx, grad):
        scores, weights = ctx.saved_tensors
        return torch.mul(grad, weights).mul_(scores.sgn()), None, None


def edge_popup_weights(scores: Tensor, weights: Tensor, keep_fractions: List[float]) -> Tensor:
    """The effective weights ``weights * edge_popup_mask(scores, keep_fractions)`` of one layer's
    stacked runs, with the same values and gradient, computed in fewer passes (the learner's step)."""
    numel = scores[0].numel()
    return _MaskedWeights.apply(scores, weights, [kept_count(numel, k) for k in keep_fractions])


class EdgePopupLearner(ScoreMaskLearner):
    """K stacked edge-popup runs (they may differ in seed, weights and keep fraction)."""

    shared = ("lr", "momentum", "weight_decay", "lr_schedule", "batch_size")

    def frozen_weights(self, config: EdgePopupConfig, init: Dict[str, Tensor]) -> Dict[str, Tensor]:
        if config.weights == "init":
            return init
        out = {}
        for layer in self.arch.layers:
            fan = layer.fans[0] * (config.keep_fraction if config.scale_fan else 1.0)
            std = math.sqrt(2.0 / fan)
            w = init[layer.name]
            out[layer.name] = torch.where(w >= 0, torch.full_like(w, std), torch.full_like(w, -std))
        return out

    def initial_scores(self, config, layer, gen) -> Tensor:
        return uniform_scores(layer.shape, 1.0 / math.sqrt(layer.fans[0]), gen)

    def mask(self, name: str, scores: Tensor) -> Tensor:
        return edge_popup_mask(scores, [c.keep_fraction for c in self.configs])

    def effective(self) -> Dict[str, Tensor]:
        fractions = [c.keep_fraction for c in self.configs]
        return {n: edge_popup_weights(s, self.w[n], fractions) for n, s in self.scores.items()}

    def make_optimizer(self, params, config: EdgePopupConfig) -> torch.optim.Optimizer:
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)

    def learning_rate(self, it: int) -> Optional[float]:
        c = self.configs[0]
        if c.lr_schedule == "constant":
            return c.lr
        epoch = it // self.spe
        return 0.5 * (1.0 + math.cos(math.pi * epoch / self.epochs)) * c.lr


register_mask_method("edge_popup", EdgePopupConfig, EdgePopupLearner,
                     "Ramanujan et al. 2020: the top keep_fraction of |score| per layer, straight-through gradient")
