"""Work units: the experiments that train as one stack, run as one task; and each experiment's rows.

Experiments of one kind with the same network, data, schedule and seed form one unit
(:func:`work_units`): a lottery unit is one :func:`lt_core.lottery.run_lotteries` call (the dense
trunk trained once, then every criterion and policy as one stack), a supermask unit one
:func:`lt_core.supermask.one_shot_supermasks` sweep over its criteria, a learn-mask unit one
:func:`lt_core.supermask.learn_supermasks` stack (one mask method; for a method other than Zhou's, its
runs of one seed and length that share what its learner's ``shared`` names, e.g. edge-popup's keep
fractions). :func:`run_unit` is a pure function of the unit's
configs: what it computes lands in the results store (reused when already there), so running it
twice, or on two machines at once, trains nothing twice (the engine's run locks).

:func:`experiment_rows` reads one experiment's results back from the store as rows of the tidy
table (:data:`TABLE_COLUMNS`): one row per round of a lottery run (round 0 is the dense trunk),
per point of a one-shot supermask sweep, one row per learned supermask (its ``method``, and
``keep_fraction`` where the method has one).
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from ..events import EventCallback, StopToken
from ..lottery import run_lotteries
from ..store import open_run, read_json, run_key
from ..supermask import LearnConfig, SupermaskConfig, learn_supermasks, method_of, one_shot_supermasks
from .grid import Experiment

LABEL_COLUMNS = ("kind", "arch", "seed", "schedule", "criterion", "mask1", "mask0", "rounds", "weights", "dwr",
                 "method", "keep_fraction")
RESULT_COLUMNS = ("round", "power", "weights_remaining", "early_stop_iteration", "early_stop_test_acc",
                  "final_test_acc", "train_acc", "test_acc", "backend", "backend_changed_from", "run_dir")
TABLE_COLUMNS = LABEL_COLUMNS + RESULT_COLUMNS


@dataclass(frozen=True)
class WorkUnit:
    """Experiments trained together by one task (see the module docstring)."""

    kind: str
    experiments: Tuple[Experiment, ...]

    @property
    def key(self) -> str:
        """A name that is a pure function of the experiments (the Dask task's key)."""
        first = self.experiments[0]
        digest = hashlib.sha256(repr(self.experiments).encode()).hexdigest()[:12]
        return f"{self.kind}-{first.model.arch}-seed{(first.learn or first.train).seed}-{digest}"


def _stack_key(exp: Experiment) -> tuple:
    if exp.learn is None:
        return exp.kind, exp.data, exp.model, exp.train
    if isinstance(exp.learn, LearnConfig):  # zhou: runs of one seed and schedule differ in weights and DWR
        return exp.kind, exp.data, exp.model, exp.learn.replace(weights="init", dwr=False)
    # another method: what its learner says stacked runs share, the seed, the length and the device
    learner = method_of(exp.learn).learner
    same = set(getattr(learner, "shared", ())) | {"seed", "epochs", "iterations", "eval_every", "device"}
    schedule = tuple((f.name, getattr(exp.learn, f.name)) for f in dataclasses.fields(exp.learn) if f.name in same)
    return exp.kind, exp.data, exp.model, type(exp.learn), schedule


def work_units(experiments) -> List[WorkUnit]:
    """The experiments grouped into units (in order of first appearance; duplicates dropped)."""
    groups: Dict[tuple, List[Experiment]] = {}
    for exp in experiments:
        group = groups.setdefault(_stack_key(exp), [])
        if exp not in group:
            group.append(exp)
    return [WorkUnit(key[0], tuple(group)) for key, group in groups.items()]


def run_unit(unit: WorkUnit, out, stop: Optional[StopToken] = None,
             on_event: Optional[EventCallback] = None) -> str:
    """Train (or reuse) every experiment of ``unit`` into the results root ``out``; returns its key."""
    first = unit.experiments[0]
    options = dict(out=out, stop=stop, on_event=on_event)
    if unit.kind == "lottery":
        run_lotteries(first.data, first.model, first.train, [e.prune for e in unit.experiments], **options)
    elif unit.kind == "supermask":
        sweep = SupermaskConfig(criteria=[e.supermask.criteria[0] for e in unit.experiments],
                                weights=first.supermask.weights, powers=first.supermask.powers)
        one_shot_supermasks(first.data, first.model, first.train, sweep, **options)
    else:
        learn_supermasks(first.data, first.model, [e.learn for e in unit.experiments], **options)
    return unit.key


def run_path(exp: Experiment, root) -> Path:
    """The folder of the run that holds ``exp``'s results."""
    if exp.kind == "lottery":
        return run_key("lottery", exp.data, exp.model, exp.train, exp.prune).folder(root).path
    if exp.kind == "supermask":
        return run_key("supermask", exp.data, exp.model, exp.train).folder(root).path
    return run_key("learnmask", exp.data, exp.model, learn=exp.learn).folder(root).path


def experiment_done(exp: Experiment, root) -> bool:
    """Whether every result of ``exp`` is in the store (a rerun of its grid skips it)."""
    path = run_path(exp, root)
    if not (path / "config.json").is_file():
        return False
    run = open_run(path)
    if exp.kind == "supermask":
        points = run.points()
        mine = points[points["criterion"] == exp.supermask.criteria[0]]
        return len(mine) >= len(exp.supermask.weights) * len(exp.supermask.powers)
    return run.done == run.total


def _point_rows(exp: Experiment, path: Path) -> List[dict]:
    run = open_run(path)
    trunk = open_run(run.trunk)
    backend = trunk.round(0).summary.get("backend")
    points = run.points()
    wanted = points[(points["criterion"] == exp.supermask.criteria[0])
                    & points["weights"].isin(exp.supermask.weights) & points["power"].isin(exp.supermask.powers)]
    return [{"weights": p["weights"], "power": int(p["power"]), "weights_remaining": p["weights_remaining"],
             "train_acc": p["train_acc"], "test_acc": p["test_acc"], "backend": backend}
            for p in wanted.sort_values(["weights", "power"]).to_dict("records")]


def experiment_rows(exp: Experiment, root) -> List[dict]:
    """``exp``'s results as rows of the tidy table (columns :data:`TABLE_COLUMNS`)."""
    path = run_path(exp, root)
    label = exp.label()
    if exp.kind == "supermask":
        rows = _point_rows(exp, path)
    elif exp.kind == "learn-mask":
        s = read_json(path / "summary.json")
        rows = [{"weights_remaining": s["expected_keep_fraction"], "test_acc": s["test_acc_mean"]}]
    else:
        rows = [{"round": r.index, "weights_remaining": r.summary["weights_remaining"],
                 "early_stop_iteration": r.summary["early_stop_iteration"],
                 "early_stop_test_acc": r.summary["early_stop_test_acc"],
                 "final_test_acc": r.summary["final_test_acc"], "backend": r.summary.get("backend"),
                 "backend_changed_from": r.summary.get("backend_changed_from")} for r in open_run(path).rounds]
    return [{c: {**label, **row, "run_dir": str(path)}.get(c) for c in TABLE_COLUMNS} for row in rows]
