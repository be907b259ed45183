"""End to end: Voila serves app/explorer.ipynb on loopback and headless Chromium (Debian's, driven by
Playwright) uses it as a researcher would: the store's runs for the chosen settings are drawn (two
seeds as one band), a run goes live and stops, another mode runs while the lottery lines stay, the
mask view drawn while its tab was hidden shows its layers by name, a one-shot mask is viewed,
raising Rounds continues the stored run, a refused setting is answered in the page's words, two
stored seeds overlaid make one banded line, every plot fits a 1024 px page, a reload draws the
stored runs, and closing the page shuts its kernel down. Prints the measured timings and saves
screenshots (copied to /tmp/dashboard-*.png)."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .conftest import DATA_DIR, needs_mnist

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "app" / "explorer.ipynb"
CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
# lengths (and first labels) of every named ColumnDataSource in the page (BokehJS keeps data as a Map or an object)
DATA_LENGTHS = """() => { const out = {};
  for (const doc of (window.Bokeh ? Bokeh.documents : [])) for (const m of doc._all_models.values()) {
    if (m.type !== 'ColumnDataSource' || !m.name) continue;
    const d = m.data, keys = d instanceof Map ? [...d.keys()] : Object.keys(d);
    const first = keys.length ? (d instanceof Map ? d.get(keys[0]) : d[keys[0]]) : [];
    out[m.name] = first.length; }
  return out; }"""
# the sign-flip plot as the page holds it: its x range's factors, its bars' layers, its x axis
SIGN_FLIPS = """() => { let out = null;
  for (const doc of (window.Bokeh ? Bokeh.documents : [])) {
    const models = [...doc._all_models.values()], src = models.find(m => m.name === 'sign_flips');
    if (!src) continue;
    const range = models.find(m => m.type === 'FactorRange'), d = src.data;
    out = {factors: range ? [...range.factors] : null, layers: [...(d instanceof Map ? d.get('layer') : d.layer)],
           axis: models.filter(m => m.type.endsWith('Axis')).map(m => m.type).sort()}; }
  return out; }"""
LABELS = """(prefix) => { const out = [];
  for (const doc of (window.Bokeh ? Bokeh.documents : [])) for (const m of doc._all_models.values()) {
    if (m.type !== 'ColumnDataSource' || !m.name || !m.name.startsWith(prefix)) continue;
    const d = m.data, labels = d instanceof Map ? d.get('label') : d.label;
    if (labels && labels.length) out.push(labels[0]); }
  return out.sort(); }"""

# the axis ranges of the figure whose title starts with the argument, as BokehJS computed them
AXES = """(title) => {
  for (const doc of (window.Bokeh ? Bokeh.documents : [])) for (const m of doc._all_models.values()) {
    if (m.type !== 'Figure' || !m.title || !String(m.title.text).startsWith(title)) continue;
    return {x: [m.x_range.start, m.x_range.end], y: [m.y_range.start, m.y_range.end]}; }
  return null; }"""

def wait_axes(page, title: str, condition: str, timeout: float = 30_000) -> None:
    """Waits until the axis ranges of the figure titled ``title`` meet ``condition`` (a JavaScript
    predicate of ``{x: [start, end], y: [start, end]}``); fails with the ranges it last saw. Bokeh's
    ranges read NaN for a moment while a redraw recomputes them, so one read can catch a redraw."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    try:
        page.wait_for_function(f"() => {{ const a = ({AXES})({title!r}); return a !== null && ({condition})(a); }}",
                               timeout=timeout, polling=200)
    except PlaywrightTimeout:
        raise AssertionError(f"{title}: {page.evaluate(AXES, title)}") from None


