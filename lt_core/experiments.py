"""The kinds of experiment, each a record of configs that runs itself and reads its rows back.

Every kind implements one protocol (:class:`Experiment`), so the runner (:mod:`lt_core.runner`),
sweeps (:mod:`lt_core.sweep`), the notebooks and the command line treat them alike:

* ``kind`` -- ``"dense"``, ``"lottery"``, ``"supermask"`` or ``"learn-mask"``;
* :meth:`~Experiment.keys` -- the runs it makes, as :class:`lt_core.store.RunKey` (their names
  and folders in the results store);
* :meth:`~Experiment.run` -- train what the store does not hold yet (reusing what it does) into a
  :class:`Context` (the results root, the event listener, the stop request), returning the engine's
  result objects (what the command line prints);
* :meth:`~Experiment.done` and :meth:`~Experiment.rows` -- whether the store holds all of it, and its
  results read back from the store as rows of one tidy layout (:data:`COLUMNS`): one row per round
  of a dense or lottery run (round 0 is the dense trunk), per one-shot supermask point, per learned
  supermask;
* :meth:`~Experiment.split`, :meth:`~Experiment.stack_key` and :func:`join` -- one record per run,
  and the records that train as one stack joined back into one (a sweep's work unit);
* ``units`` and ``reused_units`` -- how much progress it makes (rounds, points, evaluations);
* :meth:`~Experiment.work_left` -- the work the store does not hold yet, as work items in the units
  that time it (:class:`TrainRound`, :class:`LearnedStack`, :class:`SupermaskPoints`), each naming its
  parts (a run's round, a learned mask, a one-shot point) so that work two records share counts once;
  the reproduction's estimate (:mod:`lt_core.paper.estimate`) prices them.

The records: :class:`Dense` (the trunk), :class:`Lottery` (iterative pruning runs sharing one trunk,
trained as one stack), :class:`Supermasks` (one-shot supermasks of a trunk) and :class:`LearnedMasks`
(learned supermasks of one mask-learning method, stacked). ``schedule`` is a label only (a preset's
name, in tables), no part of what runs.

Adding a kind of experiment is one record here with these members; the runner, sweeps, tables and
the estimate need no change.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import ClassVar, Dict, Hashable, List, Optional, Sequence, Tuple, Union

from .config import DataConfig, ModelConfig, PruneConfig, TrainConfig
from .events import EventCallback, StopToken
from .lottery import check_max_stack, run_lotteries, train_dense
from .schedule import learn_iterations, total_iterations, train_images
from .store import RunKey, open_run, read_points, run_key
from .supermask import LearnConfig, SupermaskConfig, learn_supermasks, method_of, one_shot_supermasks

# the one row layout of every kind's results: what tells the run apart, then its numbers
LABEL_COLUMNS = ("kind", "arch", "seed", "schedule", "criterion", "mask1", "mask0", "rounds", "weights", "dwr",
                 "method", "keep_fraction")
RESULT_COLUMNS = ("run", "round", "power", "weights_remaining", "percent_remaining", "early_stop_iteration",
                  "early_stop_test_acc", "final_test_acc", "train_acc", "test_acc", "expected_keep_fraction",
                  "iterations", "backend", "backend_changed_from", "run_dir")
COLUMNS = LABEL_COLUMNS + RESULT_COLUMNS
_ROUND_COLUMNS = ("run", "round", "weights_remaining", "percent_remaining", "early_stop_iteration",
                  "early_stop_test_acc", "final_test_acc", "backend", "backend_changed_from", "run_dir")


@dataclass(frozen=True)
class Context:
    """Where and how an experiment runs: the results root, a listener for the engine's events, a stop
    request (:class:`lt_core.StopToken`), and whether the engine shows its own progress bars (its
    training steps, as the command line does)."""

    root: Path
    on_event: Optional[EventCallback] = None
    stop: Optional[StopToken] = None
    progress: bool = False


# -- the work an experiment has left: items in the units that time it ----------------------------------

@dataclass(frozen=True)
class TrainRound:
    """Round ``round`` of the runs ``runs`` (their folder names), trained as one stack of ``len(runs)``:
    ``iterations`` steps, evaluated every ``eval_every`` iterations (round 0 is a dense trunk)."""

    arch: str
    round: int
    iterations: int
    eval_every: int
    runs: Tuple[str, ...]

    @property
    def parts(self) -> Tuple[Hashable, ...]:
        """One per run: ``(folder name, round)``."""
        return tuple((run, self.round) for run in self.runs)


@dataclass(frozen=True)
class LearnedStack:
    """Learned supermasks ``runs`` (their folder names) of mask-learning method ``method`` (its registered
    name), trained as one stack: ``iterations`` steps and ``evaluations`` evaluation points each."""

    arch: str
    method: str
    iterations: int
    evaluations: int
    runs: Tuple[str, ...]

    @property
    def parts(self) -> Tuple[Hashable, ...]:
        """One per learned mask: its folder name."""
        return self.runs


@dataclass(frozen=True)
class SupermaskPoints:
    """One-shot supermask points of ``arch``, each ``(folder name, criterion, weights, power)``."""

    arch: str
    points: Tuple[Tuple[str, str, str, int], ...]

    @property
    def parts(self) -> Tuple[Hashable, ...]:
        """One per point."""
        return self.points


WorkItem = Union[TrainRound, LearnedStack, SupermaskPoints]


def _model(arch: str) -> ModelConfig:
    return ModelConfig(arch=arch)


def _trunk_left(arch: str, data: DataConfig, train: TrainConfig, root) -> List[WorkItem]:
    """The dense trunk's round 0, unless the store holds it."""
    model = _model(arch)
    trunk = run_key("train", data, model, train).folder(root)
    if trunk.round_done(0):
        return []
    return [TrainRound(arch, 0, total_iterations(data, model, train), train.eval_every, (trunk.name,))]


