"""The notebooks' work: one function per research question and Table 1, from parameters to an answer.

Each function builds its experiments from :class:`~lt_core.paper.params.NotebookParams` (every dense
trunk from :meth:`lt_core.presets.Preset.train_config`, so all notebooks share it), runs them
through :func:`lt_core.runner.run_experiments` and returns an :class:`Answer`: tidy tables,
matplotlib figures in the paper's style and the paper's claims checked on our numbers.
:meth:`Answer.save` writes them to the report folder as ``<question>_<name>.csv`` /
``.png`` / ``.svg`` and ``<question>_claims.csv``; the reproduction report collects those files.

* :func:`rq1` (criteria), :func:`rq2` (mask-1 policies), :func:`rq3` (mask-0 policies): iterative
  pruning, the product of ``criteria`` x ``mask1`` x ``mask0`` per network and seed;
* :func:`rq4`: one-shot supermasks of ``criteria`` on the untrained network;
* :func:`rq5`: learned supermasks (initial weights, signed constants, each with and without DWR);
* :func:`table1`: every cell of the paper's Table 1 for each network whose dataset is here;
* :func:`families`: the supermask families side by side (Zhou's four variants, edge-popup at
  :data:`FAMILY_KEEP_FRACTIONS`, signed supermasks) against the percent of weights kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List

import pandas as pd

from . import claims, figures, table1 as t1
from ..archs import get_arch
from ..config import PruneConfig
from ..data import DataError, load_arrays
from ..experiments import Dense, Experiment, LearnedMasks, Lottery, Supermasks
from ..runner import run_experiments
from .params import NotebookParams
from ..store import open_run

RQ4_CELLS = ("mask_init", "mask_signed_constant", "dense")  # the Table 1 cells rq4's runs give

# learned-mask variants: key (as in lt_core.paper.claims.rq5_learned) -> (weights, dwr, words, paper column)
VARIANTS = {"init": ("init", False, "initial weights", "learned_init"),
            "signed_constant": ("signed_constant", False, "signed constants", "learned_signed_constant"),
            "init_dwr": ("init", True, "initial weights + DWR", "learned_dwr"),
            "signed_constant_dwr": ("signed_constant", True, "signed constants + DWR", "learned_dwr")}


@dataclass
class Answer:
    """What a notebook shows and writes: tables, figures (by name) and claim checks."""

    question: str
    tables: Dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: Dict[str, object] = field(default_factory=dict)
    checks: List[claims.Check] = field(default_factory=list)

    def claims_table(self) -> pd.DataFrame:
        return claims.table(self.checks)

    def save(self, report_dir) -> List[Path]:
        """Write every table (CSV), figure (PNG and SVG) and the claim checks (CSV) to ``report_dir``."""
        report = Path(report_dir)
        report.mkdir(parents=True, exist_ok=True)
        written = []
        for name, frame in self.tables.items():
            path = report / f"{self.question}_{name}.csv"
            frame.to_csv(path, index=False)
            written.append(path)
        for name, fig in self.figures.items():
            written += figures.save(fig, report / f"{self.question}_{name}")
        if self.checks:
            path = report / f"{self.question}_claims.csv"
            self.claims_table().to_csv(path, index=False)
            written.append(path)
        return written


def _dense_mean(frame: pd.DataFrame) -> float:
    return float(frame[frame["round"] == 0]["early_stop_test_acc"].mean())


def _lottery_experiments(p: NotebookParams) -> List[Lottery]:
    prunes = PruneConfig.grid(p.criteria, p.mask1, p.mask0, rounds=p.rounds)
    return [Lottery(arch, p.preset.train_config(arch, seed, p.device), prunes) for arch in p.archs
            for seed in p.seeds]


def _lottery(p: NotebookParams, question: str, by: str, check: Callable) -> Answer:
    answer = Answer(question)
    frames = run_experiments(_lottery_experiments(p), out=p.results_dir, executor=p.executor,
                             data_dir=p.data_dir, label=question)
    rounds = pd.concat(frames, ignore_index=True)
    answer.tables["rounds"] = rounds
    for arch in p.archs:
        frame = rounds[rounds["arch"] == arch]
        title = (f"{get_arch(arch).label}: early-stop test accuracy by {by} ({p.preset.schedule(arch, False)}; "
                 f"{len(p.seeds)} seed{'s' if len(p.seeds) > 1 else ''})")
        answer.figures[f"{arch}_accuracy"] = figures.accuracy_vs_remaining(frame, by, dense=_dense_mean(frame),
                                                                           title=title)
        answer.checks += [claims.Check(c.question, f"{arch}: {c.claim}", c.verdict, c.evidence)
                          for c in check(frame, by=by)]
    return answer


def rq1(p: NotebookParams) -> Answer:
    """Which mask criteria make winning tickets (kept weights rewound, pruned ones zeroed)."""
    return _lottery(p, "rq1", "criterion", claims.rq1_criteria)


def rq2(p: NotebookParams) -> Answer:
    """What kept weights should start from: the mask-1 policies."""
    return _lottery(p, "rq2", "mask1", claims.rq2_signs)


def rq3(p: NotebookParams) -> Answer:
    """What pruned weights should do: the mask-0 policies."""
    return _lottery(p, "rq3", "mask0", claims.rq3_mask0)


def _paper_masks(arch: str) -> Dict[str, float]:
    row = get_arch(arch).paper_table1 or {}
    return {kind: row[f"mask_{kind}"] for kind in ("init", "signed_constant") if f"mask_{kind}" in row}


def rq4(p: NotebookParams) -> Answer:
    """One-shot supermasks of ``criteria`` on the untrained network, initial weights and signed constants.

    Also the Table 1 cells this covers (columns 1-2 and the dense network), as ``table1_columns``.
    """
    answer = Answer("rq4")
    exps = _rq4_experiments(p)
    trains = [(e.arch, e.train) for e in exps if isinstance(e, Dense)]
    frames = run_experiments(exps, out=p.results_dir, executor=p.executor, data_dir=p.data_dir, label="rq4")
    points = pd.concat(frames[:len(trains)], ignore_index=True)
    dense = pd.concat(frames[len(trains):], ignore_index=True)
    answer.tables["points"] = points
    per_seed = points.groupby(["arch", "criterion", "weights", "seed"], as_index=False)["test_acc"].max()
    best = per_seed.groupby(["arch", "criterion", "weights"], as_index=False).agg(
        best_test_acc=("test_acc", "mean"), seed_min=("test_acc", "min"), seed_max=("test_acc", "max"),
        seeds=("seed", "nunique"))
    best[["best_test_acc", "seed_min", "seed_max"]] *= 100  # percent, as the paper
    best["paper"] = [_paper_masks(a).get(w) if c == t1.SUPERMASK_CRITERION else None
                     for a, c, w in zip(best["arch"], best["criterion"], best["weights"])]
    answer.tables["best"] = best
    for arch in p.archs:
        frame = points[points["arch"] == arch]
        answer.figures[f"{arch}_supermasks"] = figures.supermask_accuracy(
            frame, paper=_paper_masks(arch),
            title=f"{get_arch(arch).label}: one-shot supermasks, untrained network ({p.preset.schedule(arch, False)})")
        answer.checks += [claims.Check(c.question, f"{arch}: {c.claim}", c.verdict, c.evidence)
                          for c in claims.rq4_supermasks(frame, paper=_paper_masks(arch))]
    no_learned = pd.DataFrame(columns=["seed", "weights", "dwr", "test_acc"])
    columns = [t1.table1_rows(arch, t1.cell_values(dense[dense["arch"] == arch], points[points["arch"] == arch],
                                                   no_learned), f"{p.preset.schedule(arch, False)}; seeds {p.seeds}")
               for arch in p.archs]
    table = pd.concat(columns, ignore_index=True)
    answer.tables["table1_columns"] = table[table["cell"].isin(RQ4_CELLS)].reset_index(drop=True)
    return answer


def _rq4_experiments(p: NotebookParams) -> List[Experiment]:
    trains = [(arch, p.preset.train_config(arch, seed, p.device)) for arch in p.archs for seed in p.seeds]
    return ([Supermasks(arch, train, p.preset.supermask_config(p.criteria)) for arch, train in trains] +
            [Dense(arch, train) for arch, train in trains])


def _rq5_experiments(p: NotebookParams, arch: str) -> List[Experiment]:
    return [Dense(arch, p.preset.train_config(arch, seed, p.device)) for seed in p.seeds] + \
        _learned_experiments(p, arch)


def _table1_experiments(p: NotebookParams, arch: str) -> List[Experiment]:
    trains = [p.preset.train_config(arch, seed, p.device) for seed in p.seeds]
    return ([Dense(arch, t) for t in trains] +
            [Supermasks(arch, t, p.preset.supermask_config([t1.SUPERMASK_CRITERION])) for t in trains] +
            _learned_experiments(p, arch))


def experiments(question: str, p: NotebookParams) -> List[Experiment]:
    """The experiments the notebook of ``question`` (``rq1`` ... ``rq5``, ``table1``, ``families``) runs with ``p``,
    in order, without running them (for :func:`lt_core.paper.estimate.estimate`)."""
    if question in ("rq1", "rq2", "rq3"):
        return _lottery_experiments(p)
    if question == "rq4":
        return _rq4_experiments(p)
    if question == "rq5":
        return [e for arch in p.archs for e in _rq5_experiments(p, arch)]
    if question == "table1":
        return [e for arch in p.archs for e in _table1_experiments(p, arch)]
    if question == "families":
        return [e for arch in p.archs for e in _families_experiments(p, arch)]
    raise ValueError(f"experiments: unknown question {question!r}; allowed values: rq1, rq2, rq3, rq4, rq5, table1, "
                     "families")


def _learned_experiments(p: NotebookParams, arch: str) -> List[LearnedMasks]:
    return [LearnedMasks(arch, [p.preset.learn_config(arch, seed, w, dwr, p.device) for w, dwr, _, _ in
                                VARIANTS.values()]) for seed in p.seeds]


def _variant(frame: pd.DataFrame) -> pd.Series:
    return frame["weights"] + frame["dwr"].map({True: "_dwr", False: ""})


def rq5(p: NotebookParams) -> Answer:
    """Learned supermasks: initial weights and signed constants, each with and without DWR."""
    answer = Answer("rq5")
    for arch in p.archs:
        exps = _rq5_experiments(p, arch)
        dense_exps = [e for e in exps if isinstance(e, Dense)]
        frames = run_experiments(exps, out=p.results_dir, executor=p.executor,
                                 data_dir=p.data_dir, label=f"rq5 {arch}")
        dense = pd.concat(frames[:len(dense_exps)], ignore_index=True)
        learned = pd.concat(frames[len(dense_exps):], ignore_index=True)
        learned["variant"] = _variant(learned)
        paper = get_arch(arch).paper_table1 or {}
        summary = learned.groupby("variant", sort=False).agg(
            test_acc=("test_acc", "mean"), seed_min=("test_acc", "min"), seed_max=("test_acc", "max"),
            expected_keep=("expected_keep_fraction", "mean"), seeds=("seed", "nunique")).reset_index()
        summary[["test_acc", "seed_min", "seed_max", "expected_keep"]] *= 100
        summary.insert(1, "what", [VARIANTS[v][2] for v in summary["variant"]])
        summary["paper"] = [paper.get(VARIANTS[v][3]) for v in summary["variant"]]
        answer.tables[f"{arch}_learned"] = summary.assign(arch=arch)
        labels = {Path(r).name: f"{VARIANTS[v][2]}, seed {s}"
                  for r, v, s in zip(learned["run_dir"], learned["variant"], learned["seed"])}
        metrics = pd.concat([open_run(r).metrics() for r in learned["run_dir"]], ignore_index=True)
        refs = {labels[Path(r).name]: paper[VARIANTS[v][3]] for r, v in zip(learned["run_dir"], learned["variant"])
                if VARIANTS[v][3] in paper}
        groups = {Path(r).name: v for r, v in zip(learned["run_dir"], learned["variant"])}
        answer.figures[f"{arch}_learned"] = figures.learned_mask_curves(
            metrics, labels=labels, paper=refs, groups=groups,
            title=f"{get_arch(arch).label}: learned supermasks ({p.preset.schedule(arch)}; dotted: the paper)")
        means = summary.set_index("variant")["test_acc"].div(100).to_dict()
        dense_acc = float(dense["early_stop_test_acc"].mean()) if len(dense) else None
        answer.checks += [claims.Check(c.question, f"{arch}: {c.claim}", c.verdict, c.evidence)
                          for c in claims.rq5_learned(means, dense_acc)]
    return answer


def data_missing(arch: str, data_dir=None) -> str:
    """Why ``arch``'s dataset cannot be read here (nothing is downloaded), or ``""`` when it can."""
    try:
        load_arrays(get_arch(arch).dataset, data_dir, download=False)
    except DataError as exc:
        return f"no data: {exc}"
    return ""


