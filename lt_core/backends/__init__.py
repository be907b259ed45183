"""Training backends: how a stack of runs computes its steps and evaluations.

The training loop (:mod:`lt_core.train`) drives one :class:`Backend` per stack of runs, chosen
once by :func:`choose_backend`:

* ``reference`` (:mod:`.reference`): :func:`lt_core.models.forward`, autograd and Adam over the
  stacked tensors -- the specification; it trains the convolutional networks;
* ``dense_fc`` (:mod:`.dense_fc`): fully connected networks with hand-written gradients on inputs
  sorted by how often they are nonzero -- on CUDA, or on a CPU without the C kernels;
* ``cpu_kernel`` (:mod:`.cpu_kernel`): fully connected networks trained and evaluated in C on the
  CPU (:mod:`.native` builds and loads the library; ``LT_KERNELS=0`` switches it off).

Learned masks take their steps through a :class:`~.masks.MaskBackend`, chosen by
:func:`choose_mask_backend` by the same rules: ``cpu_kernel`` (:mod:`.learned_fc`, Zhou et al.'s
Bernoulli masks of fully connected networks in C) where it applies, else ``reference`` (the
learner's autograd step, :mod:`.masks`). Both choices, and the rule of when the C kernels apply
(:meth:`CpuKernelBackend.unavailable`), are made here only.

:mod:`.optim` holds Adam for stacks (with the pruning mask folded into the update). All of it is
float32 arithmetic: the backends differ only in the rounding of sums (and denormal Adam moments,
flushed to zero as TF did), which is why a run records the backend that trained it.
"""

from __future__ import annotations

import threading
from typing import Dict, Optional, Tuple, Type

import torch

from ..data import Split
from ..models import Arch
from . import native
from .base import Backend, RunSpec
from .cpu_kernel import CpuKernelBackend
from .dense_fc import DenseFcBackend
from .learned_fc import CpuKernelMaskBackend
from .masks import MaskBackend, ReferenceMaskBackend
from .reference import ReferenceBackend

Tensor = torch.Tensor
BACKENDS: Dict[str, Type[Backend]] = {cls.name: cls for cls in (ReferenceBackend, DenseFcBackend, CpuKernelBackend)}
MASK_BACKENDS: Dict[str, Type[MaskBackend]] = {cls.name: cls for cls in (ReferenceMaskBackend, CpuKernelMaskBackend)}


def choose_backend(arch: Arch, device: torch.device, name: Optional[str] = None) -> Type[Backend]:
    """The backend class that trains ``arch`` on ``device``.

    By default the fastest that applies: ``cpu_kernel`` for a fully connected network on the CPU
    when the C library builds (and ``LT_KERNELS`` is not 0), else ``dense_fc`` for a fully
    connected network, else ``reference``. ``name`` asks for one by name (an error says why it
    cannot train this network here).
    """
    device = torch.device(device)
    if name is None:
        for cls in (CpuKernelBackend, DenseFcBackend, ReferenceBackend):
            if cls.unavailable(arch, device) is None:
                return cls
    if name not in BACKENDS:
        raise ValueError(f"backend: unknown value {name!r}; allowed values: {', '.join(BACKENDS)}")
    cls = BACKENDS[name]
    why = cls.unavailable(arch, device)
    if why is not None:
        raise ValueError(f"backend: {name!r} cannot train {arch.name} on {device}: {why}")
    return cls


def choose_mask_backend(arch: Arch, device: torch.device, method: str,
                        name: Optional[str] = None) -> Type[MaskBackend]:
    """The mask backend that steps ``method``'s learned masks of ``arch`` on ``device``: by default
    ``cpu_kernel`` where it applies (Zhou's method, a fully connected network, the CPU, the C kernels
    built), else ``reference``; ``name`` asks for one by name (an error says why it cannot here)."""
    device = torch.device(device)
    if name is None:
        for cls in (CpuKernelMaskBackend, ReferenceMaskBackend):
            if cls.unavailable(arch, device, method) is None:
                return cls
    if name not in MASK_BACKENDS:
        raise ValueError(f"mask backend: unknown value {name!r}; allowed values: {', '.join(MASK_BACKENDS)}")
    cls = MASK_BACKENDS[name]
    why = cls.unavailable(arch, device, method)
    if why is not None:
        raise ValueError(f"mask backend: {name!r} cannot step {method} masks of {arch.name} on {device}: {why}")
    return cls


def evaluate(arch: Arch, weights: Dict[str, Tensor], biases: Dict[str, Tensor], split: Split,
             batch: Optional[int] = None) -> Tuple[Tensor, Tensor]:
    """Mean cross-entropy and accuracy (float64 tensors (K,)) of K stacked networks (canonical
    layout) on ``split``, computed by the backend :func:`choose_backend` picks for its device;
    ``batch``: images per batch (default :func:`lt_core.devices.eval_batch_size`)."""
    return choose_backend(arch, split.x.device).evaluate_weights(arch, weights, biases, split, batch=batch)


def warm_up(background: bool = True) -> Optional[threading.Thread]:
    """Compile and load the C kernels now (once per process), so that the first run does not wait for
    the compiler, a pause without a step boundary to stop at. In a daemon thread,
    which is returned (``background=False``: here, returning None). Nothing happens where the kernels
    are switched off (``LT_KERNELS=0``) or cannot be built: runs then take the other backends."""
    if not background:
        native.library()
        return None
    thread = threading.Thread(target=native.library, name="lt-kernels", daemon=True)
    thread.start()
    return thread


__all__ = ["BACKENDS", "Backend", "CpuKernelBackend", "CpuKernelMaskBackend", "DenseFcBackend", "MASK_BACKENDS",
           "MaskBackend", "ReferenceBackend", "ReferenceMaskBackend", "RunSpec", "choose_backend",
           "choose_mask_backend", "evaluate", "warm_up"]
