"""The dashboard's bokeh views without a browser: what each plot is handed (lines without a cap,
overlaid seeds as one band) and what the page is sent for a tab drawn while it was hidden."""

import json

import pytest

from lt_core.dashboard import plot_tables
from lt_core.dashboard.series import Series
from lt_core.dashboard.stored import stored_setting
from lt_core.dashboard.tables import Band

from .conftest import needs_mnist

pytest.importorskip("jupyter_bokeh")


def test_a_figure_draws_every_line_however_many_there_are():
    from lt_core.dashboard.views.plots import LineGroup, new_figure

    fig = new_figure("t", legend=True, name="t")
    group = LineGroup(fig, [("run", "@label")])
    assert fig.renderers == [] and fig.legend[0].items == []  # nothing made before a line shows
    bands = {f"line {i}": Band("large_final", False, [0.0, 1.0], [float(i), i + 1.0], [i - 0.5, i + 0.5],
                               [i + 0.5, i + 1.5], 1) for i in range(30)}  # more than the 24 slots there were
    group.draw(bands)
    assert group.drawn() == {label: 2 for label in bands}
    shown = [item for item in fig.legend[0].items if item.visible]
    assert sorted(item.label.value for item in shown) == sorted(bands)
    for i, (src, *_rest) in enumerate(group.slots):
        label = group.labels[i]
        assert src.data["y"] == bands[label].mean and src.data["high"] == bands[label].high
    assert len(group.hover.renderers) == 30
    # fewer lines: the rest are hidden and emptied, and their renderers serve the next lines
    group.draw({"line 3": bands["line 3"], "new": bands["line 7"]})
    assert group.drawn() == {"line 3": 2, "new": 2}
    assert sum(item.visible for item in fig.legend[0].items) == 2
    assert len(fig.renderers) == 3 * 30


def overlay(seed, curve, rounds):
    return Series(f"lottery-fc-{seed}", f"large_final · seed {seed} [x{seed}]", "lottery", seed=seed, overlay=True,
                  setting="large_final · 300 it · stored [abc123]", hue="large_final",
                  rounds={k: {"weights_remaining": w, "early_stop_test_acc": a} for k, (w, a) in rounds.items()},
                  curves={1: [{"iteration": it, "test_acc": acc} for it, acc in curve]}, current_round=1)


def test_stored_seeds_of_one_setting_are_one_dashed_mean_line_with_a_min_max_band():
    from lt_core.dashboard.views.plots import Plots

    snap = {"series": [], "arch": "fc",
            "overlays": [overlay(0, [(0, 0.10), (20, 0.90)], {0: (1.0, 0.970), 1: (0.8, 0.975)}),
                         overlay(1, [(0, 0.12), (20, 0.94)], {0: (1.0, 0.980), 1: (0.8, 0.985)})]}
    plots = Plots()
    plots.render("fc", plot_tables(snap))
    line = "large_final · 300 it · stored [abc123]"
    assert plots.prune.drawn() == {line: 2} and plots.curve.drawn() == {line: 2}
    for group, x, mean, low, high in (
            (plots.prune, [100.0, 80.0], [97.5, 98.0], [97.0, 97.5], [98.0, 98.5]),  # rounds 0 and 1, in %
            (plots.curve, [0.0, 20.0], [11.0, 92.0], [10.0, 90.0], [12.0, 94.0])):  # iterations 0 and 20
        src, line_r, band_r, dots, item = group.slots[group.labels.index(line)]
        assert src.data["x"] == pytest.approx(x)
        assert src.data["y"] == pytest.approx(mean)
        assert (src.data["low"], src.data["high"]) == (pytest.approx(low), pytest.approx(high))
        assert item.label.value == f"{line} (2 seeds)"
        assert line_r.glyph.line_dash == [6]  # "dashed"
        assert band_r.glyph.fill_color == line_r.glyph.line_color
        assert (band_r.glyph.y1, band_r.glyph.y2) == ("low", "high")


