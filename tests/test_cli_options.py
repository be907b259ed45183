"""The command line's options are made from the config dataclasses (lt_core.cli_options): every field is
a flag, a value goes through the config (its own error messages), the command line builds the same
config as the Python API, and the old spellings of renamed options still work, with a warning."""

import argparse
import dataclasses
from dataclasses import dataclass

import pytest

from lt_core import cli, cli_parser
from lt_core.cli_options import add_options, build, comma_list, field_options
from lt_core.config import Config, ConfigError, DataConfig, ModelConfig, PruneConfig, TrainConfig, check_range, \
    option
from lt_core.supermask import SupermaskConfig
from lt_core.supermask.methods import MASK_METHODS

# a non-default value of every field of every config the command line builds: a field added to a config
# without a value here fails test_every_field_round_trips_through_the_command_line (so it is thought of)
VALUES = {
    DataConfig: dict(dataset="fashion_mnist", val_size=1000, val_seed=3, data_dir="/tmp/somewhere", download=False),
    ModelConfig: dict(arch="conv2"),
    TrainConfig: dict(seed=7, lr=0.01, batch_size=32, iterations=40, eval_every=20, eval_train=False,
                      eval_test="best", device="cpu"),
    PruneConfig: dict(criterion="movement", mask1="reinit", mask0="freeze_init", rounds=3, prune_fraction_conv=0.3,
                      prune_fraction_fc=0.4, prune_fraction_output=0.05),
    SupermaskConfig: dict(criteria=("large_final", "movement"), weights=("init",), powers=(0, 1, 2, 8)),
    "zhou": dict(weights="signed_constant", dwr=True, seed=2, lr=50.0, momentum=0.5, batch_size=100,
                 iterations=30, score_init=1.5, signed_constant_multiplier=2.0, eval_samples=3, eval_every=10,
                 device="cpu"),
    "edge_popup": dict(keep_fraction=0.3, weights="init", scale_fan=False, seed=2, lr=0.2, momentum=0.5,
                       weight_decay=0.001, lr_schedule="constant", batch_size=64, iterations=30, eval_every=10,
                       device="cpu"),
    "signed": dict(threshold=0.05, weights="he", score_init="xavier", seed=2, lr=0.1, momentum=0.5, nesterov=False,
                   weight_decay=0.001, lr_decay=0.9, decay_every=100, activation="relu", inputs="pixels", batch_size=64,
                   iterations=30, eval_every=10, device="cpu"),
}
COMMANDS = {"train": (DataConfig, ModelConfig, TrainConfig), "lottery": (DataConfig, ModelConfig, TrainConfig,
                                                                          PruneConfig),
            "supermask": (DataConfig, ModelConfig, TrainConfig, SupermaskConfig)}


def argv(values: dict, cls: type) -> list:
    """The command line that gives ``values`` (field -> value) of config ``cls``."""
    out = []
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name, value in values.items():
        flag = "--" + fields[name].metadata.get("flag", name).replace("_", "-")
        if isinstance(value, bool):
            out.append(flag if value else "--no-" + flag[2:])
        else:
            out += [flag, ",".join(map(str, value)) if isinstance(value, tuple) else str(value)]
    return out


def subparser(command: str) -> argparse.ArgumentParser:
    parser = cli.build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices[command]


def dests(command: str) -> set:
    return {a.dest for a in subparser(command)._actions}


@pytest.mark.parametrize("command", ["train", "lottery", "supermask"])
def test_every_config_field_of_a_command_is_a_flag(command):
    have = dests(command)
    for cls in COMMANDS[command]:
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in have]
        assert not missing, f"{command}: {cls.__name__} fields without a flag: {missing}"


def test_every_mask_methods_setting_is_a_flag_of_learn_mask():
    have = dests("learn-mask")
    for cls in (DataConfig, ModelConfig, *(m.config for m in MASK_METHODS.values())):
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in have]
        assert not missing, f"learn-mask: {cls.__name__} fields without a flag: {missing}"


def test_a_new_field_becomes_a_flag_with_its_help_range_and_default():
    @dataclass(frozen=True, repr=False)
    class Extra(Config):
        width: int = option(8, "how wide")
        fast: bool = option(False, "go fast")

        def validate(self):
            check_range("Extra", "width", self.width, 1, 64, integer=True)

    parser = argparse.ArgumentParser()
    add_options(parser, field_options({"Extra": Extra}), set())
    text = parser.format_help()
    assert "--width N" in text and "how wide; in [1, 64] (default: 8)" in " ".join(text.split())
    assert "--fast, --no-fast" in text
    assert build(Extra, parser.parse_args(["--width", "9", "--fast"])) == Extra(width=9, fast=True)
    assert build(Extra, parser.parse_args([])) == Extra()
    with pytest.raises(ConfigError, match=r"^Extra.width: 65 is out of range \[1, 64\]$"):
        build(Extra, parser.parse_args(["--width", "65"]))


