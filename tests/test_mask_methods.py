"""Mask-learning methods (lt_core.supermask.methods): the registry, edge-popup and signed supermasks
against hand-computed cases, store identity, a user's method through API and CLI, short runs."""

import hashlib
import json
import math
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import lt_core
from lt_core import ConfigError, DataConfig, EdgePopupConfig, LearnConfig, ModelConfig, SignedMaskConfig, \
    get_arch, init_weights, learn_supermask, learn_supermasks
from lt_core.store import config_hash
from lt_core.data import standardize_images
from lt_core.models import INIT_SCHEME, forward
from lt_core.dashboard.stored import list_runs as dashboard_runs
from lt_core.dashboard.stored import load_stored_series
from lt_core.store import StoreError, list_runs, open_run, run_key
from lt_core.supermask import MASK_METHODS, MaskMethodConfig, ScoreMaskLearner, edge_popup_mask, \
    register_mask_method, signed_mask, top_k_mask
from lt_core.supermask.edge_popup import EdgePopupLearner
from lt_core.supermask.methods import kept_count, method_config
from lt_core.supermask.signed import SignedMaskLearner

from .conftest import needs_mnist
from .test_cli import cli, last_json
from .test_data import cifar_fixture  # noqa: F401  (a fixture)

PLUGIN = Path(__file__).parent / "plugins" / "mask_method_plugin.py"


# -- the registry ---------------------------------------------------------------------------------

def test_three_families_are_registered_with_zhou_first():
    assert MASK_METHODS.names()[:3] == ("zhou", "edge_popup", "signed")
    assert MASK_METHODS["zhou"].config is LearnConfig
    assert lt_core.register_mask_method is register_mask_method


def test_registering_a_name_twice_or_a_plain_config_is_one_clear_error():
    with pytest.raises(ConfigError, match="already registered"):
        register_mask_method("edge_popup", EdgePopupConfig, EdgePopupLearner)
    with pytest.raises(ConfigError, match="must subclass lt_core.supermask.MaskMethodConfig"):
        register_mask_method("plain", lt_core.TrainConfig, EdgePopupLearner)
    with pytest.raises(ConfigError, match="already the config of method 'edge_popup'"):
        register_mask_method("again", EdgePopupConfig, EdgePopupLearner)
    assert "plain" not in MASK_METHODS and "again" not in MASK_METHODS


def test_configs_validate_in_one_line_naming_field_value_and_range():
    with pytest.raises(ConfigError, match=r"EdgePopupConfig.keep_fraction: 0.0 is out of range \(0.0, 1.0\]"):
        EdgePopupConfig(keep_fraction=0.0)
    with pytest.raises(ConfigError, match=r"EdgePopupConfig.weights: unknown value 'elus'; allowed values: "
                                          r"signed_constant, init"):
        EdgePopupConfig(weights="elus")
    with pytest.raises(ConfigError, match=r"SignedMaskConfig.threshold: -0.1 is out of range \[0.0, 100.0\]"):
        SignedMaskConfig(threshold=-0.1)
    with pytest.raises(ConfigError, match="SignedMaskConfig.score_init: unknown value 'kaiming'"):
        SignedMaskConfig(score_init="kaiming")
    with pytest.raises(ConfigError, match="dwr: not a setting of mask method 'edge_popup'"):
        method_config("edge_popup", dwr=True)


# -- edge-popup: hand-computed ----------------------------------------------------------------------

def test_kept_count_follows_the_reference_formula():
    assert kept_count(10, 0.3) == 3  # 0.7 * 10 rounds to 7.000000000000001, not down to 6
    assert kept_count(10, 1.0) == 10
    assert kept_count(7, 0.5) == 4  # 7 - floor(3.5)
    assert kept_count(3, 0.01) == 1


def test_top_k_keeps_the_largest_per_run_and_breaks_ties_by_index():
    values = torch.tensor([[0.9, 0.1, 0.5, 0.7, 0.3, 0.2],
                           [0.4, 0.4, 0.4, 0.1, 0.4, 0.0]])
    out = top_k_mask(values, [2, 3])
    assert out.tolist() == [[1, 0, 0, 1, 0, 0],
                            [1, 1, 1, 0, 0, 0]]  # four tied at 0.4: the three lowest indices
    assert top_k_mask(values, [6, 0]).tolist() == [[1] * 6, [0] * 6]


