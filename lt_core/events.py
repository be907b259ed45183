"""The event stream a run emits, and the cooperative stop request.

Events are small JSON-ready dicts with an ``"event"`` key:

* ``{"event": "stage", "stage": ..., ...}`` -- a stage started, finished or was reused
  (``"data_loaded"``, ``"round_start"``, ``"round_reused"``, ``"resumed"``...);
* ``{"event": "eval", "run", "round", "iteration", "iterations", "<split>_loss", "<split>_acc"...}``
  -- one evaluation point;
* ``{"event": "round_end", "run", "round", "weights_remaining", "layer_remaining",
  "early_stop_iteration", "early_stop_test_acc", "final_test_acc", ...}`` -- a finished round.

A :class:`StopToken` is checked at every step boundary; when set, the run writes a checkpoint and
raises :class:`RunStopped`. Finished stages stay in the results store and a later call resumes.
"""

from __future__ import annotations

import threading
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
