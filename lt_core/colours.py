"""One colour per criterion, policy, weight-kind or mask-family name, shared by the static figures
(:mod:`lt_core.paper.figures`) and the dashboard's plots, so a name has the same colour everywhere.

The built-in names take fixed places in :data:`PALETTE` (none repeats); other names (criteria or
policies users register) take a stable hash of the name. No data colour is black or grey: those
are the reference lines' (:data:`REFERENCE`, :data:`PAPER`).
"""

from __future__ import annotations

import hashlib

# 26 distinguishable colours, none black or grey.
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
           "#7b4173", "#e6550d", "#31a354", "#756bb1", "#843c39", "#d6616b", "#3182bd", "#637939", "#ce6dbd",
           "#fd8d3c", "#6baed6", "#393b79", "#a55194", "#b5cf6b", "#e7ba52", "#5254a3", "#ad494a"]
# The built-in names in a fixed order, so a name keeps its colour whatever else is on a plot
# (large_final blue, large_final_same_sign plum: the two are compared side by side).
KNOWN = ["large_final", "magnitude_increase", "movement", "large_init_large_final", "large_init", "small_final",
         "small_init", "small_init_small_final", "random", "large_final_same_sign", "large_final_diff_sign",
         "rewind", "reinit", "reshuffle", "constant", "signed_reinit", "signed_reshuffle", "signed_constant",
         "zero", "freeze_init", "freeze_init_zero_mask", "freeze_init_zero_all", "freeze_init_zero_reshuffle",
         "freeze_init_zero_rev", "init"]
REFERENCE = "black"  # the dense network trained here
PAPER = "#555555"  # the paper's published values


def colour(name: str) -> str:
    """The colour of a criterion / policy / weight-kind name, the same in every figure and plot."""
    if name in KNOWN:
        return PALETTE[KNOWN.index(name) % len(PALETTE)]
    digest = int(hashlib.sha256(str(name).encode()).hexdigest(), 16)
    return PALETTE[digest % len(PALETTE)]


# The mask-learning families' colours (the families figure and the dashboard's accuracy-vs-kept plot);
# a method a user registers takes its name's colour.
FAMILY_COLOURS = {"zhou": PALETTE[0], "edge_popup": PALETTE[2], "signed": PALETTE[1]}


def family_colour(family: str) -> str:
    """The colour of a mask-learning method (family) name, the same in the figure and the dashboard."""
    return FAMILY_COLOURS.get(family) or colour(family)
