import math
import subprocess
import sys
import textwrap

import pytest
import torch

import lt_core

from lt_core import (DataConfig, ModelConfig, PruneConfig, RunStopped, StopToken, TrainConfig, export_ticket,
                     forward, get_arch, run_lottery, ticket_state_dict)
from lt_core.store import run_key
from lt_core.store import RunDir

from .conftest import needs_mnist

pytestmark = needs_mnist
QUICK = TrainConfig(iterations=40, eval_every=20, eval_train=False, device="cpu")


def kept_counts(arch, rounds):
    out = {}
    for layer in arch.layers:
        n = layer.numel
        f = arch.prune_fractions[layer.kind]
        for _ in range(rounds):
            n -= math.floor(f * n)
        out[layer.name] = n
    return out


def test_lottery_rounds_follow_the_schedule(tmp_path):
    res = run_lottery(train=QUICK, prune=PruneConfig(rounds=2), out=tmp_path)
    arch = get_arch("fc")
    assert [r.round for r in res.rounds] == [0, 1, 2]
    run = RunDir(res.run_dir)
    for k in (1, 2):
        masks = run.load_tensors(k, "masks")
        expected = kept_counts(arch, k)
        assert {n: int(m.sum()) for n, m in masks.items()} == expected
        assert res.rounds[k].weights_remaining == pytest.approx(sum(expected.values()) / arch.num_weights)
        assert res.rounds[k].layer_remaining["fc1"] == pytest.approx(expected["fc1"] / 235200)
        # zero policy: pruned weights are exactly 0 in the trained network
        final = run.load_tensors(k, "final")["weights"]
        assert all(bool((final[n][~masks[n]] == 0).all()) for n in masks)
        # rewind: every round starts from the dense run's initialisation
        init = run.load_tensors(k, "init")["weights"]
        trunk_init = RunDir(res.trunk_dir).load_tensors(0, "init")["weights"]
        assert all(torch.equal(init[n], trunk_init[n]) for n in init)
    prev = run.load_tensors(1, "masks")
    assert all(bool((run.load_tensors(2, "masks")[n] <= prev[n]).all()) for n in prev)
    assert (res.run_dir / "metrics.csv").read_text().count("\n") > 10


def test_frozen_weights_are_bit_identical_after_training(tmp_path):
    res = run_lottery(train=QUICK, prune=PruneConfig(rounds=2, mask0="freeze_init_zero_mask"), out=tmp_path)
    run = RunDir(res.run_dir)
    for k in (1, 2):
        masks, frozen = run.load_tensors(k, "masks"), run.load_tensors(k, "frozen")
        final = run.load_tensors(k, "final")["weights"]
        start = run.load_tensors(k, "init")["weights"]
        for n in masks:
            pruned = ~masks[n]
            assert torch.equal(final[n][pruned], frozen[n][pruned])
            # frozen at 0 or at the initial value, nothing else
            assert bool(((frozen[n][pruned] == 0) | (frozen[n][pruned] == start[n][pruned])).all())
        assert any(bool((frozen[n][~masks[n]] != 0).any()) for n in masks)  # some frozen at init


def test_trunk_is_shared_and_branches_are_separate(tmp_path):
    a = run_lottery(train=QUICK, prune=PruneConfig(rounds=1), out=tmp_path)
    events = []
    b = run_lottery(train=QUICK, prune=PruneConfig(rounds=1, criterion="random"), out=tmp_path,
                    on_event=events.append)
    assert a.trunk_dir == b.trunk_dir and a.run_dir != b.run_dir
    assert events[0] == {"event": "stage", "stage": "round_reused", "run": a.trunk_dir.name, "round": 0,
                         "run_dir": str(a.trunk_dir.absolute())}
    assert b.rounds[0].early_stop_test_acc == a.rounds[0].early_stop_test_acc
    events.clear()
    again = run_lottery(train=QUICK, prune=PruneConfig(rounds=1, criterion="random"), out=tmp_path,
                        on_event=events.append)
    assert [r.reused for r in again.rounds] == [True, True]
    assert not any(e["event"] == "eval" for e in events)


