"""The protocol ablation's attribution: which component moves which head and which claim.

Read by ``python benchmarks/protocol_ablation.py RESULTS [RESULTS ...]`` (docs/protocol-ablation.md).
Every number is a linear contrast of run values within a seed: a weight per run, summed per
group of runs that share the world, the seed and every setting but the ones under comparison,
averaged over a seed's groups. Its 95% interval is the findings' crossed random-effects interval
over seeds and test prompts (embrm.findings, docs/analysis-plan.md). Runs pair across results
folders when they share (world, design, annotator, n, seed): a world, its pairs and its labels are
a function of the config and the seed, so two experiments with the same world agree on them.

The claims' parts compared here (embrm.findings.claims defines them for the study's heads):

- ``clf − bt``: the classifier's value minus Bradley-Terry's in each cell (claim 1's contrast);
- ``2c``: Bradley-Terry's loss minus the classifier's going from the largest to the smallest
  number of pairs, at each annotator (positive: the classifier degrades more gracefully);
- ``2d``: the same going from the largest to the smallest β (noisier labels), at each number of
  pairs; every annotator of the ablation is a Bradley-Terry one, so β orders them.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

HEADS = ("bt-mlp", "clf-mlp", "clf-lgb")
BT = "bt-mlp"
CLASSIFIERS = ("clf-mlp", "clf-lgb")
METRICS = ("bon_gain_normalized", "spearman")
NEGLIGIBLE = 0.01  # an effect whose interval lies inside ±this is called negligible

Groups = dict[tuple, list[tuple[float, tuple]]]  # group (seed last) → [(weight, run key), ...]


def variant_name(head_type: str, base: str, component: str | None = None) -> str:
    return f"{head_type}.{base}" + (f"+{component}" if component else "")


def read_runs(folders: list[Path]) -> dict[tuple, dict]:
    """(world, design, annotator, n, seed, head) → per-prompt arrays and β of each finished run."""
    from embrm.summary import PRIMARY_AGGREGATION

    runs = {}
    for folder in folders:
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
                "beta": float((run.get("annotator_params") or {}).get("beta", np.nan)),
            }
    return runs


def run_values(run: dict, metric: str) -> np.ndarray:
    """(P,) per-test-prompt values whose mean is the run's value (embrm.findings' linearized
    ratio for the normalized gain; the prompt's ρ for Spearman, NaN where undefined)."""
    from embrm.findings import prompt_values

    if metric == "spearman":
        return run["spearman"]
    return prompt_values(run["bon_gain"][None], run["oracle"][None], metric)[0]


def contrast(runs: dict, groups: Groups, metric: str) -> dict | None:
    """Σ weight · value per group, averaged over each seed's groups; None without a group.

    Y[seed, prompt] is that average on each test prompt; a prompt whose Spearman contrast is
    undefined in every group of a seed takes the seed's mean over its other prompts, which leaves
    the seed's mean unchanged."""
    from embrm.findings import crossed_interval

    if not groups:
        return None
    seeds = sorted({g[-1] for g in groups})
    rows = []
    for seed in seeds:
        sums = [
            sum(w * run_values(runs[key], metric) for w, key in terms)
            for g, terms in sorted(groups.items())
            if g[-1] == seed
        ]
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN prompt: filled below
            row = np.nanmean(sums, axis=0)
        rows.append(np.where(np.isfinite(row), row, np.nanmean(row)))
    result = crossed_interval(np.array(rows))
    low, high = float(result["ci_low"]), float(result["ci_high"])
    return {
        "mean": float(result["effect"]),
        "interval": (low, high),
        "groups": len(groups),
        "seeds": len(seeds),
        "verdict": verdict((low, high)),
    }


def difference(first: Groups, second: Groups) -> Groups:
    """The contrast first − second on the groups both have."""
    return {
        g: [*first[g], *((-w, key) for w, key in second[g])] for g in sorted(first.keys() & second)
    }


def cells_of(runs: dict, head: str) -> set[tuple]:
    return {k[:-1] for k in runs if k[-1] == head}


def pair_groups(runs: dict, first: str, second: str) -> Groups:
    """value(first) − value(second) in each cell that ran both."""
    return {
        cell: [(1.0, (*cell, first)), (-1.0, (*cell, second))]
        for cell in cells_of(runs, first) & cells_of(runs, second)
    }


def paired_effect(runs: dict, first: str, second: str, metric: str) -> dict | None:
    """value(first) − value(second), paired by cell, seed and test prompt."""
    return contrast(runs, pair_groups(runs, first, second), metric)


def grace_groups(axis: str) -> Callable[[dict, str, str], Groups]:
    """Claim 2c (axis ``n``) or 2d (axis ``beta``): Bradley-Terry's loss minus the classifier's
    going from the largest to the smallest value of the axis, within each group of runs that
    share every other setting (the weights of embrm.findings.claims' part)."""
    position = {"n": 3, "beta": 2}[axis]  # the key field that varies along the axis

    def build(runs: dict, bt: str, clf: str) -> Groups:
        both = cells_of(runs, bt) & cells_of(runs, clf)
        by_group: dict[tuple, dict] = {}
        for cell in both:
            group = cell[:position] + cell[position + 1 :]
            value = cell[3] if axis == "n" else runs[(*cell, bt)]["beta"]
            if np.isfinite(value):
                by_group.setdefault(group, {})[value] = cell
        groups = {}
        for group, levels in by_group.items():
            if len(levels) < 2:
                continue
            high, low = levels[max(levels)], levels[min(levels)]
            groups[group] = [
                (1.0, (*high, bt)),
                (-1.0, (*low, bt)),
                (-1.0, (*high, clf)),
                (1.0, (*low, clf)),
            ]
        return groups

    return build


