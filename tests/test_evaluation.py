"""Where the test split is evaluated (``TrainConfig.eval_test``): every point, or only where a run's
validation loss reaches a new minimum and at the end, with the same reported numbers."""

import pytest
import torch

from lt_core import ConfigError, TrainConfig, load_dataset, train_dense
from lt_core.backends import BACKENDS, RunSpec, choose_backend
from lt_core.store import config_hash
from lt_core.models import get_arch, init_weights, zero_biases
from lt_core.store import read_metrics_csv
from lt_core.train import Trainer

from .conftest import needs_mnist

pytestmark = needs_mnist


def stack(arch):
    """Three runs with different masks (a third, half, all of fc1 kept) and data orders."""
    runs = []
    for i, keep in enumerate((1 / 3, 0.5, 1.0)):
        gen = torch.Generator().manual_seed(10 + i)
        masks = {l.name: (torch.rand(l.shape, generator=gen) < (keep if l.name == "fc1" else 1.0)).float()
                 for l in arch.layers}
        runs.append(RunSpec(f"r{i}", init_weights(arch, i), zero_biases(arch), masks, seed=i))
    return runs


def new_minima(evals):
    """Iterations where val_loss is below every earlier point's (the first point counts)."""
    out, best = [], float("inf")
    for e in evals:
        if e["val_loss"] < best:
            out.append(e["iteration"])
            best = e["val_loss"]
    return out


@pytest.mark.parametrize("backend", [None, "reference"])
def test_test_split_only_at_new_validation_minima_gives_the_same_early_stop_numbers(backend):
    ds = load_dataset("mnist", device="cpu")
    arch = get_arch("fc")
    # lr 5e-3 overfits within 150 steps: the validation loss falls, then rises and falls again
    kw = dict(lr=5e-3, batch_size=60, iterations=150, eval_every=10, eval_train=False, backend=backend)
    every = Trainer(arch, ds, stack(arch), **kw).run()
    best = Trainer(arch, ds, stack(arch), eval_test="best", **kw).run()
    skipped = 0
    for full, lean in zip(every, best):
        assert [e["iteration"] for e in lean.evals] == list(range(0, 151, 10))
        assert [e["val_loss"] for e in lean.evals] == [e["val_loss"] for e in full.evals]
        with_test = [e["iteration"] for e in lean.evals if "test_acc" in e]
        expected = sorted(set(new_minima(full.evals)) | {150})
        assert with_test == expected
        for e_full, e_lean in zip(full.evals, lean.evals):
            if "test_acc" in e_lean:  # the same number as in the full evaluation
                assert e_lean["test_acc"] == e_full["test_acc"]
                assert e_lean["test_loss"] == e_full["test_loss"]
        assert (lean.early_stop_iteration, lean.early_stop_test_acc, lean.final_test_acc) == \
               (full.early_stop_iteration, full.early_stop_test_acc, full.final_test_acc)
        skipped += len(full.evals) - len(with_test)
    assert skipped > 0  # the saving is real: some points went without the test split


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_evaluating_some_runs_of_a_stack_gives_their_numbers_in_the_stack(name):
    ds = load_dataset("mnist", device="cpu")
    arch = get_arch("fc")
    if not _applies(name, arch):
        pytest.skip(f"backend {name} does not apply here")
    backend = BACKENDS[name](arch, ds, stack(arch), 1e-3)
    loss, acc = backend.evaluate("val")
    sub_loss, sub_acc = backend.evaluate("val", runs=[2, 0])
    assert sub_loss.tolist() == [loss[2].item(), loss[0].item()]
    assert sub_acc.tolist() == [acc[2].item(), acc[0].item()]


def _applies(name, arch):
    try:
        return choose_backend(arch, torch.device("cpu"), name) is not None
    except Exception:
        return False


def test_eval_test_is_checked_and_is_not_part_of_the_run_identity(tmp_path):
    with pytest.raises(ConfigError, match=r"TrainConfig.eval_test: unknown value 'sometimes'; allowed values: every, best"):
        TrainConfig(eval_test="sometimes")
    assert config_hash("lottery", train=TrainConfig(eval_test="best")) == config_hash("lottery", train=TrainConfig())
    quick = TrainConfig(iterations=60, eval_every=20, eval_train=False, eval_test="best", device="cpu")
    res = train_dense(train=quick, out=tmp_path)
    rows = read_metrics_csv(res.run_dir / "round_000" / "metrics.csv")
    test_its = sorted({r["iteration"] for r in rows if r["split"] == "test"})
    val = {r["iteration"]: r["value"] for r in rows if r["split"] == "val" and r["metric"] == "loss"}
    assert sorted(val) == [0, 20, 40, 60]
    assert test_its == sorted(set(new_minima([{"iteration": k, "val_loss": v} for k, v in sorted(val.items())]))
                              | {60})
    again = train_dense(train=quick.replace(eval_test="every"), out=tmp_path)
    assert again.run_dir == res.run_dir and again.rounds[0].reused
