"""The results store: one directory per run, named by a hash of its non-default configuration.

Layout under the results root (``--out``, else ``$LT_RESULTS_DIR``, else ``./results``)::

    train-fc-<hash>/            a dense run (also round 0 of every lottery run built on it)
        config.json
        round_000/ init.pt final.pt masks.pt metrics.csv summary.json
    lottery-fc-<hash>/          iterative pruning built on a dense run (its "trunk")
        config.json             (includes the trunk directory)
        round_001/ ... round_024/   init.pt start.pt final.pt masks.pt [frozen.pt] metrics.csv summary.json
        metrics.csv             all rounds' rows, rewritten after each round
    supermask-fc-<hash>/        one-shot supermask points of a dense run (points.csv)
    learnmask-fc-<hash>/        a learned supermask: scores.pt, metrics.csv, summary.json

Every file is written atomically (temporary file + rename). A round is finished when its
``summary.json`` exists; it is written last. Metric rows are tidy: ``run, round, iteration, split,
metric, value``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Dict, Iterable, List, Optional

import torch

METRIC_COLUMNS = ("run", "round", "iteration", "split", "metric", "value")


def results_root(out: Optional[str] = None) -> Path:
    return Path(out or os.environ.get("LT_RESULTS_DIR") or "results").expanduser()


def _atomic(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path, data: bytes) -> None:
    _atomic(path, lambda fh: fh.write(data))


def atomic_write_text(path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def atomic_torch_save(path, obj) -> None:
    _atomic(path, lambda fh: torch.save(obj, fh))


def read_json(path) -> dict:
    with open(path) as fh:
        return json.load(fh)


def torch_load(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def metrics_csv(rows: Iterable[dict]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(METRIC_COLUMNS)
    for row in rows:
        writer.writerow([row[c] for c in METRIC_COLUMNS])
    return buf.getvalue()


def read_metrics_csv(path) -> List[dict]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        row["round"] = int(row["round"])
        row["iteration"] = int(row["iteration"])
        row["value"] = float(row["value"])
    return rows


class RunDir:
    """One run's directory in the store."""

    def __init__(self, path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @property
    def name(self) -> str:
        return self.path.name

    def round_dir(self, k: int) -> Path:
        return self.path / f"round_{k:03d}"

    def round_done(self, k: int) -> bool:
        return (self.round_dir(k) / "summary.json").is_file()

    def done_rounds(self) -> List[int]:
        if not self.path.is_dir():
            return []
        out = []
        for child in self.path.iterdir():
            if child.name.startswith("round_") and (child / "summary.json").is_file():
                out.append(int(child.name[6:]))
        return sorted(out)

    def save_round(self, k: int, tensors: Dict[str, dict], rows: List[dict], summary: dict) -> None:
        d = self.round_dir(k)
        for name, value in tensors.items():
            atomic_torch_save(d / f"{name}.pt", value)
        atomic_write_text(d / "metrics.csv", metrics_csv(rows))
        atomic_write_json(d / "summary.json", summary)  # last: marks the round finished
        checkpoint = d / "checkpoint.pt"
        if checkpoint.exists():
            checkpoint.unlink()

    def load_tensors(self, k: int, name: str) -> Optional[dict]:
        path = self.round_dir(k) / f"{name}.pt"
        return torch_load(path) if path.is_file() else None

    def summary(self, k: int) -> dict:
        return read_json(self.round_dir(k) / "summary.json")

    def rows(self, k: int) -> List[dict]:
        return read_metrics_csv(self.round_dir(k) / "metrics.csv")

    def config(self) -> dict:
        return read_json(self.path / "config.json")
