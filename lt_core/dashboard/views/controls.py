"""The dashboard's controls: the choices of a run request, Run / Stop, status, progress, message."""

from __future__ import annotations

import html
import threading

import ipywidgets as W
import torch

from lt_core import ARCHS, CRITERIA, MASK0_POLICIES, MASK1_POLICIES
from lt_core.supermask import DEFAULT_METHOD, MASK_METHODS

from .. import catalog
from ..controller import Controller
from ..cost import clock, estimate_seconds
from ..presets import apply_preset, preset_options
from ..request import MODES, SCHEDULES, RunRequest, method_uses, parse_fractions, parse_seeds
from .tips import TIPS
from .widgets import LABEL_WIDTH, STYLE, ControlRows, label_html


KEEP_DEFAULT = "0.05, 0.1, 0.3, 0.5"  # the families notebook's edge-popup sweep


class Controls:
    """The request's controls with their labels, the Run and Stop buttons, status and progress."""

    def __init__(self, controller: Controller, rows: ControlRows) -> None:
        self.c = controller
        self.labels = rows.labels
        self.arch = rows.add(W.Dropdown, "arch", "Network", options=[(catalog.arch_label(a), a) for a in ARCHS],
                             value="fc")
        self.dataset = rows.add(W.Dropdown, "dataset", "Dataset", options=self._dataset_options("fc"))
        self.mode = rows.add(W.Dropdown, "mode", "Mode", options=[(v, k) for k, v in MODES.items()], value="lottery")
        self.preset = rows.add(W.Dropdown, "preset", "Paper figure",
                               options=[("choose a figure or table to reproduce...", "")] + preset_options(),
                               value="", layout=W.Layout(width="800px", max_width="calc(100vw - 200px)"))
        self.cost_done = threading.Event()  # set once the estimate of the paper preset chosen last is shown
        self.cost_estimate = None  # its seconds
        width = max(len(c) for c in CRITERIA) + 2
        self.criteria = rows.add(W.SelectMultiple, "criteria", "Mask criteria",
                                 options=[(f"{c.name:<{width}}{c.formula}", c.name) for c in CRITERIA.values()],
                                 value=("large_final",), rows=len(CRITERIA), layout=W.Layout(width="360px"))
        self.mask1 = rows.add(W.SelectMultiple, "mask1", "Mask-1 policy", options=[(p, p) for p in MASK1_POLICIES],
                              value=("rewind",), rows=len(MASK1_POLICIES))
        self.mask0 = rows.add(W.SelectMultiple, "mask0", "Mask-0 policy", options=[(p, p) for p in MASK0_POLICIES],
                              value=("zero",), rows=len(MASK0_POLICIES))
        # any whole number: Run refuses one out of range in the page's words, as it does Epochs (a
        # bounded box would change 0 or 1000 to 1 or 200 without a word)
        self.rounds = rows.add(W.IntText, "rounds", "Rounds", value=5)
        self.w_init = rows.add(W.Checkbox, "w_init", "initial weights", value=True, indent=False,
                               layout=W.Layout(width="20px"))
        self.w_sc = rows.add(W.Checkbox, "w_sc", "signed constants", value=True, indent=False,
                             layout=W.Layout(width="20px"))
        self.dwr = rows.add(W.Checkbox, "dwr", "DWR", value=False, indent=False, layout=W.Layout(width="20px"))
        # the learned mode's mask family (every registered method, a user's own included) and, for a
        # family with a keep fraction (edge-popup), the fractions to run, one run each
        self.family = rows.add(W.Dropdown, "family", "Mask family",
                               options=[(m.name, m.name) for m in MASK_METHODS.values()], value=DEFAULT_METHOD)
        self.keep = rows.add(W.Text, "keep", "Keep fraction(s)", value=KEEP_DEFAULT, placeholder="0.05, 0.1, 0.3, 0.5")
        self.weights_label = W.HTML(layout=W.Layout(width=LABEL_WIDTH, margin="0 6px 0 0"))
        self.schedule = rows.add(W.Dropdown, "schedule", "Schedule", options=[(v, k) for k, v in SCHEDULES.items()],
                                 value="quick")
        self.epochs = rows.add(W.IntText, "epochs", "Epochs (custom)", value=1)
        self.seeds = rows.add(W.Text, "seeds", "Seed(s)", value="0", placeholder="0 or 0, 1, 2")
        devices = [("auto", "auto"), ("cpu", "cpu")] + ([("cuda", "cuda")] if torch.cuda.is_available() else [])
        self.device = rows.add(W.Dropdown, "device", "Device", options=devices, value="auto")
        self.run_btn = rows.add(W.Button, "run", description="Run", button_style="success", icon="play",
                                layout=W.Layout(width="110px"))
        self.stop_btn = rows.add(W.Button, "stop", description="Stop", button_style="danger", icon="stop",
                                 layout=W.Layout(width="110px"), disabled=True)
        self.status = W.HTML(layout=W.Layout(margin="0 0 0 12px"))
        self.status.add_class("lt-status")

        self.arch.observe(self._on_arch, names="value")
        self.mode.observe(lambda _: self.apply_mode(mode_changed=True), names="value")
        self.family.observe(lambda _: self.apply_mode(), names="value")
        self.schedule.observe(lambda _: self.apply_mode(), names="value")
        self.preset.observe(self._on_preset, names="value")

        r = rows.rows
        wrap = W.Layout(flex_flow="row wrap", align_items="flex-start")
        col1 = W.VBox([r["arch"], r["dataset"], r["mode"], r["device"], r["schedule"], r["epochs"], r["seeds"]])
        weights = W.HBox([self.weights_label, r["w_init"], r["w_sc"], r["dwr"]], layout=W.Layout(align_items="center"))
        col2 = W.VBox([r["criteria"], weights, r["family"], r["keep"]])
        col3 = W.VBox([r["mask1"], r["mask0"], r["rounds"]])
        buttons = W.HBox([self.run_btn, self.stop_btn, self.status], layout=W.Layout(align_items="center"))
        self.controls_box = W.VBox([r["preset"], W.HBox([col1, col2, col3], layout=wrap), buttons])
        self.progress = W.IntProgress(value=0, min=0, max=1000, description="Progress", style=STYLE,
                                      layout=W.Layout(width="480px"),
                                      tooltip="Share of this run's training done; rounds the store already holds are not "
                                              "trained again and do not count")
        self.progress.add_class("lt-progress")
        self.progress_label = W.Label("")
        self.progress_label.add_class("lt-progress-label")
        self.progress_box = W.HBox([self.progress, self.progress_label], layout=W.Layout(align_items="center"))
        self.message = W.HTML()
        self.message.add_class("lt-message")

    @staticmethod
    def _dataset_options(arch: str):
        return [(catalog.dataset_label(d), d) for d in catalog.datasets_for(arch)]

    def _on_arch(self, change) -> None:
        self.dataset.options = self._dataset_options(change["new"])
        self.dataset.value = catalog.datasets_for(change["new"])[0]

    def apply_mode(self, mode_changed: bool = False) -> None:
        """Enable the controls the mode and schedule use (none while a run is in progress); a new mode
        also swaps the default criterion (large_final for lottery rounds, large_final_same_sign for
        one-shot supermasks)."""
        mode, family = self.mode.value, self.family.value
        running = self.c.status in ("running", "stopping")
        if mode_changed:
            if mode == "oneshot" and tuple(self.criteria.value) == ("large_final",):
                self.criteria.value = ("large_final_same_sign",)
            elif mode == "lottery" and tuple(self.criteria.value) == ("large_final_same_sign",):
                self.criteria.value = ("large_final",)
        enabled = {
            "arch": True, "dataset": True, "mode": True, "device": True, "schedule": True, "seeds": True,
            "criteria": mode in ("lottery", "oneshot"),
            "mask1": mode == "lottery", "mask0": mode == "lottery", "rounds": mode == "lottery",
            "w_init": mode == "oneshot" or (mode == "learned" and method_uses(family, "weights")),
            "w_sc": mode == "oneshot" or (mode == "learned" and method_uses(family, "weights")),
            "dwr": mode == "learned" and method_uses(family, "dwr"),
            "family": mode == "learned", "keep": mode == "learned" and method_uses(family, "keep"),
            "epochs": self.schedule.value == "custom",
        }
        for name, on in enabled.items():
            getattr(self, name).disabled = running or not on
        text, tip = (("Frozen weights", TIPS["learned_weights"]) if mode == "learned"
                     else ("Supermask weights", TIPS["supermask_weights"]))
        self.weights_label.value = label_html("weights", text, tip, ";display:block;text-align:right")
        for name, widget in (("rounds", self.rounds), ("mask1", self.mask1), ("mask0", self.mask0),
                             ("criteria", self.criteria), ("epochs", self.epochs), ("w_init", self.w_init),
                             ("w_sc", self.w_sc), ("dwr", self.dwr), ("family", self.family), ("keep", self.keep)):
            (self.labels[name].add_class if widget.disabled else self.labels[name].remove_class)("lt-off")
        self.run_btn.disabled = running
        self.stop_btn.disabled = not running

    def request(self) -> RunRequest:
        """The run request the controls describe (raises ConfigError for unparsable text)."""
        weights = tuple(w for w, box in (("init", self.w_init), ("signed_constant", self.w_sc)) if box.value)
        return RunRequest(arch=self.arch.value, dataset=self.dataset.value, mode=self.mode.value,
                          criteria=tuple(self.criteria.value), mask1=tuple(self.mask1.value),
                          mask0=tuple(self.mask0.value),
                          rounds=int(self.rounds.value), schedule=self.schedule.value,
                          epochs=int(self.epochs.value) if self.schedule.value == "custom" else None,
                          seeds=parse_seeds(self.seeds.value), device=self.device.value,
                          supermask_weights=weights, learned_weights=weights, dwr=bool(self.dwr.value),
                          method=self.family.value, keep_fractions=self._keep_fractions())

    def _keep_fractions(self):
        """The keep fractions typed, where the learned mode's family takes them (else its default:
        text in a box that does not apply is never refused)."""
        if self.mode.value == "learned" and method_uses(self.family.value, "keep"):
            return parse_fractions(self.keep.value)
        return RunRequest.keep_fractions

    def request_widgets(self) -> list:
        """The controls a run request is made of (a change shows that request's stored runs)."""
        return [self.arch, self.dataset, self.mode, self.criteria, self.mask1, self.mask0, self.rounds, self.schedule,
                self.epochs, self.seeds, self.w_init, self.w_sc, self.dwr, self.family, self.keep]

    def _on_preset(self, change) -> None:
        """Set the controls to reproduce the chosen figure (see :mod:`..presets`)."""
        if not change["new"]:
            return
        req = apply_preset(RunRequest(arch=self.arch.value, dataset=self.dataset.value), change["new"])
        self.mode.value = req.mode
        self.criteria.value = req.criteria
        self.mask1.value, self.mask0.value = req.mask1, req.mask0
        self.rounds.value, self.schedule.value = req.rounds, req.schedule
        self.seeds.value = ", ".join(map(str, req.seeds))
        weights = req.supermask_weights if req.mode == "oneshot" else req.learned_weights
        self.w_init.value, self.w_sc.value = "init" in weights, "signed_constant" in weights
        self.dwr.value = req.dwr
        self.family.value = req.method
        self.apply_mode()
        if change["new"].endswith("/paper"):
            self.warn_paper_cost(change["new"])

    def warn_paper_cost(self, key: str) -> None:
        """Warn, before Run, that a paper-schedule preset takes hours of CPU, and then how long it
        would take here: its work the store does not hold, priced at rates measured on this machine
        (:mod:`..cost`; on a thread, as measuring takes seconds to a minute)."""
        title = dict((k, t) for t, k in preset_options())[key]
        head = f"{title}: the paper's schedule takes hours of CPU time (days for some figures)."
        self.c.show_message(f"{head} Estimating how long on this machine...", "warning")
        self.cost_estimate = None

        def price() -> None:
            try:
                seconds, device = estimate_seconds(self.request(), self.c.root)
                text = (f"{head} Estimated here: about {clock(seconds)} of training ({device}, rates measured on "
                        f"this machine; runs the store already holds are left out). Press Run to start it; Stop "
                        f"keeps every finished round, and Run resumes.")
                self.cost_estimate = seconds
            except Exception as exc:  # e.g. the dataset is not on this machine
                text = f"{head} No estimate for this machine: {exc}"
            if self.preset.value == key and not self.c.running:  # still the choice, and nothing started
                self.c.show_message(text, "warning")
            self.cost_done.set()

        self.cost_done = threading.Event()
        threading.Thread(target=price, name="lt-estimate", daemon=True).start()

    def render_status(self, snap: dict) -> None:
        """Buttons, message, status and progress of a controller snapshot."""
        colors = {"info": ("#eef5ff", "#1f4e8c"), "success": ("#eefaf0", "#1d6b32"),
                  "warning": ("#fff8e6", "#8a5a00"), "error": ("#fdecec", "#a00000")}
        bg, fg = colors.get(snap["level"], colors["info"])
        status = snap["status"]
        running = status in ("running", "stopping")
        if self.run_btn.disabled != running or self.stop_btn.disabled == running:
            self.apply_mode()  # buttons first: the page never shows "stopped" with Run still disabled
        self.message.value = (f"<div class='lt-msg lt-msg-{snap['level']}' style='background:{bg};color:{fg};"
                              f"padding:6px 10px;border-radius:4px;border:1px solid {fg}33'>"
                              f"{html.escape(snap['message'])}</div>")
        self.status.value = f"<span class='lt-status-{status}'>Status: <b>{status}</b></span>"
        p = snap["progress"]
        self.progress.value = int(round(1000 * p["fraction"]))
        self.progress.bar_style = ("info" if p["fraction"] == 0 else
                                   {"finished": "success", "error": "danger", "stopped": "warning"}.get(status, "info"))
        self.progress_label.value = p["label"]

