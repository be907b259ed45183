"""The results store's reader and its checks, on tiny real runs of every kind.

One module-scoped results root holds a dense trunk, a lottery branch stopped during round 2 (so
rounds 0 and 1 are finished), a one-shot supermask sweep and a learned supermask. Tests that
damage files work on a copy of it.
"""

import csv
import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
import torch

from lt_core import (DamagedFileError, DataConfig, LearnConfig, ModelConfig, PruneConfig, RunStopped, StopToken,
                     StoreError, SupermaskConfig, TrainConfig, learn_supermask, list_runs, one_shot_supermasks,
                     open_run, run_lottery, ticket_state_dict)
from lt_core.analysis import metrics_frame, runs_frame, stored_rounds_frame
from lt_core.store import LearnedMaskRun, LedgerError, LotteryRun, SupermaskRun, TrainRun, run_key, \
    read_checkpoint, read_tensors, remove_checkpoint, trainings, write_checkpoint, write_tensors

from .conftest import needs_mnist

QUICK = TrainConfig(iterations=40, eval_every=20, eval_train=False, device="cpu")
PRUNE = PruneConfig(rounds=2)
LEARN = LearnConfig(iterations=6, eval_every=3, eval_samples=2, device="cpu")
# FC round 1 keeps 80% of each hidden layer (floor of the pruned count) and 90% of the output layer
KEPT_ROUND_1 = {"fc1": 235200 - 47040, "fc2": 30000 - 6000, "fc3": 1000 - 100}
FC_WEIGHTS = 235200 + 30000 + 1000


def _csv_rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("store") / "results"
    events, stop = [], StopToken()

    def on_event(e):
        events.append(e)
        if e["event"] == "eval" and e["round"] == 2 and e["iteration"] == 20:
            stop.request()

    with pytest.raises(RunStopped):
        run_lottery(train=QUICK, prune=PRUNE, out=root, on_event=on_event, stop=stop)
    # same trunk, another criterion (a separate run: the round count is not part of a run's identity)
    lottery = run_lottery(train=QUICK, prune=PruneConfig(rounds=1, criterion="movement"), out=root)
    sweep = one_shot_supermasks(train=QUICK, sweep=SupermaskConfig(criteria=("large_final",), weights=("init",),
                                                                   powers=(0, 1)), out=root, on_event=events.append)
    learned = learn_supermask(learn=LEARN, out=root, on_event=events.append)
    return {"root": root, "events": events, "lottery": lottery, "sweep": sweep, "learned": learned,
            "stopped": root / next(e["run"] for e in events if e.get("stage") == "round_start" and e["round"] == 2)}


@pytest.fixture
def scratch(store, tmp_path):
    """A copy of the module's results root that a test may damage."""
    root = tmp_path / "results"
    shutil.copytree(store["root"], root)
    return root


pytestmark = needs_mnist


def test_a_lottery_run_reads_its_round_0_from_the_trunk(store):
    res = store["lottery"]
    run = open_run(res.run_dir)
    assert isinstance(run, LotteryRun) and run.kind == "lottery" and run.arch == "fc"
    assert run.trunk == res.trunk_dir
    assert [r.index for r in run.rounds] == [0, 1] and (run.done, run.total) == (2, 2)
    assert run.round(0).path == res.trunk_dir / "round_000"
    assert run.round(1).path == res.run_dir / "round_001"
    assert run.round(0).summary == json.loads((res.trunk_dir / "round_000" / "summary.json").read_text())
    assert run.round(1).summary["weights_remaining"] == pytest.approx(sum(KEPT_ROUND_1.values()) / FC_WEIGHTS)
    masks = run.round(1).load("masks")
    assert {n: int(m.sum()) for n, m in masks.items()} == KEPT_ROUND_1
    assert all(bool(m.all()) for m in run.round(0).load("masks").values())
    # rewind + zero: no start.pt or frozen.pt; training started from the trunk's initial weights
    assert run.round(1).load("frozen") is None and run.round(1).load("start") is None
    trunk_init = run.round(0).load("init")["weights"]
    assert all(torch.equal(run.round(1).start()["weights"][n], trunk_init[n]) for n in trunk_init)
    with pytest.raises(ValueError, match=r"round 5: not finished in .*; finished rounds: 0, 1"):
        run.round(5)
    with pytest.raises(ValueError, match="unknown tensor file 'scores'"):
        run.round(1).load("scores")


