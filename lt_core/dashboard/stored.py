"""The results store as the dashboard reads it: the one module that knows its folder layout.

Which folders are runs, where a run's config, rounds, checkpoints, points and learned-mask files
lie, and that round 0 of a lottery lives in its dense trunk are all read here, through
:class:`lt_core.store.RunDir`, so that this module can later be replaced by the store's own reader.
:func:`event_run_dir` is the one place that turns an engine event into a run directory.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from lt_core import DataConfig, LearnConfig, ModelConfig, PruneConfig, TrainConfig
from lt_core.config import config_hash
from lt_core.lottery import canonical, dense_run_dir, lottery_run_dir
from lt_core.store import RunDir, read_json, read_metrics_csv, torch_load

from . import catalog
from .series import (LEARN_FINAL_FIELDS, SUMMARY_FIELDS, SUPERMASK_WEIGHTS, Series, curve_from_rows, learned_setting,
                     lottery_hue, lottery_setting, pick)

RUN_PREFIXES = ("train-", "lottery-", "supermask-", "learnmask-")
SERIES_KINDS = {"train": "dense", "lottery": "lottery", "supermask": "oneshot", "learnmask": "learned"}


# -- the directory a configuration is stored in ----------------------------------------------------

def dense_run_name(data: DataConfig, model: ModelConfig, train: TrainConfig) -> str:
    """The folder of the dense run (round 0 of every lottery run built on it)."""
    return dense_run_dir(data, model, train, ".").name


def lottery_run_name(data: DataConfig, model: ModelConfig, train: TrainConfig, prune: PruneConfig) -> str:
    """The folder of a lottery run (its pruning rounds)."""
    return lottery_run_dir(data, model, train, prune, ".").name


def supermask_run_name(data: DataConfig, model: ModelConfig, train: TrainConfig) -> str:
    """The folder of the one-shot supermask points of a dense run."""
    data, model, train, _ = canonical(data, model, train)
    return f"supermask-{model.arch}-{config_hash('supermask', data=data, model=model, train=train)}"


def learnmask_run_name(data: DataConfig, model: ModelConfig, learn: LearnConfig) -> str:
    """The folder of a learned supermask."""
    data, model, _, _ = canonical(data, model, TrainConfig())
    return f"learnmask-{model.arch}-{config_hash('learnmask', data=data, model=model, learn=learn)}"


def event_run_dir(event: dict, root: Path) -> Optional[Path]:
    """The run directory an engine event speaks of (None for events about no run).

    The event's ``run_dir`` (an absolute path) when it carries one. FALLBACK for events without
    it: ``run`` is the run's folder name under the results root the run writes to.
    """
    if event.get("run_dir"):
        return Path(event["run_dir"])
    if event.get("run"):
        return Path(root) / event["run"]
    return None


def run_config(run_dir: Path) -> dict:
    """The run's stored configuration (``{"kind", "data", "model", "train" | "learn", ...}``), or
    ``{}`` while it has none or it cannot be read."""
    try:
        return read_json(Path(run_dir) / "config.json")
    except (OSError, ValueError):
        return {}


def stored_curve(run_dir: Path, k: int) -> Optional[List[dict]]:
    """The evaluation points of finished round ``k``, or None if they cannot be read."""
    try:
        return curve_from_rows(RunDir(run_dir).rows(k))
    except (OSError, KeyError, ValueError):
        return None


def round_checkpoint(run_dir: Path, k: int) -> Optional[Tuple[int, Dict[Path, List[dict]]]]:
    """The interrupted round ``k`` of a stack led by ``run_dir``: the checkpoint's iteration and,
    per stacked run directory, its evaluation points so far. None without a readable checkpoint."""
    path = RunDir(run_dir).round_dir(k) / "checkpoint.pt"
    if not path.is_file():
        return None
    try:
        state = torch_load(path)
    except Exception:  # unreadable: the round restarts, and so does its curve
        return None
    evals = {Path(run_dir).parent / label: list(e) for label, e in zip(state.get("labels", []), state.get("evals", []))}
    return int(state.get("iteration", 0)), evals


def learn_checkpoint_evals(run_dir: Path) -> Optional[List[dict]]:
    """The evaluation points of an interrupted learned mask trained alone, or None."""
    try:
        state = torch_load(Path(run_dir) / "checkpoint.pt")
        return [dict(e) for e in state["evals"][state["labels"].index(Path(run_dir).name)]]
    except Exception:
        return None


# -- browsing --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StoredRun:
    """One run of the store as the Compare tab lists it."""

    name: str
    path: Path
    kind: str
    arch: str
    description: str
    done: int  # finished rounds (lottery, including round 0), points (supermask), 0/1 otherwise
    total: Optional[int]

    @property
    def label(self) -> str:
        if self.kind == "lottery":
            state = f"{self.done - 1}/{self.total} rounds" if self.done else "no round finished"
        elif self.kind == "supermask":
            state = f"{self.done} points"
        else:
            state = "finished" if self.done else "unfinished"
        return f"{self.name} · {self.description} · {state}"


def _schedule_text(length: dict) -> str:
    if length.get("iterations"):
        return f"{length['iterations']} it"
    if length.get("epochs"):
        return f"{length['epochs']} ep"
    return "paper schedule"


def describe(cfg: dict) -> str:
    """One line naming a stored run's network, kind, settings, schedule and seed."""
    kind = cfg.get("kind", "?")
    train = cfg.get("train", {}) or {}
    learn = cfg.get("learn", {}) or {}
    arch = (cfg.get("model") or {}).get("arch", "?")
    seed = (train.get("seed") if kind != "learnmask" else learn.get("seed", 0)) or 0
    if kind == "lottery":
        p = cfg.get("prune", {}) or {}
        policies = f"{p.get('mask1')}/{p.get('mask0')}"
        return f"{arch} {p.get('criterion')} {policies} · {_schedule_text(train)} · seed {seed}"
    if kind == "train":
        return f"{arch} dense · {_schedule_text(train)} · seed {seed}"
    if kind == "supermask":
        return f"{arch} one-shot supermasks · dense {_schedule_text(train)} · seed {seed}"
    if kind == "learnmask":
        text = f"{arch} learned mask · {SUPERMASK_WEIGHTS.get(learn.get('weights'), learn.get('weights'))}"
        if learn.get("dwr"):
            text += " · DWR"
        return f"{text} · {_schedule_text(learn)} · seed {seed}"
    return kind


