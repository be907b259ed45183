"""What the mask view shows of a mask: which weights survive, per input pixel, per unit and per
layer, and how many of the kept weights changed sign during training.

Three kinds of mask: a lottery round's stored mask (:func:`mask_details`), a one-shot supermask
recomputed from its dense run's (w_i, w_f) (:func:`oneshot_mask_details`) and a learned
supermask's expected mask sigma(score) (:func:`learned_mask_details`). A mask is a tensor of keep
values per weight: 0 or 1, or for a learned mask the probability of keeping the weight.
"""

from __future__ import annotations

from typing import Dict, Optional

import torch
from torch import Tensor

from lt_core.models import get_arch
from lt_core.store import RunDir, torch_load
from lt_core.supermask import one_shot_masks


def _details(masks: Dict[str, Tensor], init: Optional[Dict[str, Tensor]],
             final: Optional[Dict[str, Tensor]]) -> dict:
    """The mask view's data of ``masks`` (keep values in [0, 1] per weight).

    * ``picture``: for a first layer fed by 28x28 images, the fraction (%) of each input pixel's
      outgoing weights kept (a 28x28 list of lists; the paper's view of the first layer), else None;
    * ``per_unit``: per layer, the fraction kept of each output unit's weights (filters of a conv
      layer, neurons of a dense layer);
    * ``remaining``: per layer, the fraction of weights kept;
    * ``sign_flips``: per layer, the fraction of kept weights whose sign differs between the
      initial weights w_i and the final weights w_f (empty without both); ``sign_flips_overall``
      over all layers.
    """
    masks = {n: m.float() for n, m in masks.items()}
    first = next(iter(masks))
    m0 = masks[first]
    picture = None
    if m0.dim() == 2 and m0.shape[1] == 784:
        picture = (100 * m0.mean(0)).reshape(28, 28).tolist()
    per_unit = {n: m.reshape(m.shape[0], -1).mean(1).tolist() for n, m in masks.items()}
    remaining = {n: float(m.mean()) for n, m in masks.items()}
    flips, total_flips, total_kept = {}, 0, 0
    if init is not None and final is not None:
        for n, m in masks.items():
            kept = m > 0.5
            differ = (torch.sign(init[n]) != torch.sign(final[n])) & kept
            k, nf = int(kept.sum()), int(differ.sum())
            flips[n] = nf / k if k else 0.0
            total_flips += nf
            total_kept += k
    return {"picture": picture, "per_unit": per_unit, "remaining": remaining, "sign_flips": flips,
            "sign_flips_overall": (total_flips / total_kept) if total_kept else None, "layers": list(masks),
            "fan_out": int(m0.shape[0])}


def mask_details(run_path, k: int) -> dict:
    """The mask of lottery round ``k`` stored under ``run_path`` (see :func:`_details`)."""
    rd = RunDir(run_path)
    masks = rd.load_tensors(k, "masks")
    if masks is None:
        raise FileNotFoundError(f"{rd.round_dir(k)} has no masks.pt")
    init, final = rd.load_tensors(k, "init"), rd.load_tensors(k, "final")
    out = _details(masks, init and init["weights"], final and final["weights"])
    out["round"] = k
    return out


def oneshot_mask_details(trunk_path, arch: str, criterion: str, power: int, seed: int) -> dict:
    """The one-shot supermask of ``criterion`` at prune power ``power`` (each layer keeps
    base^power of its weights), computed as the engine does from the dense run at ``trunk_path``."""
    rd = RunDir(trunk_path)
    init, final = rd.load_tensors(0, "init"), rd.load_tensors(0, "final")
    if init is None or final is None:
        raise FileNotFoundError(f"{rd.round_dir(0)} has no trained dense network")
    masks = one_shot_masks(get_arch(arch), criterion, init["weights"], final["weights"], power, seed)
    out = _details(masks, init["weights"], final["weights"])
    out["power"] = power
    return out


def learned_mask_details(run_path) -> dict:
    """A learned supermask's expected mask: each weight kept with probability sigma(score)."""
    path = RunDir(run_path).path / "scores.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path.parent} has no scores.pt (the mask is still being learned)")
    scores = torch_load(path)
    return _details({n: torch.sigmoid(s.float()) for n, s in scores.items()}, None, None)
