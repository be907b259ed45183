"""Where runs live: the results root, the run folders' names, and a run folder's rounds.

A run folder's name, ``<kind>-<arch>-<hash>``, is built in one place, :func:`lt_core.store.run_key`
(:mod:`.keys`), from the run's configs as the caller spelled them.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Dict, List, Optional

from .files import StoreError, atomic_write_json, atomic_write_text, metrics_csv, read_json, read_metrics_csv, read_tensors, \
    remove_checkpoint, write_tensors
from .ledger import append_entry

KINDS = ("train", "lottery", "supermask", "learnmask")
CHECKPOINT = "checkpoint.pt"
STACK_CHECKPOINT = ".learnmask-stack-{digest}.pt"  # learned masks trained as one stack: one checkpoint in the root


def stack_checkpoint(root, digest: str) -> Path:
    """The checkpoint of learned masks trained as one stack (``digest`` names the stack)."""
    return Path(root) / STACK_CHECKPOINT.format(digest=digest)


def stack_checkpoints(root) -> List[Path]:
    """Every learned-mask stack's checkpoint under the results root, the newest first."""
    return sorted(Path(root).glob(STACK_CHECKPOINT.format(digest="*")), key=lambda p: -p.stat().st_mtime)


def results_root(out: Optional[str] = None) -> Path:
    """``out``, else ``$LT_RESULTS_DIR``, else ``./results``. An empty path is refused (it would
    silently mean ``./results``)."""
    if out is not None and not str(out).strip():
        raise StoreError("results root: an empty path was given; name a folder (e.g. --out results)")
    return Path(out if out is not None else (os.environ.get("LT_RESULTS_DIR") or "results")).expanduser()


def check_writable(root) -> Path:
    """Make sure ``root`` is (or can be made) a folder this process can write in, before any work
    starts; a :class:`StoreError` names the path and the cause otherwise."""
    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise StoreError(f"results root {root}: is a file, not a folder; name a folder") from None
    except OSError as exc:
        raise StoreError(f"results root {root}: cannot be created ({exc.strerror or exc})") from None
    if not root.is_dir():
        raise StoreError(f"results root {root}: is not a folder; name a folder")
    try:
        probe = tempfile.NamedTemporaryFile(dir=root, prefix=".write-check-", delete=True)
        probe.write(b"x")
        probe.flush()
        probe.close()
    except OSError as exc:
        raise StoreError(f"results root {root}: cannot be written ({exc.strerror or exc})") from None
    return root


class RunDir:
    """One run's folder, as the engine writes it: ``config.json`` and ``round_<k>/`` folders.

    A round is finished when its ``summary.json`` exists; :meth:`save_round` writes it last.
    Reading whole runs (with a lottery's round 0 taken from its trunk) is :func:`lt_core.store.open_run`'s job.
    """

    def __init__(self, path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @property
    def name(self) -> str:
        return self.path.name

    def round_dir(self, k: int) -> Path:
        return self.path / f"round_{k:03d}"

    def checkpoint(self, k: Optional[int] = None) -> Path:
        """Where round ``k`` (a dense or lottery run) or the run itself (``None``: a learned mask trained
        alone) keeps its checkpoint while it is unfinished."""
        return (self.path if k is None else self.round_dir(k)) / CHECKPOINT

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

    def write_config(self, body: dict) -> None:
        """Write ``config.json`` once: a run's configuration never changes, so an existing one is kept.
        It records the initialisation rule the run was made with (``"init"``, see
        :data:`lt_core.models.INIT_SCHEME`)."""
        from ..models import INIT_SCHEME

        path = self.path / "config.json"
        if not path.is_file():
            atomic_write_json(path, {"init": INIT_SCHEME, **body})

    def extend_rounds(self, rounds: int) -> None:
        """Record that a lottery run was asked for ``rounds`` pruning rounds, if more than before: the
        round count is the one setting of a run that may grow (it is not part of the run's identity)."""
        config = self.config()
        if config.get("prune", {}).get("rounds", rounds) < rounds:
            atomic_write_json(self.path / "config.json", {**config, "prune": {**config["prune"], "rounds": rounds}})

    def save_round(self, k: int, tensors: Dict[str, dict], rows: List[dict], summary: dict) -> None:
        """Tensors and ``metrics.csv`` (with their checksums), a ledger line (:mod:`.ledger`), then
        ``summary.json``; drops the checkpoint."""
        d = self.round_dir(k)
        write_tensors(d, tensors, {"metrics.csv": metrics_csv(rows)})
        append_entry(self.path, {"round": k, "backend": summary.get("backend")})
        atomic_write_json(d / "summary.json", summary)  # last: marks the round finished
        remove_checkpoint(self.checkpoint(k))

    def save_learned(self, scores: Dict[str, object], rows: List[dict], summary: dict, entry: dict) -> None:
        """A learned supermask's files: ``scores.pt`` (with its checksum), ``metrics.csv``, a ledger line
        (``entry``), then ``summary.json``, written last: it marks the run finished."""
        write_tensors(self.path, {"scores": scores})
        atomic_write_text(self.path / "metrics.csv", metrics_csv(rows))
        append_entry(self.path, entry)
        atomic_write_json(self.path / "summary.json", summary)

    def load_tensors(self, k: int, name: str) -> Optional[dict]:
        """Round ``k``'s ``<name>.pt``, checked (see :func:`lt_core.store.read_tensors`); ``None`` if absent."""
        return read_tensors(self.round_dir(k), name)

    def summary(self, k: int) -> dict:
        return read_json(self.round_dir(k) / "summary.json")

    def rows(self, k: int) -> List[dict]:
        return read_metrics_csv(self.round_dir(k) / "metrics.csv")

    def config(self) -> dict:
        return read_json(self.path / "config.json")
