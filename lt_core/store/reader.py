"""Reading runs back: :func:`open_run` gives one typed record per run folder, :func:`list_runs` a root's.

A record is a snapshot of what was finished when it was opened: the run's ``config.json`` (as a
dict), its finished rounds' summaries, and for a lottery run its trunk's round 0 as its own round 0.
Tensors are read from disk, checked against their SHA-256 (:func:`lt_core.store.read_tensors`),
each time they are asked for, so a record of a long run costs a few JSON files to open.

* ``train`` -> :class:`TrainRun`: round 0, the dense network;
* ``lottery`` -> :class:`LotteryRun`: round 0 from its trunk, then its pruning rounds 1..R;
* ``supermask`` -> :class:`SupermaskRun`: the one-shot supermask points of its trunk;
* ``learnmask`` -> :class:`LearnedMaskRun`: summary, learned scores and metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Dict, Iterable, List, Optional, Tuple

from .files import METRIC_COLUMNS, POINT_COLUMNS, DamagedFileError, StoreError, read_json, read_metrics_csv, \
    read_checkpoint, read_points, read_tensors
from .layout import KINDS, RunDir, stack_checkpoints

if TYPE_CHECKING:
    import pandas as pd

ROUND_TENSORS = ("init", "start", "final", "masks", "frozen")
REQUIRED_TENSORS = ("init", "final", "masks")  # every finished round has these; start and frozen only some
ROW_COLUMNS = ("run", "kind", "arch", "path", "criterion", "mask1", "mask0", "done", "total", "init")  # Run.row()

#: The initialisation rule of runs whose ``config.json`` names none: they were stored before the rule
#: was recorded, with weights of std sigma *before* truncation at +-2 sigma (realised std 0.88 sigma),
#: 12% smaller than TF 1.10's ``glorot_normal`` (:data:`lt_core.models.INIT_SCHEME`).
OLD_INIT = "glorot_normal_uncorrected"


def _frame(rows: List[dict], columns) -> pd.DataFrame:
    import pandas as pd  # here, not at the top: the engine and the CLI read runs without building frames

    return pd.DataFrame(rows, columns=list(columns))


def _read_record(path: Path, folder: Path) -> dict:
    try:
        return read_json(path)
    except ValueError as exc:
        raise DamagedFileError(path, f"unreadable JSON ({exc})", folder) from None


@dataclass(frozen=True)
class Round:
    """A finished round: its summary, and its metrics and tensors read when asked for.

    ``path`` is the round's folder; a lottery run's round 0 is its trunk's ``round_000``.
    """

    index: int
    path: Path
    summary: dict

    def load(self, name: str) -> Optional[dict]:
        """The round's ``name`` tensors, checked: ``init`` / ``start`` / ``final`` (``{"weights", "biases"}``
        per layer), ``masks`` (bool per layer) or ``frozen`` (values of pruned weights per layer).

        ``start`` and ``frozen`` exist only where the mask-0 policy needs them (else ``None``); a
        missing or damaged file raises :class:`DamagedFileError`.
        """
        if name not in ROUND_TENSORS:
            raise ValueError(f"Round.load: unknown tensor file {name!r}; allowed values: {', '.join(ROUND_TENSORS)}")
        return read_tensors(self.path, name, required=name in REQUIRED_TENSORS)

    def start(self) -> dict:
        """The weights training started from: ``start`` where the policy restarted some, else ``init``."""
        return self.load("start") or self.load("init")

    def metrics(self) -> pd.DataFrame:
        """The round's tidy metric rows (run, round, iteration, split, metric, value)."""
        return _frame(read_metrics_csv(self.path / "metrics.csv"), METRIC_COLUMNS)


