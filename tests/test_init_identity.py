"""The initialisation rule is part of a run's identity: runs made under another rule are never reused,
summarised or drawn as if they were today's; the store and the dashboard name them as such."""

import json
import shutil

import pytest

from lt_core import DataConfig, ModelConfig, PruneConfig, TrainConfig, models, run_lottery
from lt_core.analysis import runs_frame
from lt_core.dashboard.stored import list_runs as dashboard_runs
from lt_core.dashboard.stored import load_stored_series
from lt_core.store import OLD_INIT, StoreError, list_runs, open_run, run_key

from .conftest import needs_mnist

QUICK = TrainConfig(iterations=20, eval_every=10, eval_train=False, device="cpu")


def test_the_rule_changes_every_folder_name(monkeypatch):
    args = (DataConfig(), ModelConfig(), TrainConfig())
    today = run_key("train", *args).name, run_key("lottery", *args, PruneConfig()).name
    monkeypatch.setattr(models, "INIT_SCHEME", "another_rule")
    other = run_key("train", *args).name, run_key("lottery", *args, PruneConfig()).name
    assert today[0] != other[0] and today[1] != other[1]
    assert today[0].startswith("train-fc-") and other[0].startswith("train-fc-")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A lottery run of today's rule, and a copy of it made to look stored before the rule was recorded."""
    root = tmp_path_factory.mktemp("store") / "results"
    result = run_lottery(train=QUICK, prune=PruneConfig(rounds=1), out=root)
    for folder in (result.trunk_dir, result.run_dir):
        old = root / (folder.name[:-12] + "0123456789ab")
        shutil.copytree(folder, old)
        config = json.loads((old / "config.json").read_text())
        assert config.pop("init") == models.INIT_SCHEME  # every new run records its rule
        if "trunk" in config:
            config["trunk"] = next(p.name for p in root.iterdir() if p.name.startswith("train-") and p != folder
                                   and p.name.endswith("0123456789ab"))
        (old / "config.json").write_text(json.dumps(config))
    return root, result


@needs_mnist
def test_the_store_reader_leaves_old_runs_out_unless_asked_and_names_their_rule(store):
    root, result = store
    today = list_runs(root)
    assert {r.name for r in today} == {result.run_dir.name, result.trunk_dir.name}
    assert all(r.current and r.init == models.INIT_SCHEME for r in today)
    everything = list_runs(root, old=True)
    old = [r for r in everything if not r.current]
    assert len(everything) == 4 and {r.name[-12:] for r in old} == {"0123456789ab"}
    assert {r.init for r in old} == {OLD_INIT} == {"glorot_normal_uncorrected"}
    assert set(runs_frame(root)["init"]) == {models.INIT_SCHEME}


@needs_mnist
def test_the_dashboard_lists_old_runs_as_such_and_refuses_to_draw_them(store):
    root, result = store
    listed = {r.name: r for r in dashboard_runs(root)}
    assert len(listed) == 4
    old_name = next(n for n in listed if n.startswith("lottery-") and n.endswith("0123456789ab"))
    assert listed[old_name].label.endswith("old initialisation (glorot_normal_uncorrected): not drawn")
    assert "old initialisation" not in listed[result.run_dir.name].label
    with pytest.raises(StoreError, match=f"^{old_name}: made with an earlier initialisation rule "
                                         r"\(glorot_normal_uncorrected, weights 12% too small\)"):
        load_stored_series(root, old_name)
    drawn = load_stored_series(root, result.run_dir.name)
    assert sorted(drawn.rounds) == [0, 1]
    assert open_run(root / old_name).rounds  # the files are intact: only today's views leave them out

