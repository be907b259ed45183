"""Grids of experiments: a YAML file read, checked in full, and expanded into :class:`Experiment` records.

A grid names a ``kind`` and gives a list of values per axis; the experiments are every
combination (the cartesian product, in the order the axes are listed below)::

    kind: lottery                  # lottery | supermask | learn-mask
    archs: [fc]                    # every kind
    seeds: [0, 1, 2]               # every kind
    schedule: [tiny]               # every kind: a preset name (tiny, quick, paper) or a mapping of fields
    criteria: [large_final, magnitude_increase]      # lottery, supermask
    mask1: [rewind]                # lottery
    mask0: [zero]                  # lottery
    rounds: [2]                    # lottery
    method: [zhou, edge_popup, signed]               # learn-mask: registered mask-learning methods
    weights: [init, signed_constant]                 # learn-mask
    dwr: [false, true]             # learn-mask (zhou)
    keep_fraction: [0.05, 0.1, 0.3, 0.5]             # learn-mask (edge_popup): any setting of a method
    dataset: mnist                 # fixed values: one value each (see FIXED)

Learn-mask grids: ``method`` (default ``zhou``) names mask-learning methods
(:data:`lt_core.supermask.MASK_METHODS`, plug-ins' included); any setting of a method's config is an
axis (``keep_fraction``, ``threshold``, ``score_init``, ...; ``seed`` and the length come from
``seeds`` and ``schedule``). A setting axis applies to the methods that have that setting and is
left out of the others' experiments (``method: [zhou, edge_popup]`` with ``keep_fraction: [0.1,
0.5]`` is three experiments, not four); a setting none of the grid's methods has is refused, and
every value of a setting axis must be valid for every method of the grid that has it.

Axes not given take the configs' defaults. A schedule mapping holds fields of ``TrainConfig``
(lottery, supermask: e.g. ``{iterations: 300, eval_every: 50, eval_train: false}``) or of
``LearnConfig`` (learn-mask); :func:`schedule_fields` resolves the preset names.

Everything is checked before anything runs: an unknown field, a field given twice, an unknown value,
an empty list or a value of the wrong type is refused with one :class:`ConfigError` naming the field
(``criteria[1]``) and what is allowed.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple

from .. import presets
from ..archs import get_arch
from ..config import ConfigError, DataConfig, ModelConfig, PruneConfig, TrainConfig, read_text
from ..supermask import MASK_METHODS, LearnConfig, SupermaskConfig, parse_powers
from ..supermask.methods import DEFAULT_METHOD, method_config
from ..experiments import Experiment, LearnedMasks, Lottery, Supermasks

KINDS = ("lottery", "supermask", "learn-mask")
PRESETS = tuple(presets.PRESETS)  # tiny, quick, paper
# the axes of each kind, in the order the experiments are expanded; each maps to (config, field)
AXES: Dict[str, Dict[str, Tuple[str, str]]] = {
    "lottery": {"archs": ("model", "arch"), "seeds": ("train", "seed"), "schedule": ("train", ""),
                "criteria": ("prune", "criterion"), "mask1": ("prune", "mask1"), "mask0": ("prune", "mask0"),
                "rounds": ("prune", "rounds")},
    "supermask": {"archs": ("model", "arch"), "seeds": ("train", "seed"), "schedule": ("train", ""),
                  "criteria": ("supermask", "criteria")},
    "learn-mask": {"archs": ("model", "arch"), "seeds": ("learn", "seed"), "schedule": ("learn", ""),
                   "method": ("learn", "method"), "weights": ("learn", "weights"), "dwr": ("learn", "dwr")},
}
# learn-mask config fields that are no setting axis: the seed (seeds) and what the schedule sets
NOT_SETTINGS = ("seed", "device", "epochs", "iterations", "eval_every")
# fixed values (one value each) of each kind, mapped to (config, field)
FIXED: Dict[str, Dict[str, Tuple[str, str]]] = {
    "lottery": {"prune_fraction_conv": ("prune", "prune_fraction_conv"),
                "prune_fraction_fc": ("prune", "prune_fraction_fc"),
                "prune_fraction_output": ("prune", "prune_fraction_output")},
    "supermask": {"powers": ("supermask", "powers"), "weights": ("supermask", "weights")},
    "learn-mask": {},
}
DATA_FIELDS = ("dataset", "val_size", "val_seed")
CLASSES = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "prune": PruneConfig,
           "learn": LearnConfig, "supermask": SupermaskConfig}


def schedule_fields(schedule: str, arch: str, kind: str, method: str = DEFAULT_METHOD) -> dict:
    """The ``TrainConfig`` fields (for learn-mask: the fields of ``method``'s config) of preset
    ``schedule`` for ``arch``: the reproduction presets of :mod:`lt_core.presets`, so a preset name
    means the same runs (the same store entries) in a sweep, the notebooks and ``reproduce``."""
    check_value("schedule", schedule, PRESETS)
    preset, record = presets.get_preset(schedule), get_arch(arch)
    if kind == "learn-mask":
        return dict(preset.learn_fields(record) if method == DEFAULT_METHOD else preset.method_fields(record))
    return {"eval_train": False, "eval_test": "best", **preset.train_fields(record)}


def check_value(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"{name}: unknown value {value!r}; allowed values: {', '.join(map(str, allowed))}")


def _schedule_label(schedule) -> str:
    if isinstance(schedule, str):
        return schedule
    return ",".join(f"{k}={v}" for k, v in schedule.items())


def _schedule_config(kind: str, schedule, arch: str, seed: int, where: str, method: str = DEFAULT_METHOD):
    """The TrainConfig (learn-mask: ``method``'s config) of ``schedule`` (a preset name or a mapping)
    for ``arch``, ``seed``."""
    cls = MASK_METHODS[method].config if kind == "learn-mask" else TrainConfig
    if isinstance(schedule, str):
        fields = schedule_fields(schedule, arch, kind, method)
    else:
        fields = dict(schedule)
        if "seed" in fields:
            raise ConfigError(f"{where}.seed: seeds are an axis of the grid; give them as seeds: [...]")
    try:
        return cls.from_dict({**fields, "seed": seed})
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _setting_names(method: str) -> List[str]:
    """The settings of mask method ``method`` that may be grid axes."""
    return [name for name in MASK_METHODS[method].field_names if name not in NOT_SETTINGS]


def _check_setting(name: str, values, methods: List[str]) -> list:
    """A learn-mask setting axis: every value valid for each of ``methods`` that has the setting."""
    having = [m for m in methods if name in _setting_names(m)]
    if not having:
        settings = "; ".join(f"{m}: {', '.join(_setting_names(m))}" for m in methods)
        raise ConfigError(f"{name}: not a setting of mask method{'s' * (len(methods) > 1)} {', '.join(methods)} "
                          f"(nor another field of a learn-mask grid); their settings: {settings}")
    _check_list(name, values)
    for i, value in enumerate(values):
        if isinstance(value, (list, dict)):
            raise ConfigError(f"{name}[{i}]: expected one value, got {value!r}")
        for method in having:
            try:
                method_config(method, **{name: value})
            except (ConfigError, TypeError) as exc:
                raise ConfigError(f"{name}[{i}] (method {method}): {exc}") from None
    _check_unique(name, values)
    return values


def _check_list(name: str, values) -> None:
    if not isinstance(values, list):
        raise ConfigError(f"{name}: expected a list of values, got {values!r} (write {name}: [{values}])")
    if not values:
        raise ConfigError(f"{name}: empty list; give at least one value")


def _check_unique(name: str, values) -> None:
    if len(set(map(repr, values))) != len(values):
        raise ConfigError(f"{name}: {values!r} lists a value twice")


def _check_axis(kind: str, name: str, values) -> list:
    _check_list(name, values)
    if kind == "learn-mask" and name == "method":
        for i, value in enumerate(values):
            check_value(f"method[{i}]", value, list(MASK_METHODS))
        _check_unique(name, values)
        return values
    config, field = AXES[kind][name]
    for i, value in enumerate(values):
        where = f"{name}[{i}]"
        if name == "schedule":
            if not isinstance(value, (str, dict)):
                raise ConfigError(f"{where}: expected a preset name ({', '.join(PRESETS)}) or a mapping of "
                                  f"fields, got {value!r}")
            if isinstance(value, str):
                check_value(where, value, PRESETS)
            continue
        if isinstance(value, (list, dict)):
            raise ConfigError(f"{where}: expected one value, got {value!r}")
        try:
            CLASSES[config](**{field: [value] if config == "supermask" else value})
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    if len(set(map(repr, values))) != len(values):
        raise ConfigError(f"{name}: {values!r} lists a value twice")
    return values


@dataclass(frozen=True)
class Grid:
    """A checked grid: its kind, its axes' values and its fixed values (see the module docstring)."""

    kind: str
    axes: Dict[str, list]
    fixed: Dict[str, object]

    @classmethod
    def from_dict(cls, body) -> "Grid":
        if not isinstance(body, dict):
            raise ConfigError(f"grid: expected a mapping with kind and axes, got {type(body).__name__}")
        if "kind" not in body:
            raise ConfigError(f"kind: missing; allowed values: {', '.join(KINDS)}")
        kind = body["kind"]
        check_value("kind", kind, KINDS)
        allowed = list(AXES[kind]) + list(FIXED[kind]) + list(DATA_FIELDS)
        methods = _check_axis(kind, "method", body["method"]) if kind == "learn-mask" and "method" in body \
            else [DEFAULT_METHOD]
        unknown = [k for k in body if k != "kind" and k not in allowed]
        if kind == "learn-mask":  # a method's setting is an axis too
            settings = {k: _check_setting(k, body[k], methods) for k in unknown if k not in NOT_SETTINGS}
            unknown = [k for k in unknown if k not in settings]
            if unknown and unknown[0] in NOT_SETTINGS:
                raise ConfigError(f"{unknown[0]}: not an axis of a learn-mask grid; "
                                  + ("give seeds as seeds: [...]" if unknown[0] == "seed" else
                                     "give it in a schedule mapping, e.g. schedule: [{iterations: 300}]"))
        if unknown:
            raise ConfigError(f"{unknown[0]}: unknown field for kind {kind}; allowed fields: {', '.join(allowed)}")
        # learn-mask's named settings (weights, dwr) of a grid with other methods: checked against each
        by_method = ("weights", "dwr") if kind == "learn-mask" and methods != [DEFAULT_METHOD] else ()
        axes = {name: _check_setting(name, body[name], methods) if name in by_method
                else _check_axis(kind, name, body[name]) for name in AXES[kind] if name in body}
        if kind == "learn-mask":
            axes.update(settings)
        fixed = {k: v for k, v in body.items() if k in FIXED[kind] or k in DATA_FIELDS}
        grid = cls(kind, axes, fixed)
        grid.experiments()  # every combination's configs are valid (a schedule mapping, a fixed value...)
        return grid

    def _fixed(self, config: str) -> dict:
        out = {}
        for name, value in self.fixed.items():
            target = ("data", name) if name in DATA_FIELDS else FIXED[self.kind][name]
            if target[0] == config:
                out[target[1]] = value
        return out

    def _build(self, config: str, where: str, **fields):
        fixed = self._fixed(config)
        if config == "supermask" and isinstance(fixed.get("powers"), (str, int)):
            fixed["powers"] = parse_powers(fixed["powers"])
        try:
            return CLASSES[config](**{**fixed, **fields})
        except (ConfigError, TypeError) as exc:
            names = ", ".join(sorted(fixed)) or where
            raise ConfigError(f"{names}: {exc}") from None

    def experiments(self) -> List[Experiment]:
        """Every combination of the axes' values, as experiments (the first axis varies slowest; a
        learn-mask method's setting axes follow the named ones, in the grid's order)."""
        names = list(AXES[self.kind]) + [n for n in self.axes if n not in AXES[self.kind]]
        values = [self.axes.get(n, [None]) for n in names]
        out = []
        for combo in itertools.product(*values):
            given = {n: v for n, v in zip(names, combo) if v is not None}
            arch, seed = given.get("archs", ModelConfig().arch), given.get("seeds", 0)
            schedule = given.get("schedule", "paper")
            where = f"schedule[{self.axes['schedule'].index(schedule)}]" if "schedule" in given else "schedule"
            method = given.get("method", DEFAULT_METHOD)
            sched = _schedule_config(self.kind, schedule, arch, seed, where, method)
            base = {"arch": arch, "data": self._build("data", "dataset"), "schedule": _schedule_label(schedule)}
            if self.kind == "lottery":
                prune = self._build("prune", "prune", **{AXES["lottery"][n][1]: given[n]
                                                          for n in ("criteria", "mask1", "mask0", "rounds")
                                                          if n in given})
                out.append(Lottery(train=sched, prunes=(prune,), **base))
            elif self.kind == "supermask":
                criteria = [given["criteria"]] if "criteria" in given else list(SupermaskConfig().criteria)
                out.append(Supermasks(train=sched, sweep=self._build("supermask", "supermask", criteria=criteria),
                                      **base))
            else:
                mine = _setting_names(method)
                learn = sched.replace(**{n: v for n, v in given.items() if n in mine})
                exp = LearnedMasks(learns=(learn,), **base)
                if exp not in out:  # a setting axis its method lacks gives the same experiment again
                    out.append(exp)
        for exp in out:
            dataset = exp.data.dataset
            if dataset is not None and dataset not in get_arch(exp.arch).datasets:
                raise ConfigError(f"dataset: {dataset!r} does not fit {exp.arch}; allowed values: "
                                  f"{', '.join(get_arch(exp.arch).datasets)}")
        return out


def _unique_keys_loader():
    """A safe YAML loader that refuses a key given twice in one mapping (PyYAML keeps the last one
    silently, so ``criteria:`` written twice would run only the second list)."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            seen = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                if not isinstance(key, (str, int, float, bool, type(None))):
                    continue  # an unhashable key: the base loader names it
                if key in seen:
                    raise ConfigError(f"{key}: given twice (lines {seen[key]} and {line}); give each field once "
                                      f"(a list holds several values: {key}: [a, b])")
                seen[key] = line
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader


def _yaml_problem(exc) -> str:
    """PyYAML's report (several lines quoting the text) as the end of one line: where, then the problem."""
    def at(mark) -> str:
        return f"line {mark.line + 1} column {mark.column + 1}"

    mark, problem = getattr(exc, "problem_mark", None), getattr(exc, "problem", None)
    if problem is None:  # not a marked error (e.g. a character YAML does not allow): its text, on one line
        return f" is not valid YAML ({' '.join(str(exc).split())})"
    context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context:
        where = f" at {at(context_mark)}" if context_mark is not None else ""
        problem = f"{problem} ({context}{where})"
    return f", {at(mark)}: not valid YAML: {problem}" if mark is not None else f": not valid YAML: {problem}"


def load_grid(path) -> Grid:
    """Read and check the grid in YAML file ``path`` (errors name the file and the field; a field given
    twice is refused with both lines)."""
    import yaml

    path = Path(path)
    try:
        body = yaml.load(read_text(path, "grid", "YAML"), Loader=_unique_keys_loader())
    except yaml.YAMLError as exc:
        raise ConfigError(f"grid: {path}{_yaml_problem(exc)}") from None
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    try:
        return Grid.from_dict(body)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
