"""The dashboard's figures as BokehJS lays them out, without a kernel: each test draws made-up
series with the dashboard's own :class:`~lt_core.dashboard.views.plots.Plots`, writes the figures to
a standalone page (BokehJS inline) and reads back from headless Chromium what BokehJS computed:
axis ranges, where the title, toolbar and legend sit, and the tick labels."""

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
  const views = Bokeh.index.all_views();
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


def layouts_of(browser, tmp_path, figures, widths=CELL_WIDTHS) -> dict:
    """What BokehJS computed for ``figures`` (one below the other) in pages of each of ``widths`` px,
    by width (the figures go into one standalone page; a figure belongs to one page only)."""
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
            page.wait_for_function("() => window.Bokeh && Bokeh.index.all_views().some(v => v.model.type === 'Figure')"
                                   " && Bokeh.index.all_views().filter(v => v.model.type === 'Figure')"
                                   ".every(v => v.frame.bbox.width > 0 && Number.isFinite(v.model.y_range.start))")
            page.wait_for_timeout(300)
            out[width] = page.evaluate(LAYOUT)
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
