"""Pacing of the dashboard's updates: listener calls at most a few times a second, and elapsed
times and ETAs as the page shows them."""

from __future__ import annotations

import threading
import time
from typing import Callable, Optional


def fmt_seconds(s: float) -> str:
    """``75`` -> ``"1:15"``, ``3700`` -> ``"1:01:40"``."""
    s = int(round(max(0.0, s)))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


class Throttle:
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
