"""Notebook parameters: the same names in every notebook, read the same way however they arrive.

Every research-question notebook (and Table 1) has one cell tagged ``parameters`` with these names:
``preset``, ``archs``, ``seeds``, ``criteria``, ``mask1``, ``mask0``, ``rounds``, ``device``,
``data_dir``, ``results_dir``, ``report_dir``, ``scheduler`` and ``plugins`` (modules or ``.py`` files
that register architectures, criteria, policies or mask methods, loaded first so that their names are
accepted); the families notebook adds ``methods`` (the mask-learning methods it compares, names in
:data:`lt_core.supermask.MASK_METHODS`; ``None``: Zhou's, edge-popup and signed supermasks).
papermill passes list parameters as lists with ``-y``/``-f`` (YAML) but as strings with
``-p seeds '[0, 1]'``; :func:`notebook_params` accepts a list, a YAML list written as a string
(``'[0, 1]'``), a comma-separated string (``'0,1'``) or a single value, checks every name against
the live registries, and fills ``None`` from the preset. A bad value is one
:class:`~lt_core.errors.ConfigError` line naming the parameter, the value and what is allowed.

``data_dir`` is the folder every experiment of the notebook reads its datasets from: it must
exist (a missing folder is refused before anything runs); the questions hand it to
:func:`lt_core.runner.run_experiments`, which gives it to every experiment that names no folder of its
own (the folder is where the data is, not what it is: it is not part of any run's identity).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional, Sequence

import yaml

from ..archs import ARCHS
from ..config import DEVICES
from ..criteria import CRITERIA
from ..errors import ConfigError
from ..policies import MASK0_POLICIES, MASK1_POLICIES
from ..plugins import load_plugin
from ..presets import Preset, get_preset
from ..store import results_root


@dataclass(frozen=True)
class NotebookParams:
    """A notebook's parameters, normalised: lists are lists, ``None`` is the preset's value, paths are paths."""

    preset: Preset
    archs: List[str]
    seeds: List[int]
    criteria: List[str]
    mask1: List[str]
    mask0: List[str]
    rounds: int
    device: str
    data_dir: Optional[str]
    results_dir: Path
    report_dir: Path
    scheduler: Optional[str]
    methods: Optional[List[str]] = None  # the families notebook's methods; None: its three

    @property
    def executor(self):
        """Where the notebook's experiments train: here (``None``), or on the Dask scheduler given
        (:func:`lt_core.sweep.executor`; ``"serial"``: as a sweep's work units, in this process)."""
        if not self.scheduler:
            return None
        from ..sweep import executor

        return executor(self.scheduler)


def as_list(name: str, value: Any, kind: type = str) -> list:
    """``value`` as a list of ``kind`` (str or int): a list, a YAML list string, a comma list or one value."""
    want = "integers" if kind is int else "names"
    example = "[0, 1]" if kind is int else "[large_final, random]"
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = yaml.safe_load(text)
            except yaml.YAMLError:
                raise ConfigError(f"parameter {name}: cannot read {value!r} as a list of {want}; "
                                  f"write e.g. {example} or a comma-separated list") from None
        else:
            value = [part.strip() for part in text.split(",") if part.strip()]
            if kind is int:
                try:
                    value = [int(part) for part in value]
                except ValueError:
                    raise ConfigError(f"parameter {name}: {text!r} is not a list of {want}; "
                                      f"write e.g. {example}") from None
    elif not isinstance(value, (list, tuple)):
        value = [value]
    items = list(value)
    for item in items:
        if kind is int and (isinstance(item, bool) or not isinstance(item, int)):
            raise ConfigError(f"parameter {name}: {item!r} is not an integer; write e.g. {example}")
        if kind is str and not isinstance(item, str):
            raise ConfigError(f"parameter {name}: {item!r} is not a name; write e.g. {example}")
    if not items:
        raise ConfigError(f"parameter {name}: the list is empty; give at least one, e.g. {example}")
    return items


def checked_data_dir(data_dir) -> Path:
    """``data_dir`` as an absolute path, when it is a folder; otherwise one ConfigError line naming it."""
    path = Path(data_dir).expanduser()
    if not path.is_dir():
        what = "is not a folder" if path.exists() else "does not exist"
        raise ConfigError(f"data_dir: {str(data_dir)!r} {what}; give the folder that holds the datasets "
                          "(e.g. mnist/ inside it), or none for $LT_DATA_DIR")
    return path.resolve()


def _names(name: str, value: Any, allowed: Sequence[str]) -> List[str]:
    items = as_list(name, value)
    for item in items:
        if item not in allowed:
            raise ConfigError(f"parameter {name}: unknown value {item!r}; allowed values: {', '.join(allowed)}")
    return items


def notebook_params(*, preset: str = "quick", archs: Any = ("fc",), seeds: Any = None, criteria: Any = ("large_final",),
                    mask1: Any = ("rewind",), mask0: Any = ("zero",), rounds: Any = None, device: str = "auto",
                    data_dir: Optional[str] = None, results_dir: Optional[str] = None, report_dir: str = "reports",
                    scheduler: Optional[str] = None, plugins: Any = (), methods: Any = None) -> NotebookParams:
    """Check and normalise a notebook's parameters (see the module docstring); creates ``report_dir``."""
    for spec in (as_list("plugins", plugins) if plugins else []):
        try:
            load_plugin(spec)
        except Exception as exc:
            raise ConfigError(f"parameter plugins: cannot load {spec!r} ({type(exc).__name__}: {exc})") from None
    chosen = get_preset(preset)
    seed_list = list(chosen.seeds) if seeds is None else as_list("seeds", seeds, int)
    for seed in seed_list:
        if seed < 0:
            raise ConfigError(f"parameter seeds: {seed} is negative; seeds are integers >= 0")
    if rounds is None:
        rounds = chosen.rounds
    elif isinstance(rounds, str) and rounds.strip().isdigit():
        rounds = int(rounds)
    if isinstance(rounds, bool) or not isinstance(rounds, int) or not 0 <= rounds <= 200:
        raise ConfigError(f"parameter rounds: {rounds!r} is not allowed; give an integer in [0, 200] or None "
                          f"for the preset's ({chosen.rounds})")
    if device not in DEVICES:
        raise ConfigError(f"parameter device: unknown value {device!r}; allowed values: {', '.join(DEVICES)}")
    if data_dir:
        try:
            data_dir = str(checked_data_dir(data_dir))
        except ConfigError as exc:
            raise ConfigError(f"parameter {exc}") from None
    if methods is not None:
        from ..supermask.methods import MASK_METHODS

        methods = list(dict.fromkeys(_names("methods", methods, list(MASK_METHODS))))
    report = Path(report_dir)
    report.mkdir(parents=True, exist_ok=True)
    return NotebookParams(chosen, _names("archs", archs, list(ARCHS)), seed_list,
                          _names("criteria", criteria, list(CRITERIA)), _names("mask1", mask1, list(MASK1_POLICIES)),
                          _names("mask0", mask0, list(MASK0_POLICIES)), rounds, device, data_dir,
                          results_root(results_dir), report, scheduler or None, methods)
