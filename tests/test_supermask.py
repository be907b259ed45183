import json

import pytest
import torch

from lt_core import ConfigError, LearnConfig, SupermaskConfig, TrainConfig, get_arch, init_weights, \
    learn_supermask, one_shot_supermasks
from lt_core.supermask import MaskLearner, best_points, masked_weights, one_shot_masks, parse_powers, \
    sample_masks, signed_constants

from .conftest import needs_mnist
from .test_cli import QUICK, cli, last_json


def test_straight_through_gradient_is_dmask_times_sigmoid_prime():
    torch.manual_seed(0)
    scores = {"l": torch.tensor([[0.3, -1.2, 2.0], [0.0, 0.7, -0.4]], requires_grad=True)}
    w = torch.tensor([[0.5, -0.25, 1.0], [2.0, -1.5, 0.75]])
    x = torch.tensor([1.0, -2.0, 0.5])
    gen = torch.Generator().manual_seed(3)
    mask = sample_masks(scores, gen)["l"]
    p = torch.sigmoid(scores["l"]).detach()
    # the forward value is the 0/1 sample itself
    assert set(mask.detach().unique().tolist()) <= {0.0, 1.0}
    expected_sample = torch.bernoulli(p, generator=torch.Generator().manual_seed(3))
    assert torch.equal(mask.detach(), expected_sample)
    loss = ((w * mask) @ x).pow(2).sum()
    loss.backward()
    # by hand: y = (w * m) @ x, L = sum(y^2), dL/dm_ij = 2 y_i w_ij x_j; dL/ds = dL/dm * p (1 - p)
    y = (w * expected_sample) @ x
    dl_dm = 2 * y[:, None] * w * x[None, :]
    torch.testing.assert_close(scores["l"].grad, dl_dm * p * (1 - p))


def test_dwr_factor_is_count_over_ones_per_layer():
    w = {"a": torch.ones(2, 2, 5), "b": torch.ones(2, 4)}
    m = {"a": torch.tensor([[[1.0, 0, 0, 1, 0], [0, 0, 0, 0, 1]], [[1.0] * 5, [1.0] * 5]]),
         "b": torch.tensor([[1.0, 0, 0, 0], [1.0, 1, 0, 0]])}
    out = masked_weights(w, m, torch.tensor([True, False]))
    # run 0 (DWR): layer a keeps 3 of 10 -> x 10/3, layer b keeps 1 of 4 -> x 4
    torch.testing.assert_close(out["a"][0], m["a"][0] * 10 / 3)
    torch.testing.assert_close(out["b"][0], m["b"][0] * 4)
    # run 1 (no DWR): unscaled
    assert torch.equal(out["a"][1], m["a"][1]) and torch.equal(out["b"][1], m["b"][1])


def test_signed_constants_magnitude_and_signs():
    init = init_weights(get_arch("fc"), 0)
    sc = signed_constants(init)
    for name, w in init.items():
        std = float(w.std(unbiased=False))
        assert torch.allclose(sc[name].abs(), torch.full_like(w, std))
        assert torch.equal(sc[name].sign(), w.sign())


def test_one_shot_mask_at_power_zero_keeps_everything_and_follows_bases():
    arch = get_arch("fc")
    w_i = init_weights(arch, 0)
    w_f = init_weights(arch, 1)
    full = one_shot_masks(arch, "large_final_same_sign", w_i, w_f, 0, seed=0)
    assert all(bool(m.all()) for m in full.values())
    p3 = one_shot_masks(arch, "large_final", w_i, w_f, 3, seed=0)
    # keep 0.8^3 of hidden layers and 0.9^3 of the output layer (prune floor((1 - keep) * n))
    assert int(p3["fc1"].sum()) == 235200 - int((1 - 0.8 ** 3) * 235200)
    assert int(p3["fc3"].sum()) == 1000 - int((1 - 0.9 ** 3) * 1000)


def test_parse_powers_and_best_points():
    assert parse_powers("0-3,10") == (0, 1, 2, 3, 10)
    assert parse_powers("5") == (5,)
    with pytest.raises(ConfigError, match="powers"):
        parse_powers("a-b")
    rows = [{"criterion": "c", "weights": "init", "power": p, "weights_remaining": 1 - p / 10, "test_acc": a}
            for p, a in [(0, 0.1), (1, 0.7), (2, 0.7), (3, 0.5)]]
    assert best_points(rows) == [{"criterion": "c", "weights": "init", "power": 1, "weights_remaining": 0.9,
                                  "test_acc": 0.7}]


