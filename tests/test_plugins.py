"""Extension points: a criterion, a mask-1 and a mask-0 policy and an architecture registered by user code
(``tests/plugins/example_plugin.py``) work through the Python API and the CLI's ``--plugin``, and bad
registrations fail with one clear line."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import lt_core
from lt_core import ConfigError, compute_masks
from lt_core.archs import ARCHS
from lt_core.plugins import load_plugin
from lt_core.criteria import CRITERIA
from lt_core.policies import MASK0_POLICIES, MASK1_POLICIES, apply_mask0, apply_mask1
from lt_core.store import RunDir

from .conftest import REPO, needs_mnist

PLUGIN = Path(__file__).resolve().parent / "plugins" / "example_plugin.py"
REGISTRIES = {"criterion": CRITERIA, "mask1": MASK1_POLICIES, "mask0": MASK0_POLICIES, "arch": ARCHS}


@pytest.fixture
def plugin():
    """The example plugin, loaded for one test and unregistered after it."""
    load_plugin(str(PLUGIN))
    module = sys.modules["example_plugin"]
    yield module
    for kind, names in module.NAMES.items():
        for name in names:
            REGISTRIES[kind].remove(name)
    del sys.modules["example_plugin"]


@pytest.fixture
def registered():
    """Names a test registers itself, unregistered after it: ``registered.append((kind, name))``."""
    names = []
    yield names
    for kind, name in names:
        if name in REGISTRIES[kind]:
            REGISTRIES[kind].remove(name)


def test_registered_names_are_valid_config_choices(plugin):
    cfg = lt_core.PruneConfig(criterion="product_magnitude", mask1="negated", mask0="freeze_final")
    assert cfg.criterion == "product_magnitude"
    assert lt_core.ModelConfig(arch="fc50").arch == "fc50"
    arch = lt_core.get_arch("fc50")
    assert [layer.shape for layer in arch.layers] == [(50, 784), (10, 50)]
    assert arch.num_weights == 784 * 50 + 50 * 10


@needs_mnist
def test_plugin_runs_through_the_api(plugin, tmp_path):
    train = lt_core.TrainConfig(iterations=20, eval_every=10, eval_train=False, device="cpu")
    prune = lt_core.PruneConfig(criterion="product_magnitude", mask1="negated", mask0="freeze_final", rounds=1)
    res = lt_core.run_lottery(lt_core.DataConfig(), lt_core.ModelConfig(arch="fc50"), train, prune, out=tmp_path)
    assert [r.round for r in res.rounds] == [0, 1]
    assert Path(res.run_dir).name.startswith("lottery-fc50-")
    stored = json.loads((Path(res.run_dir) / "config.json").read_text())
    assert stored["prune"]["criterion"] == "product_magnitude" and stored["model"]["arch"] == "fc50"

    trunk, run = RunDir(res.trunk_dir), RunDir(res.run_dir)
    w_i, w_f = trunk.load_tensors(0, "init")["weights"], trunk.load_tensors(0, "final")["weights"]
    masks, init = run.load_tensors(1, "masks"), run.load_tensors(1, "init")["weights"]
    frozen = run.load_tensors(1, "frozen")
    # fc1 prunes floor(0.2 * 39200) = 7840 weights, the output layer floor(0.1 * 500) = 50
    assert int((~masks["fc1"].bool()).sum()) == 7840 and int((~masks["fc2"].bool()).sum()) == 50
    for name in ("fc1", "fc2"):
        kept = masks[name].bool()
        score = (w_i[name] * w_f[name]).abs()
        assert score[kept].min() >= score[~kept].max()  # the criterion chose the pruned weights
        torch.testing.assert_close(init[name], -w_i[name], rtol=0, atol=0)  # mask-1: sign flipped
        torch.testing.assert_close(frozen[name], torch.where(kept, torch.zeros_like(w_f[name]), w_f[name]),
                                   rtol=0, atol=0)  # mask-0: pruned weights frozen at their final values


def test_network_scope_prunes_the_lowest_scores_across_layers(plugin):
    w = {"a": torch.tensor([[1.0, 2.0, 3.0, 4.0]]), "b": torch.tensor([[0.5, 10.0]])}
    ones = {n: torch.ones_like(t, dtype=torch.bool) for n, t in w.items()}
    # per-layer counts floor(0.5 * 4) = 2 and floor(0.5 * 2) = 1: three weights go, the three smallest overall
    masks = compute_masks("global_magnitude", w, w, ones, {"a": 0.5, "b": 0.5}, seed=0)
    assert masks["a"].tolist() == [[False, False, True, True]] and masks["b"].tolist() == [[False, True]]
    # a layer with fraction 0 is out of the pool: only a's two weights go, and b's 0.5 survives
    masks = compute_masks("global_magnitude", w, w, ones, {"a": 0.5, "b": 0.0}, seed=0)
    assert masks["a"].tolist() == [[False, False, True, True]] and masks["b"].tolist() == [[True, True]]


@needs_mnist
def test_plugin_runs_through_the_cli(tmp_path):
    args = [sys.executable, "-m", "lt_core", "lottery", "--plugin", str(PLUGIN), "--arch", "fc50",
            "--criterion", "product_magnitude,global_magnitude", "--mask1", "negated", "--mask0", "freeze_final",
            "--rounds", "1", "--iterations", "20", "--eval-every", "10", "--no-train-eval", "--device", "cpu",
            "--quiet", "--json", "--out", str(tmp_path)]
    done = subprocess.run(args, capture_output=True, text=True, cwd=REPO, env=dict(os.environ), timeout=600)
    assert done.returncode == 0, done.stderr
    runs = json.loads(done.stdout.strip().splitlines()[-1])["runs"]
    assert [r["criterion"] for r in runs] == ["product_magnitude", "global_magnitude"]
    assert all(Path(r["run_dir"]).name.startswith("lottery-fc50-") and len(r["rounds"]) == 2 for r in runs)


def test_cli_plugin_by_module_name_and_without_it():
    def run(*args):
        return subprocess.run([sys.executable, "-m", "lt_core", *args], capture_output=True, text=True, cwd=REPO,
                              env=dict(os.environ), timeout=600)

    done = run("list", "--json", "--plugin", "tests.plugins.example_plugin")
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout.strip().splitlines()[-1])
    assert listing["architectures"][-1] == "fc50" and "global_magnitude" in listing["criteria"]
    assert "negated" in listing["mask1_policies"] and "freeze_final" in listing["mask0_policies"]
    done = run("train", "--arch", "fc50")
    assert done.returncode == 2 and "invalid choice: 'fc50'" in done.stderr
    done = run("list", "--plugin", "no_such_plugin_module")
    assert done.returncode == 2
    assert done.stderr.strip() == ("error: --plugin no_such_plugin_module: ModuleNotFoundError: "
                                   "No module named 'no_such_plugin_module'")


def test_registering_an_existing_name_fails(registered):
    with pytest.raises(ConfigError, match="criterion: a criterion named 'large_final' is already registered"):
        lt_core.register_criterion("large_final", lambda wi, wf, kept, gen: wf, "again")
    with pytest.raises(ConfigError, match="mask1: a mask-1 policy named 'rewind' is already registered"):
        lt_core.register_mask1("rewind", lambda w, mask, alpha, gen: w, "again")
    with pytest.raises(ConfigError, match="mask0: a mask-0 policy named 'zero' is already registered"):
        lt_core.register_mask0("zero", lambda *a: a[2:4], "again")
    with pytest.raises(ConfigError, match="arch: an architecture named 'conv8' is already registered"):
        lt_core.register_arch(lt_core.get_arch("conv8"))
    with pytest.raises(ConfigError, match="'two words' is not a valid criterion name"):
        lt_core.register_criterion("two words", lambda wi, wf, kept, gen: wf, "bad name")
    with pytest.raises(ConfigError, match="scope 'everything' of 'odd' is unknown; allowed values: layer, network"):
        lt_core.register_criterion("odd", lambda wi, wf, kept, gen: wf, "bad scope", scope="everything")
    registered.append(("criterion", "odd"))


def test_wrong_shapes_are_reported_with_the_name(registered):
    lt_core.register_criterion("flat_scores", lambda wi, wf, kept, gen: wf.abs().reshape(-1), "wrong shape")
    lt_core.register_criterion("partial_scores", lambda wi, wf, kept, gen: {"a": wf["a"]}, "a missing layer",
                               scope="network")
    lt_core.register_mask1("flat_start", lambda w, mask, alpha, gen: w.reshape(-1), "wrong shape")
    lt_core.register_mask0("single", lambda wi, wf, start, mask, pm, pf, gen: start, "not a pair")
    registered += [("criterion", "flat_scores"), ("criterion", "partial_scores"), ("mask1", "flat_start"),
                   ("mask0", "single")]
    w = {"a": torch.ones(3, 4), "b": torch.ones(2, 3)}
    ones = {n: torch.ones_like(t, dtype=torch.bool) for n, t in w.items()}
    with pytest.raises(ValueError, match=r"criterion 'flat_scores' returned scores of shape \(12,\) for layer 'a'; "
                                         r"expected the layer's weight shape \(3, 4\)"):
        compute_masks("flat_scores", w, w, ones, {"a": 0.5, "b": 0.5}, seed=0)
    with pytest.raises(ValueError, match="criterion 'partial_scores' .scope 'network'. must return a dict of scores "
                                         "for the layers a, b; got dict for a"):
        compute_masks("partial_scores", w, w, ones, {"a": 0.5, "b": 0.5}, seed=0)
    gen = torch.Generator()
    with pytest.raises(ValueError, match=r"mask-1 policy 'flat_start' returned starting weights of shape \(12,\)"):
        apply_mask1("flat_start", w["a"], ones["a"], 1.0, gen)
    with pytest.raises(ValueError, match=r"mask-0 policy 'single' returned Tensor; expected a pair \(start, frozen\)"):
        apply_mask0("single", w["a"], w["a"], w["a"], ones["a"], ones["a"], None, gen)


def test_dashboard_offers_what_was_registered_before_it_is_built(plugin, tmp_path):
    from lt_core.dashboard import RunRequest, plan_jobs

    jobs = plan_jobs(RunRequest(arch="fc50", criteria=("global_magnitude",), mask1="negated", mask0="freeze_final",
                                schedule="quick"))
    assert jobs[0].iterations == 300  # fc_arch's quick preset
    pytest.importorskip("jupyter_bokeh")
    from lt_core.dashboard import build_app

    controls = build_app(results_root=tmp_path).controls
    assert ("FC 784-50-10 (MNIST)", "fc50") in controls.arch.options
    assert "global_magnitude" in [value for _, value in controls.criteria.options]
    assert "negated" in [value for _, value in controls.mask1.options]
    assert "freeze_final" in [value for _, value in controls.mask0.options]
    assert "freeze_final" in controls.mask0.tooltip


def test_notebook_parameters_load_plugins_before_checking_names(tmp_path):
    from lt_core.paper.params import notebook_params

    with pytest.raises(ConfigError, match="parameter archs: unknown value 'fc50'"):
        notebook_params(preset="tiny", archs=["fc50"], report_dir=str(tmp_path / "r"))
    with pytest.raises(ConfigError, match=r"parameter plugins: cannot load 'no_such_plugin_module' \(ModuleNotFound"):
        notebook_params(preset="tiny", plugins=["no_such_plugin_module"], report_dir=str(tmp_path / "r"))
    try:
        p = notebook_params(preset="tiny", archs="fc50", criteria=["product_magnitude"], plugins=str(PLUGIN),
                            report_dir=str(tmp_path / "r"))
        assert p.archs == ["fc50"] and p.criteria == ["product_magnitude"]
    finally:
        module = sys.modules.pop("example_plugin", None)
        for kind, names in (module.NAMES.items() if module else ()):
            for name in names:
                REGISTRIES[kind].remove(name)


@needs_mnist
def test_reproduce_hands_plugins_to_the_notebooks(tmp_path):
    """``reproduce --plugin FILE --archs NAME``: every notebook loads the plugin, so its network is a valid arch."""
    args = [sys.executable, "-m", "lt_core", "reproduce", "--preset", "tiny", "--only", "rq1", "--archs", "fc50",
            "--plugin", os.path.relpath(PLUGIN, REPO), "--device", "cpu", "--quiet",
            "--report-dir", str(tmp_path / "out"), "--results-dir", str(tmp_path / "results")]
    done = subprocess.run(args, capture_output=True, text=True, cwd=REPO, env=dict(os.environ), timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    runs = [p.name for p in (tmp_path / "results").iterdir()]
    assert any(name.startswith("lottery-fc50-") for name in runs), runs
