"""Bad input and faults: every case ends in one clear line (exit status 2, no traceback), or, for a
damaged checkpoint, a warning and a fresh start. Table-driven over the command line, plus the API."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import lt_core
from lt_core import ConfigError, PruneConfig, TrainConfig, compute_masks

from .conftest import needs_mnist

TINY = ["--iterations", "20", "--eval-every", "10", "--no-train-eval", "--device", "cpu", "--quiet"]


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "lt_core", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A results root with a finished dense run (for export and store faults)."""
    root = tmp_path_factory.mktemp("stored") / "results"
    done = cli("train", *TINY, "--out", root, "--json")
    assert done.returncode == 0, done.stderr
    return root, Path(json.loads(done.stdout.splitlines()[-1])["run_dir"])


def _config_file(tmp_path, body):
    path = tmp_path / "config.json"
    path.write_text(body if isinstance(body, str) else json.dumps(body))
    return path


# (case id, how to build the arguments from tmp_path and the stored run, words the one line must hold)
CASES = [
    ("eval_train is a word", lambda t, s: ["train", *TINY, "--config", _config_file(t, {"train": {"eval_train": "no"}})],
     "TrainConfig.eval_train: expected true or false, got 'no'"),
    ("download is a word", lambda t, s: ["train", *TINY, "--config", _config_file(t, {"data": {"download": "no"}})],
     "DataConfig.download: expected true or false, got 'no'"),
    ("data_dir is a number", lambda t, s: ["train", *TINY, "--config", _config_file(t, {"data": {"data_dir": 5}})],
     "DataConfig.data_dir: expected a string or null, got 5"),
    ("config is a list", lambda t, s: ["train", *TINY, "--config", _config_file(t, "[1, 2]")],
     "config: expected a JSON object with sections data, model, train, prune, got list"),
    ("config is null", lambda t, s: ["train", *TINY, "--config", _config_file(t, "null")],
     "got null"),
    ("config is a folder", lambda t, s: ["train", *TINY, "--config", t], "is a directory; give a JSON file"),
    ("config is not JSON", lambda t, s: ["train", *TINY, "--config", _config_file(t, "{oops")], "is not valid JSON"),
    ("empty results root", lambda t, s: ["train", *TINY, "--out", ""], "results root: an empty path was given"),
    ("results root is a file", lambda t, s: ["train", *TINY, "--out", _config_file(t, "{}")],
     "is a file, not a folder"),
    ("max-stack zero", lambda t, s: ["lottery", *TINY, "--max-stack", "0", "--out", t / "r"],
     "max_stack: 0 is not allowed"),
    ("max-stack negative", lambda t, s: ["lottery", *TINY, "--max-stack", "-2", "--out", t / "r"],
     "max_stack: -2 is not allowed"),
    ("unknown criterion", lambda t, s: ["lottery", *TINY, "--criterion", "biggest", "--out", t / "r"],
     "PruneConfig.criterion: unknown value 'biggest'; allowed values: large_final"),
    ("epochs zero", lambda t, s: ["train", "--epochs", "0"], "TrainConfig.epochs: 0 is out of range [1, 100000]"),
    ("missing plugin", lambda t, s: ["list", "--plugin", "no_such_plugin_module"], "--plugin no_such_plugin_module"),
    ("export to a folder", lambda t, s: ["export", s[1], "--round", "0", "--to", t], "is a folder; give a file name"),
    ("export a round that is not there", lambda t, s: ["export", s[1], "--round", "3", "--to", t / "x.pt"],
     "round 3: not finished"),
    ("export from a folder that is no run", lambda t, s: ["export", t, "--round", "0", "--to", t / "x.pt"],
     "not a run folder"),
]


