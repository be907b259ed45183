"""Mask-1 policies (what kept weights start from) and mask-0 policies (what pruned weights do).

Both are pure functions of one layer's tensors and a seeded ``torch.Generator``.

Mask-1 (protocol section 4): ``fn(w, mask, alpha, gen) -> new starting weights`` where ``w`` is
the layer's previous starting weights (round k-1's transformed init, protocol 9.3), ``mask`` the
new boolean mask and ``alpha`` the standard deviation of the layer's *original* (round-0)
initialisation, the magnitude of the constant policies ("the standard deviation of each layer's
original initialization"; the original code recomputes it from each round's init, which is the
same in round 1).

Mask-0 (protocol section 5): ``fn(w_i, w_f, start, mask, prev_mask, prev_frozen, gen) ->
(start, frozen)``. The network computes with ``w * mask + frozen``, where ``frozen`` is zero at
kept positions and holds the fixed value of each pruned weight; gradients never reach pruned
positions, so frozen weights stay bit-identical whatever the optimiser does. "Moved toward zero"
is ``|w_i| > |w_f|`` with ``w_i``, ``w_f`` the previous round's initial and (effective) final
weights, as in the original code. Choice, named here: the rule decides the frozen value of the
weights pruned *this* round; weights pruned in earlier rounds did not train since, so they keep
the frozen value they already had.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import torch

Tensor = torch.Tensor


def _shuffle_all(w: Tensor, gen: torch.Generator) -> Tensor:
    flat = w.reshape(-1)
    return flat[torch.randperm(flat.numel(), generator=gen)].reshape(w.shape)


def _shuffle_kept(w: Tensor, mask: Tensor, gen: torch.Generator) -> Tensor:
    out = w.clone().reshape(-1)
    idx = mask.reshape(-1).nonzero().squeeze(1)
    out[idx] = out[idx[torch.randperm(idx.numel(), generator=gen)]]
    return out.reshape(w.shape)


def rewind(w, mask, alpha, gen):
    return w.clone()


def reinit(w, mask, alpha, gen):
    return _shuffle_all(w, gen)


def reshuffle(w, mask, alpha, gen):
    return _shuffle_kept(w, mask, gen)


def constant(w, mask, alpha, gen):
    return _shuffle_all(alpha * torch.sign(w), gen)


def signed_reinit(w, mask, alpha, gen):
    return _shuffle_all(w, gen).abs() * torch.sign(w)


def signed_reshuffle(w, mask, alpha, gen):
    return torch.where(mask, _shuffle_kept(w, mask, gen).abs() * torch.sign(w), w)


def signed_constant(w, mask, alpha, gen):
    return alpha * torch.sign(w)


@dataclass(frozen=True)
class Mask1Policy:
    name: str
    fn: Callable
    description: str


MASK1_REGISTRY: Dict[str, Mask1Policy] = {p.name: p for p in [
    Mask1Policy("rewind", rewind, "kept weights restart from their initial values (the lottery ticket)"),
    Mask1Policy("reinit", reinit, "all weights of the layer shuffled: a fresh draw from the init distribution"),
    Mask1Policy("reshuffle", reshuffle, "initial values permuted among the kept positions"),
    Mask1Policy("constant", constant, "+-alpha (layer's init std) with random signs"),
    Mask1Policy("signed_reinit", signed_reinit, "reinit, but each weight keeps its original sign"),
    Mask1Policy("signed_reshuffle", signed_reshuffle, "reshuffle, but each weight keeps its original sign"),
    Mask1Policy("signed_constant", signed_constant, "alpha times each weight's original sign"),
]}
MASK1_POLICIES = tuple(MASK1_REGISTRY)


def apply_mask1(name: str, w: Tensor, mask: Tensor, alpha: float, gen: torch.Generator) -> Tensor:
    if name not in MASK1_REGISTRY:
        raise ValueError(f"mask1: unknown value {name!r}; allowed values: {', '.join(MASK1_POLICIES)}")
    return MASK1_REGISTRY[name].fn(w, mask.bool(), alpha, gen)


# -- mask-0 --------------------------------------------------------------------------------------

def _toward_zero(w_i: Tensor, w_f: Tensor) -> Tensor:
    return w_i.abs() > w_f.abs()


def _freeze(start: Tensor, newly: Tensor, zero_new: Tensor, prev_frozen: Optional[Tensor],
            prev_pruned: Tensor) -> Tensor:
    """Frozen values: newly pruned -> 0 where ``zero_new`` else their start value; older -> as before."""
    frozen = torch.where(newly & ~zero_new, start, torch.zeros_like(start))
    if prev_frozen is not None:
        frozen = torch.where(prev_pruned, prev_frozen, frozen)
    return frozen


def mask0_zero(w_i, w_f, start, mask, prev_mask, prev_frozen, gen):
    return start, torch.zeros_like(start)


def mask0_freeze_init(w_i, w_f, start, mask, prev_mask, prev_frozen, gen):
    newly, prev_pruned = prev_mask & ~mask, ~prev_mask
    return start, _freeze(start, newly, torch.zeros_like(mask), prev_frozen, prev_pruned)


def mask0_freeze_init_zero_mask(w_i, w_f, start, mask, prev_mask, prev_frozen, gen):
    newly, prev_pruned = prev_mask & ~mask, ~prev_mask
    return start, _freeze(start, newly, _toward_zero(w_i, w_f), prev_frozen, prev_pruned)


def mask0_freeze_init_zero_all(w_i, w_f, start, mask, prev_mask, prev_frozen, gen):
    toward = _toward_zero(w_i, w_f)
    newly, prev_pruned = prev_mask & ~mask, ~prev_mask
    new_start = torch.where(mask & toward, torch.zeros_like(start), start)
    return new_start, _freeze(start, newly, toward, prev_frozen, prev_pruned)


def mask0_freeze_init_zero_reshuffle(w_i, w_f, start, mask, prev_mask, prev_frozen, gen):
    newly, prev_pruned = prev_mask & ~mask, ~prev_mask
    count = int((newly & _toward_zero(w_i, w_f)).sum())
    idx = newly.reshape(-1).nonzero().squeeze(1)
    zero_new = torch.zeros(start.numel(), dtype=torch.bool)
    zero_new[idx[torch.randperm(idx.numel(), generator=gen)[:count]]] = True
    return start, _freeze(start, newly, zero_new.reshape(start.shape), prev_frozen, prev_pruned)


def mask0_freeze_init_zero_rev(w_i, w_f, start, mask, prev_mask, prev_frozen, gen):
    newly, prev_pruned = prev_mask & ~mask, ~prev_mask
    return start, _freeze(start, newly, w_f.abs() > w_i.abs(), prev_frozen, prev_pruned)


@dataclass(frozen=True)
class Mask0Policy:
    name: str
    fn: Callable
    description: str
    freezes: bool  # False only for "zero": pruned weights contribute nothing


MASK0_REGISTRY: Dict[str, Mask0Policy] = {p.name: p for p in [
    Mask0Policy("zero", mask0_zero, "pruned weights are 0 and stay 0 (the lottery ticket)", False),
    Mask0Policy("freeze_init", mask0_freeze_init, "pruned weights frozen at their initial value", True),
    Mask0Policy("freeze_init_zero_mask", mask0_freeze_init_zero_mask,
                "pruned weights that moved toward zero frozen at 0, the others at init (variant 1)", True),
    Mask0Policy("freeze_init_zero_all", mask0_freeze_init_zero_all,
                "variant 1's rule for all weights: kept ones that moved toward zero restart from 0 (variant 2)", True),
    Mask0Policy("freeze_init_zero_reshuffle", mask0_freeze_init_zero_reshuffle,
                "control: a random subset of pruned weights, as large as variant 1's, frozen at 0", True),
    Mask0Policy("freeze_init_zero_rev", mask0_freeze_init_zero_rev,
                "control: pruned weights that moved away from zero frozen at 0, the others at init", True),
]}
MASK0_POLICIES = tuple(MASK0_REGISTRY)


def apply_mask0(name: str, w_i: Tensor, w_f: Tensor, start: Tensor, mask: Tensor, prev_mask: Tensor,
                prev_frozen: Optional[Tensor], gen: torch.Generator) -> Tuple[Tensor, Tensor]:
    if name not in MASK0_REGISTRY:
        raise ValueError(f"mask0: unknown value {name!r}; allowed values: {', '.join(MASK0_POLICIES)}")
    return MASK0_REGISTRY[name].fn(w_i, w_f, start, mask.bool(), prev_mask.bool(), prev_frozen, gen)
