"""The paper's qualitative claims (protocol section 12) as checks computed from our numbers.

Each check returns a :class:`Check`: the claim in words, ``PASS`` / ``FAIL`` / ``not enough data``
and the numbers behind the verdict, so a reader can judge a narrow pass for themselves.

Inputs are the tidy frames the notebooks already build: lottery rounds (one row per run, seed and
round with ``early_stop_test_acc``; :func:`lt_core.analysis.rounds_frame`), one-shot supermask
points (``criterion``, ``weights``, ``weights_remaining``, ``test_acc``) and learned-mask results.

"From round R on": the paper's figures show the criteria separating once pruning is deep (round 8
is 16.8% of FC weights remaining at the paper's rates). A sweep with fewer rounds is checked from
the middle of what it ran (``R = min(8, max(1, last_round // 2))``), and the verdict says which
rounds it covered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import pandas as pd

PASS, FAIL, NO_DATA = "PASS", "FAIL", "not enough data"


@dataclass(frozen=True)
class Check:
    question: str   # "rq1" ... "rq5"
    claim: str
    verdict: str    # PASS, FAIL or NO_DATA
    evidence: str

    def as_row(self) -> dict:
        return {"question": self.question, "claim": self.claim, "verdict": self.verdict, "evidence": self.evidence}


def table(checks: Sequence[Check]) -> pd.DataFrame:
    """The checks as a DataFrame (one row each), for display and the report's CSV."""
    return pd.DataFrame([c.as_row() for c in checks], columns=["question", "claim", "verdict", "evidence"])


