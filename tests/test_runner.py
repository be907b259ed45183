"""The one runner (lt_core.runner): one experiment gives the engine's result objects and its frame, the
same whether it trained here or an executor trained it; an executor's experiments are not run here
again, and progress counts them once they are done."""

import json

import pytest

from lt_core.config import PruneConfig, TrainConfig
from lt_core.errors import StoreError
from lt_core.experiments import Dense, Lottery
from lt_core.runner import PROGRESS_ENV, run_experiment, run_experiments
from lt_core.sweep import executor

from .conftest import needs_mnist

TRAIN = TrainConfig(iterations=20, eval_every=10, eval_train=False, device="cpu")


@needs_mnist
def test_one_experiment_gives_the_engines_results_and_its_frame_alike_here_and_through_an_executor(tmp_path):
    exp = Lottery("fc", TRAIN, [PruneConfig(rounds=2), PruneConfig(criterion="random", rounds=2)])
    here = run_experiment(exp, out=tmp_path / "here", progress=False)
    assert [len(r.rounds) for r in here.result] == [3, 3] and not here.result[0].rounds[1].reused
    frame = here.frame.sort_values(["criterion", "round"]).reset_index(drop=True)
    assert list(frame["criterion"]) == ["large_final"] * 3 + ["random"] * 3
    # the frame holds what the engine returned, read back from the store
    for result, criterion in zip(here.result, ("large_final", "random")):
        rows = frame[frame["criterion"] == criterion]
        assert list(rows["early_stop_test_acc"]) == [r.early_stop_test_acc for r in result.rounds]
        assert list(rows["weights_remaining"]) == pytest.approx([r.weights_remaining for r in result.rounds])
    swept = run_experiment(exp, out=tmp_path / "swept", executor=executor("serial"), progress=False)
    assert all(r.reused for res in swept.result for r in res.rounds)  # trained by the executor, read back here
    other = swept.frame.sort_values(["criterion", "round"]).reset_index(drop=True)
    numbers = ["early_stop_iteration", "early_stop_test_acc", "final_test_acc", "weights_remaining"]
    assert other[numbers].equals(frame[numbers]) and list(other["run"]) == list(frame["run"])


def test_the_runner_leaves_an_executors_experiments_to_it_and_counts_them_done(tmp_path, monkeypatch):
    handed = []

    def nothing(experiments, root, stop):  # an executor that trains nothing: the runner must not train them
        handed.extend(experiments)

    progress = tmp_path / "progress.jsonl"
    monkeypatch.setenv(PROGRESS_ENV, str(progress))
    exps = [Dense("fc", TRAIN), Lottery("fc", TRAIN, [PruneConfig(rounds=3)])]
    with pytest.raises(StoreError, match=r"train-fc-\w+: not a run folder \(no config\.json\)"):
        run_experiments(exps, out=tmp_path / "results", executor=nothing, label="handed")  # read back: not there
    assert handed == exps
    assert not any((tmp_path / "results").glob("*/config.json"))  # nothing was trained here
    lines = [json.loads(line) for line in progress.read_text().splitlines()]
    assert [(line["done"], line["total"]) for line in lines] == [(0, 5), (1, 5), (5, 5)]
    assert [line["what"] for line in lines[1:]] == ["dense", "lottery"]
