"""Which training components make the two protocols disagree: the ablation's design and analysis.

    python benchmarks/protocol_ablation.py --config > configs/protocol-ablation.yaml
    python benchmarks/protocol_ablation.py --config --slice central > central.yaml  # one slice
    python benchmarks/protocol_ablation.py results/protocol-ablation        # attribution tables
    python benchmarks/protocol_ablation.py results/central results/central-b10   # runs pair across

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

and, for each classifier against bt-mlp, the claims' parts (clf − bt in a cell; 2c and 2d,
Bradley-Terry's loss minus the classifier's going to fewer pairs or a smaller β) under each
variant both heads have, and each shared component's effect on them from both sides. Each effect
is a mean over the cells and seeds, with the findings' 95% crossed random-effects interval over
seeds and test prompts (embrm.findings, docs/analysis-plan.md). An effect is called only when the
interval excludes 0; otherwise it is ``inconclusive`` (inside ±0.01 both ways: ``negligible``).
The analysis is embrm.findings.attribution, which the workflow's attribution rule runs too.
"""

from __future__ import annotations

import argparse
import copy
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "workflow"))

import yaml  # noqa: E402
from embrm.findings import attribution as analysis  # noqa: E402
from embrm.findings.attribution import HEADS, variant_name  # noqa: E402
from embrm.heads import HEAD_TYPES  # noqa: E402
from embrm.heads.recipe import OTHER_PROTOCOL, PROTOCOLS, preset  # noqa: E402

SEEDS = [0, 1, 2, 3, 4]


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
            own, other = preset(base, families), preset(OTHER_PROTOCOL[base], families)
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


@dataclass(frozen=True)
class Slice:
    """A part of the experiment that runs in minutes to an hour on a laptop, analysed by the same
    attribution: one cell (``design`` pairs, ``annotator``, ``quantity`` pairs) with the heads of
    ``head_types``, no MLflow tracking. ``components`` keeps each head type's two presets and
    only the variants that switch one of the named components (``()``: the presets alone; None:
    every variant), and ``switched_types`` only the variants of these head types (None: of
    every one). ``world`` names a world of WORLDS instead of config.yaml's: a slice beyond the
    design."""

    annotator: str
    quantity: int
    head_types: tuple[str, ...]
    design: str = "same-random"
    world: str | None = None
    components: tuple[str, ...] | None = None
    switched_types: tuple[str, ...] | None = None
    seeds: tuple[int, ...] = tuple(SEEDS)


def shared_quality_zero() -> dict:
    """config.yaml's world with shared_quality 0: the cross-prompt map's (configs/
    cross-prompt-map.yaml) point at the default's τ and nonlinearity where prompt means carry no
    response quality, the end of the one map axis on which the default sits in the middle and
    that decides what a cross-prompt label says about ordering one prompt's responses."""
    world = yaml.safe_load((REPO / "config.yaml").read_text())["worlds"]["synthetic"]
    return {"worlds": {"synthetic-shared0": {**world, "shared_quality": 0}}}


def study_scale() -> dict:
    """The study-scale world of configs/paper-scale.yaml (D = 2048, float16, 40,000 × 10 train
    and 2,000 × 500 test responses, as in the released scripts) with its annotation, training
    and evaluation settings."""
    paper = yaml.safe_load((REPO / "configs" / "paper-scale.yaml").read_text())
    blocks = {key: copy.deepcopy(paper[key]) for key in ("annotation", "training", "evaluation")}
    return {"worlds": {"paper": paper["worlds"]["paper"]}, **blocks}


# Worlds beyond config.yaml's, each fixed by a rule stated in its function, not by an outcome.
WORLDS = {"shared0": shared_quality_zero, "paper": study_scale}


