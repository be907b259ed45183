"""The project's errors: every bad input's, :class:`ConfigError`; a failed sweep's, :class:`SweepError`;
and the results store's and checkpoints', :class:`StoreError` and its kinds, each naming the path it
is about (and, for a damaged file, the folder to delete).

They live apart from the modules that raise them because many do: the registries (architectures,
criteria, mask policies) raise ConfigError too, and :mod:`lt_core.config` validates against those
registries; checkpoints (:mod:`lt_core.checkpoints`) and the store both raise DamagedFileError.
"""

from __future__ import annotations

from pathlib import Path


class ConfigError(ValueError):
    """A configuration value is invalid. The message names the field, the value and what is allowed."""


class SweepError(RuntimeError):
    """Some work units of a sweep failed; the message names each with its error (the others' results are stored)."""


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
