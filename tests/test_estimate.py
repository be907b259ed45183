"""The reproduction's estimate: the work left (stored work left out, shared work counted once), priced
at rates measured on this machine."""

from dataclasses import dataclass

import pytest

from lt_core import DataConfig, PruneConfig, TrainConfig
from lt_core.paper.estimate import Estimate, Rates, work_to_do
from lt_core.experiments import Dense, LearnedMasks, LearnedStack, Lottery, SupermaskPoints, Supermasks, TrainRound
from lt_core.presets import get_preset
from lt_core.runner import run_experiments
from lt_core.supermask import EdgePopupConfig, LearnConfig, SignedMaskConfig, SupermaskConfig

from .conftest import needs_mnist

TRAIN = TrainConfig(iterations=20, eval_every=10, eval_train=False, eval_test="best", device="cpu")
PRUNES = [PruneConfig(rounds=2), PruneConfig(rounds=2, criterion="random")]
# 3 evaluation points (0, 10, 20); each prices the validation split, and the test split (twice its
# images) is evaluated at most at every point: 3 + 2 x 3 validation-split evaluations a round
EVALS = 3 + 2 * 3


def test_an_empty_store_prices_every_round_step_and_point(tmp_path):
    learn = LearnedMasks("fc", [LearnConfig(iterations=30, eval_every=10), LearnConfig(weights="signed_constant",
                                                                                      iterations=30, eval_every=10)])
    sweep = Supermasks("fc", TRAIN, SupermaskConfig(criteria=("large_final",), powers=(0, 1, 2)))
    work = work_to_do([Lottery("fc", TRAIN, PRUNES), sweep, learn], tmp_path, set())
    assert work.train_steps == {("fc", 1, 0): 20, ("fc", 2, 1): 20, ("fc", 2, 2): 20}  # the trunk once
    assert work.val_evals == {("fc", 1, 0): EVALS, ("fc", 2, 1): EVALS, ("fc", 2, 2): EVALS}
    assert work.supermask_points == {"fc": 2 * 3}  # two weight kinds x three powers
    assert work.learn_steps == {("fc", "zhou", 2): 30} and work.learn_evals == {("fc", "zhou", 2): 3}


def test_work_shared_between_notebooks_is_priced_once(tmp_path):
    seen = set()
    first = work_to_do([Dense("fc", TRAIN), Lottery("fc", TRAIN, PRUNES[:1])], tmp_path, seen)
    second = work_to_do([Dense("fc", TRAIN), Lottery("fc", TRAIN, PRUNES)], tmp_path, seen)
    assert first.train_steps == {("fc", 1, 0): 20, ("fc", 1, 1): 20, ("fc", 1, 2): 20}
    assert second.train_steps == {("fc", 1, 1): 20, ("fc", 1, 2): 20}  # only the random criterion's rounds


@needs_mnist
def test_stored_rounds_are_left_out(tmp_path):
    run_experiments([Lottery("fc", TRAIN, [PruneConfig(rounds=1)])], out=tmp_path)
    work = work_to_do([Lottery("fc", TRAIN, [PruneConfig(rounds=2)])], tmp_path, set())
    assert work.train_steps == {("fc", 1, 2): 20}  # round 0 and round 1 are stored (rounds may grow)
    assert work_to_do([Dense("fc", TRAIN)], tmp_path, set()).empty()


