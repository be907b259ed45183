"""Seed derivation: every random choice of a run draws from a seed derived from the run's seed.

``derive_seed(seed, "init", "fc1")`` is a stable 63-bit integer, the same on every machine and
Python version (SHA-256 of the key parts), so that adding a new random choice never shifts the
streams of the existing ones.
"""

from __future__ import annotations

import hashlib

import torch


def derive_seed(seed: int, *keys) -> int:
    text = "/".join([str(int(seed))] + [str(k) for k in keys])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") & (2**63 - 1)


def generator(seed: int, *keys) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded from ``derive_seed(seed, *keys)``."""
    return torch.Generator().manual_seed(derive_seed(seed, *keys))
