"""One run as the plots show it (:class:`Series`), and the records it is built from.

A series is filled either live, from the engine's events (:mod:`.state`), or at once from the
results store, as an overlay (:mod:`.stored`). Accuracies and fractions are kept as the engine
reports them (0..1); the plot tables turn them into percentages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, NamedTuple, Optional, Tuple

# the weights a supermask is applied to, as the controls name them
SUPERMASK_WEIGHTS = {"init": "initial weights", "signed_constant": "signed constants"}
SUMMARY_FIELDS = ("round", "weights_remaining", "layer_remaining", "early_stop_iteration", "early_stop_test_acc",
                  "final_test_acc")
EVAL_FIELDS = ("iteration", "train_acc", "val_acc", "test_acc", "val_loss")
POINT_FIELDS = ("criterion", "weights", "power", "weights_remaining", "train_acc", "test_acc")
LEARN_EVAL_FIELDS = ("iteration", "epoch", "train_acc", "test_acc", "expected_keep_fraction")
LEARN_FINAL_FIELDS = ("test_acc_mean", "test_acc_samples", "expected_keep_fraction", "layer_keep_fraction")


class SeriesSpec(NamedTuple):
    """What a job's series is before its first event: its label, kind, setting, hue and run directory."""

    label: str
    kind: str
    setting: str
    hue: str
    run: str  # the run directory's name


@dataclass
class Series:
    """One run as shown on the plots (live, or loaded from the store as an overlay)."""

    key: str
    label: str
    kind: str  # "dense" | "lottery" | "oneshot" | "learned"
    arch: str = "fc"
    seed: int = 0
    overlay: bool = False
    root: Optional[str] = None
    run_names: Dict[int, str] = field(default_factory=dict)  # round -> run directory name
    rounds: Dict[int, dict] = field(default_factory=dict)  # round -> round_end summary
    curves: Dict[int, List[dict]] = field(default_factory=dict)  # round -> eval points
    current_round: Optional[int] = None
    points: List[dict] = field(default_factory=list)  # one-shot supermask points
    learn: List[dict] = field(default_factory=list)  # learned-mask evaluations
    learn_final: Optional[dict] = None
    learn_variant: Optional[dict] = None  # {"method", "weights", "dwr", "seed", "keep_fraction"}
    setting: str = ""  # the legend's name of the line: what the run varies, without its seed
    hue: str = ""  # the name whose colour the line takes (lt_core.colours.colour)
    run: str = ""  # the run directory the series stands for (a live one hides a stored one)

    def shown_round(self) -> Optional[int]:
        """The round the iteration plot shows: the current one, else the newest with a curve."""
        if self.current_round is not None:
            return self.current_round
        return max(self.curves) if self.curves else None

    def round_path(self, k: int) -> Optional[Path]:
        """The run directory holding round ``k``'s tensors, if known."""
        if k not in self.run_names or self.root is None:
            return None
        return Path(self.root) / self.run_names[k]


def lottery_setting(criterion: str, mask1: str, mask0: str) -> str:
    """A lottery run's name on the plots: its criterion, and its policies where not the original
    lottery ticket's (rewind / zero)."""
    parts = [criterion] + [p for p, default in ((mask1, "rewind"), (mask0, "zero")) if p != default]
    return " · ".join(parts)


def lottery_hue(criterion: str, mask1: str, mask0: str) -> str:
    """The name whose colour a lottery run takes: the policy it varies, else its criterion."""
    if mask1 != "rewind":
        return mask1
    if mask0 != "zero":
        return mask0
    return criterion


def learned_setting(weights: Optional[str], dwr: bool, method: str = "zhou",
                    keep_fraction: Optional[float] = None) -> str:
    """A learned supermask's name on the plots: Zhou's masks by their weights (and DWR); another
    family by its name, its keep fraction where it has one (``edge_popup · 5% kept``) and its
    weights where they are not its config's default."""
    if method == "zhou":
        return "learned · " + SUPERMASK_WEIGHTS.get(weights, weights) + (" · DWR" if dwr else "")
    parts = [method] + ([f"{100 * keep_fraction:g}% kept"] if keep_fraction is not None else [])
    if weights and weights != _default_weights(method):
        parts.append(SUPERMASK_WEIGHTS.get(weights, weights))
    return " · ".join(parts + (["DWR"] if dwr else []))


def _default_weights(method: str) -> Optional[str]:
    from lt_core.supermask import MASK_METHODS

    try:
        return getattr(MASK_METHODS[method].config(), "weights", None)
    except Exception:  # a method no longer registered, or whose config has no defaults
        return None


def learned_identity(config: dict) -> Tuple[str, str, dict]:
    """``(setting, hue, variant)`` of a learned mask from its stored ``config.json`` (its ``method``,
    absent for Zhou's, and its ``learn`` settings): the legend name, the colour's name and
    ``{"method", "weights", "dwr", "seed", "keep_fraction"}``."""
    learn = config.get("learn") or {}
    method = config.get("method") or "zhou"
    weights = learn.get("weights", "init" if method == "zhou" else None)
    dwr, keep = bool(learn.get("dwr", False)), learn.get("keep_fraction")
    variant = {"method": method, "weights": weights, "dwr": dwr, "seed": learn.get("seed", 0), "keep_fraction": keep}
    setting = learned_setting(weights, dwr, method, keep)
    hue = ("dwr " if dwr else "") + str(weights) if method == "zhou" else setting
    return setting, hue, variant


def pick(record: dict, names: Iterable[str]) -> dict:
    """The entries of ``record`` named in ``names`` that it has."""
    return {k: record[k] for k in names if k in record}


def curve_from_rows(rows: Iterable[dict]) -> List[dict]:
    """Evaluation points (``{"iteration", "<split>_acc"...}``) from stored metric rows, by iteration;
    only iterations with a test accuracy."""
    by_it: Dict[int, dict] = {}
    for r in rows:
        if r.get("metric") != "accuracy":
            continue
        by_it.setdefault(r["iteration"], {"iteration": r["iteration"]})[f"{r['split']}_acc"] = r["value"]
    return [by_it[k] for k in sorted(by_it) if "test_acc" in by_it[k]]
