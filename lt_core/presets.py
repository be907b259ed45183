"""Reproduction presets: how long, how many seeds, how deep a batch reproduction runs.

One preset fixes everything the notebooks, the ``reproduce`` command (and later a sweep) need to
turn a research question into runs, reading each network's own schedule from its
:class:`~lt_core.archs.Arch` record:

* ``tiny`` — seconds per notebook, for CI: 20 training iterations, 2 pruning rounds, 10 learned-mask
  iterations, a few prune powers, one seed. The numbers mean nothing; the pipeline is exercised.
* ``quick`` — minutes on a laptop CPU: each network's quick schedule (``Arch.quick``; FC: 300
  iterations, learned masks 10 epochs), 10 pruning rounds (FC: 10.7% of weights left), every prune
  power, two seeds so that the figures have bands.
* ``paper`` — the paper's schedule (``Arch.epochs``, ``Arch.learn_epochs``: FC 55 epochs and 2000
  learned-mask epochs), 24 rounds, every prune power, 5 seeds (the paper's bands use 5 runs; its
  Table 1 averages "four or more", so 5 there too).

Mask-learning methods other than Zhou's (``edge_popup``, ``signed``: :mod:`lt_core.supermask.methods`)
take their own optimiser from their config and their length from the preset
(:meth:`Preset.method_config`): tiny 10 iterations, quick the network's quick learned-mask epochs
(FC: 10), paper their own papers' length (the configs' default, 100 epochs). Zhou's masks keep the
lengths above, so the families notebook shares its Zhou runs with RQ5 and Table 1.

Every preset skips the training-set evaluation (``eval_train=False``) and evaluates the test split
only where a run's validation loss reaches a new minimum and at the end (``eval_test="best"``):
neither changes a reported number (the early-stop and final test accuracies are the same), and
together they are most of an FC run's evaluation time. Every notebook builds its dense trunk with
:meth:`Preset.train_config`, so one preset, network and seed mean one dense run in the store,
shared by all notebooks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Sequence, Tuple

from .archs import Arch, get_arch
from .config import ConfigError, TrainConfig
from .supermask import DEFAULT_POWERS, LearnConfig, SupermaskConfig


@dataclass(frozen=True)
class Preset:
    """A named reproduction schedule (see the module docstring)."""

    name: str
    description: str
    seeds: Tuple[int, ...]  # default seeds of every notebook
    rounds: int  # pruning rounds after the dense round 0
    powers: Tuple[int, ...]  # one-shot supermask prune powers
    train_fields: Callable[[Arch], dict]  # TrainConfig fields of dense and lottery runs
    learn_fields: Callable[[Arch], dict]  # LearnConfig fields of learned supermasks
    method_fields: Callable[[Arch], dict] = lambda arch: {}  # length of the other mask methods' runs

    def train_config(self, arch: str, seed: int, device: str = "auto") -> TrainConfig:
        """The training settings of every dense and lottery run of ``arch`` under this preset."""
        return TrainConfig(**{"seed": seed, "device": device, "eval_train": False, "eval_test": "best",
                              **self.train_fields(get_arch(arch))})

    def learn_config(self, arch: str, seed: int, weights: str, dwr: bool, device: str = "auto") -> LearnConfig:
        """A learned supermask's settings: the paper's optimiser, this preset's length."""
        return LearnConfig(weights=weights, dwr=dwr, seed=seed, device=device,
                           **self.learn_fields(get_arch(arch)))

    def method_config(self, method: str, arch: str, seed: int, device: str = "auto", **settings):
        """The settings of a run of mask-learning ``method`` (a name in
        :data:`lt_core.supermask.MASK_METHODS`): ``zhou`` as :meth:`learn_config` (``settings`` may
        give ``weights`` and ``dwr``), any other with its own config's defaults, this preset's length
        (:attr:`method_fields`) and ``settings`` (e.g. ``keep_fraction``)."""
        from .supermask.methods import DEFAULT_METHOD, method_config

        record = get_arch(arch)
        fields = self.learn_fields(record) if method == DEFAULT_METHOD else self.method_fields(record)
        return method_config(method, **{"seed": seed, "device": device, **fields, **settings})

    def method_schedule(self, arch: str, method: str) -> str:
        """The length of ``method``'s runs of ``arch`` under this preset, in words (e.g. ``100 epochs``)."""
        from .supermask.methods import DEFAULT_METHOD, MASK_METHODS

        record = get_arch(arch)
        if method == DEFAULT_METHOD:
            learn = self.learn_fields(record)
            default = record.learn_epochs
        else:
            learn = self.method_fields(record)
            default = getattr(MASK_METHODS[method].config(), "epochs", None)
        if "iterations" in learn:
            return f"{learn['iterations']} iterations"
        return f"{learn.get('epochs') or default} epochs"

    def supermask_config(self, criteria) -> SupermaskConfig:
        """One-shot supermasks of ``criteria`` at this preset's prune powers, on both weight kinds."""
        return SupermaskConfig(criteria=tuple(criteria), powers=self.powers)

    def schedule(self, arch: str, learned: bool = True, methods: Sequence[str] = ()) -> str:
        """The schedule in words, for tables and figures: what a number of ours was trained with.

        ``learned=False`` leaves out the learned masks' length (for lottery and one-shot results);
        ``methods`` adds the length of other mask-learning methods' runs (e.g. ``edge_popup 100 epochs``).
        """
        a = get_arch(arch)
        train = self.train_fields(a)
        text = f"{self.name}: training " + (f"{train['iterations']} iterations" if "iterations" in train
                                            else f"{a.epochs} epochs")
        if learned:
            learn = self.learn_fields(a)
            text += ", learned masks " + (f"{learn['iterations']} iterations" if "iterations" in learn
                                          else f"{learn.get('epochs') or a.learn_epochs} epochs")
        others = [m for m in methods if m != "zhou"]
        if others:
            lengths: Dict[str, list] = {}
            for m in others:
                lengths.setdefault(self.method_schedule(arch, m), []).append(m)
            text += "".join(f", {' and '.join(ms)} {length}" for length, ms in lengths.items())
        return text


