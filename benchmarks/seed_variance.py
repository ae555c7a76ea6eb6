"""The seed variance component of every findings part in two experiments, side by side.

Recomputes both experiments' findings with this checkout's findings code (from each results
folder's summary.parquet and runs' metrics.json; nothing in the folders is written) and prints,
per tested part, the seed variance component of the crossed model (``var_seed`` of findings.csv)
before, after and their ratio, as a Markdown table:

    python benchmarks/seed_variance.py results-before/default results/default --out /tmp/sv

Used to measure what common random numbers (docs/annotation-and-pairing.md) do to the paired
contrasts of the findings: the estimands are the same, the seed-to-seed spread of the contrasts
is what changes.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "workflow"))

from embrm.findings import write

KEY = ["world", "claim", "part", "statement"]


def recompute(results: Path, out: Path) -> pd.DataFrame:
    """The findings table of ``results`` as this checkout's findings code computes it."""
    summary = results / "summary.parquet"
    if not summary.is_file():
        raise SystemExit(f"{summary}: not found (expected a finished experiment's results folder)")
    metrics = sorted(str(p) for p in (results / "runs").rglob("metrics.json"))
    out.mkdir(parents=True, exist_ok=True)
    return write(summary, out / "findings.csv", out / "findings.md", metric_files=metrics)


def ratio(after: float, before: float) -> float:
    return after / before if before > 0 else math.nan


def compare(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """Per tested part (a part with an interval over seeds): var_seed before, after and their
    ratio, and the ratio of the contrast's standard errors (se of findings.csv)."""
    columns = [*KEY, "var_seed", "se"]
    tested = [t[columns].dropna(subset=["var_seed"]) for t in (before, after)]
    table = tested[0].merge(tested[1], on=KEY, how="outer", suffixes=("_before", "_after"))
    for name, column in (("ratio", "var_seed"), ("se_ratio", "se")):
        table[name] = [
            ratio(a, b)
            for a, b in zip(table[f"{column}_after"], table[f"{column}_before"], strict=True)
        ]
    return table


def markdown(table: pd.DataFrame) -> str:
    lines = [
        "| part | contrast | seed var. before | after | after / before | se after / before |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for row in table.itertuples():
        lines.append(
            f"| {row.part} | {row.statement.replace('|', chr(92) + '|')} | "
            f"{row.var_seed_before:.2e} | {row.var_seed_after:.2e} | {row.ratio:.2f} | "
            f"{row.se_ratio:.2f} |"
        )
    lines.append("")
    for name, what in (("ratio", "seed variance"), ("se_ratio", "standard error")):
        ratios = table[name].dropna()
        lines.append(
            f"{what} ratio over {len(ratios)} parts: median {ratios.median():.2f}, quartiles "
            f"{ratios.quantile(0.25):.2f}–{ratios.quantile(0.75):.2f}, geometric mean "
            f"{math.exp(ratios[ratios > 0].apply(math.log).mean()):.2f} (over ratios > 0)."
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path, help="results/<experiment> of the first experiment")
    parser.add_argument("after", type=Path, help="results/<experiment> of the second experiment")
    parser.add_argument("--out", type=Path, required=True, help="folder for the recomputed tables")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    before = recompute(args.before, args.out / "before")
    after = recompute(args.after, args.out / "after")
    table = compare(before, after)
    table.to_csv(args.out / "seed_variance.csv", index=False)
    print(markdown(table))
    print(f"\n(findings recomputed in {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
