"""The explorer dashboard (``voila app/explorer.ipynb``).

* :mod:`lt_core.dashboard.controller` -- what the user asked for (:class:`RunRequest`), the runs it
  maps to, run control off the UI thread (Run / Stop / resume), the live state built from the
  engine's events, the results-store browser, the mask view and CSV export. No widget imports: it
  is driven directly by the tests.
* :mod:`lt_core.dashboard.views` -- the ipywidgets controls and bokeh plots bound to a controller
  (:func:`build_app`).

The views are imported lazily so that the controller works where ipywidgets or bokeh are missing.
"""

from .controller import (MODES, SCHEDULES, Controller, RunRequest, StoredRun, export_csv, list_runs,
                         load_stored_series, mask_details, paper_table1, parse_seeds, plan_jobs, plot_tables)

__all__ = ["MODES", "SCHEDULES", "Controller", "RunRequest", "StoredRun", "build_app", "export_csv", "list_runs",
           "load_stored_series", "mask_details", "paper_table1", "parse_seeds", "plan_jobs", "plot_tables"]


def build_app(*args, **kwargs):
    """The dashboard's widget tree bound to a new :class:`Controller` (see :func:`views.build_app`)."""
    from .views import build_app as _build

    return _build(*args, **kwargs)
