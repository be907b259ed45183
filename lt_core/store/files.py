"""The store's files: atomic writes, the tidy CSV formats, and tensor files checked by SHA-256.

Every file is written atomically (:mod:`lt_core.atomic`: a temporary file in the same folder, then a
rename), so a reader sees either the old file or the new one, never half of one.

Tensor files (``init.pt``, ``final.pt``, ``masks.pt``, ``scores.pt``...) are written together by
:func:`write_tensors`, which then writes the folder's ``checksums.json``: the SHA-256 of each file's
bytes. :func:`read_tensors` checks a file against that record before loading it, so a file damaged
on disk (or a missing one) raises :class:`DamagedFileError` naming the file and the folder to delete
rather than feeding wrong numbers into a later round. A round's ``metrics.csv`` is recorded there
too, so rows cut off or dropped are noticed. Folders written before checksums existed have no
``checksums.json``: their files are loaded without a check; but a folder whose result the run's
ledger records (:mod:`.ledger`, which came after checksums) was written with one, so a missing
record there is damage, not age.

Checkpoints of an interrupted round (:func:`write_checkpoint`) carry their SHA-256 beside them in
``<name>.sha256`` (the ``sha256sum`` format); :func:`read_checkpoint` refuses one that differs or has
none, and the training loop then discards it and starts the round afresh.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path
from typing import Dict, Iterable, List, Optional

import torch

from ..checkpoints import read_checkpoint, remove_checkpoint, write_checkpoint  # noqa: F401 (re-exported)
from ..errors import DamagedFileError, StoreError, UnreadableJSONError  # noqa: F401 (re-exported)
from .ledger import read_entries
from ..atomic import atomic_write, atomic_write_bytes, atomic_write_json, atomic_write_text  # noqa: F401 (re-exported)

METRIC_COLUMNS = ("run", "round", "iteration", "split", "metric", "value")
POINT_COLUMNS = ("criterion", "weights", "power", "weights_remaining", "train_acc", "test_acc")
CHECKSUMS = "checksums.json"


def atomic_torch_save(path, obj) -> None:
    """``torch.save`` to ``path`` atomically (exports; round tensors go through :func:`write_tensors`,
    checkpoints through :func:`write_checkpoint`)."""
    atomic_write(path, lambda fh: torch.save(obj, fh))


def read_json(path) -> dict:
    """The JSON file ``path``; one that does not parse raises :class:`UnreadableJSONError` naming it
    (the folder holding it is what to delete and recompute)."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise UnreadableJSONError(path, f"unreadable JSON ({exc})", path.parent) from None


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


def _csv_bytes(path: Path) -> bytes:
    """The bytes of a stored CSV file, which ends with a line break: one that does not was cut off
    mid-row (a number cut short still parses, so this is the check that catches it)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DamagedFileError(path, "missing", path.parent) from None
    if data and not data.endswith(b"\n"):
        raise DamagedFileError(path, "cut off (its last row is incomplete)", path.parent)
    return data


def read_metrics_csv(path) -> List[dict]:
    """The typed rows of a ``metrics.csv``, checked against its folder's ``checksums.json`` where
    that records it (rounds stored since it does); a missing, malformed, cut-off or changed file
    raises :class:`DamagedFileError` naming it (the folder holding it is what to delete and recompute)."""
    path = Path(path)
    data = _csv_bytes(path)
    try:
        rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))
        for row in rows:
            row["round"] = int(row["round"])
            row["iteration"] = int(row["iteration"])
            row["value"] = float(row["value"])
            if row.get("split") is None or row.get("metric") is None:
                raise ValueError("a row lacks its split or metric")
    except (KeyError, TypeError, ValueError, csv.Error, UnicodeDecodeError) as exc:
        raise DamagedFileError(path, f"malformed metrics ({type(exc).__name__}: {exc})", path.parent) from None
    # rows that read well may still be fewer than were written (whole rows cut off): the record says
    record = _checked_record(path.parent, path)
    if record is not None and path.name in record and hashlib.sha256(data).hexdigest() != record[path.name]:
        raise DamagedFileError(path, "damaged (its SHA-256 differs from the one recorded when it was written)",
                               path.parent)
    return rows


def write_points(path, rows: Iterable[dict]) -> None:
    """Write a one-shot supermask sweep's ``points.csv`` (one row per criterion, weights and power)."""
    atomic_write_text(path, _csv_text(POINT_COLUMNS, rows))


