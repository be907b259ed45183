"""The learned-supermask mode's mask families: the request builds each family's configs (through
``method_config``, with the page's schedule) and refuses a bad keep fraction in the page's words."""

import pytest

from lt_core import ConfigError, EdgePopupConfig, LearnConfig, SignedMaskConfig
from lt_core.dashboard import catalog
from lt_core.dashboard.request import RunRequest, describe_error, learned_configs, parse_fractions, plan_jobs
from lt_core.supermask import method_config

TINY = dict(mode="learned", schedule="custom", iterations=10, eval_every=5)


def test_the_request_builds_each_familys_configs_with_the_pages_schedule():
    req = RunRequest(learned_weights=("init", "signed_constant"), dwr=True, seeds=(0, 1), keep_fractions=(0.1, 0.5),
                     **TINY)
    zhou = learned_configs(req.replace(method="zhou"))
    assert zhou == [method_config("zhou", weights=w, dwr=True, seed=s, device="auto", iterations=10, eval_every=5)
                    for s in (0, 1) for w in ("init", "signed_constant")]
    assert all(type(c) is LearnConfig for c in zhou)
    # edge-popup: a run per seed, weights kind (its config has both) and keep fraction; no DWR (it has none)
    edge = learned_configs(req.replace(method="edge_popup"))
    assert [(c.seed, c.weights, c.keep_fraction) for c in edge] == [
        (s, w, k) for s in (0, 1) for w in ("init", "signed_constant") for k in (0.1, 0.5)]
    assert all(type(c) is EdgePopupConfig and c.iterations == 10 and c.eval_every == 5 for c in edge)
    assert edge[0].lr == EdgePopupConfig().lr and edge[0].scale_fan == EdgePopupConfig().scale_fan  # its defaults
    # signed: its own weights ("elus"), so the boxes and the keep fractions do not apply: one run per seed
    signed = learned_configs(req.replace(method="signed"))
    assert signed == [method_config("signed", seed=s, device="auto", iterations=10, eval_every=5) for s in (0, 1)]
    assert all(type(c) is SignedMaskConfig and c.weights == SignedMaskConfig().weights for c in signed)
    # the quick schedule: the network's quick learned-mask epochs, for every family
    quick = learned_configs(RunRequest(mode="learned", method="edge_popup", keep_fractions=(0.3,)))
    assert quick[0].epochs == catalog.quick_learn_epochs("fc") and quick[0].iterations is None
    # the job trains them as one stack, one stored run each
    job, = plan_jobs(req.replace(method="edge_popup", learned_weights=("signed_constant",)), "/tmp/unused")
    assert len(job.runs) == 4 and "edge_popup" in job.label


def test_a_bad_keep_fraction_is_refused_in_the_pages_words():
    with pytest.raises(ConfigError) as err:
        plan_jobs(RunRequest(method="edge_popup", keep_fractions=(0.1, 1.5), **TINY), "/tmp/unused")
    assert describe_error(err.value) == "Invalid setting. Keep fraction(s): 1.5 is out of range (0.0, 1.0]"
    with pytest.raises(ConfigError, match=r"^Keep fraction\(s\): 'a lot' is not a list of numbers"):
        parse_fractions("a lot")
    assert parse_fractions("0.05, 0.1 0.1;0.5") == (0.05, 0.1, 0.5)
    with pytest.raises(ConfigError, match="^Mask family: unknown value 'nope'"):
        plan_jobs(RunRequest(method="nope", **TINY), "/tmp/unused")