@pytest.mark.parametrize("command", ["train", "lottery", "supermask"])
def test_every_field_round_trips_through_the_command_line(command):
    for cls in COMMANDS[command]:
        assert set(VALUES[cls]) | {"epochs"} >= {f.name for f in dataclasses.fields(cls)}, cls
    line = [command] + [a for cls in COMMANDS[command] for a in argv(VALUES[cls], cls)]
    args = cli.build_parser().parse_args(line)
    cfg = cli_parser.command_configs(args)
    for key, cls in (("data", DataConfig), ("model", ModelConfig), ("train", TrainConfig)):
        assert cfg[key] == cls(**VALUES[cls])
    if command == "lottery":
        assert cfg["prunes"] == [PruneConfig(**VALUES[PruneConfig])]
    if command == "supermask":
        assert build(SupermaskConfig, args) == SupermaskConfig(**VALUES[SupermaskConfig])
    epochs = cli_parser.command_configs(cli.build_parser().parse_args([command, "--epochs", "3"]))["train"]
    assert epochs == TrainConfig(epochs=3)


@pytest.mark.parametrize("method", list(VALUES)[5:])
def test_every_mask_method_setting_round_trips_through_the_command_line(method):
    cls = MASK_METHODS[method].config
    assert set(VALUES[method]) | {"epochs"} >= {f.name for f in dataclasses.fields(cls)}, cls
    line = ["learn-mask", "--method", method, *argv(VALUES[method], cls), *argv(VALUES[DataConfig], DataConfig)]
    data, model, learn = cli_parser.learn_configs(cli.build_parser().parse_args(line))
    assert learn == cls(**VALUES[method]) and data == DataConfig(**VALUES[DataConfig]) and model == ModelConfig()
    line = ["learn-mask", "--method", method, "--epochs", "5"]
    *_, epochs = cli_parser.learn_configs(cli.build_parser().parse_args(line))
    assert epochs == cls(epochs=5)


def test_a_registered_methods_own_setting_becomes_a_learn_mask_flag():
    from lt_core.supermask.edge_popup import EdgePopupConfig, EdgePopupLearner
    from lt_core.supermask.methods import register_mask_method

    @dataclass(frozen=True, repr=False)
    class WideConfig(EdgePopupConfig):
        width: int = option(3, "how wide")
        dataset: str = "own"  # a name the data's options have: reachable with --set only

        def validate(self):
            super().validate()
            check_range("WideConfig", "width", self.width, 1, 9, integer=True)

    register_mask_method("wide_test", WideConfig, EdgePopupLearner, "a test's method")
    try:
        text = " ".join(subparser("learn-mask").format_help().split())
        assert "--width N how wide; in [1, 9] (default: 3) [wide_test]" in text
        args = cli.build_parser().parse_args(["learn-mask", "--method", "wide_test", "--width", "5", "--dataset",
                                              "mnist", "--keep-fraction", "0.25", "--set", "dataset=mine"])
        data, _, learn = cli_parser.learn_configs(args)
        assert learn == WideConfig(width=5, keep_fraction=0.25, dataset="mine") and data == DataConfig(dataset="mnist")
        with pytest.raises(ConfigError, match=r"^--width: not a setting of mask method 'zhou'; its settings: "):
            cli_parser.learn_configs(cli.build_parser().parse_args(["learn-mask", "--width", "5"]))
        data, _, learn = cli_parser.learn_configs(cli.build_parser().parse_args(["learn-mask", "--dataset", "mnist"]))
        assert learn == MASK_METHODS["zhou"].config() and data == DataConfig(dataset="mnist")
    finally:
        MASK_METHODS.remove("wide_test")


def test_lottery_lists_make_one_config_per_combination_in_the_order_given():
    args = cli.build_parser().parse_args(["lottery", "--criterion", "movement, random", "--mask1", "rewind,reinit",
                                          "--rounds", "2"])
    prunes = cli_parser.command_configs(args)["prunes"]
    assert prunes == [PruneConfig(criterion=c, mask1=m, rounds=2) for c in ("movement", "random")
                      for m in ("rewind", "reinit")]


def test_command_line_fields_replace_the_config_files(tmp_path):
    path = tmp_path / "cfg.json"
    path.write_text('{"train": {"iterations": 20, "seed": 4}, "prune": {"rounds": 5, "criterion": "random"}}')
    args = cli.build_parser().parse_args(["lottery", "--config", str(path), "--epochs", "2", "--mask0",
                                          "freeze_init"])
    cfg = cli_parser.command_configs(args)
    assert cfg["train"] == TrainConfig(epochs=2, seed=4)  # --epochs replaces the file's iterations
    assert cfg["prunes"] == [PruneConfig(rounds=5, criterion="random", mask0="freeze_init")]


