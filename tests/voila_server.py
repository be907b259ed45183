"""Start a Voila server for a browser test, wait until it listens, and stop it with its kernels."""

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator, List, Mapping


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running(cmd: List[str], port: int, env: Mapping[str, str], cwd: Path, log_path: Path,
            timeout: float = 90) -> Iterator[subprocess.Popen]:
    """Voila started with ``cmd`` (its output in ``log_path``), once it accepts connections on ``port``;
    on exit it is terminated, and killed with its kernels (its session) if it does not stop in 15 s."""
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, cwd=cwd, env=dict(env), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("voila did not start:\n" + Path(log_path).read_text())
                time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # voila and the kernels it started
            proc.wait(5)
        log.close()
