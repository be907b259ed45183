"""The event stream a run emits, as typed events, and the cooperative stop request.

Every event is a frozen dataclass of one of the types below. Each names its run twice: ``run``, the
run's name (its :class:`lt_core.store.RunKey`'s name, the folder it is stored in) and ``run_dir``, the
absolute path of that folder in the results store (added by :func:`with_run_dir`), so a listener
never rebuilds folder names. Events are also read-only mappings, the JSON-ready dict of
:meth:`Event.to_dict` (``event["run"]``, ``event.get("stage")``; ``event["event"]`` is the type's
``kind``), so a listener written for dicts reads them unchanged.

* :class:`Stage` (``"stage"``) -- a stage started, finished or was reused: ``stage`` names it
  (``"data_loaded"``, ``"round_start"``, ``"round_reused"``, ``"resumed"``, ``"learn_reused"``,
  ``"checkpoint_discarded"``...), ``details`` holds what it says about it. Two stages in particular:
  ``"waiting"`` -- another process holds the run's lock (it trains the run); this one waits, then
  reuses what it stored (``host``, ``pid``; where the lock file cannot be read they are ``None`` and
  ``unreadable``, ``lock`` (its path) and ``stale_after`` (seconds without a heartbeat before it is
  taken over) say so); ``"backend_changed"`` -- a round computed by another numeric backend than
  the round it builds on (``backend``, ``previous``);
* :class:`Eval` (``"eval"``) -- one evaluation point of a training round: ``iteration`` of
  ``iterations``, ``metrics`` (``"<split>_loss"``, ``"<split>_acc"``);
* :class:`RoundEnd` (``"round_end"``) -- a finished (or reused) round of a dense or lottery run;
* :class:`SupermaskPoint` (``"supermask_point"``) -- one one-shot supermask point;
* :class:`LearnEval` (``"learn_eval"``) and :class:`LearnEnd` (``"learn_end"``) -- an evaluation
  point of a learned supermask, and its end (``result``: what its ``summary.json`` holds).

A :class:`StopToken` is checked at every step boundary; when set, the run writes a checkpoint and
raises :class:`RunStopped`. Finished stages stay in the results store and a later call resumes.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar, Dict, Optional

_EMPTY: Mapping = {}


@dataclass(frozen=True, kw_only=True, eq=False)
class Event(Mapping):
    """What every event carries: the run it is about (``None`` for events about no run) and its folder.

    Equality is the mapping's: an event equals the dict of its :meth:`to_dict`.
    """

    kind: ClassVar[str] = ""
    _flat: ClassVar[tuple] = ()  # fields whose mapping is spread into the dict

    run: Optional[str] = None
    run_dir: Optional[str] = None

    def to_dict(self) -> dict:
        """The JSON-ready dict: ``"event"`` (the kind), the fields (``run``, ``run_dir`` and ``round``
        only where known) and the entries of the mapping fields (``details``, ``metrics``, ``result``)."""
        out: Dict[str, object] = {"event": self.kind}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in self._flat:
                out.update(value)
            elif value is not None or f.name not in ("run", "run_dir", "round"):
                out[f.name] = value
        return out

    def __getitem__(self, key: str):
        return self.to_dict()[key]

    def __iter__(self):
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_dict()!r})"


@dataclass(frozen=True, kw_only=True, eq=False)
class Stage(Event):
    kind: ClassVar[str] = "stage"
    _flat: ClassVar[tuple] = ("details",)

    stage: str
    round: Optional[int] = None
    details: Mapping = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, eq=False)
class Eval(Event):
    kind: ClassVar[str] = "eval"
    _flat: ClassVar[tuple] = ("metrics",)

    round: int
    iteration: int
    iterations: int
    metrics: Mapping = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, eq=False)
class RoundEnd(Event):
    kind: ClassVar[str] = "round_end"

    round: int
    weights_remaining: float
    layer_remaining: Mapping
    early_stop_iteration: int
    early_stop_test_acc: float
    final_test_acc: float
    reused: bool


@dataclass(frozen=True, kw_only=True, eq=False)
class SupermaskPoint(Event):
    kind: ClassVar[str] = "supermask_point"

    criterion: str
    weights: str
    power: int
    weights_remaining: float
    train_acc: float
    test_acc: float
    reused: bool


@dataclass(frozen=True, kw_only=True, eq=False)
class LearnEval(Event):
    kind: ClassVar[str] = "learn_eval"

    iteration: int
    iterations: int
    epoch: float
    train_acc: float
    test_acc: float
    expected_keep_fraction: float


@dataclass(frozen=True, kw_only=True, eq=False)
class LearnEnd(Event):
    kind: ClassVar[str] = "learn_end"
    _flat: ClassVar[tuple] = ("result",)

    result: Mapping = field(default_factory=dict)


EVENT_TYPES: Dict[str, type] = {cls.kind: cls for cls in (Stage, Eval, RoundEnd, SupermaskPoint, LearnEval, LearnEnd)}
EventCallback = Callable[[Event], None]


class RunStopped(Exception):
    """Raised when a run stops because a stop was requested; its finished stages are kept."""


class StopToken:
    """A thread-safe stop request, checked by the training loop at each step boundary."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason: Optional[str] = None

    def request(self, reason: Optional[str] = None) -> None:
        """Ask the run to stop at the next step boundary; ``reason`` (e.g. ``"SIGTERM"``) is kept."""
        if not self._event.is_set():
            self.reason = reason
        self._event.set()

    def clear(self) -> None:
        self._event.clear()
        self.reason = None

    @property
    def requested(self) -> bool:
        return self._event.is_set()


def emit(callback: Optional[EventCallback], event: Event) -> None:
    if callback is not None:
        callback(event)


def waiting_reporter(callback: Optional[EventCallback]):
    """The ``on_wait`` of a run's lock (:class:`lt_core.store.RunLock`): a ``waiting`` stage event
    naming the run and the process that holds its lock, which trains it meanwhile."""
    def report(run_path: Path, holder: dict) -> None:
        unreadable = {"unreadable": True, "lock": holder.get("lock"), "stale_after": holder.get("stale_after")} \
            if holder.get("unreadable") else {}
        emit(callback, Stage(stage="waiting", run=run_path.name,
                             details={"host": holder.get("host"), "pid": holder.get("pid"), **unreadable}))
    return report


def with_run_dir(callback: Optional[EventCallback], root) -> Optional[EventCallback]:
    """``callback`` seeing, in every event that names a ``run``, its folder ``root / run`` as ``run_dir``.

    The experiments wrap their listener once, so every event they and the training loop emit for
    a run carries its folder (the loop itself knows runs by name only).
    """
    if callback is None:
        return None
    root = Path(root).absolute()

    def forward(event: Event) -> None:
        if event.run is not None:
            event = dataclasses.replace(event, run_dir=str(root / event.run))
        callback(event)

    return forward
