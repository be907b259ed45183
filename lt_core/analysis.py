"""Results -> tidy DataFrames, for the notebooks, the reports and the dashboard.

``rounds_frame`` turns lottery results into one row per (run, round); ``stored_rounds_frame``,
``metrics_frame`` and ``runs_frame`` read the results store through its reader
(:func:`lt_core.store.open_run`); ``summarize_seeds`` gives the mean and range over seeds per round.
The figures drawn from these frames are in :mod:`lt_core.paper.figures`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Optional, Sequence

import pandas as pd

from .store import ROW_COLUMNS, list_runs, open_run


def rounds_frame(results: Iterable, labels: Optional[Sequence[dict]] = None) -> pd.DataFrame:
    """One row per (run, round) of lottery results (``ExperimentResult``), with optional labels.

    ``labels[i]`` (e.g. ``{"criterion": "movement"}``) is added to every row of ``results[i]``.
    """
    rows = []
    for i, res in enumerate(results):
        extra = dict(labels[i]) if labels is not None else {}
        for r in res.rounds:
            rows.append({**extra, "run": Path(res.run_dir).name, "round": r.round,
                         "weights_remaining": r.weights_remaining, "percent_remaining": 100 * r.weights_remaining,
                         "early_stop_iteration": r.early_stop_iteration,
                         "early_stop_test_acc": r.early_stop_test_acc, "final_test_acc": r.final_test_acc})
    return pd.DataFrame(rows)


def stored_rounds_frame(run_dir) -> pd.DataFrame:
    """The rounds of a stored lottery run (its trunk's round 0 included), from the results store."""
    run = open_run(run_dir)
    rows = []
    for r in run.rounds:
        s = r.summary
        rows.append({"run": run.name, "round": r.index, "weights_remaining": s["weights_remaining"],
                     "percent_remaining": 100 * s["weights_remaining"],
                     "early_stop_iteration": s["early_stop_iteration"],
                     "early_stop_test_acc": s["early_stop_test_acc"], "final_test_acc": s["final_test_acc"],
                     **{f"layer_{n}": v for n, v in s["layer_remaining"].items()}})
    prune = run.config.get("prune", {})
    frame = pd.DataFrame(rows)
    for key in ("criterion", "mask1", "mask0"):
        if key in prune:
            frame[key] = prune[key]
    return frame


def metrics_frame(run_dir) -> pd.DataFrame:
    """All tidy metric rows (run, round, iteration, split, metric, value) of a stored run.

    A lottery run's rows start with its trunk's round 0; a one-shot supermask sweep has none (its
    numbers are :meth:`lt_core.store.SupermaskRun.points`).
    """
    return open_run(run_dir).metrics()


def runs_frame(root, kinds: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """One row per run in a results root (see :func:`lt_core.store.list_runs`): folder, kind,
    architecture, criterion and policies of a lottery run, rounds finished and asked for."""
    return pd.DataFrame([run.row() for run in list_runs(root, kinds)], columns=list(ROW_COLUMNS))


def summarize_seeds(frame: pd.DataFrame, by: str) -> pd.DataFrame:
    """Mean, min and max early-stop test accuracy over seeds, per ``by`` and round (the paper's bands);
    per network too when the frame has an ``arch`` column."""
    grouped = frame.groupby(["arch", by, "round"] if "arch" in frame else [by, "round"], sort=False)
    out = grouped.agg(percent_remaining=("percent_remaining", "mean"),
                      early_stop_test_acc=("early_stop_test_acc", "mean"),
                      acc_min=("early_stop_test_acc", "min"), acc_max=("early_stop_test_acc", "max"),
                      runs=("seed", "nunique")).reset_index()
    return out
