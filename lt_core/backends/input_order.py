"""A fully connected first layer's inputs, reordered by how often they are nonzero in training
(used by the ``dense_fc`` and ``cpu_kernel`` backends)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List

import torch

from ..data import Dataset, Split

Tensor = torch.Tensor


@dataclass
class InputOrder:
    """A fully connected first layer's inputs, reordered by how often they are nonzero in training.

    An input that is 0 in every image of a batch adds exact zeros to the first layer's outputs and
    gets an exactly zero weight gradient, so the layer's two matmuls need only the inputs that are
    nonzero somewhere in the batch. Sorted most-often-nonzero first, a batch's nonzero inputs all lie
    in a prefix of the order (MNIST, batch 60: about 610 of 784 inputs, where the span between the
    first and last nonzero pixel in the images' own order is about 700), and a prefix of a weight
    matrix is a view: the matmuls shrink without copying anything. The sums are the same sums
    without their zero terms; a backend using the order permutes the first layer's weight columns
    in and back out, and nothing outside it sees the order.

    ``order``: input indices, most often nonzero first (ties in index order); ``inverse``: its
    inverse; ``data``: every split with its inputs in that order (shapes unchanged);
    ``last[split][i]``: image i's nonzero inputs all lie in the first ``last[split][i]`` positions;
    ``live``: how many inputs are nonzero in some training image (those past it never are).
    """

    order: Tensor
    inverse: Tensor
    data: Dataset
    last: Dict[str, Tensor]
    live: int

    def widths(self, split: str, batch: int) -> List[int]:
        """For each consecutive batch of ``split`` (evaluation), how many leading inputs it needs."""
        key = (split, batch)
        if key not in self._widths:
            last = self.last[split]
            self._widths[key] = [max(1, int(last[i:i + batch].max())) for i in range(0, len(last), batch)]
        return self._widths[key]

    def __post_init__(self) -> None:
        self._widths: Dict[tuple, List[int]] = {}

    @classmethod
    def of(cls, data: Dataset) -> "InputOrder":
        """The order of ``data`` (computed once per dataset object and kept)."""
        cached = _INPUT_ORDERS.get(id(data))
        if cached is not None and cached[0] is data:
            return cached[1]
        nonzero = data.train.x.reshape(len(data.train), -1) != 0
        order = torch.argsort(nonzero.sum(0), descending=True, stable=True)
        inverse = torch.argsort(order)

        splits, last = {}, {}
        for name, split in data.splits.items():
            x = split.x.reshape(len(split), -1).index_select(1, order)
            pixels = None if split.pixels is None else \
                split.pixels.reshape(len(split), -1).index_select(1, order).view(split.x.shape)
            splits[name] = Split(x=x.view(split.x.shape), y=split.y, pixels=pixels)
            nz = x != 0
            last[name] = torch.where(nz.any(1), nz.shape[1] - nz.flip(1).to(torch.uint8).argmax(1), 0)
        result = cls(order=order, inverse=inverse, last=last, live=max(1, int(last["train"].max())),
                     data=Dataset(name=data.name, **splits))
        _INPUT_ORDERS.clear()  # one dataset at a time, as lt_core.data keeps one resident
        _INPUT_ORDERS[id(data)] = (data, result)
        return result


_INPUT_ORDERS: Dict[int, tuple] = {}
