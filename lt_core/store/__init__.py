"""The results store: one folder per run, named by a hash of its canonical configuration.

Layout under the results root (``--out``, else ``$LT_RESULTS_DIR``, else ``./results``)::

    train-fc-<hash>/            a dense run (also round 0 of every lottery run built on it)
        config.json  ledger.jsonl  [.lock while a process trains it]
        round_000/ init.pt final.pt masks.pt checksums.json metrics.csv summary.json
    lottery-fc-<hash>/          iterative pruning built on a dense run (its "trunk")
        config.json             (names the trunk folder)
        round_001/ ... round_024/   init.pt [start.pt] final.pt masks.pt [frozen.pt] checksums.json
                                    metrics.csv summary.json
        metrics.csv             all pruning rounds' rows, rewritten after each round
    supermask-fc-<hash>/        one-shot supermask points of a dense run: config.json, points.csv
    learnmask-fc-<hash>/        a learned supermask: config.json, scores.pt, checksums.json, metrics.csv,
                                summary.json

* :mod:`.keys` is run identity: :func:`run_key` makes a run's configs canonical once and gives its
  name, its folder and its ``config.json`` record; no other module builds a run's name.
* :mod:`.layout` writes a run's rounds (:class:`RunDir`); a round is finished when its
  ``summary.json`` exists, written last.
* :mod:`.files` writes every file atomically and records the SHA-256 of each tensor file and of a
  round's ``metrics.csv`` in its folder's ``checksums.json``; reading checks it and raises
  :class:`DamagedFileError` (a :class:`StoreError`) naming the file and the folder to delete. Folders
  stored before checksums existed read unverified (a folder the ledger records is not one of them).
  A checkpoint's SHA-256 lies beside it (``checkpoint.pt.sha256``): a checkpoint that does not match
  is discarded, never resumed from.
* :mod:`.lock` keeps two processes from training one run at once (:class:`RunLock`,
  :func:`hold_locks`): the second waits, then reuses what the first stored.
* :mod:`.ledger` appends one line per stored result to the run's ``ledger.jsonl`` (which backend,
  host and process computed it): the record that counts trainings (:func:`trainings`).
* :mod:`.reader` reads runs back as typed records (:func:`open_run`, :func:`list_runs`), a lottery's
  round 0 resolved to its trunk's, and an interrupted round or learned mask as far as its checkpoint
  got (:func:`unfinished_round`, :func:`unfinished_mask`).

Metric rows are tidy: ``run, round, iteration, split, metric, value``.
"""

from .files import METRIC_COLUMNS, POINT_COLUMNS, DamagedFileError, StoreError, UnreadableJSONError, \
    atomic_torch_save, atomic_write_bytes, atomic_write_json, atomic_write_text, metrics_csv, read_checkpoint, \
    read_json, read_metrics_csv, read_points, read_tensors, remove_checkpoint, torch_load, write_checkpoint, \
    write_points, write_tensors
from .ledger import LEDGER, LedgerError, append_entry, read_entries, trainings
from .layout import KINDS, RunDir, check_writable, results_root, stack_checkpoint, stack_checkpoints
from .keys import ROLES, RunKey, canonical, config_hash, run_key
from .lock import RunLock, hold_locks
from .reader import OLD_INIT, ROW_COLUMNS, LearnedMaskRun, LotteryRun, Round, Run, SupermaskRun, TrainRun, Unfinished, \
    list_runs, open_run, read_unfinished, unfinished_mask, unfinished_round

__all__ = [
    "DamagedFileError", "KINDS", "OLD_INIT", "LEDGER", "RunLock", "append_entry", "hold_locks", "read_entries", "trainings", "LearnedMaskRun", "LotteryRun", "METRIC_COLUMNS", "POINT_COLUMNS", "ROW_COLUMNS", "Round", "Run",
    "RunDir", "StoreError", "SupermaskRun", "TrainRun", "atomic_torch_save", "atomic_write_bytes",
    "atomic_write_json", "atomic_write_text", "ROLES", "RunKey", "canonical", "config_hash", "run_key", "list_runs",
    "metrics_csv", "open_run", "read_json", "read_metrics_csv", "read_points", "read_tensors", "check_writable", "results_root",
    "torch_load", "write_points", "write_tensors", "LedgerError", "UnreadableJSONError",
    "read_checkpoint", "remove_checkpoint", "write_checkpoint", "stack_checkpoint", "stack_checkpoints",
    "Unfinished", "read_unfinished", "unfinished_mask", "unfinished_round",
]