def test_a_stored_setting_holds_its_seeds_and_tells_settings_apart():
    cfg = {"kind": "lottery", "model": {"arch": "fc"}, "data": {"val_seed": 0, "val_size": 5000},
           "prune": {"criterion": "large_final", "mask1": "rewind", "mask0": "zero", "rounds": 1},
           "train": {"iterations": 300, "seed": 0, "device": "auto", "lr": None}, "trunk": "train-fc-aaaaaaaaaaaa"}
    seed1 = json.loads(json.dumps(cfg))
    seed1["train"]["seed"], seed1["trunk"], seed1["prune"]["rounds"] = 1, "train-fc-bbbbbbbbbbbb", 3
    assert stored_setting(cfg, "large_final") == stored_setting(seed1, "large_final")
    assert stored_setting(cfg, "large_final").startswith("large_final · 300 it · stored [")
    other_lr = json.loads(json.dumps(cfg))
    other_lr["train"]["lr"] = 0.01  # not in the description, still another setting
    other_split = json.loads(json.dumps(cfg))
    other_split["data"]["val_seed"] = 1
    names = {stored_setting(c, "large_final") for c in (cfg, other_lr, other_split)}
    assert len(names) == 3


def sent_nodes(cell):
    """Every JSON object in what a BokehModel cell last sent the page, depth first."""
    stack = [cell.render_bundle["docs_json"]]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            yield node
            stack.extend(reversed(list(node.values())))
        elif isinstance(node, list):
            stack.extend(reversed(node))


def bundle_models(cell):
    """Every model object in what a BokehModel cell last sent the page, by type name."""
    found = {}
    for node in sent_nodes(cell):
        if node.get("type") == "object" and "name" in node:
            found.setdefault(node["name"], []).append(node.get("attributes", {}))
    return found


def column(data, name):
    """A column of a ColumnDataSource's serialized ``data`` (a map of entries)."""
    entries = data["entries"] if isinstance(data, dict) and "entries" in data else list(data.items())
    return dict(entries)[name]


@needs_mnist
def test_the_mask_view_drawn_while_its_tab_is_hidden_reaches_the_page_with_layer_names(tmp_path):
    import torch

    from lt_core import DataConfig, ModelConfig, PruneConfig, TrainConfig, run_lotteries
    from lt_core.dashboard import build_app
    from lt_core.store import RunDir

    root = tmp_path / "results"
    run_lotteries(DataConfig(), ModelConfig(), TrainConfig(iterations=40, eval_every=20), [PruneConfig(rounds=1)],
                  out=str(root))
    app = build_app(results_root=root)
    masks = app.masks
    flip_cell = app._cells[2][2][0]
    assert type(masks.flip_fig.xaxis[0]).__name__ == "CategoricalAxis"  # layer names, not numbers
    app.tabs.selected_index = 2  # the mask view shown once (empty), then hidden
    assert app.wait_idle(30)
    sent = bundle_models(flip_cell)
    assert [r["factors"] for r in sent["FactorRange"]] == [["-"]]
    assert [axis["name"] for axis in sent["Figure"][0]["below"]] == ["CategoricalAxis"]
    app.tabs.selected_index = 0
    assert app.wait_idle(30)

    name = next(p.name for p in root.glob("lottery-fc-*"))
    app.c.add_overlay(name)  # drawn on the plots, and offered in the mask view (hidden)
    assert app.wait_idle(30)
    assert masks.run.value == name and masks.round.value == 1
    rd = RunDir(root / name)
    m = rd.load_tensors(1, "masks")
    w_i, w_f = rd.load_tensors(1, "init")["weights"], rd.load_tensors(1, "final")["weights"]
    flips = {layer: 100 * float(((torch.sign(w_i[layer]) != torch.sign(w_f[layer])) & m[layer].bool()).sum()
                                / m[layer].sum()) for layer in ("fc1", "fc2", "fc3")}
    assert list(masks.flip_fig.x_range.factors) == ["fc1", "fc2", "fc3"]
    assert masks.flip_src.data["flip"] == pytest.approx(list(flips.values()))
    assert bundle_models(flip_cell)["FactorRange"][0]["factors"] == ["-"]  # not re-sent while hidden

    app.tabs.selected_index = 2  # shown again: the changes made while hidden are sent whole
    assert app.wait_idle(30)
    sent = bundle_models(flip_cell)
    assert sent["FactorRange"][0]["factors"] == ["fc1", "fc2", "fc3"]
    src = next(a for a in sent["ColumnDataSource"] if a.get("name") == "sign_flips")
    assert column(src["data"], "layer") == ["fc1", "fc2", "fc3"]
    assert column(src["data"], "flip") == pytest.approx(list(flips.values()))
    assert app._stale[2] == set()
    # while shown, changes go to the page as they are made: no full resend
    bundle = flip_cell.render_bundle
    app.c.clear_overlays()
    assert app.wait_idle(30)
    assert masks.flip_src.data["layer"] == [] and list(masks.flip_fig.x_range.factors) == ["-"]
    assert flip_cell.render_bundle is bundle and app._stale[2] == set()
    assert not app.render_errors


