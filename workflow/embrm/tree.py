"""The results tree: where every file of an experiment lies, spelled once.

Each path is a template over the grid's names (``{world}``, ``{design}``, ``{n}``, ``{seed}``,
``{annotator}``, ``{head}``). Called with no arguments a method returns the Snakemake pattern a
rule declares; called with values (a :class:`~embrm.config.Run`, a cell's fields, a job's
wildcards) it returns that one file. The rules, the resource estimates, tracking, the summary
and the scripts all ask this module, so moving a file is one edit here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .shared_results import RESULTS_ROOT

# A cell: one annotated pair set (world × design × quantity × seed), shared by its runs.
CELL = "{world}/{design}/n{n}/seed{seed}"
# A run: one head trained on one annotator's labels of a cell.
RUN = CELL + "/{annotator}/{head}"
# A world's splits and each split's arrays (embrm.world reads them by these names).
SPLITS = ("train", "test")
WORLD_ARRAYS = {
    split: {"embeddings": f"{split}_embeddings.npy", "rewards": f"{split}_rewards.npy"}
    for split in SPLITS
}
# A world folder's files, written by `world` (or `text_embed` and `text_world`).
WORLD_FILES = (
    *(name for split in SPLITS for name in WORLD_ARRAYS[split].values()),
    "world.json",
)
# A score set (training.scoring: cell): one predictions file per run, named after the run
# ("annotator/head"), and the record of the pass that wrote them.
SCORING_RECORD = "scoring.json"


def scored_name(run_name: str) -> str:
    """A run's predictions file inside its cell's score set."""
    return f"{run_name}.npy"


# The files a train job (or `unstack`) leaves in a run's folder; predictions.npy only when the
# run scores its own test set (training.scoring: run).
RUN_FILES = ("model", "curves.csv", "train.json", "predictions.npy", "metrics.json")
# The experiment's own files, beside its stages' folders: the config it ran with, the tables
# (summarize.smk, findings.smk with the recipe's attribution, active.smk's budget).
EXPERIMENT_FILES = (
    "config.used.yaml",
    "summary.csv",
    "summary.parquet",
    "aggregate.csv",
    "findings.csv",
    "findings.md",
    "attribution.md",
    "budget.csv",
)
# A text world's tables (text.smk), before its world folder is assembled.
TEXT_FILES = ("prompts.parquet", "responses.parquet", "texts.parquet")
# The tracking's state files (track.smk): the last sync, and the running invocation's hand-off.
TRACKING_FILES = ("synced.json", "invocation.json")
# Outputs that are folders (Snakemake's directory()).
FOLDERS = ("model", "rounds")
# An active design's run (the `active` job): the pairs it chose, their labels and statistics, and
# the rounds saved as they finish (a killed job resumes there).
ACTIVE_FILES = ("pairs.npz", "labels.npz", "annotation.json", "rounds")


# A cell's name read back into its grid names (a cell job is given its cell's name).
CELL_NAME = re.compile(r"(?P<world>[^/]+)/(?P<design>[^/]+)/n(?P<n>\d+)/seed(?P<seed>\d+)")


def fields(values: Any) -> dict[str, Any]:
    """The grid names of a Run, a mapping, or a Snakemake wildcards object."""
    if isinstance(values, Mapping):
        return dict(values)
    if hasattr(values, "as_dict"):
        return values.as_dict()
    if hasattr(values, "items"):  # snakemake.io.Wildcards
        return dict(values.items())
    raise TypeError(f"cannot read grid names from {values!r}")


def cell_fields(name: str) -> dict[str, Any]:
    """The grid names of the cell ``world/design/n…/seed…`` (the inverse of :func:`cell`)."""
    match = CELL_NAME.fullmatch(name)
    if match is None:
        raise ValueError(f"{name!r} is not a cell's name ({CELL})")
    return {**match.groupdict(), "n": int(match["n"]), "seed": int(match["seed"])}


def cell(values: Any = None) -> str:
    """``world/design/n…/seed…``: a cell's path under each stage's folder."""
    return CELL if values is None else CELL.format(**fields(values))


def run(values: Any = None) -> str:
    """``<cell>/<annotator>/<head>``: a run's path under each stage's folder."""
    return RUN if values is None else RUN.format(**fields(values))


def is_folder(path: str) -> bool:
    """Whether the output at ``path`` is a folder, not a file."""
    return path.rsplit("/", 1)[-1] in FOLDERS


def names_pattern(names: Iterable[str]) -> str:
    """A wildcard constraint matching exactly these names; ``(?!)`` matches nothing."""
    names = sorted(set(names))
    return "(?:" + "|".join(re.escape(name) for name in names) + ")" if names else "(?!)"


def bookkeeping(folder: str, stage: str, key: str | None, suffix: str) -> str:
    """A job's log or benchmark under the experiment's folder: ``<folder>/<stage>/<key><suffix>``,
    or ``<folder>/<stage><suffix>`` for a job of the whole experiment (no key)."""
    return f"{folder}/{stage}{suffix}" if key is None else f"{folder}/{stage}/{key}{suffix}"


def benchmark_paths(values: Any) -> dict[str, str]:
    """A run's benchmark files under the experiment's folder, by stage (what tracking reports)."""
    keys = {
        "world": fields(values)["world"],
        "pairs": cell(values),
        "annotate": f"{cell(values)}/{fields(values)['annotator']}",
        "train": run(values),
        "score": cell(values),
    }
    return {stage: bookkeeping("benchmarks", stage, key, ".tsv") for stage, key in keys.items()}


class Tree:
    """The paths of one experiment's folder, ``results/<experiment>``."""

    def __init__(self, experiment: str, root: str = RESULTS_ROOT):
        self.root = root
        self.results = f"{root}/{experiment}"

    @classmethod
    def at(cls, results: str | Path) -> Tree:
        """The tree of the experiment folder ``results`` (what a cell job is given)."""
        results = str(results)
        tree = cls.__new__(cls)
        tree.root, tree.results = str(Path(results).parent), results
        return tree

    def under(self, *parts: str) -> str:
        return "/".join([self.results, *parts])

    # the experiment's own files --------------------------------------------------------
    def file(self, name: str) -> str:
        """One of the experiment's files (:data:`EXPERIMENT_FILES`)."""
        if name not in EXPERIMENT_FILES:
            raise ValueError(
                f"{name!r} is not an experiment's file ({', '.join(EXPERIMENT_FILES)})"
            )
        return self.under(name)

    def figure(self, name: str = "{figure}", ext: str = "{ext}") -> str:
        return self.under("figures", f"{name}.{ext}")

    def page(self, name: str) -> str:
        """A page of the report (``report/<name>``: HTML, or the reStructuredText it includes)."""
        return self.under("report", name)

    def tracking(self, name: str) -> str:
        if name not in TRACKING_FILES:
            raise ValueError(f"{name!r} is not a tracking file ({', '.join(TRACKING_FILES)})")
        return self.under("tracking", name)

    # worlds -----------------------------------------------------------------------------
    def world(self, world: str = "{world}") -> str:
        return self.under("worlds", world)

    def world_files(self, world: str = "{world}") -> list[str]:
        return [self.world_file(name, world) for name in WORLD_FILES]

    def world_file(self, name: str, world: str = "{world}") -> str:
        if name not in WORLD_FILES:
            raise ValueError(f"{name!r} is not a world's file ({', '.join(WORLD_FILES)})")
        return f"{self.world(world)}/{name}"

    def text(self, world: str = "{world}") -> str:
        return self.under("text", world)

    def text_file(self, name: str, world: str = "{world}") -> str:
        """A text world's table (:data:`TEXT_FILES`)."""
        if name not in TEXT_FILES:
            raise ValueError(f"{name!r} is not a text world's table ({', '.join(TEXT_FILES)})")
        return f"{self.text(world)}/{name}"

    def embeddings(self, split: str = "{split}", world: str = "{world}") -> str:
        """A world's embeddings of one split (a text world's `text embed` job writes each)."""
        return f"{self.world(world)}/{split}_embeddings.npy"

    # cells -------------------------------------------------------------------------------
    def pairs(self, values: Any = None) -> str:
        return self.under("pairs", f"{cell(values)}.npz")

    def annotations(self, values: Any = None, annotator: str | None = None) -> str:
        """An annotator's labels of a cell (``.npz``); :meth:`annotation_stats` beside them."""
        name = annotator or (fields(values)["annotator"] if values is not None else "{annotator}")
        return self.under("annotations", cell(values), f"{name}.npz")

    def annotation_stats(self, values: Any = None, annotator: str | None = None) -> str:
        return self.annotations(values, annotator).removesuffix(".npz") + ".json"

    def scores(self, values: Any = None) -> str:
        """training.scoring: cell: the cell's score job's folder."""
        return self.under("scores", cell(values))

    def scored(self, values: Any = None) -> str:
        """One run's predictions inside its cell's scores folder."""
        names = fields(values) if values is not None else {"annotator": "{annotator}",
                                                           "head": "{head}"}  # fmt: skip
        return f"{self.scores(values)}/{scored_name(names['annotator'] + '/' + names['head'])}"

    def scoring_record(self, values: Any = None) -> str:
        return f"{self.scores(values)}/{SCORING_RECORD}"

    def stacked(self, values: Any = None) -> str:
        """training.stack: the cell's train_cell job's folder."""
        return self.under("stacked", cell(values))

    # runs --------------------------------------------------------------------------------
    def run(self, values: Any = None) -> str:
        return self.under("runs", run(values))

    def run_file(self, name: str, values: Any = None) -> str:
        if name not in RUN_FILES:
            raise ValueError(f"{name!r} is not a run file ({', '.join(RUN_FILES)})")
        return f"{self.run(values)}/{name}"

    def active(self, name: str, values: Any = None) -> str:
        """A file of an active design's run: its pairs, labels, statistics, saved rounds."""
        if name not in ACTIVE_FILES:
            raise ValueError(f"{name!r} is not an active run's file ({', '.join(ACTIVE_FILES)})")
        return self.under("active", run(values), name)

    def cell_record(self, key: str = CELL) -> str:
        """A cell job's record (execution.jobs: cell; embrm.cell_job), written after its runs."""
        return self.under("cells", key, "cell.json")

    def cell_steps(self, key: str = CELL) -> str:
        """A cell job's step records (embrm.cell_job.Steps), beside its record."""
        return self.under("cells", key, "steps")

    def look_files(self, k: Any = "{k}") -> dict[str, str]:
        """Sequential looks (findings.looks): look ``k``'s findings and decisions."""
        folder = self.under("looks", f"look-{k}")
        return {
            "csv": f"{folder}/findings.csv",
            "md": f"{folder}/findings.md",
            "rst": f"{folder}/findings.rst",
            "html": f"{folder}/findings.html",
            "decisions": f"{folder}/decisions.json",
        }

    # bookkeeping -------------------------------------------------------------------------
    def log_dir(self, stage: str) -> str:
        """A folder of logs a job writes itself (the tracking steps')."""
        return self.under("logs", stage)

    def log(self, stage: str, key: str | None = None) -> str:
        return self.under(bookkeeping("logs", stage, key, ".log"))

    def benchmark(self, stage: str, key: str | None = None) -> str:
        return self.under(bookkeeping("benchmarks", stage, key, ".tsv"))

    def metrics_files(self, runs: Iterable[Any]) -> list[str]:
        return [self.run_file("metrics.json", r) for r in runs]
