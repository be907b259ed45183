"""Mask-learning methods beyond the learner: sweep grids with a method axis, a reused run's method in
its result, the methods in ``list --json``, the presets' lengths for them."""

import pytest

from lt_core import ConfigError, EdgePopupConfig, LearnConfig, SignedMaskConfig, learn_supermask
from lt_core.presets import get_preset
from lt_core.supermask import method_of
from lt_core.sweep import TABLE_COLUMNS, Grid, run_experiments, work_units

from .conftest import needs_mnist
from .test_cli import cli, last_json


def test_a_method_axis_and_a_setting_axis_expand_per_method():
    grid = Grid.from_dict({"kind": "learn-mask", "method": ["zhou", "edge_popup", "signed"],
                           "keep_fraction": [0.1, 0.5], "seeds": [0, 1], "schedule": ["tiny"]})
    experiments = grid.experiments()
    # keep_fraction applies to edge_popup only: per seed one zhou, two edge_popup, one signed run
    assert [(e.seed, method_of(e.learns[0]).name, getattr(e.learns[0], "keep_fraction", None)) for e in experiments[:4]] == \
        [(0, "zhou", None), (0, "edge_popup", 0.1), (0, "edge_popup", 0.5), (0, "signed", None)]
    assert len(experiments) == 8
    assert experiments[1].learns[0] == EdgePopupConfig(keep_fraction=0.1, iterations=10, eval_every=5)  # presets.tiny
    assert experiments[3].learns[0] == SignedMaskConfig(iterations=10, eval_every=5)
    assert experiments[0].learns[0] == LearnConfig(iterations=10, eval_every=5)
    # one unit per seed and method: edge-popup's keep fractions train as one stack
    assert [len(u.experiments) for u in work_units(experiments)] == [1, 2, 1, 1, 2, 1]
    signed = Grid.from_dict({"kind": "learn-mask", "method": ["signed"], "weights": ["elus", "he"],
                             "threshold": [0.01, 0.05], "schedule": [{"iterations": 4}]}).experiments()
    assert [(e.learns[0].weights, e.learns[0].threshold, e.learns[0].iterations) for e in signed] == \
        [("elus", 0.01, 4), ("elus", 0.05, 4), ("he", 0.01, 4), ("he", 0.05, 4)]
    assert [len(u.experiments) for u in work_units(signed)] == [4]
    # a grid without a method axis is as before: zhou
    (zhou,) = Grid.from_dict({"kind": "learn-mask", "schedule": ["tiny"]}).experiments()
    assert zhou.learns[0] == LearnConfig(iterations=10, eval_every=5)
    assert {"method", "keep_fraction"} <= set(TABLE_COLUMNS)


@pytest.mark.parametrize("body, message", [
    ({"method": ["nope"]}, "method[0]: unknown value 'nope'; allowed values: zhou, edge_popup, signed"),
    ({"method": "signed"}, "method: expected a list of values, got 'signed' (write method: [signed])"),
    ({"keep_fraction": [0.1]}, "keep_fraction: not a setting of mask method zhou"),
    ({"method": ["edge_popup"], "keep_fraction": [0.0]},
     "keep_fraction[0] (method edge_popup): EdgePopupConfig.keep_fraction: 0.0 is out of range"),
    ({"method": ["edge_popup", "signed"], "weights": ["elus"]},
     "weights[0] (method edge_popup): EdgePopupConfig.weights: unknown value 'elus'"),
    ({"method": ["edge_popup"], "dwr": [True]}, "dwr: not a setting of mask method edge_popup"),
    ({"method": ["signed"], "iterations": [3]}, "iterations: not an axis of a learn-mask grid"),
    ({"method": ["signed"], "schedule": [{"iterations": 3, "bogus": 1}]},
     "schedule[0]: SignedMaskConfig: unknown field(s) bogus"),
    ({"method": ["signed", "signed"]}, "method: ['signed', 'signed'] lists a value twice"),
])
def test_bad_method_grids_are_refused_naming_the_field(body, message):
    with pytest.raises(ConfigError) as info:
        Grid.from_dict({"kind": "learn-mask", **body})
    assert message in str(info.value)


def test_presets_give_every_method_a_length_in_words():
    tiny, quick, paper = (get_preset(n) for n in ("tiny", "quick", "paper"))
    assert tiny.method_config("edge_popup", "fc", 2, keep_fraction=0.1) == \
        EdgePopupConfig(keep_fraction=0.1, seed=2, iterations=10, eval_every=5)
    assert quick.method_config("signed", "fc", 0) == SignedMaskConfig(epochs=10)
    assert paper.method_config("signed", "fc", 0) == SignedMaskConfig()  # the method's own 100 epochs
    assert paper.method_config("zhou", "fc", 1, weights="signed_constant") == paper.learn_config(
        "fc", 1, "signed_constant", False)  # the runs RQ5 and Table 1 train
    assert paper.schedule("fc", methods=["zhou", "edge_popup", "signed"]) == \
        "paper: training 55 epochs, learned masks 2000 epochs, edge_popup and signed 100 epochs"


