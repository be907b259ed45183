"""The explorer's page: controls, live plots, mask view and store browser, bound to a
:class:`~lt_core.dashboard.controller.Controller`.

Plots are bokeh figures shown through ``jupyter_bokeh.BokehModel`` (BokehJS must be loaded first
with ``bokeh.io.output_notebook()``, as the app notebook does). The controller calls
:meth:`Dashboard.render` from its run thread at a throttled rate; every change to the widget and
bokeh models is made on one thread: in a kernel, its main thread, between the page's messages,
which it applies to the same models (:class:`~.widgets.KernelLoopWorker`); elsewhere a render
thread of the dashboard's own (:class:`~.widgets.SerialWorker`). An update that fails is shown
in the page.
"""

from __future__ import annotations

import html
import threading
from typing import Callable, Optional

import ipywidgets as W

from ...backends import warm_up

from ..controller import Controller
from ..request import describe_error
from ..tables import plot_tables
from .compare import ComparePanel
from .controls import Controls
from .masks import MaskView
from .plots import Plots, follow_data, plot_lines, shown_lines
from .widgets import ControlRows, PlotCell, SerialWorker, kernel_worker

TAB_TITLES = ("Lottery rounds", "Supermasks", "Mask view", "Compare & export")
SUPERMASK_NOTE = (
    "<div class='lt-note'><b>Supermasks.</b> A supermask is a mask that, applied to the <i>untrained</i> network, "
    "already gives an accuracy far above chance: no weight is trained, the mask alone selects a good subnetwork. "
    "<i>One-shot</i>: the mask comes from a trained dense network (keep the weights that are large at the end and "
    "kept their sign) and is applied to the initial weights or to signed constants. <i>Learned</i>: only the mask "
    "is trained over frozen weights, by the chosen <i>mask family</i>: Zhou et al.'s keep probability per weight, "
    "edge-popup's top-k scores or signed supermasks' keep / hide / invert. The accuracy-vs-kept plot holds one point "
    "per finished learned run, coloured by family; stars and grey dotted lines mark the papers' values. One-shot plot: one colour per criterion, "
    "initial weights solid with round points (<i>init</i>), signed constants dashed, lighter, with triangles "
    "(<i>signed const</i>). Grey dotted lines: the paper's Table 1. "
    "The Mask view tab shows any of these masks.</div>")
# the page's own styles: dimmed labels of controls that do not apply, plot cells that wrap
PAGE_CSS = """<style>
.lt-dashboard .lt-off { opacity: 0.45; }
.lt-dashboard .lt-grid { display: flex; flex-flow: row wrap; gap: 8px; width: 100%; }
.lt-dashboard .lt-note { color: #444; max-width: 1100px; margin: 4px 0 8px 0; line-height: 1.4; }
.lt-dashboard .lt-criteria select { font-family: monospace; font-size: 12px; }
</style>"""


def grid(figures, basis: str = "560px"):
    """Plots side by side as far as the page is wide, each in its own cell; they wrap on a narrow page."""
    cells = [PlotCell(f, layout=W.Layout(flex=f"1 1 {basis}", min_width="0", max_width="100%")) for f in figures]
    box = W.Box(cells, layout=W.Layout(width="100%"))
    box.add_class("lt-grid")
    return box


