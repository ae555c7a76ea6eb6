"""Reward-model heads: learning, the estimator contract, persistence, determinism, bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, TINY_CONFIG, assert_agree_across_threads, deep_merge
from embrm.errors import ConfigError, DataError
from embrm.heads import HEAD_TYPES, load_head, make_head
from embrm.heads import base as heads_base
from embrm.heads import device as heads_device
from embrm.heads import predict as heads_predict
from embrm.heads.base import PairData, RewardHead
from embrm.heads.ensemble import AGGREGATIONS, Ensemble, combine

DIM = 8
CURVE_COLUMNS = {"epoch", "train_loss", "val_loss", "val_accuracy"}
# Generic tests run over the registry; each head type brings its own fast settings (TEST_PARAMS),
# saved files, devices and defined curve columns. The architecture test uses the defaults.
CUDA_HEADS = [t for t, cls in HEAD_TYPES.items() if "cuda" in cls.DEVICES]


def fast(head_type: str) -> dict:
    """The head type's own settings for a fit of about a second on the clean task."""
    return dict(HEAD_TYPES[head_type].TEST_PARAMS)


def golden_reward(x: np.ndarray) -> np.ndarray:
    """Mostly linear with a smooth bend: every head type can rank it well."""
    w = np.linspace(1.0, -0.5, x.shape[-1])
    return x @ w + 0.3 * np.tanh(x[..., 0] * x[..., 1])


def clean_task(pairs: int = 1500, rows: int = 1200, seed: int = 0):
    """Noise-free labels from the golden order: a separable preference task."""
    g = np.random.default_rng(seed)
    x = g.standard_normal((rows, DIM)).astype(np.float32)
    r = golden_reward(x)
    a = g.integers(rows, size=pairs)
    b = (a + g.integers(1, rows, size=pairs)) % rows
    label = (r[a] > r[b]).astype(np.uint8)
    test = g.standard_normal((20, 25, DIM)).astype(np.float32)
    return PairData(x, a, b, label, source="train.npy", pairs_source="pairs.npz"), test


@pytest.fixture(scope="module")
def task():
    return clean_task()


@pytest.fixture(scope="module")
def fitted(task):
    """One fitted head per type (shared by the read-only tests below)."""
    data, _ = task
    return {t: make_head(t, seed=3, threads=1, **fast(t)).fit(data) for t in HEAD_TYPES}


def mean_spearman(pred: np.ndarray, golden: np.ndarray) -> float:
    from embrm.evaluation_agreement import spearman_summary

    return spearman_summary(pred, golden)["spearman"]


# -- registry and config ----------------------------------------------------------------------
@pytest.mark.parametrize("head_type", list(HEAD_TYPES))
def test_registry_entry_declares_what_the_generic_tests_need(head_type):
    cls = HEAD_TYPES[head_type]
    assert issubclass(cls, RewardHead) and cls.type_name == head_type
    assert cls.defaults, head_type
    cls.check_params(cls.TEST_PARAMS, f"{head_type}.TEST_PARAMS")
    assert set(cls.PARAMS) <= set(cls.defaults), "PARAMS refines declared parameters only"
    assert cls.SAVED_FILES and "head.json" not in cls.SAVED_FILES
    assert "cpu" in cls.DEVICES and set(cls.DEVICES) <= set(heads_device.DEVICES) - {"auto"}
    assert set(cls.CURVES) <= CURVE_COLUMNS - {"epoch"}
    # Every parameter has a schema fragment its own default satisfies.
    import jsonschema

    schema = cls.param_schema()
    assert set(schema) == set(cls.defaults)
    for key, default in cls.defaults.items():
        jsonschema.validate(default, schema[key])


def just_outside(fragment: dict, default):
    """A value of the default's type that the declared bounds refuse, or None."""
    if "enum" in fragment:
        return "not-a-choice"
    step = 1 if isinstance(default, int) else 0.5
    for key, sign in (("minimum", -1), ("exclusiveMinimum", 0), ("maximum", 1)):
        if key in fragment:
            return type(default)(fragment[key] + sign * step)
    if "exclusiveMaximum" in fragment:
        return type(default)(fragment["exclusiveMaximum"])
    return None


@pytest.mark.parametrize("head_type", list(HEAD_TYPES))
def test_one_declaration_checks_the_config_and_direct_construction_alike(head_type):
    """Every declared bound is enforced by the head type's declaration alone: the config (through
    embrm plan's Plan) and the head's constructor refuse the same value with the same message,
    and the config schema carries no bound of its own."""
    from embrm.config import Plan
    from embrm.heads.params import BOUNDS

    cls = HEAD_TYPES[head_type]
    bounded = {k: f for k, f in cls.PARAMS.items() if just_outside(f, cls.defaults[k]) is not None}
    assert bounded, f"{head_type} declares no bounds"
    for key, fragment in bounded.items():
        bad = just_outside(fragment, cls.defaults[key])
        with pytest.raises(ConfigError) as direct:
            make_head(head_type, **{key: bad})
        config = deep_merge(TINY_CONFIG, {})
        config["heads"] = {head_type: {"params": {key: bad}}}
        config["grid"]["heads"] = [head_type]
        with pytest.raises(ConfigError) as planned:
            Plan(config)
        assert str(planned.value) == str(direct.value), key
        assert str(direct.value).startswith(f"config key 'heads.{head_type}.params.{key}': ")
        # The schema's fragment holds the type and the words, not the bounds.
        schema = cls.param_schema()[key]
        assert not set(schema) & set(BOUNDS)


