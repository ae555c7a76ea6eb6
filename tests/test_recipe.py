"""The heads' training procedure as components (embrm.heads.recipe): the presets reproduce the
procedures they replace bit for bit, and each component changes only what it names."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "data"))
import make_recipe_oracle as oracle

ORACLE = np.load(Path(__file__).parent / "data" / "recipe-oracle.npz")


@pytest.mark.parametrize("case", oracle.CASES, ids=[c[0] for c in oracle.CASES])
def test_presets_reproduce_the_recorded_procedures_bit_for_bit(case):
    """The oracle was recorded from the code before the procedure became components, at one
    thread; on the same kernels (``machine``) predictions, curves, kept epochs and logged
    parameters agree bit for bit (LightGBM's everywhere)."""
    name = case[0]
    got = oracle.run(*case)
    for key in ("predictions", "curves", "best_epoch", "raw"):
        if f"{name}/{key}" in ORACLE:
            expected = ORACLE[f"{name}/{key}"]
            if key == "predictions" and name == "clf-lgb-study":
                # The one intended change: scored by the raw margin, not the probability.
                expected = ORACLE[f"{name}/raw"].astype(np.float32).reshape(got[key].shape)
            assert got[key].shape == expected.shape, key
            if str(ORACLE["machine"]) == oracle.machine() or name.startswith("clf-lgb"):
                # NaN curves (a study LightGBM logs no training loss) compare equal to NaN.
                np.testing.assert_array_equal(got[key], expected, err_msg=f"{name}: {key}")
            else:
                # Another CPU instruction set or torch: matrix kernels may round differently
                # (never bit for bit across them), so the same procedure agrees closely.
                np.testing.assert_allclose(got[key], expected, rtol=1e-3, atol=1e-4)
    assert json.loads(str(got["params"])) == json.loads(str(ORACLE[f"{name}/params"]))


# -- each component changes only what it names ---------------------------------------------------
from embrm.errors import ConfigError  # noqa: E402
from embrm.heads import make_head, study  # noqa: E402
from embrm.heads.base import PairData  # noqa: E402
from embrm.heads.ensemble import Ensemble  # noqa: E402
from embrm.heads.mlp import MLPHead  # noqa: E402
from embrm.heads.recipe import COMPONENTS, PROTOCOLS, preset  # noqa: E402
from embrm.heads.stacked import stack_refusal  # noqa: E402

SMALL = {"hidden": [16, 8], "lr": 1e-2, "batch_size": 64}


def pair_task(pairs: int = 400) -> PairData:
    x, a, b, label, _ = oracle.task()
    return PairData(x, a[:pairs], b[:pairs], label[:pairs])


def fit(head_type: str, **params):
    small = SMALL if head_type.endswith("mlp") else {}
    return make_head(head_type, seed=2, threads=1, **{**small, **params}).fit(pair_task())


def curves(head) -> np.ndarray:
    return np.array([[r["train_loss"], r["val_loss"], r["val_accuracy"]] for r in head.curves_])


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("head_type", ["bt-mlp", "clf-mlp", "clf-lgb"])
def test_a_preset_spelled_out_component_by_component_is_the_preset(head_type, protocol):
    cls = make_head(head_type).__class__
    explicit = preset(protocol, cls.RECIPE)
    assert explicit and set(explicit) <= set(COMPONENTS)
    params = {"max_epochs": 6} if head_type != "clf-lgb" else {}
    a = fit(head_type, protocol=protocol, **params)
    b = fit(head_type, protocol=protocol, **params, **explicit)
    test = oracle.task()[4]
    assert np.array_equal(a.predict_reward(test), b.predict_reward(test))
    np.testing.assert_array_equal(curves(a), curves(b))
    # Set explicitly, components are logged; left to the preset, they are not.
    assert not set(explicit) & set(a.get_params())
    assert {k: b.get_params()[k] for k in explicit} == explicit


@pytest.mark.parametrize("head_type", ["bt-mlp", "clf-mlp", "clf-lgb"])
def test_split_pair_puts_no_mirror_of_a_validation_example_in_training(head_type):
    params = {"max_epochs": 2} if head_type != "clf-lgb" else {}
    released = fit(head_type, protocol="study", **params)
    by_pair = fit(head_type, protocol="study", split="pair", **params)
    assert study.mirror_share(*released.split_pairs_) > 0.7
    train, val = by_pair.split_pairs_
    assert val.size and not np.intersect1d(train, val).size
    assert study.mirror_share(train, val) == 0.0


def test_bt_examples_once_feeds_each_training_pair_once_and_both_doubles_it():
    once = fit("bt-mlp", protocol="study", bt_examples="once", split="pair", max_epochs=1)
    both = fit("bt-mlp", protocol="study", split="pair", max_epochs=1)
    assert np.array_equal(np.unique(once.split_pairs_[0]), np.unique(both.split_pairs_[0]))
    assert both.split_pairs_[0].size == 2 * once.split_pairs_[0].size
    assert np.unique(once.split_pairs_[0]).size == once.split_pairs_[0].size


SCRIPT = [1.0, 0.8, 0.9, 0.95, 0.85, 0.7, 0.75, 0.8, 0.82, 0.6]  # released rule stops at 9


def scripted(monkeypatch, losses, snapshots):
    def validate(self, x, val):
        snapshots.append({k: v.detach().clone() for k, v in self.model_.state_dict().items()})
        return losses[len(snapshots) - 1], 0.5

    monkeypatch.setattr(MLPHead, "_study_validate", validate)
    monkeypatch.setattr(MLPHead, "_validate", validate)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_weights_best_keeps_the_epoch_of_lowest_validation_loss(monkeypatch, protocol):
    snapshots = []
    scripted(monkeypatch, SCRIPT, snapshots)
    head = fit("bt-mlp", protocol=protocol, weights="best", stopping="released", max_epochs=10)
    assert len(head.curves_) == 9  # the stopping rule is unchanged by the kept weights
    assert head.best_epoch_ == 6 == int(np.argmin(SCRIPT[:9])) + 1
    kept = head.model_.state_dict()
    assert all(np.array_equal(kept[k], snapshots[5][k]) for k in kept)


def test_weights_change_only_the_kept_model_not_the_training_run():
    final = fit("clf-mlp", protocol="study", max_epochs=8, stopping="none")
    best = fit("clf-mlp", protocol="study", max_epochs=8, stopping="none", weights="best")
    np.testing.assert_array_equal(curves(final), curves(best))
    assert final.best_epoch_ == 8
    assert best.best_epoch_ == int(np.argmin(curves(best)[:, 1])) + 1


def test_stopping_rules_change_only_when_training_ends(monkeypatch):
    runs = {
        rule: fit("bt-mlp", protocol="study", stopping=rule, max_epochs=12)
        for rule in ("released", "patience", "none")
    }
    assert len(runs["none"].curves_) == 12
    for rule in ("released", "patience"):
        n = len(runs[rule].curves_)
        np.testing.assert_array_equal(curves(runs[rule]), curves(runs["none"])[:n])
    # Patience 3 on the first best epoch: stops 3 epochs after it, unless at max_epochs.
    monitored = curves(runs["none"])[:, 1]
    stop = next((e + 1 for e in range(12) if e - int(np.argmin(monitored[: e + 1])) >= 3), 12)
    assert len(runs["patience"].curves_) == stop
    released = next((k for k in range(1, 13) if study.should_stop(list(monitored[:k]))), 12)
    assert len(runs["released"].curves_) == released


def test_batches_and_steps_change_the_schedule_only(training_batches):
    draws = training_batches
    # CLF, 400 pairs: 800 examples, 640 in training; batch 300 → 3 steps (plain).
    head = fit("clf-mlp", protocol="study", batches="shuffled", batch_size=300, max_epochs=1)
    assert head.steps_per_epoch_ == 3 and len(draws) == 3
    assert np.array_equal(np.sort(np.concatenate(draws)), np.arange(640))  # each once
    draws.clear()
    head = fit("clf-mlp", protocol="study", steps="min-steps", batch_size=300, max_epochs=1)
    # At least min_steps_per_epoch (10) steps: batches of ceil(640 / 10) = 64, sampled.
    assert head.steps_per_epoch_ == 10 and [d.size for d in draws] == [64] * 10
    assert len(np.unique(np.concatenate(draws))) < 640  # sampled: some drawn twice, some never


def test_seeding_released_numbers_ensemble_members_from_the_last():
    released = Ensemble(
        "bt-mlp", members=3, params={**SMALL, "seeding": "released", "study_member": 5}, seed=4
    )
    assert [m.params["study_member"] for m in released.members] == [5, 4, 3]
    assert {m.seed for m in released.members} == {4}
    embrm = Ensemble("bt-mlp", members=3, params={**SMALL, "protocol": "study", "seeding": "embrm"})
    assert len({m.seed for m in embrm.members}) == 3
    with pytest.raises(ConfigError, match=r"members.*at most study_member \+ 1 = 3"):
        Ensemble("bt-mlp", members=4, params={"seeding": "released", "study_member": 2})


@pytest.mark.parametrize(
    ("head_type", "params", "message"),
    [
        ("bt-mlp", {"split": "mirror"}, r"'heads\.bt-mlp\.params\.split': expected one of"),
        ("clf-lgb", {"stopping": "released"}, r"params\.stopping': expected one of"),
        ("clf-mlp", {"bt_examples": "both"}, r"unknown hyperparameters \['bt_examples'\]"),
        ("bt-mlp", {"min_steps_per_epoch": 5, "protocol": "study"},
         r"min_steps_per_epoch': is not used by protocol 'study' \(its steps 'plain'\)"),
        ("bt-mlp", {"min_steps_per_epoch": 5, "steps": "plain"},
         r"min_steps_per_epoch': is not used by steps 'plain'"),
        ("bt-mlp", {"weight_decay": 0.1, "loss": "released"}, r"weight_decay': is not used by loss"),
        ("clf-lgb", {"n_estimators": 10, "booster": "notebook"}, r"n_estimators': is not used by"),
        ("bt-mlp", {"val_fraction": 0.0, "split": "example"},
         r"val_fraction': must be positive under split 'example'"),
    ],
)  # fmt: skip
def test_bad_components_name_the_key(head_type, params, message):
    with pytest.raises(ConfigError, match=message):
        make_head(head_type, **params)


def test_a_component_switched_from_embrm_with_min_steps_and_weight_decay_is_accepted():
    make_head("bt-mlp", protocol="study", steps="min-steps", min_steps_per_epoch=5)
    make_head("clf-mlp", protocol="study", loss="embrm", weight_decay=0.1)
    make_head("clf-lgb", protocol="study", booster="tuned", n_estimators=50)


def test_stacked_training_refuses_any_component_but_embrms():
    assert stack_refusal("bt-mlp", {"split": "pair"}, 1, "heads.h") is None
    reason = stack_refusal("bt-mlp", {"batches": "sampled"}, 1, "heads.h")
    assert "'heads.h.params.batches'" in reason


# Steps per epoch of the summary's degenerate-run check, recorded from the code before the
# components: (type, protocol, pairs, batch_size) → steps.
STEPS = {
    ("bt-mlp", "embrm", 37, 10240): 10, ("bt-mlp", "embrm", 2000, 96): 17,
    ("bt-mlp", "embrm", 20000, 96): 167, ("clf-mlp", "embrm", 2000, 96): 34,
    ("clf-mlp", "embrm", 20000, 10240): 10, ("bt-mlp", "study", 37, 96): 1,
    ("bt-mlp", "study", 500, 96): 9, ("bt-mlp", "study", 20000, 10240): 4,
    ("clf-mlp", "study", 2000, 96): 34, ("clf-mlp", "study", 20000, 96): 334,
}  # fmt: skip


def test_summary_steps_per_epoch_follow_the_recipe():
    from embrm.summary import steps_per_epoch

    for (head_type, protocol, pairs, batch), steps in STEPS.items():
        head = {"type": head_type, "protocol": protocol, "batch_size": batch}
        head |= {"val_fraction": 0.2, "min_steps_per_epoch": 10}
        assert steps_per_epoch({"head": head, "best_epoch": 3}, pairs) == steps
    # A component overriding the preset: BT once, plain steps of 96: ceil(1600 / 96) = 17.
    head = {"type": "bt-mlp", "protocol": "embrm", "batch_size": 96, "steps": "plain"}
    head |= {"val_fraction": 0.2, "min_steps_per_epoch": 10}
    assert steps_per_epoch({"head": head, "best_epoch": 3}, 2000) == 17


@pytest.mark.parametrize("split", ["pair", "example"])
@pytest.mark.parametrize("weights", ["best", "final"])
def test_clf_lgb_early_stopping_keeps_the_weights_it_names_under_either_split(split, weights):
    """Early stopping under each split and kept weights: every round evaluated is in the curves,
    'best' keeps the round of lowest validation loss and 'final' every round built, the rounds
    after the best included (LightGBM itself would drop them)."""
    head = fit("clf-lgb", protocol="embrm", split=split, weights=weights, n_estimators=400)
    rounds = len(head.curves_)
    assert rounds < 400, "early stopping did not fire on this task"
    val = np.array([r["val_loss"] for r in head.curves_])
    assert np.isfinite(val).all()
    first_lowest = int(np.argmin(val)) + 1
    assert rounds > first_lowest  # the patience rounds after the best were evaluated
    kept = head.booster_.current_iteration()
    if weights == "best":
        assert head.best_epoch_ == first_lowest == kept
    else:
        assert head.best_epoch_ == rounds == kept


def test_clf_lgb_scores_have_no_ties_where_probabilities_tie():
    """Nearly separable pointwise labels drive the log-odds past 17, where float32 rounds the
    probability to 1: today's notebook scoring ties the top responses of most test prompts, the
    raw margin ties none, under both protocols."""
    g = np.random.default_rng(0)
    x = g.standard_normal((2000, 4)).astype(np.float32)
    r = x @ np.array([1.0, -1.0, 0.5, 0.0])
    high, low = np.flatnonzero(r > 0.3), np.flatnonzero(r < -0.3)
    winner, loser = g.choice(high, size=1500), g.choice(low, size=1500)
    swap = g.random(1500) < 0.5
    data = PairData(x, np.where(swap, loser, winner), np.where(swap, winner, loser), ~swap * 1)
    test = g.standard_normal((30, 20, 4)).astype(np.float32)

    def tied_prompts(scores: np.ndarray) -> int:
        return int(((scores == scores.max(axis=1, keepdims=True)).sum(axis=1) > 1).sum())

    for protocol in PROTOCOLS:
        head = make_head("clf-lgb", seed=0, threads=1, protocol=protocol).fit(data)
        flat = test.reshape(-1, 4)
        probability = head.booster_.predict(flat, num_iteration=head.best_epoch_)
        assert tied_prompts(probability.astype(np.float32).reshape(30, 20)) >= 10, protocol
        assert tied_prompts(head.predict_reward(test)) == 0, protocol


def test_the_protocol_parameter_lists_the_presets():
    from embrm.heads.params import SHARED_PARAMS

    assert SHARED_PARAMS["protocol"]["enum"] == list(PROTOCOLS)
