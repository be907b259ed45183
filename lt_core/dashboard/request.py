"""What the user asked for (:class:`RunRequest`) and the experiments it maps to (:class:`Job`: an
experiment record of :mod:`lt_core.experiments`, run by the controller through the one runner,
:func:`lt_core.runner.run_experiment`, with its progress).

A request is checked by building the engine's own configs from it: their :class:`lt_core.ConfigError`
names the field, the value and what is allowed, and :func:`plain_error` puts it in the words of
the dashboard's controls. Only what no config knows is checked here: the mode, the schedule
preset, and that the lists of seeds, criteria and weights are not empty.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

from lt_core import ConfigError, DataConfig, DataError, ModelConfig, PruneConfig, SupermaskConfig, TrainConfig
from lt_core.experiments import Experiment, LearnedMasks, Lottery, Supermasks
from lt_core.config import check_range
from lt_core.supermask import DEFAULT_METHOD, MASK_METHODS, method_config
from lt_core.schedule import dataset_name, learn_iterations, total_iterations
from lt_core.devices import resolve_device

from . import catalog, stored
from .series import SUPERMASK_WEIGHTS, SeriesSpec, lottery_hue, lottery_setting

MODES = {"lottery": "Lottery rounds", "oneshot": "One-shot supermask", "learned": "Learned supermask"}
SCHEDULES = {"quick": "Quick (FC: about a minute)", "paper": "Paper schedule", "custom": "Custom epochs"}

# the dashboard's name for each config field a request sets; a message about a whole config is
# about its schedule (e.g. both epochs and iterations given)
FIELD_NAMES = {"DataConfig.dataset": "Dataset", "ModelConfig.arch": "Network", "TrainConfig.device": "Device",
               "TrainConfig.seed": "Seed(s)", "TrainConfig.epochs": "Epochs", "TrainConfig.iterations": "Iterations",
               "TrainConfig.eval_every": "Evaluation interval", "PruneConfig.criterion": "Mask criteria",
               "PruneConfig.mask1": "Mask-1 policy", "PruneConfig.mask0": "Mask-0 policy",
               "PruneConfig.rounds": "Rounds", "SupermaskConfig.criteria": "Mask criteria",
               "SupermaskConfig.weights": "Supermask weights", "SupermaskConfig.powers": "Prune powers",
               "LearnConfig.weights": "Frozen weights", "LearnConfig.seed": "Seed(s)", "LearnConfig.epochs": "Epochs",
               "LearnConfig.iterations": "Iterations", "LearnConfig.eval_every": "Evaluation interval",
               "LearnConfig.device": "Device", "EdgePopupConfig.keep_fraction": "Keep fraction(s)"}
# the fields every mask method's config has, named as the learned mode's controls name them (a
# registered method's own config included: e.g. ``MyConfig.seed`` reads ``Seed(s)``)
METHOD_FIELD_NAMES = {"seed": "Seed(s)", "epochs": "Epochs", "iterations": "Iterations",
                      "eval_every": "Evaluation interval", "device": "Device", "weights": "Frozen weights",
                      "keep_fraction": "Keep fraction(s)"}
_FIELD_PREFIX = re.compile(r"^(\w+Config(?:\.\w+)?): ")


@dataclass(frozen=True)
class RunRequest:
    """The dashboard's choices. Lottery rounds race every combination of ``criteria``, ``mask1`` and
    ``mask0`` side by side. ``epochs`` applies to the custom schedule; ``iterations`` and
    ``eval_every`` (not shown as controls) replace it for very short runs, e.g. in tests."""

    arch: str = "fc"
    dataset: Optional[str] = None
    mode: str = "lottery"
    criteria: Tuple[str, ...] = ("large_final",)
    mask1: Tuple[str, ...] = ("rewind",)
    mask0: Tuple[str, ...] = ("zero",)
    rounds: int = 5
    schedule: str = "quick"
    epochs: Optional[int] = None
    iterations: Optional[int] = None
    eval_every: Optional[int] = None
    seeds: Tuple[int, ...] = (0,)
    device: str = "auto"
    supermask_weights: Tuple[str, ...] = ("init", "signed_constant")
    powers: Optional[Tuple[int, ...]] = None
    learned_weights: Tuple[str, ...] = ("init",)
    dwr: bool = False
    method: str = DEFAULT_METHOD  # the learned mode's mask family (a name in MASK_METHODS)
    keep_fractions: Tuple[float, ...] = (0.5,)  # a family with a keep_fraction setting: one run each
    download: bool = True  # fetch a missing dataset (needs the network)

    def __post_init__(self) -> None:
        # one name where a list is expected means that name ("negated", not "n", "e", ...)
        for name in ("criteria", "mask1", "mask0", "seeds", "supermask_weights", "learned_weights", "keep_fractions"):
            value = getattr(self, name)
            if isinstance(value, (str, int, float)):
                object.__setattr__(self, name, (value,))

    def replace(self, **changes) -> "RunRequest":
        return dataclasses.replace(self, **changes)


MAX_VALUES = 16  # seeds or keep fractions at once


def _parse_list(text: str, control: str, read: Callable[[str], List], none: str, plural: str) -> tuple:
    """The distinct values of the comma list ``text`` (``;`` and spaces separate too), in the order given;
    ``read(part)`` gives a part's values (or raises the control's ConfigError). At least one value
    (``none``: what to give instead of none), at most :data:`MAX_VALUES` (``plural``: what they are)."""
    out: List = []
    for part in str(text).replace(";", ",").replace(" ", ",").split(","):
        part = part.strip()
        for v in read(part) if part else ():
            if v not in out:
                out.append(v)
    if not out:
        raise ConfigError(f"{control}: give at least one {none}")
    if len(out) > MAX_VALUES:
        raise ConfigError(f"{control}: {len(out)} {plural} given; at most {MAX_VALUES} at once")
    return tuple(out)


def parse_seeds(text: str) -> Tuple[int, ...]:
    """``"0"``, ``"0, 1, 2"`` or ``"0-3"`` (inclusive) -> a tuple of distinct non-negative ints."""
    def read(part: str) -> List[int]:
        try:
            if "-" in part[1:]:
                lo, hi = part.split("-", 1)
                values = list(range(int(lo), int(hi) + 1))
            else:
                values = [int(part)]
        except ValueError:
            raise ConfigError(f"Seed(s): {text!r} is not a list of integers; write e.g. 0 or 0, 1, 2 or 0-3") from None
        for v in values:
            if v < 0:
                raise ConfigError(f"Seed(s): {v} is negative; seeds are integers >= 0")
        return values

    return _parse_list(text, "Seed(s)", read, "seed, e.g. 0 or 0, 1, 2", "seeds")


def parse_fractions(text: str) -> Tuple[float, ...]:
    """``"0.05, 0.1, 0.3"`` -> a tuple of distinct numbers, in the order given. Only the text is
    checked here: the range is the method config's to check (its message names it)."""
    def read(part: str) -> List[float]:
        try:
            return [float(part)]
        except ValueError:
            raise ConfigError(f"Keep fraction(s): {text!r} is not a list of numbers; write e.g. 0.05, 0.1, 0.3, "
                              "0.5") from None

    return _parse_list(text, "Keep fraction(s)", read, "fraction of weights to keep, e.g. 0.1 or 0.05, 0.1, 0.5",
                       "fractions")


