"""Learned supermasks (protocol section 7), :func:`~.learning.learn_supermask`: weights frozen at their initialisation (initial
values or signed constants, biases zero and unused), one real-valued score per weight, initialised
to ``score_init``; each forward pass samples ``b ~ Bernoulli(sigmoid(score))`` and uses the
straight-through mask ``b + sigmoid(score) - stopgrad(sigmoid(score))``, so that
``dL/dscore = dL/dmask * sigmoid'(score)``. With dynamic weight rescaling (DWR) every layer's
masked weights are multiplied, on every forward pass (training and evaluation), by the layer's
weight count over the number of ones in the sampled mask; the count is taken from the
straight-through mask, so gradients also flow through it (the original's behaviour). Evaluation
samples masks too: the reported accuracy is the mean test accuracy over ``eval_samples`` (10)
independent samples, and the keep fraction is the expected one, ``sum(sigmoid(score)) / N``.

Defaults (protocol section 7): SGD with momentum 0.9 (non-Nesterov), learning rate 100, batch
250, score init 0, 2000 epochs for MNIST FC. For Conv2/4/6 the protocol has no verified settings;
our *choices* are the same optimiser, learning rate, batch and score init, and 100 epochs. All are
configurable (:class:`LearnConfig`). How a step is computed is a mask backend's business
(:func:`lt_core.backends.choose_mask_backend`): fully connected stacks on the CPU take their steps in
C (the same masks, the sums rounded in another order), everything else the reference's autograd.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch

from ..archs import Arch
from ..backends import choose_mask_backend, evaluate
from ..batches import BatchOrder
from ..config import Config, check_choice, check_length, check_range, no_hash, option
from ..data import Dataset
from ..events import LearnEval, Stage, emit
from ..models import init_weights
from ..seeding import derive_seed
from ..checkpoints import write_checkpoint
from ..steploop import StepLoop
from .oneshot import WEIGHT_KINDS, signed_constants

Tensor = torch.Tensor


@dataclass(frozen=True, repr=False)
class LearnConfig(Config):
    """Learned supermask training (protocol section 7). ``epochs=None``: the architecture record's
    ``learn_epochs`` (2000 for FC, 100 for the conv nets)."""

    weights: str = option("init", "frozen weights")
    dwr: bool = option(False, "dynamic weight rescaling")
    seed: int = option(0, "seeds the weights, the scores and the data order")
    lr: float = option(100.0, "SGD learning rate of the scores")
    momentum: float = option(0.9, "SGD momentum")
    batch_size: int = option(250, "batch size")
    epochs: Optional[int] = option(None, "epochs", default_text="the arch's: 2000 for fc, 100 for conv nets")
    iterations: Optional[int] = option(None, "iterations instead of epochs")
    score_init: float = option(0.0, "initial scores (0 keeps p = 0.5)")
    signed_constant_multiplier: float = option(1.0, "scale of the signed constants")
    eval_samples: int = option(10, "masks sampled to evaluate the test accuracy")
    eval_every: Optional[int] = option(None, "evaluate every N iterations", default_text="once per epoch")
    device: str = no_hash("auto", "device (auto: cuda if present)")

    def validate(self) -> None:
        check_choice("LearnConfig", "weights", self.weights, WEIGHT_KINDS)
        check_range("LearnConfig", "seed", self.seed, 0, 2**63 - 1, integer=True)
        check_range("LearnConfig", "lr", self.lr, 0, 1e6, lo_open=True)
        check_range("LearnConfig", "momentum", self.momentum, 0, 1, hi_open=True)
        check_range("LearnConfig", "batch_size", self.batch_size, 1, 100000, integer=True)
        check_length("LearnConfig", self.epochs, self.iterations)
        check_range("LearnConfig", "score_init", self.score_init, -20.0, 20.0)
        check_range("LearnConfig", "signed_constant_multiplier", self.signed_constant_multiplier, 0, 1e3, lo_open=True)
        check_range("LearnConfig", "eval_samples", self.eval_samples, 1, 1000, integer=True)
        if self.eval_every is not None:
            check_range("LearnConfig", "eval_every", self.eval_every, 1, 10**9, integer=True)
        check_choice("LearnConfig", "device", self.device, ("auto", "cpu", "cuda"))


@dataclass
class LearnResult:
    run_dir: Path
    test_acc_mean: float
    test_acc_samples: List[float]
    expected_keep_fraction: float
    layer_keep_fraction: Dict[str, float]
    iterations: int
    evals: List[dict] = field(default_factory=list)
    reused: bool = False

    def to_json(self) -> dict:
        return {"run_dir": str(self.run_dir), "test_acc_mean": self.test_acc_mean,
                "test_acc_samples": self.test_acc_samples, "expected_keep_fraction": self.expected_keep_fraction,
                "layer_keep_fraction": self.layer_keep_fraction, "iterations": self.iterations}


def _bernoulli(p: Tensor, gens) -> Tensor:
    """0/1 samples of ``p``: one generator for the whole tensor, or one per run (leading dimension),
    each run's drawn straight into its slice of the result (no copy)."""
    if isinstance(gens, torch.Generator) or gens is None:
        return torch.bernoulli(p, generator=gens)
    out = torch.empty_like(p)
    for i, g in enumerate(gens):
        torch.bernoulli(p[i], generator=g, out=out[i])
    return out


