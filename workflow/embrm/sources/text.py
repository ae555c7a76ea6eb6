"""Text worlds (``table`` and ``hf`` sources): stages from texts to a world directory.

Stages, each a function with files in and out (the Snakemake rules in ``workflow/rules/text.smk``
run them as separate jobs; :func:`build` runs them in one process):

- ``prompts`` (hf): prompts table ``split, p, prompt_id, prompt``;
- ``generate`` (hf): responses table, K sampled responses per prompt;
- ``score`` (hf): the texts table (responses plus golden rewards from the reward model);
- ``table`` (table): the texts table read from your file(s);
- ``embed``: ``{split}_embeddings.npy`` (P, K, D) of ``template`` filled with prompt and response;
- ``world``: the world directory: embeddings (hard-linked, not copied), rewards (P, K),
  ``texts.parquet`` (which text each flat index is) and ``world.json``.

Generation and scoring record finished batches in ``.<output>.<split>.batches.jsonl`` beside
their output and embedding keeps a ``.partial`` memory map: an interrupted job resumes.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..declare import Option, stage
from ..embedders import check_template, embed_to_npy, render
from ..errors import DataError
from ..io import atomic_path, open_npy, write_json, write_npy
from ..seeding import rng
from ..world import FILES, SPLITS, reward_stats
from .npy import publish_file
from .table import TEXT_COLUMNS, check_grid

log = logging.getLogger("embrm")

KEY = "worlds.*"  # the spec does not carry its world's name; errors name the key under worlds
TEXTS_FILE = "texts.parquet"


def write_parquet(frame: pd.DataFrame, out: str | Path) -> None:
    with atomic_path(out) as tmp:
        frame.to_parquet(tmp, index=False)


def read_frame(path: str | Path, columns: list[str]) -> pd.DataFrame:
    path = Path(path)
    try:
        frame = pd.read_parquet(path)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except Exception as exc:  # pyarrow raises its own error types
        raise DataError(f"{path}: not a readable Parquet table ({exc})") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing columns {missing}")
    return frame


def batch_log(out: str | Path, split: str) -> Path:
    out = Path(out)
    return out.with_name(f".{out.name}.{split}.batches.jsonl")


def split_part(frame: pd.DataFrame, split: str) -> pd.DataFrame:
    return frame[frame["split"] == split].sort_values(
        ["p", "k"] if "k" in frame else ["p"], kind="stable"
    )


# --- stages -------------------------------------------------------------------------------------


# The options every text stage shares: the world's config entry, and the job's threads and device
# (those of the models it runs; the device is left to the spec's own setting unless given).
SPEC = Option("spec", "--spec", "json", help="the world's config entry as JSON")
THREADS = Option("threads", "--threads", "int", required=False, default=1)
DEVICE = Option("device", "--device", "text", required=False, default="auto")


@stage("text prompts", "select prompts (hf source)", SPEC, Option("out", "--out"))
def stage_prompts(spec: dict, out: str | Path) -> None:
    from ..hfmodels import load_tokenizer
    from .prompts import select_prompts

    tokenizer = None
    if spec["prompts"].get("max_prompt_tokens") is not None:
        tokenizer = load_tokenizer(
            spec["generation"]["model"], f"{KEY}.generation.model", padding_side="left"
        )
    write_parquet(select_prompts(spec["prompts"], tokenizer, key=f"{KEY}.prompts"), out)


@stage(
    "text generate",
    "sample K responses per prompt (hf source)",
    SPEC,
    Option("prompts_path", "--prompts"),
    Option("out", "--out"),
    THREADS,
    DEVICE,
)
def stage_generate(
    spec: dict, prompts_path: str | Path, out: str | Path, *, device: str = "auto", threads: int = 1
) -> None:
    from ..generation import Generator

    prompts = read_frame(prompts_path, ["split", "p", "prompt_id", "prompt"])
    generator = Generator(
        spec["generation"], device=device, threads=threads, key=f"{KEY}.generation"
    )
    frames, logs = [], []
    for split in SPLITS:
        part = split_part(prompts, split)
        k = spec["generation"][f"{split}_responses"]
        logs.append(batch_log(out, split))
        responses = generator.run(part["prompt"].tolist(), k, work_log=logs[-1], split=split)
        frames.append(
            pd.DataFrame(
                {
                    "split": split,
                    "p": np.repeat(part["p"].to_numpy(), k),
                    "k": np.tile(np.arange(k), len(part)),
                    "prompt_id": np.repeat(part["prompt_id"].to_numpy(), k),
                    "prompt": np.repeat(part["prompt"].to_numpy(), k),
                    "response": [text for texts in responses for text in texts],
                }
            )
        )
    write_parquet(pd.concat(frames, ignore_index=True), out)
    for path in logs:
        path.unlink(missing_ok=True)


@stage(
    "text score",
    "golden rewards from the reward model (hf source)",
    SPEC,
    Option("responses_path", "--responses"),
    Option("out", "--out"),
    THREADS,
    DEVICE,
)
def stage_score(
    spec: dict,
    responses_path: str | Path,
    out: str | Path,
    *,
    device: str = "auto",
    threads: int = 1,
) -> None:
    from ..scoring import RewardModel, score

    frame = read_frame(responses_path, ["split", "p", "k", "prompt_id", "prompt", "response"])
    model = RewardModel(
        spec["reward_model"], device=device, threads=threads, key=f"{KEY}.reward_model"
    )
    parts, logs = [], []
    for split in SPLITS:
        part = split_part(frame, split).copy()
        logs.append(batch_log(out, split))
        part["reward"] = score(
            part["prompt"].tolist(),
            part["response"].tolist(),
            spec["reward_model"],
            work_log=logs[-1],
            label=f"score {split}",
            model=model,
        )
        parts.append(part)
    texts = pd.concat(parts, ignore_index=True)[TEXT_COLUMNS]
    check_grid(texts, str(responses_path))
    write_parquet(texts, out)
    for path in logs:
        path.unlink(missing_ok=True)


@stage(
    "text table",
    "read your table into the texts table (table source)",
    SPEC,
    Option("out", "--out"),
)
def stage_table(spec: dict, out: str | Path) -> None:
    from .table import texts_from_table

    write_parquet(texts_from_table(spec), out)


@stage(
    "text embed",
    "embed one split of the texts table",
    SPEC,
    Option("texts_path", "--texts"),
    Option("split", "--split", "text", choices=SPLITS),
    Option("out", "--out"),
    THREADS,
    DEVICE,
)
def stage_embed(
    spec: dict,
    texts_path: str | Path,
    split: str,
    out: str | Path,
    *,
    device: str = "auto",
    threads: int = 1,
) -> dict:
    check_template(spec["template"], f"{KEY}.template")
    texts = read_frame(texts_path, TEXT_COLUMNS)
    shapes = check_grid(texts, str(texts_path))
    part = split_part(texts, split)
    rendered = render(spec["template"], part["prompt"].tolist(), part["response"].tolist())
    summary = embed_to_npy(
        rendered,
        spec["embedder"],
        out,
        shape=shapes[split],
        device=device,
        threads=threads,
        key=f"{KEY}.embedder",
        label=f"embed {split}",
    )
    log.info("embedded: %s", summary)
    return summary


@stage(
    "text world",
    "assemble the world directory",
    SPEC,
    Option("texts_path", "--texts"),
    Option("train_embeddings", "--train-embeddings"),
    Option("test_embeddings", "--test-embeddings"),
    Option("out_dir", "--out"),
)
def text_world(
    spec: dict,
    texts_path: str | Path,
    train_embeddings: str | Path,
    test_embeddings: str | Path,
    out_dir: str | Path,
) -> None:
    """The `text world` job: :func:`stage_world` with each split's embeddings file."""
    stage_world(spec, texts_path, {"train": train_embeddings, "test": test_embeddings}, out_dir)


