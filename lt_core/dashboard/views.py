"""The explorer's widgets and live plots, bound to a :class:`~lt_core.dashboard.controller.Controller`.

Plots are bokeh figures shown through ``jupyter_bokeh.BokehModel`` (BokehJS must be loaded first
with ``bokeh.io.output_notebook()``, as the app notebook does). The controller calls
:meth:`Dashboard.render` from its run thread at a throttled rate; render assigns whole new
``ColumnDataSource.data`` dicts, which reach the page as one message per source.
"""

from __future__ import annotations

import base64
import html
import threading
import time
import traceback
from collections import OrderedDict
from typing import Callable, Dict, List, Optional, Tuple

import ipywidgets as W
from bokeh.layouts import column, row
from bokeh.models import BasicTicker, ColorBar, ColumnDataSource, DataRange1d, HoverTool, Legend, LinearColorMapper, Range1d
from bokeh.palettes import Category10_10, Viridis256
from bokeh.plotting import figure
from jupyter_bokeh.widgets import BokehModel

from lt_core import ARCHS, CRITERIA, MASK0_POLICIES, MASK1_POLICIES, get_arch

from .controller import (MODES, SCHEDULES, Controller, RunRequest, Series, cuda_available, mask_details,
                         paper_table1, parse_seeds, plot_tables)

DATASET_LABELS = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}

TIPS = {
    "arch": "The network and its dataset (paper section 2): FC is LeNet 300-100-10 on MNIST; Conv2, Conv4 and "
            "Conv6 are the VGG-like convolutional networks on CIFAR-10 (Conv8, deeper, is from the follow-up "
            "supermask papers).",
    "dataset": "The dataset the network is trained and tested on (5,000 training images are held out for "
               "validation / early stopping).",
    "mode": "Lottery rounds: iterative pruning, retraining after every round (sections 2-4). One-shot supermask: a "
            "mask computed once from the trained dense network and applied to the untrained network, with no "
            "training (section 5, Table 1 'Mask'). Learned supermask: only a Bernoulli mask over frozen weights is "
            "trained (section 5.2, Table 1 'Learned').",
    "criteria": "Mask criterion M(w_i, w_f): the score deciding which weights a round keeps, from the initial "
                "weights w_i and the final weights w_f (section 2, Figure 2). large_final is the original lottery "
                "ticket; large_final_same_sign is the supermask criterion. Select several (Ctrl/Shift-click) to race "
                "them side by side.",
    "mask1": "Mask-1 action: what the kept weights (mask value 1) restart from before retraining (section 3): "
             "rewind to w_i (the lottery ticket), reinit, reshuffle or constant, and their sign-keeping variants.",
    "mask0": "Mask-0 action: what the pruned weights (mask value 0) do (section 4): set to zero (the lottery "
             "ticket), frozen at their initial value, or frozen at zero when they moved toward zero during training.",
    "rounds": "Pruning rounds after the dense round 0. Each round prunes 20% of the remaining hidden FC weights "
              "(10% of the output layer; 10-15% of conv weights), so about 0.8^k of the weights remain after k rounds.",
    "w_init": "Use the initial weights w_i under the mask (Table 1 'Mask, Init' / 'Learned, Init').",
    "w_sc": "Use signed constants: every weight replaced by its layer's initial standard deviation times sign(w_i) "
            "(Table 1 'S.C.').",
    "dwr": "Dynamic weight rescaling (learned supermasks): every forward pass scales a layer's masked weights by "
           "its weight count over the number of ones in the sampled mask (section 5.2, Table 1 'DWR').",
    "supermask_weights": "Which weights the one-shot supermask is applied to, without any training: the initial "
                         "weights w_i and/or signed constants (Table 1 'Mask, Init' and 'Mask, S.C.').",
    "learned_weights": "Which frozen weights the learned supermask is trained over: the initial weights w_i and/or "
                       "signed constants (Table 1 'Learned, Init' and 'Learned, S.C.').",
    "schedule": "Quick: a short run (FC: 300 iterations, evaluation every 50) that draws a curve within about a "
                "minute on a laptop CPU. Paper: the paper's schedule (FC: Adam 1.2e-3, batch 60, 55 epochs; learned "
                "masks: SGD lr 100, 2000 epochs). Custom: the number of epochs below.",
    "epochs": "Epochs of the custom schedule (one epoch = one pass over the 55,000 MNIST or 45,000 CIFAR-10 "
              "training images).",
    "seeds": "Seed(s): initialisation, data order and mask tie-breaks. Several (e.g. 0, 1, 2 or 0-3) give one line "
             "per seed.",
    "device": "Where the networks train: the CPU, or a CUDA GPU when one is present (auto picks CUDA if present).",
    "run": "Start, or resume: the same settings reuse the finished rounds in the results store and continue an "
           "interrupted round from its checkpoint.",
    "stop": "Stop at the next training step. Finished rounds stay in the results store; Run resumes.",
    "mask_run": "Which run's masks to show (live runs and overlays).",
    "mask_round": "Which pruning round's mask to show (round 0 is the dense network).",
    "mask_layer": "Layer whose per-unit kept fraction is shown (per filter for conv layers, per neuron for dense "
                  "layers).",
    "mask_follow": "Show the newest finished round while a run is in progress.",
    "runs": "Finished and unfinished runs in the results store (the same store the command line and the "
            "notebooks use). Select one or more to overlay them (dashed) on the plots.",
    "refresh": "Scan the results store again.",
    "overlay": "Draw the selected stored runs on the plots, dashed.",
    "clear": "Remove all overlays from the plots.",
    "export": "Write the data of the current plots (live runs, overlays, references) to a CSV file in the results "
              "store and offer it for download.",
}