def test_declared_bounds_read_as_the_messages_say():
    from embrm.heads.params import expected

    assert expected({"minimum": 2}) == "at least 2"
    assert expected({"minimum": 0}) == "non-negative"
    assert expected({"exclusiveMinimum": 0}) == "positive"
    assert expected({"exclusiveMinimum": 0, "maximum": 1}) == "in (0, 1]"
    assert expected({"minimum": 0, "exclusiveMaximum": 1}) == "in [0, 1)"
    assert expected({"enum": ["a", None]}) == "one of ['a'] (or null)"
    with pytest.raises(
        ConfigError, match=r"'heads\.clf-lgb\.params\.num_leaves': must be at least 2"
    ):
        make_head("clf-lgb", num_leaves=1)
    make_head("clf-lgb", num_leaves=2)  # the bound itself is allowed


def test_schema_heads_block_is_derived_from_the_registry():
    from embrm.heads import heads_schema
    from embrm.schema import load_schema

    block = load_schema()["properties"]["heads"]
    assert block == heads_schema()
    entry = block["additionalProperties"]
    assert entry["properties"]["type"]["enum"] == list(HEAD_TYPES)
    assert set(block["properties"]) == set(HEAD_TYPES)  # a head named after its type
    per_type = {
        rule["if"]["properties"]["type"]["const"]: rule["then"]["properties"]["params"]
        for rule in entry["allOf"]
    }
    assert set(per_type) == set(HEAD_TYPES)
    for name, cls in HEAD_TYPES.items():
        params = per_type[name]
        assert params["propertyNames"]["enum"] == sorted(cls.defaults)
        assert set(params["properties"]) == set(cls.defaults)
        implicit = block["properties"][name]["allOf"][-1]
        assert implicit["if"] == {"not": {"required": ["type"]}}
        assert implicit["then"]["properties"]["params"] == params
    # Nothing in the YAML file repeats the registry.
    text = (REPO / "workflow/schemas/config.schema.yaml").read_text()
    assert not any(f"[{name}," in text or f", {name}]" in text for name in HEAD_TYPES)


def fresh_interpreter_output(code: str) -> str:
    """What ``code`` prints in a new interpreter that has only embrm on its path."""
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO / "workflow")},
    )
    return out.stdout.strip()


def test_importing_heads_loads_neither_torch_nor_lightgbm():
    code = "import sys, embrm.heads, embrm.heads.ensemble; print(sorted({'torch', 'lightgbm'} & set(sys.modules)))"
    assert fresh_interpreter_output(code) == "[]"


def test_config_accepts_every_head_type_and_checks_params():
    from embrm.config import validate

    heads = {f"my-{t}": {"type": t, "members": 2, "params": {}} for t in HEAD_TYPES}
    config = deep_merge(TINY_CONFIG, {"heads": heads})
    config["grid"]["heads"] = sorted(heads)
    validated = validate(config)
    assert validated["heads"]["my-clf-linear"]["members"] == 2
    for params, key in [
        ({"hidden": "big"}, "heads.h.params.hidden"),
        ({"lr": -1.0}, "heads.h.params.lr"),
        ({"batch_size": 1.5}, "heads.h.params.batch_size"),
        ({"val_fraction": 1.0}, "heads.h.params.val_fraction"),
        ({"patience": True}, "heads.h.params.patience"),
    ]:
        bad = deep_merge(TINY_CONFIG, {"heads": {"h": {"type": "bt-mlp", "params": params}}})
        with pytest.raises(ConfigError, match=f"config key '{key}'"):
            validate(bad)
    bad = deep_merge(
        TINY_CONFIG, {"heads": {"h": {"type": "clf-lgb", "params": {"feature_fraction": 0}}}}
    )
    with pytest.raises(ConfigError, match=r"heads\.h\.params\.feature_fraction"):
        validate(bad)
    bad = deep_merge(
        TINY_CONFIG, {"heads": {"h": {"type": "bt-linear", "params": {"hidden": [4]}}}}
    )
    with pytest.raises(ConfigError, match=r"heads\.h\.params': 'hidden' is not one of"):
        validate(bad)


