import pytest
import torch

from lt_core import PruneConfig, TrainConfig, get_arch, load_dataset, run_lotteries, run_lottery
from lt_core import devices
from lt_core.backends import RunSpec
from lt_core.devices import auto_stack_size, run_memory_bytes
from lt_core.models import full_masks, init_weights, zero_biases
from lt_core.store import RunDir
from lt_core.train import Trainer

from .conftest import needs_mnist
from .test_data import cifar_fixture  # noqa: F401  (fixture)

QUICK = TrainConfig(iterations=40, eval_every=20, eval_train=False, device="cpu")
PRUNES = [PruneConfig(rounds=2), PruneConfig(rounds=2, criterion="random"),
          PruneConfig(rounds=2, criterion="movement", mask1="signed_reinit", mask0="freeze_init")]


@needs_mnist
def test_batched_lotteries_equal_single_runs(tmp_path):
    events = []
    batched = run_lotteries(train=QUICK, prunes=PRUNES, out=tmp_path / "batched", max_stack=3,
                            on_event=events.append)
    starts = [e for e in events if e.get("stage") == "round_start" and e["round"] == 1]
    assert len(starts) == 3
    for prune, b in zip(PRUNES, batched):
        single = run_lottery(train=QUICK, prune=prune, out=tmp_path / "single")
        assert [r.round for r in b.rounds] == [0, 1, 2]
        bd, sd = RunDir(b.run_dir), RunDir(single.run_dir)
        assert bd.name == sd.name  # the same experiment, so the same directory name
        m_b, m_s = bd.load_tensors(1, "masks"), sd.load_tensors(1, "masks")
        assert all(torch.equal(m_b[n], m_s[n]) for n in m_b)  # round 1: identical masks
        m_b, m_s = bd.load_tensors(2, "masks"), sd.load_tensors(2, "masks")
        agree = sum(int((m_b[n] == m_s[n]).sum()) for n in m_b) / sum(m.numel() for m in m_b.values())
        assert agree > 0.999  # round 2 masks come from weights equal up to float rounding
        for rb, rs in zip(b.rounds, single.rounds):
            assert rb.weights_remaining == rs.weights_remaining
            assert rb.final_test_acc == pytest.approx(rs.final_test_acc, abs=2e-3)
            assert rb.early_stop_test_acc == pytest.approx(rs.early_stop_test_acc, abs=2e-3)


@needs_mnist
def test_batched_lotteries_reuse_and_extend(tmp_path):
    run_lotteries(train=QUICK, prunes=PRUNES[:2], out=tmp_path, max_stack=2)
    events = []
    res = run_lotteries(train=QUICK, prunes=PRUNES, out=tmp_path, max_stack=2, on_event=events.append)
    trained = {(e["run"], e["round"]) for e in events if e.get("stage") == "round_start"}
    assert trained == {(RunDir(res[2].run_dir).name, 1), (RunDir(res[2].run_dir).name, 2)}
    assert all(len(r.rounds) == 3 for r in res)


def test_conv_stack_matches_single_runs(cifar_fixture):  # noqa: F811
    root, _, _ = cifar_fixture
    ds = load_dataset("cifar10", data_dir=str(root), download=False, val_size=10)
    arch = get_arch("conv2")

    def spec(i, seed):
        masks = full_masks(arch)
        masks["conv2"][:, :, 0, 0] = 0
        masks["fc1"][:, : 1000 * (i + 1)] = 0
        return RunSpec(f"r{i}", init_weights(arch, i), zero_biases(arch), masks, seed)

    kw = dict(lr=2e-4, batch_size=10, iterations=6, eval_every=3)
    for seeds in ([0, 0], [0, 1]):
        stacked = Trainer(arch, ds, [spec(i, s) for i, s in enumerate(seeds)], **kw).run()
        for i, s in enumerate(seeds):
            alone = Trainer(arch, ds, [spec(i, s)], **kw).run()[0]
            for a, b in zip(stacked[i].evals, alone.evals):
                assert a["test_loss"] == pytest.approx(b["test_loss"], rel=1e-4)
            # grouped and single convolutions sum in orders the CPU's library picks: within a tenth of
            # the largest change six Adam steps can make (6 x 2e-4), elementwise
            for n in alone.final_weights:
                torch.testing.assert_close(stacked[i].final_weights[n], alone.final_weights[n], rtol=1e-3, atol=1.2e-4)
            # pruned weights stay exactly zero in the stack too
            assert bool((stacked[i].final_weights["conv2"][:, :, 0, 0] == 0).all())


def test_auto_stack_size_follows_free_memory(monkeypatch):
    arch = get_arch("conv6")
    per_run = run_memory_bytes(arch, 60)
    monkeypatch.setattr(devices, "available_memory", lambda device: 10 * per_run)
    assert auto_stack_size(arch, torch.device("cpu"), 100) == 5  # half of the free memory
    assert auto_stack_size(arch, torch.device("cpu"), 3) == 3
    monkeypatch.setattr(devices, "available_memory", lambda device: per_run // 10)
    assert auto_stack_size(arch, torch.device("cpu"), 4) == 1
    # FC: 8 parameter-sized float tensors of 266,610 values, plus activations
    assert run_memory_bytes(get_arch("fc"), 60) > 4 * 8 * 266_610
