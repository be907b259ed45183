import json
import os
import subprocess
import sys

import pytest

from .conftest import needs_mnist

QUICK = ["--iterations", "30", "--eval-every", "10", "--no-train-eval", "--device", "cpu", "--quiet"]


def cli(*args, cwd=None):
    env = dict(os.environ)
    return subprocess.run([sys.executable, "-m", "lt_core", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=600)


def last_json(done):
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_help_documents_every_subcommand():
    done = cli("--help")
    assert done.returncode == 0
    for command in ("train", "lottery", "export", "list"):
        assert command in done.stdout
    sub = cli("lottery", "--help")
    for option in ("--criterion", "--mask1", "--mask0", "--rounds", "--epochs", "--iterations", "--seed",
                   "--data-dir", "--device", "--out", "--dataset", "--json"):
        assert option in sub.stdout


def test_list_names_everything():
    listing = last_json(cli("list", "--json"))
    assert listing["architectures"] == ["fc", "conv2", "conv4", "conv6", "conv8"]
    assert "large_init_large_final" in listing["criteria"] and "signed_reshuffle" in listing["mask1_policies"]
    assert "freeze_init_zero_rev" in listing["mask0_policies"] and "cifar10" in listing["datasets"]
    text = cli("list").stdout
    assert "magnitude_increase" in text and "lottery ticket" in text


@needs_mnist
def test_train_end_to_end(tmp_path):
    out = last_json(cli("train", "--arch", "fc", "--dataset", "mnist", "--out", str(tmp_path), "--json", *QUICK))
    assert set(out) >= {"early_stop_iteration", "early_stop_test_acc", "final_test_acc", "run_dir"}
    assert out["early_stop_iteration"] in (0, 10, 20, 30)
    assert 0.5 < out["final_test_acc"] <= 1.0
    assert os.path.isfile(os.path.join(out["run_dir"], "round_000", "metrics.csv"))
    again = last_json(cli("train", "--out", str(tmp_path), "--json", *QUICK))
    assert again["reused"] and again["final_test_acc"] == out["final_test_acc"]


@needs_mnist
def test_lottery_and_export_end_to_end(tmp_path):
    out = last_json(cli("lottery", "--arch", "fc", "--criterion", "large_final", "--mask1", "rewind", "--mask0",
                        "zero", "--rounds", "2", "--out", str(tmp_path), "--json", *QUICK))
    rounds = out["rounds"]
    assert [r["round"] for r in rounds] == [0, 1, 2]
    assert rounds[0]["weights_remaining"] == 1.0
    # fc1 .8, fc2 .8, fc3 .9 per round: (188160 + 24000 + 900) / 266200 after one round
    assert rounds[1]["weights_remaining"] == pytest.approx(213060 / 266200)
    assert rounds[2]["layer_remaining"]["fc3"] == pytest.approx(810 / 1000)
    for r in rounds:
        assert set(r) >= {"round", "weights_remaining", "layer_remaining", "early_stop_test_acc", "final_test_acc"}
    ticket = tmp_path / "ticket.pt"
    done = cli("export", out["run_dir"], "--round", "2", "--to", str(ticket), "--json")
    assert last_json(done)["out"] == str(ticket) and ticket.is_file()


@pytest.mark.parametrize("args,message", [
    (["train", "--epochs", "0"], "TrainConfig.epochs: 0 is out of range"),
    (["train", "--arch", "conv2", "--dataset", "mnist"], "DataConfig.dataset: 'mnist' does not fit arch 'conv2'"),
    (["lottery", "--prune-fraction-fc", "1.5"], "PruneConfig.prune_fraction_fc: 1.5 is out of range"),
    (["train", "--device", "cuda"], None),
])
def test_bad_input_is_one_clear_line(tmp_path, args, message):
    import torch

    if message is None:
        if torch.cuda.is_available():
            pytest.skip("CUDA present")
        message = "no CUDA device is available"
    done = cli(*args, "--out", str(tmp_path), "--quiet")
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not any(tmp_path.iterdir()) if tmp_path.exists() else True


def test_unknown_choice_lists_allowed_values(tmp_path):
    done = cli("lottery", "--criterion", "biggest", "--out", str(tmp_path))
    assert done.returncode == 2 and "large_final" in done.stderr and "biggest" in done.stderr


def test_missing_data_is_a_clear_error(tmp_path):
    done = cli("train", "--data-dir", str(tmp_path / "empty"), "--no-download", "--out", str(tmp_path), *QUICK)
    assert done.returncode == 2
    assert "train-images-idx3-ubyte.gz" in done.stderr and str(tmp_path / "empty") in done.stderr


@needs_mnist
def test_config_file_with_command_line_override(tmp_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"train": {"iterations": 20, "eval_every": 10, "eval_train": False, "seed": 4}}))
    out = last_json(cli("train", "--config", str(cfg), "--seed", "5", "--out", str(tmp_path), "--json",
                        "--device", "cpu", "--quiet"))
    saved = json.load(open(os.path.join(out["run_dir"], "config.json")))
    assert saved["train"]["seed"] == 5 and saved["train"]["iterations"] == 20


