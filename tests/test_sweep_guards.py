"""Sweeps refuse what would silently mean something else or hang: a field given twice in a grid, a grid
too large to start unasked, a scheduler file that is missing or garbage. A local cluster's workers load
the command's plug-ins, a unit that cannot succeed fails once in one line, and Ctrl-C or SIGTERM on a
serial sweep stops like ``lottery`` does."""

import pytest

from lt_core import ConfigError
from lt_core.cli import CONFIRM_ABOVE, main
from lt_core.sweep import load_grid


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
