"""End to end: Voila serves app/explorer.ipynb on loopback and headless Chromium (Debian's, driven by
Playwright) uses it as a researcher would: the store's runs for the chosen settings are drawn (two
seeds as one band), a run goes live and stops, another mode runs while the lottery lines stay, the
mask view drawn while its tab was hidden shows its layers by name, a one-shot mask is viewed,
raising Rounds continues the stored run, refused settings are answered in the page's words, two
stored seeds overlaid make one banded line, every plot fits a 1024 px page, a reload draws the
stored runs, and closing the page shuts its kernel down. A second page runs a multi-criterion,
multi-seed lottery again and again and compares every plot's lines in the page with the kernel's
series. Prints the measured timings and saves screenshots (copied to /tmp/dashboard-*.png)."""

import os
import shutil
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .conftest import DATA_DIR, needs_mnist
from .voila_server import free_port, running

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


# every line the page shows, as BokehJS holds it: by line group (its sources' name before the ':'),
# then legend entry, a list of the lines under that entry (one, unless an entry is drawn twice) with
# their points; a line shows when its legend entry and its line renderer are visible and it has points
PAGE_LINES = """() => { const out = {};
  for (const doc of (window.Bokeh ? Bokeh.documents : [])) {
    const models = [...doc._all_models.values()], items = models.filter(m => m.type === 'LegendItem');
    for (const r of models) {
      if (r.type !== 'GlyphRenderer' || !r.glyph || r.glyph.type !== 'Line') continue;
      const src = r.data_source, name = (src && src.name) || '', cut = name.lastIndexOf(':');
      if (cut < 0) continue;
      const d = src.data, col = k => [...((d instanceof Map ? d.get(k) : d[k]) || [])];
      const x = col('x'), item = items.find(i => i.renderers.includes(r));
      if (!x.length || !item || !item.visible || !r.visible) continue;
      const label = item.label !== null && typeof item.label === 'object' ? item.label.value : item.label;
      const group = (out[name.slice(0, cut)] = out[name.slice(0, cut)] || {});
      (group[label] = group[label] || []).push({x: x, y: col('y')}); } }
  return out; }"""
def kernel_value(voila, page, expr: str):
    """The value of ``expr`` (a Python expression giving JSON text) in the page's kernel, asked as a
    Jupyter client asks a kernel, through its connection file (Voila's own websocket passes only
    widget messages to a kernel)."""
    import ast
    import json

    from jupyter_client import BlockingKernelClient

    kernel = page.evaluate("() => JSON.parse(document.getElementById('jupyter-config-data').textContent).kernelId")
    [conn] = voila["connections"].glob(f"voila_*/kernel-{kernel}.json")
    client = BlockingKernelClient()
    client.load_connection_file(str(conn))
    # the shell channel only: a heartbeat channel started and stopped at once would make its socket in its
    # thread after the stop (a ZMQError in that thread)
    client.start_channels(iopub=False, stdin=False, hb=False, control=False)
    try:
        msg_id = client.execute("", silent=True, store_history=False, user_expressions={"out": expr})
        while True:
            reply = client.get_shell_msg(timeout=60)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        out = reply["content"]["user_expressions"]["out"]
        assert out["status"] == "ok", out
        return json.loads(ast.literal_eval(out["data"]["text/plain"]))
    finally:
        client.stop_channels()


def rounded(points: dict) -> dict:
    return {k: [float(f"{v:.6g}") for v in points[k]] for k in ("x", "y")}


def line_differences(page_lines: dict, kernel_lines: dict) -> list:
    """How the lines the page holds differ from the kernel's (empty: the same lines, labels and points)."""
    out = []
    for group in sorted(set(page_lines) | {g for g, lines in kernel_lines.items() if lines}):
        shown, want = page_lines.get(group, {}), kernel_lines.get(group, {})
        for label in sorted(set(shown) | set(want)):
            if label not in want:
                out.append(f"{group}: {label!r} drawn, not in the kernel's series")
            elif label not in shown:
                out.append(f"{group}: {label!r} missing ({len(want[label]['x'])} points in the kernel)")
            elif len(shown[label]) != 1:
                out.append(f"{group}: {label!r} drawn {len(shown[label])} times")
            elif rounded(shown[label][0]) != rounded(want[label]):
                out.append(f"{group}: {label!r} page {rounded(shown[label][0])} != kernel {rounded(want[label])}")
    return out


def wait_finished(voila, page, criteria, seeds, rounds, timeout: float = 300.0) -> str:
    """Wait until the kernel has finished the lottery run of these settings and the page shows its
    message (a run of stored rounds only may finish before the page ever shows it running);
    returns the message."""
    expr = ("__import__('json').dumps(app.c.request and [app.c.status, app.c.message, sorted(app.c.request.criteria), "
            "list(app.c.request.seeds), app.c.request.rounds])")
    deadline = time.monotonic() + timeout
    while True:
        state = kernel_value(voila, page, expr)
        if state and state[0] in ("finished", "error") and state[2:] == [sorted(criteria), list(seeds), rounds]:
            break
        assert time.monotonic() < deadline, state
        time.sleep(0.5)
    assert state[0] == "finished", state[1]
    page.wait_for_function("(m) => document.querySelector('.lt-message').innerText.trim() === m", arg=state[1].strip(),
                           timeout=30_000, polling=200)
    return state[1]


