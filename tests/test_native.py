"""The C kernel for stacks of fully connected networks (lt_core.backends.native.FcStack) against
hand computation and against PyTorch autograd + Adam."""

import shutil

import pytest
import torch
import torch.nn.functional as F

from lt_core.backends import native

needs_kernels = pytest.mark.skipif(native.library() is None, reason="no C compiler here, or LT_KERNELS=0")
DIMS = [50, 37, 21, 10]  # widths that are not multiples of the kernel's 16-float vectors or 64-row tiles
LIVE = 44  # inputs from 44 on are 0 in every batch below


def _zeros(ts):
    return [torch.zeros_like(t) for t in ts]


def _net(k, seed=0, keep=0.6):
    gen = torch.Generator().manual_seed(seed)
    w = [torch.randn(k, DIMS[i], DIMS[i + 1], generator=gen) * 0.3 for i in range(3)]
    b = [torch.randn(k, DIMS[i + 1], generator=gen) * 0.1 for i in range(3)]
    masks = [(torch.rand(k, DIMS[i], DIMS[i + 1], generator=gen) < keep).to(torch.uint8) for i in range(3)]
    for t, m in zip(w, masks):
        t.mul_(m)
    return w, b, masks


def _batches(n, rows=13, seed=1):
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        x = torch.rand(rows, DIMS[0], generator=gen)
        x[x < 0.6] = 0  # sparse, as images are
        x[:, LIVE:] = 0
        out.append((x, torch.randint(0, 10, (rows,), generator=gen)))
    return out


def _stack(w, b, masks, lib=None):
    w, b = [t.clone() for t in w], [t.clone() for t in b]
    stack = native.FcStack(w, b, exp_avg_w=_zeros(w), exp_avg_sq_w=_zeros(w), exp_avg_b=_zeros(b),
                            exp_avg_sq_b=_zeros(b), masks=masks, live_in=[LIVE, None, None], lib=lib)
    return w, b, stack


def _torch_logits(w, b, x):
    h = x if x.dim() == 3 else x.expand(w[0].shape[0], *x.shape)
    for i in range(len(w)):
        h = torch.baddbmm(b[i].unsqueeze(1), h, w[i])
        h = h.relu() if i < len(w) - 1 else h
    return h


@needs_kernels
def test_one_step_by_hand():
    # one layer, inputs (2, 0), label 0, from zero weights: logits 0, softmax (1/2, 1/2), so the
    # gradient of w[0, :] is 2 * (1/2 - 1, 1/2) = (-1, 1), of w[1, :] 0 (its input is 0) and of the
    # bias (-1/2, 1/2). Adam's first step moves each weight by lr * g / (|g| + eps): -lr sign(g).
    w, b, exp_avg = [torch.zeros(1, 2, 2)], [torch.zeros(1, 2)], [torch.zeros(1, 2, 2)]
    stack = native.FcStack(w, b, exp_avg_w=exp_avg, exp_avg_sq_w=_zeros(w), exp_avg_b=_zeros(b),
                            exp_avg_sq_b=_zeros(b))
    stack.train_step(torch.tensor([[2.0, 0.0]]), torch.tensor([0]), native.adam_step(1, 0.01), 1)
    assert w[0][0].flatten().tolist() == pytest.approx([0.01, -0.01, 0.0, 0.0], abs=1e-7)
    assert b[0][0].tolist() == pytest.approx([0.01, -0.01], abs=1e-7)
    assert exp_avg[0][0].flatten().tolist() == pytest.approx([-0.1, 0.1, 0.0, 0.0])  # (1 - beta1) g
    logits = stack.forward(torch.tensor([[1.0, 3.0]]), 1)
    assert logits.flatten().tolist() == pytest.approx([0.02, -0.02], abs=3e-7)


