"""The index report over a hand-made report folder: Table 1, claims, figures and run times, in both formats."""

import matplotlib.pyplot as plt
import pandas as pd

from lt_core.paper import report, table1
from lt_core.paper.figures import save


def test_index_collects_table1_claims_figures_and_times(tmp_path):
    table1.empty_rows("conv2", "no data: CIFAR-10 missing").to_csv(tmp_path / "table1_table1.csv", index=False)
    pd.DataFrame([{"question": "rq3", "claim": "zero above freeze_init", "verdict": "FAIL", "evidence": "-1 | 2"}]) \
        .to_csv(tmp_path / "rq3_claims.csv", index=False)
    pd.DataFrame([{"question": "rq1", "claim": "a above b", "verdict": "PASS", "evidence": "+2 points"}]) \
        .to_csv(tmp_path / "rq1_claims.csv", index=False)
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    save(fig, tmp_path / "rq1_fc_accuracy", formats=("png",))
    written = report.write_index(tmp_path, title="T", about=["Preset quick."],
                                 timings=[report.Timing("rq1", 90.0, "done")])
    assert [p.name for p in written] == ["index.md", "index.html", "claims.csv"]
    md = (tmp_path / "index.md").read_text()
    assert md.startswith("# T\n\nPreset quick.\n")
    assert "| Conv2 (CIFAR-10) | — (22.3) | — (37.4) |" in md
    assert "Conv2 (CIFAR-10): no data: CIFAR-10 missing" in md
    assert "1 PASS, 1 FAIL." in md
    assert md.index("| rq1 | a above b | PASS | +2 points |") < md.index("| rq3 | zero above freeze_init | FAIL | -1 \\| 2 |")
    assert "![rq1_fc_accuracy.png](rq1_fc_accuracy.png)" in md and "| rq1 | 1.50 | done |" in md
    page = (tmp_path / "index.html").read_text()
    assert '<img src="rq1_fc_accuracy.png"' in page and "<td>-1 | 2</td>" in page and "<script" not in page
    assert list(pd.read_csv(tmp_path / "claims.csv")["question"]) == ["rq1", "rq3"]


def test_without_the_table1_notebook_the_cells_rq4_gives_are_shown(tmp_path):
    rows = table1.empty_rows("fc", "")
    rows[rows["cell"].isin(["mask_init", "dense"])].to_csv(tmp_path / "rq4_table1_columns.csv", index=False)
    report.write_index(tmp_path, title="T", about=[])
    md = (tmp_path / "index.md").read_text()
    assert "## Table 1: the cells RQ4's runs give" in md
    assert "| network | one-shot mask, initial weights | trained dense network |" in md


def test_progress_tail_follows_the_notebooks_progress_file(tmp_path):
    from lt_core.paper.reproduce import ProgressTail

    path = tmp_path / "progress.jsonl"
    tail = ProgressTail(path, position=0)
    path.write_text('{"label": "rq1", "done": 0, "total": 5, "what": ""}\n'
                    '{"label": "rq1", "done": 2, "total": 5, "what": "lottery-fc-x round 1"}\n')
    tail.poll()
    assert (tail.bar.total, tail.bar.n, tail.label) == (5, 2, "rq1")
    with open(path, "a") as fh:
        fh.write('{"label": "rq5 fc", "done": 1, "total": 9, "what": "learnmask-fc-y"}\n')
    tail.poll()
    assert (tail.bar.total, tail.bar.n, tail.label) == (9, 1, "rq5 fc")
    tail.close()
