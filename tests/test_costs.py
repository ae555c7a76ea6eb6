"""The cost model: what each head type, world source and stage declares it needs, and the memory
and wall-time requests the rules make of it (embrm.costs, embrm.resources; docs/slurm.md)."""

from __future__ import annotations

import copy
import re
from dataclasses import replace
from types import SimpleNamespace
from typing import ClassVar

import numpy as np
import pytest
import yaml
from conftest import REPO, TINY_CONFIG, deep_merge
from embrm import heads
from embrm.config import Plan
from embrm.costs import Compute, HeadCost, Shapes, network_cost
from embrm.heads import HEAD_TYPES
from embrm.heads.base import DEFAULT_FIT_PASSES, RewardHead
from embrm.resources import (
    BASE_MB,
    DEFAULT_SHAPES,
    MEMORY_SAFETY,
    MIN_RUNTIME_MINUTES,
    Requests,
    mem_request,
    runtime_request,
    scoring_mb,
    world_shapes,
)
from embrm.sources import npy, synthetic

SHAPES = Shapes(train=(2000, 10, 64), test=(100, 500, 64))


def plan_of(override: dict | None = None) -> Plan:
    """The tiny config with ``override`` merged in; heads given there replace the tiny heads."""
    config = deep_merge(TINY_CONFIG, override or {})
    if override and "heads" in override:
        config["heads"] = copy.deepcopy(override["heads"])
    return Plan(config, source="costs.yaml")


def params_of(head_type: str) -> dict:
    return dict(HEAD_TYPES[head_type].defaults)


def grown(shapes: Shapes, split: str, axis: int, factor: int) -> Shapes:
    shape = list(getattr(shapes, split))
    shape[axis] *= factor
    if axis == 2:  # both splits share the dimension
        return Shapes(
            train=(*shapes.train[:2], shape[2]), test=(*shapes.test[:2], shape[2]), itemsize=4
        )
    return replace(shapes, **{split: tuple(shape)})


@pytest.mark.parametrize("head_type", sorted(HEAD_TYPES))
def test_every_head_cost_grows_with_the_shapes(head_type):
    cls, params, compute = HEAD_TYPES[head_type], params_of(head_type), Compute(threads=2)
    base = cls.estimate(SHAPES, params, 1000, compute)
    assert base.fit_mb > 0 and base.fit_seconds > 0 and base.score_seconds > 0
    # More pairs: more to hold and to fit, same test set.
    more_pairs = cls.estimate(SHAPES, params, 4000, compute)
    assert more_pairs.fit_mb > base.fit_mb and more_pairs.fit_seconds > base.fit_seconds
    assert more_pairs.score_seconds == base.score_seconds
    # A wider embedding costs more everywhere; a larger test set only to score.
    wider = cls.estimate(grown(SHAPES, "train", 2, 4), params, 1000, compute)
    assert wider.fit_mb > base.fit_mb and wider.fit_seconds > base.fit_seconds
    assert wider.score_seconds >= base.score_seconds
    bigger_test = cls.estimate(grown(SHAPES, "test", 0, 10), params, 1000, compute)
    assert bigger_test.score_seconds > base.score_seconds
    assert bigger_test.fit_seconds == base.fit_seconds
    # Pairs can touch no more responses than the world has.
    assert (
        cls.estimate(SHAPES, params, 10**7, compute).fit_mb
        == cls.estimate(SHAPES, params, 10**8, compute).fit_mb
    )


