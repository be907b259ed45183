"""Training throughput of lt_core against a plain PyTorch loop, measured in one process.

    python benchmarks/throughput.py [--device cpu|cuda] [--quick] [--steps N] [--stack K]

(a) reference: torchvision's MNIST dataset with ``ToTensor``, a ``DataLoader`` (batch 60,
    shuffled), an ``nn.Module`` FC 300-100-10 and Adam -- the usual way to write it;
(b) lt_core training one run (lottery round with 80% of weights kept);
(c) lt_core training K = 9 runs as one stack (nine different masks, one data order, as the
    nine criteria of a figure).

Evaluation is left out of all three: only training steps are timed. The last line is
``ratio_single=<b/a> ratio_batched=<9*c/a>``. Also printed: a large float32 matmul's GFLOP/s in
this process and the fraction of it the stacked path reaches (6 x weights x batch FLOPs a step).
"""

from __future__ import annotations

import argparse
import gzip
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lt_core import get_arch, init_weights, load_dataset  # noqa: E402
from lt_core.data import IDX_FILES, resolve_data_dir  # noqa: E402
from lt_core.models import zero_biases  # noqa: E402
from lt_core.train import RunSpec, Trainer  # noqa: E402

FC_WEIGHTS = 266_200
BATCH = 60


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def torchvision_root(tmp: Path) -> Path:
    """A torchvision-layout copy (``MNIST/raw``, uncompressed) of the MNIST files lt_core reads."""
    src = resolve_data_dir(None)
    for candidate in (src / "MNIST" / "raw",):
        if all((candidate / name).is_file() for name in IDX_FILES.values()):
            return src
    raw = tmp / "MNIST" / "raw"
    raw.mkdir(parents=True)
    folder = src / "mnist"
    for name in IDX_FILES.values():
        gz = folder / f"{name}.gz"
        (raw / name).write_bytes(gzip.decompress(gz.read_bytes()) if gz.is_file() else (folder / name).read_bytes())
    return tmp


def reference_loop(root: Path, device, steps: int) -> float:
    """Steps per second of the plain loop (the anchor)."""
    from torch import nn
    from torchvision import datasets, transforms

    ds = datasets.MNIST(str(root), train=True, download=False, transform=transforms.ToTensor())
    loader = torch.utils.data.DataLoader(ds, batch_size=BATCH, shuffle=True, drop_last=True,
                                         generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(),
                          nn.Linear(100, 10)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1.2e-3)
    warmup = max(10, steps // 10)
    done, t0 = 0, None
    while True:
        for x, y in loader:
            if done == warmup:
                sync(device)
                t0 = time.perf_counter()
            x, y = x.to(device), y.to(device)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            done += 1
            if done == warmup + steps:
                sync(device)
                return steps / (time.perf_counter() - t0)


def lt_core_steps(k: int, device, steps: int) -> float:
    """Steps per second of lt_core training ``k`` runs (80% of weights kept, different masks)."""
    arch = get_arch("fc")
    data = load_dataset("mnist", device=device)
    runs = []
    for i in range(k):
        gen = torch.Generator().manual_seed(100 + i)
        masks = {l.name: (torch.rand(l.shape, generator=gen) < 0.8).float() for l in arch.layers}
        runs.append(RunSpec(f"run{i}", init_weights(arch, i), zero_biases(arch), masks, seed=0))
    trainer = Trainer(arch, data, runs, lr=1.2e-3, batch_size=BATCH, iterations=steps)
    warmup = max(10, steps // 10)
    for it in range(warmup):
        trainer.step(it)
    sync(device)
    t0 = time.perf_counter()
    for it in range(warmup, warmup + steps):
        trainer.step(it)
    sync(device)
    return steps / (time.perf_counter() - t0)


def matmul_gflops(device, n: int = 2048, reps: int = 10) -> float:
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    for _ in range(2):
        a @ b
    sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * n ** 3 * reps / (time.perf_counter() - t0) / 1e9


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--quick", action="store_true", help="fewer steps (a rough figure in ~30 s)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per measurement")
    parser.add_argument("--stack", type=int, default=9, help="runs in the stacked measurement (default 9)")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but no CUDA device is available", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    steps = args.steps or (300 if args.quick else 2000)
    os.environ.setdefault("LT_DATA_DIR", str(REPO.parent / "shared" / "datasets"))
    with tempfile.TemporaryDirectory() as tmp:
        root = torchvision_root(Path(tmp))
        ref = reference_loop(root, device, steps)
    single = lt_core_steps(1, device, steps)
    stacked = lt_core_steps(args.stack, device, max(steps // 3, 50))
    peak = matmul_gflops(device)
    flops_step = 6 * FC_WEIGHTS * BATCH
    reached = stacked * args.stack * flops_step / 1e9
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"device: {device} ({torch.get_num_threads()} threads), torch {torch.__version__}")
    print(f"{'measurement':<46}{'steps/s':>10}{'run-steps/s':>13}{'x reference':>13}")
    print(f"{'(a) plain PyTorch loop (DataLoader, nn.Module)':<46}{ref:>10.1f}{ref:>13.1f}{1.0:>13.2f}")
    print(f"{'(b) lt_core, one run':<46}{single:>10.1f}{single:>13.1f}{single / ref:>13.2f}")
    print(f"{f'(c) lt_core, {args.stack} runs stacked':<46}{stacked:>10.1f}{stacked * args.stack:>13.1f}"
          f"{stacked * args.stack / ref:>13.2f}")
    print(f"float32 matmul (2048^3): {peak:.1f} GFLOP/s; stacked path reaches {reached:.1f} GFLOP/s "
          f"({100 * reached / peak:.1f}% of it; compute roof {peak * 1e9 / flops_step:.0f} run-steps/s)")
    print(f"peak RSS of this process: {rss_mb:.0f} MB")
    print(f"ratio_single={single / ref:.2f} ratio_batched={args.stack * stacked / ref:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
