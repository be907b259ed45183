"""How long a reproduction will take on this machine: the work still to do, timed at measured rates.

:func:`estimate` takes the experiments the notebooks will run (:func:`lt_core.paper.questions.experiments`),
asks each for the work the results store does not hold yet (its ``work_left``: work items of
:mod:`lt_core.experiments`, whatever the kind of experiment), and prices it with rates measured here and
now, in this process, on the device the runs will use (a few seconds of real steps of the engine,
not constants):

* a training step of one run and of the largest stack of all the notebooks' work (measured once;
  a stack of K runs priced linearly between them), dense and, for the largest stack, at a pruned
  round (random masks keeping 0.8^12 of the hidden weights); a round k is priced between the two
  (rounds past 12 at the pruned rate: the step's cost follows the kept weights);
* a validation-split evaluation of that stack; a round evaluates it at every point (every
  ``eval_every`` iterations, the first and the last) and the test split, twice the images, at about
  :data:`TEST_POINTS_PER_ROUND` of them (new validation minima and the end; measured on FC);
* a learned-mask step of a stack of K variants and one of its evaluation points, per mask-learning
  method (Zhou's, edge-popup, signed, a registered one): each method's runs are priced at the rate
  of its own learner, measured the same way (the default settings of the method, K of them stacked);
* a one-shot supermask point: a network evaluated on the training and the test split (13 times the
  validation split's images).

The result is an :class:`Estimate` per notebook; shared work (the dense trunks every notebook
builds on, Table 1's runs that RQ4 and RQ5 made) is priced once, where it first runs. Architectures
whose dataset is not on this machine are left out (their notebooks report "no data").
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Tuple

import torch

from ..archs import get_arch
from ..backends import RunSpec
from ..config import ModelConfig
from ..data import load_dataset
from ..devices import resolve_device
from ..errors import ConfigError
from ..experiments import Experiment, LearnedStack, SupermaskPoints, TrainRound, WorkItem
from ..models import full_masks, init_weights, zero_biases
from ..schedule import dataset_name
from ..supermask.methods import DEFAULT_METHOD, MASK_METHODS

TEST_POINTS_PER_ROUND = 45  # test-split evaluations of a run in a paper-schedule round, eval_test="best"
PRUNED_SAMPLE_ROUND = 12
MEASURE_STEPS = 40
WARM_UP_CALLS = 16  # the C kernel times each way of sharing the threads over its first 16 calls


@dataclass
class Work:
    """What is left to run, in the units the rates price."""

    train_steps: Dict[Tuple[str, int, int], int] = field(default_factory=dict)  # (arch, K, round) -> steps
    val_evals: Dict[Tuple[str, int, int], int] = field(default_factory=dict)  # (arch, K, round) -> points
    learn_steps: Dict[Tuple[str, str, int], int] = field(default_factory=dict)  # (arch, method, K) -> steps
    learn_evals: Dict[Tuple[str, str, int], int] = field(default_factory=dict)
    supermask_points: Dict[str, int] = field(default_factory=dict)  # arch -> points

    def empty(self) -> bool:
        return not any((self.train_steps, self.learn_steps, self.supermask_points))


def _add(d: dict, key, n: int) -> None:
    if n:
        d[key] = d.get(key, 0) + n


@functools.singledispatch
def _price(item: WorkItem, work: Work, n: int) -> None:
    """Add ``n`` of ``item``'s parts (runs of its stack, points) to ``work``, in the units the rates price."""
    raise TypeError(f"the estimate has no rate for work of type {type(item).__name__}")


@_price.register(TrainRound)
def _(item: TrainRound, work: Work, n: int) -> None:
    every = item.eval_every
    points = item.iterations // every + 1 + (item.iterations % every != 0)  # 0, every eval_every, the end
    _add(work.train_steps, (item.arch, n, item.round), item.iterations)
    # the test split has twice the validation split's images
    _add(work.val_evals, (item.arch, n, item.round), points + 2 * min(points, TEST_POINTS_PER_ROUND))


@_price.register(LearnedStack)
def _(item: LearnedStack, work: Work, n: int) -> None:
    _add(work.learn_steps, (item.arch, item.method, n), item.iterations)
    _add(work.learn_evals, (item.arch, item.method, n), item.evaluations)


@_price.register(SupermaskPoints)
def _(item: SupermaskPoints, work: Work, n: int) -> None:
    _add(work.supermask_points, item.arch, n)


