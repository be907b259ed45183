"""Serve the explorer: ``python -m lt_core.dashboard [voila options]``.

Runs Voila on ``app/explorer.ipynb`` with the page's own template, ``lt-explorer``
(``app/share/jupyter/voila/templates/``): Voila's lab template without the Font Awesome
stylesheets it loads from a CDN (Voila's own bundle carries Font Awesome and its fonts), so the
page requests nothing from outside the machine it is served from. Voila finds the template
through ``$JUPYTER_PATH``, which the command extends. Plain ``voila app/explorer.ipynb`` serves the
same page with Voila's lab template (and its CDN requests).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "app" / "explorer.ipynb"
TEMPLATE = "lt-explorer"
TEMPLATE_ROOT = REPO / "app" / "share" / "jupyter"  # <root>/voila/templates/<name>/


def voila_command(args: Sequence[str] = (), env: Optional[Dict[str, str]] = None) -> Tuple[List[str], Dict[str, str]]:
    """The command line and environment that serve the explorer with its template; ``args`` are
    further Voila options (``--port=8866``, ``--no-browser``, ...)."""
    env = dict(os.environ if env is None else env)
    if not env.get("BOKEH_RESOURCES"):
        env["BOKEH_RESOURCES"] = "inline"  # BokehJS in the page, not from its CDN
    env["JUPYTER_PATH"] = os.pathsep.join([str(TEMPLATE_ROOT)] + [p for p in [env.get("JUPYTER_PATH", "")] if p])
    voila = shutil.which("voila", path=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]))
    cmd = [voila] if voila else [sys.executable, "-m", "voila"]
    return cmd + [str(NOTEBOOK), f"--template={TEMPLATE}", *args], env


def main(argv: Optional[Sequence[str]] = None) -> int:
    cmd, env = voila_command(sys.argv[1:] if argv is None else argv)
    os.chdir(REPO)  # voila.json (kernel culling) is read from the current directory
    os.execvpe(cmd[0], cmd, env)
    return 0  # not reached