@pytest.mark.parametrize(
    ("head", "message"),
    [
        ({"type": "bt-mlp", "params": {"protocol": "Study"}}, r"params\.protocol'.*'Study'"),
        ({"type": "bt-linear", "params": {"protocol": "study"}}, r"params': 'protocol' is not one of"),
        ({"params": {"protocol": "study"}}, r"params': 'protocol' is not one of"),
        ({"type": "clf-mlp", "params": {"protocol": "study", "weight_decay": 0.1}},
         r"params\.weight_decay': is not used by protocol 'study'"),
        ({"type": "clf-lgb", "params": {"protocol": "study", "num_leaves": 31}},
         r"params\.num_leaves': is not used by protocol 'study'"),
        ({"type": "bt-mlp", "params": {"protocol": "study", "val_fraction": 0.0}},
         r"params\.val_fraction': must be positive under protocol 'study'"),
        ({"type": "bt-mlp", "params": {"min_steps_per_epoch": 0}},
         r"params\.min_steps_per_epoch': must be positive"),
    ],
)  # fmt: skip
def test_protocol_is_a_per_head_choice_checked_per_type(head, message):
    from embrm.config import validate

    heads = {
        "bt-mlp": {"params": {"protocol": "study"}},
        "clf-mlp": {"params": {"protocol": "embrm"}},
        "clf-lgb": {"params": {"protocol": "study"}},
    }
    config = deep_merge(TINY_CONFIG, {})
    config["heads"] = heads
    config["grid"]["heads"] = sorted(heads)
    assert validate(config)["heads"]["bt-mlp"]["params"]["protocol"] == "study"
    bad = deep_merge(TINY_CONFIG, {"heads": {"bt-linear": head}})
    with pytest.raises(ConfigError, match=message):
        validate(bad)


def test_shipped_study_protocol_config_is_the_default_grid_under_protocol_study():
    from embrm.config import load

    default, study = load(REPO / "config.yaml"), load(REPO / "configs/study-protocol.yaml")
    for key in ("worlds", "annotators", "annotation", "grid", "extra_grids", "evaluation"):
        assert study[key] == default[key], key
    assert set(study["heads"]) == set(default["heads"])
    assert all(h["params"]["protocol"] == "study" for h in study["heads"].values())
    assert all(h.get("params", {}).get("protocol", "embrm") == "embrm"
               for h in default["heads"].values())  # fmt: skip


# -- learning and the estimator contract ------------------------------------------------------
@pytest.mark.parametrize("head_type", list(HEAD_TYPES))
def test_head_learns_a_separable_reward(head_type, task, fitted):
    _, test = task
    head = fitted[head_type]
    rho = mean_spearman(head.predict_reward(test), golden_reward(test))
    assert rho > 0.9, f"{head_type}: mean per-prompt Spearman {rho:.3f}"
    # Curves: one row per epoch (boosting round / L-BFGS iteration); the columns the head
    # declares are finite (a closed-form head may leave its losses undefined).
    assert head.curves_ and [row["epoch"] for row in head.curves_] == list(
        range(1, len(head.curves_) + 1)
    )
    for row in head.curves_:
        assert set(row) == CURVE_COLUMNS
        assert all(np.isfinite(row[column]) for column in head.CURVES), row
    assert 1 <= head.best_epoch_ <= len(head.curves_)
    if "val_accuracy" in head.CURVES:
        assert head.curves_[head.best_epoch_ - 1]["val_accuracy"] > 0.85
    assert head.device_ == "cpu"


@pytest.mark.parametrize("head_type", list(HEAD_TYPES))
def test_fit_returns_self_and_params_round_trip(head_type, task):
    data, _ = task
    small = PairData(data.embeddings, data.a[:200], data.b[:200], data.label[:200])
    params = {**fast(head_type)}
    head = make_head(head_type, seed=1, threads=1, **params)
    assert head.fit(small) is head
    logged = head.get_params()
    assert logged["type"] == head_type and logged["seed"] == 1 and logged["device"] == "auto"
    # A parameter left at None (a training component left to its protocol) is not logged.
    assert {k: logged.get(k) for k in head.defaults} == {**head.defaults, **params}
    json.dumps(logged)  # loggable as it is


@pytest.mark.parametrize("head_type", list(HEAD_TYPES))
def test_saved_head_reloads_and_predicts_identically(head_type, task, fitted, tmp_path):
    _, test = task
    head = fitted[head_type]
    head.save(tmp_path / "model")
    files = sorted(p.name for p in (tmp_path / "model").iterdir())
    assert files == sorted(["head.json", *head.SAVED_FILES])  # as declared: no stray pickle
    again = load_head(tmp_path / "model", threads=1)  # as trained: the same bits
    assert type(again) is type(head) and again.get_params() == head.get_params()
    assert np.array_equal(again.predict_reward(test), head.predict_reward(test))
    # A memory-mapped test file gives the same predictions as the in-memory array.
    np.save(tmp_path / "test.npy", test)
    mapped = np.load(tmp_path / "test.npy", mmap_mode="r")
    assert np.array_equal(again.predict_reward(mapped), head.predict_reward(test))


