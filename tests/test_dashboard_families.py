"""The learned-supermask mode's mask families: the request builds each family's configs (through
``method_config``, with the page's schedule), refuses a bad keep fraction in the page's words, and
the accuracy-vs-kept plot holds one point per finished run beside the papers' values."""

import pytest

from lt_core import ConfigError, EdgePopupConfig, LearnConfig, SignedMaskConfig
from lt_core.dashboard import catalog
from lt_core.dashboard.controller import Controller
from lt_core.dashboard.request import RunRequest, describe_error, learned_configs, parse_fractions, plan_jobs
from lt_core.supermask import method_config

from .conftest import needs_mnist

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
    job, = plan_jobs(req.replace(method="edge_popup", learned_weights=("signed_constant",)))
    assert len(job.runs) == 4 and "edge_popup" in job.label


def test_a_bad_keep_fraction_is_refused_in_the_pages_words():
    with pytest.raises(ConfigError) as err:
        plan_jobs(RunRequest(method="edge_popup", keep_fractions=(0.1, 1.5), **TINY))
    assert describe_error(err.value) == "Invalid setting. Keep fraction(s): 1.5 is out of range (0.0, 1.0]"
    with pytest.raises(ConfigError, match=r"^Keep fraction\(s\): 'a lot' is not a list of numbers"):
        parse_fractions("a lot")
    assert parse_fractions("0.05, 0.1 0.1;0.5") == (0.05, 0.1, 0.5)
    with pytest.raises(ConfigError, match="^Mask family: unknown value 'nope'"):
        plan_jobs(RunRequest(method="nope", **TINY))


@needs_mnist
def test_the_accuracy_vs_kept_plot_holds_one_point_per_finished_run(results):
    pytest.importorskip("jupyter_bokeh")
    from lt_core.dashboard import plot_tables
    from lt_core.dashboard.views.plots import Plots, family_colour

    c = Controller(results, throttle_s=0.05)
    req = RunRequest(method="edge_popup", keep_fractions=(0.1, 0.5), learned_weights=("signed_constant",), **TINY)
    assert c.start(req), c.message
    assert c.wait(300) and c.status == "finished", c.message
    snap = c.snapshot()
    plots = Plots()
    plots.render("fc", plot_tables(snap))
    shown = plots.family_src.data
    # one point per run, at the run's stored numbers
    finals = {s.label: s.learn_final for s in snap["series"] if s.kind == "learned"}
    assert len(finals) == 2 and sorted(shown["label"]) == sorted(finals)
    for label, x, y, fam, color in zip(shown["label"], shown["x"], shown["y"], shown["family"], shown["color"]):
        assert x == pytest.approx(100 * finals[label]["expected_keep_fraction"])
        assert y == pytest.approx(100 * finals[label]["test_acc_mean"])
        assert fam == "edge_popup" and color == family_colour("edge_popup")
    assert sorted(shown["x"]) == pytest.approx([10.0, 50.0])  # edge-popup keeps exactly its fraction
    # the papers' values: the signed supermask's point (a star), Zhou's Table 1 learned levels
    stars = plots.family_paper_src.data
    from lt_core.paper.questions import SIGNED_PAPER_FC
    assert (stars["y"], stars["x"]) == ([SIGNED_PAPER_FC[0]], [SIGNED_PAPER_FC[1]])
    assert "Koster et al. 2022" in stars["label"][0]
    paper = catalog.paper_table("fc")
    levels = plots.family_ref.data
    assert [ys[0] for ys in levels["ys"]] == [paper[k] for k in ("learned_init", "learned_signed_constant",
                                                                  "learned_dwr")]
    assert all("Zhou et al. Table 1" in label for label in levels["label_ref"])
    lo, hi = plots.family_fig.x_range.start, plots.family_fig.x_range.end
    assert lo < SIGNED_PAPER_FC[1] and hi > 50.0  # every point and star inside the axis


def test_the_family_control_lists_every_method_and_enables_what_applies(results):
    pytest.importorskip("jupyter_bokeh")
    from lt_core.dashboard import build_app
    from lt_core.supermask import MASK_METHODS

    app = build_app(results_root=results)
    ui = app.controls
    assert [v for _, v in ui.family.options] == list(MASK_METHODS) and ui.family.value == "zhou"
    assert ui.family.disabled and ui.keep.disabled  # lottery rounds: no family
    ui.mode.value = "learned"
    assert not ui.family.disabled and ui.keep.disabled and not ui.dwr.disabled and not ui.w_init.disabled
    ui.family.value = "edge_popup"
    assert not ui.keep.disabled and ui.dwr.disabled and not ui.w_init.disabled and not ui.w_sc.disabled
    ui.family.value = "signed"
    assert ui.keep.disabled and ui.dwr.disabled and ui.w_init.disabled and ui.w_sc.disabled
    # a bad keep fraction: the config's own check, in the page's words; nothing runs
    ui.family.value = "edge_popup"
    ui.keep.value = "0.1, 0"
    app.run()
    assert app.wait_idle(10)
    assert "lt-msg-error" in ui.message.value and app.c.status != "running"
    assert "Invalid setting. Keep fraction(s): 0.0 is out of range (0.0, 1.0]" in ui.message.value
    ui.keep.value = "ten percent"
    app.run()
    assert app.wait_idle(10)
    assert "Keep fraction(s): &#x27;ten percent&#x27; is not a list of numbers" in ui.message.value


def test_a_users_registered_family_is_listed_and_built_with_its_own_keep_fraction(results):
    from dataclasses import dataclass

    from lt_core.supermask import MASK_METHODS, EdgePopupLearner, MaskMethodConfig, register_mask_method

    @dataclass(frozen=True, repr=False)
    class MyConfig(MaskMethodConfig):
        keep_fraction: float = 0.2
        seed: int = 0
        lr: float = 0.1
        momentum: float = 0.9
        weight_decay: float = 0.0
        batch_size: int = 128
        epochs: int = 3
        iterations: int = None
        eval_every: int = None
        device: str = "auto"

        def validate(self) -> None:
            from lt_core.config import check_range

            check_range("MyConfig", "keep_fraction", self.keep_fraction, 0.0, 0.5, lo_open=True)
            self.check_training()

    register_mask_method("mine", MyConfig, EdgePopupLearner, "a user's family")
    try:
        req = RunRequest(method="mine", keep_fractions=(0.1, 0.3), seeds=(4,), **TINY)
        assert [(type(c), c.keep_fraction, c.seed, c.iterations) for c in learned_configs(req)] == [
            (MyConfig, 0.1, 4, 10), (MyConfig, 0.3, 4, 10)]
        with pytest.raises(ConfigError) as err:  # its own range, in the page's words
            learned_configs(req.replace(keep_fractions=(0.9,)))
        assert describe_error(err.value) == "Invalid setting. Keep fraction(s): 0.9 is out of range (0.0, 0.5]"
        pytest.importorskip("jupyter_bokeh")
        from lt_core.dashboard import build_app

        ui = build_app(results_root=results).controls
        assert "mine" in [v for _, v in ui.family.options]
        ui.mode.value, ui.family.value = "learned", "mine"
        assert not ui.keep.disabled and ui.w_init.disabled and ui.dwr.disabled
    finally:
        MASK_METHODS.remove("mine")