@needs_mnist
def test_each_kind_says_its_work_left_against_a_store_made_with_the_tiny_preset(tmp_path):
    tiny = get_preset("tiny")  # training 20 iterations evaluated every 20; learned masks 10, every 5
    train = tiny.train_config("fc", 0, "cpu")
    zhou = [tiny.learn_config("fc", 0, w, dwr, "cpu") for w in ("init", "signed_constant") for dwr in (False, True)]
    popup = [tiny.method_config("edge_popup", "fc", 0, "cpu", keep_fraction=k) for k in (0.1, 0.3)]
    prunes = [PruneConfig(rounds=2), PruneConfig(rounds=2, criterion="random")]
    # stored: the trunk, round 1 of the large_final run, the points at power 0, Zhou's first variant
    sweep = tiny.supermask_config(["large_final"])
    run_experiments([Lottery("fc", train, [PruneConfig(rounds=1)]), Supermasks("fc", train, sweep.replace(powers=(0,))),
                     LearnedMasks("fc", zhou[:1])], out=tmp_path)
    plan = [Dense("fc", train), Lottery("fc", train, prunes), Supermasks("fc", train, sweep), LearnedMasks("fc", zhou),
            LearnedMasks("fc", popup)]
    seen = set()
    work = work_to_do(plan, tmp_path, seen)
    # round 1 of the random run alone, round 2 of both; points 0 and 20 priced with 2 x 2 test-split evaluations
    assert work.train_steps == {("fc", 1, 1): 20, ("fc", 2, 2): 20}
    assert work.val_evals == {("fc", 1, 1): 2 + 2 * 2, ("fc", 2, 2): 2 + 2 * 2}
    assert work.supermask_points == {"fc": 2 * 4 - 2}  # two weight kinds x powers 0, 4, 8, 12; power 0 stored
    assert work.learn_steps == {("fc", "zhou", 3): 10, ("fc", "edge_popup", 2): 10}
    assert work.learn_evals == {("fc", "zhou", 3): 2, ("fc", "edge_popup", 2): 2}
    assert work_to_do(plan, tmp_path, seen).empty()  # a second notebook of the same experiments: all priced


@dataclass(frozen=True)
class Retrain:
    """A kind of experiment the estimate was not written for: the trunk of ``train`` next to a second run
    in one stack, then a learned mask; it says its work in the work items of lt_core.experiments."""

    arch: str
    train: TrainConfig

    def work_left(self, root):
        trunk = Dense(self.arch, self.train).keys()[0].folder(root).name
        return [TrainRound(self.arch, 0, 20, 10, (trunk, "retrain-fc")),
                LearnedStack(self.arch, "signed", 40, 2, ("retrain-mask",)),
                SupermaskPoints(self.arch, (("retrain-fc", "large_final", "init", 3),))]


def test_a_new_kind_of_experiment_is_priced_from_its_own_work_left(tmp_path):
    work = work_to_do([Dense("fc", TRAIN), Retrain("fc", TRAIN)], tmp_path, set())
    # the trunk the dense run already priced counts once: the retrain stack is priced as its other run
    assert work.train_steps == {("fc", 1, 0): 2 * 20} and work.val_evals == {("fc", 1, 0): 2 * EVALS}
    assert work.learn_steps == {("fc", "signed", 1): 40} and work.learn_evals == {("fc", "signed", 1): 2}
    assert work.supermask_points == {"fc": 1}


def test_work_of_a_type_without_a_rate_is_refused(tmp_path):
    @dataclass(frozen=True)
    class Unpriced:
        parts: tuple = ("x",)

    @dataclass(frozen=True)
    class Odd:
        arch: str = "fc"

        def work_left(self, root):
            return [Unpriced()]

    with pytest.raises(TypeError, match="Unpriced"):
        work_to_do([Odd()], tmp_path, set())


def test_seconds_are_work_times_the_measured_rates(monkeypatch):
    rates = Rates("cpu")
    # (step s, validation evaluation s) of a stack, dense and at the pruned sample round 12
    rates._cache.update({("train", "fc", 2, 0): (0.004, 0.5), ("train", "fc", 2, 12): (0.002, 0.1),
                         ("train", "fc", 1, 0): (0.001, 0.2), ("learn", "fc", "zhou", 2): (0.003, 1.0)})
    work = work_to_do([Lottery("fc", TRAIN, PRUNES)], "/nonexistent-store", set())
    # round 0: 20 x 0.001 + 9 x 0.2; round 1: rates 1/12 of the way to the pruned ones; round 2: 2/12
    r1 = (0.004 - 0.002 * 1 / 12, 0.5 - 0.4 * 1 / 12)
    r2 = (0.004 - 0.002 * 2 / 12, 0.5 - 0.4 * 2 / 12)
    expected = 20 * 0.001 + EVALS * 0.2 + 20 * (r1[0] + r2[0]) + EVALS * (r1[1] + r2[1])
    assert rates.seconds(work) == pytest.approx(expected)
    work.supermask_points["fc"] = 4  # a point evaluates the training and test splits: 13 validation splits
    work.learn_steps[("fc", "zhou", 2)], work.learn_evals[("fc", "zhou", 2)] = 100, 5
    assert rates.seconds(work) == pytest.approx(expected + 4 * 13 * 0.2 + 100 * 0.003 + 5 * 1.0)


