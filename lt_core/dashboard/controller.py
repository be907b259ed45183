"""State and run control of the explorer dashboard. No widget imports: the tests drive it directly.

* :class:`RunRequest` is what the user chose: network, mode, criteria, policies, rounds, schedule,
  seeds, device. :func:`plan_jobs` validates it (raising :class:`lt_core.ConfigError` with a readable
  message) and turns it into engine calls (:class:`Job`).
* :class:`Controller` runs those calls on a background thread. A lottery run trains (or reuses)
  the dense trunk of its seed, then races the selected criteria side by side: every round trains
  all of them as one stack (:func:`lt_core.run_lotteries`). Stop sets the engine's :class:`lt_core.StopToken`; the run raises
  :class:`lt_core.RunStopped` at the next step, finished rounds stay in the results store, and Run
  with the same settings resumes (the engine maps the same configuration to the same directory).
* The engine's events are folded into :class:`Series` (one per run shown on the plots); listeners
  get a snapshot at most every ``throttle_s`` seconds (plus one at every state change).
* :func:`list_runs` / :func:`load_stored_series` browse the results store, :func:`mask_details`
  reads a round's masks and weights, :func:`plot_tables` gives the plots' data as tidy rows and
  :func:`export_csv` writes them.

Percentages are used throughout the plots' data (accuracy and weights remaining in %).
"""

from __future__ import annotations

import copy
import csv
import datetime as _dt
import io
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple

import torch

import lt_core
from lt_core import (ARCHS, CRITERIA, ConfigError, DataConfig, DataError, LearnConfig, ModelConfig, PruneConfig,
                     RunStopped, StopToken, SupermaskConfig, TrainConfig, learn_supermasks, one_shot_supermasks)
from lt_core.archs import get_arch
from lt_core.data import DATASET_INFO
from lt_core.lottery import dense_run_dir, lottery_run_dir, total_iterations
from lt_core.supermask import learn_iterations
from lt_core.store import RunDir, read_json, read_metrics_csv, results_root, torch_load

MODES = {"lottery": "Lottery rounds", "oneshot": "One-shot supermask", "learned": "Learned supermask"}
SCHEDULES = {"quick": "Quick (a curve within about a minute)", "paper": "Paper schedule", "custom": "Custom epochs"}
SUPERMASK_WEIGHTS = {"init": "initial weights", "signed_constant": "signed constants"}

RUN_PREFIXES = ("train-", "lottery-", "supermask-", "learnmask-")
EXPORT_DIR = "dashboard-exports"


def paper_table1(arch: Optional[str]) -> Mapping[str, float]:
    """The paper's Table 1 row of ``arch`` (empty for a network the paper does not report on, or one
    not registered in this session, e.g. a stored run of a plugin's network)."""
    return (get_arch(arch).paper_table1 or {}) if arch in ARCHS else {}


def cuda_available() -> bool:
    return torch.cuda.is_available()


# -- what the user asked for ----------------------------------------------------------------------

@dataclass(frozen=True)
class RunRequest:
    """The dashboard's choices. ``epochs`` applies to the custom schedule; ``iterations`` and
    ``eval_every`` (not shown as controls) replace it for very short runs, e.g. in tests."""

    arch: str = "fc"
    dataset: Optional[str] = None
    mode: str = "lottery"
    criteria: Tuple[str, ...] = ("large_final",)
    mask1: str = "rewind"
    mask0: str = "zero"
    rounds: int = 5
    schedule: str = "quick"
    epochs: Optional[int] = None
    iterations: Optional[int] = None
    eval_every: Optional[int] = None
    seeds: Tuple[int, ...] = (0,)
    device: str = "auto"
    supermask_weights: Tuple[str, ...] = ("init", "signed_constant")
    powers: Optional[Tuple[int, ...]] = None
    learned_weights: Tuple[str, ...] = ("init",)
    dwr: bool = False
    download: bool = True  # fetch a missing dataset (needs the network)

    def replace(self, **changes) -> "RunRequest":
        import dataclasses

        return dataclasses.replace(self, **changes)


