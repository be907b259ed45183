"""Steps per second of lt_core's mask learners against a plain PyTorch loop, per mask-learning method.

    python benchmarks/mask_methods.py [--device cpu|cuda] [--quick] [--steps N] [--reps R]
                                      [--methods zhou,edge_popup,signed]

For each method, one run on MNIST FC 300-100-10 at the method's default batch size and optimiser:

* ``lt_core``: the registered method's learner (:data:`lt_core.supermask.MASK_METHODS`), built as
  :func:`lt_core.learn_supermasks` builds it, its ``step`` called N times (the batch order, the mask,
  the forward and backward passes and the optimiser's step; no evaluation). Zhou's masks take their
  CPU steps in the C kernel (the ``cpu_kernel`` mask backend, :mod:`lt_core.backends.learned_fc`), as
  they do in a real run;
* ``plain``: what one would write by hand: an ``nn.Module`` holding the frozen weights (buffers) and
  one score per weight (parameters), the method's mask in its forward pass (Bernoulli sample of
  ``sigmoid(score)``; top-k of ``|score|`` per layer; {-1, 0, 1} by threshold; each with a
  straight-through gradient), the method's nonlinearity (signed supermasks: ELU), ``torch.optim.SGD``
  with the method's settings, batches drawn by indexing the learner's own in-memory training tensors
  (signed supermasks: the standardised images) with a shuffled order (no DataLoader).

The two take N steps in turn, R times, in this process (after a warm-up of each); the medians are
printed as steps per second with the ratio lt_core / plain (above 1: lt_core is faster) and the
spread of the per-repetition ratios. The cores may be shared with other work: only the ratio of
these alternating, same-process measurements means much, and even it wanders on a busy machine.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lt_core import get_arch, load_dataset  # noqa: E402
from lt_core.supermask import MASK_METHODS, method_config  # noqa: E402
from lt_core.supermask.methods import kept_count  # noqa: E402


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


# -- the plain loop ----------------------------------------------------------------------------------

class Bernoulli(torch.autograd.Function):
    @staticmethod
    def forward(ctx, p):
        return torch.bernoulli(p)

    @staticmethod
    def backward(ctx, grad):
        return grad


class TopK(torch.autograd.Function):
    @staticmethod
    def forward(ctx, magnitude, k):
        flat = magnitude.flatten()
        mask = torch.zeros_like(flat)
        mask[flat.topk(k, sorted=False).indices] = 1.0
        return mask.view_as(magnitude)

    @staticmethod
    def backward(ctx, grad):
        return grad, None


class Ternary(torch.autograd.Function):
    @staticmethod
    def forward(ctx, scores, threshold):
        return (scores > threshold).to(scores.dtype) - (scores < -threshold).to(scores.dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad, None


class PlainMaskedFC(nn.Module):
    """The FC network with frozen weights and trainable scores; ``method`` picks the mask."""

    def __init__(self, weights, scores, method: str, config) -> None:
        super().__init__()
        self.method, self.config = method, config
        self.act = F.elu if getattr(config, "activation", "relu") == "elu" else F.relu
        self.names = list(weights)
        for i, name in enumerate(self.names):
            self.register_buffer(f"w{i}", weights[name].clone())
            setattr(self, f"s{i}", nn.Parameter(scores[name].clone()))

    def mask(self, s: torch.Tensor) -> torch.Tensor:
        if self.method == "zhou":
            return Bernoulli.apply(torch.sigmoid(s))
        if self.method == "edge_popup":
            return TopK.apply(s.abs(), kept_count(s.numel(), self.config.keep_fraction))
        return Ternary.apply(s, self.config.threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.flatten(1)
        for i in range(len(self.names)):
            h = F.linear(h, getattr(self, f"w{i}") * self.mask(getattr(self, f"s{i}")))
            if i < len(self.names) - 1:
                h = self.act(h)
        return h


class Plain:
    """A hand-written training loop of one run of ``method``."""

    def __init__(self, learner, method: str, config, data) -> None:
        weights = {n: w[0] for n, w in learner.w.items()}
        scores = {n: s[0].detach() for n, s in learner.scores.items()}
        self.model = PlainMaskedFC(weights, scores, method, config).to(data.x.device)
        nesterov = getattr(config, "nesterov", False)
        wd = config.weight_decay if method == "edge_popup" else 0.0
        self.opt = torch.optim.SGD(self.model.parameters(), lr=config.lr, momentum=config.momentum,
                                   nesterov=nesterov, weight_decay=wd)
        self.method, self.config, self.data = method, config, data
        self.batch = config.batch_size
        self.spe = data.x.shape[0] // self.batch
        self.order = torch.randperm(data.x.shape[0], device=data.x.device)
        self.it = 0

    def advance(self, n: int) -> None:
        c = self.config
        for _ in range(n):
            j = self.it % self.spe
            if j == 0:
                self.order = torch.randperm(self.data.x.shape[0], device=self.data.x.device)
            idx = self.order[j * self.batch:(j + 1) * self.batch]
            x, y = self.data.x[idx], self.data.y[idx]
            epoch = self.it // self.spe
            if self.method == "edge_popup":
                lr = 0.5 * (1 + math.cos(math.pi * epoch / c.epochs)) * c.lr
            elif self.method == "signed":
                lr = c.lr * c.lr_decay ** (self.it // c.decay_every)
            else:
                lr = c.lr
            for group in self.opt.param_groups:
                group["lr"] = lr
            loss = F.cross_entropy(self.model(x), y)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            if self.method == "signed" and c.weight_decay:
                with torch.no_grad():
                    for p in self.model.parameters():
                        p.mul_(1.0 - c.weight_decay * c.lr_decay ** (self.it // c.decay_every))
            self.opt.step()
            self.it += 1


class Ours:
    def __init__(self, learner) -> None:
        self.learner, self.it = learner, 0

    def advance(self, n: int) -> None:
        for _ in range(n):
            self.learner.step(self.it)
            self.it += 1


def rate(runner, n: int, device) -> float:
    sync(device)
    t0 = time.perf_counter()
    runner.advance(n)
    sync(device)
    return n / (time.perf_counter() - t0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--quick", action="store_true", help="fewer, shorter repetitions (a rough figure)")
    parser.add_argument("--steps", type=int, default=None, help="steps per measurement (default 100; quick 30)")
    parser.add_argument("--reps", type=int, default=None, help="alternating repetitions (default 7; quick 3)")
    parser.add_argument("--methods", default=",".join(MASK_METHODS.names()[:3]),
                        help="comma-separated registered methods (default zhou,edge_popup,signed)")
    args = parser.parse_args()
    steps = args.steps or (30 if args.quick else 100)
    reps = args.reps or (3 if args.quick else 7)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("--device cuda: no CUDA device here", file=sys.stderr)
        return 2
    arch = get_arch("fc")
    ds = load_dataset("mnist", data_dir=os.environ.get("LT_DATA_DIR"), download=False, device=device)
    print(f"MNIST FC 300-100-10, device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{steps} steps x {reps} alternating repetitions (medians; the cores may be shared with other work)")
    print(f"{'method':<12} {'batch':>5} {'lt_core steps/s':>16} {'plain steps/s':>14} {'ratio':>7}  ratio range")
    for method in [m.strip() for m in args.methods.split(",") if m.strip()]:
        config = method_config(method, iterations=10**6, device=args.device)
        learner = MASK_METHODS[method].learner(arch, ds, [config], ["bench"], iterations=10**6)
        ours, plain = Ours(learner), Plain(learner, method, config, learner.data.train)  # the inputs it trains on
        rate(ours, 5, device), rate(plain, 5, device)  # warm-up
        mine, theirs = [], []
        for _ in range(reps):
            mine.append(rate(ours, steps, device))
            theirs.append(rate(plain, steps, device))
        ratios = [a / b for a, b in zip(mine, theirs)]
        print(f"{method:<12} {config.batch_size:>5} {statistics.median(mine):>16.1f} "
              f"{statistics.median(theirs):>14.1f} {statistics.median(ratios):>7.2f}  "
              f"{min(ratios):.2f}-{max(ratios):.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
