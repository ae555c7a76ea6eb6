"""K sampled responses per prompt from a causal LM: transformers, or vLLM when it is installed.

Sampling follows the paper's setting by default (temperature 1.0, top-p 0.95, no top-k, 128 new
tokens) and every response is cut at the first stop string ("\\n\\nHuman" for HH-RLHF dialogues).
Each batch is seeded from the run seed and its batch number, so results do not depend on how
often the job was interrupted. Finished batches are recorded in a log beside the output and
skipped on restart.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from pathlib import Path

from .embedders import pick_device, texts_digest
from .errors import ConfigError
from .hashing import stable_hash
from .hfmodels import (
    load_model,
    load_tokenizer,
    resolve_device,
    resolve_dtype,
    run_batches,
    set_threads,
)
from .seeding import int_seed

log = logging.getLogger("embrm")

DEFAULTS = {
    "temperature": 1.0,
    "top_p": 0.95,
    "max_new_tokens": 128,
    "batch_size": 32,
    "stop": ["\n\nHuman"],
    "engine": "auto",
    "dtype": "auto",
    "device": "auto",
    "seed": 0,
}
VLLM_PROMPTS_PER_CALL = 256  # prompts per vLLM call: one resumable unit of work


def cut(text: str, stops: Sequence[str]) -> str:
    """The response up to (not including) the first stop string."""
    end = len(text)
    for stop in stops:
        at = text.find(stop)
        if at != -1:
            end = min(end, at)
    return text[:end]


def vllm_available() -> bool:
    return importlib.util.find_spec("vllm") is not None


def choose_engine(spec: dict, device: str, key: str) -> str:
    engine = spec["engine"]
    if engine == "vllm" and not vllm_available():
        raise ConfigError(f"config key '{key}.engine': 'vllm' requested but vllm is not installed")
    if engine == "auto":
        # vLLM needs a GPU; on CPU, or without vllm, transformers does the work.
        return "vllm" if vllm_available() and device == "cuda" else "transformers"
    return engine


class Generator:
    """A loaded generation engine; :meth:`run` samples K responses for each prompt."""

    def __init__(
        self, spec: dict, *, device: str = "auto", threads: int = 1, key: str = "generation"
    ):
        self.spec = spec = {**DEFAULTS, **spec}
        self.key = key
        self.device = resolve_device(pick_device(spec["device"], device), f"{key}.device")
        self.engine = choose_engine(spec, self.device, key)
        self.stops = list(spec["stop"])
        log.info("generation with %s on %s (%s)", spec["model"], self.device, self.engine)
        if self.engine == "vllm":
            self._load_vllm()
        else:
            self._load_transformers(threads)

    def _load_transformers(self, threads: int) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        key = self.key
        dtype = resolve_dtype(self.spec["dtype"], self.device, f"{key}.dtype")
        set_threads(threads, self.device)
        # Decoder-only generation continues from the last position: pad on the left.
        self.tokenizer = load_tokenizer(self.spec["model"], f"{key}.model", padding_side="left")
        self.model = load_model(
            AutoModelForCausalLM,
            self.spec["model"],
            f"{key}.model",
            dtype=dtype,
            device=self.device,
        )
        self._torch = torch

    def _load_vllm(self) -> None:
        # This branch needs a GPU and vllm, neither of which the test machines have.
        from vllm import LLM

        self.llm = LLM(
            model=self.spec["model"], dtype=self.spec["dtype"], seed=int(self.spec["seed"])
        )

    def run(
        self, prompts: Sequence[str], responses: int, *, work_log: str | Path, split: str
    ) -> list[list[str]]:
        """``responses`` sampled continuations of every prompt, as a list per prompt."""
        fingerprint = stable_hash(
            {
                "spec": self.spec,
                "engine": self.engine,
                "responses": responses,
                "split": split,
                "prompts": texts_digest(prompts),
            }
        )
        log.info("%s: %d prompts × %d responses", split, len(prompts), responses)
        if self.engine == "vllm":
            return self._run_vllm(prompts, responses, Path(work_log), fingerprint, split)
        return self._run_transformers(prompts, responses, Path(work_log), fingerprint, split)

    def _run_transformers(
        self, prompts, responses, work_log, fingerprint, split
    ) -> list[list[str]]:
        torch, tokenizer, model, spec = self._torch, self.tokenizer, self.model, self.spec
        # One sequence per (prompt, k): any K fits any batch size, and batches are shaped alike.
        items = [i for i in range(len(prompts)) for _ in range(responses)]
        size = spec["batch_size"]
        groups = [list(range(s, min(s + size, len(items)))) for s in range(0, len(items), size)]

        def compute(group: list[int]) -> list[str]:
            encoded = tokenizer(
                [prompts[items[j]] for j in group], padding=True, return_tensors="pt"
            )
            encoded = encoded.to(self.device)
            torch.manual_seed(int_seed(spec["seed"], "generate", split, group[0]))
            with torch.inference_mode():
                output = model.generate(
                    input_ids=encoded["input_ids"],
                    attention_mask=encoded["attention_mask"],
                    do_sample=True,
                    temperature=spec["temperature"],
                    top_p=spec["top_p"],
                    top_k=0,  # the paper samples with top-p alone; transformers defaults to top-k 50
                    max_new_tokens=spec["max_new_tokens"],
                    pad_token_id=tokenizer.pad_token_id,
                )
            new_tokens = output[:, encoded["input_ids"].shape[1] :]
            decoded = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
            return [cut(text, self.stops) for text in decoded]

        done = run_batches(
            work_log, fingerprint, groups, f"generate {split}", compute, unit="responses"
        )
        flat = [text for index in range(len(groups)) for text in done[index]]
        return [flat[i * responses : (i + 1) * responses] for i in range(len(prompts))]

    def _run_vllm(self, prompts, responses, work_log, fingerprint, split) -> list[list[str]]:
        from vllm import SamplingParams

        spec = self.spec
        groups = [
            list(range(s, min(s + VLLM_PROMPTS_PER_CALL, len(prompts))))
            for s in range(0, len(prompts), VLLM_PROMPTS_PER_CALL)
        ]

        def compute(group: list[int]) -> list[list[str]]:
            # vLLM's default top_k considers all tokens, like top_k=0 in the transformers branch.
            params = SamplingParams(
                n=responses,
                temperature=spec["temperature"],
                top_p=spec["top_p"],
                max_tokens=spec["max_new_tokens"],
                stop=self.stops,
                seed=int_seed(spec["seed"], "generate-vllm", split, group[0]),
            )
            outputs = self.llm.generate([prompts[i] for i in group], params, use_tqdm=False)
            # One RequestOutput per prompt, in input order, each with n completions.
            texts = [[cut(c.text, self.stops) for c in out.outputs] for out in outputs]
            if len(texts) != len(group) or any(len(t) != responses for t in texts):
                raise RuntimeError(
                    f"vLLM returned {[len(t) for t in texts]} completions for {len(group)} prompts"
                )
            return texts

        done = run_batches(
            work_log,
            fingerprint,
            groups,
            f"generate {split} (vllm)",
            compute,
            unit="responses",
        )
        return [texts for index in range(len(groups)) for texts in done[index]]
