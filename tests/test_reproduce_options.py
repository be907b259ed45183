"""``reproduce`` and the notebooks read what they are given: ``--data-dir`` is the folder every experiment
reads (a missing one fails before anything runs), and an empty ``--only`` / ``--seeds`` / ``--archs`` is
refused instead of meaning the default. Ctrl-C or SIGTERM stops it as it stops ``lottery``: the notebook's
run checkpoints and one line says how to resume."""

import gzip
import os
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from lt_core import ConfigError, StopToken
from lt_core.cli import main
from lt_core.config import PruneConfig, TrainConfig
from lt_core.events import RunStopped
from lt_core.experiments import Dense, Lottery
from lt_core.runner import STOP_ENV, run_experiments
from lt_core.sweep import executor
from lt_core.paper.params import notebook_params
from lt_core.paper.notebooks import NOTEBOOKS
from lt_core.paper.reproduce import reproduce
from lt_core.store.lock import LOCK_FILE

from .conftest import DATA_DIR, REPO, needs_mnist


@pytest.fixture
def shuffled_mnist(tmp_path):
    """A copy of MNIST whose training labels are shuffled: what trains on it is at chance on the test split."""
    src, dst = DATA_DIR / "mnist", tmp_path / "shuffled" / "mnist"
    dst.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (dst / name).symlink_to(src / name)
    data = gzip.open(src / "train-labels-idx1-ubyte.gz").read()
    labels = np.frombuffer(data[8:], dtype=np.uint8).copy()
    np.random.RandomState(1).shuffle(labels)
    with gzip.open(dst / "train-labels-idx1-ubyte.gz", "wb") as fh:
        fh.write(data[:8] + labels.tobytes())
    yield dst.parent


@needs_mnist
def test_the_notebooks_data_dir_is_what_every_experiment_reads(shuffled_mnist, tmp_path):
    p = notebook_params(preset="tiny", data_dir=str(shuffled_mnist), report_dir=str(tmp_path / "r"))
    assert p.data_dir == str(shuffled_mnist.resolve())
    train = p.preset.train_config("fc", 0, "cpu")
    (shuffled,) = run_experiments([Dense("fc", train)], out=tmp_path / "shuffled_results", data_dir=p.data_dir)
    assert shuffled["early_stop_test_acc"].iloc[0] < 0.3  # trained on the shuffled labels: chance
    # a lottery handed to a sweep ("serial": the sweep's path, in this process) carries the folder too
    (lottery,) = run_experiments([Lottery("fc", train, [PruneConfig(rounds=1)])], out=tmp_path / "sweep_results",
                                 executor=executor("serial"), data_dir=p.data_dir)
    assert (lottery["early_stop_test_acc"] < 0.3).all()
    p = notebook_params(preset="tiny", report_dir=str(tmp_path / "r"))  # no data_dir: $LT_DATA_DIR's MNIST
    (normal,) = run_experiments([Dense("fc", train)], out=tmp_path / "normal_results", data_dir=p.data_dir)
    assert normal["early_stop_test_acc"].iloc[0] > 0.5
    assert normal["run"].iloc[0] == shuffled["run"].iloc[0]  # the folder is not part of the run's identity


def test_a_missing_data_dir_fails_before_anything_runs(tmp_path, capsys):
    missing = tmp_path / "nonexistent"
    status = main(["reproduce", "--preset", "tiny", "--data-dir", str(missing), "--report-dir", str(tmp_path / "out"),
                   "--quiet"])
    assert status == 2
    assert capsys.readouterr().err.strip() == (f"error: data_dir: {str(missing)!r} does not exist; give the folder "
                                               "that holds the datasets (e.g. mnist/ inside it), or none for "
                                               "$LT_DATA_DIR")
    assert not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match=f"parameter data_dir: {str(missing)!r} does not exist"):
        notebook_params(preset="tiny", data_dir=str(missing), report_dir=str(tmp_path / "r"))


