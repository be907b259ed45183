"""The plots' data as tidy rows, and their export as one long CSV file.

:func:`plot_tables` turns a controller snapshot (live series, then overlays) into one table per
plot, with accuracies and fractions in %; the views draw these tables and :func:`export_csv`
writes exactly them, so an exported file holds the numbers on the screen.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

from lt_core.store import atomic_write_text

from . import catalog
from .series import SUPERMASK_WEIGHTS, Series

EXPORT_DIR = "dashboard-exports"


def plot_tables(snapshot: dict) -> Dict[str, List[dict]]:
    """The plots' data as tidy rows (accuracies and fractions in %), live runs then overlays. Every
    row names its ``series`` (one run), its ``line`` (the setting: the seeds of one setting make one
    line, see :func:`seed_bands`; for a stored run overlaid, its stored setting), the line's ``hue``
    and the run's ``seed``."""
    tables: Dict[str, List[dict]] = {"curve": [], "accuracy_vs_remaining": [], "layer_remaining": [],
                                     "supermask": [], "learned": [], "families": [], "reference": []}
    all_series: List[Series] = list(snapshot.get("series", [])) + list(snapshot.get("overlays", []))
    for s in all_series:
        base = {"series": s.label, "line": s.setting or s.label, "hue": s.hue,
                "seed": s.seed, "overlay": s.overlay}
        r = s.shown_round()
        if s.kind in ("dense", "lottery", "oneshot") and r is not None:
            # a one-shot run's curve is its dense network's training: one line with the dense runs'
            line = dict(base, line="dense (round 0)", hue="dense") if s.kind == "oneshot" and not s.overlay else base
            for p in (p for p in s.curves.get(r, []) if "test_acc" in p):  # points with a test accuracy
                tables["curve"].append({**line, "round": r, "iteration": p["iteration"], "test_acc": 100 * p["test_acc"]})
        if s.kind == "lottery" or (s.kind == "dense" and s.overlay):
            for k in sorted(s.rounds):
                rec = s.rounds[k]
                tables["accuracy_vs_remaining"].append({
                    **base, "round": k, "weights_remaining": 100 * rec["weights_remaining"],
                    "early_stop_test_acc": 100 * rec["early_stop_test_acc"]})
        if s.kind == "lottery":
            for k in sorted(s.rounds):
                for layer, frac in (s.rounds[k].get("layer_remaining") or {}).items():
                    tables["layer_remaining"].append({**base, "layer": layer, "round": k,
                                                      "weights_remaining": 100 * frac})
        if s.kind == "oneshot":
            for p in sorted(s.points, key=lambda p: (p["criterion"], p["weights"], p["power"])):
                tables["supermask"].append({**base, "line": f"{p['criterion']} · {SUPERMASK_WEIGHTS[p['weights']]}"
                                            + (f" ({s.setting or s.label})" if s.overlay else ""),
                                            "hue": p["criterion"],
                                            "criterion": p["criterion"], "weights": p["weights"], "power": p["power"],
                                            "weights_remaining": 100 * p["weights_remaining"],
                                            "test_acc": 100 * p["test_acc"], "train_acc": 100 * p["train_acc"]})
        if s.kind == "learned":
            for e in s.learn:
                row = {**base, "iteration": e.get("iteration"), "epoch": e.get("epoch"), "test_acc": 100 * e["test_acc"]}
                if "expected_keep_fraction" in e:
                    row["expected_keep"] = 100 * e["expected_keep_fraction"]
                tables["learned"].append(row)
            final = s.learn_final or {}
            if "test_acc_mean" in final and "expected_keep_fraction" in final:  # one point per finished run
                variant = s.learn_variant or {}
                tables["families"].append({**base, "family": variant.get("method") or "zhou",
                                           "keep_fraction": variant.get("keep_fraction"),
                                           "percent_kept": 100 * final["expected_keep_fraction"],
                                           "test_acc": 100 * final["test_acc_mean"]})
        if s.kind == "dense" and 0 in s.rounds and not s.overlay:
            tables["reference"].append({"name": f"dense baseline · seed {s.seed}", "value":
                                        100 * s.rounds[0]["early_stop_test_acc"]})
    arch = snapshot.get("arch")
    paper = catalog.paper_table(arch)
    if paper:
        for key, value in paper.items():
            tables["reference"].append({"name": f"paper Table 1 · {arch} · {key}", "value": value})
    return tables