def test_edge_popup_ranks_by_magnitude_and_passes_the_gradient_to_every_score():
    s = torch.tensor([[[0.2, -0.9], [0.05, -0.3]]], requires_grad=True)  # K=1, a 2x2 layer
    w = torch.tensor([[[1.0, -2.0], [0.5, 3.0]]])
    x = torch.tensor([1.0, 2.0])
    m = edge_popup_mask(s, [0.5])  # keep 2 of 4: |-0.9| and |-0.3|
    assert m.detach().tolist() == [[[0.0, 1.0], [0.0, 1.0]]]
    y = (w * m)[0] @ x  # y = [-4, 6]
    loss = y.pow(2).sum()
    loss.backward()
    # by hand: dL/dm_ij = 2 y_i w_ij x_j, then through |s|: times sign(s_ij); unkept scores get it too
    y_hand = torch.tensor([-4.0, 6.0])
    dl_dm = 2 * y_hand[:, None] * w[0] * x[None, :]
    expected = dl_dm * torch.sign(s.detach()[0])
    torch.testing.assert_close(s.grad[0], expected)
    assert bool((s.grad != 0).all())


def _top_k_by_sort(values, counts):
    """The top-k masks of a stable sort by (value descending, flat index ascending)."""
    out = torch.zeros_like(values)
    for i, n in enumerate(counts):
        flat = values[i].reshape(-1)
        order = sorted(range(flat.numel()), key=lambda j: (-float(flat[j]), j))
        out[i].view(-1)[order[:n]] = 1.0
    return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_top_k_with_many_ties_keeps_the_lowest_indices_like_a_stable_sort(dtype):
    gen = torch.Generator().manual_seed(3)
    values = torch.randint(0, 5, (4, 12, 7), generator=gen).to(dtype)  # 84 entries, five values: many ties
    values[3] = torch.rand(12, 7, generator=gen, dtype=dtype)  # and a run without any
    counts = [13, 42, 1, 50]
    assert torch.equal(top_k_mask(values, counts), _top_k_by_sort(values, counts))
    assert torch.equal(top_k_mask(values, [84, 0, 83, 84]), _top_k_by_sort(values, [84, 0, 83, 84]))


def test_top_k_thresholds_agree_on_both_selection_paths():
    from lt_core.supermask.edge_popup import _kth_largest, _kth_largest_cpu

    gen = torch.Generator().manual_seed(0)
    flat = torch.rand(1001, generator=gen)
    flat[::7] = flat[3]  # a tie
    for n in (1, 2, 143, 500, 501, 858, 1000):
        threshold, tied = _kth_largest(flat, n)  # topk: the path off the CPU
        assert _kth_largest_cpu(flat, n) == (float(threshold), tied)


def test_edge_popup_weights_equal_the_masked_weights_with_the_same_gradient():
    from lt_core.supermask.edge_popup import edge_popup_weights

    gen = torch.Generator().manual_seed(1)
    scores = (torch.randint(-6, 7, (3, 20, 9), generator=gen) / 4.0).requires_grad_()  # ties and zeros
    weights = torch.randn(3, 20, 9, generator=gen)
    grad = torch.randn(3, 20, 9, generator=gen)
    fractions = [0.5, 0.07, 1.0]
    fused = edge_popup_weights(scores, weights, fractions)
    (fused * grad).sum().backward()
    fused_grad, scores.grad = scores.grad, None
    composed = weights * edge_popup_mask(scores, fractions)
    (composed * grad).sum().backward()
    assert torch.equal(fused, composed) and torch.equal(fused_grad, scores.grad)
    assert bool((fused_grad[scores.detach() == 0] == 0).all())  # sign(0) = 0: a zero score gets none


