"""What a user waits for: a paper figure and the learned-mask Table 1 row, extrapolated from slices
timed in one process against the plain PyTorch way.

    python benchmarks/figure_time.py [--quick] [--rounds R] [--steps N] [--learn-steps M]

(1) Figure: a slice of one round of the RQ1 figure -- 11 stacked FC 300-100-10 runs (the nine
    criteria and same/diff sign; random masks at 0.8^8 / 0.9^8 kept, the mean kept fraction of the
    figure's 24 rounds), batch 60, Adam, with the default evaluation (train, validation and test
    splits every 100 steps). Training steps and evaluation points are timed apart and extrapolated
    to 24 rounds x (50,380 steps + 505 evaluation points).
    The plain way: one ``nn.Module`` per run, Adam, the pruned gradients zeroed after backward, a
    shuffled ``DataLoader`` over torchvision's MNIST with ``ToTensor``, evaluation of the three
    splits in batches of 1,000 under ``no_grad``; the 11 runs one after another.
(2) Learned masks: a slice of the Table 1 MNIST FC row -- four variants (initial weights, signed
    constants, each with and without DWR) trained as one stack by :class:`MaskLearner` (batch
    250, SGD momentum 0.9, a Bernoulli sample of every weight each step; its C step where the
    kernels build, as a user's run gets it), extrapolated to 2000 epochs x (220 steps + one
    one-sample test evaluation).
    The plain way: one ``nn.Module`` per variant holding its scores, the straight-through mask
    ``bernoulli(p) + p - p.detach()`` (times N / ones for DWR), ``torch.optim.SGD``; the four one
    after another.

Each measurement runs in R rounds, lt_core and the plain way alternating, so that a drift in the
machine's speed touches both alike; medians are extrapolated, and the spread of the per-round
ratios is printed as a measure of the noise. The last line is
``figure_minutes=<x> learned_minutes=<y>`` (lt_core's extrapolated wall times).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from throughput import torchvision_root  # noqa: E402

from lt_core import get_arch, init_weights, load_dataset  # noqa: E402
from lt_core.backends import RunSpec  # noqa: E402
from lt_core.models import zero_biases  # noqa: E402
from lt_core.supermask import LearnConfig  # noqa: E402
from lt_core.supermask.learned import MaskLearner  # noqa: E402
from lt_core.train import Trainer  # noqa: E402

FIGURE_RUNS, FIGURE_ROUNDS, MEAN_ROUND = 11, 24, 8
STEPS, EVAL_EVERY, BATCH, LR = 50_380, 100, 60, 1.2e-3  # 55 epochs of 916 batches of 60
EVAL_POINTS = STEPS // EVAL_EVERY + 2  # iteration 0, every 100, and the end
LEARN_EPOCHS, LEARN_SPE, LEARN_BATCH = 2000, 220, 250
VARIANTS = [LearnConfig(weights=w, dwr=d) for w in ("init", "signed_constant") for d in (False, True)]


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def figure_masks(arch, i: int):
    gen = torch.Generator().manual_seed(100 + i)
    keep = {l.name: (0.9 if l.name == arch.layers[-1].name else 0.8) ** MEAN_ROUND for l in arch.layers}
    return {l.name: (torch.rand(l.shape, generator=gen) < keep[l.name]).float() for l in arch.layers}


# -- the figure round -----------------------------------------------------------------------------

class LtFigure:
    """lt_core's training loop over the 11-run stack: steps and evaluation points."""

    def __init__(self, data) -> None:
        arch = get_arch("fc")
        runs = [RunSpec(f"run{i}", init_weights(arch, i), zero_biases(arch), figure_masks(arch, i), seed=0)
                for i in range(FIGURE_RUNS)]
        self.trainer = Trainer(arch, data, runs, lr=LR, batch_size=BATCH, iterations=STEPS, eval_every=EVAL_EVERY)
        self.it = 0

    def steps(self, n: int) -> None:
        end = self.it + n
        while self.it < end:
            k = min(self.trainer.max_steps(self.it), end - self.it)
            self.trainer.steps(self.it, k)
            self.it += k

    def evaluate(self) -> None:
        self.trainer.evaluate_point(self.it)


