"""Mask-learning methods: the extension point and the machinery the families share.

A *mask-learning method* learns a mask over the frozen weights of an untrained network. Each is
registered by name in :data:`MASK_METHODS` with :func:`register_mask_method` (exported as
``lt_core.register_mask_method``): its settings (a frozen config dataclass with ``validate()``) and
its learner (the class that trains K stacked runs of it). The built-in families:

* ``zhou`` (the default): Zhou et al. 2019's Bernoulli-sampled masks, :class:`~.learned.LearnConfig`
  and :class:`~.learned.MaskLearner` (module :mod:`.learned`);
* ``edge_popup``: Ramanujan et al. 2020's top-k% scores, :mod:`.edge_popup`;
* ``signed``: Koster et al. 2022's signed supermasks (keep, hide, invert), :mod:`.signed`.

Every method runs through :func:`~.learning.learn_supermasks` (``lt_core.learn_supermasks``), which
stores each run as a ``learnmask-<arch>-<hash>`` folder (``config.json``, ``scores.pt``,
``metrics.csv``, ``summary.json``) and reuses finished ones. A run's identity (its hash) holds the
method's name and its settings that differ from their defaults; the default method's name does not
enter it, so ``zhou`` runs keep the folders they always had. Stacked runs (one learner, a leading
run dimension on every tensor) must be of one method.

A method of one's own: subclass :class:`MaskMethodConfig` (its fields: at least ``seed``,
``batch_size``, ``epochs``, ``iterations``, ``eval_every``, ``device``) and :class:`ScoreMaskLearner`
(at least :meth:`ScoreMaskLearner.mask`), then ``register_mask_method("name", MyConfig, MyLearner,
"one line")``; ``learn_supermask(learn=MyConfig(...))`` and ``learn-mask --plugin my_module.py
--method name`` then work as for the built-ins.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Dict, List, Optional, Sequence, Tuple

import torch

from ..archs import Arch, Layer
from ..backends import choose_mask_backend, evaluate
from ..batches import BatchOrder
from ..config import Config, check_choice, check_config, check_length, check_range
from ..errors import ConfigError
from ..models import init_weights
from ..registry import Registry
from ..seeding import derive_seed
from .learned import LearnConfig, LearnResult, MaskLearner

Tensor = torch.Tensor

DEFAULT_METHOD = "zhou"


@dataclass(frozen=True)
class MaskMethod:
    """A registered mask-learning method: its settings' class, its learner, a one-line description."""

    name: str
    config: type
    learner: type
    description: str = ""

    @property
    def field_names(self) -> Tuple[str, ...]:
        """The names of its config's fields (its settings, seed and schedule included)."""
        return tuple(f.name for f in dataclasses.fields(self.config))


#: name -> :class:`MaskMethod`, in registration order (``zhou`` first).
MASK_METHODS: Registry[MaskMethod] = Registry("mask method", "method")


@dataclass(frozen=True, repr=False)
class MaskMethodConfig(Config):
    """Base of the settings of every method but the default one: its run identity (the hash of its
    store folder) holds the method's name beside its non-default settings, and its ``revision``
    where that is above 1.

    ``revision``: the revision of the method's training rule. A run's identity holds only the
    settings that differ from the defaults, so a changed default or rule would find, and reuse, runs
    made under the old one: raise ``revision`` with every such change (and say what changed in the
    config's docstring). Runs of an earlier revision get other folders and are listed as outdated
    (:attr:`lt_core.store.Run.outdated`)."""

    revision: ClassVar[int] = 1

    def non_default(self, *, for_hash: bool = False) -> dict:
        out = super().non_default(for_hash=for_hash)
        return {**method_record(self), **out} if for_hash else out

    def check_training(self) -> None:
        """Check the settings every built-in method's training has (seed, SGD's lr, momentum and
        weight decay, batch size, length, evaluation interval, device), each error one line naming the
        field, the value and what is allowed."""
        owner = type(self).__name__
        check_range(owner, "seed", self.seed, 0, 2**63 - 1, integer=True)
        check_range(owner, "lr", self.lr, 0, 1e6, lo_open=True)
        check_range(owner, "momentum", self.momentum, 0, 1, hi_open=True)
        check_range(owner, "weight_decay", self.weight_decay, 0, 1, hi_open=True)
        check_range(owner, "batch_size", self.batch_size, 1, 100000, integer=True)
        check_range(owner, "epochs", self.epochs, 1, 100000, integer=True)
        check_length(owner, None, self.iterations)
        if self.eval_every is not None:
            check_range(owner, "eval_every", self.eval_every, 1, 10**9, integer=True)
        check_choice(owner, "device", self.device, ("auto", "cpu", "cuda"))


