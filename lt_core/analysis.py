"""Results -> tidy DataFrames -> plots, for the notebooks and the dashboard.

``rounds_frame`` turns lottery results into one row per (run, round); ``stored_rounds_frame``,
``metrics_frame`` and ``runs_frame`` read the results store through its reader
(:func:`lt_core.store.open_run`); ``accuracy_vs_remaining`` draws the paper's Figure-3-style plot
(early-stop test accuracy against the percent of weights remaining, log x axis) with bokeh.
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


PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#393b79"]


def accuracy_vs_remaining(frame: pd.DataFrame, by: str = "criterion", title: str = "", dense: Optional[float] = None,
                          y: str = "early_stop_test_acc"):
    """Bokeh figure: ``y`` (as %) against percent of weights remaining (log axis, reversed), one line per ``by``."""
    from bokeh.models import Span
    from bokeh.plotting import figure

    fig = figure(height=360, width=640, x_axis_type="log", title=title or f"{y} vs weights remaining",
                 x_axis_label="percent of weights remaining", y_axis_label="test accuracy (%)",
                 x_range=(105, max(0.3, 0.8 * float(frame["percent_remaining"].min())) if len(frame) else 0.3))
    groups = frame.groupby(by, sort=False) if by in frame else [("all", frame)]
    for i, (name, g) in enumerate(groups):
        g = g.sort_values("percent_remaining", ascending=False)
        color = PALETTE[i % len(PALETTE)]
        fig.line(g["percent_remaining"], 100 * g[y], legend_label=str(name), color=color, line_width=2)
        fig.scatter(g["percent_remaining"], 100 * g[y], color=color, size=5)
    if dense is not None:
        fig.add_layout(Span(location=100 * dense, dimension="width", line_dash="dashed", line_color="black"))
    fig.legend.location = "bottom_left"
    fig.legend.click_policy = "hide"
    return fig


def save_figure(fig, path) -> Path:
    """Write a standalone HTML file of a bokeh figure (BokehJS from the CDN)."""
    from bokeh.embed import file_html
    from bokeh.resources import CDN

    from .store import atomic_write_text

    from bokeh.document import Document

    path = Path(path)
    title = getattr(getattr(fig, "title", None), "text", None) or "lt-explorer"
    owned = fig.document is None
    doc = fig.document or Document()
    if owned:
        doc.add_root(fig)
    try:
        atomic_write_text(path, file_html(fig, CDN, title))
    finally:
        if owned:
            doc.remove_root(fig)  # leave the figure free to be shown afterwards
    return path


def lottery_sweep(prunes: Sequence, labels: Sequence[dict], *, arch: str = "fc", dataset: Optional[str] = None,
                  seeds: Sequence[int] = (0,), epochs: Optional[int] = None, iterations: Optional[int] = None,
                  eval_train: bool = True, device: str = "auto", data_dir: Optional[str] = None, out=None,
                  on_event=None, progress: bool = False) -> pd.DataFrame:
    """Run (or reuse) one lottery run per ``PruneConfig`` and seed, batched; one row per run and round.

    ``labels[i]`` names ``prunes[i]`` in the frame (e.g. ``{"criterion": "movement"}``); a ``seed``
    column is added.
    """
    from .config import DataConfig, ModelConfig, TrainConfig
    from .lottery import run_lotteries

    frames = []
    for seed in seeds:
        train = TrainConfig(seed=seed, epochs=epochs, iterations=iterations, eval_train=eval_train, device=device)
        results = run_lotteries(DataConfig(dataset=dataset, data_dir=data_dir), ModelConfig(arch=arch), train,
                                list(prunes), out=out, on_event=on_event, progress=progress)
        frame = rounds_frame(results, labels)
        frame["seed"] = seed
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def summarize_seeds(frame: pd.DataFrame, by: str) -> pd.DataFrame:
    """Mean, min and max early-stop test accuracy over seeds, per ``by`` and round (the paper's bands)."""
    grouped = frame.groupby([by, "round"], sort=False)
    out = grouped.agg(percent_remaining=("percent_remaining", "mean"),
                      early_stop_test_acc=("early_stop_test_acc", "mean"),
                      acc_min=("early_stop_test_acc", "min"), acc_max=("early_stop_test_acc", "max"),
                      runs=("seed", "nunique")).reset_index()
    return out