class PlainFigure:
    """The usual way, one run after another: ``nn.Module``, Adam, masked gradients, a DataLoader."""

    def __init__(self, root: Path, data) -> None:
        from torchvision import datasets, transforms

        ds = datasets.MNIST(str(root), train=True, download=False, transform=transforms.ToTensor())
        self.loader = torch.utils.data.DataLoader(ds, batch_size=BATCH, shuffle=True, drop_last=True,
                                                  generator=torch.Generator().manual_seed(0))
        self.batches = iter(self.loader)
        arch = get_arch("fc")
        self.splits = [data.train, data.val, data.test]
        self.models, self.masks, self.opts = [], [], []
        for i in range(FIGURE_RUNS):
            torch.manual_seed(i)
            model = nn.Sequential(nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(),
                                  nn.Linear(100, 10))
            masks = list(figure_masks(arch, i).values())
            with torch.no_grad():
                for lin, m in zip([model[1], model[3], model[5]], masks):
                    lin.weight.mul_(m)
            self.models.append(model)
            self.masks.append(masks)
            self.opts.append(torch.optim.Adam(model.parameters(), lr=LR))

    def batch(self):
        try:
            return next(self.batches)
        except StopIteration:
            self.batches = iter(self.loader)
            return next(self.batches)

    def steps(self, n: int, runs: int) -> None:
        for model, masks, opt in list(zip(self.models, self.masks, self.opts))[:runs]:
            for _ in range(n):
                x, y = self.batch()
                loss = F.cross_entropy(model(x), y)
                opt.zero_grad()
                loss.backward()
                for lin, m in zip([model[1], model[3], model[5]], masks):
                    lin.weight.grad.mul_(m)
                opt.step()

    @torch.no_grad()
    def evaluate(self, runs: int) -> None:
        for model in self.models[:runs]:
            for split in self.splits:
                loss = correct = 0.0
                for s in range(0, len(split), 1000):
                    out = model(split.x[s:s + 1000])
                    loss += float(F.cross_entropy(out, split.y[s:s + 1000], reduction="sum"))
                    correct += float((out.argmax(1) == split.y[s:s + 1000]).sum())


# -- the learned masks ----------------------------------------------------------------------------

class PlainSupermask(nn.Module):
    """One learned supermask the usual way: frozen weights, scores as parameters."""

    def __init__(self, config: LearnConfig, weights) -> None:
        super().__init__()
        self.dwr = config.dwr
        self.weights = [w if config.weights == "init" else w.sign() * w.std() for w in weights.values()]
        self.scores = nn.ParameterList([nn.Parameter(torch.zeros_like(w)) for w in self.weights])

    def forward(self, x):
        h = x.flatten(1)
        for i, (w, s) in enumerate(zip(self.weights, self.scores)):
            p = torch.sigmoid(s)
            m = torch.bernoulli(p.detach()) + p - p.detach()
            eff = w * m
            if self.dwr:
                eff = eff * (m.numel() / m.sum().clamp_min(1.0))
            h = F.linear(h, eff)
            if i < len(self.weights) - 1:
                h = F.relu(h)
        return h