def _round_rows(key: RunKey, root, labels: dict) -> List[dict]:
    """The rounds of a stored dense or lottery run (a lottery's round 0 is its trunk's)."""
    run = open_run(key.folder(root).path)
    return [{**labels, "run": run.name, "round": r.index, "weights_remaining": r.summary["weights_remaining"],
             "percent_remaining": 100 * r.summary["weights_remaining"],
             "early_stop_iteration": r.summary["early_stop_iteration"],
             "early_stop_test_acc": r.summary["early_stop_test_acc"], "final_test_acc": r.summary["final_test_acc"],
             "backend": r.summary.get("backend"), "backend_changed_from": r.summary.get("backend_changed_from"),
             "run_dir": str(run.path)} for r in run.rounds]


@dataclass(frozen=True)
class Dense:
    """The dense network of ``arch`` trained with ``train`` (round 0 of every run on it)."""

    arch: str
    train: TrainConfig
    data: DataConfig = field(default_factory=DataConfig)
    schedule: str = field(default="", compare=False)

    kind: ClassVar[str] = "dense"
    reused_units: ClassVar[int] = 1
    fills: ClassVar[Tuple[str, ...]] = ("kind", "arch", "seed", "schedule") + _ROUND_COLUMNS

    @property
    def seed(self) -> int:
        return self.train.seed

    @property
    def units(self) -> int:
        return 1

    def keys(self) -> List[RunKey]:
        return [run_key("train", self.data, _model(self.arch), self.train)]

    def split(self) -> List["Dense"]:
        return [self]

    def stack_key(self) -> tuple:
        return self.kind, self.data, self.arch, self.train

    def joined(self, others: Sequence["Dense"]) -> "Dense":
        return self

    def run(self, ctx: Context):
        """Train it (or reuse the stored run); the engine's result (:func:`lt_core.train_dense`'s)."""
        return train_dense(self.data, _model(self.arch), self.train, out=ctx.root, on_event=ctx.on_event,
                           stop=ctx.stop, progress=ctx.progress)

    def done(self, root) -> bool:
        return not self.work_left(root)

    def work_left(self, root) -> List[WorkItem]:
        """Its round 0, unless stored."""
        return _trunk_left(self.arch, self.data, self.train, root)

    def rows(self, root) -> List[dict]:
        return _round_rows(self.keys()[0], root, {"kind": self.kind, "arch": self.arch, "seed": self.seed,
                                                  "schedule": self.schedule})


