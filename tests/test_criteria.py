"""Each criterion on a hand-made 6-weight layer, pruning 3 (fraction 0.5), expected masks by hand.

    index       0     1     2     3     4     5
    w_i       0.5  -0.2   0.1  -0.9   0.3  -0.6
    w_f       0.3   0.4 -0.05  -0.6   0.8   0.1
"""

import pytest
import torch

from lt_core import compute_masks
from lt_core.criteria import CRITERIA, PAPER_CRITERIA, ranks_among

W_I = torch.tensor([0.5, -0.2, 0.1, -0.9, 0.3, -0.6])
W_F = torch.tensor([0.3, 0.4, -0.05, -0.6, 0.8, 0.1])

EXPECTED = {
    # |w_f| = .3 .4 .05 .6 .8 .1 -> drop 2, 5, 0
    "large_final": [0, 1, 0, 1, 1, 0],
    # drop the largest |w_f|: 4, 3, 1
    "small_final": [1, 0, 1, 0, 0, 1],
    # |w_i| = .5 .2 .1 .9 .3 .6 -> drop 2, 1, 4
    "large_init": [1, 0, 0, 1, 0, 1],
    # drop the largest |w_i|: 3, 5, 0
    "small_init": [0, 1, 1, 0, 1, 0],
    # |w_f| - |w_i| = -.2 .2 -.05 -.3 .5 -.5 -> drop 5, 3, 0
    "magnitude_increase": [0, 1, 1, 0, 1, 0],
    # |w_f - w_i| = .2 .6 .15 .3 .5 .7 -> drop 2, 0, 3
    "movement": [0, 1, 0, 0, 1, 1],
    # ranks by |w_i| = 3 1 0 5 2 4, by |w_f| = 2 3 0 4 5 1; one cut j = 2 drops {2,1} u {2,5}
    "large_init_large_final": [1, 0, 0, 1, 1, 0],
    # ranks by -|w_i| = 2 4 5 0 3 1, by -|w_f| = 3 2 5 1 0 4; j = 2 drops {3,5} u {4,3}
    "small_init_small_final": [1, 1, 1, 0, 0, 0],
    # signs agree at 0, 3, 4 (scores .3 .6 .8); flipped weights score 0 and go first
    "large_final_same_sign": [1, 0, 0, 1, 1, 0],
    # signs differ at 1, 2, 5 (scores .4 .05 .1); agreeing weights score 0 and go first
    "large_final_diff_sign": [0, 1, 1, 0, 0, 1],
}


def masks_for(criterion, fraction=0.5, prev=None, seed=0, w_i=W_I, w_f=W_F):
    prev = torch.ones_like(w_i) if prev is None else prev
    return compute_masks(criterion, {"l": w_i}, {"l": w_f}, {"l": prev}, {"l": fraction}, seed)["l"]


@pytest.mark.parametrize("criterion", sorted(EXPECTED))
def test_criterion_hand_computed(criterion):
    for seed in range(5):  # no ties here: the tie-break seed cannot matter
        assert masks_for(criterion, seed=seed).tolist() == EXPECTED[criterion]


def test_every_criterion_is_covered():
    assert set(EXPECTED) | {"random"} == set(CRITERIA)
    assert len(PAPER_CRITERIA) == 9 and "random" in PAPER_CRITERIA


def test_random_is_seeded_and_counts_exactly():
    w = torch.randn(1000)
    a, b, c = masks_for("random", 0.3, seed=1, w_i=w, w_f=w), masks_for("random", 0.3, seed=1, w_i=w, w_f=w), \
        masks_for("random", 0.3, seed=2, w_i=w, w_f=w)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert int(a.sum()) == 1000 - 300


def test_sign_criterion_ties_are_broken_randomly_but_seeded():
    # prune 2 of 6: three flipped weights (1, 2, 5) tie at score 0; two of them go, chosen by the seed
    outcomes = set()
    for seed in range(40):
        mask = masks_for("large_final_same_sign", fraction=1 / 3, seed=seed)
        assert mask[[0, 3, 4]].tolist() == [1, 1, 1]
        assert int(mask[[1, 2, 5]].sum()) == 1
        assert torch.equal(mask, masks_for("large_final_same_sign", fraction=1 / 3, seed=seed))
        outcomes.add(tuple(mask.tolist()))
    assert len(outcomes) == 3  # each flipped weight survives for some seed


def test_previous_mask_is_respected():
    prev = torch.tensor([1.0, 1, 1, 0, 1, 1])  # weight 3 already pruned: 5 remain, floor(0.5 * 5) = 2 go
    mask = masks_for("large_final", prev=prev)
    assert mask.tolist() == [1, 1, 0, 0, 1, 0]  # |w_f| of the kept: .3 .4 .05 . .8 .1 -> drop 2, 5


def test_two_sided_rule_with_previous_mask():
    prev = torch.tensor([1.0, 1, 0, 1, 1, 1])  # 2 pruned earlier; floor(0.4 * 5) = 2 more go
    # kept 0 1 3 4 5: ranks by |w_i| (.5 .2 .9 .3 .6) = 2 0 4 1 3; by |w_f| (.3 .4 .6 .8 .1) = 1 2 3 4 0
    # one cut j = 1 drops {1} u {5}
    assert masks_for("large_init_large_final", fraction=0.4, prev=prev).tolist() == [1, 0, 0, 1, 1, 0]


def test_ranks_among_breaks_ties_with_the_generator():
    values = torch.tensor([1.0, 1.0, 0.0, 2.0])
    kept = torch.tensor([True, True, True, False])
    seen = set()
    for s in range(20):
        r = ranks_among(values, kept, torch.Generator().manual_seed(s))
        assert r[2] == 0 and r[3] == -1 and sorted(r[:2].tolist()) == [1.0, 2.0]
        seen.add(tuple(r.tolist()))
    assert len(seen) == 2
