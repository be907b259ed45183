"""The explorer dashboard (``python -m lt_core.dashboard``, :mod:`.serve`: Voila on
``app/explorer.ipynb``): views over a small state machine.

* :mod:`.request` -- what the user asked for (:class:`RunRequest`), checked by building the
  engine's configs, and the engine calls it maps to (:func:`plan_jobs`);
* :mod:`.state` -- the live state of a run, folded from the engine's events by a table of handlers;
* :mod:`.controller` -- the run thread, Stop / resume, and the listeners the views draw from
  (paced by :mod:`.pacing`);
* :mod:`.stored` -- the results store as the dashboard reads it (the Compare tab's list, overlays,
  the stored runs of the controls' settings);
* :mod:`.presets` -- the settings that reproduce each of the paper's figures and Table 1, and
  :mod:`.cost` -- what a request would take on this machine (shown for the paper's schedule);
* :mod:`.series`, :mod:`.tables`, :mod:`.masks`, :mod:`.catalog` -- a run as plotted, the plots'
  data and its CSV export, the mask view's data, and the per-network facts;
* :mod:`.views` -- the ipywidgets controls and bokeh plots bound to a controller (:func:`build_app`).

Nothing but the views imports ipywidgets or bokeh; they are imported lazily so that the rest works
(and is tested) without them.
"""

from .controller import Controller
from .masks import learned_mask_details, mask_details, oneshot_mask_details
from .presets import apply_preset, preset_options
from .request import MODES, SCHEDULES, RunRequest, parse_seeds, plan_jobs
from .stored import StoredRun, list_runs, load_stored_series
from .tables import export_csv, plot_tables

__all__ = ["MODES", "SCHEDULES", "Controller", "RunRequest", "StoredRun", "apply_preset", "build_app",
           "close_kernel_with_page", "export_csv", "learned_mask_details", "list_runs", "load_stored_series",
           "mask_details", "oneshot_mask_details", "parse_seeds", "plan_jobs", "plot_resources", "plot_tables",
           "preset_options"]


def build_app(*args, **kwargs):
    """The dashboard's widget tree bound to a new :class:`Controller` (see :func:`views.build_app`)."""
    from .views import build_app as build

    return build(*args, **kwargs)


def plot_resources():
    """The BokehJS the page needs (see :func:`views.plot_resources`)."""
    from .views import plot_resources as resources

    return resources()


def close_kernel_with_page():
    """The Javascript that makes the page shut its kernel down when it closes (see
    :func:`views.close_kernel_with_page`)."""
    from .views import close_kernel_with_page as close

    return close()
