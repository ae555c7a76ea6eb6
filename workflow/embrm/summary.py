"""Tables across runs: one row per run, and per-setting means with 95% intervals across seeds.

A row holds every setting of the run (world and its parameters, pairing design, number of pairs,
annotator and its parameters, head and its hyperparameters, seed), the annotation statistics,
training summaries and every test metric. Metric columns without a suffix are those of the mean
of the ensemble members (the plain prediction of a single-member head); an ensemble also gets
``<metric>__min`` and ``<metric>__first`` for its other aggregations.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from .io import atomic_path, read_json
from .pages import html_page
from .settings import (
    SETTING_PREFIXES,
    base_settings,
    flatten_settings,  # noqa: F401 (the figures import it from here)
    run_settings,
)

# Settings in the order they appear (derived from the design and annotator registries);
# parameter columns (world_*, annotator_*, head_param_*) follow.
BASE_SETTINGS = base_settings()
PRIMARY_AGGREGATION = "mean"
LIST_METRICS = {"n_values", "bon_reward", "bon_gain_curve", "oracle_bon_reward"}
# Exact per-N properties of the pick (embrm.evaluation_exact.pick_quality): ``<name>_at_<N>`` columns.
PICK_CURVES = (
    "bon_kl",
    "bon_kl_bound",
    "bon_quantile",
    "bon_win_rate",
    "bon_proxy_z",
    "bon_gold_z",
)
LIST_METRICS |= {f"{name}_curve" for name in PICK_CURVES}
# Metrics that do not depend on the predictions: the same for every aggregation.
TEST_SET_METRICS = {"random_pick_reward", "oracle_best_reward", "oracle_bon_gain", "bon_n_max"}
HEADLINE = [
    "bon_gain",
    "bon_gain_normalized",
    "spearman",
    "spearman_defined_fraction",
    "accuracy_vs_labels",
    "accuracy_vs_golden",
    "annotation_mean_abs_dr",
    "annotation_realized_error_rate",
]
HTML_ROW_LIMIT = 5000
# A run is degenerate (status column) when its numbers cannot mean what they usually do; such runs
# stay in summary.csv, are left out of aggregate.csv's means (and counted) and of the figures.
STATUS_OK = "ok"
UNDEFINED_SPEARMAN_LIMIT = 0.5  # share of test prompts without a defined Spearman ρ


def steps_per_epoch(training: dict, pairs: int) -> int | None:
    """Optimizer steps in one epoch of a minibatch head (None for heads without epochs), by the
    schedule the head itself used (``MLPHead.epoch_schedule`` under embrm's protocol)."""
    recorded = training.get("steps_per_epoch")
    if recorded is not None:  # what the head recorded (train.json since it holds the field)
        # An ensemble's members fit the same pairs with the same settings: one schedule.
        return next((steps for steps in recorded if steps is not None), None)
    head = training.get("head", {})
    batch = head.get("batch_size")
    if not training.get("best_epoch") or not batch:
        return None
    fit_share = 1 - float(head.get("val_fraction", 0) or 0)
    recipe = _recipe(head)
    if recipe is not None and "steps" in recipe.values:
        # Examples per pair: two for a classifier (winner and loser) and for BT in both orders.
        clf = str(head.get("type", "")).startswith("clf")
        examples = (
            pairs * fit_share * (2 if clf or recipe.values.get("bt_examples") == "both" else 1)
        )
        if recipe["steps"] == "plain":
            return max(1, math.ceil(examples / min(batch, max(examples, 1))))
        if "min_steps_per_epoch" in head:
            from .heads.mlp import MLPHead

            return MLPHead.epoch_schedule(head, math.ceil(examples))[1]
        return max(1, math.ceil(examples / batch))  # a record that does not say
    # batch_size counts examples: pairs for BT heads, responses (two per pair) for classifiers.
    examples = pairs * fit_share * (2 if str(head.get("type", "")).startswith("clf") else 1)
    return max(1, math.ceil(examples / batch))


def _recipe(head: dict):
    """The training recipe a logged head used (None for a type without one, or unknown)."""
    from .heads import HEAD_TYPES

    cls = HEAD_TYPES.get(str(head.get("type", "")))
    if cls is None or not cls.RECIPE:
        return None
    params = {k: v for k, v in head.items() if k in cls.defaults}
    return cls.resolve_recipe({**cls.defaults, **params}, "head")


def run_status(record: dict) -> str:
    """'ok', or 'degenerate: <reasons>' for a run whose metrics look normal but are not."""
    reasons = []
    primary = record["metrics"][PRIMARY_AGGREGATION]
    defined = _number(primary.get("spearman_defined_fraction"))
    if defined == 0:
        reasons.append("constant predictions (Spearman undefined on every test prompt)")
    elif defined < 1 - UNDEFINED_SPEARMAN_LIMIT:
        reasons.append(f"Spearman undefined on {1 - defined:.0%} of the test prompts")
    training = record["training"]
    best = training.get("best_epoch")
    best = best if isinstance(best, list) else [best]
    pairs = int(training.get("train_pairs") or record["run"]["n"])
    if steps_per_epoch(training, pairs) == 1 and 1 in best:
        reasons.append(
            "model kept from its first optimizer step (best epoch 1, one step per epoch)"
        )
    return f"degenerate: {'; '.join(reasons)}" if reasons else STATUS_OK


def degenerate(summary: pd.DataFrame) -> pd.Series:
    """Boolean mask of the degenerate runs (False for tables without a status column)."""
    if "status" not in summary:
        return pd.Series(False, index=summary.index)
    return summary["status"].ne(
        STATUS_OK
    )  # rows shown in the report's HTML view; the CSV always has all


def setting_columns(frame: pd.DataFrame) -> list[str]:
    """The columns that define a setting (everything but the seed and the measurements)."""
    base = [c for c in BASE_SETTINGS if c in frame.columns]
    params = [c for c in frame.columns if c.startswith(SETTING_PREFIXES) and c not in base]
    return base + params


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _curve_summary(curves: list[dict]) -> dict:
    """Final training and validation loss (mean over members) and epochs run per member.

    Plain Python: this runs once per run, and a DataFrame per row would dominate the time of
    summarizing a large grid.
    """
    last: dict[str, dict] = {}
    epochs: dict[str, int] = {}
    for row in curves:
        member = str(row.get("member", "0"))
        last[member] = row
        epochs[member] = epochs.get(member, 0) + 1
    if not last:
        return {}

    def mean(key: str) -> float:
        values = [v for r in last.values() if (v := _number(r.get(key))) == v]  # NaN-free
        return sum(values) / len(values) if values else float("nan")

    return {
        "train_loss": mean("train_loss"),
        "eval_loss": mean("val_loss"),
        "epochs": sum(epochs.values()) / len(epochs),
    }


def run_row(record: dict) -> dict:
    """Flatten one run's metrics.json into its summary row."""
    run, annotation, training = record["run"], record["annotation"], record["training"]
    row = run_settings(
        {"source": "", **run},
        world=run.get("world_spec", {}),
        annotator=annotation["annotator"],
        head=training["head"],
        extra={"status": run_status(record)},
    )
    for split in ("train", "heldout"):
        prefix = "annotation_" if split == "train" else "heldout_"
        row.update({f"{prefix}{k}": v for k, v in annotation.get(split, {}).items()})
    row.update(
        {
            "fit_seconds": training["fit_seconds"],
            "predict_seconds": training["predict_seconds"],
            "evaluate_seconds": record.get("evaluate_seconds", np.nan),
            "device": training["device"],
        }
    )
    row.update(_curve_summary(record["curves"]))
    evaluation = record.get("evaluation", {})
    if evaluation:
        # Runs evaluated before the choice existed used the sampled estimator.
        row["bon_method"] = evaluation.get("bon", "sampled")
        # The exact estimator draws nothing: no repeats to report.
        row["bon_repeats"] = evaluation["repeats"] if row["bon_method"] == "sampled" else None
        row["test_prompts"] = evaluation["test_prompts"]
        row["test_responses"] = evaluation["test_responses"]
    metrics = record["metrics"]
    primary = metrics[PRIMARY_AGGREGATION]
    row.update({k: v for k, v in primary.items() if k not in LIST_METRICS})
    row["bon_points"] = len(primary["n_values"])
    for i, n in enumerate(primary["n_values"]):
        row[f"bon_reward_at_{n}"] = primary["bon_reward"][i]
        row[f"bon_gain_at_{n}"] = primary["bon_reward"][i] - primary["random_pick_reward"]
        row[f"oracle_bon_reward_at_{n}"] = primary["oracle_bon_reward"][i]
        row[f"oracle_bon_gain_at_{n}"] = (
            primary["oracle_bon_reward"][i] - primary["random_pick_reward"]
        )
        for name in PICK_CURVES:
            if f"{name}_curve" in primary:
                row[f"{name}_at_{n}"] = primary[f"{name}_curve"][i]
    for aggregation, values in metrics.items():
        if aggregation == PRIMARY_AGGREGATION:
            continue
        for key, value in values.items():
            if key not in LIST_METRICS and key not in TEST_SET_METRICS:
                row[f"{key}__{aggregation}"] = value
    return row


def _column_order(frame: pd.DataFrame) -> list[str]:
    """Settings, the seed, parameter settings, then measurements in the order they were added."""
    base = [c for c in BASE_SETTINGS if c in frame.columns]
    params = [c for c in setting_columns(frame) if c not in base]
    first = [*base, "seed", *params, *(["status"] if "status" in frame else [])]
    return first + [c for c in frame.columns if c not in first]


def _arrow_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns whose values mix types (a parameter that is a number in one head and a word
    in another) become all text, so Parquet can store them."""
    for column in frame.select_dtypes(exclude="number").columns:
        kinds = {type(v) for v in frame[column].dropna()}
        if len(kinds) > 1:
            frame[column] = frame[column].map(lambda v: v if pd.isna(v) else str(v))
    return frame


def build_summary(metric_files: Iterable[str | Path]) -> pd.DataFrame:
    rows = [run_row(read_json(path)) for path in metric_files]
    if not rows:
        raise ValueError("no metrics files to summarize")
    frame = _arrow_safe(pd.DataFrame(rows))
    frame = frame[_column_order(frame)]
    order = ["world", "design", "n", "annotator", "head", "seed"]
    return frame.sort_values(order, kind="stable").reset_index(drop=True)


def t_interval(values, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided t-interval of the mean; (nan, nan) with fewer than two finite values."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size < 2:
        return float("nan"), float("nan")
    mean = values.mean()
    half = stats.t.ppf(0.5 + confidence / 2, values.size - 1) * values.std(ddof=1)
    half /= np.sqrt(values.size)
    return float(mean - half), float(mean + half)


def aggregate(summary: pd.DataFrame) -> pd.DataFrame:
    """Per setting (every setting column; the seed varies): mean and 95% t-interval of each metric.

    The interval is over seeds; it is empty (NaN) for a setting with one seed. Degenerate runs
    (status column) are left out: ``seeds`` counts the runs used, ``degenerate_runs`` those left
    out, and a setting with only degenerate runs keeps its row with empty metrics.
    """
    from scipy import stats

    keys = setting_columns(summary)
    metrics = [c for c in summary.select_dtypes("number").columns if c not in keys and c != "seed"]
    excluded = degenerate(summary)
    summary = summary.assign(_used=(~excluded).astype(int), _excluded=excluded.astype(int))
    summary[metrics] = summary[metrics].astype(float).where(~excluded, axis=0)
    counts = summary.groupby(keys, dropna=False, sort=True)[["_used", "_excluded"]].sum()
    grouped = summary.groupby(keys, dropna=False, sort=True)[metrics]
    mean, std, count = grouped.mean(), grouped.std(ddof=1), grouped.count()
    half = std * stats.t.ppf(0.975, (count - 1).clip(lower=1)) / np.sqrt(count)
    half = half.where(count > 1)
    out = pd.concat({"mean": mean, "ci95_low": mean - half, "ci95_high": mean + half}, axis=1)
    # metric-major column order: bon_gain_mean, bon_gain_ci95_low, bon_gain_ci95_high, ...
    out = out.reorder_levels([1, 0], axis=1)[
        [(m, s) for m in metrics for s in ("mean", "ci95_low", "ci95_high")]
    ]
    out.columns = [f"{metric}_{stat}" for metric, stat in out.columns]
    out = pd.concat(
        [
            counts["_used"].rename("seeds"),
            counts["_excluded"].rename("degenerate_runs"),
            out,
        ],
        axis=1,
    )
    # One concat, not column-by-column inserts: wide grids have hundreds of metric columns.
    return pd.concat([out.index.to_frame(index=False), out.reset_index(drop=True)], axis=1)


def _table_html(frame: pd.DataFrame) -> str:
    shown = frame.head(HTML_ROW_LIMIT)
    note = ""
    if len(frame) > len(shown):
        note = f"<p>First {len(shown):,} of {len(frame):,} rows; the CSV holds all of them.</p>"
    return note + shown.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.4g}")


def summary_html(summary: pd.DataFrame) -> str:
    keys = [c for c in BASE_SETTINGS if c in summary.columns and summary[c].nunique() > 1]
    status = ["status"] if "status" in summary else []
    columns = [*keys, "seed", *status, *[c for c in HEADLINE if c in summary.columns]]
    intro = (
        f"{len(summary):,} runs: the settings that vary and the headline metrics. bon_gain is the "
        "golden reward of the Best-of-N pick at the largest N minus the prompt's mean golden "
        "reward, averaged over test prompts and over the draws of N responses (exactly, or over "
        "random draws where bon_method is sampled); bon_gain_normalized divides it by what "
        "picking by the golden reward gains. summary.csv holds every column."
    )
    return html_page("Runs (summary.csv)", intro, _table_html(summary[columns]))


def aggregate_html(aggregated: pd.DataFrame) -> str:
    keys = [c for c in BASE_SETTINGS if c in aggregated.columns and aggregated[c].nunique() > 1]
    shown = aggregated[[*keys, "seeds"]].copy()
    for metric in HEADLINE:
        if f"{metric}_mean" not in aggregated:
            continue
        mean = aggregated[f"{metric}_mean"]
        low, high = aggregated[f"{metric}_ci95_low"], aggregated[f"{metric}_ci95_high"]
        shown[metric] = [
            "" if pd.isna(m) else (f"{m:.4g}" if pd.isna(lo) else f"{m:.4g} [{lo:.4g}, {hi:.4g}]")
            for m, lo, hi in zip(mean, low, high, strict=True)
        ]
    intro = (
        f"{len(aggregated):,} settings: mean over seeds and, in brackets, the 95% t-interval "
        "(none with a single seed). aggregate.csv holds every metric."
    )
    return html_page("Settings across seeds (aggregate.csv)", intro, _table_html(shown))


def write_tables(
    metric_files,
    summary_csv,
    summary_parquet,
    aggregate_csv,
    summary_page=None,
    aggregate_page=None,
) -> pd.DataFrame:
    summary = build_summary(metric_files)
    aggregated = aggregate(summary)
    with atomic_path(summary_csv) as tmp:
        summary.to_csv(tmp, index=False)
    with atomic_path(summary_parquet) as tmp:
        summary.to_parquet(tmp, index=False)
    with atomic_path(aggregate_csv) as tmp:
        aggregated.to_csv(tmp, index=False)
    for path, page in ((summary_page, summary_html), (aggregate_page, aggregate_html)):
        if path is not None:
            with atomic_path(path) as tmp:
                tmp.write_text(page(summary if page is summary_html else aggregated))
    return summary


def read_summary(path: str | Path) -> pd.DataFrame:
    """The summary table as :func:`write_tables` wrote it (``.parquet``, else CSV)."""
    path = Path(path)
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def config_html(config: dict, runs: int, figures: dict, skipped: dict) -> str:
    """The report's configuration page: grid size, figures drawn or not (and why), the YAML."""
    import yaml

    grid = config.get("grid", {})
    axes = "".join(
        f"<tr><th>{html.escape(axis)}</th><td>{html.escape(', '.join(map(str, values)))}</td></tr>"
        for axis, values in grid.items()
    )
    extra = len(config.get("extra_grids", []))
    drawn = "".join(f"<li>{html.escape(label)}</li>" for label in figures.values())
    not_drawn = "".join(
        f"<li><b>{html.escape(name)}</b>: {html.escape(reason)}</li>"
        for name, reason in skipped.items()
    )
    body = (
        f"<h2>Grid</h2><p>{runs:,} runs: the main grid below"
        + (f" and {extra} further block(s) under extra_grids" if extra else "")
        + ".</p>"
        + f"<table class='grid'>{axes}</table>"
        + f"<h2>Figures drawn</h2><ul>{drawn or '<li>none</li>'}</ul>"
        + (f"<h2>Figures not drawn</h2><ul>{not_drawn}</ul>" if not_drawn else "")
        + "<h2>Configuration used</h2><pre>"
        + html.escape(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
        + "</pre>"
    )
    intro = (
        "The validated configuration of this workflow run, every default filled in "
        "(config.used.yaml holds the same YAML)."
    )
    return html_page("Configuration", intro, body)
