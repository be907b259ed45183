"""Command-line interface: ``python -m lt_core <command> ...`` (``--help`` on each command).

Commands: ``train`` (dense network), ``lottery`` (iterative pruning), ``supermask`` (one-shot
supermasks on the untrained network), ``learn-mask`` (learned supermasks), ``export`` (a round's
ticket as a plain state_dict), ``sweep`` (a grid of experiments on a Dask cluster, see
:mod:`lt_core.sweep`), ``reproduce`` (the notebooks and a report, :mod:`lt_core.paper.reproduce`), ``list``
(every name the other commands accept).

``--plugin MODULE`` (repeatable, on every command; a module name or a path to a ``.py`` file)
imports a module before the arguments are read, so the architectures, criteria and policies it
registers (``lt_core.register_arch`` and friends) are valid choices of that command.

The single runs (``train``, ``lottery``, ``supermask``, ``learn-mask``) build an experiment record
(:mod:`lt_core.experiments`) from their options and run it through the one runner
(:func:`lt_core.runner.run_experiment`), here or, with ``--scheduler``, on a Dask cluster.

With ``--json`` the last line of stdout is one JSON object with the results (on a failure, an object
with ``error``). Errors in the input, missing or damaged data or store files, and a full or
read-only disk print one line naming the field or file (``--debug`` adds the traceback) and exit
with status 2. Ctrl-C or SIGTERM stops at the next step boundary (status 130 / 143): finished rounds
and a checkpoint of the current one are kept, and the same command resumes.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import signal
import sys
import traceback
import warnings
from pathlib import Path
from typing import List, Optional

from . import archs, criteria, data as data_mod, policies
from .cli_options import build, comma_list
from .cli_parser import CONFIRM_ABOVE, build_parser, command_configs, learn_configs, parents
from .config import ConfigError
from .errors import SweepError
from .events import RunStopped, StopToken
from .experiments import Dense, LearnedMasks, Lottery, Supermasks
from .plugins import load_plugin, portable
from .runner import run_experiment
from .paper.notebooks import NOTEBOOKS
from .paper.reproduce import ReproduceError
from .store import StoreError

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # both stop at a step boundary with a checkpoint
# the failures a user can cause or meet (bad input, missing or damaged data or store, a disk that is full or
# read-only, a sweep's failed units, a notebook of a reproduction that failed): one line each; anything else is
# a bug and keeps its traceback
EXPECTED_FAILURES = (ConfigError, data_mod.DataError, StoreError, SweepError, ReproduceError, ValueError, OSError)


def _print_event(event: dict) -> None:
    if event.get("stage") == "checkpoint_discarded":
        print(f"warning: checkpoint {event['path']} could not be read ({event['reason']}); it was deleted and "
              "training starts afresh", file=sys.stderr, flush=True)
    if event.get("event") == "stage" and event.get("stage") == "waiting" and event.get("unreadable"):
        print(f"waiting for {event['run']}: its lock {event['lock']} cannot be read (another process may be writing "
              f"it); it is taken over if no heartbeat renews it for {event['stale_after']:g} s", file=sys.stderr,
              flush=True)
    elif event.get("event") == "stage" and event.get("stage") == "waiting":
        print(f"waiting for {event['run']}: another process trains it (host {event['host']}, pid {event['pid']})",
              file=sys.stderr, flush=True)
    if event.get("event") == "supermask_point" and not event.get("reused"):
        print(f"{event['criterion']} / {event['weights']} p={event['power']:>2}: "
              f"{100 * event['weights_remaining']:6.2f}% remaining, test acc {100 * event['test_acc']:.2f}%",
              file=sys.stderr, flush=True)
    if event.get("event") == "round_end":
        note = " (reused)" if event.get("reused") else ""
        print(f"round {event['round']:>2}: {100 * event['weights_remaining']:6.2f}% weights remaining, "
              f"early-stop test acc {100 * event['early_stop_test_acc']:.2f}% "
              f"(iteration {event['early_stop_iteration']}), final {100 * event['final_test_acc']:.2f}%{note}",
              file=sys.stderr, flush=True)


def _listing() -> dict:
    return {"architectures": list(archs.ARCHS), "datasets": list(data_mod.DATASETS),
            "criteria": list(criteria.CRITERIA), "mask1_policies": list(policies.MASK1_POLICIES),
            "mask0_policies": list(policies.MASK0_POLICIES), "mask_methods": list(_mask_methods())}


def _arch_labels() -> dict:
    return {n: a.label for n, a in archs.ARCHS.items()}


def _mask_methods() -> dict:
    """The registered mask-learning methods (``learn-mask --method``), name -> one-line description."""
    from .supermask import MASK_METHODS

    return {name: method.description for name, method in MASK_METHODS.items()}


def _run(args, stop: StopToken) -> dict:
    from .export import export_ticket
    from .sweep import executor

    if args.command == "list":
        listing = _listing()
        if not args.json:
            # (not archs.ARCHS here: the reproduce branch below binds a local name archs)
            described = {"architectures": _arch_labels(),
                         "criteria": {n: c.description for n, c in criteria.CRITERIA.items()},
                         "mask1_policies": {n: p.description for n, p in policies.MASK1_POLICIES.items()},
                         "mask0_policies": {n: p.description for n, p in policies.MASK0_POLICIES.items()},
                         "mask_methods": _mask_methods()}
            for section, names in listing.items():
                print(f"{section}:")
                for name in names:
                    desc = described.get(section, {}).get(name, "")
                    print(f"  {name:<28} {desc}".rstrip())
        return listing
    if args.command == "reproduce":
        from .paper.reproduce import reproduce

        only, seeds, archs, methods = (None if value is None else comma_list(value, option, kind, what)
                              for option, value, kind, what in (
            ("--only", args.only, str, f"notebooks: {', '.join(NOTEBOOKS)} (leave --only out to run them all)"),
            ("--seeds", args.seeds, int, "integers, e.g. 0,1,2 (leave --seeds out for the preset's)"),
            ("--archs", args.archs, str, "networks, e.g. fc (leave --archs out for each notebook's)"),
            ("--methods", args.methods, str, "mask methods, e.g. edge_popup,signed (leave it out for the three)")))
        timings = reproduce(args.preset, only=only, seeds=seeds, archs=archs, methods=methods, device=args.device,
                            out=args.report_dir, results_dir=args.results_dir, data_dir=args.data_dir,
                            scheduler=args.scheduler, plugins=portable(args.plugin), progress=not args.quiet,
                            estimate=not args.no_estimate, stop=stop)
        report = Path(args.report_dir) / "report" / "index.md"
        print(f"report: {report}", file=sys.stderr)
        return {"report": str(report), "notebooks": [t.__dict__ for t in timings]}
    if args.command == "export":
        if args.to is None:
            raise ConfigError("--to: give the output file, e.g. --to ticket.pt")
        path = export_ticket(args.run_dir, args.round, args.to)
        print(f"wrote {path}", file=sys.stderr)
        return {"out": str(path), "run_dir": args.run_dir, "round": args.round}

    if args.command == "sweep":
        return _sweep(args, stop)

    where = executor(args.scheduler) if args.scheduler else None
    experiment = _experiment(args)
    outcome = run_experiment(experiment, out=args.out, executor=where, on_event=_print_event, stop=stop,
                             progress=not args.quiet and where is not None, steps=not args.quiet)
    result = outcome.result
    if args.command in ("learn-mask", "supermask"):
        return (result[0] if args.command == "learn-mask" else result).to_json()
    if args.command == "train":
        r0 = result.rounds[0]
        return {"run_dir": str(result.run_dir), "early_stop_iteration": r0.early_stop_iteration,
                "early_stop_test_acc": r0.early_stop_test_acc, "final_test_acc": r0.final_test_acc,
                "reused": r0.reused}
    if len(result) == 1:
        return result[0].to_json()
    return {"runs": [{"criterion": p.criterion, "mask1": p.mask1, "mask0": p.mask0, **r.to_json()}
                     for p, r in zip(experiment.prunes, result)]}


def _experiment(args):
    """The experiment record of a single-run command (``train``, ``lottery``, ``supermask``,
    ``learn-mask``), from its options."""
    if args.command == "learn-mask":
        data, model, learn = learn_configs(args)
        return LearnedMasks(model.arch, [learn], data=data)
    cfg = command_configs(args)
    arch, data, train = cfg["model"].arch, cfg["data"], cfg["train"]
    if args.command == "supermask":
        from .supermask import SupermaskConfig

        return Supermasks(arch, train, build(SupermaskConfig, args), data=data)
    if args.command == "train":
        return Dense(arch, train, data=data)
    return Lottery(arch, train, cfg["prunes"], data=data, max_stack=args.max_stack)


def _sweep(args, stop: StopToken) -> dict:
    from .store import results_root
    from .sweep import load_grid, run_experiments, work_units

    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers: {args.workers} is not allowed; give an integer >= 1")
    experiments = load_grid(args.grid).experiments()  # checked in full before anything is submitted
    units = len(work_units(experiments))
    print(f"{args.grid}: {len(experiments)} experiment{'s' * (len(experiments) != 1)} in {units} work "
          f"unit{'s' * (units != 1)}", file=sys.stderr, flush=True)
    if len(experiments) > CONFIRM_ABOVE and not args.yes:
        raise ConfigError(f"--yes: {args.grid} expands to {len(experiments)} experiments, more than "
                          f"{CONFIRM_ABOVE}; check the grid, then add --yes to start them")
    table = Path(args.table) if args.table else results_root(args.out) / f"sweep-{Path(args.grid).stem}.csv"
    frame = run_experiments(experiments, args.scheduler, args.workers, out=args.out,
                            scheduler_file=args.scheduler_file, table=table, progress=not args.quiet, stop=stop)
    print(f"{len(experiments)} experiments, {len(frame)} rows: wrote {table}", file=sys.stderr)
    return {"experiments": len(experiments), "rows": len(frame), "table": str(table)}


def main(argv: Optional[List[str]] = None) -> int:
    """Run one command; return the exit status (0 done, 2 bad input or a failure named in one line,
    130 / 143 stopped by Ctrl-C / SIGTERM with a checkpoint kept)."""
    # plugins first: what they register must be among the choices the full parser checks
    early = argparse.ArgumentParser(add_help=False, allow_abbrev=False, parents=[parents()["every"]])
    early.add_argument("--json", action="store_true")  # so that a failure before the full parse is JSON too
    early_args = early.parse_known_args(argv)[0]
    for spec in early_args.plugin:
        try:
            load_plugin(spec)
        except Exception as exc:  # the user's module: report what failed, in one line
            return _fail(early_args, f"error: --plugin {spec}: {type(exc).__name__}: {exc}", 2)
    parser = build_parser()
    args = _parse(parser, argv, early_args)
    if isinstance(args, int):
        return args
    for notice in getattr(args, "deprecations", None) or []:  # an old spelling: one line, then on as the new one
        print(f"warning: {args.command} {notice}", file=sys.stderr, flush=True)
        warnings.warn(f"{args.command} {notice}", DeprecationWarning, stacklevel=2)
    stop = StopToken()
    # Ctrl-C and SIGTERM ask the running command to stop at its next step boundary (a lottery's training
    # step, a serial sweep's unit, a reproduction's notebook): it checkpoints and raises RunStopped
    previous = {sig: signal.signal(sig, lambda signum, _frame: stop.request(signal.Signals(signum).name))
                for sig in STOP_SIGNALS}
    try:
        result = _run(args, stop)
    except RunStopped as exc:
        signum = getattr(signal, stop.reason or "SIGINT", signal.SIGINT)
        return _fail(args, f"{exc}; finished rounds are kept, run the same command again to resume",
                     128 + int(signum), stopped=True)
    except EXPECTED_FAILURES as exc:
        return _fail(args, f"error: {exc}", 2)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if args.json:
        print(json.dumps(result))
    return 0


def _parse(parser: argparse.ArgumentParser, argv: Optional[List[str]], early_args) -> "argparse.Namespace | int":
    """The parsed arguments, or the exit status of an argument error: argparse's usage and error
    lines on stderr as always, and with ``--json`` the error object on stdout as for other failures."""
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            return parser.parse_args(argv)
    except SystemExit as exc:
        sys.stderr.write(captured.getvalue())
        if exc.code in (0, None) or not early_args.json:
            raise
        lines = captured.getvalue().strip().splitlines()
        message = lines[-1] if lines else "error: the arguments could not be read"
        message = message[message.find("error: "):] if "error: " in message else f"error: {message}"
        print(json.dumps({"error": message, "exit_status": int(exc.code), "stopped": False}))
        return int(exc.code)


def _fail(args, message: str, status: int, stopped: bool = False) -> int:
    """One line on stderr (the traceback too with ``--debug``); with ``--json`` also a JSON object
    ``{"error": ...}`` as the last line of stdout, so scripts that read it see the failure."""
    if getattr(args, "debug", False):
        traceback.print_exc()
    print(message, file=sys.stderr)
    if getattr(args, "json", False):
        print(json.dumps({"error": message, "exit_status": status, "stopped": stopped}))
    return status
