"""Sweeps: grid checking and expansion, work units, and a real Dask cluster that loses a worker."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from lt_core import ConfigError, PruneConfig, TrainConfig
from lt_core.cli import main
from lt_core.store import list_runs, trainings
from lt_core.store.lock import LOCK_FILE
from lt_core.sweep import Grid, load_grid, run_experiments, work_units
from lt_core.sweep.run import stop_active_units

from .conftest import DATA_DIR, REPO, needs_mnist

TINY = {"iterations": 40, "eval_every": 20, "eval_train": False, "device": "cpu"}


def _grid(**body):
    return Grid.from_dict({"kind": "lottery", **body})


def test_a_grid_expands_to_every_combination_in_axis_order():
    grid = _grid(archs=["fc"], seeds=[0, 1], criteria=["large_final", "random"], mask1=["rewind"], rounds=[1, 2],
                 schedule=["tiny"])
    experiments = grid.experiments()
    assert len(experiments) == 2 * 2 * 2
    assert [(e.train.seed, e.prunes[0].criterion, e.prunes[0].rounds) for e in experiments[:4]] == \
        [(0, "large_final", 1), (0, "large_final", 2), (0, "random", 1), (0, "random", 2)]
    assert experiments[0].train == TrainConfig(seed=0, iterations=20, eval_every=20, eval_train=False,
                                               eval_test="best")  # presets.tiny
    assert experiments[0].prunes == (PruneConfig(criterion="large_final", rounds=1),)
    assert experiments[0].schedule == "tiny"


def test_schedules_are_presets_or_mappings_of_fields():
    quick, paper, custom = _grid(schedule=["quick", "paper", {"iterations": 7, "lr": 0.01}]).experiments()
    # the fc record's quick, and the paper's schedule; no reported number needs train eval or every test point
    assert quick.train == TrainConfig(iterations=300, eval_every=50, eval_train=False, eval_test="best")
    assert paper.train == TrainConfig(eval_train=False, eval_test="best")
    assert custom.train == TrainConfig(iterations=7, lr=0.01) and custom.schedule == "iterations=7,lr=0.01"
    learn = Grid.from_dict({"kind": "learn-mask", "weights": ["init", "signed_constant"], "dwr": [True],
                            "schedule": ["tiny"]}).experiments()
    assert [(e.learns[0].weights, e.learns[0].dwr, e.learns[0].iterations) for e in learn] == \
        [("init", True, 10), ("signed_constant", True, 10)]


def test_fixed_values_reach_every_experiment():
    (exp,) = _grid(dataset="mnist", prune_fraction_fc=0.5).experiments()
    assert exp.data.dataset == "mnist" and exp.prunes[0].prune_fraction_fc == 0.5
    (sm,) = Grid.from_dict({"kind": "supermask", "powers": "0-2,5", "weights": ["init"]}).experiments()
    assert sm.sweep.powers == (0, 1, 2, 5) and sm.sweep.weights == ("init",)


@pytest.mark.parametrize("body, message", [
    ({"kind": "lotery"}, "kind: unknown value 'lotery'; allowed values: lottery, supermask, learn-mask"),
    ({"kind": "lottery", "criterias": ["random"]}, "criterias: unknown field for kind lottery; allowed fields:"),
    ({"kind": "lottery", "criteria": ["random", "bogus"]}, "criteria[1]: PruneConfig.criterion: unknown value 'bogus'"),
    ({"kind": "lottery", "seeds": []}, "seeds: empty list; give at least one value"),
    ({"kind": "lottery", "rounds": 2}, "rounds: expected a list of values, got 2"),
    ({"kind": "lottery", "rounds": ["2"]}, "rounds[0]: PruneConfig.rounds: expected an integer, got '2'"),
    ({"kind": "lottery", "schedule": ["fast"]}, "schedule[0]: unknown value 'fast'; allowed values: tiny, quick, paper"),
    ({"kind": "lottery", "schedule": [{"iters": 5}]}, "schedule[0]: TrainConfig: unknown field(s) iters"),
    ({"kind": "lottery", "schedule": [{"seed": 5}]}, "schedule[0].seed: seeds are an axis of the grid"),
    ({"kind": "learn-mask", "dwr": ["yes"]}, "dwr[0]: LearnConfig.dwr: expected true or false, got 'yes'"),
    ({"kind": "supermask", "mask1": ["rewind"]}, "mask1: unknown field for kind supermask"),
    ({"kind": "lottery", "archs": ["conv2"], "dataset": "mnist"}, "dataset: 'mnist' does not fit conv2"),
])
def test_bad_grids_are_refused_naming_the_field(body, message):
    with pytest.raises(ConfigError) as info:
        Grid.from_dict(body)
    assert message in str(info.value)


def test_a_bad_grid_file_is_refused_before_anything_runs(tmp_path, capsys):
    grid = tmp_path / "grid.yaml"
    grid.write_text("kind: lottery\ncriteria: [large_final, nope]\n")
    out = tmp_path / "results"
    assert main(["sweep", str(grid), "--out", str(out), "--scheduler", "tcp://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert f"{grid}: criteria[1]: PruneConfig.criterion: unknown value 'nope'" in err
    assert not out.exists()  # nothing was submitted, not even a connection attempted
    with pytest.raises(ConfigError, match="not valid YAML"):
        grid.write_text("kind: [lottery\n")
        load_grid(grid)


def test_experiments_sharing_network_schedule_and_seed_form_one_unit():
    experiments = _grid(seeds=[0, 1], criteria=["large_final", "random", "large_init"], schedule=["tiny"]) \
        .experiments()
    units = work_units(experiments + experiments[:2])  # repeated experiments are dropped
    assert [len(u.experiments) for u in units] == [3, 3]
    assert [u.experiments[0].train.seed for u in units] == [0, 1]
    assert units[0].key.startswith("lottery-fc-seed0-") and units[0].key != units[1].key
    learn = Grid.from_dict({"kind": "learn-mask", "weights": ["init", "signed_constant"], "dwr": [False, True],
                            "seeds": [3]}).experiments()
    assert [len(u.experiments) for u in work_units(learn)] == [4]


def _lottery_grid(seeds):
    return _grid(seeds=seeds, criteria=["large_final", "random"], rounds=[1], schedule=[TINY]).experiments()


@needs_mnist
def test_a_stopped_unit_keeps_a_checkpoint_and_hands_the_task_back(tmp_path):
    """What a worker does on SIGTERM: the running round checkpoints and the task is rescheduled."""
    from distributed import Reschedule

    from lt_core.sweep.run import _worker_task

    (unit,) = work_units(_grid(schedule=[{**TINY, "iterations": 100000}], rounds=[1]).experiments())
    out = tmp_path / "results"
    outcome = []
    thread = threading.Thread(target=lambda: outcome.append(_run_catching(_worker_task, unit, str(out))))
    thread.start()
    deadline = time.monotonic() + 120
    while not list(out.glob(f"train-fc-*/{LOCK_FILE}")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    stop_active_units()
    thread.join(timeout=60)
    assert isinstance(outcome[0], Reschedule)
    (checkpoint,) = out.glob("train-fc-*/round_000/checkpoint.pt")
    assert checkpoint.is_file() and not list(out.rglob(LOCK_FILE))


def _run_catching(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except BaseException as exc:  # noqa: BLE001 -- the test inspects it
        return exc


def _start(args, env):
    return subprocess.Popen([str(Path(sys.executable).parent / "dask"), *args], env=env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.slow  # over a minute on a 2-core CPU: run with -m slow
@needs_mnist
def test_a_sweep_on_a_dask_cluster_survives_a_killed_worker(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "LT_DATA_DIR": str(DATA_DIR)}
    scheduler_file = tmp_path / "scheduler.json"
    procs = [_start(["scheduler", "--host", "127.0.0.1", "--port", "0", "--dashboard-address", "127.0.0.1:0",
                     "--scheduler-file", str(scheduler_file)], env)]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.is_file() and time.monotonic() < deadline:
            time.sleep(0.1)
        workers = [_start(["worker", "--scheduler-file", str(scheduler_file), "--host", "127.0.0.1", "--nthreads",
                           "1", "--no-nanny", "--no-dashboard", "--name", f"w{i}"], env) for i in range(2)]
        procs += workers
        out = tmp_path / "cluster"
        experiments = _lottery_grid([0, 1])
        done = []
        thread = threading.Thread(target=lambda: done.append(_run_catching(
            run_experiments, experiments, None, None, out=out, scheduler_file=str(scheduler_file), progress=False)))
        thread.start()
        killed = None
        pids = {w.pid for w in workers}
        while thread.is_alive() and killed is None:
            for lock in out.glob(f"*/{LOCK_FILE}"):
                holder = _read_holder(lock)
                if holder.get("pid") in pids:
                    os.kill(holder["pid"], signal.SIGKILL)  # kill -9 the worker mid-task
                    killed = holder["pid"]
                    break
            time.sleep(0.01)
        thread.join(timeout=600)
        assert killed is not None, "the sweep finished before a worker could be killed"
        table = done[0]
        assert isinstance(table, pd.DataFrame), table
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
    # every round of every run trained exactly once, counted from the store's ledgers
    runs = list_runs(out, ["train", "lottery"])
    assert len(runs) == 2 + 4
    for run in runs:
        assert trainings(run.path) == ({0: 1} if run.kind == "train" else {1: 1}), run.name
    # the same numbers as a serial run in this process
    serial = run_experiments(experiments, "serial", out=tmp_path / "serial", progress=False)
    assert len(table) == 4 * 2
    pd.testing.assert_frame_equal(table.drop(columns="run_dir"), serial.drop(columns="run_dir"))
    # a rerun of the same grid trains nothing: every experiment is stored
    again = run_experiments(experiments, "tcp://127.0.0.1:1", out=out, progress=False)
    pd.testing.assert_frame_equal(again, table)


def _read_holder(lock):
    import json

    try:
        return json.loads(lock.read_text())
    except (OSError, ValueError):
        return {}