def parse_seeds(text: str) -> Tuple[int, ...]:
    """``"0"``, ``"0, 1, 2"`` or ``"0-3"`` (inclusive) -> a tuple of distinct non-negative ints."""
    out: List[int] = []
    for part in str(text).replace(";", ",").replace(" ", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part[1:]:
                lo, hi = part.split("-", 1)
                values = list(range(int(lo), int(hi) + 1))
            else:
                values = [int(part)]
        except ValueError:
            raise ConfigError(f"Seed(s): {text!r} is not a list of integers; write e.g. 0 or 0, 1, 2 or 0-3") from None
        for v in values:
            if v < 0:
                raise ConfigError(f"Seed(s): {v} is negative; seeds are integers >= 0")
            if v not in out:
                out.append(v)
    if not out:
        raise ConfigError("Seed(s): give at least one seed, e.g. 0 or 0, 1, 2")
    if len(out) > 16:
        raise ConfigError(f"Seed(s): {len(out)} seeds given; at most 16 at once")
    return tuple(out)


def _choice(label: str, value, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"{label}: unknown value {value!r}; allowed values: {', '.join(map(str, allowed))}")


def schedule_fields(request: RunRequest, learned: bool = False) -> dict:
    """The TrainConfig (or, for learned masks, LearnConfig) fields of the request's schedule."""
    _choice("Schedule", request.schedule, SCHEDULES)
    if request.schedule == "quick":
        quick = get_arch(request.arch).quick  # each architecture's Quick preset
        return quick.learn_fields() if learned else quick.train_fields()
    if request.schedule == "paper":
        return {}
    out: dict = {}
    if request.iterations is not None:
        out["iterations"] = request.iterations
    elif request.epochs is None:
        raise ConfigError("Epochs: the custom schedule needs a number of epochs (an integer >= 1)")
    else:
        out["epochs"] = request.epochs
    if request.eval_every is not None:
        out["eval_every"] = request.eval_every
    return out


def train_config(request: RunRequest, seed: int) -> TrainConfig:
    return TrainConfig(seed=seed, device=request.device, **schedule_fields(request))


# -- jobs -----------------------------------------------------------------------------------------

@dataclass
class Job:
    """One engine call of a run request, with its progress.

    Progress is kept per part (a run directory of a stacked lottery job, else ``"main"``) in units
    of training iterations; a one-shot supermask point counts as ``point_units`` iterations.
    """

    key: str
    label: str
    kind: str  # "lottery" (dense trunk + stacked branches) | "oneshot" | "learned"
    seed: int
    call: Callable[[Callable[[dict], None], StopToken], Any]
    iterations: int  # per round (learned: in total)
    rounds: int = 0  # pruning rounds of a lottery job
    points: int = 0  # supermask points of a one-shot job
    runs: Dict[str, str] = field(default_factory=dict)  # run directory name -> series key
    trunk: Optional[str] = None  # the dense run directory of a lottery job
    part_totals: Dict[str, float] = field(default_factory=dict)
    parts: Dict[str, float] = field(default_factory=dict)
    points_done: int = 0
    status: str = "waiting"  # waiting | running | done | stopped | error
    round: Optional[int] = None
    iteration: int = 0
    error: Optional[str] = None

    def __post_init__(self) -> None:
        if not self.part_totals:
            total = self.iterations + self.points * self.point_units if self.kind == "oneshot" else self.iterations
            self.part_totals = {"main": max(1.0, float(total))}

    @property
    def total(self) -> float:
        return sum(self.part_totals.values())

    @property
    def done(self) -> float:
        return sum(min(self.parts.get(k, 0.0), t) for k, t in self.part_totals.items())

    def finish(self) -> None:
        self.parts = dict(self.part_totals)

    @property
    def point_units(self) -> float:
        return max(1.0, self.iterations / max(1, 2 * self.points))

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total)

    def position(self) -> str:
        if self.kind == "learned":
            return f"iteration {self.iteration}/{self.iterations}"
        if self.kind == "oneshot" and self.points_done:
            return f"supermask point {self.points_done}/{self.points}"
        parts = []
        if self.kind == "lottery" and self.round is not None:
            parts.append(f"round {self.round}/{self.rounds}")
        elif self.round is not None:
            parts.append(f"round {self.round}")
        parts.append(f"iteration {self.iteration}/{self.iterations}")
        return ", ".join(parts)


def _check_request(request: RunRequest) -> None:
    _choice("Network", request.arch, ARCHS)
    _choice("Mode", request.mode, MODES)
    arch = get_arch(request.arch)
    dataset = request.dataset or arch.dataset
    if dataset not in arch.datasets:
        raise ConfigError(f"Dataset: {dataset!r} does not fit network {request.arch!r}; allowed values: "
                          f"{', '.join(arch.datasets)}")
    _choice("Device", request.device, ("auto", "cpu", "cuda"))
    if request.device == "cuda" and not cuda_available():
        raise ConfigError("Device: 'cuda' was chosen but no CUDA device is available here; choose cpu")
    if not request.seeds:
        raise ConfigError("Seed(s): give at least one seed, e.g. 0 or 0, 1, 2")
    if request.mode in ("lottery", "oneshot"):
        if not request.criteria:
            raise ConfigError("Mask criteria: select at least one criterion")
        for c in request.criteria:
            _choice("Mask criteria", c, CRITERIA)


