"""Layer-wise pruning (protocol section 3.1): masks from a criterion, and the per-layer schedule.

Masks are plain ``{layer_name: tensor}`` dicts. Within each layer a round prunes
``floor(prune_fraction * remaining)`` of the still-kept weights, those with the lowest criterion
score, ties broken by a seeded random key. Pruned weights stay pruned: masks only shrink.
"""

from __future__ import annotations

import math
from typing import Dict, Mapping, Optional

import torch

from . import criteria
from .models import Arch
from .seeding import generator

Tensor = torch.Tensor


def prune_count(remaining: int, prune_fraction: float) -> int:
    """How many of ``remaining`` kept weights one round prunes: ``floor(prune_fraction * remaining)``."""
    return int(math.floor(prune_fraction * remaining))


def lowest_kept(scores: Tensor, kept: Tensor, count: int, gen: torch.Generator) -> Tensor:
    """Boolean tensor marking the ``count`` kept positions with the lowest score (random tie-break)."""
    flat_kept = kept.reshape(-1)
    idx = flat_kept.nonzero().squeeze(1)
    drop = torch.zeros_like(flat_kept)
    if count <= 0:
        return drop.reshape(kept.shape)
    order = torch.argsort(torch.rand(idx.numel(), generator=gen, dtype=torch.float64))
    order = order[torch.argsort(scores.reshape(-1)[idx][order].double(), stable=True)]
    drop[idx[order[:count]]] = True
    return drop.reshape(kept.shape)


def compute_masks(criterion: str, w_init: Mapping[str, Tensor], w_final: Mapping[str, Tensor],
                  prev_masks: Mapping[str, Tensor], prune_fractions: Mapping[str, float],
                  seed: int) -> Dict[str, Tensor]:
    """New masks after one pruning round.

    ``w_init``, ``w_final``, ``prev_masks`` are ``{layer_name: tensor}`` dicts (masks 0/1 or bool);
    ``prune_fractions`` gives, per layer, the fraction of the *remaining* weights to prune; ``seed``
    seeds the random tie-break (and the ``random`` criterion). Returns masks of the same shapes and
    dtypes as ``prev_masks``. Layers missing from ``prune_fractions`` are left as they are.
    """
    crit = criteria.get_criterion(criterion)
    for label, given in (("w_init", w_init), ("w_final", w_final)):
        missing = sorted(set(prev_masks) - set(given))
        if missing:
            raise ValueError(f"compute_masks: {label} lacks layer(s) {', '.join(missing)}")
    out = {}
    for layer, prev in prev_masks.items():
        fraction = float(prune_fractions.get(layer, 0.0))
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"compute_masks: prune_fractions[{layer!r}] = {fraction} is out of range [0, 1)")
        wi, wf = w_init[layer].detach().cpu(), w_final[layer].detach().cpu()
        if wi.shape != prev.shape or wf.shape != prev.shape:
            raise ValueError(f"compute_masks: layer {layer!r} shapes differ: w_init {tuple(wi.shape)}, "
                             f"w_final {tuple(wf.shape)}, mask {tuple(prev.shape)}")
        kept = prev.detach().cpu().bool()
        count = prune_count(int(kept.sum()), fraction)
        scores = crit.fn(wi, wf, kept, generator(seed, "criterion", layer))
        drop = lowest_kept(scores, kept, count, generator(seed, "tiebreak", layer))
        new = kept & ~drop
        out[layer] = new.to(dtype=prev.dtype, device=prev.device)
    return out


def layer_prune_fractions(arch: Arch, conv: Optional[float] = None, fc: Optional[float] = None,
                          output: Optional[float] = None) -> Dict[str, float]:
    """Per-layer prune fraction of one round: the architecture's protocol values, overridable per kind."""
    given = {"conv": conv, "fc": fc, "output": output}
    return {layer.name: (given[layer.kind] if given[layer.kind] is not None else arch.prune_fractions[layer.kind])
            for layer in arch.layers}


def keep_fractions_after(arch: Arch, prune_fractions: Mapping[str, float], rounds: int) -> Dict[str, float]:
    """Exact per-layer fraction of weights kept after ``rounds`` rounds (applying the floor each round)."""
    out = {}
    for layer in arch.layers:
        kept = layer.numel
        for _ in range(rounds):
            kept -= prune_count(kept, prune_fractions[layer.name])
        out[layer.name] = kept / layer.numel
    return out


def remaining(masks: Mapping[str, Tensor]) -> Dict[str, float]:
    """Per-layer fraction of weights kept, plus ``"overall"`` over all maskable weights."""
    per = {k: float(m.float().mean()) for k, m in masks.items()}
    total = sum(m.numel() for m in masks.values())
    per["overall"] = sum(float(m.float().sum()) for m in masks.values()) / total
    return per
