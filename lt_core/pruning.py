"""Pruning (protocol section 3.1): masks from a criterion, and the per-layer schedule.

Masks are plain ``{layer_name: tensor}`` dicts. Within each layer a round prunes
``floor(prune_fraction * remaining)`` of the still-kept weights, those with the lowest criterion
score, ties broken by a seeded random key (the paper's layer-wise pruning). A criterion registered
with ``scope="network"`` ranks all layers together instead (see :func:`compute_masks`). Pruned
weights stay pruned: masks only shrink.
"""

from __future__ import annotations

import math
from typing import Dict, Mapping, Optional

import torch

from .archs import Arch
from .criteria import CRITERIA
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


def _checked_scores(criterion: str, layer: str, scores, kept: Tensor) -> Tensor:
    """``scores`` if they have the layer's shape and are finite where weights are kept.

    A NaN would rank above every number (so NaN weights were all kept) and an infinity ties with
    its likes: neither is a score, so a criterion returning one is refused by name.
    """
    if not isinstance(scores, torch.Tensor) or scores.shape != kept.shape:
        got = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
        raise ValueError(f"criterion {criterion!r} returned scores of shape {got} for layer {layer!r}; "
                         f"expected the layer's weight shape {tuple(kept.shape)}")
    bad = int((~torch.isfinite(scores.detach().cpu()) & kept).sum()) if scores.is_floating_point() else 0
    if bad:
        raise ValueError(f"criterion {criterion!r} returned {bad} non-finite score(s) (NaN or infinity) for kept "
                         f"weights of layer {layer!r}; scores must be finite numbers")
    return scores


def _copies(tensors):
    """Copies of a tensor or of a ``{layer: tensor}`` dict, handed to a criterion: user code that edits
    its arguments in place (``w_i.mul_(...)``) must not change the weights the next round starts from."""
    if isinstance(tensors, Mapping):
        return {name: t.clone() for name, t in tensors.items()}
    return tensors.clone()


def compute_masks(criterion: str, w_init: Mapping[str, Tensor], w_final: Mapping[str, Tensor],
                  prev_masks: Mapping[str, Tensor], prune_fractions: Mapping[str, float],
                  seed: int) -> Dict[str, Tensor]:
    """New masks after one pruning round.

    ``w_init``, ``w_final``, ``prev_masks`` are ``{layer_name: tensor}`` dicts (masks 0/1 or bool);
    ``prune_fractions`` gives, per layer, the fraction of the *remaining* weights to prune; ``seed``
    seeds the random tie-break (and the ``random`` criterion). Returns masks of the same shapes and
    dtypes as ``prev_masks``. Layers missing from ``prune_fractions`` are left as they are.

    A layer-wise criterion (the paper's) prunes ``floor(fraction * remaining)`` weights in each
    layer. A network-wide one (``scope="network"``) prunes the same total, the sum of those per-layer
    counts, but picks the lowest-scoring kept weights across all layers with a nonzero fraction at
    once: a layer can then lose more or fewer weights than its own count (all of them, even), and
    layers with fraction 0 keep all theirs.
    """
    crit = CRITERIA[criterion]
    unknown = sorted(set(prune_fractions) - set(prev_masks))
    if unknown:
        raise ValueError(f"compute_masks: prune_fractions names layer(s) {', '.join(map(repr, unknown))} that are "
                         f"not among the masks' layers ({', '.join(prev_masks)})")
    for label, given in (("w_init", w_init), ("w_final", w_final)):
        missing = sorted(set(prev_masks) - set(given))
        if missing:
            raise ValueError(f"compute_masks: {label} lacks layer(s) {', '.join(missing)}")
    wi, wf, kept, counts = {}, {}, {}, {}
    for layer, prev in prev_masks.items():
        fraction = float(prune_fractions.get(layer, 0.0))
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"compute_masks: prune_fractions[{layer!r}] = {fraction} is out of range [0, 1)")
        wi[layer], wf[layer] = w_init[layer].detach().cpu(), w_final[layer].detach().cpu()
        if wi[layer].shape != prev.shape or wf[layer].shape != prev.shape:
            raise ValueError(f"compute_masks: layer {layer!r} shapes differ: w_init {tuple(wi[layer].shape)}, "
                             f"w_final {tuple(wf[layer].shape)}, mask {tuple(prev.shape)}")
        kept[layer] = prev.detach().cpu().bool()
        counts[layer] = prune_count(int(kept[layer].sum()), fraction) if fraction > 0 else None
    if crit.scope == "network":
        drops = _network_drops(crit, wi, wf, kept, counts, seed)
    else:
        drops = {}
        for layer in prev_masks:
            scores = crit.fn(_copies(wi[layer]), _copies(wf[layer]), _copies(kept[layer]),
                             generator(seed, "criterion", layer))
            scores = _checked_scores(criterion, layer, scores, kept[layer])
            drops[layer] = lowest_kept(scores, kept[layer], counts[layer] or 0, generator(seed, "tiebreak", layer))
    return {layer: (kept[layer] & ~drops[layer]).to(dtype=prev.dtype, device=prev.device)
            for layer, prev in prev_masks.items()}


def _network_drops(crit, wi, wf, kept, counts, seed: int) -> Dict[str, Tensor]:
    """Weights a network-wide criterion prunes: the lowest-scoring kept ones over the pruned layers."""
    scores = crit.fn(_copies(wi), _copies(wf), _copies(kept), generator(seed, "criterion", "network"))
    if not isinstance(scores, Mapping) or set(scores) != set(kept):
        raise ValueError(f"criterion {crit.name!r} (scope 'network') must return a dict of scores for the layers "
                         f"{', '.join(kept)}; got {type(scores).__name__}"
                         + (f" for {', '.join(map(str, scores))}" if isinstance(scores, Mapping) else ""))
    pool = [layer for layer in kept if counts[layer] is not None]
    drops = {layer: torch.zeros_like(kept[layer]) for layer in kept}
    if not pool:
        return drops
    flat_scores = torch.cat([_checked_scores(crit.name, layer, scores[layer], kept[layer]).reshape(-1).double()
                             for layer in pool])
    flat_kept = torch.cat([kept[layer].reshape(-1) for layer in pool])
    flat_drop = lowest_kept(flat_scores, flat_kept, sum(counts[layer] for layer in pool),
                            generator(seed, "tiebreak", "network"))
    start = 0
    for layer in pool:
        n = kept[layer].numel()
        drops[layer] = flat_drop[start:start + n].reshape(kept[layer].shape)
        start += n
    return drops


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
