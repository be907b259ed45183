"""The live state of one run request, folded from the engine's events by a table of handlers.

:class:`RunState` holds the request's jobs, the :class:`~.series.Series` they fill, the history of
stages and the training progress. :meth:`RunState.apply` finds the series an event is about (from
the event's run directory, see :func:`.stored.event_run_dir`) and hands it to the handler that
:data:`HANDLERS` names for the event (``stage`` events: :data:`STAGE_HANDLERS`). Handlers run under
the controller's lock; they never block on anything but the store's small files.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from lt_core import PruneConfig
from lt_core.store import unfinished_mask, unfinished_round

from .request import Job, RunRequest, lottery_series_key
from .series import (EVAL_FIELDS, LEARN_EVAL_FIELDS, LEARN_FINAL_FIELDS, POINT_FIELDS, SUMMARY_FIELDS, Series,
                     learned_identity, pick)
from .stored import event_run_dir, load_stored_series, run_config, stored_curve

HISTORY_EVENTS = ("stage", "round_end", "learn_end")


class RunState:
    """Jobs, series, history and progress of the run request started last."""

    def __init__(self, root: Path, request: Optional[RunRequest] = None, jobs: Sequence[Job] = ()) -> None:
        self.root = Path(root)
        self.request = request
        self.jobs: List[Job] = list(jobs)
        self.history: List[dict] = []  # the stage / round_end / learn_end events (small dicts)
        self.trained = 0.0  # progress units trained by this request (reused rounds not counted)
        self.reused = 0.0  # progress units found in the store (rounds, checkpoints): not work to do
        self.t_ref: Optional[float] = None  # when training started
        self._rate_from: Optional[Tuple[float, float]] = None  # (time, trained) at the first trained progress
        self._rate_to: Optional[Tuple[float, float]] = None  # (time, trained) at the latest
        self.last_job: Optional[Job] = self.jobs[0] if self.jobs else None
        self.series: Dict[str, Series] = {}
        arch = request.arch if request else "fc"
        for job in self.jobs:
            for key, spec in job.series.items():
                self.series[key] = Series(key, spec.label, spec.kind, arch, job.seed, root=str(self.root),
                                          setting=spec.setting, hue=spec.hue, run=spec.run)
        self._run_keys: Dict[Path, str] = {}

    # -- finding the series of an event ---------------------------------------------------------
    def series_of(self, job: Job, run_dir: Optional[Path]) -> Optional[Series]:
        """The live series a run of ``job`` fills: a lottery job's trunk or branch (known from the
        run's stored config), else the job's own series."""
        if job.kind != "lottery":
            return self.series.get(job.key)
        if run_dir is None:
            return None
        if run_dir not in self._run_keys:
            cfg = run_config(run_dir)
            if cfg.get("kind") == "train":
                self._run_keys[run_dir] = lottery_series_key(job.seed)
            elif cfg.get("kind") == "lottery":
                self._run_keys[run_dir] = lottery_series_key(job.seed, PruneConfig.from_dict(cfg.get("prune") or {}))
            else:
                return None
        return self.series.get(self._run_keys[run_dir])

    def learned_series(self, job: Job, run_dir: Path) -> Series:
        """The series of a learned mask, made on its first event from the run's stored config."""
        s = self.series.get(run_dir.name)
        if s is None:
            setting, hue, variant = learned_identity(run_config(run_dir))
            seed = variant.get("seed", job.seed)
            s = Series(run_dir.name, f"{setting} · seed {seed}", "learned", self.request.arch if self.request else "fc",
                       seed, root=str(self.root), learn_variant=variant, setting=setting, hue=hue, run=run_dir.name)
            s.run_names[0] = run_dir.name
            self.series[run_dir.name] = s
        return s

    @staticmethod
    def part_of(job: Job, s: Optional[Series]) -> str:
        """The progress part an event counts towards: its series in a lottery job, else the job."""
        return s.key if job.kind == "lottery" and s is not None else "main"

    # -- progress -------------------------------------------------------------------------------
    def advance(self, job: Job, units: float, trained: bool, part: str = "main") -> None:
        """Move ``part`` of ``job`` to ``units``; ``trained``: the move was trained now, not reused."""
        delta = units - job.parts.get(part, 0.0)
        if delta > 0:
            job.parts[part] = units
            if trained:
                self.trained += delta
                mark = (time.monotonic(), self.trained)
                if self._rate_from is None:
                    self._rate_from = mark
                self._rate_to = mark
            else:
                self.reused += delta

    def work(self, total: float) -> Tuple[float, float]:
        """``(fraction, eta_s)`` of the work this request has to do, out of ``total`` progress
        units: what the store already holds is not work to do (a resumed run starts at 0% of what
        is left, and the bar never moves back). The ETA divides the work left by the rate measured
        from the first progress trained here to the latest (so the start-up, data loading and
        compiling, does not slow the estimate down); None until the rate is measured over a second."""
        todo = max(0.0, total - self.reused)
        fraction = min(1.0, self.trained / todo) if todo > 0 else 0.0
        eta = None
        if self._rate_from is not None and self._rate_to is not None:
            (t0, u0), (t1, u1) = self._rate_from, self._rate_to
            if t1 - t0 >= 1.0 and u1 > u0:
                rate = (u1 - u0) / (t1 - t0)
                eta = max(0.0, (todo - self.trained) / rate - (time.monotonic() - t1))
        return fraction, eta

    def step(self, job: Job) -> None:
        """A training step of a learned-mask job (between two evaluations)."""
        job.steps += 1
        self.advance(job, min(job.iterations, job.iteration + job.steps), True)

    def mark_training(self) -> None:
        if self.t_ref is None:
            self.t_ref = time.monotonic()

    # -- events ---------------------------------------------------------------------------------
    def apply(self, job: Job, ev: dict) -> None:
        """Fold one engine event of ``job`` into the state."""
        self.last_job = job
        run_dir = event_run_dir(ev, self.root)
        s = self.series_of(job, run_dir)
        kind = ev.get("event")
        if kind in HISTORY_EVENTS:
            self.history.append({"job": job.key, "series": s.key if s else None, "event": kind,
                                 "stage": ev.get("stage"), "round": ev.get("round"),
                                 "iteration": ev.get("iteration"), "reused": ev.get("reused"),
                                 "run": ev.get("run")})
        handler = HANDLERS.get(kind)
        if handler is not None:
            handler(self, job, ev, s, run_dir)


