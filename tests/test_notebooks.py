"""Every research-question notebook runs headless with papermill on a tiny schedule."""

import os

import pandas as pd
import papermill as pm
import pytest

from .conftest import REPO, needs_mnist

pytestmark = needs_mnist
TINY = {"iterations": 20, "device": "cpu"}


@pytest.mark.parametrize("name,params,report", [
    ("rq1_mask_criteria", {"rounds": 1, "criteria": ["large_final", "random"]}, "rq1_mask_criteria_rounds.csv"),
    ("rq2_mask1_signs", {"rounds": 1, "mask1_policies": ["rewind", "signed_constant"]}, "rq2_mask1_signs_rounds.csv"),
    ("rq3_mask0", {"rounds": 1, "mask0_policies": ["zero", "freeze_init"]}, "rq3_mask0_rounds.csv"),
    ("rq4_supermasks", {"criteria": ["large_final_same_sign"], "powers": [0, 4]}, "rq4_supermask_points.csv"),
    ("rq5_learned_supermasks", {"iterations": 10}, "rq5_learned_supermasks.csv"),
])
def test_notebook_runs_headless(tmp_path, name, params, report):
    out = tmp_path / "results"
    pm.execute_notebook(str(REPO / "notebooks" / f"{name}.ipynb"), str(tmp_path / f"{name}.ipynb"),
                        parameters={**TINY, **params, "out": str(out), "report_dir": str(tmp_path / "reports")},
                        kernel_name="python3", cwd=str(tmp_path), progress_bar=False, execution_timeout=600)
    table = pd.read_csv(tmp_path / "reports" / report)
    assert len(table) > 0
    if "round" in table:
        assert sorted(table["round"].unique()) == [0, 1]
        assert table["early_stop_test_acc"].between(0, 1).all()
    assert any(out.iterdir())
