"""One-click settings that reproduce the paper's figures and Table 1 (research questions 1-5).

A preset is a set of :class:`~.request.RunRequest` fields: the mode and the lists raced side by
side (criteria, mask-1 and mask-0 policies, supermask weights), plus the schedule's scale. The
*quick* variant draws the figure's shape within minutes (one seed, 5 rounds, the quick schedule);
the *paper* variant is the paper's protocol (its schedule, 24 rounds, the 5 seeds of its bands).
"""

from __future__ import annotations

from typing import Dict, List, Tuple

from lt_core import CRITERIA, MASK0_POLICIES, MASK1_POLICIES

from .request import RunRequest

# figure -> (menu title, request fields)
FIGURES: Dict[str, Tuple[str, dict]] = {
    "rq1": ("RQ1 · mask criteria (Figure 3)",
            {"mode": "lottery", "criteria": tuple(c for c in CRITERIA if "sign" not in c),
             "mask1": ("rewind",), "mask0": ("zero",)}),
    "rq2": ("RQ2 · mask-1: reinit, reshuffle, constant, with and without signs (Figure 4)",
            {"mode": "lottery", "criteria": ("large_final",), "mask1": tuple(MASK1_POLICIES), "mask0": ("zero",)}),
    "rq3": ("RQ3 · mask-0: zero or frozen (Figure 5)",
            {"mode": "lottery", "criteria": ("large_final",), "mask1": ("rewind",), "mask0": tuple(MASK0_POLICIES)}),
    "rq4": ("RQ4 · one-shot supermasks (Figure 6, Table 1 'Mask')",
            {"mode": "oneshot", "criteria": ("large_final_same_sign", "large_final", "magnitude_increase", "random"),
             "supermask_weights": ("init", "signed_constant")}),
    "rq5": ("RQ5 · learned supermasks (Table 1 'Learned')",
            {"mode": "learned", "learned_weights": ("init", "signed_constant"), "dwr": False}),
    "rq5_dwr": ("RQ5 · learned supermasks with DWR (Table 1 'DWR')",
                {"mode": "learned", "learned_weights": ("signed_constant",), "dwr": True}),
}
SCALES: Dict[str, Tuple[str, dict]] = {
    "quick": ("quick", {"schedule": "quick", "rounds": 5, "seeds": (0,)}),
    "paper": ("paper schedule, 5 seeds: hours of CPU", {"schedule": "paper", "rounds": 24, "seeds": (0, 1, 2, 3, 4)}),
}


def preset_options() -> List[Tuple[str, str]]:
    """The preset menu: (title, key) with keys ``"<figure>/<scale>"``."""
    return [(f"{title} · {scale_title}", f"{fig}/{scale}")
            for fig, (title, _) in FIGURES.items() for scale, (scale_title, _) in SCALES.items()]


def apply_preset(request: RunRequest, key: str) -> RunRequest:
    """``request`` with the fields of preset ``key`` (e.g. ``"rq2/quick"``); other fields kept."""
    fig, _, scale = str(key).partition("/")
    if fig not in FIGURES or scale not in SCALES:
        raise ValueError(f"Preset: unknown value {key!r}; allowed values: "
                         f"{', '.join(k for _, k in preset_options())}")
    return request.replace(**FIGURES[fig][1], **SCALES[scale][1])
