"""Experiments: dense training (the trunk) and iterative pruning (a branch built on it).

The dense run is round 0 of every lottery run with the same data, model and training settings, so
a figure's nine criteria train the dense network once. A lottery run then repeats, for rounds
1..R (protocol sections 3-5 and 9.3):

1. masks  M_k = compute_masks(criterion, I_{k-1}, F_{k-1}, M_{k-1}, prune fractions)
2. start  I_k = mask-1 policy applied to I_{k-1} (rewind: I_k = I_0)
3. pruned weights follow the mask-0 policy (zero, or frozen at a value; variant 2 also restarts
   some kept weights from 0, stored as the round's ``start.pt``)
4. train from I_k with a fresh optimiser; F_k = effective weights at the end

where I_{k-1} is round k-1's (transformed) initialisation and F_{k-1} its final weights. Every
finished round is stored; a repeated call reuses finished rounds and resumes an interrupted one.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch

from . import pruning
from .config import ConfigError, DataConfig, ModelConfig, PruneConfig, TrainConfig, check_config
from .data import load_dataset
from .events import EventCallback, RoundEnd, Stage, StopToken, emit, waiting_reporter, with_run_dir
from .archs import Arch, get_arch
from .models import full_masks, init_weights, zero_biases
from .policies import MASK0_POLICIES, apply_mask0, apply_mask1
from .schedule import dataset_name, learning_rate, total_iterations
from .seeding import derive_seed, generator
from .store import Round, RunDir, RunKey, RunLock, atomic_write_text, check_writable, hold_locks, metrics_csv, \
    open_run, results_root, run_key
from .backends import RunSpec
from .devices import auto_stack_size, resolve_device
from .train import Trainer


@dataclass
class RoundRecord:
    round: int
    weights_remaining: float
    layer_remaining: Dict[str, float]
    early_stop_iteration: int
    early_stop_test_acc: float
    final_test_acc: float
    reused: bool = False

    def event(self, run: str) -> RoundEnd:
        """The ``round_end`` event of this round of run ``run``."""
        return RoundEnd(run=run, reused=self.reused, **self.to_json())

    def to_json(self) -> dict:
        return {"round": self.round, "weights_remaining": self.weights_remaining,
                "layer_remaining": self.layer_remaining, "early_stop_iteration": self.early_stop_iteration,
                "early_stop_test_acc": self.early_stop_test_acc, "final_test_acc": self.final_test_acc}


@dataclass
class ExperimentResult:
    run_dir: Path
    rounds: List[RoundRecord] = field(default_factory=list)
    trunk_dir: Optional[Path] = None

    def to_json(self) -> dict:
        out = {"run_dir": str(self.run_dir), "rounds": [r.to_json() for r in self.rounds]}
        if self.trunk_dir is not None:
            out["trunk_dir"] = str(self.trunk_dir)
        return out


def _record(summary: dict, reused: bool) -> RoundRecord:
    return RoundRecord(summary["round"], summary["weights_remaining"], summary["layer_remaining"],
                       summary["early_stop_iteration"], summary["early_stop_test_acc"],
                       summary["final_test_acc"], reused)


class _Context:
    """What one experiment call needs: resolved settings, store, event and stop plumbing."""

    def __init__(self, data: DataConfig, model: ModelConfig, train: TrainConfig, out, on_event, stop,
                 progress: bool) -> None:
        for name, value, cls in (("data", data, DataConfig), ("model", model, ModelConfig), ("train", train, TrainConfig)):
            check_config("experiment", name, value, cls)
        self.dense_key = run_key("train", data, model, train)
        self.data_cfg, self.model_cfg, self.train_cfg = (self.dense_key[role] for role in ("data", "model", "train"))
        self.arch: Arch = get_arch(model.arch)
        self.dataset_name = dataset_name(data, model)
        self.iterations = total_iterations(data, model, train)
        self.lr = learning_rate(model, train)
        self.device = resolve_device(train.device)
        self.root = check_writable(results_root(out))  # before the dataset loads or anything trains
        self.on_event, self.stop, self.progress = with_run_dir(on_event, self.root), stop, progress
        self._data = None

    @property
    def dataset(self):
        if self._data is None:
            self._data = load_dataset(self.dataset_name, data_dir=self.data_cfg.data_dir,
                                      download=self.data_cfg.download, val_size=self.data_cfg.val_size,
                                      val_seed=self.data_cfg.val_seed, device=self.device)
            emit(self.on_event, Stage(stage="data_loaded",
                                      details={"dataset": self.dataset_name, "device": str(self.device)}))
        return self._data

    def train_stack(self, checkpoint: Path, k: int, specs: List[RunSpec]):
        trainer = Trainer(self.arch, self.dataset, specs, lr=self.lr, batch_size=self.train_cfg.batch_size,
                          iterations=self.iterations, eval_every=self.train_cfg.eval_every,
                          eval_train=self.train_cfg.eval_train, eval_test=self.train_cfg.eval_test,
                          round_index=k, on_event=self.on_event,
                          stop=self.stop, checkpoint=checkpoint, progress=self.progress)
        return trainer.run()


def _summary(k: int, masks: Dict[str, torch.Tensor], result, seconds: float, iterations: int) -> dict:
    rem = pruning.remaining(masks)
    overall = rem.pop("overall")
    return {"round": k, "weights_remaining": overall, "layer_remaining": rem, "iterations": iterations,
            "wall_seconds": seconds, **result.summary()}


def note_backend_change(summary: dict, previous: Optional[str], run_name: str, on_event) -> None:
    """Report a round computed by another numeric backend than the round it builds on.

    Backends agree only up to float rounding, so a run continued elsewhere (a shared store, a
    worker with a GPU) mixes numbers from two backends: the round's summary records
    ``backend_changed_from``, a ``backend_changed`` stage event is emitted and a warning issued.
    """
    if previous is None or previous == summary.get("backend"):
        return
    summary["backend_changed_from"] = previous
    emit(on_event, Stage(stage="backend_changed", run=run_name, round=summary["round"],
                         details={"backend": summary.get("backend"), "previous": previous}))
    warnings.warn(f"{run_name}: round {summary['round']} was trained with backend {summary.get('backend')}, "
                  f"the round before with {previous}; their numbers differ by float rounding", stacklevel=2)


def _train_dense(ctx: _Context) -> ExperimentResult:
    """The dense run, trained under its lock (:mod:`lt_core.store.lock`), or reused."""
    run_dir = ctx.dense_key.folder(ctx.root)
    if not run_dir.round_done(0):
        with RunLock(run_dir.path, on_wait=waiting_reporter(ctx.on_event)):
            if not run_dir.round_done(0):
                return _train_dense_round(ctx, run_dir)
    emit(ctx.on_event, Stage(stage="round_reused", run=run_dir.name, round=0))
    record = _record(run_dir.summary(0), reused=True)
    emit(ctx.on_event, record.event(run_dir.name))
    return ExperimentResult(run_dir.path, [record])


def _train_dense_round(ctx: _Context, run_dir: RunDir) -> ExperimentResult:
    ctx.dataset  # noqa: B018 -- loads the dataset: a missing one fails here, before anything is written
    run_dir.write_config(ctx.dense_key.record())
    seed = ctx.train_cfg.seed
    weights, biases, masks = init_weights(ctx.arch, seed), zero_biases(ctx.arch), full_masks(ctx.arch)
    t0 = time.perf_counter()
    emit(ctx.on_event, Stage(stage="round_start", run=run_dir.name, round=0, details={"iterations": ctx.iterations}))
    result = ctx.train_stack(run_dir.checkpoint(0), 0,
                             [RunSpec(run_dir.name, weights, biases, masks, seed)])[0]
    summary = _summary(0, masks, result, time.perf_counter() - t0, ctx.iterations)
    bool_masks = {n: m.bool() for n, m in masks.items()}
    run_dir.save_round(0, {"init": {"weights": weights, "biases": biases},
                           "final": {"weights": result.final_weights, "biases": result.final_biases},
                           "masks": bool_masks}, result.rows, summary)
    record = _record(summary, reused=False)
    emit(ctx.on_event, record.event(run_dir.name))
    return ExperimentResult(run_dir.path, [record])


def train_dense(data: DataConfig = DataConfig(), model: ModelConfig = ModelConfig(),
                train: TrainConfig = TrainConfig(), *, out=None, on_event: Optional[EventCallback] = None,
                stop: Optional[StopToken] = None, progress: bool = False) -> ExperimentResult:
    """Train the dense network (or reuse the stored run with the same configuration)."""
    return _train_dense(_Context(data, model, train, out, on_event, stop, progress))


def _load_round_state(finished: Round) -> dict:
    """What the next round builds on, read through the store's checks: a damaged file raises
    :class:`lt_core.store.DamagedFileError` instead of being trained on."""
    return {name: finished.load(name) for name in ("init", "final", "masks", "frozen")}


class _Branch:
    """One lottery run of a batch: its configuration, directory and the state of its last round."""

    def __init__(self, ctx: _Context, key: RunKey, trunk_dir: RunDir, trunk_rounds: List[RoundRecord]) -> None:
        self.prune, self.trunk_dir = key["prune"], trunk_dir
        prune = self.prune
        self.run_dir = key.folder(ctx.root)
        self.run_dir.write_config(key.record(trunk=trunk_dir.name))
        self.run_dir.extend_rounds(prune.rounds)
        self.result = ExperimentResult(self.run_dir.path, list(trunk_rounds), trunk_dir.path)
        self.fractions = pruning.layer_prune_fractions(ctx.arch, prune.prune_fraction_conv, prune.prune_fraction_fc,
                                                       prune.prune_fraction_output)
        self.freezes = MASK0_POLICIES[prune.mask0].freezes
        self.state: Optional[dict] = None
        self.pending: Optional[dict] = None

    def load_state(self, k: int) -> dict:
        if self.state is None:
            self.state = _load_round_state(open_run(self.run_dir.path).round(k))
        return self.state

    def prepare(self, k: int, seed: int, alpha: Dict[str, float], init_biases, arch: Arch) -> RunSpec:
        """Masks, starting weights and frozen values of round ``k`` (steps 1-3 of the module docstring)."""
        state = self.load_state(k - 1)
        w_i, w_f = state["init"]["weights"], state["final"]["weights"]
        prev_masks = {n: m.bool() for n, m in state["masks"].items()}
        round_seed = derive_seed(seed, "round", k)
        masks = pruning.compute_masks(self.prune.criterion, w_i, w_f, prev_masks, self.fractions, round_seed)
        init, start, frozen = {}, {}, {}
        for name in arch.layer_names:
            init[name] = apply_mask1(self.prune.mask1, w_i[name], masks[name], alpha[name],
                                     generator(round_seed, "mask1", name))
            prev_frozen = state["frozen"][name] if state["frozen"] is not None else None
            start[name], frozen[name] = apply_mask0(self.prune.mask0, w_i[name], w_f[name], init[name], masks[name],
                                                    prev_masks[name], prev_frozen,
                                                    generator(round_seed, "mask0", name))
        self.pending = {"init": init, "start": start, "frozen": frozen, "masks": masks, "biases": dict(init_biases)}
        return RunSpec(self.run_dir.name, start, dict(init_biases), masks, seed, frozen if self.freezes else None)

    def finish(self, k: int, trained, seconds: float, iterations: int, on_event) -> None:
        p = self.pending
        summary = _summary(k, p["masks"], trained, seconds, iterations)
        previous = (self.trunk_dir if k == 1 else self.run_dir).summary(k - 1).get("backend")
        note_backend_change(summary, previous, self.run_dir.name, on_event)
        tensors = {"init": {"weights": p["init"], "biases": p["biases"]},
                   "final": {"weights": trained.final_weights, "biases": trained.final_biases},
                   "masks": p["masks"]}
        if self.freezes:
            tensors["frozen"] = p["frozen"]
        if any(not torch.equal(p["start"][n], p["init"][n]) for n in p["start"]):
            tensors["start"] = {"weights": p["start"], "biases": p["biases"]}
        self.run_dir.save_round(k, tensors, trained.rows, summary)
        rows = []
        for j in range(1, k + 1):
            rows += self.run_dir.rows(j)
        atomic_write_text(self.run_dir.path / "metrics.csv", metrics_csv(rows))
        self.state = {"init": tensors["init"], "final": tensors["final"], "masks": p["masks"],
                      "frozen": p["frozen"] if self.freezes else None}
        self.pending = None
        record = _record(summary, reused=False)
        emit(on_event, record.event(self.run_dir.name))
        self.result.rounds.append(record)

    def reuse(self, k: int, on_event) -> None:
        self.run_dir.rows(k)  # a damaged metrics.csv is named now, not after the next round has trained
        emit(on_event, Stage(stage="round_reused", run=self.run_dir.name, round=k))
        record = _record(self.run_dir.summary(k), reused=True)
        emit(on_event, record.event(self.run_dir.name))
        self.result.rounds.append(record)
        self.state = None  # loaded lazily when a later round needs it


def check_max_stack(max_stack) -> None:
    """One ConfigError line unless ``max_stack`` (runs trained at a time) is None or an integer >= 1."""
    if max_stack is not None and (isinstance(max_stack, bool) or not isinstance(max_stack, int) or max_stack < 1):
        raise ConfigError(f"max_stack: {max_stack!r} is not allowed; give an integer >= 1, or None to fit the "
                          "stack to free memory")


def run_lotteries(data: DataConfig = DataConfig(), model: ModelConfig = ModelConfig(),
                  train: TrainConfig = TrainConfig(), prunes: Sequence[PruneConfig] = (PruneConfig(),), *,
                  out=None, on_event: Optional[EventCallback] = None, stop: Optional[StopToken] = None,
                  progress: bool = False, max_stack: Optional[int] = None) -> List[ExperimentResult]:
    """Several lottery runs (e.g. every criterion of a figure) on one dense trunk, trained as stacks.

    Round by round, the unfinished runs are trained together, at most ``max_stack`` at a time
    (``None``: as many as fit in the device's free memory, see :func:`lt_core.devices.auto_stack_size`).
    They share the seed, hence the data order: one wide matmul serves every run's first layer. Each
    run's numbers equal those of the run trained alone, up to float rounding. Returns one
    :class:`ExperimentResult` per entry of ``prunes``.
    """
    if isinstance(prunes, PruneConfig) or not prunes:
        raise ValueError("run_lotteries: prunes must be a non-empty list of PruneConfig (one per lottery run)")
    for prune in prunes:
        check_config("run_lotteries", "prune", prune, PruneConfig)
    check_max_stack(max_stack)
    ctx = _Context(data, model, train, out, on_event, stop, progress)
    keys = [run_key("lottery", data, model, train, p) for p in prunes]
    arch = ctx.arch
    trunk = _train_dense(ctx)
    trunk_dir = RunDir(trunk.run_dir)
    branches: Dict[str, _Branch] = {}
    order = []
    for key in keys:
        b = _Branch(ctx, key, trunk_dir, trunk.rounds)
        branches.setdefault(b.run_dir.name, b)
        order.append(b.run_dir.name)
    unique = list(branches.values())
    trunk_state = _load_round_state(open_run(trunk.run_dir).round(0))
    alpha = {n: float(w.std(unbiased=False)) for n, w in trunk_state["init"]["weights"].items()}
    init_biases = trunk_state["init"]["biases"]
    for b in unique:
        b.state = trunk_state
    stack = max_stack or auto_stack_size(arch, ctx.device, len(unique), ctx.train_cfg.batch_size)
    # every branch's lock, in a fixed order; one held elsewhere is waited for, then its rounds reused
    with hold_locks([b.run_dir.path for b in unique], on_wait=waiting_reporter(ctx.on_event)):
        _prune_rounds(ctx, unique, stack, ctx.train_cfg.seed, alpha, init_biases)
    return [branches[name].result for name in order]


def _prune_rounds(ctx: _Context, branches: List[_Branch], stack: int, seed: int, alpha, init_biases) -> None:
    """Rounds 1..R of every branch: finished rounds reused, the others trained ``stack`` at a time."""
    for k in range(1, max(b.prune.rounds for b in branches) + 1):
        todo = []
        for b in branches:
            if k > b.prune.rounds:
                continue
            if b.run_dir.round_done(k):
                b.reuse(k, ctx.on_event)
            else:
                todo.append(b)
        for start in range(0, len(todo), stack):
            group = todo[start:start + stack]
            specs = [b.prepare(k, seed, alpha, init_biases, ctx.arch) for b in group]
            for b in group:
                emit(ctx.on_event, Stage(stage="round_start", run=b.run_dir.name, round=k,
                                         details={"iterations": ctx.iterations}))
            t0 = time.perf_counter()
            trained = ctx.train_stack(group[0].run_dir.checkpoint(k), k, specs)
            seconds = time.perf_counter() - t0
            for b, result in zip(group, trained):
                b.finish(k, result, seconds, ctx.iterations, ctx.on_event)


def run_lottery(data: DataConfig = DataConfig(), model: ModelConfig = ModelConfig(),
                train: TrainConfig = TrainConfig(), prune: PruneConfig = PruneConfig(), *, out=None,
                on_event: Optional[EventCallback] = None, stop: Optional[StopToken] = None,
                progress: bool = False) -> ExperimentResult:
    """Iterative pruning: round 0 (the dense trunk) then ``prune.rounds`` pruning rounds.

    Emits an ``eval`` event per evaluation point and a ``round_end`` event per finished round;
    finished rounds are reused from the store and an interrupted round resumes from its checkpoint.
    """
    return run_lotteries(data, model, train, [prune], out=out, on_event=on_event, stop=stop,
                         progress=progress, max_stack=1)[0]
