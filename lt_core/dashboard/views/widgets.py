"""Shared pieces of the dashboard's widgets: labelled controls with tooltips, the cell that shows a
bokeh figure, and the one thread that changes the widget and bokeh models."""

from __future__ import annotations

import html
import threading
import time
import traceback
from collections import OrderedDict
from typing import Callable, Dict, List, Optional

import ipywidgets as W
from jupyter_bokeh.widgets import BokehModel

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


class _TaskQueue:
    """Tasks run one at a time, in order; a task submitted under a key that is still pending
    replaces the pending one (so renders coalesce to the newest snapshot). A task that fails is
    recorded in ``errors`` (its traceback) and passed to ``on_error`` (if set), and never stops
    later ones."""

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._tasks: "OrderedDict[str, Callable[[], None]]" = OrderedDict()
        self._busy = False
        self.errors: List[str] = []
        self.on_error: Optional[Callable[[BaseException], None]] = None

    def _put(self, key: str, fn: Callable[[], None]) -> None:
        with self._cv:
            self._tasks[key] = fn
            self._cv.notify_all()

    def _take(self) -> Optional[Callable[[], None]]:
        with self._cv:
            if not self._tasks:
                return None
            _, fn = self._tasks.popitem(last=False)
            self._busy = True
            return fn

    def _run(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception as exc:  # a failed update must not stop later ones
            self.errors.append(traceback.format_exc())
            if self.on_error is not None:
                try:
                    self.on_error(exc)
                except Exception:
                    self.errors.append(traceback.format_exc())
        finally:
            with self._cv:
                self._busy = False
                self._cv.notify_all()

    def _wait(self, timeout: float) -> bool:
        end = time.monotonic() + timeout
        with self._cv:
            while self._tasks or self._busy:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(left)
        return True


class SerialWorker(_TaskQueue):
    """Runs submitted tasks one at a time on one daemon thread of its own: the dashboard's
    render thread where there is no kernel whose messages could change the models (tests,
    scripts); in a kernel, :class:`KernelLoopWorker`."""

    def __init__(self, name: str = "lt-dashboard-render") -> None:
        super().__init__()
        self.thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self.thread.start()

    def submit(self, key: str, fn: Callable[[], None]) -> None:
        if threading.current_thread() is self.thread and key != "render":
            fn()  # already on the worker: run nested updates (widget observers) in place
            return
        self._put(key, fn)

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._tasks:
                    self._cv.wait()
            fn = self._take()
            if fn is not None:
                self._run(fn)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until no task is pending or running (for tests and scripts)."""
        return self._wait(timeout)


class KernelLoopWorker(_TaskQueue):
    """Runs submitted tasks one at a time on the kernel's main thread, between the messages it
    handles: the thread on which ipykernel hands the page's widget and bokeh messages (a click,
    the ranges BokehJS computes) to the models. Every change to the widget and bokeh models is
    then made on that one thread: a change made from another thread while the kernel applies
    one from the page corrupts bokeh's documents (``Set changed size during iteration`` while
    a line's renderers are added) and interleaves the comm messages of two patches.

    jupyter_bokeh offers no lock of its own, and bokeh's document lock and next-tick callbacks
    exist only in a bokeh server session, so the kernel's event loop is the one serialiser.
    ``io_loop``: the kernel's (tornado) loop, whose ``add_callback`` may be called from any thread.
    """

    def __init__(self, io_loop, thread: threading.Thread) -> None:
        super().__init__()
        self.io_loop, self.thread = io_loop, thread
        self._scheduled = False

    def submit(self, key: str, fn: Callable[[], None]) -> None:
        self._put(key, fn)
        with self._cv:
            go, self._scheduled = not self._scheduled, True
        if go:
            self.io_loop.add_callback(self._step)

    def _step(self) -> None:
        """One task per turn of the loop: the page's messages are handled between two tasks."""
        fn = self._take()
        if fn is not None:
            self._run(fn)
        with self._cv:
            more = bool(self._tasks)
            self._scheduled = more
        if more:
            self.io_loop.add_callback(self._step)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until no task is pending or running; on the kernel's thread itself (a cell), run the
        pending tasks now."""
        if threading.current_thread() is self.thread:
            while True:
                fn = self._take()
                if fn is None:
                    return True
                self._run(fn)
        return self._wait(timeout)


def kernel_worker() -> Optional[KernelLoopWorker]:
    """A :class:`KernelLoopWorker` on the running IPython kernel's loop, or None outside a kernel."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    kernel = getattr(get_ipython(), "kernel", None)
    io_loop = getattr(kernel, "io_loop", None)
    if io_loop is None:
        return None
    return KernelLoopWorker(io_loop, threading.main_thread())


# the changes the page makes to a figure that the kernel takes: the start and end BokehJS computes
# for an axis that follows the data, the plot's measured size, a line hidden or shown from its
# legend; and the page's events (a reset, a tool)
PAGE_ATTRS = {"DataRange1d": {"start", "end"}, "GlyphRenderer": {"visible"}}
PAGE_SIZES = {"inner_width", "inner_height", "outer_width", "outer_height"}


class PlotCell(BokehModel):
    """A bokeh figure in the page (``jupyter_bokeh.BokehModel``) whose kernel-side models the page
    does not overwrite with the kernel's own older values.

    jupyter_bokeh's view (4.1.0) sends back every change a patch from the kernel makes to the
    page's models, once the patch is applied: the kernel gets its own values again, later, when it
    may have changed them since. Applied, such an echo undoes the newer change in the kernel: a
    figure's ``renderers`` or its legend's ``items`` set back to a list without the line added
    meanwhile detach that line's models from the document, so that the kernel's later changes to
    them (its label, its points) never reach the page, and the next line added is built on the
    older list. The kernel owns the plots' content; from the page it takes only what the page
    owns (:data:`PAGE_ATTRS`, :data:`PAGE_SIZES`, events). ``echoes``: the changes it declined."""

    def __init__(self, model, **kwargs) -> None:
        self.echoes = 0
        super().__init__(model, **kwargs)

    def _sync_model(self, _model, content: dict, buffers: list) -> None:
        if content.get("event") == "jsevent" and not self._page_owns(content):
            self.echoes += 1
            return
        super()._sync_model(_model, content, buffers)

    def _page_owns(self, content: dict) -> bool:
        kind = content.get("kind")
        if kind == "MessageSent":
            return True
        if kind != "ModelChanged":
            return False  # columns streamed or patched: only the kernel streams or patches data
        attr = content.get("attr")
        if attr in PAGE_SIZES:
            return True
        ref = content.get("model")
        model = self._document.get_model_by_id(ref.get("id")) if isinstance(ref, dict) and self._document else None
        return model is not None and attr in PAGE_ATTRS.get(type(model).__name__, ())
