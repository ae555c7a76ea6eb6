"""The ``preferences`` source, the ``observed``/``flip`` annotators, the ``given`` design and the
metrics of worlds without a golden reward."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent / "data"))
os.environ["HF_HUB_OFFLINE"] = "1"

from conftest import TINY_CONFIG, deep_merge
from embrm.annotators import annotate, make_annotator
from embrm.config import validate
from embrm.designs import get
from embrm.errors import ConfigError, DataError
from embrm.preference_metrics import (
    GOLDEN_METRICS,
    expected_calibration_error,
    given_test_pairs,
    pair_metrics,
)
from embrm.sources import SOURCES, build_world, check_worlds
from embrm.sources.preference_rows import read_units, shared_prefix, verify
from embrm.world import World

ROOT = Path(__file__).parents[1]


def world_spec(spec: dict) -> dict:
    """A world entry as the validated config holds it (defaults filled)."""
    return validate(deep_merge(TINY_CONFIG, {"worlds": {"w": spec}}))["worlds"]["w"]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def units_of(path: Path, **extra) -> pd.DataFrame:
    units, _ = read_units(world_spec({"source": "preferences", "path": str(path), **extra}))
    return units


EXPLICIT = [
    {"prompt": "P1", "chosen": "good one", "rejected": "bad one", "split": "train"},
    {"prompt": "P1", "chosen": "fine", "rejected": "worse", "split": "train"},
    {"prompt": "P2", "chosen": "yes", "rejected": "no", "split": "test"},
    {"prompt": "P3", "chosen": "sure", "rejected": "nope", "split": "test"},
]
# What every pairwise form must give for EXPLICIT: (prompt, chosen, rejected, split) per unit.
EXPECTED = [
    ("P1", "good one", "bad one", "train"),
    ("P1", "fine", "worse", "train"),
    ("P2", "yes", "no", "test"),
    ("P3", "sure", "nope", "test"),
]


def as_tuples(units: pd.DataFrame) -> list[tuple]:
    return [
        (u.prompt, u.responses[0], u.responses[1], u.split) for u in units.itertuples(index=False)
    ]


# --- input forms --------------------------------------------------------------------------------


def test_explicit_form_gives_the_hand_written_pairs(tmp_path):
    units = units_of(write_jsonl(tmp_path / "e.jsonl", EXPLICIT))
    assert units.attrs["form"] == "explicit"
    assert as_tuples(units) == EXPECTED
    assert units["rewards"].tolist() == [[0.5, -0.5]] * 4  # margin 1: chosen +1/2, rejected −1/2


def test_implicit_form_takes_the_shared_prefix_as_prompt(tmp_path):
    rows = [
        {
            "chosen": f"{r['prompt']}\nA: {r['chosen']}",
            "rejected": f"{r['prompt']}\nA: {r['rejected']}",
        }
        | {"split": r["split"]}
        for r in EXPLICIT
    ]
    frame = pd.DataFrame(rows)
    frame.to_csv(tmp_path / "i.csv", index=False)
    units = units_of(tmp_path / "i.csv")
    assert units.attrs["form"] == "implicit"
    # The prompt ends before the whitespace that starts the responses.
    expected = [(f"{p}\nA:", f" {c}", f" {r}", s) for p, c, r, s in EXPECTED]
    assert as_tuples(units) == expected
    # A shared first word of both responses stays with the prompt up to its last whitespace.
    assert shared_prefix("Q: x\nA: Yes it is", "Q: x\nA: Yeah") == len("Q: x\nA:")


def test_conversational_forms_render_with_the_stated_template(tmp_path):
    explicit_prompt = [
        {
            "prompt": [{"role": "user", "content": r["prompt"]}],
            "chosen": [{"role": "assistant", "content": r["chosen"]}],
            "rejected": [{"role": "assistant", "content": r["rejected"]}],
            "split": r["split"],
        }
        for r in EXPLICIT
    ]
    (tmp_path / "c.json").write_text(json.dumps(explicit_prompt))
    implicit_prompt = [
        {
            "chosen": r["prompt"] + r["chosen"],
            "rejected": r["prompt"] + r["rejected"],
            "split": r["split"],
        }
        for r in explicit_prompt
    ]
    pd.DataFrame(implicit_prompt).to_parquet(tmp_path / "c.parquet")
    expected = [
        (f"user: {p}\n", f"assistant: {c}\n", f"assistant: {r}\n", s) for p, c, r, s in EXPECTED
    ]
    for name in ("c.json", "c.parquet"):
        units = units_of(tmp_path / name)
        assert units.attrs["form"] == "conversational"
        assert as_tuples(units) == expected, name
    custom = units_of(tmp_path / "c.json", message_template="<{role}>{content}</{role}>")
    assert as_tuples(custom)[0][:2] == ("<user>P1</user>", "<assistant>good one</assistant>")


def test_conversational_form_with_the_tokenizers_chat_template(tmp_path):
    import tinymodels

    tokenizer = tinymodels.tokenizer()
    tokenizer.chat_template = (
        "{% for m in messages %}[{{ m['role'] }}]{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}[assistant]{% endif %}"
    )
    tokenizer.save_pretrained(tmp_path / "tok")
    rows = [
        {
            "prompt": [{"role": "user", "content": f"P{i}"}],
            "chosen": [{"role": "assistant", "content": "good"}],
            "rejected": [{"role": "assistant", "content": "bad"}],
        }
        for i in range(1, 5)
    ]
    (tmp_path / "c.json").write_text(json.dumps(rows))
    spec = {"embedder": {"type": "sentence", "model": str(tmp_path / "tok")}}
    units = units_of(tmp_path / "c.json", chat_template="tokenizer", test_fraction=0.5, **spec)
    units = units.sort_values("row")
    # The prompt is rendered with the generation prompt; each response is what the whole
    # conversation adds after it.
    assert units.prompt.iloc[0] == "[user]P1\n[assistant]"
    assert units.responses.iloc[0] == ["good\n", "bad\n"]


def test_multi_response_form_keeps_the_scores(tmp_path):
    rows = [
        {"prompt": "P1", "responses": ["a", "b", "c"], "scores": [1, 3, 2], "split": "train"},
        {"prompt": "P2", "responses": ["d", "e", "f"], "scores": [0, 0, 5], "split": "train"},
        {"prompt": "P3", "responses": ["g", "h", "i"], "scores": [2, 1, 1], "split": "test"},
        {"prompt": "P4", "responses": ["j", "k", "l"], "scores": [1, 2, 3], "split": "test"},
    ]
    units = units_of(write_jsonl(tmp_path / "m.jsonl", rows))
    assert units.attrs["form"] == "multi"
    assert units.responses.tolist()[0] == ["a", "b", "c"]
    assert units.rewards.tolist()[1] == [0.0, 0.0, 5.0]
    a, b, target, _ = given_test_pairs(np.array(units.rewards.tolist()[2:], dtype=float))
    # All pairs of a prompt: (0,1), (0,2), (1,2); the tie (1 vs 1) has target 1/2.
    assert (a.tolist(), b.tolist()) == ([0, 0, 1, 3, 3, 4], [1, 2, 2, 4, 5, 5])
    assert target.tolist() == [1.0, 1.0, 0.5, 0.0, 0.0, 0.0]


def test_margin_and_tie_columns(tmp_path):
    rows = [dict(r) for r in EXPLICIT]
    rows[0]["margin"], rows[1]["tie"], rows[1]["margin"] = 3.0, True, 0
    units = units_of(write_jsonl(tmp_path / "e.jsonl", rows))
    assert units.rewards.tolist()[:3] == [[1.5, -1.5], [0.0, 0.0], [0.5, -0.5]]


# --- splits -------------------------------------------------------------------------------------


def test_prompt_level_split_leaks_nothing_and_is_seeded():
    path = ROOT / "tests" / "data" / "pref-explicit.jsonl"
    units = units_of(path, test_fraction=0.3, split_seed=4)
    train = set(units.loc[units.split == "train", "prompt"])
    test = set(units.loc[units.split == "test", "prompt"])
    assert train and test and not train & test
    assert len(test) == round(0.3 * 75)
    again = units_of(path, test_fraction=0.3, split_seed=4)
    assert again.split.tolist() == units.split.tolist()
    other = units_of(path, test_fraction=0.3, split_seed=5)
    assert other.split.tolist() != units.split.tolist()


def test_user_split_with_a_prompt_in_both_splits_is_refused(tmp_path):
    rows = [dict(r) for r in EXPLICIT]
    rows[1]["split"] = "test"
    path = write_jsonl(tmp_path / "e.jsonl", rows)
    with pytest.raises(DataError, match=r"e\.jsonl: row 1, column 'split': prompt 'P1'.*one split"):
        units_of(path)
    rows = [dict(r) for r in EXPLICIT]
    write_jsonl(tmp_path / "train.jsonl", rows[:2])
    write_jsonl(tmp_path / "test.jsonl", [*rows[2:], rows[0]])
    spec = {"train_path": str(tmp_path / "train.jsonl"), "test_path": str(tmp_path / "test.jsonl")}
    with pytest.raises(DataError, match=r"test\.jsonl: row 2: prompt 'P1' is also in"):
        read_units(world_spec({"source": "preferences", **spec}))


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"rejected": None}, r"row 2, column 'rejected': missing"),
        ({"chosen": "   "}, r"row 2, column 'chosen': empty text"),
        ({"chosen": "no"}, r"row 2, column 'rejected': identical to the chosen"),
        ({"margin": -1}, r"row 2, column 'margin': expected a finite number > 0"),
        ({"tie": "maybe"}, r"row 2, column 'tie': expected true or false"),
    ],
)
def test_bad_rows_are_refused_naming_file_row_and_column(tmp_path, change, match):
    rows = [dict(r) for r in EXPLICIT]
    rows[2].update(change)
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    spec = world_spec({"source": "preferences", "path": str(path)})
    with pytest.raises(DataError, match=r"bad\.jsonl: " + match):
        verify(spec)


def test_missing_column_and_wrong_last_speaker_are_refused(tmp_path):
    rows = [{k: v for k, v in r.items() if k != "rejected"} for r in EXPLICIT]
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError, match=r"missing column\(s\) \['rejected'\]"):
        units_of(path)
    rows = [
        {
            "prompt": [{"role": "user", "content": r["prompt"]}],
            "chosen": [{"role": "assistant", "content": r["chosen"]}],
            "rejected": [{"role": "assistant", "content": r["rejected"]}],
            "split": r["split"],
        }
        for r in EXPLICIT
    ]
    rows[3]["rejected"].append({"role": "user", "content": "and?"})
    path = write_jsonl(tmp_path / "conv.jsonl", rows)
    with pytest.raises(
        DataError, match=r"row 3, column 'rejected': the last message is the user's"
    ):
        units_of(path)


def test_a_subset_with_a_single_row_is_refused(tmp_path):
    rows = [dict(r) | {"subset": "a"} for r in EXPLICIT]
    rows[3]["subset"] = "lonely"
    path = write_jsonl(tmp_path / "s.jsonl", rows)
    with pytest.raises(DataError, match=r"row 3, column 'subset': subset 'lonely' has a single"):
        units_of(path)


def test_sections_must_cover_the_subsets_and_not_overlap(tmp_path):
    rows = [dict(r) | {"subset": "ab"[i // 2]} for i, r in enumerate(EXPLICIT)]
    path = write_jsonl(tmp_path / "s.jsonl", rows)
    spec = world_spec({"source": "preferences", "path": str(path), "sections": {"x": ["a"]}})
    with pytest.raises(ConfigError, match="subset 'b' of the data is in no section"):
        verify(spec)
    spec = world_spec(
        {"source": "preferences", "path": str(path), "sections": {"x": ["a"], "y": ["a", "b"]}}
    )
    with pytest.raises(ConfigError, match=r"sections\.y': subset 'a' is already in section 'x'"):
        check_worlds({"w": spec})
    spec = world_spec({"source": "preferences", "path": str(path), "chat_template": "tokenizer"})
    with pytest.raises(ConfigError, match=r"chat_template': 'tokenizer' .*set embedder\.model"):
        check_worlds({"w": spec})


def test_bad_input_is_found_by_the_preflight_check(tmp_path):
    """The source's verify is registered, so `embrm plan` and the onstart hook run it."""
    from embrm.config import Plan
    from embrm.preflight import check_data

    assert SOURCES["preferences"].verify is not None
    rows = [dict(r) for r in EXPLICIT]
    rows[0]["chosen"] = ""
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    config = deep_merge(
        TINY_CONFIG,
        {
            "worlds": {"prefs": {"source": "preferences", "path": str(path)}},
            "annotators": {"observed": {"model": "observed"}},
        },
    )
    config["grid"].update(worlds=["prefs"], annotators=["observed"], designs=["given"])
    with pytest.raises(DataError, match=r"world 'prefs': .*bad\.jsonl: row 0, column 'chosen'"):
        check_data(Plan(config, source="config.yaml"), None)


