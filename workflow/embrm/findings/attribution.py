"""The training recipe's attribution: which component moves which head and which claim.

An experiment attributes when its heads include a head type under both protocols' presets
(``protocol: study`` and ``protocol: embrm``, nothing else set) and, optionally, either preset
with one training component switched to the other protocol's value (embrm.heads.recipe): the
design of configs/protocol-ablation.yaml (docs/protocol-ablation.md). :func:`recipe_variants`
reads that from the heads' parameters, whatever the heads are called; the workflow's
``attribution`` rule then writes attribution.md and the report's page, and
``python benchmarks/protocol_ablation.py RESULTS [RESULTS ...]`` prints the same tables for runs
of several results folders.

Every number is a linear contrast of run values within a seed: a weight per run, summed per
group of runs that share the world, the seed and every setting but the ones under comparison,
averaged over a seed's groups. Its 95% interval is the findings' crossed random-effects interval
over seeds and test prompts (embrm.findings, docs/analysis-plan.md). Runs pair across results
folders when they share (world, design, annotator, n, seed): a world, its pairs and its labels are
a function of the config and the seed, so two experiments with the same world agree on them.

Per head type and component, the effect of switching that component from the study's value to
embrm's, from both sides: *from study* = value(study+c) − value(study), *in embrm* = value(embrm)
− value(embrm+c); and the whole gap value(embrm) − value(study). For each classifier against
bt-mlp, the claims' parts (embrm.findings.claims defines them for the study's heads) under every
variant both heads have, and each shared component's effect on them from both sides:

- ``clf − bt``: the classifier's value minus Bradley-Terry's in each cell (claim 1's contrast);
- ``2c``: Bradley-Terry's loss minus the classifier's going from the largest to the smallest
  number of pairs, at each annotator (positive: the classifier degrades more gracefully);
- ``2d``: the same going from the largest to the smallest β (noisier labels), at each number of
  pairs; annotators are ordered by their β, and runs of an annotator without one are left out.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np

from ..heads import HEAD_TYPES
from ..heads.recipe import OTHER_PROTOCOL, PROTOCOLS, preset

HEADS = ("bt-mlp", "clf-mlp", "clf-lgb")
BT = "bt-mlp"
CLASSIFIERS = ("clf-mlp", "clf-lgb")
METRICS = ("bon_gain_normalized", "spearman")
NEGLIGIBLE = 0.01  # an effect whose interval lies inside ±this is called negligible

Groups = dict[tuple, list[tuple[float, tuple]]]  # group (seed last) → [(weight, run key), ...]


def variant_name(head_type: str, base: str, component: str | None = None) -> str:
    return f"{head_type}.{base}" + (f"+{component}" if component else "")


def recipe_variant(head: Mapping) -> tuple[str, dict] | None:
    """The variant a configured head (``{type, params, members}``) is, named as variant_name
    does, and its other settings (every parameter that is not the protocol or a component, and
    ``members``): a preset (``protocol``, unset for embrm's, with no component set or only to
    that protocol's own values) or a preset with exactly one component set to the other
    protocol's value. None for any other head (a value neither protocol uses, two components
    switched), whose difference from a preset is not one component's."""
    head_type = head.get("type")
    if head_type not in HEADS:
        return None
    params = dict(head.get("params") or {})
    base = params.pop("protocol", PROTOCOLS[0])
    families = HEAD_TYPES[head_type].RECIPE
    own, other = preset(base, families), preset(OTHER_PROTOCOL[base], families)
    switched = []
    settings = {"members": head.get("members", 1)}
    for key, value in params.items():
        if key not in own:
            settings[key] = value
        elif value != own[key]:
            if value != other[key]:
                return None
            switched.append(key)
    if len(switched) > 1:
        return None
    return variant_name(head_type, base, switched[0] if switched else None), settings


def recipe_variants(heads: Mapping[str, Mapping]) -> dict[str, str]:
    """Configured head name → its variant (recipe_variant), for the heads that are one. A head
    type's first variant (in the config's order) fixes its other settings: a head whose other
    settings differ, or a second head of the same variant, is left out, so every comparison
    differs in the recipe alone."""
    named: dict[str, str] = {}
    settings_of: dict[str, dict] = {}
    for name, head in heads.items():
        found = recipe_variant(head)
        if found is None:
            continue
        variant, settings = found
        if (
            settings_of.setdefault(head["type"], settings) == settings
            and variant not in named.values()
        ):
            named[name] = variant
    return named


def attributes(heads: Mapping[str, Mapping]) -> bool:
    """Whether these heads make an attribution: some head type under both presets."""
    variants = set(recipe_variants(heads).values())
    return any({variant_name(t, p) for p in PROTOCOLS} <= variants for t in HEADS)


