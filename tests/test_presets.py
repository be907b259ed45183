"""Presets read the architecture records; notebook parameters are read the same way however they arrive."""

import json
from pathlib import Path

import pytest

from lt_core import ConfigError, TrainConfig
from lt_core.archs import get_arch
from lt_core.experiments import Dense, LearnedMasks, Lottery, Supermasks, join
from lt_core.runner import run_experiments
from lt_core.sweep import executor
from lt_core.store import run_key
from lt_core.paper.params import as_list, notebook_params
from lt_core.presets import PRESETS, get_preset
from lt_core import DataConfig, ModelConfig, PruneConfig

from .conftest import needs_mnist


def test_presets_schedules_come_from_the_arch_records():
    quick = get_preset("quick").train_config("fc", 1)
    assert (quick.iterations, quick.eval_every, quick.eval_train, quick.seed) == (300, 50, False, 1)
    assert get_preset("quick").learn_config("fc", 0, "init", True).epochs == get_arch("fc").quick.learn_epochs == 10
    paper = get_preset("paper").train_config("fc", 0)
    assert (paper.epochs, paper.iterations, paper.lr, paper.eval_train) == (None, None, None, False)
    assert get_preset("paper").learn_config("conv2", 0, "signed_constant", False).epochs is None  # Arch.learn_epochs
    assert (get_preset("paper").rounds, get_preset("paper").seeds) == (24, (0, 1, 2, 3, 4))
    assert get_preset("tiny").train_config("fc", 0).iterations == 20
    assert get_preset("paper").schedule("fc") == "paper: training 55 epochs, learned masks 2000 epochs"
    assert get_preset("quick").schedule("conv2") == "quick: training 200 iterations, learned masks 2 epochs"
    with pytest.raises(ConfigError, match="preset: unknown value 'fast'; allowed values: tiny, quick, paper"):
        get_preset("fast")


def test_one_trunk_per_preset_network_and_seed():
    """Every notebook builds its trunk from the preset: one store entry, whatever the device."""
    a = get_preset("quick").train_config("fc", 0, "cpu")
    b = get_preset("quick").train_config("fc", 0, "cuda")
    assert run_key("train", DataConfig(), ModelConfig(), a).name == run_key("train", DataConfig(), ModelConfig(), b).name


@pytest.mark.parametrize("value,kind,expected", [
    ([0, 1], int, [0, 1]), ("[0, 1, 2]", int, [0, 1, 2]), ("0,1", int, [0, 1]), (3, int, [3]),
    ("[large_final, random]", str, ["large_final", "random"]), ("movement", str, ["movement"]),
    (("a", "b"), str, ["a", "b"]),
])
def test_as_list_reads_lists_yaml_strings_comma_lists_and_single_values(value, kind, expected):
    assert as_list("x", value, kind) == expected