def plan_jobs(request: RunRequest, root) -> List[Job]:
    """Validate ``request`` and turn it into engine calls. Raises :class:`lt_core.ConfigError`."""
    _check_request(request)
    root = Path(root)
    data = DataConfig(dataset=request.dataset, download=bool(request.download))
    model = ModelConfig(arch=request.arch)
    jobs: List[Job] = []
    if request.mode == "lottery":
        if request.rounds is None or isinstance(request.rounds, bool):
            raise ConfigError("Rounds: give the number of pruning rounds (an integer >= 0)")
        prunes = [PruneConfig(criterion=c, mask1=request.mask1, mask0=request.mask0, rounds=request.rounds)
                  for c in request.criteria]
        for seed in request.seeds:
            train = train_config(request, seed)
            its = total_iterations(data, model, train)
            trunk = dense_run_dir(data, model, train, root).name
            runs = {trunk: f"dense/s{seed}"}
            totals = {trunk: float(its)}
            for prune in prunes:
                name = lottery_run_dir(data, model, train, prune, root).name
                runs[name] = f"lottery/{prune.criterion}/s{seed}"
                totals[name] = float(max(1, prune.rounds * its))

            def lottery_call(on_event, stop, train=train):
                # the criteria race side by side: each round trains every branch in one stack
                return lt_core.run_lotteries(data, model, train, prunes, out=str(root), on_event=on_event, stop=stop)

            label = (f"{len(prunes)} criteria" if len(prunes) > 1 else prunes[0].criterion) + f" · seed {seed}"
            jobs.append(Job(f"lottery/s{seed}", label, "lottery", seed, lottery_call, its, rounds=request.rounds,
                            runs=runs, trunk=trunk, part_totals=totals))
        return jobs

    if request.mode == "oneshot":
        if not request.supermask_weights:
            raise ConfigError("Supermask weights: select initial weights, signed constants or both")
        for w in request.supermask_weights:
            _choice("Supermask weights", w, SUPERMASK_WEIGHTS)
        powers = tuple(request.powers) if request.powers is not None else tuple(range(25))
        sweep = SupermaskConfig(criteria=tuple(request.criteria), weights=tuple(request.supermask_weights),
                                powers=powers)
        for seed in request.seeds:
            train = train_config(request, seed)
            its = total_iterations(data, model, train)

            def oneshot_call(on_event, stop, train=train):
                return one_shot_supermasks(data, model, train, sweep, out=str(root), on_event=on_event, stop=stop)

            n_points = len(sweep.criteria) * len(sweep.weights) * len(sweep.powers)
            jobs.append(Job(f"oneshot/s{seed}", f"one-shot · seed {seed}", "oneshot", seed, oneshot_call, its,
                            points=n_points))
        return jobs

    # learned supermasks: every selected variant and seed trains in one stack
    if not request.learned_weights:
        raise ConfigError("Frozen weights: select initial weights, signed constants or both")
    for w in request.learned_weights:
        _choice("Frozen weights", w, SUPERMASK_WEIGHTS)
    extra = schedule_fields(request, learned=True)
    learns = [LearnConfig(weights=w, dwr=bool(request.dwr), seed=seed, device=request.device, **extra)
              for seed in request.seeds for w in request.learned_weights]
    n_train = DATASET_INFO[request.dataset or get_arch(request.arch).dataset].train_size - data.val_size
    its = learn_iterations(learns[0], request.arch, n_train)

    def learned_call(on_event, stop):
        return learn_supermasks(data, model, learns, out=str(root), on_event=on_event, stop=stop)

    label = "learned · " + ", ".join(SUPERMASK_WEIGHTS[w] for w in request.learned_weights) + \
        (" · DWR" if request.dwr else "")
    jobs.append(Job("learned", label, "learned", request.seeds[0], learned_call, its))
    return jobs


# -- live state -----------------------------------------------------------------------------------

@dataclass
class Series:
    """One run as shown on the plots (live, or loaded from the store as an overlay)."""

    key: str
    label: str
    kind: str  # "dense" | "lottery" | "oneshot" | "learned"
    arch: str = "fc"
    seed: int = 0
    overlay: bool = False
    root: Optional[str] = None
    run_names: Dict[int, str] = field(default_factory=dict)  # round -> run directory name
    rounds: Dict[int, dict] = field(default_factory=dict)  # round -> round_end summary
    curves: Dict[int, List[dict]] = field(default_factory=dict)  # round -> eval points
    current_round: Optional[int] = None
    points: List[dict] = field(default_factory=list)  # one-shot supermask points
    learn: List[dict] = field(default_factory=list)  # learned-mask evaluations
    learn_final: Optional[dict] = None
    learn_variant: Optional[dict] = None  # {"weights": ..., "dwr": ...}

    def shown_round(self) -> Optional[int]:
        if self.current_round is not None:
            return self.current_round
        return max(self.curves) if self.curves else None

    def round_path(self, k: int) -> Optional[Path]:
        if k not in self.run_names or self.root is None:
            return None
        return Path(self.root) / self.run_names[k]


def _curve_from_rows(rows: Iterable[dict]) -> List[dict]:
    by_it: Dict[int, dict] = {}
    for r in rows:
        if r.get("metric") != "accuracy":
            continue
        by_it.setdefault(r["iteration"], {"iteration": r["iteration"]})[f"{r['split']}_acc"] = r["value"]
    return [by_it[k] for k in sorted(by_it) if "test_acc" in by_it[k]]


def _eval_point(ev: dict) -> dict:
    return {k: ev[k] for k in ("iteration", "train_acc", "val_acc", "test_acc", "val_loss") if k in ev}


def _summary_of(ev: dict) -> dict:
    return {k: ev[k] for k in ("round", "weights_remaining", "layer_remaining", "early_stop_iteration",
                               "early_stop_test_acc", "final_test_acc", "reused") if k in ev}


def _fmt_seconds(s: float) -> str:
    s = int(round(max(0.0, s)))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def describe_error(exc: BaseException) -> str:
    """A one-paragraph message for the page."""
    if isinstance(exc, ConfigError):
        return f"Invalid setting. {exc}"
    if isinstance(exc, DataError):
        return f"Data problem. {exc}"
    text = str(exc) or type(exc).__name__
    if isinstance(exc, ValueError):
        return f"Invalid setting. {text}"
    return f"{type(exc).__name__}: {text}"