def claim_groups(runs: dict, bt: str, clf: str) -> Groups:
    return pair_groups(runs, clf, bt)


PARTS: dict[str, Callable[[dict, str, str], Groups]] = {
    "clf − bt": claim_groups,
    "2c": grace_groups("n"),
    "2d": grace_groups("beta"),
}
PART_WORDS = {
    "clf − bt": ("{clf} ahead", "bt-mlp ahead"),
    "2c": ("{clf} degrades less", "bt-mlp degrades less"),
    "2d": ("{clf} degrades less", "bt-mlp degrades less"),
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


def shown(effect: dict | None, words: tuple[str, str] | None = None) -> list[str]:
    """An effect as its two table cells: value with interval, verdict."""
    if effect is None:
        return ["not run", ""]
    label = effect["verdict"]
    if words:
        label = label.replace("embrm's value higher", words[0]).replace(
            "study's value higher", words[1]
        )
    return [f"{effect['mean']:+.3f} {interval(effect['interval'])}", label]


def components_of(heads: dict, head_type: str) -> list[str]:
    return sorted({n.split("+", 1)[1] for n in heads if n.startswith(f"{head_type}.") and "+" in n})


def head_table(runs: dict, heads: dict, metric: str) -> list[str]:
    """Per head and component: the effect of the component's embrm value, from both sides."""
    lines = [
        f"### {metric}: effect of each component's embrm value (paired, mean over cells and seeds)",
        "",
        "| head | component | from study: study+c − study | verdict | in embrm: embrm − embrm+c "
        "| verdict |",
        "|---|---|---|---|---|---|",
    ]
    present = {k[-1].split(".", 1)[0] for k in runs}
    for head_type in (h for h in HEADS if h in present):
        study, embrm = variant_name(head_type, "study"), variant_name(head_type, "embrm")
        total = paired_effect(runs, embrm, study, metric)
        if total:
            cells = " | ".join(shown(total))
            lines.append(f"| {head_type} | **all (embrm − study)** | {cells} | | |")
        for component in components_of(heads, head_type):
            cells = shown(
                paired_effect(runs, variant_name(head_type, "study", component), study, metric)
            ) + shown(
                paired_effect(runs, embrm, variant_name(head_type, "embrm", component), metric)
            )
            lines.append(f"| {head_type} | {component} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def part_tables(runs: dict, heads: dict, metric: str, clf_type: str) -> list[str]:
    """The claims' parts for ``clf_type`` against bt-mlp under each variant both heads have, and
    the effect of each shared component's embrm value on each part, from both sides."""
    shared = sorted(
        {n.split(".", 1)[1] for n in heads if n.startswith(f"{clf_type}.")}
        & {n.split(".", 1)[1] for n in heads if n.startswith(f"{BT}.")}
    )
    present = {k[-1] for k in runs}
    shared = [v for v in shared if f"{clf_type}.{v}" in present and f"{BT}.{v}" in present]
    if not shared:
        return []
    groups = {
        (part, v): build(runs, f"{BT}.{v}", f"{clf_type}.{v}")
        for part, build in PARTS.items()
        for v in shared
    }
    parts = [p for p in PARTS if any(groups[(p, v)] for v in shared)]
    lines = [
        f"### {metric}: the claims' parts, {clf_type} against bt-mlp, under each variant",
        "",
        "| variant | " + " | ".join(f"{p} | verdict" for p in parts) + " |",
        "|---|" + "---|---|" * len(parts),
    ]
    for v in shared:
        cells = []
        for p in parts:
            words = tuple(w.format(clf=clf_type) for w in PART_WORDS[p])
            cells += shown(contrast(runs, groups[(p, v)], metric), words)
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"### {metric}: effect of each component's embrm value on the claims' parts "
        f"({clf_type} against bt-mlp)",
        "",
        "| component | part | from study | verdict | in embrm | verdict |",
        "|---|---|---|---|---|---|",
    ]
    components = sorted({v.split("+", 1)[1] for v in shared if "+" in v})
    for component in ["all (embrm − study)", *components]:
        for p in parts:
            if component.startswith("all"):
                sides = [("embrm", "study")]
            else:
                sides = [(f"study+{component}", "study"), ("embrm", f"embrm+{component}")]
            cells = []
            for first, second in sides:
                both = first in shared and second in shared
                side = difference(groups[(p, first)], groups[(p, second)]) if both else {}
                cells += shown(contrast(runs, side, metric))
            cells += [""] * (4 - len(cells))
            lines.append(f"| {component} | {p} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def cell_name(design: str, annotator: str, n: int) -> str:
    return f"{design}/{annotator}/{n}"


def attribution(folders: list[Path], heads: dict, cells: list[str] | None = None) -> str:
    """The attribution tables, as Markdown; over the runs of ``cells`` only (each
    ``DESIGN/ANNOTATOR/N``, as cell_name writes it) when given, else over every cell."""
    runs = read_runs(folders)
    if not runs:
        raise SystemExit(
            f"{', '.join(map(str, folders))}: no metrics.json with per-prompt values under it"
        )
    if cells:
        ran = sorted({cell_name(*key[1:4]) for key in runs})
        unknown = sorted(set(cells) - set(ran))
        if unknown:
            raise SystemExit(
                f"--cell {', '.join(unknown)}: no run of that cell under "
                f"{', '.join(map(str, folders))}; its cells are {', '.join(ran)}"
            )
        runs = {key: run for key, run in runs.items() if cell_name(*key[1:4]) in cells}
    lines = []
    for metric in METRICS:
        lines += head_table(runs, heads, metric)
        for clf_type in CLASSIFIERS:
            lines += part_tables(runs, heads, metric, clf_type)
    return "\n".join(lines)