# --- labels and pairs ---------------------------------------------------------------------------


def test_given_design_deals_the_datasets_pairs_as_nested_subsamples():
    rewards = np.tile([0.5, -0.5], (50, 1))
    design = get("given")
    assert design.capacity(50, 2) == 50
    small = design.draw(rewards, 10, np.random.default_rng(3))
    large = design.draw(rewards, 50, np.random.default_rng(3))
    assert small[0].tolist() == large[0][:10].tolist()
    assert small[1].tolist() == large[1][:10].tolist()
    a, b = large
    assert (a // 2 == b // 2).all()  # each pair is one row's chosen and rejected
    assert sorted((a // 2).tolist()) == list(range(50))  # every row once
    with pytest.raises(ConfigError, match="at most 50 distinct pairs"):
        design.draw(rewards, 51, np.random.default_rng(0))
    multi = design.draw(np.zeros((4, 3)), 12, np.random.default_rng(0))
    keys = {(min(x, y), max(x, y)) for x, y in zip(*multi, strict=True)}
    assert len(keys) == 12 and all(x // 3 == y // 3 for x, y in keys)


def test_observed_labels_are_the_datasets_preferences():
    rewards = np.array([[0.5, -0.5]] * 500 + [[0.0, 0.0]] * 500)
    a, b = get("given").draw(rewards, 1000, np.random.default_rng(0))
    flat = rewards.ravel()
    labels, stats = annotate(
        make_annotator({"model": "observed"}), flat[a], flat[b], 1.0, np.random.default_rng(1)
    )
    decided = flat[a] != flat[b]
    assert (labels[decided] == (a[decided] % 2 == 0)).all()  # the chosen one (index 0) wins
    assert 0.4 < labels[~decided].mean() < 0.6  # ties are coin flips
    assert stats["realized_error_rate"] == pytest.approx(0.25, abs=0.03)  # ties count 1/2


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.3])
def test_flip_reverses_that_share_of_labels(rate):
    n = 20_000
    flat_a, flat_b = np.full(n, 0.5), np.full(n, -0.5)
    labels, stats = annotate(
        make_annotator({"model": "flip", "rate": rate}),
        flat_a,
        flat_b,
        1.0,
        np.random.default_rng(7),
    )
    flipped = 1 - labels.mean()
    assert abs(flipped - rate) <= 4 * np.sqrt(rate * (1 - rate) / n) + 1e-12
    assert stats["expected_error_rate"] == pytest.approx(rate)
    with pytest.raises(ConfigError, match="rate"):
        make_annotator({"model": "flip", "rate": 1.5})


# --- metrics ------------------------------------------------------------------------------------


def test_accuracy_and_log_loss_equal_a_brute_force_reference():
    g = np.random.default_rng(0)
    rewards = g.integers(0, 3, size=(40, 3)).astype(float)  # many ties
    scores = g.integers(0, 4, size=(40, 3)).astype(float)  # some equal predictions
    subsets = g.integers(0, 2, size=40)
    got = pair_metrics(scores, rewards, subsets, ["x", "y"])
    right, count, loss, terms = {0: [], 1: []}, 0, 0.0, 0
    for p in range(40):
        for i in range(3):
            for j in range(i + 1, 3):
                d = scores[p, i] - scores[p, j]
                prob = 1 / (1 + np.exp(-d))
                t = (
                    1.0
                    if rewards[p, i] > rewards[p, j]
                    else 0.0
                    if rewards[p, i] < rewards[p, j]
                    else 0.5
                )
                loss -= t * np.log(prob) + (1 - t) * np.log(1 - prob)
                terms += 1
                if t == 0.5:
                    count += 1
                    continue
                right[subsets[p]].append(0.5 if d == 0 else float((d > 0) == (t == 1.0)))
    assert got["pref_tie_pairs"] == count
    assert got["pref_accuracy"] == pytest.approx(np.mean(right[0] + right[1]))
    assert got["pref_accuracy_x"] == pytest.approx(np.mean(right[0]))
    assert got["pref_accuracy_y"] == pytest.approx(np.mean(right[1]))
    assert got["pref_log_loss"] == pytest.approx(loss / terms)


def test_section_score_on_known_subset_accuracies():
    # Subset a: 4 pairs, 3 right (0.75); b: 2 pairs, 1 right (0.5); c: 2 pairs, both right.
    rewards = np.tile([1.0, 0.0], (8, 1))
    right = [1, 1, 1, 0, 1, 0, 1, 1]
    scores = np.array([[1.0, 0.0] if r else [0.0, 1.0] for r in right])
    subsets = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    names = ["a", "b", "c"]
    plain = pair_metrics(scores, rewards, subsets, names)
    assert plain["pref_accuracy_a"] == 0.75 and plain["pref_accuracy_b"] == 0.5
    assert plain["pref_section_score"] == pytest.approx((0.75 + 0.5 + 1.0) / 3)
    # A section pools its subsets' pairs (weights = pair counts); sections weigh equally.
    sections = {"s1": ["a", "b"], "s2": ["c"]}
    weighted = pair_metrics(scores, rewards, subsets, names, sections)
    assert weighted["pref_section_score"] == pytest.approx((4 / 6 + 1.0) / 2)
    assert weighted["pref_accuracy"] == pytest.approx(6 / 8)
    odd = pair_metrics(scores, rewards, subsets, ["a b", "b/c", "c"])
    assert odd["pref_accuracy_a_b"] == 0.75 and odd["pref_accuracy_b_c"] == 0.5


def test_calibration_error():
    assert expected_calibration_error(np.array([0.8] * 10), np.array([1.0] * 8 + [0.0] * 2)) == (
        pytest.approx(0.0)
    )
    assert expected_calibration_error(np.array([0.95, 0.05]), np.array([0.0, 1.0])) == (
        pytest.approx(0.95)
    )
    p = pair_metrics(np.array([[2.0, 0.0]]), np.array([[1.0, 0.0]]), np.zeros(1, int), ["all"])
    assert p["pref_brier"] == pytest.approx((1 - 1 / (1 + np.exp(-2))) ** 2)
    assert p["pref_ece"] == pytest.approx(1 - 1 / (1 + np.exp(-2)))


# --- a world, built -----------------------------------------------------------------------------


def test_world_built_with_a_tiny_model_and_metrics_applied(tmp_path):
    import tinymodels
    from embrm.preference_metrics import apply

    models = tinymodels.build(tmp_path / "models")
    rows = [dict(r) | {"subset": "ab"[i % 2]} for i, r in enumerate(EXPLICIT)]
    rows[1]["chosen"] = "good one"  # a text repeated across rows is embedded once
    rows[1]["rejected"] = "so so"
    path = write_jsonl(tmp_path / "e.jsonl", rows)
    spec = world_spec(
        {
            "source": "preferences",
            "path": str(path),
            "threads": 1,
            "embedder": {"type": "hf-last-token", "model": str(models["llama"]), "device": "cpu"},
        }
    )
    build_world(spec, tmp_path / "w")
    world = World(tmp_path / "w")
    assert world.train.embeddings.shape == (2, 2, 64) and world.test.embeddings.shape == (2, 2, 64)
    np.testing.assert_array_equal(world.train.embeddings[0, 0], world.train.embeddings[1, 0])
    assert world.info["preferences"]["unique_texts"] == 7
    assert world.info["preferences"]["subsets"] == ["a", "b"]
    predictions = np.array([[1.0, 0.0], [0.0, 1.0]])  # right on P2, wrong on P3
    results = {"mean": {name: 0.3 for name in GOLDEN_METRICS} | {"accuracy_vs_labels": 0.9}}
    apply(tmp_path / "w", world.info, results, {"mean": predictions})
    metrics = results["mean"]
    assert metrics["pref_accuracy"] == 0.5 and metrics["accuracy_vs_labels"] == 0.9
    assert all(np.isnan(metrics[name]) for name in GOLDEN_METRICS)
    # A finished embedding is reused: a second build embeds nothing.
    stamp = (tmp_path / "w" / "preferences" / "unique_embeddings.npy").stat().st_mtime_ns
    build_world(spec, tmp_path / "w")
    assert (tmp_path / "w" / "preferences" / "unique_embeddings.npy").stat().st_mtime_ns == stamp


def test_demo_config_validates_and_its_files_verify():
    import yaml

    config = yaml.safe_load((ROOT / "configs" / "preferences-demo.yaml").read_text())
    worlds = validate(config)["worlds"]
    check_worlds(worlds)
    for spec in worlds.values():
        spec = {**spec, "path": str(ROOT / spec["path"])}
        verify(spec)


def test_findings_test_nothing_on_a_preference_summary_without_accuracy():
    """Results written before pref_accuracy existed: every claim not tested, and why
    (tests/test_preference_findings.py tests the claims on accuracy)."""
    from embrm.findings import findings

    rows = [
        {
            "world": "prefs",
            "source": "preferences",
            "design": "given",
            "n": n,
            "annotator": "observed",
            "head": head,
            "seed": seed,
            "bon_gain_normalized": float("nan"),
        }
        for n in (10, 20)
        for head in ("bt-mlp", "clf-mlp")
        for seed in (0, 1)
    ]
    table = findings(pd.DataFrame(rows))
    assert set(table["verdict"]) == {"not tested"}
    assert table["note"].str.contains("no golden reward").all()


def test_multi_form_with_unequal_response_counts_is_refused(tmp_path):
    rows = [
        {"prompt": f"P{i}", "responses": ["a", "b", "c"], "scores": [1, 2, 3]} for i in range(4)
    ]
    rows[2] = {"prompt": "P2", "responses": ["a", "b"], "scores": [1, 2]}
    path = write_jsonl(tmp_path / "m.jsonl", [r | {"split": "train"} for r in rows])
    write_jsonl(tmp_path / "t.jsonl", [r | {"prompt": r["prompt"] + "t"} for r in rows[:2]])
    spec = {"train_path": str(path), "test_path": str(tmp_path / "t.jsonl")}
    with pytest.raises(DataError, match=r"row 2: 2 responses, but the train split's first prompt"):
        read_units(world_spec({"source": "preferences", **spec}))


def test_csv_with_empty_optional_cells(tmp_path):
    frame = pd.DataFrame(EXPLICIT).assign(margin=["2", "", "", "4"], tie=["", "true", "", ""])
    frame.to_csv(tmp_path / "e.csv", index=False)
    units = units_of(tmp_path / "e.csv")
    assert as_tuples(units) == EXPECTED
    assert units.rewards.tolist() == [[1.0, -1.0], [0.0, 0.0], [0.5, -0.5], [2.0, -2.0]]
    frame.assign(subset=["a", "a", "", "b"]).to_csv(tmp_path / "s.csv", index=False)
    with pytest.raises(DataError, match=r"row 2, column 'subset': missing subset name"):
        units_of(tmp_path / "s.csv")


@pytest.mark.parametrize("spec", [{"model": "flip", "rate": 0.3}, {"model": "observed"}])
def test_labels_of_a_smaller_quantity_are_a_prefix_of_a_larger_ones(spec):
    """Flipped labels and tied pairs' coins alike (one uniform per pair)."""
    rewards = np.array([[0.5, -0.5]] * 200 + [[0.0, 0.0]] * 100)  # a third of the rows tie
    flat = rewards.ravel()
    annotator = make_annotator(spec)
    labels, ties = {}, {}
    for n in (60, 170):
        a, b = get("given").draw(rewards, n, np.random.default_rng(11))
        labels[n], _ = annotate(annotator, flat[a], flat[b], 1.0, np.random.default_rng(5))
        ties[n] = flat[a] == flat[b]
    assert ties[170].any()
    assert labels[60].tolist() == labels[170][:60].tolist()


def test_heldout_accuracy_figure_reads_each_worlds_reference(tmp_path):
    """Figure 11: a preference world's own accuracy where it has one, else the golden order's."""
    from embrm.figures import FIGURES, head_palette
    from embrm.figures.heldout_accuracy import reference_accuracy

    rows = []
    for world, source in (("prefs", "preferences"), ("synthetic", "synthetic")):
        for head in ("bt-mlp", "clf-mlp"):
            for n in (60, 170):
                for seed in (0, 1):
                    golden = float("nan") if source == "preferences" else 0.7 + n / 1000
                    preference = 0.6 + n / 1000 if source == "preferences" else float("nan")
                    rows.append(
                        {"world": world, "source": source, "annotator": "observed", "head": head,
                         "n": n, "seed": seed, "design": "given",
                         "accuracy_vs_golden": golden, "pref_accuracy": preference}
                    )  # fmt: skip
    summary = pd.DataFrame(rows)
    accuracy = reference_accuracy(summary)
    assert np.allclose(accuracy[summary.source == "preferences"], 0.6 + summary.n[:8] / 1000)
    assert np.allclose(accuracy[summary.source == "synthetic"], 0.7 + summary.n[8:].values / 1000)
    # Without a preference column (no preference world in the grid) it is the golden accuracy.
    assert reference_accuracy(summary.drop(columns="pref_accuracy")).equals(
        summary["accuracy_vs_golden"].astype(float)
    )
    figure = FIGURES["heldout_accuracy"].draw(summary, head_palette(summary["head"]))
    titles = {ax.get_title() for ax in figure.axes}
    assert any("prefs" in t for t in titles) and any("synthetic" in t for t in titles)
    figure.savefig(tmp_path / "figure.png")
    assert (tmp_path / "figure.png").stat().st_size > 0
