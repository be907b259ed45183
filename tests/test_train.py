import os

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

    from lt_core.optim import fused_kernel

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


def _adam_case(seed=0, steps=4):
    gen = torch.Generator().manual_seed(seed)
    start = [torch.randn(3, 4, generator=gen), torch.randn(5, generator=gen)]
    grads = [[torch.randn(t.shape, generator=gen) for t in start] for _ in range(steps)]
    return start, grads


def _run_adam(start, grads, **kwargs):
    from lt_core.optim import StackAdam

    params = [t.clone() for t in start]
    opt = StackAdam(params, lr=1e-2, **kwargs)
    for step_grads in grads:
        opt.step([g.clone() for g in step_grads])
    return params, opt


def test_stack_adam_without_the_kernel_is_torch_fused_adam_bit_for_bit():
    start, grads = _adam_case()
    mine, opt = _run_adam(start, grads, use_kernel=False)
    ref = [t.clone().requires_grad_() for t in start]
    ref_opt = torch.optim.Adam(ref, lr=1e-2, eps=1e-8, fused=True)
    for step_grads in grads:
        for q, g in zip(ref, step_grads):
            q.grad = g.clone()
        ref_opt.step()
    assert all(torch.equal(p, q) for p, q in zip(mine, ref))


def test_fused_kernel_builds_where_a_c_compiler_is_found():
    import shutil
    import sys

    from lt_core.optim import fused_kernel

    if os.environ.get("LT_KERNELS") == "0":
        pytest.skip("the kernels are switched off (LT_KERNELS=0)")
    if not sys.platform.startswith("linux") or shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler on this machine")
    assert fused_kernel() is not None


def test_kernel_adam_agrees_with_torch_adam_and_masks_exactly():
    from lt_core.optim import fused_kernel

    if fused_kernel() is None:
        pytest.skip("fused kernel not available here")
    start, grads = _adam_case(steps=6)
    mine, opt = _run_adam(start, grads)
    assert opt.kernel is not None
    ref, _ = _run_adam(start, grads, use_kernel=False)
    for p, q in zip(mine, ref):  # same formula, last-bit rounding may differ
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)
    # masked: pruned entries (starting at 0) stay exactly 0; kept ones follow the masked-gradient update
    mask = torch.tensor([[1, 0, 1, 1], [0, 0, 1, 0], [1, 1, 1, 0]], dtype=torch.bool)
    start0 = [start[0] * mask, start[1]]
    masked, _ = _run_adam(start0, grads, masks=[mask, None])
    assert torch.all(masked[0][~mask] == 0)
    premasked, _ = _run_adam(start0, [[g[0] * mask, g[1]] for g in grads])
    assert all(torch.equal(a, b) for a, b in zip(masked, premasked))


@pytest.mark.parametrize("use_kernel", [None, False])
def test_narrow_first_layer_gradient_equals_zero_padded_gradient(use_kernel):
    start, grads = _adam_case()
    narrow = [[g[0][:, :2].contiguous(), g[1]] for g in grads]
    padded = [[torch.cat([g[0][:, :2], torch.zeros(3, 2)], 1), g[1]] for g in grads]
    a, _ = _run_adam(start, narrow, use_kernel=use_kernel)
    b, _ = _run_adam(start, padded, use_kernel=use_kernel)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    # the last column never has a gradient: skipping it changes nothing
    c, opt = _run_adam(start, narrow, use_kernel=use_kernel, live_cols=[3, None])
    assert all(torch.equal(x, y) for x, y in zip(c, b))
    assert torch.equal(c[0][:, 3], start[0][:, 3]) and torch.all(opt.exp_avg[0][:, 3] == 0)


@pytest.mark.parametrize("use_kernel", [None, False])
def test_adam_on_a_stack_equals_adam_on_each_run(use_kernel):
    gen = torch.Generator().manual_seed(1)
    start = torch.randn(3, 40, 50, generator=gen)  # 3 runs
    grads = [torch.randn(3, 40, 50, generator=gen) for _ in range(3)]
    stacked, _ = _run_adam([start], [[g] for g in grads], use_kernel=use_kernel)
    for k in range(3):
        alone, _ = _run_adam([start[k]], [[g[k]] for g in grads], use_kernel=use_kernel)
        assert torch.equal(stacked[0][k], alone[0])


def test_kernel_flushes_denormal_moments_and_restores_the_callers_float_mode():
    from lt_core.optim import fused_kernel

    if fused_kernel() is None:
        pytest.skip("fused kernel not available here")
    tiny = torch.finfo(torch.float32).tiny  # 1.18e-38, the smallest normal float32
    params, opt = _run_adam([torch.ones(4)], [[torch.zeros(4)]])
    opt.exp_avg[0].fill_(tiny)  # 0.9 * tiny is denormal: flushed to 0
    opt.step([torch.zeros(4)])
    assert torch.all(opt.exp_avg[0] == 0)
    assert float(torch.tensor(tiny) * 0.5) > 0  # the caller still computes with denormals


