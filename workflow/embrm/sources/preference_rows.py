"""Preference datasets (the forms TRL documents): reading and checking the rows of the source
files into units, and the split by prompt. Building the world from them is
:mod:`embrm.sources.preferences`.

Forms of a row (``form: auto`` detects them from the columns and the first row):

- ``explicit``: ``prompt``, ``chosen``, ``rejected`` texts;
- ``implicit``: ``chosen`` and ``rejected`` only; the prompt is their shared prefix, cut back to
  its last whitespace so that the whitespace and any shared part of a word go with the responses;
- ``conversational``: ``chosen`` and ``rejected`` (and an optional ``prompt``) are lists of
  ``{role, content}`` messages; without a prompt column the prompt is the shared leading
  messages. The last message of each side must be the assistant's. Messages are rendered by
  ``message_template`` (``"{role}: {content}\\n"``), or by the tokenizer's chat template of
  ``embedder.model`` with ``chat_template: tokenizer``;
- ``multi``: a prompt with a list of ``responses`` and a list of ``scores`` (UltraFeedback).

Optional per-row columns: ``subset`` (evaluation reports accuracy per subset), ``margin`` (> 0,
how strongly chosen is preferred; default 1) and ``tie`` (a boolean: the two are equally good).

A pairwise row is one *unit* of ``K = 2`` responses, chosen first, with pseudo-rewards
``(+margin/2, −margin/2)`` (``(0, 0)`` for a tie); a multi-response row is one unit with the
dataset's scores as rewards (every prompt of a split needs the same number of responses).

The split is by prompt (the rendered prompt text): ``test_fraction`` of the prompts, seeded by
``split_seed``, or the user's split column (a prompt with rows in both splits is refused), or
``train_path`` and ``test_path``. Errors name the file, the row and the column, or the config key.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataError
from ..seeding import rng
from ..world import SPLITS

FORMS = ("explicit", "implicit", "conversational", "multi")
COLUMN_DEFAULTS = {
    "prompt": "prompt",
    "chosen": "chosen",
    "rejected": "rejected",
    "responses": "responses",
    "scores": "scores",
    "subset": "subset",
    "margin": "margin",
    "tie": "tie",
    "split": "split",
}
MESSAGE_TEMPLATE = "{role}: {content}\n"


# --- reading rows -------------------------------------------------------------------------------


def _missing(value) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return False


def _blank(value) -> bool:
    """An optional cell left empty (CSV reads every cell as text)."""
    return _missing(value) or (isinstance(value, str) and not value.strip())


def _is_list(value) -> bool:
    return isinstance(value, (list, tuple, np.ndarray))


def _maybe_json_list(value):
    """CSV cells hold lists as JSON text."""
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return value
        return parsed if isinstance(parsed, list) else value
    return value


def detect_form(frame: pd.DataFrame, cols: dict, form: str) -> str:
    if form != "auto":
        return form
    if cols["responses"] in frame.columns:
        return "multi"
    if cols["chosen"] in frame.columns:
        first = _maybe_json_list(frame[cols["chosen"]].iloc[0])
        if _is_list(first):
            return "conversational"
    return "explicit" if cols["prompt"] in frame.columns else "implicit"


class Rows:
    """Errors that name the file, the row (0-based, in file order) and the column."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, row: int, column: str, what: str):
        raise DataError(f"{self.path}: row {row}, column '{column}': {what}")

    def text(self, row: int, column: str, value) -> str:
        if _missing(value):
            self.fail(row, column, "missing (every row needs this text)")
        if not isinstance(value, str):
            self.fail(row, column, f"expected text, got {type(value).__name__} {value!r:.60}")
        if not value.strip():
            self.fail(row, column, "empty text")
        return value

    def messages(self, row: int, column: str, value) -> list[dict]:
        if _missing(value):
            self.fail(row, column, "missing (every row needs this conversation)")
        value = _maybe_json_list(value)
        if not _is_list(value) or not len(value):
            self.fail(row, column, "expected a non-empty list of {role, content} messages")
        out = []
        for i, message in enumerate(value):
            if not isinstance(message, dict) or not {"role", "content"} <= set(message):
                self.fail(row, column, f"message {i} is not a {{role, content}} mapping")
            if not isinstance(message["content"], str) or not message["content"].strip():
                self.fail(row, column, f"message {i} has empty content")
            out.append({"role": str(message["role"]), "content": message["content"]})
        return out