@needs_mnist
def test_a_tiny_method_grid_runs_serially_and_a_rerun_reuses_it(tmp_path):
    experiments = Grid.from_dict({"kind": "learn-mask", "method": ["edge_popup", "signed"],
                                  "keep_fraction": [0.1, 0.5],
                                  "schedule": [{"iterations": 6, "eval_every": 3, "device": "cpu"}]}).experiments()
    table = run_experiments(experiments, "serial", out=tmp_path, progress=False)
    assert list(table["method"]) == ["edge_popup", "edge_popup", "signed"]
    assert list(table["keep_fraction"].iloc[:2]) == [0.1, 0.5]
    assert table["weights_remaining"].iloc[:2].tolist() == pytest.approx([0.1, 0.5], abs=1e-3)
    assert table["test_acc"].between(0, 1).all() and table["run_dir"].nunique() == 3
    again = run_experiments(experiments, "serial", out=tmp_path, progress=False)
    assert again.equals(table)


@needs_mnist
def test_a_reused_run_returns_its_method_and_keep_fraction(tmp_path):
    cfg = EdgePopupConfig(keep_fraction=0.3, iterations=4, eval_every=2, device="cpu")
    first = learn_supermask(learn=cfg, out=tmp_path)
    again = learn_supermask(learn=cfg, out=tmp_path)
    assert again.reused and again.method == "edge_popup"
    assert again.to_json() == first.to_json()
    assert again.to_json()["keep_fraction"] == pytest.approx(0.3, abs=1e-3)
    signed = SignedMaskConfig(iterations=4, eval_every=2, device="cpu")
    trained, reused = learn_supermask(learn=signed, out=tmp_path), learn_supermask(learn=signed, out=tmp_path)
    assert reused.to_json() == trained.to_json() and "inverted_fraction" in reused.to_json()
    zhou = LearnConfig(iterations=4, eval_every=2, eval_samples=1, device="cpu")
    learn_supermask(learn=zhou, out=tmp_path)
    assert "method" not in learn_supermask(learn=zhou, out=tmp_path).to_json()  # its JSON as it always was
    out = last_json(cli("learn-mask", "--method", "edge_popup", "--keep-fraction", "0.3", "--iterations", "4",
                        "--eval-every", "2", "--device", "cpu", "--out", str(tmp_path), "--json", "--quiet"))
    assert out["method"] == "edge_popup" and out["keep_fraction"] == first.to_json()["keep_fraction"]
    # each run's summary names the mask backend that computed its steps; a reused result leaves it out
    from lt_core import open_run
    from lt_core.backends import native

    summaries = {r.method if hasattr(r, "method") else "zhou": open_run(r.run_dir).summary
                 for r in (first, trained, learn_supermask(learn=zhou, out=tmp_path))}
    assert summaries["edge_popup"]["backend"] == summaries["signed"]["backend"] == "reference"
    assert summaries["zhou"]["backend"] == ("cpu_kernel" if native.library() is not None else "reference")
    assert "backend" not in again.to_json()


def test_list_names_the_mask_methods():
    listing = last_json(cli("list", "--json"))
    assert listing["mask_methods"][:3] == ["zhou", "edge_popup", "signed"]
    plain = cli("list")
    assert plain.returncode == 0 and "mask_methods:" in plain.stdout and "Koster et al. 2022" in plain.stdout


# The families notebook under papermill with the tiny preset: tests/test_reproduce.py runs every notebook
# (test_the_families_notebook_compares_the_three_families).


def test_the_families_notebook_refuses_an_unknown_method_naming_the_parameter(tmp_path):
    from lt_core.paper.params import notebook_params

    with pytest.raises(ConfigError, match=r"^parameter methods: unknown value 'popup'; allowed values: zhou, "
                                          r"edge_popup, signed"):
        notebook_params(preset="tiny", methods="edge_popup,popup", report_dir=str(tmp_path / "r"))


@needs_mnist
def test_the_families_notebook_compares_the_methods_it_is_given_a_plugins_too(tmp_path):
    from pathlib import Path

    import pandas as pd

    from lt_core.paper import questions
    from lt_core.paper.params import notebook_params

    plugin = Path(__file__).parent / "plugins" / "mask_method_plugin.py"
    p = notebook_params(preset="tiny", seeds=[0, 1], methods=["edge_popup", "sign_gate"], plugins=[str(plugin)],
                        results_dir=str(tmp_path / "results"), report_dir=str(tmp_path / "r"), device="cpu")
    exps = questions.experiments("families", p)
    # per seed: the dense run, one edge-popup stack of the four keep fractions, one sign_gate run; no Zhou
    assert [type(e).__name__ for e in exps] == ["Dense"] * 2 + ["LearnedMasks"] * 4
    assert [[c.keep_fraction for c in e.learns] for e in exps[2:4]] == [list(questions.FAMILY_KEEP_FRACTIONS)] * 2
    assert [len(e.learns) for e in exps[4:]] == [1, 1]
    answer = questions.families(p)
    best = answer.tables["best"]
    assert list(best["family"]) == ["edge_popup", "sign_gate", "dense"]
    assert best.loc[best["family"] == "sign_gate", "seeds"].item() == 2
    schedule = best["schedule"][0]
    assert "learned masks" not in schedule and "edge_popup and sign_gate 10 iterations" in schedule
    points = answer.tables["points"]
    assert set(points.loc[points["family"] == "edge_popup", "setting"]) == {"keep 5%", "keep 10%", "keep 30%",
                                                                            "keep 50%"}
    assert list(points.loc[points["family"] == "sign_gate", "setting"]) == ["sign_gate", "sign_gate"]
    verdicts = {c.claim.split(": ", 1)[1][:20]: c.verdict for c in answer.checks}
    assert verdicts["signed masks reach w"] == verdicts["signed masks keep fe"] == "not enough data"
    assert verdicts["edge-popup: its spar"] in {"PASS", "FAIL"}
    assert isinstance(answer.tables["best"], pd.DataFrame)