@dataclass
class Band:
    """One line of a plot: the mean over seeds of a setting at each step, with the min and max."""

    hue: str
    overlay: bool
    x: List[float]
    mean: List[float]
    low: List[float]
    high: List[float]
    seeds: int  # how many seeds the line has


def seed_bands(rows: List[dict], step: str, x: str, y: str) -> Dict[str, Band]:
    """The rows of a plot table as one :class:`Band` per ``line``: the seeds of a setting at the same
    ``step`` (round, iteration, prune power, epoch) give one point, at the mean of their ``x``."""
    groups: Dict[str, Dict[object, List[dict]]] = {}
    for r in rows:
        groups.setdefault(r["line"], {}).setdefault(r[step], []).append(r)
    out: Dict[str, Band] = {}
    for line, steps in groups.items():
        first = next(iter(steps.values()))[0]
        seeds = {r["seed"] for group in steps.values() for r in group}
        band = Band(first["hue"], first["overlay"], [], [], [], [], len(seeds))
        for key in sorted(steps, key=lambda k: (k is None, k)):
            points = [r for r in steps[key] if r.get(y) is not None]
            if not points:
                continue
            ys = [r[y] for r in points]
            band.x.append(sum(r[x] for r in points) / len(points))
            band.mean.append(sum(ys) / len(ys))
            band.low.append(min(ys))
            band.high.append(max(ys))
        out[line] = band
    return out


def csv_rows(tables: Dict[str, List[dict]]) -> List[List]:
    """Long format: plot, series, line, x_name, x, y_name, y."""
    out: List[List] = [["plot", "series", "line", "x_name", "x", "y_name", "y"]]
    for r in tables["curve"]:
        out.append(["accuracy_vs_iteration", r["series"], f"round {r['round']}", "iteration", r["iteration"],
                    "test_accuracy_percent", r["test_acc"]])
    for r in tables["accuracy_vs_remaining"]:
        out.append(["accuracy_vs_weights_remaining", r["series"], f"round {r['round']}", "weights_remaining_percent",
                    r["weights_remaining"], "early_stop_test_accuracy_percent", r["early_stop_test_acc"]])
    for r in tables["layer_remaining"]:
        out.append(["layer_weights_remaining", r["series"], r["layer"], "round", r["round"],
                    "weights_remaining_percent", r["weights_remaining"]])
    for r in tables["supermask"]:
        out.append(["supermask_accuracy_vs_weights_remaining", r["series"], f"{r['criterion']} / {r['weights']}",
                    "weights_remaining_percent", r["weights_remaining"], "test_accuracy_percent", r["test_acc"]])
    for r in tables["learned"]:
        out.append(["learned_supermask", r["series"], "test accuracy", "epoch", r["epoch"],
                    "test_accuracy_percent", r["test_acc"]])
        if "expected_keep" in r:
            out.append(["learned_supermask", r["series"], "expected keep fraction", "epoch", r["epoch"],
                        "expected_keep_percent", r["expected_keep"]])
    for r in tables["families"]:
        out.append(["accuracy_vs_percent_kept", r["series"], r["family"], "percent_kept", r["percent_kept"],
                    "test_accuracy_percent", r["test_acc"]])
    for r in tables["reference"]:
        out.append(["reference", r["name"], "", "", "", "test_accuracy_percent", r["value"]])
    return out


def export_csv(snapshot: dict, root=None, *, path=None) -> Path:
    """Write the plots' data (see :func:`csv_rows`) to ``path``, else to a new file under
    ``<root>/dashboard-exports/``. Returns the path."""
    if path is None:
        if root is None:
            raise ValueError("export_csv: give a results root or a path")
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        path = Path(root) / EXPORT_DIR / f"plots-{stamp}.csv"
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"export: {path} is a directory; give a file name such as {path / 'plots.csv'}")
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for row in csv_rows(plot_tables(snapshot)):
        writer.writerow([("" if v is None else (f"{v:.6g}" if isinstance(v, float) else v)) for v in row])
    atomic_write_text(path, buf.getvalue())
    return path
