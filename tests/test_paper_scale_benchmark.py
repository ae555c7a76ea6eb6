"""The paper-scale benchmark's trimmed config: every head under each named protocol plans."""

from __future__ import annotations

import importlib.util

from conftest import REPO
from embrm.config import Plan

# The benchmark puts its own folder on sys.path for its sibling heads.py.
spec = importlib.util.spec_from_file_location("paper_scale", REPO / "benchmarks" / "paper_scale.py")
paper_scale = importlib.util.module_from_spec(spec)
spec.loader.exec_module(paper_scale)


def test_each_head_runs_under_each_protocol_and_clf_lgb_at_its_own_quantities():
    config, quantities = paper_scale.benchmark_config(
        True, 1, ["bt-mlp", "clf-lgb"], [500], ("embrm", "study")
    )
    plan = Plan(config)
    planned = {(run.head, run.n) for run in plan.runs}
    assert planned == {
        ("bt-mlp", quantities[0]),
        ("bt-mlp", quantities[1]),
        ("bt-mlp.study", quantities[0]),
        ("bt-mlp.study", quantities[1]),
        ("clf-lgb", 500),
        ("clf-lgb.study", 500),
    }
    for name in ("bt-mlp", "bt-mlp.study", "clf-lgb", "clf-lgb.study"):
        spec = plan.head_spec(name)
        assert spec["type"] == paper_scale.head_type_of(name)
        assert spec["params"]["protocol"] == ("study" if name.endswith(".study") else "embrm")
    assert config["training"]["scoring"] == "run"  # each run's cost stands alone


def test_embrms_names_are_the_head_types():
    assert paper_scale.head_name("clf-mlp", "embrm") == "clf-mlp"
    assert paper_scale.head_name("clf-mlp", "study") == "clf-mlp.study"
    assert paper_scale.head_type_of("clf-mlp.study") == "clf-mlp"


def test_a_runs_cost_is_interpolated_between_the_measured_runs_and_never_below_the_cheaper():
    assert paper_scale.run_cost(1.0, 8.0, 5_000, 40_000, 5_000) == 1.0
    assert paper_scale.run_cost(1.0, 8.0, 5_000, 40_000, 40_000) == 8.0
    assert paper_scale.run_cost(1.0, 8.0, 5_000, 40_000, 20_000) == 4.0
    # Timing noise can make the larger run the cheaper one; extrapolated far past it the line
    # would turn negative.
    assert paper_scale.run_cost(0.007, 0.004, 500, 4_000, 40_000) == 0.004
