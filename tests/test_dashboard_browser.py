"""The dashboard's figures as BokehJS lays them out, without a kernel: each test draws made-up
series with the dashboard's own :class:`~lt_core.dashboard.views.plots.Plots`, writes the figures to
a standalone page (BokehJS inline) and reads back from headless Chromium what BokehJS computed:
axis ranges, where the title, toolbar and legend sit, and the tick labels."""

import re
import shutil
from pathlib import Path

import pytest

from lt_core.dashboard.series import Series
from lt_core.dashboard.tables import plot_tables
from lt_core.dashboard.views.plots import Plots

CHROMIUM = Path("/usr/bin/chromium")
# a plot cell's width: half a 1280 px page (two plots a row), and a 1024 px page (one a row)
CELL_WIDTHS = (600, 980)

# per figure (by title): its y ranges, frame box, title box and text width, toolbar box, legend box
LAYOUT = """() => { const out = {}, ctx = document.createElement('canvas').getContext('2d');
  const views = [...Bokeh.index.all_views()];
  for (const v of views) {
    if (v.model.type !== 'Figure') continue;
    const f = v.frame.bbox, r = {frame: [f.left, f.top, f.right, f.bottom], figure_width: v.bbox.width,
      y: [v.model.y_range.start, v.model.y_range.end], extra_y: {}};
    for (const [name, range] of Object.entries(v.model.extra_y_ranges ?? {})) r.extra_y[name] = [range.start, range.end];
    for (const rv of views) {
      if (rv.parent !== v) continue;
      const b = rv.bbox ? [rv.bbox.left, rv.bbox.top, rv.bbox.right, rv.bbox.bottom] : null;
      if (rv.model.type === 'Title') { ctx.font = rv.visuals.text.font_value();
        r.title = {text: rv.model.text, box: b, width: ctx.measureText(rv.model.text).width}; }
      if (rv.model.type === 'ToolbarPanel') r.toolbar = b;
      if (rv.model.type === 'Legend') r.legend = b;
      if (rv.model.type === 'LinearAxis' && rv.model.y_range_name !== 'default') r.right_axis = b;
    }
    out[v.model.title.text] = r; }
  return out; }"""


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists() and not shutil.which("chromium"):
        pytest.skip("no Chromium")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM if CHROMIUM.exists() else shutil.which("chromium")),
                               args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


def layouts_of(browser, tmp_path, figures, widths=CELL_WIDTHS, script: str = LAYOUT) -> dict:
    """What BokehJS computed for ``figures`` (one below the other) in pages of each of ``widths`` px,
    by width: ``script``'s result (the figures go into one standalone page; a figure belongs to one
    page only)."""
    from bokeh.embed import file_html
    from bokeh.layouts import column
    from bokeh.resources import INLINE

    path = tmp_path / f"figures-{len(list(tmp_path.iterdir()))}.html"
    path.write_text(file_html(column(*figures, sizing_mode="stretch_width"), INLINE, "figures"))
    out = {}
    for width in widths:
        page = browser.new_page(viewport={"width": width, "height": 800})
        try:
            page.goto(path.as_uri())
            page.wait_for_function("() => window.Bokeh && [...Bokeh.index.all_views()].some(v => v.model.type === 'Figure')"
                                   " && [...Bokeh.index.all_views()].filter(v => v.model.type === 'Figure')"
                                   ".every(v => v.frame.bbox.width > 0 && Number.isFinite(v.model.y_range.start))")
            page.wait_for_timeout(300)
            out[width] = page.evaluate(script)
        finally:
            page.close()
    return out


def learned_series(weights: str, accs, keeps) -> Series:
    setting = f"learned · {weights}"
    s = Series(f"mask-{weights}", f"{setting} · seed 0", "learned", setting=setting, hue=weights,
               learn_variant={"weights": weights, "dwr": False, "seed": 0})
    s.learn = [{"iteration": 100 * (k + 1), "epoch": 0.5 * (k + 1), "test_acc": a / 100, "expected_keep_fraction": q / 100}
               for k, (a, q) in enumerate(zip(accs, keeps))]
    return s


