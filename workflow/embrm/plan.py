"""``embrm plan FILE``: what ``snakemake --configfile FILE`` will run, checked before any job.

Prints the config completed with the schema's defaults (exactly what the workflow uses), a
compact run table (one line per world × design × annotator, with the quantities, heads and
seeds crossed in it) and the run count, which equals the number of train jobs Snakemake plans.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import yaml

from .config import Plan, load
from .errors import EmbrmError
from .layout import Layout
from .preflight import check_data, check_device, check_inputs


def run_table(plan: Plan) -> list[str]:
    groups: dict[tuple, dict[str, set]] = defaultdict(lambda: defaultdict(set))
    counts: dict[tuple, int] = defaultdict(int)
    for run in plan.runs:
        key = (run.world, run.design, run.annotator)
        for axis in ("n", "head", "seed"):
            groups[key][axis].add(getattr(run, axis))
        counts[key] += 1
    header = ("world", "design", "annotator", "pairs", "heads", "seeds", "runs")
    rows = [
        (
            *key,
            ",".join(map(str, sorted(axes["n"]))),
            ",".join(sorted(axes["head"])),
            ",".join(map(str, sorted(axes["seed"]))),
            # A union of grid blocks need not cross every value: '*' marks such a line.
            str(counts[key])
            + ("*" if counts[key] < len(axes["n"]) * len(axes["head"]) * len(axes["seed"]) else ""),
        )
        for key, axes in sorted(groups.items())
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]


def describe(config_path: str | Path, *, quiet: bool = False, name_only: bool = False) -> str:
    """Check ``config_path`` as the workflow would and describe its plan; raises on bad input."""
    config = load(config_path)
    if name_only:  # for make's report/sync targets: no checks against this machine
        return config["experiment"]
    try:
        plan = Plan(config, source=config_path)
        check_inputs(plan)
        # The workflow's own decisions (stacking, scoring, active settings, worlds' sources):
        # the Snakefile builds the same layout and refuses with the same message.
        layout = Layout(plan)
        check_data(plan)
        check_device(plan.config)
    except EmbrmError as error:  # as the workflow says it: the file first
        raise type(error)(f"{config_path}: {error}") from None
    name = plan.config["experiment"]
    summary = f"{config_path}: experiment '{name}' → results/{name}/; {len(plan.runs)} runs"
    if quiet:
        return summary
    ordered = {"experiment": name, **{k: v for k, v in plan.config.items() if k != "experiment"}}
    completed = yaml.safe_dump(ordered, sort_keys=False, default_flow_style=None, width=100)
    return "\n".join(
        [
            f"# {config_path} completed with the schema's defaults",
            completed.rstrip(),
            "",
            "# runs: each line crosses its pairs × heads × seeds (* only some of them)",
            *run_table(plan),
            *(["", *layout.notes] if layout.notes else []),
            "",
            "# jobs per stage: " + ", ".join(f"{k} {len(v)}" for k, v in layout.jobs().items()),
            summary,
        ]
    )
