"""The reproduction's notebooks: their keys, files and order (``reproduce --only`` names keys).

The notebooks live in the repository's ``notebooks/`` folder (:data:`REPO_NOTEBOOKS`); each runs
one research question of the paper, Table 1, or the supermask families beside it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence

import lt_core

from ..errors import ConfigError

REPO_NOTEBOOKS = Path(lt_core.__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS: Dict[str, str] = {"rq1": "rq1_mask_criteria.ipynb", "rq2": "rq2_mask1_signs.ipynb",
                             "rq3": "rq3_mask0.ipynb", "rq4": "rq4_supermasks.ipynb",
                             "rq5": "rq5_learned_supermasks.ipynb", "table1": "table1.ipynb",
                             "families": "supermask_families.ipynb"}


def select(only: Optional[Sequence[str]]) -> List[str]:
    """The notebooks to run, in :data:`NOTEBOOKS` order; ``only`` names a subset (``None``: all of them;
    an empty list is refused, it must not mean all)."""
    if only is None:
        return list(NOTEBOOKS)
    if not only:
        raise ConfigError(f"only: the list is empty; give one or more of {', '.join(NOTEBOOKS)} (None runs them all)")
    unknown = [name for name in only if name not in NOTEBOOKS]
    if unknown:
        raise ConfigError(f"only: unknown notebook(s) {', '.join(unknown)}; allowed values: {', '.join(NOTEBOOKS)}")
    return [name for name in NOTEBOOKS if name in only]
