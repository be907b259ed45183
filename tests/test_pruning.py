import math

import pytest
import torch

from lt_core import compute_masks, get_arch, layer_prune_fractions
from lt_core.pruning import keep_fractions_after, prune_count, remaining


def test_prune_fractions_per_architecture():
    assert layer_prune_fractions(get_arch("fc")) == {"fc1": 0.2, "fc2": 0.2, "fc3": 0.1}
    c2 = layer_prune_fractions(get_arch("conv2"))
    assert c2 == {"conv1": 0.1, "conv2": 0.1, "fc1": 0.2, "fc2": 0.2, "fc3": 0.1}
    c6 = layer_prune_fractions(get_arch("conv6"))
    assert [c6[f"conv{i}"] for i in range(1, 7)] == [0.15] * 6 and c6["fc3"] == 0.1
    assert layer_prune_fractions(get_arch("conv4"), conv=0.3, output=0.05)["conv3"] == 0.3
    assert layer_prune_fractions(get_arch("conv4"), conv=0.3, output=0.05)["fc3"] == 0.05


@pytest.mark.parametrize("criterion", ["large_final", "large_init_large_final", "movement", "random"])
def test_counts_after_k_rounds_follow_the_floor_formula(criterion):
    arch = get_arch("fc")
    fractions = layer_prune_fractions(arch)
    gen = torch.Generator().manual_seed(0)
    masks = {l.name: torch.ones(l.shape) for l in arch.layers}
    expected = {l.name: l.numel for l in arch.layers}
    w_i = {l.name: torch.randn(l.shape, generator=gen) for l in arch.layers}
    for k in range(1, 5):
        w_f = {n: torch.randn(w.shape, generator=gen) for n, w in w_i.items()}
        new = compute_masks(criterion, w_i, w_f, masks, fractions, seed=k)
        for name in masks:
            expected[name] -= math.floor(fractions[name] * expected[name])
            assert int(new[name].sum()) == expected[name], (name, k)
            assert bool((new[name] <= masks[name]).all()), "masks must only shrink"
        masks = new
    # round 4 by hand for fc1: 235200 -> 188160 -> 150528 -> 120423 (floor .2*150528=30105.6) -> 96339
    assert expected["fc1"] == 96339
    assert keep_fractions_after(arch, fractions, 4)["fc1"] == 96339 / 235200


def test_prune_count_is_floor():
    assert prune_count(10, 0.25) == 2
    assert prune_count(235200, 0.2) == 47040
    assert prune_count(3, 0.1) == 0


def test_same_seed_same_masks_and_dtype_kept():
    w = {"a": torch.randn(50, 20)}
    prev = {"a": torch.ones(50, 20, dtype=torch.bool)}
    m1 = compute_masks("random", w, w, prev, {"a": 0.5}, seed=7)
    m2 = compute_masks("random", w, w, prev, {"a": 0.5}, seed=7)
    assert torch.equal(m1["a"], m2["a"]) and m1["a"].dtype == torch.bool


def test_paper_schedule_remaining_fc():
    arch = get_arch("fc")
    fr = keep_fractions_after(arch, layer_prune_fractions(arch), 24)
    overall = sum(fr[l.name] * l.numel for l in arch.layers) / arch.num_weights
    assert overall == pytest.approx(0.0050, abs=0.0002)  # protocol: 0.50% at k = 24
    masks = {"a": torch.tensor([1.0, 0, 1, 1]), "b": torch.tensor([0.0, 0])}
    assert remaining(masks) == {"a": 0.75, "b": 0.0, "overall": 0.5}


def test_bad_inputs():
    w = {"a": torch.randn(4)}
    with pytest.raises(ValueError, match="unknown value 'biggest'; allowed values: large_final"):
        compute_masks("biggest", w, w, {"a": torch.ones(4)}, {"a": 0.5}, 0)
    with pytest.raises(ValueError, match=r"prune_fractions\['a'\] = 1.5 is out of range"):
        compute_masks("large_final", w, w, {"a": torch.ones(4)}, {"a": 1.5}, 0)
    with pytest.raises(ValueError, match="w_final lacks layer"):
        compute_masks("large_final", w, {}, {"a": torch.ones(4)}, {"a": 0.5}, 0)
