"""What a user waits for: a paper figure and the learned-mask Table 1 row, extrapolated from slices
timed in one process against the plain PyTorch way.

    python benchmarks/figure_time.py [--device cpu|cuda] [--quick] [--rounds R] [--steps N] [--learn-steps M]
                                     [--test-points T]

(1) Figure: the RQ1 figure at the paper's schedule -- the dense round 0 (one run), then 24 pruning
    rounds of 11 stacked FC 300-100-10 runs (the nine criteria and same/diff sign), batch 60, Adam,
    50,380 steps and 505 evaluation points a round. A training step's cost follows the weights a
    round keeps, so slices are timed at sample rounds k (random masks keeping 0.8^k of the hidden
    layers' weights, 0.9^k of the output layer's) and the rounds between are interpolated. The
    evaluation is the reproduction presets' (``eval_train=False, eval_test="best"``): the validation
    split at every point, the test split only where a run's validation loss reaches a new minimum
    and at the end -- T points per run and round (``--test-points``; default measured, see
    TEST_POINTS) -- everything the figure, Table 1 and the dashboard's early-stop numbers need.
    The plain way: one ``nn.Module`` per run, Adam, the pruned gradients zeroed after backward, a
    shuffled ``DataLoader`` over torchvision's MNIST with ``ToTensor``, evaluation of the validation
    and test splits at every point in batches of 1,000 under ``no_grad``; the runs one after another.
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
from lt_core.devices import resolve_device  # noqa: E402
from lt_core.models import zero_biases  # noqa: E402
from lt_core.supermask import LearnConfig  # noqa: E402
from lt_core.supermask.learned import MaskLearner  # noqa: E402
from lt_core.train import Trainer  # noqa: E402

FIGURE_RUNS, FIGURE_ROUNDS = 11, 24
SAMPLE_ROUNDS, QUICK_SAMPLE_ROUNDS = (1, 4, 8, 12, 16, 20, 24), (1, 8, 16, 24)
STEPS, EVAL_EVERY, BATCH, LR = 50_380, 100, 60, 1.2e-3  # 55 epochs of 916 batches of 60
EVAL_POINTS = STEPS // EVAL_EVERY + 2  # iteration 0, every 100, and the end
# Test-split evaluations per run and round under eval_test="best" (new validation minima and the
# end), measured on a whole paper-schedule round of 11 stacked runs at k = 8 (one seed; 39-50 a run,
# mean 45.1 of 505 points):
# `python benchmarks/figure_time.py --count-test-points 8`.
TEST_POINTS = 45.0
LEARN_EPOCHS, LEARN_SPE, LEARN_BATCH = 2000, 220, 250
VARIANTS = [LearnConfig(weights=w, dwr=d) for w in ("init", "signed_constant") for d in (False, True)]


DEVICE = torch.device("cpu")  # --device: both sides run there


def sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def timed(fn) -> float:
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t0


def figure_masks(arch, i: int, k: int):
    """Run i's random mask of pruning round k: 0.8^k of the hidden layers' weights kept, 0.9^k of the output's."""
    gen = torch.Generator().manual_seed(100 + i)
    keep = {l.name: (0.9 if l.name == arch.layers[-1].name else 0.8) ** k for l in arch.layers}
    return {l.name: (torch.rand(l.shape, generator=gen) < keep[l.name]).float() for l in arch.layers}


# -- the figure round -----------------------------------------------------------------------------

class LtFigure:
    """lt_core's training loop over a stack of ``runs`` runs at round ``k``: steps and evaluation."""

    def __init__(self, data, k: int, runs: int = FIGURE_RUNS, iterations: int = STEPS) -> None:
        arch = get_arch("fc")
        specs = [RunSpec(f"run{i}", init_weights(arch, i), zero_biases(arch), figure_masks(arch, i, k), seed=0)
                 for i in range(runs)]
        self.trainer = Trainer(arch, data, specs, lr=LR, batch_size=BATCH, iterations=iterations,
                               eval_every=EVAL_EVERY, eval_train=False, eval_test="best")
        self.it = 0

    def steps(self, n: int) -> None:
        end = self.it + n
        while self.it < end:
            k = min(self.trainer.max_steps(self.it), end - self.it)
            self.trainer.steps(self.it, k)
            self.it += k

    def warm_up(self) -> None:
        """Past a stack's first kernel calls, which time each way of sharing the threads (eight calls
        each, see ``FcStack.train_steps``): a round's 50,380 steps are a thousand calls."""
        for _ in range(30):
            self.steps(10)

    def evaluate(self, split: str) -> None:
        self.trainer.backend.evaluate(split)