class _Throttle:
    """Calls ``fn`` at most once per ``interval`` seconds; a skipped call is made later, once."""

    def __init__(self, interval: float, fn: Callable[[], None]) -> None:
        self.interval, self.fn = interval, fn
        self._lock = threading.Lock()
        self._run = threading.Lock()
        self._last = 0.0
        self._timer: Optional[threading.Timer] = None

    def __call__(self, force: bool = False) -> None:
        with self._lock:
            now = time.monotonic()
            wait = self._last + self.interval - now
            if force or wait <= 0:
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None
                self._last = now
                go = True
            else:
                if self._timer is None:
                    self._timer = threading.Timer(wait, self._fire)
                    self._timer.daemon = True
                    self._timer.start()
                go = False
        if go:
            self._call()

    def _fire(self) -> None:
        with self._lock:
            self._timer = None
            self._last = time.monotonic()
        self._call()

    def _call(self) -> None:
        with self._run:
            self.fn()


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
        self.request: Optional[RunRequest] = None
        self.jobs: List[Job] = []
        self.series: Dict[str, Series] = {}
        self.overlays: Dict[str, Series] = {}
        self.log: List[str] = []  # tracebacks of unexpected errors
        self.history: List[dict] = []  # the stage / round_end events of the latest run (small dicts)
        self._lock = threading.RLock()
        self._thread: Optional[threading.Thread] = None
        self._stop: Optional[StopToken] = None
        self._listeners: List[Callable[[dict], None]] = []
        self._throttle = _Throttle(throttle_s, self._flush)
        self._version = 0
        self._t_start = 0.0
        self._t_end = 0.0
        self._t_ref: Optional[float] = None
        self._trained = 0.0
        self._last_job: Optional[Job] = None

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
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

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
                "series": copy.deepcopy(list(self.series.values())),
                "overlays": copy.deepcopy(list(self.overlays.values())),
                "progress": self._progress(),
                "jobs": [{"key": j.key, "label": j.label, "status": j.status, "fraction": j.fraction,
                          "position": j.position(), "error": j.error} for j in self.jobs],
                "root": str(self.root),
            }

    def _progress(self) -> dict:
        total = sum(j.total for j in self.jobs)
        done = sum(min(j.done, j.total) for j in self.jobs)
        fraction = done / total if total else 0.0
        if self.status == "finished":
            fraction = 1.0
        eta = None
        if self.status == "running" and self._t_ref is not None and self._trained > 0:
            elapsed = time.monotonic() - self._t_ref
            if elapsed > 0.5:
                eta = max(0.0, (total - done) * elapsed / self._trained)
        job = self._last_job
        parts = []
        if job is not None and self.status in ("running", "stopping", "stopped"):
            parts.append(f"{job.label}: {job.position()}")
        if self.jobs:
            parts.append(f"{fraction * 100:.0f}%")
        if eta is not None:
            parts.append(f"ETA {_fmt_seconds(eta)}")
        elif self.status == "running":
            parts.append("ETA estimating...")
        if self.status in ("finished", "stopped", "error") and self._t_start:
            parts.append(f"elapsed {_fmt_seconds(self._t_end - self._t_start)}")
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
                self.message = "A run is in progress; press Stop first."
                self.level = "warning"
                return False
            try:
                jobs = plan_jobs(request, self.root)
            except Exception as exc:  # ConfigError and anything the configs raise
                self.status = "error"
                self.level = "error"
                self.message = describe_error(exc)
                return False
            self.request = request
            self.jobs = jobs
            self.history = []
            self.series = {}
            for job in jobs:
                if job.kind == "lottery":
                    for run, key in job.runs.items():
                        if run == job.trunk:
                            label = f"dense (round 0) · seed {job.seed}"
                            kind = "dense"
                        else:
                            label = f"{key.split('/')[1]} · {request.mask1}/{request.mask0} · seed {job.seed}"
                            kind = "lottery"
                        self.series[key] = Series(key, label, kind, request.arch, job.seed, root=str(self.root))
                elif job.kind == "oneshot":
                    self.series[job.key] = Series(job.key, job.label, job.kind, request.arch, job.seed,
                                                  root=str(self.root))
            self._stop = StopToken()
            self.status = "running"
            self.level = "info"
            self.message = f"Running {len(jobs)} job(s); results go to {self.root}."
            self._t_start = time.monotonic()
            self._t_end = self._t_start
            self._t_ref = None
            self._trained = 0.0
            self._last_job = jobs[0] if jobs else None
            self._thread = threading.Thread(target=self._worker, args=(jobs, self._stop), name="lt-dashboard-run",
                                            daemon=True)
            self._thread.start()
            return True

    def stop(self) -> bool:
        """Ask the run to stop at the next step boundary (returns at once)."""
        with self._lock:
            if not self.running or self._stop is None:
                return False
            self._stop.request()
            self.status = "stopping"
            self.level = "warning"
            self.message = "Stopping at the next step; finished rounds are kept."
        self._changed(force=True)
        return True

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
        self._changed(force=True)

    def _finished_message(self, jobs: List[Job]) -> str:
        took = _fmt_seconds(self._t_end - self._t_start)
        parts = []
        for s in self.series.values():
            if s.kind == "lottery" and s.rounds:
                last = s.rounds[max(s.rounds)]
                parts.append(f"{s.label}: {last['weights_remaining'] * 100:.1f}% weights remaining, "
                             f"early-stop test accuracy {last['early_stop_test_acc'] * 100:.2f}%")
            elif s.kind == "oneshot" and s.points:
                best = max(s.points, key=lambda p: p["test_acc"])
                parts.append(f"{s.label}: best one-shot supermask {best['test_acc'] * 100:.1f}% "
                             f"({best['criterion']}, {best['weights']}, {best['weights_remaining'] * 100:.1f}% kept)")
            elif s.kind == "learned" and s.learn_final:
                parts.append(f"{s.label}: learned supermask test accuracy {s.learn_final['test_acc_mean'] * 100:.2f}%, "
                             f"expected keep {s.learn_final['expected_keep_fraction'] * 100:.1f}%")
        body = "; ".join(parts)
        return f"Finished in {took}. " + (body + ". " if body else "") + f"Stored in {self.root}."

    def _run_job(self, job: Job, stop: StopToken) -> None:
        if stop.requested:
            raise RunStopped("stopped before start")
        with self._lock:
            job.status = "running"
            self._last_job = job
        self._changed()
        try:
            job.call(lambda ev: self._on_event(job, ev), stop)
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

    # -- events --------------------------------------------------------------------------------
    def _advance(self, job: Job, units: float, trained: bool, part: str = "main") -> None:
        delta = units - job.parts.get(part, 0.0)
        if delta > 0:
            job.parts[part] = units
            if trained:
                self._trained += delta

    def _mark_training(self) -> None:
        if self._t_ref is None:
            self._t_ref = time.monotonic()

    def _learned_series(self, job: Job, run: str) -> Series:
        s = self.series.get(run)
        if s is None:
            variant = {}
            try:
                cfg = read_json(self.root / run / "config.json").get("learn", {})
                variant = {"weights": cfg.get("weights", "init"), "dwr": bool(cfg.get("dwr", False)),
                           "seed": cfg.get("seed", 0)}
            except (OSError, ValueError):
                pass
            label = "learned · " + SUPERMASK_WEIGHTS.get(variant.get("weights"), run)
            if variant.get("dwr"):
                label += " · DWR"
            label += f" · seed {variant.get('seed', job.seed)}"
            s = Series(run, label, "learned", self.request.arch if self.request else "fc", variant.get("seed", job.seed),
                       root=str(self.root), learn_variant=variant)
            s.run_names[0] = run
            self.series[run] = s
        return s

    def _series_of(self, job: Job, ev: dict) -> Optional[Series]:
        if job.runs:
            key = job.runs.get(ev.get("run"))
            return self.series.get(key) if key else None
        return self.series.get(job.key)

    def _on_event(self, job: Job, ev: dict) -> None:
        kind = ev.get("event")
        with self._lock:
            self._last_job = job
            s = self._series_of(job, ev)
            part = ev.get("run", "main") if job.runs else "main"
            if kind in ("stage", "round_end", "learn_end"):
                self.history.append({"job": job.key, "series": s.key if s else None, "event": kind,
                                     "stage": ev.get("stage"), "round": ev.get("round"),
                                     "iteration": ev.get("iteration"), "reused": ev.get("reused"),
                                     "run": ev.get("run")})
            if kind == "eval" and s is not None:
                r = int(ev["round"])
                s.curves.setdefault(r, []).append(_eval_point(ev))
                s.current_round = r
                s.run_names[r] = ev.get("run", s.run_names.get(r))
                job.round, job.iteration = r, int(ev["iteration"])
                job.iterations = int(ev.get("iterations", job.iterations))
                self._advance(job, self._units(job, r, job.iteration), True, part)
            elif kind == "round_end" and s is not None:
                r = int(ev["round"])
                reused = bool(ev.get("reused"))
                s.rounds[r] = _summary_of(ev)
                s.run_names[r] = ev["run"]
                if reused and not s.curves.get(r):
                    try:
                        s.curves[r] = _curve_from_rows(RunDir(self.root / ev["run"]).rows(r))
                    except (OSError, KeyError, ValueError):
                        pass
                if s.current_round is None or r >= s.current_round:
                    s.current_round = r
                job.round, job.iteration = r, job.iterations
                self._advance(job, self._units(job, r, job.iterations), not reused, part)
                if job.kind == "lottery" and ev["run"] == job.trunk:
                    # the dense trunk is round 0 of every branch
                    for run, key in job.runs.items():
                        if run != job.trunk and key in self.series:
                            self.series[key].rounds[0] = dict(s.rounds[0])
                            self.series[key].run_names[0] = job.trunk
            elif kind == "stage":
                stage = ev.get("stage")
                if stage == "round_start" and s is not None:
                    r = int(ev["round"])
                    s.curves[r] = []
                    s.current_round = r
                    s.run_names[r] = ev["run"]
                    job.round, job.iteration = r, 0
                    self._mark_training()
                elif stage == "resumed":
                    job.iteration = int(ev.get("iteration", 0))
                    if job.kind == "learned":
                        for run_s in self.series.values():
                            if run_s.kind == "learned" and not run_s.overlay:
                                self._load_learn_checkpoint(run_s)
                        self._advance(job, job.iteration, False)
                    elif ev.get("round") is not None:
                        self._load_checkpoint_curves(job, int(ev["round"]))
                elif stage == "data_loaded" and job.kind == "learned":
                    self._mark_training()
                elif stage == "learn_reused":
                    ls = self._learned_series(job, ev["run"])
                    stored = load_stored_series(self.root, ev["run"])
                    ls.learn, ls.learn_final = stored.learn, stored.learn_final
            elif kind == "supermask_point" and s is not None:
                s.points.append({k: ev[k] for k in ("criterion", "weights", "power", "weights_remaining",
                                                    "train_acc", "test_acc") if k in ev})
                if not ev.get("reused"):
                    self._mark_training()
                n = len(s.points)
                job.points_done = n
                self._advance(job, job.iterations + n * job.point_units, not ev.get("reused"))
            elif kind == "learn_eval":
                ls = self._learned_series(job, ev.get("run", job.key))
                ls.learn.append({k: ev[k] for k in ("iteration", "epoch", "train_acc", "test_acc",
                                                    "expected_keep_fraction") if k in ev})
                job.iteration = int(ev.get("iteration", 0))
                job.iterations = int(ev.get("iterations", job.iterations))
                self._advance(job, job.iteration, True)
            elif kind == "learn_end":
                ls = self._learned_series(job, ev.get("run", job.key))
                ls.learn_final = {k: ev[k] for k in ("test_acc_mean", "test_acc_samples", "expected_keep_fraction",
                                                     "layer_keep_fraction") if k in ev}
        self._changed(force=kind in ("round_end", "learn_end"))

    def _units(self, job: Job, r: int, iteration: int) -> float:
        if job.kind == "lottery":
            return iteration if r == 0 else (r - 1) * job.iterations + iteration
        if job.kind == "oneshot":
            return min(iteration, job.iterations) if r == 0 else job.iterations
        return iteration

    def _load_checkpoint_curves(self, job: Job, r: int) -> None:
        """After a resume: the evaluation points from before the stop, from the round's checkpoint
        (one checkpoint per stack, holding every stacked run's points), and the progress they stand for."""
        names = [run for run in (job.runs or {}) if (run == job.trunk) == (r == 0)]
        if not job.runs:
            s = self.series.get(job.key)
            names = [s.run_names[r]] if s is not None and r in s.run_names else []
        for run in names:
            path = RunDir(self.root / run).round_dir(r) / "checkpoint.pt"
            if not path.is_file():
                continue
            try:
                state = torch_load(path)
            except Exception:
                continue
            for label, evals in zip(state.get("labels", []), state.get("evals", [])):
                target = self.series.get(job.runs.get(label)) if job.runs else self.series.get(job.key)
                if target is None:
                    continue
                target.curves[r] = [_eval_point(e) for e in evals]
                target.current_round = r
                target.run_names[r] = label
                self._advance(job, self._units(job, r, int(state.get("iteration", 0))), False,
                              label if job.runs else "main")

    def _load_learn_checkpoint(self, s: Series) -> None:
        try:
            state = torch_load(self.root / s.key / "checkpoint.pt")
            labels = state["labels"]
            s.learn = [dict(e) for e in state["evals"][labels.index(s.key)]]
        except Exception:
            pass

    # -- compare -------------------------------------------------------------------------------
    def stored_runs(self) -> List["StoredRun"]:
        return list_runs(self.root)

    def add_overlay(self, name: str) -> Series:
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


