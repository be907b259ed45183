"""What a request costs on this machine before it runs: the experiments it makes, less what the
results store already holds, priced at training rates measured here (the reproduction's own
estimate, :mod:`lt_core.paper.estimate`). The page shows it for the paper-schedule presets, which
take hours of CPU."""

from __future__ import annotations

import threading
from typing import Dict, List, Tuple

from lt_core import DataConfig, LearnConfig, ModelConfig, PruneConfig, SupermaskConfig, TrainConfig

from .request import RunRequest, schedule_fields

_rates: Dict[Tuple[str, str], object] = {}  # (device, data dir) -> the estimate's measured rates, kept
_lock = threading.Lock()


def _estimate_module():
    try:
        from lt_core.paper import estimate
    except ImportError:  # before the reproduction moved into lt_core.paper
        from lt_core import estimate  # type: ignore[no-redef]
    return estimate


def request_experiments(request: RunRequest) -> List[object]:
    """The experiment records (:mod:`lt_core.experiments`) of what ``request`` trains, as its jobs
    (:func:`~.request.plan_jobs`) run it: per seed a dense trunk with its lottery branches or
    one-shot supermasks; the learned masks of every seed as one stack."""
    from lt_core.experiments import LearnedMasks, Lottery, Supermasks

    data = DataConfig(dataset=request.dataset, download=False)
    if request.mode == "learned":
        extra = schedule_fields(request, learned=True)
        learns = [LearnConfig(weights=w, dwr=bool(request.dwr), seed=seed, device=request.device, **extra)
                  for seed in request.seeds for w in request.learned_weights]
        return [LearnedMasks(request.arch, learns, data)]
    out = []
    for seed in request.seeds:
        train = TrainConfig(seed=seed, device=request.device, **schedule_fields(request))
        if request.mode == "lottery":
            prunes = [PruneConfig(criterion=c, mask1=m1, mask0=m0, rounds=request.rounds)
                      for c in request.criteria for m1 in request.mask1 for m0 in request.mask0]
            out.append(Lottery(request.arch, train, prunes, data))
        else:
            powers = tuple(request.powers) if request.powers is not None else tuple(range(25))
            sweep = SupermaskConfig(criteria=tuple(request.criteria), weights=tuple(request.supermask_weights),
                                    powers=powers)
            out.append(Supermasks(request.arch, train, sweep, data))
    return out


def estimate_seconds(request: RunRequest, root, data_dir=None) -> Tuple[float, str]:
    """Seconds of training ``request`` still needs on this machine (the store's finished work left
    out), and the device the rates were measured on. The first call per device measures the rates
    (seconds of real training steps); later calls reuse them."""
    estimate = _estimate_module()
    ModelConfig(arch=request.arch)  # a known network
    with _lock:
        rates = _rates.get((request.device, str(data_dir)))
        if rates is None:
            rates = _rates[(request.device, str(data_dir))] = estimate.Rates(request.device, data_dir)
        work = estimate.work_to_do(request_experiments(request), root, set())
        return rates.seconds(work), str(rates.device)


def clock(seconds: float) -> str:
    """``3 h 05 min``, ``12 min``, ``under a minute``."""
    minutes = int(round(seconds / 60))
    if minutes < 1:
        return "under a minute"
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"
