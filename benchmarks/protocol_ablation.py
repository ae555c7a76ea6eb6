"""Which training components make the two protocols disagree: the ablation's design and analysis.

    python benchmarks/protocol_ablation.py --config > configs/protocol-ablation.yaml
    python benchmarks/protocol_ablation.py --config --pilot > protocol-ablation-pilot.yaml
    python benchmarks/protocol_ablation.py results/protocol-ablation        # attribution tables

The experiment (configs/protocol-ablation.yaml, docs/protocol-ablation.md) trains each head of
the study under both presets (``<type>.study``, ``<type>.embrm``), under the released procedure
with one component switched to embrm's value (``<type>.study+<component>``) and under embrm's
with one switched to the study's (``<type>.embrm+<component>``), on the cells where the protocols
disagree. Every head of a cell and seed sees the same pairs and labels, so all comparisons are
paired by (world, design, annotator, n, seed).

The attribution reads every run's metrics.json (its per-test-prompt values) and prints, per head
type, metric (normalized BoN gain at the largest N, Spearman) and component, the paired effect of
switching that component from the study's value to embrm's, measured from both sides:

- ``from study``: value(study+c) − value(study), the component alone added to the released
  procedure;
- ``in embrm``: value(embrm) − value(embrm+c), the component alone removed from embrm's;

and, for the study's central claim (the classifier ahead of BT), the paired difference
clf-mlp − bt-mlp under each variant that both heads have. Each effect is a mean over the cells and
seeds, with the findings' 95% crossed random-effects interval over seeds and test prompts
(embrm.findings, docs/analysis-plan.md). An effect is called only when the interval excludes 0;
otherwise it is ``inconclusive`` (inside ±0.01 both ways: ``negligible``).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "workflow"))

import yaml  # noqa: E402
from embrm.heads import HEAD_TYPES  # noqa: E402
from embrm.heads.recipe import PROTOCOLS, preset  # noqa: E402

HEADS = ("bt-mlp", "clf-mlp", "clf-lgb")
SEEDS = [0, 1, 2, 3, 4]
METRICS = ("bon_gain_normalized", "spearman")
NEGLIGIBLE = 0.01  # an effect whose both intervals lie inside ±this is called negligible
OTHER = {"study": "embrm", "embrm": "study"}


def variant_name(head_type: str, base: str, component: str | None = None) -> str:
    return f"{head_type}.{base}" + (f"+{component}" if component else "")


def ablation_heads() -> dict[str, dict]:
    """Every head of the ablation: both presets, and each preset with one component switched to
    the other protocol's value (the values are the protocols' own, from the registry)."""
    heads = {}
    for head_type in HEADS:
        families = HEAD_TYPES[head_type].RECIPE
        for base in PROTOCOLS:
            heads[variant_name(head_type, base)] = {
                "type": head_type,
                "params": {"protocol": base},
            }
        for base in PROTOCOLS:
            own, other = preset(base, families), preset(OTHER[base], families)
            for component, value in other.items():
                if value == own[component]:
                    continue  # the same value under both protocols: nothing to switch
                heads[variant_name(head_type, base, component)] = {
                    "type": head_type,
                    "params": {"protocol": base, component: value},
                }
    return heads


def config() -> dict:
    """The ablation experiment: config.yaml's world, the cells where the protocols disagree."""
    base = yaml.safe_load((REPO / "config.yaml").read_text())
    out = {key: copy.deepcopy(base[key]) for key in ("worlds", "annotation", "training")}
    out["worlds"] = {"synthetic": out["worlds"]["synthetic"]}
    out["annotators"] = {k: base["annotators"][k] for k in ("bt-1", "bt-10")}
    out["heads"] = ablation_heads()
    out["evaluation"] = copy.deepcopy(base["evaluation"])
    out["tracking"] = copy.deepcopy(base["tracking"])
    out["grid"] = {
        "worlds": ["synthetic"],
        "annotators": ["bt-1", "bt-10"],
        "designs": ["same-random"],
        "quantities": [500, 2000],
        "heads": list(out["heads"]),
        "seeds": SEEDS,
    }
    out["extra_grids"] = [
        {"annotators": ["bt-1"], "designs": ["cross-random"], "quantities": [2000]}
    ]
    return out