@needs_kernels
def test_training_steps_equal_autograd_with_masked_adam():
    w0, b0, masks = _net(3)
    w, b, stack = _stack(w0, b0, masks)
    tw = [t.clone().requires_grad_() for t in w0]
    tb = [t.clone().requires_grad_() for t in b0]
    opt = torch.optim.Adam(tw + tb, lr=1e-2)
    for t, (x, y) in enumerate(_batches(6), start=1):
        logits = _torch_logits(tw, tb, x)
        loss = F.cross_entropy(logits.reshape(-1, 10), y.repeat(3)) * 3  # each run: its own mean loss
        opt.zero_grad()
        loss.backward()
        for p, m in zip(tw, masks):
            p.grad.mul_(m)
        opt.step()
        stack.train_step(x, y, native.adam_step(t, 1e-2), 2)
    for mine, ref in zip(w + b, tw + tb):
        torch.testing.assert_close(mine, ref.detach(), rtol=1e-4, atol=1e-5)
    for mine, start, m in zip(w, w0, masks):
        assert torch.equal(mine[m == 0], start[m == 0])  # pruned weights never move
    assert torch.equal(w[0][:, LIVE:], w0[0][:, LIVE:])  # nor do the weights of inputs that are always 0
    assert not torch.equal(w[0][:, :LIVE], w0[0][:, :LIVE])


@needs_kernels
def test_a_run_gets_the_same_bits_alone_stacked_and_on_any_thread_count():
    # Five runs on two threads: runs 0-3 are stepped by one thread each, run 4 by both together
    # (and in a second stack every run by both).
    # Each of runs 3 and 4 alone, on one thread and on two (then both threads share its every layer),
    # must end with the same bits as in the stack.
    w0, b0, masks = _net(5)
    batches = _batches(8)
    stacked_w, stacked_b, stacked = _stack(w0, b0, masks)
    together_w, together_b, together = _stack(w0, b0, masks)  # every run by both threads
    alone = {(k, threads): _stack([t[k:k + 1] for t in w0], [t[k:k + 1] for t in b0],
                                  [m[k:k + 1].contiguous() for m in masks]) for k in (3, 4) for threads in (1, 2)}
    # the same batch for every run, given per run as views into larger blocks
    perrun_w, _, perrun = _stack(w0, b0, masks)
    for t, (x, y) in enumerate(batches, start=1):
        adam = native.adam_step(t, 1e-2)
        stacked.train_step(x, y, adam, 2, share="leftover")
        together.train_step(x, y, adam, 2, share="all")
        for (k, threads), (_, _, one) in alone.items():
            one.train_step(x, y, adam, threads, share="leftover")
        block_x = torch.zeros(5, 2 * len(x), DIMS[0])
        block_x[:, 3:3 + len(x)] = x
        block_y = torch.zeros(5, 2 * len(y), dtype=torch.int64)
        block_y[:, 3:3 + len(y)] = y
        # three threads, the two runs left over given to one thread each
        perrun.train_step(block_x[:, 3:3 + len(x)], block_y[:, 3:3 + len(y)], adam, 3, share="none")
    for (k, threads), (aw, ab, _) in alone.items():
        for s, a in zip(stacked_w + stacked_b, aw + ab):
            assert torch.equal(s[k:k + 1], a), (k, threads)
    assert not torch.equal(stacked_w[0][3], stacked_w[0][4])  # the runs did differ
    assert all(torch.equal(s, p) for s, p in zip(stacked_w, perrun_w))
    assert all(torch.equal(s, t) for s, t in zip(stacked_w + stacked_b, together_w + together_b))
    xe = torch.rand(700, DIMS[0])
    xe[xe < 0.5] = 0
    out = stacked.forward(xe, 2)
    assert torch.equal(out, stacked.forward(xe, 1))
    assert torch.equal(out[3:4], alone[(3, 1)][2].forward(xe, 2))


