"""One-shot supermasks (protocol section 6), :func:`one_shot_supermasks`: from a trained dense run's ``(w_i, w_f)``, for
each criterion and prune power ``p``, a mask keeping ``base_l ** p`` of each layer ``l`` (the
architecture's per-round keep fractions: FC 0.8 hidden / 0.9 output) is computed in one shot and
applied to the untrained network with (a) its initial weights and (b) signed constants
(``std(W_l) * sign(W_l)``, the layer's init std). Both are evaluated on the full train and test
sets without any training; many masks are evaluated at once as one stack of networks. That the
conv nets use their own per-round bases is UNVERIFIED in the protocol; we follow its
recommended reading (they do).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

import torch

from .. import pruning
from ..archs import Arch, get_arch
from ..backends import evaluate
from ..config import Config, ConfigError, DataConfig, ModelConfig, TrainConfig, check_choice, check_config, check_range
from ..criteria import CRITERIA
from ..data import Dataset, load_dataset
from ..devices import resolve_device
from ..events import EventCallback, RunStopped, StopToken, SupermaskPoint, emit, waiting_reporter, with_run_dir
from ..lottery import train_dense
from ..schedule import dataset_name
from ..store import RunLock, append_entry, open_run, read_points, results_root, run_key, write_points

Tensor = torch.Tensor
WEIGHT_KINDS = ("init", "signed_constant")
DEFAULT_POWERS = tuple(range(25))


def signed_constants(weights: Dict[str, Tensor], multiplier: float = 1.0) -> Dict[str, Tensor]:
    """``std(W) * sign(W) * multiplier`` per layer (population std over the whole layer)."""
    return {n: w.std(unbiased=False) * torch.sign(w) * multiplier for n, w in weights.items()}


def supermask_weights(kind: str, init: Dict[str, Tensor]) -> Dict[str, Tensor]:
    check_choice("supermask", "weights", kind, WEIGHT_KINDS)
    return {n: w.clone() for n, w in init.items()} if kind == "init" else signed_constants(init)


def parse_powers(text: str) -> Tuple[int, ...]:
    """``"0-24"``, ``"0,4,8"`` or a mix (``"0-3,10"``) -> sorted unique powers."""
    out = set()
    try:
        for part in str(text).split(","):
            part = part.strip()
            if "-" in part:
                lo, hi = (int(v) for v in part.split("-", 1))
                out.update(range(lo, hi + 1))
            elif part:
                out.add(int(part))
    except ValueError:
        raise ConfigError(f"SupermaskConfig.powers: cannot read {text!r}; write e.g. 0-24 or 0,4,8") from None
    return tuple(sorted(out))


@dataclass(frozen=True, repr=False)
class SupermaskConfig(Config):
    """One-shot supermask sweep: which criteria, which weights, which prune powers."""

    criteria: Tuple[str, ...] = ("large_final_same_sign",)
    weights: Tuple[str, ...] = WEIGHT_KINDS
    powers: Tuple[int, ...] = DEFAULT_POWERS

    def __post_init__(self) -> None:
        for name in ("criteria", "weights", "powers"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        super().__post_init__()

    def validate(self) -> None:
        if not self.criteria:
            raise ConfigError("SupermaskConfig.criteria: give at least one criterion; allowed values: "
                              + ", ".join(CRITERIA))
        for c in self.criteria:
            check_choice("SupermaskConfig", "criteria", c, CRITERIA)
        if not self.weights:
            raise ConfigError("SupermaskConfig.weights: give at least one of init, signed_constant")
        for w in self.weights:
            check_choice("SupermaskConfig", "weights", w, WEIGHT_KINDS)
        if not self.powers:
            raise ConfigError("SupermaskConfig.powers: give at least one prune power in [0, 200]")
        for p in self.powers:
            check_range("SupermaskConfig", "powers", p, 0, 200, integer=True)


@dataclass
class SupermaskResult:
    run_dir: Path
    trunk_dir: Path
    rows: List[dict]
    best: List[dict]

    def to_json(self) -> dict:
        return {"run_dir": str(self.run_dir), "trunk_dir": str(self.trunk_dir), "rows": self.rows,
                "best": self.best}


def best_points(rows: Iterable[dict]) -> List[dict]:
    """Per (criterion, weights): the point of highest test accuracy (the smallest power on ties)."""
    best: Dict[tuple, dict] = {}
    for r in rows:
        key = (r["criterion"], r["weights"])
        if key not in best or r["test_acc"] > best[key]["test_acc"]:
            best[key] = r
    return [{k: best[key][k] for k in ("criterion", "weights", "power", "weights_remaining", "test_acc")}
            for key in sorted(best)]


def one_shot_masks(arch: Arch, criterion: str, w_init: Dict[str, Tensor], w_final: Dict[str, Tensor],
                   power: int, seed: int) -> Dict[str, Tensor]:
    """The one-shot mask of ``criterion`` keeping ``base_l ** power`` of each layer."""
    keep = {l.name: (1.0 - arch.prune_fractions[l.kind]) ** power for l in arch.layers}
    prev = {l.name: torch.ones(l.shape, dtype=torch.bool) for l in arch.layers}
    return pruning.compute_masks(criterion, w_init, w_final, prev, {n: 1.0 - k for n, k in keep.items()}, seed)


def _stack_eval(arch: Arch, nets: List[Dict[str, Tensor]], data: Dataset, splits=("train", "test"),
                chunk: Optional[int] = None) -> Dict[str, List[float]]:
    """Accuracy of many networks (zero biases) on whole splits, evaluated in stacks."""
    dev = data.train.x.device
    conv = not arch.fully_connected
    chunk = chunk or (16 if conv else 64)
    out = {s: [] for s in splits}
    for start in range(0, len(nets), chunk):
        group = nets[start:start + chunk]
        w = {n: torch.stack([g[n] for g in group]).to(dev) for n in arch.layer_names}
        b = {l.name: torch.zeros(len(group), l.shape[0], device=dev) for l in arch.layers}
        # keep activations near 100 MB: K networks x batch x widest layer
        batch = 100 if conv else max(500, 80000 // len(group))
        for split in splits:
            _, acc = evaluate(arch, w, b, data.splits[split], batch=batch)
            out[split] += acc.tolist()
    return out


def one_shot_supermasks(data: DataConfig = DataConfig(), model: ModelConfig = ModelConfig(),
                        train: TrainConfig = TrainConfig(), sweep: SupermaskConfig = SupermaskConfig(), *,
                        out=None, on_event: Optional[EventCallback] = None, stop: Optional[StopToken] = None,
                        progress: bool = False) -> SupermaskResult:
    """Evaluate one-shot supermasks on the untrained network; see the module docstring.

    Trains (or reuses) the dense run first. Finished points are stored in the run directory's
    ``points.csv`` and reused; one ``supermask_point`` event is emitted per point.
    """
    check_config("one_shot_supermasks", "sweep", sweep, SupermaskConfig)
    root = results_root(out)
    trunk = train_dense(data, model, train, out=root, on_event=on_event, stop=stop, progress=progress)
    on_event = with_run_dir(on_event, root)
    key = run_key("supermask", data, model, train)
    run_dir = key.folder(root)
    run_dir.write_config(key.record(trunk=trunk.run_dir.name))
    with RunLock(run_dir.path, on_wait=waiting_reporter(on_event)):  # one process evaluates the points
        points_path = run_dir.path / "points.csv"
        points = {(r["criterion"], r["weights"], r["power"]): r for r in read_points(points_path)}
        dense = open_run(trunk.run_dir).round(0)  # checked: a damaged trunk raises DamagedFileError
        state = {"init": dense.load("init")["weights"], "final": dense.load("final")["weights"]}
        arch = get_arch(model.arch)
        dataset: Optional[Dataset] = None
        wanted = [(c, w, p) for c in sweep.criteria for w in sweep.weights for p in sweep.powers]
        for key in wanted:
            if key in points:
                emit(on_event, SupermaskPoint(run=run_dir.name, reused=True, **points[key]))
        todo = [key for key in wanted if key not in points]
        bases = {kind: supermask_weights(kind, state["init"]) for kind in sweep.weights}
        by_mask: Dict[Tuple[str, int], Dict[str, Tensor]] = {}
        group_size = 10
        for start in range(0, len(todo), group_size):
            if stop is not None and stop.requested:
                raise RunStopped(f"stopped after {len(points)} supermask points; finished points are kept")
            group = todo[start:start + group_size]
            nets, remaining = [], []
            for criterion, kind, power in group:
                if (criterion, power) not in by_mask:
                    by_mask[(criterion, power)] = one_shot_masks(arch, criterion, state["init"], state["final"], power,
                                                                 train.seed)
                masks = by_mask[(criterion, power)]
                nets.append({n: bases[kind][n] * masks[n] for n in arch.layer_names})
                remaining.append(pruning.remaining(masks)["overall"])
            if dataset is None:
                dataset = load_dataset(dataset_name(data, model), data_dir=data.data_dir, download=data.download,
                                       val_size=data.val_size, val_seed=data.val_seed,
                                       device=resolve_device(train.device))
            acc = _stack_eval(arch, nets, dataset)
            for i, (criterion, kind, power) in enumerate(group):
                row = {"criterion": criterion, "weights": kind, "power": power, "weights_remaining": remaining[i],
                       "train_acc": acc["train"][i], "test_acc": acc["test"][i]}
                points[(criterion, kind, power)] = row
                emit(on_event, SupermaskPoint(run=run_dir.name, reused=False, **row))
            append_entry(run_dir.path, {"points": len(group)})
            write_points(points_path, [points[key] for key in sorted(points)])
    rows = [points[key] for key in wanted]
    return SupermaskResult(run_dir.path, trunk.run_dir, rows, best_points(rows))
