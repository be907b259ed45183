"""Learned supermasks as an experiment: train a stack of them with a registered mask-learning method
(:mod:`.methods`; Zhou's by default, :mod:`.learned`) and keep each in the results store, or read
back the ones already there.

A run's folder is named by its canonical data and model configs and its method's config (the
method's name and settings are part of its identity); the store writes every file of it
(:meth:`lt_core.store.RunDir.save_learned`). Runs of one call share their length and method and
are trained as one stack; a finished run is reused, an interrupted stack resumes from its
checkpoint.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import List, Optional, Sequence

from ..archs import get_arch
from ..config import Config, DataConfig, ModelConfig, check_config
from ..data import load_dataset
from ..devices import resolve_device
from ..events import EventCallback, LearnEnd, Stage, StopToken, emit, waiting_reporter, with_run_dir
from ..schedule import dataset_name, learn_iterations
from ..store import check_writable, config_hash, hold_locks, open_run, remove_checkpoint, results_root, run_key, \
    stack_checkpoint
from .learned import LearnConfig, LearnResult
from .methods import MethodLearnResult, learner_for, method_record


def stored_result(path: Path, s: dict) -> LearnResult:
    """A finished run's result read back from its ``summary.json`` ``s``: a :class:`LearnResult` for
    the default method (its summaries name none), else a ``MethodLearnResult`` with the method's name,
    its keep fraction and its own summary numbers, as the run returned them when it trained."""
    base = (path, s["test_acc_mean"], s["test_acc_samples"], s["expected_keep_fraction"], s["layer_keep_fraction"],
            s["iterations"])
    if "method" not in s:
        return LearnResult(*base, reused=True)
    known = set(LearnResult(*base).to_json()) | {"method", "keep_fraction", "wall_seconds", "backend"}
    extra = {k: v for k, v in s.items() if k not in known}
    return MethodLearnResult(*base, reused=True, method=s["method"], extra=extra)


def learn_supermask(data: DataConfig = DataConfig(), model: ModelConfig = ModelConfig(),
                    learn: LearnConfig = LearnConfig(), *, out=None, on_event: Optional[EventCallback] = None,
                    stop: Optional[StopToken] = None, progress: bool = False) -> LearnResult:
    """Train a learned supermask (or reuse the stored one); see the module docstring."""
    return learn_supermasks(data, model, [learn], out=out, on_event=on_event, stop=stop, progress=progress)[0]


def learn_supermasks(data: DataConfig, model: ModelConfig, learns: Sequence[LearnConfig], *, out=None,
                     on_event: Optional[EventCallback] = None, stop: Optional[StopToken] = None,
                     progress: bool = False) -> List[LearnResult]:
    """Several learned supermasks (e.g. init, signed constants, DWR) trained as one stack."""
    check_config("learn_supermasks", "data", data, DataConfig)
    check_config("learn_supermasks", "model", model, ModelConfig)
    if isinstance(learns, Config) or not learns:
        raise ValueError("learn_supermasks: learns must be a non-empty list of LearnConfig (one per mask)")
    learner_cls = learner_for("learn_supermasks", learns)
    arch = get_arch(model.arch)
    name = dataset_name(data, model)
    root = check_writable(results_root(out))
    on_event = with_run_dir(on_event, root)
    its = [learn_iterations(data, model, l) for l in learns]
    if len(set(its)) != 1:
        raise ValueError("learn_supermasks: stacked runs must have the same length")
    keys = [run_key("learnmask", data, model, learn=l) for l in learns]
    run_dirs = [key.folder(root) for key in keys]
    # the unfinished runs' locks, in a fixed order; one held elsewhere is waited for, then reused
    unfinished = [rd.path for rd in run_dirs if not (rd.path / "summary.json").is_file()]
    with hold_locks(unfinished, on_wait=waiting_reporter(on_event)):
        results: List[Optional[LearnResult]] = [None] * len(learns)
        todo = []
        ds = None
        for i, rd in enumerate(run_dirs):
            if (rd.path / "summary.json").is_file():
                results[i] = stored_result(rd.path, open_run(rd.path).summary)
                emit(on_event, Stage(stage="learn_reused", run=rd.name))
            else:
                todo.append(i)
                if ds is None:  # a missing dataset fails here, before anything is written
                    device = resolve_device(learns[i].device)
                    ds = load_dataset(name, data_dir=data.data_dir, download=data.download, val_size=data.val_size,
                                      val_seed=data.val_seed, device=device)
                    emit(on_event, Stage(stage="data_loaded", details={"dataset": name, "device": str(device)}))
                rd.write_config(keys[i].record(**method_record(learns[i])))
        if todo:
            checkpoint = run_dirs[todo[0]].checkpoint() if len(todo) == 1 else \
                stack_checkpoint(root, config_hash("stack", **{str(i): learns[i] for i in todo}))
            t0 = time.perf_counter()
            learner = learner_cls(arch, ds, [learns[i] for i in todo], [run_dirs[i].name for i in todo],
                                  iterations=its[0], on_event=on_event, stop=stop, checkpoint=checkpoint,
                                  progress=progress)
            trained = learner.run()
            seconds = time.perf_counter() - t0
            for j, i in enumerate(todo):
                res = trained[j]
                res.run_dir = run_dirs[i].path
                rd = run_dirs[i]
                rows = []
                for e in res.evals:
                    rows += [{"run": rd.name, "round": 0, "iteration": e["iteration"], "split": "train",
                              "metric": "accuracy", "value": e["train_acc"]},
                             {"run": rd.name, "round": 0, "iteration": e["iteration"], "split": "test",
                              "metric": "accuracy", "value": e["test_acc"]},
                             {"run": rd.name, "round": 0, "iteration": e["iteration"], "split": "mask",
                              "metric": "expected_keep_fraction", "value": e["expected_keep_fraction"]}]
                # the mask backend that computed the steps (numbers differ between backends by rounding)
                summary = {**res.to_json(), "wall_seconds": seconds, "backend": learner.mask_backend.name}
                summary.pop("run_dir")
                rd.save_learned({n: s[j].detach().cpu() for n, s in learner.scores.items()}, rows, summary,
                                {"round": 0, "device": str(learner.device)})
                results[i] = res
                emit(on_event, LearnEnd(run=rd.name, result={k: v for k, v in res.to_json().items() if k != "run_dir"}))
            remove_checkpoint(checkpoint)
    return results
