"""Where a stack trains and how large it may be: the device, its free memory, and the memory one
run of a stack needs (which sets how many runs train at once)."""

from __future__ import annotations

from typing import Optional

import torch

from .archs import Arch


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when present, else CPU. On CUDA, TF32 is switched off for matmuls and
    convolutions: every run computes in full float32, as on the CPU."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("TrainConfig.device: 'cuda' was requested but no CUDA device is available; "
                         "allowed values here: auto, cpu")
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    return torch.device(device)


def available_memory(device: torch.device) -> int:
    """Bytes free for new tensors on ``device`` (CUDA: free device memory; CPU: MemAvailable)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 << 30


def eval_batch_size(arch: Arch, device: Optional[torch.device] = None) -> int:
    """Images per evaluation batch: large on a GPU; on a CPU, small enough that a stack's
    activations stay in cache (1,000 for FC: a third faster than 10,000 for nine runs)."""
    if not arch.fully_connected:
        return 1000
    return 10000 if device is not None and torch.device(device).type == "cuda" else 1000


def activation_elements(arch: Arch) -> int:
    """Activations one sample leaves for the backward pass (layer outputs, pooled maps)."""
    c, h, w = arch.input_shape
    total = c * h * w
    for layer in arch.layers:
        if layer.kind == "conv":
            total += 2 * layer.shape[0] * h * w  # conv output and its ReLU
            if layer.pool_after:
                h, w = h // 2, w // 2
                total += layer.shape[0] * h * w
        else:
            total += 2 * layer.shape[0]
    return total


def run_memory_bytes(arch: Arch, batch_size: int) -> int:
    """Memory one run of a stack needs: parameter-sized tensors (weights, mask, frozen values,
    gradient, Adam's two moments, effective weights and their gradient) plus activations of a
    training batch and of an evaluation batch."""
    params = arch.num_weights + sum(layer.shape[0] for layer in arch.layers)
    acts = activation_elements(arch) * (2 * batch_size + eval_batch_size(arch, "cuda"))
    return 4 * (8 * params + acts)


def auto_stack_size(arch: Arch, device: torch.device, n_runs: int, batch_size: int = 60,
                    memory_fraction: float = 0.5) -> int:
    """How many runs to train at once: as many as fit in ``memory_fraction`` of the free memory."""
    fit = int(available_memory(torch.device(device)) * memory_fraction // run_memory_bytes(arch, batch_size))
    return max(1, min(n_runs, fit))
