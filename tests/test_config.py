"""Config validation: defaults, grid expansion, and errors that name the key at fault."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import yaml
from conftest import REPO, TINY_CONFIG, deep_merge, snakemake
from embrm.config import Plan, load, validate
from embrm.errors import ConfigError
from embrm.grid import expand_annotators


def test_default_config_is_valid_and_fills_defaults():
    config = load(REPO / "config.yaml")
    assert config["evaluation"]["n_values"] == [2, 5, 10, 30, 50, 100, 300, 500]
    assert config["annotation"]["scale"] == "std"
    assert config["worlds"]["synthetic"]["kind"] == "nonlinear"


def test_defaults_are_filled_for_omitted_sections():
    config = validate(TINY_CONFIG)
    assert config["training"] == {
        "device": "auto",
        "threads": 2,
        "scoring": "run",
        "stack": False,
    }
    assert config["tracking"]["experiment"] is None  # named after the experiment by Plan
    assert Plan(TINY_CONFIG).config["tracking"]["experiment"] == "default"
    assert config["worlds"]["tiny"]["tau"] == 0.5


def test_grid_expansion_counts_and_deduplicates():
    config = deep_merge(TINY_CONFIG, {"annotators": {"same-bt": {"model": "bt", "beta": 10}}})
    config["extra_grids"] = [{"annotators": ["same-bt"], "designs": ["same-random"]}]
    plan = Plan(config)
    # main grid: 2 designs × 2 betas × 2 heads; the extra block repeats existing cells only
    assert len(plan.runs) == 8
    assert {r.annotator for r in plan.runs} == {"bt-beta1", "bt-beta10"}


def test_annotator_labels_spell_every_parameter():
    labels = expand_annotators({"annotators": {"x": {"model": "bt", "beta": [0.5, 1.0, 10]}}})
    assert list(labels["x"]) == ["bt-beta0.5", "bt-beta1", "bt-beta10"]


@pytest.mark.parametrize(
    ("override", "key", "expected"),
    [
        ({"grid": {"heads": ["nope"]}}, "grid.heads[0]", "not defined under 'heads'"),
        ({"heads": {"mystery": {}}}, "heads.mystery", "unknown head type 'mystery'"),
        ({"grid": {"quantities": [-5]}}, "grid.quantities[0]", "less than the minimum"),
        ({"annotators": {"bt": {"model": "bt", "beta": 0}}}, "annotators.bt", "beta"),
        ({"evaluation": {"repeats": "many"}}, "evaluation.repeats", "not of type 'integer'"),
        ({"training": {"scoring": "world"}}, "training.scoring", "'world' is not one of"),
        ({"worlds": {"tiny": {"dim": 0}}}, "worlds.tiny.dim", "less than the minimum"),
        ({"surprise": 1}, "<top level>", "'surprise' was unexpected"),
        ({"heads": {"bt-mlp": {"params": {"layers": 3}}}}, "heads.bt-mlp.params", "layers"),
    ],
)
def test_bad_values_name_the_key(override, key, expected):
    with pytest.raises(ConfigError) as error:
        validate(deep_merge(TINY_CONFIG, override))
    assert f"'{key}" in str(error.value)
    assert expected in str(error.value)


def test_missing_key_is_named():
    config = deep_merge(TINY_CONFIG, {})
    del config["grid"]["seeds"]
    with pytest.raises(ConfigError, match=r"'grid'.*'seeds' is a required property"):
        validate(config)


def test_cli_validate_reports_errors_with_exit_status_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(deep_merge(TINY_CONFIG, {"grid": {"heads": ["nope"]}})))
    result = subprocess.run([sys.executable, "-m", "embrm", "validate", str(bad)],
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode == 2
    assert f"error: {bad}: config key 'grid.heads[0]'" in result.stderr  # the file, then the key
    assert "Traceback" not in result.stderr
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(TINY_CONFIG))
    result = subprocess.run([sys.executable, "-m", "embrm", "validate", str(good)],
                            capture_output=True, text=True, check=True)  # fmt: skip
    assert "8 runs" in result.stdout


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"grid": {"heads": ["unknown-head"]}}, "grid.heads[0]"),
        ({"grid": {"quantities": [-1]}}, "grid.quantities[0]"),
    ],
)
def test_workflow_stops_before_any_job_on_bad_config(tmp_path, override, key):
    result = snakemake(tmp_path, "--cores", "1", config=deep_merge(TINY_CONFIG, override),
                       check=False)  # fmt: skip
    assert result.returncode != 0
    assert f"config key '{key}'" in result.stderr
    assert not (tmp_path / "results").exists()


def test_paper_scale_config_has_the_study_shapes_and_grid():
    config = load(REPO / "configs" / "paper-scale.yaml")
    world = config["worlds"]["paper"]
    assert (world["train_prompts"], world["train_responses"]) == (40_000, 10)
    assert (world["test_prompts"], world["test_responses"]) == (2_000, 500)
    assert (world["dim"], world["dtype"]) == (2048, "float16")
    plan = Plan(config)
    assert len(plan.runs) == 6 * 6 * 4 * 3 * 5
    assert {r.annotator for r in plan.runs} == {
        f"bt-beta{b}" for b in ("0.5", "0.7", "1", "3", "5", "10")
    }
    assert {r.n for r in plan.runs} == {5_000, 10_000, 20_000, 40_000}
    assert {r.head for r in plan.runs} == {"bt-mlp", "clf-mlp", "clf-lgb"}
    assert {r.seed for r in plan.runs} == set(range(5))
    assert len({r.design for r in plan.runs}) == 6
    # One score job per cell reads the test set for the cell's 6 β × 3 heads.
    assert config["training"]["scoring"] == "cell"
    cells = {(r.world, r.design, r.n, r.seed) for r in plan.runs}
    assert len(plan.runs) == 18 * len(cells)


def test_schema_is_the_yaml_completed_from_the_registries():
    """embrm.schema.build adds the registry-derived parts and changes nothing else."""
    import jsonschema
    from embrm.schema import build, structure

    schema, yaml_only = build(), structure()
    jsonschema.Draft202012Validator.check_schema(schema)
    injected = [
        ("properties", "heads"),
        ("properties", "annotators", "additionalProperties"),
        ("properties", "worlds", "additionalProperties"),
        ("$defs", "design", "enum"),
        ("properties", "experiment", "not"),
        ("$defs", "embedder", "properties", "type"),
        ("$defs", "embedder", "allOf"),
    ]
    for path in injected:
        parent_built, parent_yaml = schema, yaml_only
        for key in path[:-1]:
            parent_built, parent_yaml = parent_built[key], parent_yaml[key]
        parent_built.pop(path[-1])
        parent_yaml.pop(path[-1], None)
    assert schema == yaml_only
    assert build() is not build()  # callers may change their copy


def test_schema_sources_are_the_registry(tiny_config):
    from embrm.schema import build
    from embrm.sources import SOURCES

    schema = build()
    block = schema["properties"]["worlds"]["additionalProperties"]
    assert block["properties"]["source"]["enum"] == list(SOURCES)
    for (name, source), rule in zip(SOURCES.items(), block["allOf"], strict=True):
        assert rule == {
            "if": {"properties": {"source": {"const": name}}},
            "then": {"$ref": f"#/$defs/{source.schema}"},
        }
        assert source.schema in schema["$defs"]
    tiny_config["worlds"]["tiny"]["source"] = "unregistered"
    with pytest.raises(ConfigError, match=r"config key 'worlds\.tiny\.source'"):
        validate(tiny_config)


def test_schema_embedders_are_the_registry(tmp_path):
    from embrm.embedders import EMBEDDERS
    from embrm.schema import build

    embedder = build()["$defs"]["embedder"]
    assert embedder["properties"]["type"]["enum"] == list(EMBEDDERS)
    needs_model = [name for name, kind in EMBEDDERS.items() if kind.needs_model]
    assert needs_model and embedder["allOf"][0]["if"]["properties"]["type"]["enum"] == needs_model
    table = tmp_path / "t.csv"
    table.write_text("prompt,response,reward,split\n")
    for name, kind in EMBEDDERS.items():
        config = copy.deepcopy(TINY_CONFIG)
        config["worlds"]["tiny"] = {
            "source": "table",
            "path": str(table),
            "embedder": {"type": name},
        }
        if kind.needs_model:
            with pytest.raises(ConfigError, match=r"worlds\.tiny\.embedder"):
                validate(config)
            config["worlds"]["tiny"]["embedder"]["model"] = "some/model"
        assert validate(config)["worlds"]["tiny"]["embedder"]["type"] == name
    config["worlds"]["tiny"]["embedder"] = {"type": "unregistered"}
    with pytest.raises(ConfigError, match=r"worlds\.tiny\.embedder\.type"):
        validate(config)


# -- head sweeps ------------------------------------------------------------------------------
def with_heads(heads: dict, grid_heads: list[str] | None = None) -> dict:
    config = deep_merge(TINY_CONFIG, {})
    config["heads"] = heads
    config["grid"]["heads"] = grid_heads or list(heads)
    return config


def test_list_valued_head_parameters_expand_into_named_heads():
    config = with_heads(
        {
            "bt-mlp": {"params": {"lr": [1e-3, 3e-4], "patience": [2, 5], "max_epochs": 5}},
            "small": {"type": "clf-mlp", "params": {"hidden": [[16, 8], []]}},
            "clf-lgb": {"params": {"n_estimators": 40}},
        }
    )
    plan = Plan(config)
    assert plan.head_names["bt-mlp"].keys() == {
        "bt-mlp-lr0.001-patience2",
        "bt-mlp-lr0.001-patience5",
        "bt-mlp-lr0.0003-patience2",
        "bt-mlp-lr0.0003-patience5",
    }
    assert list(plan.head_names["small"]) == ["small-hidden16x8", "small-hiddennone"]
    # grid.heads names the entry; it stands for every head of its sweep.
    assert {r.head for r in plan.runs} == {*plan.head_names["bt-mlp"], *plan.head_names["small"],
                                           "clf-lgb"}  # fmt: skip
    assert len(plan.runs) == 2 * 2 * 7  # designs × betas × heads
    assert plan.head_spec("bt-mlp-lr0.0003-patience5") == {
        "params": {"lr": 3e-4, "patience": 5, "max_epochs": 5},
        "members": 1,
        "type": "bt-mlp",
    }
    assert plan.head_spec("small-hiddennone")["params"] == {"hidden": []}
    assert plan.head_key("small-hidden16x8") == "heads.small"
    # Without a list, a head keeps its key as its name and its spec as written.
    assert plan.head_spec("clf-lgb") == {
        "params": {"n_estimators": 40},
        "members": 1,
        "type": "clf-lgb",
    }
    # A list-typed parameter given one list is one value, not a sweep.
    plain = Plan(with_heads({"bt-mlp": {"params": {"hidden": [16, 8]}}}))
    assert list(plain.head_names["bt-mlp"]) == ["bt-mlp"]


@pytest.mark.parametrize(
    ("heads", "message"),
    [
        ({"bt-mlp": {"params": {"lr": [1e-3, "fast"]}}}, "config key 'heads.bt-mlp.params.lr"),
        ({"bt-mlp": {"params": {"lr": []}}},
         "config key 'heads.bt-mlp.params.lr': [] is not valid; expected a number or a non-empty "
         "list of distinct values"),
        ({"bt-mlp": {"params": {"lr": [1e-3, 1e-3]}}},
         "config key 'heads.bt-mlp.params.lr': [0.001, 0.001] is not valid"),
        ({"clf-lgb": {"params": {"lr": [1e-3, 3e-4]}}},
         "config key 'heads.clf-lgb.params': 'lr' is not one of"),
        ({"h": {"type": "bt-linear", "params": {"hidden": [[4], [8]]}}},
         "config key 'heads.h.params': 'hidden' is not one of"),
        ({"bt-mlp": {"params": {"val_fraction": [0.2, 1.5]}}},
         r"config key 'heads.bt-mlp.params.val_fraction': must be in [0, 1) "
         "(sweep value val_fraction=1.5)"),
        ({"bt-mlp": {"params": {"protocol": ["embrm", "study"], "weight_decay": 0.1}}},
         "config key 'heads.bt-mlp.params.weight_decay': is not used by protocol 'study'"),
        ({"bt-mlp": {"params": {"lr": [0.1, 0.2]}}, "bt-mlp-lr0.1": {"type": "bt-mlp"}},
         "config key 'heads.bt-mlp.params': the sweep names a head 'bt-mlp-lr0.1', which is "
         "also a head of 'heads.bt-mlp-lr0.1'"),
    ],
)  # fmt: skip
def test_bad_head_sweeps_name_the_key(heads, message):
    with pytest.raises(ConfigError) as error:
        Plan(with_heads(heads))
    assert message in str(error.value)


def test_head_sweep_trains_one_run_per_value_with_its_own_setting(tmp_path):
    """A dry run plans one train job per swept head, under its own name."""
    config = with_heads({"bt-mlp": {"params": {"lr": [1e-3, 3e-4]}}})
    config["grid"]["designs"] = ["same-random"]
    config["annotators"]["bt"]["beta"] = 1
    result = snakemake(tmp_path, "--cores", "1", "--dry-run", config=config)
    text = result.stdout + result.stderr
    for name in ("bt-mlp-lr0.001", "bt-mlp-lr0.0003"):
        assert f"/bt-beta1/{name}/" in text