def control_tip(name: str) -> str:
    """The tooltip of control ``name``. The network, policy and criterion tips spell out the registered
    choices, read when the control is built (so names that user code registered before are included)."""
    choices = {"arch": lambda: (f"{a.name}: {a.label}" for a in ARCHS.values()),
               "mask1": lambda: (f"{p.name}: {p.description}" for p in MASK1_POLICIES.values()),
               "mask0": lambda: (f"{p.name}: {p.description}" for p in MASK0_POLICIES.values()),
               "criteria": lambda: (f"{c.name} = {c.formula}" for c in CRITERIA.values())}
    text = TIPS.get(name, "")
    return text + " " + "; ".join(choices[name]()) + "." if name in choices else text


LABEL_WIDTH = "132px"
STYLE = {"description_width": LABEL_WIDTH}
CONTROL_WIDTH = "220px"
PLOT_W, PLOT_H, PLOT_H_BELOW = 560, 340, 470


def _palette(i: int) -> str:
    return Category10_10[i % 10]


def _lines_data(groups: Dict[str, Tuple[List, List]], colors: Dict[str, str], label: str = "label") -> dict:
    """multi_line data; each renderer of a figure needs its own label column (one legend item per field)."""
    labels = list(groups)
    return {"xs": [groups[k][0] for k in labels], "ys": [groups[k][1] for k in labels], label: labels,
            "color": [colors[k] for k in labels]}


def _empty_lines(label: str = "label") -> dict:
    return {"xs": [], "ys": [], label: [], "color": []}


class _SerialWorker:
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


