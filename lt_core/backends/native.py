"""lt_core's C library: compiled on first use with the system's C compiler, loaded with ctypes.

Two sources make one library:

* ``csrc/masked_adam.c``: one Adam step over a float32 tensor with the pruning mask applied to the
  gradient (used by :class:`lt_core.backends.optim.StackAdam` for every CPU tensor it steps);
* ``csrc/fc_stack.c``: a whole training step, and the forward pass, of a stack of fully connected
  networks, computed over the nonzero entries of each layer's input, or of a pruned layer's
  weights (``csrc/fc_kept.c``, see ``fc_kept.h``) where that is less work (:class:`FcStack`, used by
  the ``cpu_kernel`` backend; see the files' comments);
* ``csrc/learned_fc.c``: a learned-supermask training step of a stack of fully connected networks
  (mask sampling from PyTorch's generator states, forward, straight-through backward, SGD with
  momentum; :class:`lt_core.backends.learned_fc.CpuKernelMaskBackend`), built on ``fc_stack.c``'s parts
  (``fc_parts.h``) and PyTorch's generator emulated in ``torch_bernoulli.h``.

The library is built once per process with ``-O3 -march=native -ffp-contract=off -fopenmp`` and
linked against the OpenMP runtime PyTorch has already loaded, so both share one thread pool. On
CUDA, without a compiler, or with ``LT_KERNELS=0``, lt_core computes the same with PyTorch
operations instead (a warning says so when a build fails).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch

Tensor = torch.Tensor
CSRC = Path(__file__).with_name("csrc")
SOURCES = (CSRC / "masked_adam.c", CSRC / "fc_parts.c", CSRC / "fc_stack.c", CSRC / "fc_kept.c",
           CSRC / "learned_fc.c")
FLAGS = ["-O3", "-march=native", "-ffp-contract=off", "-fno-math-errno", "-fopenmp", "-shared", "-fPIC"]
ENV_SWITCH = "LT_KERNELS"
MAX_LAYERS = 16  # as in fc_stack.c
FORWARD_WAYS = ("auto", "inputs", "weights")  # lt_fc_forward's `way`, in its order
TRAIN_WAYS = ("auto", "dense", "kept")  # lt_fc_train_steps's `kept`, in its order
SHARE_WAYS = ("none", "leftover", "all")  # lt_fc_train_steps's `sharing`, in its order

_lock = threading.Lock()
_library = None  # the loaded library, False once building it failed, None before the first try


class FcLayer(ctypes.Structure):
    """One layer of a fully connected stack, as ``fc_stack.c`` reads it (all pointers to float32
    tensors laid out (runs, n_in, n_out) with rows ``ld`` apart / (runs, n_out); ``mask`` uint8 or
    NULL)."""

    _fields_ = [("n_in", ctypes.c_int64), ("n_out", ctypes.c_int64), ("ld", ctypes.c_int64),
                ("live_in", ctypes.c_int64),
                ("w", ctypes.c_void_p), ("m_w", ctypes.c_void_p), ("v_w", ctypes.c_void_p),
                ("mask", ctypes.c_void_p),
                ("b", ctypes.c_void_p), ("m_b", ctypes.c_void_p), ("v_b", ctypes.c_void_p)]


class MaskLayer(ctypes.Structure):
    """One layer of a learned-supermask stack, as ``learned_fc.c`` reads it: float32 tensors
    (runs, n_out, n_in), contiguous, and ``w_in``, the weights laid out by :func:`input_major`."""

    _fields_ = [("n_in", ctypes.c_int64), ("n_out", ctypes.c_int64), ("w", ctypes.c_void_p), ("w_in", ctypes.c_void_p),
                ("score", ctypes.c_void_p), ("p", ctypes.c_void_p), ("mom", ctypes.c_void_p)]


class AdamStep(ctypes.Structure):
    _fields_ = [("beta1", ctypes.c_float), ("beta2", ctypes.c_float), ("step_size", ctypes.c_float),
                ("bias_correction2_sqrt", ctypes.c_float), ("eps", ctypes.c_float)]


def enabled() -> bool:
    """False when ``LT_KERNELS=0`` switches the kernels off."""
    return os.environ.get(ENV_SWITCH, "1") != "0"


def compile_library(flags: Sequence[str] = FLAGS) -> ctypes.CDLL:
    """Compile the sources with ``flags`` and load the result into this process (under a second);
    raises OSError or SubprocessError when that fails."""
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if compiler is None:
        raise OSError("no C compiler found (set CC)")
    with tempfile.TemporaryDirectory(prefix="lt_core_kernels_") as tmp:
        lib_path = Path(tmp) / "lt_core_kernels.so"
        proc = subprocess.run([compiler, *flags, *map(str, SOURCES), "-o", str(lib_path)], capture_output=True,
                              text=True, timeout=300)
        if proc.returncode != 0:
            err = proc.stderr.strip()
            raise OSError(f"{compiler}: {err.splitlines()[-1] if err else f'exit status {proc.returncode}'}")
        lib = ctypes.CDLL(str(lib_path))  # mapped: the file may go
    vp, i64, f32, cint = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float, ctypes.c_int
    lib.lt_masked_adam.restype = None
    lib.lt_masked_adam.argtypes = [vp] * 5 + [i64] * 4 + [f32] * 5 + [cint]
    lib.lt_fc_train_steps.restype = cint
    lib.lt_fc_train_steps.argtypes = [cint, ctypes.POINTER(FcLayer), i64, i64, vp, i64, i64, vp, i64, i64, i64,
                                      ctypes.POINTER(AdamStep), cint, cint, cint]
    if hasattr(lib, "lt_constant_division_mismatches"):  # (for the tests; older sources, as kept_step.py builds, lack it)
        lib.lt_constant_division_mismatches.restype = i64
        lib.lt_constant_division_mismatches.argtypes = [f32, cint, cint]
    lib.lt_fc_forward.restype = cint
    lib.lt_fc_forward.argtypes = [cint, ctypes.POINTER(FcLayer), i64, vp, i64, vp, cint, cint]
    lib.lt_mask_draw.restype = cint
    lib.lt_mask_draw.argtypes = [cint, ctypes.POINTER(MaskLayer), i64, vp, vp, i64, ctypes.POINTER(vp), cint]
    lib.lt_mask_train_step.restype = cint
    lib.lt_mask_train_step.argtypes = [cint, ctypes.POINTER(MaskLayer), i64, vp, vp, i64, vp, i64, vp, i64, i64,
                                       f32, f32, cint, vp]
    return lib


def _build() -> Optional[ctypes.CDLL]:
    """This process's library, or None (with a warning when a build was tried and failed)."""
    if not enabled() or not sys.platform.startswith("linux"):
        return None
    try:
        return compile_library()
    except (OSError, subprocess.SubprocessError) as exc:  # no build, or a temp dir that cannot hold code
        warnings.warn(f"lt_core: the C kernels are not available ({exc}); computing with PyTorch operations "
                      "instead", RuntimeWarning)
        return None