def test_edge_popup_weights_are_scaled_signed_kaiming_constants():
    arch = get_arch("fc")
    data = _tiny_data(arch)
    learner = EdgePopupLearner(arch, data, [EdgePopupConfig(keep_fraction=0.25, device="cpu"),
                                            EdgePopupConfig(weights="init", seed=1, keep_fraction=0.25, device="cpu"),
                                            EdgePopupConfig(scale_fan=False, seed=2, keep_fraction=0.25,
                                                            device="cpu")], ["a", "b", "c"], iterations=1)
    for layer in arch.layers:
        fan_in = layer.fans[0]
        for run, seed, scale in ((0, 0, 0.25), (2, 2, 1.0)):
            init = init_weights(arch, seed)[layer.name]
            std = math.sqrt(2.0 / (fan_in * scale))
            torch.testing.assert_close(learner.w[layer.name][run], torch.where(init >= 0, std, -std))
        torch.testing.assert_close(learner.w[layer.name][1], init_weights(arch, 1)[layer.name])
        bound = 1.0 / math.sqrt(fan_in)
        s = learner.scores[layer.name]
        top = float(s.detach().abs().max())
        assert 0.9 * bound < top <= bound
    keep, layers = learner.expected_keep()
    assert keep == pytest.approx([0.25] * 3, abs=1e-5) and layers[0]["fc3"] == 0.25


def test_edge_popup_cosine_schedule_per_epoch():
    arch = get_arch("fc")
    learner = EdgePopupLearner(arch, _tiny_data(arch, n=40), [EdgePopupConfig(batch_size=10, device="cpu")], ["a"],
                               iterations=40)  # 4 steps an epoch, 10 epochs
    assert learner.learning_rate(0) == pytest.approx(0.1)
    assert learner.learning_rate(3) == pytest.approx(0.1)
    assert learner.learning_rate(20) == pytest.approx(0.05)  # epoch 5 of 10
    assert learner.learning_rate(39) == pytest.approx(0.05 * (1 + math.cos(math.pi * 0.9)))


# -- signed supermasks: hand-computed ----------------------------------------------------------------

def test_signed_mask_keeps_hides_and_inverts_with_a_straight_through_gradient():
    s = torch.tensor([[0.5, 0.005, -0.3, -0.01, 0.01, -0.02]], requires_grad=True)
    m = signed_mask(s, 0.01)
    assert m.detach().tolist() == [[1.0, 0.0, -1.0, 0.0, 0.0, -1.0]]  # |s| <= threshold hides
    w = torch.tensor([[2.0, 1.0, 3.0, -1.0, 4.0, -0.5]])
    eff = w * m
    assert eff.detach().tolist() == [[2.0, 0.0, -3.0, 0.0, 0.0, 0.5]]  # kept, hidden, sign flipped
    x = torch.tensor([1.0, 2.0, -1.0, 0.5, 1.0, 2.0])
    y = (eff * x).sum()  # y = 2 + 3 + 1 = 6
    (y ** 2).backward()
    # dL/ds = dL/dm (identity) = 2 y w x, for every score, hidden ones included
    torch.testing.assert_close(s.grad, (2 * 6.0 * w * x))


def test_signed_weights_and_scores_are_elus_by_default():
    arch = get_arch("fc")
    learner = SignedMaskLearner(arch, _tiny_data(arch), [SignedMaskConfig(device="cpu"),
                                                        SignedMaskConfig(weights="he", score_init="xavier", seed=3,
                                                                         device="cpu")], ["a", "b"], iterations=1)
    for layer in arch.layers:
        fan_in, fan_out = layer.fans
        for run, seed, c in ((0, 0, math.sqrt(6.0 / fan_in)), (1, 3, math.sqrt(2.0 / fan_in))):
            init = init_weights(arch, seed)[layer.name]
            torch.testing.assert_close(learner.w[layer.name][run], torch.where(init >= 0, c, -c))
        for run, bound in ((0, math.sqrt(18.0 / fan_in)), (1, math.sqrt(6.0 / (fan_in + fan_out)))):
            s = learner.scores[layer.name][run]
            top = float(s.detach().abs().max())
            assert 0.9 * bound < top <= bound