def test_a_lottery_runs_metrics_are_the_trunks_round_0_then_its_own_rounds(store):
    res = store["lottery"]
    frame = open_run(res.run_dir).metrics()
    expected = _csv_rows(res.trunk_dir / "round_000" / "metrics.csv") + _csv_rows(res.run_dir / "metrics.csv")
    assert len(frame) == len(expected) > 0
    assert list(frame.columns) == ["run", "round", "iteration", "split", "metric", "value"]
    assert frame["run"].tolist() == [r["run"] for r in expected]
    assert frame["round"].tolist() == [int(r["round"]) for r in expected]
    assert frame["value"].tolist() == [float(r["value"]) for r in expected]
    assert metrics_frame(res.run_dir).equals(frame)
    rounds = stored_rounds_frame(res.run_dir)
    assert rounds["round"].tolist() == [0, 1] and set(rounds["criterion"]) == {"movement"}


def test_an_unfinished_lottery_run_counts_its_finished_rounds(store):
    run = open_run(store["stopped"])
    assert [r.index for r in run.rounds] == [0, 1] and (run.done, run.total) == (2, 3)
    assert run.prune["rounds"] == 2


def test_a_dense_run_is_round_0(store):
    run = open_run(store["lottery"].trunk_dir)
    assert isinstance(run, TrainRun) and (run.done, run.total) == (1, 1)
    frame = run.metrics()
    assert set(frame["round"]) == {0} and set(frame["run"]) == {run.name}
    assert len(frame) == len(_csv_rows(run.path / "round_000" / "metrics.csv"))
    # a dense run's ticket is round 0 with every weight kept
    assert int(ticket_state_dict(run.path, 0)["fc1.weight_mask"].sum()) == 235200


def test_a_supermask_run_reads_its_points(store):
    sweep = store["sweep"]
    run = open_run(sweep.run_dir)
    assert isinstance(run, SupermaskRun) and run.trunk == sweep.trunk_dir and run.done == 2
    assert run.path == run_key("supermask", DataConfig(), ModelConfig(), QUICK).folder(store["root"]).path
    points = run.points()
    assert points[["criterion", "weights", "power"]].values.tolist() == [["large_final", "init", 0],
                                                                          ["large_final", "init", 1]]
    # power 1 prunes 1 - 0.8 ** 1 = 0.19999999999999996 of a layer (1 - 0.9: 0.09999999999999998), so the
    # floor of the pruned count is one lower than a lottery round's: one more weight kept per layer
    kept = sum(KEPT_ROUND_1.values()) + 3
    assert points["weights_remaining"].tolist() == [1.0, kept / FC_WEIGHTS]
    assert points["test_acc"].tolist() == [r["test_acc"] for r in sweep.rows]
    assert run.metrics().empty  # a sweep trains nothing


def test_a_learned_mask_run_reads_summary_scores_and_metrics(store):
    res = store["learned"]
    run = open_run(res.run_dir)
    assert isinstance(run, LearnedMaskRun) and (run.done, run.total) == (1, 1)
    assert run.path == run_key("learnmask", DataConfig(), ModelConfig(), learn=LEARN).folder(store["root"]).path
    assert run.summary["test_acc_mean"] == res.test_acc_mean and len(run.summary["test_acc_samples"]) == 2
    scores = run.scores()
    assert scores["fc1"].shape == (300, 784)
    keep = sum(float(torch.sigmoid(s.double()).sum()) for s in scores.values()) / FC_WEIGHTS
    assert keep == pytest.approx(run.summary["expected_keep_fraction"], rel=1e-6)
    frame = run.metrics()
    # evaluations at iterations 3 and 6: train accuracy, test accuracy, expected keep fraction
    assert frame["iteration"].tolist() == [3, 3, 3, 6, 6, 6]
    assert frame["metric"].tolist() == ["accuracy", "accuracy", "expected_keep_fraction"] * 2


