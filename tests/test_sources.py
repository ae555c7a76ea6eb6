"""The npy, table and hf sources: layouts, reading, splitting, validation and world assembly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent / "data"))
os.environ["HF_HUB_OFFLINE"] = "1"

import tinymodels
from conftest import TINY_CONFIG, deep_merge
from embrm import stages
from embrm.config import validate
from embrm.errors import ConfigError, DataError
from embrm.sources import build_world, check_worlds, npy, prompts, table, text
from embrm.world import World

TEXT_SET = Path(__file__).parent / "data" / "text-set.jsonl"


def world_spec(spec: dict) -> dict:
    """A world entry as the validated config holds it (defaults filled)."""
    return validate(deep_merge(TINY_CONFIG, {"worlds": {"w": spec}}))["worlds"]["w"]


# --- npy ----------------------------------------------------------------------------------------


@pytest.fixture
def arrays(tmp_path) -> dict:
    """Train (30 prompts × 4) and test (12 × 7) in both layouts, float16, D = 8."""
    g = np.random.default_rng(0)
    out = {}
    for split, (n, k) in {"train": (30, 4), "test": (12, 7)}.items():
        emb = g.standard_normal((n, k, 8)).astype(np.float16)
        rewards = emb.astype(np.float64) @ g.standard_normal(8) + g.normal(0, 0.1, (n, k))
        paths = {
            "nkd": tmp_path / f"{split}_nkd.npy",
            "knd": tmp_path / f"{split}_knd.npy",
            "nk": tmp_path / f"{split}_nk.npy",
            "nk1": tmp_path / f"{split}_nk1.npy",
            "kn": tmp_path / f"{split}_kn.npy",
        }
        np.save(paths["nkd"], emb)
        np.save(paths["knd"], np.ascontiguousarray(emb.transpose(1, 0, 2)))
        np.save(paths["nk"], rewards)
        np.save(paths["nk1"], rewards[:, :, None])
        np.save(paths["kn"], rewards.T.copy())
        out[split] = {"emb": emb, "rewards": rewards, **paths}
    return out


def npy_spec(arrays, emb: str, rew: str, layout: str = "auto", **extra) -> dict:
    return world_spec(
        {
            "source": "npy",
            **{
                split: {
                    "embeddings": str(arrays[split][emb]),
                    "rewards": str(arrays[split][rew]),
                    "layout": layout,
                }
                for split in ("train", "test")
            },
            **extra,
        }
    )


@pytest.mark.parametrize(
    ("emb", "rew", "layout", "flip"),
    [
        ((100, 10, 8), (100, 10, 1), "prompt-major", False),
        ((10, 100, 8), (100, 10, 1), "response-major", False),
        ((2000, 500, 8), (2000, 500, 1), "prompt-major", False),
    ],
)
def test_auto_layout(emb, rew, layout, flip):
    assert npy.resolve_layout(emb, rew, "auto", "e.npy", "r.npy")[:2] == (layout, flip)


@pytest.mark.parametrize(
    ("emb", "rew"),
    [
        ((100, 10, 8), (100, 10)),
        ((100, 10, 8), (10, 100)),
        ((10, 100, 8), (10, 100)),
        # The usual Best-of-N test split: 40 prompts × 64 responses, prompt-major. A rule such as
        # "the longer axis is the prompts" would silently read 64 prompts × 40 responses.
        ((40, 64, 8), (40, 64)),
    ],
)
def test_auto_layout_stops_when_both_readings_fit(emb, rew):
    with pytest.raises(ConfigError) as error:
        npy.resolve_layout(emb, rew, "auto", "e.npy", "r.npy")
    message = str(error.value)
    assert "'layout" in message and "e.npy" in message
    assert f"prompt-major reads {emb[0]} prompts × {emb[1]} responses" in message
    assert f"response-major reads {emb[1]} prompts × {emb[0]} responses" in message


def test_explicit_layout_overrides_the_length_rule():
    # 5 prompts with 50 responses each: the length rule would guess wrong, the config decides.
    assert npy.resolve_layout((5, 50, 8), (5, 50), "prompt-major", "e", "r")[:2] == (
        "prompt-major",
        False,
    )
    assert npy.resolve_layout((5, 50, 8), (50, 5), "prompt-major", "e", "r")[:2] == (
        "prompt-major",
        True,
    )
    assert npy.resolve_layout((6, 6, 8), (6, 6), "response-major", "e", "r")[:2] == (
        "response-major",
        True,
    )
    with pytest.raises(ConfigError, match="set 'layout'"):
        npy.resolve_layout((6, 6, 8), (6, 6), "auto", "e.npy", "r.npy")


@pytest.mark.parametrize("rew", [(100, 9), (100, 10, 2), (99, 10, 1), (1000,)])
def test_mismatched_rewards_rejected_with_both_shapes(rew):
    with pytest.raises(DataError) as error:
        npy.resolve_layout((100, 10, 8), rew, "auto", "emb.npy", "rew.npy")
    message = str(error.value)
    assert "rew.npy" in message and "emb.npy" in message
    assert str(tuple(rew)) in message and "(100, 10, 8)" in message


def test_both_axis_orders_give_identical_downstream_results(arrays, tmp_path):
    worlds = {
        "nkd": npy_spec(arrays, "nkd", "nk", layout="prompt-major"),
        "knd": npy_spec(arrays, "knd", "kn", layout="response-major"),
        "knd-nk1": npy_spec(arrays, "knd", "nk1"),
    }
    metrics = {}
    for name, spec in worlds.items():
        root = tmp_path / name
        build_world(spec, root / "world")
        world = World(root / "world")
        np.testing.assert_array_equal(world.train.embeddings, arrays["train"]["emb"])
        np.testing.assert_array_equal(world.test.embeddings, arrays["test"]["emb"])
        np.testing.assert_allclose(world.train.rewards, arrays["train"]["rewards"], rtol=1e-6)
        stages.make_pairs(root / "world", "cross-random", 60, 0, 50, root / "pairs.npz")
        stages.annotate(
            root / "world",
            root / "pairs.npz",
            {"model": "bt", "beta": 3},
            "std",
            0,
            root / "labels.npz",
            root / "annotation.json",
        )
        stages.train(
            root / "world",
            root / "pairs.npz",
            root / "labels.npz",
            {"type": "bt-mlp", "params": {"hidden": [8], "max_epochs": 3}},
            0,
            threads=1,
            device="cpu",
            model_dir=root / "model",
            predictions_out=root / "pred.npy",
            curves_out=root / "curves.csv",
            info_out=root / "train.json",
        )
        stages.evaluate(
            root / "world",
            root / "pred.npy",
            root / "pairs.npz",
            root / "labels.npz",
            root / "annotation.json",
            root / "train.json",
            root / "curves.csv",
            {"run": name},
            {"repeats": 5, "n_values": [2, 7], "seed": 0},
            root / "metrics.json",
        )
        metrics[name] = json.loads((root / "metrics.json").read_text())["metrics"]
        assert np.isfinite(metrics[name]["mean"]["bon_gain"])
    assert metrics["nkd"] == metrics["knd"] == metrics["knd-nk1"]
    # Prompt-major input is linked, not copied; response-major input is transposed into a copy.
    assert os.path.islink(tmp_path / "nkd" / "world" / "train_embeddings.npy")
    assert not os.path.islink(tmp_path / "knd" / "world" / "train_embeddings.npy")
    info = json.loads((tmp_path / "knd" / "world" / "world.json").read_text())
    assert info["source"]["resolved"]["train"]["layout"] == "response-major"


def test_copy_mode_and_float32(arrays, tmp_path):
    for split in ("train", "test"):
        np.save(arrays[split]["nkd"], arrays[split]["emb"].astype(np.float32))
    build_world(npy_spec(arrays, "nkd", "nk1", link="copy"), tmp_path / "w")
    stored = tmp_path / "w" / "train_embeddings.npy"
    assert not stored.is_symlink() and np.load(stored).dtype == np.float32
    np.testing.assert_array_equal(np.load(stored), arrays["train"]["emb"].astype(np.float32))


def test_npy_rejects_bad_dtype_nan_and_mismatch_naming_the_file(arrays, tmp_path):
    bad = tmp_path / "bad.npy"
    np.save(bad, arrays["train"]["emb"].astype(np.float64))
    spec = npy_spec(arrays, "nkd", "nk", layout="prompt-major")
    spec["train"]["embeddings"] = str(bad)
    with pytest.raises(DataError, match=r"bad\.npy.*float64.*float16 or float32"):
        build_world(spec, tmp_path / "w1")

    nan = arrays["test"]["emb"].copy()
    nan[5, 3, 2] = np.nan
    np.save(bad, nan)
    spec = npy_spec(arrays, "nkd", "nk", layout="prompt-major")
    spec["test"]["embeddings"] = str(bad)
    with pytest.raises(DataError, match=r"bad\.npy.*NaN.*prompt 5, response 3"):
        build_world(spec, tmp_path / "w2")
    np.save(bad, np.ascontiguousarray(nan.transpose(1, 0, 2)))
    spec["test"]["rewards"] = str(arrays["test"]["kn"])
    spec["test"]["layout"] = "response-major"
    with pytest.raises(DataError, match=r"bad\.npy.*NaN.*prompt 5, response 3"):
        build_world(spec, tmp_path / "w3")

    rewards = arrays["train"]["rewards"].copy()
    rewards[2, 1] = np.inf
    np.save(bad, rewards)
    spec = npy_spec(arrays, "nkd", "nk", layout="prompt-major")
    spec["train"]["rewards"] = str(bad)
    with pytest.raises(DataError, match=r"bad\.npy.*NaN or inf \(prompt 2, response 1\)"):
        build_world(spec, tmp_path / "w4")
    assert not any((tmp_path / d / "world.json").exists() for d in ("w1", "w2", "w3", "w4"))


def test_npy_cli_reports_mismatch_with_both_shapes_and_exit_2(arrays, tmp_path):
    spec = npy_spec(arrays, "nkd", "nk", layout="prompt-major")
    spec["train"]["rewards"] = str(arrays["test"]["nk"])
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "embrm",
            "world",
            "--spec",
            json.dumps(spec),
            "--out",
            str(tmp_path / "w"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "(12, 7)" in result.stderr and "(30, 4, 8)" in result.stderr
    assert "test_nk.npy" in result.stderr and "train_nkd.npy" in result.stderr
    assert not (tmp_path / "w" / "world.json").exists()


# --- table --------------------------------------------------------------------------------------


def rows(prompts: int, responses: int, split: str | None = None, start: int = 0) -> list[dict]:
    out = []
    for p in range(start, start + prompts):
        for k in range(responses):
            row = {"prompt": f"question {p}?", "response": f" answer {p}.{k}", "reward": p + k / 10}
            if split:
                row["split"] = split
            out.append(row)
    return out


def test_shipped_text_set_long_form():
    texts = table.texts_from_table(world_spec({"source": "table", "path": str(TEXT_SET)}))
    assert list(texts.columns) == table.TEXT_COLUMNS
    train, test = texts[texts.split == "train"], texts[texts.split == "test"]
    assert (train.p.nunique(), train.k.nunique(), len(train)) == (60, 6, 360)
    assert (test.p.nunique(), test.k.nunique(), len(test)) == (15, 12, 180)
    raw = pd.read_json(TEXT_SET, lines=True)
    # Rows keep file order within a prompt, and rewards stay attached to their responses.
    assert texts.set_index("response").loc[raw.response[5], "reward"] == raw.reward[5]
    assert train.prompt.iloc[0] == raw.prompt[0] and train.k.iloc[:6].tolist() == list(range(6))


def test_formats_and_forms_agree(tmp_path):
    long = pd.DataFrame(rows(4, 3, "train") + rows(3, 5, "test", start=4))
    long.to_csv(tmp_path / "long.csv", index=False)
    long.to_parquet(tmp_path / "long.parquet")
    wide = (
        long.groupby("prompt", sort=False)
        .agg({"response": list, "reward": list, "split": "first"})
        .reset_index()
    )
    wide.to_parquet(tmp_path / "wide.parquet")
    wide.to_json(tmp_path / "wide.jsonl", orient="records", lines=True)
    wide_csv = wide.assign(
        response=wide.response.map(json.dumps), reward=wide.reward.map(json.dumps)
    )
    wide_csv.to_csv(tmp_path / "wide.csv", index=False)
    numbered = pd.DataFrame(
        [
            {
                "prompt": f"q{p}",
                "split": "train" if p < 3 else "test",
                **{f"response_{k}": f"r{p}{k}" for k in range(2)},
                **{f"reward_{k}": str(p * k) for k in range(2)},
            }
            for p in range(5)
        ]
    )
    numbered.to_csv(tmp_path / "numbered.csv", index=False)

    reference = table.texts_from_table(
        world_spec({"source": "table", "path": str(tmp_path / "long.csv")})
    )
    assert reference.groupby("split").p.nunique().to_dict() == {"test": 3, "train": 4}
    for name in ("long.parquet", "wide.parquet", "wide.jsonl", "wide.csv"):
        got = table.texts_from_table(world_spec({"source": "table", "path": str(tmp_path / name)}))
        pd.testing.assert_frame_equal(got, reference, check_dtype=False)
    got = table.texts_from_table(
        world_spec({"source": "table", "path": str(tmp_path / "numbered.csv")})
    )
    assert got[got.split == "train"].shape[0] == 6 and got.reward.tolist()[-2:] == [0.0, 4.0]


def test_separate_files_and_test_fraction_and_prompt_ids(tmp_path):
    pd.DataFrame(rows(5, 3)).to_json(tmp_path / "train.jsonl", orient="records", lines=True)
    # The same prompt text in both files stays two prompts: one per split.
    pd.DataFrame(rows(3, 4)).to_json(tmp_path / "test.jsonl", orient="records", lines=True)
    texts = table.texts_from_table(
        world_spec(
            {
                "source": "table",
                "train_path": str(tmp_path / "train.jsonl"),
                "test_path": str(tmp_path / "test.jsonl"),
            }
        )
    )
    assert texts.groupby("split").size().to_dict() == {"test": 12, "train": 15}

    pd.DataFrame(rows(20, 3)).to_json(tmp_path / "all.jsonl", orient="records", lines=True)
    spec = world_spec(
        {"source": "table", "path": str(tmp_path / "all.jsonl"), "test_fraction": 0.25}
    )
    first, again = table.texts_from_table(spec), table.texts_from_table(spec)
    pd.testing.assert_frame_equal(first, again)
    assert first[first.split == "test"].p.nunique() == 5
    reseeded = table.texts_from_table({**spec, "split_seed": 1})
    assert set(reseeded[reseeded.split == "test"].prompt) != set(
        first[first.split == "test"].prompt
    )

    # An id column groups rows whatever their text: 2 ids per split, each 2 texts × 2 rows.
    grouped = pd.DataFrame(rows(4, 2, "train") + rows(4, 2, "test", start=4))
    grouped["conversation"] = [f"c{i // 4}" for i in range(16)]
    grouped.to_json(tmp_path / "g.jsonl", orient="records", lines=True)
    texts = table.texts_from_table(
        world_spec(
            {
                "source": "table",
                "path": str(tmp_path / "g.jsonl"),
                "columns": {"prompt_id": "conversation"},
            }
        )
    )
    assert texts.groupby("split").k.max().to_dict() == {"test": 3, "train": 3}


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (
            rows(3, 3, "train")[:-1] + rows(2, 3, "test", start=3),
            r"ragged train split.*question 2\?.* has 2, most have 3",
        ),
        (
            [
                {**r, "reward": "high"} if i == 4 else r
                for i, r in enumerate(rows(2, 2, "train") + rows(2, 2, "test", start=2))
            ],
            r"row 4: reward 'high' is not a finite number",
        ),
        (
            [
                {**r, "split": "valid"} if i == 0 else r
                for i, r in enumerate(rows(2, 2, "train") + rows(2, 2, "test", start=2))
            ],
            r"\['valid'\]; expected 'train' or 'test'",
        ),
        (rows(2, 2, "train") + rows(1, 2, "test", start=2), r"test split has 1 prompt\(s\) × 2"),
        (
            [{k: v for k, v in r.items() if k != "reward"} for r in rows(2, 2, "train")],
            r"missing column\(s\) \['reward'\]",
        ),
        (
            [
                {**r, "split": "test"} if i == 1 else r
                for i, r in enumerate(rows(2, 2, "train") + rows(2, 2, "test", start=2))
            ],
            r"has rows in both splits",
        ),
    ],
)
def test_bad_tables_name_the_file(tmp_path, frame, message):
    path = tmp_path / "mine.jsonl"
    pd.DataFrame(frame).to_json(path, orient="records", lines=True)
    with pytest.raises(DataError, match=message) as error:
        table.texts_from_table(world_spec({"source": "table", "path": str(path)}))
    assert "mine.jsonl" in str(error.value)


def test_table_config_rules():
    with pytest.raises(ConfigError, match=r"worlds\.a.*either 'path'"):
        check_worlds(
            {
                "a": world_spec(
                    {"source": "table", "path": "x.jsonl", "train_path": "y", "test_path": "z"}
                )
            }
        )
    with pytest.raises(ConfigError, match=r"worlds\.a.*either 'path'"):
        check_worlds({"a": world_spec({"source": "table"})})
    with pytest.raises(ConfigError, match=r"worlds\.a\.template"):
        check_worlds(
            {"a": world_spec({"source": "table", "path": "x.jsonl", "template": "{prompt}"})}
        )
    with pytest.raises(ConfigError, match="no split column"):
        table.assign_splits(pd.DataFrame({"prompt_index": [0]}), {}, Path("t.csv"))
    with pytest.raises(ConfigError, match="format"):
        table.read_table(Path(__file__).parent / "data" / "make_text_set.py")


# --- hf prompts ---------------------------------------------------------------------------------


def test_hh_prompt_extraction():
    dialogue = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: bake bread?\n\nAssistant: Mix flour."
    assert (
        prompts.hh_prompt(dialogue)
        == "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: bake bread?\n\nAssistant:"
    )
    assert prompts.hh_prompt("\n\nHuman: no answer yet") is None


def test_prompts_from_a_local_hh_rlhf_copy(tmp_path, monkeypatch):
    """The `dataset` branch (datasets.load_dataset) on a local copy laid out like the hub's."""
    root = tinymodels.write_hh_dataset(tmp_path / "hh")
    tokenizer = tinymodels.tokenizer()
    spec = {
        "dataset": str(root),
        "data_dir": "helpful-base",
        "train_prompts": 8,
        "test_prompts": None,
    }
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    frame = prompts.select_prompts(spec, tokenizer)
    train, test = frame[frame.split == "train"], frame[frame.split == "test"]
    assert len(train) == 8 and len(test) == 4
    assert all(p.endswith("\n\nAssistant:") for p in frame.prompt)
    assert train.prompt.is_unique and "unanswered" not in " ".join(frame.prompt)
    assert train.prompt_id.iloc[0] == "train-0"
    short = prompts.select_prompts({**spec, "max_prompt_tokens": 16}, tokenizer)
    lengths = [len(ids) for ids in tokenizer(short.prompt.tolist())["input_ids"]]
    assert max(lengths) <= 16 and len(short) < len(frame)
    with pytest.raises(ConfigError, match=r"prompts\.splits\.test.*no split 'validation'"):
        prompts.select_prompts(
            {**spec, "splits": {"train": "train", "test": "validation"}}, tokenizer
        )
    with pytest.raises(ConfigError, match=r"prompts\.dataset.*cannot load"):
        prompts.select_prompts({**spec, "dataset": str(tmp_path / "missing")}, tokenizer)


