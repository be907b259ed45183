"""Sweeps refuse what would silently mean something else or hang: a field given twice in a grid, a grid
too large to start unasked, a scheduler file that is missing or garbage. A local cluster's workers load
the command's plug-ins, a unit that cannot succeed fails once in one line, and Ctrl-C or SIGTERM on a
serial sweep stops like ``lottery`` does."""

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from lt_core import ConfigError
from lt_core.cli import CONFIRM_ABOVE, main
from lt_core.store.lock import LOCK_FILE
from lt_core.sweep import Grid, SweepError, load_grid, run_experiments, work_units

from .conftest import REPO, needs_mnist


def test_a_field_given_twice_is_refused_naming_it_and_both_lines(tmp_path, capsys):
    grid = tmp_path / "grid.yaml"
    grid.write_text("kind: lottery\ncriteria: [large_final]\nseeds: [0]\ncriteria: [random]\n")
    message = (f"{grid}: criteria: given twice (lines 2 and 4); give each field once (a list holds several values: "
               "criteria: [a, b])")
    with pytest.raises(ConfigError) as err:
        load_grid(grid)
    assert str(err.value) == message
    assert main(["sweep", str(grid), "--scheduler", "serial", "--out", str(tmp_path / "results")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {message}"
    # inside a schedule mapping too
    grid.write_text("kind: lottery\nschedule:\n  - {iterations: 20, iterations: 40}\n")
    with pytest.raises(ConfigError, match="iterations: given twice .lines 3 and 3."):
        load_grid(grid)


def test_a_large_grid_prints_its_count_and_starts_only_with_yes(tmp_path, capsys):
    grid = tmp_path / "big.yaml"
    seeds = ", ".join(map(str, range(CONFIRM_ABOVE // 2 + 1)))
    grid.write_text(f"kind: lottery\nseeds: [{seeds}]\ncriteria: [large_final, random]\nschedule: [tiny]\n")
    assert main(["sweep", str(grid), "--scheduler", "serial", "--out", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    n = 2 * (CONFIRM_ABOVE // 2 + 1)
    assert err == [f"{grid}: {n} experiments in {n // 2} work units",
                   f"error: --yes: {grid} expands to {n} experiments, more than {CONFIRM_ABOVE}; check the grid, "
                   "then add --yes to start them"]
    assert not (tmp_path / "results").exists()


def test_a_missing_or_garbage_scheduler_file_is_one_line(tmp_path, capsys):
    grid = tmp_path / "grid.yaml"
    grid.write_text("kind: lottery\ncriteria: [large_final]\nrounds: [1]\nschedule: [tiny]\n")
    missing = tmp_path / "nope.json"
    assert main(["sweep", str(grid), "--scheduler-file", str(missing), "--out", str(tmp_path / "results")]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: scheduler_file: {str(missing)!r} does not exist; give the file 'dask scheduler --scheduler-file "
        "FILE' writes (start the scheduler first)")
    garbage = tmp_path / "garbage.json"
    for text in ("garbage\n", '{"address": 5}', "[1, 2]"):
        garbage.write_text(text)
        assert main(["sweep", str(grid), "--scheduler-file", str(garbage), "--out", str(tmp_path / "results")]) == 2
        assert capsys.readouterr().err.strip().splitlines()[-1] == (
            f"error: scheduler_file: {str(garbage)!r} is not a Dask scheduler file (no scheduler \"address\" in it); "
            "give the file 'dask scheduler --scheduler-file FILE' writes")
    assert not (tmp_path / "results").exists()


def test_failed_units_are_summed_up_in_one_line():
    from lt_core.sweep.run import UnitFailure, failure_summary

    failed = [UnitFailure("a", "DataNotFoundError: no mnist"), UnitFailure("b", "ValueError: bad"),
              UnitFailure("c", "DataNotFoundError: no mnist")]
    assert failure_summary(failed, 5) == ("3 of 5 work units failed: DataNotFoundError: no mnist (work units a, c); "
                                          "ValueError: bad (work unit b)")


PLUGIN = '''
"""Two criteria: one that works, one that fails as no retry can mend; each call is counted in a file."""
from pathlib import Path

import lt_core

CALLS = Path(__file__).with_suffix(".calls")


def counted(name):
    with open(CALLS, "a") as fh:
        fh.write(name + "\\n")


def works(w_i, w_f, kept, gen):
    counted("sweep_plugin_works")
    return w_f.abs()


def fails(w_i, w_f, kept, gen):
    counted("sweep_plugin_fails")
    raise ValueError("this criterion always fails")


lt_core.register_criterion("sweep_plugin_works", works, "|w_f|, counted")
lt_core.register_criterion("sweep_plugin_fails", fails, "always fails, counted")
'''


@pytest.fixture
def sweep_plugin(tmp_path, monkeypatch):
    """A plug-in file loaded in this process (so the grid is valid here), forgotten after the test."""
    from lt_core import plugins
    from lt_core.criteria import CRITERIA

    monkeypatch.setattr(plugins, "_LOADED", [])
    path = tmp_path / "sweep_plugin.py"
    path.write_text(PLUGIN)
    plugins.load_plugin(str(path))
    yield path
    for name in ("sweep_plugin_works", "sweep_plugin_fails"):
        CRITERIA.remove(name)
    sys.modules.pop("sweep_plugin", None)


@needs_mnist
def test_a_local_clusters_workers_load_the_plugins_and_a_hopeless_unit_fails_once_in_one_line(
        sweep_plugin, tmp_path, capfd):
    schedule = {"iterations": 10, "eval_every": 10, "eval_train": False, "device": "cpu"}
    good = Grid.from_dict({"kind": "lottery", "seeds": [0], "criteria": ["sweep_plugin_works"], "rounds": [1],
                           "schedule": [schedule]}).experiments()
    bad = Grid.from_dict({"kind": "lottery", "seeds": [1], "criteria": ["sweep_plugin_fails"], "rounds": [1],
                          "schedule": [schedule]}).experiments()
    (bad_unit,) = work_units(bad)
    with pytest.raises(SweepError) as err:
        run_experiments(good + bad, None, 1, out=tmp_path / "results", progress=False)
    assert str(err.value) == (f"1 of 2 work units failed: ValueError: this criterion always fails (work unit "
                              f"{bad_unit.key})")
    assert good[0].done(tmp_path / "results")  # the workers knew the plug-in's criterion
    calls = sweep_plugin.with_suffix(".calls").read_text().split()
    assert calls.count("sweep_plugin_fails") == 1  # not retried
    assert calls.count("sweep_plugin_works") == 3  # one round, once per layer
    assert "Compute Failed" not in capfd.readouterr().err


def _wait_for(predicate, timeout=120.0):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert predicate(), "timed out"


@needs_mnist
def test_ctrl_c_on_a_serial_sweep_checkpoints_and_says_how_to_resume(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text("kind: lottery\ncriteria: [large_final]\nrounds: [1]\n"
                    "schedule: [{iterations: 100000, eval_every: 50, eval_train: false, device: cpu}]\n")
    out = tmp_path / "results"
    proc = subprocess.Popen([sys.executable, "-m", "lt_core", "sweep", str(grid), "--scheduler", "serial", "--quiet",
                             "--out", str(out)], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: list(out.glob(f"train-fc-*/{LOCK_FILE}")))
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    lines = stderr.strip().splitlines()
    assert lines[0] == f"{grid}: 1 experiment in 1 work unit"
    assert re.fullmatch(r"round 0: stopped at iteration \d+; finished rounds are kept, run the same command again "
                        r"to resume", lines[-1]), stderr
    assert len(lines) == 2 and "Traceback" not in stderr
    (checkpoint,) = out.glob("train-fc-*/round_000/checkpoint.pt")
    assert checkpoint.is_file()
