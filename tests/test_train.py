import pytest
import torch

from lt_core import DataConfig, ModelConfig, RunStopped, StopToken, TrainConfig, load_dataset, train_dense
from lt_core.backends import RunSpec, choose_backend
from lt_core.batches import epoch_order
from lt_core.store import run_key
from lt_core.models import full_masks, get_arch, init_weights, zero_biases
from lt_core.store import read_metrics_csv
from lt_core.train import Trainer

from .conftest import needs_mnist

pytestmark = needs_mnist
QUICK = TrainConfig(iterations=60, eval_every=20, eval_train=False, device="cpu")


def test_same_seed_same_numbers(tmp_path):
    a = train_dense(train=QUICK, out=tmp_path / "a")
    b = train_dense(train=QUICK, out=tmp_path / "b")
    rows_a = (a.run_dir / "round_000" / "metrics.csv").read_text()
    assert rows_a == (b.run_dir / "round_000" / "metrics.csv").read_text()
    fa = torch.load(a.run_dir / "round_000" / "final.pt")["weights"]
    fb = torch.load(b.run_dir / "round_000" / "final.pt")["weights"]
    assert all(torch.equal(fa[n], fb[n]) for n in fa)
    c = train_dense(train=QUICK.replace(seed=1), out=tmp_path / "a")
    assert c.run_dir != a.run_dir
    assert (c.run_dir / "round_000" / "metrics.csv").read_text() != rows_a


def test_finished_run_is_reused(tmp_path):
    first = train_dense(train=QUICK, out=tmp_path)
    events = []
    again = train_dense(train=QUICK, out=tmp_path, on_event=events.append)
    assert again.run_dir == first.run_dir and again.rounds[0].reused
    assert [e["stage"] for e in events if e["event"] == "stage"] == ["round_reused"]
    assert not any(e["event"] == "eval" for e in events)
    assert again.rounds[0].early_stop_test_acc == first.rounds[0].early_stop_test_acc


def test_early_stop_is_test_accuracy_at_min_validation_loss(tmp_path):
    res = train_dense(train=QUICK.replace(iterations=100, eval_every=10), out=tmp_path)
    rows = read_metrics_csv(res.run_dir / "round_000" / "metrics.csv")
    val = {r["iteration"]: r["value"] for r in rows if r["split"] == "val" and r["metric"] == "loss"}
    test = {r["iteration"]: r["value"] for r in rows if r["split"] == "test" and r["metric"] == "accuracy"}
    assert sorted(val) == list(range(0, 101, 10))
    best = min(val, key=lambda it: (val[it], it))
    r0 = res.rounds[0]
    assert r0.early_stop_iteration == best
    assert r0.early_stop_test_acc == pytest.approx(test[best])
    assert r0.final_test_acc == pytest.approx(test[100])
    assert r0.final_test_acc > 0.8  # 100 Adam steps on MNIST


def test_the_summary_records_the_backend_that_trained_the_run(tmp_path):
    import json

    res = train_dense(train=QUICK, out=tmp_path)
    summary = json.loads((res.run_dir / "round_000" / "summary.json").read_text())
    assert summary["backend"] == choose_backend(get_arch("fc"), torch.device("cpu")).name
    assert summary["early_stop_test_acc"] == res.rounds[0].early_stop_test_acc


def test_events_stream_every_evaluation_point(tmp_path):
    events = []
    train_dense(train=QUICK, out=tmp_path, on_event=events.append)
    evals = [e for e in events if e["event"] == "eval"]
    assert [e["iteration"] for e in evals] == [0, 20, 40, 60]
    assert {"val_loss", "val_acc", "test_loss", "test_acc", "round", "iterations"} <= set(evals[0])
    assert events[-1]["event"] == "round_end" and events[-1]["round"] == 0


