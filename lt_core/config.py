"""Configuration dataclasses: one per concern (data, model, training, pruning).

Each config

* validates itself on construction: an unknown name raises :class:`ConfigError` listing the allowed
  values (read from the live registries, so names registered by user code are accepted), an
  out-of-range number names the field and the range;
* prints only the fields that differ from their defaults (``TrainConfig(epochs=2, seed=3)``);
* round-trips through JSON (:meth:`to_dict` / :meth:`from_dict`);
* contributes its non-default, result-relevant fields to the run hash that names a run's directory
  in the results store. Fields that only say *where* or *how fast* (data directory, device) are
  marked ``hash=False`` and never change a run's identity.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Optional

from .archs import ARCHS
from .atomic import atomic_write_text
from .criteria import CRITERIA
from .data import DATASETS
from .errors import ConfigError
from .policies import MASK0_POLICIES, MASK1_POLICIES

DEVICES = ("auto", "cpu", "cuda")
EVAL_TEST = ("every", "best")  # where the test split is evaluated (TrainConfig.eval_test)
LENGTH_FIELDS = ("epochs", "iterations")  # a run's length: at most one of them (check_length)


def option(default: Any, help: str, *, hash: bool = True, flag: Optional[str] = None,
           default_text: Optional[str] = None) -> Any:
    """A config field with what the command line says of it (:mod:`lt_core.cli_options` makes its
    flag from the field): ``help`` (one phrase), ``flag`` (the flag's name when it is not the
    field's, e.g. ``train-eval``), ``default_text`` (what a ``None`` default means, e.g. "the
    architecture's"). ``hash=False``: see :func:`no_hash`. Metadata only: the value, the default,
    the checks and the run hash are the field's as without it."""
    meta = {"help": help}
    if not hash:
        meta["hash"] = False
    if flag is not None:
        meta["flag"] = flag
    if default_text is not None:
        meta["default_text"] = default_text
    return field(default=default, metadata=meta)


def no_hash(default: Any, help: Optional[str] = None, **cli: Any) -> Any:
    """A config field that says only *where* or *how fast* (a path, a device): it is stored with the
    run but never part of its identity (the run hash). ``help`` and ``cli``: see :func:`option`."""
    if help is None and not cli:
        return field(default=default, metadata={"hash": False})
    return option(default, help or "", hash=False, **cli)


def check_choice(owner: str, name: str, value: Any, allowed) -> None:
    allowed = list(allowed)
    if value not in allowed:
        raise ConfigError(
            f"{owner}.{name}: unknown value {value!r}; allowed values: {', '.join(map(str, allowed))}"
        )


def check_range(owner: str, name: str, value: Any, lo=None, hi=None, *, integer=False,
                lo_open=False, hi_open=False) -> None:
    kind = "an integer" if integer else "a number"
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type or (not integer and not math.isfinite(value)):
        raise ConfigError(f"{owner}.{name}: expected {kind}, got {value!r}")
    lo_bad = lo is not None and (value <= lo if lo_open else value < lo)
    hi_bad = hi is not None and (value >= hi if hi_open else value > hi)
    if lo_bad or hi_bad:
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        lo_s = "-inf" if lo is None else repr(lo)
        hi_s = "inf" if hi is None else repr(hi)
        raise ConfigError(f"{owner}.{name}: {value!r} is out of range {left}{lo_s}, {hi_s}{right}")


def check_config(owner: str, name: str, value: Any, cls: type) -> None:
    """An API argument that must be a config object (``run_lottery(train=...)``): a dict or anything
    else is one clear error saying how to build the right thing."""
    if not isinstance(value, cls):
        hint = f"; build one with {cls.__name__}(**{{...}})" if isinstance(value, dict) else ""
        raise ConfigError(f"{owner}: {name} must be a {cls.__name__}, got {type(value).__name__}{hint}")


def check_length(owner: str, epochs, iterations) -> None:
    """A run's length: at most one of ``epochs`` and ``iterations``, each a positive integer."""
    if epochs is not None and iterations is not None:
        raise ConfigError(f"{owner}: set at most one of epochs and iterations, not both "
                          f"(got epochs={epochs}, iterations={iterations})")
    if epochs is not None:
        check_range(owner, "epochs", epochs, 1, 100000, integer=True)
    if iterations is not None:
        check_range(owner, "iterations", iterations, 1, 10**9, integer=True)


@dataclass(frozen=True)
class Config:
    """Shared behaviour of the config dataclasses (subclass it, frozen, for a new kind of config)."""

    _label: ClassVar[str] = "config"

    def __post_init__(self) -> None:
        self.check_types()
        self.validate()

    def check_types(self) -> None:
        """Switches must be ``true``/``false`` and names/paths strings: a JSON ``"no"`` is not false.

        Numbers are checked, with their ranges, by :meth:`validate`.
        """
        hints = typing.get_type_hints(type(self))
        for f in fields(self):
            hint, value = hints[f.name], getattr(self, f.name)
            optional = typing.get_origin(hint) is typing.Union and type(None) in typing.get_args(hint)
            base = next((a for a in typing.get_args(hint) if a is not type(None)), hint) if optional else hint
            if value is None and optional:
                continue
            if base is bool and not isinstance(value, bool):
                raise ConfigError(f"{type(self).__name__}.{f.name}: expected true or false, got {value!r}")
            if base is str and not isinstance(value, str):
                raise ConfigError(f"{type(self).__name__}.{f.name}: expected a string"
                                  f"{' or null' if optional else ''}, got {value!r}")

    def validate(self) -> None:  # pragma: no cover - overridden
        pass

    # -- views -----------------------------------------------------------------------------
    def non_default(self, *, for_hash: bool = False) -> dict:
        out = {}
        for f in fields(self):
            if for_hash and not f.metadata.get("hash", True):
                continue
            value = getattr(self, f.name)
            if value != f.default:
                out[f.name] = value
        return out

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v!r}" for k, v in self.non_default().items())
        return f"{type(self).__name__}({body})"

    __str__ = __repr__

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict) -> "Config":
        if not isinstance(data, dict):
            raise ConfigError(f"{cls.__name__}: expected a JSON object, got {type(data).__name__}")
        allowed = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            raise ConfigError(
                f"{cls.__name__}: unknown field(s) {', '.join(unknown)}; allowed fields: {', '.join(allowed)}"
            )
        return cls(**data)

    def replace(self, **changes) -> "Config":
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, repr=False)
class DataConfig(Config):
    """Which dataset and how it is split.

    ``dataset=None`` means the architecture's own dataset (MNIST for ``fc``, CIFAR-10 for the conv
    nets). The validation split is the original protocol's: ``val_size`` images drawn from the
    training set with numpy's legacy ``RandomState(val_seed).choice(N, val_size, replace=False)``.
    ``data_dir=None`` means ``$LT_DATA_DIR``, else a per-user cache directory.
    """

    dataset: Optional[str] = option(None, "dataset", default_text="the architecture's: mnist for fc, cifar10 "
                                    "for the conv nets")
    val_size: int = option(5000, "validation images drawn from the training set")
    val_seed: int = option(0, "seed of the validation split's draw")
    data_dir: Optional[str] = no_hash(None, "folder holding the datasets; missing files are downloaded there",
                                      default_text="$LT_DATA_DIR, else ~/.cache/lt_core/data")
    download: bool = no_hash(True, "download missing dataset files (--no-download: fail instead)")

    def validate(self) -> None:
        if self.dataset is not None:
            check_choice("DataConfig", "dataset", self.dataset, DATASETS)
        check_range("DataConfig", "val_size", self.val_size, 1, 20000, integer=True)
        check_range("DataConfig", "val_seed", self.val_seed, 0, 2**32 - 1, integer=True)