def test_stack_adam_state_round_trip():
    start, grads = _adam_case()
    _, opt = _run_adam(start, grads)
    from lt_core.optim import StackAdam

    restored = StackAdam([t.clone() for t in start], lr=1e-2)
    restored.load_state_dict(opt.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(restored.exp_avg_sq, opt.exp_avg_sq))
    assert restored.t == 4


def test_stack_adam_moments_keep_a_padded_layout():
    from lt_core.optim import zeros_in_layout

    padded = torch.randn(2, 5, 16)[:, :, :10].transpose(1, 2)  # rows 16 apart, seen transposed
    m = zeros_in_layout(padded)
    assert m.shape == padded.shape and m.stride() == padded.stride() and not m.any()
    assert m.untyped_storage().nbytes() == 4 * (1 + 1 * 80 + 9 * 1 + 4 * 16)
    dense = torch.randn(3, 4).t()
    assert zeros_in_layout(dense).stride() == dense.stride()


def test_trainer_steps_the_kernel_on_padded_input_major_tensors():
    from lt_core import kernels

    if kernels.library() is None:
        pytest.skip("no C kernels here")
    arch = get_arch("fc")
    runs = [RunSpec("r", init_weights(arch, 0), zero_biases(arch), full_masks(arch), seed=0)]
    tr = Trainer(arch, load_dataset("mnist", device="cpu"), runs, lr=1e-3, batch_size=60, iterations=1)
    n = len(arch.layers)
    for i, name in enumerate(arch.layer_names):
        for t in (tr.w[name], tr.opt.exp_avg[i], tr.opt.exp_avg_sq[i]):
            assert kernels.is_input_major(t.detach().transpose(1, 2)), name
    assert [tr.w[name].stride(2) for name in arch.layer_names] == [304, 112, 16]
    tr.step(0)
    assert tr.opt.exp_avg[n].abs().sum() > 0  # the kernel stepped the optimiser's own tensors


def test_input_order_sorts_inputs_by_how_often_they_are_nonzero():
    from lt_core.data import Dataset, Split
    from lt_core.train import InputOrder

    # 4 images of 5 inputs; nonzero counts per input: [1, 3, 0, 3, 2] -> order 1, 3, 4, 0, 2
    x = torch.tensor([[0., 1, 0, 1, 0], [0, 1, 0, 1, 1], [2, 1, 0, 0, 1], [0, 0, 0, 1, 0]]).view(4, 1, 1, 5)
    y = torch.arange(4)
    split = Split(x=x, y=y)
    order = InputOrder.of(Dataset("toy", split, split, split))
    assert order.order.tolist() == [1, 3, 4, 0, 2]
    assert order.inverse[order.order].tolist() == [0, 1, 2, 3, 4]
    # reordered images; last = 1 + position of the last nonzero input
    assert order.data.train.x.reshape(4, 5)[2].tolist() == [1, 0, 1, 2, 0]
    assert order.last["train"].tolist() == [2, 3, 4, 2]
    assert order.widths("test", 3) == [4, 2]  # batches of 3 images: max of [2, 3, 4], then [2]
    assert order.data.train.x.shape == x.shape


def test_batches_know_how_many_leading_inputs_they_need():
    from lt_core.data import Split
    from lt_core.train import BatchOrder

    n = 12
    x = torch.zeros(n, 1, 1, 6)
    last = torch.tensor([1, 6, 2, 3, 0, 4, 5, 1, 2, 3, 1, 2])
    for i, k in enumerate(last.tolist()):
        if k:
            x[i, 0, 0, k - 1] = 1.0
    order = BatchOrder(Split(x=x, y=torch.arange(n)), [0], batch_size=5, last=last)
    perm = epoch_order(0, 0, n)
    for it in range(2):  # 12 // 5 = 2 batches, the last 2 images dropped
        batch = perm[it * 5:(it + 1) * 5]
        assert order.width(it) == max(1, int(last[batch].max()))
        xb, yb = order(it)
        assert torch.equal(yb, batch)
        assert torch.all(xb.reshape(5, -1)[:, order.width(it):] == 0)


def test_a_span_of_batches_is_the_batches_of_one_gathered_block():
    from lt_core.data import Split
    from lt_core.train import BatchOrder

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
        assert torch.equal(looped.w[n], stepped.w[n]) and torch.equal(looped.b[n], stepped.b[n])
    assert [e["iteration"] for e in results[0].evals] == [0, 20, 40, 45]
    if looped.fc_stack is not None:
        assert looped.max_steps(0) == 17  # batches of 60 gathered 17 at a time


