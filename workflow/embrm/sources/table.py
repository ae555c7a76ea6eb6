"""Your own prompts, responses and golden rewards from JSONL, JSON, CSV or Parquet.

Long form: one row per response (prompt, response, reward[, split][, prompt id]); responses of one
prompt are grouped by the prompt-id column or, without one, by identical prompt text, in file
order. Wide form: one row per prompt whose response and reward cells are lists (JSON lists in
CSV), or numbered columns ``response_0, reward_0, response_1, ...``.

The result is the *texts table* every text world is built from: columns ``split, p, k,
prompt_id, prompt, response, reward`` sorted by split (train first), prompt ``p`` and response
``k``; each split is a full ``P × K`` grid.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataError
from ..seeding import rng
from ..world import SPLITS

log = logging.getLogger("embrm")

TEXT_COLUMNS = ["split", "p", "k", "prompt_id", "prompt", "response", "reward"]
SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
COMPRESSION = {".gz", ".bz2", ".xz", ".zst", ".zip"}
COLUMN_DEFAULTS = {
    "prompt": "prompt",
    "response": "response",
    "reward": "reward",
    "split": "split",
    "prompt_id": None,
}


def detect_format(path: Path, fmt: str = "auto") -> str:
    if fmt != "auto":
        return fmt
    suffixes = [s.lower() for s in path.suffixes]
    while suffixes and suffixes[-1] in COMPRESSION:
        suffixes.pop()
    if suffixes and suffixes[-1] in SUFFIXES:
        return SUFFIXES[suffixes[-1]]
    raise ConfigError(
        f"{path}: cannot tell the table format from the file name; set 'format' "
        f"(one of jsonl, json, csv, parquet)"
    )


def read_table(path: str | Path, fmt: str = "auto") -> pd.DataFrame:
    """Read a table; CSV cells stay text (numbers are parsed per column later)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    fmt = detect_format(path, fmt)
    try:
        if fmt == "jsonl":
            frame = pd.read_json(path, lines=True, dtype=False)
        elif fmt == "json":
            frame = pd.read_json(path, dtype=False)
        elif fmt == "csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        else:
            frame = pd.read_parquet(path)
    except Exception as exc:  # parsers raise many types (ValueError, ArrowInvalid, ...)
        raise DataError(f"{path}: cannot read as {fmt} ({type(exc).__name__}: {exc})") from None
    if frame.empty:
        raise DataError(f"{path}: the table has no rows")
    return frame


def _require(frame: pd.DataFrame, columns: list[str], path: Path) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {missing}; found {list(map(str, frame.columns))} "
            "(map yours with the 'columns' key)"
        )


def _is_list(value) -> bool:
    return isinstance(value, (list, tuple, np.ndarray))


def _as_list(value, path: Path, row: int, column: str) -> list:
    if _is_list(value):
        return list(value)
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path}: row {row}, column '{column}': not a JSON list ({exc})"
            ) from None
        if isinstance(parsed, list):
            return parsed
    raise DataError(
        f"{path}: row {row}, column '{column}': expected a list of responses per prompt"
    )


def _numbered(frame: pd.DataFrame, base: str) -> list[str]:
    names, i = [], 0
    while f"{base}_{i}" in frame.columns:
        names.append(f"{base}_{i}")
        i += 1
    return names


def detect_form(frame: pd.DataFrame, cols: dict, form: str) -> str:
    if form != "auto":
        return form
    response = cols["response"]
    if response not in frame.columns:
        return "wide" if _numbered(frame, response) else "long"
    first = frame[response].iloc[0]
    if _is_list(first) or (isinstance(first, str) and first.lstrip().startswith("[")):
        try:
            _as_list(first, Path(), 0, response)
            return "wide"
        except DataError:
            return "long"
    return "long"


