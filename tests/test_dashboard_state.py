"""The dashboard's state machine and request checking, without training anything: events are
written by hand, run directories have made-up names (the state never predicts folder names), and
bad requests must give the engine configs' own errors, worded for the page."""

import pytest

import lt_core

from lt_core import ConfigError, PruneConfig, TrainConfig
from lt_core.dashboard import RunRequest, plan_jobs
from lt_core.dashboard.request import describe_error, plain_error
from lt_core.dashboard.state import HANDLERS, STAGE_HANDLERS, RunState
from lt_core.dashboard.stored import event_run_dir
from lt_core.store import RunDir, atomic_write_json, stack_checkpoint, write_checkpoint

TINY = dict(schedule="custom", iterations=40, eval_every=20)


# -- request checking reuses the configs' validation ------------------------------------------------

def test_custom_epochs_of_zero_give_the_train_configs_own_error_in_plain_words(results):
    with pytest.raises(ConfigError) as engine:
        TrainConfig(epochs=0)
    with pytest.raises(ConfigError) as dashboard:
        plan_jobs(RunRequest(schedule="custom", epochs=0))
    assert str(dashboard.value) == str(engine.value) == "TrainConfig.epochs: 0 is out of range [1, 100000]"
    assert describe_error(dashboard.value) == "Invalid setting. Epochs: 0 is out of range [1, 100000]"


@pytest.mark.parametrize("request_kwargs, config, message", [
    (dict(rounds=-1), None, "Rounds: -1 is out of range [1, 200]"),
    (dict(rounds=0), None, "Rounds: 0 is out of range [1, 200]"),  # round 0 is the dense network
    (dict(rounds=201), None, "Rounds: 201 is out of range [1, 200]"),
    (dict(mask0=("nope",)), lambda: PruneConfig(mask0="nope"), "Mask-0 policy: unknown value 'nope'; allowed values: "),
    (dict(mask1=()), None, "Mask-1 policy: select at least one policy"),
    (dict(arch="vgg"), None, "Network: unknown value 'vgg'; allowed values: fc, conv2, conv4, conv6"),
    (dict(arch="conv2", dataset="mnist"), None, "Dataset: 'mnist' does not fit arch 'conv2'; allowed values: cifar10"),
    (dict(mode="oneshot", supermask_weights=()), None, "Supermask weights: give at least one of init, signed_constant"),
    (dict(mode="learned", learned_weights=("zeros",)), None, "Frozen weights: unknown value 'zeros'"),
])
def test_request_errors_are_the_configs_errors_renamed(results, request_kwargs, config, message):
    with pytest.raises(ValueError) as dashboard:
        plan_jobs(RunRequest(**dict(TINY, **request_kwargs)))
    if config is not None:
        with pytest.raises(ConfigError) as engine:
            config()
        assert str(dashboard.value) == str(engine.value)
    assert plain_error(dashboard.value).startswith(message)
    assert not results.exists()  # checking touches nothing


def test_plain_error_words_a_whole_config_message_as_the_schedule_and_keeps_others():
    with pytest.raises(ConfigError) as both:
        TrainConfig(epochs=2, iterations=10)
    assert plain_error(both.value) == ("Schedule: set at most one of epochs and iterations, not both "
                                       "(got epochs=2, iterations=10)")
    assert plain_error(ConfigError("Seed(s): 7 is negative")) == "Seed(s): 7 is negative"


def test_requests_only_the_dashboard_knows_are_checked_here(results):
    for kwargs, message in ((dict(mode="sweep"), "Mode: unknown value 'sweep'"),
                            (dict(seeds=()), "Seed(s): give at least one seed"),
                            (dict(criteria=()), "Mask criteria: select at least one criterion"),
                            (dict(schedule="custom"), "Epochs: the custom schedule needs a number of epochs")):
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
            plan_jobs(RunRequest(**kwargs))


# -- the event handlers ------------------------------------------------------------------------------