def default_from_round(frame: pd.DataFrame) -> int:
    last = int(frame["round"].max()) if len(frame) else 0
    return min(8, max(1, last // 2))


def _mean_by_round(frame: pd.DataFrame, by: str, name: str, y: str) -> pd.Series:
    return frame[frame[by] == name].groupby("round")[y].mean()


def above(frame: pd.DataFrame, by: str, better: str, worse: str, *, question: str, claim: Optional[str] = None,
          from_round: Optional[int] = None, y: str = "early_stop_test_acc") -> Check:
    """``better``'s mean accuracy (over seeds) is above ``worse``'s at every round from ``from_round`` on."""
    start = default_from_round(frame) if from_round is None else from_round
    claim = claim or f"{better} is above {worse} at every round from {start} on"
    a, b = _mean_by_round(frame, by, better, y), _mean_by_round(frame, by, worse, y)
    rounds = sorted(set(a.index) & set(b.index))
    rounds = [r for r in rounds if r >= start]
    if not rounds:
        missing = [n for n, s in ((better, a), (worse, b)) if s.empty]
        why = f"no runs of {', '.join(missing)}" if missing else f"no round from {start} on in both"
        return Check(question, claim, NO_DATA, why)
    margins = pd.Series({r: 100 * (a[r] - b[r]) for r in rounds})
    low = margins.idxmin()
    verdict = PASS if margins.min() > 0 else FAIL
    evidence = (f"rounds {rounds[0]}-{rounds[-1]}: {better} minus {worse} is {margins.min():+.2f} points at its "
                f"smallest (round {low}), {margins.mean():+.2f} on average")
    return Check(question, claim, verdict, evidence)


def rq1_criteria(frame: pd.DataFrame, *, by: str = "criterion", from_round: Optional[int] = None) -> List[Check]:
    """RQ1: large_final and magnitude_increase are best; small_* and random fall off as pruning deepens."""
    checks = [above(frame, by, good, "random", question="rq1", from_round=from_round)
              for good in ("large_final", "magnitude_increase", "movement", "large_init_large_final")]
    checks += [above(frame, by, "large_final", bad, question="rq1", from_round=from_round)
               for bad in ("small_final", "small_init_small_final")]
    return checks


def rq2_signs(frame: pd.DataFrame, *, by: str = "mask1", from_round: Optional[int] = None) -> List[Check]:
    """RQ2: re-initialised kept weights train when they keep their original signs, not otherwise."""
    checks = [above(frame, by, f"signed_{name}", name, question="rq2", from_round=from_round,
                    claim=f"keeping signs helps: signed_{name} is above {name} at every round from "
                          f"{default_from_round(frame) if from_round is None else from_round} on")
              for name in ("reinit", "reshuffle", "constant")]
    return checks


def rq3_mask0(frame: pd.DataFrame, *, by: str = "mask0", from_round: Optional[int] = None) -> List[Check]:
    """RQ3: zeroing pruned weights beats freezing them at init; freezing at zero those that moved
    toward zero (at init the others) beats plain zeroing."""
    return [above(frame, by, "zero", "freeze_init", question="rq3", from_round=from_round),
            above(frame, by, "freeze_init_zero_mask", "freeze_init", question="rq3", from_round=from_round),
            above(frame, by, "freeze_init_zero_mask", "zero", question="rq3", from_round=from_round)]


def rq4_supermasks(points: pd.DataFrame, *, criterion: str = "large_final_same_sign",
                   paper: Optional[Dict[str, float]] = None, chance: float = 0.10) -> List[Check]:
    """RQ4: a mask alone on the untrained network is far above chance; signed constants do better."""
    ours = points[points["criterion"] == criterion]
    if "seed" in ours:  # as the paper's Table 1: the best over prune levels of each run, averaged over runs
        best = ours.groupby(["weights", "seed"])["test_acc"].max().groupby("weights").mean()
    else:
        best = ours.groupby("weights")["test_acc"].max()
    checks = []
    for kind, words in (("init", "initial weights"), ("signed_constant", "signed constants")):
        claim = f"{criterion} with {words} is far above chance (at least twice chance's accuracy)"
        if kind not in best:
            checks.append(Check("rq4", claim, NO_DATA, f"no {words} points of {criterion}"))
            continue
        ref = f"; the paper reports {paper[kind]:.1f}%" if paper and kind in paper else ""
        verdict = PASS if best[kind] >= 2 * chance else FAIL
        checks.append(Check("rq4", claim, verdict, f"best over prune levels {100 * best[kind]:.1f}% vs chance "
                                                   f"{100 * chance:.0f}%{ref}"))
    claim = f"{criterion}: signed constants do at least as well as initial weights"
    if {"init", "signed_constant"} <= set(best.index):
        diff = 100 * (best["signed_constant"] - best["init"])
        checks.append(Check("rq4", claim, PASS if diff >= 0 else FAIL,
                            f"best accuracy {100 * best['signed_constant']:.1f}% vs {100 * best['init']:.1f}% "
                            f"({diff:+.1f} points)"))
    else:
        checks.append(Check("rq4", claim, NO_DATA, "needs both weight kinds"))
    return checks


def rq5_learned(learned: Dict[str, float], dense: Optional[float], *, within: float = 0.05) -> List[Check]:
    """RQ5: learned masks approach the trained network; DWR brings them closer.

    ``learned``: mean test accuracy (fraction) per variant, keys ``init``, ``signed_constant``,
    ``init_dwr``, ``signed_constant_dwr`` (any subset). ``dense``: the trained dense accuracy.
    """
    checks = []
    for key, words in (("init", "initial weights"), ("signed_constant", "signed constants")):
        claim = f"a learned mask on {words} comes within {100 * within:.0f} points of the trained network"
        if key not in learned or dense is None:
            checks.append(Check("rq5", claim, NO_DATA, "needs the learned mask and the dense run"))
        else:
            gap = 100 * (dense - learned[key])
            checks.append(Check("rq5", claim, PASS if gap <= 100 * within else FAIL,
                                f"{100 * learned[key]:.2f}% vs dense {100 * dense:.2f}% (gap {gap:.2f} points)"))
        claim = f"dynamic weight rescaling helps a learned mask on {words}"
        if key not in learned or f"{key}_dwr" not in learned:
            checks.append(Check("rq5", claim, NO_DATA, "needs the variants with and without DWR"))
            continue
        diff = 100 * (learned[f"{key}_dwr"] - learned[key])
        checks.append(Check("rq5", claim, PASS if diff > 0 else FAIL,
                            f"{100 * learned[f'{key}_dwr']:.2f}% with DWR vs {100 * learned[key]:.2f}% without "
                            f"({diff:+.2f} points)"))
    return checks


def families(best: Dict[str, dict], dense: Optional[float], edge_popup: Optional[Dict[float, float]] = None, *,
             chance: float = 0.10) -> List[Check]:
    """Supermask families side by side (the families notebook): claims of the signed-supermask and
    edge-popup papers, checked on our numbers.

    ``best``: per family (``zhou``, ``edge_popup``, ``signed``) its best setting's mean test accuracy
    and fraction of weights kept, ``{"test_acc": 0.97, "kept": 0.04}`` (fractions). ``dense``: the
    trained dense network's accuracy. ``edge_popup``: edge-popup's mean accuracy per keep fraction.
    """
    checks = []
    claim = "signed masks reach within 1 point of the dense accuracy below 10% of weights (Koster et al. 2022)"
    signed = best.get("signed")
    if signed is None or dense is None:
        checks.append(Check("families", claim, NO_DATA, "needs signed-supermask runs and the dense run"))
    else:
        gap = 100 * (dense - signed["test_acc"])
        ok = gap <= 1.0 and signed["kept"] < 0.10
        checks.append(Check("families", claim, PASS if ok else FAIL,
                            f"{100 * signed['test_acc']:.2f}% at {100 * signed['kept']:.2f}% of weights kept vs dense "
                            f"{100 * dense:.2f}% (gap {gap:.2f} points)"))
    claim = "edge-popup: its sparsest keep fraction is below its best one (too few weights hurt: Ramanujan et al. 2020)"
    if not edge_popup or len(edge_popup) < 2:
        checks.append(Check("families", claim, NO_DATA, "needs edge-popup runs at two keep fractions or more"))
    else:
        sparsest = min(edge_popup)
        top = max(edge_popup, key=edge_popup.get)
        diff = 100 * (edge_popup[top] - edge_popup[sparsest])
        checks.append(Check("families", claim, PASS if top != sparsest and diff > 0 else FAIL,
                            f"keep {100 * sparsest:g}%: {100 * edge_popup[sparsest]:.2f}%; best keep {100 * top:g}%: "
                            f"{100 * edge_popup[top]:.2f}% ({diff:+.2f} points)"))
    claim = ("signed masks keep fewer weights than Zhou's best learned mask at no more than 1 point lower "
             "accuracy")
    zhou = best.get("zhou")
    if signed is None or zhou is None:
        checks.append(Check("families", claim, NO_DATA, "needs signed-supermask and Zhou runs"))
    else:
        diff = 100 * (signed["test_acc"] - zhou["test_acc"])
        ok = signed["kept"] < zhou["kept"] and diff >= -1.0
        checks.append(Check("families", claim, PASS if ok else FAIL,
                            f"signed {100 * signed['test_acc']:.2f}% at {100 * signed['kept']:.2f}% kept vs Zhou "
                            f"{100 * zhou['test_acc']:.2f}% at {100 * zhou['kept']:.2f}% kept ({diff:+.2f} points)"))
    for family, numbers in best.items():
        claim = f"{family}: the best mask on the untrained network is far above chance (at least twice chance's)"
        checks.append(Check("families", claim, PASS if numbers["test_acc"] >= 2 * chance else FAIL,
                            f"{100 * numbers['test_acc']:.2f}% vs chance {100 * chance:.0f}%"))
    return checks
