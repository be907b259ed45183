"""Mask criteria M(w_i, w_f) (protocol section 3.2): pure functions from tensors to keep-scores.

A criterion maps one layer's initial weights ``w_i``, final weights ``w_f``, the boolean tensor
``kept`` of still-unpruned positions and a ``torch.Generator`` to a score tensor of the same shape:
**higher means keep**. Only the scores at kept positions matter. Pruning (``lt_core.pruning``)
removes the lowest-scoring kept weights, ties broken by a seeded random key.

The two-sided criteria (``large_init_large_final``, ``small_init_small_final``) follow the
protocol's single-percentile rule: a weight survives only if it is in the top of the layer by
``|w_i|`` *and* in the top by ``|w_f|`` at one common cut. Pruning the bottom ``j`` of each
ranking and taking the union is the same as pruning by ``min(rank_i, rank_f)``, so the score is
that minimum rank (ranks among the kept weights, ties in each ranking broken randomly). Unlike the
original binary search over a continuous percentile, this reaches the requested prune count
exactly; the only freedom left, which of two weights sharing one min-rank goes, is the random
tie-break.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict

import torch

Tensor = torch.Tensor
ScoreFn = Callable[[Tensor, Tensor, Tensor, torch.Generator], Tensor]


@dataclass(frozen=True)
class Criterion:
    name: str
    formula: str
    fn: ScoreFn
    description: str


def ranks_among(values: Tensor, kept: Tensor, gen: torch.Generator) -> Tensor:
    """Ascending rank (0 = lowest) of every kept entry of ``values``; ties broken randomly.

    Pruned entries get rank -1. Equivalent to ``np.lexsort((random, values))`` over the kept entries.
    """
    flat = values.reshape(-1)
    idx = kept.reshape(-1).nonzero().squeeze(1)
    tiebreak = torch.rand(idx.numel(), generator=gen, dtype=torch.float64)
    order = torch.argsort(tiebreak)
    order = order[torch.argsort(flat[idx][order].double(), stable=True)]
    ranks = torch.full_like(flat, -1, dtype=torch.float64)
    ranks[idx[order]] = torch.arange(idx.numel(), dtype=torch.float64)
    return ranks.reshape(values.shape)


def _two_sided(a: Tensor, b: Tensor, kept: Tensor, gen: torch.Generator) -> Tensor:
    return torch.minimum(ranks_among(a, kept, gen), ranks_among(b, kept, gen))


def _same_sign(w_i: Tensor, w_f: Tensor) -> Tensor:
    return torch.sign(w_i) == torch.sign(w_f)


_DEFS = [
    ("large_final", "|w_f|", lambda wi, wf, k, g: wf.abs(), "keep the weights largest at the end of training (the lottery ticket)"),
    ("small_final", "-|w_f|", lambda wi, wf, k, g: -wf.abs(), "keep the weights smallest at the end of training"),
    ("large_init", "|w_i|", lambda wi, wf, k, g: wi.abs(), "keep the weights largest at initialisation"),
    ("small_init", "-|w_i|", lambda wi, wf, k, g: -wi.abs(), "keep the weights smallest at initialisation"),
    ("large_init_large_final", "min(a|w_f|, |w_i|)",
     lambda wi, wf, k, g: _two_sided(wi.abs(), wf.abs(), k, g),
     "keep weights large both at init and at the end (single-percentile rule)"),
    ("small_init_small_final", "-max(a|w_f|, |w_i|)",
     lambda wi, wf, k, g: _two_sided(-wi.abs(), -wf.abs(), k, g),
     "keep weights small both at init and at the end (single-percentile rule)"),
    ("magnitude_increase", "|w_f| - |w_i|", lambda wi, wf, k, g: wf.abs() - wi.abs(),
     "keep the weights whose magnitude grew most during training"),
    ("movement", "|w_f - w_i|", lambda wi, wf, k, g: (wf - wi).abs(),
     "keep the weights that moved most during training"),
    ("random", "random", lambda wi, wf, k, g: torch.rand(wi.shape, generator=g, dtype=torch.float64),
     "keep a seeded random subset (control)"),
    ("large_final_same_sign", "max(0, w_i*w_f/|w_i|)",
     lambda wi, wf, k, g: torch.where(_same_sign(wi, wf), wf.abs(), torch.zeros_like(wf)),
     "keep large final weights that kept their initial sign (supermask criterion)"),
    ("large_final_diff_sign", "max(0, -w_i*w_f/|w_i|)",
     lambda wi, wf, k, g: torch.where(_same_sign(wi, wf), torch.zeros_like(wf), wf.abs()),
     "keep large final weights that flipped sign (supermask control)"),
]

REGISTRY: Dict[str, Criterion] = {name: Criterion(name, formula, fn, desc) for name, formula, fn, desc in _DEFS}
CRITERIA = tuple(REGISTRY)
PAPER_CRITERIA = CRITERIA[:9]  # the nine criteria of the paper's Figure 3; the last two are for supermasks


def get_criterion(name: str) -> Criterion:
    if name not in REGISTRY:
        raise ValueError(f"criterion: unknown value {name!r}; allowed values: {', '.join(CRITERIA)}")
    return REGISTRY[name]


def score(name: str, w_init: Tensor, w_final: Tensor, kept: Tensor, gen: torch.Generator) -> Tensor:
    """Keep-scores of criterion ``name`` for one layer (higher = keep)."""
    return get_criterion(name).fn(w_init, w_final, kept.bool(), gen)