def test_torch_weights_load_with_weights_only(fitted, tmp_path):
    import torch
    from safetensors.torch import load_file

    fitted["bt-mlp"].save(tmp_path)
    state = load_file(str(tmp_path / "model.safetensors"))
    torch.save(state, tmp_path / "state.pt")
    assert torch.load(tmp_path / "state.pt", weights_only=True).keys() == state.keys()


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_adam_matches_torch_adam_bit_for_bit(weight_decay):
    import torch
    from embrm.heads.torch_common import Adam, build_mlp

    torch.manual_seed(0)
    ours, theirs = build_mlp(8, [16, 4]), build_mlp(8, [16, 4])
    theirs.load_state_dict(ours.state_dict())
    optimizers = (
        Adam(ours.parameters(), lr=1e-3, weight_decay=weight_decay),
        torch.optim.Adam(theirs.parameters(), lr=1e-3, weight_decay=weight_decay, foreach=True),
    )
    x = torch.randn(64, 8)
    for _ in range(25):
        for model, optimizer in zip((ours, theirs), optimizers, strict=True):
            optimizer.zero_grad()
            model(x).pow(2).mean().backward()
            optimizer.step()
    pairs = list(zip(ours.parameters(), theirs.parameters(), strict=True))
    assert all(torch.equal(a, b) for a, b in pairs)
    assert not torch.equal(pairs[0][0], build_mlp(8, [16, 4]).state_dict()["0.weight"])


def test_mlp_fit_does_not_import_torch_compile_machinery():
    """torch._dynamo costs about 3 s of start-up per training job."""
    code = (
        "import sys, numpy as np\n"
        "from embrm.heads import make_head\n"
        "from embrm.heads.base import PairData\n"
        "x = np.random.default_rng(0).standard_normal((50, 4)).astype(np.float32)\n"
        "a, b = np.arange(0, 40), np.arange(10, 50)\n"
        "data = PairData(x, a, b, (x[a, 0] > x[b, 0]).astype(np.uint8))\n"
        "make_head('bt-mlp', seed=0, threads=1, hidden=[8], max_epochs=2).fit(data)\n"
        "print(sorted(m for m in sys.modules if m.startswith(('torch._dynamo', 'torch._inductor'))))"
    )
    assert fresh_interpreter_output(code) == "[]"


def test_default_mlp_architecture_and_thread_determinism():
    """The study's D → 1024 → 512 → 1 network, one short epoch, at 1 and 2 threads."""
    g = np.random.default_rng(5)
    x = g.standard_normal((600, 96)).astype(np.float32)
    r = x[:, :8].sum(axis=1)
    a = g.integers(600, size=800)
    b = (a + g.integers(1, 600, size=800)) % 600
    data = PairData(x, a, b, (r[a] > r[b]).astype(np.uint8))
    predictions = []
    for threads in (1, 2, 2):
        head = make_head("bt-mlp", seed=0, threads=threads, max_epochs=1).fit(data)
        predictions.append(head.predict_reward(x))
    shapes = [tuple(p.shape) for p in head.model_.parameters()]
    assert shapes == [(1024, 96), (1024,), (512, 1024), (512,), (1, 512), (1,)]
    assert head.params["batch_size"] == 10_240 and head.params["lr"] == 1e-3
    assert np.array_equal(predictions[1], predictions[2])  # same threads: the same bits
    assert_agree_across_threads(predictions[0], predictions[1])


@pytest.mark.parametrize("head_type", list(HEAD_TYPES))
def test_same_seed_and_threads_same_bits_other_threads_within_tolerance(head_type, task, fitted):
    data, test = task
    twin = make_head(head_type, seed=3, threads=1, **fast(head_type)).fit(data)
    assert np.array_equal(twin.predict_reward(test), fitted[head_type].predict_reward(test))
    np.testing.assert_equal(twin.curves_, fitted[head_type].curves_)  # NaN equals NaN here
    other = make_head(head_type, seed=3, threads=2, **fast(head_type)).fit(data)
    assert_agree_across_threads(fitted[head_type].predict_reward(test), other.predict_reward(test))
    # Losses agree over the epochs both ran (a tolerance-based stop may land one step apart;
    # accuracies count pairs, which a rounding can flip).
    common = min(len(other.curves_), len(fitted[head_type].curves_))
    for key in ("train_loss", "val_loss"):
        assert_agree_across_threads(
            [r[key] for r in fitted[head_type].curves_[:common]],
            [r[key] for r in other.curves_[:common]],
            key,
        )


def test_different_seed_gives_a_different_mlp(task, fitted):
    data, test = task
    other = make_head("bt-mlp", seed=4, threads=1, **fast("bt-mlp")).fit(data)
    assert not np.array_equal(other.predict_reward(test), fitted["bt-mlp"].predict_reward(test))


def test_bt_objective_ignores_presentation_order(task, fitted):
    """Each pair is fed once: flipping sides and labels gives the same model up to rounding."""
    data, test = task
    flipped = PairData(data.embeddings, data.b, data.a, 1 - data.label)
    head = make_head("bt-mlp", seed=3, threads=1, **fast("bt-mlp")).fit(flipped)
    original = fitted["bt-mlp"]
    assert len(head.curves_) == len(original.curves_)
    # BT rewards are defined up to a constant, and rounding moves the constant a little.
    flipped_r, original_r = head.predict_reward(test), original.predict_reward(test)
    np.testing.assert_allclose(
        flipped_r - flipped_r.mean(), original_r - original_r.mean(), rtol=1e-3, atol=1e-3
    )


