"""Run control of the explorer dashboard: the run thread, Stop, resume and the listeners.

:class:`Controller` checks a :class:`~.request.RunRequest` (:func:`~.request.plan_jobs`) and runs
its jobs on a background thread, each job's experiment through the one runner
(:func:`lt_core.runner.run_experiment`). A lottery run trains (or reuses) the dense trunk of its
seed, then races the selected criteria side by side: every round trains all of them as one stack.
Stop sets the engine's :class:`lt_core.StopToken`; the run raises :class:`lt_core.RunStopped` at the
next step, finished rounds stay in the results store, and Run with the same settings resumes (the
engine maps the same configuration to the same directory). The engine's events are folded into a
:class:`~.state.RunState`; listeners get a snapshot at most every ``throttle_s`` seconds (plus one at
every state change). No widget imports: the tests drive it directly.
"""

from __future__ import annotations

import copy
import threading
import time
import traceback
from pathlib import Path
from typing import Callable, Dict, List, Optional

from lt_core import RunStopped, StopToken
from lt_core.runner import run_experiment
from lt_core.store import results_root

from .pacing import Throttle, fmt_seconds
from .request import MODES, Job, RunRequest, describe_error, plan_jobs
from .series import SUPERMASK_WEIGHTS, Series
from .state import RunState
from .stored import StoredRun, list_runs, load_runs_of, load_stored_series
from .tables import export_csv


class _CountingStop(StopToken):
    """The stop token handed to the engine: it reads the controller's token and counts the reads.

    The training loop reads it once per step, so the reads are the steps taken since the last
    evaluation: the learned-mask progress moves within an epoch, not only at its end.
    """

    def __init__(self, inner: StopToken, on_read: Callable[[], None]) -> None:
        super().__init__()
        self.inner, self.on_read = inner, on_read

    @property
    def requested(self) -> bool:
        self.on_read()
        return self.inner.requested

    def request(self, reason: Optional[str] = None) -> None:
        self.inner.request(reason)