def table1(p: NotebookParams) -> Answer:
    """Every cell of the paper's Table 1 for each of ``archs`` whose dataset is on this machine."""
    answer = Answer("table1")
    parts = []
    for arch in p.archs:
        reason = data_missing(arch, p.data_dir)
        if reason:
            parts.append(t1.empty_rows(arch, reason))
            continue
        frames = run_experiments(_table1_experiments(p, arch), out=p.results_dir, executor=p.executor,
                                 data_dir=p.data_dir, label=f"table1 {arch}")
        n = len(p.seeds)
        values = t1.cell_values(pd.concat(frames[:n]), pd.concat(frames[n:2 * n]), pd.concat(frames[2 * n:]))
        parts.append(t1.table1_rows(arch, values, f"{p.preset.schedule(arch)}; seeds {p.seeds}"))
    table = pd.concat(parts, ignore_index=True)
    answer.tables["table1"] = table
    answer.figures["table1"] = figures.table1_bars(table)
    return answer


# -- supermask families -------------------------------------------------------------------------------

#: edge-popup's keep fractions in the families notebook (Ramanujan et al. sweep 10-90%; 5% added to
#: reach the signed supermasks' sparsity)
FAMILY_KEEP_FRACTIONS = (0.05, 0.1, 0.3, 0.5)
#: the families compared, in the figure's and table's order: method name -> words
FAMILIES = {"zhou": "Zhou et al. 2019 (Bernoulli masks)", "edge_popup": "edge-popup (Ramanujan et al. 2020)",
            "signed": "signed supermasks (Koster et al. 2022)"}
