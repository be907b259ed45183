"""The Mask view tab: which weights a mask keeps (per input pixel, per unit, per layer) and how
many kept weights flipped sign, for any finished lottery round, any one-shot supermask (criterion
and prune power) and any learned supermask (its expected mask sigma(score)), live or stored.

The run list offers the page's runs (live, the stored runs of the controls' settings, overlays),
chosen automatically, then every other run the results store holds for the network shown (as the
store lists them, :func:`lt_core.store.list_runs`; read when picked)."""

from __future__ import annotations

import html
import threading
from typing import Callable, Dict, List, Optional, Tuple

import ipywidgets as W
import numpy as np
from bokeh.models import ColorBar, ColumnDataSource, LinearColorMapper, Range1d
from bokeh.palettes import Viridis256

from ..masks import learned_mask_details, mask_details, oneshot_mask_details
from ..series import Series
from ..stored import StoredRun, load_stored_series
from .plots import new_figure
from .widgets import ControlRows


# the option keys of the store's runs (the page's runs are keyed by their series' keys)
STORE_KEY = "store:"
STORE_KINDS = ("train", "lottery", "supermask", "learnmask")  # the kinds of run that hold masks

# what the figures show when there is no mask
EMPTY = {"layers": [], "picture": None, "per_unit": {}, "sign_flips": {}, "fan_out": 0}