def test_each_head_type_is_costed_by_its_own_arithmetic():
    compute = Compute(threads=1)
    mlp = HEAD_TYPES["bt-mlp"].estimate(SHAPES, params_of("bt-mlp"), 1000, compute)
    lgb = HEAD_TYPES["clf-lgb"].estimate(SHAPES, params_of("clf-lgb"), 1000, compute)
    linear = HEAD_TYPES["bt-linear"].estimate(SHAPES, params_of("bt-linear"), 1000, compute)
    # LightGBM holds six copies of the annotated rows, networks three.
    assert lgb.fit_mb == pytest.approx(2 * mlp.fit_mb) and linear.fit_mb == mlp.fit_mb
    # Only a network's hidden layers widen the scoring chunk and the active features.
    assert mlp.score_width == 2 * sum(params_of("bt-mlp")["hidden"])
    assert mlp.widest_layer == max(params_of("bt-mlp")["hidden"])
    assert lgb.score_width == linear.score_width == lgb.widest_layer == 0
    # Each follows its own hyperparameters and no other type's.
    bigger = {**params_of("clf-lgb"), "feature_fraction": 0.4}
    assert HEAD_TYPES["clf-lgb"].estimate(SHAPES, bigger, 1000, compute).fit_seconds == (
        pytest.approx(lgb.fit_seconds / 2)
    )
    deeper = {**params_of("bt-mlp"), "hidden": [2048, 1024]}
    assert HEAD_TYPES["bt-mlp"].estimate(SHAPES, deeper, 1000, compute).fit_seconds > (
        mlp.fit_seconds
    )
    longer = {**params_of("bt-linear"), "max_iter": 200}
    assert HEAD_TYPES["bt-linear"].estimate(SHAPES, longer, 1000, compute).fit_seconds == (
        pytest.approx(2 * linear.fit_seconds)
    )
    # Boosting is charged at most EXPECTED_ROUNDS rounds whatever n_estimators says.
    many = {**params_of("clf-lgb"), "n_estimators": 10**6}
    capped = {**params_of("clf-lgb"), "n_estimators": 1000}
    assert HEAD_TYPES["clf-lgb"].estimate(SHAPES, many, 1000, compute) == HEAD_TYPES[
        "clf-lgb"
    ].estimate(SHAPES, capped, 1000, compute)


def test_requests_use_the_configured_heads_own_estimate():
    plan = plan_of()
    requests = Requests(plan, "results/costs")
    shapes = requests.shapes("tiny")
    for name in ("bt-mlp", "clf-lgb"):
        spec = plan.head_spec(name)
        cls = HEAD_TYPES[spec["type"]]
        cost = cls.estimate(shapes, {**cls.defaults, **spec["params"]}, 200, requests.compute)
        expected_mb = BASE_MB["train"] + cost.fit_mb + scoring_mb(shapes, [(cost, 1)])
        seconds = cost.fit_seconds + cost.score_seconds
        assert requests.train("tiny", name, 200, 1).mem_mb == mem_request(expected_mb, 1)
        assert requests.train("tiny", name, 200, 1).runtime == runtime_request(seconds, 1)


class TimedHead(RewardHead):
    """A head type from outside the package, with a cost of its own."""

    type_name = "timed"
    defaults: ClassVar[dict] = {"passes": 7}

    @classmethod
    def estimate(cls, shapes, params, pairs, compute):
        return HeadCost(
            fit_mb=pairs * params["passes"] / 100,
            fit_seconds=3600.0 * params["passes"],
            score_seconds=60.0,
            score_width=10,
        )

    def fit(self, data):  # pragma: no cover - a test double of the cost model, never trained
        raise TypeError("TimedHead exists only to be costed")

    def _prepare_predict(self):  # pragma: no cover
        pass

    def _predict_block(self, block):  # pragma: no cover - never fitted, so never predicts
        raise TypeError("TimedHead exists only to be costed")

    def _save_weights(self, directory):  # pragma: no cover
        pass

    def _load_weights(self, directory):  # pragma: no cover
        pass


class PlainHead(TimedHead):
    """A head type that declares no cost: the base class's default applies."""

    type_name = "plain"
    estimate = RewardHead.estimate


def stub_plan(heads_config: dict, *, scoring: str = "run", device: str = "cpu", threads=1):
    """What Requests reads of a plan, for head types the config schema does not list."""
    world = copy.deepcopy(TINY_CONFIG["worlds"]["tiny"]) | {"dtype": "float32"}
    return SimpleNamespace(
        config={"training": {"device": device, "threads": threads}},
        world_spec=lambda name: world,
        head_spec=lambda name: {"type": name, "members": 1, "params": {}, **heads_config[name]},
        scores_per_cell=scoring == "cell",
    )