class Dashboard:
    """The page of one controller: ``controls``, ``plots``, ``masks`` (the mask view) and ``compare``
    (the store browser), laid out in ``layout``. ``labels``: every labelled control's label, by name."""

    def __init__(self, controller: Optional[Controller] = None, results_root=None) -> None:
        self.c = controller or Controller(results_root)
        self._render_lock = threading.RLock()
        self._last_status: Optional[str] = None
        self._worker = None  # SerialWorker or KernelLoopWorker, once the page is built
        self.render_error = W.HTML()  # a failed update of the page, shown until the page is reloaded
        self.render_error.add_class("lt-render-error")
        rows = ControlRows()
        self.labels = rows.labels
        self.controls = Controls(self.c, rows)
        self.plots = Plots()
        self.masks = MaskView(rows, self._render_lock, self._submit)
        self.compare = ComparePanel(self.c, rows)
        self.compare.on_runs = self.masks.set_stored  # the mask view offers the store's runs too
        self.controls.run_btn.on_click(self.run)
        self.controls.stop_btn.on_click(self.stop)
        self.controls.arch.observe(lambda _: self.render(self.c.snapshot()), names="value")  # the reference lines
        self.controls.apply_mode()
        # Draw the initial state, with the stored runs of the first settings, before wrapping the
        # figures in BokehModel widgets: a BokehModel ships its figures' state when the page
        # connects, but changes made before that are lost.
        self.c.show_settings(self.controls.request())
        self.compare.refresh()  # the store's runs: listed in the Compare tab and offered in the mask view
        self._render_now(self.c.snapshot())
        p, m = self.plots, self.masks
        panels = [grid([p.curve_fig, p.prune_fig, p.layer_fig]),
                  W.VBox([W.HTML(SUPERMASK_NOTE), grid([p.super_fig, p.learn_fig, p.family_fig])]),
                  W.VBox(m.controls + [grid([m.picture_fig, m.unit_fig, m.flip_fig], basis="340px")]),
                  self.compare.panel]
        self.tabs = W.Tab(children=panels)
        for i, title in enumerate(TAB_TITLES):
            self.tabs.set_title(i, title)
        self.tabs.add_class("lt-tabs")
        # the plot cells of each tab, and those changed while their tab was hidden (at first: every
        # cell of a tab not shown yet, which the page builds from the state it had when it loaded)
        self._cells = {i: list(zip(box.children, figs)) for i, box, figs in (
            (0, panels[0], [p.curve_fig, p.prune_fig, p.layer_fig]),
            (1, panels[1].children[1], [p.super_fig, p.learn_fig, p.family_fig]),
            (2, panels[2].children[-1], [m.picture_fig, m.unit_fig, m.flip_fig]))}
        self._stale = {i: set(range(len(cells))) if i != self.tabs.selected_index else set()
                       for i, cells in self._cells.items()}
        for i, cells in self._cells.items():
            for k, (_, fig) in enumerate(cells):
                fig.document.on_change(self._watch(i, k))
        self.tabs.observe(self._on_tab, names="selected_index")
        self.controls.mode.observe(lambda change: self._show_tab(change["new"]), names="value")
        header = W.HTML("<h2 style='margin:4px 0'>Lottery ticket explorer</h2>"
                        "<div style='color:#555'>Zhou et al., <i>Deconstructing Lottery Tickets: Zeros, Signs, "
                        "and the Supermask</i> (NeurIPS 2019). Pick a network and a mode, press Run, watch the "
                        "rounds; hover any control for what it means in the paper's terms.</div>")
        c = self.controls
        self.layout = W.VBox([W.HTML(PAGE_CSS), header, c.controls_box, c.progress_box, c.message,
                              self.render_error, self.tabs])
        self.layout.add_class("lt-dashboard")
        self.compare.refresh_btn.on_click(lambda _: self.render(self.c.snapshot()))  # the mask view's list
        self._worker = kernel_worker() or SerialWorker()
        self._worker.on_error = self._show_render_error
        # the engine's C kernels are compiled once per kernel process (seconds, with no step boundary
        # to stop at): compiled now, in the background, the first round the page trains starts, and
        # stops, as promptly as any later one
        warm_up()
        self.c.add_listener(self.render)
        for widget in self.controls.request_widgets():
            widget.observe(lambda _: self.show_settings(), names="value")

    def show_settings(self) -> None:
        """Draw the stored runs of the settings the controls describe (on the render thread)."""
        def load() -> None:
            try:
                request = self.controls.request()
            except Exception:  # unparsable text: the message comes when Run is pressed
                return
            self.c.show_settings(request)

        self._submit("settings", load)

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

    def _watch(self, tab: int, k: int) -> Callable:
        def changed(event) -> None:
            if self.tabs.selected_index != tab:
                self._stale[tab].add(k)

        return changed

    def _on_tab(self, change) -> None:
        """A tab shown draws afresh the plots that changed while it was hidden: a tab shown for the
        first time builds its plots from the state they had when the page loaded, and a change
        sent to a plot the page does not show is not relied on to reach it. Changes made while a
        tab is shown reach its plots as they are made."""
        tab = change["new"]
        if self._stale.get(tab):
            self._submit("tab", lambda: self.resend(tab))

    def resend(self, tab: int) -> None:
        """Send the page the whole state of the plots of ``tab`` that changed while it was hidden,
        their data-following axes free to follow every line (:func:`~.plots.follow_data`)."""
        with self._render_lock:
            stale, self._stale[tab] = self._stale[tab], set()
            for k in sorted(stale):
                cell, fig = self._cells[tab][k]
                follow_data(fig)
                cell.update_from_model(fig)

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
        """Tracebacks of updates that failed (each is also shown in the page)."""
        return self._worker.errors

    def _show_render_error(self, exc: BaseException) -> None:
        n = len(self._worker.errors)
        text = (f"The page failed to draw an update ({type(exc).__name__}: {exc}); the plots may not show the "
                f"results. The results in the store are not affected: reload the page to draw them again."
                + (f" ({n} failed updates)" if n > 1 else ""))
        self.render_error.value = (f"<div class='lt-msg lt-msg-error' style='background:#fdecec;color:#a00000;"
                                   f"padding:6px 10px;border-radius:4px;border:1px solid #a0000033'>"
                                   f"{html.escape(text)}</div>")

    def _drawn(self, snap: dict) -> dict:
        """The snapshot as the page draws it: with no live run, the reference lines follow the
        chosen network."""
        if not snap.get("series") or not snap.get("arch"):
            snap = dict(snap, arch=self.controls.arch.value)
        return snap

    def lines(self) -> dict:
        """The lines the plots are to hold for the controller's state now, by line group, legend
        entry and ``x`` / ``y`` (see :func:`~.plots.shown_lines`); the groups' names are the
        prefixes of their sources' names in the page (for tests and scripts)."""
        return shown_lines(plot_lines(plot_tables(self._drawn(self.c.snapshot()))))

    def _render_now(self, snap: dict) -> None:
        with self._render_lock:
            snap = self._drawn(snap)
            self.controls.render_status(snap)
            self.plots.render(snap.get("arch"), plot_tables(snap))
            if snap["status"] != self._last_status:
                self._last_status = snap["status"]
                if snap["status"] in ("finished", "stopped", "error"):
                    self.compare.refresh()
            try:
                self.masks.sync(snap)
            except Exception as exc:  # the mask view never stops the other plots
                self.masks.info.value = f"<span style='color:#a00'>{html.escape(str(exc))}</span>"


