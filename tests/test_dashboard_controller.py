"""The dashboard's controller (and its views) without a browser: run, stop, resume, compare, export,
mask view and bad input. Runs are tiny (tens of iterations) and go to a temporary results root."""

import csv
import html
import math
import re
import time

import pytest
import torch

import lt_core
from lt_core import ConfigError, DataConfig, ModelConfig, PruneConfig, TrainConfig
from lt_core.dashboard import (Controller, RunRequest, export_csv, learned_mask_details, list_runs, load_stored_series,
                               mask_details, oneshot_mask_details,
                               parse_seeds, plan_jobs, plot_tables)
from lt_core.dashboard.request import parse_fractions
from lt_core.store import RunDir

from .conftest import needs_mnist

TINY = dict(schedule="custom", iterations=40, eval_every=20)


def wait_until(predicate, timeout=120.0, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return False


def lottery_series(snapshot, criterion):
    return next(s for s in snapshot["series"] if s.kind == "lottery" and s.label.startswith(criterion))


# -- input ----------------------------------------------------------------------------------------

def test_parse_seeds():
    assert parse_seeds("0") == (0,)
    assert parse_seeds("0, 1,2") == (0, 1, 2)
    assert parse_seeds("3-5") == (3, 4, 5)
    assert parse_seeds("1 1 2") == (1, 2)
    for bad in ("", "x", "1.5", "-1"):
        with pytest.raises(ConfigError, match="Seed"):
            parse_seeds(bad)


@pytest.mark.parametrize("parse, text, message", [
    (parse_seeds, " ; ", "Seed(s): give at least one seed, e.g. 0 or 0, 1, 2"),
    (parse_seeds, "0-16", "Seed(s): 17 seeds given; at most 16 at once"),
    (parse_seeds, "2, -1", "Seed(s): -1 is negative; seeds are integers >= 0"),
    (parse_fractions, " , ", "Keep fraction(s): give at least one fraction of weights to keep, e.g. 0.1 or 0.05, "
                             "0.1, 0.5"),
    (parse_fractions, ",".join(str(i / 100) for i in range(1, 18)), "Keep fraction(s): 17 fractions given; at most "
                                                                     "16 at once"),
])
def test_seed_and_fraction_lists_are_refused_alike(parse, text, message):
    with pytest.raises(ConfigError) as refused:
        parse(text)
    assert str(refused.value) == message
    assert parse("0, 1 1;0") == ((0, 1) if parse is parse_seeds else (0.0, 1.0))  # distinct, in the order given


@pytest.mark.parametrize("request_kwargs, match", [
    (dict(schedule="custom", epochs=0), "epochs"),
    (dict(schedule="custom", epochs=None), "Epochs"),
    (dict(criteria=()), "criterion"),
    (dict(rounds=-1), "rounds"),
    (dict(arch="conv2", dataset="mnist"), "does not fit"),
    (dict(mask1=("nope",)), "Mask-1 policy: unknown value 'nope'"),
    (dict(rounds=0), "Rounds: 0 is out of range [1, 200]"),
    (dict(seeds=()), "seed"),
])
def test_bad_input_is_a_readable_message_and_touches_nothing(results, request_kwargs, match):
    c = Controller(results)
    assert c.start(RunRequest(**request_kwargs)) is False
    assert c.status == "error" and c.level == "error"
    assert match.lower() in c.message.lower()
    assert c.message.startswith("Invalid setting.")
    assert not c.running
    assert not results.exists() or not any(results.iterdir())


def test_cuda_choice_without_cuda_is_refused(results):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present here")
    c = Controller(results)
    assert not c.start(RunRequest(device="cuda", **TINY))
    assert "cuda" in c.message.lower()


def test_plan_maps_choices_to_engine_calls(results):
    jobs = plan_jobs(RunRequest(criteria=("large_final", "random"), seeds=(0, 1), rounds=3, **TINY))
    assert [j.key for j in jobs] == ["lottery/s0", "lottery/s1"]  # one stacked race per seed
    for job, seed in zip(jobs, (0, 1)):
        assert job.iterations == 40 and job.rounds == 3
        train = TrainConfig(seed=seed, iterations=40, eval_every=20, eval_train=False)  # the page skips train eval
        assert job.series == {
            f"dense/s{seed}": (f"dense (round 0) · seed {seed}", "dense", "dense (round 0)", "dense",
                               lt_core.store.run_key("train", DataConfig(), ModelConfig(), train).name),
            f"lottery/large_final/rewind/zero/s{seed}": (
                f"large_final · seed {seed}", "lottery", "large_final", "large_final",
                lt_core.store.run_key("lottery", DataConfig(), ModelConfig(), train, PruneConfig(rounds=3)).name),
            f"lottery/random/rewind/zero/s{seed}": (
                f"random · seed {seed}", "lottery", "random", "random",
                lt_core.store.run_key("lottery", DataConfig(), ModelConfig(), train,
                                      PruneConfig(criterion="random", rounds=3)).name)}
        assert job.runs == tuple(spec.run for spec in job.series.values())
        # progress: the dense round, then 3 rounds of 40 iterations for each of the two branches
        assert job.part_totals == {f"dense/s{seed}": 40.0, f"lottery/large_final/rewind/zero/s{seed}": 120.0,
                                   f"lottery/random/rewind/zero/s{seed}": 120.0}
        assert job.total == 40 + 2 * 3 * 40
    # several policies race too: every combination of the lists
    race = plan_jobs(RunRequest(mask1=("rewind", "signed_reinit"), mask0=("zero", "freeze_init"), **TINY))
    assert [spec.setting for spec in race[0].series.values()] == [
        "dense (round 0)", "large_final", "large_final · freeze_init", "large_final · signed_reinit",
        "large_final · signed_reinit · freeze_init"]
    assert [spec.hue for spec in race[0].series.values()] == [
        "dense", "large_final", "freeze_init", "signed_reinit", "signed_reinit"]
    quick = plan_jobs(RunRequest(schedule="quick"))
    assert quick[0].iterations == 300  # the quick preset of FC
    paper = plan_jobs(RunRequest(schedule="paper"))
    assert paper[0].iterations == 55 * (55000 // 60)  # 55 epochs of batch 60
    # the page's paper-schedule runs are the very runs `reproduce --preset paper` stores (no train-split evaluation)
    from lt_core.dashboard import stored
    from lt_core.presets import get_preset

    reproduced = get_preset("paper").train_config("fc", 0)
    assert paper[0].series["dense/s0"].run == stored.dense_run_name(DataConfig(), ModelConfig(), reproduced)
    assert paper[0].series["lottery/large_final/rewind/zero/s0"].run == stored.lottery_run_name(
        DataConfig(), ModelConfig(), reproduced, PruneConfig())


# -- a finished run, shared by the compare / export / mask tests ----------------------------------

@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    from .conftest import mnist_available

    if not mnist_available():
        pytest.skip("MNIST not available")
    root = tmp_path_factory.mktemp("dash") / "results"
    c = Controller(root, throttle_s=0.05)
    calls = []
    c.add_listener(lambda snap: calls.append((snap["status"], len(snap["series"]))))
    req = RunRequest(criteria=("large_final", "random"), rounds=1, **TINY)
    assert c.start(req), c.message
    assert c.wait(300)
    return c, req, calls


@needs_mnist
def test_run_races_criteria_and_stores_rounds(finished):
    c, req, calls = finished
    snap = c.snapshot()
    assert snap["status"] == "finished", snap["message"]
    assert snap["progress"]["fraction"] == 1.0
    assert "Finished" in snap["message"]
    assert len(calls) >= 3  # listeners were told along the way, not only at the end
    for criterion in ("large_final", "random"):
        s = lottery_series(snap, criterion)
        assert sorted(s.rounds) == [0, 1]
        assert s.rounds[0]["weights_remaining"] == 1.0
        assert 0.75 < s.rounds[1]["weights_remaining"] < 0.85
        assert [p["iteration"] for p in s.curves[1]] == [0, 20, 40]
        # the numbers shown are the stored ones
        stored = RunDir(c.root / s.run_names[1]).summary(1)
        assert s.rounds[1]["early_stop_test_acc"] == stored["early_stop_test_acc"]
    # both branches share one dense trunk, trained once
    trunks = [r for r in list_runs(c.root) if r.kind == "train"]
    assert len(trunks) == 1
    starts = [(h["series"], h["round"]) for h in c.history if h["stage"] == "round_start"]
    assert starts == [("dense/s0", 0), ("lottery/large_final/rewind/zero/s0", 1), ("lottery/random/rewind/zero/s0", 1)]
    # the same configuration through the engine reuses every stored round
    res = lt_core.run_lottery(DataConfig(), ModelConfig(), TrainConfig(iterations=40, eval_every=20, eval_train=False),
                              PruneConfig(criterion="large_final", rounds=1), out=str(c.root))
    assert all(r.reused for r in res.rounds)
    assert res.rounds[1].early_stop_test_acc == lottery_series(snap, "large_final").rounds[1]["early_stop_test_acc"]


@needs_mnist
def test_compare_lists_and_overlays_stored_runs(finished):
    c, _, _ = finished
    runs = {r.name: r for r in c.stored_runs()}
    lottery = [r for r in runs.values() if r.kind == "lottery"]
    assert len(lottery) == 2 and all(r.done == 2 and r.total == 1 for r in lottery)
    assert all("1/1 rounds" in r.label for r in lottery)
    name = next(r.name for r in lottery if "large_final" in r.description)
    s = c.add_overlay(name)
    assert s.overlay and sorted(s.rounds) == [0, 1]
    assert s.run_names[0].startswith("train-fc-") and s.run_names[1] == name
    tables = plot_tables(c.snapshot())
    overlay_rows = [r for r in tables["accuracy_vs_remaining"] if r["overlay"]]
    assert [r["round"] for r in overlay_rows] == [0, 1]
    assert any(r["overlay"] for r in tables["curve"])
    c.clear_overlays()
    assert not any(r["overlay"] for r in plot_tables(c.snapshot())["accuracy_vs_remaining"])


@needs_mnist
def test_export_csv_holds_the_plotted_numbers(finished):
    c, _, _ = finished
    path = c.export_csv()
    assert path.parent == c.root / "dashboard-exports" and path.is_file()
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert set(rows[0]) == {"plot", "series", "line", "x_name", "x", "y_name", "y"}
    plots = {r["plot"] for r in rows}
    assert {"accuracy_vs_iteration", "accuracy_vs_weights_remaining", "layer_weights_remaining",
            "reference"} <= plots
    snap = c.snapshot()
    s = lottery_series(snap, "large_final")
    exported = [r for r in rows if r["plot"] == "accuracy_vs_weights_remaining" and r["series"] == s.label]
    assert len(exported) == 2
    for r in exported:
        k = int(r["line"].split()[-1])
        assert float(r["x"]) == pytest.approx(100 * s.rounds[k]["weights_remaining"], rel=1e-5)
        assert float(r["y"]) == pytest.approx(100 * s.rounds[k]["early_stop_test_acc"], rel=1e-5)
    refs = {r["series"]: float(r["y"]) for r in rows if r["plot"] == "reference"}
    assert refs["paper Table 1 · fc · mask_signed_constant"] == 86.3
    assert refs["dense baseline · seed 0"] == pytest.approx(100 * s.rounds[0]["early_stop_test_acc"], rel=1e-5)
    # an explicit path works too
    other = export_csv(snap, path=c.root / "x.csv")
    assert other.read_text() == path.read_text()


@needs_mnist
def test_mask_details_match_the_stored_tensors(finished):
    c, _, _ = finished
    s = lottery_series(c.snapshot(), "large_final")
    d = mask_details(s.round_path(1), 1)
    rd = RunDir(s.round_path(1))
    masks = rd.load_tensors(1, "masks")
    init, final = rd.load_tensors(1, "init")["weights"], rd.load_tensors(1, "final")["weights"]
    picture = torch.tensor(d["picture"])
    assert picture.shape == (28, 28)
    # the percentage of each pixel's 300 outgoing weights kept
    assert torch.allclose(picture, 100 * masks["fc1"].sum(0).reshape(28, 28) / 300)
    assert 0 <= float(picture.min()) and float(picture.max()) <= 100
    assert d["remaining"]["fc1"] == pytest.approx(0.8, abs=1e-3)
    assert len(d["per_unit"]["fc2"]) == 100
    m = masks["fc2"].bool()
    manual = float(((torch.sign(init["fc2"]) != torch.sign(final["fc2"])) & m).sum() / m.sum())
    assert d["sign_flips"]["fc2"] == pytest.approx(manual)
    assert 0.0 <= d["sign_flips_overall"] <= 1.0
    d0 = mask_details(s.round_path(0), 0)  # the dense round: nothing pruned
    assert d0["remaining"] == {"fc1": 1.0, "fc2": 1.0, "fc3": 1.0}


@needs_mnist
def test_one_shot_and_learned_masks_can_be_viewed(finished, tmp_path):
    c, _, _ = finished
    dense = next(s for s in c.snapshot()["series"] if s.kind == "dense")
    trunk = RunDir(dense.round_path(0))
    w_i, w_f = trunk.load_tensors(0, "init")["weights"], trunk.load_tensors(0, "final")["weights"]
    d = oneshot_mask_details(trunk.path, "fc", "large_final_same_sign", 3, dense.seed)
    # power 3 keeps 0.8^3 of each hidden layer and 0.9^3 of the output layer
    assert d["remaining"]["fc1"] == pytest.approx(0.8 ** 3, abs=2e-3)
    assert d["remaining"]["fc3"] == pytest.approx(0.9 ** 3, abs=2e-3)
    # the criterion keeps no weight whose sign changed in training
    assert d["sign_flips_overall"] == 0.0
    expected = lt_core.supermask.one_shot_masks(lt_core.models.get_arch("fc"), "large_final_same_sign", w_i, w_f, 3,
                                                dense.seed)
    assert torch.allclose(torch.tensor(d["picture"]), 100 * expected["fc1"].float().mean(0).reshape(28, 28))
    # a learned mask: each weight kept with probability sigmoid(score)
    run = tmp_path / "learnmask-fc-x"
    run.mkdir()
    scores = {"fc1": torch.zeros(300, 784), "fc2": torch.full((100, 300), 2.0), "fc3": torch.full((10, 100), -2.0)}
    lt_core.store.atomic_torch_save(run / "scores.pt", scores)
    d = learned_mask_details(run)
    assert d["remaining"]["fc1"] == pytest.approx(0.5)
    assert d["remaining"]["fc2"] == pytest.approx(1 / (1 + math.exp(-2.0)))
    assert torch.allclose(torch.tensor(d["picture"]), torch.full((28, 28), 50.0))
    assert d["sign_flips"] == {} and d["sign_flips_overall"] is None


@needs_mnist
def test_results_stay_a_new_page_draws_the_stored_runs_and_another_mode_keeps_them(finished):
    c, req, _ = finished
    page = Controller(c.root, throttle_s=0.05)  # a reload: a new controller on the same store
    assert page.snapshot()["series"] == []
    page.show_settings(req)
    snap = page.snapshot()
    stored = {s.label: s for s in snap["series"]}
    assert set(stored) == {"dense (round 0) · seed 0", "large_final · seed 0", "random · seed 0"}
    live = lottery_series(c.snapshot(), "large_final")
    assert stored["large_final · seed 0"].rounds[1]["early_stop_test_acc"] == live.rounds[1]["early_stop_test_acc"]
    assert [p["iteration"] for p in stored["large_final · seed 0"].curves[1]] == [0, 20, 40]
    # other settings: their stored runs replace these
    page.show_settings(req.replace(seeds=(1,)))
    assert page.snapshot()["series"] == []
    # more rounds: the same runs (the round count is not part of a run's identity), to be continued
    page.show_settings(req.replace(rounds=2))
    assert sorted(s.label for s in page.snapshot()["series"]) == sorted(stored)
    page.show_settings(req)
    # a one-shot run keeps the lottery lines on the plots, and finds the dense trunk in the store
    assert page.start(req.replace(mode="oneshot", criteria=("large_final_same_sign",), powers=(0, 4),
                                  supermask_weights=("init",))), page.message
    assert page.wait(300) and page.status == "finished", page.message
    kinds = sorted(s.kind for s in page.snapshot()["series"])
    assert kinds == ["dense", "lottery", "lottery", "oneshot"]
    assert [h["stage"] for h in page.history if h["stage"]][:1] == ["round_reused"]


# -- stop and resume ------------------------------------------------------------------------------

@needs_mnist
def test_run_pressed_while_stopping_starts_once_stopped_and_stop_when_idle_says_so(results):
    c = Controller(results, throttle_s=0.05)
    assert not c.stop() and c.message == "Nothing is running, so there is nothing to stop."
    req = RunRequest(rounds=1, schedule="custom", iterations=400, eval_every=20)
    assert c.start(req), c.message
    assert wait_until(lambda: any(s.curves.get(0) for s in c.snapshot()["series"]), 300)
    assert c.stop()
    queued = c.running and not c.start(req)  # the stopping run is still saving its checkpoint
    if queued:
        assert c.message == "The previous run is saving its checkpoint; this run starts as soon as it has stopped."
    else:  # it had already stopped: Run starts at once
        assert c.start(req), c.message
    assert wait_until(lambda: c.status == "finished", 300), c.message
    assert c.wait(30)
    s = lottery_series(c.snapshot(), "large_final")
    assert sorted(s.rounds) == [0, 1]

@needs_mnist
def test_stop_keeps_finished_rounds_and_run_resumes(results):
    c = Controller(results, throttle_s=0.05)
    req = RunRequest(criteria=("large_final",), rounds=2, schedule="custom", iterations=200, eval_every=20)
    assert c.start(req), c.message

    def in_round_one():
        snap = c.snapshot()
        s = [x for x in snap["series"] if x.kind == "lottery"]
        return bool(s) and len(s[0].curves.get(1, [])) >= 2

    assert wait_until(in_round_one, 300), c.snapshot()["message"]
    t0 = time.monotonic()
    assert c.stop()
    assert time.monotonic() - t0 < 0.5  # Stop returns at once; the UI thread is free
    assert c.status == "stopping"
    assert c.wait(30)
    snap = c.snapshot()
    assert snap["status"] == "stopped", snap["message"]
    assert "resume" in snap["message"] and "round 1/2" in snap["message"]
    s = lottery_series(snap, "large_final")
    assert sorted(s.rounds) == [0]  # round 1 did not finish
    run_dir = RunDir(results / s.run_names[1])
    assert (run_dir.round_dir(1) / "checkpoint.pt").is_file()
    assert RunDir(results / s.run_names[0]).round_done(0)
    stopped_points = [p["iteration"] for p in s.curves[1]]

    # Run again with the same settings: round 0 is reused, round 1 resumes from its checkpoint
    assert c.start(req), c.message
    assert c.wait(300)
    snap = c.snapshot()
    assert snap["status"] == "finished", snap["message"]
    stages = [(h["series"] or h["job"], h["stage"], h["round"]) for h in c.history]
    assert ("dense/s0", "round_reused", 0) in stages
    assert ("lottery/large_final/rewind/zero/s0", "round_start", 1) in stages
    assert ("lottery/large_final/rewind/zero/s0", "resumed", 1) in stages
    s = lottery_series(snap, "large_final")
    assert sorted(s.rounds) == [0, 1, 2]
    # the curve of the resumed round holds the points from before the stop (from the checkpoint)
    its = [p["iteration"] for p in s.curves[1]]
    assert its[:len(stopped_points)] == stopped_points and its[-1] == 200
    assert its == sorted(set(its))
    assert not (run_dir.round_dir(1) / "checkpoint.pt").exists()


@needs_mnist
def test_running_twice_is_refused_and_errors_leave_the_controller_usable(results, tmp_path, monkeypatch):
    c = Controller(results)
    assert c.start(RunRequest(**TINY))
    assert not c.start(RunRequest(**TINY))  # one run at a time
    assert "in progress" in c.message
    c.stop()
    c.wait(60)
    # a missing dataset without download: a readable message, nothing stored is lost
    before = sorted(p.name for p in results.iterdir())
    monkeypatch.setenv("LT_DATA_DIR", str(tmp_path / "no-data"))
    assert c.start(RunRequest(download=False, seeds=(7,), **TINY))
    assert c.wait(60)
    assert c.status == "error"
    assert c.message.startswith("Data problem.") and "mnist" in c.message and "Nothing stored was lost" in c.message
    assert set(before) <= {p.name for p in results.iterdir()}
    monkeypatch.undo()
    assert c.start(RunRequest(**TINY)) and c.wait(120)
    assert c.status == "finished", c.message


# -- supermask modes (need lt_core's supermask functions) -----------------------------------------

needs_supermask = pytest.mark.skipif(not hasattr(lt_core, "one_shot_supermasks"),
                                     reason="this lt_core has no supermask functions")


@needs_mnist
@needs_supermask
def test_one_shot_supermask_mode(results):
    c = Controller(results, throttle_s=0.05)
    req = RunRequest(mode="oneshot", criteria=("large_final_same_sign",), powers=(0, 4, 8), **TINY)
    assert c.start(req), c.message
    assert c.wait(300)
    snap = c.snapshot()
    assert snap["status"] == "finished", snap["message"]
    s = next(x for x in snap["series"] if x.kind == "oneshot")
    assert len(s.points) == 6 and {p["weights"] for p in s.points} == {"init", "signed_constant"}
    for kind in ("init", "signed_constant"):
        pts = sorted((p for p in s.points if p["weights"] == kind), key=lambda p: p["power"])
        assert [p["power"] for p in pts] == [0, 4, 8]
        assert pts[0]["weights_remaining"] == 1.0
        assert pts[0]["weights_remaining"] > pts[1]["weights_remaining"] > pts[2]["weights_remaining"]
    assert "best one-shot supermask" in snap["message"]
    rows = plot_tables(snap)["supermask"]
    assert len(rows) == 6
    stored = [r for r in list_runs(results) if r.kind == "supermask"]
    assert len(stored) == 1 and stored[0].done == 6
    overlay = load_stored_series(results, stored[0].name)
    assert sorted((p["weights"], p["power"], p["test_acc"]) for p in overlay.points) == \
        sorted((p["weights"], p["power"], p["test_acc"]) for p in s.points)


@needs_mnist
@needs_supermask
def test_learned_supermask_mode(results):
    c = Controller(results, throttle_s=0.05)
    req = RunRequest(mode="learned", learned_weights=("init", "signed_constant"), **TINY)
    assert c.start(req), c.message
    assert c.wait(300)
    snap = c.snapshot()
    assert snap["status"] == "finished", snap["message"]
    learned = [x for x in snap["series"] if x.kind == "learned"]
    assert sorted(x.learn_variant["weights"] for x in learned) == ["init", "signed_constant"]
    for x in learned:
        assert [e["iteration"] for e in x.learn] == [20, 40]
        assert 0.0 < x.learn[-1]["expected_keep_fraction"] < 1.0
        assert x.learn_final is not None and 0.0 <= x.learn_final["test_acc_mean"] <= 1.0
    assert len(plot_tables(snap)["learned"]) == 4
    stored = [r for r in list_runs(results) if r.kind == "learnmask"]
    assert len(stored) == 2 and all(r.done == 1 for r in stored)
    again = Controller(results)
    assert again.start(req) and again.wait(120)  # reused from the store
    assert any(h["stage"] == "learn_reused" for h in again.history)
    reused = [x for x in again.snapshot()["series"] if x.kind == "learned"]
    assert sorted(len(x.learn) for x in reused) == [2, 2]


@needs_mnist
@needs_supermask
def test_a_stopped_learned_stack_resumes_with_its_curve_from_before_the_stop(results):
    """Stop a stack of two learned masks after two evaluations, Run again: the live curves hold the
    evaluations from before the stop as soon as the run resumes, and once finished they are exactly
    the curves the store holds (read through the store's reader)."""
    from lt_core.store import open_run

    req = RunRequest(mode="learned", learned_weights=("init", "signed_constant"), schedule="custom",
                     iterations=1000, eval_every=100)  # 800 iterations left after the second evaluation

    def learned(c):
        return [x for x in c.snapshot()["series"] if x.kind == "learned"]

    c = Controller(results, throttle_s=0.05)
    assert c.start(req), c.message
    assert wait_until(lambda: len(learned(c)) == 2 and all(len(x.learn) >= 2 for x in learned(c)), 300)
    assert c.stop() and c.wait(60) and c.status == "stopped", c.message
    before = {x.run: [e["iteration"] for e in x.learn] for x in learned(c)}
    assert all(its[:2] == [100, 200] and its[-1] < 1000 for its in before.values()), before

    again = Controller(results, throttle_s=0.05)  # a new page: nothing of the first run in memory
    assert again.start(req), again.message
    assert wait_until(lambda: any(h["stage"] == "resumed" for h in again.history), 120)
    resumed = {x.run: [e["iteration"] for e in x.learn] for x in learned(again)}
    assert all(resumed[run][:len(its)] == its for run, its in before.items()), (before, resumed)
    assert again.wait(300) and again.status == "finished", again.message
    for x in learned(again):
        stored = open_run(results / x.run).metrics()
        tests = stored[(stored.split == "test") & (stored.metric == "accuracy")].sort_values("iteration")
        every = [100 * k for k in range(1, 11)]
        assert [e["iteration"] for e in x.learn] == [int(i) for i in tests.iteration] == every
        assert [e["test_acc"] for e in x.learn] == pytest.approx(list(tests.value))
    rows = plot_tables(again.snapshot())["learned"]
    assert sorted({r["iteration"] for r in rows}) == [100 * k for k in range(1, 11)]


# -- the views, without a browser -----------------------------------------------------------------

@needs_mnist
def test_views_show_bad_input_and_draw_a_run(results):
    pytest.importorskip("jupyter_bokeh")
    from lt_core.dashboard import build_app

    app = build_app(results_root=results)
    ui, plots, masks, compare = app.controls, app.plots, app.masks, app.compare
    # every control has a visible label, and a tooltip on the label and on the control
    for name in ("arch", "dataset", "mode", "criteria", "mask1", "mask0", "rounds", "schedule", "epochs",
                 "seeds", "device", "w_init", "w_sc", "dwr"):
        w, label = getattr(ui, name), app.labels[name].value
        assert len(w.tooltip) > 30 and f"title='{html.escape(w.tooltip, quote=True)}'" in label, name
        assert re.search(r">[^<]*\w[^<]*</label>", label), name  # visible text
    for b in (ui.run_btn, ui.stop_btn, compare.export_btn, compare.overlay_btn):
        assert b.description and b.tooltip
    # only the controls of the mode are enabled
    assert not ui.mask1.disabled and ui.dwr.disabled and ui.epochs.disabled
    ui.mode.value = "learned"
    assert ui.mask1.disabled and ui.criteria.disabled and not ui.dwr.disabled
    ui.mode.value = "oneshot"
    assert ui.criteria.value == ("large_final_same_sign",) and ui.rounds.disabled
    ui.mode.value = "lottery"
    ui.schedule.value = "custom"
    assert not ui.epochs.disabled
    ui.epochs.value = 0
    app.run()
    assert app.wait_idle(10)
    assert "lt-msg-error" in ui.message.value
    assert "Invalid setting. Epochs: 0 is out of range [1, 100000]" in ui.message.value  # TrainConfig's own check
    ui.seeds.value = "zero"
    app.run()
    assert app.wait_idle(10)
    assert "Seed(s)" in ui.message.value
    # a tiny run drawn through the same code the page uses
    ui.seeds.value = "0"
    ui.rounds.value = 1
    req = ui.request().replace(schedule="custom", iterations=40, eval_every=20, epochs=None)
    assert app.c.start(req)
    assert app.c.wait(300)
    app.c.notify()
    assert app.wait_idle(30)
    def points(group):
        return group.drawn()

    assert points(plots.curve) == {"dense (round 0)": 3, "large_final": 3}  # round 0, and round 1 of the branch
    assert points(plots.prune) == {"large_final": 2}  # rounds 0 and 1
    assert points(plots.layer) == {"fc1 = fc2": 2, "fc3": 2}  # fc1 and fc2 are pruned at the same rate
    assert ui.run_btn.disabled is False and ui.stop_btn.disabled is True
    assert ui.progress.value == 1000
    assert "lt-msg-success" in ui.message.value
    assert masks.run.value.startswith("lottery/") and masks.round.value == 1
    assert len(masks.picture_src.data["image"]) == 1
    assert compare.runs_select.options  # the store list was refreshed when the run ended
    compare.export()
    assert "Download" in compare.export_info.value and "data:text/csv;base64," in compare.export_info.value
    assert not app.render_errors and not app.c.log


def test_stop_when_idle_overlays_outside_the_root_and_export_to_a_directory_are_answered(results, tmp_path):
    c = Controller(results)
    c.show_message("an old message")
    assert not c.stop()
    assert c.message == "Nothing is running, so there is nothing to stop."
    outside = tmp_path / "elsewhere" / "train-fc-000000000000"
    outside.mkdir(parents=True)
    (outside / "config.json").write_text('{"kind": "train"}')
    for name in ("../elsewhere/train-fc-000000000000", str(outside), "", "no-such-run"):
        with pytest.raises(ValueError, match="is not a run in the results root"):
            c.add_overlay(name)
    assert c.overlays == {}
    with pytest.raises(ValueError, match="is a directory; give a file name"):
        c.export_csv(tmp_path)


def test_the_finished_message_lists_this_runs_results_only_seeds_averaged(tmp_path):
    from lt_core.dashboard.controller import finished_results
    from lt_core.dashboard.series import Series
    from lt_core.dashboard.state import RunState

    def lottery(criterion, seed, acc):
        return Series(f"{criterion}/s{seed}", f"{criterion} · seed {seed}", "lottery", seed=seed, setting=criterion,
                      rounds={0: {"weights_remaining": 1.0, "early_stop_test_acc": 0.9},
                              2: {"weights_remaining": 0.64, "early_stop_test_acc": acc}})

    this_run = [lottery(c, seed, acc + seed / 100) for c, acc in (("large_final", 0.97), ("random", 0.95),
                                                                   ("small_final", 0.94)) for seed in (0, 1)]
    this_run.append(Series("dense/s0", "dense (round 0) · seed 0", "dense", setting="dense (round 0)",
                           rounds={0: {"weights_remaining": 1.0, "early_stop_test_acc": 0.9}}))
    assert finished_results(this_run) == [
        "round 2 (64.0% of weights left), early-stop test accuracy: large_final 97.50% (mean of 2 seeds), "
        "random 95.50% (mean of 2 seeds), small_final 94.50% (mean of 2 seeds)"]
    points = [{"criterion": "large_final_same_sign", "weights": w, "power": p, "weights_remaining": r,
               "test_acc": a, "train_acc": a} for w, p, r, a in (("init", 1, 0.5, 0.7), ("init", 2, 0.3, 0.8),
                                                                  ("signed_constant", 1, 0.5, 0.85))]
    oneshot = [Series(f"oneshot/s{seed}", f"one-shot · seed {seed}", "oneshot", seed=seed, setting="one-shot",
                      points=points) for seed in (0, 1)]
    learned = Series("learn", "learned · initial weights · seed 0", "learned", setting="learned · initial weights",
                     learn_final={"test_acc_mean": 0.9, "expected_keep_fraction": 0.4})
    assert finished_results(oneshot + [learned]) == [
        "best one-shot supermask: large_final_same_sign · initial weights 80.0% at 30.0% kept (mean of 2 seeds), "
        "large_final_same_sign · signed constants 85.0% at 50.0% kept (mean of 2 seeds)",
        "learned supermask test accuracy: learned · initial weights 90.00% (expected keep 40.0%)"]

    # the page's earlier runs (another mode's, kept on the plots) are not listed
    c = Controller(tmp_path / "results")
    earlier, now = RunState(c.root), RunState(c.root)
    earlier.series = {s.key: s for s in oneshot}
    now.series = {s.key: s for s in this_run}
    c.states, c.state = {"oneshot": earlier, "lottery": now}, now
    message = c._finished_message([])
    assert message.startswith("Finished in ") and "one-shot" not in message and message.count("(mean of 2 seeds)") == 3


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_exported_csvs_are_written_with_the_mode_new_files_get(tmp_path, umask):
    """An export is an ordinary file: 0666 less the umask (0644 under the usual 022), as the store's
    files, not the 0600 of a private temporary file."""
    import os

    old = os.umask(umask)
    try:
        c = Controller(tmp_path / "results")
        path = c.export_csv()
        named = c.export_csv(tmp_path / "mine.csv")
    finally:
        os.umask(old)
    for p in (path, named):
        assert p.stat().st_mode & 0o777 == 0o666 & ~umask
        assert p.read_text().startswith("plot,series,line,x_name,x,y_name,y")
