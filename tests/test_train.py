import pytest
import torch

from lt_core import DataConfig, ModelConfig, RunStopped, StopToken, TrainConfig, load_dataset, train_dense
from lt_core.lottery import dense_run_dir
from lt_core.models import full_masks, get_arch, init_weights, zero_biases
from lt_core.store import read_metrics_csv
from lt_core.train import RunSpec, Trainer, epoch_order

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
    run_dir = dense_run_dir(DataConfig(), ModelConfig(), cfg, tmp_path / "run")
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


def test_epoch_order_drops_the_last_partial_batch():
    ds = load_dataset("mnist", device="cpu")
    arch = get_arch("fc")
    spec = RunSpec("r", init_weights(arch, 0), zero_biases(arch), full_masks(arch), seed=5)
    t = Trainer(arch, ds, [spec], lr=1e-3, batch_size=60, iterations=1)
    assert t.spe == 916  # floor(55000 / 60): 40 images left out of each epoch
    x, y = t.batch(915)
    order = epoch_order(5, 0, 55000)
    assert torch.equal(y, ds.train.y[order[915 * 60: 916 * 60]])
    _, y_next = t.batch(916)  # iteration 916 starts epoch 1, with a new order
    assert torch.equal(y_next, ds.train.y[epoch_order(5, 1, 55000)[:60]])


def test_stacked_runs_match_single_runs():
    ds = load_dataset("mnist", device="cpu")
    arch = get_arch("fc")

    def spec(i, seed):
        masks = full_masks(arch)
        masks["fc1"][:, : 100 * i] = 0
        return RunSpec(f"r{i}", init_weights(arch, i), zero_biases(arch), masks, seed)

    kw = dict(lr=1.2e-3, batch_size=60, iterations=30, eval_every=10, eval_train=False)
    for seeds in ([0, 0, 0], [0, 1, 2]):  # shared data order, then one order per run
        stacked = Trainer(arch, ds, [spec(i, s) for i, s in enumerate(seeds)], **kw).run()
        for i, s in enumerate(seeds):
            alone = Trainer(arch, ds, [spec(i, s)], **kw).run()[0]
            for a, b in zip(stacked[i].evals, alone.evals):
                assert a["iteration"] == b["iteration"]
                assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-4)
            for n in alone.final_weights:
                torch.testing.assert_close(stacked[i].final_weights[n], alone.final_weights[n], rtol=1e-3, atol=1e-5)


def test_missing_dataset_leaves_nothing_behind(tmp_path):
    from lt_core import DataNotFoundError

    with pytest.raises(DataNotFoundError, match="train-images-idx3-ubyte.gz"):
        train_dense(DataConfig(data_dir=str(tmp_path / "empty"), download=False), train=QUICK, out=tmp_path / "res")
    assert not (tmp_path / "res").exists() or not any((tmp_path / "res").iterdir())


@pytest.mark.parametrize("shared", [True, False])
def test_hand_written_gradients_equal_autograd(shared):
    import torch.nn.functional as F

    from lt_core.models import forward
    from lt_core.train import dense_gradients

    arch = get_arch("fc")
    k, b = 3, 7
    gen = torch.Generator().manual_seed(0)
    w = {l.name: (torch.randn(k, *l.shape, generator=gen) * 0.1).requires_grad_() for l in arch.layers}
    bias = {l.name: (torch.randn(k, l.shape[0], generator=gen) * 0.1).requires_grad_() for l in arch.layers}
    x = torch.rand(b, 1, 28, 28, generator=gen) if shared else torch.rand(k, b, 1, 28, 28, generator=gen)
    y = torch.randint(0, 10, (b,) if shared else (k, b), generator=gen)
    logits = forward(arch, w, bias, x)
    target = y.expand(k, -1) if shared else y
    (F.cross_entropy(logits.reshape(-1, 10), target.reshape(-1)) * k).backward()
    gw, gb = dense_gradients(arch, {n: t.detach() for n, t in w.items()}, {n: t.detach() for n, t in bias.items()}, x, y)
    for n in w:
        torch.testing.assert_close(gw[n], w[n].grad, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(gb[n], bias[n].grad, rtol=1e-4, atol=1e-6)


def test_stack_adam_equals_torch_adam():
    from lt_core.train import StackAdam

    gen = torch.Generator().manual_seed(0)
    start = [torch.randn(3, 4, generator=gen), torch.randn(5, generator=gen)]
    grads = [[torch.randn(t.shape, generator=gen) for t in start] for _ in range(4)]
    mine = [t.clone().requires_grad_() for t in start]
    ref = [t.clone().requires_grad_() for t in start]
    opt, ref_opt = StackAdam(mine, lr=1e-2), torch.optim.Adam(ref, lr=1e-2, eps=1e-8, fused=True)
    for step_grads in grads:
        for p, q, g in zip(mine, ref, step_grads):
            p.grad, q.grad = g.clone(), g.clone()
        opt.step()
        ref_opt.step()
    assert all(torch.equal(p, q) for p, q in zip(mine, ref))
    restored = StackAdam([t.clone().requires_grad_() for t in mine], lr=1e-2)
    restored.load_state_dict(opt.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(restored.exp_avg_sq, opt.exp_avg_sq))
    assert float(restored.steps[0]) == 4.0
