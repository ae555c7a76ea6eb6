"""The protocol ablation (configs/protocol-ablation.yaml, benchmarks/protocol_ablation.py): its
design follows the recipe registry, and its attribution finds a planted effect and only that."""

from __future__ import annotations

import importlib.util
import json
import sys

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
sys.modules[spec.name] = ablation  # its dataclasses look their module up there
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
        assert value == preset(ablation.OTHER_PROTOCOL[base], families)[component]
        assert value != preset(base, families)[component]
    # Every component on which the presets differ is switched, from both sides, for every head.
    for head_type in ablation.HEADS:
        families = HEAD_TYPES[head_type].RECIPE
        study, embrm = preset("study", families), preset("embrm", families)
        differing = {c for c in study if study[c] != embrm[c]}
        for base in ("study", "embrm"):
            switched = {n.split("+")[1] for n in heads if n.startswith(f"{head_type}.{base}+")}
            assert switched == differing


def write_run(folder, head, seed, design, gain, rho, oracle, annotator="bt-beta1", n=2000, beta=1):
    run = {
        "world": "w",
        "design": design,
        "annotator": annotator,
        "annotator_params": {"beta": beta},
        "n": n,
        "head": head,
        "seed": seed,
    }
    path = folder / head / design / annotator / str(n) / str(seed) / "metrics.json"
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
        ("central-b10", 34, 170, ("same-random", "bt-beta10", 2000)),
        ("central-n500", 34, 170, ("same-random", "bt-beta1", 500)),
        ("central-b10-n500", 34, 170, ("same-random", "bt-beta10", 500)),
        ("central-lgb", 30, 150, ("same-random", "bt-beta1", 2000)),
        ("central-lgb-b10", 30, 150, ("same-random", "bt-beta10", 2000)),
        ("lgb-n500", 12, 60, ("same-random", "bt-beta1", 500)),
        ("lgb-b10-n500", 12, 60, ("same-random", "bt-beta10", 500)),
        ("lgb-cross", 12, 60, ("cross-random", "bt-beta1", 2000)),
        ("presets-b10-n500", 4, 20, ("same-random", "bt-beta10", 500)),
        ("presets-central", 4, 20, ("same-random", "bt-beta1", 2000)),
        ("presets-n500", 4, 20, ("same-random", "bt-beta1", 500)),
    ],
)
def test_measured_slices_are_part_of_the_design(name, heads, runs, cell):
    sliced, full = ablation.slice_config(ablation.SLICES[name]), ablation.config()
    assert set(sliced["heads"]) <= set(full["heads"]) and len(sliced["heads"]) == heads
    assert {h: full["heads"][h] for h in sliced["heads"]} == sliced["heads"]
    assert sliced["worlds"] == full["worlds"]
    plan = Plan(sliced, source=name)
    assert len(plan.runs) == runs
    assert {(r.design, r.annotator, r.n) for r in plan.runs} == {cell}
    assert ablation.pilot_config() == ablation.slice_config(ablation.SLICES["pilot"])


def test_slices_beyond_the_design_change_only_their_world_and_heads():
    default = yaml.safe_load((REPO / "config.yaml").read_text())["worlds"]["synthetic"]
    other = ablation.slice_config(ablation.SLICES["cross-shared0"])
    assert other["worlds"] == {"synthetic-shared0": {**default, "shared_quality": 0}}
    plan = Plan(other, source="cross-shared0")
    assert len(plan.runs) == 170 and {r.world for r in plan.runs} == {"synthetic-shared0"}
    scale = ablation.slice_config(ablation.SLICES["study-scale"])
    paper = yaml.safe_load((REPO / "configs" / "paper-scale.yaml").read_text())
    assert scale["worlds"] == {"paper": paper["worlds"]["paper"]}
    assert sorted(scale["heads"]) == [
        "bt-mlp.embrm",
        "bt-mlp.study",
        "clf-lgb.embrm",
        "clf-lgb.study",
        "clf-mlp.embrm",
        "clf-mlp.study",
    ]
    plan = Plan(scale, source="study-scale")
    assert {(r.design, r.n) for r in plan.runs} == {("same-random", 10000)}
    assert len(plan.runs) == 18
    # The components at that scale: the presets' runs are study-scale's own (the same heads, so
    # one results folder holds both), and only the named components are switched.
    split = ablation.slice_config(ablation.SLICES["study-scale-split"])
    assert {k: v for k, v in split.items() if k != "heads" and k != "grid"} == {
        k: v for k, v in scale.items() if k != "heads" and k != "grid"
    }
    assert {h: split["heads"][h] for h in scale["heads"]} == scale["heads"]
    assert sorted(set(split["heads"]) - set(scale["heads"])) == [
        "bt-mlp.embrm+bt_examples",
        "bt-mlp.embrm+split",
        "bt-mlp.study+bt_examples",
        "bt-mlp.study+split",
        "clf-mlp.embrm+split",
        "clf-mlp.study+split",
    ]
    full = ablation.config()["heads"]
    assert {h: full[h] for h in split["heads"]} == split["heads"]
    assert len(Plan(split, source="study-scale").runs) == 36
    lgb = ablation.slice_config(ablation.SLICES["study-scale-lgb-split"])
    assert {h: lgb["heads"][h] for h in scale["heads"]} == scale["heads"]
    assert sorted(set(lgb["heads"]) - set(scale["heads"])) == [
        "clf-lgb.embrm+split",
        "clf-lgb.study+split",
    ]
    assert len(Plan(lgb, source="study-scale").runs) == 24


