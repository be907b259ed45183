import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The suite runs on several pytest-xdist workers at once: each gets its share of the cores for its
# threads (PyTorch's and the C kernels' OpenMP; the processes it starts inherit it), so that workers
# do not wait on each other's threads at every barrier (about a fifth faster on 2 cores, 2 workers).
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1 and "OMP_NUM_THREADS" not in os.environ:
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // _WORKERS))
os.environ.setdefault("LT_DATA_DIR", str(REPO.parent / "shared" / "datasets"))
DATA_DIR = Path(os.environ["LT_DATA_DIR"])


def mnist_available() -> bool:
    folder = DATA_DIR / "mnist"
    return folder.is_dir() or (DATA_DIR / "MNIST" / "raw").is_dir()


needs_mnist = pytest.mark.skipif(not mnist_available(), reason=f"MNIST not found under {DATA_DIR}")


@pytest.fixture
def results(tmp_path):
    """A fresh results root for one test."""
    return tmp_path / "results"