def test_every_engine_event_and_stage_has_one_handler():
    assert set(HANDLERS) == {"eval", "round_end", "supermask_point", "learn_eval", "learn_end", "stage"}
    assert set(STAGE_HANDLERS) == {"round_start", "resumed", "data_loaded", "learn_reused"}


def test_an_event_names_its_run_by_run_dir_else_by_folder_under_the_root(tmp_path):
    root = tmp_path / "results"
    elsewhere = tmp_path / "elsewhere" / "x"
    assert event_run_dir({"run_dir": str(elsewhere), "run": "y"}, root) == elsewhere
    assert event_run_dir({"run": "y"}, root) == root / "y"
    assert event_run_dir({"event": "stage", "stage": "data_loaded"}, root) is None


def _lottery_state(tmp_path, rounds=2):
    """A lottery job (one criterion, 40 iterations a round) and two run directories with made-up
    names, placed outside the results root: only the events' run_dir can lead there."""
    root = tmp_path / "results"
    state_root = tmp_path / "elsewhere"
    trunk, branch = state_root / "my-trunk", state_root / "my-branch"
    atomic_write_json(trunk / "config.json", {"kind": "train", "train": {"seed": 0}})
    atomic_write_json(branch / "config.json", {"kind": "lottery", "prune": {"criterion": "large_final"},
                                               "trunk": "my-trunk"})
    request = RunRequest(criteria=("large_final",), rounds=rounds, **TINY)
    jobs = plan_jobs(request)
    return RunState(root, request, jobs), jobs[0], trunk, branch


def _summary(k, remaining):
    return {"round": k, "weights_remaining": remaining, "layer_remaining": {"fc1": remaining},
            "early_stop_iteration": 20, "early_stop_test_acc": 0.9, "final_test_acc": 0.91}


def test_handlers_fill_the_series_of_the_run_dir_and_count_progress(tmp_path):
    state, job, trunk, branch = _lottery_state(tmp_path)
    dense, lottery = state.series["dense/s0"], state.series["lottery/large_final/rewind/zero/s0"]
    events = [
        {"event": "stage", "stage": "round_start", "run_dir": str(trunk), "round": 0, "iterations": 40},
        {"event": "eval", "run_dir": str(trunk), "round": 0, "iteration": 20, "iterations": 40, "test_acc": 0.5},
        {"event": "round_end", "run_dir": str(trunk), "reused": False, **_summary(0, 1.0)},
        {"event": "stage", "stage": "round_start", "run_dir": str(branch), "round": 1, "iterations": 40},
        {"event": "eval", "run_dir": str(branch), "round": 1, "iteration": 20, "iterations": 40, "test_acc": 0.7},
    ]
    for ev in events:
        state.apply(job, ev)
    assert dense.curves == {0: [{"iteration": 20, "test_acc": 0.5}]}
    assert dense.rounds[0]["weights_remaining"] == 1.0 and dense.run_names == {0: "my-trunk"}
    # the dense trunk's round 0 is round 0 of the branch
    assert lottery.rounds[0] == dense.rounds[0] and lottery.run_names == {0: "my-trunk", 1: "my-branch"}
    assert lottery.curves == {1: [{"iteration": 20, "test_acc": 0.7}]} and lottery.current_round == 1
    # progress: dense round 40 of 40, branch 20 of 2 x 40 -> 60 of 120, all trained here
    assert job.parts == {"dense/s0": 40.0, "lottery/large_final/rewind/zero/s0": 20.0}
    assert job.fraction == 0.5 and state.trained == 60.0
    assert (job.round, job.iteration) == (1, 20) and job.position() == "round 1/2, iteration 20/40"
    assert [(h["series"], h["stage"] or h["event"]) for h in state.history] == [
        ("dense/s0", "round_start"), ("dense/s0", "round_end"), ("lottery/large_final/rewind/zero/s0", "round_start")]