@dataclass(frozen=True)
class Run:
    """What every record has: its folder, its ``config.json`` and its finished rounds (oldest first)."""

    kind: ClassVar[str] = ""
    path: Path
    config: dict
    rounds: Tuple[Round, ...] = ()

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def arch(self) -> str:
        return (self.config.get("model") or {}).get("arch") or self.name.split("-")[1]

    @property
    def init(self) -> str:
        """The initialisation rule the run was made with (:data:`OLD_INIT` where it names none)."""
        return self.config.get("init") or OLD_INIT

    @property
    def outdated(self) -> Optional[str]:
        """Why the run's numbers are not comparable with today's runs, in words (``None`` when they
        are): made with an earlier initialisation rule, or with an earlier revision of its mask
        method (:attr:`lt_core.supermask.MaskMethodConfig.revision`; a method not registered in this
        process cannot be told and counts as today's)."""
        from ..models import INIT_SCHEME

        if self.init != INIT_SCHEME:
            return f"old initialisation ({self.init})"
        method = self.config.get("method")
        if method:
            from ..supermask.methods import MASK_METHODS

            if method in MASK_METHODS:
                today, made = MASK_METHODS[method].config.revision, int(self.config.get("revision", 1))
                if made != today:
                    return f"old {method} rule (revision {made}; today's {today})"
        return None

    @property
    def current(self) -> bool:
        """Whether the run was made with today's rules (:attr:`outdated` is ``None``); other runs are
        never reused, drawn or summarised with today's (:func:`list_runs` leaves them out unless
        asked)."""
        return self.outdated is None

    @property
    def done(self) -> int:
        """Finished rounds (a lottery's round 0 included); points for a supermask sweep."""
        return len(self.rounds)

    @property
    def total(self) -> Optional[int]:
        """Rounds the run asked for (round 0 included); ``None`` where a run has no fixed end."""
        return None

    def round(self, index: int) -> Round:
        for r in self.rounds:
            if r.index == index:
                return r
        done = ", ".join(str(r.index) for r in self.rounds) or "none"
        raise ValueError(f"round {index}: not finished in {self.path}; finished rounds: {done}")

    def metrics(self) -> pd.DataFrame:
        """All finished rounds' tidy metric rows in one frame."""
        rows: List[dict] = []
        for r in self.rounds:
            rows += read_metrics_csv(r.path / "metrics.csv")
        return _frame(rows, METRIC_COLUMNS)

    def row(self) -> dict:
        """The run as one row of a listing (see :func:`lt_core.analysis.runs_frame`)."""
        prune = self.config.get("prune") or {}
        return {"run": self.name, "kind": self.kind, "arch": self.arch, "path": str(self.path),
                **{k: prune.get(k) for k in ("criterion", "mask1", "mask0")}, "done": self.done, "total": self.total,
                "init": self.init}


@dataclass(frozen=True)
class TrainRun(Run):
    """A dense run: round 0, shared by every lottery and supermask run with its settings."""

    kind: ClassVar[str] = "train"

    @property
    def total(self) -> int:
        return 1


@dataclass(frozen=True)
class LotteryRun(Run):
    """Iterative pruning: ``rounds`` holds the trunk's round 0 (when finished), then rounds 1..R."""

    kind: ClassVar[str] = "lottery"
    trunk: Optional[Path] = None

    @property
    def prune(self) -> dict:
        """The run's ``PruneConfig`` as stored: criterion, mask1, mask0, rounds, prune fractions."""
        return self.config.get("prune") or {}

    @property
    def total(self) -> int:
        return int(self.prune.get("rounds", 24)) + 1


@dataclass(frozen=True)
class SupermaskRun(Run):
    """One-shot supermask points of the dense run ``trunk`` (every sweep on that run adds to them)."""

    kind: ClassVar[str] = "supermask"
    trunk: Optional[Path] = None

    def points(self) -> pd.DataFrame:
        """One row per (criterion, weights, power): weights remaining, train and test accuracy."""
        return _frame(read_points(self.path / "points.csv"), POINT_COLUMNS)

    @property
    def done(self) -> int:
        return len(read_points(self.path / "points.csv"))


@dataclass(frozen=True)
class LearnedMaskRun(Run):
    """A learned supermask: ``summary`` (``None`` until finished), its scores and its metrics."""

    kind: ClassVar[str] = "learnmask"
    summary: Optional[dict] = None

    @property
    def done(self) -> int:
        return int(self.summary is not None)

    @property
    def total(self) -> int:
        return 1

    def scores(self) -> dict:
        """The learned scores per layer (the keep probability is their sigmoid), checked."""
        return read_tensors(self.path, "scores", required=True)

    def metrics(self) -> pd.DataFrame:
        """Training accuracy, one-sample test accuracy and expected keep fraction per evaluation point."""
        path = self.path / "metrics.csv"
        return _frame(read_metrics_csv(path) if path.is_file() else [], METRIC_COLUMNS)


RECORDS = {cls.kind: cls for cls in (TrainRun, LotteryRun, SupermaskRun, LearnedMaskRun)}


def _rounds(run: RunDir, indices: Iterable[int]) -> List[Round]:
    out = []
    for k in indices:
        folder = run.round_dir(k)
        out.append(Round(k, folder, _read_record(folder / "summary.json", folder)))
    return out


