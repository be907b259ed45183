"""The dashboard notebook: committed without outputs, layout only, and it executes headless."""

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "app" / "explorer.ipynb"


def test_notebook_is_committed_without_outputs_and_only_builds_the_layout():
    nb = json.loads(NOTEBOOK.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert 1 <= len(code) <= 3
    for cell in code:
        assert cell.get("outputs", []) == [] and cell.get("execution_count") is None
    source = "\n".join("".join(c["source"]) for c in code)
    assert "output_notebook(" in source and "build_app(" in source
    assert "def " not in source and "class " not in source  # the logic lives in lt_core.dashboard


def test_notebook_executes_headless(tmp_path, monkeypatch):
    papermill = pytest.importorskip("papermill")
    pytest.importorskip("jupyter_bokeh")
    monkeypatch.setenv("BOKEH_RESOURCES", "inline")  # offline: BokehJS comes with the page
    monkeypatch.setenv("LT_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # the kernel imports this checkout's lt_core
    out = tmp_path / "explorer.out.ipynb"
    papermill.execute_notebook(str(NOTEBOOK), str(out), kernel_name="python3", cwd=str(NOTEBOOK.parent),
                               progress_bar=False, execution_timeout=180)
    nb = json.loads(out.read_text())
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    views = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(views) == 1  # the dashboard's widget tree
    # the app did not start anything by itself
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())