@needs_mnist
def test_ctrl_c_keeps_a_checkpoint_and_the_same_command_resumes(tmp_path):
    import signal
    import time

    args = ["train", "--iterations", "200000", "--eval-every", "1000", "--no-train-eval", "--device", "cpu",
            "--quiet", "--out", str(tmp_path)]
    proc = subprocess.Popen([sys.executable, "-m", "lt_core", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob("train-*/config.json")):  # written once the data is loaded
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else "timeout"
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "run the same command again to resume" in err and "Traceback" not in err
    (run_dir,) = tmp_path.glob("train-*")
    assert (run_dir / "round_000" / "checkpoint.pt").is_file()
    assert not (run_dir / "round_000" / "summary.json").exists()


@needs_mnist
def test_sigterm_keeps_a_checkpoint_exits_143_and_the_json_error_is_the_last_line(tmp_path):
    import time

    args = ["train", "--iterations", "200000", "--eval-every", "1000", "--no-train-eval", "--device", "cpu",
            "--quiet", "--json", "--out", str(tmp_path)]
    proc = subprocess.Popen([sys.executable, "-m", "lt_core", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob("train-*/config.json")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else "timeout"
        time.sleep(0.2)
    time.sleep(1.0)
    proc.terminate()  # SIGTERM, as kill, schedulers and container stops send
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "run the same command again to resume" in err and "Traceback" not in err
    last = json.loads(out.strip().splitlines()[-1])
    assert last["stopped"] is True and last["exit_status"] == 143 and "resume" in last["error"]
    (run_dir,) = tmp_path.glob("train-*")
    assert (run_dir / "round_000" / "checkpoint.pt").is_file()


def test_failures_print_one_line_and_a_json_error_and_debug_adds_the_traceback(tmp_path):
    done = cli("train", "--epochs", "0", "--json")
    assert done.returncode == 2
    assert done.stderr.strip() == "error: TrainConfig.epochs: 0 is out of range [1, 100000]"
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "error": "error: TrainConfig.epochs: 0 is out of range [1, 100000]", "exit_status": 2, "stopped": False}
    debug = cli("train", "--epochs", "0", "--debug")
    assert debug.returncode == 2 and "Traceback" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1] == "error: TrainConfig.epochs: 0 is out of range [1, 100000]"


@pytest.mark.parametrize("value", ["0", "-2"])
def test_max_stack_below_one_is_refused_before_training(tmp_path, value):
    done = cli("lottery", *QUICK, "--criterion", "large_final,random", "--max-stack", value, "--out",
               str(tmp_path / "results"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].endswith(
        f"max_stack: {value} is not allowed; give an integer >= 1, or None to fit the stack to free memory")
    assert not (tmp_path / "results").exists()


@needs_mnist
def test_a_single_run_on_a_scheduler_is_trained_there_and_read_back(tmp_path):
    """``--scheduler serial``: the run trains as a sweep's work unit, then its result is read from the store:
    the same JSON a later plain run, which reuses it, prints."""
    swept = last_json(cli("lottery", "--rounds", "1", "--scheduler", "serial", "--out", str(tmp_path), "--json",
                          *QUICK))
    assert [r["round"] for r in swept["rounds"]] == [0, 1] and swept["rounds"][1]["weights_remaining"] < 1
    assert sorted(p.name.split("-")[0] for p in tmp_path.iterdir() if p.is_dir()) == ["lottery", "train"]
    plain = last_json(cli("lottery", "--rounds", "1", "--out", str(tmp_path), "--json", *QUICK))
    assert plain == swept
    learned = last_json(cli("learn-mask", "--method", "edge_popup", "--iterations", "4", "--eval-every", "2",
                            "--device", "cpu", "--scheduler", "serial", "--out", str(tmp_path), "--json", "--quiet"))
    assert learned["method"] == "edge_popup" and learned["run_dir"].startswith(str(tmp_path))