def test_signed_rate_and_weight_decay_decay_together_every_decay_every_steps():
    arch = get_arch("fc")
    learner = SignedMaskLearner(arch, _tiny_data(arch, n=40), [SignedMaskConfig(batch_size=10, decay_every=4,
                                                                                device="cpu")], ["a"], iterations=12)
    before = {n: s.detach().clone() for n, s in learner.scores.items()}
    learner.before_update(0)  # decoupled: the score shrinks by wd itself, whatever the learning rate
    for n, s in learner.scores.items():
        torch.testing.assert_close(s.detach(), before[n] * (1 - 5e-4))
    before = {n: s.detach().clone() for n, s in learner.scores.items()}
    learner.before_update(9)  # two decays (steps 4 and 8): wd 5e-4 * 0.96**2
    for n, s in learner.scores.items():
        torch.testing.assert_close(s.detach(), before[n] * (1 - 5e-4 * 0.96 ** 2))
    assert learner.learning_rate(3) == pytest.approx(0.05)
    assert learner.learning_rate(4) == pytest.approx(0.05 * 0.96)
    assert learner.learning_rate(11) == pytest.approx(0.05 * 0.96 ** 2)
    default = SignedMaskConfig()  # the authors' code: 0.96 every 10 x 390 steps
    assert (default.lr_decay, default.decay_every) == (0.96, 3900)


def test_signed_masks_see_each_image_standardised_unless_told_pixels():
    x = torch.tensor([[[[0.0, 0.0], [1.0, 1.0]]], [[[0.0, 0.0], [0.0, 0.0]]], [[[0.0, 0.0], [0.0, 2.0]]]])
    out = standardize_images(x)
    assert out[0].flatten().tolist() == [-1.0, -1.0, 1.0, 1.0]  # mean 0.5, std 0.5
    assert out[1].flatten().tolist() == [0.0, 0.0, 0.0, 0.0]  # std 0 -> the floor 1/sqrt(4): finite
    # mean 0.5, population std sqrt((3 * 0.25 + 2.25) / 4) = sqrt(0.75): (0 - 0.5) / 0.866 = -1 / sqrt(3)
    torch.testing.assert_close(out[2].flatten(), torch.tensor([-1.0, -1.0, -1.0, 3.0]) / math.sqrt(3.0))
    arch = get_arch("fc")
    data = _tiny_data(arch)
    std = SignedMaskLearner(arch, data, [SignedMaskConfig(device="cpu")], ["a"], iterations=1)
    raw = SignedMaskLearner(arch, data, [SignedMaskConfig(inputs="pixels", device="cpu")], ["a"], iterations=1)
    assert raw.data is data
    for split in ("train", "val", "test"):
        torch.testing.assert_close(std.data.splits[split].x, standardize_images(data.splits[split].x))
        assert torch.equal(std.data.splits[split].y, data.splits[split].y)


def test_signed_masks_train_an_elu_network_unless_told_relu():
    arch = get_arch("fc")
    data = _tiny_data(arch)
    elu = SignedMaskLearner(arch, data, [SignedMaskConfig(device="cpu")], ["a"], iterations=1)
    relu = SignedMaskLearner(arch, data, [SignedMaskConfig(activation="relu", device="cpu")], ["a"], iterations=1)
    assert (elu.arch.activation, relu.arch.activation) == ("elu", "relu")
    assert relu.arch is arch and elu.arch.layers == arch.layers and elu.arch.name == "fc"
    x = torch.randn(4, *arch.input_shape)
    w = elu.sampled_weights(None)
    hidden = F.elu(x.flatten(1) @ w["fc1"][0].t())  # the first layer's output, by hand
    logits = F.elu(hidden @ w["fc2"][0].t()) @ w["fc3"][0].t()
    torch.testing.assert_close(forward(elu.arch, w, None, x)[0], logits)
    mixed = [SignedMaskConfig(device="cpu"), SignedMaskConfig(activation="relu", device="cpu")]
    with pytest.raises(ValueError, match="must share SignedMaskConfig.activation"):
        SignedMaskLearner(arch, data, mixed, ["a", "b"], iterations=1)
    with pytest.raises(ConfigError, match="SignedMaskConfig.activation: unknown value 'tanh'; allowed values: relu, elu"):
        SignedMaskConfig(activation="tanh")