def test_list_runs_lists_every_run_by_kind(store):
    runs = list_runs(store["root"])
    names = sorted(p.name for p in store["root"].iterdir() if (p / "config.json").is_file())
    assert [r.name for r in runs] == names
    assert sorted(r.kind for r in runs) == ["learnmask", "lottery", "lottery", "supermask", "train"]
    lotteries = list_runs(store["root"], kinds=["lottery"])
    assert {r.name for r in lotteries} == {store["lottery"].run_dir.name, store["stopped"].name}
    frame = runs_frame(store["root"], ["lottery", "train"])
    by_name = frame.set_index("run")
    assert by_name.loc[store["stopped"].name, ["criterion", "mask1", "mask0", "done", "total"]].tolist() == \
        ["large_final", "rewind", "zero", 2, 3]
    assert by_name.loc[store["lottery"].trunk_dir.name, "kind"] == "train"
    with pytest.raises(ValueError, match="list_runs: unknown kind 'dense'; allowed values: train, lottery"):
        list_runs(store["root"], kinds=["dense"])
    assert list_runs(store["root"] / "nowhere") == []


def test_open_run_on_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(StoreError, match=f"^{re.escape(str(tmp_path))}: not a run folder"):
        open_run(tmp_path)
    (tmp_path / "config.json").write_text('{"kind": "sweep"}')
    with pytest.raises(StoreError, match="unknown kind 'sweep'; allowed values: train, lottery"):
        open_run(tmp_path)


def test_checksums_record_every_tensor_file_of_a_round(store):
    folder = store["lottery"].run_dir / "round_001"
    record = json.loads((folder / "checksums.json").read_text())["sha256"]
    assert sorted(record) == ["final.pt", "init.pt", "masks.pt", "metrics.csv"]
    for name, digest in record.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest
    learned = json.loads((store["learned"].run_dir / "checksums.json").read_text())["sha256"]
    assert sorted(learned) == ["scores.pt"]


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_damaged_or_missing_tensor_file_is_named_with_what_to_do(store, scratch):
    run = open_run(scratch / store["lottery"].run_dir.name)
    folder = run.round(1).path
    _flip_a_byte(folder / "masks.pt")
    with pytest.raises(DamagedFileError) as err:
        run.round(1).load("masks")
    assert err.value.path == folder / "masks.pt" and err.value.folder == folder
    assert str(err.value) == (f"{folder / 'masks.pt'}: damaged (its SHA-256 differs from the one recorded when it "
                              f"was written); delete {folder} to recompute it")
    (folder / "final.pt").unlink()
    with pytest.raises(DamagedFileError, match=f"^{re.escape(str(folder / 'final.pt'))}: missing; delete {re.escape(str(folder))} to recompute it$"):
        run.round(1).load("final")
    with pytest.raises(DamagedFileError, match="masks.pt: damaged"):
        ticket_state_dict(run.path, 1)
    scores = scratch / store["learned"].run_dir.name / "scores.pt"
    _flip_a_byte(scores)
    with pytest.raises(DamagedFileError, match=f"delete {re.escape(str(scores.parent))} to recompute it$"):
        open_run(scores.parent).scores()


@pytest.mark.parametrize("damaged", ["trunk round_000/init.pt", "branch round_001/final.pt",
                                     "branch round_001/masks.pt missing"])