def slice_config(chosen: Slice) -> dict:
    def kept(head: str) -> bool:
        head_type, switched = head.partition(".")[0], head.partition("+")[2]
        if not switched:
            return True
        if chosen.switched_types is not None and head_type not in chosen.switched_types:
            return False
        return chosen.components is None or switched in chosen.components

    out = config()
    out["tracking"]["enabled"] = False
    out["annotators"] = {chosen.annotator: out["annotators"][chosen.annotator]}
    out["heads"] = {
        k: v for k, v in out["heads"].items() if k.split(".", 1)[0] in chosen.head_types and kept(k)
    }
    out["grid"].update(
        annotators=[chosen.annotator],
        designs=[chosen.design],
        quantities=[chosen.quantity],
        heads=list(out["heads"]),
        seeds=list(chosen.seeds),
    )
    if chosen.world:
        out.update(WORLDS[chosen.world]())
        out["grid"]["worlds"] = list(out["worlds"])
    del out["extra_grids"]
    return out


MLPS = ("bt-mlp", "clf-mlp")
# The slices (docs/protocol-ablation.md), each chosen from the two protocols' earlier comparison
# (docs/heads.md) or the design's own cells, never from an ablation outcome:
SLICES = {
    # bt-mlp at β = 10, 2,000 pairs: where bt-mlp moved most between the protocols; 90 runs.
    "pilot": Slice("bt-10", 2000, ("bt-mlp",)),
    # bt-mlp and clf-mlp at β = 1, 2,000 pairs: a cell of claim 1a (above 10% label error), where
    # the protocols disagree on the central claim (classifier ahead under the study's); 170 runs.
    "central": Slice("bt-1", 2000, MLPS),
    # The same on cross-prompt random pairs, the design's cross-prompt cell; 170 runs.
    "central-cross": Slice("bt-1", 2000, MLPS, "cross-random"),
    # The design's other same-random cells with both MLPs: with "central" they make the
    # β (1, 10) × n (500, 2,000) square whose sides the claims' parts 2c and 2d compare; 170 each.
    "central-b10": Slice("bt-10", 2000, MLPS),
    "central-n500": Slice("bt-1", 500, MLPS),
    "central-b10-n500": Slice("bt-10", 500, MLPS),
    # The square's cells with the MLPs' presets only (20 runs each): with "central-b10", 2c and
    # 2d at both β and both numbers of pairs under each procedure.
    "presets-b10-n500": Slice("bt-10", 500, MLPS, components=()),
    "presets-central": Slice("bt-1", 2000, MLPS, components=()),
    "presets-n500": Slice("bt-1", 500, MLPS, components=()),
    # clf-lgb's components at the central cell, beside bt-mlp's heads for its claim; 150 runs.
    "central-lgb": Slice("bt-1", 2000, ("bt-mlp", "clf-lgb")),
    # The same at β = 10: with "central-lgb", claim 2d's clf-lgb part per component; 150 runs.
    "central-lgb-b10": Slice("bt-10", 2000, ("bt-mlp", "clf-lgb")),
    # clf-lgb's components in the design's other cells, clf-lgb only (bt-mlp's runs there are
    # those of "central-n500", "central-b10-n500" and "central-cross"); 60 runs each.
    "lgb-n500": Slice("bt-1", 500, ("clf-lgb",)),
    "lgb-b10-n500": Slice("bt-10", 500, ("clf-lgb",)),
    "lgb-cross": Slice("bt-1", 2000, ("clf-lgb",), "cross-random"),
    # "central-cross" in another world of the cross-prompt map (WORLDS); 170 runs.
    "cross-shared0": Slice("bt-1", 2000, MLPS, "cross-random", world="shared0"),
    # The study's scale: one cell per head, the presets only, 10,000 pairs, three seeds; 18 runs.
    "study-scale": Slice("bt-1", 10000, HEADS, world="paper", components=(), seeds=(0, 1, 2)),
    # The same cell with the components that make the leaked BT validation switched from both
    # sides: the validation split for both MLPs and BT's examples (each pair once or both
    # orders) for bt-mlp, the two the default world's slices name; 6 heads more, 18 runs. Every
    # head's presets stay, so the presets' 18 runs are "study-scale"'s, in the same results
    # folder. clf-lgb's split is left out for its cost: the released clf-lgb's 1,000 rounds on
    # 2,048 features took 4-15 CPU minutes a run here (and 20 beside other work).
    "study-scale-split": Slice(
        "bt-1",
        10000,
        HEADS,
        world="paper",
        components=("split", "bt_examples"),
        switched_types=MLPS,
        seeds=(0, 1, 2),
    ),
    # clf-lgb's split at that scale, left out of the slice above for its cost and declared in
    # its own when there was time for it, before any of its runs: with "study-scale-split" in
    # the same results folder, the split switched for every head; 6 runs more.
    "study-scale-lgb-split": Slice(
        "bt-1",
        10000,
        HEADS,
        world="paper",
        components=("split",),
        switched_types=("clf-lgb",),
        seeds=(0, 1, 2),
    ),
}


