"""A run's ledger: one line per result the engine computed and stored, never rewritten.

``<run folder>/ledger.jsonl`` gets one JSON line each time a result is stored: a finished round of a
dense or lottery run (``{"round": k}``), a learned supermask (``{"round": 0}``) or a batch of one-shot
supermask points (``{"points": n}``), each with the ``backend`` that trained a round (the ``device``
for a learned mask, which has no backend choice), the ``host`` and
``pid`` of the process and the ``time`` (Unix seconds). Lines are appended while the run's lock is
held (:mod:`.lock`), just before the result is marked finished, so the ledger counts trainings: a
result reused from the store adds no line, and a round trained twice (which the locks prevent)
would show up as two lines for one round. :func:`trainings` counts them per round.

Lines are short single ``write`` calls on a file opened for appending, so a reader sees whole lines.
A line that is not a JSON object (the file edited or damaged) raises :class:`LedgerError` naming the
file and the line.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections import Counter
from pathlib import Path
from typing import Dict, List

from ..errors import StoreError

LEDGER = "ledger.jsonl"


class LedgerError(StoreError, ValueError):
    """A ledger line that is not a JSON object; the message names the file, the line and the problem."""


def append_entry(folder, entry: dict) -> None:
    """Append ``entry`` (plus host, pid and time) as one line of ``folder``'s ledger."""
    record = {**entry, "host": socket.gethostname(), "pid": os.getpid(), "time": round(time.time(), 3)}
    path = Path(folder) / LEDGER
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fh.write(json.dumps(record, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_entries(folder) -> List[dict]:
    """The ledger's entries, oldest first (none for a run stored before ledgers existed)."""
    path = Path(folder) / LEDGER
    if not path.is_file():
        return []
    entries = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError as exc:
                raise LedgerError(f"{path}: line {number} is not JSON ({exc}): {line.strip()[:60]!r}; "
                                  "each line must be one JSON object, as the engine appends them") from None
            if not isinstance(entry, dict):
                raise LedgerError(f"{path}: line {number} is a JSON {type(entry).__name__}, not an object: "
                                  f"{line.strip()[:60]!r}; each line must be one JSON object, as the engine "
                                  "appends them")
            entries.append(entry)
    return entries


def trainings(folder) -> Dict[int, int]:
    """How many times each round of the run in ``folder`` was trained: ``{round: count}``."""
    return dict(Counter(e["round"] for e in read_entries(folder) if "round" in e))