def test_killed_lottery_resumes_to_the_same_numbers(tmp_path):
    prune = PruneConfig(rounds=2, mask1="signed_reinit")
    reference = run_lottery(train=QUICK, prune=prune, out=tmp_path / "ref")
    stop = StopToken()

    def on_event(e):
        if e["event"] == "eval" and e["round"] == 2 and e["iteration"] == 20:
            stop.request()

    with pytest.raises(RunStopped):
        run_lottery(train=QUICK, prune=prune, out=tmp_path / "run", on_event=on_event, stop=stop)
    run_dir = run_key("lottery", DataConfig(), ModelConfig(), QUICK, prune).folder(tmp_path / "run")
    assert run_dir.done_rounds() == [1]
    resumed = run_lottery(train=QUICK, prune=prune, out=tmp_path / "run")
    assert [r.to_json() for r in resumed.rounds] == [r.to_json() for r in reference.rounds]
    ref = RunDir(reference.run_dir)
    for name in ("masks", "init"):
        a, b = ref.load_tensors(2, name), run_dir.load_tensors(2, name)
        a, b = (a.get("weights", a), b.get("weights", b))
        assert all(torch.equal(a[n], b[n]) for n in a)


def test_export_loads_into_a_plain_torch_model(tmp_path):
    res = run_lottery(train=QUICK, prune=PruneConfig(rounds=1), out=tmp_path)
    path = export_ticket(res.run_dir, 1, tmp_path / "ticket.pt")
    sd = ticket_state_dict(res.run_dir, 1)
    x = torch.rand(4, 1, 28, 28)
    arch = get_arch("fc")
    w = {n: sd[f"{n}.weight_orig"][None] for n in arch.layer_names}
    b = {n: sd[f"{n}.bias"][None] for n in arch.layer_names}
    torch.save(x, tmp_path / "x.pt")
    torch.save(forward(arch, w, b, x)[0], tmp_path / "expected.pt")
    script = textwrap.dedent(f"""
        import sys, torch
        from torch import nn
        from torch.nn.utils import prune
        model = nn.Sequential()
        model.add_module("flatten", nn.Flatten())
        model.add_module("fc1", nn.Linear(784, 300)); model.add_module("relu1", nn.ReLU())
        model.add_module("fc2", nn.Linear(300, 100)); model.add_module("relu2", nn.ReLU())
        model.add_module("fc3", nn.Linear(100, 10))
        for name in ("fc1", "fc2", "fc3"):
            prune.identity(getattr(model, name), "weight")
        model.load_state_dict(torch.load({str(path)!r}))
        out = model(torch.load({str(tmp_path / 'x.pt')!r}))
        assert torch.allclose(out, torch.load({str(tmp_path / 'expected.pt')!r}), atol=1e-5)
        kept = int(model.fc1.weight_mask.sum())
        assert kept == 188160, kept
        assert "lt_core" not in sys.modules
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    # round 0 of a lottery run is the dense trunk's ticket: every mask entry is 1
    dense = ticket_state_dict(res.run_dir, 0)
    assert int(dense["fc1.weight_mask"].sum()) == 235200
    with pytest.raises(ValueError, match="round 5: not finished"):
        ticket_state_dict(res.run_dir, 5)


def test_more_rounds_continue_the_stored_run(tmp_path):
    short = run_lottery(train=QUICK, prune=PruneConfig(rounds=1), out=tmp_path)
    longer = run_lottery(train=QUICK, prune=PruneConfig(rounds=2), out=tmp_path)
    assert longer.run_dir == short.run_dir  # the round count is not part of the run's identity
    assert [r.reused for r in longer.rounds] == [True, True, False]
    assert longer.rounds[1].early_stop_test_acc == short.rounds[1].early_stop_test_acc
    assert lt_core.open_run(longer.run_dir).config["prune"]["rounds"] == 2
    again = run_lottery(train=QUICK, prune=PruneConfig(rounds=1), out=tmp_path)
    assert [r.round for r in again.rounds] == [0, 1] and all(r.reused for r in again.rounds)
    assert lt_core.open_run(longer.run_dir).config["prune"]["rounds"] == 2  # the larger request is kept