def register_mask_method(name: str, config: type, learner: type, description: str = "") -> MaskMethod:
    """Register a mask-learning method under ``name``.

    ``config``: a frozen :class:`MaskMethodConfig` subclass (its defaults are the method's; its
    ``validate()`` names field, value and allowed range in one line). ``learner``: a class built as
    ``learner(arch, data, configs, labels, iterations=..., on_event=..., stop=..., checkpoint=...,
    progress=...)`` whose ``run()`` returns one :class:`~.learned.LearnResult` per config and whose
    ``scores`` (``{layer: (K, *shape)}``) and ``device`` are stored; :class:`ScoreMaskLearner` is
    the base to subclass. One config class belongs to one method.
    """
    if not (isinstance(config, type) and issubclass(config, Config) and dataclasses.is_dataclass(config)):
        raise ConfigError(f"method: {name!r}: config must be a Config dataclass (subclass MaskMethodConfig), "
                          f"got {config!r}")
    if config is not LearnConfig and not issubclass(config, MaskMethodConfig):
        raise ConfigError(f"method: {name!r}: config {config.__name__} must subclass "
                          "lt_core.supermask.MaskMethodConfig (its name then enters the run's identity)")
    if not isinstance(learner, type) or not callable(getattr(learner, "run", None)):
        raise ConfigError(f"method: {name!r}: learner must be a class with a run() method "
                          f"(subclass lt_core.supermask.ScoreMaskLearner), got {learner!r}")
    for other in MASK_METHODS.values():
        if other.config is config and other.name != name:
            raise ConfigError(f"method: {name!r}: config {config.__name__} is already the config of method "
                              f"{other.name!r}; give each method its own config class")
    return MASK_METHODS.add(name, MaskMethod(name, config, learner, description))


def method_of(config) -> MaskMethod:
    """The registered method whose settings ``config`` is (an unregistered config class is one
    :class:`ConfigError` line naming the registered methods)."""
    for method in MASK_METHODS.values():
        if type(config) is method.config:
            return method
    raise ConfigError(f"method: {type(config).__name__} is not the config of a registered mask method; "
                      f"registered: {', '.join(f'{m.name} ({m.config.__name__})' for m in MASK_METHODS.values())}")


def learner_for(owner: str, learns: Sequence) -> type:
    """The learner class of stacked configs ``learns`` (every one of one registered method)."""
    methods = []
    for learn in learns:
        if not isinstance(learn, Config):
            check_config(owner, "learn", learn, LearnConfig)  # the default method's message
        methods.append(method_of(learn))
    if len({m.name for m in methods}) != 1:
        raise ValueError(f"{owner}: stacked runs must be of one mask method, got "
                         f"{', '.join(sorted({m.name for m in methods}))}")
    return methods[0].learner


def method_record(config) -> dict:
    """What ``config.json`` of a run (and its identity) adds for its method: nothing for the default
    one (its files stay as they were), ``{"method": name}`` for the others, with ``"revision"`` where
    the method's :attr:`MaskMethodConfig.revision` is above 1."""
    name = method_of(config).name
    if name == DEFAULT_METHOD:
        return {}
    revision = getattr(type(config), "revision", 1)
    return {"method": name, **({"revision": revision} if revision > 1 else {})}


def method_config(method: str, **settings) -> Config:
    """The settings of ``method`` from keyword arguments (the CLI's options); a setting the method
    does not have is one :class:`ConfigError` line naming it and the method's settings."""
    cls = MASK_METHODS[method].config
    names = [f.name for f in dataclasses.fields(cls)]
    for key in settings:
        if key not in names:
            raise ConfigError(f"{key}: not a setting of mask method {method!r}; its settings: {', '.join(names)}")
    return cls(**settings)


