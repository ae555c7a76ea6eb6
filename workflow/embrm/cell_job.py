"""One job per cell (``execution.jobs: cell``): a cell's whole work in one process.

A cell is one world × design × quantity × seed. Its job draws the pairs, labels them with every
annotator, then trains, scores and evaluates every run (annotator × head), calling the same stage
functions (:mod:`embrm.stages`) the fine-grained jobs call, with the same arguments, and writing
the same files at the same paths. Python start-up, the imports and the world's memory maps are
paid once per cell instead of once per job, and Snakemake plans one job per cell instead of about
2.4 per run (docs/paper-scale.md#planning-the-whole-study).

The job resumes inside itself. Every step (the pairs, one annotator's labels, one run's training,
the cell's scoring, one run's evaluation) leaves a record under ``cells/<cell>/steps/`` once its
outputs are written (each atomically). The record holds a key: a hash of everything the step's
outputs depend on, including the keys of the steps it reads from. A restarted job skips a step
whose record holds the same key and whose outputs all exist, so a killed cell job resumes at its
first unfinished step, and a changed setting redoes exactly the steps it reaches.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from . import stages, tree
from .errors import ConfigError
from .io import read_json, write_json
from .tree import Tree

log = logging.getLogger("embrm")

# execution.jobs: auto chooses cell jobs above this many runs. Fine jobs cost Snakemake about
# 3 ms each to plan and about 2.4 jobs per run (pairs, annotate, train, evaluate, score), and on a
# cluster each is one submission that pays Python's and torch's start-up: at 2,000 runs that is
# about 5,000 jobs and 15 s of planning, past which planning and submission outgrow what they buy.
# Below it fine jobs are kept, because they run a cell's runs side by side on a machine's cores,
# show each run as a job of its own and rerun only what a change touches.
AUTO_CELL_ABOVE = 2000
JOB_GRANULARITIES = ("auto", "run", "cell")


def granularity(
    jobs: str, runs: int, active_designs: Iterable[str], sequential: bool = False
) -> str:
    """``run`` or ``cell``: what ``execution.jobs`` (``jobs``) means for a grid of ``runs`` runs.

    Active designs choose their pairs per run (docs/active.md), so they have no shared cell work:
    ``cell`` refuses them, and ``auto`` keeps fine jobs when the grid has any. Sequential looks
    (``findings.looks``) choose runs one by one for their open parts, which a cell's all-runs job
    cannot do: ``cell`` refuses them (embrm.config) and ``auto`` keeps fine jobs."""
    if jobs not in JOB_GRANULARITIES:
        raise ConfigError(
            f"config key 'execution.jobs': expected one of {', '.join(JOB_GRANULARITIES)}, "
            f"got {jobs!r}"
        )
    active = sorted(active_designs)
    if jobs == "cell" and active:
        raise ConfigError(
            "config key 'execution.jobs': cell jobs share one cell's pairs between its runs, but "
            f"the active designs {', '.join(active)} in 'grid.designs' choose pairs per run; "
            "set execution.jobs: run (or auto) or drop the active designs"
        )
    if jobs == "auto":
        return "cell" if runs > AUTO_CELL_ABOVE and not active and not sequential else "run"
    return jobs


def key_of(*parts) -> str:
    """A step's key: the hash of what its outputs depend on (JSON-serializable parts)."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def file_digest(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:32]


class Cell:
    """One cell's files under ``results``, as the fine-grained rules lay them out (pairs.smk,
    annotate.smk, train.smk, score.smk, train_cell.smk, evaluate.smk): every path is the results
    tree's (:mod:`embrm.tree`), so the two kinds of jobs write the same files."""

    def __init__(self, results: str | Path, cell: str):
        self.tree = Tree.at(results)
        self.cell = cell
        self.names = tree.cell_fields(cell)
        self.steps = Path(self.tree.cell_steps(cell))
        self.done = Path(self.tree.cell_record(cell))

    def of(self, name: str) -> dict:
        """The grid names of the cell's run ``annotator/head``."""
        annotator, head = name.split("/")
        return {**self.names, "annotator": annotator, "head": head}

    @property
    def pairs(self) -> Path:
        return Path(self.tree.pairs(self.names))

    def labels(self, annotator: str) -> Path:
        return Path(self.tree.annotations(self.names, annotator))

    def stats(self, annotator: str) -> Path:
        return Path(self.tree.annotation_stats(self.names, annotator))

    def run_file(self, file: str, name: str) -> Path:
        """A file of the run ``annotator/head`` (one of :data:`embrm.tree.RUN_FILES`)."""
        return Path(self.tree.run_file(file, self.of(name)))

    @property
    def scores(self) -> Path:
        return Path(self.tree.scores(self.names))

    def scored(self, name: str) -> Path:
        """The run ``annotator/head``'s predictions in the cell's score set."""
        return Path(self.tree.scored(self.of(name)))

    @property
    def scoring_record(self) -> Path:
        return Path(self.tree.scoring_record(self.names))

    @property
    def stacked(self) -> Path:
        return Path(self.tree.stacked(self.names))

    def benchmark(self, stage: str, name: str = "") -> Path:
        """Where the fine-grained job of a stage writes its benchmark (the tracking record reads
        each stage's seconds from there, embrm.tracking.record.stage_seconds)."""
        return Path(self.tree.benchmark(stage, f"{self.cell}/{name}" if name else self.cell))


