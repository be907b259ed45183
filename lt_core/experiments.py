"""Experiments of a batch reproduction, and the one function that runs them.

An experiment is a record of what to run, built from configs only: :class:`Dense` (the trunk),
:class:`Lottery` (iterative pruning runs sharing one trunk, trained as one stack),
:class:`Supermasks` (one-shot supermasks of a trunk) and :class:`LearnedMasks` (learned
supermasks, stacked). Every experiment a notebook runs goes through :func:`run_experiments`,
which runs them here, one after another, reusing whatever the results store already holds, and
reports progress over runs and rounds. Given a ``scheduler`` (a Dask scheduler's address) it hands
them to :mod:`lt_core.sweep` first, then reads every result back from the store the same way.

Results are tidy frames with ``arch`` and ``seed`` columns: rounds for dense and lottery runs
(:func:`lt_core.analysis.rounds_frame` plus ``criterion``/``mask1``/``mask0``), points for
supermasks, one row per learned mask (with its ``run_dir``, where its metrics are stored).

Data: an experiment whose ``data`` names no folder (``DataConfig.data_dir=None``, as the notebooks'
experiments are built) reads the folder of :func:`use_data_dir`, which the notebook's ``data_dir``
parameter sets (:func:`lt_core.paper.params.notebook_params`), else ``$LT_DATA_DIR``. The folder travels
with the experiment, to Dask workers too; it is not part of any run's identity.

Stopping: with the environment variable ``LT_STOP_FILE`` set (as ``reproduce`` sets it for its
notebooks), the experiments stop at the next step boundary once that file exists, as a run given a
:class:`~lt_core.events.StopToken` does (a checkpoint, then :class:`~lt_core.events.RunStopped`):
Ctrl-C or SIGTERM on ``reproduce`` reaches the notebook's kernel this way, a process of its own.

Progress: one unit per finished (or reused) round, supermask point and learned-mask evaluation
(a reused learned mask counts for all of its evaluations). With the
environment variable ``LT_PROGRESS_FILE`` set (as ``python -m lt_core reproduce`` sets it for the
notebooks it executes) each update is one JSON line appended to that file; otherwise a tqdm bar on
stderr, redrawn at most every few seconds so that executed notebooks stay small.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import List, Optional, Sequence, Union

import pandas as pd

from .analysis import rounds_frame
from .config import DataConfig, ModelConfig, PruneConfig, TrainConfig
from .events import StopToken
from .lottery import run_lotteries, train_dense
from .schedule import learn_iterations, train_images
from .supermask import LearnConfig, SupermaskConfig, learn_supermasks, method_of, one_shot_supermasks

PROGRESS_ENV = "LT_PROGRESS_FILE"
STOP_ENV = "LT_STOP_FILE"


@dataclass(frozen=True)
class Dense:
    """The dense network of ``arch`` trained with ``train`` (round 0 of every run on it)."""

    arch: str
    train: TrainConfig
    data: DataConfig = field(default_factory=DataConfig)

    @property
    def units(self) -> int:
        return 1


@dataclass(frozen=True)
class Lottery:
    """Iterative pruning runs of one network and seed (``train.seed``) on one dense trunk."""

    arch: str
    train: TrainConfig
    prunes: Sequence[PruneConfig]
    data: DataConfig = field(default_factory=DataConfig)

    @property
    def units(self) -> int:
        return 1 + sum(p.rounds for p in self.prunes)


@dataclass(frozen=True)
class Supermasks:
    """One-shot supermasks of the dense run trained with ``train``."""

    arch: str
    train: TrainConfig
    sweep: SupermaskConfig
    data: DataConfig = field(default_factory=DataConfig)

    @property
    def units(self) -> int:
        return 1 + len(self.sweep.criteria) * len(self.sweep.weights) * len(self.sweep.powers)


@dataclass(frozen=True)
class LearnedMasks:
    """Learned supermasks of one network, trained as one stack (they must have the same length and be
    of one mask-learning method: ``LearnConfig`` for Zhou's, or another method's config)."""

    arch: str
    learns: Sequence[LearnConfig]
    data: DataConfig = field(default_factory=DataConfig)

    @property
    def evaluations(self) -> int:
        """Evaluation points of each mask: every ``eval_every`` iterations (default once per epoch) and at the end."""
        first, model = self.learns[0], ModelConfig(arch=self.arch)
        every = first.eval_every or train_images(self.data, model) // first.batch_size
        return -(-learn_iterations(self.data, model, first) // every)

    @property
    def units(self) -> int:
        return len(self.learns) * (self.evaluations + 1)


Experiment = Union[Dense, Lottery, Supermasks, LearnedMasks]
_COUNTED = {("round_end", None), ("supermask_point", None), ("learn_eval", None), ("learn_end", None),
            ("stage", "learn_reused")}


class Progress:
    """Counts finished units and shows them: a JSON line per update to a file, or a tqdm bar."""

    def __init__(self, total: int, label: str, path: Optional[str] = None) -> None:
        self.total, self.label, self.done, self.path = total, label, 0, path
        self.bar = None
        if path is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=label, unit="run-round", file=sys.stderr, mininterval=5.0,
                            dynamic_ncols=True)
        self._write("")

    def _write(self, what: str) -> None:
        if self.path is not None:
            with open(self.path, "a") as fh:
                fh.write(json.dumps({"label": self.label, "done": self.done, "total": self.total,
                                     "what": what}) + "\n")

    def on_event(self, event: dict, reused_units: int = 1) -> None:
        """Advance by one unit on a finished round, supermask point, learned-mask evaluation or learned
        mask; by ``reused_units`` on a learned mask read back from the store (its evaluations and end)."""
        kind = event.get("event")
        stage = event.get("stage") if kind == "stage" else None
        if (kind, stage) not in _COUNTED:
            return
        units = reused_units if stage == "learn_reused" else 1
        self.done += units
        run = str(event.get("run", ""))
        if "round" in event:
            what = f"{run} round {event['round']}"
        elif kind == "learn_eval":
            what = f"{run} iteration {event['iteration']}"
        else:
            what = run
        if self.bar is not None:
            self.bar.update(units)
        self._write(what)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class StopFile(StopToken):
    """A stop request that arrives as a file: requested once ``path`` exists (its text is the reason,
    e.g. ``SIGINT``). The file is looked at most every ``every`` seconds, not at every step."""

    def __init__(self, path, every: float = 0.25) -> None:
        super().__init__()
        self.path, self.every, self._next = Path(path), every, 0.0

    @property
    def requested(self) -> bool:
        if not self._event.is_set() and time.monotonic() >= self._next:
            self._next = time.monotonic() + self.every
            if self.path.exists():
                try:
                    reason = self.path.read_text().strip()
                except OSError:
                    reason = ""
                self.request(reason or "a stop request")
        return self._event.is_set()


_DATA_DIR: Optional[str] = None  # the notebook's data folder (use_data_dir); None: $LT_DATA_DIR


def use_data_dir(data_dir: Optional[str]) -> None:
    """Make ``data_dir`` the folder of every experiment :func:`run_experiments` runs that names none
    itself (``None``: back to ``$LT_DATA_DIR``, else the per-user cache)."""
    global _DATA_DIR
    _DATA_DIR = str(data_dir) if data_dir else None


def with_data_dir(exp: Experiment) -> Experiment:
    """``exp`` reading the folder of :func:`use_data_dir` when it names none (unchanged otherwise)."""
    if _DATA_DIR is None or exp.data.data_dir:
        return exp
    return replace(exp, data=exp.data.replace(data_dir=_DATA_DIR))


def _run_one(exp: Experiment, out, on_event, stop: Optional[StopToken] = None) -> pd.DataFrame:
    model = ModelConfig(arch=exp.arch)
    if isinstance(exp, Dense):
        frame = rounds_frame([train_dense(exp.data, model, exp.train, out=out, on_event=on_event, stop=stop)])
        return frame.assign(arch=exp.arch, seed=exp.train.seed)
    if isinstance(exp, Lottery):
        results = run_lotteries(exp.data, model, exp.train, list(exp.prunes), out=out, on_event=on_event, stop=stop)
        labels = [{"criterion": p.criterion, "mask1": p.mask1, "mask0": p.mask0} for p in exp.prunes]
        return rounds_frame(results, labels).assign(arch=exp.arch, seed=exp.train.seed)
    if isinstance(exp, Supermasks):
        res = one_shot_supermasks(exp.data, model, exp.train, exp.sweep, out=out, on_event=on_event, stop=stop)
        return pd.DataFrame(res.rows).assign(arch=exp.arch, seed=exp.train.seed)
    if isinstance(exp, LearnedMasks):
        results = learn_supermasks(exp.data, model, list(exp.learns), out=out, on_event=on_event, stop=stop)
        # a method's name, and its keep_fraction where it has one (weights, dwr: where its config has them)
        return pd.DataFrame([{"arch": exp.arch, "seed": l.seed, "weights": getattr(l, "weights", None),
                              "dwr": getattr(l, "dwr", False), "method": method_of(l).name,
                              "keep_fraction": getattr(l, "keep_fraction", None),
                              "test_acc": r.test_acc_mean, "expected_keep_fraction": r.expected_keep_fraction,
                              "iterations": r.iterations, "run_dir": str(r.run_dir)}
                             for l, r in zip(exp.learns, results)])
    raise TypeError(f"run_experiments: {type(exp).__name__} is not an experiment; give Dense, Lottery, "
                    f"Supermasks or LearnedMasks records")


def sweep_records(experiments: Sequence[Experiment]) -> list:
    """The experiments as :class:`lt_core.sweep.Experiment` records (one per run; dense runs are trained
    by the lottery and supermask records that share them, so :class:`Dense` gives none)."""
    from .sweep import Experiment as SweepExperiment

    records = []
    for exp in experiments:
        common = dict(data=exp.data, model=ModelConfig(arch=exp.arch), schedule="reproduce")
        if isinstance(exp, Lottery):
            records += [SweepExperiment("lottery", train=exp.train, prune=p, **common) for p in exp.prunes]
        elif isinstance(exp, Supermasks):
            records += [SweepExperiment("supermask", train=exp.train, supermask=exp.sweep.replace(criteria=(c,)),
                                        **common) for c in exp.sweep.criteria]
        elif isinstance(exp, LearnedMasks):
            records += [SweepExperiment("learn-mask", learn=learn, **common) for learn in exp.learns]
    return records


def run_experiments(experiments: Sequence[Experiment], *, out=None, scheduler: Optional[str] = None,
                    label: str = "experiments") -> List[pd.DataFrame]:
    """Run (or reuse from the store under ``out``) each experiment; one result frame per experiment.

    ``scheduler``: ``None`` or ``""`` runs them here, one after another. A Dask scheduler's address
    (``tcp://host:8786``), or ``"serial"``, hands them to :func:`lt_core.sweep.run_experiments` first
    (the results root must be shared with the workers); the frames are then read back here, every
    run found in the store. ``label`` names the progress bar (e.g. the notebook's question).
    """
    experiments = [with_data_dir(e) for e in experiments]
    stop = StopFile(os.environ[STOP_ENV]) if os.environ.get(STOP_ENV) else None
    if scheduler:
        from .sweep import run_experiments as run_sweep

        run_sweep(sweep_records(experiments), scheduler=scheduler, out=out, stop=stop)
    progress = Progress(sum(e.units for e in experiments), label, os.environ.get(PROGRESS_ENV) or None)
    try:
        return [_run_one(e, out, lambda event, e=e: progress.on_event(
            event, e.evaluations + 1 if isinstance(e, LearnedMasks) else 1), stop) for e in experiments]
    finally:
        progress.close()