def page_writes(cell, model, **values):
    """The page writing attributes of ``model`` back to the kernel, as BokehJS does for the start and
    end it computes for a data range (a ``jsevent`` message of jupyter_bokeh)."""
    for attr, new in values.items():
        cell._sync_model(cell, {"event": "jsevent", "kind": "ModelChanged", "model": {"id": model.id},
                                "attr": attr, "new": new}, [])


def range_sent(cell, model):
    """The attributes of ``model`` in what ``cell`` last sent the page."""
    return next(n["attributes"] for n in sent_nodes(cell) if n.get("id") == model.id and "attributes" in n)


def is_unset(sent, attr):
    """A range's start or end that BokehJS computes from the data: absent, or NaN."""
    v = sent.get(attr)
    return v is None or v == {"type": "number", "value": "nan"}


def test_a_plot_sent_whole_after_lines_were_added_while_hidden_follows_every_line(tmp_path):
    from lt_core.dashboard import build_app

    app = build_app(results_root=tmp_path / "results")
    p = app.plots
    curve_cell = app._cells[0][0][0]
    assert app.tabs.selected_index == 0
    # a live round that stopped at iteration 200: the page computed the iteration axis -10..210
    # and the accuracy axis, and wrote them back to the kernel
    live = overlay(5, [(0, 0.1), (100, 0.9), (200, 0.92)], {0: (1.0, 0.97)})
    live.setting = "large_final · 200 it · stored [def456]"
    app.c.overlays = {"lottery-fc-5": live}
    app.c.notify()
    assert app.wait_idle(30)
    page_writes(curve_cell, p.curve_fig.x_range, start=-10.0, end=210.0)
    page_writes(curve_cell, p.curve_fig.y_range, start=1.0, end=101.0)
    assert (p.curve_fig.x_range.start, p.curve_fig.x_range.end) == (-10.0, 210.0)

    app.tabs.selected_index = 3  # the Compare tab: two stored seeds of 300 iterations overlaid
    assert app.wait_idle(30)
    n = len(p.curve_fig.renderers)
    app.c.overlays = {"lottery-fc-5": live,
                      "lottery-fc-0": overlay(0, [(0, 0.10), (300, 0.90)], {0: (1.0, 0.970)}),
                      "lottery-fc-1": overlay(1, [(0, 0.12), (300, 0.94)], {0: (1.0, 0.980)})}
    app.c.notify()
    assert app.wait_idle(30)
    assert len(p.curve_fig.renderers) == n + 3  # band, line and points of the new line, made now
    assert 0 in app._stale[0]

    app.tabs.selected_index = 0  # shown: the iteration plot is sent whole
    assert app.wait_idle(30)
    assert app._stale[0] == set() and not app.render_errors
    for rng in (p.curve_fig.x_range, p.curve_fig.y_range):
        sent = range_sent(curve_cell, rng)
        # no start or end given: BokehJS spans the data of every renderer of the figure ...
        assert is_unset(sent, "start") and is_unset(sent, "end"), sent
        assert sent.get("renderers", []) in ([], "auto")  # ... those made after the range included
    sources = {a["name"]: a for a in bundle_models(curve_cell)["ColumnDataSource"] if a.get("name")}
    assert max(x for name, a in sources.items() if name.startswith("curve:") for x in column(a["data"], "x")) == 300
    # the accuracy axis pads by one point (data at 100% ends it at 101), not a tenth of the span
    assert (p.curve_fig.y_range.range_padding, p.curve_fig.y_range.range_padding_units) == (1.0, "absolute")


