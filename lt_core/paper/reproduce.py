"""One command reproduces the paper: execute the notebooks with papermill, export them, write a report.

``python -m lt_core reproduce --preset tiny|quick|paper [--only rq1,table1] [--seeds 0,1] [--archs fc]
[--device cpu] [--out DIR] [--scheduler ADDRESS]`` calls :func:`reproduce`, which for each notebook
of :data:`NOTEBOOKS` (in order):

1. executes it with papermill into ``DIR/notebooks/<file>`` with the shared parameters (``preset``,
   ``seeds``, ``archs``, ``device``, ``data_dir``, ``results_dir``, ``report_dir`` = ``DIR/report``,
   ``scheduler``); the kernel imports the same ``lt_core`` as this process;
2. exports the executed notebook to HTML beside it (figures are PNGs inside it: it reads offline);
3. shows progress: a bar over notebooks and, inside each, a bar over runs and rounds fed by the
   notebook's experiments through a progress file (see :mod:`lt_core.runner`).

Then it writes the index report (``DIR/report/index.md`` and ``index.html``: Table 1, every claim
check, every figure, run times; :mod:`lt_core.paper.report`). A notebook that fails stops the command
with :class:`ReproduceError` naming the notebook and the cell; the report of the notebooks before
it is written first. Runs finished before a failure or an interruption stay in the results store,
and the same command reuses them. Ctrl-C or SIGTERM reaches the running notebook's kernel through a
stop file (``DIR/.stop``, see :mod:`lt_core.experiments`): its run checkpoints at the next step
boundary and the command stops with one line saying how to resume.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import List, Optional, Sequence

import lt_core

from ..errors import ConfigError
from ..events import RunStopped, StopToken
from ..runner import PROGRESS_ENV, STOP_ENV
from .params import checked_data_dir
from ..plugins import portable
from ..presets import get_preset
from .report import Timing, machine, write_index
from ..store import results_root
from .notebooks import NOTEBOOKS, REPO_NOTEBOOKS, select

KERNEL_QUIET = "--IPKernelApp.log_level=CRITICAL"


class ReproduceError(RuntimeError):
    """A notebook of the reproduction failed; the message names it and the cell."""


class ProgressTail:
    """Follows the progress file a notebook's experiments append to, into a tqdm bar."""

    def __init__(self, path: Path, position: int) -> None:
        from tqdm import tqdm

        self.path, self.offset, self.label = path, 0, None
        self.bar = tqdm(total=0, position=position, leave=False, unit="run-round", dynamic_ncols=True)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._follow, daemon=True)
        self.thread.start()

    def _follow(self) -> None:
        while not self.done.wait(0.5):
            self.poll()
        self.poll()

    def poll(self) -> None:
        if not self.path.is_file():
            return
        with open(self.path) as fh:
            fh.seek(self.offset)
            lines = fh.readlines()
            self.offset = fh.tell()
        for line in lines:
            try:
                update = json.loads(line)
            except json.JSONDecodeError:
                continue
            if update["label"] != self.label:
                self.label = update["label"]
                self.bar.reset(total=update["total"])
                self.bar.set_description(update["label"])
            self.bar.n = update["done"]
            self.bar.set_postfix_str(update["what"][-40:], refresh=False)
            self.bar.refresh()

    def close(self) -> None:
        self.done.set()
        self.thread.join()
        self.bar.close()


class StopRelay:
    """Hands a stop request of this process (Ctrl-C, SIGTERM: a :class:`StopToken`) to the notebook's
    kernel by writing the stop file its experiments watch (:class:`lt_core.runner.StopFile`)."""

    def __init__(self, stop: StopToken, path: Path) -> None:
        self.stop, self.path = stop, path
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        while not self.done.wait(0.1):
            if self.stop.requested:
                self.path.write_text(self.stop.reason or "a stop request")
                return

    def close(self) -> None:
        self.done.set()
        self.thread.join()


def _execute(source: Path, target: Path, parameters: dict, cwd: Path) -> None:
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    try:
        # the kernel's own log stays quiet: its warnings (e.g. about TCP) mean nothing to the reader, and
        # jupyter_client interrupts every kernel it shuts down, which an idle kernel logs as an error; a
        # cell's failure still arrives as the cell's error, and a dead kernel as papermill's
        pm.execute_notebook(str(source), str(target), parameters=parameters, kernel_name="python3", cwd=str(cwd),
                            progress_bar=False, log_output=False, extra_arguments=[KERNEL_QUIET])
    except PapermillExecutionError as exc:
        if exc.ename == "RunStopped":  # the kernel's experiments stopped at a step boundary, as asked
            raise RunStopped(f"{source.name}: {exc.evalue}") from None
        raise ReproduceError(f"{source.name}: cell {exc.exec_count} failed: {exc.ename}: {exc.evalue} "
                             f"(the executed notebook, with the traceback: {target})") from None


def _export_html(notebook: Path) -> Path:
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_filename(str(notebook))
    path = notebook.with_suffix(".html")
    path.write_text(body, encoding="utf-8")
    return path


