"""The store's files: atomic writes, the tidy CSV formats, and tensor files checked by SHA-256.

Every file is written atomically (:mod:`lt_core.atomic`: a temporary file in the same folder, then a
rename), so a reader sees either the old file or the new one, never half of one.

Tensor files (``init.pt``, ``final.pt``, ``masks.pt``, ``scores.pt``...) are written together by
:func:`write_tensors`, which then writes the folder's ``checksums.json``: the SHA-256 of each file's
bytes. :func:`read_tensors` checks a file against that record before loading it, so a file damaged
on disk (or a missing one) raises :class:`DamagedFileError` naming the file and the folder to delete
rather than feeding wrong numbers into a later round. Folders written before checksums existed
have no ``checksums.json``: their files are loaded without a check.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path
from typing import Dict, Iterable, List, Optional

import torch

from ..atomic import atomic_write, atomic_write_bytes, atomic_write_json, atomic_write_text  # noqa: F401 (re-exported)

METRIC_COLUMNS = ("run", "round", "iteration", "split", "metric", "value")
POINT_COLUMNS = ("criterion", "weights", "power", "weights_remaining", "train_acc", "test_acc")
CHECKSUMS = "checksums.json"


class StoreError(Exception):
    """Something in the results store cannot be read as a run; the message names the path."""


class DamagedFileError(StoreError):
    """A stored file is missing, unreadable, or differs from the SHA-256 recorded when it was written."""

    def __init__(self, path: Path, problem: str, folder: Path) -> None:
        self.path, self.folder = Path(path), Path(folder)
        super().__init__(f"{path}: {problem}; delete {folder} to recompute it")


def atomic_torch_save(path, obj) -> None:
    """``torch.save`` to ``path`` atomically (checkpoints; round tensors go through :func:`write_tensors`)."""
    atomic_write(path, lambda fh: torch.save(obj, fh))


def read_json(path) -> dict:
    with open(path) as fh:
        return json.load(fh)


def torch_load(path):
    return torch.load(path, map_location="cpu", weights_only=True)


# -- tidy CSV files --------------------------------------------------------------------------------

def _csv_text(columns, rows: Iterable[dict]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row[c] for c in columns])
    return buf.getvalue()


def metrics_csv(rows: Iterable[dict]) -> str:
    """The text of a ``metrics.csv``: one row per (run, round, iteration, split, metric)."""
    return _csv_text(METRIC_COLUMNS, rows)


def read_metrics_csv(path) -> List[dict]:
    """The typed rows of a ``metrics.csv``; a missing or malformed file raises :class:`DamagedFileError`
    naming it (the folder holding it is what to delete and recompute)."""
    path = Path(path)
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
        for row in rows:
            row["round"] = int(row["round"])
            row["iteration"] = int(row["iteration"])
            row["value"] = float(row["value"])
            if row.get("split") is None or row.get("metric") is None:
                raise ValueError("a row lacks its split or metric")
    except FileNotFoundError:
        raise DamagedFileError(path, "missing", path.parent) from None
    except (KeyError, TypeError, ValueError, csv.Error, UnicodeDecodeError) as exc:
        raise DamagedFileError(path, f"malformed metrics ({type(exc).__name__}: {exc})", path.parent) from None
    return rows


def write_points(path, rows: Iterable[dict]) -> None:
    """Write a one-shot supermask sweep's ``points.csv`` (one row per criterion, weights and power)."""
    atomic_write_text(path, _csv_text(POINT_COLUMNS, rows))


def read_points(path) -> List[dict]:
    """The rows of a ``points.csv`` with typed values; no file means no points yet."""
    if not Path(path).is_file():
        return []
    with open(path, newline="") as fh:
        return [{"criterion": r["criterion"], "weights": r["weights"], "power": int(r["power"]),
                 "weights_remaining": float(r["weights_remaining"]), "train_acc": float(r["train_acc"]),
                 "test_acc": float(r["test_acc"])} for r in csv.DictReader(fh)]


# -- tensor files and their checksums --------------------------------------------------------------

def write_tensors(folder, tensors: Dict[str, object]) -> None:
    """Write each ``tensors[name]`` to ``folder/<name>.pt``, then their SHA-256 to ``checksums.json``.

    The record lists exactly the files of this call (a round's tensors are written together), and
    is written after them, so a listed file was complete when it was recorded.
    """
    folder = Path(folder)
    record = {}
    for name, value in tensors.items():
        buf = io.BytesIO()
        torch.save(value, buf)
        data = buf.getvalue()
        atomic_write_bytes(folder / f"{name}.pt", data)
        record[f"{name}.pt"] = hashlib.sha256(data).hexdigest()
    atomic_write_json(folder / CHECKSUMS, {"sha256": record})


def read_checksums(folder) -> Optional[Dict[str, str]]:
    """``{file name: SHA-256}`` of a folder's tensor files, or ``None`` for a folder stored without a record."""
    folder = Path(folder)
    path = folder / CHECKSUMS
    if not path.is_file():
        return None
    try:
        return dict(read_json(path)["sha256"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DamagedFileError(path, f"unreadable checksum record ({exc})", folder) from None


def read_tensors(folder, name: str, *, required: bool = False):
    """The object stored in ``folder/<name>.pt``, checked against the folder's ``checksums.json``.

    Returns ``None`` when the folder has no such tensor file (a round without ``frozen.pt`` or
    ``start.pt``); raises :class:`DamagedFileError` when the file is recorded but missing, when
    ``required`` and it is missing, when its bytes differ from the recorded SHA-256, or when it
    cannot be loaded. Folders without a record (stored before checksums existed) are not verified.
    """
    folder = Path(folder)
    path = folder / f"{name}.pt"
    record = read_checksums(folder)
    listed = record is not None and path.name in record
    if not path.is_file():
        if listed or required:
            raise DamagedFileError(path, "missing", folder)
        return None
    if record is not None and not listed:
        if required:
            raise DamagedFileError(path, f"not listed in {CHECKSUMS}", folder)
        return None
    data = path.read_bytes()
    if listed and hashlib.sha256(data).hexdigest() != record[path.name]:
        raise DamagedFileError(path, "damaged (its SHA-256 differs from the one recorded when it was written)",
                               folder)
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: torch raises several kinds
        raise DamagedFileError(path, f"cannot be loaded ({type(exc).__name__})", folder) from None
