"""Running experiments on a Dask cluster (or in this process) and collecting the tidy table.

:func:`run_experiments` is the one entry point (the CLI's ``sweep``, reproduction and notebooks call
it): it groups the experiments into work units (:mod:`.units`), skips units whose results are all
in the store, submits the others as Dask tasks, shows a progress bar over tasks while it waits,
and once every task is done reads the tidy table from the store.

The results root must be one directory every worker sees (a shared file system): tasks write
there and the client reads the table from there. A local cluster's workers load the plug-ins this
process loaded (``--plugin``), so the names they register are valid in every task. A unit that fails
in a way no retry mends (bad input, missing data: :data:`PERMANENT`) is returned as a
:class:`UnitFailure`, neither retried nor logged by the worker; the failed units are named in one
line once all tasks are done. A stop request (Ctrl-C, SIGTERM on ``sweep``) stops a serial sweep's
running unit at its next step boundary, with a checkpoint, and cancels a cluster's unfinished tasks. A worker killed mid-task loses only that task;
Dask runs it again elsewhere, and the run's round checkpoint and finished rounds are reused. A
worker asked to stop (SIGTERM, ``dask worker`` closing) checkpoints its current round through
the engine's :class:`lt_core.StopToken` and hands the task back to the scheduler
(:class:`StopOnClose`).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional

from ..data import DataError
from ..errors import ConfigError, SweepError
from ..plugins import PluginError, load_plugin, loaded, portable
from ..store import StoreError
from ..events import RunStopped, StopToken
from ..store import results_root
from .units import TABLE_COLUMNS, WorkUnit, experiment_rows, run_unit, work_units

RETRIES = 2  # times a task that raised is tried again (a killed worker's task is rerun regardless)
STOP_WAIT = 30.0  # seconds a closing worker waits for its tasks to checkpoint
POLL = 0.2  # seconds between looks at the tasks and at a stop request while waiting
# failures that a retry cannot mend (bad input, missing or damaged data or store, a plug-in's error): the task
# returns them as a UnitFailure, so Dask neither retries nor logs them; anything else raises and is retried
PERMANENT = (ConfigError, DataError, StoreError, PluginError, ValueError, TypeError, LookupError, NotImplementedError)


@dataclass(frozen=True)
class UnitFailure:
    """What a task returns for a unit that failed in a way no retry mends: its key and one line."""

    key: str
    message: str


def one_line(exc: BaseException) -> str:
    """``exc`` as ``Type: message`` on one line (messages quoting a download's error span several)."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())

_ACTIVE: set = set()  # the StopTokens of the units this process is running
_ACTIVE_LOCK = threading.Lock()


def _worker_task(unit: WorkUnit, root: str):
    """A unit as a Dask task: a stop request (the worker closing) checkpoints and reschedules it; a
    failure no retry mends (:data:`PERMANENT`) is returned as a :class:`UnitFailure`."""
    from distributed import Reschedule

    stop = StopToken()
    with _ACTIVE_LOCK:
        _ACTIVE.add(stop)
    try:
        return run_unit(unit, root, stop=stop)
    except RunStopped:
        raise Reschedule() from None
    except PERMANENT as exc:
        return UnitFailure(unit.key, one_line(exc))
    finally:
        with _ACTIVE_LOCK:
            _ACTIVE.discard(stop)


def stop_active_units(wait: float = STOP_WAIT) -> None:
    """Ask every unit running in this process to stop, and wait (up to ``wait`` s) until they have."""
    with _ACTIVE_LOCK:
        tokens = list(_ACTIVE)
    for token in tokens:
        token.request("SIGTERM")
    deadline = threading.Event()
    for _ in range(int(wait * 10)):
        with _ACTIVE_LOCK:
            if not _ACTIVE:
                return
        deadline.wait(0.1)


def _plugin():
    from distributed.diagnostics.plugin import WorkerPlugin

    class StopOnClose(WorkerPlugin):
        """On a closing worker (SIGTERM included), checkpoint the running units before the process ends."""

        name = "lt-core-stop-on-close"

        def teardown(self, worker) -> None:
            stop_active_units()

    return StopOnClose()


def _plugins_loader(specs: List[str]):
    """A worker plug-in that loads ``specs`` (lt_core plug-ins: module names or ``.py`` files) on every
    worker, those that join later included, so the names they register are valid in its tasks."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class LoadPlugins(WorkerPlugin):
        name = "lt-core-plugins"

        def __init__(self, specs: List[str]) -> None:
            self.specs = list(specs)

        def setup(self, worker) -> None:
            for spec in self.specs:
                load_plugin(spec)

    return LoadPlugins(specs)


def scheduler_address(scheduler_file) -> str:
    """The address in a Dask scheduler file, read now: a missing file or one that holds no address is one
    ConfigError line naming it (Dask's own reader waits for a missing file forever, and garbage in
    it surfaces as a bare AssertionError)."""
    path = Path(scheduler_file)
    writes = "the file 'dask scheduler --scheduler-file FILE' writes"
    if not path.is_file():
        what = "is not a file" if path.exists() else "does not exist"
        raise ConfigError(f"scheduler_file: {str(scheduler_file)!r} {what}; give {writes} (start the scheduler "
                          "first)")
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        body = None
    address = body.get("address") if isinstance(body, dict) else None
    if not isinstance(address, str) or "://" not in address:
        raise ConfigError(f"scheduler_file: {str(scheduler_file)!r} is not a Dask scheduler file (no scheduler "
                          f"\"address\" in it); give {writes}")
    return address


def _client(scheduler: Optional[str], scheduler_file: Optional[str], workers: Optional[int]):
    from distributed import Client, LocalCluster

    if scheduler_file is not None:
        return Client(scheduler_address(scheduler_file)), None
    if scheduler is not None:
        return Client(scheduler), None
    # the workers' own logs stay quiet (a failed task's "Compute Failed" dump, the nanny's notes on closing):
    # every failed unit is named once, in one line, by run_experiments
    cluster = LocalCluster(n_workers=workers or 2, threads_per_worker=1, processes=True, dashboard_address=":0",
                           silence_logs=logging.CRITICAL)
    return Client(cluster), cluster


def _wait(client, units: List[WorkUnit], root: str, progress: bool, stop: Optional[StopToken]) -> List[UnitFailure]:
    """Submit the units and wait for all; returns the failed ones. A stop request cancels what has not
    finished and raises :class:`RunStopped` (a closing local cluster checkpoints its running units)."""
    futures = {client.submit(_worker_task, u, root, key=u.key, retries=RETRIES, pure=False): u for u in units}
    pending = set(futures)
    failed: List[UnitFailure] = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(futures), unit="task", desc="sweep", dynamic_ncols=True)
    try:
        while pending:
            if stop is not None and stop.requested:
                client.cancel(list(pending))
                raise RunStopped(f"sweep stopped by {stop.reason or 'a stop request'} with {len(pending)} of "
                                 f"{len(futures)} work units not finished")
            done = [f for f in pending if f.done()]
            for future in done:
                key = futures[future].key
                if future.status == "error":
                    failed.append(UnitFailure(key, one_line(future.exception())))
                elif future.status == "cancelled":
                    failed.append(UnitFailure(key, "cancelled"))
                elif isinstance(future.result(), UnitFailure):
                    failed.append(future.result())
                if bar is not None:
                    bar.update(1)
            pending.difference_update(done)
            if not done:
                time.sleep(POLL)
    finally:
        if bar is not None:
            bar.close()
    return failed


def failure_summary(failed: List[UnitFailure], total: int) -> str:
    """One line for the failed units: each distinct error once, with the units it stopped."""
    by_message: dict = {}
    for failure in failed:
        by_message.setdefault(failure.message, []).append(failure.key)
    parts = [f"{message} (work unit{'s' * (len(keys) > 1)} {', '.join(keys)})" for message, keys in by_message.items()]
    return f"{len(failed)} of {total} work units failed: " + "; ".join(parts)


def run_units(units: List[WorkUnit], scheduler: Optional[str] = None, workers: Optional[int] = None, *, out=None,
              scheduler_file: Optional[str] = None, progress: bool = True, stop: Optional[StopToken] = None,
              plugins: Optional[Iterable[str]] = None) -> None:
    """Train the work units whose results the store under ``out`` does not hold yet: one after another
    here (``scheduler="serial"``) or as Dask tasks (see :func:`run_experiments` for the arguments).
    Raises :class:`SweepError`, one line naming each failed unit and its error, after the others have
    finished; :class:`RunStopped` once ``stop`` is requested."""
    if scheduler_file is not None and scheduler != "serial":
        scheduler_address(scheduler_file)  # fail now, before the store is read, not after
    root = str(results_root(out).absolute())
    todo = [u for u in units if not all(e.done(root) for e in u.experiments)]
    if todo and scheduler == "serial":
        for unit in todo:
            run_unit(unit, root, stop=stop)
    elif todo:
        client, cluster = _client(scheduler, scheduler_file, workers)
        try:
            client.register_plugin(_plugin())
            specs = loaded() if plugins is None else portable(plugins)
            if cluster is not None and specs:
                client.register_plugin(_plugins_loader(specs))
            print(f"Dask dashboard: {client.dashboard_link}", file=sys.stderr, flush=True)
            failed = _wait(client, todo, root, progress, stop)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
        if failed:
            raise SweepError(failure_summary(failed, len(todo)))


def executor(scheduler: str, workers: Optional[int] = None, **options):
    """An executor for :func:`lt_core.runner.run_experiments`: it trains the experiments as work units on
    the Dask cluster at ``scheduler`` (or one after another in this process: ``"serial"``), without a
    progress bar of its own (the runner shows progress). ``options``: those of :func:`run_units`."""
    def run(experiments, root, stop=None) -> None:
        run_units(work_units(experiments), scheduler, workers, out=root, stop=stop, progress=False, **options)
    return run


def run_experiments(experiments: Iterable, scheduler: Optional[str] = None, workers: Optional[int] = None, *,
                    out=None, scheduler_file: Optional[str] = None, table=None, progress: bool = True,
                    stop: Optional[StopToken] = None, plugins: Optional[Iterable[str]] = None):
    """Run ``experiments`` (records of :mod:`lt_core.experiments`, e.g. a grid's) and return the tidy table.

    ``scheduler``: a Dask scheduler's address (``tcp://host:8786``); ``None`` starts a ``LocalCluster``
    of ``workers`` worker processes (default 2) for the call; ``"serial"`` runs the units one after
    another in this process, without Dask. ``scheduler_file``: a scheduler file (``dask scheduler
    --scheduler-file``) instead of an address. ``out``: the results root (must be shared by all
    workers). Units whose results are all stored are not run again. ``table``: also write the table
    to this CSV file. The Dask dashboard's address is printed on stderr. Returns a DataFrame with
    :data:`lt_core.sweep.TABLE_COLUMNS`; raises :class:`SweepError`, one line naming each failed unit
    and its error, after the others have finished. A unit that fails in a way no retry mends (bad
    input, missing data: :data:`PERMANENT`) is not retried; other errors are, :data:`RETRIES` times.

    ``stop``: a :class:`lt_core.StopToken`; once requested, the running unit checkpoints (serial) or the
    cluster's unfinished tasks are cancelled (a local cluster's workers checkpoint as they close), and
    :class:`RunStopped` is raised; the same call later resumes. ``plugins``: the lt_core plug-ins a
    local cluster's workers load before any task (default: every plug-in this process loaded,
    :func:`lt_core.plugins.loaded`); the workers of an existing cluster load their own (``dask worker
    --preload``).
    """
    import pandas as pd

    experiments = list(experiments)
    run_units(work_units(experiments), scheduler, workers, out=out, scheduler_file=scheduler_file,
              progress=progress, stop=stop, plugins=plugins)
    root = str(results_root(out).absolute())
    rows = [row for exp in experiments for row in experiment_rows(exp, root)]
    frame = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    if table is not None:
        Path(table).parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(table, index=False)
    return frame