@dataclass(frozen=True)
class Lottery:
    """Iterative pruning runs of one network and seed (``train.seed``) on one dense trunk."""

    arch: str
    train: TrainConfig
    prunes: Sequence[PruneConfig]
    data: DataConfig = field(default_factory=DataConfig)
    schedule: str = field(default="", compare=False)
    max_stack: Optional[int] = field(default=None, compare=False)  # runs trained at a time (None: what fits)

    kind: ClassVar[str] = "lottery"

    def __post_init__(self) -> None:
        if isinstance(self.prunes, list):  # a list given reads as the same experiment
            object.__setattr__(self, "prunes", tuple(self.prunes))
        check_max_stack(self.max_stack)  # refused before anything is written

    reused_units: ClassVar[int] = 1
    fills: ClassVar[Tuple[str, ...]] = ("kind", "arch", "seed", "schedule", "criterion", "mask1", "mask0",
                                        "rounds") + _ROUND_COLUMNS

    @property
    def seed(self) -> int:
        return self.train.seed

    @property
    def units(self) -> int:
        return 1 + sum(p.rounds for p in self.prunes)

    def keys(self) -> List[RunKey]:
        return [run_key("lottery", self.data, _model(self.arch), self.train, p) for p in self.prunes]

    def split(self) -> List["Lottery"]:
        return [replace(self, prunes=(p,)) for p in self.prunes]

    def stack_key(self) -> tuple:
        return self.kind, self.data, self.arch, self.train

    def joined(self, others: Sequence["Lottery"]) -> "Lottery":
        return replace(self, prunes=_unique(p for e in (self, *others) for p in e.prunes))

    def run(self, ctx: Context):
        """Train the runs (or reuse the stored rounds); one engine result per prune config."""
        return run_lotteries(self.data, _model(self.arch), self.train, list(self.prunes), out=ctx.root,
                             on_event=ctx.on_event, stop=ctx.stop, progress=ctx.progress, max_stack=self.max_stack)

    def done(self, root) -> bool:
        return not self.work_left(root)

    def work_left(self, root) -> List[WorkItem]:
        """The trunk's round 0 unless stored, then per round the stack of the runs that miss it."""
        missing: Dict[int, List[str]] = {}
        for prune, key in zip(self.prunes, self.keys()):
            run = key.folder(root)
            done = set(run.done_rounds())
            for k in range(1, prune.rounds + 1):
                if k not in done:
                    missing.setdefault(k, []).append(run.name)
        iterations = total_iterations(self.data, _model(self.arch), self.train)
        return _trunk_left(self.arch, self.data, self.train, root) + [
            TrainRound(self.arch, k, iterations, self.train.eval_every, tuple(runs)) for k, runs in missing.items()]

    def rows(self, root) -> List[dict]:
        rows = []
        for p, key in zip(self.prunes, self.keys()):
            labels = {"kind": self.kind, "arch": self.arch, "seed": self.seed, "schedule": self.schedule,
                      "criterion": p.criterion, "mask1": p.mask1, "mask0": p.mask0, "rounds": p.rounds}
            rows += [r for r in _round_rows(key, root, labels) if r["round"] <= p.rounds]
        return rows


