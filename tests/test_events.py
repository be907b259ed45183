"""Typed events: dataclasses that read as the JSON-ready dicts listeners were written for."""

import json

import pytest

from lt_core import DataConfig, ModelConfig, PruneConfig, TrainConfig
from lt_core.events import EVENT_TYPES, Eval, Event, LearnEnd, RoundEnd, Stage, SupermaskPoint, with_run_dir
from lt_core.lottery import run_lottery
from lt_core.store import run_key

from .conftest import needs_mnist


def test_an_event_is_its_dict():
    end = RoundEnd(run="lottery-fc-abc", round=2, weights_remaining=0.64, layer_remaining={"fc1": 0.64},
                   early_stop_iteration=100, early_stop_test_acc=0.9, final_test_acc=0.89, reused=False)
    expected = {"event": "round_end", "run": "lottery-fc-abc", "round": 2, "weights_remaining": 0.64,
                "layer_remaining": {"fc1": 0.64}, "early_stop_iteration": 100, "early_stop_test_acc": 0.9,
                "final_test_acc": 0.89, "reused": False}
    assert end.to_dict() == expected and end == expected and dict(end) == expected
    assert end["round"] == 2 and end.get("stage") is None and end.round == 2
    # a stage's details are spread into its dict; run, run_dir and round appear only where known
    stage = Stage(stage="data_loaded", details={"dataset": "mnist", "device": "cpu"})
    assert stage == {"event": "stage", "stage": "data_loaded", "dataset": "mnist", "device": "cpu"}
    waiting = Stage(stage="waiting", run="train-fc-1", details={"host": None, "pid": None})
    assert waiting == {"event": "stage", "stage": "waiting", "run": "train-fc-1", "host": None, "pid": None}
    ev = Eval(run="r", round=0, iteration=50, iterations=100, metrics={"val_loss": 0.5, "val_acc": 0.8})
    assert ev == {"event": "eval", "run": "r", "round": 0, "iteration": 50, "iterations": 100, "val_loss": 0.5,
                  "val_acc": 0.8}
    assert json.loads(json.dumps(ev.to_dict())) == ev
    assert set(EVENT_TYPES) == {"stage", "eval", "round_end", "supermask_point", "learn_eval", "learn_end"}
    with pytest.raises(TypeError):
        SupermaskPoint(run="s", criterion="large_final")  # a point without its numbers is no point


def test_with_run_dir_adds_the_folder_of_events_that_name_a_run(tmp_path):
    seen = []
    forward = with_run_dir(seen.append, tmp_path)
    forward(LearnEnd(run="learnmask-fc-1", result={"test_acc_mean": 0.9}))
    forward(Stage(stage="data_loaded", details={"dataset": "mnist"}))
    assert seen[0].run_dir == str(tmp_path.absolute() / "learnmask-fc-1") and isinstance(seen[0], LearnEnd)
    assert seen[0]["test_acc_mean"] == 0.9
    assert seen[1].run_dir is None and "run_dir" not in seen[1]


@needs_mnist
def test_a_lottery_emits_typed_events_keyed_by_its_run_key(tmp_path):
    train = TrainConfig(iterations=20, eval_every=10, eval_train=False, device="cpu")
    prune = PruneConfig(rounds=1)
    events = []
    run_lottery(DataConfig(), ModelConfig(), train, prune, out=tmp_path, on_event=events.append)
    assert all(isinstance(e, Event) for e in events)
    dense, lottery = run_key("train", DataConfig(), ModelConfig(), train), \
        run_key("lottery", DataConfig(), ModelConfig(), train, prune)
    ends = [e for e in events if isinstance(e, RoundEnd)]
    assert [(e.run, e.round) for e in ends] == [(dense.name, 0), (lottery.name, 1)]
    assert all(e.run_dir == str(key.folder(tmp_path.absolute()).path) for e, key in zip(ends, (dense, lottery)))
    evals = [e for e in events if isinstance(e, Eval)]
    # evaluation points at the start and every eval_every iterations
    assert [(e.run, e.iteration) for e in evals] == [(run.name, it) for run in (dense, lottery) for it in (0, 10, 20)]
    assert all("val_acc" in e.metrics for e in evals)
