"""Mask-1 policies (what kept weights start from) and mask-0 policies (what pruned weights do).

Both are pure functions of one layer's tensors and a seeded ``torch.Generator``, kept in the
registries :data:`MASK1_POLICIES` and :data:`MASK0_POLICIES`; user code adds its own with
:func:`register_mask1` and :func:`register_mask0`, with the signatures below. A policy returning a
tensor of the wrong shape raises a ``ValueError`` naming the policy. Policies are called with copies
of the run's tensors (:func:`apply_mask1`, :func:`apply_mask0`), so one that edits its arguments in
place changes nothing the run keeps.

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
from typing import Callable, Optional, Tuple

import torch

from .errors import ConfigError
from .registry import Registry

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


MASK1_POLICIES: Registry[Mask1Policy] = Registry("mask-1 policy", "mask1")
for _policy in [
    Mask1Policy("rewind", rewind, "kept weights restart from their initial values (the lottery ticket)"),
    Mask1Policy("reinit", reinit, "all weights of the layer shuffled: a fresh draw from the init distribution"),
    Mask1Policy("reshuffle", reshuffle, "initial values permuted among the kept positions"),
    Mask1Policy("constant", constant, "+-alpha (layer's init std) with random signs"),
    Mask1Policy("signed_reinit", signed_reinit, "reinit, but each weight keeps its original sign"),
    Mask1Policy("signed_reshuffle", signed_reshuffle, "reshuffle, but each weight keeps its original sign"),
    Mask1Policy("signed_constant", signed_constant, "alpha times each weight's original sign"),
]:
    MASK1_POLICIES.add(_policy.name, _policy)


def _check_shape(kind: str, name: str, what: str, got, want: Tensor) -> None:
    if not isinstance(got, torch.Tensor) or got.shape != want.shape:
        shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
        raise ValueError(f"{kind} policy {name!r} returned {what} of shape {shape}; expected the layer's weight "
                         f"shape {tuple(want.shape)}")


def register_mask1(name: str, fn: Callable, description: str) -> Mask1Policy:
    """Make the mask-1 policy ``fn(w, mask, alpha, gen) -> starting weights`` available under ``name``
    wherever a built-in one is (``PruneConfig(mask1=name)``, the CLI's ``--mask1``, the dashboard's
    menu, the results store). Arguments as in the module docstring; the result has ``w``'s shape.
    A name already registered raises :class:`~lt_core.errors.ConfigError`.
    """
    if not callable(fn):
        raise ConfigError(f"register_mask1: fn of {name!r} is not callable (got {type(fn).__name__})")
    return MASK1_POLICIES.add(name, Mask1Policy(name, fn, description))


def apply_mask1(name: str, w: Tensor, mask: Tensor, alpha: float, gen: torch.Generator) -> Tensor:
    out = MASK1_POLICIES[name].fn(w.clone(), mask.bool().clone(), alpha, gen)
    _check_shape("mask-1", name, "starting weights", out, w)
    return out


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


MASK0_POLICIES: Registry[Mask0Policy] = Registry("mask-0 policy", "mask0")
for _policy in [
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
]:
    MASK0_POLICIES.add(_policy.name, _policy)
del _policy


def register_mask0(name: str, fn: Callable, description: str, *, freezes: bool = True) -> Mask0Policy:
    """Make the mask-0 policy ``fn(w_i, w_f, start, mask, prev_mask, prev_frozen, gen) -> (start, frozen)``
    available under ``name`` wherever a built-in one is (``PruneConfig(mask0=name)``, the CLI's
    ``--mask0``, the dashboard's menu, the results store). Arguments as in the module docstring;
    both results have the layer's weight shape. ``freezes=False`` declares that pruned weights
    contribute nothing (the returned ``frozen`` is then ignored and the faster zero path trains).
    A name already registered raises :class:`~lt_core.errors.ConfigError`.
    """
    if not callable(fn):
        raise ConfigError(f"register_mask0: fn of {name!r} is not callable (got {type(fn).__name__})")
    return MASK0_POLICIES.add(name, Mask0Policy(name, fn, description, bool(freezes)))


def apply_mask0(name: str, w_i: Tensor, w_f: Tensor, start: Tensor, mask: Tensor, prev_mask: Tensor,
                prev_frozen: Optional[Tensor], gen: torch.Generator) -> Tuple[Tensor, Tensor]:
    out = MASK0_POLICIES[name].fn(w_i.clone(), w_f.clone(), start.clone(), mask.bool().clone(),
                                  prev_mask.bool().clone(), None if prev_frozen is None else prev_frozen.clone(), gen)
    if not isinstance(out, tuple) or len(out) != 2:
        raise ValueError(f"mask-0 policy {name!r} returned {type(out).__name__}; expected a pair (start, frozen)")
    _check_shape("mask-0", name, "start", out[0], start)
    _check_shape("mask-0", name, "frozen", out[1], start)
    return out