@dataclass(frozen=True)
class Supermasks:
    """One-shot supermasks of the dense run trained with ``train``."""

    arch: str
    train: TrainConfig
    sweep: SupermaskConfig
    data: DataConfig = field(default_factory=DataConfig)
    schedule: str = field(default="", compare=False)

    kind: ClassVar[str] = "supermask"
    reused_units: ClassVar[int] = 1
    fills: ClassVar[Tuple[str, ...]] = ("kind", "arch", "seed", "schedule", "criterion", "weights", "power",
                                        "weights_remaining", "percent_remaining", "train_acc", "test_acc", "run",
                                        "backend", "run_dir")

    @property
    def seed(self) -> int:
        return self.train.seed

    @property
    def units(self) -> int:
        return 1 + len(self.sweep.criteria) * len(self.sweep.weights) * len(self.sweep.powers)

    def keys(self) -> List[RunKey]:
        return [run_key("supermask", self.data, _model(self.arch), self.train)]

    def split(self) -> List["Supermasks"]:
        return [replace(self, sweep=self.sweep.replace(criteria=(c,))) for c in self.sweep.criteria]

    def stack_key(self) -> tuple:
        return self.kind, self.data, self.arch, self.train, self.sweep.weights, self.sweep.powers

    def joined(self, others: Sequence["Supermasks"]) -> "Supermasks":
        criteria = _unique(c for e in (self, *others) for c in e.sweep.criteria)
        return replace(self, sweep=self.sweep.replace(criteria=criteria))

    def run(self, ctx: Context):
        """Evaluate the points (or reuse the stored ones); the engine's result."""
        return one_shot_supermasks(self.data, _model(self.arch), self.train, self.sweep, out=ctx.root,
                                   on_event=ctx.on_event, stop=ctx.stop, progress=ctx.progress)

    def _stored(self, root) -> Dict[Tuple[str, str, int], dict]:
        path = self.keys()[0].folder(root).path / "points.csv"
        return {(p["criterion"], p["weights"], int(p["power"])): p for p in read_points(path)} \
            if path.is_file() else {}

    def _wanted(self) -> List[Tuple[str, str, int]]:
        return [(c, w, int(p)) for c in self.sweep.criteria for w in self.sweep.weights for p in self.sweep.powers]

    def _points(self, root) -> List[dict]:
        stored = self._stored(root)
        return [stored[k] for k in self._wanted() if k in stored]

    def work_left(self, root) -> List[WorkItem]:
        """The trunk's round 0 unless stored, then the points the store does not hold."""
        name, stored = self.keys()[0].folder(root).name, self._stored(root)
        points = tuple((name, *k) for k in _unique(self._wanted()) if k not in stored)
        return _trunk_left(self.arch, self.data, self.train, root) + (
            [SupermaskPoints(self.arch, points)] if points else [])

    def done(self, root) -> bool:
        """Every point stored (the trunk, which :meth:`work_left` also counts, need not be)."""
        return len(self._points(root)) == len(self.sweep.criteria) * len(self.sweep.weights) * len(self.sweep.powers)

    def rows(self, root) -> List[dict]:
        folder = self.keys()[0].folder(root)
        run = open_run(folder.path)
        backend = open_run(run.trunk).round(0).summary.get("backend")
        labels = {"kind": self.kind, "arch": self.arch, "seed": self.seed, "schedule": self.schedule}
        return [{**labels, "criterion": p["criterion"], "weights": p["weights"], "power": int(p["power"]),
                 "weights_remaining": p["weights_remaining"], "percent_remaining": 100 * p["weights_remaining"],
                 "train_acc": p["train_acc"], "test_acc": p["test_acc"], "run": folder.name, "backend": backend,
                 "run_dir": str(folder.path)} for p in self._points(root)]