def shared_prefix(chosen: str, rejected: str) -> int:
    """Length of the implicit prompt: the common prefix cut back to its last whitespace."""
    limit = min(len(chosen), len(rejected))
    end = 0
    while end < limit and chosen[end] == rejected[end]:
        end += 1
    while end > 0 and not chosen[end - 1].isspace():
        end -= 1
    # The whitespace itself starts the responses (as in "Assistant: Yes" / "Assistant: No").
    while end > 0 and chosen[end - 1].isspace():
        end -= 1
    return end


class Renderer:
    """Conversation → text: the stated per-message template or the tokenizer's chat template."""

    def __init__(self, spec: dict, key: str):
        self.spec_model = spec.get("embedder", {}).get("model")
        self.mode = spec.get("chat_template", "template")
        self.template = spec.get("message_template", MESSAGE_TEMPLATE)
        self.key = key
        self._tokenizer = None

    def tokenizer(self):
        if self._tokenizer is None:
            from ..hfmodels import load_tokenizer

            model = self.spec_model
            tokenizer = load_tokenizer(model, f"{self.key}.embedder.model", padding_side="right")
            if not getattr(tokenizer, "chat_template", None):
                raise ConfigError(
                    f"config key '{self.key}.chat_template': the tokenizer of '{model}' has no chat "
                    "template; use chat_template: template (message_template renders messages)"
                )
            self._tokenizer = tokenizer
        return self._tokenizer

    def render(self, prompt: list[dict], response: list[dict]) -> tuple[str, str]:
        if self.mode == "tokenizer":
            tokenizer = self.tokenizer()
            head = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
            whole = tokenizer.apply_chat_template(prompt + response, tokenize=False)
            if not whole.startswith(head):  # templates that rewrite earlier turns
                head = tokenizer.apply_chat_template(prompt, tokenize=False)
            return head, whole[len(head) :] if whole.startswith(head) else whole
        fill = self.template.format
        return "".join(fill(**m) for m in prompt), "".join(fill(**m) for m in response)


def _conversation(rows: Rows, row: int, values: dict, cols: dict, has_prompt: bool, renderer):
    chosen = rows.messages(row, cols["chosen"], values[cols["chosen"]])
    rejected = rows.messages(row, cols["rejected"], values[cols["rejected"]])
    if has_prompt:
        prompt = rows.messages(row, cols["prompt"], values[cols["prompt"]])
    else:
        shared = 0
        while shared < min(len(chosen), len(rejected)) - 1 and chosen[shared] == rejected[shared]:
            shared += 1
        prompt, chosen, rejected = chosen[:shared], chosen[shared:], rejected[shared:]
        if not prompt:
            rows.fail(row, cols["chosen"], "no shared leading messages to take as the prompt")
    for column, side in ((cols["chosen"], chosen), (cols["rejected"], rejected)):
        if side[-1]["role"] != "assistant":
            rows.fail(
                row, column, f"the last message is the {side[-1]['role']}'s, not the assistant's"
            )
    prompt_text, chosen_text = renderer.render(prompt, chosen)
    _, rejected_text = renderer.render(prompt, rejected)
    return prompt_text, chosen_text, rejected_text


def _flag(rows: Rows, row: int, column: str, value) -> bool:
    if _missing(value):
        return False
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", ""):
        return False
    rows.fail(row, column, f"expected true or false, got {value!r}")


def _number(rows: Rows, row: int, column: str, value, *, positive: bool) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        rows.fail(row, column, f"expected a number, got {value!r:.60}")
    if not math.isfinite(number) or (positive and number <= 0):
        rows.fail(row, column, f"expected a finite number{' > 0' if positive else ''}, got {value}")
    return number