def to_long(frame: pd.DataFrame, cols: dict, form: str, path: Path) -> pd.DataFrame:
    """Rows of (row, group, prompt, response, reward[, split]) in file order."""
    prompt, response, reward = cols["prompt"], cols["response"], cols["reward"]
    group_col = cols["prompt_id"]
    split_col = cols["split"] if cols["split"] in frame.columns else None
    _require(frame, [prompt] + ([group_col] if group_col else []), path)
    form = detect_form(frame, cols, form)
    if form == "long":
        _require(frame, [response, reward], path)
        out = pd.DataFrame(
            {
                "row": np.arange(len(frame)),
                "group": frame[group_col] if group_col else frame[prompt],
                "prompt": frame[prompt],
                "response": frame[response],
                "reward": frame[reward],
            }
        )
        if split_col:
            out["split"] = frame[split_col].to_numpy()
        return out
    records = []
    numbered_resp, numbered_rew = _numbered(frame, response), _numbered(frame, reward)
    for row, values in enumerate(frame.to_dict("records")):
        if response in frame.columns:
            _require(frame, [reward], path)
            texts = _as_list(values[response], path, row, response)
            scores = _as_list(values[reward], path, row, reward)
        else:
            if not numbered_resp:
                raise DataError(
                    f"{path}: wide form needs a list column '{response}' or numbered columns "
                    f"'{response}_0', '{response}_1', ..."
                )
            texts = [values[c] for c in numbered_resp]
            scores = [values[c] for c in numbered_rew]
        if len(texts) != len(scores):
            raise DataError(f"{path}: row {row}: {len(texts)} responses but {len(scores)} rewards")
        for text, score in zip(texts, scores, strict=True):
            record = {
                "row": row,
                "group": values[group_col] if group_col else values[prompt],
                "prompt": values[prompt],
                "response": text,
                "reward": score,
            }
            if split_col:
                record["split"] = values[split_col]
            records.append(record)
    return pd.DataFrame.from_records(records)


def _check_values(long: pd.DataFrame, path: Path) -> pd.DataFrame:
    for column in ("prompt", "response"):
        bad = ~long[column].map(lambda v: isinstance(v, str))
        if bad.any():
            row = int(long.loc[bad.to_numpy(), "row"].iloc[0])
            value = long.loc[bad.to_numpy(), column].iloc[0]
            raise DataError(f"{path}: row {row}: {column} is {value!r}, expected text")
    numbers = pd.to_numeric(long["reward"], errors="coerce").astype(float)
    bad = ~np.isfinite(numbers.to_numpy())
    if bad.any():
        first = int(np.argmax(bad))
        raise DataError(
            f"{path}: row {int(long['row'].iloc[first])}: reward {long['reward'].iloc[first]!r} "
            "is not a finite number"
        )
    long = long.copy()
    long["reward"] = numbers.to_numpy()
    return long


def _group_prompts(long: pd.DataFrame) -> pd.DataFrame:
    """Number prompts in order of first appearance and responses in file order."""
    codes, _ = pd.factorize(long["group"].astype(str), sort=False)
    long = long.assign(prompt_index=codes)
    long["k"] = long.groupby("prompt_index").cumcount()
    return long


def assign_splits(long: pd.DataFrame, spec: dict, path: Path) -> pd.DataFrame:
    prompts = long.groupby("prompt_index", sort=True)
    if spec.get("test_fraction") is not None:
        count = int(long["prompt_index"].max()) + 1
        n_test = min(count - 1, max(1, round(spec["test_fraction"] * count)))
        chosen = rng(spec.get("split_seed", 0), "table-split").permutation(count)[:n_test]
        test = np.zeros(count, dtype=bool)
        test[chosen] = True
        return long.assign(split=np.where(test[long["prompt_index"]], "test", "train"))
    if "split" not in long.columns:
        raise ConfigError(
            f"{path}: no split column '{spec.get('columns', {}).get('split', 'split')}'; "
            "set 'test_fraction', name the column in 'columns.split', or give train_path and test_path"
        )
    values = long["split"].astype(str)
    unknown = sorted(set(values) - set(SPLITS))
    if unknown:
        raise DataError(f"{path}: split column holds {unknown[:5]}; expected 'train' or 'test'")
    mixed = prompts["split"].nunique() > 1
    if mixed.any():
        prompt = long.loc[long["prompt_index"] == mixed.idxmax(), "prompt"].iloc[0]
        raise DataError(f"{path}: prompt {prompt[:60]!r} has rows in both splits")
    return long.assign(split=values)