def test_configs_validate():
    with pytest.raises(ConfigError, match="SupermaskConfig.criteria: unknown value 'x'"):
        SupermaskConfig(criteria=("x",))
    with pytest.raises(ConfigError, match="SupermaskConfig.weights: unknown value 'final'; allowed values: init, "
                                          "signed_constant"):
        SupermaskConfig(weights=("final",))
    with pytest.raises(ConfigError, match=r"LearnConfig.momentum: 1.0 is out of range \[0, 1\)"):
        LearnConfig(momentum=1.0)
    with pytest.raises(ConfigError, match="LearnConfig.weights"):
        LearnConfig(weights="random")
    assert repr(LearnConfig(dwr=True, epochs=5)) == "LearnConfig(dwr=True, epochs=5)"


@needs_mnist
def test_evaluation_averages_distinct_samples():
    from lt_core import load_dataset

    ds = load_dataset("mnist", device="cpu")
    learner = MaskLearner(get_arch("fc"), ds, [LearnConfig()], ["r"], iterations=1)
    samples = learner.test_accuracy(10, "final")[0]
    assert len(samples) == 10 and len(set(samples)) > 5  # independent masks give different accuracies
    assert samples == learner.test_accuracy(10, "final")[0]  # and are seeded


@needs_mnist
def test_one_shot_sweep_rows_reuse_and_events(tmp_path):
    train = TrainConfig(iterations=60, eval_every=30, eval_train=False, device="cpu")
    sweep = SupermaskConfig(criteria=("large_final_same_sign", "random"), powers=(0, 5))
    events = []
    res = one_shot_supermasks(train=train, sweep=sweep, out=tmp_path, on_event=events.append)
    assert len(res.rows) == 2 * 2 * 2
    points = [e for e in events if e["event"] == "supermask_point"]
    assert len(points) == 8 and not any(p["reused"] for p in points)
    p0 = [r for r in res.rows if r["power"] == 0]
    assert all(r["weights_remaining"] == 1.0 for r in p0)
    # the same network with every weight kept: both criteria give the same accuracy at p = 0
    by = {(r["criterion"], r["weights"]): r["test_acc"] for r in p0}
    assert by[("random", "init")] == by[("large_final_same_sign", "init")]
    p5 = [r for r in res.rows if r["power"] == 5]
    assert all(r["weights_remaining"] == pytest.approx(0.33, abs=0.01) for r in p5)
    best = {(b["criterion"], b["weights"]): b for b in res.best}
    assert best[("large_final_same_sign", "signed_constant")]["test_acc"] > 0.5  # far above chance (0.1)
    events.clear()
    again = one_shot_supermasks(train=train, sweep=sweep, out=tmp_path, on_event=events.append)
    assert again.rows == res.rows
    assert all(e["reused"] for e in events if e["event"] == "supermask_point")


@needs_mnist
def test_learned_masks_stack_matches_single_runs():
    """Each run of a stack draws its own mask samples: it follows the run trained alone.

    Matmuls of different widths round differently (~1e-11), and with lr 100 a tiny score difference
    eventually flips a Bernoulli sample, so trajectories are compared over a few steps.
    """
    from lt_core import load_dataset

    ds = load_dataset("mnist", device="cpu")
    arch = get_arch("fc")
    cfgs = [LearnConfig(device="cpu", eval_every=100),
            LearnConfig(device="cpu", eval_every=100, weights="signed_constant", dwr=True, seed=1)]

    def train(configs):
        learner = MaskLearner(arch, ds, configs, [str(i) for i in range(len(configs))], iterations=3)
        learner.run()
        return learner

    stacked = train(cfgs)
    for i, cfg in enumerate(cfgs):
        alone = train([cfg])
        for name in alone.scores:
            torch.testing.assert_close(stacked.scores[name][i], alone.scores[name][0], rtol=0, atol=1e-5)
            assert not torch.equal(alone.scores[name][0], torch.zeros_like(alone.scores[name][0]))


