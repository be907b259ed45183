"""The live plots: bokeh figures drawn from the plot tables (:func:`lt_core.dashboard.plot_tables`).

Every figure of the dashboard is made by :func:`new_figure`: its plot area has a fixed height and
stretches to the width of its cell in the page's grid; its legend sits outside the plot area, on
the right (below it for the learned-supermask plot, whose right side is its keep axis), and a
click on an entry hides that line. Each setting is one :class:`LineGroup` line:
the mean over its seeds, with the min-max band of the seeds around it (as the paper's figures),
in the colour of its criterion or policy (:func:`lt_core.colours.colour`, the same as the static
figures'). Stored runs overlaid from the Compare tab are dashed, the seeds of one stored setting
one banded line as well; the references (the dense network trained here, the paper's Table 1) are
black and grey, which no data line takes. A figure holds renderers only for the lines it has
drawn (made when a line first shows), so a page loads fast and any number of lines is drawn.
Each draw assigns whole new ``ColumnDataSource.data`` dicts, and only those that changed.

Axes: an accuracy axis follows the data with one point of padding (data at 100% ends it at 101);
a weights-remaining axis (log) runs from 105% down to 0.8 times the fewest weights shown. An axis
that follows the data is a ``DataRange1d`` over every renderer of its figure, those made later
included (the learned-supermask plot's accuracy axis lists its own: not the keep lines, which have
their own axis); :func:`follow_data` keeps it so in a figure sent to the page whole.
"""

from __future__ import annotations

import math
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from bokeh.models import (BasicTicker, ColumnDataSource, DataRange1d, FixedTicker, HoverTool, LabelSet, Legend,
                          LegendItem, LinearAxis, Range1d)
from bokeh.core.properties import value
from bokeh.plotting import figure

from lt_core.colours import PAPER, REFERENCE, colour, family_colour

PAPER_SHADES = (PAPER, "#8c8c8c", "#b0b0b0")  # the paper's values, one grey each

from .. import catalog
from ..tables import Band, seed_bands

PLOT_H = 300  # the plot area's height, whatever the legend holds
MIN_W = 340
LEGEND_ROWS = 13  # entries per legend column (more entries: another column)
LEGEND_COLUMNS_BELOW = 2  # a legend below its plot: entries in two columns,
LEGEND_COLUMN_GAP = ":host .bk-grid { column-gap: 16px !important; }"  # apart (rows stay close)


def new_figure(title: str, x_label: Optional[str] = None, y_label: Optional[str] = None, *, height: int = PLOT_H,
               x_log: bool = False, flip_x: bool = False, y_log: bool = False, legend=False,
               x_min_interval: Optional[float] = None, y_min_interval: Optional[float] = None,
               y_padding: Optional[float] = None, tools: str = "pan,wheel_zoom,box_zoom,reset,save",
               toolbar: Optional[str] = "right", **kw):
    """A figure of the dashboard, as wide as its cell; ``legend``: a (first empty) legend outside the
    plot area, ``"right"`` (or True) or ``"below"`` it (in two columns). ``*_min_interval``: the
    narrowest span of an axis that follows the data, so that a first point does not make a
    degenerate axis. ``toolbar``: where the toolbar sits (on the right, clear of the title; None:
    no toolbar, its tools still active). ``y_padding``: the y axis extends that far (in data units)
    past the data on either side, instead of a tenth of the data's span."""
    kw.setdefault("sizing_mode", "stretch_width")
    if "x_range" not in kw:
        kw["x_range"] = DataRange1d(flipped=flip_x, min_interval=x_min_interval)
    if "y_range" not in kw:
        pad = {} if y_padding is None else {"range_padding": y_padding, "range_padding_units": "absolute"}
        kw["y_range"] = DataRange1d(min_interval=y_min_interval, **pad)
    # "auto": a categorical axis over a FactorRange (layer names), else a linear one
    fig = figure(title=title, frame_height=height, min_width=MIN_W, x_axis_label=x_label, y_axis_label=y_label,
                 x_axis_type="log" if x_log else "auto", y_axis_type="log" if y_log else "auto",
                 tools=tools, toolbar_location=toolbar, **kw)
    fig.title.text_font_size = "11pt"
    if legend:
        place = "below" if legend == "below" else "right"
        shape = dict(nrows=LEGEND_ROWS) if place == "right" else dict(ncols=LEGEND_COLUMNS_BELOW, location="top_left",
                                                                       stylesheets=[LEGEND_COLUMN_GAP])
        fig.add_layout(Legend(items=[], label_text_font_size="8pt", click_policy="hide", spacing=0, padding=4,
                              glyph_height=12, glyph_width=22, border_line_alpha=0, **shape), place)
    return fig


