"""Which images each training step sees (protocol section 2): a per-epoch permutation from the
run's data seed, batches taken in order, the last partial batch of every epoch dropped.

Runs sharing a data seed share their order, so a stack of such runs trains on one batch per step.
The whole split lives on the device; a batch is an index into it, gathered a block at a time.
"""

from __future__ import annotations

from typing import Dict, List

import torch

from .data import Split
from .seeding import generator

Tensor = torch.Tensor


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Whole batches in an epoch of ``n`` images (the last partial batch is dropped)."""
    return n // batch_size


def epoch_order(seed: int, epoch: int, n: int) -> Tensor:
    """The training-set order of ``epoch`` for data seed ``seed``: runs sharing a seed share it."""
    return torch.randperm(n, generator=generator(seed, "data", epoch))


class BatchOrder:
    """The training batches of K stacked runs, drawn by indexing the device-resident split.

    Epoch ``e`` of a run with data seed ``s`` visits the images in ``epoch_order(s, e, N)``, in
    batches of ``batch_size``, the last partial batch dropped. Calling it with an iteration gives
    ``(x, y)``: ``(B, ...)`` / ``(B,)`` when all runs share one seed (``shared``), else
    ``(K, B, ...)`` / ``(K, B)``. Images are gathered ``block_rows`` at a time (whole batches; one
    ``index_select``; a batch is a view into the block, valid until the next block is gathered into
    the same memory): gathering many rows at once overlaps their memory reads, which 60 scattered
    rows per step cannot. When the split keeps its 8-bit ``pixels``, the block is gathered from
    those and divided by 255 -- the same floats, a quarter of the memory traffic.
    """

    def __init__(self, split: Split, seeds: List[int], batch_size: int, field_name: str = "batch_size",
                 block_rows: int = 1024) -> None:
        self.split, self.batch_size = split, batch_size
        self.spe = steps_per_epoch(len(split), batch_size)
        if self.spe == 0:
            raise ValueError(f"{field_name}: {batch_size} is larger than the {len(split)} training images")
        self.shared = len(set(seeds)) == 1
        self.seeds = list(seeds[:1]) if self.shared else list(seeds)
        self._orders: Dict[int, Tensor] = {}
        self.block = max(1, block_rows // batch_size)  # batches per gathered block
        self._block_key, self._block = None, None
        self._buffers: Dict[str, Tensor] = {}

    def epoch_indices(self, epoch: int) -> Tensor:
        """Image indices of ``epoch`` in visiting order: ``(K, N)``, one row per run, or ``(1, N)``
        when all runs share their seed; on the split's device (the latest epoch's is kept)."""
        if epoch not in self._orders:
            n = len(self.split)
            orders = torch.stack([epoch_order(s, epoch, n) for s in self.seeds])
            self._orders = {epoch: orders.to(self.split.x.device)}
        return self._orders[epoch]

    def left_in_block(self, it: int) -> int:
        """How many batches from ``it`` on lie in the gathered block that holds batch ``it``."""
        pos = it % self.spe
        return min(pos - pos % self.block + self.block, self.spe) - pos

    def _gathered(self, it: int):
        """The gathered block that holds batch ``it`` (gathering it if need be): its images
        ``(K', rows, ...)``, labels ``(K', rows)`` and where batch ``it`` starts in it."""
        epoch, pos = divmod(it, self.spe)
        first, bs = pos - pos % self.block, self.batch_size
        if self._block_key != (epoch, first):
            idx = self.epoch_indices(epoch)[:, first * bs:min(first + self.block, self.spe) * bs]
            x, y = self.split.x, self.split.y
            flat = idx.reshape(-1)  # index_select on 2-D rows: the fastest gather
            if self.split.pixels is not None:
                pixels = self.split.pixels.reshape(len(x), -1)
                gathered = torch.index_select(pixels, 0, flat, out=self._buffer("pixels", pixels, len(flat)))
                rows = self._buffer("rows", x, len(flat)).copy_(gathered).div_(255.0)
            else:
                flat_x = x.reshape(len(x), -1)
                rows = torch.index_select(flat_x, 0, flat, out=self._buffer("rows", flat_x, len(flat)))
            xb = rows.view(*idx.shape, *x.shape[1:])
            self._block_key, self._block = (epoch, first), (xb, y.index_select(0, flat).view(idx.shape))
        return (*self._block, (pos - first) * bs)

    def _buffer(self, name: str, like: Tensor, rows: int) -> Tensor:
        """A ``(rows, features)`` buffer of ``like``'s dtype and device, reused from block to block:
        a new block's tensor would be fresh memory every time, whose pages the system clears
        first (that cost more than the gather itself)."""
        features = like[0].numel()
        buf = self._buffers.get(name)
        if buf is None or buf.shape[0] < rows or buf.shape[1] != features:
            buf = self._buffers[name] = torch.empty(rows, features, dtype=like.dtype, device=like.device)
        return buf[:rows]

    def span(self, it: int, n: int):
        """Batches ``it`` to ``it + n - 1`` (all in one block: ``n <= left_in_block(it)``) as views
        ``(n, B, ...)`` / ``(n, B)``, or ``(K, n, B, ...)`` / ``(K, n, B)`` when the runs' orders
        differ."""
        if not 1 <= n <= self.left_in_block(it):
            raise ValueError(f"BatchOrder.span: {n} batches from {it}; "
                             f"1 to {self.left_in_block(it)} lie in its block")
        xb, yb, lo = self._gathered(it)
        bs = self.batch_size
        x = xb[:, lo:lo + n * bs].view(xb.shape[0], n, bs, *xb.shape[2:])
        y = yb[:, lo:lo + n * bs].view(yb.shape[0], n, bs)
        return (x[0], y[0]) if self.shared else (x, y)

    def __call__(self, it: int):
        xb, yb, lo = self._gathered(it)
        hi = lo + self.batch_size
        if self.shared:
            return xb[0, lo:hi], yb[0, lo:hi]
        return xb[:, lo:hi], yb[:, lo:hi]