def count_test_points(data, k: int) -> None:
    """Train one whole paper-schedule round of the 11-run stack at round k and count the points
    where each run's test split was evaluated (what TEST_POINTS holds)."""
    lt = LtFigure(data, k)
    t0 = time.perf_counter()
    results = lt.trainer.run()
    counts = [sum("test_acc" in e for e in r.evals) for r in results]
    print(f"round k={k}: {time.perf_counter() - t0:.0f} s wall; test points per run {counts}, "
          f"mean {statistics.mean(counts):.1f} of {len(results[0].evals)} evaluation points")


class PlainFigure:
    """The usual way, one run after another: ``nn.Module``, Adam, masked gradients, a DataLoader."""

    def __init__(self, root: Path, data) -> None:
        from torchvision import datasets, transforms

        ds = datasets.MNIST(str(root), train=True, download=False, transform=transforms.ToTensor())
        self.loader = torch.utils.data.DataLoader(ds, batch_size=BATCH, shuffle=True, drop_last=True,
                                                  generator=torch.Generator().manual_seed(0))
        self.batches = iter(self.loader)
        arch = get_arch("fc")
        self.splits = [data.val, data.test]
        self.models, self.masks, self.opts = [], [], []
        for i in range(FIGURE_RUNS):
            torch.manual_seed(i)
            model = nn.Sequential(nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(),
                                  nn.Linear(100, 10))
            model.to(DEVICE)
            masks = [m.to(DEVICE) for m in figure_masks(arch, i, 8).values()]
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
                x, y = x.to(DEVICE, non_blocking=True), y.to(DEVICE, non_blocking=True)
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
        self.models = [PlainSupermask(c, {n: w.to(DEVICE) for n, w in init_weights(arch, c.seed).items()}).to(DEVICE)
                       for c in VARIANTS]
        self.opts = [torch.optim.SGD(m.parameters(), lr=100.0, momentum=0.9) for m in self.models]
        self.gen = torch.Generator().manual_seed(0)

    def steps(self, n: int) -> None:
        x_all, y_all = self.data.train.x, self.data.train.y
        for model, opt in zip(self.models, self.opts):
            for _ in range(n):
                idx = torch.randint(len(y_all), (LEARN_BATCH,), generator=self.gen).to(DEVICE)
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


