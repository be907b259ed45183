"""Epoch order and batch gathering (lt_core.batches): per-epoch permutations from the data seed,
the last partial batch dropped, batches gathered a block at a time."""

import pytest
import torch

from lt_core import load_dataset
from lt_core.batches import BatchOrder, epoch_order, steps_per_epoch
from lt_core.data import Split

from .conftest import needs_mnist


@needs_mnist
def test_epoch_order_drops_the_last_partial_batch():
    ds = load_dataset("mnist", device="cpu")
    batches = BatchOrder(ds.train, [5], batch_size=60)
    assert batches.spe == steps_per_epoch(55000, 60) == 916  # floor(55000 / 60): 40 images left out of each epoch
    x, y = batches(915)
    order = epoch_order(5, 0, 55000)
    assert torch.equal(y, ds.train.y[order[915 * 60: 916 * 60]])
    assert torch.equal(x, ds.train.x[order[915 * 60: 916 * 60]])  # gathered from the 8-bit pixels: the same floats
    _, y_next = batches(916)  # iteration 916 starts epoch 1, with a new order
    assert torch.equal(y_next, ds.train.y[epoch_order(5, 1, 55000)[:60]])


def test_runs_with_their_own_seeds_get_their_own_batches():
    x = torch.arange(20, dtype=torch.float32).view(20, 1, 1, 1)
    batches = BatchOrder(Split(x=x, y=torch.arange(20)), [3, 3, 8], batch_size=4)
    assert not batches.shared and batches.epoch_indices(0).shape == (3, 20)  # one order per run
    xb, yb = batches(6)  # epoch 1, batch 1
    assert xb.shape == (3, 4, 1, 1, 1)
    for row, seed in enumerate((3, 3, 8)):
        assert yb[row].tolist() == xb[row].flatten().tolist() == epoch_order(seed, 1, 20)[4:8].tolist()
    shared = BatchOrder(Split(x=x, y=torch.arange(20)), [3, 3], batch_size=4)
    assert shared.shared and torch.equal(shared(6)[1], yb[0])


def test_a_batch_larger_than_the_split_names_the_field():
    with pytest.raises(ValueError, match="TrainConfig.batch_size: 30 is larger than the 20 training images"):
        BatchOrder(Split(x=torch.zeros(20, 1, 1, 1), y=torch.zeros(20, dtype=torch.int64)), [0], 30,
                   "TrainConfig.batch_size")


def test_a_span_of_batches_is_the_batches_of_one_gathered_block():
    n = 50
    x = torch.arange(n * 3, dtype=torch.float32).view(n, 1, 1, 3)
    for seeds in ([4], [4, 9]):
        order = BatchOrder(Split(x=x, y=torch.arange(n)), seeds, batch_size=4)
        order.block = 5  # batches per gathered block; an epoch has 12 batches: blocks 0-4, 5-9, 10-11
        assert [order.left_in_block(it) for it in (0, 3, 4, 5, 9, 10, 11, 12, 16)] == [5, 2, 1, 5, 1, 2, 1, 5, 1]
        for it, steps in ((0, 5), (7, 3), (10, 2), (13, 4)):
            xs, ys = order.span(it, steps)
            lead = () if len(seeds) == 1 else (2,)
            assert xs.shape == (*lead, steps, 4, 1, 1, 3) and ys.shape == (*lead, steps, 4)
            for j in range(steps):
                xb, yb = order(it + j)
                assert torch.equal(xs[..., j, :, :, :, :], xb) and torch.equal(ys[..., j, :], yb)
        with pytest.raises(ValueError, match="BatchOrder.span: 3 batches from 8; 1 to 2"):
            order.span(8, 3)
