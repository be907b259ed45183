import pytest
import torch

from lt_core.policies import MASK0_POLICIES, MASK1_POLICIES, apply_mask0, apply_mask1

W = torch.tensor([0.5, -0.2, 0.1, -0.9, 0.3, -0.6, 0.7, -0.4])
MASK = torch.tensor([1, 0, 1, 1, 0, 1, 1, 0], dtype=torch.bool)
ALPHA = 0.25


def g(seed=0):
    return torch.Generator().manual_seed(seed)


def test_rewind_is_identity():
    assert torch.equal(apply_mask1("rewind", W, MASK, ALPHA, g()), W)


def test_reinit_shuffles_the_whole_layer():
    out = apply_mask1("reinit", W, MASK, ALPHA, g())
    assert torch.equal(out.sort().values, W.sort().values) and not torch.equal(out, W)
    assert torch.equal(out, apply_mask1("reinit", W, MASK, ALPHA, g()))  # seeded


def test_reshuffle_permutes_only_kept_values():
    out = apply_mask1("reshuffle", W, MASK, ALPHA, g(3))
    assert torch.equal(out[~MASK], W[~MASK])
    assert torch.equal(out[MASK].sort().values, W[MASK].sort().values)
    assert not torch.equal(out, W)


def test_constant_has_alpha_magnitude_and_the_same_sign_counts():
    out = apply_mask1("constant", W, MASK, ALPHA, g())
    assert torch.equal(out.abs(), torch.full_like(W, ALPHA))
    assert int((out > 0).sum()) == int((W > 0).sum())
    assert any(not torch.equal(apply_mask1("constant", W, MASK, ALPHA, g(s)).sign(), W.sign()) for s in range(5))


def test_signed_variants_keep_every_sign():
    for name in ("signed_reinit", "signed_reshuffle", "signed_constant"):
        out = apply_mask1(name, W, MASK, ALPHA, g(1))
        assert torch.equal(out.sign(), W.sign()), name
    sr = apply_mask1("signed_reinit", W, MASK, ALPHA, g(1))
    assert torch.equal(sr.abs().sort().values, W.abs().sort().values)
    srs = apply_mask1("signed_reshuffle", W, MASK, ALPHA, g(1))
    assert torch.equal(srs[~MASK], W[~MASK])
    assert torch.equal(srs[MASK].abs().sort().values, W[MASK].abs().sort().values)
    assert torch.equal(apply_mask1("signed_constant", W, MASK, ALPHA, g()), ALPHA * W.sign())


# -- mask-0 ----------------------------------------------------------------------------------------
#            0     1     2     3     4     5     6     7
W_I = torch.tensor([0.5, -0.2, 0.1, -0.9, 0.3, -0.6, 0.7, -0.4])
W_F = torch.tensor([0.9, -0.1, 0.0, -0.2, 0.6, -0.8, 0.2, -0.3])
# toward zero (|w_i| > |w_f|): 1, 2, 3, 6, 7
PREV = torch.tensor([1, 1, 1, 1, 1, 1, 1, 0], dtype=torch.bool)  # 7 pruned earlier
NEW = torch.tensor([1, 0, 1, 1, 0, 1, 0, 0], dtype=torch.bool)   # 1, 4, 6 pruned now
PREV_FROZEN = torch.tensor([0, 0, 0, 0, 0, 0, 0, -0.4])


def m0(name, prev_frozen=PREV_FROZEN, seed=0):
    return apply_mask0(name, W_I, W_F, W_I, NEW, PREV, prev_frozen, g(seed))


def test_zero_freezes_nothing():
    start, frozen = m0("zero")
    assert torch.equal(start, W_I) and torch.equal(frozen, torch.zeros(8))


def test_freeze_init_freezes_newly_pruned_at_init_and_keeps_older():
    start, frozen = m0("freeze_init")
    assert frozen.tolist() == pytest.approx([0, -0.2, 0, 0, 0.3, 0, 0.7, -0.4])
    assert torch.equal(start, W_I)


def test_variant1_zeroes_pruned_weights_that_moved_toward_zero():
    start, frozen = m0("freeze_init_zero_mask")
    # newly pruned 1 (toward -> 0), 4 (away -> init .3), 6 (toward -> 0); 7 keeps its frozen value
    assert frozen.tolist() == pytest.approx([0, 0, 0, 0, 0.3, 0, 0, -0.4])
    assert torch.equal(start, W_I)


def test_variant2_also_restarts_kept_weights_that_moved_toward_zero_from_zero():
    start, frozen = m0("freeze_init_zero_all")
    assert frozen.tolist() == pytest.approx([0, 0, 0, 0, 0.3, 0, 0, -0.4])
    # kept 0 (away: .5), 2 (toward: 0), 3 (toward: 0), 5 (away: -.6)
    assert start.tolist() == pytest.approx([0.5, -0.2, 0, 0, 0.3, -0.6, 0.7, -0.4])


def test_reshuffle_control_zeroes_as_many_as_variant1():
    counts = set()
    for seed in range(10):
        _, frozen = m0("freeze_init_zero_reshuffle", seed=seed)
        newly = PREV & ~NEW
        zeroed = newly & (frozen == 0)
        assert int(zeroed.sum()) == 2  # variant 1 zeroes 2 of the 3 newly pruned
        assert frozen[7] == -0.4
        counts.add(tuple(zeroed.tolist()))
    assert len(counts) > 1


def test_reverse_control_zeroes_pruned_weights_that_moved_away():
    _, frozen = m0("freeze_init_zero_rev")
    assert frozen.tolist() == pytest.approx([0, -0.2, 0, 0, 0, 0, 0.7, -0.4])


def test_unknown_policy_names():
    with pytest.raises(ValueError, match="mask1: unknown value 'x'; allowed values: rewind, reinit"):
        apply_mask1("x", W, MASK, ALPHA, g())
    with pytest.raises(ValueError, match="mask0: unknown value 'x'; allowed values: zero, freeze_init"):
        m0("x")
    assert len(MASK1_POLICIES) == 7 and len(MASK0_POLICIES) == 6
