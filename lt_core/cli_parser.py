"""The command line's grammar: every command's options, and the configs they build.

The options of the configs (data, model, training, pruning, one-shot supermasks, every registered
mask method's settings) are made from the config dataclasses by :mod:`lt_core.cli_options`; the
options several commands share (``--plugin``, ``--debug``, ``--json``, ``--out``, ``--quiet``) are
defined once, in parent parsers. ``--out`` is the results root; an output file or folder has its own
name (``export --to``, ``sweep --table``, ``reproduce --report-dir``), the old ``--out`` spelling of
the latter two kept one release with a warning. :mod:`lt_core.cli` runs the commands.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

from .cli_options import Deprecated, add_options, build, build_product, field_options, given
from .config import DEVICES, ConfigError, DataConfig, ModelConfig, PruneConfig, TrainConfig, load_json
from .paper.notebooks import NOTEBOOKS
from .presets import PRESETS

# a sweep of more experiments than this starts only with --yes: a typo in a grid (an axis of 100 seeds) can
# mean days of cluster time, and the count printed first is the chance to see it
CONFIRM_ABOVE = 1000
LOTTERY_LISTS = ("criterion", "mask1", "mask0")  # lottery: comma lists of these run one lottery per combination


def parents() -> dict:
    """The options several commands share, each defined once (argparse parent parsers)."""
    made = {name: argparse.ArgumentParser(add_help=False) for name in ("every", "json", "out", "quiet", "scheduler")}
    made["every"].add_argument("--plugin", action="append", default=[], metavar="MODULE",
                               help="import MODULE (a module name or a .py file) first, so the architectures, "
                                    "criteria, policies and mask methods it registers can be chosen; repeatable")
    made["every"].add_argument("--debug", action="store_true", help="on a failure, print the traceback too")
    made["json"].add_argument("--json", action="store_true",
                              help="print one JSON object with the results as the last line of stdout")
    made["out"].add_argument("--out", default=None, metavar="DIR",
                             help="results root (default $LT_RESULTS_DIR, else ./results)")
    made["quiet"].add_argument("--quiet", action="store_true", help="no progress bar")
    made["scheduler"].add_argument("--scheduler", default=None, metavar="ADDRESS",
                                   help="train on the Dask cluster at ADDRESS (tcp://host:8786) as a sweep's work "
                                        "unit, into the results root its workers share ('serial': as a work unit "
                                        "here); default: here")
    return made


def _config_groups(p: argparse.ArgumentParser, *groups) -> None:
    """An argument group per ``(title, configs, options)``: a flag per field of the configs
    (:mod:`lt_core.cli_options`), none defined twice."""
    taken = {a for action in p._actions for a in action.option_strings}
    for title, configs, kw in groups:
        many = kw.pop("many", False)
        add_options(p.add_argument_group(title), field_options(configs, **kw), taken, many=many)


def _network_and_data() -> tuple:
    """The group of the model's and the data's options (every training command has it)."""
    return ("network and data", {"ModelConfig": ModelConfig, "DataConfig": DataConfig}, {})


def _learn_groups(p: argparse.ArgumentParser) -> None:
    from .supermask.methods import DEFAULT_METHOD, MASK_METHODS

    g = p.add_argument_group("learned mask")
    g.add_argument("--method", choices=MASK_METHODS.names(), default=None,
                   help=f"mask-learning method (default {DEFAULT_METHOD}): "
                        + "; ".join(f"{m.name}: {m.description}" for m in MASK_METHODS.values()))
    g.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="a setting of the method's config as a JSON value (else a string), e.g. --set "
                        "threshold=0.05; repeatable")
    configs = {name: m.config for name, m in MASK_METHODS.items()}
    shared = set.intersection(*(set(f.name for f in dataclasses.fields(c)) for c in configs.values()))
    partial = {f.name for c in configs.values() for f in dataclasses.fields(c)} - shared
    _config_groups(p, _network_and_data(),
                   ("mask training (every method)", configs, {"skip": partial}),
                   ("method settings (the methods in brackets have them)", configs,
                    {"skip": shared, "many": True}))


# the help of SupermaskConfig's fields, until its module gives them as field metadata (lt_core.config.option)
SUPERMASK_HELP = {"criteria": "comma-separated mask criteria",
                  "weights": "comma-separated: the untrained network's initial weights (init) and/or signed "
                             "constants (signed_constant)",
                  "powers": "prune powers p (a layer keeps base^p of its weights), e.g. 0-24 or 0,4,8"}


def build_parser() -> argparse.ArgumentParser:
    from .supermask import SupermaskConfig

    parser = argparse.ArgumentParser(
        prog="python -m lt_core",
        description="lt-explorer engine: reproduce 'Deconstructing Lottery Tickets' (Zhou et al., 2019).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    par = parents()
    running = [par["every"], par["json"], par["out"], par["quiet"], par["scheduler"]]

    def command(name, help, description, parents):
        return sub.add_parser(name, help=help, description=description, parents=parents)

    training = [_network_and_data(), ("training", {"TrainConfig": TrainConfig}, {})]
    config_file = dict(default=None, metavar="FILE", help="JSON file with data/model/train/prune sections; "
                                                         "options given on the command line override it")
    p = command("train", "train a dense network (round 0 of every lottery run)",
                "Train a dense network with the paper's schedule (or a shorter one).", running)
    p.add_argument("--config", **config_file)
    _config_groups(p, *training)
    p = command("lottery", "iterative pruning: criterion, mask-1 and mask-0 policies",
                "Round 0 (dense) then R pruning rounds, each a full retraining. Comma-separated --criterion, "
                "--mask1 and --mask0 lists run one lottery per combination, trained together.", running)
    p.add_argument("--config", **config_file)
    p.add_argument("--max-stack", type=int, default=None, metavar="K",
                   help="train at most K runs at once (default: as many as fit in free memory)")
    _config_groups(p, *training, ("pruning", {"PruneConfig": PruneConfig}, {"multi": LOTTERY_LISTS}))
    p = command("supermask", "one-shot supermasks on the untrained network (Table 1, columns 1-2)",
                "Train (or reuse) the dense run, then evaluate one-shot masks from (w_i, w_f) at prune powers p "
                "(layer keep fraction base^p) on the untrained network with its initial weights and with "
                "signed constants. The training options apply to the dense run.", running)
    p.add_argument("--config", **config_file)
    _config_groups(p, *training, ("one-shot supermasks", {"SupermaskConfig": SupermaskConfig},
                                  {"helps": SUPERMASK_HELP}))
    p = command("learn-mask", "learn a supermask on frozen weights (Table 1, columns 3-5)",
                "Train only a mask on frozen weights (initial values or signed constants). --method picks the "
                "family: zhou (default; Bernoulli straight-through scores, optionally with dynamic weight "
                "rescaling), edge_popup (the top --keep-fraction of |score| per layer) or signed (keep, hide "
                "or invert each weight), or one a --plugin registers. A setting's default is its method's.",
                running)
    _learn_groups(p)
    p = command("export", "write a round's ticket as a plain PyTorch state_dict",
                "Write the starting weights of round K (pruned entries zeroed) and its masks as a "
                "torch.nn.utils.prune-style state_dict.", [par["every"], par["json"]])
    p.add_argument("run_dir", help="a run directory in the results store")
    p.add_argument("--round", type=int, required=True, metavar="K", help="which round's ticket")
    p.add_argument("--to", default=None, metavar="FILE", help="output file, e.g. ticket.pt (required)")
    p.add_argument("--out", dest="to", action=Deprecated, metavar="FILE", help="deprecated spelling of --to",
                   notice="give the output file as --to FILE (--out is the results root on the other commands)")
    p = command("sweep", "a grid of experiments (YAML) on a Dask cluster, then one tidy table",
                "Expand the grid into experiments, run them as work units on a Dask cluster (an existing "
                "scheduler, else a local cluster of --workers processes) into the results root (--out) every "
                "worker shares, skip those already stored, and write the tidy table of every experiment's "
                "results.", [par["every"], par["json"], par["out"], par["quiet"]])
    p.add_argument("grid", help="grid file (YAML): kind, then a list per axis; see lt_core.sweep.grid")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="a running Dask scheduler, e.g. tcp://10.0.0.5:8786; 'serial' runs here, without Dask")
    where.add_argument("--scheduler-file", default=None, metavar="FILE",
                       help="the scheduler's --scheduler-file instead")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="worker processes of the local cluster (default 2)")
    p.add_argument("--table", default=None, metavar="FILE",
                   help="CSV file for the table (default <out>/sweep-<grid name>.csv)")
    p.add_argument("--yes", action="store_true",
                   help=f"start a grid of more than {CONFIRM_ABOVE} experiments (the count is printed first; "
                        "without --yes such a grid is refused)")
    p = command("reproduce", "execute the research-question notebooks and Table 1; write a report",
                "Execute notebooks/ with papermill (a preset's schedule), export each to HTML and write a report "
                "(Markdown and HTML: Table 1, claim checks, figures, run times) under --report-dir. Finished "
                "runs in the results store are reused.", [par["every"], par["json"], par["quiet"]])
    p.add_argument("--preset", choices=list(PRESETS), default="quick",
                   help="tiny (seconds; CI), quick (minutes on a laptop CPU, default) or paper (the paper's "
                        "schedule and seeds: many hours on a CPU)")
    p.add_argument("--only", default=None, metavar="LIST",
                   help=f"comma-separated notebooks (default all): {', '.join(NOTEBOOKS)}")
    p.add_argument("--seeds", default=None, metavar="LIST",
                   help="seeds of every notebook, e.g. 0,1,2 (default: the preset's)")
    p.add_argument("--archs", default=None, metavar="LIST",
                   help="networks of every notebook, e.g. fc (default: each notebook's)")
    p.add_argument("--methods", default=None, metavar="LIST",
                   help="mask methods the families notebook compares, e.g. edge_popup,signed (default: zhou, "
                        "edge_popup, signed; a --plugin's own too)")
    p.add_argument("--device", choices=DEVICES, default="auto", help="default auto (cuda if present)")
    p.add_argument("--report-dir", default="reproduction", metavar="DIR",
                   help="folder for the executed notebooks and the report (default ./reproduction)")
    p.add_argument("--out", dest="report_dir", action=Deprecated, metavar="DIR",
                   help="deprecated spelling of --report-dir",
                   notice="give the report folder as --report-dir DIR (in the next release --out will be the "
                          "results root, as on the other commands; until then that is --results-dir)")
    p.add_argument("--results-dir", default=None, metavar="DIR",
                   help="results store (default $LT_RESULTS_DIR, else ./results)")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="the folder every notebook's experiments read the datasets from (default $LT_DATA_DIR); it "
                        "must exist")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="Dask scheduler address to run the experiments on")
    p.add_argument("--no-estimate", action="store_true",
                   help="start without first printing how long the work left will take here (measuring the "
                        "rates takes seconds to a minute)")
    command("list", "list architectures, datasets, criteria and policies", "Every name the other commands accept.",
            [par["every"], par["json"]])
    return parser


def command_configs(args) -> dict:
    """The configs of ``train``, ``lottery`` and ``supermask``: the ``--config`` file's (else the
    defaults), each field given on the command line replacing the file's."""
    base = load_json(args.config) if getattr(args, "config", None) else {}
    cfg = {"data": build(DataConfig, args, base.get("data")), "model": build(ModelConfig, args, base.get("model")),
           "train": build(TrainConfig, args, base.get("train"))}
    prunes = build_product(PruneConfig, args, LOTTERY_LISTS, base.get("prune")) if args.command == "lottery" \
        else [base.get("prune", PruneConfig())]
    return {**cfg, "prune": prunes[0], "prunes": prunes}


