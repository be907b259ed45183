"""The live plots: bokeh figures drawn from the plot tables (:func:`lt_core.dashboard.plot_tables`).

Every figure of the dashboard is made by :func:`new_figure`; lines and points are added by
:func:`add_lines` / :func:`add_points` and filled with :func:`lines_data`. Live runs are solid,
stored runs (overlays) dashed and the paper's reference values dotted. Each draw assigns whole new
``ColumnDataSource.data`` dicts, and only those that changed: each reaches the page as one message.
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from bokeh.models import BasicTicker, ColumnDataSource, DataRange1d, HoverTool, Legend
from bokeh.palettes import Category10_10
from bokeh.plotting import figure

from .. import catalog

PLOT_W, PLOT_H, PLOT_H_BELOW = 560, 340, 470
Lines = Dict[str, Tuple[List, List]]  # line label -> (xs, ys)


def palette(i: int) -> str:
    return Category10_10[i % 10]


def new_figure(title: str, x_label: Optional[str] = None, y_label: Optional[str] = None, *, width: int = PLOT_W,
               height: int = PLOT_H, x_log: bool = False, flip_x: bool = False, y_log: bool = False,
               legend: Optional[str] = None, tools: str = "pan,wheel_zoom,box_zoom,reset,save", **kw):
    """A figure of the dashboard. ``legend``: where its (initially empty) legend goes, inside the plot
    at a location such as ``"bottom_right"``, or ``"below"`` it; None for no legend."""
    fig = figure(title=title, width=width, height=height, x_axis_label=x_label, y_axis_label=y_label,
                 x_axis_type="log" if x_log else "linear", y_axis_type="log" if y_log else "linear",
                 tools=tools, toolbar_location="right", **kw)
    if flip_x:
        fig.x_range = DataRange1d(flipped=True)
    fig.title.text_font_size = "11pt"
    if legend is not None:
        lg = Legend(items=[], label_text_font_size="8pt", background_fill_alpha=0.6, click_policy="hide",
                    spacing=0, padding=4, glyph_height=14)
        lg.location = "top_left" if legend == "below" else legend
        fig.add_layout(lg, "below" if legend == "below" else "center")
    return fig


def empty_lines(label: str = "label") -> dict:
    return {"xs": [], "ys": [], label: [], "color": []}


def add_lines(fig, name: str, label: str = "label", dash: str = "solid", width: float = 2) -> ColumnDataSource:
    """A multi-line source named ``name`` drawn on ``fig``, one legend item per value of ``label``
    (each renderer of a figure needs its own label column)."""
    src = ColumnDataSource(empty_lines(label), name=name)
    fig.multi_line("xs", "ys", source=src, color="color", legend_field=label, line_dash=dash, line_width=width)
    return src


def add_points(fig, name: str, columns: Sequence[str], size: int, tooltips: List[Tuple[str, str]]) -> ColumnDataSource:
    """A scatter source named ``name`` (columns x, y, color, label and ``columns``) with a hover tool."""
    src = ColumnDataSource({c: [] for c in ("x", "y", "color", "label", *columns)}, name=name)
    renderer = fig.scatter("x", "y", source=src, color="color", size=size)
    fig.add_tools(HoverTool(tooltips=tooltips, renderers=[renderer]))
    return src


def lines_data(groups: Lines, colors: Dict[str, str], label: str = "label") -> dict:
    """multi_line data of ``groups`` in the colours ``colors`` (by line label)."""
    labels = list(groups)
    return {"xs": [groups[k][0] for k in labels], "ys": [groups[k][1] for k in labels], label: labels,
            "color": [colors[k] for k in labels]}


def level_lines(levels: Iterable[Tuple[str, float, str]], x0: float, x1: float) -> dict:
    """Horizontal reference lines ``(label, y, color)`` from ``x0`` to ``x1``."""
    groups, colors = {}, {}
    for label, y, color in levels:
        groups[label] = ([x0, x1], [y, y])
        colors[label] = color
    return lines_data(groups, colors, "label_ref")


def _append(groups: Lines, label: str, x, y) -> None:
    xs, ys = groups.setdefault(label, ([], []))
    xs.append(x)
    ys.append(y)


class Plots:
    """The figures of the Lottery rounds and Supermasks tabs and their data sources."""

    def __init__(self) -> None:
        self._colors: Dict[str, str] = {}
        self._sent: Dict[int, object] = {}
        self._placeholders: list = []

        f = self._figure("Test accuracy vs iteration (current round)", "iteration", "test accuracy (%)",
                         legend="bottom_right", empty=((0, 300), (0, 100)))
        self.curve_src = add_lines(f, "live_curve_lines")
        self.curve_pts = add_points(f, "live_curve_points", (), 5,
                                    [("run", "@label"), ("iteration", "@x"), ("test acc", "@y{0.00}%")])
        self.curve_ovl = add_lines(f, "overlay_curve_lines", "label_stored", "dashed", 1.5)
        self.curve_fig = f

        f = self._figure("Early-stop test accuracy vs weights remaining", "weights remaining (%)",
                         "test accuracy at early stop (%)", x_log=True, flip_x=True, legend="below",
                         empty=((1, 100), (90, 100)), height=PLOT_H_BELOW)
        self.prune_ref = add_lines(f, "prune_reference_lines", "label_ref", "dotted")
        self.prune_src = add_lines(f, "live_prune_lines")
        self.prune_pts = add_points(f, "live_prune_points", ("round",), 7,
                                    [("run", "@label"), ("round", "@round"), ("remaining", "@x{0.0}%"),
                                     ("early-stop acc", "@y{0.00}%")])
        self.prune_ovl = add_lines(f, "overlay_prune_lines", "label_stored", "dashed", 1.5)
        self.prune_fig = f

        f = self._figure("Weights remaining per layer", "round", "weights remaining (%)", y_log=True,
                         legend="bottom_left", empty=((0, 5), (30, 100)))
        self.layer_src = add_lines(f, "layer_lines")
        f.xaxis.ticker = BasicTicker(min_interval=1)  # whole rounds
        self.layer_fig = f

        f = self._figure("One-shot supermask on the untrained network", "weights remaining (%)", "test accuracy (%)",
                         x_log=True, flip_x=True, legend="below", empty=((0.5, 100), (0, 100)), height=PLOT_H_BELOW)
        self.super_ref = add_lines(f, "supermask_reference_lines", "label_ref", "dotted")
        self.super_src = add_lines(f, "supermask_lines")
        self.super_pts = add_points(f, "supermask_points", ("power",), 6,
                                    [("mask", "@label"), ("power", "@power"), ("remaining", "@x{0.00}%"),
                                     ("test acc", "@y{0.00}%")])
        self.super_fig = f

        f = self._figure("Learned supermask: accuracy, expected keep", "epoch", "test accuracy / expected keep (%)",
                         legend="below", empty=((0, 10), (0, 100)), height=PLOT_H_BELOW)
        self.learn_ref = add_lines(f, "learned_reference_lines", "label_ref", "dotted")
        self.learn_acc = add_lines(f, "learned_accuracy_lines")
        self.learn_keep = add_lines(f, "learned_keep_lines", "label_keep", "dashed")
        self.learn_fig = f

    def _figure(self, *args, empty, **kw):
        """:func:`new_figure` with an invisible placeholder glyph spanning ``empty`` = ((x0, x1), (y0, y1))
        while it has no data, so that its axes show before the first point."""
        fig = new_figure(*args, **kw)
        placeholder = {"x": list(empty[0]), "y": list(empty[1])}
        ph = ColumnDataSource(dict(placeholder), name="placeholder")
        fig.scatter("x", "y", source=ph, alpha=0)
        self._placeholders.append((fig, ph, placeholder))
        return fig

    def _color(self, key: str) -> str:
        if key not in self._colors:
            self._colors[key] = palette(len(self._colors))
        return self._colors[key]

    def _set(self, source: ColumnDataSource, data: dict) -> None:
        if self._sent.get(id(source)) == data:
            return
        self._sent[id(source)] = data
        source.data = data

    def render(self, arch: Optional[str], tables: dict) -> None:
        """Draw the plot tables; reference lines are those of network ``arch``."""
        paper = catalog.paper_table(arch)
        self._render_curves(tables)
        self._render_pruning(arch, paper, tables)
        self._render_layers(tables)
        self._render_supermask(paper, tables)
        self._render_learned(paper, tables)
        self._update_placeholders()

    def _update_placeholders(self) -> None:
        for fig, ph, placeholder in self._placeholders:
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
            for lg in fig.legend:
                if lg.visible != has_any:
                    lg.visible = has_any

    def _render_curves(self, tables: dict) -> None:
        live, ovl = {}, {}
        pts = {"x": [], "y": [], "color": [], "label": []}
        for r in tables["curve"]:
            label = f"{r['series']} · round {r['round']}"
            _append(ovl if r["overlay"] else live, label, r["iteration"], r["test_acc"])
            if not r["overlay"]:
                for column, value in zip(pts, (r["iteration"], r["test_acc"], self._color(r["series"]), label)):
                    pts[column].append(value)
        color_of = {k: self._color(k.rsplit(" · round", 1)[0]) for k in list(live) + list(ovl)}
        self._set(self.curve_src, lines_data(live, color_of))
        self._set(self.curve_ovl, lines_data(ovl, color_of, "label_stored"))
        self._set(self.curve_pts, pts)

    def _render_pruning(self, arch: Optional[str], paper: Optional[dict], tables: dict) -> None:
        live, ovl = {}, {}
        pts = {"x": [], "y": [], "color": [], "label": [], "round": []}
        for r in tables["accuracy_vs_remaining"]:
            _append(ovl if r["overlay"] else live, r["series"], r["weights_remaining"], r["early_stop_test_acc"])
            for column, value in zip(pts, (r["weights_remaining"], r["early_stop_test_acc"], self._color(r["series"]),
                                           r["series"], r["round"])):
                pts[column].append(value)
        colors = {k: self._color(k) for k in list(live) + list(ovl)}
        self._set(self.prune_src, lines_data(live, colors))
        self._set(self.prune_ovl, lines_data(ovl, colors, "label_stored"))
        self._set(self.prune_pts, pts)
        lo = max(0.05, min(pts["x"] or [1.25]) * 0.8)  # no point yet: span the empty plot
        levels = [(r["name"], r["value"], "#444444") for r in tables["reference"]
                  if r["name"].startswith("dense baseline")]
        if paper:
            levels.append((f"paper: dense {arch} trained ({paper['dense']}%)", paper["dense"], "#999999"))
        self._set(self.prune_ref, level_lines(levels, lo, 100.0))

    def _render_layers(self, tables: dict) -> None:
        # one line per layer, from the run with the most rounds (the per-layer schedule depends only
        # on the network and the prune fractions, not on the criterion)
        rounds_of: Dict[str, int] = {}
        for r in tables["layer_remaining"]:
            rounds_of[r["series"]] = max(rounds_of.get(r["series"], 0), r["round"] + 1)
        groups: Lines = {}
        if rounds_of:
            best = max(rounds_of, key=lambda k: rounds_of[k])
            for r in tables["layer_remaining"]:
                if r["series"] == best:
                    _append(groups, r["layer"], r["round"], r["weights_remaining"])
        self._set(self.layer_src, lines_data(groups, {k: palette(i + 3) for i, k in enumerate(groups)}))

    def _render_supermask(self, paper: Optional[dict], tables: dict) -> None:
        groups: Lines = {}
        pts = {"x": [], "y": [], "color": [], "label": [], "power": []}
        for r in tables["supermask"]:
            label = f"{r['series']} · {r['criterion']} · {r['weights']}"
            _append(groups, label, r["weights_remaining"], r["test_acc"])
            for column, value in zip(pts, (r["weights_remaining"], r["test_acc"], self._color(label), label,
                                           r["power"])):
                pts[column].append(value)
        self._set(self.super_src, lines_data(groups, {k: self._color(k) for k in groups}))
        self._set(self.super_pts, pts)
        lo = max(0.05, min(pts["x"] or [1.0]) * 0.8)
        levels = []
        if paper:
            for key, name, color in (("mask_init", "initial weights", "#7f7f7f"),
                                     ("mask_signed_constant", "signed constants", "#bcbd22")):
                levels.append((f"paper Table 1, {name}: {paper[key]}%", paper[key], color))
        self._set(self.super_ref, level_lines(levels, lo, 100.0))

    def _render_learned(self, paper: Optional[dict], tables: dict) -> None:
        acc: Lines = {}
        keep: Lines = {}
        for r in tables["learned"]:
            x = r["epoch"] if r["epoch"] is not None else r["iteration"]
            label = r["series"] + (" (stored)" if r["overlay"] else "")
            _append(acc, f"{label}: test accuracy", x, r["test_acc"])
            if "expected_keep" in r:
                _append(keep, f"{label}: expected keep", x, r["expected_keep"])
        self._set(self.learn_acc, lines_data(acc, {k: self._color(k.rsplit(':', 1)[0]) for k in acc}))
        self._set(self.learn_keep, lines_data(keep, {k: self._color(k.rsplit(':', 1)[0]) for k in keep}, "label_keep"))
        x_hi = max([x for k in acc for x in acc[k][0] if x is not None] or [10.0])
        levels = []
        if paper:
            for key, name, color in (("learned_init", "init", "#7f7f7f"),
                                     ("learned_signed_constant", "S.C.", "#bcbd22"),
                                     ("learned_dwr", "DWR", "#17becf")):
                levels.append((f"paper Table 1, learned {name}: {paper[key]}%", paper[key], color))
        self._set(self.learn_ref, level_lines(levels, 0.0, x_hi))
