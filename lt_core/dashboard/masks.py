"""What the mask view shows of one stored round: which weights survive, per pixel, per unit and
per layer, and how many of the kept weights changed sign during training."""

from __future__ import annotations

import torch

from lt_core.store import RunDir


def mask_details(run_path, k: int) -> dict:
    """What the mask view shows for round ``k`` stored under ``run_path``.

    * ``picture``: for a first layer fed by 28x28 images, how many of each input pixel's outgoing
      weights survive (a 28x28 list of lists), else None;
    * ``per_unit``: per layer, the fraction kept of each output unit's weights (filters of a conv
      layer, neurons of a dense layer);
    * ``remaining``: per layer, the fraction of weights kept;
    * ``sign_flips``: per layer, the fraction of kept weights whose sign differs between the
      round's initial weights w_i and its final weights w_f; ``sign_flips_overall`` over all layers.
    """
    rd = RunDir(run_path)
    masks = rd.load_tensors(k, "masks")
    if masks is None:
        raise FileNotFoundError(f"{rd.round_dir(k)} has no masks.pt")
    init = rd.load_tensors(k, "init")
    final = rd.load_tensors(k, "final")
    masks = {n: m.bool() for n, m in masks.items()}
    first = next(iter(masks))
    picture = None
    m0 = masks[first]
    if m0.dim() == 2 and m0.shape[1] == 784:
        picture = m0.sum(0).reshape(28, 28).tolist()
    per_unit = {n: m.reshape(m.shape[0], -1).float().mean(1).tolist() for n, m in masks.items()}
    remaining = {n: float(m.float().mean()) for n, m in masks.items()}
    flips, total_flips, total_kept = {}, 0, 0
    if init is not None and final is not None:
        for n, m in masks.items():
            wi, wf = init["weights"][n], final["weights"][n]
            differ = (torch.sign(wi) != torch.sign(wf)) & m
            kept = int(m.sum())
            nf = int(differ.sum())
            flips[n] = nf / kept if kept else 0.0
            total_flips += nf
            total_kept += kept
    return {"round": k, "picture": picture, "per_unit": per_unit, "remaining": remaining, "sign_flips": flips,
            "sign_flips_overall": (total_flips / total_kept) if total_kept else None,
            "layers": list(masks), "fan_out": int(m0.shape[0])}
