"""The training loop: K independent runs of one architecture trained in one vectorised step.

Each run has its own starting weights, mask, frozen values (mask-0 policies), data order (from its
seed) and early-stopping record; all runs share the architecture, learning rate, batch size and
schedule. Adam's state is elementwise, so stacking runs never couples them. K = 1 is a plain run.

Faithful to protocol section 2: Adam (beta1 0.9, beta2 0.999, eps 1e-8; PyTorch's form of the
update, which differs from TF's only in where eps enters), batch 60 drawn from a per-epoch
permutation with the last partial batch dropped, a fresh optimiser per call, evaluation of the full
train / val / test splits at iteration 0, every ``eval_every`` iterations and at the end, and the
early-stop accuracy = test accuracy at the evaluation point of minimum validation loss. The
weights kept for mask computation are those at the end of training.

Speed: the whole dataset lives on the device; a batch is one index into it (gathered a block at a
time, from the 8-bit pixels); no per-sample Python and no host-device synchronisation except at
evaluation points (and one read per epoch of the batches' input widths). On the CPU a fully
connected stack trains and evaluates in C (:class:`lt_core.kernels.FcStack`: the first layer's
products over each image's nonzero pixels only, Adam applied row by row as gradients are known, up
to a gathered block of steps per call with each run taking its steps in a row so that its weights
stay in the cache, runs left over after an even split between threads shared by all of them).
Elsewhere fully connected networks skip autograd (:func:`dense_gradients`) and compute their
first layer on the prefix of inputs that are nonzero in the batch (:class:`InputOrder`), and the
optimiser masks and updates in one pass (:mod:`lt_core.optim`). All of it is float32 arithmetic:
none of these changes what is computed, only the rounding of sums (and denormal Adam moments,
flushed to zero as TF did).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F

from . import kernels
from .data import Dataset, Split
from .events import EventCallback, RunStopped, StopToken, emit
from .models import Arch, forward
from .optim import StackAdam
from .seeding import generator
from .store import atomic_torch_save, torch_load

Tensor = torch.Tensor
SPLITS = ("train", "val", "test")


@dataclass
class RunSpec:
    """One run of a stack: where it starts, what it may change, and its data order."""

    label: str
    weights: Dict[str, Tensor]  # starting (underlying) weights
    biases: Dict[str, Tensor]
    masks: Dict[str, Tensor]
    seed: int  # data order
    frozen: Optional[Dict[str, Tensor]] = None  # fixed values of pruned weights (0 at kept positions)


@dataclass
class RunResult:
    label: str
    final_weights: Dict[str, Tensor]  # effective weights at the end: w * mask + frozen
    final_biases: Dict[str, Tensor]
    rows: List[dict]  # tidy metric rows
    evals: List[dict] = field(default_factory=list)  # one dict per evaluation point
    early_stop_iteration: int = 0
    early_stop_test_acc: float = float("nan")
    final_test_acc: float = float("nan")

    def summary(self) -> dict:
        return {"early_stop_iteration": self.early_stop_iteration,
                "early_stop_test_acc": self.early_stop_test_acc,
                "final_test_acc": self.final_test_acc}


def steps_per_epoch(n: int, batch_size: int) -> int:
    return n // batch_size


def epoch_order(seed: int, epoch: int, n: int) -> Tensor:
    """The training-set order of ``epoch`` for data seed ``seed``: runs sharing a seed share it."""
    return torch.randperm(n, generator=generator(seed, "data", epoch))


@dataclass
class InputOrder:
    """A fully connected first layer's inputs, reordered by how often they are nonzero in training.

    An input that is 0 in every image of a batch adds exact zeros to the first layer's outputs and
    gets an exactly zero weight gradient, so the layer's two matmuls need only the inputs that are
    nonzero somewhere in the batch. Sorted most-often-nonzero first, a batch's nonzero inputs all lie
    in a prefix of the order (MNIST, batch 60: about 610 of 784 inputs, where the span between the
    first and last nonzero pixel in the images' own order is about 700), and a prefix of a weight
    matrix is a view: the matmuls shrink without copying anything. The sums are the same sums
    without their zero terms; a trainer using the order permutes the first layer's weight columns
    in and back out, and nothing outside it sees the order.

    ``order``: input indices, most often nonzero first (ties in index order); ``inverse``: its
    inverse; ``data``: every split with its inputs in that order (shapes unchanged);
    ``last[split][i]``: image i's nonzero inputs all lie in the first ``last[split][i]`` positions;
    ``live``: how many inputs are nonzero in some training image (those past it never are).
    """

    order: Tensor
    inverse: Tensor
    data: Dataset
    last: Dict[str, Tensor]
    live: int

    def widths(self, split: str, batch: int) -> List[int]:
        """For each consecutive batch of ``split`` (evaluation), how many leading inputs it needs."""
        key = (split, batch)
        if key not in self._widths:
            last = self.last[split]
            self._widths[key] = [max(1, int(last[i:i + batch].max())) for i in range(0, len(last), batch)]
        return self._widths[key]

    def __post_init__(self) -> None:
        self._widths: Dict[tuple, List[int]] = {}

    @classmethod
    def of(cls, data: Dataset) -> "InputOrder":
        """The order of ``data`` (computed once per dataset object and kept)."""
        cached = _INPUT_ORDERS.get(id(data))
        if cached is not None and cached[0] is data:
            return cached[1]
        nonzero = data.train.x.reshape(len(data.train), -1) != 0
        order = torch.argsort(nonzero.sum(0), descending=True, stable=True)
        inverse = torch.argsort(order)

        splits, last = {}, {}
        for name, split in data.splits.items():
            x = split.x.reshape(len(split), -1).index_select(1, order)
            pixels = None if split.pixels is None else \
                split.pixels.reshape(len(split), -1).index_select(1, order).view(split.x.shape)
            splits[name] = Split(x=x.view(split.x.shape), y=split.y, pixels=pixels)
            nz = x != 0
            last[name] = torch.where(nz.any(1), nz.shape[1] - nz.flip(1).to(torch.uint8).argmax(1), 0)
        result = cls(order=order, inverse=inverse, last=last, live=max(1, int(last["train"].max())),
                     data=Dataset(name=data.name, **splits))
        _INPUT_ORDERS.clear()  # one dataset at a time, as lt_core.data keeps one resident
        _INPUT_ORDERS[id(data)] = (data, result)
        return result


_INPUT_ORDERS: Dict[int, tuple] = {}


class BatchOrder:
    """The training batches of K stacked runs, drawn by indexing the device-resident split.

    Epoch ``e`` of a run with data seed ``s`` visits the images in ``epoch_order(s, e, N)``, in
    batches of ``batch_size``, the last partial batch dropped. Calling it with an iteration gives
    ``(x, y)``: ``(B, ...)`` / ``(B,)`` when all runs share one seed (``shared``), else
    ``(K, B, ...)`` / ``(K, B)``. Images are gathered a block of about a thousand at a time (one
    ``index_select``; a batch is a view into the block): gathering many rows at once overlaps their
    memory reads, which 60 scattered rows per step cannot. When the split keeps its 8-bit
    ``pixels``, the block is gathered from those and divided by 255 -- the same floats, a quarter of
    the memory traffic.
    """

    block_rows = 1024

    def __init__(self, split: Split, seeds: List[int], batch_size: int, field_name: str = "batch_size",
                 last: Optional[Tensor] = None) -> None:
        self.split, self.batch_size, self.last = split, batch_size, last
        self.spe = steps_per_epoch(len(split), batch_size)
        if self.spe == 0:
            raise ValueError(f"{field_name}: {batch_size} is larger than the {len(split)} training images")
        self.shared = len(set(seeds)) == 1
        self.seeds = list(seeds[:1]) if self.shared else list(seeds)
        self._cache: Dict[int, tuple] = {}
        self.block = max(1, self.block_rows // batch_size)  # batches per gathered block
        self._block_key, self._block = None, None

    def _order(self, epoch: int) -> Tensor:
        if epoch not in self._cache:
            n = len(self.split)
            orders = torch.stack([epoch_order(s, epoch, n) for s in self.seeds])
            widths = None
            if self.last is not None:  # one host read per epoch, none per step
                used = orders[:, :self.spe * self.batch_size].reshape(len(self.seeds), self.spe, self.batch_size)
                widths = self.last.index_select(0, used.reshape(-1).to(self.last.device)) \
                    .view(used.shape).amax(dim=(0, 2)).tolist()
            self._cache = {epoch: (orders.to(self.split.x.device), widths)}
        return self._cache[epoch][0]

    def width(self, it: int) -> int:
        """How many leading inputs batch ``it`` needs (all its nonzero inputs lie in them); needs ``last``."""
        epoch, pos = divmod(it, self.spe)
        self._order(epoch)
        return max(1, self._cache[epoch][1][pos])

    def left_in_block(self, it: int) -> int:
        """How many batches from ``it`` on lie in the gathered block that holds batch ``it``."""
        pos = it % self.spe
        return min(pos - pos % self.block + self.block, self.spe) - pos

    def _gathered(self, it: int):
        """The gathered block that holds batch ``it`` (gathering it if need be): its images
        ``(K', rows, ...)``, labels ``(K', rows)`` and where batch ``it`` starts in it."""
        epoch, pos = divmod(it, self.spe)
        first, bs = pos - pos % self.block, self.batch_size
        if self._block_key != (epoch, first):
            idx = self._order(epoch)[:, first * bs:min(first + self.block, self.spe) * bs]
            x, y = self.split.x, self.split.y
            flat = idx.reshape(-1)  # index_select on 2-D rows: the fastest gather
            if self.split.pixels is not None:
                rows = self.split.pixels.reshape(len(x), -1).index_select(0, flat).to(x.dtype).div_(255.0)
            else:
                rows = x.reshape(len(x), -1).index_select(0, flat)
            xb = rows.view(*idx.shape, *x.shape[1:])
            self._block_key, self._block = (epoch, first), (xb, y.index_select(0, flat).view(idx.shape))
        return (*self._block, (pos - first) * bs)

    def span(self, it: int, n: int):
        """Batches ``it`` to ``it + n - 1`` (all in one block: ``n <= left_in_block(it)``) as views
        ``(n, B, ...)`` / ``(n, B)``, or ``(K, n, B, ...)`` / ``(K, n, B)`` when the runs' orders
        differ."""
        if not 1 <= n <= self.left_in_block(it):
            raise ValueError(f"BatchOrder.span: {n} batches from {it}; "
                             f"1 to {self.left_in_block(it)} lie in its block")
        xb, yb, lo = self._gathered(it)
        bs = self.batch_size
        x = xb[:, lo:lo + n * bs].view(xb.shape[0], n, bs, *xb.shape[2:])
        y = yb[:, lo:lo + n * bs].view(yb.shape[0], n, bs)
        return (x[0], y[0]) if self.shared else (x, y)

    def __call__(self, it: int):
        xb, yb, lo = self._gathered(it)
        hi = lo + self.batch_size
        if self.shared:
            return xb[0, lo:hi], yb[0, lo:hi]
        return xb[:, lo:hi], yb[:, lo:hi]


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when present, else CPU. On CUDA, TF32 is switched off for matmuls and
    convolutions: every run computes in full float32, as on the CPU."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("TrainConfig.device: 'cuda' was requested but no CUDA device is available; "
                         "allowed values here: auto, cpu")
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    return torch.device(device)


def available_memory(device: torch.device) -> int:
    """Bytes free for new tensors on ``device`` (CUDA: free device memory; CPU: MemAvailable)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 << 30


def activation_elements(arch: Arch) -> int:
    """Activations one sample leaves for the backward pass (layer outputs, pooled maps)."""
    c, h, w = arch.input_shape
    total = c * h * w
    for layer in arch.layers:
        if layer.kind == "conv":
            total += 2 * layer.shape[0] * h * w  # conv output and its ReLU
            if layer.pool_after:
                h, w = h // 2, w // 2
                total += layer.shape[0] * h * w
        else:
            total += 2 * layer.shape[0]
    return total


def run_memory_bytes(arch: Arch, batch_size: int) -> int:
    """Memory one run of a stack needs: parameter-sized tensors (weights, mask, frozen values,
    gradient, Adam's two moments, effective weights and their gradient) plus activations of a
    training batch and of an evaluation batch."""
    params = arch.num_weights + sum(layer.shape[0] for layer in arch.layers)
    acts = activation_elements(arch) * (2 * batch_size + eval_batch_size(arch, "cuda"))
    return 4 * (8 * params + acts)


def auto_stack_size(arch: Arch, device: torch.device, n_runs: int, batch_size: int = 60,
                    memory_fraction: float = 0.5) -> int:
    """How many runs to train at once: as many as fit in ``memory_fraction`` of the free memory."""
    fit = int(available_memory(torch.device(device)) * memory_fraction // run_memory_bytes(arch, batch_size))
    return max(1, min(n_runs, fit))


def eval_batch_size(arch: Arch, device: Optional[torch.device] = None) -> int:
    """Images per evaluation batch: large on a GPU; on a CPU, small enough that a stack's
    activations stay in cache (1,000 for FC: a third faster than 10,000 for nine runs)."""
    if not arch.fully_connected:
        return 1000
    return 10000 if device is not None and torch.device(device).type == "cuda" else 1000


@torch.no_grad()
def evaluate(arch: Arch, weights: Dict[str, Tensor], biases: Dict[str, Tensor], split: Split,
             batch: Optional[int] = None, widths: Optional[List[int]] = None) -> tuple:
    """Mean cross-entropy and accuracy of each of the K stacked networks on ``split`` (tensors (K,)).

    Fully connected networks on the CPU are evaluated by the C kernel (:mod:`lt_core.kernels`),
    elsewhere by PyTorch in batches of ``batch``; there ``widths``: per batch, how many leading
    inputs hold all its nonzero ones (see :class:`InputOrder`)."""
    batch = batch or eval_batch_size(arch, split.x.device)
    k = next(iter(weights.values())).shape[0]
    loss = torch.zeros(k, dtype=torch.float64, device=split.x.device)
    correct = torch.zeros(k, dtype=torch.float64, device=split.x.device)
    fc_stack = None
    if arch.fully_connected and split.x.device.type == "cpu" and kernels.library() is not None:
        # input-major copies of the weights (none for a trainer's, which are stored that way)
        names = arch.layer_names
        fc_stack = kernels.FcStack([kernels.input_major(weights[n].detach(), torch.float32) for n in names],
                                   [biases[n].detach().float().contiguous() for n in names])
        batch = max(batch, 10000)  # the kernel blocks the images itself
    for j, start in enumerate(range(0, len(split), batch)):
        x, y = split.x[start:start + batch], split.y[start:start + batch]
        if fc_stack is not None:
            logits = fc_stack.forward(x, kernels.thread_count())
        elif arch.fully_connected:
            logits = dense_forward(arch, weights, biases, x, width=None if widths is None else widths[j])[0]
        else:
            logits = forward(arch, weights, biases, x)
        target = y.expand(k, -1)
        loss += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
                                reduction="none").view(k, -1).sum(1, dtype=torch.float64)
        correct += (logits.argmax(-1) == target).sum(1, dtype=torch.float64)
    n = len(split)
    return loss / n, correct / n


@torch.no_grad()
def dense_forward(arch: Arch, weights: Dict[str, Tensor], biases: Dict[str, Tensor], x: Tensor,
                  width: Optional[int] = None):
    """Logits ``(K, B, 10)`` of an all-dense network, and the input of each layer.

    The same function as :func:`lt_core.models.forward`, laid out for speed: a batch shared by all
    runs (``x`` of shape (B, C, H, W)) goes through all K first layers as one wide matmul, and
    every activation is kept contiguous as (K, B, F) (strided layouts make the elementwise kernels
    several times slower). ``width``: the batch's inputs beyond the first ``width`` are all 0 (see
    :class:`InputOrder`): the first layer computes with its leading ``width`` weight columns only.
    The layer inputs are ``(B, width)`` for a shared first input, else ``(K, B, F)``.
    """
    k = next(iter(weights.values())).shape[0]
    shared = x.dim() == 4
    b = x.shape[0] if shared else x.shape[1]
    layers = arch.layers
    last = len(layers) - 1
    acts = []
    h = x.reshape(b, -1) if shared else x.reshape(k, b, -1)
    if width is not None:
        h = h[..., :width]
    for i, layer in enumerate(layers):
        acts.append(h)
        w, bias = weights[layer.name], biases[layer.name]
        if i == 0 and width is not None:
            w = w[..., :width]
        if h.dim() == 2:  # shared input: one (B, K*F) matmul against all K layers
            z = torch.mm(h, w.reshape(-1, w.shape[-1]).t()).view(b, k, -1).transpose(0, 1)
            z = torch.add(z, bias.unsqueeze(1), out=torch.empty(k, b, w.shape[1], dtype=z.dtype, device=z.device))
        else:
            z = torch.baddbmm(bias.unsqueeze(1), h, w.transpose(1, 2))
        h = z.clamp_min_(0) if i < last else z
    return h, acts


@torch.no_grad()
def dense_gradients(arch: Arch, weights: Dict[str, Tensor], biases: Dict[str, Tensor], x: Tensor, y: Tensor,
                    out: Optional[tuple] = None, width: Optional[int] = None):
    """Gradients of the summed per-run mean cross-entropy for an all-dense network, by hand.

    The same numbers as autograd through :func:`lt_core.models.forward` (tested), without the
    autograd bookkeeping that dominates a small network's step: :func:`dense_forward`, softmax
    minus one-hot over the batch, then one matmul per weight gradient (a shared batch is not copied
    per run). ``out``: ``(grads_w, grads_b)`` dicts of buffers to write into (reusing them saves a
    large allocation, and its page faults, every step).

    ``width``: the batch's inputs beyond the first ``width`` are all 0 (see :class:`InputOrder`):
    the first layer computes with the leading ``width`` columns of its weights only, and its weight
    gradient comes back as ``(K, out, width)`` -- the gradient of the other columns is exactly 0.
    """
    k = next(iter(weights.values())).shape[0]
    b = x.shape[0] if x.dim() == 4 else x.shape[1]
    layers = arch.layers
    last = len(layers) - 1
    h, acts = dense_forward(arch, weights, biases, x, width=width)
    target = y.expand(k, -1) if y.dim() == 1 else y
    g = torch.softmax(h, dim=-1)
    g.scatter_add_(-1, target.unsqueeze(-1), torch.full_like(target, -1, dtype=g.dtype).unsqueeze(-1))
    g.div_(b)  # d(mean CE)/d logits, per run
    if out is None:
        out = ({n: torch.empty_like(w) for n, w in weights.items()},
               {n: torch.empty_like(v) for n, v in biases.items()})
    grads_w, grads_b = dict(out[0]), out[1]  # (a narrowed first-layer view replaces its buffer)
    for i in range(last, -1, -1):
        layer, a = layers[i], acts[i]
        torch.sum(g, 1, out=grads_b[layer.name])
        buf = grads_w[layer.name]
        if a.shape[-1] != buf.shape[-1]:  # the first layer's leading columns, in the same memory
            buf = grads_w[layer.name] = buf.view(-1)[:k * g.shape[-1] * a.shape[-1]].view(k, g.shape[-1], a.shape[-1])
        torch.bmm(g.transpose(1, 2), a.expand(k, *a.shape) if a.dim() == 2 else a, out=buf)
        if i > 0:  # back through layer i and the ReLU before it (a > 0 where that ReLU let through)
            g = torch.ops.aten.threshold_backward(torch.bmm(g, weights[layer.name]), a, 0)
    return grads_w, grads_b


class StepLoop:
    """The driver shared by the training loops: resume from a checkpoint, cooperative stop,
    evaluation every ``eval_every`` steps and at the end, periodic checkpoints, progress bar.

    Subclasses provide ``step(it)``, ``_evaluate(it)``, ``_save_checkpoint(it)`` and
    ``_load_checkpoint()`` and set ``iterations``, ``eval_every``, ``stop``, ``checkpoint``,
    ``checkpoint_seconds``, ``progress``, ``evals`` and ``start_iteration``.
    """

    desc = "training"
    eval_at_start = True

    def max_steps(self, it: int) -> int:
        """How many steps from ``it`` on :meth:`steps` can take in one go."""
        return 1

    def steps(self, it: int, n: int) -> None:
        """Steps ``it`` to ``it + n - 1`` (``n <= max_steps(it)``)."""
        for j in range(n):
            self.step(it + j)

    def loop(self) -> None:
        self._load_checkpoint()
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=self.iterations, initial=self.start_iteration, unit="it", leave=False,
                       desc=self.desc, dynamic_ncols=True)
        it = self.start_iteration
        if it == 0 and self.eval_at_start and not self.evals[0]:
            self._evaluate(0)
        last_ckpt = time.monotonic()
        try:
            while it < self.iterations:
                if self.stop is not None and self.stop.requested:
                    self._save_checkpoint(it)
                    raise RunStopped(f"{self.desc}: stopped at iteration {it}")
                # as many steps as one call takes, up to the next evaluation
                next_eval = min(self.iterations, (it // self.eval_every + 1) * self.eval_every)
                n = max(1, min(self.max_steps(it), next_eval - it))
                self.steps(it, n)
                before, it = it, it + n
                if it % self.eval_every == 0 or it == self.iterations:
                    self._evaluate(it)
                    if bar is not None:
                        bar.set_postfix(test_acc=f"{self.evals[0][-1]['test_acc']:.4f}", refresh=False)
                    if self.checkpoint is not None and time.monotonic() - last_ckpt > self.checkpoint_seconds:
                        self._save_checkpoint(it)
                        last_ckpt = time.monotonic()
                if bar is not None and it // 50 != before // 50:
                    bar.update(it - bar.n)
        finally:
            if bar is not None:
                bar.close()


class Trainer(StepLoop):
    """Trains a stack of runs; see the module docstring.

    ``checkpoint``: a file to resume from and to write when stopped (and every
    ``checkpoint_seconds``); resuming yields the same numbers as an uninterrupted run.
    """

    def __init__(self, arch: Arch, data: Dataset, runs: List[RunSpec], *, lr: float, batch_size: int,
                 iterations: int, eval_every: int = 100, eval_train: bool = True, round_index: int = 0,
                 on_event: Optional[EventCallback] = None, stop: Optional[StopToken] = None,
                 checkpoint: Optional[Path] = None, checkpoint_seconds: float = 120.0,
                 progress: bool = False) -> None:
        if not runs:
            raise ValueError("Trainer: no runs to train")
        self.arch, self.data, self.runs = arch, data, runs
        self.lr, self.batch_size, self.iterations = lr, batch_size, iterations
        self.eval_every, self.eval_train, self.round = eval_every, eval_train, round_index
        self.on_event, self.stop = on_event, stop
        self.checkpoint, self.checkpoint_seconds, self.progress = checkpoint, checkpoint_seconds, progress
        self.device = data.train.x.device
        self.dense_only = arch.fully_connected
        # A fully connected network trains on inputs sorted by how often they are nonzero, so that
        # each batch's first-layer matmuls run on the prefix that holds its nonzero inputs; the
        # first layer's weight columns follow the same order inside the trainer (InputOrder).
        self.inputs = InputOrder.of(data) if self.dense_only else None
        if self.inputs is not None:
            self.data = self.inputs.data
        self.first = arch.layers[0].name
        self.batch = BatchOrder(self.data.train, [r.seed for r in runs], batch_size, "TrainConfig.batch_size",
                                last=None if self.inputs is None else self.inputs.last["train"])
        self.spe, self.shared_order = self.batch.spe, self.batch.shared
        names = arch.layer_names
        dev = self.device
        # On the CPU a fully connected stack trains in C, many steps a call (lt_core.kernels.FcStack),
        # which reads each weight matrix input-major: (K, in, out) in memory, rows padded to whole
        # 64-byte lines (kernels.input_major), seen here through its (K, out, in) transpose, so that
        # everything else reads the usual layout.
        self.kernel = self.dense_only and dev.type == "cpu" and kernels.library() is not None

        def stack(tensors, name):
            t = self._from_canonical(name, torch.stack(tensors).to(dev, torch.float32))
            return kernels.input_major(t).transpose(1, 2) if self.kernel else t

        # A pruned weight's gradient is masked inside the optimiser's update (from zero moments, so
        # its update is exactly 0): it keeps its starting value for good. That value is 0, or the
        # run's frozen value (mask-0 policies), so the weights the network computes with are
        # w * mask + frozen throughout, with no per-step masking.
        m = {name: stack([r.masks[name] for r in runs], name) for name in names}
        self.w = {name: stack([r.weights[name] for r in runs], name) for name in names}
        self.b = {name: torch.stack([r.biases[name] for r in runs]).to(dev, torch.float32) for name in names}
        masked = not all(bool(t.all()) for t in m.values())
        frozen = any(r.frozen is not None for r in runs)
        with torch.no_grad():
            for name in names:
                self.w[name].mul_(m[name])
                if frozen:
                    self.w[name].add_(stack([r.frozen[name] if r.frozen is not None else
                                             torch.zeros(arch.layer(name).shape) for r in runs], name))
                self.w[name].requires_grad_()
                self.b[name].requires_grad_()
        params = [self.w[n] for n in names] + [self.b[n] for n in names]
        # first-layer weights of inputs that are 0 in every training image never move
        live = [None if self.inputs is None else self.inputs.live] + [None] * (len(params) - 1)
        # the masks go to whichever steps: the optimiser, or the kernel (which steps the very
        # tensors the optimiser holds: its moments serve the kernel and the checkpoints alike)
        step_masks = masked and not self.kernel
        self.opt = StackAdam(params, lr=lr, masks=[m[n] if step_masks else None for n in names] + [None] * len(names),
                             live_cols=live)
        self.fc_stack = None
        if self.kernel:
            n = len(names)
            self.fc_stack = kernels.FcStack(
                [self.w[k].detach().transpose(1, 2) for k in names], [self.b[k].detach() for k in names],
                exp_avg_w=[t.transpose(1, 2) for t in self.opt.exp_avg[:n]], exp_avg_b=self.opt.exp_avg[n:],
                exp_avg_sq_w=[t.transpose(1, 2) for t in self.opt.exp_avg_sq[:n]], exp_avg_sq_b=self.opt.exp_avg_sq[n:],
                masks=[kernels.input_major(m[k], torch.uint8) for k in names] if masked else None,
                live_in=live[:n])
            self._threads = kernels.thread_count()
        self.evals: List[List[dict]] = [[] for _ in runs]
        self.start_iteration = 0
        self.desc = f"round {round_index}"
        self._grad_buffers = None

    # -- pieces ------------------------------------------------------------------------------
    def _from_canonical(self, name: str, t: Tensor) -> Tensor:
        """Layer ``name``'s stacked tensor with its input columns in the trainer's order."""
        if self.inputs is None or name != self.first:
            return t
        return t.index_select(-1, self.inputs.order.to(t.device)).contiguous()

    def _to_canonical(self, name: str, t: Tensor) -> Tensor:
        """The inverse of :meth:`_from_canonical`: columns back in the inputs' own order."""
        if self.inputs is None or name != self.first:
            return t
        return t.index_select(-1, self.inputs.inverse.to(t.device))

    def _evaluate(self, it: int) -> None:
        eff = {n: t.detach() for n, t in self.w.items()}  # pruned entries hold their 0 or frozen value
        b = {n: t.detach() for n, t in self.b.items()}
        results = {}
        for split in SPLITS:
            if split == "train" and not self.eval_train:
                continue
            widths = None
            if self.inputs is not None:
                widths = self.inputs.widths(split, eval_batch_size(self.arch, self.device))
            loss, acc = evaluate(self.arch, eff, b, self.data.splits[split], widths=widths)
            results[split] = (loss.tolist(), acc.tolist())
        for i, run in enumerate(self.runs):
            record = {"iteration": it}
            for split, (loss, acc) in results.items():
                record[f"{split}_loss"] = loss[i]
                record[f"{split}_acc"] = acc[i]
            self.evals[i].append(record)
            emit(self.on_event, event="eval", run=run.label, round=self.round, iterations=self.iterations,
                 **record)

    def _save_checkpoint(self, it: int) -> None:
        if self.checkpoint is None:
            return
        opt = self.opt.state_dict()
        for key in ("exp_avg", "exp_avg_sq"):  # params are [weights..., biases...]: entry 0 is the first layer's
            opt[key][0] = self._to_canonical(self.first, opt[key][0])
        atomic_torch_save(self.checkpoint, {
            "iteration": it, "labels": [r.label for r in self.runs],
            "w": {n: self._to_canonical(n, t.detach()).cpu() for n, t in self.w.items()},
            "b": {n: t.detach().cpu() for n, t in self.b.items()},
            "opt": opt, "evals": self.evals,
        })

    def _load_checkpoint(self) -> bool:
        if self.checkpoint is None or not Path(self.checkpoint).is_file():
            return False
        try:
            state = torch_load(self.checkpoint)
            if state["labels"] != [r.label for r in self.runs] or \
                    not {"exp_avg", "exp_avg_sq", "steps"} <= set(state["opt"]):
                return False  # another stack's, or an older format: start the round afresh
        except Exception:  # unreadable: start the round afresh
            return False
        with torch.no_grad():
            for n in self.w:
                self.w[n].copy_(self._from_canonical(n, state["w"][n]))
                self.b[n].copy_(state["b"][n])
        opt = state["opt"]
        for key in ("exp_avg", "exp_avg_sq"):
            opt[key][0] = self._from_canonical(self.first, opt[key][0])
        self.opt.load_state_dict(opt)
        self.evals = state["evals"]
        self.start_iteration = state["iteration"]
        emit(self.on_event, event="stage", stage="resumed", run=self.runs[0].label,
             runs=[r.label for r in self.runs], round=self.round, iteration=self.start_iteration)
        return True

    def max_steps(self, it: int) -> int:
        """The C kernel takes the steps left in the gathered block of batches (up to 17 of batch
        60) in one call; elsewhere one step a call."""
        return self.batch.left_in_block(it) if self.fc_stack is not None else 1

    def steps(self, it: int, n: int) -> None:
        if self.fc_stack is None:
            super().steps(it, n)
            return
        x, y = self.batch.span(it, n)
        adam = [kernels.adam_step(self.opt.t + 1 + j, self.lr) for j in range(n)]
        self.opt.t += n  # the kernel steps the optimiser's tensors
        self.fc_stack.train_steps(x.reshape(*x.shape[:-3], -1), y, adam, self._threads)

    def step(self, it: int) -> None:
        """One training step of every run, on batch ``it`` of each run's data order."""
        k = len(self.runs)
        x, y = self.batch(it)
        if self.fc_stack is not None:
            self.opt.t += 1  # the kernel steps the optimiser's tensors
            self.fc_stack.train_step(x.reshape(*x.shape[:-3], -1), y, kernels.adam_step(self.opt.t, self.lr),
                                     self._threads)
            return
        if self.dense_only:
            if self._grad_buffers is None:
                self._grad_buffers = ({n: torch.empty_like(w) for n, w in self.w.items()},
                                      {n: torch.empty_like(v) for n, v in self.b.items()})
            width = self.batch.width(it) if self.inputs is not None else None
            grads_w, grads_b = dense_gradients(self.arch, self.w, self.b, x, y, out=self._grad_buffers, width=width)
            # the optimiser masks pruned weights' gradients as it updates (and takes the first
            # layer's narrowed gradient as it is)
            self.opt.step([grads_w[n] for n in self.w] + [grads_b[n] for n in self.b])
            return
        logits = forward(self.arch, self.w, self.b, x)
        target = y if not self.shared_order else y.expand(k, -1)
        # sum over runs of each run's mean loss: every run gets exactly its own gradient
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1)) * k
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> List[RunResult]:
        self.loop()
        names = list(self.w)
        results = []
        for i, run in enumerate(self.runs):
            evals = self.evals[i]
            best = min(range(len(evals)), key=lambda j: (evals[j]["val_loss"], j))
            rows = [{"run": run.label, "round": self.round, "iteration": e["iteration"], "split": key.split("_")[0],
                     "metric": "loss" if key.endswith("loss") else "accuracy", "value": value}
                    for e in evals for key, value in e.items() if key != "iteration"]
            results.append(RunResult(
                label=run.label,
                final_weights={n: self._to_canonical(n, self.w[n][i].detach()).cpu().clone() for n in names},
                final_biases={n: self.b[n][i].detach().cpu().clone() for n in names},
                rows=rows, evals=evals, early_stop_iteration=evals[best]["iteration"],
                early_stop_test_acc=evals[best]["test_acc"], final_test_acc=evals[-1]["test_acc"]))
        return results


def train_runs(arch: Arch, data: Dataset, runs: List[RunSpec], **kwargs) -> List[RunResult]:
    """Train a stack of runs (see :class:`Trainer`) and return one :class:`RunResult` per run."""
    return Trainer(arch, data, runs, **kwargs).run()