# -- store identity --------------------------------------------------------------------------------

def _hash_by_hand(data, model, learn_fields):
    """config_hash's payload written out: kind, init rule, each config's non-default fields."""
    payload = {"kind": "learnmask", "init": INIT_SCHEME, "data": data, "learn": learn_fields, "model": model}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def test_the_default_method_keeps_todays_folder_names_and_the_others_change_them(tmp_path):
    data, model = DataConfig(), ModelConfig(arch="fc")
    for learn, fields in ((LearnConfig(), {}), (LearnConfig(seed=3, dwr=True), {"seed": 3, "dwr": True})):
        folder = run_key("learnmask", data, model, learn=learn).name
        assert folder == f"learnmask-fc-{_hash_by_hand({}, {}, fields)}"  # no method in it
    names = {run_key("learnmask", data, model, learn=c).name
             for c in (LearnConfig(), EdgePopupConfig(), EdgePopupConfig(keep_fraction=0.3), SignedMaskConfig(),
                       SignedMaskConfig(threshold=0.05))}
    assert len(names) == 5
    assert run_key("learnmask", data, model, learn=EdgePopupConfig()).name == \
        f"learnmask-fc-{_hash_by_hand({}, {}, {'method': 'edge_popup'})}"
    # a setting that only says where or how fast is no part of it
    assert run_key("learnmask", data, model, learn=SignedMaskConfig(device="cpu")).name == \
        run_key("learnmask", data, model, learn=SignedMaskConfig()).name
    assert config_hash("x", learn=EdgePopupConfig(keep_fraction=0.3)) != config_hash("x", learn=EdgePopupConfig())


def test_a_method_revision_changes_its_folders_and_earlier_runs_are_listed_as_outdated(cifar_fixture,  # noqa: F811
                                                                                         tmp_path):
    data, model = DataConfig(), ModelConfig(arch="fc")
    assert SignedMaskConfig.revision == 2 and EdgePopupConfig.revision == 1
    assert run_key("learnmask", data, model, learn=SignedMaskConfig()).name == \
        f"learnmask-fc-{_hash_by_hand({}, {}, {'method': 'signed', 'revision': 2})}"
    root = tmp_path / "results"
    cfg = SignedMaskConfig(iterations=2, batch_size=10, eval_every=2, device="cpu")
    res = learn_supermask(DataConfig(dataset="cifar10", data_dir=str(cifar_fixture[0]), download=False, val_size=10),
                          ModelConfig(arch="conv2"), cfg, out=root)
    config = json.loads((res.run_dir / "config.json").read_text())
    assert (config["method"], config["revision"]) == ("signed", 2)
    old = root / (res.run_dir.name[:-12] + "0123456789ab")  # the same run, as revision 1 stored it
    shutil.copytree(res.run_dir, old)
    del config["revision"]
    (old / "config.json").write_text(json.dumps(config))
    assert open_run(old).outdated == "old signed rule (revision 1; today's 2)" and not open_run(old).current
    assert open_run(res.run_dir).outdated is None
    assert [r.name for r in list_runs(root)] == [res.run_dir.name]
    assert len(list_runs(root, old=True)) == 2
    listed = {r.name: r for r in dashboard_runs(root)}
    assert listed[old.name].label.endswith("old signed rule (revision 1; today's 2): not drawn")
    with pytest.raises(StoreError, match=r"made with an earlier rule: old signed rule \(revision 1; today's 2\)"):
        load_stored_series(root, old.name)


def test_stacks_must_be_of_one_method():
    with pytest.raises(ValueError, match="one mask method"):
        learn_supermasks(DataConfig(), ModelConfig(), [LearnConfig(), EdgePopupConfig()])
    with pytest.raises(ConfigError, match="must be a LearnConfig"):
        learn_supermasks(DataConfig(), ModelConfig(), [{"seed": 1}])