@dataclass(frozen=True, repr=False)
class ModelConfig(Config):
    """Which network: a name registered in :data:`lt_core.archs.ARCHS` (``fc``, ``conv2``, ``conv4``,
    ``conv6``, ``conv8`` or one registered by user code)."""

    arch: str = option("fc", "network")

    def validate(self) -> None:
        check_choice("ModelConfig", "arch", self.arch, ARCHS)


@dataclass(frozen=True, repr=False)
class TrainConfig(Config):
    """How a network is trained (Adam, protocol section 2.2).

    ``lr=None`` and ``epochs=None`` mean the architecture's protocol values (FC 1.2e-3 / 55 epochs,
    Conv2 2e-4 / 27, Conv4 3e-4 / 34, Conv6 3e-4 / 40). ``iterations`` replaces ``epochs`` for quick
    runs (at most one of the two may be set). ``seed`` seeds every random choice of the run: the
    initialisation, the data order, mask tie-breaks and the mask policies.

    ``eval_test`` says where the test split is evaluated: ``"every"`` evaluation point (the test
    curve), or ``"best"``: only where a run's validation loss reaches a new minimum (strictly below
    every earlier point, so the first point too) and at the end. The early-stop test accuracy (test
    accuracy at the first point of minimum validation loss) and the final test accuracy are the
    same either way; only the test curve between those points is left out. It changes no weight,
    so it is not part of the run's identity.
    """

    seed: int = option(0, "seeds every random choice")
    lr: Optional[float] = option(None, "Adam learning rate", default_text="the paper's, per arch")
    batch_size: int = option(60, "batch size")
    epochs: Optional[int] = option(None, "epochs", default_text="the paper's, per arch")
    iterations: Optional[int] = option(None, "iterations instead of epochs, for quick runs")
    eval_every: int = option(100, "evaluate every N iterations")
    eval_train: bool = option(True, "evaluate the training set at each evaluation point (--no-train-eval: skip "
                                    "it, faster)", flag="train-eval")
    eval_test: str = no_hash("every", "where to evaluate the test split: every evaluation point, or only where a "
                                      "run's validation loss reaches a new minimum and at the end (faster; the "
                                      "same early-stop and final test accuracies)")
    device: str = no_hash("auto", "device (auto: cuda if present)")

    def validate(self) -> None:
        check_range("TrainConfig", "seed", self.seed, 0, 2**63 - 1, integer=True)
        if self.lr is not None:
            check_range("TrainConfig", "lr", self.lr, 0, 10.0, lo_open=True)
        check_range("TrainConfig", "batch_size", self.batch_size, 1, 100000, integer=True)
        check_length("TrainConfig", self.epochs, self.iterations)
        check_range("TrainConfig", "eval_every", self.eval_every, 1, 10**9, integer=True)
        check_choice("TrainConfig", "eval_test", self.eval_test, EVAL_TEST)
        check_choice("TrainConfig", "device", self.device, DEVICES)


