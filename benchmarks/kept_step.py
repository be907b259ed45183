"""Training step time of the C kernel against the kept fraction: the figure's 11-run stack at
several lottery rounds, the kernel built from this checkout and from another revision, alternating.

    python benchmarks/kept_step.py [--rev REV] [--rounds-k 0,4,8,12,16,20] [--steps N] [--reps R]

For each round k, 11 runs of FC 300-100-10 with random masks keeping 0.8^k of each hidden layer's
weights and 0.9^k of the output layer's (as the iterative-pruning figure's round k) are trained
with batch 60 by the ``cpu_kernel`` backend, one Trainer per library: this checkout's
``fc_stack.c`` ("new") and the one of git revision REV ("old", default HEAD). The two take N
steps in turn, R times; the medians are printed in ms per step of the whole stack, with their
ratio and the spread of the per-repetition ratios (the cores are shared with other work, so only
same-process, alternating comparisons mean much). Both libraries give the same bits when the
kernel's paths are exact, which the last column checks (max |new - old| weight difference).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lt_core import get_arch, init_weights, load_dataset  # noqa: E402
from lt_core.backends import RunSpec, native  # noqa: E402
from lt_core.models import zero_biases  # noqa: E402
from lt_core.train import Trainer  # noqa: E402

RUNS, BATCH, LR = 11, 60, 1.2e-3


def library_at(rev: str):
    """The kernel library built from git revision ``rev``'s sources."""
    tmp = Path(tempfile.mkdtemp(prefix="lt_kept_bench_"))
    csrc = native.CSRC.relative_to(REPO)
    names = subprocess.run(["git", "ls-tree", "--name-only", f"{rev}:{csrc}"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.split()
    for name in names:
        text = subprocess.run(["git", "show", f"{rev}:{csrc}/{name}"], cwd=REPO, capture_output=True, text=True,
                              check=True)
        (tmp / name).write_text(text.stdout)
    saved = native.SOURCES
    native.SOURCES = tuple(tmp / s.name for s in saved)
    try:
        return native.compile_library()
    finally:
        native.SOURCES = saved


def masks(arch, k: int, i: int):
    gen = torch.Generator().manual_seed(1000 * k + i)
    last = arch.layers[-1].name
    return {l.name: (torch.rand(l.shape, generator=gen) < (0.9 if l.name == last else 0.8) ** k).float()
            for l in arch.layers}


def trainer(arch, data, k: int, lib) -> Trainer:
    runs = [RunSpec(f"run{i}", init_weights(arch, i), zero_biases(arch), masks(arch, k, i), seed=0)
            for i in range(RUNS)]
    t = Trainer(arch, data, runs, lr=LR, batch_size=BATCH, iterations=10 ** 6, eval_every=10 ** 6)
    t.backend.fc_stack.lib = lib
    t.backend.threads = torch.get_num_threads()
    t.it = 0
    return t


def steps(t: Trainer, n: int, clock=time.perf_counter) -> float:
    start = clock()
    end = t.it + n
    while t.it < end:
        s = min(t.max_steps(t.it), end - t.it)
        t.steps(t.it, s)
        t.it += s
    return clock() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rev", default="HEAD", help="git revision of the 'old' kernel (default HEAD)")
    parser.add_argument("--rounds-k", default="0,4,8,12,16,20", help="lottery rounds to time")
    parser.add_argument("--steps", type=int, default=200, help="steps per timing (default 200: two blocks of 100)")
    parser.add_argument("--reps", type=int, default=5, help="timings of each library per round (default 5)")
    parser.add_argument("--threads", type=int, default=None,
                        help="kernel threads (default: PyTorch's count); with 1 the times are the thread's CPU "
                             "time, which other work on the machine disturbs less than wall time")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    clock = time.thread_time if torch.get_num_threads() == 1 else time.perf_counter
    os.environ.setdefault("LT_DATA_DIR", str(REPO.parent / "shared" / "datasets"))
    data = load_dataset("mnist", device="cpu")
    arch = get_arch("fc")
    libs = {"old": library_at(args.rev), "new": native.compile_library()}
    if len(libs["old"].lt_fc_train_steps.argtypes) < len(libs["new"].lt_fc_train_steps.argtypes):
        libs["old"].lt_fc_train_steps.argtypes = libs["new"].lt_fc_train_steps.argtypes  # (a trailing argument it ignores)
    print(f"{torch.get_num_threads()} threads ({'CPU' if clock is time.thread_time else 'wall'} time); load average {os.getloadavg()[0]:.1f}; old = {args.rev}, "
          f"new = this checkout; ms per step of {RUNS} runs (median of {args.reps} x {args.steps} steps)")
    print(f"{'k':>3}{'kept':>8}{'old ms':>9}{'new ms':>9}{'old/new':>9}   {'spread':<14}{'max |dw|':>10}")
    for k in (int(s) for s in args.rounds_k.split(",")):
        ts = {name: trainer(arch, data, k, lib) for name, lib in libs.items()}
        for t in ts.values():
            steps(t, 17)  # warm-up
        times = {name: [] for name in ts}
        for _ in range(args.reps):
            for name, t in ts.items():
                times[name].append(steps(t, args.steps, clock) / args.steps)
        old, new = (statistics.median(times[n]) for n in ("old", "new"))
        ratios = sorted(o / n for o, n in zip(times["old"], times["new"]))
        w_old, w_new = (ts[n].backend.w for n in ("old", "new"))
        dw = max(float((w_old[n] - w_new[n]).abs().max()) for n in w_old)
        print(f"{k:>3}{100 * 0.8 ** k:>7.1f}%{1e3 * old:>9.2f}{1e3 * new:>9.2f}{old / new:>9.2f}   "
              f"{ratios[0]:.2f}..{ratios[-1]:.2f}    {dw:>10.2g}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
