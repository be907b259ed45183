"""Running experiments on a Dask cluster (or in this process) and collecting the tidy table.

:func:`run_experiments` is the one entry point (the CLI's ``sweep``, reproduction and notebooks call
it): it groups the experiments into work units (:mod:`.units`), skips units whose results are all
in the store, submits the others as Dask tasks, shows a progress bar over tasks while it waits,
and once every task is done reads the tidy table from the store.

The results root must be one directory every worker sees (a shared file system): tasks write
there and the client reads the table from there. A worker killed mid-task loses only that task;
Dask runs it again elsewhere, and the run's round checkpoint and finished rounds are reused. A
worker asked to stop (SIGTERM, ``dask worker`` closing) checkpoints its current round through
the engine's :class:`lt_core.StopToken` and hands the task back to the scheduler
(:class:`StopOnClose`).
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Iterable, List, Optional

from ..errors import SweepError
from ..events import RunStopped, StopToken
from ..store import results_root
from .units import TABLE_COLUMNS, WorkUnit, experiment_done, experiment_rows, run_unit, work_units

RETRIES = 2  # times a task that raised is tried again (a killed worker's task is rerun regardless)
STOP_WAIT = 30.0  # seconds a closing worker waits for its tasks to checkpoint

_ACTIVE: set = set()  # the StopTokens of the units this process is running
_ACTIVE_LOCK = threading.Lock()


def _worker_task(unit: WorkUnit, root: str) -> str:
    """A unit as a Dask task: a stop request (the worker closing) checkpoints and reschedules it."""
    from distributed import Reschedule

    stop = StopToken()
    with _ACTIVE_LOCK:
        _ACTIVE.add(stop)
    try:
        return run_unit(unit, root, stop=stop)
    except RunStopped:
        raise Reschedule() from None
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


def _client(scheduler: Optional[str], scheduler_file: Optional[str], workers: Optional[int]):
    from distributed import Client, LocalCluster

    if scheduler_file is not None:
        return Client(scheduler_file=scheduler_file), None
    if scheduler is not None:
        return Client(scheduler), None
    cluster = LocalCluster(n_workers=workers or 2, threads_per_worker=1, processes=True, dashboard_address=":0")
    return Client(cluster), cluster


def _wait(client, units: List[WorkUnit], root: str, progress: bool) -> List[str]:
    """Submit the units and wait for all; returns one line per failed unit."""
    from distributed import as_completed

    futures = {client.submit(_worker_task, u, root, key=u.key, retries=RETRIES, pure=False): u for u in units}
    failed = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(futures), unit="task", desc="sweep", dynamic_ncols=True)
    try:
        for future in as_completed(futures):
            if future.status == "error":
                exc = future.exception()
                failed.append(f"{futures[future].key}: {type(exc).__name__}: {exc}")
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return failed


def run_experiments(experiments: Iterable, scheduler: Optional[str] = None, workers: Optional[int] = None, *,
                    out=None, scheduler_file: Optional[str] = None, table=None, progress: bool = True):
    """Run ``experiments`` (:class:`lt_core.sweep.Experiment` records) and return the tidy table.

    ``scheduler``: a Dask scheduler's address (``tcp://host:8786``); ``None`` starts a ``LocalCluster``
    of ``workers`` worker processes (default 2) for the call; ``"serial"`` runs the units one after
    another in this process, without Dask. ``scheduler_file``: a scheduler file (``dask scheduler
    --scheduler-file``) instead of an address. ``out``: the results root (must be shared by all
    workers). Units whose results are all stored are not run again. ``table``: also write the table
    to this CSV file. The Dask dashboard's address is printed on stderr. Returns a DataFrame with
    :data:`lt_core.sweep.TABLE_COLUMNS`; raises :class:`SweepError` naming each failed unit, after
    the others have finished.
    """
    import pandas as pd

    experiments = list(experiments)
    root = str(results_root(out).absolute())
    todo = [u for u in work_units(experiments) if not all(experiment_done(e, root) for e in u.experiments)]
    if todo and scheduler == "serial":
        for unit in todo:
            run_unit(unit, root)
    elif todo:
        client, cluster = _client(scheduler, scheduler_file, workers)
        try:
            client.register_plugin(_plugin())
            print(f"Dask dashboard: {client.dashboard_link}", file=sys.stderr, flush=True)
            failed = _wait(client, todo, root, progress)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
        if failed:
            raise SweepError(f"{len(failed)} of {len(todo)} work units failed:\n" + "\n".join(failed))
    rows = [row for exp in experiments for row in experiment_rows(exp, root)]
    frame = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    if table is not None:
        Path(table).parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(table, index=False)
    return frame