def check_grid(long: pd.DataFrame, where: str) -> dict[str, tuple[int, int]]:
    """Every prompt of a split needs the same number of responses (K ≥ 2), and P ≥ 2."""
    shapes = {}
    for split in SPLITS:
        part = long[long["split"] == split]
        if part.empty:
            raise DataError(f"{where}: the {split} split has no prompts")
        counts = part.groupby("p", sort=True).size()
        common = Counter(counts.tolist()).most_common()
        if len(common) > 1:
            k = common[0][0]
            odd = counts[counts != k]
            p = int(odd.index[0])
            prompt = part.loc[part["p"] == p, "prompt"].iloc[0]
            raise DataError(
                f"{where}: ragged {split} split: every prompt needs the same number of responses, "
                f"but counts are {dict(sorted(Counter(counts.tolist()).items()))} (responses: "
                f"prompts); e.g. prompt {prompt[:60]!r} has {int(odd.iloc[0])}, most have {k}"
            )
        prompts, responses = len(counts), int(common[0][0])
        if prompts < 2 or responses < 2:
            raise DataError(
                f"{where}: the {split} split has {prompts} prompt(s) × {responses} response(s); "
                "at least 2 × 2 are needed"
            )
        shapes[split] = (prompts, responses)
    return shapes


def _finish(long: pd.DataFrame) -> pd.DataFrame:
    """Renumber prompts within each split and order rows as the texts table."""
    parts = []
    for split in SPLITS:
        part = long[long["split"] == split].copy()
        part["p"] = pd.factorize(part["prompt_index"], sort=False)[0]
        parts.append(part.sort_values(["p", "k"], kind="stable"))
    out = pd.concat(parts, ignore_index=True)
    out["prompt_id"] = out["group"].astype(str)
    return out[TEXT_COLUMNS].reset_index(drop=True)


def texts_from_table(spec: dict) -> pd.DataFrame:
    """The texts table of a ``table`` world (see the module docstring)."""
    cols = {**COLUMN_DEFAULTS, **spec.get("columns", {})}
    fmt, form = spec.get("format", "auto"), spec.get("form", "auto")
    if spec.get("path"):
        path = Path(spec["path"])
        long = _check_values(to_long(read_table(path, fmt), cols, form, path), path)
        long = assign_splits(_group_prompts(long), spec, path)
        where = str(path)
    else:
        parts = []
        for split in SPLITS:
            path = Path(spec[f"{split}_path"])
            part = _check_values(to_long(read_table(path, fmt), cols, form, path), path)
            part["group"] = split + "\x1f" + part["group"].astype(str)
            parts.append(part.assign(split=split))
        long = _group_prompts(pd.concat(parts, ignore_index=True))
        long["group"] = long["group"].str.split("\x1f", n=1).str[1]
        where = f"{spec['train_path']} / {spec['test_path']}"
    long = long.copy()
    long["p"] = long.groupby("split")["prompt_index"].transform(lambda s: pd.factorize(s)[0])
    shapes = check_grid(long, where)
    log.info(
        "table %s: %s", where, {s: f"{p} prompts × {k} responses" for s, (p, k) in shapes.items()}
    )
    return _finish(long)


def check_spec(spec: dict, key: str) -> None:
    """Cross-key rules the schema cannot state clearly (run when the plan is built)."""
    has_path = bool(spec.get("path"))
    has_pair = bool(spec.get("train_path") or spec.get("test_path"))
    if has_path == has_pair:
        raise ConfigError(
            f"config key '{key}': give either 'path' (one table with both splits) or "
            "'train_path' and 'test_path', not both or neither"
        )
    if has_pair and spec.get("test_fraction") is not None:
        raise ConfigError(
            f"config key '{key}.test_fraction': only for a single 'path'; train_path and "
            "test_path already give the splits"
        )
    # The format comes from the name alone: an unknown suffix is refused before any read.
    for field in ("path",) if has_path else ("train_path", "test_path"):
        try:
            detect_format(Path(spec[field]), spec.get("format", "auto"))
        except ConfigError as error:
            raise ConfigError(f"config key '{key}.{field}': {error}") from None


def verify(spec: dict) -> None:
    """Every check of the table stage, writing nothing (run before any job)."""
    texts_from_table(spec)