def value_of(table: str, first: str, second: str) -> float:
    """The value in the row whose first two cells are ``first``, ``second``; the next column."""
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[:2] == [first, second]:
            return float(cells[2].split()[0])
    raise AssertionError(f"no row {first} | {second}")


def test_claim_parts_2c_and_2d_find_a_planted_loss_and_its_component(tmp_path):
    """bt-mlp under the released procedure loses 0.3 of the oracle's gain going to 500 pairs and
    0.25 going to β = 1, clf-mlp 0.1 and 0.05: 2c and 2d are +0.2 each. With the split by pair
    bt-mlp degrades as clf-mlp does, so the component takes both parts to 0 (−0.2 from study)."""
    g = np.random.default_rng(1)
    prompts = 60
    oracle = 2.0 + g.random(prompts)
    # cell → (bt-mlp.study's loss, the classifier-like loss) in units of the oracle's gain
    cells = {("bt-beta10", 10, 2000): (0.0, 0.0), ("bt-beta1", 1, 2000): (0.25, 0.05)}
    cells[("bt-beta1", 1, 500)] = (0.55, 0.15)
    for (annotator, beta, n), (bt_loss, clf_loss) in cells.items():
        for seed in range(5):
            base = 0.5 * oracle + g.normal(0, 0.3, prompts)
            rho = np.clip(0.5 + g.normal(0, 0.1, prompts), -1, 1)
            runs = {
                "bt-mlp.study": base - bt_loss * oracle,
                "bt-mlp.study+split": base - clf_loss * oracle,
                "clf-mlp.study": base - clf_loss * oracle,
                "clf-mlp.study+split": base - clf_loss * oracle,
            }
            for head, gain in runs.items():
                gain = gain + g.normal(0, 0.01, prompts)
                write_run(
                    tmp_path, head, seed, "same-random", gain, rho, oracle, annotator, n, beta
                )
    out = ablation.attribution(tmp_path).split("### spearman")[0]
    parts = out.split("the claims' parts, clf-mlp against bt-mlp, under each variant")[1]
    for part in ("2c", "2d"):
        assert abs(value_of(parts, "split", part) + 0.2) < 0.01
    rows = {line.split(" | ")[0]: line for line in parts.splitlines() if line.startswith("| study")}
    study = [c.strip() for c in rows["| study"].strip("|").split("|")]
    # columns: variant, clf − bt, verdict, 2c, verdict, 2d, verdict
    assert abs(float(study[3].split()[0]) - 0.2) < 0.01 and "clf-mlp degrades less" in study[4]
    assert abs(float(study[5].split()[0]) - 0.2) < 0.01 and "clf-mlp degrades less" in study[6]
    split = [c.strip() for c in rows["| study+split"].strip("|").split("|")]
    assert abs(float(split[3].split()[0])) < 0.01 and abs(float(split[5].split()[0])) < 0.01


