"""Static figures in the paper's style (matplotlib), for notebooks and reports.

They are images, so they survive in executed notebooks, HTML exports and offline (the dashboard
keeps its interactive bokeh plots). Every function takes a tidy DataFrame and returns a matplotlib
``Figure``; :func:`save` writes it as PNG and SVG.

* :func:`accuracy_vs_remaining` — the paper's Figures 3-5: early-stop test accuracy against the
  percent of weights remaining, on a reversed log axis, one colour per setting, the mean over seeds
  as a line and the min-max over seeds as a band, the dense network as a dashed reference.
* :func:`supermask_accuracy` — one-shot supermasks (Figure 6 / Table 1 columns 1-2): accuracy
  against percent remaining for initial weights and signed constants, the paper's values marked.
* :func:`learned_mask_curves` — learned supermasks from their stored metrics: test accuracy and
  expected keep fraction (on its own axis) against iterations.
* :func:`table1_bars` — Table 1: ours (mean, min-max over seeds) beside the paper's value per cell.
* :func:`families_accuracy` — supermask families (Zhou, edge-popup, signed): accuracy against the
  percent of weights kept, log axis, the papers' reported values marked.

Colours: :func:`lt_core.colours.colour` gives each criterion / policy name the same colour in every figure
and in the dashboard. Reference lines (dense network, paper values, chance) are black or grey, which no
data line takes.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import matplotlib

matplotlib.use("Agg")  # figures are files and inline images; never a window
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from ..atomic import atomic_write  # noqa: E402
from ..colours import PALETTE, PAPER, REFERENCE, colour, family_colour  # noqa: E402  (re-exported: figures.colour)

DASHES = ["-", "--", ":", "-."]


def _log_remaining_axis(ax, values: Sequence[float]) -> None:
    """Percent of weights remaining on a log axis, reversed (pruning proceeds to the right).

    Ticks at the plotted values when there are few of them (a short sweep), else at every other
    value (the paper's schedule: 100, 51.3, 26.3, ...).
    """
    values = sorted({round(float(v), 1) for v in values if v > 0}, reverse=True) or [100.0]
    lowest = values[-1]
    ax.set_xscale("log")
    ax.set_xlim(110 if lowest > 20 else 130, 0.8 * lowest)
    ticks = values if len(values) <= 9 else values[::2]
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("percent of weights remaining")
    ax.grid(True, which="major", alpha=0.3)


def seed_bands(frame: pd.DataFrame, by: str, x: str = "percent_remaining", y: str = "early_stop_test_acc",
               step: str = "round") -> pd.DataFrame:
    """Mean, min and max of ``y`` over seeds, per ``by`` and ``step`` (the paper's lines and bands)."""
    keys = [by, step]
    out = frame.groupby(keys, sort=False).agg(x=(x, "mean"), mean=(y, "mean"), low=(y, "min"), high=(y, "max"),
                                              seeds=(y, "size")).reset_index()
    return out.sort_values([by, step])


def accuracy_vs_remaining(frame: pd.DataFrame, by: str = "criterion", *, title: str = "",
                          dense: Optional[float] = None, y: str = "early_stop_test_acc",
                          labels: Optional[Dict[str, str]] = None, ax=None):
    """Early-stop test accuracy (%) against percent of weights remaining, one line (+ band) per ``by``.

    ``frame``: one row per run and round with columns ``by``, ``round``, ``percent_remaining`` and
    ``y`` (a fraction), and optionally ``seed``. Several seeds of one setting make one mean line with
    a shaded min-max band. ``dense`` (a fraction): the trained dense network's accuracy, drawn dashed.
    """
    fig, ax = _figure(ax)
    bands = seed_bands(frame, by, y=y)
    for name, g in bands.groupby(by, sort=False):
        c = colour(name)
        label = (labels or {}).get(name, str(name))
        ax.plot(g["x"], 100 * g["mean"], color=c, lw=1.8, marker="o", ms=3, label=label)
        if (g["seeds"] > 1).any():
            ax.fill_between(g["x"], 100 * g["low"], 100 * g["high"], color=c, alpha=0.18, lw=0)
    if dense is not None:
        ax.axhline(100 * dense, color=REFERENCE, ls="--", lw=1, label="dense network")
    _log_remaining_axis(ax, frame["percent_remaining"])
    ax.set_ylabel("test accuracy at early stop (%)")
    seeds = int(frame["seed"].nunique()) if "seed" in frame else 1
    ax.set_title(title or f"accuracy vs weights remaining ({seeds} seed{'s' if seeds != 1 else ''}"
                 f"{', mean and min-max band' if seeds > 1 else ''})", fontsize=10)
    _legend_outside(ax)
    return fig


def supermask_accuracy(points: pd.DataFrame, *, paper: Optional[Dict[str, float]] = None, title: str = "",
                       criterion: Optional[str] = None, ax=None):
    """One-shot supermask test accuracy (%) against percent remaining, initial weights vs signed constants.

    ``points``: rows with ``criterion``, ``weights`` (``init`` / ``signed_constant``),
    ``weights_remaining`` (fraction), ``test_acc`` and optionally ``seed``. ``paper``: the paper's
    best value per weight kind (``{"init": 79.3, "signed_constant": 86.3}``), drawn as dotted lines.
    """
    fig, ax = _figure(ax)
    frame = points if criterion is None else points[points["criterion"] == criterion]
    frame = frame.assign(percent_remaining=100 * frame["weights_remaining"],
                         setting=frame["criterion"] + " · " + frame["weights"])
    if "seed" not in frame:
        frame = frame.assign(seed=0)
    for i, ((crit, kind), g) in enumerate(frame.groupby(["criterion", "weights"], sort=False)):
        b = g.groupby("percent_remaining").agg(mean=("test_acc", "mean"), low=("test_acc", "min"),
                                               high=("test_acc", "max"), seeds=("test_acc", "size")).reset_index()
        b = b.sort_values("percent_remaining", ascending=False)
        c = colour(crit)
        ls = "-" if kind == "init" else "--"
        ax.plot(b["percent_remaining"], 100 * b["mean"], color=c, ls=ls, marker="o", ms=3,
                label=f"{crit}, {'initial weights' if kind == 'init' else 'signed constants'}")
        if (b["seeds"] > 1).any():
            ax.fill_between(b["percent_remaining"], 100 * b["low"], 100 * b["high"], color=c, alpha=0.15, lw=0)
    for kind, value in (paper or {}).items():
        ax.axhline(value, color=PAPER, ls=":" if kind == "init" else "-.", lw=1,
                   label=f"paper, {'initial weights' if kind == 'init' else 'signed constants'}: {value:g}%")
    ax.axhline(10, color="#999999", lw=0.8, label="chance")
    _log_remaining_axis(ax, frame["percent_remaining"])
    ax.set_ylabel("test accuracy, untrained network (%)")
    ax.set_title(title or "one-shot supermasks on the untrained network", fontsize=10)
    _legend_outside(ax)
    return fig


def learned_mask_curves(metrics: pd.DataFrame, *, labels: Optional[Dict[str, str]] = None,
                        paper: Optional[Dict[str, float]] = None, title: str = "",
                        groups: Optional[Dict[str, str]] = None):
    """Learned supermasks over training: test accuracy (left) and expected keep fraction (right panel).

    ``metrics``: the tidy metric rows of learned-mask runs (``run``, ``iteration``, ``split``,
    ``metric``, ``value``) as stored in their ``metrics.csv``. ``labels`` maps run names to legend
    text; ``paper`` maps the same labels to the paper's accuracy (%), drawn dotted in the line's colour.
    ``groups`` maps run names to a setting (e.g. the variant): runs of one setting (its seeds) share a
    colour (one per setting, in order of appearance) and differ in dash; without it each run has its own.
    """
    fig, (acc_ax, keep_ax) = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    seen: Dict[str, int] = {}
    for i, (run, g) in enumerate(metrics.groupby("run", sort=False)):
        label = (labels or {}).get(run, run)
        group = (groups or {}).get(run)
        if group is None:
            c, ls = PALETTE[i % len(PALETTE)], "-"
        else:
            c = PALETTE[list(dict.fromkeys(groups.values())).index(group) % len(PALETTE)]
            ls = DASHES[seen.get(group, 0) % len(DASHES)]
            seen[group] = seen.get(group, 0) + 1
        acc = g[(g["split"] == "test") & (g["metric"] == "accuracy")].sort_values("iteration")
        keep = g[g["metric"] == "expected_keep_fraction"].sort_values("iteration")
        acc_ax.plot(acc["iteration"], 100 * acc["value"], color=c, ls=ls, lw=1.6, label=label)
        keep_ax.plot(keep["iteration"], 100 * keep["value"], color=c, ls=ls, lw=1.6, label=label)
        if paper and label in paper:
            acc_ax.axhline(paper[label], color=c, ls=":", lw=1)
    acc_ax.set_xlabel("iteration")
    acc_ax.set_ylabel("test accuracy, one sampled mask (%)")
    acc_ax.grid(True, alpha=0.3)
    keep_ax.set_xlabel("iteration")
    keep_ax.set_ylabel("expected percent of weights kept")
    keep_ax.grid(True, alpha=0.3)
    keep_ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8, frameon=False)
    fig.suptitle(title or "learned supermasks" + (" (dotted: the paper's final accuracy)" if paper else ""),
                 fontsize=10)
    return fig


def table1_bars(table: pd.DataFrame, title: str = ""):
    """Table 1 as bars: ours (mean over seeds, min-max whiskers) beside the paper's value, per cell.

    ``table``: :mod:`lt_core.paper.table1` rows (``network``, ``what``, ``ours``, ``ours_min``, ``ours_max``,
    ``paper``). One panel per network with numbers of ours; a network without any says so in words.
    """
    networks = list(dict.fromkeys(table["network"]))
    fig, axes = plt.subplots(len(networks), 1, figsize=(9, 2.9 * len(networks)), squeeze=False,
                             constrained_layout=True)
    for ax, network in zip(axes[:, 0], networks):
        rows = table[table["network"] == network].reset_index(drop=True)
        x = range(len(rows))
        ax.set_xticks(list(x))
        ax.set_xticklabels([textwrap.fill(w, 18) for w in rows["what"]], fontsize=7)
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(network, fontsize=10)
        ax.set_ylim(0, 100)
        ax.grid(True, axis="y", alpha=0.3)
        ax.scatter(list(x), rows["paper"], color=PAPER, marker="_", s=600, lw=2, zorder=3, label="paper")
        have = rows["ours"].notna()
        if not have.any():
            note = textwrap.shorten(str(rows["note"].iloc[0]), 180, placeholder=" ...")
            ax.text(0.5, 0.5, textwrap.fill(note, 90), transform=ax.transAxes, ha="center", va="center",
                    fontsize=8, bbox={"facecolor": "white", "edgecolor": "#cccccc"})
        else:
            ours = rows[have]
            err = [ours["ours"] - ours["ours_min"], ours["ours_max"] - ours["ours"]]
            ax.bar(ours.index, ours["ours"], width=0.6, color=PALETTE[0], alpha=0.8, yerr=err, capsize=3,
                   label="ours (mean over seeds, min-max)")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    fig.suptitle(title or "Table 1: ours beside the paper's", fontsize=10)
    return fig


def _figure(ax) -> Tuple[object, object]:
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=(8, 4.2), constrained_layout=True)
    return fig, ax