def test_a_new_head_type_is_costed_by_its_declared_estimate(monkeypatch):
    monkeypatch.setitem(heads.HEAD_TYPES, "timed", TimedHead)
    monkeypatch.setitem(heads.HEAD_TYPES, "plain", PlainHead)
    plan = stub_plan({"timed": {"members": 2, "params": {"passes": 3}}, "plain": {}})
    requests = Requests(plan, "results/costs")
    shapes = requests.shapes("tiny")
    request = requests.train("tiny", "timed", 500, 1)
    cost = HeadCost(fit_mb=15.0, fit_seconds=10800.0, score_seconds=60.0, score_width=10)
    assert request.runtime == runtime_request(2 * (10800.0 + 60.0), 1)
    assert request.mem_mb == mem_request(
        BASE_MB["train"] + 15.0 + scoring_mb(shapes, [(cost, 2)]), 1
    )
    assert request.runtime > 6 * 60  # hours, as the head says, not a network's guess
    # Without a declaration: the base class's documented default, a linear model.
    default = network_cost(shapes, 500, requests.compute, hidden=[], epochs=DEFAULT_FIT_PASSES)
    assert PlainHead.estimate(shapes, {}, 500, requests.compute) == default
    assert requests.train("tiny", "plain", 500, 1).runtime == runtime_request(
        default.fit_seconds + default.score_seconds, 1
    )


def test_no_head_type_guessing_outside_the_heads():
    """The stages read a head only through its estimate (no hyperparameter names)."""
    for path in (REPO / "workflow/embrm/resources.py", REPO / "workflow/rules/resources.smk"):
        text = path.read_text()
        for name in ("n_estimators", "hidden", "max_epochs", "max_iter", "feature_fraction"):
            assert not re.search(rf"[\"']{name}[\"']", text), (path, name)


def test_retries_grow_memory_and_time():
    assert mem_request(1000, 1) == 1280  # a quarter on top, rounded up to 256 MB
    assert [mem_request(1000, a) for a in (1, 2, 3)] == [1280, 2048, 2560]
    assert runtime_request(0, 1) == MIN_RUNTIME_MINUTES
    # Start-up plus twice the estimate, whole minutes, times the attempt.
    assert [runtime_request(3000, a) for a in (1, 2, 3)] == [102, 204, 306]
    requests = Requests(plan_of(), "results/costs")
    for stage in (
        lambda a: requests.train("tiny", "bt-mlp", 200, a),
        lambda a: requests.world("tiny", a),
        lambda a: requests.evaluate("tiny", "clf-lgb", a),
    ):
        first, second = stage(1), stage(2)
        assert second.mem_mb > first.mem_mb and second.runtime == 2 * first.runtime


def test_a_gpu_speeds_networks_up_and_is_requested():
    shapes = Shapes(train=(40_000, 10, 2048), test=(2_000, 500, 2048))
    cpu, gpu = Compute(threads=2), Compute(threads=2, gpu=True)
    for head_type in ("bt-mlp", "clf-linear"):
        on_cpu = HEAD_TYPES[head_type].estimate(shapes, params_of(head_type), 40_000, cpu)
        on_gpu = HEAD_TYPES[head_type].estimate(shapes, params_of(head_type), 40_000, gpu)
        assert on_gpu.fit_seconds == pytest.approx(on_cpu.fit_seconds * cpu.flops / gpu.flops)
        assert on_gpu.fit_mb == on_cpu.fit_mb
    # LightGBM runs on the CPU either way; its time divides by the threads.
    lgb = HEAD_TYPES["clf-lgb"]
    assert lgb.estimate(shapes, params_of("clf-lgb"), 40_000, gpu) == lgb.estimate(
        shapes, params_of("clf-lgb"), 40_000, cpu
    )
    one = lgb.estimate(shapes, params_of("clf-lgb"), 40_000, Compute(threads=1))
    assert one.fit_seconds == pytest.approx(
        2 * lgb.estimate(shapes, params_of("clf-lgb"), 40_000, cpu).fit_seconds
    )
    assert Requests(plan_of(), "r").gpu is False
    assert Requests(plan_of({"training": {"device": "cuda"}}), "r").gpu is True
    # training.device: auto is costed on the CPU (no GPU is asked for).
    assert Requests(plan_of({"training": {"device": "auto"}}), "r").gpu is False


def test_scoring_per_cell_moves_the_test_pass_into_one_score_job():
    run = Requests(plan_of(LARGE), "r")
    cell = Requests(plan_of(deep_merge(LARGE, {"training": {"scoring": "cell"}})), "r")
    assert run.per_cell is False and cell.per_cell is True
    for head in ("bt-mlp", "clf-lgb"):
        own, fit_only = run.train("tiny", head, 40_000, 1), cell.train("tiny", head, 40_000, 1)
        assert fit_only.mem_mb < own.mem_mb and fit_only.runtime <= own.runtime
    one = cell.score("tiny", ["bt-mlp"], 40_000, 1)
    both = cell.score("tiny", ["bt-mlp", "clf-lgb", "bt-mlp", "clf-lgb"], 40_000, 1)
    assert both.mem_mb >= one.mem_mb and both.runtime > one.runtime
    # An active run scores the test set in every round whichever the mode.
    assert (
        cell.active("tiny", "bt-mlp", 40_000, 4, 1000, 1).mem_mb
        >= run.train("tiny", "bt-mlp", 40_000, 1).mem_mb
    )