# -- Conv2 on the CIFAR-format fixture --------------------------------------------------------------

@pytest.mark.parametrize("cfg", [EdgePopupConfig(keep_fraction=0.3, iterations=3, batch_size=10, eval_every=3,
                                                 device="cpu"),
                                 SignedMaskConfig(iterations=3, batch_size=10, eval_every=3, device="cpu")],
                         ids=["edge_popup", "signed"])
def test_conv2_learns_and_stores_on_the_cifar_fixture(cifar_fixture, tmp_path, cfg):  # noqa: F811
    root, _, _ = cifar_fixture
    data = DataConfig(dataset="cifar10", data_dir=str(root), download=False, val_size=10)
    res = learn_supermask(data, ModelConfig(arch="conv2"), cfg, out=tmp_path / "results")
    assert 0.0 <= res.test_acc_mean <= 1.0 and res.iterations == 3
    assert set(res.layer_keep_fraction) == set(get_arch("conv2").layer_names)
    if isinstance(cfg, EdgePopupConfig):
        assert all(abs(v - 0.3) < 1e-3 for v in res.layer_keep_fraction.values())
    config = json.loads((res.run_dir / "config.json").read_text())
    assert config["method"] == lt_core.supermask.method_of(cfg).name
    summary = json.loads((res.run_dir / "summary.json").read_text())
    assert summary["method"] == config["method"] and summary["keep_fraction"] == res.expected_keep_fraction
    assert (res.run_dir / "scores.pt").is_file() and (res.run_dir / "metrics.csv").is_file()


# -- MNIST: short runs that learn, stacks, a user's method through API and CLI ---------------------------

@needs_mnist
@pytest.mark.parametrize("cfg", [LearnConfig(iterations=100, eval_every=50, device="cpu"),
                                 EdgePopupConfig(iterations=100, eval_every=50, device="cpu"),
                                 SignedMaskConfig(iterations=100, eval_every=50, device="cpu")],
                         ids=["zhou", "edge_popup", "signed"])
def test_each_method_learns_mnist_fc_far_above_chance(tmp_path, cfg):
    res = learn_supermask(DataConfig(dataset="mnist"), ModelConfig(arch="fc"), cfg, out=tmp_path)
    assert res.test_acc_mean > 0.6, res.to_json()  # chance: 0.1 (100 steps reach ~0.8-0.9)
    assert 0.0 < res.expected_keep_fraction <= 1.0
    metrics = open_metrics(res.run_dir)
    assert [int(r["iteration"]) for r in metrics if r["split"] == "test"] == [50, 100]
    again = learn_supermask(DataConfig(dataset="mnist"), ModelConfig(arch="fc"), cfg, out=tmp_path)
    assert again.reused and again.test_acc_mean == res.test_acc_mean


def open_metrics(run_dir):
    import csv

    with open(run_dir / "metrics.csv") as fh:
        return list(csv.DictReader(fh))


@needs_mnist
@pytest.mark.parametrize("cls,configs", [
    (EdgePopupLearner, [EdgePopupConfig(device="cpu"), EdgePopupConfig(device="cpu", seed=1, keep_fraction=0.3)]),
    (SignedMaskLearner, [SignedMaskConfig(device="cpu"), SignedMaskConfig(device="cpu", seed=1, weights="he")]),
], ids=["edge_popup", "signed"])
def test_stacked_runs_follow_the_runs_trained_alone(cls, configs):
    from lt_core import load_dataset

    ds = load_dataset("mnist", device="cpu")
    arch = get_arch("fc")

    def train(cfgs):
        learner = cls(arch, ds, cfgs, [str(i) for i in range(len(cfgs))], iterations=3)
        learner.run()
        return learner

    stacked = train(configs)
    for i, cfg in enumerate(configs):
        alone = train([cfg])
        for name in alone.scores:
            torch.testing.assert_close(stacked.scores[name][i], alone.scores[name][0], rtol=0, atol=1e-5)