def test_a_reused_round_counts_as_done_but_not_as_trained_and_its_curve_comes_from_the_store(tmp_path):
    state, job, trunk, _ = _lottery_state(tmp_path)
    rows = [{"run": "my-trunk", "round": 0, "iteration": it, "split": "test", "metric": "accuracy", "value": acc}
            for it, acc in ((0, 0.1), (40, 0.8))]
    RunDir(trunk).save_round(0, {}, rows, _summary(0, 1.0))
    state.apply(job, {"event": "round_end", "run_dir": str(trunk), "reused": True, **_summary(0, 1.0)})
    dense = state.series["dense/s0"]
    assert dense.curves[0] == [{"iteration": 0, "test_acc": 0.1}, {"iteration": 40, "test_acc": 0.8}]
    assert dense.rounds[0]["reused"] is True
    assert job.parts == {"dense/s0": 40.0} and state.trained == 0.0


def test_a_resumed_round_restores_the_curves_of_every_stacked_run_from_its_checkpoint(tmp_path):
    state, job, _, branch = _lottery_state(tmp_path)
    evals = [{"iteration": 0, "test_acc": 0.2, "val_loss": 2.0}, {"iteration": 20, "test_acc": 0.6, "val_loss": 1.0}]
    write_checkpoint(RunDir(branch).round_dir(1) / "checkpoint.pt",
                     {"iteration": 20, "labels": ["my-branch"], "evals": [evals]})
    state.apply(job, {"event": "stage", "stage": "resumed", "run_dir": str(branch), "runs": ["my-branch"],
                      "round": 1, "iteration": 20})
    lottery = state.series["lottery/large_final/rewind/zero/s0"]
    assert lottery.curves[1] == evals and lottery.run_names[1] == "my-branch"
    assert job.parts == {"lottery/large_final/rewind/zero/s0": 20.0} and state.trained == 0.0


def test_events_without_run_dir_fall_back_to_the_folder_under_the_root(tmp_path):
    root = tmp_path / "results"
    atomic_write_json(root / "some-trunk" / "config.json", {"kind": "train"})
    request = RunRequest(criteria=("large_final",), rounds=1, **TINY)
    job = plan_jobs(request)[0]
    state = RunState(root, request, [job])
    state.apply(job, {"event": "eval", "run": "some-trunk", "round": 0, "iteration": 40, "test_acc": 0.4})
    assert state.series["dense/s0"].curves == {0: [{"iteration": 40, "test_acc": 0.4}]}


def test_learned_mask_events_make_their_series_from_the_runs_config(tmp_path):
    root = tmp_path / "results"
    run = tmp_path / "elsewhere" / "mask-a"
    atomic_write_json(run / "config.json", {"kind": "learnmask",
                                            "learn": {"weights": "signed_constant", "dwr": True, "seed": 3}})
    request = RunRequest(mode="learned", learned_weights=("signed_constant",), dwr=True, seeds=(3,), **TINY)
    job = plan_jobs(request)[0]
    state = RunState(root, request, [job])
    state.apply(job, {"event": "learn_eval", "run_dir": str(run), "iteration": 20, "iterations": 40, "epoch": 0.1,
                      "test_acc": 0.3, "expected_keep_fraction": 0.5, "unused": 1})
    state.apply(job, {"event": "learn_end", "run_dir": str(run), "test_acc_mean": 0.35, "test_acc_samples": [0.35],
                      "expected_keep_fraction": 0.45, "layer_keep_fraction": {"fc1": 0.45}})
    s = state.series["mask-a"]
    assert s.label == "learned · signed constants · DWR · seed 3" and s.seed == 3
    assert s.learn == [{"iteration": 20, "epoch": 0.1, "test_acc": 0.3, "expected_keep_fraction": 0.5}]
    assert s.learn_final["test_acc_mean"] == 0.35
    assert job.parts == {"main": 20.0} and job.fraction == 0.5
    assert [h["event"] for h in state.history] == ["learn_end"]


