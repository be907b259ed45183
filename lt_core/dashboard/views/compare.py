"""The Compare & export tab: the results store's runs, overlays of stored runs, CSV export."""

from __future__ import annotations

import base64
import html

import ipywidgets as W

from ..controller import Controller
from .widgets import ControlRows

KIND_ORDER = {"train": 0, "lottery": 1, "supermask": 2, "learnmask": 3}


def compare_options(runs, overlaid) -> list:
    """The Compare list's ``(label, name)`` options: runs of today's initialisation first, then by kind
    (dense, lottery, one-shot, learned), by what they are (network, settings, schedule, seed) and by
    folder; a run drawn on the plots now is marked ``overlaid · ``."""
    ordered = sorted(runs, key=lambda r: (r.outdated is not None, KIND_ORDER.get(r.kind, 9), r.description, r.name))
    return [(("overlaid · " if r.name in overlaid else "") + r.label, r.name) for r in ordered]


class ComparePanel:
    """Lists the store's runs, overlays the selected ones on the plots, exports the plots' data."""

    def __init__(self, controller: Controller, rows: ControlRows) -> None:
        self.c = controller
        self.on_runs = None  # called with the store's runs whenever the list is refreshed
        self.runs_select = rows.add(W.SelectMultiple, "runs", "Stored runs", options=[], rows=10,
                                    layout=W.Layout(width="1100px"))
        self.refresh_btn = rows.add(W.Button, "refresh", description="Refresh list", icon="refresh",
                                    layout=W.Layout(width="140px"))
        self.overlay_btn = rows.add(W.Button, "overlay", description="Overlay selected", icon="plus",
                                    layout=W.Layout(width="160px"))
        self.clear_btn = rows.add(W.Button, "clear", description="Clear overlays", icon="times",
                                  layout=W.Layout(width="140px"))
        self.export_btn = rows.add(W.Button, "export", description="Export CSV", icon="download",
                                   layout=W.Layout(width="140px"))
        self.compare_info = W.HTML()
        self.compare_info.add_class("lt-compare-info")
        self.export_info = W.HTML()
        self.export_info.add_class("lt-export-info")
        self.refresh_btn.on_click(lambda _: self.refresh())
        self.overlay_btn.on_click(self.overlay)
        self.clear_btn.on_click(self.clear)
        self.export_btn.on_click(self.export)
        self.panel = W.VBox([self.compare_info, rows.rows["runs"],
                             W.HBox([self.refresh_btn, self.overlay_btn, self.clear_btn, self.export_btn]),
                             self.export_info])

    def refresh(self) -> None:
        """List the store's runs again, keeping the selection."""
        runs = self.c.stored_runs()
        if self.on_runs is not None:
            self.on_runs(runs)
        selected = set(self.runs_select.value)
        self.runs_select.options = compare_options(runs, self.c.overlays)
        self.runs_select.value = tuple(n for n in selected if n in {r.name for r in runs})
        old = sum(1 for r in runs if r.outdated)
        old_text = f" ({old} made under earlier rules: listed, not drawn)" if old else ""
        self.compare_info.value = (f"{len(runs)} run(s) in <code>{html.escape(str(self.c.root))}</code>{old_text}. "
                                   f"Overlays: {len(self.c.overlays)}.")

    def overlay(self, _=None) -> None:
        """Overlay the selected stored runs; a run that cannot be read is named in the panel."""
        names = list(self.runs_select.value)
        if not names:
            self.compare_info.value = "Select one or more stored runs first."
            return
        failed = []
        for name in names:
            try:
                self.c.add_overlay(name)
            except Exception as exc:
                failed.append(f"{name}: {exc}")
        self.refresh()
        if failed:
            self.compare_info.value += "<br><span style='color:#a00'>" + html.escape("; ".join(failed)) + "</span>"

    def clear(self, _=None) -> None:
        self.c.clear_overlays()
        self.refresh()

    def export(self, _=None) -> None:
        """Write the plots' data to the store and offer it for download."""
        try:
            path = self.c.export_csv()
        except Exception as exc:
            self.export_info.value = f"<span style='color:#a00'>Export failed: {html.escape(str(exc))}</span>"
            return
        data = path.read_bytes()
        link = ""
        if len(data) < 20_000_000:
            b64 = base64.b64encode(data).decode()
            link = (f" <a download='{html.escape(path.name)}' href='data:text/csv;base64,{b64}' "
                    f"style='font-weight:bold'>Download {html.escape(path.name)}</a>")
        rows = data.count(b"\n") - 1
        self.export_info.value = f"Wrote {rows} rows to <code>{html.escape(str(path))}</code>.{link}"