def _legend_outside(ax) -> None:
    """The legend beside the plot, never over the curves."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8, frameon=False)


def save(fig, stem, formats: Sequence[str] = ("png", "svg"), dpi: int = 130) -> list:
    """Write ``fig`` as ``stem.png`` and ``stem.svg`` (atomically: a reader never sees half a file)."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        atomic_write(path, lambda fh: fig.savefig(fh, format=fmt, dpi=dpi, bbox_inches="tight"))
        written.append(path)
    return written


FAMILY_MARKERS = {"zhou": "o", "edge_popup": "s", "signed": "D"}
#: markers of a family's further settings (its first takes the family's own marker)
SETTING_MARKERS = ("o", "^", "v", "P", "X", "<", ">", "h", "p", "*")


def _setting_markers(family: str, count: int) -> list:
    first = FAMILY_MARKERS.get(family, "^")
    rest = [m for m in SETTING_MARKERS if m != first]
    return [first] + [rest[j % len(rest)] for j in range(count - 1)]


def families_accuracy(points: pd.DataFrame, *, dense: Optional[float] = None,
                      paper_points: Sequence[Tuple[str, float, float]] = (),
                      paper_lines: Optional[Dict[str, float]] = None, title: str = "", ax=None):
    """Supermask families: test accuracy (%) against the percent of weights kept (log axis).

    ``points``: one row per learned mask with ``family`` (a method's name), ``setting`` (its words,
    e.g. ``keep 10%``), ``seed``, ``percent_kept`` and ``test_acc`` (fraction). Each run is a small
    dot; each setting's mean over seeds a larger marker with min-max bars on both axes. A family's
    colour is its own (:func:`lt_core.colours.family_colour`, as on the dashboard); its settings are
    told apart by marker and named in the legend (settings of several families crowd near 50% kept,
    where text beside the points would overlap). A family whose settings differ only in their keep
    fraction (edge-popup's sweep) keeps one marker, its settings joined by a line and named in one
    legend entry (the x axis gives each one's fraction).
    ``dense``: our trained dense network's accuracy (fraction), dashed. ``paper_points``: published
    (label, percent kept, accuracy %) marked as stars; ``paper_lines``: published accuracies (%) whose
    keep fraction is not given, dotted. The accuracy axis spans the values drawn when all of them are
    far above chance (10%, then named in the legend as below the axis), else it reaches down to chance.
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(10.5, 5), constrained_layout=True)
    else:
        fig = ax.figure
    fams = list(dict.fromkeys(points["family"]))
    for fam in fams:
        g = points[points["family"] == fam]
        c = family_colour(fam)
        b = g.groupby("setting", sort=False).agg(x=("percent_kept", "mean"), x_lo=("percent_kept", "min"),
                                                  x_hi=("percent_kept", "max"), y=("test_acc", "mean"),
                                                  y_lo=("test_acc", "min"), y_hi=("test_acc", "max"),
                                                  seeds=("seed", "nunique")).reset_index()
        seeds = int(b["seeds"].max()) if len(b) else 0
        seed_words = f"{seeds} seed{'s' * (seeds != 1)}"
        sweep = len(b) > 1 and bool(b["setting"].str.startswith("keep ").all())
        if sweep:
            b = b.sort_values("x").reset_index(drop=True)
            fractions = ", ".join(str(s)[len("keep "):].rstrip("%") for s in b["setting"])
            labels = [f"{fam}, keep {fractions}% ({seed_words})"] + ["_nolegend_"] * (len(b) - 1)
            markers = [FAMILY_MARKERS.get(fam, "^")] * len(b)
            ax.plot(b["x"], 100 * b["y"], color=c, lw=1.2)
        else:
            labels = [f"{fam} ({seed_words})" if s == fam else f"{fam}, {s} ({seed_words})" for s in b["setting"]]
            markers = _setting_markers(fam, len(b))
        for row, label, marker in zip(b.to_dict("records"), labels, markers):
            runs = g[g["setting"] == row["setting"]]
            ax.scatter(runs["percent_kept"], 100 * runs["test_acc"], color=c, marker=marker, s=10, alpha=0.35,
                       lw=0)
            ax.errorbar([row["x"]], [100 * row["y"]], xerr=[[row["x"] - row["x_lo"]], [row["x_hi"] - row["x"]]],
                        yerr=[[100 * (row["y"] - row["y_lo"])], [100 * (row["y_hi"] - row["y"])]], color=c,
                        marker=marker, ms=6, mfc=c if marker == markers[0] else "white", mew=1.2, ls="none",
                        capsize=2, lw=1, label=label)
    for label, kept, acc in paper_points:
        ax.scatter([kept], [acc], marker="*", s=140, color=PAPER, zorder=4, label=label)
    for j, (label, acc) in enumerate((paper_lines or {}).items()):
        ax.axhline(acc, color=PAPER, ls=[":", "-.", (0, (3, 1, 1, 1, 1, 1))][j % 3], lw=0.9, label=label)
    if dense is not None:
        ax.axhline(100 * dense, color=REFERENCE, ls="--", lw=1, label=f"dense network, ours: {100 * dense:.2f}%")
    ys = list(100 * points["test_acc"]) + [a for _, _, a in paper_points] + list((paper_lines or {}).values())
    ys += [100 * dense] if dense is not None else []
    span = max(ys) - min(ys) if ys else 0.0
    low = min(ys) - max(0.08 * span, 0.5) if ys else 0.0
    if low > 20:  # every value far above chance: the axis spans the values (they crowd otherwise)
        ax.set_ylim(low, min(max(ys) + max(0.08 * span, 0.5), 100.5))
        ax.plot([], [], color="#999999", lw=0.8, label="chance: 10%, below this axis")
    else:
        ax.axhline(10, color="#999999", lw=0.8, label="chance")
    xs = list(points["percent_kept"]) + [k for _, k, _ in paper_points]
    ax.set_xscale("log")
    if xs:
        ax.set_xlim(0.7 * min(xs), 130)
    ticks = [t for t in (0.5, 1, 2, 3, 5, 10, 20, 50, 100) if not xs or t >= 0.7 * min(xs)]
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("percent of weights kept (log)")
    ax.set_ylabel("test accuracy, untrained weights (%)")
    ax.grid(True, which="both", alpha=0.25)
    ax.set_title(textwrap.fill(title or "supermask families: accuracy against weights kept", 90), fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8, frameon=False,
              title="markers: mean over seeds; bars: min-max", title_fontsize=8, alignment="left")
    return fig
