"""The store's errors: every one names the path it is about (and, for a damaged file, the folder to delete)."""

from __future__ import annotations

from pathlib import Path


class StoreError(Exception):
    """Something in the results store cannot be read as a run; the message names the path."""


class DamagedFileError(StoreError):
    """A stored file is missing, unreadable, or differs from the SHA-256 recorded when it was written."""

    def __init__(self, path: Path, problem: str, folder: Path) -> None:
        self.path, self.folder, self.problem = Path(path), Path(folder), problem
        super().__init__(f"{path}: {problem}; delete {folder} to recompute it")


class UnreadableJSONError(DamagedFileError, ValueError):
    """A stored JSON file (``config.json``, ``summary.json``...) that does not parse; still a
    :class:`ValueError`, as :mod:`json`'s own error is, for callers that treat it as one."""
