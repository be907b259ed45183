"""The paper's Table 1, ours beside the paper's: one row per network and cell.

Cells (protocol section 8.1): the one-shot ``large_final_same_sign`` mask on the untrained network
with its initial weights and with signed constants (the best over prune powers, per seed), learned
masks on initial weights and on signed constants, learned masks with dynamic weight rescaling on
each of the two (the paper gives one DWR value without saying which weights; both are compared with
it), and the trained dense network (early-stop test accuracy). Ours is the mean over seeds with its
standard deviation, minimum and maximum; ``difference`` is ours minus the paper's, in points.

A network whose dataset is not on this machine keeps its rows, with the paper's values, empty
cells of ours and a ``note`` saying why.
"""

from __future__ import annotations

from typing import Optional

import pandas as pd

from ..archs import get_arch

SUPERMASK_CRITERION = "large_final_same_sign"
# (cell, words, the paper's Table 1 column)
CELLS = (("mask_init", "one-shot mask, initial weights", "mask_init"),
         ("mask_signed_constant", "one-shot mask, signed constants", "mask_signed_constant"),
         ("learned_init", "learned mask, initial weights", "learned_init"),
         ("learned_signed_constant", "learned mask, signed constants", "learned_signed_constant"),
         ("learned_dwr_init", "learned mask + DWR, initial weights", "learned_dwr"),
         ("learned_dwr_signed_constant", "learned mask + DWR, signed constants", "learned_dwr"),
         ("dense", "trained dense network", "dense"))
COLUMNS = ["arch", "network", "cell", "what", "ours", "ours_sd", "ours_min", "ours_max", "seeds", "paper",
           "difference", "schedule", "note"]


def _row(arch: str, cell: str, what: str, paper_column: str, values: Optional[pd.Series], schedule: str,
         note: str = "") -> dict:
    a = get_arch(arch)
    paper = (a.paper_table1 or {}).get(paper_column)
    row = {"arch": arch, "network": a.label, "cell": cell, "what": what, "ours": None, "ours_sd": None,
           "ours_min": None, "ours_max": None, "seeds": 0, "paper": paper, "difference": None,
           "schedule": schedule, "note": note}
    if values is not None and len(values):
        pct = 100 * values.astype(float)
        row.update(ours=pct.mean(), ours_sd=pct.std(ddof=1) if len(pct) > 1 else None, ours_min=pct.min(),
                   ours_max=pct.max(), seeds=len(pct))
        if paper is not None:
            row["difference"] = row["ours"] - paper
    elif not note:
        row["note"] = "not run"
    return row


def cell_values(dense: pd.DataFrame, points: pd.DataFrame, learned: pd.DataFrame) -> dict:
    """Per cell, one value (a fraction) per seed.

    ``dense``: round-0 rows (``seed``, ``early_stop_test_acc``); ``points``: one-shot supermask points
    (``seed``, ``criterion``, ``weights``, ``test_acc``); ``learned``: one row per learned mask
    (``seed``, ``weights``, ``dwr``, ``test_acc``).
    """
    out = {"dense": dense.groupby("seed")["early_stop_test_acc"].mean()}
    ours = points[points["criterion"] == SUPERMASK_CRITERION]
    for kind in ("init", "signed_constant"):
        out[f"mask_{kind}"] = ours[ours["weights"] == kind].groupby("seed")["test_acc"].max()
        for dwr, cell in ((False, f"learned_{kind}"), (True, f"learned_dwr_{kind}")):
            chosen = learned[(learned["weights"] == kind) & (learned["dwr"] == dwr)]
            out[cell] = chosen.groupby("seed")["test_acc"].mean()
    return out


def table1_rows(arch: str, values: dict, schedule: str) -> pd.DataFrame:
    """The arch's rows of Table 1 from :func:`cell_values`; ``schedule`` says what ours were trained with."""
    return pd.DataFrame([_row(arch, cell, what, column, values.get(cell), schedule)
                         for cell, what, column in CELLS], columns=COLUMNS)


def empty_rows(arch: str, reason: str) -> pd.DataFrame:
    """The arch's rows with the paper's values only, and ``reason`` as the note of each."""
    return pd.DataFrame([_row(arch, cell, what, column, None, "", reason) for cell, what, column in CELLS],
                        columns=COLUMNS)


def paper_style(frame: pd.DataFrame) -> pd.DataFrame:
    """Table 1 as the paper lays it out: one row per network, one column per cell, ``ours (paper)``."""
    def text(r) -> str:
        paper = "" if pd.isna(r["paper"]) else f" ({r['paper']:.1f})"
        if pd.isna(r["ours"]):
            return f"—{paper}"
        sd = "" if pd.isna(r["ours_sd"]) else f" ± {r['ours_sd']:.1f}"
        return f"{r['ours']:.1f}{sd}{paper}"

    wide = frame.assign(value=frame.apply(text, axis=1)).pivot(index="network", columns="what", values="value")
    wide = wide[[what for _, what, _ in CELLS if what in wide.columns]]
    return wide.loc[list(dict.fromkeys(frame["network"]))]
