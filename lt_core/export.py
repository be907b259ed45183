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

from .store import RunDir


def _round_source(run_dir: RunDir, k: int) -> RunDir:
    if k == 0 and not run_dir.round_done(0):
        config = run_dir.config()
        if "trunk" in config:
            return RunDir(run_dir.path.parent / config["trunk"])
    return run_dir


def ticket_state_dict(run_dir, round_index: int) -> Dict[str, torch.Tensor]:
    """The ticket of round ``round_index`` of the run stored at ``run_dir``."""
    run = RunDir(run_dir)
    if not (run.path / "config.json").is_file():
        raise FileNotFoundError(f"{run.path}: not a run directory (no config.json)")
    src = _round_source(run, round_index)
    if not src.round_done(round_index):
        done = sorted(set(src.done_rounds()) | ({0} if src is not run else set()) | set(run.done_rounds()))
        raise ValueError(f"round {round_index}: not finished in {run.path}; finished rounds: "
                         f"{', '.join(map(str, done)) or 'none'}")
    start = src.load_tensors(round_index, "start") or src.load_tensors(round_index, "init")
    masks = src.load_tensors(round_index, "masks")
    out = {}
    for name, w in start["weights"].items():
        mask = masks[name].to(w.dtype)
        out[f"{name}.weight_orig"] = w * mask
        out[f"{name}.weight_mask"] = mask
        out[f"{name}.bias"] = start["biases"][name].clone()
    return out


def export_ticket(run_dir, round_index: int, out_path) -> Path:
    """Write :func:`ticket_state_dict` to ``out_path`` with ``torch.save``; returns the path."""
    from .store import atomic_torch_save

    sd = ticket_state_dict(run_dir, round_index)
    atomic_torch_save(Path(out_path), sd)
    return Path(out_path)