# Voila shuts a page's kernel down by a request from the page that carries the page's ``_xsrf``
# cookie; Voila never sets that cookie, so the request is refused (403) and the kernel is left
# running. Giving the page an ``_xsrf`` cookie of its own (any random token: the server compares
# the cookie with the value sent alongside it) lets Voila's own request through.
XSRF_COOKIE_JS = """(function () {
  if (/(^|;\\s*)_xsrf=/.test(document.cookie)) return;
  var bytes = new Uint8Array(16);
  window.crypto.getRandomValues(bytes);
  var token = Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  document.cookie = "_xsrf=" + token + "; path=/; SameSite=Strict";
})();"""


def plot_resources():
    """The BokehJS the page loads (``output_notebook(resources=...)``): its core only, which draws
    every plot of the dashboard, not the widget, table, WebGL and MathJax bundles (three fifths of
    BokehJS, some 5 MB of an inline page). Inline or from the CDN as ``$BOKEH_RESOURCES`` says."""
    from bokeh.resources import Resources

    return Resources(components=["bokeh"])


def close_kernel_with_page():
    """A Javascript output for the app notebook: the page's kernel is shut down when the page is
    closed or reloaded (kernels of 0.5-1.5 GB are otherwise left running until culled)."""
    from IPython.display import Javascript

    return Javascript(XSRF_COOKIE_JS)


def build_app(results_root=None, controller: Optional[Controller] = None) -> Dashboard:
    """A :class:`Dashboard` on ``results_root`` (default ``$LT_RESULTS_DIR``, else ``./results``).
    Display ``app.layout`` in the notebook."""
    return Dashboard(controller=controller, results_root=results_root)