@pytest.mark.parametrize("line, cls, field, value", [
    (["train", "--batch-size", "0"], TrainConfig, "batch_size", 0),
    (["train", "--val-size", "30000"], DataConfig, "val_size", 30000),
    (["train", "--eval-every", "0"], TrainConfig, "eval_every", 0),
    (["lottery", "--rounds", "500"], PruneConfig, "rounds", 500),
    (["lottery", "--prune-fraction-conv", "1.0"], PruneConfig, "prune_fraction_conv", 1.0),
    (["supermask", "--powers", "3,300"], SupermaskConfig, "powers", (3, 300)),
    (["learn-mask", "--momentum", "1.5"], MASK_METHODS["zhou"].config, "momentum", 1.5),
    (["learn-mask", "--method", "edge_popup", "--keep-fraction", "2"], MASK_METHODS["edge_popup"].config,
     "keep_fraction", 2.0),
    (["learn-mask", "--method", "signed", "--threshold", "-1"], MASK_METHODS["signed"].config, "threshold", -1.0),
])
def test_a_flags_range_error_is_the_configs_own_message(capsys, line, cls, field, value):
    with pytest.raises(ConfigError) as direct:
        cls(**{field: value})
    assert cli.main([*line, "--quiet"]) == 2
    assert capsys.readouterr().err.strip() == f"error: {direct.value}"


def test_the_help_states_each_configs_own_range_and_default():
    text = " ".join(subparser("lottery").format_help().split())
    assert "--epochs N epochs; in [1, 100000] (default: the paper's, per arch)" in text
    assert "--prune-fraction-fc X fraction of a hidden FC layer's kept weights pruned per round; in [0.0, 1.0)" \
        in text
    learn = " ".join(subparser("learn-mask").format_help().split())
    assert "(default: zhou 250, edge_popup 128, signed 128)" in learn  # --batch-size: each method's own
    assert "--keep-fraction X fraction of each layer's weights kept; in (0.0, 1.0] (default: 0.5) [edge_popup]" \
        in learn


@pytest.mark.parametrize("command", ["train", "lottery", "supermask", "learn-mask", "export", "sweep", "reproduce",
                                     "list"])
def test_every_option_has_help_and_out_is_the_results_root(command):
    p = subparser(command)
    assert "%(" not in p.format_help() and "None" not in p.format_help()
    for action in p._actions:
        assert action.help, f"{command} {action.option_strings}: no help"
    outs = [a for a in p._actions if "--out" in a.option_strings]
    for action in outs:
        assert action.help.startswith("results root") or action.help.startswith("deprecated spelling of")
    json_flags = [a for a in p._actions if "--json" in a.option_strings]
    assert len(json_flags) == 1


def test_comma_lists_are_read_one_way():
    assert comma_list(" a, b ,,c", "--x") == ["a", "b", "c"]
    assert comma_list("0-3,10", "--x", int) == [0, 1, 2, 3, 10]
    assert comma_list("[0, 2]", "--x", int) == [0, 2] and comma_list("[fc]", "--x") == ["fc"]
    with pytest.raises(ConfigError, match=r"^--x: '' is an empty list; give one or more names$"):
        comma_list("", "--x", str, "names")
    with pytest.raises(ConfigError, match=r"^--x: cannot read '1,a'; write e.g. 0,1,2 or 0-24$"):
        comma_list("1,a", "--x", int)


def test_export_out_is_deprecated_for_to_and_still_works(tmp_path, capsys):
    run = tmp_path / "not-a-run"
    for flag in ("--to", "--out"):
        args = cli.build_parser().parse_args(["export", str(run), "--round", "1", flag, "ticket.pt"])
        assert args.to == "ticket.pt"
    with pytest.warns(DeprecationWarning, match="--out is deprecated"):
        assert cli.main(["export", str(run), "--round", "1", "--out", str(tmp_path / "t.pt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == "warning: export --out is deprecated: give the output file as --to FILE (--out is the results " \
                     "root on the other commands)"
    assert err[-1].startswith(f"error: {run}: not a run folder")
    assert cli.main(["export", str(run), "--round", "1", "--to", str(tmp_path / "t.pt")]) == 2
    assert "warning" not in capsys.readouterr().err
    assert cli.main(["export", str(run), "--round", "1"]) == 2
    assert capsys.readouterr().err.strip() == "error: --to: give the output file, e.g. --to ticket.pt"


def test_reproduce_out_is_deprecated_for_report_dir_and_still_works(tmp_path, capsys):
    missing = tmp_path / "no-data"
    for flag in ("--report-dir", "--out"):
        args = cli.build_parser().parse_args(["reproduce", flag, str(tmp_path / "r")])
        assert args.report_dir == str(tmp_path / "r")
    assert cli.build_parser().parse_args(["reproduce"]).report_dir == "reproduction"
    with pytest.warns(DeprecationWarning, match="--out is deprecated"):
        status = cli.main(["reproduce", "--preset", "tiny", "--data-dir", str(missing), "--out", str(tmp_path / "r"),
                           "--quiet"])
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("warning: reproduce --out is deprecated: give the report folder as --report-dir DIR")
    assert err[-1].startswith("error: data_dir:") and len(err) == 2