pytestmark = [pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
              needs_mnist]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def voila(tmp_path_factory):
    """Voila on a results store that already holds quick lottery runs of seeds 0 and 1 (1 round)."""
    pytest.importorskip("playwright")
    tmp_path = tmp_path_factory.mktemp("voila")
    from lt_core import DataConfig, ModelConfig, PruneConfig, TrainConfig, run_lotteries
    from lt_core.dashboard import catalog

    for seed in (0, 1):
        run_lotteries(DataConfig(), ModelConfig(), TrainConfig(seed=seed, **catalog.quick_train("fc")),
                      [PruneConfig(rounds=1)], out=str(tmp_path / "results"))
    port = free_port()
    # the kernels import this checkout's lt_core, whatever the environment has installed
    env = dict(os.environ, BOKEH_RESOURCES="inline", LT_RESULTS_DIR=str(tmp_path / "results"),
               LT_DATA_DIR=str(DATA_DIR), PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    log = open(tmp_path / "voila.log", "wb")
    exe = Path(sys.executable).parent / "voila"
    t0 = time.monotonic()
    proc = subprocess.Popen([str(exe), str(NOTEBOOK), "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1"],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("voila did not start:\n" + (tmp_path / "voila.log").read_text())
                time.sleep(0.2)
        yield {"url": f"http://127.0.0.1:{port}/", "t0": t0, "listening": time.monotonic() - t0,
               "results": tmp_path / "results", "tmp": tmp_path}
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # voila and the kernels it started
            proc.wait(5)
        log.close()


def kernel_alive(base: str, kernel_id: str) -> bool:
    """Whether Voila still has the kernel (its REST API answers 404 once the kernel is shut down)."""
    try:
        with urllib.request.urlopen(f"{base}api/kernels/{kernel_id}", timeout=5) as r:
            return r.status == 200
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return False
        raise


def set_text(page, css: str, value: str) -> None:
    box = page.locator(f"{css} input")
    box.fill(value)
    box.press("Enter")


def open_page(ctx, url: str, errors: list):
    page = ctx.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url, timeout=120_000)
    page.locator("button.lt-run").wait_for(timeout=120_000)
    page.locator("canvas").first.wait_for(timeout=60_000)
    return page


def wait_lengths(page, condition: str, timeout: float = 120_000) -> None:
    """Wait until ``condition`` (JS over ``d``, the data lengths by source name) holds."""
    page.wait_for_function(f"() => {{ const d = ({DATA_LENGTHS})(); return {condition}; }}", timeout=timeout,
                           polling=200)


def test_dashboard_as_a_researcher_uses_it(voila):
    from playwright.sync_api import expect, sync_playwright

    tmp = voila["tmp"]
    timings = {"voila listening": voila["listening"]}
    errors: list = []
    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(str(tmp / "udd"), executable_path=str(CHROMIUM), headless=True,
                                                    args=FLAGS, viewport={"width": 1400, "height": 1600})
        try:
            page = open_page(ctx, voila["url"], errors)
            timings["voila start -> first rendered page"] = time.monotonic() - voila["t0"]
            kernel = page.evaluate("() => JSON.parse(document.getElementById('jupyter-config-data').textContent)"
                                   ".kernelId")
            assert kernel_alive(voila["url"], kernel)

            # the settings of the stored runs: their lines are drawn, two seeds as one band
            page.locator(".lt-mode select").select_option(label="Lottery rounds")
            set_text(page, ".lt-rounds", "1")
            set_text(page, ".lt-seeds", "0, 1")
            page.wait_for_function(f"() => ({LABELS})('prune:').includes('large_final (2 seeds)')", timeout=60_000)
            assert page.evaluate(LABELS, "curve:") == ["dense (round 0) (2 seeds)", "large_final (2 seeds)"]
            page.screenshot(path=str(tmp / "dashboard-stored.png"), full_page=True)
            # the mask view shown once, then hidden: what it draws from now on is drawn while hidden
            tabs = page.locator(".lt-tabs")
            tabs.get_by_text("Mask view", exact=True).click()
            time.sleep(1.0)
            tabs.get_by_text("Lottery rounds", exact=True).click()

            # a live run: seed 0, two more rounds than stored, continuing the stored run; Stop halts it
            stored_runs = sorted(p.name for p in voila["results"].glob("lottery-fc-*"))
            set_text(page, ".lt-seeds", "0")
            set_text(page, ".lt-rounds", "3")
            page.locator("button.lt-run").click()
            t_run = time.monotonic()
            page.locator(".lt-status-running").wait_for(timeout=30_000)
            page.wait_for_function(f"() => ({LABELS})('prune:').includes('large_final')", timeout=120_000)
            wait_lengths(page, "Object.keys(d).some(k => k.startsWith('curve:') && d[k] > 0)")
            timings["Run -> first live point"] = time.monotonic() - t_run
            page.wait_for_function("() => document.querySelector('.lt-progress-label').innerText.includes('round 2/3')",
                                   timeout=180_000, polling=200)
            assert "ETA" in page.locator(".lt-progress-label").inner_text()
            t_stop = time.monotonic()
            page.locator("button.lt-stop").click()
            page.locator(".lt-status-stopped").wait_for(timeout=60_000)
            timings["Stop -> stopped"] = time.monotonic() - t_stop
            message = page.locator(".lt-message").inner_text()
            assert "Stopped" in message and "resume" in message
            expect(page.locator("button.lt-run")).to_be_enabled(timeout=10_000)
            assert list(voila["results"].glob("*-fc-*/round_*/checkpoint.pt"))  # Run resumes from it
            # raising Rounds continued the stored run: no new run directory, round 1 not trained again
            assert sorted(p.name for p in voila["results"].glob("lottery-fc-*")) == stored_runs
            assert page.evaluate(LABELS, "prune:") == ["large_final"]

            # another mode runs; the lottery lines stay
            page.locator(".lt-mode select").select_option(label="One-shot supermask")
            page.locator(".lt-w_sc input").uncheck()
            page.locator("button.lt-run").click()
            page.locator(".lt-status-finished").wait_for(timeout=180_000)
            assert page.evaluate(LABELS, "supermask_init:") == ["large_final_same_sign · initial weights"]
            assert "large_final" in page.evaluate(LABELS, "prune:")
            page.screenshot(path=str(tmp / "dashboard-supermasks.png"), full_page=True)

            # the mask view, drawn while hidden (it followed the live run's rounds): the sign flips of
            # the lottery run's newest round, by layer name
            page.locator(".lt-tabs").get_by_text("Mask view", exact=True).click()
            page.wait_for_function("() => document.querySelector('.lt-mask-info').innerText.includes('round')",
                                   timeout=60_000)
            page.wait_for_function(f"() => ({SIGN_FLIPS})().layers.length === 3", timeout=30_000, polling=200)
            assert page.evaluate(SIGN_FLIPS) == {"factors": ["fc1", "fc2", "fc3"], "layers": ["fc1", "fc2", "fc3"],
                                                 "axis": ["CategoricalAxis", "LinearAxis"]}
            # the mask view of a one-shot supermask
            page.locator(".lt-mask_run select").select_option(label="one-shot · seed 0")
            page.wait_for_function("() => document.querySelector('.lt-mask-info').innerText.includes('one-shot')",
                                   timeout=60_000)
            wait_lengths(page, "d['mask_picture'] === 1")
            assert "large_final_same_sign mask, prune power" in page.locator(".lt-mask-info").inner_text()
            page.screenshot(path=str(tmp / "dashboard-mask.png"), full_page=True)

            # Rounds >= 1: the control holds no less; a refused setting is answered in the page's words,
            # and the progress bar starts over
            page.locator(".lt-mode select").select_option(label="Lottery rounds")
            set_text(page, ".lt-rounds", "0")
            expect(page.locator(".lt-rounds input")).to_have_value("1", timeout=10_000)
            page.locator(".lt-schedule select").select_option(label="Custom epochs")
            set_text(page, ".lt-epochs", "0")
            page.locator("button.lt-run").click()
            page.locator(".lt-msg-error").wait_for(timeout=30_000)
            assert "Invalid setting. Epochs: 0 is out of range [1, 100000]" in page.locator(".lt-message").inner_text()
            assert page.locator(".lt-progress-label").inner_text() == ""

            # the stored seeds 0 and 1 of the lottery setting overlaid: one dashed line with a band
            tabs.get_by_text("Compare & export", exact=True).click()
            options = page.locator(".lt-runs select option")
            labels = [options.nth(i).inner_text().replace("\xa0", " ") for i in range(options.count())]
            chosen = [i for i, label in enumerate(labels) if label.startswith("lottery-fc-")]
            assert len(chosen) == 2, labels
            page.locator(".lt-runs select").select_option(index=chosen)
            page.locator("button.lt-overlay").click()
            page.wait_for_function("() => document.querySelector('.lt-compare-info').innerText.includes('Overlays: 2')",
                                   timeout=60_000)
            tabs.get_by_text("Lottery rounds", exact=True).click()  # drawn while hidden: sent whole when shown
            deadline = time.monotonic() + 60
            while True:
                overlaid = [label for label in page.evaluate(LABELS, "prune:") if "stored [" in label]
                if any(label.endswith(" (2 seeds)") for label in overlaid) or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert len(overlaid) == 1 and overlaid[0].startswith("large_final · 300 it · stored [") \
                and overlaid[0].endswith(" (2 seeds)"), (overlaid, page.locator(".lt-compare-info").inner_text(),
                                                          errors)
            page.wait_for_function(f"() => ({LABELS})('curve:').includes({overlaid[0]!r})", timeout=60_000)
            # the axes span the overlaid seeds' 300 iterations (their line was made while the tab was
            # hidden); accuracy axes end at most 1 point past 100%, the per-layer one at 105%
            wait_axes(page, "Test accuracy vs iteration", "a => a.x[0] <= 0 && a.x[1] >= 300 && a.y[1] <= 101")
            wait_axes(page, "Early-stop test accuracy", "a => a.y[1] <= 101")
            wait_axes(page, "Weights remaining per layer", "a => a.y[1] === 105 && 0 < a.y[0] && a.y[0] < 100")
            time.sleep(1.0)
            page.screenshot(path=str(tmp / "dashboard-compare.png"), full_page=True)
            tabs.get_by_text("Compare & export", exact=True).click()
            page.locator("button.lt-clear").click()
            page.wait_for_function("() => document.querySelector('.lt-compare-info').innerText.includes('Overlays: 0')",
                                   timeout=60_000)
            tabs.get_by_text("Lottery rounds", exact=True).click()
            page.wait_for_function(f"() => !({LABELS})('prune:').some(l => l.includes('stored ['))", timeout=60_000)

            # 1024 px wide: every plot inside the page
            page.set_viewport_size({"width": 1024, "height": 1600})
            page.locator(".lt-tabs").get_by_text("Lottery rounds", exact=True).click()
            time.sleep(1.5)
            right = page.evaluate("() => Math.max(...[...document.querySelectorAll('.lt-grid > *')]"
                                  ".filter(e => e.offsetParent).map(e => e.getBoundingClientRect().right))")
            assert 0 < right <= 1024
            page.screenshot(path=str(tmp / "dashboard-1024.png"), full_page=True)

            # a reload draws the stored runs of the (default) settings: the dense run and the supermasks
            t_reload = time.monotonic()
            page.reload(timeout=120_000)
            page.locator("button.lt-run").wait_for(timeout=120_000)
            wait_lengths(page, "Object.keys(d).some(k => k.startsWith('curve:') && d[k] > 0)", 60_000)
            timings["reload -> stored runs drawn"] = time.monotonic() - t_reload
            assert page.evaluate(LABELS, "curve:")  # the dense run of seed 0, from the store
            assert not kernel_alive(voila["url"], kernel)  # the reload shut the first page's kernel down
            kernel = page.evaluate("() => JSON.parse(document.getElementById('jupyter-config-data').textContent)"
                                   ".kernelId")
            page.close(run_before_unload=True)  # as a browser closing the tab
            deadline = time.monotonic() + 20
            while kernel_alive(voila["url"], kernel) and time.monotonic() < deadline:
                time.sleep(0.5)
            assert not kernel_alive(voila["url"], kernel)  # closing the page shut its kernel down
        finally:
            ctx.close()
    for name in ("stored", "supermasks", "mask", "compare", "1024"):
        shutil.copy(tmp / f"dashboard-{name}.png", f"/tmp/dashboard-{name}.png")
    assert not errors, errors
    for name, seconds in timings.items():
        print(f"TIMING {name}: {seconds:.1f} s")
