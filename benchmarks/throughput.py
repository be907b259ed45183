"""Training throughput of lt_core against a plain PyTorch loop, measured in one process.

    python benchmarks/throughput.py [--device cpu|cuda] [--quick] [--steps N] [--rounds R] [--stack K]

(a) reference: torchvision's MNIST dataset with ``ToTensor``, a ``DataLoader`` (batch 60,
    shuffled), an ``nn.Module`` FC 300-100-10 and Adam -- the usual way to write it;
(b) lt_core training one run (lottery round with 80% of weights kept);
(c) lt_core training K = 9 runs as one stack (nine different masks, one data order, as the
    nine criteria of a figure).

Evaluation is left out of all three: only training steps are timed, after a warm-up, in R rounds
each, and each one's median over its rounds is reported. The reference runs first, alone (run
between lt_core's loops it measured about 6% slower); (b) and (c) then alternate round by round,
so that a drift in the machine's speed touches both alike. The last line is
``ratio_single=<b/a> ratio_batched=<9*c/a>``. Also printed: a large float32 matmul's GFLOP/s in
this process and the fraction of it the stacked path reaches (6 x weights x batch FLOPs a step,
the dense count: on the CPU lt_core's kernel skips the products of zero inputs, so it can go past
100%).
"""

from __future__ import annotations

import argparse
import gzip
import os
import resource
import statistics
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
from lt_core.backends import RunSpec  # noqa: E402
from lt_core.models import zero_biases  # noqa: E402
from lt_core.train import Trainer  # noqa: E402

FC_WEIGHTS = 266_200
BATCH = 60


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def torchvision_root(tmp: Path) -> Path:
    """A torchvision-layout copy (``MNIST/raw``, uncompressed) of the MNIST files lt_core reads."""
    src = resolve_data_dir(None)
    if all((src / "MNIST" / "raw" / name).is_file() for name in IDX_FILES.values()):
        return src
    raw = tmp / "MNIST" / "raw"
    raw.mkdir(parents=True)
    folder = src / "mnist"
    for name in IDX_FILES.values():
        gz = folder / f"{name}.gz"
        (raw / name).write_bytes(gzip.decompress(gz.read_bytes()) if gz.is_file() else (folder / name).read_bytes())
    return tmp


class Stepper:
    """A training loop that can be advanced ``n`` steps at a time and timed."""

    def __init__(self, device) -> None:
        self.device = device

    def advance(self, n: int) -> None:
        raise NotImplementedError

    def rate(self, n: int) -> float:
        """Steps per second over the next ``n`` steps."""
        sync(self.device)
        t0 = time.perf_counter()
        self.advance(n)
        sync(self.device)
        return n / (time.perf_counter() - t0)


class ReferenceLoop(Stepper):
    """The anchor: torchvision's MNIST with ``ToTensor``, a shuffled ``DataLoader`` (batch 60), an
    ``nn.Module`` FC 300-100-10 and Adam -- the usual way to write it."""

    def __init__(self, root: Path, device) -> None:
        super().__init__(device)
        from torch import nn
        from torchvision import datasets, transforms

        ds = datasets.MNIST(str(root), train=True, download=False, transform=transforms.ToTensor())
        self.loader = torch.utils.data.DataLoader(ds, batch_size=BATCH, shuffle=True, drop_last=True,
                                                  generator=torch.Generator().manual_seed(0))
        self.batches = iter(self.loader)
        torch.manual_seed(0)
        self.model = nn.Sequential(nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(),
                                   nn.Linear(100, 10)).to(device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1.2e-3)

    def advance(self, n: int) -> None:
        for _ in range(n):
            try:
                x, y = next(self.batches)
            except StopIteration:
                self.batches = iter(self.loader)
                x, y = next(self.batches)
            x, y = x.to(self.device), y.to(self.device)
            loss = F.cross_entropy(self.model(x), y)
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()


