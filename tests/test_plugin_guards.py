"""Plug-ins are the user's code and are not trusted blindly: non-finite scores are refused by name, a
criterion or policy that edits its arguments in place changes nothing the run keeps, and a module that
exits while it is imported is an error naming it (not a silent exit 0)."""

import os
import subprocess
import sys

import pytest
import torch

import lt_core
from lt_core import compute_masks
from lt_core.criteria import CRITERIA
from lt_core.plugins import PluginError, load_plugin
from lt_core.policies import MASK0_POLICIES, MASK1_POLICIES, apply_mask0, apply_mask1

from .conftest import REPO, needs_mnist

REGISTRIES = {"criterion": CRITERIA, "mask1": MASK1_POLICIES, "mask0": MASK0_POLICIES}


@pytest.fixture
def registered():
    """Names a test registers itself, unregistered after it: ``registered.append((kind, name))``."""
    names = []
    yield names
    for kind, name in names:
        if name in REGISTRIES[kind]:
            REGISTRIES[kind].remove(name)


def _layers():
    w = {"a": torch.arange(1.0, 13.0).reshape(3, 4), "b": torch.arange(1.0, 7.0).reshape(2, 3)}
    return w, {n: torch.ones_like(t, dtype=torch.bool) for n, t in w.items()}


def test_non_finite_scores_are_refused_naming_the_criterion(registered):
    def nan_some(w_i, w_f, kept, gen):
        scores = w_f.abs()
        scores[0, :2] = float("nan")
        return scores

    lt_core.register_criterion("nan_some", nan_some, "NaN for two weights")
    lt_core.register_criterion("inf_global", lambda w_i, w_f, kept, gen: {n: w.abs() / 0.0 for n, w in w_f.items()},
                               "infinite everywhere", scope="network")
    registered += [("criterion", "nan_some"), ("criterion", "inf_global")]
    w, ones = _layers()
    with pytest.raises(ValueError) as err:
        compute_masks("nan_some", w, w, ones, {"a": 0.5, "b": 0.5}, seed=0)
    assert str(err.value) == ("criterion 'nan_some' returned 2 non-finite score(s) (NaN or infinity) for kept weights "
                              "of layer 'a'; scores must be finite numbers")
    with pytest.raises(ValueError, match="criterion 'inf_global' returned 12 non-finite score"):
        compute_masks("inf_global", w, w, ones, {"a": 0.5, "b": 0.5}, seed=0)
    # only kept positions matter: a NaN where a weight is already pruned is no score at all
    kept = {n: m.clone() for n, m in ones.items()}
    for m in kept.values():
        m[0, :2] = False
    masks = compute_masks("nan_some", w, w, kept, {"a": 0.5, "b": 0.5}, seed=0)
    assert int(masks["a"].sum()) == 5 and int(masks["b"].sum()) == 2


def test_plugins_that_edit_their_arguments_in_place_change_nothing(registered):
    def zeroing(w_i, w_f, kept, gen):
        scores = w_f.abs().clone()
        w_i.zero_(), w_f.zero_(), kept.zero_()
        return scores

    def zeroing_mask1(w, mask, alpha, gen):
        out = w.clone()
        w.zero_(), mask.zero_()
        return out

    def zeroing_mask0(w_i, w_f, start, mask, prev_mask, prev_frozen, gen):
        out = start.clone(), torch.zeros_like(start)
        for t in (w_i, w_f, start, mask, prev_mask, prev_frozen):
            t.zero_()
        return out

    lt_core.register_criterion("zeroing", zeroing, "edits its arguments")
    lt_core.register_criterion("zeroing_global", lambda wi, wf, k, g: {n: zeroing(wi[n], wf[n], k[n], g) for n in wf},
                               "edits its arguments", scope="network")
    lt_core.register_mask1("zeroing_mask1", zeroing_mask1, "edits its arguments")
    lt_core.register_mask0("zeroing_mask0", zeroing_mask0, "edits its arguments")
    registered += [("criterion", "zeroing"), ("criterion", "zeroing_global"), ("mask1", "zeroing_mask1"),
                   ("mask0", "zeroing_mask0")]
    w, ones = _layers()
    before = {n: t.clone() for n, t in w.items()}
    for name in ("zeroing", "zeroing_global"):
        masks = compute_masks(name, w, w, ones, {"a": 0.5, "b": 0.5}, seed=0)
        if name == "zeroing":
            assert masks["a"].reshape(-1).tolist() == [False] * 6 + [True] * 6  # ranked by the untouched |w_f|
        for n in w:
            assert torch.equal(w[n], before[n]) and bool(ones[n].all())
    gen = torch.Generator().manual_seed(0)
    mask = ones["a"].clone()
    assert torch.equal(apply_mask1("zeroing_mask1", w["a"], mask, 1.0, gen), before["a"])
    frozen = torch.full_like(w["a"], 7.0)
    apply_mask0("zeroing_mask0", w["a"], w["a"], w["a"], mask, mask, frozen, gen)
    assert torch.equal(w["a"], before["a"]) and bool(mask.all()) and bool((frozen == 7.0).all())


@needs_mnist
def test_a_criterion_zeroing_w_i_does_not_make_the_next_round_rewind_to_zeros(registered, tmp_path):
    lt_core.register_criterion("zeroing_w_i", lambda w_i, w_f, kept, gen: (w_f.abs(), w_i.zero_())[0],
                               "|w_f|, and w_i zeroed in place")
    registered.append(("criterion", "zeroing_w_i"))
    train = lt_core.TrainConfig(iterations=10, eval_every=10, eval_train=False, device="cpu")
    prune = lt_core.PruneConfig(criterion="zeroing_w_i", rounds=1)
    res = lt_core.run_lottery(lt_core.DataConfig(), lt_core.ModelConfig(), train, prune, out=tmp_path, progress=False)
    trunk, run = lt_core.store.RunDir(res.trunk_dir), lt_core.store.RunDir(res.run_dir)
    w_i = trunk.load_tensors(0, "init")["weights"]
    start = run.load_tensors(1, "init")["weights"]
    for name, w in w_i.items():
        assert bool(w.abs().sum() > 0) and torch.equal(start[name], w)  # rewound to the real initial weights


def test_a_plugin_that_exits_on_import_is_an_error_naming_it(tmp_path):
    module = tmp_path / "exits_on_import.py"
    module.write_text("import sys\nsys.exit(0)\n")
    with pytest.raises(PluginError) as err:
        load_plugin(str(module))
    message = (f"module {str(module)!r} called sys.exit(0) while it was imported; a plug-in must only register "
               "names (lt_core.register_criterion and friends)")
    assert str(err.value) == message
    assert "exits_on_import" not in sys.modules
    done = subprocess.run([sys.executable, "-m", "lt_core", "list", "--json", "--plugin", str(module)],
                          capture_output=True, text=True, cwd=REPO, env=dict(os.environ), timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == f"error: --plugin {module}: PluginError: {message}"
