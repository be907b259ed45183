"""Sweeps: grids of experiments run on a Dask cluster, results in a shared store, one tidy table.

* :mod:`.grid` reads a grid (YAML), checks it in full and expands it into experiments, one run each
  (the records of :mod:`lt_core.experiments`);
* :mod:`.units` groups experiments that train as one stack into work units;
* :mod:`.run` runs the units on Dask (or in this process): :func:`executor` is what
  :func:`lt_core.runner.run_experiments` hands experiments to, :func:`run_experiments` the entry point
  of ``python -m lt_core sweep`` (the units, then the table read back from the store).

Exactly once: the engine locks each run while it trains it (:mod:`lt_core.store.lock`), so two
tasks, processes or machines never train one run twice, and each stored result adds one line to
its run's ledger (:mod:`lt_core.store.ledger`).
"""

from .grid import KINDS, PRESETS, Experiment, Grid, load_grid, schedule_fields
from ..errors import SweepError
from .run import executor, run_experiments, run_units
from .units import TABLE_COLUMNS, WorkUnit, experiment_rows, run_unit, work_units

__all__ = ["Experiment", "Grid", "KINDS", "PRESETS", "SweepError", "TABLE_COLUMNS", "WorkUnit",
           "executor", "experiment_rows", "load_grid", "run_experiments", "run_units", "run_unit", "schedule_fields", "work_units"]