#: Koster et al. 2022's FCN 300-100-10 on MNIST: (accuracy %, percent of weights kept); their dense 97.43%
SIGNED_PAPER_FC = (97.48, 3.77)


def family_methods(p: NotebookParams) -> List[str]:
    """The mask-learning methods the families notebook compares: ``p.methods`` (any registered method,
    a user's own too), else the three of :data:`FAMILIES`."""
    return list(p.methods) if p.methods else list(FAMILIES)


def _keeps_chosen(method: str) -> bool:
    """Whether ``method``'s fraction of weights kept is a setting (swept) rather than learned."""
    from ..supermask.methods import MASK_METHODS

    return "keep_fraction" in MASK_METHODS[method].field_names


def _families_experiments(p: NotebookParams, arch: str) -> List[Experiment]:
    """Per seed: the dense run, then per method of :func:`family_methods`: Zhou's four variants (the
    runs RQ5 trains); a method whose keep fraction is a setting (edge-popup) at every fraction of
    :data:`FAMILY_KEEP_FRACTIONS`, one stack per seed; any other (signed supermasks) at its defaults."""
    out: List[Experiment] = [Dense(arch, p.preset.train_config(arch, seed, p.device)) for seed in p.seeds]
    for method in family_methods(p):
        if method == "zhou":
            out += _learned_experiments(p, arch)
            continue
        settings = [{"keep_fraction": k} for k in FAMILY_KEEP_FRACTIONS] if _keeps_chosen(method) else [{}]
        for seed in p.seeds:
            configs = [p.preset.method_config(method, arch, seed, p.device, **s) for s in settings]
            out.append(LearnedMasks(arch, configs))
    return out