def read_rows(frame: pd.DataFrame, spec: dict, path: Path, key: str = "worlds.*") -> pd.DataFrame:
    """One record per unit: ``row, prompt, responses (list), rewards (list), subset, tie[, split]``."""
    cols = {**COLUMN_DEFAULTS, **spec.get("columns", {})}
    form = detect_form(frame, cols, spec.get("form", "auto"))
    rows = Rows(path)
    if form == "multi":
        needed = [cols["prompt"], cols["responses"], cols["scores"]]
    else:
        needed = [cols["chosen"], cols["rejected"]]
        if form == "explicit":
            needed.append(cols["prompt"])
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {missing} for the {form} form; found "
            f"{list(map(str, frame.columns))} (map yours with the 'columns' key)"
        )
    renderer = Renderer(spec, key) if form == "conversational" else None
    has = {name: cols[name] in frame.columns for name in ("subset", "margin", "tie", "split")}
    records = []
    for row, values in enumerate(frame.to_dict("records")):
        tie = _flag(rows, row, cols["tie"], values[cols["tie"]]) if has["tie"] else False
        margin = 1.0
        if has["margin"] and not _blank(values[cols["margin"]]) and form != "multi":
            margin = _number(rows, row, cols["margin"], values[cols["margin"]], positive=not tie)
        if form == "multi":
            prompt = rows.text(row, cols["prompt"], values[cols["prompt"]])
            texts = _maybe_json_list(values[cols["responses"]])
            scores = _maybe_json_list(values[cols["scores"]])
            if not _is_list(texts) or len(texts) < 2:
                rows.fail(row, cols["responses"], "expected a list of at least 2 responses")
            if not _is_list(scores) or len(scores) != len(texts):
                rows.fail(row, cols["scores"], f"expected a list of {len(texts)} scores")
            responses = [rows.text(row, cols["responses"], t) for t in texts]
            rewards = [_number(rows, row, cols["scores"], s, positive=False) for s in scores]
        elif form == "conversational":
            has_prompt = cols["prompt"] in frame.columns
            prompt, chosen, rejected = _conversation(rows, row, values, cols, has_prompt, renderer)
            responses = [chosen, rejected]
        else:
            chosen = rows.text(row, cols["chosen"], values[cols["chosen"]])
            rejected = rows.text(row, cols["rejected"], values[cols["rejected"]])
            if form == "explicit":
                prompt = rows.text(row, cols["prompt"], values[cols["prompt"]])
            else:
                cut = shared_prefix(chosen, rejected)
                if cut == 0:
                    rows.fail(row, cols["chosen"], "chosen and rejected share no prompt prefix")
                prompt, chosen, rejected = chosen[:cut], chosen[cut:], rejected[cut:]
            responses = [chosen, rejected]
        if form != "multi":
            if responses[0] == responses[1]:
                rows.fail(row, cols["rejected"], "identical to the chosen response")
            for column, text in zip((cols["chosen"], cols["rejected"]), responses, strict=True):
                if not text.strip():
                    rows.fail(row, column, "empty response once the shared prompt is removed")
            rewards = [0.0, 0.0] if tie else [margin / 2, -margin / 2]
        record = {
            "row": row,
            "prompt": prompt,
            "responses": responses,
            "rewards": rewards,
            "subset": str(values[cols["subset"]]) if has["subset"] else "all",
            "tie": tie,
        }
        if has["subset"] and _blank(values[cols["subset"]]):
            rows.fail(row, cols["subset"], "missing subset name")
        if has["split"]:
            record["split"] = str(values[cols["split"]])
        records.append(record)
    out = pd.DataFrame.from_records(records)
    out.attrs["form"] = form
    out.attrs["split_column"] = cols["split"] if has["split"] else None
    out.attrs["subset_column"] = cols["subset"] if has["subset"] else None
    return out


# --- splits -------------------------------------------------------------------------------------


def assign_splits(units: pd.DataFrame, spec: dict, path: Path) -> pd.DataFrame:
    """Each prompt (its rendered text) goes wholly to one split."""
    codes, prompts = pd.factorize(units["prompt"], sort=False)
    if spec.get("test_fraction") is not None:
        count = len(prompts)
        if count < 2:
            raise DataError(f"{path}: {count} distinct prompt(s); a split needs at least 2")
        n_test = min(count - 1, max(1, round(spec["test_fraction"] * count)))
        test = np.zeros(count, dtype=bool)
        test[rng(spec.get("split_seed", 0), "preferences-split").permutation(count)[:n_test]] = True
        return units.assign(split=np.where(test[codes], "test", "train"))
    column = units.attrs.get("split_column")
    if column is None:
        raise ConfigError(
            f"{path}: no split column '{spec.get('columns', {}).get('split', 'split')}'; set "
            "'test_fraction', name the column in 'columns.split', or give train_path and test_path"
        )
    unknown = sorted(set(units["split"]) - set(SPLITS))
    if unknown:
        row = int(units.loc[~units["split"].isin(SPLITS), "row"].iloc[0])
        raise DataError(
            f"{path}: row {row}, column '{column}': {unknown[0]!r}; expected 'train' or 'test'"
        )
    first = units.groupby(codes)["split"].transform("first")
    mixed = units["split"] != first
    if mixed.any():
        at = units[mixed].iloc[0]
        earlier = int(units.loc[(codes == codes[mixed.to_numpy()][0]), "row"].iloc[0])
        raise DataError(
            f"{path}: row {int(at['row'])}, column '{column}': prompt {at['prompt'][:60]!r} is in "
            f"the {at['split']} split but row {earlier} puts it in {first[mixed].iloc[0]}; "
            "a prompt must stay in one split"
        )
    return units