def test_a_resumed_lottery_refuses_to_train_on_a_damaged_round(store, scratch, damaged):
    """The stopped branch reuses rounds 0 (trunk) and 1, and builds round 2 on them."""
    where, rel, *missing = damaged.split(" ")
    folder = scratch / (store["lottery"].trunk_dir.name if where == "trunk" else store["stopped"].name)
    path = folder / rel
    if missing:
        path.unlink()
    else:
        _flip_a_byte(path)
    events = []
    with pytest.raises(DamagedFileError, match=f"^{re.escape(str(path))}: .*; delete {re.escape(str(path.parent))} to recompute it$"):
        run_lottery(train=QUICK, prune=PRUNE, out=scratch, on_event=events.append)
    assert not any(e["event"] == "eval" for e in events)  # nothing was trained
    assert not (scratch / store["stopped"].name / "round_002" / "summary.json").exists()


def test_a_supermask_sweep_refuses_a_damaged_trunk(store, scratch):
    path = scratch / store["lottery"].trunk_dir.name / "round_000" / "final.pt"
    _flip_a_byte(path)
    with pytest.raises(DamagedFileError, match=f"^{re.escape(str(path))}: damaged"):
        one_shot_supermasks(train=QUICK, sweep=SupermaskConfig(criteria=("large_final",), powers=(2,)), out=scratch)


def test_runs_stored_before_checksums_read_unverified(store, scratch):
    for record in [*scratch.rglob("checksums.json"), *scratch.rglob("ledger.jsonl")]:  # ledgers came later
        record.unlink()
    run = open_run(scratch / store["lottery"].run_dir.name)
    original = open_run(store["lottery"].run_dir).round(1).load("masks")
    old = run.round(1).load("masks")
    assert all(torch.equal(old[n], original[n]) for n in original)
    assert run.round(1).load("frozen") is None
    assert open_run(scratch / store["learned"].run_dir.name).scores().keys() == {"fc1", "fc2", "fc3"}
    # unverified, but a file torch cannot load is still reported by name
    path = run.round(1).path / "final.pt"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DamagedFileError, match=r"final.pt: cannot be loaded \(.*\); delete"):
        run.round(1).load("final")
    (run.round(1).path / "init.pt").unlink()
    with pytest.raises(DamagedFileError, match="init.pt: missing"):
        run.round(1).load("init")


def test_write_tensors_records_exactly_the_files_it_wrote(tmp_path):
    write_tensors(tmp_path, {"a": {"x": torch.arange(3)}, "b": torch.ones(2)})
    record = json.loads((tmp_path / "checksums.json").read_text())["sha256"]
    assert record == {n: hashlib.sha256((tmp_path / n).read_bytes()).hexdigest() for n in ("a.pt", "b.pt")}
    assert torch.equal(read_tensors(tmp_path, "a")["x"], torch.arange(3))
    assert read_tensors(tmp_path, "c") is None
    with pytest.raises(DamagedFileError, match="c.pt: missing"):
        read_tensors(tmp_path, "c", required=True)
    (tmp_path / "checksums.json").write_text("{not json")
    with pytest.raises(DamagedFileError, match="checksums.json: unreadable checksum record"):
        read_tensors(tmp_path, "a")


def test_every_event_about_a_run_carries_its_folder(store):
    root = store["root"].absolute()
    about_runs = [e for e in store["events"] if "run" in e]
    kinds = {e["event"] for e in about_runs}
    assert {"eval", "round_end", "stage", "supermask_point", "learn_eval", "learn_end"} <= kinds
    assert all(e["run_dir"] == str(root / e["run"]) for e in about_runs)
    assert all(Path(e["run_dir"]).is_dir() for e in about_runs)
    assert all("run_dir" not in e for e in store["events"] if "run" not in e)  # e.g. data_loaded


# -- issue 31: damage the store's reads used to miss ------------------------------------------------

def _round_2_evals(events):
    return [(e["iteration"], e["test_acc"]) for e in events if e["event"] == "eval" and e["round"] == 2]