class Dashboard:
    """Controls, plots, mask view and store browser of one controller."""

    def __init__(self, controller: Optional[Controller] = None, results_root=None) -> None:
        self.c = controller or Controller(results_root)
        self._render_lock = threading.RLock()
        self._colors: Dict[str, str] = {}
        self._sent: Dict[int, object] = {}
        self._mask_cache: Dict[Tuple[str, int], dict] = {}
        self._mask_series: Dict[str, Series] = {}
        self._mask_follow_lock = False
        self._mask_shown = None
        self._placeholders: list = []
        self.labels: Dict[str, W.HTML] = {}
        self.rows: Dict[str, W.Box] = {}
        self._last_status: Optional[str] = None
        self._last_snapshot: Optional[dict] = None
        self._build_controls()
        self._build_plots()
        self._build_mask_view()
        self._build_compare()
        self._apply_mode()
        # Draw the initial state before wrapping the figures in BokehModel widgets: a BokehModel
        # ships its figures' state when the page connects, but changes made before that are lost.
        self._render_now(self.c.snapshot())
        self._build_panels()
        self.tabs = W.Tab(children=[self.lottery_panel, self.supermask_panel, self.mask_panel, self.compare_panel])
        for i, title in enumerate(["Lottery rounds", "Supermasks", "Mask view", "Compare & export"]):
            self.tabs.set_title(i, title)
        self.tabs.add_class("lt-tabs")
        header = W.HTML("<h2 style='margin:4px 0'>Lottery ticket explorer</h2>"
                        "<div style='color:#555'>Zhou et al., <i>Deconstructing Lottery Tickets: Zeros, Signs, "
                        "and the Supermask</i> (NeurIPS 2019). Pick a network and a mode, press Run, watch the "
                        "rounds; hover any control for what it means in the paper's terms.</div>")
        self.layout = W.VBox([header, self.controls_box, self.progress_box, self.message, self.tabs])
        self.layout.add_class("lt-dashboard")
        self.refresh_runs()
        self._worker = _SerialWorker()
        self.c.add_listener(self.render)

    # -- controls ------------------------------------------------------------------------------
    def _w(self, cls, name: str, label: Optional[str] = None, **kw):
        """A control with the tooltip ``control_tip(name)`` and CSS class ``lt-<name>``. With ``label``, also a
        visible label carrying the same tooltip (``self.labels[name]``) and the pair as one row
        (``self.rows[name]``): ipywidgets does not show the tooltip of every control kind."""
        tip = control_tip(name)
        if label is not None and cls is not W.Checkbox:
            kw.setdefault("layout", W.Layout(width=CONTROL_WIDTH))
        widget = cls(tooltip=tip, **kw)
        widget.add_class(f"lt-{name}")
        if label is None:
            return widget
        text = (f"<label class='lt-label lt-label-{name}' title='{html.escape(tip, quote=True)}' "
                f"style='cursor:help{{align}}'>{html.escape(label)}</label>")
        if cls is W.Checkbox:
            lab = W.HTML(text.replace("{align}", ""), layout=W.Layout(margin="0 14px 0 0"))
            row_ = W.HBox([widget, lab], layout=W.Layout(align_items="center"))
        else:
            lab = W.HTML(text.replace("{align}", ";display:block;text-align:right"),
                         layout=W.Layout(width=LABEL_WIDTH, margin="0 6px 0 0"))
            row_ = W.HBox([lab, widget], layout=W.Layout(align_items="center"))
        self.labels[name] = lab
        self.rows[name] = row_
        return widget

    def _build_controls(self) -> None:
        self.arch = self._w(W.Dropdown, "arch", "Network", options=[(a.label, a.name) for a in ARCHS.values()],
                            value="fc")
        self.dataset = self._w(W.Dropdown, "dataset", "Dataset", options=self._dataset_options("fc"))
        self.mode = self._w(W.Dropdown, "mode", "Mode", options=[(v, k) for k, v in MODES.items()], value="lottery")
        self.criteria = self._w(W.SelectMultiple, "criteria", "Mask criteria",
                                options=[(f"{c.name}  ({c.formula})", c.name) for c in CRITERIA.values()],
                                value=("large_final",), rows=6)
        self.mask1 = self._w(W.Dropdown, "mask1", "Mask-1 policy", options=[(p, p) for p in MASK1_POLICIES],
                             value="rewind")
        self.mask0 = self._w(W.Dropdown, "mask0", "Mask-0 policy", options=[(p, p) for p in MASK0_POLICIES],
                             value="zero")
        self.rounds = self._w(W.IntText, "rounds", "Rounds", value=5)
        self.w_init = self._w(W.Checkbox, "w_init", "initial weights", value=True, indent=False,
                              layout=W.Layout(width="20px"))
        self.w_sc = self._w(W.Checkbox, "w_sc", "signed constants", value=True, indent=False,
                            layout=W.Layout(width="20px"))
        self.dwr = self._w(W.Checkbox, "dwr", "DWR", value=False, indent=False, layout=W.Layout(width="20px"))
        self.weights_label = W.HTML(layout=W.Layout(width=LABEL_WIDTH, margin="0 6px 0 0"))
        self.schedule = self._w(W.Dropdown, "schedule", "Schedule", options=[(v, k) for k, v in SCHEDULES.items()],
                                value="quick")
        self.epochs = self._w(W.IntText, "epochs", "Epochs (custom)", value=1)
        self.seeds = self._w(W.Text, "seeds", "Seed(s)", value="0", placeholder="0 or 0, 1, 2")
        devices = [("auto", "auto"), ("cpu", "cpu")] + ([("cuda", "cuda")] if cuda_available() else [])
        self.device = self._w(W.Dropdown, "device", "Device", options=devices, value="auto")
        self.run_btn = self._w(W.Button, "run", description="Run", button_style="success", icon="play",
                               layout=W.Layout(width="110px"))
        self.stop_btn = self._w(W.Button, "stop", description="Stop", button_style="danger", icon="stop",
                                layout=W.Layout(width="110px"), disabled=True)
        self.status = W.HTML(layout=W.Layout(margin="0 0 0 12px"))
        self.status.add_class("lt-status")

        self.arch.observe(self._on_arch, names="value")
        self.mode.observe(lambda _: self._apply_mode(switch_tab=True), names="value")
        self.schedule.observe(lambda _: self._apply_mode(), names="value")
        self.run_btn.on_click(self._on_run)
        self.stop_btn.on_click(self._on_stop)

        r = self.rows
        col1 = W.VBox([r["arch"], r["dataset"], r["mode"], r["device"]])
        weights = W.HBox([self.weights_label, r["w_init"], r["w_sc"], r["dwr"]], layout=W.Layout(align_items="center"))
        col2 = W.VBox([r["criteria"], weights])
        col3 = W.VBox([r["mask1"], r["mask0"], r["rounds"]])
        col4 = W.VBox([r["schedule"], r["epochs"], r["seeds"]])
        buttons = W.HBox([self.run_btn, self.stop_btn, self.status], layout=W.Layout(align_items="center"))
        self.controls_box = W.VBox([W.HBox([col1, col2], layout=W.Layout(flex_flow="row wrap")),
                                    W.HBox([col3, col4], layout=W.Layout(flex_flow="row wrap")), buttons])
        self.progress = W.IntProgress(value=0, min=0, max=1000, description="Progress", style=STYLE,
                                      layout=W.Layout(width="480px"),
                                      tooltip="Share of the requested training done (stored rounds count as done)")
        self.progress.add_class("lt-progress")
        self.progress_label = W.Label("")
        self.progress_label.add_class("lt-progress-label")
        self.progress_box = W.HBox([self.progress, self.progress_label], layout=W.Layout(align_items="center"))
        self.message = W.HTML()
        self.message.add_class("lt-message")

    @staticmethod
    def _dataset_options(arch: str):
        return [(DATASET_LABELS.get(d, d), d) for d in get_arch(arch).datasets]

    def _on_arch(self, change) -> None:
        self.dataset.options = self._dataset_options(change["new"])
        self.dataset.value = get_arch(change["new"]).dataset
        if hasattr(self, "tabs"):
            self.render(self.c.snapshot())

    def _apply_mode(self, switch_tab: bool = False) -> None:
        mode = self.mode.value
        running = self.c.status in ("running", "stopping")
        if switch_tab and hasattr(self, "tabs"):
            self.tabs.selected_index = 0 if mode == "lottery" else 1
        if switch_tab:
            if mode == "oneshot" and tuple(self.criteria.value) == ("large_final",):
                self.criteria.value = ("large_final_same_sign",)
            elif mode == "lottery" and tuple(self.criteria.value) == ("large_final_same_sign",):
                self.criteria.value = ("large_final",)
        enabled = {
            "arch": True, "dataset": True, "mode": True, "device": True, "schedule": True, "seeds": True,
            "criteria": mode in ("lottery", "oneshot"),
            "mask1": mode == "lottery", "mask0": mode == "lottery", "rounds": mode == "lottery",
            "w_init": mode in ("oneshot", "learned"), "w_sc": mode in ("oneshot", "learned"),
            "dwr": mode == "learned",
            "epochs": self.schedule.value == "custom",
        }
        for name, on in enabled.items():
            getattr(self, name).disabled = running or not on
        text, tip = (("Frozen weights", TIPS["learned_weights"]) if mode == "learned"
                     else ("Supermask weights", TIPS["supermask_weights"]))
        self.weights_label.value = (f"<label class='lt-label lt-label-weights' title='{html.escape(tip, quote=True)}' "
                                    f"style='cursor:help;display:block;text-align:right'>{text}</label>")
        for name, widget in (("rounds", self.rounds), ("mask1", self.mask1), ("mask0", self.mask0),
                             ("criteria", self.criteria), ("epochs", self.epochs), ("w_init", self.w_init),
                             ("w_sc", self.w_sc), ("dwr", self.dwr)):
            self.labels[name].layout.opacity = "0.45" if widget.disabled else "1"
        self.run_btn.disabled = running
        self.stop_btn.disabled = not running

    def request(self) -> RunRequest:
        """The run request the controls describe (raises ConfigError for unparsable text)."""
        weights = tuple(w for w, box in (("init", self.w_init), ("signed_constant", self.w_sc)) if box.value)
        return RunRequest(arch=self.arch.value, dataset=self.dataset.value, mode=self.mode.value,
                          criteria=tuple(self.criteria.value), mask1=self.mask1.value, mask0=self.mask0.value,
                          rounds=int(self.rounds.value), schedule=self.schedule.value,
                          epochs=int(self.epochs.value) if self.schedule.value == "custom" else None,
                          seeds=parse_seeds(self.seeds.value), device=self.device.value,
                          supermask_weights=weights, learned_weights=weights, dwr=bool(self.dwr.value))

    def _on_run(self, _=None) -> None:
        try:
            req = self.request()
        except Exception as exc:
            from .controller import describe_error

            self.c.status = "error"
            self.c.show_message(describe_error(exc), "error")
            return
        self._mask_cache.clear()
        if self.c.start(req):
            self.tabs.selected_index = 0 if req.mode == "lottery" else 1
        self._apply_mode()

    def _on_stop(self, _=None) -> None:
        self.c.stop()
        self._apply_mode()

    # -- plots ---------------------------------------------------------------------------------
    def _fig(self, title: str, x_label: str, y_label: str, *, x_log=False, flip_x=False, y_log=False,
             legend: str = "bottom_right", empty=((0, 1), (0, 100)), height: int = PLOT_H):
        """A figure with a legend (inside at ``legend``, or ``"below"`` the plot) and an invisible
        placeholder glyph spanning ``empty`` = ((x0, x1), (y0, y1)) while it has no data, so that
        its axes show before the first point."""
        fig = figure(title=title, width=PLOT_W, height=height, x_axis_label=x_label, y_axis_label=y_label,
                     x_axis_type="log" if x_log else "linear", y_axis_type="log" if y_log else "linear",
                     tools="pan,wheel_zoom,box_zoom,reset,save", toolbar_location="right")
        if flip_x:
            fig.x_range = DataRange1d(flipped=True)
        fig.title.text_font_size = "11pt"
        lg = Legend(items=[], label_text_font_size="8pt", background_fill_alpha=0.6, click_policy="hide",
                    spacing=0, padding=4, glyph_height=14)
        if legend == "below":
            lg.location = "top_left"
            fig.add_layout(lg, "below")
        else:
            lg.location = legend
            fig.add_layout(lg)
        placeholder = {"x": list(empty[0]), "y": list(empty[1])}
        ph = ColumnDataSource(dict(placeholder), name="placeholder")
        fig.scatter("x", "y", source=ph, alpha=0)
        self._placeholders.append((fig, ph, placeholder, lg))
        return fig

    def _update_placeholders(self) -> None:
        for fig, ph, placeholder, lg in self._placeholders:
            has_data = has_any = False
            for r in fig.renderers:
                src = r.data_source
                cols = list(src.data.values())
                if src is ph or not cols or not len(cols[0]):
                    continue
                has_any = True
                if not (src.name or "").endswith("reference_lines"):
                    has_data = True
            self._set(ph, {"x": [], "y": []} if has_data else dict(placeholder))
            if lg.visible != has_any:
                lg.visible = has_any

    def _build_plots(self) -> None:
        # accuracy vs iteration of the current round
        self.curve_src = ColumnDataSource(_empty_lines(), name="live_curve_lines")
        self.curve_pts = ColumnDataSource({"x": [], "y": [], "color": [], "label": []}, name="live_curve_points")
        self.curve_ovl = ColumnDataSource(_empty_lines("label_stored"), name="overlay_curve_lines")
        f = self._fig("Test accuracy vs iteration (current round)", "iteration", "test accuracy (%)",
                      legend="bottom_right", empty=((0, 300), (0, 100)))
        f.multi_line("xs", "ys", source=self.curve_src, color="color", legend_field="label", line_width=2)
        pts = f.scatter("x", "y", source=self.curve_pts, color="color", size=5)
        f.multi_line("xs", "ys", source=self.curve_ovl, color="color", legend_field="label_stored", line_dash="dashed",
                     line_width=1.5)
        f.add_tools(HoverTool(tooltips=[("run", "@label"), ("iteration", "@x"), ("test acc", "@y{0.00}%")],
                              renderers=[pts]))
        self.curve_fig = f

        # early-stop accuracy vs weights remaining
        self.prune_src = ColumnDataSource(_empty_lines(), name="live_prune_lines")
        self.prune_pts = ColumnDataSource({"x": [], "y": [], "color": [], "label": [], "round": []},
                                          name="live_prune_points")
        self.prune_ovl = ColumnDataSource(_empty_lines("label_stored"), name="overlay_prune_lines")
        self.prune_ref = ColumnDataSource(_empty_lines("label_ref"), name="prune_reference_lines")
        f = self._fig("Early-stop test accuracy vs weights remaining", "weights remaining (%)",
                      "test accuracy at early stop (%)", x_log=True, flip_x=True, legend="below",
                      empty=((1, 100), (90, 100)), height=PLOT_H_BELOW)
        f.multi_line("xs", "ys", source=self.prune_ref, color="color", legend_field="label_ref", line_dash="dotted",
                     line_width=2)
        f.multi_line("xs", "ys", source=self.prune_src, color="color", legend_field="label", line_width=2)
        pts = f.scatter("x", "y", source=self.prune_pts, color="color", size=7)
        f.multi_line("xs", "ys", source=self.prune_ovl, color="color", legend_field="label_stored", line_dash="dashed",
                     line_width=1.5)
        f.add_tools(HoverTool(tooltips=[("run", "@label"), ("round", "@round"), ("remaining", "@x{0.0}%"),
                                        ("early-stop acc", "@y{0.00}%")], renderers=[pts]))
        self.prune_fig = f

        # per-layer weights remaining
        self.layer_src = ColumnDataSource(_empty_lines(), name="layer_lines")
        f = self._fig("Weights remaining per layer", "round", "weights remaining (%)", y_log=True,
                      legend="bottom_left", empty=((0, 5), (30, 100)))
        f.multi_line("xs", "ys", source=self.layer_src, color="color", legend_field="label", line_width=2)
        f.xaxis.ticker = BasicTicker(min_interval=1)  # whole rounds
        self.layer_fig = f

        # one-shot supermasks
        self.super_src = ColumnDataSource(_empty_lines(), name="supermask_lines")
        self.super_pts = ColumnDataSource({"x": [], "y": [], "color": [], "label": [], "power": []},
                                          name="supermask_points")
        self.super_ref = ColumnDataSource(_empty_lines("label_ref"), name="supermask_reference_lines")
        f = self._fig("One-shot supermask on the untrained network", "weights remaining (%)",
                      "test accuracy (%)", x_log=True, flip_x=True, legend="below", empty=((0.5, 100), (0, 100)),
                      height=PLOT_H_BELOW)
        f.multi_line("xs", "ys", source=self.super_ref, color="color", legend_field="label_ref", line_dash="dotted",
                     line_width=2)
        f.multi_line("xs", "ys", source=self.super_src, color="color", legend_field="label", line_width=2)
        pts = f.scatter("x", "y", source=self.super_pts, color="color", size=6)
        f.add_tools(HoverTool(tooltips=[("mask", "@label"), ("power", "@power"), ("remaining", "@x{0.00}%"),
                                        ("test acc", "@y{0.00}%")], renderers=[pts]))
        self.super_fig = f

        # learned supermasks
        self.learn_acc = ColumnDataSource(_empty_lines(), name="learned_accuracy_lines")
        self.learn_keep = ColumnDataSource(_empty_lines("label_keep"), name="learned_keep_lines")
        self.learn_ref = ColumnDataSource(_empty_lines("label_ref"), name="learned_reference_lines")
        f = self._fig("Learned supermask: accuracy, expected keep", "epoch", "test accuracy / expected keep (%)", legend="below",
                      empty=((0, 10), (0, 100)), height=PLOT_H_BELOW)
        f.multi_line("xs", "ys", source=self.learn_ref, color="color", legend_field="label_ref", line_dash="dotted",
                     line_width=2)
        f.multi_line("xs", "ys", source=self.learn_acc, color="color", legend_field="label", line_width=2)
        f.multi_line("xs", "ys", source=self.learn_keep, color="color", legend_field="label_keep", line_dash="dashed",
                     line_width=2)
        self.learn_fig = f

    def _build_panels(self) -> None:
        self.lottery_plots = BokehModel(column(row(self.curve_fig, self.prune_fig), row(self.layer_fig)))
        self.lottery_panel = W.VBox([self.lottery_plots])
        self.supermask_note = W.HTML(
            "<div style='color:#555'>Dotted lines: the paper's Table 1 values for this network. The one-shot "
            "supermasks' dense training also shows on the iteration plot of the first tab.</div>")
        self.supermask_plots = BokehModel(row(self.super_fig, self.learn_fig))
        self.supermask_panel = W.VBox([self.supermask_note, self.supermask_plots])
        self.mask_plots = BokehModel(row(self.mask_fig, self.unit_fig, self.flip_fig))
        r = self.rows
        self.mask_panel = W.VBox([W.HBox([r["mask_run"], r["mask_follow"]]), W.HBox([r["mask_round"], r["mask_layer"]]),
                                  self.mask_info, self.mask_plots])

    # -- mask view -----------------------------------------------------------------------------
    def _build_mask_view(self) -> None:
        self.mask_run = self._w(W.Dropdown, "mask_run", "Run", options=[], layout=W.Layout(width="480px"))
        self.mask_round = self._w(W.IntSlider, "mask_round", "Round", min=0, max=0, value=0,
                                  continuous_update=False, layout=W.Layout(width="260px"))
        self.mask_layer = self._w(W.Dropdown, "mask_layer", "Layer", options=[], layout=W.Layout(width="120px"))
        self.mask_follow = self._w(W.Checkbox, "mask_follow", "follow the newest round", value=True,
                                   indent=False, layout=W.Layout(width="20px"))
        self.mask_info = W.HTML()
        self.mask_info.add_class("lt-mask-info")
        for w in (self.mask_run, self.mask_round, self.mask_layer):
            w.observe(self._on_mask_control, names="value")
        self.mask_follow.observe(lambda ch: self._submit_mask_update(), names="value")

        self.mask_img_src = ColumnDataSource({"image": []}, name="mask_picture")
        self.mask_mapper = LinearColorMapper(palette=Viridis256, low=0, high=300)
        f = figure(title="fc1 mask per input pixel", width=400, height=380, x_range=(0, 28), y_range=(0, 28),
                   tools="hover,save", toolbar_location="right", tooltips=[("kept weights", "@image")])
        f.image(image="image", x=0, y=0, dw=28, dh=28, source=self.mask_img_src, color_mapper=self.mask_mapper)
        f.add_layout(ColorBar(color_mapper=self.mask_mapper, width=10, title="kept"), "right")
        f.axis.visible = False
        f.grid.visible = False
        self.mask_fig = f

        self.unit_src = ColumnDataSource({"x": [], "top": []}, name="mask_per_unit")
        f = figure(title="Fraction kept per unit", width=460, height=380, x_axis_label="unit (filter / neuron)",
                   y_axis_label="weights kept (%)", x_range=Range1d(-1, 10), y_range=Range1d(0, 105),
                   tools="hover,xpan,xwheel_zoom,reset,save", tooltips=[("unit", "@x"), ("kept", "@top{0.0}%")])
        f.vbar(x="x", top="top", width=0.9, source=self.unit_src, color="#1f77b4")
        self.unit_fig = f

        self.flip_src = ColumnDataSource({"layer": [], "flip": []}, name="sign_flips")
        f = figure(title="Sign flips, w_i vs w_f", width=340, height=380, x_range=["-"], y_range=Range1d(0, 10),
                   y_axis_label="kept weights whose sign flipped (%)", tools="hover,save",
                   tooltips=[("layer", "@layer"), ("flipped", "@flip{0.00}%")])
        f.vbar(x="layer", top="flip", width=0.7, source=self.flip_src, color="#d62728")
        self.flip_fig = f


    def _submit_mask_update(self) -> None:
        if hasattr(self, "_worker"):
            self._worker.submit("mask", self._update_mask_view)
        else:
            self._update_mask_view()

    def _on_mask_control(self, change) -> None:
        owner = change["owner"]
        if self._mask_follow_lock:
            return
        if owner is self.mask_round and self.mask_follow.value:
            s = self._mask_series.get(self.mask_run.value)
            if s is not None and s.rounds and change["new"] != max(s.rounds):
                self.mask_follow.value = False
        self._submit_mask_update()

    def _sync_mask_choices(self, snap: dict) -> None:
        shown = [s for s in list(snap["series"]) + list(snap["overlays"])
                 if s.kind in ("dense", "lottery") and s.rounds and s.run_names]
        self._mask_series = {s.key: s for s in shown}
        options = [(("stored: " if s.overlay else "") + s.label, s.key) for s in shown]
        self._mask_follow_lock = True
        try:
            if list(self.mask_run.options) != options:
                current = self.mask_run.value
                self.mask_run.options = options
                keys = [k for _, k in options]
                if current in keys:
                    self.mask_run.value = current
                elif keys:
                    self.mask_run.value = keys[0]
            live = [s.key for s in shown if s.kind == "lottery" and not s.overlay]
            current = self._mask_series.get(self.mask_run.value)
            if self.mask_follow.value and live and (current is None or current.kind == "dense"):
                self.mask_run.value = live[0]
            s = self._mask_series.get(self.mask_run.value)
            if s is not None:
                rounds = sorted(s.rounds)
                self.mask_round.max = max(rounds)
                self.mask_round.min = min(rounds)
                if self.mask_follow.value:
                    self.mask_round.value = max(rounds)
        finally:
            self._mask_follow_lock = False
        self._update_mask_view()

    def _update_mask_view(self) -> None:
        s = self._mask_series.get(self.mask_run.value)
        if s is None:
            self.mask_info.value = ("<i>No finished round to show yet. Run lottery rounds, or overlay a stored run "
                                    "in the Compare tab.</i>")
            return
        k = int(self.mask_round.value)
        if k not in s.rounds:
            k = max(r for r in s.rounds if r <= k) if any(r <= k for r in s.rounds) else min(s.rounds)
        path = s.round_path(k)
        if path is None:
            return
        key = (str(path), k)
        shown = (s.key, key, self.mask_layer.value)
        if shown == self._mask_shown:
            return
        try:
            if key not in self._mask_cache:
                self._mask_cache[key] = mask_details(path, k)
            d = self._mask_cache[key]
        except Exception as exc:
            self.mask_info.value = f"<span style='color:#a00'>Cannot read the masks of round {k}: {html.escape(str(exc))}</span>"
            return
        with self._render_lock:
            layers = d["layers"]
            self._mask_follow_lock = True
            try:
                if list(self.mask_layer.options) != layers:
                    self.mask_layer.options = layers
                if self.mask_layer.value not in layers:
                    self.mask_layer.value = layers[0]
            finally:
                self._mask_follow_lock = False
            layer = self.mask_layer.value
            if d["picture"] is not None:
                import numpy as np

                img = np.flipud(np.asarray(d["picture"], dtype=float))
                self.mask_img_src.data = {"image": [img]}
                self.mask_mapper.high = float(d["fan_out"])
                self.mask_fig.title.text = f"fc1, round {k}: kept weights per pixel (of {d['fan_out']})"
            else:
                self.mask_img_src.data = {"image": []}
                self.mask_fig.title.text = "Pixel picture: FC networks only"
            per = d["per_unit"].get(layer, [])
            self.unit_src.data = {"x": list(range(len(per))), "top": [100 * v for v in per]}
            self.unit_fig.x_range.start, self.unit_fig.x_range.end = -1, max(10, len(per))
            kind = "filter" if layer.startswith("conv") else "neuron"
            self.unit_fig.title.text = f"{layer}, round {k}: fraction kept per {kind}"
            flips = d["sign_flips"]
            values = [100 * v for v in flips.values()]
            self.flip_fig.x_range.factors = list(flips) or ["-"]
            self.flip_fig.y_range.end = max(5.0, 1.15 * max(values or [0.0]))
            self.flip_src.data = {"layer": list(flips), "flip": values}
            self.flip_fig.title.text = f"Sign flips w_i vs w_f, round {k}"
        self._mask_shown = (s.key, key, self.mask_layer.value)
        rem = ", ".join(f"{n} {100 * v:.1f}%" for n, v in d["remaining"].items())
        overall = s.rounds[k].get("weights_remaining")
        flip_text = (f"{100 * d['sign_flips_overall']:.2f}% of the kept weights have a different sign in w_f than in "
                     f"w_i" if d["sign_flips_overall"] is not None else "no weights stored")
        self.mask_info.value = (f"<b>{html.escape(s.label)}</b>, round {k}: "
                                f"{100 * overall:.2f}% of weights remain ({rem}); {flip_text}.")

    # -- compare / export ----------------------------------------------------------------------
    def _build_compare(self) -> None:
        self.runs_select = self._w(W.SelectMultiple, "runs", "Stored runs", options=[], rows=10,
                                   layout=W.Layout(width="1100px"))
        self.refresh_btn = self._w(W.Button, "refresh", description="Refresh list", icon="refresh",
                                   layout=W.Layout(width="140px"))
        self.overlay_btn = self._w(W.Button, "overlay", description="Overlay selected", icon="plus",
                                   layout=W.Layout(width="160px"))
        self.clear_btn = self._w(W.Button, "clear", description="Clear overlays", icon="times",
                                 layout=W.Layout(width="140px"))
        self.export_btn = self._w(W.Button, "export", description="Export CSV", icon="download",
                                  layout=W.Layout(width="140px"))
        self.compare_info = W.HTML()
        self.compare_info.add_class("lt-compare-info")
        self.export_info = W.HTML()
        self.export_info.add_class("lt-export-info")
        self.refresh_btn.on_click(lambda _: self.refresh_runs())
        self.overlay_btn.on_click(self._on_overlay)
        self.clear_btn.on_click(self._on_clear)
        self.export_btn.on_click(self._on_export)
        self.compare_panel = W.VBox([self.compare_info, self.rows["runs"],
                                     W.HBox([self.refresh_btn, self.overlay_btn, self.clear_btn, self.export_btn]),
                                     self.export_info])

    def refresh_runs(self) -> None:
        runs = self.c.stored_runs()
        selected = set(self.runs_select.value)
        self.runs_select.options = [(r.label, r.name) for r in runs]
        self.runs_select.value = tuple(n for n in selected if n in {r.name for r in runs})
        self.compare_info.value = (f"{len(runs)} run(s) in <code>{html.escape(str(self.c.root))}</code>. "
                                   f"Overlays: {len(self.c.overlays)}.")

    def _on_overlay(self, _=None) -> None:
        names = list(self.runs_select.value)
        if not names:
            self.compare_info.value = "Select one or more stored runs first."
            return
        failed = []
        for name in names:
            try:
                self.c.add_overlay(name)
            except Exception as exc:
                failed.append(f"{name}: {exc}")
        self.refresh_runs()
        if failed:
            self.compare_info.value += "<br><span style='color:#a00'>" + html.escape("; ".join(failed)) + "</span>"

    def _on_clear(self, _=None) -> None:
        self.c.clear_overlays()
        self.refresh_runs()

    def _on_export(self, _=None) -> None:
        try:
            path = self.c.export_csv()
        except Exception as exc:
            self.export_info.value = f"<span style='color:#a00'>Export failed: {html.escape(str(exc))}</span>"
            return
        data = path.read_bytes()
        link = ""
        if len(data) < 20_000_000:
            b64 = base64.b64encode(data).decode()
            link = (f" <a download='{html.escape(path.name)}' href='data:text/csv;base64,{b64}' "
                    f"style='font-weight:bold'>Download {html.escape(path.name)}</a>")
        rows = data.count(b"\n") - 1
        self.export_info.value = f"Wrote {rows} rows to <code>{html.escape(str(path))}</code>.{link}"

    # -- rendering -----------------------------------------------------------------------------
    def _color(self, key: str) -> str:
        if key not in self._colors:
            self._colors[key] = _palette(len(self._colors))
        return self._colors[key]

    def _set(self, source: ColumnDataSource, data: dict) -> None:
        if self._sent.get(id(source)) == data:
            return
        self._sent[id(source)] = data
        source.data = data

    def render(self, snap: dict) -> None:
        """Draw a controller snapshot. Called from any thread (the controller's, throttled, or the UI
        thread); the drawing itself happens on the dashboard's render thread."""
        if not hasattr(self, "_worker"):
            self._render_now(snap)
            return
        self._worker.submit("render", lambda: self._render_now(snap))

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until every submitted update is drawn."""
        return self._worker.wait_idle(timeout)

    def _render_now(self, snap: dict) -> None:
        with self._render_lock:
            if not snap.get("series") or not snap.get("arch"):
                snap = dict(snap, arch=self.arch.value)  # reference lines follow the chosen network
            self._last_snapshot = snap
            self._render_status(snap)
            tables = plot_tables(snap)
            self._render_lottery(snap, tables)
            self._render_supermask(snap, tables)
            self._update_placeholders()
            try:
                self._sync_mask_choices(snap)
            except Exception as exc:  # the mask view never stops the other plots
                self.mask_info.value = f"<span style='color:#a00'>{html.escape(str(exc))}</span>"
            if snap["status"] != self._last_status:
                self._last_status = snap["status"]
                if snap["status"] in ("finished", "stopped", "error"):
                    self.refresh_runs()

    def _render_status(self, snap: dict) -> None:
        colors = {"info": ("#eef5ff", "#1f4e8c"), "success": ("#eefaf0", "#1d6b32"),
                  "warning": ("#fff8e6", "#8a5a00"), "error": ("#fdecec", "#a00000")}
        bg, fg = colors.get(snap["level"], colors["info"])
        status = snap["status"]
        running = status in ("running", "stopping")
        if self.run_btn.disabled != running or self.stop_btn.disabled == running:
            self._apply_mode()  # buttons first: the page never shows "stopped" with Run still disabled
        self.message.value = (f"<div class='lt-msg lt-msg-{snap['level']}' style='background:{bg};color:{fg};"
                              f"padding:6px 10px;border-radius:4px;border:1px solid {fg}33'>"
                              f"{html.escape(snap['message'])}</div>")
        self.status.value = f"<span class='lt-status-{status}'>Status: <b>{status}</b></span>"
        p = snap["progress"]
        self.progress.value = int(round(1000 * p["fraction"]))
        self.progress.bar_style = {"finished": "success", "error": "danger", "stopped": "warning"}.get(status, "info")
        self.progress_label.value = p["label"]

    def _render_lottery(self, snap: dict, tables: dict) -> None:
        # accuracy vs iteration
        live, ovl = {}, {}
        pts = {"x": [], "y": [], "color": [], "label": []}
        for r in tables["curve"]:
            label = f"{r['series']} · round {r['round']}"
            groups = ovl if r["overlay"] else live
            xs, ys = groups.setdefault(label, ([], []))
            xs.append(r["iteration"])
            ys.append(r["test_acc"])
            if not r["overlay"]:
                pts["x"].append(r["iteration"])
                pts["y"].append(r["test_acc"])
                pts["color"].append(self._color(r["series"]))
                pts["label"].append(label)
        color_of = {k: self._color(k.rsplit(" · round", 1)[0]) for k in list(live) + list(ovl)}
        self._set(self.curve_src, _lines_data(live, color_of))
        self._set(self.curve_ovl, _lines_data(ovl, color_of, "label_stored"))
        self._set(self.curve_pts, pts)

        # accuracy vs weights remaining
        live, ovl = {}, {}
        pts = {"x": [], "y": [], "color": [], "label": [], "round": []}
        for r in tables["accuracy_vs_remaining"]:
            groups = ovl if r["overlay"] else live
            xs, ys = groups.setdefault(r["series"], ([], []))
            xs.append(r["weights_remaining"])
            ys.append(r["early_stop_test_acc"])
            pts["x"].append(r["weights_remaining"])
            pts["y"].append(r["early_stop_test_acc"])
            pts["color"].append(self._color(r["series"]))
            pts["label"].append(r["series"])
            pts["round"].append(r["round"])
        colors = {k: self._color(k) for k in list(live) + list(ovl)}
        self._set(self.prune_src, _lines_data(live, colors))
        self._set(self.prune_ovl, _lines_data(ovl, colors, "label_stored"))
        self._set(self.prune_pts, pts)
        xs_all = pts["x"] or [1.25]  # no point yet: span the empty plot
        lo = max(0.05, min(xs_all) * 0.8)
        ref, ref_colors = {}, {}
        for r in tables["reference"]:
            if r["name"].startswith("dense baseline"):
                ref[r["name"]] = ([lo, 100.0], [r["value"], r["value"]])
                ref_colors[r["name"]] = "#444444"
        arch = snap.get("arch")
        table1 = paper_table1(arch)
        if "dense" in table1:
            name = f"paper: dense {arch} trained ({table1['dense']}%)"
            ref[name] = ([lo, 100.0], [table1["dense"]] * 2)
            ref_colors[name] = "#999999"
        self._set(self.prune_ref, _lines_data(ref, ref_colors, "label_ref"))

        # per-layer remaining: one line per layer, from the run with the most rounds (the per-layer
        # schedule depends only on the network and the prune fractions, not on the criterion)
        rounds_of: Dict[str, int] = {}
        for r in tables["layer_remaining"]:
            rounds_of[r["series"]] = max(rounds_of.get(r["series"], 0), r["round"] + 1)
        groups = {}
        if rounds_of:
            best = max(rounds_of, key=lambda k: rounds_of[k])
            for r in tables["layer_remaining"]:
                if r["series"] != best:
                    continue
                xs, ys = groups.setdefault(r["layer"], ([], []))
                xs.append(r["round"])
                ys.append(r["weights_remaining"])
        layer_colors = {k: _palette(i + 3) for i, k in enumerate(groups)}
        self._set(self.layer_src, _lines_data(groups, layer_colors))

    def _render_supermask(self, snap: dict, tables: dict) -> None:
        arch = snap.get("arch")
        groups = {}
        pts = {"x": [], "y": [], "color": [], "label": [], "power": []}
        for r in tables["supermask"]:
            label = f"{r['series']} · {r['criterion']} · {r['weights']}"
            xs, ys = groups.setdefault(label, ([], []))
            xs.append(r["weights_remaining"])
            ys.append(r["test_acc"])
            pts["x"].append(r["weights_remaining"])
            pts["y"].append(r["test_acc"])
            pts["color"].append(self._color(label))
            pts["label"].append(label)
            pts["power"].append(r["power"])
        self._set(self.super_src, _lines_data(groups, {k: self._color(k) for k in groups}))
        self._set(self.super_pts, pts)
        lo = max(0.05, min(pts["x"] or [1.0]) * 0.8)
        ref, ref_colors = {}, {}
        t = paper_table1(arch)
        if t:
            for key, name, color in (("mask_init", "initial weights", "#7f7f7f"),
                                     ("mask_signed_constant", "signed constants", "#bcbd22")):
                if key not in t:
                    continue
                label = f"paper Table 1, {name}: {t[key]}%"
                ref[label] = ([lo, 100.0], [t[key], t[key]])
                ref_colors[label] = color
        self._set(self.super_ref, _lines_data(ref, ref_colors, "label_ref"))

        acc, keep = {}, {}
        for r in tables["learned"]:
            x = r["epoch"] if r["epoch"] is not None else r["iteration"]
            label = r["series"] + (" (stored)" if r["overlay"] else "")
            xs, ys = acc.setdefault(f"{label}: test accuracy", ([], []))
            xs.append(x)
            ys.append(r["test_acc"])
            if "expected_keep" in r:
                xs, ys = keep.setdefault(f"{label}: expected keep", ([], []))
                xs.append(x)
                ys.append(r["expected_keep"])
        self._set(self.learn_acc, _lines_data(acc, {k: self._color(k.rsplit(':', 1)[0]) for k in acc}))
        self._set(self.learn_keep, _lines_data(keep, {k: self._color(k.rsplit(':', 1)[0]) for k in keep}, "label_keep"))
        x_hi = max([x for k in acc for x in acc[k][0] if x is not None] or [10.0])
        ref, ref_colors = {}, {}
        t = paper_table1(arch)
        if t:
            for key, name, color in (("learned_init", "init", "#7f7f7f"),
                                     ("learned_signed_constant", "S.C.", "#bcbd22"),
                                     ("learned_dwr", "DWR", "#17becf")):
                if key not in t:
                    continue
                label = f"paper Table 1, learned {name}: {t[key]}%"
                ref[label] = ([0.0, x_hi], [t[key], t[key]])
                ref_colors[label] = color
        self._set(self.learn_ref, _lines_data(ref, ref_colors, "label_ref"))


def build_app(results_root=None, controller: Optional[Controller] = None) -> Dashboard:
    """A :class:`Dashboard` on ``results_root`` (default ``$LT_RESULTS_DIR``, else ``./results``).
    Display ``app.layout`` in the notebook."""
    return Dashboard(controller=controller, results_root=results_root)