def _count_csv_rows(path: Path) -> int:
    if not path.is_file():
        return 0
    with open(path, newline="") as fh:
        return max(0, sum(1 for _ in fh) - 1)


def _progress(root: Path, d: Path, kind: str, cfg: dict) -> Tuple[int, Optional[int]]:
    rd = RunDir(d)
    if kind == "lottery":
        trunk = RunDir(root / cfg["trunk"]) if cfg.get("trunk") else None
        done = len([k for k in rd.done_rounds() if k > 0]) + (1 if trunk and trunk.round_done(0) else 0)
        return done, (cfg.get("prune") or {}).get("rounds", 24)
    if kind == "train":
        return (1 if rd.round_done(0) else 0), 1
    if kind == "supermask":
        return _count_csv_rows(d / "points.csv"), None
    return (1 if (d / "summary.json").is_file() else 0), 1


def list_runs(root) -> List[StoredRun]:
    """Runs in the results store (directories ``train-*``, ``lottery-*``, ... with a config.json)."""
    root = Path(root)
    out: List[StoredRun] = []
    if not root.is_dir():
        return out
    for d in sorted(root.iterdir()):
        if not d.is_dir() or not d.name.startswith(RUN_PREFIXES) or not (d / "config.json").is_file():
            continue
        cfg = run_config(d)
        if not cfg:
            continue
        kind = cfg.get("kind") or d.name.split("-", 1)[0]
        arch = (cfg.get("model") or {}).get("arch") or d.name.split("-")[1]
        done, total = _progress(root, d, kind, cfg)
        out.append(StoredRun(d.name, d, kind, arch, describe(cfg), done, total))
    return out


# -- a stored run as an overlay ---------------------------------------------------------------------

def _load_rounds(s: Series, rounds: List[Tuple[int, RunDir]]) -> None:
    for k, rd in rounds:
        s.rounds[k] = pick(rd.summary(k), SUMMARY_FIELDS)
        s.run_names[k] = rd.name
        s.curves[k] = stored_curve(rd.path, k) or []
    s.current_round = max(s.rounds) if s.rounds else None


def _load_points(s: Series, root: Path, d: Path, cfg: dict) -> None:
    path = d / "points.csv"
    if path.is_file():
        with open(path, newline="") as fh:
            for r in csv.DictReader(fh):
                s.points.append({"criterion": r["criterion"], "weights": r["weights"], "power": int(r["power"]),
                                 "weights_remaining": float(r["weights_remaining"]),
                                 "train_acc": float(r["train_acc"]), "test_acc": float(r["test_acc"])})
    if cfg.get("trunk") and RunDir(root / cfg["trunk"]).round_done(0):
        trunk = RunDir(root / cfg["trunk"])
        s.rounds[0] = {k: v for k, v in trunk.summary(0).items() if k != "wall_seconds"}
        s.run_names[0] = trunk.name