@needs_mnist
def test_learned_mask_is_stored_and_reused(tmp_path):
    cfg = LearnConfig(iterations=40, eval_every=20, device="cpu", weights="signed_constant", dwr=True)
    events = []
    first = learn_supermask(learn=cfg, out=tmp_path, on_event=events.append)
    assert [e["iteration"] for e in events if e["event"] == "learn_eval"] == [20, 40]
    assert len(first.test_acc_samples) == 10 and 0 < first.expected_keep_fraction < 1
    assert (first.run_dir / "scores.pt").is_file() and (first.run_dir / "metrics.csv").is_file()
    events.clear()
    again = learn_supermask(learn=cfg, out=tmp_path, on_event=events.append)
    assert again.reused and again.test_acc_samples == first.test_acc_samples
    assert not any(e["event"] == "learn_eval" for e in events)


@needs_mnist
def test_supermask_cli_end_to_end(tmp_path):
    out = last_json(cli("supermask", "--arch", "fc", "--dataset", "mnist", "--criteria",
                        "large_final_same_sign,large_final", "--weights", "init,signed_constant", "--powers", "0,6",
                        "--out", str(tmp_path), "--json", *QUICK))
    assert len(out["rows"]) == 8 and len(out["best"]) == 4
    assert set(out["rows"][0]) == {"criterion", "weights", "power", "weights_remaining", "train_acc", "test_acc"}
    assert {b["weights"] for b in out["best"]} == {"init", "signed_constant"}


@needs_mnist
def test_learn_mask_cli_end_to_end(tmp_path):
    out = last_json(cli("learn-mask", "--arch", "fc", "--dataset", "mnist", "--weights", "signed_constant", "--dwr",
                        "--iterations", "30", "--eval-every", "15", "--device", "cpu", "--out", str(tmp_path),
                        "--json", "--quiet"))
    assert set(out) >= {"test_acc_mean", "test_acc_samples", "expected_keep_fraction", "run_dir"}
    assert len(out["test_acc_samples"]) == 10
    assert out["test_acc_mean"] == pytest.approx(sum(out["test_acc_samples"]) / 10)
    assert out["test_acc_mean"] > 0.3
    summary = json.load(open(f"{out['run_dir']}/summary.json"))
    assert summary["test_acc_samples"] == out["test_acc_samples"]


def test_fused_masked_weights_match_the_reference():
    from lt_core.supermask import sampled_masked_weights

    torch.manual_seed(0)
    k = 3
    w = {"a": torch.randn(k, 4, 5), "b": torch.randn(k, 6)}
    raw = {n: torch.randn(v.shape) for n, v in w.items()}
    dwr = torch.tensor([True, False, True])
    upstream = {n: torch.randn(v.shape) for n, v in w.items()}

    def run(fused):
        scores = {n: r.clone().requires_grad_() for n, r in raw.items()}
        gens = [torch.Generator().manual_seed(i) for i in range(k)]
        eff = sampled_masked_weights(w, scores, gens, dwr) if fused else \
            masked_weights(w, sample_masks(scores, gens), dwr)
        sum((eff[n] * upstream[n]).sum() for n in eff).backward()
        return {n: e.detach() for n, e in eff.items()}, {n: s.grad for n, s in scores.items()}

    eff_f, grad_f = run(True)
    eff_r, grad_r = run(False)
    for n in w:
        torch.testing.assert_close(eff_f[n], eff_r[n])
        torch.testing.assert_close(grad_f[n], grad_r[n])


def test_stacked_sampling_draws_each_runs_own_masks():
    """Each run of a stack draws, from its own generator, exactly the mask it draws alone (the
    stacked sampler writes each run's draws into its slice of one tensor): with unit weights and
    no DWR the masked weights are the 0/1 draws themselves."""
    from lt_core.supermask import sampled_masked_weights

    scores = {"fc": torch.randn(3, 50, 40, generator=torch.Generator().manual_seed(1))}
    ones = {"fc": torch.ones(3, 50, 40)}
    gens = [torch.Generator().manual_seed(10 + i) for i in range(3)]
    with torch.no_grad():
        stacked = sampled_masked_weights(ones, scores, gens, torch.tensor([False] * 3))["fc"]
    for i in range(3):
        alone = torch.bernoulli(torch.sigmoid(scores["fc"][i]), generator=torch.Generator().manual_seed(10 + i))
        assert torch.equal(stacked[i], alone)
    assert 0.3 < float(stacked.mean()) < 0.7  # sigmoid of standard normal scores: about half kept
