"""Tables across runs: one row per run and aggregation, and per-setting means with 95% intervals."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from .io import atomic_path, read_json

SETTING_COLUMNS = [
    "world",
    "source",
    "design",
    "prompt_pairing",
    "candidates",
    "n",
    "annotator",
    "annotator_model",
    "beta",
    "head",
    "head_type",
    "members",
    "aggregation",
]
SCALAR_SKIP = {"n_values", "bon_reward", "oracle_bon_reward"}


def run_rows(record: dict) -> list[dict]:
    """Flatten one run's metrics.json into a row per aggregation."""
    run, annotation, training = record["run"], record["annotation"], record["training"]
    base = {
        **{k: run[k] for k in ("world", "design", "n", "seed", "annotator", "head")},
        "source": run.get("source", ""),
        "prompt_pairing": run["design"].split("-")[0],
        "candidates": run["design"].split("-")[1],
        "annotator_model": annotation["annotator"]["model"],
        "beta": annotation["annotator"].get("beta", np.nan),
        "head_type": training["head"]["type"],
        "members": training["head"].get("members", 1),
        "fit_seconds": training["fit_seconds"],
        "predict_seconds": training["predict_seconds"],
        "device": training["device"],
        **{f"annotation_{k}": v for k, v in annotation["train"].items() if k != "scale"},
        "annotation_scale": annotation["train"]["scale"],
    }
    for key, value in annotation["annotator"].items():
        if key not in ("model", "beta"):
            base[f"annotator_{key}"] = value
    curves = pd.DataFrame(record["curves"])
    if not curves.empty:
        last = curves.apply(pd.to_numeric, errors="coerce").groupby("member").last().mean()
        base["train_loss"] = float(last.get("train_loss", np.nan))
        base["eval_loss"] = float(last.get("val_loss", np.nan))
        base["epochs"] = float(curves.groupby("member").size().mean())
    rows = []
    for aggregation, metrics in record["metrics"].items():
        row = {**base, "aggregation": aggregation}
        row.update({k: v for k, v in metrics.items() if k not in SCALAR_SKIP})
        for n, value in zip(metrics["n_values"], metrics["bon_reward"], strict=True):
            row[f"bon_reward_at_{n}"] = value
        for n, value in zip(metrics["n_values"], metrics["oracle_bon_reward"], strict=True):
            row[f"oracle_bon_reward_at_{n}"] = value
        rows.append(row)
    return rows


def build_summary(metric_files: Iterable[str | Path]) -> pd.DataFrame:
    rows = [row for path in metric_files for row in run_rows(read_json(path))]
    frame = pd.DataFrame(rows)
    order = ["world", "design", "annotator", "n", "head", "aggregation", "seed"]
    return frame.sort_values(order, kind="stable").reset_index(drop=True)


def aggregate(summary: pd.DataFrame) -> pd.DataFrame:
    """Per setting (all columns but the seed): mean and 95% t-interval of every metric."""
    from scipy import stats

    keys = [c for c in SETTING_COLUMNS if c in summary.columns]
    metrics = [c for c in summary.select_dtypes("number").columns if c not in keys and c != "seed"]
    grouped = summary.groupby(keys, dropna=False, sort=True)[metrics]
    mean, std, count = grouped.mean(), grouped.std(ddof=1), grouped.count()
    half = std * stats.t.ppf(0.975, (count - 1).clip(lower=1)) / np.sqrt(count)
    half = half.where(count > 1)
    out = pd.concat({"mean": mean, "ci95_low": mean - half, "ci95_high": mean + half}, axis=1)
    out.columns = [f"{metric}_{stat}" for stat, metric in out.columns]
    out.insert(0, "seeds", grouped.size())
    return out.reset_index()


def write_tables(metric_files, summary_csv, summary_parquet, aggregate_csv) -> pd.DataFrame:
    summary = build_summary(metric_files)
    with atomic_path(summary_csv) as tmp:
        summary.to_csv(tmp, index=False)
    with atomic_path(summary_parquet) as tmp:
        summary.to_parquet(tmp, index=False)
    with atomic_path(aggregate_csv) as tmp:
        aggregate(summary).to_csv(tmp, index=False)
    return summary
