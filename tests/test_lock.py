"""Per-run locks and the ledger: one process trains a run, another waits and reuses it; stale locks."""

import json
import os
import socket
import subprocess
import sys
import threading
import time

from lt_core.store import RunLock, hold_locks, trainings
from lt_core.store.lock import LOCK_FILE

from .conftest import REPO, needs_mnist


def _write_lock(run, holder, age=0.0):
    run.mkdir(parents=True, exist_ok=True)
    path = run / LOCK_FILE
    path.write_text(json.dumps(holder))
    t = time.time() - age
    os.utime(path, (t, t))
    return path


def test_lock_file_names_its_holder_and_is_removed_on_release(tmp_path):
    run = tmp_path / "train-fc-abc"
    with RunLock(run) as lock:
        holder = json.loads((run / LOCK_FILE).read_text())
        assert holder["host"] == socket.gethostname() and holder["pid"] == os.getpid()
        assert holder["token"] == lock.holder["token"]
    assert not (run / LOCK_FILE).exists()


def test_a_lock_without_heartbeat_for_longer_than_the_timeout_is_taken_over(tmp_path):
    run = tmp_path / "run"
    _write_lock(run, {"host": "another-machine", "pid": 4242, "token": "old"}, age=120)
    t0 = time.monotonic()
    with RunLock(run, stale_after=60) as lock:
        assert json.loads((run / LOCK_FILE).read_text())["token"] == lock.holder["token"]
    assert time.monotonic() - t0 < 5
    assert not run.exists()  # the stale lock was moved away and removed; the folder held nothing else


def test_a_lock_of_a_dead_process_on_this_host_is_taken_over_at_once(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run = tmp_path / "run"
    _write_lock(run, {"host": socket.gethostname(), "pid": dead.pid, "token": "dead"})
    t0 = time.monotonic()
    with RunLock(run, stale_after=600):
        pass
    assert time.monotonic() - t0 < 5


def test_a_live_lock_is_waited_for_with_the_holder_reported(tmp_path):
    run = tmp_path / "run"
    _write_lock(run, {"host": "another-machine", "pid": 4242, "token": "live"})  # fresh heartbeat
    seen, acquired = [], threading.Event()

    def contender():
        with RunLock(run, stale_after=600, on_wait=lambda path, holder: seen.append((path, holder))):
            acquired.set()

    thread = threading.Thread(target=contender)
    thread.start()
    time.sleep(0.8)
    assert not acquired.is_set()
    assert seen == [(run, {"host": "another-machine", "pid": 4242, "token": "live"})]
    (run / LOCK_FILE).unlink()  # the holder releases
    thread.join(timeout=10)
    assert acquired.is_set()


def test_the_heartbeat_keeps_a_held_lock_fresh(tmp_path):
    run = tmp_path / "run"
    with RunLock(run, heartbeat=0.05) as lock:
        old = time.time() - 100
        os.utime(run / LOCK_FILE, (old, old))
        time.sleep(0.5)
        assert time.time() - (run / LOCK_FILE).stat().st_mtime < 1
        assert not RunLock(run, stale_after=5).stale(lock.holder)


def test_hold_locks_takes_them_in_sorted_order(tmp_path):
    paths = [tmp_path / "b", tmp_path / "a", tmp_path / "c", tmp_path / "a"]
    with hold_locks(paths) as held:
        assert [lock.path.parent.name for lock in held] == ["a", "b", "c"]
        assert all((p / LOCK_FILE).exists() for p in paths)
    assert not any((p / LOCK_FILE).exists() for p in paths)


@needs_mnist
def test_two_processes_on_one_run_train_it_once(tmp_path):
    """Two CLI processes on the same lottery: each round is trained once (the ledger) and reused by the other."""
    out = tmp_path / "results"
    command = [sys.executable, "-m", "lt_core", "lottery", "--iterations", "40", "--eval-every", "20",
               "--no-train-eval", "--rounds", "1", "--device", "cpu", "--out", str(out), "--json", "--quiet"]
    procs = [subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outputs]
    results = [json.loads(stdout.strip().splitlines()[-1]) for stdout, _ in outputs]
    assert results[0]["rounds"] == results[1]["rounds"]
    (trunk,) = out.glob("train-fc-*")
    (branch,) = out.glob("lottery-fc-*")
    assert trainings(trunk) == {0: 1} and trainings(branch) == {1: 1}
    reused = sum(err.count("(reused)") for _, err in outputs)
    assert reused == 2  # rounds 0 and 1, each reused by the process that did not train it
    assert not list(out.rglob(LOCK_FILE))
