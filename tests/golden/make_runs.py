"""Short, fixed runs whose stored numbers must not change: ``python tests/golden/make_runs.py OUT``.

Runs a two-criterion FC lottery (two pruning rounds), FC one-shot supermasks at five prune powers, a
short learned supermask and a Conv2 lottery on a small CIFAR-format fixture, all into the results
root ``OUT``.
``tests/test_golden.py`` runs this in a fresh process (with and without ``LT_KERNELS=0``) and
compares every ``metrics.csv`` and ``points.csv`` with the files in ``tests/golden/<variant>/``:
exactly where lt_core's C kernel fixed the order of every sum, within stated tolerances where
PyTorch's CPU kernels chose it (see that module). ``--write`` refreshes those files (only when
numbers are meant to change, e.g. the initialisation rule; the folder names change with it).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

import torchvision.datasets as tvd  # noqa: E402

import lt_core as lt  # noqa: E402

COMPARED = ("metrics.csv", "points.csv")
# the one-shot supermasks' prune powers: 100% of the weights down to 0.5% in five points (each point
# evaluates the training and test splits: every one of the 25 powers took most of the file's time)
GOLDEN_POWERS = (0, 1, 4, 12, 24)


def _cifar_fixture(root: Path) -> None:
    """A CIFAR-10-format folder of 6 x 12 random images, with torchvision's MD5 table pointed at it."""
    from tests.test_data import write_cifar_fixture

    folder, _ = write_cifar_fixture(root)
    md5 = lambda p: hashlib.md5(p.read_bytes()).hexdigest()  # noqa: E731
    tvd.CIFAR10.train_list = [[f"data_batch_{i}", md5(folder / f"data_batch_{i}")] for i in range(1, 6)]
    tvd.CIFAR10.test_list = [["test_batch", md5(folder / "test_batch")]]
    tvd.CIFAR10.meta = {"filename": "batches.meta", "key": "label_names", "md5": md5(folder / "batches.meta")}


def make_runs(out: Path) -> None:
    fc_train = lt.TrainConfig(iterations=40, eval_every=20, device="cpu")
    prunes = [lt.PruneConfig(rounds=2, criterion="large_final"),
              lt.PruneConfig(rounds=2, criterion="random", mask1="reinit", mask0="freeze_init_zero_mask")]
    lt.run_lotteries(train=fc_train, prunes=prunes, out=out, max_stack=2)
    lt.one_shot_supermasks(train=fc_train, sweep=lt.SupermaskConfig(criteria=("large_final", "magnitude_increase"),
                                                                     powers=GOLDEN_POWERS), out=out)
    lt.learn_supermasks(lt.DataConfig(), lt.ModelConfig(), [lt.LearnConfig(iterations=30, eval_every=15, device="cpu"),
                        lt.LearnConfig(weights="signed_constant", dwr=True, iterations=30, eval_every=15,
                                       device="cpu")], out=out)
    cifar = out.parent / "cifar-data"
    _cifar_fixture(cifar)
    lt.run_lottery(lt.DataConfig(data_dir=str(cifar), download=False, val_size=10), lt.ModelConfig(arch="conv2"),
                   lt.TrainConfig(iterations=10, eval_every=5, batch_size=10, device="cpu"),
                   lt.PruneConfig(rounds=1), out=out)


def compared_files(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for name in COMPARED for p in sorted(root.rglob(name))}


def variant() -> str:
    return "torch" if os.environ.get("LT_KERNELS") == "0" else "kernel"


if __name__ == "__main__":
    out = Path(sys.argv[1])
    make_runs(out)
    if "--write" in sys.argv:
        dest = HERE / variant()
        shutil.rmtree(dest, ignore_errors=True)
        for rel, content in compared_files(out).items():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            (dest / rel).write_bytes(content)
        print(f"wrote {len(compared_files(out))} files to {dest}")