@needs_mnist
def test_a_stopped_run_resumes_from_its_checkpoint_to_the_same_scores(tmp_path):
    from lt_core import open_run
    from lt_core.events import RunStopped, StopToken

    cfg = SignedMaskConfig(iterations=40, eval_every=20, device="cpu")
    data, model = DataConfig(dataset="mnist"), ModelConfig(arch="fc")
    full = learn_supermask(data, model, cfg, out=tmp_path / "a")
    stop = StopToken()

    def on_event(event):
        if event.get("event") == "learn_eval":
            stop.request("SIGINT")

    with pytest.raises(RunStopped, match="iteration 20"):
        learn_supermask(data, model, cfg, out=tmp_path / "b", on_event=on_event, stop=stop)
    events = []
    resumed = learn_supermask(data, model, cfg, out=tmp_path / "b", on_event=events.append)
    assert [e["iteration"] for e in events if e.get("stage") == "resumed"] == [20]
    a, b = open_run(full.run_dir).scores(), open_run(resumed.run_dir).scores()
    assert all(torch.equal(a[n], b[n]) for n in a) and resumed.test_acc_mean == full.test_acc_mean


def _load_user_plugin():
    from lt_core.plugins import load_plugin

    load_plugin(str(PLUGIN))
    return MASK_METHODS["sign_gate"].config


@needs_mnist
def test_a_users_method_works_through_the_api(tmp_path):
    cfg_cls = _load_user_plugin()
    assert issubclass(cfg_cls, MaskMethodConfig) and issubclass(MASK_METHODS["sign_gate"].learner, ScoreMaskLearner)
    cfg = cfg_cls(iterations=40, eval_every=20, device="cpu")
    res = learn_supermask(DataConfig(dataset="mnist"), ModelConfig(arch="fc"), cfg, out=tmp_path)
    assert res.to_json()["method"] == "sign_gate" and res.test_acc_mean > 0.3
    assert json.loads((res.run_dir / "config.json").read_text())["method"] == "sign_gate"
    other = run_key("learnmask", DataConfig(dataset="mnist"), ModelConfig(arch="fc"),
                    learn=cfg_cls(gate=0.1, iterations=40, eval_every=20))
    assert other.name != res.run_dir.name


@needs_mnist
def test_a_users_method_and_edge_popup_work_through_the_cli(tmp_path):
    out = last_json(cli("learn-mask", "--plugin", str(PLUGIN), "--method", "sign_gate", "--set", "gate=0.01",
                        "--arch", "fc", "--dataset", "mnist", "--iterations", "30", "--eval-every", "15",
                        "--device", "cpu", "--out", str(tmp_path), "--json", "--quiet"))
    assert out["method"] == "sign_gate" and out["test_acc_mean"] > 0.3
    assert json.loads(Path(out["run_dir"], "config.json").read_text())["learn"]["gate"] == 0.01
    edge = last_json(cli("learn-mask", "--method", "edge_popup", "--keep-fraction", "0.3", "--arch", "fc",
                         "--dataset", "mnist", "--iterations", "30", "--eval-every", "15", "--device", "cpu",
                         "--out", str(tmp_path), "--json", "--quiet"))
    assert edge["method"] == "edge_popup" and edge["keep_fraction"] == pytest.approx(0.3, abs=1e-4)
    assert edge["test_acc_samples"] == [edge["test_acc_mean"]]
    bad = cli("learn-mask", "--method", "edge_popup", "--dwr", "--iterations", "5", "--out", str(tmp_path))
    assert bad.returncode == 2 and "--dwr: not a setting of mask method 'edge_popup'" in bad.stderr
    unknown = cli("learn-mask", "--method", "nope", "--iterations", "5", "--out", str(tmp_path))
    assert unknown.returncode == 2 and "invalid choice" in unknown.stderr


# -- helpers -----------------------------------------------------------------------------------------

def _tiny_data(arch, n=256):
    """Random MNIST-shaped splits (enough to build a learner)."""
    from lt_core.data import Dataset, Split

    gen = torch.Generator().manual_seed(0)
    split = Split(torch.rand(n, 1, 28, 28, generator=gen), torch.randint(0, 10, (n,), generator=gen))
    return Dataset("mnist", split, split, split)
