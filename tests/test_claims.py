"""Claim checks: verdicts and evidence from hand-made frames."""

import pandas as pd

from lt_core.paper import claims


def _rounds(values):
    """{name: [acc at round 0, 1, ...]} for one seed -> a rounds frame keyed by criterion."""
    return pd.DataFrame([{"criterion": n, "seed": 0, "round": r, "early_stop_test_acc": a}
                         for n, accs in values.items() for r, a in enumerate(accs)])


def test_above_passes_only_when_every_round_from_the_start_is_above():
    frame = _rounds({"large_final": [0.90, 0.91, 0.95, 0.96, 0.97], "random": [0.90, 0.92, 0.90, 0.88, 0.80]})
    check = claims.above(frame, "criterion", "large_final", "random", question="rq1", from_round=2)
    assert check.verdict == claims.PASS
    assert "rounds 2-4" in check.evidence and "+5.00 points at its smallest (round 2)" in check.evidence
    # from round 1 on, round 1 has large_final below random: a FAIL naming that round
    check = claims.above(frame, "criterion", "large_final", "random", question="rq1", from_round=1)
    assert check.verdict == claims.FAIL and "-1.00 points at its smallest (round 1)" in check.evidence


def test_default_start_is_round_8_or_the_middle_of_a_short_sweep():
    assert claims.default_from_round(_rounds({"a": [0.1] * 25})) == 8
    assert claims.default_from_round(_rounds({"a": [0.1] * 5})) == 2
    assert claims.default_from_round(_rounds({"a": [0.1] * 2})) == 1


def test_missing_setting_or_rounds_is_not_enough_data():
    frame = _rounds({"large_final": [0.9, 0.9]})
    check = claims.above(frame, "criterion", "large_final", "random", question="rq1")
    assert check.verdict == claims.NO_DATA and "no runs of random" in check.evidence
    frame = _rounds({"large_final": [0.9, 0.9], "random": [0.9, 0.9]})
    check = claims.above(frame, "criterion", "large_final", "random", question="rq1", from_round=5)
    assert check.verdict == claims.NO_DATA


def test_means_over_seeds_are_compared():
    frame = pd.DataFrame([{"mask0": n, "seed": s, "round": 1, "early_stop_test_acc": a}
                          for n, s, a in [("zero", 0, 0.90), ("zero", 1, 0.80), ("freeze_init", 0, 0.86),
                                          ("freeze_init", 1, 0.86)]])
    check = claims.rq3_mask0(frame)[0]  # zero (mean 0.85) vs freeze_init (0.86)
    assert check.verdict == claims.FAIL and "-1.00" in check.evidence


def test_rq4_and_rq5_verdicts():
    points = pd.DataFrame([{"criterion": "large_final_same_sign", "weights": w, "weights_remaining": r,
                            "test_acc": a} for w, r, a in [("init", 1.0, 0.1), ("init", 0.5, 0.79),
                                                           ("signed_constant", 0.5, 0.86)]])
    verdicts = [c.verdict for c in claims.rq4_supermasks(points, paper={"init": 79.3})]
    assert verdicts == [claims.PASS, claims.PASS, claims.PASS]
    checks = claims.rq5_learned({"init": 0.95, "init_dwr": 0.94}, dense=0.977)
    assert [c.verdict for c in checks] == [claims.PASS, claims.FAIL, claims.NO_DATA, claims.NO_DATA]
    assert "gap 2.70 points" in checks[0].evidence
    assert list(claims.table(checks).columns) == ["question", "claim", "verdict", "evidence"]


def test_rq4_best_is_each_seeds_best_averaged_as_table1():
    points = pd.DataFrame([{"criterion": "large_final_same_sign", "weights": "init", "seed": s, "weights_remaining": r,
                            "test_acc": a} for s, r, a in [(0, 0.5, 0.80), (0, 0.2, 0.70), (1, 0.5, 0.60),
                                                           (1, 0.2, 0.74)]])
    check = claims.rq4_supermasks(points)[0]  # per seed 0.80 and 0.74 -> 77.0 (the mean curve's best is 70.0)
    assert check.verdict == claims.PASS and "best over prune levels 77.0%" in check.evidence