def presets_config(explicit: bool) -> dict:
    """A check that a preset is nothing but its components: one cell (same-random, β = 1, 500
    pairs, seed 0) of config.yaml's world with each head type under each protocol P, either as
    ``protocol: P`` or as the other protocol with every component set to P's value. Both configs
    name the experiment ``presets``; run each in its own folder and compare the two results
    folders with benchmarks/compare_results.py (docs/protocol-ablation.md)."""
    out = slice_config(Slice("bt-1", 500, HEADS, seeds=(0,)))
    heads = {}
    for head_type in HEADS:
        for base in PROTOCOLS:
            params = {"protocol": base}
            if explicit:
                params = {
                    "protocol": OTHER_PROTOCOL[base],
                    **preset(base, HEAD_TYPES[head_type].RECIPE),
                }
            heads[variant_name(head_type, base)] = {"type": head_type, "params": params}
    out["heads"] = heads
    out["grid"]["heads"] = list(heads)
    return {"experiment": "presets", **out}


def pilot_config() -> dict:
    return slice_config(SLICES["pilot"])


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


def attribution(folders: Path | list[Path], cells: list[str] | None = None) -> str:
    """The attribution tables (embrm.findings.attribution), as Markdown, for the runs of the
    design's heads under ``folders`` (only those of ``cells``, each DESIGN/ANNOTATOR/N, when
    given); runs pair across folders."""
    folders = [folders] if isinstance(folders, Path) else list(folders)
    files = [path for folder in folders for path in folder.rglob("metrics.json")]
    try:
        return analysis.markdown(files, ablation_heads(), cells)
    except analysis.NoRuns as error:
        raise SystemExit(f"{', '.join(map(str, folders))}: {error} under it") from None
    except ValueError as error:
        raise SystemExit(f"--cell {error}") from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "results", nargs="*", type=Path, help="the ablation's results folders (runs pair across)"
    )
    parser.add_argument("--config", action="store_true", help="print the experiment's config")
    parser.add_argument(
        "--slice", choices=sorted(SLICES), help="with --config: one measured slice of the design"
    )
    parser.add_argument("--pilot", action="store_true", help="with --config: --slice pilot")
    parser.add_argument(
        "--cell",
        action="append",
        metavar="DESIGN/ANNOTATOR/N",
        help="attribute over this cell's runs only (repeat for several; default: every cell), "
        "for example same-random/bt-beta1/2000",
    )
    parser.add_argument(
        "--presets",
        choices=("preset", "explicit"),
        help="with --config: the presets check, heads under a preset or its explicit components",
    )
    args = parser.parse_args()
    chosen = "pilot" if args.pilot else args.slice
    if args.config and args.presets:
        made = presets_config(args.presets == "explicit")
        print(yaml.safe_dump(made, sort_keys=False, width=100), end="")
        return
    if args.config:
        made = slice_config(SLICES[chosen]) if chosen else config()
        header = (
            HEADER.replace("# Which", f"# The {chosen} slice (one cell) of: which", 1)
            if chosen
            else HEADER
        )
        print(header + yaml.safe_dump(made, sort_keys=False, width=100), end="")
        return
    if not args.results:
        parser.error("give the results folder, or --config")
    print(attribution(args.results, args.cell))


if __name__ == "__main__":
    main()