@dataclass(frozen=True)
class LearnedMasks:
    """Learned supermasks of one network, trained as one stack (they must have the same length and be
    of one mask-learning method: ``LearnConfig`` for Zhou's, or another method's config)."""

    arch: str
    learns: Sequence[LearnConfig]
    data: DataConfig = field(default_factory=DataConfig)
    schedule: str = field(default="", compare=False)

    kind: ClassVar[str] = "learn-mask"

    def __post_init__(self) -> None:
        if isinstance(self.learns, list):  # a list given reads as the same experiment
            object.__setattr__(self, "learns", tuple(self.learns))
    fills: ClassVar[Tuple[str, ...]] = ("kind", "arch", "seed", "schedule", "weights", "dwr", "method",
                                        "keep_fraction", "run", "weights_remaining", "percent_remaining", "test_acc",
                                        "expected_keep_fraction", "iterations", "backend", "run_dir")

    @property
    def seed(self) -> int:
        return self.learns[0].seed

    @property
    def evaluations(self) -> int:
        """Evaluation points of each mask: every ``eval_every`` iterations (default once per epoch) and at the end."""
        first, model = self.learns[0], _model(self.arch)
        every = first.eval_every or train_images(self.data, model) // first.batch_size
        return -(-learn_iterations(self.data, model, first) // every)

    @property
    def units(self) -> int:
        return len(self.learns) * (self.evaluations + 1)

    @property
    def reused_units(self) -> int:
        """A learned mask read back from the store counts for all of its evaluations and its end."""
        return self.evaluations + 1

    def keys(self) -> List[RunKey]:
        return [run_key("learnmask", self.data, _model(self.arch), learn=learn) for learn in self.learns]

    def split(self) -> List["LearnedMasks"]:
        return [replace(self, learns=(learn,)) for learn in self.learns]

    def stack_key(self) -> tuple:
        """Masks that train as one stack: Zhou's of one seed and schedule differ only in weights and DWR;
        another method's share what its learner's ``shared`` names, the seed, the length and the device."""
        learn = self.learns[0]
        if isinstance(learn, LearnConfig):
            return self.kind, self.data, self.arch, learn.replace(weights="init", dwr=False)
        learner = method_of(learn).learner
        same = set(getattr(learner, "shared", ())) | {"seed", "epochs", "iterations", "eval_every", "device"}
        schedule = tuple((f.name, getattr(learn, f.name)) for f in dataclasses.fields(learn) if f.name in same)
        return self.kind, self.data, self.arch, type(learn), schedule

    def joined(self, others: Sequence["LearnedMasks"]) -> "LearnedMasks":
        return replace(self, learns=_unique(learn for e in (self, *others) for learn in e.learns))

    def run(self, ctx: Context):
        """Train the stack (or reuse the stored masks); one engine result per mask."""
        return learn_supermasks(self.data, _model(self.arch), list(self.learns), out=ctx.root,
                                on_event=ctx.on_event, stop=ctx.stop, progress=ctx.progress)

    def done(self, root) -> bool:
        return not self.work_left(root)

    def work_left(self, root) -> List[WorkItem]:
        """The stack of the masks the store does not hold finished (no ``summary.json``)."""
        left = [(learn, key.folder(root)) for learn, key in zip(self.learns, self.keys())]
        left = [(learn, folder) for learn, folder in left if not (folder.path / "summary.json").is_file()]
        if not left:
            return []
        first = left[0][0]
        return [LearnedStack(self.arch, method_of(first).name, learn_iterations(self.data, _model(self.arch), first),
                             self.evaluations, tuple(folder.name for _, folder in left))]

    def rows(self, root) -> List[dict]:
        rows = []
        for learn, key in zip(self.learns, self.keys()):
            run = open_run(key.folder(root).path)
            s = run.summary
            rows.append({"kind": self.kind, "arch": self.arch, "seed": learn.seed, "schedule": self.schedule,
                         "weights": getattr(learn, "weights", None), "dwr": getattr(learn, "dwr", False),
                         "method": method_of(learn).name, "keep_fraction": getattr(learn, "keep_fraction", None),
                         "run": run.name, "weights_remaining": s["expected_keep_fraction"],
                         "percent_remaining": 100 * s["expected_keep_fraction"], "test_acc": s["test_acc_mean"],
                         "expected_keep_fraction": s["expected_keep_fraction"], "iterations": s["iterations"],
                         "backend": s.get("backend"), "run_dir": str(run.path)})
        return rows


Experiment = Union[Dense, Lottery, Supermasks, LearnedMasks]
KINDS = {cls.kind: cls for cls in (Dense, Lottery, Supermasks, LearnedMasks)}


def _unique(items) -> Tuple:
    out = []
    for item in items:
        if item not in out:
            out.append(item)
    return tuple(out)


def join(experiments: Sequence[Experiment]) -> Experiment:
    """Experiments of one :meth:`stack_key` as one record (their runs in order, each once)."""
    first, rest = experiments[0], list(experiments[1:])
    if any(e.stack_key() != first.stack_key() for e in rest):
        raise ValueError("join: the experiments do not train as one stack (their stack_key differs)")
    return first.joined(rest) if rest else first


def frame(experiment: Experiment, root, columns: Optional[Sequence[str]] = None):
    """``experiment``'s rows (:meth:`rows`) as a DataFrame: the columns its kind fills (``fills``, in
    :data:`COLUMNS` order), or ``columns``."""
    import pandas as pd

    if columns is None:
        columns = [c for c in COLUMNS if c in experiment.fills]
    return pd.DataFrame(experiment.rows(root), columns=list(columns))