def test_weights_remaining_axes_end_at_105_and_start_below_the_fewest_weights_shown():
    from lt_core.dashboard.views.plots import Plots

    plots = Plots()
    empty = {"series": [], "arch": "fc", "overlays": []}
    plots.render("fc", plot_tables(empty))
    # nothing drawn: 0.8 x 50% (lottery) and 0.8 x 1% (one-shot supermasks), up to 105%
    assert (plots.layer_fig.y_range.start, plots.layer_fig.y_range.end) == (40.0, 105.0)
    assert (plots.prune_fig.x_range.start, plots.prune_fig.x_range.end) == (105.0, 40.0)
    assert (plots.super_fig.x_range.start, plots.super_fig.x_range.end) == (105.0, pytest.approx(0.8))
    s = overlay(0, [(0, 0.1), (20, 0.9)], {0: (1.0, 0.97), 1: (0.8, 0.975), 2: (0.64, 0.976)})
    s.rounds[1]["layer_remaining"] = {"fc1": 0.8, "fc2": 0.8, "fc3": 0.9}
    s.rounds[2]["layer_remaining"] = {"fc1": 0.64, "fc2": 0.64, "fc3": 0.81}
    s.rounds[0]["layer_remaining"] = {"fc1": 1.0, "fc2": 1.0, "fc3": 1.0}
    plots.render("fc", plot_tables({"series": [], "arch": "fc", "overlays": [s]}))
    assert plots.layer.drawn() == {"fc1 = fc2": 3, "fc3": 3}
    assert plots.layer_fig.y_range.start == pytest.approx(0.8 * 64.0)
    assert plots.layer_fig.y_range.end == 105.0
    assert (plots.prune_fig.x_range.start, plots.prune_fig.x_range.end) == (105.0, pytest.approx(0.8 * 64.0))


def test_a_page_compiles_the_engine_kernels_in_the_background_before_anything_trains(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys, time\n"
            "from lt_core.backends import native\n"
            "from lt_core.dashboard import build_app\n"
            "assert native._library is None\n"
            f"app = build_app(results_root={str(tmp_path / 'results')!r})\n"
            "deadline = time.monotonic() + 120\n"
            "while native._library is None and time.monotonic() < deadline:\n"
            "    time.sleep(0.1)\n"
            "print('built' if native._library else 'none' if native._library is False else 'waiting')\n")
    repo = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(repo), "LT_KERNELS": "1"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "built", out.stdout + out.stderr


def test_rounds_out_of_range_are_refused_in_the_pages_words_and_nothing_runs(tmp_path):
    from lt_core.dashboard import build_app

    app = build_app(results_root=tmp_path / "results")
    app.controls.mode.value = "lottery"
    for rounds in (0, 1000, -3):
        app.controls.rounds.value = rounds
        app.run()
        assert app.c.status == "error" and not app.c.running
        assert app.c.message == f"Invalid setting. Rounds: {rounds} is out of range [1, 200]"
        assert app.controls.rounds.value == rounds  # what was typed stays, as with Epochs
    assert app.wait_idle(30)
    assert "Rounds: -3 is out of range [1, 200]" in app.controls.message.value
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


