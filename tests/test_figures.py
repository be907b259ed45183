"""Static figures: bands over seeds computed right, one line per setting, files written."""

import pandas as pd
import pytest

from lt_core.paper import figures


def _frame():
    rows = []
    for crit, accs in {"large_final": [[0.90, 0.92, 0.94], [0.92, 0.94, 0.90]],
                       "random": [[0.90, 0.88, 0.80], [0.92, 0.86, 0.84]]}.items():
        for seed, per_round in enumerate(accs):
            for rnd, acc in enumerate(per_round):
                rows.append({"criterion": crit, "seed": seed, "round": rnd, "percent_remaining": 100 * 0.8 ** rnd,
                             "early_stop_test_acc": acc})
    return pd.DataFrame(rows)


def test_seed_bands_are_mean_min_max_over_seeds():
    b = figures.seed_bands(_frame(), "criterion").set_index(["criterion", "round"])
    assert b.loc[("large_final", 2), "mean"] == pytest.approx(0.92)
    assert b.loc[("large_final", 2), "low"] == pytest.approx(0.90)
    assert b.loc[("large_final", 2), "high"] == pytest.approx(0.94)
    assert b.loc[("random", 1), "mean"] == pytest.approx(0.87)
    assert b.loc[("random", 1), "x"] == pytest.approx(80.0)
    assert b.loc[("random", 1), "seeds"] == 2


def test_accuracy_figure_has_a_line_and_band_per_setting_and_the_dense_reference():
    fig = figures.accuracy_vs_remaining(_frame(), "criterion", dense=0.91)
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.lines]
    assert labels == ["large_final", "random", "dense network"]
    assert len(ax.collections) == 2  # one min-max band per setting
    assert ax.lines[0].get_color() == figures.colour("large_final")
    assert list(ax.lines[1].get_ydata()) == pytest.approx([91.0, 87.0, 82.0])
    assert ax.get_xscale() == "log" and ax.get_xlim()[0] > ax.get_xlim()[1]  # reversed: pruning goes right
    assert ax.get_legend() is not None


def test_one_seed_draws_no_band():
    frame = _frame()
    fig = figures.accuracy_vs_remaining(frame[frame["seed"] == 0], "criterion")
    assert len(fig.axes[0].collections) == 0


def test_colours_are_stable_and_distinct_for_builtin_names():
    names = ["large_final", "magnitude_increase", "movement", "random", "rewind", "reinit_sign", "zero"]
    assert len({figures.colour(n) for n in names}) == len(names)
    assert figures.colour("my_own_criterion") == figures.colour("my_own_criterion")
    assert figures.REFERENCE not in {figures.colour(n) for n in names}