def test_the_learned_plot_gives_accuracy_and_keep_their_own_axes_with_the_legend_below_and_the_title_whole(
        browser, tmp_path):
    accs = ([85.0, 88.5, 90.2, 91.0], [86.0, 89.0, 92.0, 93.0])
    keeps = ([50.0, 45.0, 41.0, 38.0], [50.0, 52.0, 55.0, 57.0])
    snap = {"series": [learned_series("init", accs[0], keeps[0]),
                       learned_series("signed_constant", accs[1], keeps[1])], "overlays": []}
    for arch, top in ((None, 93.0), ("fc", 97.8)):  # fc: the paper's learned masks reach 97.8% (Table 1)
        plots = Plots()
        plots.render(arch, plot_tables(snap))
        assert plots.learn_keep.drawn() == {"learned · init · keep": 4, "learned · signed_constant · keep": 4}
        for width, layout in layouts_of(browser, tmp_path, [plots.learn_fig]).items():
            fig = layout["Learned supermask"]
            # the accuracy axis spans the accuracy lines (and the paper's levels), one point of padding,
            # not the keep values of 38-57%
            assert fig["y"][0] == pytest.approx(84.0, abs=0.01) and fig["y"][1] == pytest.approx(top + 1, abs=0.01)
            assert fig["extra_y"] == {"keep": [0, 100]}
            left, top_, right, bottom = fig["frame"]
            assert fig["right_axis"][0] >= right - 1  # the keep axis is next to the plot area...
            lg = fig["legend"]  # ...and the legend below both, inside the figure's width
            assert lg[1] >= bottom and lg[0] >= 0 and lg[2] <= fig["figure_width"], (lg, fig)
            title = fig["title"]
            assert title["width"] <= title["box"][2] - title["box"][0], title


# every weights-remaining axis: its tick labels, their screen positions and widths (and which axis)
REMAINING_TICKS = """() => { const out = [], ctx = document.createElement('canvas').getContext('2d');
  for (const v of [...Bokeh.index.all_views()]) {
    if (!String(v.model.type).endsWith('Axis') || !String(v.model.axis_label).startsWith('weights remaining')) continue;
    const d = v.dimension, coords = v.tick_coords.major, labels = v.compute_labels(coords[d]).items.map(t => t.text);
    ctx.font = v.visuals.major_label_text.font_value();
    out.push({figure: v.parent.model.title.text, dimension: d, labels, at: v.scoords(coords)[d],
              widths: labels.map(t => ctx.measureText(t).width)}); }
  return out; }"""


def lottery_series(bottom: float, rounds: int = 6) -> Series:
    """A lottery run whose weights remaining fall from 100% to ``bottom``% over ``rounds`` rounds."""
    s = Series("lf", "large_final · seed 0", "lottery", setting="large_final", hue="large_final")
    for k in range(rounds + 1):
        left = (bottom / 100) ** (k / rounds)
        s.rounds[k] = {"round": k, "weights_remaining": left, "early_stop_test_acc": 0.97 - 0.01 * k,
                       "layer_remaining": {"fc1": left, "fc2": left, "fc3": left ** 0.5}}
    s.current_round = rounds
    return s


def oneshot_series(criteria, bottom: float, seed: int = 0) -> Series:
    """One-shot points of ``criteria`` on both weight kinds, from 100% down to ``bottom``% kept."""
    s = Series(f"os{seed}", f"one-shot · seed {seed}", "oneshot", seed=seed, setting="one-shot", hue="oneshot")
    for c, criterion in enumerate(criteria):
        for w, weights in enumerate(("init", "signed_constant")):
            for p in range(9):
                s.points.append({"criterion": criterion, "weights": weights, "power": p,
                                 "weights_remaining": (bottom / 100) ** (p / 8), "test_acc": 0.5 + 0.05 * c + 0.1 * w,
                                 "train_acc": 0.5})
    return s