class PlainLearned:
    def __init__(self, data) -> None:
        arch = get_arch("fc")
        self.data = data
        self.models = [PlainSupermask(c, init_weights(arch, c.seed)) for c in VARIANTS]
        self.opts = [torch.optim.SGD(m.parameters(), lr=100.0, momentum=0.9) for m in self.models]
        self.gen = torch.Generator().manual_seed(0)

    def steps(self, n: int) -> None:
        x_all, y_all = self.data.train.x, self.data.train.y
        for model, opt in zip(self.models, self.opts):
            for _ in range(n):
                idx = torch.randint(len(y_all), (LEARN_BATCH,), generator=self.gen)
                loss = F.cross_entropy(model(x_all[idx]), y_all[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()

    @torch.no_grad()
    def evaluate(self) -> None:
        for model in self.models:
            for s in range(0, len(self.data.test), 1000):
                model(self.data.test.x[s:s + 1000]).argmax(1)


class LtLearned:
    def __init__(self, data) -> None:
        arch = get_arch("fc")
        labels = [f"v{i}" for i in range(len(VARIANTS))]
        self.learner = MaskLearner(arch, data, VARIANTS, labels, iterations=LEARN_EPOCHS * LEARN_SPE)
        self.it = 0

    def steps(self, n: int) -> None:
        for _ in range(n):
            self.learner.step(self.it)
            self.it += 1

    def evaluate(self) -> None:
        self.learner.evaluate_point(self.it)


# -- driver ---------------------------------------------------------------------------------------

def rounds_of(r: int, pairs):
    """Per measurement, ``r`` timings of each side, the two sides alternating round by round."""
    times = {name: [] for name in pairs}
    for _ in range(r):
        for name, fn in pairs.items():
            times[name].append(timed(fn))
    return times


def spread(lt, plain) -> str:
    ratios = sorted(p / l for l, p in zip(lt, plain))
    return f"ratio per round {ratios[0]:.2f}..{ratios[-1]:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter slices, fewer rounds (~2 min)")
    parser.add_argument("--rounds", type=int, default=None, help="timing rounds (default 3, quick 2)")
    parser.add_argument("--steps", type=int, default=None, help="figure steps per round (default 200, quick 60)")
    parser.add_argument("--learn-steps", type=int, default=None,
                        help="learned-mask steps per round (default 44, quick 12)")
    args = parser.parse_args()
    rounds = args.rounds or (2 if args.quick else 3)
    steps = args.steps or (60 if args.quick else 200)
    plain_steps = max(steps // 10, 5)  # per plain run: 11 runs one after another
    learn_steps = args.learn_steps or (12 if args.quick else 44)
    os.environ.setdefault("LT_DATA_DIR", str(REPO.parent / "shared" / "datasets"))
    torch.manual_seed(0)
    data = load_dataset("mnist", device="cpu")
    print(f"cpu, {torch.get_num_threads()} threads, torch {torch.__version__}; load average "
          f"{os.getloadavg()[0]:.1f} (timings share the cores with whatever else runs)")

    # (1) figure round
    lt, tmp = LtFigure(data), tempfile.TemporaryDirectory()
    plain = PlainFigure(torchvision_root(Path(tmp.name)), data)
    lt.steps(20)
    lt.evaluate()
    plain.steps(3, 1)
    plain.evaluate(1)
    t_steps = rounds_of(rounds, {"lt": lambda: lt.steps(steps), "plain": lambda: plain.steps(plain_steps, 1)})
    t_eval = rounds_of(rounds, {"lt": lt.evaluate, "plain": lambda: plain.evaluate(1)})
    lt_step = statistics.median(t_steps["lt"]) / steps  # one step of the whole stack
    plain_step = statistics.median(t_steps["plain"]) / plain_steps * FIGURE_RUNS
    lt_eval, plain_eval = statistics.median(t_eval["lt"]), statistics.median(t_eval["plain"]) * FIGURE_RUNS
    lt_round = STEPS * lt_step + EVAL_POINTS * lt_eval
    plain_round = STEPS * plain_step + EVAL_POINTS * plain_eval
    del plain
    tmp.cleanup()
    print(f"\n(1) figure round: {FIGURE_RUNS} stacked FC runs, {STEPS} steps + {EVAL_POINTS} evaluation points "
          f"(backend {lt.trainer.backend.name})")
    print(f"{'':<28}{'lt_core':>12}{'plain':>12}{'x plain':>9}")
    print(f"{'step of 11 runs (ms)':<28}{1e3 * lt_step:>12.2f}{1e3 * plain_step:>12.2f}{plain_step / lt_step:>9.2f}"
          f"   ({spread([t / steps for t in t_steps['lt']], [t / plain_steps * FIGURE_RUNS for t in t_steps['plain']])})")
    print(f"{'evaluation point (s)':<28}{lt_eval:>12.3f}{plain_eval:>12.3f}{plain_eval / lt_eval:>9.2f}"
          f"   ({spread(t_eval['lt'], [t * FIGURE_RUNS for t in t_eval['plain']])})")
    print(f"{'round (min)':<28}{lt_round / 60:>12.2f}{plain_round / 60:>12.2f}{plain_round / lt_round:>9.2f}"
          f"   (steps {100 * STEPS * lt_step / lt_round:.0f}% / evaluation "
          f"{100 * EVAL_POINTS * lt_eval / lt_round:.0f}% of lt_core's)")
    figure_min = FIGURE_ROUNDS * lt_round / 60
    print(f"{'figure, 24 rounds (min)':<28}{figure_min:>12.1f}{FIGURE_ROUNDS * plain_round / 60:>12.1f}")
    del lt

    # (2) learned masks
    lt, plain = LtLearned(data), PlainLearned(data)
    lt.steps(20)  # past the C step's first timings of one thread against all (then it keeps the faster)
    lt.evaluate()
    plain.steps(2)
    t_steps = rounds_of(rounds, {"lt": lambda: lt.steps(learn_steps), "plain": lambda: plain.steps(learn_steps)})
    t_eval = rounds_of(rounds, {"lt": lt.evaluate, "plain": plain.evaluate})
    lt_step, plain_step = (statistics.median(t_steps[n]) / learn_steps for n in ("lt", "plain"))
    lt_eval, plain_eval = (statistics.median(t_eval[n]) for n in ("lt", "plain"))
    lt_epoch, plain_epoch = LEARN_SPE * lt_step + lt_eval, LEARN_SPE * plain_step + plain_eval
    print(f"\n(2) learned masks: {len(VARIANTS)} variants stacked, {LEARN_SPE} steps + 1 test evaluation an epoch")
    print(f"{'':<28}{'lt_core':>12}{'plain':>12}{'x plain':>9}")
    print(f"{'step of 4 variants (ms)':<28}{1e3 * lt_step:>12.2f}{1e3 * plain_step:>12.2f}"
          f"{plain_step / lt_step:>9.2f}   ({spread(t_steps['lt'], t_steps['plain'])})")
    print(f"{'evaluation (s)':<28}{lt_eval:>12.3f}{plain_eval:>12.3f}{plain_eval / lt_eval:>9.2f}"
          f"   ({spread(t_eval['lt'], t_eval['plain'])})")
    print(f"{'epoch (s)':<28}{lt_epoch:>12.2f}{plain_epoch:>12.2f}{plain_epoch / lt_epoch:>9.2f}"
          f"   (steps {100 * LEARN_SPE * lt_step / lt_epoch:.0f}% / evaluation {100 * lt_eval / lt_epoch:.0f}%)")
    learned_min = LEARN_EPOCHS * lt_epoch / 60
    print(f"{'2000 epochs (min)':<28}{learned_min:>12.1f}{LEARN_EPOCHS * plain_epoch / 60:>12.1f}")
    print(f"\npeak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    print(f"figure_minutes={figure_min:.1f} learned_minutes={learned_min:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
