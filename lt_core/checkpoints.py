"""Checkpoints: the resumable state of a round or a learned-mask stack, with its SHA-256 beside it.

A checkpoint is written atomically, then its digest to ``<checkpoint>.sha256``; reading checks the
one against the other, so a damaged, truncated or half-written checkpoint raises
:class:`lt_core.errors.DamagedFileError` and is never resumed from. Training loops write one when
stopped and every few minutes (:mod:`lt_core.steploop`); the results store drops it once the round
is finished.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import torch

from .atomic import atomic_write_bytes, atomic_write_text
from .errors import DamagedFileError

DIGEST_SUFFIX = ".sha256"  # a checkpoint's SHA-256 lies in <checkpoint>.sha256


def _digest_path(path: Path) -> Path:
    return path.with_name(path.name + DIGEST_SUFFIX)


def write_checkpoint(path, state) -> None:
    """``torch.save`` ``state`` to the checkpoint ``path`` atomically, then its SHA-256 to
    ``<path>.sha256``. A crash between the two leaves a digest that does not match: the checkpoint
    is then refused (the round restarts), never trusted."""
    path = Path(path)
    buf = io.BytesIO()
    torch.save(state, buf)
    data = buf.getvalue()
    atomic_write_bytes(path, data)
    atomic_write_text(_digest_path(path), f"{hashlib.sha256(data).hexdigest()}  {path.name}\n")


def read_checkpoint(path):
    """The checkpoint stored at ``path``, checked against ``<path>.sha256``; one that is missing, has
    no digest (written before checkpoints were checked), differs from it or cannot be loaded raises
    :class:`DamagedFileError` (``problem`` says which)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DamagedFileError(path, "missing", path.parent) from None
    try:
        recorded = _digest_path(path).read_text(encoding="utf-8").split()[0]
    except (FileNotFoundError, IndexError, UnicodeDecodeError):
        raise DamagedFileError(path, f"its SHA-256 was not recorded ({_digest_path(path).name} is missing or "
                                     "empty)", path.parent) from None
    if hashlib.sha256(data).hexdigest() != recorded:
        raise DamagedFileError(path, "its SHA-256 differs from the one recorded when it was written", path.parent)
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # recorded as written, yet not loadable: e.g. written by another torch
        raise DamagedFileError(path, f"cannot be loaded ({type(exc).__name__})", path.parent) from None


def remove_checkpoint(path) -> None:
    """Delete the checkpoint ``path`` and its digest (a finished round, or a refused checkpoint)."""
    path = Path(path)
    for p in (path, _digest_path(path)):
        p.unlink(missing_ok=True)
