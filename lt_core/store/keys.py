"""Run identity: the one place a run's configs become its name and its folder.

:func:`run_key` takes a run's kind and its configs as the caller spelled them, makes them
*canonical* once (:func:`canonical`: values equal to the architecture's defaults reset to
``None``, so a setting spelled two ways names one run) and returns a :class:`RunKey`: the run's name
``<kind>-<arch>-<hash>`` (:func:`config_hash` of the canonical configs and the initialisation rule),
its folder under a results root, and the ``config.json`` record the store writes there.

The kinds and the configs each takes:

============  ==========================================  ====================================
kind          configs                                      the run
============  ==========================================  ====================================
train         data, model, train                           the dense run (round 0 of lotteries)
lottery       data, model, train, prune                    pruning rounds 1..R on a dense run
supermask     data, model, train                           one-shot supermask points of a dense run
learnmask     data, model, learn (any mask method config)  one learned supermask
============  ==========================================  ====================================
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

from ..archs import get_arch
from ..config import Config, ConfigError, DataConfig, ModelConfig, PruneConfig, TrainConfig
from .. import models
from .layout import KINDS, RunDir

# the configs each kind is named by, in the order they are hashed and recorded
ROLES: Dict[str, Tuple[str, ...]] = {"train": ("data", "model", "train"),
                                     "lottery": ("data", "model", "train", "prune"),
                                     "supermask": ("data", "model", "train"),
                                     "learnmask": ("data", "model", "learn")}


def canonical(data: DataConfig, model: ModelConfig, train: TrainConfig, prune: Optional[PruneConfig] = None
              ) -> Tuple[DataConfig, ModelConfig, TrainConfig, Optional[PruneConfig]]:
    """The same configs with values equal to the architecture's defaults reset to ``None``."""
    arch = get_arch(model.arch)
    if data.dataset == arch.dataset:
        data = data.replace(dataset=None)
    if train.lr == arch.lr:
        train = train.replace(lr=None)
    if train.epochs == arch.epochs:
        train = train.replace(epochs=None)
    if prune is not None:
        for kind in ("conv", "fc", "output"):
            if getattr(prune, f"prune_fraction_{kind}") == arch.prune_fractions.get(kind):
                prune = prune.replace(**{f"prune_fraction_{kind}": None})
    return data, model, train, prune


def config_hash(kind: str, **configs: Config) -> str:
    """Stable short hash of a run's identity: its kind, the initialisation rule
    (:data:`lt_core.models.INIT_SCHEME`, so that a change of rule never finds runs made under the old
    one) and the non-default, result-relevant fields of ``configs``."""
    payload = {"kind": kind, "init": models.INIT_SCHEME}  # read now: a test may set another rule
    for key in sorted(configs):
        payload[key] = configs[key].non_default(for_hash=True)
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class RunKey:
    """A run's identity: its kind and canonical configs (by role: ``data``, ``model``, ...)."""

    kind: str
    configs: Tuple[Tuple[str, Config], ...]

    def __getitem__(self, role: str) -> Config:
        for name, config in self.configs:
            if name == role:
                return config
        raise KeyError(f"{self.kind} runs have no {role!r} config; they have {', '.join(ROLES[self.kind])}")

    @property
    def arch(self) -> str:
        return self["model"].arch

    @property
    def digest(self) -> str:
        """The 12 hex digits of :func:`lt_core.config.config_hash` that end the run's name."""
        return config_hash(self.kind, **dict(self.configs))

    @property
    def name(self) -> str:
        """The run's folder name, ``<kind>-<arch>-<hash>``."""
        return f"{self.kind}-{self.arch}-{self.digest}"

    def folder(self, root) -> RunDir:
        """The run's folder under the results root ``root``."""
        return RunDir(Path(root) / self.name)

    def record(self, **extra) -> dict:
        """What the run's ``config.json`` holds: its kind, its canonical configs, and ``extra`` (e.g. the
        trunk a lottery run builds on, a mask method's name)."""
        return {"kind": self.kind, **{name: config.to_dict() for name, config in self.configs}, **extra}


def run_key(kind: str, data: DataConfig, model: ModelConfig, train: Optional[TrainConfig] = None,
            prune: Optional[PruneConfig] = None, learn: Optional[Config] = None) -> RunKey:
    """The identity of a ``kind`` run of these configs (see the module docstring)."""
    if kind not in ROLES:
        raise ConfigError(f"kind: unknown value {kind!r}; allowed values: {', '.join(KINDS)}")
    given = {"train": train, "prune": prune, "learn": learn}
    wanted = ROLES[kind][2:]
    missing = [role for role in wanted if given[role] is None]
    extra = [role for role, config in given.items() if config is not None and role not in wanted]
    if missing or extra:
        raise ConfigError(f"run_key: a {kind} run is named by {', '.join(ROLES[kind])}"
                          + (f"; {', '.join(missing)} missing" if missing else "")
                          + (f"; {', '.join(extra)} given but not used" if extra else ""))
    data_c, model_c, train_c, prune_c = canonical(data, model, train or TrainConfig(), prune)
    canon = {"data": data_c, "model": model_c, "train": train_c, "prune": prune_c, "learn": learn}
    return RunKey(kind, tuple((role, canon[role]) for role in ROLES[kind]))