def _tiny_train(arch: Arch) -> dict:
    return {"iterations": 20, "eval_every": 20}


def _tiny_learn(arch: Arch) -> dict:
    return {"iterations": 10, "eval_every": 5}


def _quick_train(arch: Arch) -> dict:
    return arch.quick.train_fields()


def _quick_learn(arch: Arch) -> dict:
    return arch.quick.learn_fields()


def _paper(arch: Arch) -> dict:
    return {}  # the configs' None epochs and lr are the arch's own: the paper's


def _quick_methods(arch: Arch) -> dict:
    return {"epochs": arch.quick.learn_epochs}


PRESETS: Dict[str, Preset] = {p.name: p for p in (
    Preset("tiny", "seconds per notebook, for CI; the numbers mean nothing", (0,), 2, (0, 4, 8, 12),
           _tiny_train, _tiny_learn, _tiny_learn),
    Preset("quick", "minutes on a laptop CPU: each network's quick schedule, 10 rounds, 2 seeds", (0, 1), 10,
           DEFAULT_POWERS, _quick_train, _quick_learn, _quick_methods),
    Preset("paper", "the paper's schedule: full training, 24 rounds, 2000 FC learned-mask epochs, 5 seeds",
           (0, 1, 2, 3, 4), 24, DEFAULT_POWERS, _paper, _paper, _paper),
)}


def get_preset(name: str) -> Preset:
    """The preset ``name``; anything else is one ConfigError naming the allowed values."""
    if name not in PRESETS:
        raise ConfigError(f"preset: unknown value {name!r}; allowed values: {', '.join(PRESETS)}")
    return PRESETS[name]
