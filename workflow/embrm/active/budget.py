"""The annotation budget planner: labels needed to reach a target normalized Best-of-N gain.

Per (world, annotator, head, design), the learning-curve points (:mod:`.curves`, one per seed and
label count) are fitted by least squares (``scipy.optimize.curve_fit``) with the saturating curve

    g(n) = A · n / (n + K)

where g is the normalized Best-of-N gain (share of the oracle's gain), A the gain the curve tends
to with unlimited labels and K the labels at which half of A is reached. The labels needed for a
target t are n* = K·t / (A − t) when A > t, else the target is out of reach.

Uncertainty: the parameters' covariance from the fit (residual variance estimated from the
points) gives t-intervals for A and K (level ``confidence``, df = points − 2), and a seeded
Monte-Carlo draw of (A, K) from the normal approximation gives the interval of n* (the
percentiles of n* over the draws; a draw with A ≤ t counts as n* = ∞, so an upper bound of ∞
means the data cannot rule out that the target is out of reach). A status says which case holds:
``within data`` (n* at most the largest label count observed), ``extrapolated`` (beyond it),
``out of reach`` (A ≤ t) or ``too few points`` (fewer than 3 distinct label counts).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from ..seeding import rng
from .curves import KEYS, learning_points

MIN_LABEL_COUNTS = 3
DRAWS = 4000
METRIC = "bon_gain_normalized"


def saturating(n, a, k):
    n = np.asarray(n, dtype=np.float64)
    return a * n / (n + k)


def labels_needed(a, k, target: float):
    """n* = K t / (A − t); ∞ where the curve never reaches the target."""
    a, k = np.asarray(a, dtype=np.float64), np.asarray(k, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        n = np.where((a > target) & (k > 0), k * target / (a - target), np.inf)
    return n


def fit_curve(labels, gains, confidence: float = 0.95) -> dict:
    """Least-squares fit of g(n) = A n/(n + K); parameters, covariance and t-intervals."""
    from scipy import stats
    from scipy.optimize import curve_fit

    x = np.asarray(labels, dtype=np.float64)
    y = np.asarray(gains, dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0)
    x, y = x[keep], y[keep]
    if np.unique(x).size < MIN_LABEL_COUNTS:
        return {"ok": False, "points": int(x.size)}
    start = [max(float(y.max()), 1e-3), float(np.median(x))]
    try:
        params, cov = curve_fit(
            saturating, x, y, p0=start, bounds=([0.0, 1e-9], [np.inf, np.inf]), maxfev=20_000
        )
    except (RuntimeError, ValueError):
        return {"ok": False, "points": int(x.size)}
    dof = max(x.size - 2, 1)
    se = np.sqrt(np.clip(np.diag(cov), 0.0, np.inf))
    q = stats.t.ppf(0.5 + confidence / 2, dof)
    return {
        "ok": bool(np.isfinite(cov).all()),
        "points": int(x.size),
        "labels_max": float(x.max()),
        "A": float(params[0]),
        "K": float(params[1]),
        "cov": cov,
        "A_low": float(params[0] - q * se[0]),
        "A_high": float(params[0] + q * se[0]),
        "K_low": float(params[1] - q * se[1]),
        "K_high": float(params[1] + q * se[1]),
        "residual_sd": float(np.sqrt(np.sum((y - saturating(x, *params)) ** 2) / dof)),
    }


def plan_target(fit: dict, target: float, confidence: float = 0.95, seed: int = 0) -> dict:
    """Labels needed for ``target`` with its interval and status, from a :func:`fit_curve`."""
    if not fit["ok"]:
        return {
            "labels_needed": np.nan,
            "labels_low": np.nan,
            "labels_high": np.nan,
            "status": "too few points",
        }
    point = float(labels_needed(fit["A"], fit["K"], target))
    draws = rng(seed, "budget", target).multivariate_normal(
        [fit["A"], fit["K"]], fit["cov"], size=DRAWS, method="eigh"
    )
    needed = labels_needed(draws[:, 0], draws[:, 1], target)
    tail = (1 - confidence) / 2
    low, high = np.quantile(needed, [tail, 1 - tail], method="inverted_cdf")
    if not np.isfinite(point):
        status = "out of reach"
    elif point <= fit["labels_max"]:
        status = "within data"
    else:
        status = "extrapolated"
    return {
        "labels_needed": point,
        "labels_low": float(low),
        "labels_high": float(high),
        "status": status,
    }


def budget_table(
    summary: pd.DataFrame, targets, confidence: float = 0.95, metric: str = METRIC
) -> pd.DataFrame:
    """One row per (world, annotator, head, design) and target."""
    points = learning_points(summary)
    rows = []
    for key, group in points.groupby(KEYS, sort=True):
        fit = fit_curve(group["labels"], group[metric], confidence)
        base = dict(zip(KEYS, key, strict=True))
        base.update(
            {
                "points": fit["points"],
                "label_counts": int(group["labels"].nunique()),
                "labels_max": fit.get("labels_max", float(group["labels"].max())),
                **{p: fit.get(p, np.nan) for p in ("A", "A_low", "A_high", "K", "K_low", "K_high")},
            }
        )
        for target in targets:
            rows.append({**base, "target": float(target), **plan_target(fit, target, confidence)})
    return pd.DataFrame(rows)


def read_summary_source(source: str | Path) -> pd.DataFrame:
    """A summary table from a file, a results directory, or an experiment name (results/<name>)."""
    path = Path(source)
    candidates = [path] if path.is_file() else []
    for directory in (path, Path("results") / str(source)):
        candidates += [directory / "summary.parquet", directory / "summary.csv"]
    for candidate in candidates:
        if candidate.is_file():
            if candidate.suffix == ".parquet":
                return pd.read_parquet(candidate)
            return pd.read_csv(candidate)
    raise DataError(
        f"{source}: no summary table found (expected a summary.csv/.parquet file, a results "
        f"directory holding one, or an experiment name under results/)"
    )


def format_table(table: pd.DataFrame) -> str:
    """The table as text: labels needed with their interval, or the status."""
    if table.empty:
        return "no learning curves in this summary"

    def labels(row):
        if row["status"] == "out of reach" and np.isfinite(row["labels_low"]):
            # The fitted curve levels off below the target, but its interval does not rule the
            # target out: say from how many labels it could be reached.
            return f"out of reach (interval [{row['labels_low']:,.0f}, ∞])"
        if row["status"] in ("out of reach", "too few points"):
            return row["status"]
        high = "∞" if not np.isfinite(row["labels_high"]) else f"{row['labels_high']:,.0f}"
        return f"{row['labels_needed']:,.0f} [{row['labels_low']:,.0f}, {high}] ({row['status']})"

    shown = table.assign(
        **{
            "labels needed [95% interval]": table.apply(labels, axis=1),
            "A [95%]": table.apply(
                lambda r: (
                    ""
                    if not np.isfinite(r["A"])
                    else f"{r['A']:.3f} [{r['A_low']:.3f}, {r['A_high']:.3f}]"
                ),
                axis=1,
            ),
        }
    )
    varying = [k for k in ("world", "annotator") if table[k].nunique() > 1]
    columns = [*varying, "head", "design", "target", "A [95%]", "labels needed [95% interval]"]
    return shown[columns].to_string(index=False)


def run_cli(source, targets, confidence: float, csv_out=None, html_out=None) -> pd.DataFrame:
    """``embrm budget``: print the table; optionally write it as CSV and as a report page."""
    import html

    from ..errors import ConfigError
    from ..io import atomic_path
    from ..pages import html_page

    for target in targets:
        if not 0 < target <= 1:
            raise ConfigError(
                f"--target: expected a share of the oracle's gain in (0, 1], got {target}"
            )
    if not 0 < confidence < 1:
        raise ConfigError(f"--confidence: expected a level in (0, 1), got {confidence}")
    table = budget_table(read_summary_source(source), targets, confidence)
    text = format_table(table)
    print(text)
    if csv_out:
        with atomic_path(csv_out) as tmp:
            table.to_csv(tmp, index=False)
    if html_out:
        intro = (
            "Labels needed to reach each target normalized Best-of-N gain (share of the oracle's "
            "gain), per head and design, from the saturating fit g(n) = A·n/(n + K) of the "
            f"learning curves; intervals are {confidence:.0%} (docs/active.md)."
        )
        body = "<pre>" + html.escape(text) + "</pre>"
        with atomic_path(html_out) as tmp:
            tmp.write_text(html_page("Annotation budget (budget.csv)", intro, body))
    return table