def _family_setting(row) -> str:
    if row["method"] == "zhou":
        return VARIANTS[row["weights"] + ("_dwr" if row["dwr"] else "")][2]
    if _keeps_chosen(row["method"]):
        return f"keep {100 * row['keep_fraction']:g}%"
    return row["method"]


def families(p: NotebookParams) -> Answer:
    """Supermask families on the same networks, data split and seeds: Zhou's learned masks (its four
    variants, shared with RQ5), edge-popup at :data:`FAMILY_KEEP_FRACTIONS` and signed supermasks, or
    the methods ``p.methods`` names; accuracy against the percent of weights kept, the best setting of
    each family, claim checks (a family not run gives its checks no data)."""
    answer = Answer("families")
    methods = family_methods(p)
    schedule = {arch: p.preset.schedule(arch, learned="zhou" in methods, methods=methods) for arch in p.archs}
    points_all, best_all = [], []
    for arch in p.archs:
        exps = _families_experiments(p, arch)
        n_dense = len(p.seeds)
        frames = run_experiments(exps, out=p.results_dir, executor=p.executor,
                                 data_dir=p.data_dir, label=f"families {arch}")
        dense = pd.concat(frames[:n_dense], ignore_index=True)
        dense_acc = float(dense["early_stop_test_acc"].mean()) if len(dense) else None
        points = pd.concat(frames[n_dense:], ignore_index=True)
        points["family"] = points["method"]
        points["setting"] = [_family_setting(r) for r in points.to_dict("records")]
        points["percent_kept"] = 100 * points["expected_keep_fraction"]
        points_all.append(points)
        by_setting = points.groupby(["family", "setting"], sort=False).agg(
            test_acc=("test_acc", "mean"), seed_min=("test_acc", "min"), seed_max=("test_acc", "max"),
            percent_kept=("percent_kept", "mean"), seeds=("seed", "nunique")).reset_index()
        best = by_setting.loc[by_setting.groupby("family", sort=False)["test_acc"].idxmax()].reset_index(drop=True)
        paper = get_arch(arch).paper_table1 or {}
        paper_acc = {"zhou": max((paper[c] for c in ("learned_init", "learned_signed_constant", "learned_dwr")
                                  if c in paper), default=None),
                     "signed": SIGNED_PAPER_FC[0] if arch == "fc" else None, "edge_popup": None}
        best["what"] = [FAMILIES.get(f, f) for f in best["family"]]
        best[["test_acc", "seed_min", "seed_max"]] *= 100
        best["paper"] = [paper_acc.get(f) for f in best["family"]]
        best["paper_percent_kept"] = [SIGNED_PAPER_FC[1] if f == "signed" and arch == "fc" else None
                                      for f in best["family"]]
        dense_row = pd.DataFrame([{"family": "dense", "setting": "trained", "what": "dense network, trained",
                                   "test_acc": None if dense_acc is None else 100 * dense_acc,
                                   "seed_min": 100 * dense["early_stop_test_acc"].min() if len(dense) else None,
                                   "seed_max": 100 * dense["early_stop_test_acc"].max() if len(dense) else None,
                                   "percent_kept": 100.0, "seeds": dense["seed"].nunique() if len(dense) else 0,
                                   "paper": paper.get("dense"), "paper_percent_kept": 100.0}])
        best = pd.concat([best, dense_row], ignore_index=True)
        best.insert(0, "arch", arch)
        best["schedule"] = schedule[arch]
        best_all.append(best)
        paper_points = [(f"Koster et al. 2022 (signed, FCN): {SIGNED_PAPER_FC[0]}% at {SIGNED_PAPER_FC[1]}% kept",
                         SIGNED_PAPER_FC[1], SIGNED_PAPER_FC[0])] if arch == "fc" else []
        words = {"learned_init": "initial weights", "learned_signed_constant": "signed constants",
                 "learned_dwr": "DWR"}
        paper_lines = {f"Zhou et al. Table 1, learned mask, {w}: {paper[c]:g}% (% kept not given)": paper[c]
                       for c, w in words.items() if c in paper}
        seeds = f"{len(p.seeds)} seed{'s' * (len(p.seeds) > 1)}"
        answer.figures[f"{arch}_families"] = figures.families_accuracy(
            points, dense=dense_acc, paper_points=paper_points, paper_lines=paper_lines,
            title=f"{get_arch(arch).label}: supermask families ({schedule[arch]}; "
                  f"{seeds})")
        numbers = {r["family"]: {"test_acc": r["test_acc"] / 100, "kept": r["percent_kept"] / 100}
                   for r in best.to_dict("records") if r["family"] in FAMILIES}
        edge = by_setting[by_setting["family"] == "edge_popup"]
        kept = points[points["family"] == "edge_popup"].groupby("setting", sort=False)["keep_fraction"].first()
        edge_by_k = {float(kept[s]): float(a) for s, a in zip(edge["setting"], edge["test_acc"])}
        answer.checks += [claims.Check(c.question, f"{arch}: {c.claim}", c.verdict, c.evidence)
                          for c in claims.families(numbers, dense_acc, edge_by_k)]
    answer.tables["points"] = pd.concat(points_all, ignore_index=True)
    answer.tables["best"] = pd.concat(best_all, ignore_index=True)
    return answer