Handler = Callable[[RunState, Job, dict, Optional[Series], Optional[Path]], None]


def on_eval(state: RunState, job: Job, ev: dict, s: Optional[Series], run_dir: Optional[Path]) -> None:
    """An evaluation point: extends the round's curve and the job's progress."""
    if s is None:
        return
    r = int(ev["round"])
    s.curves.setdefault(r, []).append(pick(ev, EVAL_FIELDS))
    s.current_round = r
    if run_dir is not None:
        s.run_names[r] = run_dir.name
    job.round, job.iteration = r, int(ev["iteration"])
    job.iterations = int(ev.get("iterations", job.iterations))
    state.advance(job, job.units(r, job.iteration), True, state.part_of(job, s))


def on_round_end(state: RunState, job: Job, ev: dict, s: Optional[Series], run_dir: Optional[Path]) -> None:
    """A finished (or reused) round: its summary; a reused round's curve comes from the store. The
    dense trunk's round 0 is round 0 of every branch of its job."""
    if s is None or run_dir is None:
        return
    r = int(ev["round"])
    reused = bool(ev.get("reused"))
    s.rounds[r] = pick(ev, SUMMARY_FIELDS + ("reused",))
    s.run_names[r] = run_dir.name
    if reused and not s.curves.get(r):
        curve = stored_curve(run_dir, r)
        if curve is not None:
            s.curves[r] = curve
    if s.current_round is None or r >= s.current_round:
        s.current_round = r
    job.round, job.iteration = r, job.iterations
    state.advance(job, job.units(r, job.iterations), not reused, state.part_of(job, s))
    if job.kind == "lottery" and s.kind == "dense":
        for key, spec in job.series.items():
            if spec.kind == "lottery" and key in state.series:
                state.series[key].rounds[0] = dict(s.rounds[0])
                state.series[key].run_names[0] = run_dir.name


def on_supermask_point(state: RunState, job: Job, ev: dict, s: Optional[Series], run_dir: Optional[Path]) -> None:
    """A one-shot supermask point (criterion, weights, power) evaluated or reused."""
    if s is None:
        return
    s.points.append(pick(ev, POINT_FIELDS))
    if not ev.get("reused"):
        state.mark_training()
    job.points_done = len(s.points)
    state.advance(job, job.iterations + job.points_done * job.point_units, not ev.get("reused"))