# The study's largest setting: D = 2048, 40,000 × 10 train and 2,000 × 500 test responses.
LARGE = {
    "worlds": {
        "tiny": {
            "dim": 2048,
            "train_prompts": 40_000,
            "train_responses": 10,
            "test_prompts": 2_000,
            "test_responses": 500,
        }
    },
    "grid": {"quantities": [40_000]},
    "heads": {"bt-mlp": {"params": {}}, "clf-lgb": {"params": {}}},
}


def test_stacked_cell_holds_each_models_state_once():
    requests = Requests(plan_of(LARGE), "r")
    one = requests.train_cell("tiny", ["bt-mlp"], 40_000, 1)
    two = requests.train_cell("tiny", ["bt-mlp", "bt-mlp"], 40_000, 1)
    alone = requests.train("tiny", "bt-mlp", 40_000, 1)
    assert two.mem_mb > one.mem_mb and two.runtime >= one.runtime
    # Two models share the rows: less than two train jobs' memory together.
    assert two.mem_mb < 2 * alone.mem_mb


def test_world_sources_declare_their_own_cost(tmp_path):
    small = Shapes(train=(300, 6, 16), test=(40, 50, 16))
    large = Shapes(train=(40_000, 10, 2048), test=(2_000, 500, 2048))
    for source in (synthetic, npy):
        small_mb, small_s = source.estimate(small)
        large_mb, large_s = source.estimate(large)
        assert large_mb >= small_mb and large_s > small_s
    # float16 arrays stream twice as fast as float32 ones.
    half = replace(large, itemsize=2)
    assert npy.estimate(half)[1] == pytest.approx(npy.estimate(large)[1] / 2)
    # npy worlds are sized from the arrays' headers, before the world exists.
    spec = {"source": "npy"}
    for split, shape in (("train", (30, 4, 8)), ("test", (5, 7, 8))):
        np.save(tmp_path / f"{split}.npy", np.zeros(shape, dtype=np.float16))
        spec[split] = {"embeddings": str(tmp_path / f"{split}.npy")}
    assert world_shapes(spec, tmp_path / "built") == Shapes((30, 4, 8), (5, 7, 8), itemsize=2)
    # ... and as the paper's largest setting while nothing can be read.
    assert world_shapes({"source": "table"}, tmp_path / "built") == DEFAULT_SHAPES


def test_active_runtime_is_rounds_of_training():
    requests = Requests(plan_of(LARGE), "r")
    train = requests.train("tiny", "bt-mlp", 40_000, 1)
    active = requests.active("tiny", "bt-mlp", 40_000, 5, 1000, 1)
    assert active.runtime == 5 * train.runtime
    more_pool = requests.active("tiny", "bt-mlp", 40_000, 5, 100_000, 1)
    assert more_pool.mem_mb > active.mem_mb >= train.mem_mb / MEMORY_SAFETY


@pytest.mark.parametrize(
    ("scoring", "head", "n", "expected"),
    [
        # configs/paper-scale.yaml (D = 2048, 40,000 × 10 train, 2,000 × 500 test, 2 threads):
        # the requests docs/slurm.md quotes, unchanged since the model moved into the package.
        ("run", "bt-mlp", 40_000, (3584, 38)),
        ("run", "clf-lgb", 40_000, (5888, 60)),
        ("run", "clf-lgb", 5_000, (1792, 13)),
        ("cell", "bt-mlp", 40_000, (3328, 34)),
        ("cell", "clf-lgb", 40_000, (5632, 57)),
    ],
)
def test_paper_scale_requests(scoring, head, n, expected):
    config = yaml.safe_load((REPO / "configs" / "paper-scale.yaml").read_text())
    config["training"]["scoring"] = scoring
    requests = Requests(Plan(config, source="paper-scale.yaml"), "r")
    request = requests.train("paper", head, n, 1)
    assert (request.mem_mb, request.runtime) == expected
    assert (requests.world("paper", 1).mem_mb, requests.world("paper", 1).runtime) == (2304, 22)