@pytest.mark.parametrize("value,kind,message", [
    ("[0, 1", int, "parameter seeds: cannot read '[0, 1' as a list of integers"),
    ("0,a", int, "parameter seeds: '0,a' is not a list of integers"),
    ("[0.5]", int, "parameter seeds: 0.5 is not an integer"),
    ("[]", int, "parameter seeds: the list is empty"),
])
def test_as_list_errors_name_the_parameter(value, kind, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        as_list("seeds", value, kind)


def test_notebook_params_fill_from_the_preset_and_check_names(tmp_path):
    p = notebook_params(preset="paper", seeds=None, criteria="[large_final, random]", report_dir=str(tmp_path / "r"),
                        results_dir=str(tmp_path / "store"))
    assert (p.seeds, p.rounds, p.criteria, p.archs) == ([0, 1, 2, 3, 4], 24, ["large_final", "random"], ["fc"])
    assert p.report_dir.is_dir() and p.results_dir == tmp_path / "store"
    assert notebook_params(preset="tiny", seeds="[3]", rounds="5", report_dir=str(tmp_path)).seeds == [3]
    assert notebook_params(preset="tiny", rounds="5", report_dir=str(tmp_path)).rounds == 5
    with pytest.raises(ConfigError, match="parameter criteria: unknown value 'largest'; allowed values: large_final"):
        notebook_params(criteria=["largest"], report_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="parameter mask0: unknown value 'rewind'"):
        notebook_params(mask0="rewind", report_dir=str(tmp_path))
    with pytest.raises(ConfigError, match=r"parameter rounds: -1 is not allowed; give an integer in \[0, 200\]"):
        notebook_params(rounds=-1, report_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="parameter device: unknown value 'tpu'"):
        notebook_params(device="tpu", report_dir=str(tmp_path))


def test_experiment_units_count_rounds_points_and_masks():
    train = TrainConfig(iterations=10)
    assert Dense("fc", train).units == 1
    assert Lottery("fc", train, [PruneConfig(rounds=3), PruneConfig(criterion="random", rounds=3)]).units == 7
    assert Supermasks("fc", train, get_preset("tiny").supermask_config(["large_final"])).units == 1 + 2 * 4
    learns = [get_preset("tiny").learn_config("fc", 0, w, False) for w in ("init", "signed_constant")]
    assert LearnedMasks("fc", learns).evaluations == 2  # 10 iterations, every 5
    assert LearnedMasks("fc", learns).units == 2 * (2 + 1)
    quick = [get_preset("quick").learn_config("fc", 0, "init", False)]
    assert LearnedMasks("fc", quick).evaluations == 10  # 10 epochs of 55,000 / 250 = 220 steps, once per epoch


def test_every_experiment_splits_into_one_record_per_run_and_joins_back():
    tiny = get_preset("tiny")
    train = tiny.train_config("fc", 0)
    exps = [Dense("fc", train),
            Lottery("fc", train, [PruneConfig(rounds=1), PruneConfig(criterion="random", rounds=1)]),
            Supermasks("fc", train, tiny.supermask_config(["large_final", "random"])),
            LearnedMasks("fc", [tiny.learn_config("fc", 0, "init", True), tiny.learn_config("fc", 0, "init", False)])]
    records = [r for e in exps for r in e.split()]
    assert [(r.kind, len(r.keys())) for r in records] == [
        ("dense", 1), ("lottery", 1), ("lottery", 1), ("supermask", 1), ("supermask", 1), ("learn-mask", 1),
        ("learn-mask", 1)]
    assert [r.prunes[0].criterion for r in records[1:3]] == ["large_final", "random"]
    assert [r.sweep.criteria for r in records[3:5]] == [("large_final",), ("random",)]
    assert records[3].sweep.powers == (0, 4, 8, 12) and records[5].learns[0].dwr is True
    # the records of one stack join back into the experiment they came from
    for exp in exps:
        assert join(exp.split()) == exp
    with pytest.raises(ValueError, match="do not train as one stack"):
        join([records[1], Lottery("fc", tiny.train_config("fc", 1), [PruneConfig(rounds=1)])])
    # each run's name comes from the store's run_key
    assert records[1].keys()[0].name == run_key("lottery", DataConfig(), ModelConfig(), train, PruneConfig(rounds=1)).name


@needs_mnist
def test_a_scheduler_runs_the_experiments_as_a_sweep_then_reads_them_back(tmp_path):
    train = get_preset("tiny").train_config("fc", 0, "cpu")
    exps = [Lottery("fc", train, [PruneConfig(rounds=1), PruneConfig(criterion="random", rounds=1)])]
    swept = run_experiments(exps, out=tmp_path / "swept", executor=executor("serial"))[0]
    here = run_experiments(exps, out=tmp_path / "here")[0]
    columns = ["criterion", "round", "early_stop_test_acc", "weights_remaining"]
    assert swept[columns].equals(here[columns]) and len(here) == 4  # round 0 and 1 of two runs
    assert (tmp_path / "swept" / Path(swept["run"].iloc[-1]).name / "ledger.jsonl").is_file()


def test_every_preset_is_named_by_its_key():
    assert all(name == p.name for name, p in PRESETS.items())


def test_progress_counts_finished_rounds_points_and_masks_into_the_file(tmp_path):
    from lt_core.runner import Progress

    path = tmp_path / "progress.jsonl"
    progress = Progress(4, "rq1", str(path))
    for event in ({"event": "eval", "run": "a"}, {"event": "round_end", "run": "a", "round": 0},
                  {"event": "supermask_point", "run": "s"}, {"event": "stage", "stage": "round_start", "run": "a"},
                  {"event": "stage", "stage": "learn_reused", "run": "m"},
                  {"event": "learn_eval", "run": "n", "iteration": 220}, {"event": "learn_end", "run": "n"}):
        progress.on_event(event, reused_units=3)
    progress.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(l["done"], l["what"]) for l in lines] == [(0, ""), (1, "a round 0"), (2, "s"), (5, "m"),
                                                      (6, "n iteration 220"), (7, "n")]
    assert {(l["label"], l["total"]) for l in lines} == {("rq1", 4)}


def test_schedule_words_leave_out_learned_masks_when_asked():
    assert get_preset("tiny").schedule("fc", learned=False) == "tiny: training 20 iterations"