def test_early_stopping_keeps_the_best_epoch(task):
    data, test = task
    params = {**fast("clf-mlp"), "lr": 3e-2, "max_epochs": 20, "patience": 2}
    head = make_head("clf-mlp", seed=2, threads=1, **params).fit(data)
    epochs = len(head.curves_)
    losses = [row["val_loss"] for row in head.curves_]
    assert head.best_epoch_ == int(np.argmin(losses)) + 1
    assert epochs == head.params["max_epochs"] or epochs == head.best_epoch_ + 2
    # Training exactly up to the best epoch reproduces the kept weights bit for bit.
    short = make_head("clf-mlp", seed=2, threads=1, **{**params, "max_epochs": head.best_epoch_})
    assert np.array_equal(short.fit(data).predict_reward(test), head.predict_reward(test))


def test_clf_linear_is_l2_logistic_regression(task, fitted):
    """Matches scikit-learn's logistic regression on standardized features (C = 1 / (l2 · n))."""
    from sklearn.linear_model import LogisticRegression

    data, test = task
    head = make_head("clf-linear", seed=3, threads=1, tolerance=1e-10, max_iter=500).fit(data)
    train_pairs, _ = data.split(0.2, np.random.default_rng(3))
    won = data.label[train_pairs] > 0
    winners = np.where(won, data.a[train_pairs], data.b[train_pairs])
    losers = np.where(won, data.b[train_pairs], data.a[train_pairs])
    x = data.embeddings[np.concatenate([winners, losers])].astype(np.float64)
    y = np.repeat([1, 0], train_pairs.size)
    used = np.unique(np.concatenate([data.a[train_pairs], data.b[train_pairs]]))
    mean, std = data.embeddings[used].mean(0), data.embeddings[used].std(0)
    reference = LogisticRegression(C=1 / (head.params["l2"] * y.size), tol=1e-10, max_iter=1000)
    reference.fit((x - mean) / std, y)
    expected = reference.decision_function((test.reshape(-1, DIM) - mean) / std)
    np.testing.assert_allclose(head.predict_reward(test).ravel(), expected, rtol=2e-3, atol=2e-3)


def test_bt_linear_reward_has_no_intercept(fitted):
    assert fitted["bt-linear"].model_[0].bias.item() == 0.0


def test_lgb_uses_the_best_round_and_saves_only_it(fitted, tmp_path):
    head = fitted["clf-lgb"]
    losses = [row["val_loss"] for row in head.curves_]
    assert head.best_epoch_ == int(np.argmin(losses)) + 1
    head.save(tmp_path)
    assert load_head(tmp_path).booster_.current_iteration() == head.best_epoch_


# -- ensembles --------------------------------------------------------------------------------
def test_combine_aggregations():
    stacked = np.array([[[1.0, 5.0]], [[3.0, 2.0]], [[2.0, 2.0]]])
    assert np.array_equal(combine(stacked, "mean"), [[2.0, 3.0]])
    assert np.array_equal(combine(stacked, "min"), [[1.0, 2.0]])
    assert np.array_equal(combine(stacked, "first"), [[1.0, 5.0]])
    assert AGGREGATIONS == ("mean", "min", "first")
    with pytest.raises(ValueError, match="unknown aggregation"):
        combine(stacked, "max")


@pytest.mark.parametrize("head_type", list(HEAD_TYPES))
def test_ensemble_members_predict_stack_and_reload(head_type, task, tmp_path):
    data, test = task
    ensemble = Ensemble(
        head_type, members=2, params=fast(head_type), seed=7, device="cpu", threads=1
    ).fit(data)
    stacked = ensemble.predict_reward(test, source="test.npy")
    assert stacked.shape == (2, *test.shape[:-1])
    singles = np.stack([m.predict_reward(test) for m in ensemble.members])
    assert np.array_equal(stacked, singles)
    # Members have their own seeds (initialization, batches and validation split differ).
    assert ensemble.members[0].seed != ensemble.members[1].seed
    assert not np.array_equal(stacked[0], stacked[1])
    for how in AGGREGATIONS:
        assert np.array_equal(ensemble.predict(test, how), combine(stacked, how))
    # Member 0 of an ensemble is the model a one-member run with the same seed trains.
    one = Ensemble(head_type, members=1, params=fast(head_type), seed=7, device="cpu").fit(data)
    assert np.array_equal(one.predict_reward(test)[0], stacked[0])
    params = ensemble.get_params()
    assert params["members"] == 2 and params["seed"] == 7 and params["type"] == head_type
    assert {row["member"] for row in ensemble.curves} == {0, 1}
    ensemble.save(tmp_path / "model")
    again = Ensemble.load(tmp_path / "model", threads=1)
    assert np.array_equal(again.predict_reward(test), stacked)


def test_ensemble_rejects_bad_member_count():
    with pytest.raises(ConfigError, match="members"):
        Ensemble("bt-mlp", members=0)


# -- bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize("head_type", list(HEAD_TYPES))
def test_nan_in_training_embeddings_names_the_file_and_row(head_type, task):
    data, _ = task
    x = data.embeddings.copy()
    x[data.a[5], 3] = np.nan
    bad = PairData(x, data.a, data.b, data.label, source="/data/train_embeddings.npy")
    with pytest.raises(
        DataError, match=rf"/data/train_embeddings.npy: .*NaN or inf .*row {data.a[5]}"
    ):
        make_head(head_type, **fast(head_type)).fit(bad)


