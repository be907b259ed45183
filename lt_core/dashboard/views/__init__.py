"""The explorer's page: controls, live plots, mask view and store browser, bound to a
:class:`~lt_core.dashboard.controller.Controller`.

Plots are bokeh figures shown through ``jupyter_bokeh.BokehModel`` (BokehJS must be loaded first
with ``bokeh.io.output_notebook()``, as the app notebook does). The controller calls
:meth:`Dashboard.render` from its run thread at a throttled rate; every change to the bokeh models
is made on the dashboard's one render thread (:class:`~.widgets.SerialWorker`).
"""

from __future__ import annotations

import html
import threading
from typing import Callable, Optional

import ipywidgets as W
from bokeh.layouts import column, row
from jupyter_bokeh.widgets import BokehModel

from ..controller import Controller
from ..request import describe_error
from ..tables import plot_tables
from .compare import ComparePanel
from .controls import Controls
from .masks import MaskView
from .plots import Plots
from .widgets import ControlRows, SerialWorker

TAB_TITLES = ("Lottery rounds", "Supermasks", "Mask view", "Compare & export")


class Dashboard:
    """The page of one controller: ``controls``, ``plots``, ``masks`` (the mask view) and ``compare``
    (the store browser), laid out in ``layout``. ``labels``: every labelled control's label, by name."""

    def __init__(self, controller: Optional[Controller] = None, results_root=None) -> None:
        self.c = controller or Controller(results_root)
        self._render_lock = threading.RLock()
        self._last_status: Optional[str] = None
        self._worker: Optional[SerialWorker] = None
        rows = ControlRows()
        self.labels = rows.labels
        self.controls = Controls(self.c, rows)
        self.plots = Plots()
        self.masks = MaskView(rows, self._render_lock, self._submit)
        self.compare = ComparePanel(self.c, rows)
        self.controls.run_btn.on_click(self.run)
        self.controls.stop_btn.on_click(self.stop)
        self.controls.arch.observe(lambda _: self.render(self.c.snapshot()), names="value")  # the reference lines
        self.controls.apply_mode()
        # Draw the initial state before wrapping the figures in BokehModel widgets: a BokehModel
        # ships its figures' state when the page connects, but changes made before that are lost.
        self._render_now(self.c.snapshot())
        p, m = self.plots, self.masks
        note = W.HTML("<div style='color:#555'>Dotted lines: the paper's Table 1 values for this network. The one-shot "
                      "supermasks' dense training also shows on the iteration plot of the first tab.</div>")
        panels = [W.VBox([BokehModel(column(row(p.curve_fig, p.prune_fig), row(p.layer_fig)))]),
                  W.VBox([note, BokehModel(row(p.super_fig, p.learn_fig))]),
                  W.VBox(m.controls + [BokehModel(row(m.picture_fig, m.unit_fig, m.flip_fig))]),
                  self.compare.panel]
        self.tabs = W.Tab(children=panels)
        for i, title in enumerate(TAB_TITLES):
            self.tabs.set_title(i, title)
        self.tabs.add_class("lt-tabs")
        self.controls.mode.observe(lambda change: self._show_tab(change["new"]), names="value")
        header = W.HTML("<h2 style='margin:4px 0'>Lottery ticket explorer</h2>"
                        "<div style='color:#555'>Zhou et al., <i>Deconstructing Lottery Tickets: Zeros, Signs, "
                        "and the Supermask</i> (NeurIPS 2019). Pick a network and a mode, press Run, watch the "
                        "rounds; hover any control for what it means in the paper's terms.</div>")
        c = self.controls
        self.layout = W.VBox([header, c.controls_box, c.progress_box, c.message, self.tabs])
        self.layout.add_class("lt-dashboard")
        self.compare.refresh()
        self._worker = SerialWorker()
        self.c.add_listener(self.render)

    # -- Run and Stop ---------------------------------------------------------------------------
    def run(self, _=None) -> None:
        """Start the run the controls describe, or show why it cannot start."""
        try:
            req = self.controls.request()
        except Exception as exc:
            self.c.status = "error"
            self.c.show_message(describe_error(exc), "error")
            return
        self.masks.cache.clear()
        if self.c.start(req):
            self._show_tab(req.mode)
        self.controls.apply_mode()

    def stop(self, _=None) -> None:
        self.c.stop()
        self.controls.apply_mode()

    def _show_tab(self, mode: str) -> None:
        self.tabs.selected_index = 0 if mode == "lottery" else 1

    # -- rendering ------------------------------------------------------------------------------
    def _submit(self, key: str, fn: Callable[[], None]) -> None:
        if self._worker is None:  # still building the page: draw at once
            fn()
        else:
            self._worker.submit(key, fn)

    def render(self, snap: dict) -> None:
        """Draw a controller snapshot. Called from any thread (the controller's, throttled, or the UI
        thread); the drawing itself happens on the dashboard's render thread."""
        self._submit("render", lambda: self._render_now(snap))

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until every submitted update is drawn."""
        return self._worker.wait_idle(timeout)

    @property
    def render_errors(self) -> list:
        """Tracebacks of updates that failed on the render thread."""
        return self._worker.errors

    def _render_now(self, snap: dict) -> None:
        with self._render_lock:
            if not snap.get("series") or not snap.get("arch"):
                snap = dict(snap, arch=self.controls.arch.value)  # reference lines follow the chosen network
            self.controls.render_status(snap)
            self.plots.render(snap.get("arch"), plot_tables(snap))
            try:
                self.masks.sync(snap)
            except Exception as exc:  # the mask view never stops the other plots
                self.masks.info.value = f"<span style='color:#a00'>{html.escape(str(exc))}</span>"
            if snap["status"] != self._last_status:
                self._last_status = snap["status"]
                if snap["status"] in ("finished", "stopped", "error"):
                    self.compare.refresh()


def build_app(results_root=None, controller: Optional[Controller] = None) -> Dashboard:
    """A :class:`Dashboard` on ``results_root`` (default ``$LT_RESULTS_DIR``, else ``./results``).
    Display ``app.layout`` in the notebook."""
    return Dashboard(controller=controller, results_root=results_root)
