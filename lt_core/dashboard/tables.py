"""The plots' data as tidy rows, and their export as one long CSV file.

:func:`plot_tables` turns a controller snapshot (live series, then overlays) into one table per
plot, with accuracies and fractions in %; the views draw these tables and :func:`export_csv`
writes exactly them, so an exported file holds the numbers on the screen.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
from pathlib import Path
from typing import Dict, List

from lt_core.store import atomic_write_text

from . import catalog
from .series import Series

EXPORT_DIR = "dashboard-exports"



def plot_tables(snapshot: dict) -> Dict[str, List[dict]]:
    """The plots' data as tidy rows (accuracies and fractions in %), live runs then overlays."""
    tables: Dict[str, List[dict]] = {"curve": [], "accuracy_vs_remaining": [], "layer_remaining": [],
                                     "supermask": [], "learned": [], "reference": []}
    all_series: List[Series] = list(snapshot.get("series", [])) + list(snapshot.get("overlays", []))
    for s in all_series:
        r = s.shown_round()
        if s.kind in ("dense", "lottery", "oneshot") and r is not None:
            for p in s.curves.get(r, []):
                tables["curve"].append({"series": s.label, "overlay": s.overlay, "round": r,
                                        "iteration": p["iteration"], "test_acc": 100 * p["test_acc"]})
        if s.kind == "lottery" or (s.kind == "dense" and s.overlay):
            for k in sorted(s.rounds):
                rec = s.rounds[k]
                tables["accuracy_vs_remaining"].append({
                    "series": s.label, "overlay": s.overlay, "round": k,
                    "weights_remaining": 100 * rec["weights_remaining"],
                    "early_stop_test_acc": 100 * rec["early_stop_test_acc"]})
        if s.kind == "lottery":
            for k in sorted(s.rounds):
                for layer, frac in (s.rounds[k].get("layer_remaining") or {}).items():
                    tables["layer_remaining"].append({"series": s.label, "overlay": s.overlay, "layer": layer,
                                                      "round": k, "weights_remaining": 100 * frac})
        if s.kind == "oneshot":
            for p in sorted(s.points, key=lambda p: (p["criterion"], p["weights"], p["power"])):
                tables["supermask"].append({"series": s.label, "overlay": s.overlay, "criterion": p["criterion"],
                                            "weights": p["weights"], "power": p["power"],
                                            "weights_remaining": 100 * p["weights_remaining"],
                                            "test_acc": 100 * p["test_acc"], "train_acc": 100 * p["train_acc"]})
        if s.kind == "learned":
            for e in s.learn:
                row = {"series": s.label, "overlay": s.overlay, "iteration": e.get("iteration"),
                       "epoch": e.get("epoch"), "test_acc": 100 * e["test_acc"]}
                if "expected_keep_fraction" in e:
                    row["expected_keep"] = 100 * e["expected_keep_fraction"]
                tables["learned"].append(row)
        if s.kind == "dense" and 0 in s.rounds and not s.overlay:
            tables["reference"].append({"name": f"dense baseline · seed {s.seed}", "value":
                                        100 * s.rounds[0]["early_stop_test_acc"]})
    arch = snapshot.get("arch")
    paper = catalog.paper_table(arch)
    if paper:
        for key, value in paper.items():
            tables["reference"].append({"name": f"paper Table 1 · {arch} · {key}", "value": value})
    return tables


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