# -- the shared learner -----------------------------------------------------------------------------

@dataclass
class MethodLearnResult(LearnResult):
    """A learned mask of a registered method: ``expected_keep_fraction`` is the exact fraction of
    weights the final mask keeps (nonzero), ``extra`` the method's own numbers (summary fields)."""

    method: str = DEFAULT_METHOD
    extra: Dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {**super().to_json(), "method": self.method, "keep_fraction": self.expected_keep_fraction,
                **self.extra}


class _StraightThrough(torch.autograd.Function):
    @staticmethod
    def forward(ctx, values, mask_of, setting):
        return mask_of(values, setting)

    @staticmethod
    def backward(ctx, grad):
        return grad, None, None


def straight_through(mask_of, values: Tensor, setting) -> Tensor:
    """``mask_of(values, setting)`` in the forward pass, the gradient passed straight through to
    ``values`` in the backward pass (the estimator every family here uses; a method of one's own may too)."""
    return _StraightThrough.apply(values, mask_of, setting)


def kept_count(numel: int, keep_fraction: float) -> int:
    """How many of ``numel`` weights a top-``keep_fraction`` selection keeps: all but
    ``floor((1 - keep_fraction) * numel)`` (the reference code's count; a 1e-9 tolerance keeps
    ``0.7 * 10`` from rounding down to 6)."""
    return numel - int(math.floor((1.0 - keep_fraction) * numel + 1e-9))


def uniform_scores(shape, bound: float, gen: torch.Generator) -> Tensor:
    """Scores drawn uniformly from ``[-bound, bound)`` with ``gen``."""
    return (torch.rand(shape, generator=gen) * 2.0 - 1.0) * bound