def test_inf_in_test_embeddings_names_the_file(fitted, task):
    _, test = task
    bad = test.copy()
    bad[3, 4, 0] = np.inf
    for head in fitted.values():
        with pytest.raises(DataError, match=r"/data/test_embeddings.npy: .*NaN or inf .*row 79\)"):
            head.predict_reward(bad, source="/data/test_embeddings.npy")


def test_dimension_mismatch_names_the_file(fitted):
    for head in fitted.values():
        with pytest.raises(
            DataError,
            match=r"/data/test_embeddings.npy: embedding dimension 9 does not match the 8",
        ):
            head.predict_reward(np.zeros((4, 9), np.float32), source="/data/test_embeddings.npy")
    ensemble = Ensemble("clf-linear")
    ensemble.members[0] = fitted["clf-linear"]
    with pytest.raises(DataError, match=r"x\.npy: embedding dimension 9"):
        ensemble.predict_reward(np.zeros((4, 9), np.float32), source="x.npy")


@pytest.mark.parametrize(
    ("a", "b", "label", "message"),
    [
        ([], [], [], r"pairs.npz: no annotated pairs to train on \(empty training set\)"),
        ([0, 1], [1], [1, 0], "pairs.npz: 2 first responses, 1 second responses and 2 labels"),
        (
            [0, 50],
            [1, 2],
            [1, 0],
            r"pairs.npz: pair index 'a' out of range \[0, 50\] for train.npy with 50",
        ),
        ([0, 1], [1, 2], [1, 2], "pairs.npz: labels must be 0 or 1"),
        ([0.0, 1.0], [1, 2], [1, 0], "pairs.npz: pair indices 'a' are not integers"),
    ],
)
def test_bad_pairs_are_rejected_naming_the_file(a, b, label, message):
    x = np.zeros((50, 4), np.float32)
    with pytest.raises(DataError, match=message):
        PairData(
            x,
            np.array(a, dtype=np.asarray(a).dtype if a else np.int64),
            np.array(b, dtype=np.int64),
            np.array(label),
            source="train.npy",
            pairs_source="pairs.npz",
        )


def test_unknown_params_device_and_threads_are_config_errors():
    with pytest.raises(
        ConfigError, match=r"heads.bt-mlp.params': unknown hyperparameters \['layers'\]"
    ):
        make_head("bt-mlp", layers=3)
    with pytest.raises(ConfigError, match=r"config key 'training\.device': unknown device 'gpu'"):
        make_head("clf-mlp", device="gpu")
    with pytest.raises(ConfigError, match=r"config key 'training\.threads'"):
        make_head("clf-lgb", threads=0)
    with pytest.raises(ConfigError, match=r"config key 'heads\.\*\.type': unknown head type 'svm'"):
        make_head("svm")


@pytest.mark.parametrize("head_type", CUDA_HEADS)
def test_cuda_without_a_gpu_is_a_config_error(head_type, task, monkeypatch):
    data, _ = task
    monkeypatch.setattr(heads_device, "cuda_available", lambda: False)
    head = make_head(head_type, device="cuda", **fast(head_type))
    with pytest.raises(ConfigError, match=r"config key 'training\.device': 'cuda' requested but"):
        head.fit(data)


def test_lgb_trains_on_the_cpu_but_checks_a_requested_gpu(task, monkeypatch):
    """clf-lgb declares only the CPU; a config asking for a missing GPU still fails as for any
    head (docs/heads.md, Configuration)."""
    data, _ = task
    assert HEAD_TYPES["clf-lgb"].DEVICES == ("cpu",)
    monkeypatch.setattr(heads_device, "cuda_available", lambda: False)
    head = make_head("clf-lgb", device="cuda", **fast("clf-lgb"))
    with pytest.raises(ConfigError, match=r"config key 'training\.device': 'cuda' requested but"):
        head.fit(data)


def test_auto_device_picks_cuda_only_when_visible(monkeypatch):
    monkeypatch.setattr(heads_device, "cuda_available", lambda: True)
    assert heads_device.resolve_device("auto") == "cuda"
    assert heads_device.resolve_device("cpu") == "cpu"
    monkeypatch.setattr(heads_device, "cuda_available", lambda: False)
    assert heads_device.resolve_device("auto") == "cpu"


def test_load_rejects_a_directory_without_a_head(tmp_path):
    with pytest.raises(DataError, match=r"head\.json: file not found"):
        load_head(tmp_path)


# -- the train stage --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stage_world(tmp_path_factory):
    from embrm.io import write_npz
    from embrm.sources import build_world

    root = tmp_path_factory.mktemp("stage")
    spec = {
        "source": "synthetic",
        "kind": "gaussian",
        "train_prompts": 150,
        "train_responses": 4,
        "test_prompts": 10,
        "test_responses": 20,
        "dim": 8,
        "latent_dim": 4,
        "tau": 0.5,
        "sigma": 1.0,
        "sigma_spread": 0.0,
        "noise": 0.05,
        "nonlinearity": 0.0,
        "dtype": "float32",
        "seed": 0,
    }
    build_world(spec, root / "world")
    g = np.random.default_rng(0)
    a = g.integers(600, size=400)
    b = (a + 1 + g.integers(599, size=400)) % 600
    write_npz(root / "pairs.npz", a=a, b=b, heldout_a=a[:5], heldout_b=b[:5])
    write_npz(root / "labels.npz", label=(a > b).astype(np.uint8), heldout_label=np.ones(5))
    return root