def test_narrowed_first_layer_gradients_equal_autograd():
    import torch.nn.functional as F

    from lt_core.models import forward
    from lt_core.train import dense_gradients

    arch = get_arch("fc")
    k, b, width = 2, 5, 300
    gen = torch.Generator().manual_seed(3)
    w = {l.name: (torch.randn(k, *l.shape, generator=gen) * 0.1).requires_grad_() for l in arch.layers}
    bias = {l.name: (torch.randn(k, l.shape[0], generator=gen) * 0.1).requires_grad_() for l in arch.layers}
    x = torch.rand(b, 784, generator=gen)
    x[:, width:] = 0  # every input past `width` is 0 in this batch
    x = x.view(b, 1, 28, 28)
    y = torch.randint(0, 10, (b,), generator=gen)
    (F.cross_entropy(forward(arch, w, bias, x).reshape(-1, 10), y.expand(k, -1).reshape(-1)) * k).backward()
    gw, gb = dense_gradients(arch, {n: t.detach() for n, t in w.items()}, {n: t.detach() for n, t in bias.items()},
                             x, y, width=width)
    assert gw["fc1"].shape == (k, 300, width) and gw["fc1"].is_contiguous()
    torch.testing.assert_close(gw["fc1"], w["fc1"].grad[..., :width], rtol=1e-4, atol=1e-6)
    assert torch.all(w["fc1"].grad[..., width:] == 0)
    for n in ("fc2", "fc3"):
        torch.testing.assert_close(gw[n], w[n].grad, rtol=1e-4, atol=1e-6)
    for n in bias:
        torch.testing.assert_close(gb[n], bias[n].grad, rtol=1e-4, atol=1e-6)


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


def test_evaluation_on_reordered_inputs_with_widths_matches_the_plain_forward():
    import torch.nn.functional as F

    from lt_core.data import Split
    from lt_core.models import forward
    from lt_core.train import InputOrder, evaluate

    ds = load_dataset("mnist", device="cpu")
    arch = get_arch("fc")
    gen = torch.Generator().manual_seed(4)
    w = {l.name: torch.randn(3, *l.shape, generator=gen) * 0.05 for l in arch.layers}
    b = {l.name: torch.randn(3, l.shape[0], generator=gen) * 0.05 for l in arch.layers}
    test = Split(x=ds.test.x[:2500], y=ds.test.y[:2500])
    logits = forward(arch, w, b, test.x)
    target = test.y.expand(3, -1)
    ref_loss = F.cross_entropy(logits.reshape(-1, 10), target.reshape(-1), reduction="none").view(3, -1).mean(1)
    ref_acc = (logits.argmax(-1) == target).double().mean(1)

    order = InputOrder.of(ds)
    wp = dict(w, fc1=w["fc1"][..., order.order])
    reordered = Split(x=order.data.test.x[:2500], y=order.data.test.y[:2500])
    widths = order.widths("test", 1000)[:3]
    assert max(widths) < 784  # some inputs skipped
    loss, acc = evaluate(arch, wp, b, reordered, batch=1000, widths=widths)
    torch.testing.assert_close(loss, ref_loss.double(), rtol=1e-5, atol=1e-6)
    assert torch.equal(acc, ref_acc)


def test_a_failed_kernel_build_falls_back_to_pytorch_adam_with_a_warning(monkeypatch):
    import sys

    import lt_core.kernels as kernels
    import lt_core.optim as optim

    if not sys.platform.startswith("linux") or os.environ.get("LT_KERNELS") == "0":
        pytest.skip("the kernels are only built on Linux")
    monkeypatch.setattr(kernels, "_library", None)  # forget this process's build (restored afterwards)
    monkeypatch.setenv("CC", "/bin/false")  # a compiler that fails
    with pytest.warns(RuntimeWarning, match="C kernels are not available"):
        assert optim.fused_kernel() is None
    start, grads = _adam_case()
    mine, opt = _run_adam(start, grads)
    ref, _ = _run_adam(start, grads, use_kernel=False)
    assert opt.kernel is None and all(torch.equal(a, b) for a, b in zip(mine, ref))


def test_stack_adam_refuses_per_tensor_lists_of_the_wrong_length():
    from lt_core.optim import StackAdam

    with pytest.raises(ValueError, match=r"StackAdam\.masks: 1 entries for 2 tensors"):
        StackAdam([torch.zeros(2), torch.zeros(3)], lr=0.1, masks=[None])
    with pytest.raises(ValueError, match=r"StackAdam\.live_cols: 3 entries for 2 tensors"):
        StackAdam([torch.zeros(2), torch.zeros(3)], lr=0.1, live_cols=[None, None, 1])