def test_prompts_from_local_files(tmp_path):
    for split, n in (("train", 5), ("test", 3)):
        pd.DataFrame({"prompt": [f"Q{split}{i}" for i in range(n)]}).to_csv(
            tmp_path / f"{split}.csv", index=False
        )
    spec = {
        "files": {"train": str(tmp_path / "train.csv"), "test": str(tmp_path / "test.csv")},
        "format": "plain",
        "max_prompt_tokens": None,
    }
    frame = prompts.select_prompts(spec, None)
    assert frame.groupby("split").size().to_dict() == {"test": 3, "train": 5}
    with pytest.raises(ConfigError, match="exactly one of 'dataset' or 'files'"):
        prompts.select_prompts({**spec, "dataset": "x"}, None)


# --- text world assembly ------------------------------------------------------------------------


def test_table_world_in_one_process_with_a_tiny_llama(tmp_path):
    models = tinymodels.build(tmp_path / "models")
    pd.DataFrame(rows(4, 3, "train") + rows(3, 5, "test", start=4)).to_json(
        tmp_path / "t.jsonl", orient="records", lines=True
    )
    spec = world_spec(
        {
            "source": "table",
            "path": str(tmp_path / "t.jsonl"),
            "threads": 1,
            "embedder": {
                "type": "hf-last-token",
                "model": str(models["llama"]),
                "device": "cpu",
                "batch_size": 4,
            },
        }
    )
    build_world(spec, tmp_path / "w")
    world = World(tmp_path / "w")
    assert world.train.embeddings.shape == (4, 3, 64) and world.test.embeddings.shape == (3, 5, 64)
    np.testing.assert_allclose(world.test.rewards[1], [5.0, 5.1, 5.2, 5.3, 5.4])
    texts = pd.read_parquet(tmp_path / "w" / "texts.parquet")
    assert texts[texts.split == "test"].response.iloc[7] == " answer 5.2"  # flat index 7 = (1, 2)
    info = json.loads((tmp_path / "w" / "world.json").read_text())
    assert info["texts"]["splits"]["test"] == {"prompts": 3, "responses": 5, "dim": 64}

    # A world refuses embeddings that do not match its texts.
    with pytest.raises(DataError, match=r"shape \(3, 5, 64\) does not match .*4 train prompts × 3"):
        text.stage_world(
            spec,
            tmp_path / "w" / "texts.parquet",
            {
                "train": tmp_path / "w" / "test_embeddings.npy",
                "test": tmp_path / "w" / "train_embeddings.npy",
            },
            tmp_path / "w2",
        )
