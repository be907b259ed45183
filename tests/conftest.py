import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
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