def test_every_weights_remaining_axis_reads_plain_percentages_that_never_touch(browser, tmp_path):
    """Whatever the span (a first round at 80%, a long run down to 0.1%), the lottery, per-layer and
    one-shot axes label their ticks 100, 90, 80 or 100, 50, 20, 10 (never 10², 10¹), 100 first,
    and no two labels overlap, on a plot cell of half a 1280 px page and of a 1024 px page."""
    for bottom in (80.0, 41.0, 20.0, 3.0, 0.5, 0.06):
        plots = Plots()
        snap = {"series": [lottery_series(bottom), oneshot_series(("large_final",), bottom)], "overlays": []}
        plots.render("fc", plot_tables(snap))
        figures = [plots.prune_fig, plots.layer_fig, plots.super_fig]
        for width, axes in layouts_of(browser, tmp_path, figures, script=REMAINING_TICKS).items():
            assert sorted(a["figure"] for a in axes) == ["Early-stop test accuracy vs weights remaining",
                                                          "One-shot supermask on the untrained network",
                                                          "Weights remaining per layer"]
            for a in axes:
                where = (bottom, width, a["figure"], a["labels"])
                assert len(a["labels"]) >= 2 and "100" in a["labels"], where
                assert all(re.fullmatch(r"\d+(\.\d+)?", t) for t in a["labels"]), where
                values = [float(t) for t in a["labels"]]
                assert all(bottom * 0.8 - 1e-9 <= v <= 100 for v in values), where
                for i in range(len(values) - 1):
                    gap = abs(a["at"][i + 1] - a["at"][i])
                    # side by side: half of each label's width apart, and 4 px; one above the other: 14 px
                    need = (a["widths"][i] + a["widths"][i + 1]) / 2 + 4 if a["dimension"] == 0 else 14
                    assert gap >= need, (where, i, gap, need)