@pytest.mark.parametrize("option, message", [
    ("--only", f"error: --only: '' is an empty list; give one or more notebooks: {', '.join(NOTEBOOKS)} "
               "(leave --only out to run them all)"),
    ("--seeds", "error: --seeds: '' is an empty list; give one or more integers, e.g. 0,1,2 (leave --seeds out for "
                "the preset's)"),
    ("--archs", "error: --archs: '' is an empty list; give one or more networks, e.g. fc (leave --archs out for "
                "each notebook's)"),    ("--methods", "error: --methods: '' is an empty list; give one or more mask methods, e.g. edge_popup,signed "
                  "(leave it out for the three)"),
])
def test_empty_list_options_are_refused(tmp_path, capsys, option, message):
    status = main(["reproduce", "--preset", "tiny", option, "", "--report-dir", str(tmp_path / "out"), "--quiet"])
    assert status == 2
    assert capsys.readouterr().err.strip() == message
    assert not (tmp_path / "out").exists()


def test_empty_lists_are_refused_by_the_python_api(tmp_path):
    with pytest.raises(ConfigError, match=rf"^only: the list is empty; give one or more of {', '.join(NOTEBOOKS)} "
                                          r"\(None runs them all\)$"):
        reproduce("tiny", only=[], out=tmp_path / "out")
    with pytest.raises(ConfigError, match=r"^seeds: the list is empty; give one or more \(None: each notebook's own\)$"):
        reproduce("tiny", seeds=[], out=tmp_path / "out")


def test_a_stop_before_a_notebook_ends_reproduce_with_the_report_written(tmp_path):
    stop = StopToken()
    stop.request("SIGTERM")
    with pytest.raises(RunStopped) as err:
        reproduce("tiny", only=["rq1"], out=tmp_path / "out", results_dir=tmp_path / "results", stop=stop,
                  progress=False)
    assert str(err.value) == "reproduce stopped by SIGTERM before rq1_mask_criteria.ipynb"
    assert (tmp_path / "out" / "report" / "index.md").is_file()
    assert not (tmp_path / "out" / ".stop").exists()


@needs_mnist
def test_the_stop_file_stops_a_notebooks_experiments_with_a_checkpoint(tmp_path, monkeypatch):
    """How Ctrl-C on ``reproduce`` reaches the notebook's kernel: the experiments watch the stop file."""
    stop_file = tmp_path / ".stop"
    monkeypatch.setenv(STOP_ENV, str(stop_file))
    out = tmp_path / "results"
    train = TrainConfig(iterations=100000, eval_every=50, eval_train=False, device="cpu")
    outcome = []

    def run():
        try:
            outcome.append(run_experiments([Dense("fc", train)], out=out))
        except BaseException as exc:  # noqa: BLE001 -- the test inspects it
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 120
    while not list(out.glob(f"train-fc-*/{LOCK_FILE}")) and time.monotonic() < deadline:
        time.sleep(0.05)
    stop_file.write_text("SIGINT")
    thread.join(timeout=120)
    assert isinstance(outcome[0], RunStopped), outcome
    assert re.fullmatch(r"round 0: stopped at iteration \d+", str(outcome[0]))
    (checkpoint,) = out.glob("train-fc-*/round_000/checkpoint.pt")
    assert checkpoint.is_file()


@needs_mnist
def test_sigterm_on_reproduce_stops_the_notebook_and_says_how_to_resume(tmp_path):
    out, results = tmp_path / "out", tmp_path / "results"
    proc = subprocess.Popen([sys.executable, "-m", "lt_core", "reproduce", "--preset", "quick", "--only", "rq4",
                             "--seeds", "0", "--device", "cpu", "--quiet", "--report-dir", str(out),
                             "--results-dir", str(results)], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while not list(results.glob(f"train-fc-*/{LOCK_FILE}")) and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr and "ZMQError" not in stderr
    assert re.fullmatch(r"rq4_supermasks\.ipynb: round 0: stopped at iteration \d+; finished rounds are kept, run "
                        r"the same command again to resume", stderr.strip().splitlines()[-1]), stderr
    (checkpoint,) = results.glob("train-fc-*/round_000/checkpoint.pt")
    assert checkpoint.is_file()
    assert "| rq4 |" in (out / "report" / "index.md").read_text()