class LineGroup:
    """The lines of one figure, by legend label: each a mean line, a min-max band and points (with
    a hover). A line's renderers are made when it first shows (a figure starts with none, so the
    page loads only what it draws) and kept, hidden, for the next line when it is gone; there is
    no limit to how many lines a figure draws."""

    def __init__(self, fig, tooltips: Sequence[Tuple[str, str]], columns: Sequence[str] = (), width: float = 2,
                 points: int = 5, y_range_name: str = "default", dash: str = "solid",
                 name: Optional[str] = None, follows: Optional[DataRange1d] = None, shade: float = 0.0,
                 marker: str = "circle") -> None:
        self.fig, self.columns, self.width, self.dash = fig, tuple(columns), width, dash
        self.shade, self.marker = shade, marker  # lines lighter by ``shade`` (toward white), points as ``marker``
        self.follows = follows  # a range that lists the renderers it follows: this group's are added to it
        self.points, self.y_range_name, self.name = points, y_range_name, name or fig.name
        self.slots: List[Tuple[ColumnDataSource, object, object, object, LegendItem]] = []
        self.labels: List[Optional[str]] = []  # the line in each slot (None: a free slot)
        self._shown: List[Optional[tuple]] = []  # what each slot shows (to skip unchanged ones)
        self.hover = HoverTool(tooltips=list(tooltips), renderers=[])
        fig.add_tools(self.hover)

    def _add_slot(self) -> int:
        """New renderers (band, line, points) and a legend entry for one more line; its index."""
        i, fig = len(self.slots), self.fig
        src = ColumnDataSource({c: [] for c in ("x", "y", "low", "high", "label", *self.columns)},
                               name=f"{self.name}:{i}")
        kw = dict(source=src, y_range_name=self.y_range_name)
        band = fig.varea("x", "low", "high", fill_color="#888888", fill_alpha=0.18, **kw)
        line = fig.line("x", "y", line_color="#888888", line_width=self.width, line_dash=self.dash, **kw)
        dots = fig.scatter("x", "y", color="#888888", size=self.points, marker=self.marker, **kw)
        item = LegendItem(label=value(""), renderers=[line, band, dots], visible=False)
        fig.legend[0].items = list(fig.legend[0].items) + [item]
        self.hover.renderers = list(self.hover.renderers) + [dots]
        if self.follows is not None:
            self.follows.renderers = list(self.follows.renderers) + [band, line, dots]
        self.slots.append((src, line, band, dots, item))
        self.labels.append(None)
        self._shown.append(None)
        return i

    def drawn(self) -> Dict[str, int]:
        """The lines drawn now: points per legend label (for tests and scripts)."""
        return {label: len(self.slots[i][0].data["x"]) for i, label in enumerate(self.labels) if label is not None}

    def draw(self, bands: Dict[str, Band], extra: Optional[Dict[str, Dict[str, list]]] = None) -> None:
        """Show exactly the lines ``bands`` (by label); ``extra``: hover columns per label."""
        for i, label in enumerate(self.labels):
            if label is not None and label not in bands:
                src, *_, item = self.slots[i]
                src.data = {c: [] for c in src.data}
                item.visible = False
                self.labels[i], self._shown[i] = None, None
        for label, b in bands.items():
            if label in self.labels:
                i = self.labels.index(label)
            else:
                i = self.labels.index(None) if None in self.labels else self._add_slot()
                self.labels[i] = label
            src, line, band, dots, item = self.slots[i]
            name = line_name(label, b)
            color = REFERENCES.get(b.hue) or lighter(colour(b.hue), self.shade)
            data = {"x": b.x, "y": b.mean, "low": b.low, "high": b.high, "label": [name] * len(b.x),
                    **{c: (extra or {}).get(label, {}).get(c, [None] * len(b.x)) for c in self.columns}}
            shown = (name, color, b.overlay, data)
            if self._shown[i] == shown:
                continue
            if self._shown[i] is None or self._shown[i][1:3] != (color, b.overlay):
                line.glyph.line_color = band.glyph.fill_color = color
                dots.glyph.fill_color = dots.glyph.line_color = color
                line.glyph.line_dash = "dashed" if b.overlay else self.dash
                line.glyph.line_width = 1.5 if b.overlay else self.width
            if self._shown[i] is None or self._shown[i][0] != name:
                item.label = value(name)
            item.visible = True
            src.data = data
            self._shown[i] = shown


