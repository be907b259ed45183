"""Work units: the experiments that train as one stack, run as one task.

A sweep's experiments are one run each (:meth:`lt_core.experiments.Experiment.split`). Those of one
kind with the same network, data, schedule and seed (one :meth:`~lt_core.experiments.Experiment.stack_key`)
form one unit (:func:`work_units`), trained by one call of the joined record
(:func:`lt_core.experiments.join`): a lottery unit trains its dense trunk once, then every criterion
and policy as one stack; a supermask unit is one sweep over its criteria; a learn-mask unit one
stack of one mask method. :func:`run_unit` is a pure function of the unit's configs: what it
computes lands in the results store (reused when already there), so running it twice, or on two
machines at once, trains nothing twice (the engine's run locks).

The table of a sweep has :data:`TABLE_COLUMNS`, the experiments' one row layout
(:data:`lt_core.experiments.COLUMNS`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from ..events import EventCallback, StopToken
from ..experiments import COLUMNS, LABEL_COLUMNS, RESULT_COLUMNS, Context, Experiment, join

TABLE_COLUMNS = COLUMNS
__all__ = ["LABEL_COLUMNS", "RESULT_COLUMNS", "TABLE_COLUMNS", "WorkUnit", "experiment_rows",
           "run_unit", "work_units"]


@dataclass(frozen=True)
class WorkUnit:
    """Experiments (one run each) trained together by one task (see the module docstring)."""

    kind: str
    experiments: Tuple[Experiment, ...]

    @property
    def key(self) -> str:
        """A name that is a pure function of the experiments (the Dask task's key)."""
        first = self.experiments[0]
        digest = hashlib.sha256(repr(self.experiments).encode()).hexdigest()[:12]
        return f"{self.kind}-{first.arch}-seed{first.seed}-{digest}"

    @property
    def joined(self) -> Experiment:
        """The unit's experiments as one record, which trains them as one stack."""
        return join(self.experiments)


def work_units(experiments) -> List[WorkUnit]:
    """The experiments, one run each, grouped into units (in order of first appearance; duplicates dropped)."""
    groups: Dict[tuple, List[Experiment]] = {}
    for exp in experiments:
        for one in exp.split():
            group = groups.setdefault(one.stack_key(), [])
            if one not in group:
                group.append(one)
    return [WorkUnit(group[0].kind, tuple(group)) for group in groups.values()]


def run_unit(unit: WorkUnit, out, stop: Optional[StopToken] = None,
             on_event: Optional[EventCallback] = None) -> str:
    """Train (or reuse) every experiment of ``unit`` into the results root ``out``; returns its key."""
    unit.joined.run(Context(Path(out), on_event, stop))
    return unit.key


def experiment_rows(exp: Experiment, root) -> List[dict]:
    """``exp``'s results as rows of the tidy table (columns :data:`TABLE_COLUMNS`)."""
    return [{c: row.get(c) for c in TABLE_COLUMNS} for row in exp.rows(root)]
