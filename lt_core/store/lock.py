"""Per-run locks: one process at a time trains a run; the others wait, then reuse what it stored.

The engine takes a run's lock before it looks at what is finished and holds it while it trains,
so two processes (the CLI, a notebook, the dashboard, Dask workers) asked for the same run never
train it twice: the second waits, then finds the rounds finished and reuses them.

A lock is the file ``.lock`` inside the run folder, created with ``O_CREAT | O_EXCL`` (atomic on
local and NFSv3+ file systems). It holds the holder's host, pid, thread and a random token; a
thread of the holder touches the file (its mtime is the heartbeat) every ``heartbeat`` seconds.
A lock is stale when its heartbeat is older than ``stale_after`` seconds, or at once when its
holder is a process of this host that no longer exists (a killed worker); a stale lock is taken
over: renamed away (one contender wins the rename), its token checked, and the lock created anew.

Several runs are locked in one fixed order (sorted paths, :func:`hold_locks`), so two processes
locking overlapping sets never wait for each other in a cycle.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Callable, Iterable, Iterator, List, Optional

LOCK_FILE = ".lock"
STALE_AFTER = 60.0  # seconds without a heartbeat after which a lock is taken over
HEARTBEAT = 10.0  # seconds between heartbeats
POLL = 0.2  # seconds between two looks at a held lock
UNREADABLE_GRACE = 1.0  # seconds a lock file may stay unreadable (being written) before the wait is reported


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def _read(path: Path) -> Optional[dict]:
    """The holder recorded in lock file ``path``; ``{}`` if unreadable (being written), ``None`` if absent."""
    try:
        with open(path) as fh:
            return json.load(fh)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}


class RunLock:
    """The lock of the run stored in folder ``run_path``; a context manager (see the module docstring).

    ``on_wait(run_path, holder)`` is called once when the lock is found held by someone else, with
    the run's folder and the holder's record (host, pid, ...), so the caller can say what it waits for.
    A lock file that stays unreadable (empty or damaged, not just being written) is reported too, with
    ``holder = {"unreadable": True, "lock": <its path>, "stale_after": <seconds>}``: it is waited for
    until its heartbeat is that old, then taken over.
    """

    def __init__(self, run_path, *, stale_after: float = STALE_AFTER, heartbeat: float = HEARTBEAT,
                 on_wait: Optional[Callable[[Path, dict], None]] = None) -> None:
        self.path = Path(run_path) / LOCK_FILE
        self.stale_after, self.heartbeat, self.on_wait = stale_after, heartbeat, on_wait
        self.holder = {"host": socket.gethostname(), "pid": os.getpid(), "thread": threading.get_ident(),
                       "token": uuid.uuid4().hex}
        self._stop = threading.Event()
        self._beat: Optional[threading.Thread] = None

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def stale(self, holder: dict) -> bool:
        """Whether the lock ``holder`` (as read from the file) may be taken over."""
        try:
            age = time.time() - os.stat(self.path).st_mtime
        except FileNotFoundError:
            return False
        if age > self.stale_after:
            return True
        return holder.get("host") == self.holder["host"] and isinstance(holder.get("pid"), int) \
            and not _alive(holder["pid"])

    def acquire(self) -> None:
        """Wait until the lock is ours (taking over a stale one), then start the heartbeat."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        told = False
        unreadable_since: Optional[float] = None
        while not self._create():
            holder = _read(self.path)
            if holder is None:
                continue  # released meanwhile: try again at once
            if self.stale(holder):  # an unreadable record ({}) too, once its heartbeat is old
                self._take_over(holder)
                continue
            if holder:
                unreadable_since = None
            elif unreadable_since is None:
                unreadable_since = time.monotonic()
            if not told and self.on_wait is not None:
                if holder:
                    self.on_wait(self.path.parent, holder)
                    told = True
                elif time.monotonic() - unreadable_since >= UNREADABLE_GRACE:
                    self.on_wait(self.path.parent, {"unreadable": True, "lock": str(self.path),
                                                    "stale_after": self.stale_after})
                    told = True
            time.sleep(POLL)
        self._stop.clear()
        self._beat = threading.Thread(target=self._beating, name=f"heartbeat {self.path}", daemon=True)
        self._beat.start()

    def release(self) -> None:
        """Stop the heartbeat and remove the lock file if it is still ours; a run folder that the
        lock alone created (nothing was written, e.g. the dataset was missing) goes with it."""
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
            self._beat = None
        if (_read(self.path) or {}).get("token") == self.holder["token"]:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            with contextlib.suppress(OSError):  # not empty (the usual case), or gone: keep it as it is
                self.path.parent.rmdir()

    def _create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as fh:
            json.dump({**self.holder, "acquired": time.time()}, fh)
        return True

    def _take_over(self, seen: dict) -> None:
        """Move the stale lock ``seen`` out of the way; if what was moved is not ``seen`` (a contender
        took over first and created a fresh lock), put it back."""
        grave = self.path.with_name(f"{LOCK_FILE}.stale-{uuid.uuid4().hex}")
        try:
            os.rename(self.path, grave)
        except FileNotFoundError:
            return
        if (_read(grave) or {}).get("token") != seen.get("token"):
            with contextlib.suppress(FileExistsError):
                os.link(grave, self.path)
        os.unlink(grave)

    def _beating(self) -> None:
        while not self._stop.wait(self.heartbeat):
            with contextlib.suppress(FileNotFoundError):
                os.utime(self.path)


@contextlib.contextmanager
def hold_locks(run_paths: Iterable, **options) -> Iterator[List[RunLock]]:
    """Hold the locks of several runs, taken in sorted order (no deadlock), released in reverse."""
    locks = [RunLock(p, **options) for p in sorted({Path(p) for p in run_paths})]
    held: List[RunLock] = []
    try:
        for lock in locks:
            lock.acquire()
            held.append(lock)
        yield held
    finally:
        for lock in reversed(held):
            lock.release()