def test_presets_check_writes_each_preset_out_as_its_components():
    """The two configs of the presets check differ only in how each head's recipe is written:
    ``protocol: P``, or the other protocol with every component set to P's value."""
    as_preset, explicit = ablation.presets_config(False), ablation.presets_config(True)
    assert {k: v for k, v in as_preset.items() if k != "heads"} == {
        k: v for k, v in explicit.items() if k != "heads"
    }
    assert as_preset["heads"].keys() == explicit["heads"].keys()
    for name, head in as_preset["heads"].items():
        cls = HEAD_TYPES[head["type"]]
        written = explicit["heads"][name]["params"]
        assert written["protocol"] != head["params"]["protocol"]
        recipes = [
            cls.resolve_recipe({**cls.defaults, **params}, name).values
            for params in (head["params"], written)
        ]
        assert recipes[0] == recipes[1] == preset(head["params"]["protocol"], cls.RECIPE)


def test_attribution_over_chosen_cells_reads_only_their_runs(tmp_path):
    """`split` raises bt-mlp's normalized gain by 0.2 of the oracle's gain in the same-random
    cell and by nothing in the cross-random one: over both cells +0.1, over each its own."""
    g = np.random.default_rng(2)
    prompts = 60
    oracle = 2.0 + g.random(prompts)
    for design, effect in (("same-random", 0.2), ("cross-random", 0.0)):
        for seed in range(5):
            base = 0.5 * oracle + g.normal(0, 0.3, prompts)
            rho = np.clip(0.5 + g.normal(0, 0.1, prompts), -1, 1)
            for head, gain in {
                "bt-mlp.study": base,
                "bt-mlp.study+split": base + effect * oracle,
            }.items():
                write_run(
                    tmp_path, head, seed, design, gain + g.normal(0, 0.01, prompts), rho, oracle
                )

    def split_effect(cells):
        out = ablation.attribution(tmp_path, cells).split("### spearman")[0]
        row = next(line for line in out.splitlines() if line.startswith("| bt-mlp | split |"))
        return float(row.split(" | ")[2].split()[0])

    assert abs(split_effect(None) - 0.1) < 0.01
    assert abs(split_effect(["same-random/bt-beta1/2000"]) - 0.2) < 0.01
    assert abs(split_effect(["cross-random/bt-beta1/2000"])) < 0.01
    with pytest.raises(SystemExit, match="--cell same-random/bt-beta10/2000: no run of that cell"):
        ablation.attribution(tmp_path, ["same-random/bt-beta10/2000"])
    # A folder with no run of the design's heads is named in the error.
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit, match=f"{empty}: no metrics.json of a recipe variant"):
        ablation.attribution(empty)


def test_recipe_variants_are_read_from_the_heads_parameters_not_their_names():
    from embrm.findings.attribution import attributes, recipe_variants

    heads = {
        "a": {"type": "bt-mlp", "params": {"hidden": [16]}},  # embrm's preset (the default)
        "b": {"type": "bt-mlp", "params": {"hidden": [16], "protocol": "study"}},
        "c": {"type": "bt-mlp", "params": {"hidden": [16], "protocol": "study", "split": "pair"}},
        # a component at its own protocol's value: the preset again, which "b" already stands for
        "d": {
            "type": "bt-mlp",
            "params": {"hidden": [16], "protocol": "study", "split": "example"},
        },
        "e": {"type": "bt-mlp", "params": {"hidden": [32], "protocol": "study", "split": "pair"}},
        "f": {"type": "bt-mlp", "params": {"hidden": [16], "stopping": "none"}},  # neither's value
        "g": {
            "type": "bt-mlp",
            "params": {"hidden": [16], "split": "example", "bt_examples": "both"},
        },
        "h": {"type": "bt-linear", "params": {}},
        "i": {"type": "clf-mlp", "params": {"protocol": "study"}},
        "j": {"type": "clf-mlp", "params": {"protocol": "study"}, "members": 3},
    }
    for head in heads.values():
        head.setdefault("members", 1)
    assert recipe_variants(heads) == {
        "a": "bt-mlp.embrm",
        "b": "bt-mlp.study",
        "c": "bt-mlp.study+split",
        "i": "clf-mlp.study",
    }
    assert attributes(heads)  # bt-mlp under both presets
    assert not attributes({k: heads[k] for k in ("b", "c", "i")})  # no embrm preset
    shipped = load(REPO / "config.yaml")["heads"]
    assert not attributes({k: {"type": k, **v} for k, v in shipped.items()})