def method_fields(method: str) -> Tuple[str, ...]:
    """The setting names of mask family ``method``'s config."""
    return MASK_METHODS[method].field_names


def method_uses(method: str, control: str) -> bool:
    """Whether the learned mode's ``control`` applies to family ``method``: ``keep`` when its config
    has ``keep_fraction``, ``dwr`` when it has ``dwr``, ``weights`` (the initial weights / signed
    constants boxes) when it has ``weights`` and takes both of those values; any family takes the
    seeds, schedule and device."""
    fields = method_fields(method)
    if control == "keep":
        return "keep_fraction" in fields
    if control == "dwr":
        return "dwr" in fields
    if control == "weights":
        if "weights" not in fields:
            return False
        try:
            for w in SUPERMASK_WEIGHTS:
                method_config(method, weights=w).validate()
        except (ConfigError, ValueError, TypeError):
            return False
        return True
    return True


def plain_error(exc: BaseException) -> str:
    """An engine error in the dashboard's words: ``TrainConfig.epochs: 0 is out of range [1, 100000]``
    reads ``Epochs: 0 is out of range [1, 100000]``; other messages are kept as they are."""
    text = str(exc) or type(exc).__name__
    m = _FIELD_PREFIX.match(text)
    if m is None:
        return text
    owner, _, field_name = m.group(1).partition(".")
    if not field_name:
        name = "Schedule"
    elif m.group(1) in FIELD_NAMES:
        name = FIELD_NAMES[m.group(1)]
    elif field_name in METHOD_FIELD_NAMES and any(meth.config.__name__ == owner for meth in MASK_METHODS.values()):
        name = METHOD_FIELD_NAMES[field_name]
    else:
        name = m.group(1)
    return f"{name}: {text[m.end():]}"


