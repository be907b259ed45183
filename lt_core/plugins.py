"""User modules that register architectures, criteria and policies: loaded by ``--plugin`` on every
command and by the ``plugins`` parameter of every notebook (which ``reproduce --plugin`` sets), so a
name a researcher registers is valid wherever a run is described.

A plug-in is the user's code, run in this process: a module that calls ``sys.exit()`` while it is
imported raises :class:`PluginError` naming it (the command fails instead of ending with status 0
and no result), and every plug-in loaded is remembered (:func:`loaded`) so that the worker
processes of a local Dask cluster load the same ones (:mod:`lt_core.sweep.run`).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Iterable, List

_LOADED: List[str] = []  # the specs loaded in this process, as portable() writes them, in order


class PluginError(RuntimeError):
    """A plug-in module did something a plug-in must not do while it is imported (e.g. ``sys.exit``)."""


def load_plugin(spec: str) -> None:
    """Import ``spec``: a path to a ``.py`` file (loaded as a module named after the file) or a module
    name. A file already loaded from the same path is not loaded again. A module that exits while it
    is imported raises :class:`PluginError` naming it."""
    try:
        _import(spec)
    except SystemExit as exc:
        raise PluginError(f"module {spec!r} called sys.exit({exc.code!r}) while it was imported; a plug-in must "
                          "only register names (lt_core.register_criterion and friends)") from None
    portable_spec = portable([spec])[0]
    if portable_spec not in _LOADED:
        _LOADED.append(portable_spec)


def _import(spec: str) -> None:
    path = Path(spec)
    if spec.endswith(".py") or path.is_file():
        if not path.is_file():
            raise FileNotFoundError(f"--plugin: no file {spec!r}")
        name = path.stem
        loaded = sys.modules.get(name)
        if loaded is not None and Path(getattr(loaded, "__file__", "") or "").resolve() == path.resolve():
            return
        module_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        return
    importlib.import_module(spec)  # on any failure, the import system forgets the half-imported module


def loaded() -> List[str]:
    """The plug-ins loaded in this process so far (module names, or ``.py`` files as absolute paths)."""
    return list(_LOADED)


def portable(specs: Iterable[str]) -> list:
    """``specs`` as another process in another folder can load them: files as absolute paths."""
    return [str(Path(s).resolve()) if s.endswith(".py") or Path(s).is_file() else s for s in specs]
