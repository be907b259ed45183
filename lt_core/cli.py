"""Command-line interface: ``python -m lt_core <command> ...`` (``--help`` on each command).

Commands: ``train`` (dense network), ``lottery`` (iterative pruning), ``supermask`` (one-shot
supermasks on the untrained network), ``learn-mask`` (learned supermasks), ``export`` (a round's
ticket as a plain state_dict), ``sweep`` (a grid of experiments on a Dask cluster, see
:mod:`lt_core.sweep`), ``reproduce`` (the notebooks and a report, :mod:`lt_core.paper.reproduce`), ``list``
(every name the other commands accept).

``--plugin MODULE`` (repeatable, on every command; a module name or a path to a ``.py`` file)
imports a module before the arguments are read, so the architectures, criteria and policies it
registers (``lt_core.register_arch`` and friends) are valid choices of that command.

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
from pathlib import Path
from typing import List, Optional

from . import archs, criteria, data as data_mod, policies
from .config import ConfigError, DataConfig, ModelConfig, PruneConfig, TrainConfig, load_json
from .errors import SweepError
from .events import RunStopped, StopToken
from .plugins import load_plugin, portable
from .presets import PRESETS
from .paper.notebooks import NOTEBOOKS
from .paper.reproduce import ReproduceError
from .store import StoreError

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # both stop at a step boundary with a checkpoint
# the failures a user can cause or meet (bad input, missing or damaged data or store, a disk that is full or
# read-only, a sweep's failed units, a notebook of a reproduction that failed): one line each; anything else is
# a bug and keeps its traceback
EXPECTED_FAILURES = (ConfigError, data_mod.DataError, StoreError, SweepError, ReproduceError, ValueError, OSError)
# a sweep of more experiments than this starts only with --yes: a typo in a grid (an axis of 100 seeds) can
# mean days of cluster time, and the count printed first is the chance to see it
CONFIRM_ABOVE = 1000


def _where_options(g) -> None:
    """Options of every training command: which network and data, where, which device and seed, output."""
    g.add_argument("--arch", choices=archs.ARCHS.names(), default=None, help="network (default fc)")
    g.add_argument("--dataset", choices=data_mod.DATASETS, default=None,
                   help="dataset (default: the architecture's: mnist for fc, cifar10 for conv nets)")
    g.add_argument("--data-dir", default=None, help="folder holding the datasets (default $LT_DATA_DIR, "
                   "else ~/.cache/lt_core/data); missing files are downloaded there")
    g.add_argument("--no-download", action="store_true", help="never download; fail if files are missing")
    g.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None, help="default auto (cuda if present)")
    g.add_argument("--out", default=None, help="results root (default $LT_RESULTS_DIR, else ./results)")
    g.add_argument("--seed", type=int, default=None, help="seeds every random choice (default 0)")
    g.add_argument("--json", action="store_true", help="print one JSON object with the results as the last line")
    g.add_argument("--quiet", action="store_true", help="no progress bar")


def _plugin_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                   help="import MODULE (a module name or a .py file) first, so the architectures, criteria and "
                        "policies it registers can be chosen; repeatable")


def _common(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("common options")
    _where_options(g)
    length = g.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=int, default=None, help="epochs (default: the paper's, per arch)")
    length.add_argument("--iterations", type=int, default=None, help="iterations instead of epochs, for quick runs")
    g.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: the paper's, per arch)")
    g.add_argument("--batch-size", type=int, default=None, help="default 60")
    g.add_argument("--eval-every", type=int, default=None, help="evaluate every N iterations (default 100)")
    g.add_argument("--no-train-eval", action="store_true",
                   help="skip the training-set evaluation at each evaluation point (faster)")
    g.add_argument("--eval-test", choices=("every", "best"), default=None,
                   help="where to evaluate the test split: every evaluation point (default), or only where a "
                        "run's validation loss reaches a new minimum and at the end (faster; the same early-stop "
                        "and final test accuracies)")
    g.add_argument("--config", default=None, help="JSON file with data/model/train/prune sections; "
                   "options given on the command line override it")


def _prune_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("pruning")
    g.add_argument("--criterion", default=None, help="mask criterion M(w_i, w_f) (default large_final); "
                   "a comma-separated list runs one lottery per entry, trained together")
    g.add_argument("--mask1", default=None, help="what kept weights start from (default rewind); a list too")
    g.add_argument("--mask0", default=None, help="what pruned weights do (default zero); a list too")
    g.add_argument("--max-stack", type=int, default=None,
                   help="train at most this many runs at once (default: as many as fit in free memory)")
    g.add_argument("--rounds", type=int, default=None, help="pruning rounds after the dense round 0 (default 24)")
    g.add_argument("--prune-fraction-conv", type=float, default=None)
    g.add_argument("--prune-fraction-fc", type=float, default=None)
    g.add_argument("--prune-fraction-output", type=float, default=None)


def _learn_options(p: argparse.ArgumentParser) -> None:
    from .supermask.methods import DEFAULT_METHOD, MASK_METHODS

    g = p.add_argument_group("common options")
    _where_options(g)
    g = p.add_argument_group("learned mask")
    g.add_argument("--method", choices=MASK_METHODS.names(), default=None,
                   help=f"mask-learning method (default {DEFAULT_METHOD}): "
                        + "; ".join(f"{m.name}: {m.description}" for m in MASK_METHODS.values()))
    g.add_argument("--weights", default=None,
                   help="frozen weights: zhou: init (default) or signed_constant; edge_popup: signed_constant "
                        "(default: signed Kaiming constants scaled by the keep fraction) or init; signed: elus "
                        "(default), he or init")
    g.add_argument("--dwr", action="store_true", help="dynamic weight rescaling (zhou)")
    g.add_argument("--keep-fraction", type=float, default=None,
                   help="edge_popup: the fraction of each layer's weights kept (default 0.5)")
    length = g.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=int, default=None,
                        help="default: zhou 2000 for fc, 100 for conv nets; edge_popup and signed 100")
    length.add_argument("--iterations", type=int, default=None, help="iterations instead of epochs")
    g.add_argument("--lr", type=float, default=None,
                   help="SGD learning rate of the scores (default: zhou 100, edge_popup 0.1, signed 0.05)")
    g.add_argument("--momentum", type=float, default=None, help="default 0.9")
    g.add_argument("--batch-size", type=int, default=None, help="default: zhou 250, edge_popup and signed 128")
    g.add_argument("--score-init", default=None,
                   help="initial scores: zhou: a number (default 0: keep p = 0.5); signed: elus (default), he or "
                        "xavier")
    g.add_argument("--eval-every", type=int, default=None, help="evaluate every N iterations (default: each epoch)")
    g.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="any other setting of the method's config (a JSON value, else a string), e.g. "
                        "--set threshold=0.05 for signed or a registered method's own; repeatable")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lt_core",
        description="lt-explorer engine: reproduce 'Deconstructing Lottery Tickets' (Zhou et al., 2019).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    p = sub.add_parser("train", help="train a dense network (round 0 of every lottery run)",
                       description="Train a dense network with the paper's schedule (or a shorter one).")
    _common(p)
    p = sub.add_parser("lottery", help="iterative pruning: criterion, mask-1 and mask-0 policies",
                       description="Round 0 (dense) then R pruning rounds, each a full retraining.")
    _common(p)
    _prune_options(p)
    p = sub.add_parser("supermask", help="one-shot supermasks on the untrained network (Table 1, columns 1-2)",
                       description="Train (or reuse) the dense run, then evaluate one-shot masks from (w_i, w_f) "
                                   "at prune powers p (layer keep fraction base^p) on the untrained network with "
                                   "its initial weights and with signed constants. The schedule options apply to "
                                   "the dense run.")
    _common(p)
    p.add_argument("--criteria", default="large_final_same_sign",
                   help="comma-separated criteria (see 'list'; default large_final_same_sign)")
    p.add_argument("--weights", default="init,signed_constant", help="comma-separated: init, signed_constant")
    p.add_argument("--powers", default="0-24", help="prune powers, e.g. 0-24 or 0,4,8 (default 0-24)")
    p = sub.add_parser("learn-mask", help="learn a supermask on frozen weights (Table 1, columns 3-5)",
                       description="Train only a mask on frozen weights (initial values or signed constants). "
                                   "--method picks the family: zhou (default; Bernoulli straight-through scores, "
                                   "optionally with dynamic weight rescaling), edge_popup (the top --keep-fraction "
                                   "of |score| per layer) or signed (keep, hide or invert each weight), or one a "
                                   "--plugin registers.")
    _learn_options(p)
    p = sub.add_parser("export", help="write a round's ticket as a plain PyTorch state_dict",
                       description="Write the starting weights of round K (pruned entries zeroed) and its "
                                   "masks as a torch.nn.utils.prune-style state_dict.")
    p.add_argument("run_dir", help="a run directory in the results store")
    p.add_argument("--round", type=int, required=True, help="which round's ticket")
    p.add_argument("--out", required=True, help="output file, e.g. ticket.pt")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p = sub.add_parser("sweep", help="a grid of experiments (YAML) on a Dask cluster, then one tidy table",
                       description="Expand the grid into experiments, run them as work units on a Dask cluster "
                                   "(an existing scheduler, else a local cluster of --workers processes) into the "
                                   "results root every worker shares, skip those already stored, and write the "
                                   "tidy table of every experiment's results.")
    p.add_argument("grid", help="grid file (YAML): kind, then a list per axis; see lt_core.sweep.grid")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="a running Dask scheduler, e.g. tcp://10.0.0.5:8786; 'serial' runs here, without Dask")
    where.add_argument("--scheduler-file", default=None, help="the scheduler's --scheduler-file instead")
    p.add_argument("--workers", type=int, default=None, help="worker processes of the local cluster (default 2)")
    p.add_argument("--out", default=None, help="results root shared by every worker (default $LT_RESULTS_DIR, "
                   "else ./results)")
    p.add_argument("--table", default=None, help="CSV file for the table (default <out>/sweep-<grid name>.csv)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--yes", action="store_true",
                   help=f"start a grid of more than {CONFIRM_ABOVE} experiments (the count is printed first; "
                        "without --yes such a grid is refused)")
    p = sub.add_parser("reproduce", help="execute the research-question notebooks and Table 1; write a report",
                       description="Execute notebooks/ with papermill (a preset's schedule), export each to HTML "
                                   "and write a report (Markdown and HTML: Table 1, claim checks, figures, run "
                                   "times) under --out. Finished runs in the results store are reused.")
    p.add_argument("--preset", choices=list(PRESETS), default="quick",
                   help="tiny (seconds; CI), quick (minutes on a laptop CPU, default) or paper (the paper's "
                        "schedule and seeds: many hours on a CPU)")
    p.add_argument("--only", default=None, help=f"comma-separated notebooks (default all): {', '.join(NOTEBOOKS)}")
    p.add_argument("--seeds", default=None, help="seeds of every notebook, e.g. 0,1,2 (default: the preset's)")
    p.add_argument("--archs", default=None, help="networks of every notebook, e.g. fc (default: each notebook's)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--out", default="reproduction", help="folder for the executed notebooks and the report "
                   "(default ./reproduction)")
    p.add_argument("--results-dir", default=None, help="results store (default $LT_RESULTS_DIR, else ./results)")
    p.add_argument("--data-dir", default=None, help="the folder every notebook's experiments read the datasets "
                   "from (default $LT_DATA_DIR); it must exist")
    p.add_argument("--scheduler", default=None, help="Dask scheduler address to run the experiments on")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--no-estimate", action="store_true",
                   help="start without first printing how long the work left will take here (measuring the "
                        "rates takes seconds to a minute)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p = sub.add_parser("list", help="list architectures, datasets, criteria and policies",
                       description="Every name the other commands accept.")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    for command in sub.choices.values():
        _plugin_option(command)
        command.add_argument("--debug", action="store_true", help="on a failure, print the traceback too")
    return parser


def _given(**kw) -> dict:
    """The options the user gave (argparse leaves the others at None)."""
    return {k: v for k, v in kw.items() if v is not None}


def _configs(args) -> dict:
    base = load_json(args.config) if getattr(args, "config", None) else {}
    data = base.get("data", DataConfig())
    model = base.get("model", ModelConfig())
    train = base.get("train", TrainConfig())
    prune = base.get("prune", PruneConfig())

    data = data.replace(**_given(dataset=args.dataset, data_dir=args.data_dir,
                               download=False if args.no_download else None))
    model = model.replace(**_given(arch=args.arch))
    train_changes = _given(seed=args.seed, lr=args.lr, batch_size=args.batch_size, eval_every=args.eval_every,
                         device=args.device, eval_train=False if args.no_train_eval else None,
                         eval_test=args.eval_test)
    if args.epochs is not None:
        train_changes.update(epochs=args.epochs, iterations=None)
    if args.iterations is not None:
        train_changes.update(iterations=args.iterations, epochs=None)
    train = train.replace(**train_changes)
    prunes = [prune]
    if args.command == "lottery":
        prune = prune.replace(**_given(rounds=args.rounds, prune_fraction_conv=args.prune_fraction_conv,
                                     prune_fraction_fc=args.prune_fraction_fc,
                                     prune_fraction_output=args.prune_fraction_output))

        def names(value, default):
            return [v.strip() for v in value.split(",") if v.strip()] if value else [default]

        prunes = [prune.replace(criterion=c, mask1=m1, mask0=m0)
                  for c in names(args.criterion, prune.criterion)
                  for m1 in names(args.mask1, prune.mask1)
                  for m0 in names(args.mask0, prune.mask0)]
    return {"data": data, "model": model, "train": train, "prune": prunes[0], "prunes": prunes}


def _learn_config(args):
    import dataclasses

    from .supermask.methods import DEFAULT_METHOD, MASK_METHODS

    method = args.method or DEFAULT_METHOD
    cls = MASK_METHODS[method].config
    fields = {f.name: f for f in dataclasses.fields(cls)}
    options = _given(weights=args.weights, dwr=True if args.dwr else None, seed=args.seed, lr=args.lr,
                     momentum=args.momentum, batch_size=args.batch_size, epochs=args.epochs,
                     iterations=args.iterations, score_init=args.score_init, eval_every=args.eval_every,
                     device=args.device, keep_fraction=args.keep_fraction)
    settings = {}
    for key, value in options.items():
        if key not in fields:
            raise ConfigError(f"--{key.replace('_', '-')}: not a setting of mask method {method!r}; its settings: "
                              f"{', '.join(fields)}")
        if key == "score_init" and isinstance(fields[key].default, float):
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"--score-init: {value!r} is not a number (method {method!r})") from None
        settings[key] = value
    for item in args.set:
        key, eq, text = item.partition("=")
        key = key.strip()
        if not eq or key not in fields:
            raise ConfigError(f"--set: {item!r}: give FIELD=VALUE with FIELD one of mask method {method!r}'s "
                              f"settings: {', '.join(fields)}")
        try:
            settings[key] = json.loads(text)
        except ValueError:
            settings[key] = text
    learn = cls(**settings)
    data = DataConfig(**_given(dataset=args.dataset, data_dir=args.data_dir, download=False if args.no_download else None))
    return data, ModelConfig(**_given(arch=args.arch)), learn


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
    from .lottery import run_lotteries, run_lottery, train_dense

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

        only, seeds, archs = (_list_option(option, value, kind, what) for option, value, kind, what in (
            ("--only", args.only, str, f"notebooks: {', '.join(NOTEBOOKS)} (leave --only out to run them all)"),
            ("--seeds", args.seeds, int, "integers, e.g. 0,1,2 (leave --seeds out for the preset's)"),
            ("--archs", args.archs, str, "networks, e.g. fc (leave --archs out for each notebook's)")))
        timings = reproduce(args.preset, only=only, seeds=seeds, archs=archs, device=args.device,
                            out=args.out, results_dir=args.results_dir, data_dir=args.data_dir,
                            scheduler=args.scheduler, plugins=portable(args.plugin), progress=not args.quiet,
                            estimate=not args.no_estimate, stop=stop)
        report = Path(args.out) / "report" / "index.md"
        print(f"report: {report}", file=sys.stderr)
        return {"report": str(report), "notebooks": [t.__dict__ for t in timings]}
    if args.command == "export":
        path = export_ticket(args.run_dir, args.round, args.out)
        print(f"wrote {path}", file=sys.stderr)
        return {"out": str(path), "run_dir": args.run_dir, "round": args.round}

    if args.command == "sweep":
        return _sweep(args, stop)

    kwargs = dict(out=args.out, on_event=_print_event, stop=stop, progress=not args.quiet)
    if args.command == "learn-mask":
        from .supermask import learn_supermask

        return learn_supermask(*_learn_config(args), **kwargs).to_json()
    cfg = _configs(args)
    if args.command == "supermask":
        from .supermask import SupermaskConfig, one_shot_supermasks, parse_powers

        sweep = SupermaskConfig(criteria=[c.strip() for c in args.criteria.split(",") if c.strip()],
                                weights=[w.strip() for w in args.weights.split(",") if w.strip()],
                                powers=parse_powers(args.powers))
        res = one_shot_supermasks(cfg["data"], cfg["model"], cfg["train"], sweep, **kwargs)
        return res.to_json()
    if args.command == "train":
        res = train_dense(cfg["data"], cfg["model"], cfg["train"], **kwargs)
        r0 = res.rounds[0]
        return {"run_dir": str(res.run_dir), "early_stop_iteration": r0.early_stop_iteration,
                "early_stop_test_acc": r0.early_stop_test_acc, "final_test_acc": r0.final_test_acc,
                "reused": r0.reused}
    if len(cfg["prunes"]) == 1 and args.max_stack is None:
        return run_lottery(cfg["data"], cfg["model"], cfg["train"], cfg["prune"], **kwargs).to_json()
    results = run_lotteries(cfg["data"], cfg["model"], cfg["train"], cfg["prunes"], max_stack=args.max_stack,
                            **kwargs)
    if len(results) == 1:
        return results[0].to_json()
    return {"runs": [{"criterion": p.criterion, "mask1": p.mask1, "mask0": p.mask0, **r.to_json()}
                     for p, r in zip(cfg["prunes"], results)]}


def _list_option(option: str, value: Optional[str], kind: type, what: str) -> Optional[list]:
    """A comma-separated option's list, or ``None`` when the option was not given; given but empty
    (``--only ''``) is refused: it must not mean the default."""
    from .paper.params import as_list

    if value is None:
        return None
    if not value.replace(",", "").strip():
        raise ConfigError(f"{option}: {value!r} is an empty list; give one or more {what}")
    return as_list(option.lstrip("-"), value, kind)


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
    early = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    _plugin_option(early)
    early.add_argument("--json", action="store_true")  # so that a failure before the full parse is JSON too
    early.add_argument("--debug", action="store_true")
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
