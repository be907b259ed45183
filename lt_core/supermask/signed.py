"""Signed supermasks (Koster et al. 2022, "Signing the Supermask: Keep, Hide, Invert"): each weight's
mask is +1 (keep), 0 (hide) or -1 (invert its sign), from a real score per weight and a threshold;
the scores are trained by SGD with a straight-through gradient.

Behaviour, and where it comes from (paper: Koster, Grothe, Rettinger, ICLR 2022; code: the authors'
public repository kosnil/signed_supermasks, read for behaviour only; "the configs" below are its
``configs/<net>/variable_mask/*_weight_sc_eluScaled_mask_eluScaled_var.yaml``, the ELUS setting
the paper reports):

* **Mask** (paper, code's ``variable`` masking): ``m = +1`` where ``score > threshold``, ``-1``
  where ``score < -threshold``, ``0`` otherwise; no top-k, so the fraction kept is learned.
* **Gradient** (code): straight-through identity, ``dL/dscore = dL/dmask = dL/dW_eff * W``, for
  every score, hidden or not.
* **Threshold** 0.01 (code: the masked layers' default, which the FCN path uses where the
  config's ``tanh_th`` is not passed on; the configs list 0.4, which with the ELUS score
  initialisation below would hide every weight of the 784-300-100-10 FCN at the start) --
  UNVERIFIED which value produced the paper's numbers.
* **Weights, "ELUS"** (paper, code ``signed_constant`` with the Kaiming std and a factor sqrt(3)):
  signed constants ``+-sqrt(2 / fan_in) * sqrt(3) = +-sqrt(6 / fan_in)``; the signs are those of the
  network's own initial draw (one seed, one sign pattern across families). ``"he"``: ``+-sqrt(2 /
  fan_in)``; ``"init"``: the network's initial weights.
* **Scores' initialisation, "ELUS"** (paper, code: uniform with the Kaiming-uniform bound times
  sqrt(3)): uniform in ``+-sqrt(6 / fan_in) * sqrt(3)``; ``"he"``: ``+-sqrt(6 / fan_in)``;
  ``"xavier"``: ``+-sqrt(6 / (fan_in + fan_out))``.
* **Optimiser** (the configs): SGD with momentum 0.9, Nesterov, learning rate 0.05, decoupled weight
  decay 5e-4 (SGDW: ``score -= wd * score`` every step, not scaled by the learning rate), 100 epochs,
  the configs' ``exponential_decay`` schedule.
* **Schedule** (code: the trainer at the configs' revision): the learning rate *and* the weight decay
  are multiplied by ``lr_decay = 0.96`` every ``decay_every = 3900`` steps, in steps (staircase):
  ``lr_t = 0.05 * 0.96**(t // 3900)``, ``wd_t = 5e-4 * 0.96**(t // 3900)``. 3900 is the code's
  fixed 390 steps per epoch (CIFAR-10's 50,000 images in batches of 128) times its 10 epochs per
  decay, used for MNIST too: on MNIST FC (429 steps per epoch here) a decay every 9.1 epochs, 11
  decays in 100 epochs (the last learning rate 0.05 * 0.96**11 = 0.032).
* **Batch** 128 (code: the networks are built for batches of 128).
* **Activation** (paper, code): ELU (``alpha = 1``) after every hidden layer, the nonlinearity the
  "ELUS" initialisation is derived for. ``activation="relu"`` trains the project's own ReLU networks
  (:mod:`lt_core.models`) instead. Biases: zero and unused (code: ``use_bias=False``).
* **Reported epoch**: the code keeps every epoch's test accuracy; which one the paper's table reports
  is UNVERIFIED. Ours report the last epoch's mask (every run's ``metrics.csv`` has each epoch's).
* **Input** (code): each image standardised to mean 0 and standard deviation 1 over its own pixels
  (``inputs="standardized"``, :func:`lt_core.data.standardize_images`); ``"pixels"``: the
  project's pixels in [0, 1], as every other family sees them. The split is the project's (55,000
  training images, 5,000 held out, the same for every family); the code trains on all 60,000, in one
  fixed order every epoch (ours: reshuffled each epoch, as for every family).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Dict, Optional

import torch
import torch.nn.functional as F

from ..archs import ACTIVATIONS
from ..config import check_choice, check_range, no_hash, option
from ..data import standardized
from ..errors import ConfigError
from .methods import MaskMethodConfig, ScoreMaskLearner, register_mask_method, straight_through, uniform_scores

Tensor = torch.Tensor

SIGNED_WEIGHTS = ("elus", "he", "init")
SIGNED_SCORE_INITS = ("elus", "he", "xavier")
SIGNED_INPUTS = ("standardized", "pixels")


@dataclass(frozen=True, repr=False)
class SignedMaskConfig(MaskMethodConfig):
    """Signed supermasks' settings (module docstring: each default and its source). ``iterations``,
    when set, replaces ``epochs`` as the run's length.

    Revision 2 (today's): the authors' schedule (the rate and the weight decay decayed every 3900
    steps), an ELU network and standardised images. Revision 1 decayed the rate alone, by 0.96 every
    epoch, and trained the ReLU network on pixels in [0, 1]; its runs are listed as outdated."""

    revision: ClassVar[int] = 2

    threshold: float = option(0.01, "|score| above it keeps (+) or inverts (-) a weight, else hides it")
    weights: str = "elus"
    score_init: str = "elus"
    seed: int = 0
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = option(True, "Nesterov momentum")
    weight_decay: float = 5e-4
    lr_decay: float = option(0.96, "factor on the learning rate and weight decay every decay_every steps")
    decay_every: int = option(3900, "steps between two learning-rate and weight-decay decays")
    activation: str = option("elu", "the hidden layers' nonlinearity")
    inputs: str = option("standardized", "each image standardised (mean 0, std 1) or the pixels in [0, 1]")
    batch_size: int = 128
    epochs: int = 100
    iterations: Optional[int] = None
    eval_every: Optional[int] = None  # iterations; None = once per epoch
    device: str = no_hash("auto")

    def validate(self) -> None:
        check_range("SignedMaskConfig", "threshold", self.threshold, 0.0, 100.0)
        check_choice("SignedMaskConfig", "weights", self.weights, SIGNED_WEIGHTS)
        check_choice("SignedMaskConfig", "score_init", self.score_init, SIGNED_SCORE_INITS)
        if self.nesterov and self.momentum == 0:
            raise ConfigError(f"SignedMaskConfig.nesterov: {self.nesterov!r} needs momentum > 0 "
                              f"(got momentum={self.momentum!r}); set nesterov false or momentum in (0, 1)")
        check_range("SignedMaskConfig", "lr_decay", self.lr_decay, 0, 1, lo_open=True)
        check_range("SignedMaskConfig", "decay_every", self.decay_every, 1, 10**9, integer=True)
        check_choice("SignedMaskConfig", "activation", self.activation, ACTIVATIONS)
        check_choice("SignedMaskConfig", "inputs", self.inputs, SIGNED_INPUTS)
        self.check_training()


def ternary(scores: Tensor, threshold: float) -> Tensor:
    """+1 above ``threshold``, -1 below ``-threshold``, 0 between (no gradient): the sign of the
    scores with those within ``+-threshold`` zeroed (two float passes; comparisons and casts of the
    same result take ten times as long on the CPU)."""
    return torch.sign(F.hardshrink(scores, float(threshold)))


def signed_mask(scores: Tensor, threshold: float) -> Tensor:
    """The signed supermask of ``scores``: keep (+1), hide (0) or invert (-1), straight-through."""
    return straight_through(ternary, scores, float(threshold))


class SignedMaskLearner(ScoreMaskLearner):
    """K stacked signed-supermask runs (they may differ in seed, weights, score init and threshold)."""

    shared = ("lr", "momentum", "nesterov", "weight_decay", "lr_decay", "decay_every", "activation", "inputs",
              "batch_size")

    def __init__(self, arch, data, configs, labels, **kwargs) -> None:
        """The stack's network is ``arch`` with the configs' activation, its data ``data`` with their
        inputs (every config of a stack shares both: checked by the base class)."""
        first = configs[0]
        if first.inputs == "standardized":
            data = standardized(data)
        super().__init__(arch.with_activation(first.activation), data, configs, labels, **kwargs)

    def frozen_weights(self, config: SignedMaskConfig, init: Dict[str, Tensor]) -> Dict[str, Tensor]:
        if config.weights == "init":
            return init
        factor = math.sqrt(3.0) if config.weights == "elus" else 1.0
        out = {}
        for layer in self.arch.layers:
            c = math.sqrt(2.0 / layer.fans[0]) * factor
            w = init[layer.name]
            out[layer.name] = torch.where(w >= 0, torch.full_like(w, c), torch.full_like(w, -c))
        return out

    def initial_scores(self, config: SignedMaskConfig, layer, gen) -> Tensor:
        fan_in, fan_out = layer.fans
        if config.score_init == "xavier":
            bound = math.sqrt(6.0 / (fan_in + fan_out))
        else:
            bound = math.sqrt(6.0 / fan_in) * (math.sqrt(3.0) if config.score_init == "elus" else 1.0)
        return uniform_scores(layer.shape, bound, gen)

    def mask(self, name: str, scores: Tensor) -> Tensor:
        thresholds = [c.threshold for c in self.configs]
        if len(set(thresholds)) == 1:
            return signed_mask(scores, thresholds[0])
        return torch.stack([signed_mask(scores[i], t) for i, t in enumerate(thresholds)])

    def make_optimizer(self, params, config: SignedMaskConfig) -> torch.optim.Optimizer:
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov)

    def decay(self, it: int) -> float:
        """The factor on the learning rate and the weight decay at step ``it``."""
        c = self.configs[0]
        return c.lr_decay ** (it // c.decay_every)

    def learning_rate(self, it: int) -> Optional[float]:
        return self.configs[0].lr * self.decay(it)

    @torch.no_grad()
    def before_update(self, it: int) -> None:
        wd = self.configs[0].weight_decay * self.decay(it)
        if wd:
            for s in self.scores.values():
                s.mul_(1.0 - wd)

    def extra(self, i: int) -> Dict[str, float]:
        """The fractions of weights inverted (-1) and kept as they are (+1)."""
        inverted = kept = 0
        for m in self.masks().values():
            inverted += int((m[i] < 0).sum())
            kept += int((m[i] > 0).sum())
        n = self.arch.num_weights
        return {"inverted_fraction": inverted / n, "kept_sign_fraction": kept / n}


register_mask_method("signed", SignedMaskConfig, SignedMaskLearner,
                     "Koster et al. 2022: signed supermasks, each weight kept, hidden or inverted")
