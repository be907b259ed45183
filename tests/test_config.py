import json

import pytest

from lt_core.config import (ConfigError, DataConfig, ModelConfig, PruneConfig, TrainConfig, configs_from_dict, load_json,
                            save_json)
from lt_core.store import config_hash


def test_repr_prints_only_non_default_fields():
    assert repr(TrainConfig()) == "TrainConfig()"
    assert repr(TrainConfig(epochs=2, seed=3)) == "TrainConfig(seed=3, epochs=2)"
    assert str(PruneConfig(criterion="movement")) == "PruneConfig(criterion='movement')"


def test_json_round_trip(tmp_path):
    configs = {"data": DataConfig(dataset="mnist"), "model": ModelConfig(arch="fc"),
               "train": TrainConfig(iterations=50, lr=1e-3), "prune": PruneConfig(mask1="reinit", rounds=3)}
    save_json(tmp_path / "c.json", configs)
    assert load_json(tmp_path / "c.json") == configs
    assert json.loads((tmp_path / "c.json").read_text())["train"]["iterations"] == 50


@pytest.mark.parametrize("make,field,allowed", [
    (lambda: ModelConfig(arch="conv3"), "ModelConfig.arch", "fc, conv2, conv4, conv6"),
    (lambda: DataConfig(dataset="svhn"), "DataConfig.dataset", "mnist, fashion_mnist, cifar10"),
    (lambda: PruneConfig(criterion="biggest"), "PruneConfig.criterion", "large_final, small_final"),
    (lambda: PruneConfig(mask1="rewnd"), "PruneConfig.mask1", "rewind, reinit, reshuffle, constant"),
    (lambda: PruneConfig(mask0="frozen"), "PruneConfig.mask0", "zero, freeze_init, freeze_init_zero_mask"),
    (lambda: TrainConfig(device="tpu"), "TrainConfig.device", "auto, cpu, cuda"),
])
def test_unknown_names_list_allowed_values(make, field, allowed):
    with pytest.raises(ConfigError) as err:
        make()
    assert field in str(err.value) and allowed in str(err.value)


@pytest.mark.parametrize("make,message", [
    (lambda: TrainConfig(epochs=0), r"TrainConfig.epochs: 0 is out of range \[1, 100000\]"),
    (lambda: TrainConfig(iterations=-5), r"TrainConfig.iterations: -5 is out of range"),
    (lambda: TrainConfig(lr=0.0), r"TrainConfig.lr: 0.0 is out of range \(0, 10.0\]"),
    (lambda: TrainConfig(batch_size=2.5), r"TrainConfig.batch_size: expected an integer"),
    (lambda: PruneConfig(prune_fraction_fc=1.0), r"PruneConfig.prune_fraction_fc: 1.0 is out of range \[0.0, 1.0\)"),
    (lambda: PruneConfig(rounds=-1), r"PruneConfig.rounds: -1 is out of range"),
    (lambda: TrainConfig(epochs=2, iterations=3), r"at most one of epochs and iterations"),
])
def test_out_of_range_numbers_name_field_and_range(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


def test_from_dict_rejects_unknown_fields_and_sections():
    with pytest.raises(ConfigError, match="unknown field.*epoch; allowed fields: seed, lr"):
        TrainConfig.from_dict({"epoch": 3})
    with pytest.raises(ConfigError, match="unknown section.*optim"):
        configs_from_dict({"optim": {}})


def test_hash_depends_on_results_not_on_location_or_device():
    base = config_hash("train", data=DataConfig(), model=ModelConfig(), train=TrainConfig())
    assert base == config_hash("train", data=DataConfig(data_dir="/x"), model=ModelConfig(),
                               train=TrainConfig(device="cpu"))
    assert base != config_hash("train", data=DataConfig(), model=ModelConfig(), train=TrainConfig(seed=1))
    assert base != config_hash("lottery", data=DataConfig(), model=ModelConfig(), train=TrainConfig())
    assert len(base) == 12


@pytest.mark.parametrize("cls, field, value, words", [
    (TrainConfig, "eval_train", "no", "expected true or false, got 'no'"),
    (TrainConfig, "eval_train", 0, "expected true or false, got 0"),
    (DataConfig, "download", "no", "expected true or false, got 'no'"),
    (DataConfig, "data_dir", 5, "expected a string or null, got 5"),
    (ModelConfig, "arch", None, "expected a string, got None"),
    (TrainConfig, "device", ["cpu"], "expected a string, got ['cpu']"),
])
def test_switches_and_names_are_typed_strictly(cls, field, value, words):
    with pytest.raises(ConfigError) as err:
        cls.from_dict({field: value})
    assert str(err.value) == f"{cls.__name__}.{field}: {words}"


@pytest.mark.parametrize("content, words", [
    ("[1, 2]", "config: expected a JSON object with sections data, model, train, prune, got list"),
    ("null", "config: expected a JSON object with sections data, model, train, prune, got null"),
    ('{"train": {"epochs": 2', "is not valid JSON"),
    ('{"data": {"data_dir": 5}}', "DataConfig.data_dir: expected a string or null, got 5"),
])
def test_config_files_with_the_wrong_shape_are_one_clear_error(tmp_path, content, words):
    path = tmp_path / "c.json"
    path.write_text(content)
    with pytest.raises(ConfigError) as err:
        load_json(path)
    assert words in str(err.value)


def test_config_path_that_is_a_directory_or_missing(tmp_path):
    with pytest.raises(ConfigError, match="is a directory; give a JSON file"):
        load_json(tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_json(tmp_path / "nope.json")


def test_a_prune_grid_is_every_criterion_and_policy_pair_in_order():
    grid = PruneConfig.grid(["large_final", "random"], ["rewind", "reinit"], ["zero"], rounds=3)
    assert [(p.criterion, p.mask1, p.mask0, p.rounds) for p in grid] == [
        ("large_final", "rewind", "zero", 3), ("large_final", "reinit", "zero", 3),
        ("random", "rewind", "zero", 3), ("random", "reinit", "zero", 3)]
    with pytest.raises(ConfigError, match="PruneConfig.mask0"):
        PruneConfig.grid(["random"], ["rewind"], ["nothing"])
