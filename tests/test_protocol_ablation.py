"""The protocol ablation (configs/protocol-ablation.yaml, benchmarks/protocol_ablation.py): its
design follows the recipe registry, and its attribution finds a planted effect and only that."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import yaml
from conftest import REPO
from embrm.config import Plan, load
from embrm.heads import HEAD_TYPES
from embrm.heads.recipe import preset

spec = importlib.util.spec_from_file_location(
    "protocol_ablation", REPO / "benchmarks" / "protocol_ablation.py"
)
ablation = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ablation)
CONFIG = REPO / "configs" / "protocol-ablation.yaml"


def test_shipped_config_is_the_generated_design_and_plans():
    assert yaml.safe_load(CONFIG.read_text()) == ablation.config()
    plan = Plan(load(CONFIG), source=CONFIG)
    cells = {(r.design, r.annotator, r.n) for r in plan.runs}
    assert {
        ("same-random", "bt-beta1", 500),
        ("same-random", "bt-beta1", 2000),
        ("same-random", "bt-beta10", 500),
        ("same-random", "bt-beta10", 2000),
        ("cross-random", "bt-beta1", 2000),
    } <= cells
    assert len({r.seed for r in plan.runs}) >= 5
    default = yaml.safe_load((REPO / "config.yaml").read_text())
    assert plan.config["worlds"]["synthetic"] == {
        **plan.config["worlds"]["synthetic"],
        **default["worlds"]["synthetic"],
    }


def test_every_variant_switches_one_component_to_the_other_protocols_value():
    heads = ablation.ablation_heads()
    for name, head in heads.items():
        families = HEAD_TYPES[head["type"]].RECIPE
        params = dict(head["params"])
        base = params.pop("protocol")
        if "+" not in name:
            assert not params and name == f"{head['type']}.{base}"
            continue
        ((component, value),) = params.items()
        assert name == f"{head['type']}.{base}+{component}"
        assert value == preset(ablation.OTHER[base], families)[component]
        assert value != preset(base, families)[component]
    # Every component on which the presets differ is switched, from both sides, for every head.
    for head_type in ablation.HEADS:
        families = HEAD_TYPES[head_type].RECIPE
        study, embrm = preset("study", families), preset("embrm", families)
        differing = {c for c in study if study[c] != embrm[c]}
        for base in ("study", "embrm"):
            switched = {n.split("+")[1] for n in heads if n.startswith(f"{head_type}.{base}+")}
            assert switched == differing


def write_run(folder, head, seed, design, gain, rho, oracle):
    run = {
        "world": "w",
        "design": design,
        "annotator": "bt-beta1",
        "n": 2000,
        "head": head,
        "seed": seed,
    }
    path = folder / head / design / str(seed) / "metrics.json"
    path.parent.mkdir(parents=True)
    per_prompt = {
        "oracle_bon_gain": oracle.tolist(),
        "aggregations": {"mean": {"bon_gain": gain.tolist(), "spearman": rho.tolist()}},
    }
    path.write_text(json.dumps({"run": run, "per_prompt": per_prompt}))


def test_attribution_finds_a_planted_effect_and_calls_the_rest_inconclusive_or_negligible(
    tmp_path,
):
    """bt-mlp: switching `split` to embrm's value raises the normalized gain by 0.2 of the
    oracle's gain on every prompt (from both sides); `weights` changes nothing but noise."""
    g = np.random.default_rng(0)
    prompts = 60
    oracle = 2.0 + g.random(prompts)
    for design in ("same-random", "cross-random"):
        for seed in range(5):
            base = 0.5 * oracle + g.normal(0, 0.3, prompts)
            rho = np.clip(0.5 + g.normal(0, 0.1, prompts), -1, 1)

            def noise():
                return g.normal(0, 0.02, prompts)

            runs = {
                "bt-mlp.study": base + noise(),
                "bt-mlp.study+split": base + 0.2 * oracle + noise(),
                "bt-mlp.embrm": base + 0.2 * oracle + noise(),
                "bt-mlp.embrm+split": base + noise(),
                "bt-mlp.study+weights": base + noise(),
                "bt-mlp.embrm+weights": base + 0.2 * oracle + noise(),
            }
            for head, gain in runs.items():
                write_run(tmp_path, head, seed, design, gain, rho, oracle)
    out = ablation.attribution(tmp_path)
    gain = out.split("### spearman")[0]
    rows = {line.split(" | ")[1]: line for line in gain.splitlines() if line.startswith("| bt")}
    assert "+0.200" in rows["**all (embrm − study)**"]
    assert rows["split"].count("embrm's value higher") == 2
    assert rows["split"].count("+0.200") == 2
    assert "higher" not in rows["weights"]
    assert "not run" in rows["loss"]


@pytest.mark.parametrize(
    ("name", "heads", "runs", "cell"),
    [
        ("pilot", 18, 90, ("same-random", "bt-beta10", 2000)),
        ("central", 34, 170, ("same-random", "bt-beta1", 2000)),
        ("central-cross", 34, 170, ("cross-random", "bt-beta1", 2000)),
    ],
)
def test_measured_slices_are_part_of_the_design(name, heads, runs, cell):
    sliced, full = ablation.slice_config(*ablation.SLICES[name]), ablation.config()
    assert set(sliced["heads"]) <= set(full["heads"]) and len(sliced["heads"]) == heads
    assert {h: full["heads"][h] for h in sliced["heads"]} == sliced["heads"]
    plan = Plan(sliced, source=name)
    assert len(plan.runs) == runs
    assert {(r.design, r.annotator, r.n) for r in plan.runs} == {cell}
    assert ablation.pilot_config() == ablation.slice_config(*ablation.SLICES["pilot"])