def _load_learned(s: Series, d: Path, cfg: dict) -> None:
    learn = cfg.get("learn") or {}
    s.learn_variant = {"weights": learn.get("weights"), "dwr": bool(learn.get("dwr")), "seed": s.seed}
    s.run_names[0] = d.name
    if (d / "metrics.csv").is_file():
        data = cfg.get("data") or {}
        dataset = data.get("dataset") or catalog.default_dataset(s.arch)
        n_train = catalog.train_size(dataset) - int(data.get("val_size", 5000))
        per_epoch = max(1, n_train // int(learn.get("batch_size", 250)))
        by_it: Dict[int, dict] = {}
        for r in read_metrics_csv(d / "metrics.csv"):
            e = by_it.setdefault(r["iteration"], {"iteration": r["iteration"], "epoch": r["iteration"] / per_epoch})
            if r["metric"] == "accuracy":
                e[f"{r['split']}_acc"] = r["value"]
            elif r["metric"] == "expected_keep_fraction":
                e["expected_keep_fraction"] = r["value"]
        s.learn = [by_it[k] for k in sorted(by_it)]
    if (d / "summary.json").is_file():
        s.learn_final = pick(read_json(d / "summary.json"), LEARN_FINAL_FIELDS)


def _identify(s: Series, kind: str, cfg: dict) -> None:
    """The setting (legend name without seed) and hue of a stored run, as a live run has them."""
    if kind == "lottery":
        p = cfg.get("prune") or {}
        c, m1, m0 = p.get("criterion", "large_final"), p.get("mask1", "rewind"), p.get("mask0", "zero")
        s.setting, s.hue = lottery_setting(c, m1, m0), lottery_hue(c, m1, m0)
    elif kind == "train":
        s.setting, s.hue = "dense (round 0)", "dense"
    elif kind == "supermask":
        s.setting, s.hue = "one-shot", "oneshot"
    elif kind == "learnmask":
        learn = cfg.get("learn") or {}
        weights, dwr = learn.get("weights", "init"), bool(learn.get("dwr"))
        s.setting, s.hue = learned_setting(weights, dwr), ("dwr " if dwr else "") + weights


def load_stored_series(root, name: str, overlay: bool = True) -> Series:
    """The stored run ``root/name`` as a :class:`Series`: an overlay (drawn dashed, labelled with its
    settings and folder), or, with ``overlay=False``, drawn as the dashboard's own runs are."""
    root = Path(root)
    d = root / name
    cfg = read_json(d / "config.json")
    kind = cfg.get("kind") or name.split("-", 1)[0]
    arch = (cfg.get("model") or {}).get("arch", "fc")
    seed = int(((cfg.get("train") or cfg.get("learn") or {}).get("seed")) or 0)
    s = Series(name, "", SERIES_KINDS.get(kind, kind), arch, seed, overlay=overlay, root=str(root), run=name)
    _identify(s, kind, cfg)
    s.label = (f"{describe(cfg).split(' ', 1)[-1]} [{name.rsplit('-', 1)[-1][:6]}]" if overlay
               else f"{s.setting} · seed {seed}")
    if kind == "lottery":
        trunk = RunDir(root / cfg["trunk"]) if cfg.get("trunk") else None
        rd = RunDir(d)
        rounds = [(0, trunk)] if trunk is not None and trunk.round_done(0) else []
        _load_rounds(s, rounds + [(k, rd) for k in rd.done_rounds() if k > 0])
    elif kind == "train":
        rd = RunDir(d)
        _load_rounds(s, [(0, rd)] if rd.round_done(0) else [])
    elif kind == "supermask":
        _load_points(s, root, d, cfg)
    elif kind == "learnmask":
        _load_learned(s, d, cfg)
    return s


def load_runs_of(root, names) -> List[Series]:
    """The runs among ``names`` that are in the store (with a finished round, point or
    evaluation), drawn as the dashboard's own runs."""
    out = []
    for name in dict.fromkeys(names):
        if not (Path(root) / name / "config.json").is_file():
            continue
        s = load_stored_series(root, name, overlay=False)
        if s.rounds or s.points or s.learn:
            out.append(s)
    return out