def test_interrupted_run_resumes_to_the_same_numbers(tmp_path):
    cfg = QUICK.replace(iterations=80)
    reference = train_dense(train=cfg, out=tmp_path / "ref")
    stop = StopToken()

    def on_event(e):
        if e["event"] == "eval" and e["iteration"] == 40:
            stop.request()

    with pytest.raises(RunStopped):
        train_dense(train=cfg, out=tmp_path / "run", on_event=on_event, stop=stop)
    run_dir = run_key("train", DataConfig(), ModelConfig(), cfg).folder(tmp_path / "run")
    assert (run_dir.round_dir(0) / "checkpoint.pt").is_file() and not run_dir.round_done(0)
    events = []
    resumed = train_dense(train=cfg, out=tmp_path / "run", on_event=events.append)
    assert [e["iteration"] for e in events if e["event"] == "eval"] == [60, 80]
    assert any(e.get("stage") == "resumed" for e in events)
    assert (resumed.run_dir / "round_000" / "metrics.csv").read_text() == \
        (reference.run_dir / "round_000" / "metrics.csv").read_text()
    fr = torch.load(resumed.run_dir / "round_000" / "final.pt")["weights"]
    fe = torch.load(reference.run_dir / "round_000" / "final.pt")["weights"]
    assert all(torch.equal(fr[n], fe[n]) for n in fr)
    assert not (run_dir.round_dir(0) / "checkpoint.pt").exists()


def test_a_stop_asked_for_while_a_round_is_set_up_comes_before_its_first_evaluation(tmp_path):
    cfg = QUICK.replace(iterations=40)
    reference = train_dense(train=cfg, out=tmp_path / "ref")
    stop = StopToken()
    events = []

    def on_event(e):
        events.append(e)
        if e.get("stage") == "round_start":  # the round's trainer is built after this
            stop.request()

    with pytest.raises(RunStopped, match="stopped at iteration 0"):
        train_dense(train=cfg, out=tmp_path / "run", on_event=on_event, stop=stop)
    assert not any(e["event"] == "eval" for e in events)  # no evaluation at iteration 0 first
    run_dir = run_key("train", DataConfig(), ModelConfig(), cfg).folder(tmp_path / "run")
    assert (run_dir.round_dir(0) / "checkpoint.pt").is_file() and not run_dir.round_done(0)
    events.clear()
    resumed = train_dense(train=cfg, out=tmp_path / "run", on_event=events.append)
    assert [e["iteration"] for e in events if e["event"] == "eval"] == [0, 20, 40]
    assert (resumed.run_dir / "round_000" / "metrics.csv").read_text() == \
        (reference.run_dir / "round_000" / "metrics.csv").read_text()


def test_stacked_runs_match_single_runs():
    ds = load_dataset("mnist", device="cpu")
    arch = get_arch("fc")

    def spec(i, seed):
        masks = full_masks(arch)
        masks["fc1"][:, : 100 * i] = 0
        return RunSpec(f"r{i}", init_weights(arch, i), zero_biases(arch), masks, seed)

    from lt_core.backends.optim import fused_kernel

    # The kernel computes every element alike, so a stacked run follows its single run to rounding.
    # PyTorch's fused Adam (the fallback) rounds a tensor's ragged ends differently; a last-bit
    # difference flips a ReLU within a few steps and the runs then differ as two close trainings do.
    exact = fused_kernel() is not None
    rel = 1e-4 if exact else 5e-2
    kw = dict(lr=1.2e-3, batch_size=60, iterations=30, eval_every=10, eval_train=False)
    for seeds in ([0, 0, 0], [0, 1, 2]):  # shared data order, then one order per run
        stacked = Trainer(arch, ds, [spec(i, s) for i, s in enumerate(seeds)], **kw).run()
        for i, s in enumerate(seeds):
            alone = Trainer(arch, ds, [spec(i, s)], **kw).run()[0]
            for a, b in zip(stacked[i].evals, alone.evals):
                assert a["iteration"] == b["iteration"]
                assert a["val_loss"] == pytest.approx(b["val_loss"], rel=rel)
            for n in alone.final_weights if exact else ():
                torch.testing.assert_close(stacked[i].final_weights[n], alone.final_weights[n], rtol=1e-3, atol=1e-5)


