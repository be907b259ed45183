"""The networks as plain, stackable functions: initialisation, the forward pass, a torch.nn twin.

A network is an :class:`~lt_core.archs.Arch` record: an ordered list of :class:`~lt_core.archs.Layer`
specs (VGG-style: convolutions with their padding and optional 2x2 max-pool, then a dense head).
Its parameters are plain dicts keyed by layer name (``{"fc1": tensor, ...}``): ``weights``,
``biases`` and ``masks``.
Every weight tensor carries a mask; biases are never masked.

The forward pass works on *stacks* of K independent runs: every parameter has a leading run
dimension (``weights["fc1"]`` is ``(K, 300, 784)``), and K runs go through one vectorised step
(batched matmuls; grouped convolutions with ``groups=K``). A single run is simply K = 1.

Initialisation is TF 1.10's ``glorot_normal`` (protocol section 1, VERIFIED): ``VarianceScaling``
with ``distribution="normal"`` draws a normal of std ``s = sigma / 0.87962566103423978`` truncated at
+-2s, where sigma = sqrt(2 / (fan_in + fan_out)) and the constant is the std of a standard normal
truncated at +-2 (``scipy.stats.truncnorm.std(-2, 2)``); so the realised std is exactly sigma and the
largest |w| is just under 2 sigma / 0.8796 (read in the TF 1.10.0 wheel's
``tensorflow/python/ops/init_ops.py``, ``VarianceScaling.__call__``). Fans of a conv layer are
k*k*C_in and k*k*C_out. Biases start at zero. :data:`INIT_SCHEME` names this rule in every stored
run's identity, so that runs made under an earlier rule are never reused as if they were made
under this one.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Dict, Optional

import torch
import torch.nn.functional as F

from .archs import Arch, Layer, get_arch
from .seeding import derive_seed

Tensor = torch.Tensor


# -- initialisation -----------------------------------------------------------------------------

#: The std of a standard normal truncated at +-2: TF 1.10 divides its std by this before truncating.
TRUNCATED_NORMAL_STD = 0.87962566103423978

#: The initialisation rule, as recorded in every stored run's configuration and identity. Runs stored
#: before it was recorded used ``"glorot_normal_uncorrected"`` (std sigma before truncation, realised
#: std 0.88 sigma): see :data:`lt_core.store.OLD_INIT`.
INIT_SCHEME = "glorot_normal_tf1.10"


def glorot_sigma(layer: Layer) -> float:
    """Glorot's std, sqrt(2 / (fan_in + fan_out)): the realised std of the layer's initial weights."""
    fan_in, fan_out = layer.fans
    return math.sqrt(2.0 / (fan_in + fan_out))


def init_weights(arch: Arch, seed: int) -> Dict[str, Tensor]:
    """TF 1.10 ``glorot_normal`` weights for one run (see the module docstring), each layer from its
    own derived seed: a normal of std ``glorot_sigma / 0.8796`` truncated at +-2 of those stds."""
    out = {}
    for layer in arch.layers:
        gen = torch.Generator().manual_seed(derive_seed(seed, "init", layer.name))
        s = glorot_sigma(layer) / TRUNCATED_NORMAL_STD
        w = torch.empty(layer.shape)
        torch.nn.init.trunc_normal_(w, mean=0.0, std=s, a=-2 * s, b=2 * s, generator=gen)
        out[layer.name] = w
    return out


def zero_biases(arch: Arch) -> Dict[str, Tensor]:
    return {layer.name: torch.zeros(layer.shape[0]) for layer in arch.layers}


def full_masks(arch: Arch) -> Dict[str, Tensor]:
    return {layer.name: torch.ones(layer.shape) for layer in arch.layers}


# -- forward ------------------------------------------------------------------------------------

#: each name of :data:`lt_core.archs.ACTIVATIONS` as a function of a tensor
ACTIVATION_FUNCTIONS = {"relu": F.relu, "elu": F.elu}

def forward(arch: Arch, weights: Dict[str, Tensor], biases: Optional[Dict[str, Tensor]], x: Tensor) -> Tensor:
    """Logits of K stacked runs.

    ``weights[name]``: ``(K, *layer.shape)``; ``biases[name]``: ``(K, out)`` (``biases=None``: none,
    the same logits as zero biases in fewer operations); ``x``: either
    ``(K, B, C, H, W)`` (each run its own batch) or ``(B, C, H, W)`` (one batch shared by all runs).
    Every layer but the output one is followed by ``arch.activation``. Returns ``(K, B, 10)``.
    """
    act = ACTIVATION_FUNCTIONS[arch.activation]
    k = next(iter(weights.values())).shape[0]
    shared = x.dim() == 4
    b = x.shape[0] if shared else x.shape[1]
    h: Optional[Tensor] = None  # dense activations (K, B, F)
    conv: Optional[Tensor] = None  # conv activations (B, K*C, H, W)
    for layer in arch.layers:
        w = weights[layer.name]
        bias = None if biases is None else biases[layer.name]
        if layer.kind == "conv":
            if conv is None:
                conv = x.repeat(1, k, 1, 1) if shared else x.transpose(0, 1).reshape(b, -1, *x.shape[-2:])
            conv = F.conv2d(conv, w.reshape(-1, *w.shape[2:]), None if bias is None else bias.reshape(-1),
                            padding=layer.padding, groups=k)
            conv = act(conv)
            if layer.pool_after:
                conv = F.max_pool2d(conv, 2)
            continue
        if h is None:
            if conv is not None:
                h = conv.reshape(b, k, -1).transpose(0, 1)
            elif shared:
                # One batch for every run: a single wide matmul against all K first layers.
                flat = x.reshape(b, -1)
                h = (flat @ w.reshape(-1, w.shape[-1]).t()).reshape(b, k, -1).transpose(0, 1)
                if bias is not None:
                    h = h + bias.unsqueeze(1)
                h = act(h) if layer.kind != "output" else h
                continue
            else:
                h = x.reshape(k, b, -1)
        wt = w.transpose(1, 2)
        h = torch.bmm(h, wt) if bias is None else torch.baddbmm(bias.unsqueeze(1), h, wt)
        if layer.kind != "output":
            h = act(h)
    return h


# -- a standard torch.nn model of each architecture (used by export) ----------------------------

def torch_module(arch_name: str) -> torch.nn.Sequential:
    """A plain ``torch.nn.Sequential`` with the same layer names as lt_core's parameter dicts.

    Exported tickets load into this model (after ``torch.nn.utils.prune.identity`` on each layer's
    ``weight``); the README shows the same model written with torch alone.
    """
    arch = get_arch(arch_name)
    mods: "OrderedDict[str, torch.nn.Module]" = OrderedDict()
    flattened = False
    for layer in arch.layers:
        if layer.kind == "conv":
            mods[layer.name] = torch.nn.Conv2d(layer.shape[1], layer.shape[0], layer.shape[2], padding=layer.padding)
            mods[f"relu_{layer.name}"] = torch.nn.ReLU()
            if layer.pool_after:
                mods[f"pool_{layer.name}"] = torch.nn.MaxPool2d(2)
            continue
        if not flattened:
            mods["flatten"] = torch.nn.Flatten()
            flattened = True
        mods[layer.name] = torch.nn.Linear(layer.shape[1], layer.shape[0])
        if layer.kind != "output":
            mods[f"relu_{layer.name}"] = torch.nn.ReLU()
    return torch.nn.Sequential(mods)
