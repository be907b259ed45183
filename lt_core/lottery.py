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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import torch

from . import pruning
from .config import ConfigError, DataConfig, ModelConfig, PruneConfig, TrainConfig, config_hash, configs_to_dict
from .data import load_dataset
from .events import EventCallback, StopToken, emit
from .models import Arch, full_masks, get_arch, init_weights, zero_biases
from .policies import MASK0_REGISTRY, apply_mask0, apply_mask1
from .seeding import derive_seed, generator
from .store import RunDir, atomic_write_json, metrics_csv, atomic_write_text, read_json, results_root
from .train import RunSpec, Trainer, resolve_device

COMPATIBLE = {"fc": ("mnist", "fashion_mnist"), "conv2": ("cifar10",), "conv4": ("cifar10",),
              "conv6": ("cifar10",)}
TRAIN_SIZES = {"mnist": 60000, "fashion_mnist": 60000, "cifar10": 50000}


def dataset_name(data: DataConfig, model: ModelConfig) -> str:
    name = data.dataset or get_arch(model.arch).dataset
    if name not in COMPATIBLE[model.arch]:
        raise ConfigError(f"DataConfig.dataset: {name!r} does not fit arch {model.arch!r}; allowed values: "
                          f"{', '.join(COMPATIBLE[model.arch])}")
    return name


def total_iterations(data: DataConfig, model: ModelConfig, train: TrainConfig) -> int:
    """The run's length: ``iterations`` if set, else epochs x floor(N_train / batch)."""
    if train.iterations is not None:
        return train.iterations
    arch = get_arch(model.arch)
    n_train = TRAIN_SIZES[dataset_name(data, model)] - data.val_size
    per_epoch = n_train // train.batch_size
    if per_epoch == 0:
        raise ConfigError(f"TrainConfig.batch_size: {train.batch_size} is larger than the {n_train} training images")
    return (train.epochs or arch.epochs) * per_epoch


def learning_rate(model: ModelConfig, train: TrainConfig) -> float:
    return train.lr if train.lr is not None else get_arch(model.arch).lr


@dataclass
class RoundRecord:
    round: int
    weights_remaining: float
    layer_remaining: Dict[str, float]
    early_stop_iteration: int
    early_stop_test_acc: float
    final_test_acc: float
    reused: bool = False

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
        data, model, train, _ = canonical(data, model, train)
        self.data_cfg, self.model_cfg, self.train_cfg = data, model, train
        self.arch: Arch = get_arch(model.arch)
        self.dataset_name = dataset_name(data, model)
        self.iterations = total_iterations(data, model, train)
        self.lr = learning_rate(model, train)
        self.device = resolve_device(train.device)
        self.root = results_root(out)
        self.on_event, self.stop, self.progress = on_event, stop, progress
        self._data = None

    @property
    def dataset(self):
        if self._data is None:
            self._data = load_dataset(self.dataset_name, data_dir=self.data_cfg.data_dir,
                                      download=self.data_cfg.download, val_size=self.data_cfg.val_size,
                                      val_seed=self.data_cfg.val_seed, device=self.device)
            emit(self.on_event, event="stage", stage="data_loaded", dataset=self.dataset_name,
                 device=str(self.device))
        return self._data

    def train_round(self, run_dir: RunDir, k: int, spec: RunSpec):
        emit(self.on_event, event="stage", stage="round_start", run=run_dir.name, round=k,
             iterations=self.iterations)
        trainer = Trainer(self.arch, self.dataset, [spec], lr=self.lr, batch_size=self.train_cfg.batch_size,
                          iterations=self.iterations, eval_every=self.train_cfg.eval_every,
                          eval_train=self.train_cfg.eval_train, round_index=k, on_event=self.on_event,
                          stop=self.stop, checkpoint=run_dir.round_dir(k) / "checkpoint.pt",
                          progress=self.progress)
        return trainer.run()[0]


def _summary(k: int, masks: Dict[str, torch.Tensor], result, seconds: float, iterations: int) -> dict:
    rem = pruning.remaining(masks)
    overall = rem.pop("overall")
    return {"round": k, "weights_remaining": overall, "layer_remaining": rem, "iterations": iterations,
            "wall_seconds": seconds, **result.summary()}