def run_train(root, out, head_spec, world=None):
    from embrm import stages

    stages.train(
        world or root / "world",
        root / "pairs.npz",
        root / "labels.npz",
        head_spec,
        seed=0,
        threads=1,
        device="cpu",
        model_dir=out / "model",
        predictions_out=out / "predictions.npy",
        curves_out=out / "curves.csv",
        info_out=out / "train.json",
    )


def test_train_stage_writes_model_predictions_curves_and_info(stage_world, tmp_path):
    import pandas as pd

    spec = {"type": "clf-linear", "members": 2, "params": {}}
    run_train(stage_world, tmp_path, spec)
    predictions = np.load(tmp_path / "predictions.npy")
    assert predictions.shape == (2, 10, 20) and predictions.dtype == np.float32
    curves = pd.read_csv(tmp_path / "curves.csv")
    assert list(curves.columns) == ["member", "epoch", "train_loss", "val_loss", "val_accuracy"]
    assert set(curves["member"]) == {0, 1}
    info = json.loads((tmp_path / "train.json").read_text())
    assert info["head"]["members"] == 2 and info["head"]["type"] == "clf-linear"
    assert info["device"] == "cpu" and len(info["best_epoch"]) == 2
    reloaded = Ensemble.load(tmp_path / "model")
    test = np.load(stage_world / "world" / "test_embeddings.npy", mmap_mode="r")
    assert np.array_equal(reloaded.predict_reward(test), predictions)


def test_train_stage_bad_test_embeddings_fail_without_output(stage_world, tmp_path):
    import shutil

    world = tmp_path / "world"
    shutil.copytree(stage_world / "world", world)
    test = np.load(world / "test_embeddings.npy")
    test[2, 3, 1] = np.nan
    np.save(world / "test_embeddings.npy", test)
    out = tmp_path / "out"
    with pytest.raises(
        DataError,
        match=r"test_embeddings.npy: embeddings contain NaN or inf \(first at flat row 43\)",
    ):
        run_train(stage_world, out, {"type": "bt-linear", "members": 1, "params": {}}, world=world)
    assert not out.exists() or not any(out.iterdir())