def read_runs(metric_files: Iterable[Path | str], variants: Mapping[str, str]) -> dict[tuple, dict]:
    """(world, design, annotator, n, seed, variant) → per-prompt arrays and β of each finished
    run of a head that ``variants`` names (configured head name → variant)."""
    from ..summary import PRIMARY_AGGREGATION

    runs = {}
    for path in sorted(map(Path, metric_files)):
        record = json.loads(path.read_text())
        run, stored = record["run"], record.get("per_prompt")
        if not stored or run["head"] not in variants:
            continue
        values = stored["aggregations"][PRIMARY_AGGREGATION]
        key = (run["world"], run["design"], run["annotator"], int(run["n"]), int(run["seed"]))
        runs[(*key, variants[run["head"]])] = {
            "bon_gain": np.asarray(values["bon_gain"], dtype=float),
            "oracle": np.asarray(stored["oracle_bon_gain"], dtype=float),
            "spearman": np.asarray(values["spearman"], dtype=float),
            "beta": float((run.get("annotator_params") or {}).get("beta", np.nan)),
        }
    return runs


def run_values(run: dict, metric: str) -> np.ndarray:
    """(P,) per-test-prompt values whose mean is the run's value (embrm.findings' linearized
    ratio for the normalized gain; the prompt's ρ for Spearman, NaN where undefined)."""
    from .resampling import prompt_values

    if metric == "spearman":
        return run["spearman"]
    return prompt_values(run["bon_gain"][None], run["oracle"][None], metric)[0]


def contrast(runs: dict, groups: Groups, metric: str) -> dict | None:
    """Σ weight · value per group, averaged over each seed's groups; None without a group.

    Y[seed, prompt] is that average on each test prompt; a prompt whose Spearman contrast is
    undefined in every group of a seed takes the seed's mean over its other prompts, which leaves
    the seed's mean unchanged."""
    from .statistics import crossed_interval

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
    if not all(np.isfinite(pair)):
        return "[no interval]"  # one seed: the crossed interval needs two
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


def tables(runs: dict, variants: Iterable[str], cells: list[str] | None = None) -> str:
    """The attribution tables, as Markdown, over the runs of ``cells`` only (each
    ``DESIGN/ANNOTATOR/N``, as cell_name writes it) when given, else over every cell.
    ``variants``: every variant the design has (a run it lacks shows as not run)."""
    if cells:
        ran = sorted({cell_name(*key[1:4]) for key in runs})
        unknown = sorted(set(cells) - set(ran))
        if unknown:
            raise ValueError(
                f"{', '.join(unknown)}: no run of that cell; the runs' cells are {', '.join(ran)}"
            )
        runs = {key: run for key, run in runs.items() if cell_name(*key[1:4]) in cells}
    heads = dict.fromkeys(variants)
    lines = []
    for metric in METRICS:
        lines += head_table(runs, heads, metric)
        for clf_type in CLASSIFIERS:
            lines += part_tables(runs, heads, metric, clf_type)
    return "\n".join(lines)


class NoRuns(ValueError):
    """No finished run of a recipe variant among the metrics files."""


def markdown(
    metric_files: Iterable[Path | str], heads: Mapping[str, Mapping], cells: list[str] | None = None
) -> str:
    """The attribution of the runs in ``metric_files`` whose heads (configured name → ``{type,
    params, members}``) are recipe variants, as Markdown: which head is which variant, then the
    tables (over ``cells`` only when given). NoRuns when none of them finished with per-prompt
    values; ValueError for a cell without runs."""
    variants = recipe_variants(heads)
    runs = read_runs(metric_files, variants)
    if not runs:
        raise NoRuns("no metrics.json of a recipe variant with per-prompt values")
    named = ", ".join(f"{name} = {v}" for name, v in variants.items() if name != v)
    return "\n".join(
        [
            *([f"Heads read as variants: {named}.", ""] if named else []),
            tables(runs, variants.values(), cells),
        ]
    )


TITLE = "Attribution of the training recipe"
INTRO = (
    "Which training components move which head and which of the study's claims: each "
    "component's paired effect of switching from the study's value to embrm's, measured from "
    "both sides (from study: study+c − study; in embrm: embrm − embrm+c), with the findings' 95% "
    "crossed interval over seeds and test prompts, uncorrected across the tables "
    "(docs/protocol-ablation.md)."
)


def write(
    metric_files: Iterable[Path | str], heads: Mapping[str, Mapping], md_path, html_path
) -> str:
    """attribution.md and its report page for one experiment's runs; returns the tables'
    Markdown."""
    from ..io import atomic_path
    from ..pages import html_page, markdown_tables_html

    try:
        body = markdown(metric_files, heads)
    except NoRuns:
        body = "No run of a recipe variant finished."
    with atomic_path(md_path) as tmp:
        Path(tmp).write_text(f"# {TITLE}\n\n{INTRO}\n\n{body}\n")
    with atomic_path(html_path) as tmp:
        Path(tmp).write_text(html_page(TITLE, INTRO, markdown_tables_html(body)))
    return body
