"""Mask criteria M(w_i, w_f) (protocol section 3.2): pure functions from tensors to keep-scores.

The signature, for built-ins and for criteria registered with :func:`register_criterion`:

* ``scope="layer"`` (the paper's layer-wise pruning): ``fn(w_i, w_f, kept, gen) -> scores`` is
  called once per layer with that layer's initial weights ``w_i``, final weights ``w_f`` (float
  tensors of the weight's shape, on the CPU), the boolean tensor ``kept`` of still-unpruned
  positions and a ``torch.Generator`` seeded for (round, layer); it returns a tensor of the same
  shape.
* ``scope="network"`` (global pruning): ``fn(w_i, w_f, kept, gen) -> scores`` is called once per
  round with ``{layer_name: tensor}`` dicts of all layers and one generator; it returns a dict with
  a score tensor for every layer, each of that layer's shape. Scores are compared across layers, so
  they must share one scale. How many weights go is still set by the per-layer fractions (see
  :func:`lt_core.pruning.compute_masks`).

In both, **higher means keep**; only the scores at kept positions matter. Pruning
(``lt_core.pruning``) removes the lowest-scoring kept weights, ties broken by a seeded random key.
A returned score of the wrong shape, or a NaN or infinite score at a kept position, raises a
``ValueError`` naming the criterion and the layer. A criterion gets copies of the run's tensors, so
one that edits ``w_i`` or ``w_f`` in place changes nothing the run keeps.

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
from typing import Callable

import torch

from .errors import ConfigError
from .registry import Registry

Tensor = torch.Tensor
ScoreFn = Callable[..., object]  # see the module docstring for the two signatures
SCOPES = ("layer", "network")


@dataclass(frozen=True)
class Criterion:
    name: str
    formula: str  # how the score reads in the paper's notation, e.g. "|w_f|"
    fn: ScoreFn
    description: str
    scope: str = "layer"  # "layer": fn sees one layer at a time; "network": all layers at once


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

CRITERIA: Registry[Criterion] = Registry("criterion", "criterion")
for _name, _formula, _fn, _description in _DEFS:
    CRITERIA.add(_name, Criterion(_name, _formula, _fn, _description))
del _name, _formula, _fn, _description
# the nine criteria of the paper's Figure 3; the last two are for supermasks
PAPER_CRITERIA = tuple(name for name, *_ in _DEFS[:9])


def register_criterion(name: str, fn: ScoreFn, description: str, *, formula: str = "",
                       scope: str = "layer") -> Criterion:
    """Make the mask criterion ``fn`` available under ``name`` wherever a built-in one is: the Python API
    (``PruneConfig(criterion=name)``, ``compute_masks``, one-shot supermasks), the CLI's
    ``--criterion`` / ``--criteria``, the dashboard's menu (registered before the app is built) and the
    results store (the name is part of a run's identity).

    ``fn`` follows the signature of the module docstring for its ``scope`` (``"layer"``, the default,
    or ``"network"`` for global pruning); ``formula`` is how the score reads, for menus and tips.
    A name already registered raises :class:`~lt_core.errors.ConfigError`. Example::

        register_criterion("large_init_times_final", lambda wi, wf, kept, gen: (wi * wf).abs(),
                           "keep weights with a large |w_i * w_f|", formula="|w_i w_f|")
    """
    if not callable(fn):
        raise ConfigError(f"register_criterion: fn of {name!r} is not callable (got {type(fn).__name__})")
    if scope not in SCOPES:
        raise ConfigError(f"register_criterion: scope {scope!r} of {name!r} is unknown; allowed values: "
                          f"{', '.join(SCOPES)}")
    return CRITERIA.add(name, Criterion(name, formula or name, fn, description, scope))
