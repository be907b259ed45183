"""The event stream a run emits, and the cooperative stop request.

Events are small JSON-ready dicts with an ``"event"`` key:

Every event about one run names it twice: ``"run"`` (its folder's name) and ``"run_dir"`` (the
absolute path of its folder in the results store, added by :func:`with_run_dir`), so a listener
never rebuilds folder names.

* ``{"event": "stage", "stage": ..., ...}`` -- a stage started, finished or was reused
  (``"data_loaded"``, ``"round_start"``, ``"round_reused"``, ``"resumed"``...);
* ``{"event": "eval", "run", "round", "iteration", "iterations", "<split>_loss", "<split>_acc"...}``
  -- one evaluation point;
* ``{"event": "round_end", "run", "round", "weights_remaining", "layer_remaining",
  "early_stop_iteration", "early_stop_test_acc", "final_test_acc", ...}`` -- a finished round;
* ``{"event": "stage", "stage": "waiting", "run", "host", "pid"}`` -- another process holds the
  run's lock (it trains the run); this one waits, then reuses what it stored. Where the lock file
  cannot be read, ``host`` and ``pid`` are ``None`` and ``"unreadable": true``, ``"lock"`` (its
  path) and ``"stale_after"`` (seconds without a heartbeat before it is taken over) say so;
* ``{"event": "stage", "stage": "backend_changed", "run", "round", "backend", "previous"}`` -- a
  round computed by another numeric backend than the round it builds on.

A :class:`StopToken` is checked at every step boundary; when set, the run writes a checkpoint and
raises :class:`RunStopped`. Finished stages stay in the results store and a later call resumes.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable, Optional

EventCallback = Callable[[dict], None]


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


def emit(callback: Optional[EventCallback], **record) -> None:
    if callback is not None:
        callback(record)


def waiting_reporter(callback: Optional[EventCallback]):
    """The ``on_wait`` of a run's lock (:class:`lt_core.store.RunLock`): a ``waiting`` stage event
    naming the run and the process that holds its lock, which trains it meanwhile."""
    def report(run_path: Path, holder: dict) -> None:
        unreadable = {"unreadable": True, "lock": holder.get("lock"), "stale_after": holder.get("stale_after")} \
            if holder.get("unreadable") else {}
        emit(callback, event="stage", stage="waiting", run=run_path.name, host=holder.get("host"),
             pid=holder.get("pid"), **unreadable)
    return report


def with_run_dir(callback: Optional[EventCallback], root) -> Optional[EventCallback]:
    """``callback`` seeing, in every event that names a ``run``, its folder ``root / run`` as ``run_dir``.

    The experiments wrap their listener once, so every event they and the training loop emit for
    a run carries its folder (the loop itself knows runs by name only).
    """
    if callback is None:
        return None
    root = Path(root).absolute()

    def forward(record: dict) -> None:
        if "run" in record:
            record = {**record, "run_dir": str(root / record["run"])}
        callback(record)

    return forward