def _write_config(run_dir: RunDir, kind: str, configs: dict, extra: Optional[dict] = None) -> None:
    path = run_dir.path / "config.json"
    body = {"kind": kind, **configs_to_dict(configs), **(extra or {})}
    if not path.is_file():
        atomic_write_json(path, body)


def canonical(data: DataConfig, model: ModelConfig, train: TrainConfig, prune: Optional[PruneConfig] = None):
    """The same configs with values equal to the architecture's defaults reset to ``None``.

    ``--dataset mnist`` for FC, or ``--lr 1.2e-3``, is the default experiment and gets the default's
    run directory.
    """
    arch = get_arch(model.arch)
    if data.dataset == arch.dataset:
        data = data.replace(dataset=None)
    if train.lr == arch.lr:
        train = train.replace(lr=None)
    if train.epochs == arch.epochs:
        train = train.replace(epochs=None)
    if prune is not None:
        for kind in ("conv", "fc", "output"):
            if getattr(prune, f"prune_fraction_{kind}") == arch.prune_fractions[kind]:
                prune = prune.replace(**{f"prune_fraction_{kind}": None})
    return data, model, train, prune


def dense_run_dir(data: DataConfig, model: ModelConfig, train: TrainConfig, out=None) -> RunDir:
    data, model, train, _ = canonical(data, model, train)
    h = config_hash("train", data=data, model=model, train=train)
    return RunDir(results_root(out) / f"train-{model.arch}-{h}")


def lottery_run_dir(data: DataConfig, model: ModelConfig, train: TrainConfig, prune: PruneConfig,
                    out=None) -> RunDir:
    data, model, train, prune = canonical(data, model, train, prune)
    h = config_hash("lottery", data=data, model=model, train=train, prune=prune)
    return RunDir(results_root(out) / f"lottery-{model.arch}-{h}")


def _train_dense(ctx: _Context) -> ExperimentResult:
    run_dir = dense_run_dir(ctx.data_cfg, ctx.model_cfg, ctx.train_cfg, ctx.root)
    if run_dir.round_done(0):
        emit(ctx.on_event, event="stage", stage="round_reused", run=run_dir.name, round=0)
        record = _record(run_dir.summary(0), reused=True)
        emit(ctx.on_event, event="round_end", run=run_dir.name, reused=True, **record.to_json())
        return ExperimentResult(run_dir.path, [record])
    _write_config(run_dir, "train", {"data": ctx.data_cfg, "model": ctx.model_cfg, "train": ctx.train_cfg})
    seed = ctx.train_cfg.seed
    weights, biases, masks = init_weights(ctx.arch, seed), zero_biases(ctx.arch), full_masks(ctx.arch)
    t0 = time.perf_counter()
    result = ctx.train_round(run_dir, 0, RunSpec(run_dir.name, weights, biases, masks, seed))
    summary = _summary(0, masks, result, time.perf_counter() - t0, ctx.iterations)
    bool_masks = {n: m.bool() for n, m in masks.items()}
    run_dir.save_round(0, {"init": {"weights": weights, "biases": biases},
                           "final": {"weights": result.final_weights, "biases": result.final_biases},
                           "masks": bool_masks}, result.rows, summary)
    record = _record(summary, reused=False)
    emit(ctx.on_event, event="round_end", run=run_dir.name, reused=False, **record.to_json())
    return ExperimentResult(run_dir.path, [record])


def train_dense(data: DataConfig = DataConfig(), model: ModelConfig = ModelConfig(),
                train: TrainConfig = TrainConfig(), *, out=None, on_event: Optional[EventCallback] = None,
                stop: Optional[StopToken] = None, progress: bool = False) -> ExperimentResult:
    """Train the dense network (or reuse the stored run with the same configuration)."""
    return _train_dense(_Context(data, model, train, out, on_event, stop, progress))


def _load_round_state(run_dir: RunDir, k: int) -> dict:
    return {"init": run_dir.load_tensors(k, "init"), "final": run_dir.load_tensors(k, "final"),
            "masks": run_dir.load_tensors(k, "masks"), "frozen": run_dir.load_tensors(k, "frozen")}


