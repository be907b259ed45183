"""The training protocol: K independent runs of one architecture trained as one stack.

Each run has its own starting weights, mask, frozen values (mask-0 policies), data order (from its
seed) and early-stopping record; all runs share the architecture, learning rate, batch size and
schedule. Adam's state is elementwise, so stacking runs never couples them. K = 1 is a plain run.

Faithful to protocol section 2: Adam (beta1 0.9, beta2 0.999, eps 1e-8; PyTorch's form of the
update, which differs from TF's only in where eps enters), batch 60 drawn from a per-epoch
permutation with the last partial batch dropped (:mod:`lt_core.batches`), a fresh optimiser per
call, evaluation of the full train / val / test splits at iteration 0, every ``eval_every``
iterations and at the end, and the early-stop accuracy = test accuracy at the evaluation point of
minimum validation loss. The training split can be left out (``eval_train``) and the test split
evaluated only where a run's validation loss reaches a new minimum and at the end
(``eval_test="best"``): neither changes the early-stop or final test accuracy. The weights kept for mask computation are those at the end of training.

How a step and an evaluation are computed is the backend's business (:mod:`lt_core.backends`,
one chosen per stack); the whole dataset lives on the device and nothing synchronises with the
host except at evaluation points. Resuming, stopping, periodic checkpoints and the progress bar are
the shared driver's (:class:`lt_core.steploop.StepLoop`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import torch

from .backends import RunSpec, choose_backend
from .batches import BatchOrder
from .data import Dataset
from .events import Eval, EventCallback, Stage, StopToken, emit
from .archs import Arch
from .steploop import StepLoop
from .checkpoints import write_checkpoint

Tensor = torch.Tensor


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
    backend: str = ""  # the backend that trained it (numbers differ between backends by rounding)

    def summary(self) -> dict:
        return {"early_stop_iteration": self.early_stop_iteration,
                "early_stop_test_acc": self.early_stop_test_acc,
                "final_test_acc": self.final_test_acc, "backend": self.backend}


class Trainer(StepLoop):
    """Trains a stack of runs; see the module docstring.

    ``backend``: a name from :data:`lt_core.backends.BACKENDS` (default: the fastest that applies,
    see :func:`lt_core.backends.choose_backend`). ``checkpoint``: a file to resume from and to write
    when stopped (and every ``checkpoint_seconds``); resuming yields the same numbers as an
    uninterrupted run.
    """

    def __init__(self, arch: Arch, data: Dataset, runs: List[RunSpec], *, lr: float, batch_size: int,
                 iterations: int, eval_every: int = 100, eval_train: bool = True, eval_test: str = "every",
                 round_index: int = 0,
                 on_event: Optional[EventCallback] = None, stop: Optional[StopToken] = None,
                 checkpoint: Optional[Path] = None, checkpoint_seconds: float = 120.0,
                 progress: bool = False, backend: Optional[str] = None) -> None:
        if not runs:
            raise ValueError("Trainer: no runs to train")
        self.arch, self.runs, self.iterations = arch, runs, iterations
        self.eval_every, self.eval_train, self.round = eval_every, eval_train, round_index
        if eval_test not in ("every", "best"):
            raise ValueError(f"Trainer: eval_test {eval_test!r}; allowed: every, best")
        self.eval_test = eval_test
        self.on_event, self.stop = on_event, stop
        self.checkpoint, self.checkpoint_seconds, self.progress = checkpoint, checkpoint_seconds, progress
        self.backend = choose_backend(arch, data.train.x.device, backend)(arch, data, runs, lr)
        self.batch = BatchOrder(self.backend.data.train, [r.seed for r in runs], batch_size, "TrainConfig.batch_size",
                                self.backend.batch_block_rows)
        self.spe = self.batch.spe
        self.evals: List[List[dict]] = [[] for _ in runs]
        self.start_iteration = 0
        self.desc = f"round {round_index}"

    def max_steps(self, it: int) -> int:
        return self.backend.max_steps(self.batch, it)

    def steps(self, it: int, n: int) -> None:
        self.backend.steps(self.batch, it, n)

    def step(self, it: int) -> None:
        """One training step of every run, on batch ``it`` of each run's data order."""
        self.steps(it, 1)

    def test_runs(self, it: int, val_loss: List[float]) -> List[int]:
        """The runs whose test accuracy point ``it`` records: all of them, or with
        ``eval_test="best"`` those whose validation loss is below every earlier point's, and all at
        the end. The first point of minimum validation loss is always among them."""
        if self.eval_test == "every" or it >= self.iterations:
            return list(range(len(self.runs)))
        return [i for i, evals in enumerate(self.evals) if all(val_loss[i] < e["val_loss"] for e in evals)]

    def evaluate_point(self, it: int) -> None:
        everyone = list(range(len(self.runs)))
        results = {split: (everyone, *(t.tolist() for t in self.backend.evaluate(split)))
                   for split in ("train", "val") if split != "train" or self.eval_train}
        test = self.test_runs(it, results["val"][1])
        if test:
            results["test"] = (test, *(t.tolist() for t in self.backend.evaluate("test", runs=test)))
        records = [{"iteration": it} for _ in self.runs]
        for split, (which, loss, acc) in results.items():  # keys in split order: train, val, test
            for j, i in enumerate(which):
                records[i][f"{split}_loss"] = loss[j]
                records[i][f"{split}_acc"] = acc[j]
        for i, run in enumerate(self.runs):
            self.evals[i].append(records[i])
            metrics = {k: v for k, v in records[i].items() if k != "iteration"}
            emit(self.on_event, Eval(run=run.label, round=self.round, iteration=it, iterations=self.iterations,
                                     metrics=metrics))

    def _save_checkpoint(self, it: int) -> None:
        if self.checkpoint is not None:
            write_checkpoint(self.checkpoint, {"iteration": it, "labels": [r.label for r in self.runs],
                                               "evals": self.evals, **self.backend.state_dict()})

    def _load_checkpoint(self) -> bool:
        state = self.read_checkpoint()
        if state is None:
            return False
        if state.get("labels") != [r.label for r in self.runs] or \
                not {"exp_avg", "exp_avg_sq", "steps"} <= set(state.get("opt", {})):
            return False  # another stack's, or an older format: start the round afresh
        self.backend.load_state_dict(state)
        self.evals = state["evals"]
        self.start_iteration = state["iteration"]
        emit(self.on_event, Stage(stage="resumed", run=self.runs[0].label, round=self.round,
                                  details={"runs": [r.label for r in self.runs], "iteration": self.start_iteration}))
        return True

    def run(self) -> List[RunResult]:
        """Train to the end (or resume and finish) and give each run's result: its metric rows,
        its early-stop point (minimum validation loss, the first on ties) and its final weights."""
        self.loop()
        results = []
        for i, run in enumerate(self.runs):
            evals = self.evals[i]
            best = min(range(len(evals)), key=lambda j: (evals[j]["val_loss"], j))
            rows = [{"run": run.label, "round": self.round, "iteration": e["iteration"], "split": key.split("_")[0],
                     "metric": "loss" if key.endswith("loss") else "accuracy", "value": value}
                    for e in evals for key, value in e.items() if key != "iteration"]
            weights, biases = self.backend.final(i)
            results.append(RunResult(
                label=run.label, final_weights=weights, final_biases=biases, rows=rows, evals=evals,
                early_stop_iteration=evals[best]["iteration"], early_stop_test_acc=evals[best]["test_acc"],
                final_test_acc=evals[-1]["test_acc"], backend=self.backend.name))
        return results