def interpolate(samples: dict, k: int) -> float:
    """A round's time at k, linear between the sampled rounds around it."""
    ks = sorted(samples)
    if k <= ks[0]:
        return samples[ks[0]]
    for lo, hi in zip(ks, ks[1:]):
        if k <= hi:
            return samples[lo] + (samples[hi] - samples[lo]) * (k - lo) / (hi - lo)
    return samples[ks[-1]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="where lt_core and the plain way both run (default cpu)")
    parser.add_argument("--quick", action="store_true", help="shorter slices, fewer rounds and sample rounds")
    parser.add_argument("--rounds", type=int, default=None, help="timing rounds (default 3, quick 2)")
    parser.add_argument("--steps", type=int, default=None, help="figure steps per round (default 200, quick 60)")
    parser.add_argument("--learn-steps", type=int, default=None,
                        help="learned-mask steps per round (default 44, quick 12)")
    parser.add_argument("--test-points", type=float, default=TEST_POINTS,
                        help=f"test-split evaluations per run and round (default {TEST_POINTS}, measured)")
    parser.add_argument("--count-test-points", type=int, default=None, metavar="K",
                        help="instead: train one whole round at k = K and count them (minutes)")
    args = parser.parse_args()
    rounds = args.rounds or (2 if args.quick else 3)
    steps = args.steps or (60 if args.quick else 200)
    plain_steps = max(steps // 10, 5)  # per plain run: 11 runs one after another
    learn_steps = args.learn_steps or (12 if args.quick else 44)
    os.environ.setdefault("LT_DATA_DIR", str(REPO.parent / "shared" / "datasets"))
    torch.manual_seed(0)
    global DEVICE
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device: cuda is not available here (torch.cuda.is_available() is False); use cpu")
    DEVICE = resolve_device(args.device)
    data = load_dataset("mnist", device=str(DEVICE))
    if args.count_test_points is not None:
        count_test_points(data, args.count_test_points)
        return 0
    where = torch.cuda.get_device_name(DEVICE) if DEVICE.type == "cuda" else "cpu"
    print(f"{where}, {torch.get_num_threads()} threads, torch {torch.__version__}; load average "
          f"{os.getloadavg()[0]:.1f} (timings share the cores with whatever else runs)")

    # (1) the figure: the plain way once (its cost does not follow the mask), lt_core at sample rounds
    tmp = tempfile.TemporaryDirectory()
    plain = PlainFigure(torchvision_root(Path(tmp.name)), data)
    plain.steps(3, 1)
    plain.evaluate(1)
    samples = QUICK_SAMPLE_ROUNDS if args.quick else SAMPLE_ROUNDS
    lt_round, lt_parts, plain_times = {}, {}, {"step": [], "eval": []}
    print(f"\n(1) figure: {FIGURE_RUNS} stacked FC runs a round, {STEPS} steps + {EVAL_POINTS} evaluation points "
          f"(validation at each, test at {args.test_points:g} a run)")
    print(f"{'round k (kept hidden %)':<26}{'step ms':>9}{'plain':>9}{'x':>7}{'eval s':>9}{'plain':>9}{'x':>7}"
          f"{'round min':>11}{'plain':>9}")
    for k in (0,) + tuple(samples):
        runs = 1 if k == 0 else FIGURE_RUNS  # round 0: the one dense run all criteria share
        lt = LtFigure(data, k, runs)
        lt.warm_up()
        lt.evaluate("val")
        t = rounds_of(rounds, {"lt": lambda: lt.steps(steps), "plain": lambda: plain.steps(plain_steps, 1)})
        e = rounds_of(rounds, {"val": lambda: lt.evaluate("val"), "test": lambda: lt.evaluate("test"),
                               "plain": lambda: plain.evaluate(1)})
        step, val, test = (statistics.median(x) for x in (t["lt"], e["val"], e["test"]))
        step /= steps
        plain_times["step"] += [x / plain_steps for x in t["plain"]]
        plain_times["eval"] += e["plain"]
        p_step = statistics.median(t["plain"]) / plain_steps * runs
        p_eval = statistics.median(e["plain"]) * runs
        evals = EVAL_POINTS * val + args.test_points * test  # the test split's cost is per run evaluated
        lt_round[k] = STEPS * step + evals
        lt_parts[k] = (STEPS * step, evals)
        p_round = STEPS * p_step + EVAL_POINTS * p_eval
        print(f"{k:>3} ({100 * 0.8 ** k:5.1f}%){'':<13}{1e3 * step:>9.2f}{1e3 * p_step:>9.1f}{p_step / step:>7.1f}"
              f"{EVAL_POINTS * val + args.test_points * test:>9.1f}{EVAL_POINTS * p_eval:>9.1f}"
              f"{EVAL_POINTS * p_eval / evals:>7.1f}{lt_round[k] / 60:>11.2f}{p_round / 60:>9.1f}")
        del lt
    del plain
    tmp.cleanup()
    pruned = [interpolate({k: v for k, v in lt_round.items() if k > 0}, k) for k in range(1, FIGURE_ROUNDS + 1)]
    figure_min = (lt_round[0] + sum(pruned)) / 60
    p_step = statistics.median(plain_times["step"]) * FIGURE_RUNS
    p_eval = statistics.median(plain_times["eval"]) * FIGURE_RUNS
    plain_round = STEPS * p_step + EVAL_POINTS * p_eval
    plain_min = (plain_round / FIGURE_RUNS + FIGURE_ROUNDS * plain_round) / 60
    steps_share = sum(interpolate({k: v[0] for k, v in lt_parts.items() if k > 0}, k)
                      for k in range(1, FIGURE_ROUNDS + 1)) / sum(pruned)
    print(f"figure, round 0 + {FIGURE_ROUNDS} rounds (min): lt_core {figure_min:.1f} (steps {100 * steps_share:.0f}% / "
          f"evaluation {100 - 100 * steps_share:.0f}%), plain {plain_min:.1f}, x plain {plain_min / figure_min:.1f}")

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