def test_each_mask_methods_runs_are_priced_at_its_own_rate():
    rates = Rates("cpu")
    # (step s, evaluation point s) of the largest stack of each method
    rates._cache.update({("learn", "fc", "zhou", 2): (0.003, 1.0), ("learn", "fc", "edge_popup", 3): (0.02, 4.0),
                         ("learn", "fc", "signed", 1): (0.5, 7.0)})
    zhou = LearnedMasks("fc", [LearnConfig(iterations=30, eval_every=10),
                               LearnConfig(weights="signed_constant", iterations=30, eval_every=10)])
    popup = [EdgePopupConfig(keep_fraction=k, iterations=20, eval_every=10) for k in (0.1, 0.3, 0.5)]
    signed = LearnedMasks("fc", [SignedMaskConfig(iterations=40, eval_every=20)])
    work = work_to_do([zhou, LearnedMasks("fc", popup), LearnedMasks("fc", popup[:1], DataConfig(val_size=4000)),
                       signed], "/nonexistent-store", set())
    assert work.learn_steps == {("fc", "zhou", 2): 30, ("fc", "edge_popup", 3): 20, ("fc", "edge_popup", 1): 20,
                                ("fc", "signed", 1): 40}
    assert work.learn_evals == {("fc", "zhou", 2): 3, ("fc", "edge_popup", 3): 2, ("fc", "edge_popup", 1): 2,
                                ("fc", "signed", 1): 2}
    # a stack of K is priced per run of its method's largest stack
    expected = (30 * 0.003 + 3 * 1.0) + (20 * 0.02 + 2 * 4.0) * (1 + 1 / 3) + (40 * 0.5 + 2 * 7.0)
    assert rates.seconds(work) == pytest.approx(expected)


@needs_mnist
@pytest.mark.parametrize("method", ["edge_popup", "signed"])
def test_a_methods_rate_is_measured_on_its_own_learner(method, monkeypatch):
    from lt_core.supermask import MASK_METHODS

    learner = MASK_METHODS[method].learner
    stepped = []
    real_step = learner.step
    monkeypatch.setattr(learner, "step", lambda self, it: stepped.append(type(self)) or real_step(self, it))
    rates = Rates("cpu")
    step, evaluation = rates.learn("fc", 2, method)
    assert step > 0 and evaluation > 0 and set(stepped) == {learner}
    assert rates._cache[("learn", "fc", method, 2)] == (step, evaluation)


def test_the_line_names_the_total_and_each_notebook():
    e = Estimate({"rq4": 50 * 60, "rq5": 2 * 3600 + 5 * 60, "table1": 10}, "cpu")
    assert e.line() == ("Estimated time on this machine (cpu, rates measured just now; stored work left out): "
                        "2 h 55 min (rq4 50 min, rq5 2 h 05 min, table1 under a minute)")


@needs_mnist
def test_every_notebook_is_priced_from_one_measurement_of_the_largest_stack(tmp_path, monkeypatch):
    from lt_core.paper.estimate import estimate

    measured = []

    def fake_train(self, arch, runs, k):  # (step s, evaluation s), linear in the stack's size
        measured.append((arch, runs, k))
        return 0.001 * runs, 0.1 * runs

    monkeypatch.setattr(Rates, "train", fake_train)
    three = PRUNES + [PruneConfig(rounds=2, criterion="movement")]
    plans = {"small": [Lottery("fc", TRAIN, PRUNES)], "large": [Lottery("fc", TRAIN.replace(seed=1), three)]}
    e = estimate(plans, tmp_path, device="cpu")
    assert {runs for _, runs, _ in measured} == {1, 3}  # the small notebook's stack of 2 is not measured
    one_round = 20 * 0.001 + EVALS * 0.1  # a run alone: its trunk
    # a stack of 2 is priced halfway between one run and the stack of 3 (pruned rounds as dense: same rates)
    assert e.seconds["small"] == pytest.approx(one_round + 2 * (20 * 0.002 + EVALS * 0.2))
    assert e.seconds["large"] == pytest.approx(one_round + 2 * (20 * 0.003 + EVALS * 0.3))
