"""Full-schedule checks against the paper's numbers (minutes each): ``pytest -m slow``."""

import pytest

from lt_core import (DataConfig, LearnConfig, ModelConfig, PruneConfig, SupermaskConfig, TrainConfig,
                     learn_supermasks, one_shot_supermasks, run_lotteries, train_dense)

from .conftest import needs_mnist

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600), needs_mnist]
PAPER = TrainConfig(eval_train=False)  # the paper's schedule: 55 epochs, 50,380 iterations


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One results store for the module: the dense run trains once and every test reuses it."""
    return tmp_path_factory.mktemp("paper-results")


def test_dense_fc_reaches_the_papers_accuracy(store):
    res = train_dense(train=PAPER, out=store)
    assert res.rounds[0].early_stop_test_acc >= 0.975  # paper: 97.7%


def test_large_final_beats_random_after_five_rounds(store):
    lf, rnd = run_lotteries(train=PAPER, prunes=[PruneConfig(rounds=5), PruneConfig(rounds=5, criterion="random")],
                            out=store)
    dense = lf.rounds[0].early_stop_test_acc
    assert max(r.early_stop_test_acc for r in lf.rounds[1:]) > dense  # winning tickets beat the dense net
    assert rnd.rounds[5].early_stop_test_acc < lf.rounds[5].early_stop_test_acc


def test_one_shot_supermask_far_above_chance(store):
    res = one_shot_supermasks(train=PAPER, sweep=SupermaskConfig(), out=store)
    best = {b["weights"]: b["test_acc"] for b in res.best}
    assert best["init"] > 0.6 and best["signed_constant"] > 0.7  # paper: 79.3% / 86.3%


def test_learned_supermask_with_dwr_approaches_the_dense_network(store):
    (res,) = learn_supermasks(DataConfig(), ModelConfig(), [LearnConfig(weights="signed_constant", dwr=True, epochs=20)],
                              out=store)
    assert res.test_acc_mean > 0.95  # paper, 2000 epochs: 97.8%
