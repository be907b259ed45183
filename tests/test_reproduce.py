"""``python -m lt_core reproduce --preset tiny``: every notebook executed, Table 1, figures, claims, a report."""

import json
import os
import subprocess
import sys

import matplotlib.image as mpimg
import nbformat
import pandas as pd
import pytest

from lt_core.archs import get_arch
from lt_core.paper.notebooks import NOTEBOOKS
from lt_core.paper.table1 import CELLS

from .conftest import REPO, needs_mnist

pytestmark = needs_mnist


def _reproduce(tmp, *args):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "lt_core", "reproduce", "--report-dir", str(tmp / "out"),
                           "--results-dir", str(tmp / "results"), "--device", "cpu", "--quiet", *args],
                          cwd=str(tmp), env=env, capture_output=True, text=True, timeout=1200)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reproduce")
    proc = _reproduce(tmp, "--preset", "tiny", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (tmp / "stderr.txt").write_text(proc.stderr)
    return tmp / "out", json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_estimate_comes_first_and_names_every_notebook(tiny):
    out, _ = tiny
    stderr = (out.parent / "stderr.txt").read_text()
    line = next(line for line in stderr.splitlines() if line.startswith("Estimated time on this machine"))
    assert line.startswith("Estimated time on this machine (cpu, rates measured just now; stored work left out): ")
    assert [part.split()[0] for part in line.split("(")[-1].rstrip(")").split(", ")] == list(NOTEBOOKS)
    assert stderr.index(line) < stderr.index("report: ")


def test_every_notebook_is_executed_and_exported(tiny):
    out, result = tiny
    assert [n["notebook"] for n in result["notebooks"]] == list(NOTEBOOKS)
    assert all(n["status"] == "done" for n in result["notebooks"])
    for name in NOTEBOOKS.values():
        nb = nbformat.read(out / "notebooks" / name, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.execution_count for c in code), name
        assert not [o for c in code for o in c.outputs if o.output_type == "error"], name
        assert nb.metadata.papermill.parameters["preset"] == "tiny"
        assert any(o.get("data", {}).get("image/png") for c in code for o in c.outputs), f"{name}: no inline figure"
        assert (out / "notebooks" / name).with_suffix(".html").stat().st_size > 10_000


def test_table1_has_every_mnist_cell_with_the_papers_value(tiny):
    out, _ = tiny
    table = pd.read_csv(out / "report" / "table1_table1.csv")
    fc = table[table["arch"] == "fc"].set_index("cell")
    assert list(fc.index) == [cell for cell, _, _ in CELLS]
    paper = get_arch("fc").paper_table1
    assert fc.loc["mask_init", "paper"] == paper["mask_init"] == 79.3
    assert fc.loc["learned_dwr_init", "paper"] == fc.loc["learned_dwr_signed_constant", "paper"] == 97.8
    assert fc["ours"].between(0, 100).all() and (fc["seeds"] == 1).all()
    assert (fc["difference"] - (fc["ours"] - fc["paper"])).abs().max() < 1e-9
    assert fc["schedule"].str.contains("tiny: training 20 iterations").all()


def test_conv_rows_say_why_they_are_empty(tiny):
    out, _ = tiny
    table = pd.read_csv(out / "report" / "table1_table1.csv")
    conv = table[table["arch"].isin(["conv2", "conv4", "conv6"])]
    if (REPO.parent / "shared" / "datasets" / "cifar-10-batches-py").is_dir():
        pytest.skip("CIFAR-10 is present")
    assert len(conv) == 3 * len(CELLS)
    assert conv["ours"].isna().all() and conv["paper"].notna().all()
    assert conv["note"].str.contains("cifar10: dataset files not found").all()
    assert "Conv2 (CIFAR-10): no data: cifar10" in (out / "report" / "index.md").read_text()


def test_figures_are_non_trivial_pngs(tiny):
    out, _ = tiny
    pngs = sorted((out / "report").glob("*.png"))
    assert {p.name.split("_")[0] for p in pngs} == {"rq1", "rq2", "rq3", "rq4", "rq5", "table1", "families"}
    for png in pngs:
        assert png.stat().st_size > 20_000, png.name
        pixels = mpimg.imread(png)
        assert pixels.std() > 0.05, f"{png.name} is almost blank"
        assert png.with_suffix(".svg").is_file()


def test_claim_checks_and_index_report(tiny):
    out, _ = tiny
    claims = pd.read_csv(out / "report" / "claims.csv")
    assert set(claims["question"]) == {"rq1", "rq2", "rq3", "rq4", "rq5", "families"}
    assert set(claims["verdict"]) <= {"PASS", "FAIL", "not enough data"}
    assert claims["evidence"].str.len().min() > 10
    index = (out / "report" / "index.md").read_text()
    for text in ("## Table 1", "| FC 300-100-10 (MNIST) |", "## The paper's claims", "![rq1_fc_accuracy.png]",
                 "## Run times", "| table1 |", "Preset tiny", "Machine: "):
        assert text in index
    html = (out / "report" / "index.html").read_text()
    assert "<script" not in html and '<img src="table1_table1.png"' in html


def test_a_failing_notebook_is_named_with_its_cell(tmp_path):
    proc = _reproduce(tmp_path, "--preset", "tiny", "--only", "rq4", "--archs", "nosuch", "--no-estimate")
    assert proc.returncode == 2
    assert "rq4_supermasks.ipynb: cell 3 failed: ConfigError: parameter archs: unknown value 'nosuch'" in proc.stderr
    assert (tmp_path / "out" / "report" / "index.md").is_file()  # the report of what ran is still written


def test_the_estimate_refuses_bad_parameters_before_any_notebook_runs(tmp_path):
    proc = _reproduce(tmp_path, "--preset", "tiny", "--only", "rq4", "--archs", "nosuch")
    assert proc.returncode == 2
    assert proc.stderr == "error: parameter archs: unknown value 'nosuch'; allowed values: fc, conv2, conv4, conv6, conv8\n"
    assert not (tmp_path / "out" / "notebooks" / "rq4_supermasks.ipynb").exists()


def test_one_dense_trunk_serves_every_notebook(tiny):
    out, _ = tiny
    trunks = sorted(p.name for p in (out.parent / "results").glob("train-fc-*"))
    assert len(trunks) == 1, trunks  # rq1-rq5 and Table 1 share the preset's dense run


def test_the_families_notebook_compares_the_three_families(tiny):
    out, _ = tiny
    report = out / "report"
    assert NOTEBOOKS["families"] == "supermask_families.ipynb"
    best = pd.read_csv(report / "families_best.csv")
    assert list(best["family"]) == ["zhou", "edge_popup", "signed", "dense"]
    assert best.loc[best["family"] == "signed", "paper"].item() == 97.48
    assert best.loc[best["family"] == "signed", "paper_percent_kept"].item() == 3.77
    assert best["schedule"].str.contains("edge_popup and signed 10 iterations").all()
    points = pd.read_csv(report / "families_points.csv")
    edge = points[points["family"] == "edge_popup"].sort_values("keep_fraction")
    assert edge["keep_fraction"].tolist() == [0.05, 0.1, 0.3, 0.5]
    assert edge["expected_keep_fraction"].tolist() == pytest.approx([0.05, 0.1, 0.3, 0.5], abs=1e-3)
    assert len(points[points["family"] == "zhou"]) == 4 and len(points[points["family"] == "signed"]) == 1
    claims = pd.read_csv(report / "families_claims.csv")
    assert len(claims) == 6 and set(claims["verdict"]) <= {"PASS", "FAIL", "not enough data"}
    assert (report / "families_fc_families.png").stat().st_size > 20_000