class ScoreMaskLearner(MaskLearner):
    """Trains K stacked runs of a deterministic score-based mask (one real score per weight, K the
    leading dimension of every tensor), with SGD on the scores and the straight-through gradient the
    method's :meth:`mask` defines. Weights and biases are frozen; biases are zero (neither reference
    uses them), and the training step leaves them out of its forward pass (the same logits, fewer
    operations). Evaluation uses the one mask the scores define (no sampling).

    Subclasses define :meth:`mask` and, where the method says so, :meth:`frozen_weights`,
    :meth:`initial_scores`, :meth:`make_optimizer`, :meth:`learning_rate`, :meth:`before_update`
    and :meth:`extra`. ``shared`` names the config fields stacked runs must share.
    """

    shared: Tuple[str, ...] = ("lr", "momentum", "batch_size")
    desc = "learned mask"
    eval_at_start = False

    def __init__(self, arch: Arch, data, configs: List[Config], labels: List[str], *, iterations: int,
                 on_event=None, stop=None, checkpoint: Optional[Path] = None, checkpoint_seconds: float = 120.0,
                 progress: bool = False, backend: Optional[str] = None, **extra) -> None:
        first = configs[0]
        for c in configs[1:]:
            for name in self.shared:
                if getattr(c, name) != getattr(first, name):
                    raise ValueError(f"{type(self).__name__}: stacked runs must share {type(c).__name__}.{name}")
        self.method = method_of(first).name
        self.arch, self.data, self.configs, self.labels = arch, data, configs, labels
        self.iterations, self.on_event, self.stop = iterations, on_event, stop
        self.checkpoint, self.checkpoint_seconds, self.progress = checkpoint, checkpoint_seconds, progress
        for key, value in extra.items():  # options the store's driver may pass to every learner
            setattr(self, key, value)
        dev = data.train.x.device
        self.device = dev
        self.batch = BatchOrder(data.train, [c.seed for c in configs], first.batch_size,
                                f"{type(first).__name__}.batch_size")
        self.spe = self.batch.spe
        self.eval_every = first.eval_every or self.spe
        frozen = [self.frozen_weights(c, init_weights(arch, c.seed)) for c in configs]
        self.w = {n: torch.stack([w[n] for w in frozen]).to(dev) for n in arch.layer_names}
        self.b = {l.name: torch.zeros(len(configs), l.shape[0], device=dev) for l in arch.layers}
        scores = {}
        for layer in arch.layers:
            per_run = [self.initial_scores(c, layer, torch.Generator().manual_seed(
                derive_seed(c.seed, f"{self.method}-scores", layer.name))) for c in configs]
            scores[layer.name] = torch.stack(per_run).to(dev).requires_grad_()
        self.scores = scores
        self.opt = self.make_optimizer(list(self.scores.values()), first)
        self.gens: List[torch.Generator] = []  # nothing is sampled
        self.seeds = [c.seed for c in configs]
        self.evals: List[List[dict]] = [[] for _ in configs]
        self.start_iteration = 0
        self._correct = torch.zeros(len(configs), device=dev)
        self._seen = 0
        self.dwr = torch.zeros(len(configs), dtype=torch.bool, device=dev)
        self.mask_backend = choose_mask_backend(arch, dev, self.method, backend)(self)

    # -- what a method defines -------------------------------------------------------------------
    def frozen_weights(self, config, init: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """One run's frozen weights from the network's initial ones (default: those)."""
        return init

    def initial_scores(self, config, layer: Layer, gen: torch.Generator) -> Tensor:
        """One run's initial scores of ``layer`` (default: uniform in +-1/sqrt(fan_in))."""
        return uniform_scores(layer.shape, 1.0 / math.sqrt(layer.fans[0]), gen)

    def mask(self, name: str, scores: Tensor) -> Tensor:
        """The mask values of layer ``name`` for the stacked ``scores`` (K, *shape), differentiable
        in ``scores`` the way the method's straight-through estimator says."""
        raise NotImplementedError

    def make_optimizer(self, params: List[Tensor], config) -> torch.optim.Optimizer:
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum)

    def extra(self, i: int) -> Dict[str, float]:
        """Run ``i``'s own summary numbers (besides accuracy and keep fraction)."""
        return {}

    # -- shared ------------------------------------------------------------------------------------
    def masks(self) -> Dict[str, Tensor]:
        """Every layer's mask values now (no gradient)."""
        with torch.no_grad():
            return {n: self.mask(n, s).detach() for n, s in self.scores.items()}

    def effective(self) -> Dict[str, Tensor]:
        """The masked weights of every run, with the gradient path to the scores."""
        return {n: self.w[n] * self.mask(n, s) for n, s in self.scores.items()}

    def train_weights(self) -> Dict[str, Tensor]:
        return self.effective()

    train_biases = None  # the biases are zero: the training step leaves them out

    def sampled_weights(self, gens) -> Dict[str, Tensor]:
        """The masked weights of every run (nothing is sampled: ``gens`` is unused)."""
        return {n: self.w[n] * m for n, m in self.masks().items()}

    @property
    def epochs(self) -> int:
        """The run's length in (possibly partial) epochs, for per-epoch schedules."""
        return max(1, math.ceil(self.iterations / self.spe))

    def expected_keep(self) -> Tuple[List[float], List[Dict[str, float]]]:
        """Per run, the fraction of weights the mask keeps (nonzero), overall and per layer."""
        k = len(self.configs)
        overall = torch.zeros(k, dtype=torch.float64)
        layers = [dict() for _ in self.configs]
        for n, m in self.masks().items():
            nz = (m != 0).reshape(k, -1).sum(1, dtype=torch.float64).cpu()
            overall += nz
            for i in range(k):
                layers[i][n] = float(nz[i]) / m[0].numel()
        return (overall / self.arch.num_weights).tolist(), layers

    @torch.no_grad()
    def test_accuracy(self, samples: int, tag) -> List[List[float]]:
        """Per run, the test accuracy of its mask (one value: the mask is not sampled)."""
        _, acc = evaluate(self.arch, self.mask_backend.sampled_weights(None), self.b, self.data.test)
        return [[a] for a in acc.tolist()]

    def run(self) -> List[LearnResult]:
        self.loop()
        keep, layers = self.expected_keep()
        accs = self.test_accuracy(1, "final")
        return [MethodLearnResult(Path("."), accs[i][0], accs[i], keep[i], layers[i], self.iterations, self.evals[i],
                                  method=self.method, extra=self.extra(i)) for i in range(len(self.configs))]


register_mask_method(DEFAULT_METHOD, LearnConfig, MaskLearner,
                     "Zhou et al. 2019: Bernoulli-sampled masks, straight-through gradient (optional DWR)")
