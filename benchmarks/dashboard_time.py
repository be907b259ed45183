"""What a user of the explorer page waits for, measured in headless Chromium against Voila.

    python benchmarks/dashboard_time.py [--loads N] [--store DIR] [--shots DIR] [--no-run]

(1) Building the page in Python: ``build_app`` on an empty results store, in this process
    (imports apart), and the number of bokeh renderers its figures hold.
(2) Page load: Voila serves ``app/explorer.ipynb`` on loopback; each of ``--loads`` fresh pages
    (a new kernel each) is timed from ``goto`` to the controls being visible (the Run button) and
    to the first plot drawn (a bokeh canvas).
(3) A quick FC lottery run of a seed the store does not hold (2 rounds): Run -> the first live
    point on the iteration plot; then, once the run is under way, Stop -> the page says stopped.
(4) With ``--shots``: screenshots of the whole page, the Mask view tab and the Compare tab with the
    two stored seeds overlaid (one banded line per setting), as PNG files in that folder.

The store (``--store``, else a temporary folder) is given quick lottery runs of seeds 0 and 1 (one
round) first; a store that holds them already is reused as it is. The last line is
``build_s=<x> controls_s=<y> canvas_s=<z> first_point_s=<p> stop_s=<q>`` (medians over the loads).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
CURVE_POINTS = """() => { let n = 0;
  for (const doc of (window.Bokeh ? Bokeh.documents : [])) for (const m of doc._all_models.values()) {
    if (m.type !== 'ColumnDataSource' || !m.name || !m.name.startsWith('curve')) continue;
    const d = m.data, x = d instanceof Map ? d.get('x') : d.x; n += x ? x.length : 0; }
  return n; }"""


def build_time(root: Path) -> tuple:
    sys.path.insert(0, str(REPO))  # this checkout's lt_core, as the page's kernel imports it
    from lt_core.dashboard import build_app

    t = time.perf_counter()
    app = build_app(results_root=root)
    seconds = time.perf_counter() - t
    return seconds, sum(len(f.renderers) for f in app.plots.figures)


def fill_store(root: Path) -> None:
    from lt_core import DataConfig, ModelConfig, PruneConfig, TrainConfig, run_lotteries
    from lt_core.dashboard import catalog

    for seed in (0, 1):
        run_lotteries(DataConfig(), ModelConfig(), TrainConfig(seed=seed, **catalog.quick_train("fc")),
                      [PruneConfig(rounds=1)], out=str(root))


def start_voila(root: Path, log: Path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, BOKEH_RESOURCES="inline", LT_RESULTS_DIR=str(root),
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([str(Path(sys.executable).parent / "voila"), str(REPO / "app" / "explorer.ipynb"),
                             "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1"], cwd=REPO, env=env,
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 90
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"http://127.0.0.1:{port}/"
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("voila did not start:\n" + log.read_text())
            time.sleep(0.2)


def load_page(ctx, url: str) -> tuple:
    page = ctx.new_page()
    t = time.monotonic()
    page.goto(url, timeout=120_000)
    page.locator("button.lt-run").wait_for(timeout=120_000)
    controls = time.monotonic() - t
    page.locator("canvas").first.wait_for(timeout=120_000)
    return page, controls, time.monotonic() - t


def set_text(page, css: str, value: str) -> None:
    box = page.locator(f"{css} input")
    box.fill(value)
    box.press("Enter")


def unused_seed(root: Path) -> int:
    """A seed no run in the store was trained with (so that the run starts from nothing)."""
    used = set()
    for cfg in root.glob("*/config.json"):
        train = json.loads(cfg.read_text()).get("train") or {}
        used.add(train.get("seed"))
    return next(seed for seed in range(7, 10_000) if seed not in used)


def run_and_stop(page, seed: int) -> tuple:
    set_text(page, ".lt-seeds", str(seed))
    set_text(page, ".lt-rounds", "2")
    page.wait_for_function(f"() => ({CURVE_POINTS})() === 0", timeout=30_000)  # no stored run of this seed
    t = time.monotonic()
    page.locator("button.lt-run").click()
    page.wait_for_function(f"() => ({CURVE_POINTS})() > 0", timeout=120_000, polling=50)
    first = time.monotonic() - t
    page.wait_for_function(f"() => ({CURVE_POINTS})() > 2", timeout=120_000, polling=200)  # well under way
    t = time.monotonic()
    page.locator("button.lt-stop").click()
    page.locator(".lt-status-stopped").wait_for(timeout=120_000)
    return first, time.monotonic() - t


def screenshots(page, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1400, "height": 1700})  # the page scrolls inside Voila's own box
    tabs = page.locator(".lt-tabs")
    time.sleep(1.0)
    page.screenshot(path=str(folder / "page.png"), full_page=True)
    tabs.get_by_text("Mask view", exact=True).click()
    page.wait_for_function("() => document.querySelector('.lt-mask-info').innerText.includes('round')",
                           timeout=60_000)
    time.sleep(1.5)
    page.screenshot(path=str(folder / "mask-view.png"), full_page=True)
    tabs.get_by_text("Compare & export", exact=True).click()
    options = page.locator(".lt-runs select option")
    labels = [options.nth(i).inner_text().replace("\xa0", " ") for i in range(options.count())]
    chosen = [i for i, label in enumerate(labels)
              if "large_final rewind/zero" in label and ("seed 0 " in label or "seed 1 " in label)]
    page.locator(".lt-runs select").select_option(index=chosen)
    page.locator("button.lt-overlay").click()
    page.wait_for_function(f"() => document.querySelector('.lt-compare-info').innerText.includes('Overlays: "
                           f"{len(chosen)}')", timeout=60_000)
    time.sleep(1.0)
    page.screenshot(path=str(folder / "compare.png"), full_page=True)
    tabs.get_by_text("Lottery rounds", exact=True).click()
    time.sleep(2.0)
    page.screenshot(path=str(folder / "compare-overlay.png"), full_page=True)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loads", type=int, default=3, help="fresh page loads to time (default 3)")
    ap.add_argument("--store", type=Path, help="results store to use (default: a temporary folder)")
    ap.add_argument("--shots", type=Path, help="save screenshots (PNG) into this folder")
    ap.add_argument("--no-run", action="store_true", help="time the page loads only")
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="lt-dash-time-"))
    root = args.store or tmp / "results"
    build_s, renderers = build_time(tmp / "empty")
    print(f"build_app: {build_s:.2f} s, {renderers} bokeh renderers")
    fill_store(root)
    proc, url = start_voila(root, tmp / "voila.log")
    controls, canvas, first, stop = [], [], float("nan"), float("nan")
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
            ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = None
            for i in range(args.loads):
                if page is not None:
                    page.close(run_before_unload=True)
                page, c, v = load_page(ctx, url)
                controls.append(c)
                canvas.append(v)
                print(f"page load {i + 1}: controls visible {c:.1f} s, first plot drawn {v:.1f} s")
            if not args.no_run:
                first, stop = run_and_stop(page, unused_seed(root))
                print(f"Run -> first live point: {first:.1f} s; Stop -> stopped: {stop:.1f} s")
            if args.shots:
                screenshots(page, args.shots)
                print(f"screenshots in {args.shots}")
            browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    print(f"build_s={build_s:.2f} controls_s={statistics.median(controls):.1f} canvas_s={statistics.median(canvas):.1f} "
          f"first_point_s={first:.1f} stop_s={stop:.1f}")


if __name__ == "__main__":
    main()