def open_run(path) -> Run:
    """The record of the run stored in folder ``path`` (a :class:`Run` subclass chosen by its kind)."""
    path = Path(path)
    config_path = path / "config.json"
    if not config_path.is_file():
        raise StoreError(f"{path}: not a run folder (no config.json); runs are the {', '.join(KINDS)} "
                         f"folders of a results root")
    config = _read_record(config_path, path)
    kind = config.get("kind") or path.name.split("-", 1)[0]
    if kind not in RECORDS:
        raise StoreError(f"{config_path}: unknown kind {kind!r}; allowed values: {', '.join(KINDS)}")
    run = RunDir(path)
    if kind == "train":
        return TrainRun(path, config, tuple(_rounds(run, [0] if run.round_done(0) else [])))
    if kind == "learnmask":
        summary_path = path / "summary.json"
        summary = _read_record(summary_path, path) if summary_path.is_file() else None
        return LearnedMaskRun(path, config, summary=summary)
    trunk = path.parent / config["trunk"] if config.get("trunk") else None
    if kind == "supermask":
        return SupermaskRun(path, config, trunk=trunk)
    rounds = _rounds(RunDir(trunk), [0]) if trunk is not None and RunDir(trunk).round_done(0) else []
    rounds += _rounds(run, [k for k in run.done_rounds() if k > 0])
    return LotteryRun(path, config, tuple(rounds), trunk=trunk)


def list_runs(root, kinds: Optional[Iterable[str]] = None, old: bool = False) -> List[Run]:
    """The records of every run under the results root ``root``, by folder name.

    ``kinds`` (e.g. ``["lottery"]``) keeps only runs of those kinds. Runs made under earlier rules
    (:attr:`Run.current` false: another initialisation rule, e.g. stored before the rule was
    corrected, or an earlier revision of a mask method) are left out unless ``old=True``; their
    records say why (:attr:`Run.outdated`). Folders without a
    ``config.json`` are not runs and are left out, and so are runs that cannot be opened (a damaged
    ``config.json`` or ``summary.json``: :func:`open_run` on the folder says which).
    """
    wanted = tuple(KINDS if kinds is None else kinds)
    for kind in wanted:
        if kind not in KINDS:
            raise ValueError(f"list_runs: unknown kind {kind!r}; allowed values: {', '.join(KINDS)}")
    root = Path(root)
    out: List[Run] = []
    if not root.is_dir():
        return out
    for folder in sorted(root.iterdir()):
        if not (folder / "config.json").is_file():
            continue
        try:
            run = open_run(folder)
        except StoreError:
            continue
        if run.kind in wanted and (old or run.current):
            out.append(run)
    return out


# -- what an unfinished run had done when it stopped -----------------------------------------------

@dataclass(frozen=True)
class Unfinished:
    """An interrupted round (or learned-mask stack), read from its checkpoint: the iteration it
    resumes from and, per run of its stack (by name), the evaluation points so far."""

    iteration: int
    evals: Dict[str, List[dict]]


def read_unfinished(checkpoint) -> Optional[Unfinished]:
    """The checkpoint at ``checkpoint`` as :class:`Unfinished`; None without one, or with one that fails
    its SHA-256 check or cannot be read (training discards such a one and starts afresh)."""
    path = Path(checkpoint)
    if not path.is_file():
        return None
    try:
        state = read_checkpoint(path)
        evals = {str(label): [dict(e) for e in points] for label, points in zip(state["labels"], state["evals"])}
        return Unfinished(int(state["iteration"]), evals)
    except Exception:  # damaged, refused or of another layout: the round restarts, and so does its curve
        return None


def unfinished_round(run_dir, k: int) -> Optional[Unfinished]:
    """Round ``k`` of the stack led by the dense or lottery run ``run_dir`` (the stack's checkpoint lies in
    its first run's round folder), as far as it got before it stopped."""
    return read_unfinished(RunDir(run_dir).checkpoint(k))


def unfinished_mask(run_dir) -> Optional[List[dict]]:
    """The evaluation points of the interrupted learned mask ``run_dir``: from its own checkpoint (a mask
    trained alone) or from the checkpoint of the stack it was trained in, the newest that names it."""
    run_dir = Path(run_dir)
    for path in [RunDir(run_dir).checkpoint(), *stack_checkpoints(run_dir.parent)]:
        found = read_unfinished(path)
        if found is not None and run_dir.name in found.evals:
            return found.evals[run_dir.name]
    return None