def library() -> Optional[ctypes.CDLL]:
    """The loaded library, building it on the first call; None where it is not available (or
    switched off)."""
    global _library
    if not enabled():
        return None
    if _library is None:
        with _lock:
            if _library is None:
                _library = _build() or False
    return _library or None


def row_stride(n_out: int) -> int:
    """The row stride (in entries) of an input-major weight matrix with ``n_out`` outputs: rows
    start on 64-byte lines (a multiple of 16 floats), so that no row's vector straddles two."""
    return -(-int(n_out) // 16) * 16


def is_input_major(t: Tensor) -> bool:
    """Whether ``t`` (K, n_in, n_out) is laid out as the kernel reads it fastest: rows
    ``row_stride(n_out)`` apart, runs ``n_in`` rows apart."""
    return t.dim() == 3 and _rows_apart(t) == row_stride(t.shape[2])


def input_major(weights: Tensor, dtype: Optional[torch.dtype] = None) -> Tensor:
    """Stacked weights ``(K, n_out, n_in)`` (or a mask, cast to ``dtype``) as the kernel reads them:
    the ``(K, n_in, n_out)`` transpose with rows ``row_stride(n_out)`` apart (see
    :func:`is_input_major`). The same memory when ``weights`` is already so laid out (the
    transpose of such a tensor), else a copy (padding entries 0)."""
    t = weights.transpose(1, 2)
    if dtype is not None and t.dtype != dtype:
        t = t.to(dtype)
    if is_input_major(t) and t.device.type == "cpu":
        return t
    k, n_in, n_out = t.shape
    out = torch.zeros(k, n_in, row_stride(n_out), dtype=t.dtype)[:, :, :n_out]
    out.copy_(t)
    return out


def _ptr(t: Optional[Tensor]) -> Optional[int]:
    return None if t is None else t.data_ptr()


def _rows_apart(t: Tensor) -> int:
    """The row stride of a (K, n_in, n_out) tensor whose rows are each contiguous and whose runs
    follow each other (n_in rows apart); 0 when it is not so laid out. A single row of a single
    run has no stride of its own: it counts as ``row_stride(n_out)``."""
    k, n_in, n_out = t.shape
    ld = t.stride(1) if n_in > 1 else t.stride(0) if k > 1 else row_stride(n_out)
    ok = ld >= n_out and (n_out <= 1 or t.stride(2) == 1) and (k <= 1 or t.stride(0) == n_in * ld)
    return ld if ok else 0


def _check(name: str, t: Tensor, shape: tuple, dtype=torch.float32, ld: Optional[int] = None) -> None:
    """A contiguous tensor or, given ``ld``, a (K, n_in, n_out) one with rows ``ld`` apart."""
    layout = t.is_contiguous() if ld is None else t.dim() == 3 and _rows_apart(t) == ld
    if t.shape != shape or t.dtype != dtype or not layout or t.device.type != "cpu":
        what = "contiguous" if ld is None else f"rows {ld} apart"
        raise ValueError(f"{name}: expected a {dtype} CPU tensor of shape {tuple(shape)}, {what}; "
                         f"got {t.dtype} {tuple(t.shape)} on {t.device} with strides {t.stride()}")


class FcStack:
    """A stack of K fully connected networks as ``fc_stack.c`` reads it; holds the tensors it
    points to (the kernel updates them in place).

    ``weights[l]``: (K, n_in, n_out) float32 (row i: input i's outgoing weights), each row
    contiguous, rows any ``ld >= n_out`` apart and runs ``n_in`` rows apart (contiguous, or faster,
    as :func:`input_major` lays them out); ``biases[l]``: (K, n_out) contiguous. For training also
    Adam's moments (same shapes and layouts) and, optionally, ``masks[l]``: uint8 (K, n_in, n_out),
    laid out likewise, or None (nothing pruned), and ``live_in[l]``: inputs from
    this one on are 0 in every training image (their weights never move; None: all may move).
    ``lib``: the library to call (default: this process's, see :func:`library`).
    """

    def __init__(self, weights: Sequence[Tensor], biases: Sequence[Tensor], *,
                 exp_avg_w: Optional[Sequence[Tensor]] = None, exp_avg_sq_w: Optional[Sequence[Tensor]] = None,
                 exp_avg_b: Optional[Sequence[Tensor]] = None, exp_avg_sq_b: Optional[Sequence[Tensor]] = None,
                 masks: Optional[Sequence[Optional[Tensor]]] = None,
                 live_in: Optional[Sequence[Optional[int]]] = None, lib: Optional[ctypes.CDLL] = None) -> None:
        n = len(weights)
        if not 1 <= n <= MAX_LAYERS or len(biases) != n:
            raise ValueError(f"FcStack: {n} weight and {len(biases)} bias tensors; "
                             f"1 to {MAX_LAYERS} layers, one bias each")

        def per_layer(field, seq):
            if seq is None:
                return [None] * n
            if len(seq) != n:
                raise ValueError(f"FcStack.{field}: {len(seq)} entries for {n} layers")
            return list(seq)

        fields = ("exp_avg_w", "exp_avg_sq_w", "exp_avg_b", "exp_avg_sq_b")
        moments = [per_layer(f, seq) for f, seq in zip(fields, (exp_avg_w, exp_avg_sq_w, exp_avg_b, exp_avg_sq_b))]
        masks, live_in = per_layer("masks", masks), per_layer("live_in", live_in)
        self.trainable = all(all(t is not None for t in seq) for seq in moments)
        self.lib = lib
        self.runs = weights[0].shape[0] if weights[0].dim() == 3 else None
        self.layers = (FcLayer * n)()
        self._keep = []  # the tensors the pointers point into
        n_prev = weights[0].shape[1] if weights[0].dim() == 3 else None
        for l in range(n):
            w, b, mw, vw, mb, vb = weights[l], biases[l], *(seq[l] for seq in moments)
            runs, n_in, n_out = w.shape if w.dim() == 3 else (None, None, None)
            if runs is None or runs != self.runs or n_in != n_prev:
                raise ValueError(f"FcStack: layer {l} weights are {tuple(w.shape)}; "
                                 f"expected ({self.runs}, {n_prev}, n_out)")
            ld = _rows_apart(w) if w.dtype == torch.float32 and w.device.type == "cpu" else 0
            if not ld:
                raise ValueError(f"layer {l} weights: expected float32 CPU (K, n_in, n_out), rows contiguous and "
                                 f"runs n_in rows apart; got {w.dtype} {tuple(w.shape)} on {w.device} "
                                 f"with strides {w.stride()}")
            _check(f"layer {l} biases", b, (runs, n_out))
            for name, t, shape, rows in (("exp_avg_w", mw, w.shape, ld), ("exp_avg_sq_w", vw, w.shape, ld),
                                         ("exp_avg_b", mb, b.shape, None), ("exp_avg_sq_b", vb, b.shape, None)):
                if t is not None:
                    _check(f"layer {l} {name}", t, tuple(shape), ld=rows)
            if masks[l] is not None:
                _check(f"layer {l} mask", masks[l], tuple(w.shape), torch.uint8, ld=ld)
            live = n_in if live_in[l] is None else max(0, min(int(live_in[l]), n_in))
            self.layers[l] = FcLayer(n_in, n_out, ld, live, _ptr(w), _ptr(mw), _ptr(vw), _ptr(masks[l]), _ptr(b),
                                     _ptr(mb), _ptr(vb))
            self._keep += [w, b, mw, vw, mb, vb, masks[l]]
            n_prev = n_out
        self.n_in, self.n_out = weights[0].shape[1], n_prev
        self._sharing: Dict[int, FasterOf] = {}  # by thread count

    def _lib(self) -> ctypes.CDLL:
        lib = self.lib or library()
        if lib is None:
            raise RuntimeError("lt_core's C kernels are not available (no C compiler, or LT_KERNELS=0)")
        return lib

    def train_step(self, x: Tensor, y: Tensor, adam: AdamStep, threads: int, share: Optional[str] = None,
                   way: str = "auto") -> None:
        """One Adam step of every run: on ``x`` (B, n_in) shared by all runs, or (K, B, n_in), one
        batch per run; labels ``y``: (B,) or (K, B). See :meth:`train_steps`."""
        self.train_steps(x.unsqueeze(-3), y.unsqueeze(-2), [adam], threads, share, way)

    def train_steps(self, x: Tensor, y: Tensor, adam: Sequence[AdamStep], threads: int, share: Optional[str] = None,
                    way: str = "auto") -> None:
        """``S = len(adam)`` Adam steps of every run (``adam[s]``: step s's constants, see
        :func:`adam_step`), in one call: on ``x`` (S, B, n_in), step s's batch shared by all runs, or
        (K, S, B, n_in), each run's own; float32, each batch contiguous, steps and runs any distance
        apart. Labels ``y``: (S, B) or (K, S, B) int64, likewise.

        Each run takes its S steps one after another, so that its weights and moments stay in the
        cache between them; the result is the same bits as S calls of one step.

        ``share``: how the ``threads`` split the work. ``"none"``: each thread steps runs of its own
        (K // threads or one more); ``"leftover"``: the runs are split evenly and those left over
        (K % threads, e.g. a single run) are each stepped by all threads together, each taking a
        share of every layer's outputs; ``"all"``: every run is stepped by all threads together
        (each thread's share of a run's weights and moments then stays in its core's cache from one
        step to the next, at the cost of a dozen waits for each other a step). The result is the
        same bits every way; None (the default) picks the fastest by timing them now and then
        (:class:`FasterOf`), since which is fastest depends on the stack and on whether the cores
        are idle.

        ``way``: how a pruned layer is computed -- over all its weights (``"dense"``), over its kept
        weights wherever it can be (``"kept"``: the forward pass of a hidden layer by output over
        its nonzero weights, the weight gradient and Adam over the 16-weight vectors that hold a
        kept weight), or each of those where it is less work (``"auto"``). Except ``"dense"``, a
        first-layer row whose input is 0 in a whole batch has its zero-gradient updates deferred
        and applied in a row when a batch next uses it or the call ends (``csrc/fc_stack.c``). The
        same bits every way (see ``csrc/fc_kept.h``)."""
        if way not in TRAIN_WAYS:
            raise ValueError(f"way: unknown value {way!r}; allowed values: {', '.join(TRAIN_WAYS)}")
        lib = self._lib()
        if not self.trainable:
            raise ValueError("FcStack.train_steps: the stack was built without Adam's moments")
        steps = len(adam)
        shared = x.dim() == 3
        ok = x.dim() in (3, 4) and x.dtype == torch.float32 and x.device.type == "cpu" \
            and x.shape[-1] == self.n_in and x.stride(-1) == 1 and (x.shape[-2] <= 1 or x.stride(-2) == self.n_in) \
            and x.shape[-3] == steps and (shared or x.shape[0] == self.runs)
        if not ok:
            raise ValueError(f"x: expected float32 CPU batches ({steps}, B, {self.n_in}) or "
                             f"({self.runs}, {steps}, B, {self.n_in}) for {steps} steps, each batch contiguous, "
                             f"got {x.dtype} {tuple(x.shape)} with strides {x.stride()}")
        rows = x.shape[-2]
        if y.dtype != torch.int64 or tuple(y.shape) != tuple(x.shape[:-1]) or (rows > 1 and y.stride(-1) != 1) \
                or y.device.type != "cpu":
            raise ValueError(f"y: expected int64 CPU labels of shape {tuple(x.shape[:-1])}, each batch contiguous, "
                             f"got {y.dtype} {tuple(y.shape)} with strides {y.stride()}")
        if rows == 0 or steps == 0:
            raise ValueError("x: an empty batch, or no steps")
        if share is not None and share not in SHARE_WAYS:
            raise ValueError(f"share: unknown value {share!r}; allowed values: {', '.join(SHARE_WAYS)}")
        threads = max(1, int(threads))
        timed = share is None and threads > 1
        if timed:
            if threads not in self._sharing:  # "leftover" is "none" when the runs split evenly
                self._sharing[threads] = FasterOf(("leftover", "none", "all") if self.runs % threads
                                                  else ("none", "all"))
            share = self._sharing[threads].choice()
        elif share is None:  # one thread: every way is the same
            share = "leftover"
        constants = (AdamStep * steps)(*adam)
        start = time.perf_counter()
        rc = lib.lt_fc_train_steps(len(self.layers), self.layers, self.runs, steps, x.data_ptr(),
                                   0 if shared else x.stride(0), x.stride(-3), y.data_ptr(),
                                   0 if shared else y.stride(0), y.stride(-2), rows, constants, threads,
                                   SHARE_WAYS.index(share), TRAIN_WAYS.index(way))
        if timed:
            self._sharing[threads].record(share, (time.perf_counter() - start) / steps)
        if rc != 0:
            raise MemoryError("lt_fc_train_steps: no memory for its scratch buffers (nothing was changed)")

    def forward(self, x: Tensor, threads: int, way: str = "auto") -> Tensor:
        """Logits ``(K, B, n_out)`` of every run on one batch ``x`` (B, ...) of ``n_in`` values each.

        ``way``: how the first layer's sums are computed -- over each image's nonzero inputs
        (``"inputs"``), over each run's nonzero weights (``"weights"``: a pruned network), or
        whichever is less work for each run and block of images (``"auto"``). The same bits every
        way: the terms one way skips and the other adds are exact zeros."""
        if way not in FORWARD_WAYS:
            raise ValueError(f"way: unknown value {way!r}; allowed values: {', '.join(FORWARD_WAYS)}")
        lib = self._lib()
        x = x.reshape(x.shape[0], -1).to(torch.float32).contiguous()
        if x.shape[1] != self.n_in:
            raise ValueError(f"x: {x.shape[1]} inputs for a first layer of {self.n_in}")
        logits = torch.empty(self.runs, x.shape[0], self.n_out)
        if x.shape[0] and lib.lt_fc_forward(len(self.layers), self.layers, self.runs, x.data_ptr(), x.shape[0],
                                            logits.data_ptr(), max(1, int(threads)), FORWARD_WAYS.index(way)) != 0:
            raise MemoryError("lt_fc_forward: no memory for its scratch buffers")
        return logits


class FasterOf:
    """Chooses the faster of equivalent ways to do a repeated task by timing them: each option
    for ``trial`` calls in turn (medians compared), then the faster one for ``keep`` calls, then
    trials again, so that a change in the machine's load is followed within ``keep`` calls."""

    def __init__(self, options: Sequence, trial: int = 8, keep: int = 1000) -> None:
        self.options, self.trial, self.keep = tuple(options), int(trial), int(keep)
        self._times = {o: [] for o in self.options}
        self._best, self._left = None, 0

    def choice(self):
        """The option to use for the next call."""
        if self._best is not None and self._left > 0:
            return self._best
        for option in self.options:  # still trying
            if len(self._times[option]) < self.trial:
                return option
        self._best = min(self.options, key=lambda o: statistics.median(self._times[o]))
        self._left = self.keep
        self._times = {o: [] for o in self.options}
        return self._best

    def record(self, option, seconds: float) -> None:
        """How long a call with ``option`` took."""
        if self._best is not None and self._left > 0 and option == self._best:
            self._left -= 1
            if self._left == 0:
                self._best = None
            return
        self._times[option].append(seconds)


def adam_step(t: int, lr: float, betas=(0.9, 0.999), eps: float = 1e-8) -> AdamStep:
    """Step ``t``'s Adam constants (PyTorch's bias corrections)."""
    return AdamStep(betas[0], betas[1], lr / (1.0 - betas[0] ** t), (1.0 - betas[1] ** t) ** 0.5, eps)


def thread_count() -> int:
    """Threads for a kernel call: PyTorch's intra-op count."""
    return max(1, torch.get_num_threads())


__all__: List[str] = ["AdamStep", "FORWARD_WAYS", "SHARE_WAYS", "TRAIN_WAYS", "FasterOf", "FcLayer", "FcStack", "MaskLayer",
                      "adam_step", "enabled", "input_major", "is_input_major", "library", "row_stride", "thread_count"]