def learn_configs(args) -> tuple:
    """``(DataConfig, ModelConfig, settings)`` of ``learn-mask``: the settings are the config of
    ``--method`` from its flags and ``--set``; a flag of another method's setting is refused."""
    from .supermask.methods import DEFAULT_METHOD, MASK_METHODS

    method = args.method or DEFAULT_METHOD
    cls = MASK_METHODS[method].config
    names = [f.name for f in dataclasses.fields(cls)]
    # a setting named as a data or model option (a plugin's) is that option's flag: the method gets it with --set
    shadowed = {f.name for c in (DataConfig, ModelConfig) for f in dataclasses.fields(c)}
    others = {f.name for m in MASK_METHODS.values() for f in dataclasses.fields(m.config)} - set(names) - shadowed
    for other in sorted(others):
        if getattr(args, other, None) is not None:
            raise ConfigError(f"--{other.replace('_', '-')}: not a setting of mask method {method!r}; its settings: "
                              f"{', '.join(names)}")
    settings = {k: v for k, v in given(cls, args).items() if k not in shadowed}
    for item in args.set:
        key, eq, text = item.partition("=")
        key = key.strip()
        if not eq or key not in names:
            raise ConfigError(f"--set: {item!r}: give FIELD=VALUE with FIELD one of mask method {method!r}'s "
                              f"settings: {', '.join(names)}")
        try:
            settings[key] = json.loads(text)
        except ValueError:
            settings[key] = text
    return build(DataConfig, args), build(ModelConfig, args), cls(**settings)