def family_points(tables: dict) -> Dict[str, list]:
    """The accuracy-vs-kept plot's points: one per finished learned run (its ``x``: % of weights
    kept, ``y``: test accuracy %), with its family, colour and name (JSON-ready; the page holds exactly this)."""
    rows = tables["families"]
    return {"x": [r["percent_kept"] for r in rows], "y": [r["test_acc"] for r in rows],
            "family": [r["family"] for r in rows], "color": [family_colour(r["family"]) for r in rows],
            "label": [r["series"] for r in rows], "seed": [r["seed"] for r in rows]}


def kept_span(values: Iterable[float]) -> Tuple[float, float]:
    """The % kept axis (log) of the accuracy-vs-kept plot: from 0.6 times the fewest to 1.6 times
    the most weights kept (at most 105%), at least a decade; 1-100% while it shows nothing."""
    values = [v for v in values if v and v > 0]
    if not values:
        return 1.0, REMAINING_TOP
    lo, hi = max(0.05, min(values) * 0.6), min(REMAINING_TOP, max(values) * 1.6)
    return (lo, max(hi, min(REMAINING_TOP, lo * 10)))


# the hues of lines that are references, not settings
REFERENCES = {"dense": REFERENCE}


def lighter(color: str, shade: float) -> str:
    """``color`` (``#rrggbb``) mixed with white by ``shade`` (0: itself, 1: white)."""
    if not shade:
        return color
    rgb = [int(color[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(c + (255 - c) * shade):02x}" for c in rgb)


# the one-shot plot: a criterion's colour for both weight kinds; initial weights solid, full colour,
# round points; signed constants dashed, lighter, triangles. Its legend names the kinds short.
SUPERMASK_STYLES = {"init": dict(dash="solid", shade=0.0, marker="circle"),
                    "signed_constant": dict(dash="dashed", shade=0.45, marker="triangle")}
SUPERMASK_SHORT = {"initial weights": "init", "signed constants": "signed const"}


def order_legend(fig) -> None:
    """Sort the entries of ``fig``'s legend by name, reference lines first (on the one-shot plot, a
    criterion's two weight kinds are neighbours), when their order changes."""
    items = list(fig.legend[0].items)

    def key(item):
        text = getattr(item.label, "value", None)
        return (0, "") if text is None else (1, text)

    ordered = sorted(items, key=key)
    if ordered != items:
        fig.legend[0].items = ordered


def supermask_legend_name(label: str) -> str:
    """A one-shot line's legend entry: ``large_final · init`` for ``large_final · initial weights``."""
    for long, short in SUPERMASK_SHORT.items():
        label = label.replace(f" · {long}", f" · {short}")
    return label


def line_name(label: str, band: Band) -> str:
    """A line's legend entry: its setting, and how many seeds it is the mean of where more than one."""
    return label if band.seeds < 2 else f"{label} ({band.seeds} seeds)"


def span(axis_range: Range1d, start: float, end: float) -> None:
    """Set a range (on a log axis, where a range cannot follow a first point) when it changes."""
    if (axis_range.start, axis_range.end) != (start, end):
        axis_range.start, axis_range.end = start, end


ACC_PAD = 1.0  # accuracy axes (%): padding past the data, so that 100% ends the axis at 101
REMAINING_TOP = 105.0  # weights-remaining axes (%, log): their top


def remaining_bottom(values: Iterable[float], empty: float) -> float:
    """The bottom of a weights-remaining axis (log): 0.8 times the fewest weights shown (``empty``
    when none), never below 0.05%."""
    return max(0.05, min(list(values) or [empty]) * 0.8)


# the tick marks of a weights-remaining axis (log), densest first: 100, 90, ..., 10, 9, ... (every
# digit), then 1-2-3-4-5-6-8, then 1-2-5, then powers of ten; an axis takes the densest whose
# neighbouring ticks are at least a tenth of the axis apart (on a 300 px axis, 30 px: labels never
# touch), and the every-digit ticks as its minor ticks
REMAINING_MANTISSAS = ((1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 2, 3, 4, 5, 6, 8), (1, 2, 5), (1,))


def remaining_ticks(lo: float, hi: float) -> Tuple[List[float], List[float]]:
    """The major and minor ticks of a weights-remaining axis (log) from ``lo`` to ``hi`` percent."""
    lo, hi = min(lo, hi), max(lo, hi)
    span = math.log10(hi / lo)

    def tier(mantissas) -> List[float]:
        return sorted({round(m * 10.0 ** e, 6) for e in range(-3, 3) for m in mantissas
                       if lo <= m * 10.0 ** e <= min(hi, 100.0)}, reverse=True)

    minor = tier(REMAINING_MANTISSAS[0])
    for mantissas in REMAINING_MANTISSAS:
        ticks = tier(mantissas)
        if all(math.log10(a / b) >= span / 10 for a, b in zip(ticks, ticks[1:])):
            break
    return ticks, [t for t in minor if t not in ticks]


def remaining_axis(axis, lo: float, hi: float) -> None:
    """Ticks of a weights-remaining axis (log) for the span ``lo``-``hi``, labelled as plain
    percentages (100, 90, 80 or 100, 50, 20, 10, 5: never 10², 10¹), when they change."""
    major, minor = remaining_ticks(lo, hi)
    ticker = axis.ticker
    if isinstance(ticker, FixedTicker) and list(ticker.ticks) == major:
        return
    axis.ticker = FixedTicker(ticks=major, minor_ticks=minor)
    axis.major_label_overrides = {t: f"{t:g}" for t in major}


def follow_data(fig) -> None:
    """Let every ``DataRange1d`` of ``fig`` follow the data again. The page writes the start and
    end it computes back to the kernel; a figure sent to the page whole with them would hold them
    fixed (BokehJS keeps a start or end it is given), and lines drawn later would fall outside."""
    ranges = [fig.x_range, fig.y_range, *fig.extra_x_ranges.values(), *fig.extra_y_ranges.values()]
    for r in ranges:
        if isinstance(r, DataRange1d):
            for end in ("start", "end"):
                v = getattr(r, end)
                if not (isinstance(v, float) and math.isnan(v)):
                    setattr(r, end, math.nan)


def level_lines(levels: Iterable[Tuple[str, float, str]], x0: float, x1: float) -> dict:
    """Horizontal reference lines ``(label, y, color)`` from ``x0`` to ``x1`` (multi_line data)."""
    levels = list(levels)
    return {"xs": [[x0, x1] for _ in levels], "ys": [[y, y] for _, y, _ in levels],
            "label_ref": [label for label, _, _ in levels], "color": [c for _, _, c in levels]}


def add_references(fig) -> ColumnDataSource:
    """Dotted horizontal reference lines on ``fig``, in its legend."""
    src = ColumnDataSource(level_lines([], 0, 1), name=f"{fig.name}_reference_lines")
    r = fig.multi_line("xs", "ys", source=src, color="color", line_dash="dotted", line_width=1.5)
    fig.legend[0].items = list(fig.legend[0].items) + [LegendItem(label={"field": "label_ref"}, renderers=[r])]
    return src


Lines = Dict[str, Tuple[Dict[str, Band], Optional[Dict[str, Dict[str, list]]]]]


def plot_lines(tables: dict) -> Lines:
    """The lines every :class:`LineGroup` of :class:`Plots` is to show for the plot tables, by the
    group's name: its bands by label and their hover columns. It touches no bokeh model: the plots
    draw exactly this, and a test can compare what the page holds with it."""
    out: Lines = {"curve": (seed_bands(tables["curve"], "iteration", "iteration", "test_acc"), None)}
    rows = tables["accuracy_vs_remaining"]
    bands = seed_bands(rows, "round", "weights_remaining", "early_stop_test_acc")
    out["prune"] = (bands, {line: {"round": sorted({r["round"] for r in rows if r["line"] == line})}
                            for line in bands})
    out["layer"] = (layer_bands(tables), None)
    for kind in ("init", "signed_constant"):
        rows = [r for r in tables["supermask"] if r["weights"] == kind]
        bands = seed_bands(rows, "power", "weights_remaining", "test_acc")
        out[f"supermask_{kind}"] = ({supermask_legend_name(line): b for line, b in bands.items()},
                                    {supermask_legend_name(line): {"power": sorted({r["power"] for r in rows
                                                                                   if r["line"] == line})}
                                     for line in bands})
    rows = tables["learned"]
    out["learned"] = (seed_bands(rows, "iteration", "epoch", "test_acc"), None)
    keep = [dict(r, line=r["line"] + " · keep") for r in rows if "expected_keep" in r]
    out["learned_keep"] = (seed_bands(keep, "iteration", "epoch", "expected_keep"), None)
    return out


def layer_bands(tables: dict) -> Dict[str, Band]:
    """The per-layer plot's lines. The per-layer schedule depends only on the network and the prune
    fractions, not on the setting: one line per layer from the run with the most rounds; layers
    pruned at the same rate share one line (named after all of them) instead of hiding each other."""
    rounds_of: Dict[str, int] = {}
    for r in tables["layer_remaining"]:
        rounds_of[r["series"]] = max(rounds_of.get(r["series"], 0), r["round"] + 1)
    by_layer: Dict[str, List[Tuple[int, float]]] = {}
    if rounds_of:
        best = max(rounds_of, key=lambda k: rounds_of[k])
        for r in tables["layer_remaining"]:
            if r["series"] == best:
                by_layer.setdefault(r["layer"], []).append((r["round"], r["weights_remaining"]))
    same: Dict[tuple, List[str]] = {}
    for layer, points in by_layer.items():
        same.setdefault(tuple(round(y, 2) for _, y in sorted(points)), []).append(layer)
    bands = {}
    for values, layers in same.items():
        xs = [x for x, _ in sorted(by_layer[layers[0]])]
        bands[" = ".join(layers)] = Band(layers[0], False, xs, list(values), list(values), list(values), 1)
    return bands


def shown_lines(lines: Lines) -> Dict[str, Dict[str, Dict[str, list]]]:
    """The lines of :func:`plot_lines` as the page is to hold them: by group name, then legend entry,
    the points' ``x`` and ``y`` (JSON-ready; for tests and scripts)."""
    return {group: {line_name(label, b): {"x": list(b.x), "y": list(b.mean)} for label, b in bands.items()}
            for group, (bands, _) in lines.items()}


class Plots:
    """The figures of the Lottery rounds and Supermasks tabs and their data."""

    def __init__(self) -> None:
        self._sent: Dict[int, object] = {}
        self._placeholders: list = []

        f = self._figure("Test accuracy vs iteration (newest round)", "iteration", "test accuracy (%)",
                         name="curve", empty=((0, 300), (80, 100)), x_min_interval=10, y_min_interval=2,
                         y_padding=ACC_PAD)
        self.curve = LineGroup(f, [("run", "@label"), ("iteration", "@x"), ("test acc", "@y{0.00}%")])
        self.curve_fig = f

        f = self._figure("Early-stop test accuracy vs weights remaining", "weights remaining (%)",
                         "test accuracy at early stop (%)", name="prune", x_log=True, flip_x=True,
                         empty=((1, 100), (90, 100)), y_min_interval=2, y_padding=ACC_PAD,
                         x_range=Range1d(REMAINING_TOP, remaining_bottom([], 50.0)))
        self.prune_ref = add_references(f)
        remaining_axis(f.xaxis[0], f.x_range.end, REMAINING_TOP)
        self.prune = LineGroup(f, [("run", "@label"), ("round", "@round"), ("remaining", "@x{0.0}%"),
                                   ("early-stop acc", "@y{0.00}% (seeds: @low{0.00} to @high{0.00})")], ("round",),
                               points=7)
        self.prune_fig = f

        f = self._figure("Weights remaining per layer", "round", "weights remaining (%)", name="layer",
                         y_log=True, empty=((0, 5), (40, 100)), x_min_interval=2,
                         y_range=Range1d(remaining_bottom([], 50.0), REMAINING_TOP))
        f.xaxis.ticker = BasicTicker(min_interval=1)  # whole rounds
        remaining_axis(f.yaxis[0], f.y_range.start, REMAINING_TOP)
        self.layer = LineGroup(f, [("layers", "@label"), ("round", "@x"), ("remaining", "@y{0.00}%")])
        self.layer_fig = f

        f = self._figure("One-shot supermask on the untrained network", "weights remaining (%)", "test accuracy (%)",
                         name="supermask", x_log=True, empty=((0.5, 100), (0, 100)), y_min_interval=5,
                         y_padding=ACC_PAD, x_range=Range1d(REMAINING_TOP, remaining_bottom([], 1.0)),
                         legend="below")
        self.super_ref = add_references(f)
        remaining_axis(f.xaxis[0], f.x_range.end, REMAINING_TOP)
        self.supermask = {kind: LineGroup(f, [("mask", "@label"), ("power", "@power"), ("remaining", "@x{0.00}%"),
                                              ("test acc", "@y{0.00}%")], ("power",), name=f"supermask_{kind}",
                                          points=6, **style)
                          for kind, style in SUPERMASK_STYLES.items()}
        self.super_fig = f

        # two y axes: test accuracy (left) follows the accuracy lines, the placeholder and the paper's
        # levels only; expected keep (right, dashed lines) has its own range, 0-100%. The legend
        # sits below the plot, clear of the right axis.
        f = self._figure("Learned supermask", "epoch", "test accuracy (%)", name="learned",
                         empty=((0, 10), (80, 100)), y_min_interval=2, y_padding=ACC_PAD, legend="below")
        f.extra_y_ranges = {"keep": Range1d(0, 100)}
        f.add_layout(LinearAxis(y_range_name="keep", axis_label="expected keep (%), dashed"), "right")
        self.learn_ref = add_references(f)
        # a DataRange1d follows every renderer of its figure (those of another y range too) unless
        # it lists its own: the accuracy axis lists the placeholder, the references and the accuracy lines
        f.y_range.renderers = list(f.renderers)
        self.learn_acc = LineGroup(f, [("mask", "@label"), ("epoch", "@x{0.00}"), ("test acc", "@y{0.00}%")],
                                   follows=f.y_range)
        self.learn_keep = LineGroup(f, [("mask", "@label"), ("epoch", "@x{0.00}"), ("expected keep", "@y{0.0}%")],
                                    y_range_name="keep", dash="dashed", width=1.5, points=3,
                                    name="learned_keep")
        self.learn_fig = f

        # one point per finished learned run of any family, at its % of weights kept (log) and test
        # accuracy, in its family's colour; the papers' values: stars (labelled) where a paper gives
        # the % kept, grey dotted levels where it does not (Zhou et al.'s Table 1)
        f = self._figure("Learned masks: test accuracy vs weights kept (one point per finished run)",
                         "weights kept (%)", "final test accuracy (%)", name="families", x_log=True,
                         empty=((1, 100), (80, 100)), y_min_interval=2, y_padding=ACC_PAD,
                         x_range=Range1d(1.0, REMAINING_TOP), legend="below")
        remaining_axis(f.xaxis[0], 1.0, REMAINING_TOP)
        f.legend[0].ncols = 1  # the papers' entries are long: one column fits a half-page cell
        self.family_ref = add_references(f)
        self.family_src = ColumnDataSource({k: [] for k in ("x", "y", "family", "color", "label", "seed")},
                                           name="families_points")
        dots = f.scatter("x", "y", source=self.family_src, color="color", size=9, alpha=0.85,
                         legend_field="family")
        self.family_paper_src = ColumnDataSource({"x": [], "y": [], "label": [], "short": []}, name="families_paper")
        stars = f.scatter("x", "y", source=self.family_paper_src, marker="star", size=17, fill_color="white",
                          line_color=PAPER, line_width=2, legend_field="label")
        f.add_layout(LabelSet(x="x", y="y", text="short", source=self.family_paper_src, x_offset=9, y_offset=-14,
                              text_font_size="8pt", text_color=PAPER, background_fill_color="white",
                              background_fill_alpha=0.85))
        f.add_tools(HoverTool(renderers=[dots], tooltips=[("run", "@label"), ("family", "@family"),
                                                          ("kept", "@x{0.00}%"), ("test acc", "@y{0.00}%")]),
                    HoverTool(renderers=[stars], tooltips=[("paper", "@label")]))
        self.family_fig = f
        self.figures = [self.curve_fig, self.prune_fig, self.layer_fig, self.super_fig, self.learn_fig,
                        self.family_fig]

    def _figure(self, *args, empty, name: str, legend="right", **kw):
        """:func:`new_figure` with an invisible placeholder glyph spanning ``empty`` = ((x0, x1), (y0, y1))
        while it has no data, so that its axes show before the first point."""
        fig = new_figure(*args, legend=legend, name=name, **kw)
        placeholder = {"x": list(empty[0]), "y": list(empty[1])}
        ph = ColumnDataSource(dict(placeholder), name="placeholder")
        fig.scatter("x", "y", source=ph, alpha=0)
        self._placeholders.append((fig, ph, placeholder))
        return fig

    def _set(self, source: ColumnDataSource, data: dict) -> None:
        if self._sent.get(id(source)) == data:
            return
        self._sent[id(source)] = data
        source.data = data

    def groups(self) -> Dict[str, LineGroup]:
        """Every line group, by name (the names of :func:`plot_lines`)."""
        return {g.name: g for g in (self.curve, self.prune, self.layer, *self.supermask.values(), self.learn_acc,
                                    self.learn_keep)}

    def render(self, arch: Optional[str], tables: dict) -> None:
        """Draw the plot tables; reference lines are those of network ``arch``."""
        paper = catalog.paper_table(arch)
        lines = plot_lines(tables)
        for name, group in self.groups().items():
            group.draw(*lines[name])
        self._render_pruning(arch, paper, tables, lines["prune"][0])
        lo = remaining_bottom([y for b in lines["layer"][0].values() for y in b.mean], 50.0)
        span(self.layer_fig.y_range, lo, REMAINING_TOP)
        remaining_axis(self.layer_fig.yaxis[0], lo, REMAINING_TOP)
        self._render_supermask(paper, tables)
        order_legend(self.super_fig)
        self._render_learned(paper, tables)
        self._render_families(arch, tables)
        self._update_placeholders()

    def _update_placeholders(self) -> None:
        for fig, ph, placeholder in self._placeholders:
            has_data = False
            for r in fig.renderers:
                src = r.data_source
                cols = list(src.data.values())
                if src is ph or not cols or not len(cols[0]) or (src.name or "").endswith(("reference_lines", "_paper")):
                    continue
                has_data = True
            self._set(ph, {"x": [], "y": []} if has_data else dict(placeholder))

    def _render_pruning(self, arch: Optional[str], paper: Optional[dict], tables: dict,
                        bands: Dict[str, Band]) -> None:
        lo = remaining_bottom([x for b in bands.values() for x in b.x], 50.0)
        span(self.prune_fig.x_range, REMAINING_TOP, lo)  # log axes: set from the data (a first point spans nothing)
        remaining_axis(self.prune_fig.xaxis[0], lo, REMAINING_TOP)
        levels = []
        dense = [r["value"] for r in tables["reference"] if r["name"].startswith("dense baseline")]
        if dense:
            levels.append((f"dense network here ({sum(dense) / len(dense):.2f}%)", sum(dense) / len(dense), REFERENCE))
        if paper:
            levels.append((f"paper: dense {arch} ({paper['dense']}%)", paper["dense"], PAPER))
        self._set(self.prune_ref, level_lines(levels, lo, 100.0))

    def _render_supermask(self, paper: Optional[dict], tables: dict) -> None:
        lo = remaining_bottom([r["weights_remaining"] for r in tables["supermask"]], 1.0)
        span(self.super_fig.x_range, REMAINING_TOP, lo)
        remaining_axis(self.super_fig.xaxis[0], lo, REMAINING_TOP)
        levels = []
        if paper:
            for (key, name), grey in zip((("mask_init", "init"), ("mask_signed_constant", "signed const")),
                                         PAPER_SHADES):
                levels.append((f"paper Table 1, {name}: {paper[key]}%", paper[key], grey))
        self._set(self.super_ref, level_lines(levels, lo, 100.0))

    def _render_learned(self, paper: Optional[dict], tables: dict) -> None:
        rows = tables["learned"]
        x_hi = max([r["epoch"] for r in rows if r["epoch"] is not None] or [10.0])
        levels = []
        if paper:
            for (key, name), grey in zip((("learned_init", "init"), ("learned_signed_constant", "S.C."),
                                          ("learned_dwr", "DWR")), PAPER_SHADES):
                levels.append((f"paper Table 1, learned {name}: {paper[key]}%", paper[key], grey))
        self._set(self.learn_ref, level_lines(levels, 0.0, x_hi))

    def _render_families(self, arch: Optional[str], tables: dict) -> None:
        points = family_points(tables)
        stars = catalog.paper_family_points(arch)
        lo, hi = kept_span(points["x"] + [x for _, x, _ in stars])
        span(self.family_fig.x_range, lo, hi)
        remaining_axis(self.family_fig.xaxis[0], lo, hi)
        self._set(self.family_src, points)
        self._set(self.family_paper_src, {"x": [x for _, x, _ in stars], "y": [y for _, _, y in stars],
                                          "label": [label for label, _, _ in stars],
                                          "short": [f"paper: {y:g}% at {x:g}%" for _, x, y in stars]})
        levels = [(label, value, grey) for (label, value), grey in zip(catalog.paper_family_levels(arch),
                                                                        PAPER_SHADES)]
        self._set(self.family_ref, level_lines(levels, lo, hi))