def hue(color: str) -> float:
    import colorsys

    r, g, b = (int(color[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return colorsys.rgb_to_hsv(r, g, b)[0] * 360


def test_one_shot_lines_take_their_criterions_colour_family_and_a_second_cue_for_the_weights(browser, tmp_path):
    """Each criterion one colour family: initial weights solid, full colour, round points; signed
    constants dashed, lighter, triangles. large_final and large_final_same_sign are far apart in hue.
    The legend (compact names, a criterion's two kinds side by side) sits below the plot and is no
    wider than the figure, and the title is not covered by the toolbar."""
    criteria = ("large_final_same_sign", "large_final", "magnitude_increase", "random")
    plots = Plots()
    snap = {"series": [oneshot_series(criteria, 0.5, seed) for seed in (0, 1)], "overlays": []}
    plots.render("fc", plot_tables(snap))
    drawn = {}
    for kind, group in plots.supermask.items():
        for i, label in enumerate(group.labels):
            if label is not None:
                _, line, band, dots, item = group.slots[i]
                drawn[label] = (line.glyph.line_color, line.glyph.line_dash, dots.glyph.marker, item.label.value)
    assert sorted(drawn) == sorted(f"{c} · {k}" for c in criteria for k in ("init", "signed const"))
    for c in criteria:
        init, signed = drawn[f"{c} · init"], drawn[f"{c} · signed const"]
        assert init[0] != signed[0] and abs(hue(init[0]) - hue(signed[0])) < 3  # one family, two shades
        assert max(int(signed[0][i:i + 2], 16) for i in (1, 3, 5)) > max(int(init[0][i:i + 2], 16) for i in (1, 3, 5))
        assert (init[1], init[2]) == ([], "circle") and (signed[1], signed[2]) == ([6], "triangle")
        assert init[3] == f"{c} · init (2 seeds)"
    distance = abs(hue(drawn["large_final · init"][0]) - hue(drawn["large_final_same_sign · init"][0]))
    assert min(distance, 360 - distance) >= 60
    names = [getattr(i.label, "value", None) for i in plots.super_fig.legend[0].items if i.visible]
    lines = [n for n in names if n is not None]
    assert lines == sorted(lines) and lines[:2] == ["large_final · init (2 seeds)",
                                                    "large_final · signed const (2 seeds)"]
    for width, layout in layouts_of(browser, tmp_path, [plots.super_fig]).items():
        fig = layout["One-shot supermask on the untrained network"]
        lg, frame = fig["legend"], fig["frame"]
        assert lg[1] >= frame[3] and lg[0] >= 0 and lg[2] <= fig["figure_width"], (width, lg, fig)
        title = fig["title"]
        assert title["box"][0] + title["width"] <= min(title["box"][2], (fig.get("toolbar") or [1e9])[0]), (width, fig)


# the accuracy-vs-kept plot: its x range, the points' and stars' screen positions, the legend's box
FAMILY_LAYOUT = """() => { const out = {};
  for (const v of [...Bokeh.index.all_views()]) {
    if (v.model.type !== 'Figure' || !v.model.title.text.startsWith('Learned masks')) continue;
    const f = v.frame.bbox, r = {frame: [f.left, f.top, f.right, f.bottom], figure_width: v.bbox.width,
      x: [v.model.x_range.start, v.model.x_range.end], y: [v.model.y_range.start, v.model.y_range.end],
      points: {}, legend: null};
    for (const rv of v.renderer_views.values()) {
      const src = rv.model.data_source;
      if (!src || !['families_points', 'families_paper'].includes(src.name)) continue;
      const xs = src.data.x, ys = src.data.y;
      r.points[src.name] = [...xs].map((x, i) => [rv.coordinates.x_scale.compute(x), rv.coordinates.y_scale.compute(ys[i])]);
    }
    for (const rv of views_of(v)) if (rv.model.type === 'Legend') r.legend = [rv.bbox.left, rv.bbox.top, rv.bbox.right, rv.bbox.bottom];
    out.title = r; }
  return out;
  function views_of(p) { return [...Bokeh.index.all_views()].filter(x => x.parent === p); } }"""


def family_series(family: str, keep: float, acc: float, seed: int = 0) -> Series:
    setting = f"{family} · {keep:g}% kept"
    s = Series(f"{family}-{keep}", f"{setting} · seed {seed}", "learned", setting=setting, hue=setting, seed=seed,
               learn_variant={"method": family, "weights": None, "dwr": False, "seed": seed,
                              "keep_fraction": keep / 100})
    s.learn = [{"iteration": 10, "epoch": 1.0, "test_acc": acc / 100, "expected_keep_fraction": keep / 100}]
    s.learn_final = {"test_acc_mean": acc / 100, "expected_keep_fraction": keep / 100}
    return s


def test_the_accuracy_vs_kept_plot_shows_every_run_and_the_papers_star_inside_its_frame(browser, tmp_path):
    snap = {"series": [family_series("edge_popup", 5.0, 91.9), family_series("edge_popup", 50.0, 93.5),
                       family_series("zhou", 42.0, 95.0), family_series("signed", 2.4, 96.1)], "overlays": []}
    plots = Plots()
    plots.render("fc", plot_tables(snap))
    for width, layout in layouts_of(browser, tmp_path, [plots.family_fig], script=FAMILY_LAYOUT).items():
        fig = layout["title"]
        left, top, right, bottom = fig["frame"]
        assert fig["x"][0] < 2.4 and fig["x"][1] > 50.0, fig  # the log axis spans every point
        points = fig["points"]
        assert len(points["families_points"]) == 4 and len(points["families_paper"]) == 1
        for x, y in points["families_points"] + points["families_paper"]:
            assert left <= x <= right and top <= y <= bottom, (width, x, y, fig["frame"])
        lg = fig["legend"]  # below the plot, inside the figure's width
        assert lg[1] >= bottom and lg[2] <= fig["figure_width"] + 1, (width, lg, fig)
