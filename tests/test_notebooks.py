"""The notebooks share their parameter names and run with the plain papermill command of the README."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from lt_core.paper.notebooks import NOTEBOOKS

from .conftest import REPO, needs_mnist

PARAMETERS = ["preset", "archs", "seeds", "criteria", "mask1", "mask0", "rounds", "device", "data_dir", "results_dir",
              "report_dir", "scheduler", "plugins"]


def _parameter_names(path: Path) -> list:
    nb = json.loads(path.read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    return [line.split("=")[0].strip() for line in "".join(cell["source"]).splitlines()
            if "=" in line and not line.startswith((" ", "#"))]


def test_every_notebook_has_the_same_parameter_names():
    for key, name in NOTEBOOKS.items():
        extra = ["methods"] if key == "families" else []  # the mask methods it compares
        assert _parameter_names(REPO / "notebooks" / name) == PARAMETERS + extra, name


@needs_mnist
def test_readme_papermill_command_with_list_parameters_as_strings(tmp_path):
    """The README's plain form: list parameters arrive as strings with -p and are read as lists."""
    papermill = Path(sys.executable).with_name("papermill")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [str(papermill), str(REPO / "notebooks" / "rq1_mask_criteria.ipynb"), str(tmp_path / "rq1.ipynb"),
         "-p", "preset", "tiny", "-p", "seeds", "[0, 1]", "-p", "criteria", "[large_final, random]",
         "-p", "rounds", "1", "-p", "device", "cpu", "-p", "results_dir", str(tmp_path / "results"),
         "-p", "report_dir", str(tmp_path / "reports")],
        cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rounds = pd.read_csv(tmp_path / "reports" / "rq1_rounds.csv")
    assert sorted(rounds["seed"].unique()) == [0, 1]
    assert sorted(rounds["criterion"].unique()) == ["large_final", "random"]
    assert sorted(rounds["round"].unique()) == [0, 1]
    assert rounds["early_stop_test_acc"].between(0, 1).all()
    assert (tmp_path / "reports" / "rq1_fc_accuracy.png").stat().st_size > 20_000
    assert len(pd.read_csv(tmp_path / "reports" / "rq1_claims.csv")) == 6
