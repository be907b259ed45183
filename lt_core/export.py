"""Export a round's ticket as a plain PyTorch ``state_dict``.

The ticket is the sparse subnetwork a round trained from: its starting weights with pruned
entries zeroed, plus the masks. The keys follow ``torch.nn.utils.prune``'s convention
(``fc1.weight_orig``, ``fc1.weight_mask``, ``fc1.bias``), so the file loads into a standard
``torch.nn`` model of the architecture (see :func:`lt_core.models.torch_module` or the README)
after ``torch.nn.utils.prune.identity(layer, "weight")`` on each layer, with no lt_core import.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict

import torch

from .store import StoreError, atomic_torch_save, open_run


def ticket_state_dict(run_dir, round_index: int) -> Dict[str, torch.Tensor]:
    """The ticket of round ``round_index`` of the run stored at ``run_dir`` (round 0: its dense trunk's)."""
    finished = open_run(run_dir).round(round_index)
    start, masks = finished.start(), finished.load("masks")
    out = {}
    for name, w in start["weights"].items():
        mask = masks[name].to(w.dtype)
        out[f"{name}.weight_orig"] = w * mask
        out[f"{name}.weight_mask"] = mask
        out[f"{name}.bias"] = start["biases"][name].clone()
    return out


def export_ticket(run_dir, round_index: int, out_path) -> Path:
    """Write :func:`ticket_state_dict` to ``out_path`` with ``torch.save``; returns the path."""
    out_path = Path(out_path)
    if out_path.is_dir():
        raise StoreError(f"export: {out_path} is a folder; give a file name such as {out_path / 'ticket.pt'}")
    sd = ticket_state_dict(run_dir, round_index)
    atomic_torch_save(out_path, sd)
    return out_path