# -- results store ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class StoredRun:
    name: str
    path: Path
    kind: str
    arch: str
    description: str
    done: int  # finished rounds (lottery, including round 0), points (supermask), 0/1 otherwise
    total: Optional[int]

    @property
    def label(self) -> str:
        if self.kind == "lottery":
            state = f"{self.done - 1}/{self.total} rounds" if self.done else "no round finished"
        elif self.kind == "supermask":
            state = f"{self.done} points"
        else:
            state = "finished" if self.done else "unfinished"
        return f"{self.name} · {self.description} · {state}"


def _schedule_text(train: dict) -> str:
    if train.get("iterations"):
        return f"{train['iterations']} it"
    if train.get("epochs"):
        return f"{train['epochs']} ep"
    return "paper schedule"


def _describe(cfg: dict) -> str:
    kind = cfg.get("kind", "?")
    train = cfg.get("train", {}) or {}
    arch = (cfg.get("model") or {}).get("arch", "?")
    seed = (train.get("seed") if kind != "learnmask" else (cfg.get("learn") or {}).get("seed", 0)) or 0
    if kind == "lottery":
        p = cfg.get("prune", {}) or {}
        return f"{arch} {p.get('criterion')} {p.get('mask1')}/{p.get('mask0')} · {_schedule_text(train)} · seed {seed}"
    if kind == "train":
        return f"{arch} dense · {_schedule_text(train)} · seed {seed}"
    if kind == "supermask":
        return f"{arch} one-shot supermasks · dense {_schedule_text(train)} · seed {seed}"
    if kind == "learnmask":
        learn = cfg.get("learn", {}) or {}
        text = f"{arch} learned mask · {SUPERMASK_WEIGHTS.get(learn.get('weights'), learn.get('weights'))}"
        if learn.get("dwr"):
            text += " · DWR"
        length = f"{learn['iterations']} it" if learn.get("iterations") else (
            f"{learn['epochs']} ep" if learn.get("epochs") else "paper schedule")
        return f"{text} · {length} · seed {seed}"
    return kind