def test_a_figure_takes_from_the_page_only_what_the_page_owns():
    """jupyter_bokeh's view sends each patch back once applied: the kernel must not take its own
    older values again (a figure's renderers set back would detach a line added since)."""
    from lt_core.dashboard.views.plots import LineGroup, new_figure
    from lt_core.dashboard.views.widgets import PlotCell

    fig = new_figure("t", legend=True, name="t")
    group = LineGroup(fig, [("run", "@label")])
    cell = PlotCell(fig)
    band = Band("large_final", False, [0.0, 1.0], [90.0, 91.0], [90.0, 91.0], [90.0, 91.0], 1)
    group.draw({"a": band})
    older_renderers, older_items = list(fig.renderers), list(fig.legend[0].items)
    group.draw({"a": band, "b": band})  # a second line: its renderers and legend entry added
    line_b = group.slots[1][1]
    # the page sends back the first patches (the older lists) and a label it was sent
    page_writes(cell, fig, renderers=[{"id": r.id} for r in older_renderers])
    page_writes(cell, fig.legend[0], items=[{"id": i.id} for i in older_items])
    page_writes(cell, group.slots[0][4], label={"type": "value", "value": "stale"})
    _, _, band_b, dots_b, item_b = group.slots[1]
    assert fig.renderers == older_renderers + [band_b, line_b, dots_b]
    assert fig.legend[0].items == older_items + [item_b] and line_b.document is fig.document
    assert group.slots[0][4].label.value == "a" and cell.echoes == 3
    # what the page owns: the range BokehJS computes, a line hidden from its legend, the plot's size
    page_writes(cell, fig.x_range, start=-1.0, end=2.0)
    page_writes(cell, line_b, visible=False)
    page_writes(cell, fig, inner_width=500)
    assert (fig.x_range.start, fig.x_range.end) == (-1.0, 2.0) and not line_b.visible and fig.inner_width == 500
    assert cell.echoes == 3


def test_updates_run_on_the_kernel_loop_one_at_a_time_and_a_failed_one_is_shown(tmp_path):
    """In a kernel every update runs on the loop of the thread that applies the page's messages;
    a failed update is shown in the page, not only recorded."""
    import queue
    import threading

    from lt_core.dashboard import build_app
    from lt_core.dashboard.views.widgets import KernelLoopWorker

    class Loop:  # the kernel's loop as the worker uses it: add_callback from any thread
        def __init__(self):
            self.calls = queue.Queue()

        def add_callback(self, fn):
            self.calls.put(fn)

    loop, ran = Loop(), []
    worker = KernelLoopWorker(loop, threading.current_thread())
    others = [threading.Thread(target=worker.submit, args=(key, lambda k=key: ran.append(
        (k, threading.current_thread().name)))) for key in ("render", "render", "mask")]
    for t in others:
        t.start()
        t.join()
    while not loop.calls.empty():  # the loop's turns, on this thread
        loop.calls.get()()
    # the second render replaced the first, still pending; each ran on the loop's thread
    assert ran == [("render", threading.current_thread().name), ("mask", threading.current_thread().name)]
    assert worker.wait_idle(1)

    app = build_app(results_root=tmp_path / "results")
    app._submit("render", lambda: {}["missing"])
    assert app.wait_idle(30)
    assert len(app.render_errors) == 1 and "KeyError" in app.render_errors[0]
    assert "The page failed to draw an update (KeyError" in app.render_error.value


def test_the_compare_list_is_ordered_by_what_runs_are_and_marks_the_overlaid():
    from pathlib import Path

    from lt_core.dashboard.stored import StoredRun
    from lt_core.dashboard.views.compare import compare_options

    def run(name, kind, description, old=None):
        return StoredRun(name, Path(name), kind, "fc", description, 1, 1, old)

    runs = [run("lottery-fc-ffff", "lottery", "fc large_final rewind/zero · 300 it · seed 0"),
            run("train-fc-old1", "train", "fc dense · 300 it · seed 0", old="old initialisation (glorot_normal_uncorrected)"),
            run("lottery-fc-0000", "lottery", "fc random rewind/zero · 300 it · seed 0"),
            run("train-fc-aaaa", "train", "fc dense · 300 it · seed 0")]
    options = compare_options(runs, {"lottery-fc-0000": object()})
    assert [name for _, name in options] == ["train-fc-aaaa", "lottery-fc-ffff", "lottery-fc-0000", "train-fc-old1"]
    assert options[2][0].startswith("overlaid · lottery-fc-0000 · fc random")
    assert not options[1][0].startswith("overlaid")
    assert options[3][0].endswith("old initialisation (glorot_normal_uncorrected): not drawn")