class LtCoreLoop(Stepper):
    """lt_core training ``k`` runs as one stack (80% of weights kept, a different mask per run,
    one data order, as the criteria of one figure)."""

    def __init__(self, k: int, device) -> None:
        super().__init__(device)
        arch = get_arch("fc")
        data = load_dataset("mnist", device=device)
        runs = []
        for i in range(k):
            gen = torch.Generator().manual_seed(100 + i)
            masks = {l.name: (torch.rand(l.shape, generator=gen) < 0.8).float() for l in arch.layers}
            runs.append(RunSpec(f"run{i}", init_weights(arch, i), zero_biases(arch), masks, seed=0))
        self.trainer = Trainer(arch, data, runs, lr=1.2e-3, batch_size=BATCH, iterations=10 ** 9)
        self.it = 0
        self.widths: list = []

    def advance(self, n: int) -> None:
        end = self.it + n
        backend = self.trainer.backend
        while self.it < end:  # as the training loop steps: as many steps a call as the trainer takes
            steps = min(self.trainer.max_steps(self.it), end - self.it)
            if backend.name == "dense_fc":
                self.widths += [backend.width(self.trainer.batch, self.it + j) for j in range(steps)]
            self.trainer.steps(self.it, steps)
            self.it += steps


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
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds (a rough figure in ~15 s)")
    parser.add_argument("--steps", type=int, default=None,
                        help="reference steps per round (lt_core single: 6x, stacked: 2/3 of it; default 400)")
    parser.add_argument("--rounds", type=int, default=None, help="timing rounds per measurement (default 5)")
    parser.add_argument("--stack", type=int, default=9, help="runs in the stacked measurement (default 9)")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but no CUDA device is available", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    rounds = args.rounds or (2 if args.quick else 5)
    steps = args.steps or (150 if args.quick else 400)  # reference steps per round; the others scale
    os.environ.setdefault("LT_DATA_DIR", str(REPO.parent / "shared" / "datasets"))
    window = {"ref": steps, "single": 6 * steps, "stacked": max(2 * steps // 3, 20)}
    rates = {name: [] for name in window}
    # The reference first, before lt_core allocates anything: measured between lt_core's loops it runs
    # about 6% slower (their memory use disturbs it), which would flatter the ratios.
    with tempfile.TemporaryDirectory() as tmp:
        ref_loop = ReferenceLoop(torchvision_root(Path(tmp)), device)
        ref_loop.advance(max(10, steps // 4))
        for _ in range(rounds):
            rates["ref"].append(ref_loop.rate(steps))
        del ref_loop
    # lt_core's two loops in interleaved rounds: a drift in the machine's speed touches both alike.
    loops = {"single": LtCoreLoop(1, device), "stacked": LtCoreLoop(args.stack, device)}
    for name, loop in loops.items():  # warm-up: allocations, caches, thread pools
        loop.advance(max(10, window[name] // 4))
    for _ in range(rounds):
        for name, loop in loops.items():
            rates[name].append(loop.rate(window[name]))
    ref, single, stacked = (statistics.median(rates[n]) for n in ("ref", "single", "stacked"))
    widths = loops["stacked"].widths
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
    print(f"float32 matmul (2048^3): {peak:.1f} GFLOP/s; stacked path reaches {reached:.1f} dense-equivalent GFLOP/s "
          f"({100 * reached / peak:.1f}% of it; dense compute roof {peak * 1e9 / flops_step:.0f} run-steps/s)")
    trainer = loops["stacked"].trainer
    print(f"backend: {trainer.backend.name}")
    if trainer.backend.name == "cpu_kernel":  # the C kernel computes over each image's nonzero inputs
        nonzero = [float((trainer.batch(it)[0] != 0).flatten(-3).sum(-1).float().mean()) for it in range(200)]
        print(f"first-layer inputs computed per image (its nonzero pixels, of 784): mean {sum(nonzero) / len(nonzero):.0f};"
              " the FLOP count above is the dense one")
    elif widths:
        print(f"first-layer inputs computed per step (nonzero-input prefix of 784): mean {sum(widths) / len(widths):.0f};"
              " the FLOP count above is the dense one")
    print(f"rounds: {rounds}, steps/s per round: " + "; ".join(
        f"{name} " + " ".join(f"{r:.0f}" for r in rates[name]) for name in rates))
    print(f"peak RSS of this process: {rss_mb:.0f} MB")
    print(f"ratio_single={single / ref:.2f} ratio_batched={args.stack * stacked / ref:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