def test_one_shot_points_advance_by_point_units(tmp_path):
    root = tmp_path / "results"
    request = RunRequest(mode="oneshot", criteria=("large_final_same_sign",), supermask_weights=("init",),
                         powers=(0, 4), **TINY)
    job = plan_jobs(request)[0]
    state = RunState(root, request, [job])
    # 40 iterations of dense training, then 2 points of 40 / (2 x 2) = 10 units each
    assert job.point_units == 10.0 and job.total == 60.0
    point = {"event": "supermask_point", "criterion": "large_final_same_sign", "weights": "init", "power": 0,
             "weights_remaining": 1.0, "train_acc": 0.1, "test_acc": 0.1}
    state.apply(job, dict(point, reused=True))
    assert job.points_done == 1 and job.parts == {"main": 50.0} and state.trained == 0.0
    assert state.series["oneshot/s0"].points == [{k: v for k, v in point.items() if k != "event"}]


def test_presets_set_the_paper_figures_lists_and_every_one_plans(results):
    from lt_core.dashboard import apply_preset, preset_options
    from lt_core.dashboard.presets import FIGURES, SCALES

    keys = [k for _, k in preset_options()]
    assert len(keys) == len(FIGURES) * len(SCALES)
    rq2 = apply_preset(RunRequest(arch="conv2"), "rq2/quick")
    assert rq2.arch == "conv2" and rq2.mode == "lottery" and rq2.criteria == ("large_final",)
    assert rq2.mask1 == tuple(lt_core.MASK1_POLICIES) and rq2.mask0 == ("zero",)
    assert (rq2.schedule, rq2.rounds, rq2.seeds) == ("quick", 5, (0,))
    paper = apply_preset(RunRequest(), "rq3/paper")
    assert paper.mask0 == tuple(lt_core.MASK0_POLICIES) and (paper.rounds, paper.seeds) == (24, (0, 1, 2, 3, 4))
    for key in keys:  # every preset is a valid request: one job per seed, one series per setting and seed
        req = apply_preset(RunRequest(), key)
        jobs = plan_jobs(req)
        if req.mode == "lottery":
            assert len(jobs) == len(req.seeds)
            assert len(jobs[0].series) == 1 + len(req.criteria) * len(req.mask1) * len(req.mask0)
    with pytest.raises(ValueError, match="Preset: unknown value 'rq9/quick'"):
        apply_preset(RunRequest(), "rq9/quick")
    assert not results.exists()


def test_seed_bands_are_the_mean_min_and_max_over_seeds_per_step():
    from lt_core.dashboard.tables import seed_bands

    rows = [{"line": "large_final", "hue": "large_final", "overlay": False, "seed": seed, "round": r,
             "x": x, "y": y}
            for seed, r, x, y in ((0, 0, 100.0, 97.0), (1, 0, 100.0, 98.0), (2, 0, 100.0, 99.0),
                                  (0, 1, 80.0, 97.5), (1, 1, 80.0, 98.5))]
    rows.append({"line": "random", "hue": "random", "overlay": False, "seed": 0, "round": 0, "x": 100.0, "y": 96.0})
    bands = seed_bands(rows, "round", "x", "y")
    b = bands["large_final"]
    assert (b.x, b.mean, b.low, b.high, b.seeds) == ([100.0, 80.0], [98.0, 98.0], [97.0, 97.5], [99.0, 98.5], 3)
    r = bands["random"]
    assert (r.mean, r.low, r.high, r.seeds) == ([96.0], [96.0], [96.0], 1)