class Controller:
    """Runs requests off the UI thread and keeps the live state the views draw.

    ``results_root``: the results store (default ``$LT_RESULTS_DIR``, else ``./results``).
    ``throttle_s``: the shortest time between two listener calls while a run is in progress.
    """

    def __init__(self, results_root_dir=None, *, throttle_s: float = 0.25) -> None:
        self.root = Path(results_root(results_root_dir)).expanduser().resolve()
        self.status = "idle"  # idle | running | stopping | stopped | finished | error
        self.message = "Choose a network and a mode, then press Run."
        self.level = "info"  # info | success | warning | error
        self.state = RunState(self.root)  # the latest request's jobs, series, history and progress
        self.states: Dict[str, RunState] = {}  # the latest request of each mode: its plots stay
        self.settings: List[Series] = []  # stored runs of the controls' settings (every mode)
        self.overlays: Dict[str, Series] = {}  # stored runs drawn on the plots, by run directory name
        self.log: List[str] = []  # tracebacks of unexpected errors
        self._lock = threading.RLock()
        self._thread: Optional[threading.Thread] = None
        self._stop: Optional[StopToken] = None
        self._listeners: List[Callable[[dict], None]] = []
        self._throttle = Throttle(throttle_s, self._flush)
        self._version = 0
        self._refused = False  # the last Run was refused: no progress to show
        self._pending: Optional[RunRequest] = None  # Run pressed while the previous run was stopping
        self._t_start = 0.0
        self._t_end = 0.0

    # -- listeners -----------------------------------------------------------------------------
    def add_listener(self, fn: Callable[[dict], None]) -> None:
        self._listeners.append(fn)

    def _changed(self, force: bool = False) -> None:
        with self._lock:
            self._version += 1
        self._throttle(force)

    def _flush(self) -> None:
        snap = self.snapshot()
        for fn in list(self._listeners):
            try:
                fn(snap)
            except Exception:  # a broken view must not stop a run
                self.log.append(traceback.format_exc())

    def notify(self) -> None:
        """Send the current state to the listeners now."""
        self._changed(force=True)

    # -- state ---------------------------------------------------------------------------------
    @property
    def request(self) -> Optional[RunRequest]:
        return self.state.request

    @property
    def jobs(self) -> List[Job]:
        return self.state.jobs

    @property
    def series(self) -> Dict[str, Series]:
        """The live series of the latest request of every mode."""
        out: Dict[str, Series] = {}
        for state in self.states.values():
            out.update(state.series)
        return out

    def shown_series(self) -> List[Series]:
        """What the plots draw besides overlays: the live series, then the stored runs of the
        controls' settings that no live series stands for."""
        live = list(self.series.values())
        runs = {s.run for s in live if s.run}
        return live + [s for s in self.settings if s.run not in runs]

    @property
    def history(self) -> List[dict]:
        """The stage / round_end / learn_end events of the latest run (small dicts)."""
        return self.state.history

    @property
    def running(self) -> bool:
        """A run thread is at work (the run thread itself, starting a queued run, is done with it)."""
        t = self._thread
        return t is not None and t.is_alive() and t is not threading.current_thread()

    def snapshot(self) -> dict:
        """A deep copy of everything the views draw."""
        with self._lock:
            return {
                "version": self._version,
                "status": self.status,
                "message": self.message,
                "level": self.level,
                "request": self.request,
                "arch": self.request.arch if self.request else None,
                "series": copy.deepcopy(self.shown_series()),
                "overlays": copy.deepcopy(list(self.overlays.values())),
                "progress": self._progress(),
                "jobs": [{"key": j.key, "label": j.label, "status": j.status, "fraction": j.fraction,
                          "position": j.position(), "error": j.error} for j in self.jobs],
                "root": str(self.root),
            }

    def _progress(self) -> dict:
        if self._refused:
            return {"fraction": 0.0, "eta_s": None, "label": "", "round": None, "iteration": None}
        state = self.state
        fraction, eta = state.work(sum(j.total for j in self.jobs))
        if self.status == "finished":
            fraction = 1.0
        if self.status != "running":
            eta = None
        job = state.last_job
        parts = []
        if job is not None and self.status in ("running", "stopping", "stopped"):
            parts.append(f"{job.label}: {job.position()}")
        if self.jobs:
            parts.append(f"{fraction * 100:.0f}%")
        if eta is not None:
            parts.append(f"ETA {fmt_seconds(eta)}")
        elif self.status == "running":
            parts.append("ETA estimating...")
        if self.status in ("finished", "stopped", "error") and self._t_start:
            parts.append(f"elapsed {fmt_seconds(self._t_end - self._t_start)}")
        return {"fraction": fraction, "eta_s": eta, "label": " · ".join(parts),
                "round": job.round if job else None, "iteration": job.iteration if job else None}

    # -- run control ---------------------------------------------------------------------------
    def start(self, request: RunRequest) -> bool:
        """Validate and start ``request`` on a background thread. Returns False (with a message) if
        the request is invalid or a run is in progress; nothing stored is touched then."""
        started = self._start(request)
        self._changed(force=True)  # outside the lock: listeners take a snapshot
        return started

    def _start(self, request: RunRequest) -> bool:
        with self._lock:
            if self.running:
                if self._stop is not None and self._stop.requested:
                    self._pending = request
                    self.level = "info"
                    self.message = ("The previous run is saving its checkpoint; this run starts as soon as it "
                                    "has stopped.")
                else:
                    self.level = "warning"
                    self.message = "A run is in progress: press Stop first, or wait until it has finished."
                return False
            try:
                jobs = plan_jobs(request)
            except Exception as exc:  # ConfigError and anything the configs raise
                self.status = "error"
                self.level = "error"
                self.message = describe_error(exc)
                self._refused = True
                return False
            self._refused = False
            self.state = RunState(self.root, request, jobs)
            self.states[request.mode] = self.state
            self._stop = StopToken()
            self.status = "running"
            self.level = "info"
            self.message = f"Running {len(jobs)} job(s); results go to {self.root}."
            self._t_start = time.monotonic()
            self._t_end = self._t_start
            self._thread = threading.Thread(target=self._worker, args=(jobs, self._stop), name="lt-dashboard-run",
                                            daemon=True)
            self._thread.start()
            return True

    def show_settings(self, request: RunRequest) -> None:
        """Draw the runs the store already holds for ``request``'s settings, in every mode (on page
        load and when the controls change). Settings that cannot run draw nothing."""
        names: List[str] = []
        for mode in MODES:
            try:
                jobs = plan_jobs(request.replace(mode=mode))
            except Exception:  # the message comes when Run is pressed
                continue
            names += [name for job in jobs for name in job.runs]
        found = load_runs_of(self.root, names)
        with self._lock:
            self.settings = found
        self._changed(force=True)

    def stop(self) -> bool:
        """Ask the run to stop at the next step boundary (returns at once); False when idle."""
        with self._lock:
            stopping = self.running and self._stop is not None
            if stopping:
                self._pending = None
                self._stop.request()
                self.status, self.level = "stopping", "warning"
                self.message = "Stopping at the next step; finished rounds are kept."
            else:
                self.level, self.message = "info", "Nothing is running, so there is nothing to stop."
        self._changed(force=True)
        return stopping

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Wait for the run thread to end; True if it has ended."""
        t = self._thread
        if t is not None:
            t.join(timeout)
            return not t.is_alive()
        return True

    def _worker(self, jobs: List[Job], stop: StopToken) -> None:
        outcome, error = "finished", None
        try:
            for job in jobs:  # one after the other (seeds); a lottery job races its criteria in stacks
                self._run_job(job, stop)
        except RunStopped:
            outcome = "stopped"
        except BaseException as exc:  # shown in the page; the kernel keeps working
            outcome, error = "error", exc
            self.log.append(traceback.format_exc())
        with self._lock:
            self._t_end = time.monotonic()
            for j in jobs:
                if j.status in ("waiting", "running"):
                    j.status = "stopped" if outcome != "finished" else "done"
            if outcome == "finished":
                self.status, self.level = "finished", "success"
                self.message = self._finished_message(jobs)
            elif outcome == "stopped":
                self.status, self.level = "stopped", "warning"
                where = ""
                for j in jobs:
                    if j.status == "stopped" and j.round is not None and j.kind != "learned":
                        where = f" at {j.label}, {j.position()}"
                        break
                    if j.status == "stopped" and j.kind == "learned":
                        where = f" at {j.position()}"
                        break
                self.message = (f"Stopped{where}. Finished rounds and the interrupted round's checkpoint are "
                                f"kept in {self.root}; press Run with the same settings to resume.")
            else:
                self.status, self.level = "error", "error"
                self.message = describe_error(error) + " Nothing stored was lost; fix the setting and press Run."
            pending, self._pending = self._pending, None
        self._changed(force=True)
        if pending is not None:
            self.start(pending)

    def _finished_message(self, jobs: List[Job]) -> str:
        """What this run gave, one short sentence per kind of result: its own series only (the
        plots keep the earlier runs of the page), the seeds of a setting as their mean."""
        took = fmt_seconds(self._t_end - self._t_start)
        parts = finished_results(list(self.state.series.values()))
        body = "; ".join(parts)
        return f"Finished in {took}. " + (body + ". " if body else "") + f"Stored in {self.root}."

    def _run_job(self, job: Job, stop: StopToken) -> None:
        if stop.requested:
            raise RunStopped("stopped before start")
        with self._lock:
            job.status = "running"
            self.state.last_job = job
        self._changed()
        try:
            run_experiment(job.experiment, out=self.root, on_event=lambda ev: self._on_event(job, ev),
                           stop=_CountingStop(stop, lambda: self._on_step(job)), progress=False)
        except RunStopped:
            with self._lock:
                job.status = "stopped"
            raise
        except BaseException as exc:
            with self._lock:
                job.status, job.error = "error", describe_error(exc)
            raise
        with self._lock:
            job.status = "done"
            job.finish()
        self._changed()

    def _on_step(self, job: Job) -> None:
        if job.kind == "learned":
            with self._lock:
                self.state.step(job)
            self._changed()

    def _on_event(self, job: Job, ev: dict) -> None:
        with self._lock:
            self.state.apply(job, ev)
        self._changed(force=ev.get("event") in ("round_end", "learn_end"))

    # -- compare -------------------------------------------------------------------------------
    def stored_runs(self) -> List["StoredRun"]:
        return list_runs(self.root)

    def add_overlay(self, name: str) -> Series:
        """Overlay the stored run ``name``: a run folder directly in this dashboard's results root."""
        if not name or Path(name).name != name or name in (".", "..") or not (self.root / name / "config.json").is_file():
            raise ValueError(f"overlay: {name!r} is not a run in the results root {self.root}")
        s = load_stored_series(self.root, name)
        with self._lock:
            self.overlays[name] = s
        self._changed(force=True)
        return s

    def remove_overlay(self, name: str) -> None:
        with self._lock:
            self.overlays.pop(name, None)
        self._changed(force=True)

    def clear_overlays(self) -> None:
        with self._lock:
            self.overlays.clear()
        self._changed(force=True)

    def export_csv(self, path=None) -> Path:
        return export_csv(self.snapshot(), self.root if path is None else None, path=path)

    def show_message(self, text: str, level: str = "info") -> None:
        with self._lock:
            self.message, self.level = text, level
        self._changed(force=True)