def sample_masks(scores: Dict[str, Tensor], gens) -> Dict[str, Tensor]:
    """Straight-through Bernoulli masks: the value is a 0/1 sample, the gradient sigmoid'(score).

    ``gens``: one ``torch.Generator`` for the whole tensor, or a list with one generator per run
    (the leading dimension), so that each run of a stack draws exactly the samples it would draw alone.
    """
    out = {}
    for n, s in scores.items():
        p = torch.sigmoid(s)
        pd = p.detach()
        out[n] = _bernoulli(pd, gens) + p - pd
    return out


def masked_weights(weights: Dict[str, Tensor], masks: Dict[str, Tensor], dwr: Tensor) -> Dict[str, Tensor]:
    """``W * mask``, times ``N / sum(mask)`` per layer for the runs with DWR (``dwr``: (K,) bool)."""
    out = {}
    for n, w in weights.items():
        m = masks[n]
        eff = w * m
        if bool(dwr.any()):
            count = m[0].numel()
            ones = m.reshape(m.shape[0], -1).sum(1).clamp_min(1.0)
            scale = torch.where(dwr, count / ones, torch.ones_like(ones))
            eff = eff * scale.view(-1, *([1] * (eff.dim() - 1)))
        out[n] = eff
    return out


class _SampledMaskedWeight(torch.autograd.Function):
    """``W * b`` (times ``N / sum(b)`` for DWR runs) with the straight-through gradient to the scores.

    The fused equivalent of ``masked_weights(w, sample_masks(scores, gens), dwr)`` for one layer, in
    fewer passes over memory: forward and gradients equal the reference's (tested), including the
    DWR term that flows through the count of ones.
    """

    @staticmethod
    def forward(ctx, scores, p, w, b, dwr):
        """``p``: ``sigmoid(scores)``, computed once for the sample and the gradient."""
        k = scores.shape[0]
        eff = w * b
        scale = None
        if bool(dwr.any()):
            count = b[0].numel()
            ones = b.reshape(k, -1).sum(1).clamp_min(1.0)
            scale = torch.where(dwr, count / ones, torch.ones_like(ones))
            eff.mul_(scale.view(-1, *([1] * (eff.dim() - 1))))
            ctx.count = count
            ctx.save_for_backward(p, w, b, scale, ones, dwr)
        else:
            ctx.save_for_backward(p, w)
        ctx.dwr = scale is not None
        return eff

    @staticmethod
    def backward(ctx, grad):
        if ctx.dwr:
            p, w, b, scale, ones, dwr = ctx.saved_tensors
        else:
            p, w = ctx.saved_tensors
        g = grad * w  # dL/dmask without DWR
        if ctx.dwr:
            k = g.shape[0]
            shape = (-1,) + (1,) * (g.dim() - 1)
            # through the count: d(N / S)/d mask_j = -N / S^2 for every j
            through_count = (g * b).reshape(k, -1).sum(1) * (-ctx.count) / ones.pow(2)
            g.mul_(scale.view(shape)).add_(torch.where(dwr, through_count, torch.zeros_like(through_count)).view(shape))
        g.mul_(p).mul_(1.0 - p)
        return g, None, None, None, None