class Steps:
    """Runs a cell's steps, skipping those already done with the same key."""

    def __init__(self, cell: Cell):
        self.cell = cell
        self.ran: list[str] = []
        self.skipped: list[str] = []

    def record(self, name: str) -> Path:
        return self.cell.steps / f"{name}.json"

    def done(self, name: str, key: str, outputs: Iterable[Path]) -> bool:
        try:
            stored = read_json(self.record(name))
        except Exception:  # absent or unreadable (a kill mid-write leaves only a temporary file)
            return False
        return stored.get("key") == key and all(Path(p).exists() for p in outputs)

    def run(
        self,
        name: str,
        key: str,
        outputs: Iterable[Path],
        work: Callable[[], None],
        benchmark: Path | None = None,
    ) -> None:
        outputs = list(outputs)
        if self.done(name, key, outputs):
            self.skipped.append(name)
            return
        # A record left by an earlier key must not vouch for outputs half rewritten now.
        self.record(name).unlink(missing_ok=True)
        started = time.perf_counter()
        work()
        seconds = time.perf_counter() - started
        if benchmark is not None:
            write_benchmark(benchmark, seconds)
        write_json(self.record(name), {"key": key, "seconds": seconds, "finished_at": time.time()})
        self.ran.append(name)


def write_benchmark(path: Path, seconds: float) -> None:
    """A step's wall time in the `s` and `h:m:s` columns of a Snakemake benchmark file."""
    from .io import atomic_path

    whole = int(seconds)
    clock = f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"
    with atomic_path(path) as tmp:
        tmp.write_text(f"s\th:m:s\n{seconds:.4f}\t{clock}\n")


