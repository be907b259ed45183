"""Shared pieces of the dashboard's widgets: labelled controls with tooltips, and the one thread
that changes the bokeh models."""

from __future__ import annotations

import html
import threading
import time
import traceback
from collections import OrderedDict
from typing import Callable, Dict, List, Optional

import ipywidgets as W

from .tips import control_tip

LABEL_WIDTH = "132px"
STYLE = {"description_width": LABEL_WIDTH}
CONTROL_WIDTH = "220px"


def label_html(name: str, text: str, tip: str, style: str = "") -> str:
    """A visible control label carrying the control's tooltip, with CSS class ``lt-label-<name>``."""
    return (f"<label class='lt-label lt-label-{name}' title='{html.escape(tip, quote=True)}' "
            f"style='cursor:help{style}'>{html.escape(text)}</label>")


class ControlRows:
    """Makes the dashboard's controls, and keeps their visible labels and label+control rows by name.

    ipywidgets does not show the tooltip of every kind of control, so a labelled control's label
    carries the same tooltip (``labels[name]``); ``rows[name]`` is the pair as one row.
    """

    def __init__(self) -> None:
        self.labels: Dict[str, W.HTML] = {}
        self.rows: Dict[str, W.Box] = {}

    def add(self, cls, name: str, label: Optional[str] = None, **kw):
        """A control with the tooltip ``control_tip(name)`` and CSS class ``lt-<name>``; with ``label``, also
        its label and row."""
        tip = control_tip(name)
        if label is not None and cls is not W.Checkbox:
            kw.setdefault("layout", W.Layout(width=CONTROL_WIDTH))
        widget = cls(tooltip=tip, **kw)
        widget.add_class(f"lt-{name}")
        if label is None:
            return widget
        if cls is W.Checkbox:
            lab = W.HTML(label_html(name, label, tip), layout=W.Layout(margin="0 14px 0 0"))
            row = W.HBox([widget, lab], layout=W.Layout(align_items="center"))
        else:
            lab = W.HTML(label_html(name, label, tip, ";display:block;text-align:right"),
                         layout=W.Layout(width=LABEL_WIDTH, margin="0 6px 0 0"))
            row = W.HBox([lab, widget], layout=W.Layout(align_items="center"))
        self.labels[name] = lab
        self.rows[name] = row
        return widget


class SerialWorker:
    """Runs submitted tasks one at a time on one daemon thread; a task submitted under a key that
    is still pending replaces the pending one (so renders coalesce to the newest snapshot).

    Every change to the bokeh models goes through it: jupyter_bokeh sends each change as several
    comm messages, and ipykernel may interleave messages sent from different threads.
    """

    def __init__(self, name: str = "lt-dashboard-render") -> None:
        self._cv = threading.Condition()
        self._tasks: "OrderedDict[str, Callable[[], None]]" = OrderedDict()
        self._busy = False
        self.errors: List[str] = []
        self.thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self.thread.start()

    def submit(self, key: str, fn: Callable[[], None]) -> None:
        if threading.current_thread() is self.thread and key != "render":
            fn()  # already on the worker: run nested updates (widget observers) in place
            return
        with self._cv:
            self._tasks[key] = fn
            self._cv.notify_all()

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._tasks:
                    self._cv.wait()
                _, fn = self._tasks.popitem(last=False)
                self._busy = True
            try:
                fn()
            except Exception:  # a failed update must not stop later ones
                self.errors.append(traceback.format_exc())
            finally:
                with self._cv:
                    self._busy = False
                    self._cv.notify_all()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until no task is pending or running (for tests and scripts)."""
        end = time.monotonic() + timeout
        with self._cv:
            while self._tasks or self._busy:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(left)
        return True
