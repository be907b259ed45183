"""The one runner: experiments (:mod:`lt_core.experiments`) in, one tidy frame per experiment out.

:func:`run_experiments` runs each experiment here, one after another, or hands them to an
``executor`` instead: any callable ``executor(experiments, root, stop)`` that trains them into the
results root, e.g. :func:`lt_core.sweep.executor` (a Dask cluster, or ``"serial"``: work units that
train as one stack, one after another). Either way every result is then read back from
the results store through the experiments' own :meth:`~lt_core.experiments.Experiment.rows`, so a
frame is the same whoever trained it, and whatever the store already held is reused, not trained again.
:func:`run_experiment` runs one experiment the same way and also returns the engine's result objects
(read back from the store when an executor trained it): the command line's single runs and the
dashboard's jobs go through it.

Data: an experiment whose ``data`` names no folder reads ``data_dir`` when given (the notebooks pass
their ``data_dir`` parameter), else ``$LT_DATA_DIR``. The folder travels with the experiment, to Dask
workers too; it is not part of any run's identity.

Stopping: a :class:`~lt_core.events.StopToken` given as ``stop``, or, with the environment variable
``LT_STOP_FILE`` set (as ``reproduce`` sets it for its notebooks), a :class:`StopFile`: the
experiments stop at the next step boundary once the file exists (a checkpoint, then
:class:`~lt_core.events.RunStopped`). Ctrl-C or SIGTERM on ``reproduce`` reaches the notebook's
kernel, a process of its own, this way.

Progress: one unit per finished (or reused) round, supermask point and learned-mask evaluation (a
reused learned mask counts for all of its evaluations; an experiment an executor trained counts all
of its units once it is done). With the environment variable ``LT_PROGRESS_FILE`` set (as
``reproduce`` sets it for the notebooks it executes) each update is one JSON line appended to that
file; otherwise a tqdm bar on stderr (unless ``progress=False``), redrawn at most every few seconds so
that executed notebooks stay small.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence

import pandas as pd

from .events import EventCallback, StopToken
from .experiments import Context, Experiment, frame
from .store import check_writable, results_root

PROGRESS_ENV = "LT_PROGRESS_FILE"
STOP_ENV = "LT_STOP_FILE"
# trains experiments into a results root (e.g. lt_core.sweep.executor's Dask cluster), honouring a stop request
Executor = Callable[[Sequence[Experiment], Path, Optional[StopToken]], None]
_COUNTED = {("round_end", None), ("supermask_point", None), ("learn_eval", None), ("learn_end", None),
            ("stage", "learn_reused")}


class Progress:
    """Counts finished units and shows them: a JSON line per update to a file, or a tqdm bar."""

    def __init__(self, total: int, label: str, path: Optional[str] = None, bar: bool = True) -> None:
        self.total, self.label, self.done, self.path = total, label, 0, path
        self.bar = None
        if path is None and bar:
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
        run = str(event.get("run", ""))
        if "round" in event:
            what = f"{run} round {event['round']}"
        elif kind == "learn_eval":
            what = f"{run} iteration {event['iteration']}"
        else:
            what = run
        self.advance(units, what)

    def advance(self, units: int, what: str) -> None:
        """Count ``units`` more as done (``what``: the last of them, in words)."""
        self.done += units
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


def with_data_dir(exp: Experiment, data_dir) -> Experiment:
    """``exp`` reading ``data_dir`` when it names no folder of its own (unchanged otherwise)."""
    if not data_dir or exp.data.data_dir:
        return exp
    return replace(exp, data=exp.data.replace(data_dir=str(data_dir)))


def _forward(progress: Progress, exp: Experiment, on_event: Optional[EventCallback]) -> EventCallback:
    def listener(event: dict) -> None:
        progress.on_event(event, exp.reused_units)
        if on_event is not None:
            on_event(event)
    return listener


@dataclass(frozen=True)
class Outcome:
    """What :func:`run_experiment` gives: the engine's result objects (as
    :meth:`~lt_core.experiments.Experiment.run` returns them) and the experiment's tidy frame."""

    result: Any
    frame: pd.DataFrame


def run_experiments(experiments: Sequence[Experiment], *, out=None, executor: Optional[Executor] = None,
                    label: str = "experiments", data_dir=None, on_event: Optional[EventCallback] = None,
                    stop: Optional[StopToken] = None, progress: bool = True) -> List[pd.DataFrame]:
    """Run (or reuse from the store under ``out``) each experiment; one result frame per experiment
    (the columns its kind fills, :func:`lt_core.experiments.frame`).

    ``executor``: ``None`` runs them here, one after another, each as one stack; an executor (e.g.
    ``lt_core.sweep.executor("tcp://host:8786")``) trains them instead, and they are then read back
    here (the results root must be shared with its workers). ``label`` names the progress bar (e.g.
    the notebook's question; ``progress=False``: no bar); ``on_event`` also hears every engine event
    of runs trained here.
    """
    experiments, root, stop = _prepared(experiments, out, data_dir, stop)
    bar = Progress(sum(e.units for e in experiments), label, os.environ.get(PROGRESS_ENV) or None, progress)
    try:
        if executor is not None:
            executor(experiments, root, stop)
            for exp in experiments:
                bar.advance(exp.units, exp.kind)
        else:
            for exp in experiments:
                exp.run(Context(root, _forward(bar, exp, on_event), stop))
    finally:
        bar.close()
    return [frame(e, root) for e in experiments]


def run_experiment(experiment: Experiment, *, out=None, executor: Optional[Executor] = None, data_dir=None,
                   on_event: Optional[EventCallback] = None, stop: Optional[StopToken] = None,
                   progress: bool = True, steps: bool = False) -> Outcome:
    """Run (or reuse) one experiment as :func:`run_experiments` does; its :class:`Outcome`: the engine's
    result objects and its frame. With an ``executor`` the results are read back from the store once it
    has trained them (their ``reused`` flags then say so). ``steps``: the engine's own progress bars
    over training steps, for a run trained here (the command line shows those instead of the
    runner's bar over rounds)."""
    (exp,), root, stop = _prepared([experiment], out, data_dir, stop)
    bar = Progress(exp.units, exp.kind, os.environ.get(PROGRESS_ENV) or None, progress)
    try:
        if executor is not None:
            executor([exp], root, stop)
        result = exp.run(Context(root, _forward(bar, exp, on_event), stop, progress=steps and executor is None))
    finally:
        bar.close()
    return Outcome(result, frame(exp, root))


def _prepared(experiments: Sequence[Experiment], out, data_dir, stop: Optional[StopToken]):
    """The experiments reading ``data_dir``, the results root (writable), the stop request (the stop
    file's, where ``LT_STOP_FILE`` names one and none is given)."""
    experiments = [with_data_dir(e, data_dir) for e in experiments]
    if stop is None and os.environ.get(STOP_ENV):
        stop = StopFile(os.environ[STOP_ENV])
    return experiments, check_writable(results_root(out)).absolute(), stop