def list_runs(root) -> List[StoredRun]:
    """Runs in the results store (directories ``train-*``, ``lottery-*``, ... with a config.json)."""
    root = Path(root)
    out: List[StoredRun] = []
    if not root.is_dir():
        return out
    for d in sorted(root.iterdir()):
        if not d.is_dir() or not d.name.startswith(RUN_PREFIXES) or not (d / "config.json").is_file():
            continue
        try:
            cfg = read_json(d / "config.json")
        except (OSError, ValueError):
            continue
        kind = cfg.get("kind") or d.name.split("-", 1)[0]
        arch = (cfg.get("model") or {}).get("arch") or d.name.split("-")[1]
        rd = RunDir(d)
        total: Optional[int] = None
        if kind == "lottery":
            trunk = RunDir(root / cfg.get("trunk", "")) if cfg.get("trunk") else None
            done = len([k for k in rd.done_rounds() if k > 0]) + (1 if trunk and trunk.round_done(0) else 0)
            total = (cfg.get("prune") or {}).get("rounds", 24)
        elif kind == "train":
            done = 1 if rd.round_done(0) else 0
            total = 1
        elif kind == "supermask":
            done = _count_csv_rows(d / "points.csv")
        else:
            done = 1 if (d / "summary.json").is_file() else 0
            total = 1
        out.append(StoredRun(d.name, d, kind, arch, _describe(cfg), done, total))
    return out


def _count_csv_rows(path: Path) -> int:
    if not path.is_file():
        return 0
    with open(path, newline="") as fh:
        return max(0, sum(1 for _ in fh) - 1)