def on_learn_eval(state: RunState, job: Job, ev: dict, s: Optional[Series], run_dir: Optional[Path]) -> None:
    """An evaluation of a learned mask being trained."""
    if run_dir is None:
        return
    state.learned_series(job, run_dir).learn.append(pick(ev, LEARN_EVAL_FIELDS))
    job.iteration, job.steps = int(ev.get("iteration", 0)), 0
    job.iterations = int(ev.get("iterations", job.iterations))
    state.advance(job, job.iteration, True)


def on_learn_end(state: RunState, job: Job, ev: dict, s: Optional[Series], run_dir: Optional[Path]) -> None:
    """A learned mask's final numbers; its curve as the store holds it now (every evaluation,
    those from before a stop included, read through the store's reader)."""
    if run_dir is None:
        return
    learned = state.learned_series(job, run_dir)
    learned.learn_final = pick(ev, LEARN_FINAL_FIELDS)
    try:
        stored = load_stored_series(run_dir.parent, run_dir.name, overlay=False)
    except Exception:  # unreadable: the live curve stays
        return
    if stored.learn:
        learned.learn = stored.learn


def on_stage(state: RunState, job: Job, ev: dict, s: Optional[Series], run_dir: Optional[Path]) -> None:
    """A stage started or was reused: handled by :data:`STAGE_HANDLERS` by its name."""
    handler = STAGE_HANDLERS.get(ev.get("stage"))
    if handler is not None:
        handler(state, job, ev, s, run_dir)


def on_round_start(state: RunState, job: Job, ev: dict, s: Optional[Series], run_dir: Optional[Path]) -> None:
    """A round starts training: its curve starts empty."""
    if s is None or run_dir is None:
        return
    r = int(ev["round"])
    s.curves[r] = []
    s.current_round = r
    s.run_names[r] = run_dir.name
    job.round, job.iteration = r, 0
    state.mark_training()


def on_resumed(state: RunState, job: Job, ev: dict, s: Optional[Series], run_dir: Optional[Path]) -> None:
    """An interrupted round (or learned mask) continues from its checkpoint: the evaluation
    points from before the stop come from the checkpoint, with the progress they stand for."""
    job.iteration, job.steps = int(ev.get("iteration", 0)), 0
    if job.kind == "learned":
        if run_dir is not None:  # the event names every mask of the stack; their series start here
            for name in ev.get("runs") or [run_dir.name]:
                learned = state.learned_series(job, run_dir.parent / name)
                evals = unfinished_mask(run_dir.parent / name)
                if evals is not None:
                    learned.learn = [pick(e, LEARN_EVAL_FIELDS) for e in evals]
        state.advance(job, job.iteration, False)
        return
    if ev.get("round") is None or run_dir is None:
        return
    r = int(ev["round"])
    found = unfinished_round(run_dir, r)  # one checkpoint per stack, holding every stacked run's points
    if found is None:
        return
    iteration = found.iteration
    for name, points in found.evals.items():
        run = run_dir.parent / name
        target = state.series_of(job, run)
        if target is None:
            continue
        target.curves[r] = [pick(e, EVAL_FIELDS) for e in points]
        target.current_round = r
        target.run_names[r] = run.name
        state.advance(job, job.units(r, iteration), False, state.part_of(job, target))


def on_data_loaded(state: RunState, job: Job, ev: dict, s: Optional[Series], run_dir: Optional[Path]) -> None:
    """A learned-mask job's training starts once its data is loaded."""
    if job.kind == "learned":
        state.mark_training()


def on_learn_reused(state: RunState, job: Job, ev: dict, s: Optional[Series], run_dir: Optional[Path]) -> None:
    """A learned mask finished earlier: its curve and final numbers come from the store."""
    if run_dir is None:
        return
    stored = load_stored_series(run_dir.parent, run_dir.name)
    learned = state.learned_series(job, run_dir)
    learned.learn, learned.learn_final = stored.learn, stored.learn_final


HANDLERS: Dict[str, Handler] = {"eval": on_eval, "round_end": on_round_end, "supermask_point": on_supermask_point,
                                "learn_eval": on_learn_eval, "learn_end": on_learn_end, "stage": on_stage}
STAGE_HANDLERS: Dict[str, Handler] = {"round_start": on_round_start, "resumed": on_resumed,
                                      "data_loaded": on_data_loaded, "learn_reused": on_learn_reused}