def reproduce(preset: str = "quick", *, only: Optional[Sequence[str]] = None, seeds: Optional[Sequence[int]] = None,
              archs: Optional[Sequence[str]] = None, methods: Optional[Sequence[str]] = None,
              device: str = "auto", out="reproduction",
              results_dir=None, data_dir: Optional[str] = None, scheduler: Optional[str] = None,
              plugins: Sequence[str] = (), progress: bool = True, estimate: bool = False,
              stop: Optional[StopToken] = None) -> List[Timing]:
    """Execute the notebooks, export them and write the report under ``out``; see the module docstring.

    ``seeds`` / ``archs`` (``None``: each notebook's own) reach every notebook, and so do ``plugins``
    (module names or ``.py`` files, as ``--plugin``), which each notebook loads before it reads its
    other parameters, so the names they register can be chosen (``archs=["my_net"]``). ``methods``
    (``None``: its three) are the mask methods the families notebook compares. Returns one
    :class:`Timing` per notebook; a failing notebook raises :class:`ReproduceError`. With ``estimate``
    (the command's default) it first prints, on stderr, how long the work the store does not hold yet
    will take on this machine, at rates measured just now (:mod:`lt_core.paper.estimate`).

    ``stop`` (a :class:`StopToken`, which the command's Ctrl-C and SIGTERM set) reaches the running
    notebook's experiments: they checkpoint at the next step boundary and :class:`RunStopped` is
    raised here, after the report of what ran is written; the same call later resumes from the store.
    """
    chosen = get_preset(preset)
    names = select(only)
    for name, given in (("seeds", seeds), ("archs", archs), ("methods", methods)):
        if given is not None and not list(given):
            raise ConfigError(f"{name}: the list is empty; give one or more (None: each notebook's own)")
    if data_dir is not None:
        data_dir = str(checked_data_dir(data_dir))
    if not REPO_NOTEBOOKS.is_dir():
        raise ConfigError(f"reproduce: the notebooks folder {REPO_NOTEBOOKS} is missing; run from a checkout of "
                          f"lt-explorer (pip install -e .)")
    out = Path(out).resolve()
    notebooks, report = out / "notebooks", out / "report"
    notebooks.mkdir(parents=True, exist_ok=True)
    parameters = {"preset": preset, "device": device, "data_dir": data_dir, "scheduler": scheduler,
                  "results_dir": str(results_root(results_dir).resolve()), "report_dir": str(report)}
    if seeds is not None:
        parameters["seeds"] = list(seeds)
    if archs is not None:
        parameters["archs"] = list(archs)
    if plugins:
        parameters["plugins"] = portable(plugins)
    if methods is not None:
        parameters["methods"] = list(methods)
    if estimate:
        from .estimate import estimate as price, notebook_plans

        line = price(notebook_plans(names, parameters), parameters["results_dir"], device, data_dir).line()
        print(line, file=sys.stderr, flush=True)
    progress_file, stop_file = out / ".progress.jsonl", out / ".stop"
    stop_file.unlink(missing_ok=True)
    # the kernels import the lt_core this process runs, report their progress to the file and stop once
    # the stop file exists (the kernel is a process of its own: Ctrl-C on this one does not reach it)
    package_root = str(Path(lt_core.__file__).resolve().parents[1])
    saved = {key: os.environ.get(key) for key in ("PYTHONPATH", PROGRESS_ENV, STOP_ENV)}
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, saved["PYTHONPATH"]) if p)
    os.environ[PROGRESS_ENV] = str(progress_file)
    os.environ[STOP_ENV] = str(stop_file)
    relay = StopRelay(stop, stop_file) if stop is not None else None
    timings: List[Timing] = []
    started = time.perf_counter()
    outer = None
    if progress:
        from tqdm import tqdm

        outer = tqdm(total=len(names), unit="notebook", position=0, dynamic_ncols=True)
    try:
        for name in names:
            if stop is not None and stop.requested:
                raise RunStopped(f"reproduce stopped by {stop.reason} before {NOTEBOOKS[name]}")
            if outer is not None:
                outer.set_description(name)
            progress_file.unlink(missing_ok=True)
            tail = ProgressTail(progress_file, 1) if progress else None
            t0 = time.perf_counter()
            target = notebooks / NOTEBOOKS[name]
            try:
                _execute(REPO_NOTEBOOKS / NOTEBOOKS[name], target, parameters, out)
            except ReproduceError as exc:
                timings.append(Timing(name, time.perf_counter() - t0, f"failed: {exc}"))
                raise
            except RunStopped:
                timings.append(Timing(name, time.perf_counter() - t0, "stopped"))
                raise
            finally:
                if tail is not None:
                    tail.close()
            _export_html(target)
            timings.append(Timing(name, time.perf_counter() - t0, "done"))
            if outer is not None:
                outer.update(1)
    finally:
        if relay is not None:
            relay.close()
        if outer is not None:
            outer.close()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        progress_file.unlink(missing_ok=True)
        stop_file.unlink(missing_ok=True)
        total = time.perf_counter() - started
        seeds_text = (", ".join(map(str, seeds)) if seeds is not None
                      else f"each notebook's default for the preset ({', '.join(map(str, chosen.seeds))})")
        about = [f"Preset {chosen.name}: {chosen.description}. Seeds: {seeds_text}. Networks: "
                 f"{', '.join(archs) if archs else 'each notebook’s default'}."
                 + (f" Mask methods compared: {', '.join(methods)}." if methods else ""),
                 f"Machine: {machine()}. Wall time: {total / 60:.1f} minutes for {len(timings)} notebook(s).",
                 f"Results store: {parameters['results_dir']}. Executed notebooks and their HTML exports: "
                 f"{notebooks}."]
        write_index(report, title=f"Reproduction of Zhou et al. (2019), preset {chosen.name}", about=about,
                    timings=timings)
    return timings
