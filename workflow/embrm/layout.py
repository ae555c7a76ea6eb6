"""The workflow's jobs, built from a plan: which jobs run, where their files lie, what they are
given, and every decision that crosses config keys.

``Layout(plan)`` is what both ``embrm plan`` and the Snakefile ask: the rules' input functions
and params read it, so a config that ``embrm plan`` accepts is one Snakemake accepts, with the
same message when it is refused (:class:`~embrm.errors.ConfigError` naming the key). Paths come
from :mod:`embrm.tree`; each job's arguments are the values of its stage's declared options
(:mod:`embrm.declare`), rendered on the rule's command line by :meth:`Layout.arguments`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import (
    stages,  # noqa: F401  (declares the stages whose arguments render writes)
    tree,
)
from .active import rounds  # noqa: F401  (declares the active stage)
from .active.rounds import Settings as ActiveSettings
from .active.rounds import schedule as active_schedule
from .cell_job import granularity
from .config import Plan, Run, looks
from .declare import render
from .designs import DESIGNS
from .errors import ConfigError
from .sources import text  # noqa: F401  (declares the text-world stages)
from .sources.rules import WorldRules
from .targets import Targets

# A world job's threads: what the world rule asks Snakemake for and what the job is told.
WORLD_THREADS = 1


def active_section(config: dict) -> dict:
    """The `active` section as the rounds read it (its budget targets belong to `budget`)."""
    return {k: v for k, v in config["active"].items() if k != "budget_targets"}


def active_settings(config: dict) -> ActiveSettings:
    return ActiveSettings.from_config(active_section(config))


def is_active(design: str) -> bool:
    """Active designs (docs/active.md) choose their pairs per run, in the `active` job."""
    return DESIGNS[design].active


class Layout:
    """Every job of a plan. Raises ConfigError for a config the workflow cannot run."""

    def __init__(self, plan: Plan):
        self.plan = plan
        config = plan.config
        self.tree = tree.Tree(config["experiment"])
        self.results = self.tree.results
        # A job's thread count is the config's, never Snakemake's (which lowers a rule's threads
        # to --cores): torch reduces in another order with more threads, so the same config
        # gives the same bits at any --cores only when the job is told the configured count.
        self.threads: int = config["training"]["threads"]
        self.world_threads: int = WORLD_THREADS
        self.device: str = config["training"]["device"]
        self.worlds = WorldRules(plan)
        self.active = active_settings(config)
        # The registered designs that choose their pairs per run (the active rule's wildcard).
        self.active_designs = [name for name, design in DESIGNS.items() if design.active]
        self.cells: dict[str, list[Run]] = {}
        for run in plan.runs:
            self.cells.setdefault(tree.cell(run), []).append(run)
        self.stack: bool = config["training"]["stack"]
        self.stacked_heads, self.unstacked_heads, self.notes = self._split_stacked()
        # training.scoring: cell: one job per cell scores every model of the cell.
        self.per_cell: bool = plan.scores_per_cell
        # execution.jobs (embrm.cell_job): one job per cell does all of its runs' work.
        self.cell_jobs: bool = (
            granularity(
                config["execution"]["jobs"],
                len(plan.runs),
                [design for design in plan.unique("design") if is_active(design)],
                sequential=looks(config) is not None,
            )
            == "cell"
        )
        # What an invocation asks for beyond the runs' jobs (rule all, figures, looks, tracking).
        self.targets = Targets(plan, self.tree, self.cells if self.cell_jobs else None)

    # decisions ---------------------------------------------------------------------------
    def _split_stacked(self) -> tuple[list[str], list[str], list[str]]:
        """training.stack: the heads the cell's stacked fit trains, those it cannot reproduce
        (one train job per run, with the reason in ``notes``)."""
        heads = self.plan.unique("head")
        if not self.stack:
            return [], heads, []
        if any(is_active(design) for design in self.plan.unique("design")):
            raise ConfigError(
                "config key 'training.stack': stacked training shares one cell's pairs between "
                "its runs, but active designs choose pairs per run; set training.stack: false "
                "or drop the active designs from the grid"
            )
        from .heads.stacked import stack_refusal

        stacked, alone, notes = [], [], []
        for head in heads:
            spec = self.plan.head_spec(head)
            refusal = stack_refusal(
                spec["type"], spec["params"], spec["members"], self.plan.head_key(head)
            )
            if refusal:
                notes.append(f"training.stack: one job per run for {head}: {refusal}")
            (alone if refusal else stacked).append(head)
        return stacked, alone, notes

    def is_stacked(self, run: Any) -> bool:
        return tree.fields(run)["head"] in self.stacked_heads

    # job lists ---------------------------------------------------------------------------
    def run_of(self, values: Any) -> Run:
        names = tree.fields(values)
        return Run(
            names["world"],
            names["design"],
            int(names["n"]),
            int(names["seed"]),
            names["annotator"],
            names["head"],
        )

    def cell_runs(self, values: Any) -> list[Run]:
        return self.cells[tree.cell(values)]

    def stacked_runs(self, values: Any) -> list[Run]:
        return [run for run in self.cell_runs(values) if self.is_stacked(run)]

    def jobs(self) -> dict[str, list[str]]:
        """The jobs the experiment's results need, by rule, each named by its key (a world, a
        cell, a run): what ``snakemake -n`` schedules on an empty results folder, the world
        folders, summary, figures and tracking aside."""
        runs = self.plan.runs
        cells = sorted(self.cells)
        if self.cell_jobs:  # a cell's job draws, labels, trains, scores and evaluates its runs
            return {"cell": cells}
        passive = sorted({tree.cell(r) for r in runs if not is_active(r.design)})
        jobs = {
            "pairs": passive,
            "annotate": sorted(
                {f"{tree.cell(r)}/{r.annotator}" for r in runs if not is_active(r.design)}
            ),
            "active": [tree.run(r) for r in runs if is_active(r.design)],
            "train": [tree.run(r) for r in runs if not self.is_stacked(r)],
            "train_cell": sorted({tree.cell(r) for r in runs if self.is_stacked(r)}),
            "unstack": [tree.run(r) for r in runs if self.is_stacked(r)],
            "score": cells if self.per_cell else [],
            "evaluate": [tree.run(r) for r in runs],
        }
        return {rule: names for rule, names in jobs.items() if names}

    # paths of a job's inputs ----------------------------------------------------------------------
    def world_inputs(self, values: Any) -> list[str]:
        """The world's files every job of a cell or run reads."""
        return self.tree.world_files(tree.fields(values)["world"])

    def run_pairs(self, run: Any) -> str:
        if is_active(tree.fields(run)["design"]):
            return self.tree.active("pairs.npz", run)
        return self.tree.pairs(run)

    def run_labels(self, run: Any) -> str:
        if is_active(tree.fields(run)["design"]):
            return self.tree.active("labels.npz", run)
        return self.tree.annotations(run)

    def run_annotation_stats(self, run: Any) -> str:
        if is_active(tree.fields(run)["design"]):
            return self.tree.active("annotation.json", run)
        return self.tree.annotation_stats(run)

    def train_outputs(self) -> dict[str, str]:
        """What a run's train job (or `unstack`) writes; its test predictions only when the run
        scores its own test set (training.scoring: run)."""
        outputs = {
            "model": self.tree.run_file("model"),
            "curves": self.tree.run_file("curves.csv"),
            "info": self.tree.run_file("train.json"),
        }
        if not self.per_cell:
            outputs["predictions"] = self.tree.run_file("predictions.npy")
        return outputs

    def predictions(self, run: Any = None) -> str:
        """Where evaluate reads a run's test predictions: the run's own file, or its file in
        the cell's score job's folder (training.scoring: cell)."""
        if self.per_cell:
            return self.tree.scored(run)
        return self.tree.run_file("predictions.npy", run)

    def predictions_input(self, run: Any = None) -> str:
        """The output evaluate waits for (the score job's folder is one output)."""
        return self.tree.scores(run) if self.per_cell else self.predictions(run)

    def metrics_files(self) -> list[str]:
        return self.tree.metrics_files(self.plan.runs)

    def active_rounds(self, values: Any) -> int:
        return len(active_schedule(int(tree.fields(values)["n"]), self.active))

    # records -----------------------------------------------------------------------------
    def run_record(self, run: Any) -> dict:
        """The settings that define a run, carried into metrics.json and MLflow params."""
        run = self.run_of(run)
        spec = self.plan.annotator_spec(run.annotator)
        world = self.plan.world_spec(run.world)
        return {
            **run.as_dict(),
            "run_dir": run.run_dir,
            "source": world["source"],
            "world_spec": world,
            "annotator_params": {k: v for k, v in spec.items() if k != "model"},
        }

    def cell_spec(self, values: Any) -> dict:
        """Everything embrm.cell_job.run_cell needs for one cell: what the fine jobs' arguments
        carry (run records, head and annotator specs, the design's largest quantity), and with
        tracking.mode: jobs the invocation's hand-off file, to log each run as it finishes."""
        tracking_state = self.tree.tracking("invocation.json")
        first = self.cell_runs(values)[0]
        runs = self.cell_runs(values)
        config = self.plan.config
        return {
            "results": self.results,
            "cell": tree.cell(values),
            "world": self.tree.world(first.world),
            "design": first.design,
            "n": first.n,
            "seed": first.seed,
            "heldout": config["annotation"]["heldout_pairs"],
            "of": self.plan.largest_quantity(first.world, first.design),
            "scale": config["annotation"]["scale"],
            "annotators": {run.annotator: self.plan.annotator_spec(run.annotator) for run in runs},
            "runs": [
                {
                    "annotator": run.annotator,
                    "head": run.head,
                    "head_spec": self.plan.head_spec(run.head),
                    "record": self.run_record(run),
                    "stacked": self.is_stacked(run),
                }
                for run in runs
            ],
            "threads": self.threads,
            "device": self.device,
            "evaluation": config["evaluation"],
            "scores_per_cell": self.per_cell,
            "tracking_state": tracking_state if self.plan.logs_runs_from_jobs else None,
        }

    # each job's arguments ----------------------------------------------------------------
    def values(self, stage: str, values: Any) -> dict[str, Any]:
        """The option values of ``stage``'s job for these grid names (a run, a cell)."""
        return getattr(self, "_" + stage.replace("-", "_").replace(" ", "_"))(values)

    def arguments(self, stage: str) -> Callable[[Any], str]:
        """A rule's params: its job's command-line arguments, from its wildcards."""
        return lambda wildcards: render(stage, self.values(stage, wildcards))

    def _world(self, values: Any) -> dict[str, Any]:
        world = tree.fields(values)["world"]
        return {
            "spec": self.plan.world_spec(world),
            "out_dir": self.tree.world(world),
            # The world rule asks for one thread (its sources build on one core).
            "threads": WORLD_THREADS,
            "device": self.device,
        }

    # A text world's jobs (text.smk): the world's spec, its tables, and for the jobs that run a
    # model the world's `threads` (each model's device is the spec's own setting).
    def _text(self, values: Any, models: bool, **paths: str) -> dict[str, Any]:
        more = {"threads": self.worlds.threads(values), "device": None} if models else {}
        return {"spec": self.worlds.spec(values), **paths, **more}

    def _text_prompts(self, values: Any) -> dict[str, Any]:
        world = tree.fields(values)["world"]
        return self._text(values, False, out=self.tree.text_file("prompts.parquet", world))

    def _text_generate(self, values: Any) -> dict[str, Any]:
        world = tree.fields(values)["world"]
        prompts, responses = (self.tree.text_file(f"{t}.parquet", world) for t in ("prompts", "responses"))  # fmt: skip
        return self._text(values, True, prompts_path=prompts, out=responses)

    def _text_score(self, values: Any) -> dict[str, Any]:
        world = tree.fields(values)["world"]
        responses, texts = (self.tree.text_file(f"{t}.parquet", world) for t in ("responses", "texts"))  # fmt: skip
        return self._text(values, True, responses_path=responses, out=texts)

    def _text_table(self, values: Any) -> dict[str, Any]:
        world = tree.fields(values)["world"]
        return self._text(values, False, out=self.tree.text_file("texts.parquet", world))

    def _text_embed(self, values: Any) -> dict[str, Any]:
        world, split = tree.fields(values)["world"], tree.fields(values)["split"]
        texts, out = self.tree.text_file("texts.parquet", world), self.tree.embeddings(split, world)
        return self._text(values, True, texts_path=texts, split=split, out=out)

    def _text_world(self, values: Any) -> dict[str, Any]:
        world = tree.fields(values)["world"]
        return self._text(
            values,
            False,
            texts_path=self.tree.text_file("texts.parquet", world),
            train_embeddings=self.tree.embeddings("train", world),
            test_embeddings=self.tree.embeddings("test", world),
            out_dir=self.tree.world(world),
        )

    def _pairs(self, values: Any) -> dict[str, Any]:
        names = tree.fields(values)
        return {
            "world_dir": self.tree.world(names["world"]),
            "design": names["design"],
            "n": int(names["n"]),
            "seed": int(names["seed"]),
            "heldout": self.plan.config["annotation"]["heldout_pairs"],
            "out": self.tree.pairs(values),
            # Every cell of a design draws its largest quantity and keeps the first n.
            "of": self.plan.largest_quantity(names["world"], names["design"]),
        }

    def _annotate(self, values: Any) -> dict[str, Any]:
        names = tree.fields(values)
        return {
            "world_dir": self.tree.world(names["world"]),
            "pairs_path": self.tree.pairs(values),
            "annotator_spec": self.plan.annotator_spec(names["annotator"]),
            "scale": self.plan.config["annotation"]["scale"],
            "seed": int(names["seed"]),
            "out": self.tree.annotations(values),
            "stats_out": self.tree.annotation_stats(values),
        }

    def _active(self, values: Any) -> dict[str, Any]:
        run = self.run_of(values)
        config = self.plan.config
        return {
            "world_dir": self.tree.world(run.world),
            "design": run.design,
            "n": run.n,
            "seed": run.seed,
            "annotator_spec": self.plan.annotator_spec(run.annotator),
            "scale_spec": config["annotation"]["scale"],
            "head_spec": self.plan.head_spec(run.head),
            "active": active_section(config),
            "evaluation": config["evaluation"],
            "heldout_pairs": config["annotation"]["heldout_pairs"],
            "state_dir": self.tree.active("rounds", run),
            "threads": self.threads,
            "device": self.device,
            "pairs_out": self.tree.active("pairs.npz", run),
            "labels_out": self.tree.active("labels.npz", run),
            "stats_out": self.tree.active("annotation.json", run),
        }

    def _train(self, values: Any) -> dict[str, Any]:
        run = self.run_of(values)
        return {
            "world_dir": self.tree.world(run.world),
            "pairs_path": self.run_pairs(run),
            "labels_path": self.run_labels(run),
            "head_spec": self.plan.head_spec(run.head),
            "seed": run.seed,
            "threads": self.threads,
            "device": self.device,
            "model_dir": self.tree.run_file("model", run),
            "predictions_out": None if self.per_cell else self.predictions(run),
            "curves_out": self.tree.run_file("curves.csv", run),
            "info_out": self.tree.run_file("train.json", run),
        }

    def _unstack(self, values: Any) -> dict[str, Any]:
        run = self.run_of(values)
        return {
            "cell_dir": self.tree.stacked(run),
            "name": f"{run.annotator}/{run.head}",
            "model_out": self.tree.run_file("model", run),
            "curves_out": self.tree.run_file("curves.csv", run),
            "info_out": self.tree.run_file("train.json", run),
            "predictions_out": None if self.per_cell else self.predictions(run),
        }

    def _train_cell(self, values: Any) -> dict[str, Any]:
        runs = self.stacked_runs(values)
        return {
            "world_dir": self.tree.world(tree.fields(values)["world"]),
            "pairs_path": self.tree.pairs(values),
            "runs": [
                {
                    "name": f"{run.annotator}/{run.head}",
                    "head": self.plan.head_spec(run.head),
                    "labels": self.tree.annotations(run),
                }
                for run in runs
            ],
            "seed": int(tree.fields(values)["seed"]),
            "threads": self.threads,
            "device": self.device,
            "score": not self.per_cell,
            "out_dir": self.tree.stacked(values),
        }

    def stacked_labels(self, values: Any) -> list[str]:
        return sorted({self.tree.annotations(run) for run in self.stacked_runs(values)})

    def _score(self, values: Any) -> dict[str, Any]:
        return {
            "world_dir": self.tree.world(tree.fields(values)["world"]),
            "models": {
                f"{run.annotator}/{run.head}": self.tree.run_file("model", run)
                for run in self.cell_runs(values)
            },
            "threads": self.threads,
            "device": self.device,
            "out_dir": self.tree.scores(values),
        }

    def score_models(self, values: Any) -> list[str]:
        """The model folders of every run of the cell (the score job's inputs)."""
        return [self.tree.run_file("model", run) for run in self.cell_runs(values)]

    def _evaluate(self, values: Any) -> dict[str, Any]:
        run = self.run_of(values)
        return {
            "world_dir": self.tree.world(run.world),
            "predictions_path": self.predictions(run),
            "pairs_path": self.run_pairs(run),
            "labels_path": self.run_labels(run),
            "annotation_stats_path": self.run_annotation_stats(run),
            "train_info_path": self.tree.run_file("train.json", run),
            "curves_path": self.tree.run_file("curves.csv", run),
            "run": self.run_record(run),
            "evaluation": self.plan.config["evaluation"],
            "out": self.tree.run_file("metrics.json", run),
            "scoring_path": self.tree.scoring_record(run) if self.per_cell else None,
            "scoring_name": f"{run.annotator}/{run.head}" if self.per_cell else None,
            "device": self.device,
        }
