"""Table 1 from hand-made frames: best over powers per seed, mean and spread over seeds, the paper beside."""

import pandas as pd
import pytest

from lt_core.paper import table1


def _values():
    dense = pd.DataFrame({"seed": [0, 1], "round": [0, 0], "early_stop_test_acc": [0.97, 0.98]})
    points = pd.DataFrame([{"seed": s, "criterion": c, "weights": w, "power": p, "test_acc": a}
                           for s, c, w, p, a in [
                               (0, "large_final_same_sign", "init", 0, 0.10), (0, "large_final_same_sign", "init", 8, 0.78),
                               (1, "large_final_same_sign", "init", 0, 0.10), (1, "large_final_same_sign", "init", 8, 0.80),
                               (0, "large_final_same_sign", "signed_constant", 8, 0.85),
                               (1, "large_final_same_sign", "signed_constant", 8, 0.87),
                               (0, "random", "init", 8, 0.99)]])  # another criterion never counts
    learned = pd.DataFrame([{"seed": s, "weights": w, "dwr": d, "test_acc": a} for s, w, d, a in [
        (0, "init", False, 0.95), (1, "init", False, 0.96), (0, "init", True, 0.97),
        (0, "signed_constant", False, 0.96), (0, "signed_constant", True, 0.98)]])
    return table1.cell_values(dense, points, learned)


def test_rows_hold_ours_the_paper_and_the_difference():
    rows = table1.table1_rows("fc", _values(), "quick: ...").set_index("cell")
    assert list(rows.index) == [cell for cell, _, _ in table1.CELLS]
    assert rows.loc["mask_init", "ours"] == pytest.approx(79.0)  # best over powers per seed: 78, 80
    assert rows.loc["mask_init", "ours_sd"] == pytest.approx(1.41421356, rel=1e-6)
    assert (rows.loc["mask_init", "ours_min"], rows.loc["mask_init", "ours_max"]) == pytest.approx((78.0, 80.0))
    assert rows.loc["mask_init", "paper"] == 79.3
    assert rows.loc["mask_init", "difference"] == pytest.approx(-0.3)
    assert rows.loc["mask_signed_constant", "ours"] == pytest.approx(86.0)
    assert rows.loc["learned_init", "seeds"] == 2 and rows.loc["learned_dwr_init", "seeds"] == 1
    assert pd.isna(rows.loc["learned_dwr_init", "ours_sd"])  # one seed: no spread
    assert rows.loc["learned_dwr_init", "paper"] == rows.loc["learned_dwr_signed_constant", "paper"] == 97.8
    assert rows.loc["dense", "ours"] == pytest.approx(97.5) and rows.loc["dense", "paper"] == 97.7
    assert (rows["schedule"] == "quick: ...").all() and (rows["network"] == "FC 300-100-10 (MNIST)").all()


def test_empty_rows_keep_the_paper_and_say_why():
    rows = table1.empty_rows("conv4", "no data: CIFAR-10 missing")
    assert rows["ours"].isna().all() and (rows["note"] == "no data: CIFAR-10 missing").all()
    assert rows.set_index("cell").loc["dense", "paper"] == 75.4


def test_paper_style_reads_ours_sd_and_paper():
    frame = pd.concat([table1.table1_rows("fc", _values(), "s"), table1.empty_rows("conv2", "no data")])
    wide = table1.paper_style(frame)
    assert list(wide.index) == ["FC 300-100-10 (MNIST)", "Conv2 (CIFAR-10)"]
    assert wide.loc["FC 300-100-10 (MNIST)", "one-shot mask, initial weights"] == "79.0 ± 1.4 (79.3)"
    assert wide.loc["FC 300-100-10 (MNIST)", "learned mask + DWR, initial weights"] == "97.0 (97.8)"
    assert wide.loc["Conv2 (CIFAR-10)", "trained dense network"] == "— (69.2)"
