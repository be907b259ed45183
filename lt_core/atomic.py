"""Atomic file writes: a temporary file in the same folder, flushed to disk, then renamed over the
target, so a reader sees the old file or the new one and never half of one, and a failed write
(full disk, no permission, an exception in the writer) leaves nothing behind.

The temporary file is created with mode ``0666`` less the process's umask, as ``open()`` would
create the target (``0644`` under the usual umask ``022``): a store shared between users (a Dask
cluster's workers, a second reader) can read what is written. An error of the file system (a full
disk, a read-only one) names the file that was being written.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import BinaryIO, Callable, Tuple

FILE_MODE = 0o666  # before the umask, as open() and the shell create files


def _create_temporary(path: Path) -> Tuple[str, int]:
    """Create (exclusively) a fresh temporary file beside ``path``: its name and an open descriptor."""
    while True:
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return tmp, os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_BINARY", 0), FILE_MODE)
        except FileExistsError:
            continue


def atomic_write(path, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write(fh)`` on a binary file that becomes ``path`` only once it is complete.

    An :class:`OSError` of the file system that names no file (``[Errno 28] No space left on
    device`` from a write) or names the temporary file is raised again naming ``path``.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp, fd = _create_temporary(path)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno is not None and exc.filename in (None, tmp):
            raise OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(path)) from exc
        raise


def atomic_write_bytes(path, data: bytes) -> None:
    atomic_write(path, lambda fh: fh.write(data))


def atomic_write_text(path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")
