"""Run identity: the one place a run's configs become its name and its folder.

:func:`run_key` takes a run's kind and its configs as the caller spelled them, makes them
*canonical* once (values equal to the architecture's defaults reset to ``None``, see
:func:`lt_core.schedule.canonical`: a setting spelled two ways names one run) and returns a
:class:`RunKey`: the run's name ``<kind>-<arch>-<hash>`` (the hash is
:func:`lt_core.config.config_hash` of the canonical configs and the initialisation rule), its
folder under a results root, and the ``config.json`` record the store writes there.

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

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

from ..config import Config, ConfigError, DataConfig, ModelConfig, PruneConfig, TrainConfig, config_hash
from ..schedule import canonical
from .layout import KINDS, RunDir

# the configs each kind is named by, in the order they are hashed and recorded
ROLES: Dict[str, Tuple[str, ...]] = {"train": ("data", "model", "train"),
                                     "lottery": ("data", "model", "train", "prune"),
                                     "supermask": ("data", "model", "train"),
                                     "learnmask": ("data", "model", "learn")}


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