@dataclass(frozen=True, repr=False)
class PruneConfig(Config):
    """Iterative pruning (protocol sections 3-5).

    ``rounds`` pruning rounds follow the dense round 0; the count is not part of the run's identity,
    so asking for more rounds later continues the stored run (and fewer reads its first rounds). Each round prunes, within each layer, the
    fraction ``prune_fraction_<kind>`` of the weights still kept. ``None`` means the architecture's
    protocol value (FC: hidden 0.2, output 0.1; Conv2/Conv4: conv 0.1, hidden FC 0.2, output 0.1;
    Conv6: conv 0.15, hidden FC 0.2, output 0.1).
    """

    criterion: str = option("large_final", "mask criterion M(w_i, w_f)")
    mask1: str = option("rewind", "what kept weights start from")
    mask0: str = option("zero", "what pruned weights do")
    # not part of the run's identity: asking for more rounds continues the run
    rounds: int = no_hash(24, "pruning rounds after the dense round 0")
    prune_fraction_conv: Optional[float] = option(None, "fraction of a conv layer's kept weights pruned per round",
                                                  default_text="the arch's")
    prune_fraction_fc: Optional[float] = option(None, "fraction of a hidden FC layer's kept weights pruned per "
                                                "round", default_text="the arch's")
    prune_fraction_output: Optional[float] = option(None, "fraction of the output layer's kept weights pruned per "
                                                    "round", default_text="the arch's")

    def validate(self) -> None:
        check_choice("PruneConfig", "criterion", self.criterion, CRITERIA)
        check_choice("PruneConfig", "mask1", self.mask1, MASK1_POLICIES)
        check_choice("PruneConfig", "mask0", self.mask0, MASK0_POLICIES)
        check_range("PruneConfig", "rounds", self.rounds, 0, 200, integer=True)
        for kind in ("conv", "fc", "output"):
            value = getattr(self, f"prune_fraction_{kind}")
            if value is not None:
                check_range("PruneConfig", f"prune_fraction_{kind}", value, 0.0, 1.0, hi_open=True)

    @classmethod
    def grid(cls, criteria, mask1, mask0, **fields) -> list:
        """One config per (criterion, mask-1 policy, mask-0 policy), criteria varying slowest, each with
        ``fields`` (e.g. ``rounds``): the lottery runs of a figure that compares them."""
        return [cls(criterion=c, mask1=m1, mask0=m0, **fields) for c in criteria for m1 in mask1 for m0 in mask0]


CONFIG_CLASSES = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "prune": PruneConfig}


def configs_from_dict(data: dict) -> dict:
    """Build ``{"data": DataConfig, ...}`` from a JSON-style dict of per-concern dicts."""
    if not isinstance(data, dict):
        raise ConfigError(f"config: expected a JSON object with sections {', '.join(CONFIG_CLASSES)}, "
                          f"got {type(data).__name__ if data is not None else 'null'}")
    unknown = sorted(set(data) - set(CONFIG_CLASSES))
    if unknown:
        raise ConfigError(f"config: unknown section(s) {', '.join(unknown)}; "
                          f"allowed sections: {', '.join(CONFIG_CLASSES)}")
    return {k: CONFIG_CLASSES[k].from_dict(v) for k, v in data.items()}


def configs_to_dict(configs: dict) -> dict:
    return {k: v.to_dict() for k, v in configs.items()}


def save_json(path, configs: dict) -> None:
    """Write ``{"data": DataConfig, ...}`` as a JSON file that :func:`load_json` (and ``--config``) reads."""
    atomic_write_text(path, json.dumps(configs_to_dict(configs), indent=2, sort_keys=True) + "\n")


def read_text(path, what: str, kind: str) -> str:
    """The text of the ``kind`` file (``"JSON"``, ``"YAML"``) at ``path``; a folder, a missing or
    unreadable file is one :class:`ConfigError` line starting with ``what`` and naming the path."""
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except IsADirectoryError:
        raise ConfigError(f"{what}: {path} is a directory; give a {kind} file") from None
    except FileNotFoundError:
        raise ConfigError(f"{what}: {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what}: {path} cannot be read ({exc})") from None


def load_json(path) -> dict:
    """Configs from a JSON file; an unreadable or malformed file is a :class:`ConfigError` naming it."""
    try:
        data = json.loads(read_text(path, "config", "JSON"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"config: {path} is not valid JSON ({exc})") from None
    return configs_from_dict(data)