@needs_mnist
def test_the_mask_view_offers_the_stores_runs_of_the_network_shown_and_draws_one_when_picked(tmp_path):
    from lt_core import DataConfig, ModelConfig, PruneConfig, TrainConfig, run_lotteries
    from lt_core.dashboard import build_app

    root = tmp_path / "results"
    run_lotteries(DataConfig(), ModelConfig(), TrainConfig(iterations=40, eval_every=20),
                  [PruneConfig(criterion="random", rounds=1)], out=str(root))
    lottery = next(p.name for p in root.glob("lottery-fc-*"))
    app = build_app(results_root=root)  # its settings (quick schedule, large_final) are not that run's
    masks = app.masks
    assert app.wait_idle(30)
    keys = [k for _, k in masks.run.options]
    assert f"store:{lottery}" in keys and masks.run.value is None  # offered, not drawn until picked
    label = dict((k, v) for v, k in masks.run.options)[f"store:{lottery}"]
    assert label.startswith("store: fc random rewind/zero · 40 it · seed 0") and label.count("seed 0") == 1
    assert label.endswith(f" · 1/1 rounds [{lottery.rsplit('-', 1)[-1][:6]}]")
    assert "Pick a stored run" in masks.info.value

    masks.run.value = f"store:{lottery}"
    assert app.wait_idle(30)
    assert masks.round.max == 1 and masks.round.value == 1
    assert list(masks.flip_fig.x_range.factors) == ["fc1", "fc2", "fc3"]
    assert "round 1" in masks.info.value and "random" in masks.info.value

    app.c.add_overlay(lottery)  # drawn on the plots now: offered once, as the page's run
    assert app.wait_idle(30)
    keys = [k for _, k in masks.run.options]
    assert lottery in keys and f"store:{lottery}" not in keys

    app.c.clear_overlays()
    app.controls.arch.value = "conv2"  # another network: none of its runs are stored
    assert app.wait_idle(30)
    assert not [k for _, k in masks.run.options if k.startswith("store:")]
    assert not app.render_errors


@needs_mnist
def test_a_paper_schedule_preset_warns_of_hours_of_cpu_with_this_machines_estimate_before_run(tmp_path):
    import re

    from lt_core.dashboard import apply_preset, build_app
    from lt_core.dashboard.cost import clock, estimate_seconds

    app = build_app(results_root=tmp_path / "results")
    c = app.controls
    titles = dict((k, t) for t, k in c.preset.options)
    assert titles["rq4/paper"].endswith("paper schedule, 5 seeds: hours of CPU")  # said in the menu already
    assert "hours" not in titles["rq4/quick"]
    c.preset.value = "rq4/quick"
    assert app.wait_idle(30) and "hours of CPU" not in app.c.message
    c.preset.value = "rq4/paper"
    assert app.wait_idle(30)
    assert app.c.level == "warning" and "the paper's schedule takes hours of CPU time" in app.c.message
    assert c.cost_done.wait(300)
    assert app.wait_idle(30)
    shown = re.search(r"Estimated here: about (.+?) of training \((\w+),", app.c.message)
    assert shown, app.c.message
    # the estimate is the reproduction's own, for this request against this store: 5 seeds' dense
    # trunks on the paper's schedule and their 4 x 2 x 25 one-shot points each
    request = apply_preset(c.request(), "rq4/paper")
    seconds, device = estimate_seconds(request, app.c.root)
    assert (shown.group(1), shown.group(2)) == (clock(seconds), device) and c.cost_estimate == seconds
    assert seconds > 60  # a minute at least, whatever the machine
    assert app.c.status == "idle" and not app.c.running  # nothing started
