"""The explorer's page as `python -m lt_core.dashboard` serves it (Voila with the page's template,
on loopback, an empty results store) in headless Chromium: nothing is requested from outside the
machine (the template drops Voila's CDN stylesheets; Font Awesome's icons still draw, from Voila's
own bundle), every choice of every drop-down fits its box, and no plot's title is covered by its
toolbar or cut by the figure's edge, at 1280 and 1024 px."""

import os
from pathlib import Path
from urllib.parse import urlparse

import pytest

from .conftest import DATA_DIR
from .voila_server import free_port, running

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]

# every single-choice drop-down of the page: its class, width, and each choice's text width in its font
DROPDOWNS = """() => { const ctx = document.createElement('canvas').getContext('2d'), out = [];
  for (const sel of document.querySelectorAll('.lt-dashboard select:not([multiple])')) {
    const box = sel.closest('.widget-dropdown'), st = getComputedStyle(sel);
    if (!sel.offsetParent) continue;  // on a hidden tab
    ctx.font = `${st.fontWeight} ${st.fontSize} ${st.fontFamily}`;
    out.push({cls: [...box.classList].filter(c => c.startsWith('lt-')).join(' '), width: sel.clientWidth,
              padding: parseFloat(st.paddingLeft) + parseFloat(st.paddingRight),
              texts: [...sel.options].map(o => [o.text, ctx.measureText(o.text).width])}); }
  return out; }"""

# per figure of the page: its title's box and text width, its toolbar's box (BokehJS's layout)
TITLES = """() => { const out = [], ctx = document.createElement('canvas').getContext('2d');
  const views = window.Bokeh ? [...Bokeh.index.all_views()] : [];
  for (const v of views) {
    if (v.model.type !== 'Figure' || !v.el.isConnected || v.bbox.width === 0) continue;
    const r = {title: null, toolbar: null, width: v.bbox.width};
    for (const rv of views) {
      if (rv.parent !== v) continue;
      const b = rv.bbox ? [rv.bbox.left, rv.bbox.top, rv.bbox.right, rv.bbox.bottom] : null;
      if (rv.model.type === 'Title') { ctx.font = rv.visuals.text.font_value();
        r.title = {text: rv.model.text, box: b, width: ctx.measureText(rv.model.text).width}; }
      if (rv.model.type === 'ToolbarPanel') r.toolbar = b; }
    out.push(r); }
  return out; }"""


@pytest.fixture(scope="module")
def page_url(tmp_path_factory):
    pytest.importorskip("playwright")
    if not CHROMIUM.exists():
        pytest.skip("no Chromium at /usr/bin/chromium")
    from lt_core.dashboard.serve import voila_command

    tmp = tmp_path_factory.mktemp("page")
    port = free_port()
    cmd, env = voila_command(["--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1"])
    env.update(LT_RESULTS_DIR=str(tmp / "results"), LT_DATA_DIR=str(DATA_DIR),
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    with running(cmd, port, env, REPO, tmp / "voila.log"):
        yield f"http://127.0.0.1:{port}/"


def test_the_page_requests_nothing_from_outside_fits_its_choices_and_keeps_titles_clear(page_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            for width in (1280, 1024):
                page = browser.new_page(viewport={"width": width, "height": 900})
                requests, errors = [], []
                page.on("request", lambda r: requests.append(r.url))
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(page_url, timeout=120_000)
                page.locator("button.lt-run").wait_for(timeout=120_000)
                page.wait_for_function("() => window.Bokeh && [...Bokeh.index.all_views()].some("
                                       "v => v.model.type === 'Figure' && v.bbox.width > 0)", timeout=60_000,
                                       polling=200)
                page.wait_for_timeout(1500)

                outside = [u for u in requests if urlparse(u).scheme in ("http", "https", "ws", "wss")
                           and urlparse(u).hostname not in ("127.0.0.1", "localhost")]
                assert outside == [], outside
                # the buttons' icons draw with Font Awesome (from Voila's bundle, served here)
                icon = page.evaluate("() => { const i = document.querySelector('button.lt-run i');"
                                     " return [getComputedStyle(i, '::before').fontFamily,"
                                     " document.fonts.check('900 14px \"Font Awesome 5 Free\"')]; }")
                assert "Font Awesome" in icon[0] and icon[1] is True, icon

                boxes = page.evaluate(DROPDOWNS)
                assert {"lt-schedule", "lt-preset", "lt-arch", "lt-mode"} <= {b["cls"] for b in boxes}
                for b in boxes:
                    for text, w in b["texts"]:
                        # the text within the box, less its padding (on the right, the arrow's 20 px)
                        assert w + b["padding"] + 2 <= b["width"], (width, b["cls"], text, w, b["width"])

                for tab in range(2):  # the lottery and supermask plots
                    page.locator(".lt-tabs .lm-TabBar-tab, .lt-tabs .p-TabBar-tab").nth(tab).click()
                    page.wait_for_timeout(1500)
                    figures = page.evaluate(TITLES)
                    assert len(figures) >= (3 if tab == 0 else 2), figures
                    for f in figures:
                        t, bar = f["title"], f["toolbar"]
                        end = t["box"][0] + t["width"]  # where the title's text ends (it may run past the plot area)
                        assert end <= f["width"], (width, t, f["width"])  # not cut by the figure's edge
                        if bar is not None:  # nor covered: the toolbar is beside the title's text, or below it
                            assert bar[0] >= end or bar[1] >= t["box"][3], (width, t, bar)
                assert not errors, errors
                page.close()
        finally:
            browser.close()