def test_cli_reports_an_empty_training_set(stage_world, tmp_path):
    from embrm.io import write_npz

    empty = np.zeros(0, dtype=np.int64)
    write_npz(tmp_path / "pairs.npz", a=empty, b=empty, heldout_a=empty, heldout_b=empty)
    write_npz(tmp_path / "labels.npz", label=np.zeros(0, np.uint8), heldout_label=np.zeros(0))
    command = [
        sys.executable, "-m", "embrm", "train", "--world", str(stage_world / "world"),
        "--pairs", str(tmp_path / "pairs.npz"), "--labels", str(tmp_path / "labels.npz"),
        "--head", json.dumps({"type": "clf-lgb", "members": 1, "params": {}}), "--seed", "0",
        "--model-dir", str(tmp_path / "model"), "--predictions", str(tmp_path / "p.npy"),
        "--curves", str(tmp_path / "c.csv"), "--info", str(tmp_path / "i.json"),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2
    assert f"error: {tmp_path / 'pairs.npz'}" in result.stderr
    assert "no annotated pairs to train on (empty training set)" in result.stderr
    assert not (tmp_path / "model").exists() and not (tmp_path / "p.npy").exists()


# -- scoring many models in one pass (training.scoring: cell) ---------------------------------
def test_predict_together_reads_each_chunk_once_for_every_head(fitted, task, monkeypatch):
    _, test = task
    heads = list(fitted.values())
    blocks = []
    real = heads_predict.iter_chunks

    def counting(*args, **kwargs):
        for start, block in real(*args, **kwargs):
            blocks.append(start)
            yield start, block

    monkeypatch.setattr(heads_predict, "iter_chunks", counting)
    monkeypatch.setattr(heads_predict, "PREDICT_CHUNK_ROWS", (64, 64))
    seconds: list[float] = []
    together = heads_predict.predict_together(heads, test, source="test.npy", seconds=seconds)
    # 500 rows in chunks of 64: one pass of 8 chunks serves all heads.
    assert blocks == list(range(0, 500, 64))
    assert together.shape == (len(heads), *test.shape[:-1])
    for row, head in zip(together, heads, strict=True):
        assert np.array_equal(row, head.predict_reward(test))
    assert len(seconds) == len(heads) and all(s >= 0 for s in seconds)


def test_predict_together_refuses_heads_of_different_dimensions(fitted):
    wide = make_head("clf-linear")
    g = np.random.default_rng(0)
    x = g.standard_normal((200, DIM + 1)).astype(np.float32)
    a, b = np.arange(0, 200, 2), np.arange(1, 200, 2)
    wide.fit(PairData(x, a, b, (x[a, 0] > x[b, 0]).astype(np.uint8)))
    with pytest.raises(ValueError, match=r"different dimensions \(8 and 9\)"):
        heads_base.predict_together([fitted["clf-linear"], wide], np.zeros((3, DIM), np.float32))


def test_score_stage_writes_each_runs_own_predictions(stage_world, tmp_path):
    from embrm import stages

    specs = {
        "bt/clf-linear": {"type": "clf-linear", "members": 2, "params": {}},
        "bt/bt-mlp": {"type": "bt-mlp", "members": 1, "params": fast("bt-mlp")},
        "pool/clf-lgb": {"type": "clf-lgb", "members": 1, "params": fast("clf-lgb")},
    }
    for name, spec in specs.items():
        run_train(stage_world, tmp_path / name, spec)
    # training.scoring: cell trains without scoring: no predictions, no scoring time.
    from embrm.io import read_json

    stages.train(
        stage_world / "world", stage_world / "pairs.npz", stage_world / "labels.npz",
        specs["bt/bt-mlp"], seed=0, threads=1, device="cpu", model_dir=tmp_path / "fit/model",
        predictions_out=None, curves_out=tmp_path / "fit/curves.csv",
        info_out=tmp_path / "fit/train.json",
    )  # fmt: skip
    assert not list((tmp_path / "fit").glob("*.npy"))
    assert read_json(tmp_path / "fit/train.json")["predict_seconds"] is None

    models = {name: str(tmp_path / name / "model") for name in specs}
    stages.score(stage_world / "world", models, tmp_path / "scores", threads=1, device="cpu")
    for name in specs:
        shared = tmp_path / "scores" / f"{name}.npy"
        own = tmp_path / name / "predictions.npy"
        assert shared.read_bytes() == own.read_bytes(), name
    scoring = read_json(tmp_path / "scores" / "scoring.json")
    assert scoring["models"] == 3 and scoring["heads"] == 4
    assert scoring["test_embeddings"] == 200
    assert scoring["runs"]["bt/clf-linear"]["members"] == 2
    assert scoring["runs"]["pool/clf-lgb"]["predictions"] == "pool/clf-lgb.npy"
    spent = sum(run["predict_seconds"] for run in scoring["runs"].values())
    assert scoring["read_seconds"] == pytest.approx(scoring["pass_seconds"] - spent)
    entry = stages.shared_scoring(tmp_path / "scores" / "scoring.json", "bt/bt-mlp")
    assert entry["scoring"]["models"] == 3
    assert entry["predict_seconds"] == scoring["runs"]["bt/bt-mlp"]["predict_seconds"]
    with pytest.raises(DataError, match=r"scoring.json: no entry for run 'bt/nope'"):
        stages.shared_scoring(tmp_path / "scores" / "scoring.json", "bt/nope")


def test_score_stage_rejects_a_model_of_another_dimension(stage_world, tmp_path):
    from embrm import stages

    wide = Ensemble("clf-linear", seed=0)
    g = np.random.default_rng(0)
    x = g.standard_normal((100, 5)).astype(np.float32)
    a, b = np.arange(0, 100, 2), np.arange(1, 100, 2)
    wide.fit(PairData(x, a, b, (x[a, 0] > x[b, 0]).astype(np.uint8)))
    wide.save(tmp_path / "wide")
    run_train(stage_world, tmp_path / "ok", {"type": "clf-linear", "members": 1, "params": {}})
    models = {"a/ok": str(tmp_path / "ok" / "model"), "a/wide": str(tmp_path / "wide")}
    with pytest.raises(
        DataError, match=r"wide: model trained on dimension 5, but the test embeddings .* 8"
    ):
        stages.score(stage_world / "world", models, tmp_path / "scores", threads=1, device="cpu")
    assert not (tmp_path / "scores").exists()


@pytest.mark.parametrize(
    "argument", ["a/b", "=dir", "../x=dir", "a//b=dir", "/abs=dir", ".hidden=dir", "a/.b=dir"]
)
def test_score_cli_rejects_unsafe_model_names(argument):
    from embrm.cli import model_arguments

    with pytest.raises(ConfigError, match="--model: expected NAME=DIR"):
        model_arguments([argument])


def test_score_cli_names_map_to_model_directories():
    from embrm.cli import model_arguments

    with pytest.raises(ConfigError, match="given twice"):
        model_arguments(["a/b=x", "a/b=y"])
    assert model_arguments(["bt-beta1/clf-lgb=results/m", "x=y=z"]) == {
        "bt-beta1/clf-lgb": "results/m",
        "x": "y=z",
    }


@pytest.mark.parametrize("module", ["embrm", "embrm.cli"])
def test_score_cli_exits_2_naming_a_bad_model_argument(module, tmp_path):
    command = [sys.executable, "-m", module, "score", "--world", str(tmp_path),
               "--model", "../escape=dir", "--out", str(tmp_path / "scores")]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2, result.stderr
    assert "error: --model: expected NAME=DIR" in result.stderr
    assert not (tmp_path / "scores").exists()