def test_missing_dataset_leaves_nothing_behind(tmp_path):
    from lt_core import DataNotFoundError

    with pytest.raises(DataNotFoundError, match="train-images-idx3-ubyte.gz"):
        train_dense(DataConfig(data_dir=str(tmp_path / "empty"), download=False), train=QUICK, out=tmp_path / "res")
    assert not (tmp_path / "res").exists() or not any((tmp_path / "res").iterdir())


def test_the_training_loop_taking_many_steps_a_call_gets_the_bits_of_one_step_a_call():
    ds = load_dataset("mnist", device="cpu")
    arch = get_arch("fc")
    masks = {l.name: (torch.rand(l.shape, generator=torch.Generator().manual_seed(2)) < 0.5).float()
             for l in arch.layers}
    runs = [RunSpec(f"r{i}", init_weights(arch, i), zero_biases(arch), masks, seed=1) for i in range(3)]
    kw = dict(lr=1.2e-3, batch_size=60, iterations=45, eval_every=20, eval_train=False)
    looped = Trainer(arch, ds, runs, **kw)
    results = looped.run()
    stepped = Trainer(arch, ds, runs, **kw)
    for it in range(45):
        stepped.step(it)
    for n in arch.layer_names:
        assert torch.equal(looped.backend.w[n], stepped.backend.w[n])
        assert torch.equal(looped.backend.b[n], stepped.backend.b[n])
    assert [e["iteration"] for e in results[0].evals] == [0, 20, 40, 45]
    if looped.backend.name == "cpu_kernel":
        assert looped.max_steps(0) == 100  # batches of 60 gathered 100 at a time


def test_trainer_follows_a_plain_pytorch_training_loop():
    """Input order, narrowed matmuls, hand-written gradients and the fused masked Adam together
    give the weights of a textbook loop (autograd, torch.optim.Adam, gradient * mask) on the same
    batches, with pruned weights exactly 0 in their own positions."""
    import torch.nn.functional as F

    from lt_core.models import forward

    ds = load_dataset("mnist", device="cpu")
    arch = get_arch("fc")
    masks = {l.name: (torch.rand(l.shape, generator=torch.Generator().manual_seed(7)) < 0.7).float()
             for l in arch.layers}
    w0 = {n: t * masks[n] for n, t in init_weights(arch, 5).items()}
    steps = 25
    result = Trainer(arch, ds, [RunSpec("r", w0, zero_biases(arch), masks, seed=3)], lr=1.2e-3, batch_size=60,
                     iterations=steps, eval_every=100, eval_train=False).run()[0]

    w = {n: t.clone().unsqueeze(0).requires_grad_() for n, t in w0.items()}
    b = {n: t.clone().unsqueeze(0).requires_grad_() for n, t in zero_biases(arch).items()}
    opt = torch.optim.Adam(list(w.values()) + list(b.values()), lr=1.2e-3, eps=1e-8)
    order = epoch_order(3, 0, len(ds.train))
    for it in range(steps):
        idx = order[it * 60:(it + 1) * 60]
        loss = F.cross_entropy(forward(arch, w, b, ds.train.x[idx])[0], ds.train.y[idx])
        opt.zero_grad()
        loss.backward()
        for n in w:
            w[n].grad.mul_(masks[n])
        opt.step()
    for n in w:
        mine, ref = result.final_weights[n], w[n].detach()[0]
        assert torch.all(mine[masks[n] == 0] == 0)
        assert (mine - ref).abs().max() < 1e-4  # float rounding only; one Adam step moves a weight ~1e-3
        assert (mine != w0[n])[masks[n] == 1].float().mean() > 0.3  # and it did train
    assert result.evals[-1]["iteration"] == steps
