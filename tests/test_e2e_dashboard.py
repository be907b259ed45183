"""End to end: Voila serves app/explorer.ipynb on loopback, headless Chromium (Debian's, driven by
Playwright) picks FC + large_final + the quick preset, presses Run, watches the live plot grow,
presses Stop, then enters a bad value and sees the message. Prints the measured timings and saves
a screenshot (also copied to /tmp/dashboard.png)."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import DATA_DIR, needs_mnist

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "app" / "explorer.ipynb"
CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
# lengths of every named ColumnDataSource in the page (BokehJS keeps data as a Map or a plain object)
DATA_LENGTHS = """() => { const out = {};
  for (const doc of (window.Bokeh ? Bokeh.documents : [])) for (const m of doc._all_models.values()) {
    if (m.type !== 'ColumnDataSource' || !m.name) continue;
    const d = m.data, keys = d instanceof Map ? [...d.keys()] : Object.keys(d);
    const first = keys.length ? (d instanceof Map ? d.get(keys[0]) : d[keys[0]]) : [];
    out[m.name] = first.length; }
  return out; }"""

pytestmark = [pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
              needs_mnist]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def voila(tmp_path):
    pytest.importorskip("playwright")
    port = free_port()
    env = dict(os.environ, BOKEH_RESOURCES="inline", LT_RESULTS_DIR=str(tmp_path / "results"),
               LT_DATA_DIR=str(DATA_DIR))
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
               "results": tmp_path / "results"}
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # voila and the kernels it started
            proc.wait(5)
        log.close()


def test_dashboard_run_stop_and_bad_input(voila, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    timings = {"voila listening": voila["listening"]}
    errors = []
    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(str(tmp_path / "udd"), executable_path=str(CHROMIUM),
                                                    headless=True, args=FLAGS,
                                                    viewport={"width": 1400, "height": 1250})
        try:
            page = ctx.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(voila["url"], timeout=120_000)
            page.locator("button.lt-run").wait_for(timeout=120_000)
            page.locator("canvas").first.wait_for(timeout=60_000)
            timings["voila start -> first rendered page"] = time.monotonic() - voila["t0"]
            assert page.evaluate(DATA_LENGTHS)["live_curve_points"] == 0

            # choose FC + large_final + the quick preset
            page.locator(".lt-arch select").select_option(value="FC 300-100-10 (MNIST)")
            page.locator(".lt-mode select").select_option(value="Lottery rounds")
            page.locator(".lt-criteria select").select_option(value=["large_final  (|w_f|)"])
            page.locator(".lt-schedule select").select_option(value="Quick (a curve within about a minute)")
            expect(page.locator(".lt-epochs input")).to_be_disabled(timeout=10_000)  # only the custom schedule takes epochs
            expect(page.locator(".lt-dwr input")).to_be_disabled(timeout=10_000)  # DWR is for learned supermasks only
            assert "Mask criterion M(w_i, w_f)" in page.locator("label.lt-label-criteria").get_attribute("title")

            page.locator("button.lt-run").click()
            t_run = time.monotonic()
            page.locator(".lt-status-running").wait_for(timeout=30_000)
            page.wait_for_function(f"() => ({DATA_LENGTHS})()['live_curve_points'] > 0", timeout=120_000,
                                   polling=100)
            timings["Run -> first live point"] = time.monotonic() - t_run
            first = page.evaluate(DATA_LENGTHS)["live_curve_points"]
            # the plot grows while the run is in progress, and the page answers meanwhile
            page.wait_for_function(f"() => ({DATA_LENGTHS})()['live_curve_points'] >= {first + 2}",
                                   timeout=120_000, polling=100)
            expect(page.locator(".lt-status-running")).to_have_count(1, timeout=10_000)
            grown = page.evaluate(DATA_LENGTHS)["live_curve_points"]
            assert grown >= first + 2
            assert "ETA" in page.locator(".lt-progress-label").inner_text()
            page.locator(".lt-tabs").get_by_text("Compare & export", exact=True).click()
            page.locator(".lt-tabs").get_by_text("Lottery rounds", exact=True).click()

            t_stop = time.monotonic()
            page.locator("button.lt-stop").click()
            page.locator(".lt-status-stopped").wait_for(timeout=60_000)
            timings["Stop -> stopped"] = time.monotonic() - t_stop
            message = page.locator(".lt-message").inner_text()
            assert "Stopped" in message and "resume" in message
            expect(page.locator("button.lt-run")).to_be_enabled(timeout=10_000)
            assert page.evaluate(DATA_LENGTHS)["live_curve_points"] >= grown
            page.screenshot(path=str(tmp_path / "dashboard-stopped.png"), full_page=True)

            # a bad value: a custom schedule of 0 epochs
            page.locator(".lt-schedule select").select_option(value="Custom epochs")
            epochs = page.locator(".lt-epochs input")
            epochs.fill("0")
            epochs.press("Enter")
            page.locator("button.lt-run").click()
            page.locator(".lt-msg-error").wait_for(timeout=30_000)
            error = page.locator(".lt-message").inner_text()
            assert "Invalid setting. Epochs:" in error
            expect(page.locator(".lt-status-error")).to_have_count(1, timeout=10_000)
            page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
        finally:
            ctx.close()
    shutil.copy(tmp_path / "dashboard-stopped.png", "/tmp/dashboard.png")
    shutil.copy(tmp_path / "dashboard.png", "/tmp/dashboard-bad-input.png")
    assert not errors, errors
    # the stopped round left a checkpoint in the store, from which Run resumes
    assert list(voila["results"].glob("*-fc-*/round_*/checkpoint.pt"))
    for name, seconds in timings.items():
        print(f"TIMING {name}: {seconds:.1f} s")