def slice_config(
    annotator: str, quantity: int, head_types: list[str], design: str = "same-random"
) -> dict:
    """One cell of the design (``design`` pairs, ``annotator``, ``quantity`` pairs) with the
    heads of ``head_types``, five seeds, no MLflow tracking: a part of the experiment that runs in
    minutes on a laptop, analysed by the same attribution."""
    out = config()
    out["tracking"]["enabled"] = False
    out["annotators"] = {annotator: out["annotators"][annotator]}
    out["heads"] = {k: v for k, v in out["heads"].items() if k.split(".", 1)[0] in head_types}
    out["grid"].update(
        annotators=[annotator], designs=[design], quantities=[quantity], heads=list(out["heads"])
    )
    del out["extra_grids"]
    return out


# The slices measured (docs/protocol-ablation.md), each chosen from the two protocols' earlier
# comparison (docs/heads.md), never from an ablation outcome:
SLICES = {
    # bt-mlp at β = 10, 2,000 pairs: where bt-mlp moved most between the protocols; 90 runs.
    "pilot": ("bt-10", 2000, ["bt-mlp"]),
    # bt-mlp and clf-mlp at β = 1, 2,000 pairs: a cell of claim 1a (above 10% label error), where
    # the protocols disagree on the central claim (classifier ahead under the study's); 170 runs.
    "central": ("bt-1", 2000, ["bt-mlp", "clf-mlp"]),
    # The same on cross-prompt random pairs, the design's cross-prompt cell; 170 runs.
    "central-cross": ("bt-1", 2000, ["bt-mlp", "clf-mlp"], "cross-random"),
}


def pilot_config() -> dict:
    return slice_config(*SLICES["pilot"])


HEADER = """\
# Which training components make the two protocols disagree (docs/protocol-ablation.md).
# Generated by `python benchmarks/protocol_ablation.py --config`; edit that, not this file.
# config.yaml's world; the cells where config.yaml (protocol embrm) and
# configs/study-protocol.yaml (protocol study) disagree: same-random pairs at beta 1 and 10 with
# 500 and 2,000 pairs, and cross-random at beta 1 with 2,000; five seeds. Heads: every head of the
# study under both presets (<type>.study, <type>.embrm), the released procedure with one
# component switched to embrm's value (<type>.study+<component>) and embrm's with one switched to
# the study's (<type>.embrm+<component>). Analysis: benchmarks/protocol_ablation.py RESULTS.
"""


# -- analysis ----------------------------------------------------------------------------------
def read_runs(folder: Path) -> dict[tuple, dict]:
    """(world, design, annotator, n, seed, head) → per-prompt arrays of each finished run."""
    from embrm.summary import PRIMARY_AGGREGATION

    runs = {}
    for path in sorted(folder.rglob("metrics.json")):
        record = json.loads(path.read_text())
        run, stored = record["run"], record.get("per_prompt")
        if not stored:
            continue
        values = stored["aggregations"][PRIMARY_AGGREGATION]
        key = (run["world"], run["design"], run["annotator"], int(run["n"]), int(run["seed"]))
        runs[(*key, run["head"])] = {
            "bon_gain": np.asarray(values["bon_gain"], dtype=float),
            "oracle": np.asarray(stored["oracle_bon_gain"], dtype=float),
            "spearman": np.asarray(values["spearman"], dtype=float),
        }
    return runs


def run_values(run: dict, metric: str) -> np.ndarray:
    """(P,) per-test-prompt values whose mean is the run's value (embrm.findings' linearized
    ratio for the normalized gain; the prompt's ρ for Spearman, NaN where undefined)."""
    from embrm.findings import prompt_values

    if metric == "spearman":
        return run["spearman"]
    return prompt_values(run["bon_gain"][None], run["oracle"][None], metric)[0]


def paired_effect(runs, first: str, second: str, metric: str) -> dict | None:
    """value(first) − value(second), paired by cell, seed and test prompt; None without pairs.

    Y[seed, prompt] is the paired difference averaged over the seed's cells; its interval is the
    findings' crossed random-effects interval over seeds and test prompts (embrm.findings). A
    prompt where a Spearman difference is undefined in every cell of a seed takes that seed's
    mean over its other prompts, which leaves the seed's mean unchanged."""
    from embrm.findings import crossed_interval

    cells = {k[:-1] for k in runs if k[-1] == first} & {k[:-1] for k in runs if k[-1] == second}
    if not cells:
        return None
    seeds = sorted({c[-1] for c in cells})
    rows = []
    for seed in seeds:
        diffs = [
            run_values(runs[(*c, first)], metric) - run_values(runs[(*c, second)], metric)
            for c in sorted(cells)
            if c[-1] == seed
        ]
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN prompt: filled below
            row = np.nanmean(diffs, axis=0)
        rows.append(np.where(np.isfinite(row), row, np.nanmean(row)))
    result = crossed_interval(np.array(rows))
    low, high = float(result["ci_low"]), float(result["ci_high"])
    return {
        "mean": float(result["effect"]),
        "interval": (low, high),
        "cells": len({c[:-1] for c in cells}),
        "seeds": len(seeds),
        "verdict": verdict((low, high)),
    }