def run_lottery(data: DataConfig = DataConfig(), model: ModelConfig = ModelConfig(),
                train: TrainConfig = TrainConfig(), prune: PruneConfig = PruneConfig(), *, out=None,
                on_event: Optional[EventCallback] = None, stop: Optional[StopToken] = None,
                progress: bool = False) -> ExperimentResult:
    """Iterative pruning: round 0 (the dense trunk) then ``prune.rounds`` pruning rounds.

    Emits an ``eval`` event per evaluation point and a ``round_end`` event per finished round;
    finished rounds are reused from the store and an interrupted round resumes from its checkpoint.
    """
    ctx = _Context(data, model, train, out, on_event, stop, progress)
    data, model, train, prune = canonical(data, model, train, prune)
    arch = ctx.arch
    trunk = _train_dense(ctx)
    trunk_dir = RunDir(trunk.run_dir)
    run_dir = lottery_run_dir(data, model, train, prune, ctx.root)
    _write_config(run_dir, "lottery", {"data": data, "model": model, "train": train, "prune": prune},
                  {"trunk": trunk_dir.name})
    result = ExperimentResult(run_dir.path, list(trunk.rounds), trunk_dir.path)
    fractions = pruning.layer_prune_fractions(arch, prune.prune_fraction_conv, prune.prune_fraction_fc,
                                              prune.prune_fraction_output)
    seed = train.seed
    state = _load_round_state(trunk_dir, 0)
    alpha = {n: float(w.std(unbiased=False)) for n, w in state["init"]["weights"].items()}
    init_biases = state["init"]["biases"]
    for k in range(1, prune.rounds + 1):
        if run_dir.round_done(k):
            emit(on_event, event="stage", stage="round_reused", run=run_dir.name, round=k)
            record = _record(run_dir.summary(k), reused=True)
            emit(on_event, event="round_end", run=run_dir.name, reused=True, **record.to_json())
            result.rounds.append(record)
            state = None  # loaded lazily when a later round needs it
            continue
        if state is None:
            state = _load_round_state(run_dir, k - 1)
        w_i, w_f = state["init"]["weights"], state["final"]["weights"]
        prev_masks = {n: m.bool() for n, m in state["masks"].items()}
        round_seed = derive_seed(seed, "round", k)
        masks = pruning.compute_masks(prune.criterion, w_i, w_f, prev_masks, fractions, round_seed)
        init, start, frozen = {}, {}, {}
        for name in arch.layer_names:
            init[name] = apply_mask1(prune.mask1, w_i[name], masks[name], alpha[name],
                                     generator(round_seed, "mask1", name))
            prev_frozen = state["frozen"][name] if state["frozen"] is not None else None
            start[name], frozen[name] = apply_mask0(prune.mask0, w_i[name], w_f[name], init[name], masks[name],
                                                    prev_masks[name], prev_frozen,
                                                    generator(round_seed, "mask0", name))
        freezes = MASK0_REGISTRY[prune.mask0].freezes
        spec = RunSpec(run_dir.name, start, dict(init_biases), masks, seed, frozen if freezes else None)
        t0 = time.perf_counter()
        trained = ctx.train_round(run_dir, k, spec)
        summary = _summary(k, masks, trained, time.perf_counter() - t0, ctx.iterations)
        tensors = {"init": {"weights": init, "biases": dict(init_biases)},
                   "final": {"weights": trained.final_weights, "biases": trained.final_biases},
                   "masks": masks}
        if freezes:
            tensors["frozen"] = frozen
        if any(not torch.equal(start[n], init[n]) for n in start):
            tensors["start"] = {"weights": start, "biases": dict(init_biases)}
        run_dir.save_round(k, tensors, trained.rows, summary)
        rows = []
        for j in range(1, k + 1):
            rows += run_dir.rows(j)
        atomic_write_text(run_dir.path / "metrics.csv", metrics_csv(rows))
        state = {"init": tensors["init"], "final": tensors["final"], "masks": masks,
                 "frozen": frozen if freezes else None}
        record = _record(summary, reused=False)
        emit(on_event, event="round_end", run=run_dir.name, reused=False, **record.to_json())
        result.rounds.append(record)
    return result