def _whole_memory(t):
    """All of t's memory, padding included, as one flat tensor."""
    return t.as_strided((t.untyped_storage().nbytes() // t.element_size(),), (1,), 0)


def test_input_major_pads_rows_to_whole_lines_and_shares_memory_once_so_laid_out():
    assert [native.row_stride(n) for n in (1, 10, 16, 17, 300)] == [16, 16, 16, 32, 304]
    canonical = torch.arange(2 * 3 * 5, dtype=torch.float32).view(2, 3, 5)  # (K, n_out, n_in)
    t = native.input_major(canonical)
    assert t.shape == (2, 5, 3) and t.stride() == (5 * 16, 16, 1)
    assert torch.equal(t, canonical.transpose(1, 2))
    assert t.untyped_storage().nbytes() == 2 * 5 * 16 * 4
    padding = _whole_memory(t).view(2, 5, 16)[:, :, 3:]
    assert not padding.any()
    assert native.is_input_major(t) and not native.is_input_major(canonical.transpose(1, 2))
    again = native.input_major(t.transpose(1, 2))  # already so laid out: the same memory
    assert again.data_ptr() == t.data_ptr() and again.stride() == t.stride()
    mask = native.input_major(canonical > 10, torch.uint8)
    assert mask.dtype == torch.uint8 and mask.stride() == t.stride()
    assert torch.equal(mask, (canonical > 10).transpose(1, 2).to(torch.uint8))


@needs_kernels
def test_padded_rows_train_and_evaluate_to_the_same_bits_as_contiguous_ones():
    # The row stride changes where values sit, never what is computed; the padding stays 0.
    w0, b0, masks = _net(3)
    flat_w, flat_b, flat = _stack(w0, b0, masks)

    def padded(ts, dtype=None):
        return [native.input_major(t.transpose(1, 2), dtype) for t in ts]

    pad_w, pad_b = padded(w0), [t.clone() for t in b0]
    moments = [padded([torch.zeros_like(t) for t in w0]) for _ in range(2)]
    pad = native.FcStack(pad_w, pad_b, exp_avg_w=moments[0], exp_avg_sq_w=moments[1], exp_avg_b=_zeros(b0),
                          exp_avg_sq_b=_zeros(b0), masks=padded(masks, torch.uint8), live_in=[LIVE, None, None])
    for t, (x, y) in enumerate(_batches(5), start=1):
        adam = native.adam_step(t, 1e-2)
        flat.train_step(x, y, adam, 2)
        pad.train_step(x, y, adam, 2)
    for a, c in zip(flat_w + flat_b, pad_w + pad_b):
        assert torch.equal(a, c)
    for tensors in [pad_w] + moments:
        for t in tensors:
            storage = _whole_memory(t).view(*t.shape[:2], -1)
            assert not storage[:, :, t.shape[2]:].any()
    xe = torch.rand(300, DIMS[0])
    xe[xe < 0.5] = 0
    assert torch.equal(flat.forward(xe, 2), pad.forward(xe, 2))
    with pytest.raises(ValueError, match="layer 0 exp_avg_w: .*rows 48 apart"):
        native.FcStack(pad_w, pad_b, exp_avg_w=_zeros(w0), exp_avg_sq_w=moments[1], exp_avg_b=_zeros(b0),
                        exp_avg_sq_b=_zeros(b0))


@needs_kernels
def test_forward_equals_torch_on_a_batch_larger_than_one_block():
    w, b, _ = _net(2)
    stack = native.FcStack(w, b)
    x = torch.rand(613, DIMS[0])
    x[x < 0.7] = 0
    torch.testing.assert_close(stack.forward(x, 2), _torch_logits(w, b, x), rtol=1e-5, atol=1e-5)


@needs_kernels
def test_the_portable_build_gets_the_same_bits_as_the_native_one():
    import platform

    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("the portable target named here is x86-64")
    portable = native.compile_library([f if f != "-march=native" else "-march=x86-64" for f in native.FLAGS])
    w0, b0, masks = _net(2)
    nw, nb, tuned = _stack(w0, b0, masks)
    pw, pb, port = _stack(w0, b0, masks, lib=portable)
    for t, (x, y) in enumerate(_batches(5), start=1):
        tuned.train_step(x, y, native.adam_step(t, 1e-2), 2)
        port.train_step(x, y, native.adam_step(t, 1e-2), 2)
    assert all(torch.equal(a, c) for a, c in zip(nw + nb, pw + pb))
    x = _batches(1, rows=300)[0][0]
    assert torch.equal(tuned.forward(x, 2), port.forward(x, 2))


@needs_kernels
def test_the_updates_division_by_its_bias_correction_gives_the_dividers_bits():
    # Adam divides sqrt(v) by sqrt(1 - beta2^t), the same for every weight of a step; the vector
    # update multiplies by its reciprocal and corrects the quotient with two fused multiply-adds.
    # Every significand of x (three binades: the quotient's bits do not depend on x's exponent) and
    # inf and NaN, against the divider, for the first 300 steps' constants and every 499th to 50,380.
    lib = native.library()
    if lib.lt_constant_division_mismatches(0.5, 0, 0) < 0:
        pytest.skip("built without AVX-512: the update divides")
    steps = list(range(1, 301)) + list(range(301, 50_381, 499))
    for t in steps:
        b = native.adam_step(t, 1e-3).bias_correction2_sqrt  # the float32 the kernel gets
        assert lib.lt_constant_division_mismatches(b, -1, 1) == 0, f"step {t}, b = {b!r}"
    for b in (1.0, 0.75, float(torch.finfo(torch.float32).tiny) ** 0.25):  # other betas' corrections
        assert lib.lt_constant_division_mismatches(b, -1, 1) == 0, f"b = {b!r}"


@needs_kernels
def test_bad_input_names_the_field():
    w, b, masks = _net(2)
    with pytest.raises(ValueError, match="layer 1 biases"):
        native.FcStack(w, [b[0], b[1][:, :3], b[2]])
    with pytest.raises(ValueError, match="layer 0 mask"):
        native.FcStack(w, b, masks=[m.bool() for m in masks])
    with pytest.raises(ValueError, match=r"FcStack\.masks: 2 entries for 3 layers"):
        native.FcStack(w, b, masks=masks[:2])
    with pytest.raises(ValueError, match="layer 1 weights"):
        native.FcStack([w[0], w[2], w[1]], b)
    stack = native.FcStack(w, b, exp_avg_w=_zeros(w), exp_avg_sq_w=_zeros(w), exp_avg_b=_zeros(b),
                            exp_avg_sq_b=_zeros(b))
    x, y = _batches(1)[0]
    with pytest.raises(ValueError, match="^x: "):
        stack.train_step(x[:, :10], y, native.adam_step(1, 0.1), 1)
    with pytest.raises(ValueError, match="^y: "):
        stack.train_step(x, y.int(), native.adam_step(1, 0.1), 1)
    with pytest.raises(ValueError, match="without Adam's moments"):
        native.FcStack(w, b).train_step(x, y, native.adam_step(1, 0.1), 1)


def _drive(chooser, cost, calls):
    """The options ``chooser`` picks over ``calls`` calls that each take ``cost[option]`` seconds."""
    used = []
    for _ in range(calls):
        option = chooser.choice()
        used.append(option)
        chooser.record(option, cost[option])
    return used


def test_faster_of_tries_each_option_then_keeps_the_faster_and_tries_again():
    chooser = native.FasterOf(("team", "solo"), trial=3, keep=4)
    assert _drive(chooser, {"team": 1.0, "solo": 2.0}, 3 + 3 + 4) == ["team"] * 3 + ["solo"] * 3 + ["team"] * 4
    # the machine got busy: sharing a run between threads got slow
    assert _drive(chooser, {"team": 5.0, "solo": 2.0}, 3 + 3 + 2) == ["team"] * 3 + ["solo"] * 3 + ["solo"] * 2


@needs_kernels
def test_a_stack_gets_the_same_bits_however_the_threads_share_it_and_whichever_way_the_chooser_goes():
    # three runs on two threads: one each and the third by both, one each and the third by one,
    # all three by both, and the chooser switching between those every other step
    w0, b0, masks = _net(3)
    results = []
    for share in ("leftover", "none", "all", None):
        w, b, stack = _stack(w0, b0, masks)
        stack._sharing[2] = native.FasterOf(native.SHARE_WAYS, trial=1, keep=2)  # switches often
        for t, (x, y) in enumerate(_batches(7), start=1):
            stack.train_step(x, y, native.adam_step(t, 1e-2), 2, share=share)
        results.append(w + b)
    for other in results[1:]:
        assert all(torch.equal(a, c) for a, c in zip(results[0], other))


def _a_call_a_step_and_one_call(w0, b0, masks, batches, threads=2):
    """The same runs stepped on ``batches`` one call a step and in one call (leftover runs shared
    by the ``threads``); returns both stacks' weights and biases, the second stack and its inputs."""
    xs, ys = torch.stack([x for x, _ in batches]), torch.stack([y for _, y in batches])
    adam = [native.adam_step(t, 1e-2) for t in range(1, len(batches) + 1)]
    one_w, one_b, one = _stack(w0, b0, masks)
    for (x, y), a in zip(batches, adam):
        one.train_step(x, y, a, threads, share="leftover")
    many_w, many_b, many = _stack(w0, b0, masks)
    many.train_steps(xs, ys, adam, threads, share="leftover")
    return one_w + one_b, many_w + many_b, many, xs, ys, adam


@needs_kernels
def test_several_steps_in_one_call_equal_one_call_a_step():
    # Five runs on two threads (one left over, shared by both): four steps in one call, with the
    # batches shared by all runs or each run's own (in a larger block), against four calls.
    w0, b0, masks = _net(5)
    one, many_params, many, xs, ys, adam = _a_call_a_step_and_one_call(w0, b0, masks, _batches(4))
    # each run's own batches: run k gets batch order rolled by k, in a block with room around it
    block_x = torch.zeros(5, 6, *xs.shape[1:])
    block_y = torch.zeros(5, 6, ys.shape[1], dtype=torch.int64)
    for k in range(5):
        block_x[k, 1:5], block_y[k, 1:5] = xs.roll(k, 0), ys.roll(k, 0)
    own_w, own_b, own = _stack(w0, b0, masks)
    own.train_steps(block_x[:, 1:5], block_y[:, 1:5], adam, 2, share="none")
    for a, c in zip(one, many_params):
        assert torch.equal(a, c)
    for k in (0, 3):  # run k alone, stepped on its rolled order
        w, b, alone = _stack([t[k:k + 1] for t in w0], [t[k:k + 1] for t in b0],
                             [m[k:k + 1].contiguous() for m in masks])
        alone.train_steps(xs.roll(k, 0), ys.roll(k, 0), adam, 1)
        for a, c in zip(own_w + own_b, w + b):
            assert torch.equal(a[k:k + 1], c), k
    with pytest.raises(ValueError, match="^x: .* for 3 steps"):
        many.train_steps(xs, ys, adam[:3], 2)


@needs_kernels
def test_more_steps_in_one_call_than_it_holds_batch_views_for():
    # 35 steps shared by three runs (one left over, shared by both threads): views are held for 32
    # batches at a time, so the call takes them in two groups
    w0, b0, masks = _net(3)
    one, many, _, _, _, _ = _a_call_a_step_and_one_call(w0, b0, masks, _batches(35, rows=5))
    for a, c in zip(one, many):
        assert torch.equal(a, c)


@needs_kernels
def test_forward_ways_give_the_same_bits_on_pruned_networks():
    """Each layer over its input's nonzero entries, over its kept weights (activations passed on
    with the images in vector lanes), or the cheaper per layer and block, which mixes the two
    layouts: the same sums in the same order (the terms one way skips are exact zeros), so the
    same values -- on MNIST-like sparse images, at kept fractions across a 24-round figure, with
    none kept, and with layers kept so unevenly that the cheaper way changes from layer to layer."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(700, 784, generator=gen) * (torch.rand(700, 784, generator=gen) < 0.2)
    uneven = [(1.0, 0.005, 1.0), (0.005, 1.0, 0.005), (0.005, 0.005, 1.0), (0.3, 0.01, 0.02)]
    for keep in [(k, k, k) for k in (1.0, 0.5, 0.2, 0.05, 0.005, 0.0)] + uneven:
        weights = []
        for (n_in, n_out), kept in zip(((784, 300), (300, 100), (100, 10)), keep):
            w = torch.randn(3, n_out, n_in, generator=gen) * 0.05
            weights.append(native.input_major(w * (torch.rand(w.shape, generator=gen) < kept)))
        biases = [torch.randn(3, w.shape[2], generator=gen) * 0.1 for w in weights]
        stack = native.FcStack(weights, biases)
        logits = {way: stack.forward(x, 2, way) for way in native.FORWARD_WAYS}
        assert torch.equal(logits["inputs"], logits["weights"]), keep
        assert torch.equal(logits["auto"], logits["inputs"]), keep
        expected = x
        for i, (w, b) in enumerate(zip(weights, biases)):  # the same function, up to rounding
            expected = torch.einsum("bi,kio->kbo", expected, w) + b.unsqueeze(1) if i == 0 else \
                torch.baddbmm(b.unsqueeze(1), expected, w)
            expected = expected.clamp_min(0) if i < 2 else expected
        assert torch.allclose(logits["auto"], expected, atol=1e-4), keep
    with pytest.raises(ValueError, match="way: unknown value 'dense'"):
        stack.forward(x, 2, "dense")


def _train_ways(w0, b0, masks, batches, ways=native.TRAIN_WAYS, m0=None, threads=2):
    """Every way's weights, biases and moments after the batches, two steps a call."""
    out = {}
    for way in ways:
        w, b = [t.clone() for t in w0], [t.clone() for t in b0]
        mw = [t.clone() for t in m0] if m0 is not None else _zeros(w)
        moments = [mw, _zeros(w), _zeros(b), _zeros(b)]
        stack = native.FcStack(w, b, exp_avg_w=moments[0], exp_avg_sq_w=moments[1], exp_avg_b=moments[2],
                               exp_avg_sq_b=moments[3], masks=masks, live_in=[LIVE, None, None])
        for t in range(0, len(batches), 2):
            pair = batches[t:t + 2]
            xs, ys = torch.stack([x for x, _ in pair]), torch.stack([y for _, y in pair])
            stack.train_steps(xs, ys, [native.adam_step(t + 1 + j, 1e-2) for j in range(len(pair))], threads,
                              share="leftover", way=way)
        out[way] = w + b + [t for seq in moments for t in seq]
    return out


def _same(a, b):
    return all(torch.equal(s, t) for s, t in zip(a, b))


@needs_kernels
@pytest.mark.parametrize("keep", [1.0, 0.3, 0.08, 0.0])
def test_training_ways_give_the_same_bits(keep):
    """Over all weights, over the kept ones (forward by output, Adam over the vectors holding a kept
    weight) or each where it pays: the same sums and updates, so the same bits -- three runs on two
    threads (one stepped by both), batches of 70 images (two groups of vector lanes)."""
    w0, b0, masks = _net(3, keep=keep)
    got = _train_ways(w0, b0, masks, _batches(4, rows=70))
    assert _same(got["dense"], got["kept"]) and _same(got["dense"], got["auto"])
    moved = [not torch.equal(a, c) for a, c in zip(got["dense"][:3], w0)]
    assert any(moved) == (keep > 0)


@needs_kernels
@pytest.mark.parametrize("keep", [0.6, 0.05])
def test_rows_whose_input_is_zero_in_a_whole_batch_get_their_missed_updates_later(keep):
    """A first-layer row whose input is 0 in every image of a batch has a zero gradient; its Adam
    update (momentum still moves it) is deferred until a batch uses the row or the call ends, then
    applied step by step. Batches where about half the inputs are 0 throughout, for spans of 1-6
    steps: seven steps in one call, every way of sharing the threads and of treating pruned
    weights, equal the dense way stepped one call a step (which defers nothing past its step)."""
    w0, b0, masks = _net(3, keep=keep)
    gen = torch.Generator().manual_seed(7)
    batches = _batches(7)
    for x, _ in batches:
        x[:, torch.rand(DIMS[0], generator=gen) < 0.5] = 0
    deferred = sum(int((x[:, :LIVE] == 0).all(0).sum()) for x, _ in batches)
    assert deferred > 7 * LIVE // 3
    ref_w, ref_b, ref = _stack(w0, b0, masks)
    for t, (x, y) in enumerate(batches, start=1):
        ref.train_step(x, y, native.adam_step(t, 1e-2), 2, share="none", way="dense")
    xs, ys = torch.stack([x for x, _ in batches]), torch.stack([y for _, y in batches])
    adam = [native.adam_step(t, 1e-2) for t in range(1, 8)]
    for share in native.SHARE_WAYS:
        for way in ("auto", "kept"):
            w, b, stack = _stack(w0, b0, masks)
            stack.train_steps(xs, ys, adam, 2, share=share, way=way)
            assert all(torch.equal(a, c) for a, c in zip(ref_w + ref_b, w + b)), (share, way)
    six_w, _, six = _stack(w0, b0, masks)
    for t, (x, y) in enumerate(batches[:6], start=1):
        six.train_step(x, y, native.adam_step(t, 1e-2), 2, share="none", way="dense")
    idle = (batches[-1][0][:, :LIVE] == 0).all(0)
    idle = torch.cat([idle, torch.zeros(DIMS[0] - LIVE, dtype=torch.bool)])
    assert idle.any() and not torch.equal(six_w[0][:, idle], ref_w[0][:, idle])  # step 7 moved the rows it deferred


@needs_kernels
def test_training_ways_agree_where_pruned_weights_hold_frozen_values():
    """A mask-0 policy that freezes pruned weights: they hold nonzero values that the forward pass
    must add (and the update must leave); listing only the kept weights would lose them."""
    w0, b0, masks = _net(3, keep=0.1)
    gen = torch.Generator().manual_seed(5)
    frozen = [(torch.randn(t.shape, generator=gen) * 0.3) * (1 - m) for t, m in zip(w0, masks)]
    w_frozen = [t + f for t, f in zip(w0, frozen)]
    got = _train_ways(w_frozen, b0, masks, _batches(4))
    assert _same(got["dense"], got["kept"]) and _same(got["dense"], got["auto"])
    for w, f, m in zip(got["kept"][:3], frozen, masks):  # the frozen values stayed
        assert torch.equal(w * (1 - m), f)
    without = _train_ways(w0, b0, masks, _batches(4), ways=["kept"])["kept"]
    assert not torch.equal(without[3 + 2], got["kept"][3 + 2])  # the frozen values change the output bias


@needs_kernels
def test_a_layer_whose_pruned_weights_still_move_takes_the_dense_paths():
    """A pruned weight with a nonzero moment moves under the dense update (its gradient is masked,
    its moment is not): the kept way sees that and updates the layer densely, so the bits agree."""
    w0, b0, masks = _net(3, keep=0.1)
    m0 = _zeros(w0)
    m0[0][1, 2][masks[0][1, 2] == 0] = 0.5  # run 1, first layer, input 2
    got = _train_ways(w0, b0, masks, _batches(4), m0=m0)
    assert _same(got["dense"], got["kept"]) and _same(got["dense"], got["auto"])
    pruned = masks[0][1, 2] == 0
    assert not torch.equal(got["kept"][0][1, 2][pruned], w0[0][1, 2][pruned])  # they moved


@needs_kernels
def test_kept_way_gives_a_run_the_same_bits_alone_and_stacked():
    w0, b0, masks = _net(4, keep=0.1)
    batches = _batches(4)
    stacked = _train_ways(w0, b0, masks, batches, ways=["kept"])["kept"]
    for k in (0, 3):
        alone = _train_ways([t[k:k + 1] for t in w0], [t[k:k + 1] for t in b0],
                            [m[k:k + 1].contiguous() for m in masks], batches, ways=["kept"], threads=1)["kept"]
        assert _same([t[k:k + 1] for t in stacked], alone)


@needs_kernels
def test_train_way_is_checked():
    w, b, stack = _stack(*_net(1))
    x, y = _batches(1)[0]
    with pytest.raises(ValueError, match="way: unknown value 'weights'; allowed values: auto, dense, kept"):
        stack.train_step(x, y, native.adam_step(1, 1e-2), 1, way="weights")


def test_warm_up_loads_the_kernels_once_or_leaves_them_off(monkeypatch):
    from lt_core.backends import warm_up

    monkeypatch.setattr(native, "_library", None)  # as in a fresh process
    monkeypatch.setenv(native.ENV_SWITCH, "0")
    assert warm_up(background=False) is None and native._library is None  # switched off: nothing built
    monkeypatch.setenv(native.ENV_SWITCH, "1")
    thread = warm_up()
    thread.join(120)
    assert not thread.is_alive() and thread.daemon
    # where a compiler is at hand the library is loaded now; else it is refused once, and not tried again
    assert native._library is not None
    assert (native._library is False) == (shutil.which("cc") is None and shutil.which("gcc") is None)
