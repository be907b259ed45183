"""The results store as the dashboard reads it, through the store's own reader and names.

Stored runs are listed and drawn from :func:`lt_core.store.list_runs` / :func:`lt_core.store.open_run`
records (a lottery's round 0 comes from its trunk there); folder names come from the engine's
naming functions; an interrupted round's or learned mask's points come from the store's reader
(:func:`lt_core.store.unfinished_round`, :func:`lt_core.store.unfinished_mask`).
:func:`event_run_dir` is the one place that turns an engine event into a run directory.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional

from lt_core import DataConfig, LearnConfig, ModelConfig, PruneConfig, TrainConfig, models
from lt_core.store import (LearnedMaskRun, Round, RunDir, StoreError, SupermaskRun, open_run, read_json,
                           run_key)
from lt_core.store import list_runs as store_list_runs

from . import catalog
from .series import (LEARN_FINAL_FIELDS, SUMMARY_FIELDS, SUPERMASK_WEIGHTS, Series, curve_from_rows, learned_identity,
                     lottery_hue, lottery_setting, pick)

SERIES_KINDS = {"train": "dense", "lottery": "lottery", "supermask": "oneshot", "learnmask": "learned"}


# -- the directory a configuration is stored in ----------------------------------------------------

def dense_run_name(data: DataConfig, model: ModelConfig, train: TrainConfig) -> str:
    """The folder of the dense run (round 0 of every lottery run built on it)."""
    return run_key("train", data, model, train).name


def lottery_run_name(data: DataConfig, model: ModelConfig, train: TrainConfig, prune: PruneConfig) -> str:
    """The folder of a lottery run (its pruning rounds)."""
    return run_key("lottery", data, model, train, prune).name


def supermask_run_name(data: DataConfig, model: ModelConfig, train: TrainConfig) -> str:
    """The folder of the one-shot supermask points of a dense run (named by the store)."""
    return run_key("supermask", data, model, train).name


def learnmask_run_name(data: DataConfig, model: ModelConfig, learn: LearnConfig) -> str:
    """The folder of a learned supermask (named by the store)."""
    return run_key("learnmask", data, model, learn=learn).name


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
    outdated: Optional[str] = None  # why a run made under earlier rules is not today's (Run.outdated); never drawn

    @property
    def label(self) -> str:
        if self.outdated:
            return f"{self.name} · {self.description} · {self.outdated}: not drawn"
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
        if cfg.get("method") not in (None, "zhou"):
            text = f"{arch} learned mask · {learned_identity(cfg)[0]}"
        else:
            text = f"{arch} learned mask · {SUPERMASK_WEIGHTS.get(learn.get('weights'), learn.get('weights'))}"
            if learn.get("dwr"):
                text += " · DWR"
        return f"{text} · {_schedule_text(learn)} · seed {seed}"
    return kind


# what only tells apart the runs of one setting: the seed (and the trunk trained with it), the
# rounds asked for so far (a run grows when Rounds is raised) and the device
_RUN_ONLY = {"train": ("seed", "device"), "learn": ("seed", "device"), "prune": ("rounds",)}


def stored_setting(cfg: dict, setting: str) -> str:
    """The line a stored run is overlaid on: its ``setting`` as a live run names it, its schedule and a
    digest of its configuration without what only tells the runs of one setting apart (see
    ``_RUN_ONLY``), so that the seeds of a setting make one band and two settings never share a line."""
    config = {k: v for k, v in cfg.items() if k != "trunk"}
    for section, keys in _RUN_ONLY.items():
        if isinstance(config.get(section), dict):
            config[section] = {k: v for k, v in config[section].items() if k not in keys}
    digest = hashlib.sha1(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:6]
    schedule = _schedule_text((cfg.get("learn") if cfg.get("kind") == "learnmask" else cfg.get("train")) or {})
    return f"{setting} · {schedule} · stored [{digest}]"


def list_runs(root) -> List[StoredRun]:
    """Runs in the results store, as the store's reader lists them (unreadable folders are left out).
    Runs made under earlier rules (an earlier initialisation rule or mask-method revision) are
    listed, named as such, and cannot be overlaid."""
    out: List[StoredRun] = []
    for run in store_list_runs(root, old=True):
        total = run.total - 1 if run.kind == "lottery" else run.total  # pruning rounds, after round 0
        out.append(StoredRun(run.name, run.path, run.kind, run.arch, describe(run.config), run.done, total,
                             run.outdated))
    return out


# -- a stored run as an overlay ---------------------------------------------------------------------

def _load_rounds(s: Series, rounds: Iterable[Round]) -> None:
    for r in rounds:
        s.rounds[r.index] = pick(r.summary, SUMMARY_FIELDS)
        s.run_names[r.index] = r.path.parent.name
        s.curves[r.index] = curve_from_rows(r.metrics().to_dict("records"))
    s.current_round = max(s.rounds) if s.rounds else None


def _load_points(s: Series, run: SupermaskRun) -> None:
    s.points.extend(run.points().to_dict("records"))
    if run.trunk is not None:
        trunk = open_run(run.trunk)
        if trunk.rounds:
            s.rounds[0] = {k: v for k, v in trunk.rounds[0].summary.items() if k != "wall_seconds"}
            s.run_names[0] = trunk.name


def _load_learned(s: Series, run: LearnedMaskRun) -> None:
    learn = run.config.get("learn") or {}
    s.learn_variant = dict(learned_identity(run.config)[2], seed=s.seed)
    s.run_names[0] = run.name
    data = run.config.get("data") or {}
    dataset = data.get("dataset") or catalog.default_dataset(s.arch)
    n_train = catalog.train_size(dataset) - int(data.get("val_size", 5000))
    per_epoch = max(1, n_train // int(learn.get("batch_size", 250)))
    by_it: Dict[int, dict] = {}
    for r in run.metrics().to_dict("records"):
        it = int(r["iteration"])
        e = by_it.setdefault(it, {"iteration": it, "epoch": it / per_epoch})
        if r["metric"] == "accuracy":
            e[f"{r['split']}_acc"] = r["value"]
        elif r["metric"] == "expected_keep_fraction":
            e["expected_keep_fraction"] = r["value"]
    s.learn = [by_it[k] for k in sorted(by_it)]
    if run.summary is not None:
        s.learn_final = pick(run.summary, LEARN_FINAL_FIELDS)


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
        s.setting, s.hue, _ = learned_identity(cfg)


def load_stored_series(root, name: str, overlay: bool = True) -> Series:
    """The stored run ``root/name`` as a :class:`Series`: an overlay (drawn dashed, labelled with its
    settings and folder), or, with ``overlay=False``, drawn as the dashboard's own runs are. Read
    through the store's reader (a damaged file raises :class:`lt_core.store.StoreError`)."""
    root = Path(root)
    run = open_run(root / name)
    if not run.current:
        why = (f"an earlier initialisation rule ({run.init}, weights 12% too small)" if run.init != models.INIT_SCHEME
               else f"an earlier rule: {run.outdated}")
        raise StoreError(f"{name}: made with {why}; its numbers are not comparable with today's runs, "
                         f"so it is not drawn")
    cfg, kind = run.config, run.kind
    seed = int(((cfg.get("train") or cfg.get("learn") or {}).get("seed")) or 0)
    s = Series(name, "", SERIES_KINDS.get(kind, kind), run.arch, seed, overlay=overlay, root=str(root), run=name)
    _identify(s, kind, cfg)
    if overlay:  # one line per stored setting: its seeds make one band
        s.label = f"{describe(cfg).split(' ', 1)[-1]} [{name.rsplit('-', 1)[-1][:6]}]"
        s.setting = stored_setting(cfg, s.setting)
    else:
        s.label = f"{s.setting} · seed {seed}"
    if isinstance(run, SupermaskRun):
        _load_points(s, run)
    elif isinstance(run, LearnedMaskRun):
        _load_learned(s, run)
    else:  # a dense run, or a lottery run with its trunk's round 0
        _load_rounds(s, run.rounds)
    return s


def load_runs_of(root, names) -> List[Series]:
    """The runs among ``names`` that are in the store (with a finished round, point or
    evaluation), drawn as the dashboard's own runs."""
    out = []
    for name in dict.fromkeys(names):
        try:
            s = load_stored_series(root, name, overlay=False)
        except StoreError:  # not stored (yet), or unreadable: nothing to draw
            continue
        if s.rounds or s.points or s.learn:
            out.append(s)
    return out