def read_points(path) -> List[dict]:
    """The rows of a ``points.csv`` with typed values; no file means no points yet. A cut-off or
    malformed file raises :class:`DamagedFileError` naming it and the folder to delete (whole rows
    missing are points not computed yet: the next sweep computes them again)."""
    path = Path(path)
    if not path.is_file():
        return []
    data = _csv_bytes(path)
    try:
        rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))
        if rows and any(c not in rows[0] for c in POINT_COLUMNS):
            raise KeyError(", ".join(c for c in POINT_COLUMNS if c not in rows[0]))
        return [{"criterion": r["criterion"], "weights": r["weights"], "power": int(r["power"]),
                 "weights_remaining": float(r["weights_remaining"]), "train_acc": float(r["train_acc"]),
                 "test_acc": float(r["test_acc"])} for r in rows]
    except (KeyError, TypeError, ValueError, csv.Error, UnicodeDecodeError) as exc:
        raise DamagedFileError(path, f"malformed points ({type(exc).__name__}: {exc})", path.parent) from None


# -- tensor files and their checksums --------------------------------------------------------------

def _torch_bytes(value) -> bytes:
    buf = io.BytesIO()
    torch.save(value, buf)
    return buf.getvalue()


def write_tensors(folder, tensors: Dict[str, object], texts: Optional[Dict[str, str]] = None) -> None:
    """Write each ``tensors[name]`` to ``folder/<name>.pt`` and each ``texts[file name]`` (a round's
    ``metrics.csv``) to ``folder/<file name>``, then their SHA-256 to ``checksums.json``.

    The record lists exactly the files of this call (a round's files are written together), and
    is written after them, so a listed file was complete when it was recorded.
    """
    folder = Path(folder)
    files = {f"{name}.pt": _torch_bytes(value) for name, value in tensors.items()}
    files.update({name: text.encode("utf-8") for name, text in (texts or {}).items()})
    record = {}
    for name, data in files.items():
        atomic_write_bytes(folder / name, data)
        record[name] = hashlib.sha256(data).hexdigest()
    atomic_write_json(folder / CHECKSUMS, {"sha256": record})


def read_checksums(folder) -> Optional[Dict[str, str]]:
    """``{file name: SHA-256}`` of a folder's tensor files, or ``None`` for a folder stored without a record."""
    folder = Path(folder)
    path = folder / CHECKSUMS
    if not path.is_file():
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            return dict(json.load(fh)["sha256"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DamagedFileError(path, f"unreadable checksum record ({exc})", folder) from None


def _recorded_in_ledger(folder: Path) -> bool:
    """Whether the run's ledger records the result stored in ``folder`` (a ``round_<k>`` folder, or a
    learned mask's run folder): such a result was written with a ``checksums.json``."""

    if folder.name.startswith("round_") and folder.name[6:].isdigit():
        k = int(folder.name[6:])
        return any(e.get("round") == k for e in read_entries(folder.parent))
    return any("round" in e for e in read_entries(folder))


def _checked_record(folder: Path, path: Path) -> Optional[Dict[str, str]]:
    """:func:`read_checksums` of ``folder``, where ``path`` is to be checked: a record missing from a
    folder whose result the ledger records raises :class:`DamagedFileError` (the file cannot be checked)."""
    record = read_checksums(folder)
    if record is None and _recorded_in_ledger(folder):
        raise DamagedFileError(path, f"cannot be checked, {CHECKSUMS} is missing from its folder (the run's "
                                     f"ledger.jsonl records this result as stored, with checksums)", folder)
    return record


def read_tensors(folder, name: str, *, required: bool = False):
    """The object stored in ``folder/<name>.pt``, checked against the folder's ``checksums.json``.

    Returns ``None`` when the folder has no such tensor file (a round without ``frozen.pt`` or
    ``start.pt``); raises :class:`DamagedFileError` when the file is recorded but missing, when
    ``required`` and it is missing, when its bytes differ from the recorded SHA-256, or when it
    cannot be loaded. Folders without a record (stored before checksums existed) are not verified,
    unless the run's ledger records their result (then the missing record is reported).
    """
    folder = Path(folder)
    path = folder / f"{name}.pt"
    record = _checked_record(folder, path)
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
