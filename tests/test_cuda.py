"""The engine on a GPU agrees with the CPU: small FC and Conv2 lottery stacks and a learned supermask.

Marked ``cuda``; skipped without a CUDA device (``benchmarks/gpu_check.sh`` runs them first). A run
is trained twice from the same seed, on the CPU and on CUDA, each into its own results root (the
device is not part of a run's identity). What must agree, and how closely:

* the initial weights, the batches and every random choice come from CPU generators, so round 0
  starts from the same bits; the sums of matmuls and convolutions are the GPU library's, in another
  order (all float32, TF32 off). Over these short runs evaluation losses agree within 1e-3
  relative and accuracies within 0.5 points (a few images);
* pruning ranks the final weights, so the masks of round 1 agree except for weights whose scores are
  within rounding of the layer's threshold: at least 99.9% of every layer's entries;
* a learned supermask samples its Bernoulli masks from a generator on its device, so CUDA draws
  other masks than the CPU: the two learners are compared as two samples of one experiment (test
  accuracy within 3 points after 300 steps, expected keep fraction within 0.01).
"""

from __future__ import annotations

import pytest
import torch

import lt_core as lt
from lt_core.store import open_run

from .conftest import needs_mnist
from .test_data import cifar_fixture  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]


def _lottery(out, device, data=lt.DataConfig(), model=lt.ModelConfig(), **train):
    cfg = lt.TrainConfig(device=device, **train)
    prunes = [lt.PruneConfig(rounds=1, criterion="large_final"), lt.PruneConfig(rounds=1, criterion="magnitude_increase")]
    return lt.run_lotteries(data, model, cfg, prunes, out=out, max_stack=2)


def _compare_lotteries(tmp_path, **kw):
    cpu = _lottery(tmp_path / "cpu", "cpu", **kw)
    gpu = _lottery(tmp_path / "cuda", "cuda", **kw)
    for a, b in zip(cpu, gpu):
        ra, rb = open_run(a.run_dir), open_run(b.run_dir)
        assert [r.index for r in ra.rounds] == [r.index for r in rb.rounds] == [0, 1]
        for x, y in zip(ra.rounds, rb.rounds):
            mx, my = x.metrics(), y.metrics()
            assert list(mx["iteration"]) == list(my["iteration"])
            for metric, tol in (("loss", None), ("accuracy", 0.005)):
                vx = mx[mx.metric == metric]["value"].to_numpy()
                vy = my[my.metric == metric]["value"].to_numpy()
                if tol is None:
                    assert vy == pytest.approx(vx, rel=1e-3), f"round {x.index} losses"
                else:
                    assert vy == pytest.approx(vx, abs=tol), f"round {x.index} accuracies"
        masks_cpu, masks_gpu = ra.round(1).load("masks"), rb.round(1).load("masks")
        for name in masks_cpu:
            agree = (masks_cpu[name].bool() == masks_gpu[name].bool()).float().mean().item()
            assert agree >= 0.999, f"{name}: masks agree on {agree:.4%} of entries"


@needs_mnist
def test_fc_lottery_stack_on_cuda_matches_the_cpu(tmp_path):
    _compare_lotteries(tmp_path, iterations=60, eval_every=20)


def test_conv2_lottery_stack_on_cuda_matches_the_cpu(tmp_path, cifar_fixture):  # noqa: F811
    root, _, _ = cifar_fixture
    data = lt.DataConfig(data_dir=str(root), download=False, val_size=10)
    _compare_lotteries(tmp_path / "runs", data=data, model=lt.ModelConfig(arch="conv2"), iterations=10,
                       eval_every=5, batch_size=10)


@needs_mnist
def test_learned_supermask_on_cuda_matches_the_cpu_as_a_sample(tmp_path):
    results = {}
    for device in ("cpu", "cuda"):
        learn = lt.LearnConfig(weights="signed_constant", iterations=300, eval_every=100, device=device)
        results[device] = lt.learn_supermasks(lt.DataConfig(), lt.ModelConfig(), [learn], out=tmp_path / device)[0]
    cpu, gpu = results["cpu"], results["cuda"]
    assert gpu.iterations == cpu.iterations == 300
    assert gpu.test_acc_mean == pytest.approx(cpu.test_acc_mean, abs=0.03)
    assert gpu.expected_keep_fraction == pytest.approx(cpu.expected_keep_fraction, abs=0.01)
    assert cpu.test_acc_mean > 0.5  # both learned something: far above chance after 300 steps