def test_a_damaged_checkpoint_is_discarded_and_its_round_restarts(store, scratch, tmp_path):
    """The stopped branch has round 2's checkpoint (iteration 20); one byte of it flipped, the round
    restarts from iteration 0 and gives the numbers of the undamaged checkpoint's resumed round."""
    checkpoint = scratch / store["stopped"].name / "round_002" / "checkpoint.pt"
    assert checkpoint.is_file() and checkpoint.with_name("checkpoint.pt.sha256").is_file()
    intact = tmp_path / "intact"
    shutil.copytree(scratch, intact)
    resumed = []
    run_lottery(train=QUICK, prune=PRUNE, out=intact, on_event=resumed.append)
    assert [e["iteration"] for e in resumed if e.get("stage") == "resumed"] == [20]

    _flip_a_byte(checkpoint)
    events = []
    result = run_lottery(train=QUICK, prune=PRUNE, out=scratch, on_event=events.append)
    (discarded,) = [e for e in events if e.get("stage") == "checkpoint_discarded"]
    assert discarded["path"] == str(checkpoint)
    assert discarded["reason"] == "its SHA-256 differs from the one recorded when it was written"
    assert not any(e.get("stage") == "resumed" for e in events)
    assert [it for it, _ in _round_2_evals(events)] == [0, 20, 40]  # from the start, not from iteration 20
    assert [it for it, _ in _round_2_evals(resumed)] == [40]
    # resuming gives an uninterrupted round's numbers: the restarted round stores the same rows
    rel = Path(store["stopped"].name) / "round_002" / "metrics.csv"
    assert (scratch / rel).read_bytes() == (intact / rel).read_bytes()
    assert result.rounds[-1].final_test_acc == _round_2_evals(resumed)[-1][1]
    assert not checkpoint.exists() and not checkpoint.with_name("checkpoint.pt.sha256").exists()


def test_a_checkpoint_without_its_digest_is_discarded(store, scratch):
    checkpoint = scratch / store["stopped"].name / "round_002" / "checkpoint.pt"
    checkpoint.with_name("checkpoint.pt.sha256").unlink()
    events = []
    run_lottery(train=QUICK, prune=PRUNE, out=scratch, on_event=events.append)
    (discarded,) = [e for e in events if e.get("stage") == "checkpoint_discarded"]
    assert (discarded["path"], discarded["reason"]) == \
        (str(checkpoint), "its SHA-256 was not recorded (checkpoint.pt.sha256 is missing or empty)")
    assert not any(e.get("stage") == "resumed" for e in events) and not checkpoint.exists()


def test_checkpoints_are_read_back_only_as_written(tmp_path):
    path = tmp_path / "checkpoint.pt"
    write_checkpoint(path, {"iteration": 7, "w": torch.arange(4.0)})
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert (tmp_path / "checkpoint.pt.sha256").read_text() == f"{digest}  checkpoint.pt\n"  # sha256sum's format
    state = read_checkpoint(path)
    assert state["iteration"] == 7 and torch.equal(state["w"], torch.arange(4.0))
    _flip_a_byte(path)
    with pytest.raises(DamagedFileError) as err:
        read_checkpoint(path)
    assert str(err.value) == (f"{path}: its SHA-256 differs from the one recorded when it was written; "
                              f"delete {tmp_path} to recompute it")
    remove_checkpoint(path)
    assert list(tmp_path.iterdir()) == []


def test_a_run_with_a_ledger_but_no_checksums_is_refused(store, scratch):
    """Ledgers came after checksums: a round the ledger records was stored with its checksums.json,
    so without it the round's files cannot be trusted (here final.pt has a byte flipped)."""
    folder = scratch / store["stopped"].name / "round_001"
    (folder / "checksums.json").unlink()
    _flip_a_byte(folder / "final.pt")
    expected = (f"{folder / 'metrics.csv'}: cannot be checked, checksums.json is missing from its folder (the run's "
                f"ledger.jsonl records this result as stored, with checksums); delete {folder} to recompute it")
    events = []
    with pytest.raises(DamagedFileError) as err:
        run_lottery(train=QUICK, prune=PRUNE, out=scratch, on_event=events.append)
    assert str(err.value) == expected
    assert not any(e["event"] == "eval" for e in events)  # nothing was trained on it
    with pytest.raises(DamagedFileError, match=f"^{re.escape(str(folder / 'final.pt'))}: cannot be checked"):
        open_run(folder.parent).round(1).load("final")
    with pytest.raises(DamagedFileError, match=f"^{re.escape(str(folder / 'metrics.csv'))}: cannot be checked"):
        open_run(folder.parent).metrics()