def wait_lines_match(voila, page, timeout: float = 60.0) -> dict:
    """Wait until every plot's lines in the page are the kernel's; fail with the differences."""
    deadline = time.monotonic() + timeout
    while True:
        want = kernel_value(voila, page, "__import__('json').dumps(app.lines())")
        diff = line_differences(page.evaluate(PAGE_LINES), want)
        if not diff:
            return want
        if time.monotonic() > deadline:
            raise AssertionError("the page's lines are not the kernel's:\n" + "\n".join(diff))
        time.sleep(1.0)


pytestmark = [pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
              needs_mnist]


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
    exe = Path(sys.executable).parent / "voila"
    t0 = time.monotonic()
    connections = tmp_path / "connections"  # the kernels' connection files (a test asks a kernel directly)
    connections.mkdir()
    cmd = [str(exe), str(NOTEBOOK), "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
           f"--Voila.connection_dir_root={connections}"]
    with running(cmd, port, env, REPO, tmp_path / "voila.log"):
        yield {"url": f"http://127.0.0.1:{port}/", "t0": t0, "listening": time.monotonic() - t0,
               "results": tmp_path / "results", "tmp": tmp_path, "connections": connections}


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
            assert page.evaluate(LABELS, "supermask_init:") == ["large_final_same_sign · init"]
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

            # a refused setting is answered in the page's words (Rounds out of range as Epochs: the
            # control keeps what was typed, nothing runs), and the progress bar starts over
            page.locator(".lt-mode select").select_option(label="Lottery rounds")
            for rounds in ("0", "1000"):
                set_text(page, ".lt-rounds", rounds)
                page.locator("button.lt-run").click()
                expect(page.locator(".lt-message")).to_contain_text(
                    f"Invalid setting. Rounds: {rounds} is out of range [1, 200]", timeout=30_000)
                expect(page.locator(".lt-rounds input")).to_have_value(rounds)
                assert page.locator(".lt-status-error").count() == 1
            set_text(page, ".lt-rounds", "3")
            page.locator(".lt-schedule select").select_option(label="Custom epochs")
            set_text(page, ".lt-epochs", "0")
            page.locator("button.lt-run").click()
            expect(page.locator(".lt-message")).to_contain_text("Invalid setting. Epochs: 0 is out of range [1, 100000]",
                                                                timeout=30_000)
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


def test_every_line_of_repeated_multi_seed_runs_is_drawn_as_the_kernel_holds_it(voila):
    """A lottery run racing three criteria over two seeds, run again and again with other settings
    while the page sends its messages (the ranges BokehJS computes): after every run each plot's
    lines in the page (legend entry, visible line renderer, points) are the kernel's series, and no
    update of the page failed."""
    from playwright.sync_api import sync_playwright

    from lt_core import CRITERIA

    names = list(CRITERIA)
    tmp = voila["tmp"]
    errors: list = []
    t0 = time.monotonic()
    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(str(tmp / "udd-lines"), executable_path=str(CHROMIUM),
                                                    headless=True, args=FLAGS, viewport={"width": 1280, "height": 1400})
        try:
            page = open_page(ctx, voila["url"], errors)
            page.locator(".lt-mode select").select_option(label="Lottery rounds")
            page.locator(".lt-schedule select").select_option(label="Quick (FC: about a minute)")
            runs = [  # criteria, seeds, rounds: the first run trains two criteria's first round on two
                # seeds (large_final's is stored), the next two redraw stored rounds (lines go, and come
                # back as bands of two seeds or one), the last trains a second round on one seed
                (("large_final", "random", "small_final"), (0, 1), 1),
                (("large_final", "small_final"), (1,), 1),
                (("large_final", "random", "small_final"), (0, 1), 1),
                (("large_final", "random"), (0,), 2),
            ]
            for i, (criteria, seeds, rounds) in enumerate(runs):
                page.locator(".lt-criteria select").select_option(index=[names.index(c) for c in criteria])
                set_text(page, ".lt-seeds", ", ".join(map(str, seeds)))
                set_text(page, ".lt-rounds", str(rounds))
                page.locator("button.lt-run").click()
                message = wait_finished(voila, page, criteria, seeds, rounds)
                want = wait_lines_match(voila, page)
                tag = f" ({len(seeds)} seeds)" if len(seeds) > 1 else ""
                assert {c + tag for c in criteria} <= set(want["prune"]), want["prune"].keys()
                assert all(len(want["prune"][c + tag]["x"]) == rounds + 1 for c in criteria)
                # the Finished message: this run's settings only, one entry each, seeds averaged
                assert f"round {rounds} (" in message and all(message.count(f"{c} ") == 1 for c in criteria), message
                assert all(c not in message for c in set(names) - set(criteria)), message
                assert ("(mean of 2 seeds)" in message) == (len(seeds) > 1), message
                if i == 0:
                    page.screenshot(path=str(tmp / "dashboard-lines-1280.png"), full_page=True)
            assert page.locator(".lt-render-error").inner_text() == ""
            assert kernel_value(voila, page, "__import__('json').dumps(app.render_errors)") == []
            # every update was made on the kernel's main thread, between the page's messages
            assert kernel_value(voila, page, "__import__('json').dumps(type(app._worker).__name__)") \
                == "KernelLoopWorker"
            page.set_viewport_size({"width": 1024, "height": 1400})
            time.sleep(1.5)
            page.screenshot(path=str(tmp / "dashboard-lines-1024.png"), full_page=True)
        finally:
            ctx.close()
    for name in ("lines-1280", "lines-1024"):
        shutil.copy(tmp / f"dashboard-{name}.png", f"/tmp/dashboard-{name}.png")
    assert not errors, errors
    print(f"TIMING four multi-seed lottery runs, every line compared: {time.monotonic() - t0:.1f} s")