def test_save_writes_png_and_svg(tmp_path):
    fig = figures.accuracy_vs_remaining(_frame(), "criterion")
    paths = figures.save(fig, tmp_path / "rq1" / "figure")
    assert [p.suffix for p in paths] == [".png", ".svg"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and paths[0].stat().st_size > 10_000
    assert b"<svg" in paths[1].read_bytes()[:2000]
    assert not [p for p in (tmp_path / "rq1").iterdir() if p.name.startswith(".")]  # no temporary files left


def test_supermask_and_learned_mask_figures_draw_what_they_are_given():
    points = pd.DataFrame([{"criterion": "large_final_same_sign", "weights": w, "weights_remaining": r,
                            "test_acc": a} for w, r, a in [("init", 1.0, 0.1), ("init", 0.5, 0.8),
                                                           ("signed_constant", 1.0, 0.1),
                                                           ("signed_constant", 0.5, 0.85)]])
    ax = figures.supermask_accuracy(points, paper={"init": 79.3, "signed_constant": 86.3}).axes[0]
    assert [l.get_label() for l in ax.lines][:2] == ["large_final_same_sign, initial weights",
                                                     "large_final_same_sign, signed constants"]
    assert list(ax.lines[1].get_ydata()) == pytest.approx([10.0, 85.0])
    metrics = pd.DataFrame([{"run": "a", "round": 0, "iteration": i, "split": s, "metric": m, "value": v}
                            for i in (10, 20) for s, m, v in [("test", "accuracy", 0.5 + i / 100),
                                                             ("mask", "expected_keep_fraction", 0.5)]])
    fig = figures.learned_mask_curves(metrics, labels={"a": "init"})
    acc_ax, keep_ax = fig.axes
    assert list(acc_ax.lines[0].get_ydata()) == pytest.approx([60.0, 70.0])
    assert list(keep_ax.lines[0].get_ydata()) == pytest.approx([50.0, 50.0])


def test_learned_curves_share_a_colour_per_setting_and_dash_per_seed():
    metrics = pd.DataFrame([{"run": run, "round": 0, "iteration": 10, "split": "test", "metric": "accuracy",
                             "value": 0.5} for run in ("a0", "b0", "a1")])
    fig = figures.learned_mask_curves(metrics, groups={"a0": "init", "b0": "init_dwr", "a1": "init"})
    a0, b0, a1 = fig.axes[0].lines
    assert a0.get_color() == a1.get_color() == figures.PALETTE[0] and b0.get_color() == figures.PALETTE[1]
    assert (a0.get_linestyle(), a1.get_linestyle(), b0.get_linestyle()) == ("-", "--", "-")


def test_table1_bars_draw_ours_beside_the_paper_or_say_why_not():
    from lt_core.paper import table1

    values = {"dense": pd.Series([0.97, 0.99]), "mask_init": pd.Series([0.8])}
    frame = pd.concat([table1.table1_rows("fc", values, "s"), table1.empty_rows("conv2", "no data: CIFAR-10 missing")])
    fc_ax, conv_ax = figures.table1_bars(frame).axes
    bars = fc_ax.patches
    assert [round(b.get_height(), 6) for b in bars] == [80.0, 98.0]  # the cells with numbers of ours
    assert list(fc_ax.collections[0].get_offsets()[:, 1]) == pytest.approx([79.3, 86.3, 95.3, 96.4, 97.8, 97.8, 97.7])
    assert not conv_ax.patches[1:] and "no data: CIFAR-10 missing" in conv_ax.texts[0].get_text()


def _families_frame(signed_acc=0.968):
    zhou = {"initial weights": (51.1, 0.925), "signed constants": (51.6, 0.933),
            "initial weights + DWR": (47.3, 0.965), "signed constants + DWR": (47.5, 0.966)}
    rows = []
    for seed in (0, 1):
        for setting, (kept, acc) in zhou.items():
            rows.append({"family": "zhou", "setting": setting, "seed": seed, "percent_kept": kept + 0.2 * seed,
                         "test_acc": acc - 0.002 * seed})
        for kept, acc in ((50, 0.967), (5, 0.975), (10, 0.977), (30, 0.972)):
            rows.append({"family": "edge_popup", "setting": f"keep {kept}%", "seed": seed,
                         "percent_kept": float(kept), "test_acc": acc + 0.002 * seed})
        rows.append({"family": "signed", "setting": "signed", "seed": seed, "percent_kept": 46.3,
                     "test_acc": signed_acc})
    return pd.DataFrame(rows)


def test_families_figure_names_the_settings_crowded_near_half_kept_without_overlapping_text():
    fig = figures.families_accuracy(_families_frame(), dense=0.94, paper_points=[("paper", 3.77, 97.48)])
    fig.canvas.draw()
    ax = fig.axes[0]
    boxes = [t.get_window_extent() for t in ax.texts if t.get_visible() and t.get_text()]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    for setting in ("initial weights", "signed constants", "initial weights + DWR", "signed constants + DWR"):
        assert f"zhou, {setting} (2 seeds)" in labels
    assert "edge_popup, keep 5, 10, 30, 50% (2 seeds)" in labels and "signed (2 seeds)" in labels
    zhou_markers = {c[0].get_marker() for c in ax.containers if c.get_label().startswith("zhou, ")}
    assert len(zhou_markers) == 4  # one marker per setting, the family's colour
    # every value far above chance: the accuracy axis spans them, chance named as below it
    assert 90 < ax.get_ylim()[0] < 92.5 and ax.get_ylim()[1] < 98.5
    assert "chance: 10%, below this axis" in labels


def test_a_family_has_the_dashboards_colour_whatever_families_are_drawn():
    from matplotlib.colors import to_hex

    from lt_core.colours import family_colour

    def colours(frame):
        ax = figures.families_accuracy(frame).axes[0]
        return {c.get_label().split(",")[0].split(" (")[0]: to_hex(c[0].get_color()) for c in ax.containers}

    both = colours(_families_frame())
    alone = colours(_families_frame()[lambda f: f["family"] == "signed"])  # drawn first, and alone
    assert both["signed"] == alone["signed"] == family_colour("signed") != family_colour("edge_popup")
    assert both["zhou"] == family_colour("zhou") and both["edge_popup"] == family_colour("edge_popup")


def test_families_figure_labels_a_tick_beside_masks_that_keep_a_few_percent():
    frame = _families_frame()
    frame.loc[frame["family"] == "signed", "percent_kept"] = 3.6  # signed supermasks at the paper's schedule
    ax = figures.families_accuracy(frame).axes[0]
    assert list(ax.get_xticks()) == [3, 5, 10, 20, 50, 100] and ax.get_xlim()[0] == pytest.approx(0.7 * 3.6)


def test_families_figure_reaches_down_to_chance_when_a_run_is_near_it():
    fig = figures.families_accuracy(_families_frame(signed_acc=0.11))
    ax = fig.axes[0]
    assert ax.get_ylim()[0] <= 10 and "chance" in [t.get_text() for t in ax.get_legend().get_texts()]