@pytest.mark.parametrize("cut", ["mid-row", "whole rows"])
def test_a_cut_metrics_file_is_named_not_read_short(store, scratch, cut):
    run_path = scratch / store["lottery"].run_dir.name
    metrics = run_path / "round_001" / "metrics.csv"
    text = metrics.read_text()
    assert text.count("\n") == 1 + 3 * 4  # header, then val and test loss and accuracy at iterations 0, 20, 40
    if cut == "mid-row":
        metrics.write_text(text[:-3])  # the last value loses its last digits: it still parses as a number
        problem = "cut off (its last row is incomplete)"
    else:
        metrics.write_text("".join(text.splitlines(keepends=True)[:-2]))
        problem = "damaged (its SHA-256 differs from the one recorded when it was written)"
    with pytest.raises(DamagedFileError) as err:
        open_run(run_path).metrics()
    assert str(err.value) == f"{metrics}: {problem}; delete {metrics.parent} to recompute it"


def test_a_cut_points_file_is_named_when_the_sweep_runs_again(store, scratch):
    points = scratch / store["sweep"].run_dir.name / "points.csv"
    points.write_bytes(points.read_bytes()[:-30])
    sweep = SupermaskConfig(criteria=("large_final",), weights=("init",), powers=(0, 1))
    with pytest.raises(DamagedFileError) as err:
        one_shot_supermasks(train=QUICK, sweep=sweep, out=scratch)
    assert str(err.value) == f"{points}: cut off (its last row is incomplete); delete {points.parent} to recompute it"
    points.write_text(",".join(("criterion", "weights", "power")) + "\nlarge_final,init,0\n")
    with pytest.raises(DamagedFileError) as err:
        open_run(points.parent).points()
    assert str(err.value) == (f"{points}: malformed points (KeyError: 'weights_remaining, train_acc, test_acc'); "
                              f"delete {points.parent} to recompute it")


def test_a_garbage_ledger_line_is_named(store, scratch):
    ledger = scratch / store["lottery"].run_dir.name / "ledger.jsonl"
    lines = ledger.read_text().splitlines(keepends=True)
    ledger.write_text(lines[0] + "{oops\n" + "".join(lines[1:]) + "[1, 2]\n")
    with pytest.raises(LedgerError) as err:
        trainings(ledger.parent)
    assert str(err.value) == (f"{ledger}: line 2 is not JSON (Expecting property name enclosed in double quotes: "
                              "line 1 column 2 (char 1)): '{oops'; each line must be one JSON object, as the engine "
                              "appends them")
    ledger.write_text("".join(lines) + "[1, 2]\n")
    with pytest.raises(LedgerError, match=rf"^{re.escape(str(ledger))}: line {len(lines) + 1} is a JSON list, not an "
                                          r"object: '\[1, 2\]'"):
        trainings(ledger.parent)


def test_a_garbage_run_config_is_named(store, scratch):
    config = scratch / store["stopped"].name / "config.json"
    config.write_text("{oops")
    with pytest.raises(DamagedFileError) as err:
        run_lottery(train=QUICK, prune=PRUNE, out=scratch)
    assert str(err.value) == (f"{config}: unreadable JSON (Expecting property name enclosed in double quotes: line 1 "
                              f"column 2 (char 1)); delete {config.parent} to recompute it")
    assert isinstance(err.value, ValueError)  # as json's own error is, for callers that catch that