def describe_error(exc: BaseException) -> str:
    """A one-paragraph message for the page."""
    if isinstance(exc, DataError):
        return f"Data problem. {exc}"
    if isinstance(exc, ValueError):  # ConfigError, and the engine's other setting errors
        return f"Invalid setting. {plain_error(exc)}"
    return f"{type(exc).__name__}: {str(exc) or type(exc).__name__}"


def _choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"{name}: unknown value {value!r}; allowed values: {', '.join(map(str, allowed))}")


def _nonempty(name: str, values, what: str) -> None:
    if not values:
        raise ConfigError(f"{name}: {what}")


def schedule_fields(request: RunRequest, learned: bool = False) -> dict:
    """The TrainConfig (or, for learned masks, LearnConfig) fields of the request's schedule. The
    page never evaluates the training split (nothing it shows needs it), so a paper-schedule run
    here is the very run ``reproduce --preset paper`` stores, and the other way round."""
    _choice("Schedule", request.schedule, SCHEDULES)
    if request.schedule == "quick":
        return {"epochs": catalog.quick_learn_epochs(request.arch)} if learned else catalog.quick_train(request.arch)
    if request.schedule == "paper":
        return {} if learned else {"eval_train": False}
    out: dict = {} if learned else {"eval_train": False}
    if request.iterations is not None:
        out["iterations"] = request.iterations
    elif request.epochs is None:
        raise ConfigError("Epochs: the custom schedule needs a number of epochs (an integer >= 1)")
    else:
        out["epochs"] = request.epochs
    if request.eval_every is not None:
        out["eval_every"] = request.eval_every
    return out


# -- jobs -----------------------------------------------------------------------------------------

@dataclass
class Job:
    """One experiment of a run request, with its progress.

    Progress is kept per part (a series of a stacked lottery job, else ``"main"``) in units of
    training iterations; a one-shot supermask point counts as ``point_units`` iterations.
    """

    key: str
    label: str
    kind: str  # "lottery" (dense trunk + stacked branches) | "oneshot" | "learned"
    seed: int
    experiment: Experiment  # what the runner runs: one seed's lottery stack or one-shot points, a learned stack
    iterations: int  # per round (learned: in total)
    rounds: int = 0  # pruning rounds of a lottery job
    points: int = 0  # supermask points of a one-shot job
    series: Dict[str, SeriesSpec] = field(default_factory=dict)  # the series shown from the start, by key
    part_totals: Dict[str, float] = field(default_factory=dict)
    parts: Dict[str, float] = field(default_factory=dict)
    points_done: int = 0
    status: str = "waiting"  # waiting | running | done | stopped | error
    round: Optional[int] = None
    iteration: int = 0
    error: Optional[str] = None
    steps: int = 0  # steps since the last evaluation (learned masks)
    runs: Tuple[str, ...] = ()  # the run directories it fills (those of its series, when it has any)

    def __post_init__(self) -> None:
        if not self.runs:
            self.runs = tuple(spec.run for spec in self.series.values())
        if not self.part_totals:
            total = self.iterations + self.points * self.point_units if self.kind == "oneshot" else self.iterations
            self.part_totals = {"main": max(1.0, float(total))}

    @property
    def total(self) -> float:
        return sum(self.part_totals.values())

    @property
    def done(self) -> float:
        return sum(min(self.parts.get(k, 0.0), t) for k, t in self.part_totals.items())

    def finish(self) -> None:
        self.parts = dict(self.part_totals)

    @property
    def point_units(self) -> float:
        return max(1.0, self.iterations / max(1, 2 * self.points))

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total)

    def units(self, r: int, iteration: int) -> float:
        """Progress units of ``iteration`` in round ``r``: a lottery branch's rounds follow each other,
        a one-shot job's round 0 is its dense training."""
        if self.kind == "lottery":
            return iteration if r == 0 else (r - 1) * self.iterations + iteration
        if self.kind == "oneshot":
            return min(iteration, self.iterations) if r == 0 else self.iterations
        return iteration

    def position(self) -> str:
        if self.kind == "learned":
            return f"iteration {min(self.iterations, self.iteration + self.steps)}/{self.iterations}"
        if self.kind == "oneshot" and self.points_done:
            return f"supermask point {self.points_done}/{self.points}"
        parts = []
        if self.kind == "lottery" and self.round is not None:
            parts.append(f"round {self.round}/{self.rounds}")
        elif self.round is not None:
            parts.append(f"round {self.round}")
        parts.append(f"iteration {self.iteration}/{self.iterations}")
        return ", ".join(parts)


