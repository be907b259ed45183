"""The ``dense_fc`` backend: fully connected stacks with hand-written gradients, no autograd.

A small network's step is dominated by autograd's bookkeeping, so :func:`dense_gradients`
computes the gradients of the reference backend's loss by hand (the same numbers to rounding,
tested). The first layer's inputs are sorted by how often they are nonzero (:class:`InputOrder`),
so that each batch's first-layer matmuls run on the prefix of inputs that holds all its nonzero
ones, and the optimiser masks and updates in one pass (:class:`lt_core.backends.optim.StackAdam`).
It trains fully connected networks wherever the C kernel does not (CUDA, ``LT_KERNELS=0``, no
compiler).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch

from ..batches import BatchOrder
from ..data import Dataset, Split
from ..devices import eval_batch_size
from ..models import Arch
from .base import Backend, RunSpec, split_metrics
from .input_order import InputOrder

Tensor = torch.Tensor


@torch.no_grad()
def dense_forward(arch: Arch, weights: Dict[str, Tensor], biases: Dict[str, Tensor], x: Tensor,
                  width: Optional[int] = None) -> Tuple[Tensor, List[Tensor]]:
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


class DenseFcBackend(Backend):
    """Fully connected stacks: hand-written gradients on inputs in :class:`InputOrder`."""

    name = "dense_fc"

    @classmethod
    def unavailable(cls, arch: Arch, device: torch.device) -> Optional[str]:
        if not arch.fully_connected:
            return f"{arch.name} has convolutional layers"
        return None if arch.activation == "relu" else f"it computes ReLU networks, not {arch.activation}"

    def __init__(self, arch: Arch, data: Dataset, runs: Sequence[RunSpec], lr: float) -> None:
        self.inputs = InputOrder.of(data)
        super().__init__(arch, self.inputs.data, runs, lr)
        self._grads = None  # gradient buffers, reused every step
        self._widths = (None, [])  # (epoch, its batches' widths)

    def live_inputs(self) -> Optional[int]:
        return self.inputs.live

    def _from_canonical(self, name: str, t: Tensor) -> Tensor:
        if name != self.arch.layers[0].name:
            return t
        return t.index_select(-1, self.inputs.order.to(t.device)).contiguous()

    def _to_canonical(self, name: str, t: Tensor) -> Tensor:
        if name != self.arch.layers[0].name:
            return t
        return t.index_select(-1, self.inputs.inverse.to(t.device))

    def width(self, batches: BatchOrder, it: int) -> int:
        """How many leading inputs batch ``it`` needs (all its nonzero inputs lie in them), for
        every run's batch; found for a whole epoch at once (one host read per epoch)."""
        epoch, pos = divmod(it, batches.spe)
        if self._widths[0] != epoch:
            last = self.inputs.last["train"]
            used = batches.epoch_indices(epoch)[:, :batches.spe * batches.batch_size]
            used = used.reshape(len(used), batches.spe, batches.batch_size)
            self._widths = (epoch, last.index_select(0, used.reshape(-1).to(last.device))
                            .view(used.shape).amax(dim=(0, 2)).tolist())
        return max(1, self._widths[1][pos])

    def steps(self, batches: BatchOrder, it: int, n: int) -> None:
        for j in range(n):
            x, y = batches(it + j)
            if self._grads is None:
                self._grads = ({name: torch.empty_like(w) for name, w in self.w.items()},
                               {name: torch.empty_like(b) for name, b in self.b.items()})
            grads_w, grads_b = dense_gradients(self.arch, self.w, self.b, x, y, out=self._grads,
                                               width=self.width(batches, it + j))
            # the optimiser masks pruned weights' gradients as it updates (and takes the first
            # layer's narrowed gradient as it is)
            self.opt.step([grads_w[name] for name in self.w] + [grads_b[name] for name in self.b])

    def evaluate(self, split: str, runs=None):
        widths = self.inputs.widths(split, eval_batch_size(self.arch, self.device))
        w, b = self.chosen(runs)
        return self.evaluate_weights(self.arch, w, b, self.data.splits[split], widths=widths)

    @staticmethod
    def evaluate_weights(arch: Arch, weights: Dict[str, Tensor], biases: Dict[str, Tensor], split: Split,
                         batch: Optional[int] = None, widths: Optional[List[int]] = None):
        """See :meth:`Backend.evaluate_weights`; ``widths``: per batch, how many leading inputs
        hold all its nonzero ones (inputs in :class:`InputOrder`)."""
        k = next(iter(weights.values())).shape[0]
        return split_metrics(split, k, batch or eval_batch_size(arch, split.x.device),
                             lambda j, x: dense_forward(arch, weights, biases, x,
                                                        width=None if widths is None else widths[j])[0])
