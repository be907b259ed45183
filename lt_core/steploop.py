"""The driver every training loop shares: steps in chunks up to the next evaluation point, evaluation
at the start, every ``eval_every`` steps and at the end, resume from a checkpoint, a cooperative stop,
a checkpoint every few minutes, and a progress bar.

A loop (:class:`lt_core.train.Trainer`, the learned-mask learners of :mod:`lt_core.supermask`)
subclasses :class:`StepLoop`, sets the attributes it declares and implements its four methods; the
rest is here, each concern in one small helper, so that a loop's own module reads as its algorithm.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import List, Optional

from .events import EventCallback, RunStopped, Stage, StopToken, emit
from .checkpoints import read_checkpoint, remove_checkpoint
from .errors import DamagedFileError


class _Bar:
    """The optional tqdm bar of a loop: advanced every 50 steps, the last test accuracy beside it."""

    def __init__(self, show: bool, total: int, initial: int, desc: str) -> None:
        self.bar = None
        if show:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit="it", leave=False, desc=desc, dynamic_ncols=True)

    def evaluated(self, last: dict) -> None:
        if self.bar is not None and "test_acc" in last:
            self.bar.set_postfix(test_acc=f"{last['test_acc']:.4f}", refresh=False)

    def advanced(self, before: int, it: int) -> None:
        if self.bar is not None and it // 50 != before // 50:
            self.bar.update(it - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class _CheckpointClock:
    """Writes the loop's checkpoint at an evaluation point once ``seconds`` have passed since the last."""

    def __init__(self, loop: "StepLoop") -> None:
        self.loop, self.last = loop, time.monotonic()

    def reset(self) -> None:
        self.last = time.monotonic()

    def evaluated(self, it: int) -> None:
        if self.loop.checkpoint is not None and time.monotonic() - self.last > self.loop.checkpoint_seconds:
            self.loop._save_checkpoint(it)
            self.reset()


class StepLoop:
    """A training loop's driver (see the module docstring).

    A subclass sets, in its ``__init__``, the attributes annotated below (those with a default may be
    left) and implements :meth:`step` (or :meth:`steps` with :meth:`max_steps`), :meth:`evaluate_point`
    (which appends to ``evals[i]`` for each run ``i``), :meth:`_save_checkpoint` and
    :meth:`_load_checkpoint` (which sets ``evals`` and ``start_iteration`` when it resumes).
    """

    iterations: int  # steps in all
    eval_every: int  # steps between evaluation points
    evals: List[List[dict]]  # per run, one dict per evaluation point so far
    start_iteration: int = 0  # where this call starts (a resumed checkpoint's iteration)
    on_event: Optional[EventCallback] = None
    stop: Optional[StopToken] = None
    checkpoint: Optional[Path] = None  # resumed from, written when stopped and every checkpoint_seconds
    checkpoint_seconds: float = 120.0
    progress: bool = False  # a tqdm bar on stderr
    desc = "training"  # the bar's label and the stop message's
    eval_at_start = True  # an evaluation point at iteration 0

    # -- what a loop implements --------------------------------------------------------------------

    def step(self, it: int) -> None:
        raise NotImplementedError

    def evaluate_point(self, it: int) -> None:
        raise NotImplementedError

    def _save_checkpoint(self, it: int) -> None:
        raise NotImplementedError

    def _load_checkpoint(self) -> None:
        raise NotImplementedError

    def max_steps(self, it: int) -> int:
        """How many steps from ``it`` on :meth:`steps` can take in one go."""
        return 1

    def steps(self, it: int, n: int) -> None:
        """Steps ``it`` to ``it + n - 1`` (``n <= max_steps(it)``)."""
        for j in range(n):
            self.step(it + j)

    # -- the driver --------------------------------------------------------------------------------

    def read_checkpoint(self) -> Optional[dict]:
        """The checkpoint's contents, or None without one. A checkpoint that fails its SHA-256 check
        (:func:`lt_core.store.read_checkpoint`: damaged, truncated, or without a recorded digest) is
        reported -- a ``checkpoint_discarded`` stage event naming the file and the cause -- then
        deleted, and training starts afresh: a damaged one is never resumed from."""
        if self.checkpoint is None or not Path(self.checkpoint).is_file():
            return None
        try:
            return read_checkpoint(self.checkpoint)
        except DamagedFileError as exc:
            emit(self.on_event, Stage(stage="checkpoint_discarded",
                                      details={"path": str(self.checkpoint), "reason": exc.problem}))
            remove_checkpoint(self.checkpoint)
            return None

    def stop_if_requested(self, it: int) -> None:
        """At a step boundary: when a stop was requested, write the checkpoint and raise
        :class:`RunStopped`."""
        if self.stop is not None and self.stop.requested:
            self._save_checkpoint(it)
            raise RunStopped(f"{self.desc}: stopped at iteration {it}")

    def next_chunk(self, it: int) -> int:
        """How many steps to take from ``it``: as many as one call takes, up to the next evaluation point."""
        next_eval = min(self.iterations, (it // self.eval_every + 1) * self.eval_every)
        return max(1, min(self.max_steps(it), next_eval - it))

    def is_eval_point(self, it: int) -> bool:
        return it % self.eval_every == 0 or it == self.iterations

    def loop(self) -> None:
        """Resume, then step to the end, evaluating at every evaluation point."""
        self._load_checkpoint()
        it = self.start_iteration
        bar = _Bar(self.progress, self.iterations, it, self.desc)
        clock = _CheckpointClock(self)
        try:
            if it == 0 and self.eval_at_start and not self.evals[0]:
                self.stop_if_requested(it)  # asked for while the round was set up: before its first evaluation
                self.evaluate_point(0)
                clock.reset()
            while it < self.iterations:
                self.stop_if_requested(it)
                n = self.next_chunk(it)
                self.steps(it, n)
                before, it = it, it + n
                if self.is_eval_point(it):
                    self.evaluate_point(it)
                    bar.evaluated(self.evals[0][-1])
                    clock.evaluated(it)
                bar.advanced(before, it)
        finally:
            bar.close()
