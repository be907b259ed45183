"""Stored numbers stay byte-identical: fixed short runs against committed ``metrics.csv`` / ``points.csv``.

``tests/golden/make_runs.py`` runs an FC lottery (two criteria, two rounds), FC one-shot
supermasks, two learned supermasks and a Conv2 lottery on a CIFAR-format fixture. The run folder
names are content hashes of the configs, so the same relative paths also pin the runs' identities.
Two variants: the C kernel backend (where it builds) and plain PyTorch (``LT_KERNELS=0``).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lt_core.backends import native

from .conftest import needs_mnist

HERE = Path(__file__).resolve().parent / "golden"
sys.path.insert(0, str(HERE))
from make_runs import compared_files  # noqa: E402


def _run(tmp_path, env_kernels):
    env = {**os.environ, "LT_KERNELS": env_kernels}
    out = tmp_path / "results"
    subprocess.run([sys.executable, str(HERE / "make_runs.py"), str(out)], env=env, check=True,
                   cwd=str(HERE.parents[1]), timeout=600)
    return compared_files(out)


def _expected(variant):
    folder = HERE / variant
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.csv"))}


@needs_mnist
@pytest.mark.parametrize("variant", ["kernel", "torch"])
def test_stored_numbers_are_byte_identical(tmp_path, variant):
    if variant == "kernel" and (os.environ.get("LT_KERNELS") == "0" or native.library() is None):
        pytest.skip("the C kernels are not available here")
    got = _run(tmp_path, "0" if variant == "torch" else "1")
    expected = _expected(variant)
    assert len(expected) >= 8
    assert sorted(got) == sorted(expected)
    for rel in expected:
        assert got[rel] == expected[rel], f"{rel} differs from tests/golden/{variant}/{rel}"