def _mean(values: List[float]) -> float:
    return sum(values) / len(values)


def _seeds(n: int) -> str:
    return f" (mean of {n} seeds)" if n > 1 else ""


def finished_results(series: List[Series]) -> List[str]:
    """The results of a finished run's ``series`` as the Finished message words them: the lottery
    settings' early-stop test accuracy at their last round, the best one-shot supermask of each
    mask, each learned supermask's accuracy and expected keep; seeds of one setting averaged."""
    parts: List[str] = []
    by_setting: Dict[tuple, List[Series]] = {}
    for s in series:
        by_setting.setdefault((s.kind, s.setting or s.label), []).append(s)
    lottery = [(setting, group) for (kind, setting), group in by_setting.items() if kind == "lottery"]
    rounds: Dict[int, List[str]] = {}
    remaining: Dict[int, List[float]] = {}
    for setting, group in lottery:
        done = [s for s in group if s.rounds]
        if not done:
            continue
        k = max(max(s.rounds) for s in done)
        last = [s.rounds[k] for s in done if k in s.rounds]
        rounds.setdefault(k, []).append(f"{setting} {_mean([r['early_stop_test_acc'] for r in last]) * 100:.2f}%"
                                        + _seeds(len(last)))
        remaining.setdefault(k, []).extend(r["weights_remaining"] for r in last)
    for k in sorted(rounds):
        parts.append(f"round {k} ({_mean(remaining[k]) * 100:.1f}% of weights left), early-stop test accuracy: "
                     + ", ".join(rounds[k]))
    masks: Dict[str, Dict[object, List[dict]]] = {}  # mask -> prune power -> the seeds' points
    for s in series:
        if s.kind == "oneshot":
            for p in s.points:
                mask = f"{p['criterion']} · {SUPERMASK_WEIGHTS.get(p['weights'], p['weights'])}"
                masks.setdefault(mask, {}).setdefault(p["power"], []).append(p)
    if masks:
        tops = []
        for mask, powers in masks.items():
            points = max(powers.values(), key=lambda ps: _mean([p["test_acc"] for p in ps]))
            tops.append(f"{mask} {_mean([p['test_acc'] for p in points]) * 100:.1f}% at "
                        f"{_mean([p['weights_remaining'] for p in points]) * 100:.1f}% kept" + _seeds(len(points)))
        parts.append("best one-shot supermask: " + ", ".join(tops))
    learned = []
    for (kind, setting), group in by_setting.items():
        finals = [s.learn_final for s in group if kind == "learned" and s.learn_final]
        if finals:
            learned.append(f"{setting} {_mean([f['test_acc_mean'] for f in finals]) * 100:.2f}% "
                           f"(expected keep {_mean([f['expected_keep_fraction'] for f in finals]) * 100:.1f}%)"
                           + _seeds(len(finals)))
    if learned:
        parts.append("learned supermask test accuracy: " + ", ".join(learned))
    return parts