@needs_mnist
@pytest.mark.parametrize("case, make_args, words", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_clear_line(tmp_path, stored, case, make_args, words):
    args = make_args(tmp_path, stored)
    before_store, before_tmp = _snapshot(stored[0]), _snapshot(tmp_path)
    done = cli(*args)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and len(lines) == 1, done.stderr
    assert words in lines[0]
    assert _snapshot(stored[0]) == before_store and _snapshot(tmp_path) == before_tmp  # nothing written


def _snapshot(root: Path) -> dict:
    """Every file under ``root`` with its size and modification time: equal snapshots, untouched files."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))
            if p.is_file()}


@needs_mnist
def test_a_damaged_metrics_file_is_named_before_the_next_round_trains(tmp_path):
    root = tmp_path / "results"
    first = cli("lottery", *TINY, "--rounds", "1", "--out", root, "--json")
    assert first.returncode == 0, first.stderr
    run_dir = Path(json.loads(first.stdout.splitlines()[-1])["run_dir"])
    metrics = run_dir / "round_001" / "metrics.csv"
    metrics.write_text("run,round,iteration\nx,one,0\n")
    again = cli("lottery", *TINY, "--rounds", "2", "--out", root)
    assert again.returncode == 2 and "Traceback" not in again.stderr, again.stderr
    line = again.stderr.strip().splitlines()[-1]
    assert str(metrics) in line and "malformed metrics" in line and f"delete {metrics.parent}" in line
    assert not (run_dir / "round_002").exists()


@needs_mnist
def test_a_full_disk_is_one_line_naming_the_file(tmp_path, monkeypatch, capsys):
    import errno

    from lt_core import atomic, cli as cli_module

    def full(path, write):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(atomic, "atomic_write", full)
    status = cli_module.main(["train", *TINY, "--out", str(tmp_path / "results")])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and err[-1].startswith("error: [Errno 28] No space left on device: ")
    assert str(tmp_path / "results") in err[-1]


@pytest.mark.slow  # over a minute on a 2-core CPU: run with -m slow
@needs_mnist
def test_sigterm_mid_round_then_the_same_command_resumes_to_the_same_bytes(tmp_path):
    import signal
    import time

    args = ["train", "--iterations", "20000", "--eval-every", "2000", "--no-train-eval", "--device", "cpu", "--quiet"]
    reference = cli(*args, "--out", tmp_path / "reference", "--json")
    assert reference.returncode == 0, reference.stderr
    root = tmp_path / "stopped"
    proc = subprocess.Popen([sys.executable, "-m", "lt_core", *args, "--out", str(root)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(root.glob("train-*/config.json")):
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before it could be stopped"
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    (run_dir,) = root.glob("train-*")
    assert (run_dir / "round_000" / "checkpoint.pt").is_file()
    resumed = cli(*args, "--out", root, "--json")
    assert resumed.returncode == 0, resumed.stderr
    (ref_dir,) = (tmp_path / "reference").glob("train-*")
    assert (run_dir / "round_000" / "metrics.csv").read_bytes() == (ref_dir / "round_000" / "metrics.csv").read_bytes()


@needs_mnist
@pytest.mark.parametrize("damage", ["truncated", "missing", "swapped"])
def test_a_damaged_store_is_named_with_the_remedy(tmp_path, stored, damage):
    import shutil

    root = tmp_path / "results"
    shutil.copytree(stored[0], root)
    round_dir = root / stored[1].name / "round_000"
    target = round_dir / ("masks.pt" if damage == "missing" else "init.pt")  # both read by export
    if damage == "truncated":
        target.write_bytes(target.read_bytes()[:100])
    elif damage == "missing":
        target.unlink()
    else:  # a valid tensor file, but not the one written here
        torch.save(torch.load(round_dir / "final.pt"), target)
    done = cli("export", round_dir.parent, "--round", "0", "--out", tmp_path / "ticket.pt")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert str(round_dir) in line and f"delete {round_dir} to recompute it" in line


@needs_mnist
def test_a_damaged_checkpoint_is_reported_then_discarded(tmp_path):
    root = tmp_path / "results"
    first = cli("train", *TINY, "--out", root, "--json")
    run_dir = Path(json.loads(first.stdout.splitlines()[-1])["run_dir"])
    (run_dir / "round_000" / "summary.json").unlink()  # the round is unfinished again...
    (run_dir / "round_000" / "checkpoint.pt").write_bytes(b"not a checkpoint")  # ...with a damaged checkpoint
    again = cli("train", *TINY, "--out", root, "--json")
    assert again.returncode == 0, again.stderr
    assert "warning: checkpoint" in again.stderr and "could not be read" in again.stderr
    assert "training starts afresh" in again.stderr
    assert json.loads(again.stdout.splitlines()[-1])["early_stop_test_acc"] == \
        json.loads(first.stdout.splitlines()[-1])["early_stop_test_acc"]
    assert not (run_dir / "round_000" / "checkpoint.pt").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_a_read_only_results_root_is_refused_up_front(tmp_path):
    root = tmp_path / "results"
    root.mkdir()
    root.chmod(0o555)
    try:
        done = cli("train", *TINY, "--out", root)
    finally:
        root.chmod(0o755)
    assert done.returncode == 2 and "cannot be written" in done.stderr and "Traceback" not in done.stderr


def test_api_arguments_of_the_wrong_kind_are_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match=r"experiment: train must be a TrainConfig, got dict; build one with "
                                          r"TrainConfig\(\*\*\{\.\.\.\}\)"):
        lt_core.run_lottery(train={"iterations": 10}, out=tmp_path)
    with pytest.raises(ConfigError, match="run_lotteries: prune must be a PruneConfig, got str"):
        lt_core.run_lotteries(train=TrainConfig(iterations=10), prunes=["large_final"], out=tmp_path)
    with pytest.raises(ValueError, match="prunes must be a non-empty list of PruneConfig"):
        lt_core.run_lotteries(prunes=PruneConfig(), out=tmp_path)
    with pytest.raises(ValueError, match="learns must be a non-empty list of LearnConfig"):
        lt_core.learn_supermasks(lt_core.DataConfig(), lt_core.ModelConfig(), lt_core.LearnConfig(), out=tmp_path)
    assert not (tmp_path / "train-fc").exists() and list(tmp_path.iterdir()) == []


def test_prune_fractions_for_a_layer_that_does_not_exist_are_refused():
    w = {"fc1": torch.randn(4, 3)}
    masks = {"fc1": torch.ones(4, 3)}
    with pytest.raises(ValueError, match=r"prune_fractions names layer\(s\) 'fc9' that are not among the masks' "
                                         r"layers \(fc1\)"):
        compute_masks("large_final", w, w, masks, {"fc9": 0.2}, seed=0)
