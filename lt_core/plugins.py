"""User modules that register architectures, criteria and policies: loaded by ``--plugin`` on every
command and by the ``plugins`` parameter of every notebook (which ``reproduce --plugin`` sets), so a
name a researcher registers is valid wherever a run is described."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Iterable


def load_plugin(spec: str) -> None:
    """Import ``spec``: a path to a ``.py`` file (loaded as a module named after the file) or a module
    name. A file already loaded from the same path is not loaded again."""
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
    importlib.import_module(spec)


def portable(specs: Iterable[str]) -> list:
    """``specs`` as another process in another folder can load them: files as absolute paths."""
    return [str(Path(s).resolve()) if s.endswith(".py") or Path(s).is_file() else s for s in specs]