class MaskView:
    """The mask view's controls and figures. ``submit(key, fn)`` runs ``fn`` on the render thread
    (None: at once); ``lock`` is held while the figures change."""

    def __init__(self, rows: ControlRows, lock: threading.RLock,
                 submit: Optional[Callable[[str, Callable[[], None]], None]] = None) -> None:
        self.lock = lock
        self.submit = submit
        self.cache: Dict[Tuple[str, int], dict] = {}  # (run directory, round) -> mask_details
        self._series: Dict[str, Series] = {}
        self._stored: List[StoredRun] = []  # the store's runs (set_stored), offered after the page's
        self._loaded: Dict[str, Series] = {}  # stored runs read when picked, by option key
        self._follow_lock = False
        self._shown = None
        self.run = rows.add(W.Dropdown, "mask_run", "Run", options=[], layout=W.Layout(width="640px", max_width="100%"))
        self.round = rows.add(W.IntSlider, "mask_round", "Round / power", min=0, max=0, value=0,
                              continuous_update=False, layout=W.Layout(width="260px"))
        self.criterion = rows.add(W.Dropdown, "mask_criterion", "Criterion", options=[],
                                  layout=W.Layout(width="200px"))
        self.layer = rows.add(W.Dropdown, "mask_layer", "Layer", options=[], layout=W.Layout(width="120px"))
        self.follow = rows.add(W.Checkbox, "mask_follow", "follow the newest round", value=True, indent=False,
                               layout=W.Layout(width="20px"))
        self.info = W.HTML()
        self.info.add_class("lt-mask-info")
        for w in (self.run, self.round, self.layer, self.criterion):
            w.observe(self._on_control, names="value")
        self.follow.observe(lambda ch: self._submit_update(), names="value")

        self.picture_src = ColumnDataSource({"image": []}, name="mask_picture")
        self.mapper = LinearColorMapper(palette=Viridis256, low=0, high=100)
        f = new_figure("First layer: weights kept per input pixel", height=300, x_range=Range1d(0, 28),
                       y_range=Range1d(0, 28), tools="hover,save", tooltips=[("kept", "@image{0.0}%")],
                       match_aspect=True, sizing_mode="fixed", frame_width=300, toolbar=None)  # hover without a toolbar
        f.image(image="image", x=0, y=0, dw=28, dh=28, source=self.picture_src, color_mapper=self.mapper)
        f.add_layout(ColorBar(color_mapper=self.mapper, width=10, title="% of the pixel's weights kept"), "right")
        f.axis.visible = False
        f.grid.visible = False
        self.picture_fig = f

        self.unit_src = ColumnDataSource({"x": [], "top": []}, name="mask_per_unit")
        f = new_figure("Fraction kept per unit", "unit (filter / neuron)", "weights kept (%)", height=300,
                       x_range=Range1d(-1, 10), y_range=Range1d(0, 105), tools="hover,xpan,xwheel_zoom,reset,save",
                       tooltips=[("unit", "@x"), ("kept", "@top{0.0}%")])
        f.vbar(x="x", top="top", width=0.9, source=self.unit_src, color="#1f77b4")
        self.unit_fig = f

        self.flip_src = ColumnDataSource({"layer": [], "flip": []}, name="sign_flips")
        f = new_figure("Sign flips, w_i vs w_f", None, "kept weights whose sign flipped (%)", height=300,
                       x_range=["-"], y_range=Range1d(0, 10), tools="hover,save",
                       tooltips=[("layer", "@layer"), ("flipped", "@flip{0.00}%")])
        f.vbar(x="layer", top="flip", width=0.7, source=self.flip_src, color="#d62728")
        self.flip_fig = f

        r = rows.rows
        self.controls = [W.HBox([r["mask_run"], r["mask_follow"]], layout=W.Layout(flex_flow="row wrap")),
                         W.HBox([r["mask_round"], r["mask_criterion"], r["mask_layer"]],
                                layout=W.Layout(flex_flow="row wrap")), self.info]

    def _submit_update(self) -> None:
        if self.submit is None:
            self.update()
        else:
            self.submit("mask", self.update)

    def _on_control(self, change) -> None:
        owner = change["owner"]
        if self._follow_lock:
            return
        if owner is self.run and str(self.run.value).startswith(STORE_KEY):
            stored = self._stored_series(self.run.value)
            if stored is not None:
                self._series[self.run.value] = stored
        if owner is self.run:
            self._follow_lock = True
            try:
                self._sync_steps(self._series.get(self.run.value))
            finally:
                self._follow_lock = False
        if owner is self.round and self.follow.value:
            s = self._series.get(self.run.value)
            if s is not None and s.rounds and change["new"] != max(s.rounds):
                self.follow.value = False
        self._submit_update()

    def set_stored(self, runs: List[StoredRun]) -> None:
        """The runs the results store holds (the Compare list's, refreshed with it)."""
        self._stored = list(runs)
        self._loaded = {k: v for k, v in self._loaded.items() if k in {STORE_KEY + r.name for r in runs}}

    def store_options(self, arch: Optional[str], page: List[Series]) -> List[Tuple[str, str]]:
        """``(label, key)`` of the store's runs of network ``arch`` with a mask to show (a finished
        round, point or learned mask; made with today's initialisation) that no run of ``page`` stands for."""
        taken = {s.run for s in page} | {n for s in page for n in s.run_names.values()}
        out = []
        for r in self._stored:
            if r.arch == arch and not r.outdated and r.done and r.name not in taken and r.kind in STORE_KINDS:
                state = r.label.rsplit(" · ", 1)[-1]  # "3/3 rounds", "150 points", "finished"
                out.append((f"store: {r.description} · {state} [{r.name.rsplit('-', 1)[-1][:6]}]", STORE_KEY + r.name))
        return out

    def _stored_series(self, key: str) -> Optional[Series]:
        """The stored run of option ``key``, read when first picked (None if it cannot be read)."""
        if key not in self._loaded:
            run = next((r for r in self._stored if STORE_KEY + r.name == key), None)
            if run is None:
                return None
            try:
                s = load_stored_series(run.path.parent, run.name, overlay=False)
            except Exception as exc:
                self.info.value = f"<span style='color:#a00'>Cannot read {html.escape(run.name)}: {html.escape(str(exc))}</span>"
                return None
            s.key = key
            self._loaded[key] = s
        s = self._loaded[key]
        return s if self._has_mask(s) else None

    def sync(self, snap: dict) -> None:
        """Offer the runs of a snapshot that have a mask to show, then the store's other runs of its
        network; follow the newest round if asked."""
        shown = [s for s in list(snap["series"]) + list(snap["overlays"]) if self._has_mask(s)]
        self._series = {s.key: s for s in shown}
        options = [(("stored: " if s.overlay else "") + s.label, s.key) for s in shown]
        page_keys = [k for _, k in options]
        options += self.store_options(snap.get("arch"), list(snap["series"]) + list(snap["overlays"]))
        self._follow_lock = True
        try:
            if list(self.run.options) != options:
                current = self.run.value
                self.run.options = options
                keys = [k for _, k in options]
                if current in keys:
                    self.run.value = current
                else:  # the page's first run; the store's runs are shown when picked
                    self.run.value = page_keys[0] if page_keys else None
            if str(self.run.value).startswith(STORE_KEY):
                stored = self._stored_series(self.run.value)
                if stored is not None:
                    self._series[self.run.value] = stored
            live = [s.key for s in shown if s.kind == "lottery" and not s.overlay]
            current = self._series.get(self.run.value)
            if self.follow.value and live and (current is None or current.kind == "dense"):
                self.run.value = live[0]
            self._sync_steps(self._series.get(self.run.value))
        finally:
            self._follow_lock = False
        self.update()

    @staticmethod
    def _has_mask(s: Series) -> bool:
        if s.kind in ("dense", "lottery"):
            return bool(s.rounds and s.run_names)
        if s.kind == "oneshot":
            return bool(s.points) and s.round_path(0) is not None
        return s.kind == "learned" and s.learn_final is not None and s.round_path(0) is not None

    def _sync_steps(self, s: Optional[Series]) -> None:
        """The slider's range (rounds, or prune powers) and the criteria of the chosen run."""
        if s is None:
            return
        if s.kind == "oneshot":
            powers = sorted({p["power"] for p in s.points})
            criteria = list(dict.fromkeys(p["criterion"] for p in s.points))
            if list(self.criterion.options) != criteria:
                self.criterion.options = criteria
            if self.criterion.value not in criteria:
                self.criterion.value = criteria[0]
            self.round.max = max(powers)
            self.round.min = min(powers)
        elif s.kind == "learned":
            self.round.min = self.round.max = 0
        else:
            rounds = sorted(s.rounds)
            self.round.max = max(rounds)
            self.round.min = min(rounds)
            if self.follow.value:
                self.round.value = max(rounds)
        self.criterion.disabled = s.kind != "oneshot"
        self.round.disabled = s.kind == "learned"

    def _load(self, s: Series) -> Optional[Tuple[tuple, str, Callable[[], dict]]]:
        """(cache key, what is shown, reader) of the chosen mask, or None."""
        k = int(self.round.value)
        if s.kind == "oneshot":
            criterion = self.criterion.value or s.points[0]["criterion"]
            point = next((p for p in s.points if p["criterion"] == criterion and p["power"] == k), None)
            kept = f", {100 * point['weights_remaining']:.2f}% of weights kept" if point else ""
            trunk = s.round_path(0)
            return ((str(trunk), criterion, k), f"one-shot {criterion} mask, prune power {k}{kept}",
                    lambda: oneshot_mask_details(trunk, s.arch, criterion, k, s.seed))
        if s.kind == "learned":
            path = s.round_path(0)
            return (str(path), "learned"), "expected mask σ(score)", lambda: learned_mask_details(path)
        if k not in s.rounds:
            k = max(r for r in s.rounds if r <= k) if any(r <= k for r in s.rounds) else min(s.rounds)
        path = s.round_path(k)
        if path is None:
            return None
        overall = s.rounds[k].get("weights_remaining")
        return (str(path), k), f"round {k}, {100 * overall:.2f}% of weights remain", lambda: mask_details(path, k)

    def update(self) -> None:
        """Show the chosen mask and layer (each mask read once and cached)."""
        s = self._series.get(self.run.value)
        if s is None:
            self.info.value = ("<i>No mask shown. Pick a stored run in the list (when the store holds runs of this "
                               "network), or run lottery rounds, one-shot or learned supermasks.</i>")
            if self._shown is not None:  # the figures showed a run that is gone: empty them
                with self.lock:
                    self._draw(EMPTY, "")
                self._shown = None
            return
        found = self._load(s)
        if found is None:
            return
        key, what, read = found
        shown = (s.key, key, self.layer.value)
        if shown == self._shown:
            return
        try:
            if key not in self.cache:
                self.cache[key] = read()
            d = self.cache[key]
        except Exception as exc:
            self.info.value = f"<span style='color:#a00'>Cannot read the mask ({what}): {html.escape(str(exc))}</span>"
            return
        with self.lock:
            self._draw(d, what)
        self._shown = shown
        rem = ", ".join(f"{n} {100 * v:.1f}%" for n, v in d["remaining"].items())
        flip_text = (f"; {100 * d['sign_flips_overall']:.2f}% of the kept weights have a different sign in w_f than "
                     f"in w_i" if d["sign_flips_overall"] is not None else "")
        self.info.value = f"<b>{html.escape(s.label)}</b>: {html.escape(what)} (kept per layer: {rem}){flip_text}."

    def _draw(self, d: dict, what: str) -> None:
        layers = d["layers"]
        self._follow_lock = True
        try:
            if list(self.layer.options) != layers:
                self.layer.options = layers
            if layers and self.layer.value not in layers:
                self.layer.value = layers[0]
        finally:
            self._follow_lock = False
        layer = self.layer.value or ""
        if not layers:
            self.picture_src.data = {"image": []}
            self.mapper.low, self.mapper.high = 0, 100
            self.picture_fig.title.text = "First layer: weights kept per input pixel"
        elif d["picture"] is not None:
            img = np.flipud(np.asarray(d["picture"], dtype=float))
            self.picture_src.data = {"image": [img]}
            # the scale follows the data: the fewest and the most kept of any pixel
            lo, hi = float(img.min()), float(img.max())
            self.mapper.low, self.mapper.high = lo, max(hi, lo + 1.0)
            self.picture_fig.title.text = f"{layers[0]}: % of each pixel's {d['fan_out']} weights kept"
        else:
            self.picture_src.data = {"image": []}
            self.picture_fig.title.text = "Pixel picture: FC networks only"
        per = d["per_unit"].get(layer, [])
        self.unit_src.data = {"x": list(range(len(per))), "top": [100 * v for v in per]}
        self.unit_fig.x_range.start, self.unit_fig.x_range.end = -1, max(10, len(per))
        kind = "filter" if layer.startswith("conv") else "neuron"
        self.unit_fig.title.text = f"{layer}: fraction kept per {kind}" if layer else "Fraction kept per unit"
        flips = d["sign_flips"]
        values = [100 * v for v in flips.values()]
        # the layer names are the categorical x axis's factors: the bars and their factors change
        # together, one right after the other (a bar whose layer is not a factor is not drawn)
        self.flip_src.data = {"layer": list(flips), "flip": values}
        self.flip_fig.x_range.factors = list(flips) or ["-"]
        self.flip_fig.y_range.end = max(5.0, 1.15 * max(values or [0.0]))
        self.flip_fig.title.text = ("Sign flips w_i vs w_f" if flips else
                                    "Sign flips: no trained weights" if layers else "Sign flips w_i vs w_f")