def sampled_masked_weights(weights: Dict[str, Tensor], scores: Dict[str, Tensor], gens, dwr: Tensor) -> Dict[str, Tensor]:
    """Fused ``masked_weights(weights, sample_masks(scores, gens), dwr)`` (same values and gradients)."""
    out = {}
    for n, s in scores.items():
        with torch.no_grad():
            p = torch.sigmoid(s)
            b = _bernoulli(p, gens)
        out[n] = _SampledMaskedWeight.apply(s, p, weights[n], b, dwr)
    return out


class MaskLearner(StepLoop):
    """Trains the scores of K learned supermasks in one stacked step (K = 1 for a single run).

    ``backend``: a name from :data:`lt_core.backends.MASK_BACKENDS` (default: the fastest that
    applies, :func:`lt_core.backends.choose_mask_backend`); the run's summary records it."""

    method = "zhou"

    def __init__(self, arch: Arch, data: Dataset, configs: List[LearnConfig], labels: List[str], *,
                 iterations: int, on_event=None, stop=None, checkpoint: Optional[Path] = None,
                 checkpoint_seconds: float = 120.0, progress: bool = False, backend: Optional[str] = None) -> None:
        first = configs[0]
        for c in configs[1:]:
            for name in ("lr", "momentum", "batch_size"):
                if getattr(c, name) != getattr(first, name):
                    raise ValueError(f"MaskLearner: stacked runs must share LearnConfig.{name}")
        self.arch, self.data, self.configs, self.labels = arch, data, configs, labels
        self.iterations, self.on_event, self.stop = iterations, on_event, stop
        self.checkpoint, self.checkpoint_seconds, self.progress = checkpoint, checkpoint_seconds, progress
        dev = data.train.x.device
        self.device = dev
        self.batch = BatchOrder(data.train, [c.seed for c in configs], first.batch_size, "LearnConfig.batch_size")
        self.spe = self.batch.spe
        self.eval_every = first.eval_every or self.spe
        weights = []
        for c in configs:
            init = init_weights(arch, c.seed)
            weights.append(init if c.weights == "init" else signed_constants(init, c.signed_constant_multiplier))
        self.w = {name: torch.stack([w[name] for w in weights]).to(dev) for name in arch.layer_names}
        self.b = {l.name: torch.zeros(len(configs), l.shape[0], device=dev) for l in arch.layers}
        self.scores = {name: torch.stack([torch.full(arch.layer(name).shape, float(c.score_init)) for c in configs])
                       .to(dev).requires_grad_() for name in arch.layer_names}
        self.dwr = torch.tensor([c.dwr for c in configs], device=dev)
        self.opt = torch.optim.SGD(list(self.scores.values()), lr=first.lr, momentum=first.momentum)
        self.gens = [torch.Generator(device=dev).manual_seed(derive_seed(c.seed, "mask-sample")) for c in configs]
        self.seeds = [c.seed for c in configs]
        self.evals: List[List[dict]] = [[] for _ in configs]
        self.start_iteration = 0
        self._correct = torch.zeros(len(configs), device=dev)
        self._seen = 0
        self.mask_backend = choose_mask_backend(arch, dev, self.method, backend)(self)

    desc = "learned mask"
    eval_at_start = False

    # -- what a mask backend asks of the method ------------------------------------------------
    def train_weights(self) -> Dict[str, Tensor]:
        """The masked weights of a training step (masks sampled from the runs' generators), with the
        straight-through gradient path to the scores."""
        return sampled_masked_weights(self.w, self.scores, self.gens, self.dwr)

    @property
    def train_biases(self) -> Optional[Dict[str, Tensor]]:
        """The biases of a training step's forward pass (``None``: left out)."""
        return self.b

    def sampled_weights(self, gens) -> Dict[str, Tensor]:
        """The weights every run is evaluated with, masks drawn from ``gens`` (one per run)."""
        return sampled_masked_weights(self.w, self.scores, gens, self.dwr)

    def learning_rate(self, it: int) -> Optional[float]:
        """The learning rate of step ``it`` (``None``: leave it as it is)."""
        return None

    def before_update(self, it: int) -> None:
        """Called after the backward pass, before the optimiser's step."""

    def expected_keep(self) -> Tuple[List[float], List[Dict[str, float]]]:
        total = self.arch.num_weights
        overall = torch.zeros(len(self.configs), dtype=torch.float64)
        layers = [dict() for _ in self.configs]
        with torch.no_grad():
            for n, s in self.scores.items():
                p = torch.sigmoid(s).reshape(s.shape[0], -1).sum(1, dtype=torch.float64).cpu()
                overall += p
                for i in range(len(self.configs)):
                    layers[i][n] = float(p[i]) / s[0].numel()
        return (overall / total).tolist(), layers

    @torch.no_grad()
    def test_accuracy(self, samples: int, tag) -> List[List[float]]:
        """Per run, the test accuracy of ``samples`` independent mask samples."""
        out = [[] for _ in self.configs]
        for j in range(samples):
            gens = [torch.Generator(device=self.device).manual_seed(derive_seed(s, "eval-sample", tag, j))
                    for s in self.seeds]
            eff = self.mask_backend.sampled_weights(gens)
            _, acc = evaluate(self.arch, eff, self.b, self.data.test)
            for i, a in enumerate(acc.tolist()):
                out[i].append(a)
        return out

    def evaluate_point(self, it: int) -> None:
        """Test accuracy of one mask sample, expected keep fraction, and the training accuracy
        averaged over the sampled masks of the steps since the last evaluation."""
        train_acc = (self._correct / max(self._seen, 1)).tolist()
        self._correct.zero_()
        self._seen = 0
        keep, _ = self.expected_keep()
        accs = self.test_accuracy(1, it)
        for i, label in enumerate(self.labels):
            record = {"iteration": it, "epoch": it / self.spe, "train_acc": train_acc[i], "test_acc": accs[i][0],
                      "expected_keep_fraction": keep[i]}
            self.evals[i].append(record)
            emit(self.on_event, LearnEval(run=label, iterations=self.iterations, **record))

    def _save_checkpoint(self, it: int) -> None:
        if self.checkpoint is None:
            return
        write_checkpoint(self.checkpoint, {"iteration": it, "labels": self.labels,
                                           "scores": {n: s.detach().cpu() for n, s in self.scores.items()},
                                           "opt": self.opt.state_dict(), "gens": [g.get_state().cpu() for g in self.gens],
                                           "evals": self.evals})

    def _load_checkpoint(self) -> None:
        state = self.read_checkpoint()
        if state is None or state.get("labels") != self.labels:
            return
        with torch.no_grad():
            for n in self.scores:
                self.scores[n].copy_(state["scores"][n])
        self.opt.load_state_dict(state["opt"])
        for g, st in zip(self.gens, state["gens"]):
            g.set_state(st)
        self.evals = state["evals"]
        self.start_iteration = state["iteration"]
        emit(self.on_event, Stage(stage="resumed", run=self.labels[0],
                                  details={"runs": list(self.labels), "iteration": self.start_iteration}))

    def step(self, it: int) -> None:
        """One step of every run: its learning rate, its batch, the mask backend's step."""
        lr = self.learning_rate(it)
        if lr is not None:
            for group in self.opt.param_groups:
                group["lr"] = lr
        x, y = self.batch(it)
        self._correct += self.mask_backend.step(it, x, y)
        self._seen += 1

    def run(self) -> List[LearnResult]:
        k = len(self.configs)
        self.loop()
        keep, layers = self.expected_keep()
        samples = self.test_accuracy(self.configs[0].eval_samples, "final")
        return [LearnResult(Path("."), sum(samples[i]) / len(samples[i]), samples[i], keep[i], layers[i],
                            self.iterations, self.evals[i]) for i in range(k)]