def check_units(units: pd.DataFrame, where: str) -> dict[str, tuple[int, int]]:
    shapes = {}
    column = units.attrs.get("subset_column")
    if column is not None:
        counts = units["subset"].value_counts()
        lone = counts[counts < 2]
        if len(lone):
            row = int(units.loc[units["subset"] == lone.index[0], "row"].iloc[0])
            raise DataError(
                f"{where}: row {row}, column '{column}': subset {lone.index[0]!r} has a single "
                "row; a per-subset accuracy needs at least 2 (merge it or drop it)"
            )
    for split in SPLITS:
        part = units[units["split"] == split]
        if len(part) < 2:
            raise DataError(
                f"{where}: the {split} split has {len(part)} unit(s); at least 2 needed"
            )
        sizes = part["responses"].map(len)
        if sizes.nunique() > 1:
            row = int(part.loc[sizes != sizes.iloc[0], "row"].iloc[0])
            raise DataError(
                f"{where}: row {row}: {int(sizes[sizes != sizes.iloc[0]].iloc[0])} responses, but "
                f"the {split} split's first prompt has {int(sizes.iloc[0])}; every prompt of a "
                "split needs the same number"
            )
        shapes[split] = (len(part), int(sizes.iloc[0]))
    return shapes


def read_units(spec: dict, key: str = "worlds.*") -> tuple[pd.DataFrame, dict]:
    """Every unit of the world with its split, checked; and the (units, responses) per split."""
    from .table import read_table

    fmt = spec.get("format", "auto")
    if spec.get("path"):
        path = Path(spec["path"])
        units = read_rows(read_table(path, fmt), spec, path, key)
        attrs = dict(units.attrs)
        units = assign_splits(units, spec, path)
        units.attrs.update(attrs)
        where = str(path)
    else:
        parts = []
        for split in SPLITS:
            path = Path(spec[f"{split}_path"])
            part = read_rows(read_table(path, fmt), spec, path, key)
            attrs = dict(part.attrs)
            parts.append(part.assign(split=split, file=str(path)))
        units = pd.concat(parts, ignore_index=True)
        units.attrs.update(attrs)
        both = set(parts[0]["prompt"]) & set(parts[1]["prompt"])
        if both:
            prompt = next(iter(both))
            row = int(parts[1].loc[parts[1]["prompt"] == prompt, "row"].iloc[0])
            raise DataError(
                f"{spec['test_path']}: row {row}: prompt {prompt[:60]!r} is also in "
                f"{spec['train_path']}; a prompt must stay in one split"
            )
        where = f"{spec['train_path']} / {spec['test_path']}"
    return units, check_units(units, where)


def check_spec(spec: dict, key: str) -> None:
    """Cross-key rules the schema cannot state clearly (run when the plan is built)."""
    from .table import check_spec as check_files

    check_files(spec, key)
    if spec.get("chat_template") == "tokenizer" and not spec.get("embedder", {}).get("model"):
        raise ConfigError(
            f"config key '{key}.chat_template': 'tokenizer' renders conversations with the chat "
            f"template of {key}.embedder.model's tokenizer; set embedder.model"
        )
    sections = spec.get("sections") or {}
    seen: dict[str, str] = {}
    for section, subsets in sections.items():
        for subset in subsets:
            if subset in seen:
                raise ConfigError(
                    f"config key '{key}.sections.{section}': subset {subset!r} is already in "
                    f"section {seen[subset]!r}"
                )
            seen[subset] = section


def verify(spec: dict) -> None:
    """Every check of the build, writing nothing (run before any job)."""
    units, _ = read_units(spec)
    sections = spec.get("sections") or {}
    if sections:
        listed = {s for subsets in sections.values() for s in subsets}
        unlisted = sorted(set(units["subset"]) - listed)
        if unlisted:
            raise ConfigError(
                f"config key 'worlds.*.sections': subset {unlisted[0]!r} of the data is in no "
                "section"
            )