def verdict(pair: tuple) -> str:
    low, high = pair
    if not (np.isfinite(low) and np.isfinite(high)):
        return "inconclusive"
    if low > 0:
        return "embrm's value higher"
    if high < 0:
        return "study's value higher"
    if low > -NEGLIGIBLE and high < NEGLIGIBLE:
        return "negligible"
    return "inconclusive"


def interval(pair: tuple) -> str:
    return f"[{pair[0]:+.3f}, {pair[1]:+.3f}]"


def attribution(folder: Path) -> str:
    """The attribution tables, as Markdown."""
    runs = read_runs(folder)
    if not runs:
        raise SystemExit(f"{folder}: no metrics.json with per-prompt values under it")
    heads = ablation_heads()
    lines = []
    for metric in METRICS:
        lines += [
            f"### {metric}: effect of each component's embrm value (paired, mean over cells and "
            "seeds)",
            "",
            "| head | component | from study: study+c − study | verdict | in embrm: embrm − "
            "embrm+c | verdict |",
            "|---|---|---|---|---|---|",
        ]
        for head_type in HEADS:
            total = paired_effect(
                runs,
                variant_name(head_type, "embrm"),
                variant_name(head_type, "study"),
                metric,
            )
            if total:
                lines.append(
                    f"| {head_type} | **all (embrm − study)** | {total['mean']:+.3f} "
                    f"{interval(total['interval'])} | {total['verdict']} | | |"
                )
            components = sorted(
                {n.split("+", 1)[1] for n in heads if n.startswith(f"{head_type}.") and "+" in n}
            )
            for component in components:
                cells = []
                for first, second in (
                    (variant_name(head_type, "study", component), variant_name(head_type, "study")),
                    (variant_name(head_type, "embrm"), variant_name(head_type, "embrm", component)),
                ):
                    effect = paired_effect(runs, first, second, metric)
                    cells += (
                        [f"{effect['mean']:+.3f} {interval(effect['interval'])}", effect["verdict"]]
                        if effect
                        else ["not run", ""]
                    )
                lines.append(f"| {head_type} | {component} | " + " | ".join(cells) + " |")
        lines.append("")
        lines += [
            f"### {metric}: the central claim, clf-mlp − bt-mlp under each variant",
            "",
            "| variant | clf-mlp − bt-mlp | verdict |",
            "|---|---|---|",
        ]
        variants = sorted(
            {n.split(".", 1)[1] for n in heads if n.startswith("clf-mlp.")}
            & {n.split(".", 1)[1] for n in heads if n.startswith("bt-mlp.")}
        )
        for variant in variants:
            effect = paired_effect(runs, f"clf-mlp.{variant}", f"bt-mlp.{variant}", metric)
            if effect:
                label = (
                    effect["verdict"]
                    .replace("embrm's value", "clf-mlp")
                    .replace("study's value", "bt-mlp")
                )
                lines.append(
                    f"| {variant} | {effect['mean']:+.3f} {interval(effect['interval'])} | "
                    f"{label} |"
                )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("results", nargs="?", type=Path, help="the ablation's results folder")
    parser.add_argument("--config", action="store_true", help="print the experiment's config")
    parser.add_argument(
        "--slice", choices=sorted(SLICES), help="with --config: one measured slice of the design"
    )
    parser.add_argument("--pilot", action="store_true", help="with --config: --slice pilot")
    args = parser.parse_args()
    chosen = "pilot" if args.pilot else args.slice
    if args.config:
        made = slice_config(*SLICES[chosen]) if chosen else config()
        header = (
            HEADER.replace("# Which", f"# The {chosen} slice (one cell) of: which", 1)
            if chosen
            else HEADER
        )
        print(header + yaml.safe_dump(made, sort_keys=False, width=100), end="")
        return
    if args.results is None:
        parser.error("give the results folder, or --config")
    print(attribution(args.results))


if __name__ == "__main__":
    main()
