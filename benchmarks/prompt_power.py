"""How many test prompts an experiment needs: every finding recomputed on its first P prompts.

Reads a finished experiment (its summary and the per-test-prompt values each run's metrics.json
stores), keeps only the first P test prompts of every run (the prompts are drawn independently,
so the first P are a random subset), and tests every claim again on them, for each P asked for.
Prints, per part, the half-width of its interval over seeds and test prompts (crossed random
effects, docs/analysis-plan.md) and the share of its variance from the test prompts at each P,
then the half-width's ratio to the width at the largest P: how much of the uncertainty more test
prompts remove, which is what sizing a grid needs (the effects and verdicts are printed too, but
sizing on them would tune the design on the outcome).

    python benchmarks/prompt_power.py results/<experiment> --prompts 100 250 500 1000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "workflow"))

from embrm.findings import (
    NOT_TESTED,
    PROMPT_METRICS,
    findings,
    read_per_prompt,
    resampled_values,
    run_key,
)
from embrm.summary import read_summary


def first_prompts(summary: pd.DataFrame, per_prompt: dict, prompts: int):
    """The summary and per-prompt values as if every run had been scored on its first prompts."""
    kept = {
        key: {name: values[:prompts] for name, values in record.items()}
        for key, record in per_prompt.items()
    }
    keys = [run_key(row) for _, row in summary.iterrows()]
    missing = [key for key in keys if key not in kept]
    if missing:
        raise SystemExit(f"run {missing[0]} has no per-prompt values in its metrics.json")
    gain = np.stack([kept[key]["bon_gain"] for key in keys])
    oracle = np.stack([kept[key]["oracle_bon_gain"] for key in keys])
    every_prompt_once = np.ones((1, gain.shape[1]))  # the findings' own recomputation, no draw
    table = summary.copy()
    for metric in PROMPT_METRICS:
        table[metric] = resampled_values(gain, oracle, every_prompt_once, metric)[:, 0]
    return table, kept


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="results/<experiment> of a finished run")
    parser.add_argument("--prompts", type=int, nargs="+", required=True)
    args = parser.parse_args(argv)

    table = args.results / "summary.parquet"
    if not table.is_file():
        raise SystemExit(f"{table}: not found (expected a finished experiment's results folder)")
    summary = read_summary(table)
    per_prompt = read_per_prompt(sorted((args.results / "runs").rglob("metrics.json")))
    if not per_prompt:
        raise SystemExit(f"{args.results}: no run's metrics.json has per-prompt values")
    available = min(record["bon_gain"].size for record in per_prompt.values())
    prompts = sorted(p for p in args.prompts if p <= available)
    if not prompts:
        raise SystemExit(f"--prompts: the runs have {available} test prompts")

    rows = []
    for count in prompts:
        table, kept = first_prompts(summary, per_prompt, count)
        result = findings(table, per_prompt=kept)
        result = result[(result["part"] != "all") & (result["verdict"] != NOT_TESTED)]
        for row in result.itertuples():
            rows.append(
                {
                    "world": row.world,
                    "part": row.part,
                    "statement": row.statement,
                    "prompts": count,
                    "effect": row.effect,
                    "half": (row.ci_high - row.ci_low) / 2,
                    "prompt_share": row.share_prompt,
                    "verdict": row.verdict,
                }
            )
    frame = pd.DataFrame(rows)
    keys = ["world", "part", "statement"]
    largest = frame.loc[frame["prompts"] == prompts[-1], [*keys, "half"]]
    frame = frame.merge(largest.rename(columns={"half": "half_largest"}), on=keys, how="left")
    frame["ratio"] = frame["half"] / frame["half_largest"]

    pd.set_option("display.width", 200, "display.max_colwidth", 60, "display.max_rows", None)
    for (world, part, statement), group in frame.groupby(keys, sort=False):
        print(f"{world} {part}: {statement}")
        shown = ["prompts", "effect", "half", "prompt_share", "ratio", "verdict"]
        print(group[shown].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        print()
    summary_rows = frame.groupby("prompts")[["half", "prompt_share", "ratio"]]
    print("median over parts:")
    print(summary_rows.median().to_string(float_format=lambda v: f"{v:.3f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
