"""What a user sees when something is wrong (issue 31): stored files readable by a second user, one
line naming the file for a full disk, a garbage grid or a missing dataset, a reported wait on an
unreadable lock, and a JSON error object for every failure of a command run with ``--json``."""

import errno
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
from pathlib import Path

import pytest

from lt_core import ConfigError, TrainConfig, train_dense
from lt_core.atomic import atomic_write, atomic_write_text
from lt_core.data import DataNotFoundError, load_dataset
from lt_core.events import waiting_reporter
from lt_core.store import RunLock
from lt_core.store.lock import LOCK_FILE
from lt_core.sweep.grid import load_grid

from .conftest import needs_mnist

QUICK = TrainConfig(iterations=20, eval_every=10, eval_train=False, device="cpu")


@pytest.fixture
def umask():
    """Set the process's umask for one test (``umask(value)``), restored afterwards."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


def _modes(root: Path) -> dict:
    return {str(p.relative_to(root)): p.stat().st_mode & 0o777 for p in sorted(root.rglob("*")) if p.is_file()}


# -- item 10: file modes ---------------------------------------------------------------------------

def test_atomic_writes_get_the_mode_the_umask_gives(tmp_path, umask):
    umask(0o022)
    atomic_write_text(tmp_path / "a.txt", "a")
    umask(0o027)
    atomic_write_text(tmp_path / "b.txt", "b")
    umask(0o022)
    assert _modes(tmp_path) == {"a.txt": 0o644, "b.txt": 0o640}


@needs_mnist
def test_a_stored_run_and_an_exported_csv_are_readable_by_other_users(tmp_path, umask):
    from lt_core.dashboard.tables import export_csv

    umask(0o022)
    run = train_dense(train=QUICK, out=tmp_path / "results").run_dir
    modes = _modes(run)
    assert {"config.json", "ledger.jsonl", "round_000/final.pt", "round_000/metrics.csv",
            "round_000/summary.json", "round_000/checksums.json"} <= set(modes)
    assert set(modes.values()) == {0o644}, modes
    exported = export_csv({}, tmp_path / "results")
    assert exported.stat().st_mode & 0o777 == 0o644


# -- item 11: messages -----------------------------------------------------------------------------

def test_a_full_disk_names_the_file_being_written(tmp_path):
    def full(fh):
        fh.write(b"x")
        raise OSError(errno.ENOSPC, "No space left on device")  # as write() reports it: no file named

    with pytest.raises(OSError) as err:
        atomic_write(tmp_path / "final.pt", full)
    assert str(err.value) == f"[Errno 28] No space left on device: '{tmp_path / 'final.pt'}'"
    assert err.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []  # the temporary file is gone


@needs_mnist
def test_a_full_disk_during_a_run_is_one_line_naming_the_file(tmp_path, monkeypatch, capsys):
    from lt_core import atomic, cli

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full)
    root = tmp_path / "results"
    status = cli.main(["train", "--iterations", "20", "--eval-every", "10", "--no-train-eval", "--device", "cpu",
                       "--quiet", "--out", str(root)])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1, err
    assert re.fullmatch(rf"error: \[Errno 28\] No space left on device: '{re.escape(str(root))}/train-fc-[0-9a-f]{{12}}/"
                        r"config\.json'", err[0]), err[0]
    assert list(root.iterdir()) == []  # no temporary file, and the run folder the lock made is gone


def test_an_unreadable_lock_is_reported_while_it_is_waited_for(tmp_path, capsys):
    from lt_core import cli

    run = tmp_path / "lottery-fc-0123"
    run.mkdir()
    (run / LOCK_FILE).write_text("")  # fresh, and names no holder
    events = []
    lock = RunLock(run, stale_after=2.0, on_wait=waiting_reporter(events.append))
    t0 = time.monotonic()
    lock.acquire()
    waited = time.monotonic() - t0
    lock.release()
    assert 2.0 <= waited < 10
    assert events == [{"event": "stage", "stage": "waiting", "run": "lottery-fc-0123", "host": None, "pid": None,
                       "unreadable": True, "lock": str(run / LOCK_FILE), "stale_after": 2.0}]
    cli._print_event(events[0])
    assert capsys.readouterr().err == (f"waiting for lottery-fc-0123: its lock {run / LOCK_FILE} cannot be read "
                                       "(another process may be writing it); it is taken over if no heartbeat "
                                       "renews it for 2 s\n")


def test_a_lock_being_written_is_not_reported(tmp_path):
    """A lock file is empty for an instant after its holder creates it: no wait is reported for that."""
    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK_FILE).write_text("")
    seen = []

    def holder_writes_its_record():
        time.sleep(0.3)
        (run / LOCK_FILE).write_text(json.dumps({"host": "h", "pid": 1, "token": "t"}))
        time.sleep(0.5)
        (run / LOCK_FILE).unlink()

    writer = threading.Thread(target=holder_writes_its_record)
    writer.start()
    with RunLock(run, on_wait=lambda path, holder: seen.append(holder)):
        pass
    writer.join()
    assert seen == [{"host": "h", "pid": 1, "token": "t"}]


def test_a_yaml_error_is_one_line_naming_the_file_line_and_problem(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text("kind: lottery\ncriteria: [large_final, random\nseeds: [0]\n")
    with pytest.raises(ConfigError) as err:
        load_grid(grid)
    assert str(err.value) == (f"grid: {grid}, line 3 column 6: not valid YAML: expected ',' or ']', but got ':' "
                              "(while parsing a flow sequence at line 2 column 11)")
    grid.write_text("kind: lottery\n  criteria: random\n")
    with pytest.raises(ConfigError) as err:
        load_grid(grid)
    assert str(err.value) == f"grid: {grid}, line 2 column 11: not valid YAML: mapping values are not allowed here"


def test_a_missing_dataset_without_network_is_one_line_and_leaves_no_folder(tmp_path, monkeypatch):
    def offline(url, *args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr("torchvision.datasets.mnist.download_and_extract_archive", offline)
    root = tmp_path / "data" / "here"
    with pytest.raises(DataNotFoundError) as err:
        load_dataset("mnist", data_dir=str(root))
    assert str(err.value) == (
        f"mnist: dataset files not found in {root / 'mnist'} or {root / 'MNIST/raw'} or {root}, and they could not "
        "be downloaded. Put the four IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
        f"t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz; gzipped or not) in {root / 'mnist'}, or set the "
        "data directory (--data-dir, DataConfig.data_dir or LT_DATA_DIR) to the folder that holds 'mnist/'. "
        "(download failed: urlopen error [Errno -2] Name or service not known)")
    assert list(tmp_path.iterdir()) == []  # the folders the download made are gone again


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "lt_core", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("args, error", [
    (["list", "--plugin", "no_such_plugin_module", "--json"],
     "error: --plugin no_such_plugin_module: ModuleNotFoundError: No module named 'no_such_plugin_module'"),
    (["train", "--device", "gpu", "--json"],
     "error: argument --device: invalid choice: 'gpu' (choose from 'auto', 'cpu', 'cuda')"),
    (["lottery", "--json", "--rounds", "two"], "error: argument --rounds: invalid int value: 'two'"),
])
def test_with_json_every_failure_prints_one_error_object(args, error):
    done = _cli(*args)
    assert done.returncode == 2
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"error": error, "exit_status": 2, "stopped": False}
    assert done.stderr.strip().splitlines()[-1].endswith(error)
    assert "Traceback" not in done.stderr


def test_help_with_json_still_prints_the_help():
    done = _cli("train", "--help", "--json")
    assert done.returncode == 0 and done.stdout.startswith("usage: python -m lt_core train")