def run_cell(spec: dict) -> dict:
    """Do one cell's work; return what ran and what was skipped.

    ``spec`` (built by workflow/rules/cell.smk from the validated plan): ``results``, ``cell``
    (world/design/n…/seed…), ``world`` (the built world's directory), ``design``, ``n``,
    ``seed``, ``heldout``, ``of`` (the design's largest quantity), ``scale``, ``annotators``
    (label -> spec), ``runs`` (one ``{"annotator", "head", "head_spec", "record", "stacked"}``
    per run, ``record`` being the run's metrics.json ``run`` entry), ``threads``, ``device``,
    ``evaluation``, ``scores_per_cell`` (training.scoring: cell) and ``tracking_state`` (the
    hand-off file when each run is logged to MLflow as it finishes, else None).
    """
    cell = Cell(spec["results"], spec["cell"])
    steps = Steps(cell)
    world = spec["world"]
    seed, per_cell = int(spec["seed"]), bool(spec["scores_per_cell"])
    runs = spec["runs"]
    if not runs:
        raise ConfigError(f"cell {spec['cell']}: no runs")
    world_key = file_digest(Path(world) / "world.json")

    pairs_key = key_of(
        "pairs", world_key, spec["design"], spec["n"], seed, spec["heldout"], spec["of"]
    )
    steps.run(
        "pairs",
        pairs_key,
        [cell.pairs],
        lambda: stages.make_pairs(
            world,
            spec["design"],
            int(spec["n"]),
            seed,
            int(spec["heldout"]),
            cell.pairs,
            of=spec["of"],
        ),
        cell.benchmark("pairs"),
    )

    label_keys = {}
    for label in sorted({run["annotator"] for run in runs}):
        annotator = spec["annotators"][label]
        label_keys[label] = key_of("annotate", pairs_key, annotator, spec["scale"], seed)
        steps.run(
            f"annotate/{label}",
            label_keys[label],
            [cell.labels(label), cell.stats(label)],
            lambda label=label, annotator=annotator: stages.annotate(
                world,
                cell.pairs,
                annotator,
                spec["scale"],
                seed,
                cell.labels(label),
                cell.stats(label),
            ),
            cell.benchmark("annotate", label),
        )

    def name(run: dict) -> str:
        return f"{run['annotator']}/{run['head']}"

    def trained(run: dict) -> list[Path]:
        files = ["model", "curves.csv", "train.json"] + ([] if per_cell else ["predictions.npy"])
        return [cell.run_file(file, name(run)) for file in files]

    fitting = (spec["threads"], spec["device"], per_cell)
    train_keys = {}
    stacked = [run for run in runs if run["stacked"]]
    if stacked:
        # training.stack: the cell's stacked runs fit together (train_cell.smk's job), then every
        # run gets its own outputs (unstack); one step, redone whole if any of its runs changes.
        stack_key = key_of(
            "stack",
            pairs_key,
            [(name(r), r["head_spec"], label_keys[r["annotator"]]) for r in stacked],
            seed,
            fitting,
        )

        def stack() -> None:
            stages.train_cell(
                world,
                cell.pairs,
                [
                    {
                        "name": name(r),
                        "head": r["head_spec"],
                        "labels": str(cell.labels(r["annotator"])),
                    }
                    for r in stacked
                ],
                seed,
                threads=spec["threads"],
                device=spec["device"],
                out_dir=cell.stacked,
                score=not per_cell,
            )
            for r in stacked:
                stages.unstack(
                    cell.stacked,
                    name(r),
                    model_out=cell.run_file("model", name(r)),
                    curves_out=cell.run_file("curves.csv", name(r)),
                    info_out=cell.run_file("train.json", name(r)),
                    predictions_out=None if per_cell else cell.run_file("predictions.npy", name(r)),
                )

        outputs = [path for r in stacked for path in trained(r)]
        steps.run("stack", stack_key, outputs, stack, cell.benchmark("train_cell"))
        train_keys.update({name(r): stack_key for r in stacked})

    for run in runs:
        if run["stacked"]:
            continue
        train_keys[name(run)] = key_of(
            "train", label_keys[run["annotator"]], run["head_spec"], seed, fitting
        )
        steps.run(
            f"train/{name(run)}",
            train_keys[name(run)],
            trained(run),
            lambda run=run: stages.train(
                world,
                cell.pairs,
                cell.labels(run["annotator"]),
                run["head_spec"],
                seed,
                threads=spec["threads"],
                device=spec["device"],
                model_dir=cell.run_file("model", name(run)),
                predictions_out=None if per_cell else cell.run_file("predictions.npy", name(run)),
                curves_out=cell.run_file("curves.csv", name(run)),
                info_out=cell.run_file("train.json", name(run)),
            ),
            cell.benchmark("train", f"{name(run)}"),
        )

    score_key = None
    if per_cell:
        score_key = key_of("score", [train_keys[name(r)] for r in runs], spec["threads"])
        steps.run(
            "score",
            score_key,
            [cell.scored(name(r)) for r in runs] + [cell.scoring_record],
            lambda: stages.score(
                world,
                {name(r): str(cell.run_file("model", name(r))) for r in runs},
                cell.scores,
                threads=spec["threads"],
                device=spec["device"],
            ),
            cell.benchmark("score"),
        )

    for run in runs:
        evaluate_key = key_of(
            "evaluate",
            train_keys[name(run)],
            score_key,
            run["record"],
            spec["evaluation"],
            spec["device"],
            label_keys[run["annotator"]],
        )
        steps.run(
            f"evaluate/{name(run)}",
            evaluate_key,
            [cell.run_file("metrics.json", name(run)), cell.run_file("predictions.npy", name(run))],
            lambda run=run: evaluate(spec, cell, run, per_cell),
        )
    write_json(
        cell.done,
        {
            "cell": spec["cell"],
            "runs": [name(r) for r in runs],
            "ran": steps.ran,
            "skipped": steps.skipped,
        },
    )
    log.info(
        "cell %s: %d steps run, %d already done", spec["cell"], len(steps.ran), len(steps.skipped)
    )
    return {"ran": steps.ran, "skipped": steps.skipped}


def evaluate(spec: dict, cell: Cell, run: dict, per_cell: bool) -> None:
    """One run's evaluation (evaluate.smk's job) and, in tracking.mode: jobs, its MLflow run."""
    name = f"{run['annotator']}/{run['head']}"
    metrics = cell.run_file("metrics.json", name)
    stages.evaluate(
        spec["world"],
        cell.scored(name) if per_cell else cell.run_file("predictions.npy", name),
        cell.pairs,
        cell.labels(run["annotator"]),
        cell.stats(run["annotator"]),
        cell.run_file("train.json", name),
        cell.run_file("curves.csv", name),
        run["record"],
        spec["evaluation"],
        metrics,
        scoring_path=cell.scoring_record if per_cell else None,
        scoring_name=name if per_cell else None,
        device=spec["device"],
    )
    if spec.get("tracking_state"):
        from .tracking import log_job

        log_job(metrics, spec["tracking_state"])