def work_to_do(experiments: Sequence[Experiment], root, seen: set) -> Work:
    """The work of ``experiments`` that the results store ``root`` does not hold yet (each experiment's
    ``work_left``); ``seen`` collects the parts already priced (a run's round, a learned mask, a one-shot
    point), so that work shared between notebooks counts once: an item is priced as the stack of its
    parts not seen before."""
    work = Work()
    for exp in experiments:
        for item in exp.work_left(root):
            fresh = 0
            for part in item.parts:
                if part not in seen:
                    seen.add(part)
                    fresh += 1
            if fresh:
                _price(item, work, fresh)
    return work


def _model(arch: str) -> ModelConfig:
    return ModelConfig(arch=arch)


# -- measured rates -----------------------------------------------------------------------------------

def _timed(fn, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def _pruned_masks(arch, i: int, k: int) -> Dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(1000 + i)
    last = arch.layers[-1].name
    return {l.name: (torch.rand(l.shape, generator=gen) < (0.9 if l.name == last else 0.8) ** k).float()
            for l in arch.layers}


class Rates:
    """Seconds per unit of work, measured on first use and kept (one measurement per stack size)."""

    def __init__(self, device: str = "auto", data_dir=None) -> None:
        self.device = resolve_device(device)
        self.data_dir = data_dir
        self._data: dict = {}
        self._cache: dict = {}

    def data(self, arch: str):
        name = get_arch(arch).dataset
        if name not in self._data:
            self._data[name] = load_dataset(name, data_dir=self.data_dir, download=False, device=str(self.device))
        return self._data[name]

    def train(self, arch: str, runs: int, k: int) -> Tuple[float, float]:
        """Seconds per training step and per validation evaluation of a ``runs``-stack at round ``k``
        (``k`` 0 or :data:`PRUNED_SAMPLE_ROUND`)."""
        key = ("train", arch, runs, k)
        if key not in self._cache:
            from ..train import Trainer

            a = get_arch(arch)
            specs = [RunSpec(f"r{i}", init_weights(a, i), zero_biases(a),
                             full_masks(a) if k == 0 else _pruned_masks(a, i, k), seed=0) for i in range(runs)]
            trainer = Trainer(a, self.data(arch), specs, lr=a.lr, batch_size=60, iterations=10 ** 6,
                              eval_every=100, eval_train=False, eval_test="best")
            it = [0]

            def steps(n):
                end = it[0] + n
                while it[0] < end:
                    m = min(trainer.max_steps(it[0]), end - it[0])
                    trainer.steps(it[0], m)
                    it[0] += m

            for _ in range(WARM_UP_CALLS):  # past the first calls (they time ways of sharing the threads)
                steps(4)
            step = min(_timed(lambda: steps(MEASURE_STEPS), self.device) for _ in range(2)) / MEASURE_STEPS
            evaluation = min(_timed(lambda: trainer.backend.evaluate("val"), self.device) for _ in range(2))
            self._cache[key] = (step, evaluation)
        return self._cache[key]

    def learn(self, arch: str, runs: int, method: str = DEFAULT_METHOD) -> Tuple[float, float]:
        """Seconds per learned-mask step and per evaluation point of a ``runs``-stack of ``method``
        (a registered mask-learning method): its own learner, timed as Zhou's is -- Zhou's variants
        (weights x DWR), another method's default settings, ``runs`` of them stacked."""
        key = ("learn", arch, method, runs)
        if key not in self._cache:
            from ..supermask import LearnConfig

            if method == DEFAULT_METHOD:
                configs = [LearnConfig(weights=w, dwr=d, seed=0) for w in ("init", "signed_constant")
                           for d in (False, True)] * (runs // 4 + 1)
            else:
                try:
                    configs = [MASK_METHODS[method].config()] * runs
                except (TypeError, ConfigError):  # settings without usable defaults: priced as Zhou's
                    self._cache[key] = self.learn(arch, runs)
                    return self._cache[key]
            learner = MASK_METHODS[method].learner(get_arch(arch), self.data(arch), configs[:runs],
                                                   [f"v{i}" for i in range(runs)], iterations=10 ** 6)
            it = [0]

            def steps(n):
                for _ in range(n):
                    learner.step(it[0])
                    it[0] += 1

            steps(5)
            step = min(_timed(lambda: steps(MEASURE_STEPS // 4), self.device) for _ in range(2)) / (MEASURE_STEPS // 4)
            evaluation = _timed(lambda: learner.evaluate_point(it[0]), self.device)
            self._cache[key] = (step, evaluation)
        return self._cache[key]

    def seconds(self, work: Work, within: Sequence[Work] = ()) -> float:
        """The work's seconds. Three training measurements an architecture (one run, the largest stack,
        the largest stack pruned) and one of its largest learned-mask stack per mask-learning method: a
        stack's cost is taken as linear in its size between one run and the largest, a pruned round's
        as the largest stack's ratio of pruned to dense, a learned stack's per run of its method.
        ``within``: other work priced alongside (e.g. the other notebooks'), whose largest stacks are
        the ones measured, so that every part is priced from the same measurements."""
        kmax, lmax = {}, {}
        for part in (work, *within):
            for arch, runs, _ in part.train_steps:
                kmax[arch] = max(kmax.get(arch, 1), runs)
            for arch, method, runs in part.learn_steps:
                lmax[arch, method] = max(lmax.get((arch, method), 1), runs)
        total = 0.0
        for (arch, runs, k), steps in work.train_steps.items():
            total += steps * self._at(arch, runs, k, 0, kmax[arch])
        for (arch, runs, k), evals in work.val_evals.items():
            total += evals * self._at(arch, runs, k, 1, kmax[arch])
        for (arch, method, runs), steps in work.learn_steps.items():
            top = lmax[arch, method]
            total += steps * self.learn(arch, top, method)[0] * runs / top
        for (arch, method, runs), evals in work.learn_evals.items():
            top = lmax[arch, method]
            total += evals * self.learn(arch, top, method)[1] * runs / top
        for arch, points in work.supermask_points.items():
            total += points * 13 * self.train(arch, 1, 0)[1]
        return total

    def _at(self, arch: str, runs: int, k: int, which: int, kmax: int) -> float:
        one, top = self.train(arch, 1, 0)[which], self.train(arch, kmax, 0)[which]
        dense = top if runs == kmax else one + (top - one) * (runs - 1) / max(kmax - 1, 1)
        if k == 0:
            return dense
        pruned = dense * self.train(arch, kmax, PRUNED_SAMPLE_ROUND)[which] / top
        t = min(k, PRUNED_SAMPLE_ROUND) / PRUNED_SAMPLE_ROUND
        return dense + (pruned - dense) * t


# -- the estimate ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Estimate:
    """Seconds of work left per notebook (in run order), and the line that says it."""

    seconds: Dict[str, float]
    device: str

    @property
    def total(self) -> float:
        return sum(self.seconds.values())

    def line(self) -> str:
        parts = ", ".join(f"{name} {_clock(s)}" for name, s in self.seconds.items())
        return (f"Estimated time on this machine ({self.device}, rates measured just now; stored work left out): "
                f"{_clock(self.total)} ({parts})")


def _clock(seconds: float) -> str:
    minutes = int(round(seconds / 60))
    if minutes < 1:
        return "under a minute"
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def estimate(plans: Dict[str, List[Experiment]], root, device: str = "auto", data_dir=None) -> Estimate:
    """Price ``plans`` (notebook name -> its experiments, in run order) against the store ``root``."""
    rates, seen = Rates(device, data_dir), set()
    works = {name: work_to_do([e for e in experiments if _has_data(e, data_dir)], root, seen)
             for name, experiments in plans.items()}
    # one set of measurements for all: each architecture's largest stack over every notebook
    out = {name: rates.seconds(work, within=list(works.values())) for name, work in works.items()}
    return Estimate(out, str(rates.device))


def _has_data(exp: Experiment, data_dir) -> bool:
    from ..data import DataError, load_arrays

    try:
        load_arrays(dataset_name(exp.data, _model(exp.arch)), data_dir, download=False)
    except DataError:
        return False
    return True


def notebook_plans(names: Sequence[str], parameters: dict) -> Dict[str, List[Experiment]]:
    """The experiments each notebook of ``names`` (keys of :data:`lt_core.paper.notebooks.NOTEBOOKS`) will run
    with ``parameters`` (as ``reproduce`` passes them): its own parameter cell's defaults, overridden
    by ``parameters``, read as the notebook reads them (:func:`lt_core.paper.params.notebook_params`)."""
    import ast
    import tempfile

    import papermill as pm

    from . import questions
    from .params import notebook_params
    from .notebooks import NOTEBOOKS, REPO_NOTEBOOKS

    plans = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name in names:
            defaults = {key: ast.literal_eval(value["default"])
                        for key, value in pm.inspect_notebook(str(REPO_NOTEBOOKS / NOTEBOOKS[name])).items()}
            merged = {**defaults, **parameters, "report_dir": scratch}  # plug-ins load here as in the notebook
            plans[name] = questions.experiments(name, notebook_params(**merged))
    return plans