def stage_world(spec: dict, texts_path: str | Path, embeddings: dict, out_dir: str | Path) -> None:
    """Assemble the world directory; embeddings are hard-linked (copied across file systems)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    texts = read_frame(texts_path, TEXT_COLUMNS)
    shapes = check_grid(texts, str(texts_path))
    stats, layout = {}, {}
    dims = {}
    for split in SPLITS:
        prompts, responses = shapes[split]
        rewards = (
            split_part(texts, split)["reward"].to_numpy(np.float64).reshape(prompts, responses)
        )
        source = Path(embeddings[split])
        array = open_npy(source)
        if array.ndim != 3 or array.shape[:2] != (prompts, responses):
            raise DataError(
                f"{source}: embeddings shape {array.shape} does not match {texts_path} "
                f"({prompts} {split} prompts × {responses} responses)"
            )
        dims[split] = array.shape[2]
        target = out_dir / FILES[split]["embeddings"]
        if source.resolve() != target.resolve():
            publish_file(source, target, "hardlink-or-copy")
        write_npy(out_dir / FILES[split]["rewards"], rewards)
        stats[split] = reward_stats(rewards, rng(0, "text", "stats", split))
        layout[split] = {"prompts": prompts, "responses": responses, "dim": int(array.shape[2])}
    if dims["train"] != dims["test"]:
        raise DataError(
            f"{embeddings['test']}: dimension {dims['test']} differs from train ({dims['train']})"
        )
    if Path(texts_path).resolve() != (out_dir / TEXTS_FILE).resolve():
        publish_file(Path(texts_path), out_dir / TEXTS_FILE, "hardlink-or-copy")
    # world.json last: its presence marks a finished world.
    write_json(
        out_dir / "world.json",
        {"source": spec, "stats": stats, "texts": {"file": TEXTS_FILE, "splits": layout}},
    )


def build(spec: dict, out_dir: Path, *, threads: int = 1, device: str = "auto") -> None:
    """Every stage in this process (``embrm world``); intermediates go to ``out_dir/text/``."""
    work = out_dir / "text"
    work.mkdir(parents=True, exist_ok=True)
    threads = spec.get("threads", threads)
    texts = work / TEXTS_FILE
    if spec["source"] == "table":
        stage_table(spec, texts)
    else:
        stage_prompts(spec, work / "prompts.parquet")
        stage_generate(
            spec,
            work / "prompts.parquet",
            work / "responses.parquet",
            device=device,
            threads=threads,
        )
        stage_score(spec, work / "responses.parquet", texts, device=device, threads=threads)
    embeddings = {}
    for split in SPLITS:
        embeddings[split] = out_dir / FILES[split]["embeddings"]
        stage_embed(spec, texts, split, embeddings[split], device=device, threads=threads)
    stage_world(spec, texts, embeddings, out_dir)