def lottery_series_key(seed: int, prune: Optional[PruneConfig] = None) -> str:
    """The series of a lottery job's dense trunk (no prune config) or of its branch for ``prune``."""
    if prune is None:
        return f"dense/s{seed}"
    return f"lottery/{prune.criterion}/{prune.mask1}/{prune.mask0}/s{seed}"


def _lottery_jobs(request: RunRequest, data: DataConfig, model: ModelConfig) -> List[Job]:
    prunes = PruneConfig.grid(request.criteria, request.mask1, request.mask0, rounds=request.rounds)
    jobs = []
    for seed in request.seeds:
        train = TrainConfig(seed=seed, device=request.device, **schedule_fields(request))
        its = total_iterations(data, model, train)
        trunk = lottery_series_key(seed)
        series = {trunk: SeriesSpec(f"dense (round 0) · seed {seed}", "dense", "dense (round 0)", "dense",
                                    stored.dense_run_name(data, model, train))}
        totals = {trunk: float(its)}
        for prune in prunes:
            key = lottery_series_key(seed, prune)
            setting = lottery_setting(prune.criterion, prune.mask1, prune.mask0)
            series[key] = SeriesSpec(f"{setting} · seed {seed}", "lottery", setting,
                                     lottery_hue(prune.criterion, prune.mask1, prune.mask0),
                                     stored.lottery_run_name(data, model, train, prune))
            totals[key] = float(max(1, prune.rounds * its))

        # the settings race side by side: each round trains every branch in one stack
        experiment = Lottery(model.arch, train, prunes, data=data)
        label = (f"{len(prunes)} settings" if len(prunes) > 1 else prunes[0].criterion) + f" · seed {seed}"
        jobs.append(Job(f"lottery/s{seed}", label, "lottery", seed, experiment, its, rounds=request.rounds,
                        series=series, part_totals=totals))
    return jobs


def _oneshot_jobs(request: RunRequest, data: DataConfig, model: ModelConfig) -> List[Job]:
    powers = tuple(request.powers) if request.powers is not None else tuple(range(25))
    sweep = SupermaskConfig(criteria=tuple(request.criteria), weights=tuple(request.supermask_weights), powers=powers)
    jobs = []
    for seed in request.seeds:
        train = TrainConfig(seed=seed, device=request.device, **schedule_fields(request))
        its = total_iterations(data, model, train)
        key, label = f"oneshot/s{seed}", f"one-shot · seed {seed}"
        n_points = len(sweep.criteria) * len(sweep.weights) * len(sweep.powers)
        series = {key: SeriesSpec(label, "oneshot", "one-shot", "oneshot",
                                  stored.supermask_run_name(data, model, train))}
        jobs.append(Job(key, label, "oneshot", seed, Supermasks(model.arch, train, sweep, data=data), its,
                        points=n_points, series=series))
    return jobs


