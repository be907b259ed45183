"""The explorer dashboard (``voila app/explorer.ipynb``): views over a small state machine.

* :mod:`.request` -- what the user asked for (:class:`RunRequest`), checked by building the
  engine's configs, and the engine calls it maps to (:func:`plan_jobs`);
* :mod:`.state` -- the live state of a run, folded from the engine's events by a table of handlers;
* :mod:`.controller` -- the run thread, Stop / resume, and the listeners the views draw from;
* :mod:`.stored` -- the results store as the dashboard reads it (the Compare tab's list, overlays);
* :mod:`.series`, :mod:`.tables`, :mod:`.masks`, :mod:`.catalog` -- a run as plotted, the plots'
  data and its CSV export, the mask view's data, and the per-network facts;
* :mod:`.views` -- the ipywidgets controls and bokeh plots bound to a controller (:func:`build_app`).

Nothing but the views imports ipywidgets or bokeh; they are imported lazily so that the rest works
(and is tested) without them.
"""

from .controller import Controller
from .masks import mask_details
from .request import MODES, SCHEDULES, RunRequest, parse_seeds, plan_jobs
from .stored import StoredRun, list_runs, load_stored_series
from .tables import export_csv, plot_tables

__all__ = ["MODES", "SCHEDULES", "Controller", "RunRequest", "StoredRun", "build_app", "export_csv", "list_runs",
           "load_stored_series", "mask_details", "parse_seeds", "plan_jobs", "plot_tables"]


def build_app(*args, **kwargs):
    """The dashboard's widget tree bound to a new :class:`Controller` (see :func:`views.build_app`)."""
    from .views import build_app as build

    return build(*args, **kwargs)