def load_stored_series(root, name: str) -> Series:
    """A stored run as a :class:`Series` (overlay)."""
    root = Path(root)
    d = root / name
    cfg = read_json(d / "config.json")
    kind = cfg.get("kind") or name.split("-", 1)[0]
    arch = (cfg.get("model") or {}).get("arch", "fc")
    seed = int(((cfg.get("train") or cfg.get("learn") or {}).get("seed")) or 0)
    short = _describe(cfg).split(" ", 1)[-1]
    label = f"{short} [{name.rsplit('-', 1)[-1][:6]}]"
    series_kind = {"train": "dense", "lottery": "lottery", "supermask": "oneshot", "learnmask": "learned"}.get(kind, kind)
    s = Series(name, label, series_kind, arch, seed, overlay=True, root=str(root))
    rounds: List[Tuple[int, RunDir]] = []
    if kind in ("train", "lottery"):
        if kind == "lottery" and cfg.get("trunk"):
            trunk = RunDir(root / cfg["trunk"])
            if trunk.round_done(0):
                rounds.append((0, trunk))
            rd = RunDir(d)
            rounds += [(k, rd) for k in rd.done_rounds() if k > 0]
        elif kind == "train":
            rd = RunDir(d)
            if rd.round_done(0):
                rounds.append((0, rd))
        for k, rd in rounds:
            summary = rd.summary(k)
            s.rounds[k] = {key: summary[key] for key in ("round", "weights_remaining", "layer_remaining",
                                                         "early_stop_iteration", "early_stop_test_acc",
                                                         "final_test_acc") if key in summary}
            s.run_names[k] = rd.name
            try:
                s.curves[k] = _curve_from_rows(rd.rows(k))
            except (OSError, KeyError, ValueError):
                s.curves[k] = []
        s.current_round = max(s.rounds) if s.rounds else None
    elif kind == "supermask":
        path = d / "points.csv"
        if path.is_file():
            with open(path, newline="") as fh:
                for r in csv.DictReader(fh):
                    s.points.append({"criterion": r["criterion"], "weights": r["weights"], "power": int(r["power"]),
                                     "weights_remaining": float(r["weights_remaining"]),
                                     "train_acc": float(r["train_acc"]), "test_acc": float(r["test_acc"])})
        if cfg.get("trunk") and RunDir(root / cfg["trunk"]).round_done(0):
            trunk = RunDir(root / cfg["trunk"])
            s.rounds[0] = {k: v for k, v in trunk.summary(0).items() if k != "wall_seconds"}
            s.run_names[0] = trunk.name
    elif kind == "learnmask":
        learn = cfg.get("learn") or {}
        s.learn_variant = {"weights": learn.get("weights"), "dwr": bool(learn.get("dwr")), "seed": seed}
        s.run_names[0] = name
        summary = read_json(d / "summary.json") if (d / "summary.json").is_file() else None
        if (d / "metrics.csv").is_file():
            rows = read_metrics_csv(d / "metrics.csv")
            dataset = (cfg.get("data") or {}).get("dataset") or get_arch(arch).dataset
            n_train = DATASET_INFO[dataset].train_size - int((cfg.get("data") or {}).get("val_size", 5000))
            spe = max(1, n_train // int(learn.get("batch_size", 250)))
            by_it: Dict[int, dict] = {}
            for r in rows:
                e = by_it.setdefault(r["iteration"], {"iteration": r["iteration"], "epoch": r["iteration"] / spe})
                if r["metric"] == "accuracy":
                    e[f"{r['split']}_acc"] = r["value"]
                elif r["metric"] == "expected_keep_fraction":
                    e["expected_keep_fraction"] = r["value"]
            s.learn = [by_it[k] for k in sorted(by_it)]
        if summary:
            s.learn_final = {k: summary[k] for k in ("test_acc_mean", "test_acc_samples", "expected_keep_fraction",
                                                     "layer_keep_fraction") if k in summary}
    return s


# -- mask view -------------------------------------------------------------------------------------

def mask_details(run_path, k: int) -> dict:
    """What the mask view shows for round ``k`` stored under ``run_path``.

    * ``picture``: for a first layer fed by 28x28 images, how many of each input pixel's outgoing
      weights survive (a 28x28 list of lists), else None;
    * ``per_unit``: per layer, the fraction kept of each output unit's weights (filters of a conv
      layer, neurons of a dense layer);
    * ``remaining``: per layer, the fraction of weights kept;
    * ``sign_flips``: per layer, the fraction of kept weights whose sign differs between the
      round's initial weights w_i and its final weights w_f; ``sign_flips_overall`` over all layers.
    """
    rd = RunDir(run_path)
    masks = rd.load_tensors(k, "masks")
    if masks is None:
        raise FileNotFoundError(f"{rd.round_dir(k)} has no masks.pt")
    init = rd.load_tensors(k, "init")
    final = rd.load_tensors(k, "final")
    masks = {n: m.bool() for n, m in masks.items()}
    first = next(iter(masks))
    picture = None
    m0 = masks[first]
    if m0.dim() == 2 and m0.shape[1] == 784:
        picture = m0.sum(0).reshape(28, 28).tolist()
    per_unit = {n: m.reshape(m.shape[0], -1).float().mean(1).tolist() for n, m in masks.items()}
    remaining = {n: float(m.float().mean()) for n, m in masks.items()}
    flips, total_flips, total_kept = {}, 0, 0
    if init is not None and final is not None:
        for n, m in masks.items():
            wi, wf = init["weights"][n], final["weights"][n]
            differ = (torch.sign(wi) != torch.sign(wf)) & m
            kept = int(m.sum())
            nf = int(differ.sum())
            flips[n] = nf / kept if kept else 0.0
            total_flips += nf
            total_kept += kept
    return {"round": k, "picture": picture, "per_unit": per_unit, "remaining": remaining, "sign_flips": flips,
            "sign_flips_overall": (total_flips / total_kept) if total_kept else None,
            "layers": list(masks), "fan_out": int(m0.shape[0])}


# -- plot data ------------------------------------------------------------------------------------

def plot_tables(snapshot: dict) -> Dict[str, List[dict]]:
    """The plots' data as tidy rows (accuracies and fractions in %), live runs then overlays."""
    tables: Dict[str, List[dict]] = {"curve": [], "accuracy_vs_remaining": [], "layer_remaining": [],
                                     "supermask": [], "learned": [], "reference": []}
    all_series: List[Series] = list(snapshot.get("series", [])) + list(snapshot.get("overlays", []))
    for s in all_series:
        r = s.shown_round()
        if s.kind in ("dense", "lottery", "oneshot") and r is not None:
            for p in s.curves.get(r, []):
                tables["curve"].append({"series": s.label, "overlay": s.overlay, "round": r,
                                        "iteration": p["iteration"], "test_acc": 100 * p["test_acc"]})
        if s.kind == "lottery" or (s.kind == "dense" and s.overlay):
            for k in sorted(s.rounds):
                rec = s.rounds[k]
                tables["accuracy_vs_remaining"].append({
                    "series": s.label, "overlay": s.overlay, "round": k,
                    "weights_remaining": 100 * rec["weights_remaining"],
                    "early_stop_test_acc": 100 * rec["early_stop_test_acc"]})
        if s.kind == "lottery":
            for k in sorted(s.rounds):
                for layer, frac in (s.rounds[k].get("layer_remaining") or {}).items():
                    tables["layer_remaining"].append({"series": s.label, "overlay": s.overlay, "layer": layer,
                                                      "round": k, "weights_remaining": 100 * frac})
        if s.kind == "oneshot":
            for p in sorted(s.points, key=lambda p: (p["criterion"], p["weights"], p["power"])):
                tables["supermask"].append({"series": s.label, "overlay": s.overlay, "criterion": p["criterion"],
                                            "weights": p["weights"], "power": p["power"],
                                            "weights_remaining": 100 * p["weights_remaining"],
                                            "test_acc": 100 * p["test_acc"], "train_acc": 100 * p["train_acc"]})
        if s.kind == "learned":
            for e in s.learn:
                row = {"series": s.label, "overlay": s.overlay, "iteration": e.get("iteration"),
                       "epoch": e.get("epoch"), "test_acc": 100 * e["test_acc"]}
                if "expected_keep_fraction" in e:
                    row["expected_keep"] = 100 * e["expected_keep_fraction"]
                tables["learned"].append(row)
        if s.kind == "dense" and 0 in s.rounds and not s.overlay:
            tables["reference"].append({"name": f"dense baseline · seed {s.seed}", "value":
                                        100 * s.rounds[0]["early_stop_test_acc"]})
    arch = snapshot.get("arch")
    for key, value in paper_table1(arch).items():
        tables["reference"].append({"name": f"paper Table 1 · {arch} · {key}", "value": value})
    return tables


def csv_rows(tables: Dict[str, List[dict]]) -> List[List]:
    """Long format: plot, series, line, x_name, x, y_name, y."""
    out: List[List] = [["plot", "series", "line", "x_name", "x", "y_name", "y"]]
    for r in tables["curve"]:
        out.append(["accuracy_vs_iteration", r["series"], f"round {r['round']}", "iteration", r["iteration"],
                    "test_accuracy_percent", r["test_acc"]])
    for r in tables["accuracy_vs_remaining"]:
        out.append(["accuracy_vs_weights_remaining", r["series"], f"round {r['round']}", "weights_remaining_percent",
                    r["weights_remaining"], "early_stop_test_accuracy_percent", r["early_stop_test_acc"]])
    for r in tables["layer_remaining"]:
        out.append(["layer_weights_remaining", r["series"], r["layer"], "round", r["round"],
                    "weights_remaining_percent", r["weights_remaining"]])
    for r in tables["supermask"]:
        out.append(["supermask_accuracy_vs_weights_remaining", r["series"], f"{r['criterion']} / {r['weights']}",
                    "weights_remaining_percent", r["weights_remaining"], "test_accuracy_percent", r["test_acc"]])
    for r in tables["learned"]:
        out.append(["learned_supermask", r["series"], "test accuracy", "epoch", r["epoch"],
                    "test_accuracy_percent", r["test_acc"]])
        if "expected_keep" in r:
            out.append(["learned_supermask", r["series"], "expected keep fraction", "epoch", r["epoch"],
                        "expected_keep_percent", r["expected_keep"]])
    for r in tables["reference"]:
        out.append(["reference", r["name"], "", "", "", "test_accuracy_percent", r["value"]])
    return out


def export_csv(snapshot: dict, root=None, *, path=None) -> Path:
    """Write the plots' data (see :func:`csv_rows`) to ``path``, else to a new file under
    ``<root>/dashboard-exports/``. Returns the path."""
    if path is None:
        if root is None:
            raise ValueError("export_csv: give a results root or a path")
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        path = Path(root) / EXPORT_DIR / f"plots-{stamp}.csv"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for row in csv_rows(plot_tables(snapshot)):
        writer.writerow([("" if v is None else (f"{v:.6g}" if isinstance(v, float) else v)) for v in row])
    from lt_core.store import atomic_write_text

    atomic_write_text(path, buf.getvalue())
    return path