def learned_configs(request: RunRequest) -> list:
    """The configs of the learned mode's runs: one per seed, frozen-weights kind (where the family
    takes the weights boxes) and keep fraction (where it has one), of the chosen family, built by
    :func:`lt_core.supermask.method_config` with the page's schedule; every other setting at the
    family config's default. Each config is validated here, so a bad value is refused before Run
    in the config's own words."""
    _choice("Mask family", request.method, list(MASK_METHODS))
    method = request.method
    extra = schedule_fields(request, learned=True)
    weights: Tuple[Optional[str], ...] = (None,)
    if method_uses(method, "weights"):
        _nonempty("Frozen weights", request.learned_weights, "select initial weights, signed constants or both")
        weights = tuple(request.learned_weights)
    keeps: Tuple[Optional[float], ...] = (None,)
    if method_uses(method, "keep"):
        _nonempty("Keep fraction(s)", request.keep_fractions, "give at least one fraction of weights to keep")
        keeps = tuple(request.keep_fractions)
    out = []
    for seed in request.seeds:
        for w in weights:
            for k in keeps:
                settings = dict(seed=seed, device=request.device, **extra)
                if w is not None:
                    settings["weights"] = w
                if k is not None:
                    settings["keep_fraction"] = k
                if method_uses(method, "dwr"):
                    settings["dwr"] = bool(request.dwr)
                config = method_config(method, **settings)
                config.validate()
                out.append(config)
    return out


def learned_label(request: RunRequest) -> str:
    """The learned job's name in the progress line."""
    if request.method == DEFAULT_METHOD:
        return "learned · " + ", ".join(SUPERMASK_WEIGHTS[w] for w in request.learned_weights) + \
            (" · DWR" if request.dwr else "")
    text = f"learned · {request.method}"
    if method_uses(request.method, "keep"):
        text += " · keep " + ", ".join(f"{100 * k:g}%" for k in request.keep_fractions)
    if method_uses(request.method, "weights"):
        text += " · " + ", ".join(SUPERMASK_WEIGHTS[w] for w in request.learned_weights)
    return text


def _learned_jobs(request: RunRequest, data: DataConfig, model: ModelConfig) -> List[Job]:
    # every selected variant, keep fraction and seed of the family trains in one stack
    learns = learned_configs(request)
    its = learn_iterations(data, model, learns[0])
    experiment = LearnedMasks(model.arch, learns, data=data)
    job = Job("learned", learned_label(request), "learned", request.seeds[0], experiment, its)
    job.runs = tuple(stored.learnmask_run_name(data, model, learn) for learn in learns)
    return [job]


def plan_jobs(request: RunRequest) -> List[Job]:
    """Check ``request`` and turn it into experiments. Raises :class:`lt_core.ConfigError` (or the
    engine's ValueError) naming the field; :func:`describe_error` words it for the page."""
    _choice("Mode", request.mode, MODES)
    _nonempty("Seed(s)", request.seeds, "give at least one seed, e.g. 0 or 0, 1, 2")
    if request.mode == "lottery":  # one PruneConfig per combination: no config sees the whole lists
        _nonempty("Mask criteria", request.criteria, "select at least one criterion")
        _nonempty("Mask-1 policy", request.mask1, "select at least one policy")
        _nonempty("Mask-0 policy", request.mask0, "select at least one policy")
        # round 0 is the dense network: a lottery needs at least one pruning round
        check_range("PruneConfig", "rounds", request.rounds, 1, 200, integer=True)
    data = DataConfig(dataset=request.dataset, download=bool(request.download))
    model = ModelConfig(arch=request.arch)
    dataset_name(data, model)  # the network fits the dataset
    plan = {"lottery": _lottery_jobs, "oneshot": _oneshot_jobs, "learned": _learned_jobs}[request.mode]
    jobs = plan(request, data, model)
    resolve_device(request.device)  # a valid choice (checked by the configs) that exists here
    return jobs