def test_progress_counts_only_the_work_to_do_and_the_eta_comes_from_the_measured_rate(tmp_path, monkeypatch):
    """A resumed lottery: the dense trunk's round is stored (reused), the branch trains. The bar
    starts at 0% of what is left and never moves back; the ETA is the work left at the rate
    measured from the first progress trained here (not from the start, which loads and compiles)."""
    import lt_core.dashboard.state as state_module

    clock = {"t": 100.0}
    monkeypatch.setattr(state_module.time, "monotonic", lambda: clock["t"])
    state, job, trunk, branch = _lottery_state(tmp_path)  # 40 iterations a round, 2 rounds: 120 units
    total = job.total
    RunDir(trunk).save_round(0, {}, [], _summary(0, 1.0))
    seen = []

    def at(t, ev):
        clock["t"] = t
        state.apply(job, ev)
        seen.append(state.work(total))

    at(100.0, {"event": "stage", "stage": "round_start", "run_dir": str(branch), "round": 1, "iterations": 40})
    at(101.0, {"event": "round_end", "run_dir": str(trunk), "reused": True, **_summary(0, 1.0)})  # stored: 40 units
    assert seen[-1] == (0.0, None)  # nothing trained yet: 0% of the 80 units left, no rate
    at(110.0, {"event": "eval", "run_dir": str(branch), "round": 1, "iteration": 10, "iterations": 40,
               "test_acc": 0.5})  # the first progress trained, 9 s of start-up after the round started
    assert seen[-1] == (10 / 80, None)
    at(112.0, {"event": "eval", "run_dir": str(branch), "round": 1, "iteration": 20, "iterations": 40,
               "test_acc": 0.6})  # 10 units in 2 s: 5 units/s, 60 units left
    assert seen[-1] == (20 / 80, pytest.approx(12.0))
    clock["t"] = 113.0  # between two evaluations the ETA counts down
    assert state.work(total)[1] == pytest.approx(11.0)
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions)  # never moves back


def test_the_dashboard_draws_an_interrupted_rounds_curve_only_from_a_checked_checkpoint(tmp_path):
    from lt_core.store import Unfinished, unfinished_round

    run = tmp_path / "lottery-fc-0123456789ab"
    path = RunDir(run).checkpoint(2)
    assert path == run / "round_002" / "checkpoint.pt"
    evals = [{"iteration": 0, "val_loss": 2.3}, {"iteration": 100, "val_loss": 0.4}]
    write_checkpoint(path, {"iteration": 100, "labels": [run.name], "evals": [evals]})
    assert unfinished_round(run, 2) == Unfinished(100, {run.name: evals})
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte flipped: training would discard it, so the page draws nothing of it
    path.write_bytes(bytes(data))
    assert unfinished_round(run, 2) is None


@pytest.mark.parametrize("stacked", [False, True])
def test_a_resumed_learned_mask_starts_its_curve_with_the_evaluations_from_before_the_stop(tmp_path, stacked):
    """The resumed event comes before any evaluation: the masks it names (one trained alone, or a
    stack whose checkpoint lies in the results root) get their curves from the checkpoint then."""
    root = tmp_path / "results"
    names = ["learnmask-fc-aaaa", "learnmask-fc-bbbb"] if stacked else ["learnmask-fc-aaaa"]
    for name, weights in zip(names, ("init", "signed_constant")):
        atomic_write_json(root / name / "config.json", {"kind": "learnmask", "learn": {"weights": weights, "seed": 0}})
    evals = [[{"iteration": it, "epoch": it / 200, "train_acc": 0.5, "test_acc": 0.8 + k / 100 + it / 10000,
               "expected_keep_fraction": 0.5} for it in (100, 200)] for k in range(len(names))]
    path = stack_checkpoint(root, "0123abcd") if stacked else RunDir(root / names[0]).checkpoint()
    write_checkpoint(path, {"iteration": 200, "labels": names, "evals": evals})
    weights = ("init", "signed_constant") if stacked else ("init",)
    request = RunRequest(mode="learned", learned_weights=weights, **TINY)
    job = plan_jobs(request)[0]
    state = RunState(root, request, [job])
    state.apply(job, {"event": "stage", "stage": "resumed", "run_dir": str(root / names[0]), "runs": names,
                      "iteration": 200})
    for name, points in zip(names, evals):
        assert state.series[name].learn == points
    assert state.trained == 0.0  # what the checkpoint holds is not work done by this run
