"""Resource requests of the workflow's jobs: memory (MB), wall time (minutes), GPUs; docs/slurm.md.

Each stage below adds what its job holds to the costs that the work declares itself (head types:
:meth:`~embrm.heads.base.RewardHead.estimate`; world sources: their module's ``estimate``; the
vocabulary: :mod:`embrm.costs`) and makes a request of it. The constants come from peak-RSS and
timing measurements of the stages on the synthetic world at D = 64 and 1024 (docs/slurm.md) and
carry a margin. ``attempt`` grows a request on each retry, so a job that a cluster killed for
memory or time comes back with more. A profile's ``set-resources`` overrides any of these values.

``workflow/rules/resources.smk`` only hands the rules' wildcards to :class:`Requests`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .costs import MB, Compute, HeadCost, Shapes, rows_mb
from .heads import head_class
from .heads.predict import PREDICT_CHUNK_BYTES, PREDICT_CHUNK_ROWS
from .heads.stacked import stacked_model_mb
from .sources import npy, preferences, synthetic
from .tree import SPLITS, WORLD_ARRAYS, Tree

# Fixed cost of a job: the interpreter and numpy; training also loads torch and LightGBM.
BASE_MB = {"light": 300, "train": 700}
# Start-up of a job (imports, opening memory maps) and the shortest wall time worth asking for.
STARTUP_SECONDS = 120
MIN_RUNTIME_MINUTES = 5
# Estimates are doubled before they become a wall-time limit (running past it kills the job);
# memory gets a quarter on top.
RUNTIME_SAFETY = 2.0
MEMORY_SAFETY = 1.25
# Shapes of a world whose config does not state them (npy and text sources) are read from the
# .npy headers (the user's files, or the built world); before those exist, the paper's largest
# setting is assumed so that nothing is undersized.
DEFAULT_SHAPES = Shapes(train=(40_000, 10, 2048), test=(2_000, 500, 2048), itemsize=4)
# The world sources a `world` job builds, each with its own cost (text worlds are made by the
# text rules, whose requests are the light ones).
WORLD_ESTIMATES = {
    "synthetic": synthetic.estimate,
    "npy": npy.estimate,
    "preferences": preferences.estimate,
}


def mem_request(mb: float, attempt: int) -> int:
    """A memory request with margin, half again per retry, rounded up to 256 MB."""
    mb = mb * MEMORY_SAFETY * (1 + 0.5 * (attempt - 1))
    return int(math.ceil(mb / 256) * 256)


def runtime_request(seconds: float, attempt: int) -> int:
    """A wall time in whole minutes with margin and start-up, doubled per retry."""
    minutes = (STARTUP_SECONDS + RUNTIME_SAFETY * seconds) / 60
    return int(max(MIN_RUNTIME_MINUTES, math.ceil(minutes)) * attempt)


@dataclass(frozen=True)
class Request:
    mem_mb: int
    runtime: int  # minutes


def npy_header(path: str | Path) -> tuple[tuple[int, ...], int]:
    """(shape, itemsize) of an .npy file; memory-mapping reads only the header."""
    array = np.load(path, mmap_mode="r")
    return tuple(array.shape), array.dtype.itemsize


def world_shapes(spec: dict, world_dir: str | Path) -> Shapes:
    """The shapes of a world's embeddings: from its config (synthetic), else from the .npy
    headers of the user's arrays (npy) or of the built world, else :data:`DEFAULT_SHAPES`."""
    if spec["source"] == "synthetic":
        return Shapes(
            **{
                split: (spec[f"{split}_prompts"], spec[f"{split}_responses"], spec["dim"])
                for split in SPLITS
            },
            itemsize=np.dtype(spec["dtype"]).itemsize,
        )
    candidates = [{split: Path(world_dir) / WORLD_ARRAYS[split]["embeddings"] for split in SPLITS}]
    if spec["source"] == "npy":
        # The user's arrays, readable before the world is built; (K, N, D) files have the same
        # P·K and D, which is all the estimates use.
        candidates.insert(0, {split: spec[split]["embeddings"] for split in SPLITS})
    for paths in candidates:
        try:
            found = {split: npy_header(paths[split]) for split in SPLITS}
        except (OSError, ValueError):
            continue
        return Shapes(found["train"][0], found["test"][0], itemsize=found["train"][1])
    return DEFAULT_SHAPES


def chunk_rows(shapes: Shapes) -> int:
    """Rows of one float32 prediction chunk of the test set (as heads.base.iter_chunks reads)."""
    bounded = int(np.clip(PREDICT_CHUNK_BYTES // (4 * shapes.test[2]), *PREDICT_CHUNK_ROWS))
    return min(bounded, shapes.rows("test"))


def scoring_mb(shapes: Shapes, models: Sequence[tuple[HeadCost, int]]) -> float:
    """Scoring the test set with several (cost, members) heads in one pass: one float32 chunk,
    the widest head's activations on it, and every member's predictions (held, then written)."""
    width = max(cost.score_width for cost, _ in models)
    members = sum(members for _, members in models)
    chunk = chunk_rows(shapes) * (shapes.test[2] + width) * 4
    return (chunk + shapes.rows("test") * 4 * members * 2) / MB


class Requests:
    """The requests of one experiment's jobs. ``plan``: the validated :class:`embrm.config.Plan`;
    ``results``: the experiment's results folder (built worlds are read from it)."""

    def __init__(self, plan, results: str | Path):
        self.plan = plan
        self.results = Path(results)
        training = plan.config["training"]
        # Training asks for a GPU only with `training.device: cuda`. Every head does: LightGBM
        # runs on the CPU but checks that the CUDA device the config asks for exists.
        self.gpu = training["device"] == "cuda"
        self.compute = Compute(threads=training["threads"], gpu=self.gpu)
        self.per_cell = plan.scores_per_cell

    def shapes(self, world: str) -> Shapes:
        return world_shapes(self.plan.world_spec(world), Tree.at(self.results).world(world))

    def head(self, name: str, shapes: Shapes, pairs: int) -> tuple[HeadCost, int, dict]:
        """The head's own cost of one model, its ensemble size and complete hyperparameters."""
        spec = self.plan.head_spec(name)
        cls = head_class(spec["type"], f"heads.{name}.type")
        params = {**cls.defaults, **spec["params"]}
        return cls.estimate(shapes, params, pairs, self.compute), spec["members"], params

    # world (synthetic and npy sources; text worlds are made by the rules in text.smk).
    def world(self, world: str, attempt: int) -> Request:
        spec = self.plan.world_spec(world)
        working_mb, seconds = WORLD_ESTIMATES[spec["source"]](self.shapes(world))
        return Request(
            mem_request(BASE_MB["light"] + working_mb, attempt), runtime_request(seconds, attempt)
        )

    def shortest(self, attempt: int) -> int:
        """The shortest wall time worth asking for (jobs of seconds)."""
        return runtime_request(0, attempt)

    # pairs, annotate and text_world read only reward arrays (P, K) and write index arrays.
    def light(self, world: str, attempt: int) -> Request:
        return Request(mem_request(self._light_mb(world), attempt), self.shortest(attempt))

    def _light_mb(self, world: str) -> float:
        shapes = self.shapes(world)
        rows = shapes.rows("train") + shapes.rows("test")
        return BASE_MB["light"] + rows * 8 * 4 / MB

    # evaluate: predictions (members, P, K) in float32 and a few int64 rank arrays of the test set.
    def evaluate(self, world: str, head: str, attempt: int) -> Request:
        return Request(mem_request(self._evaluate_mb(world, head), attempt), self.shortest(attempt))

    def _evaluate_mb(self, world: str, head: str) -> float:
        rows = self.shapes(world).rows("test")
        members = self.plan.head_spec(head)["members"]
        return BASE_MB["light"] + rows * (4 * members + 8 * 6) / MB

    # train: the head's own fit and, when the job scores the test set itself (training.scoring:
    # run), what scoring holds and takes.
    def train(self, world: str, head: str, pairs: int, attempt: int) -> Request:
        return self._request(self._train_need(world, head, pairs), attempt)

    def _train_need(self, world: str, head: str, pairs: int) -> tuple[float, float]:
        shapes = self.shapes(world)
        cost, members, _ = self.head(head, shapes, pairs)
        mb = BASE_MB["train"] + cost.fit_mb
        seconds = cost.fit_seconds * members
        if not self.per_cell:
            mb += scoring_mb(shapes, [(cost, members)])
            seconds += cost.score_seconds * members
        return mb, seconds

    @staticmethod
    def _request(need: tuple[float, float], attempt: int) -> Request:
        """The request of a job that holds ``need`` = (MB, seconds of work)."""
        return Request(mem_request(need[0], attempt), runtime_request(need[1], attempt))

    # score (training.scoring: cell): every model of the cell loaded and scored in one pass.
    def score(self, world: str, heads: Sequence[str], pairs: int, attempt: int) -> Request:
        return self._request(self._score_need(world, heads, pairs), attempt)

    def _score_need(self, world: str, heads: Sequence[str], pairs: int) -> tuple[float, float]:
        shapes = self.shapes(world)
        models = [self.head(head, shapes, pairs)[:2] for head in heads]
        mb = BASE_MB["train"] + scoring_mb(shapes, models)
        return mb, sum(cost.score_seconds * members for cost, members in models)

    # train_cell (training.stack: true): the cell's rows once, each stacked model's own state
    # (heads.stacked), the same arithmetic as one train job per run, and scoring when the job
    # does it.
    def train_cell(self, world: str, heads: Sequence[str], pairs: int, attempt: int) -> Request:
        return self._request(self._train_cell_need(world, heads, pairs), attempt)

    def _train_cell_need(self, world: str, heads: Sequence[str], pairs: int) -> tuple[float, float]:
        shapes = self.shapes(world)
        models = [self.head(head, shapes, pairs) for head in heads]
        mb = BASE_MB["train"] + rows_mb(shapes.annotated(pairs), shapes.dim, 3)
        seconds = 0.0
        for cost, members, params in models:
            mb += stacked_model_mb(params, shapes.dim, pairs)
            seconds += cost.fit_seconds
            if not self.per_cell:
                seconds += cost.score_seconds * members
        if not self.per_cell:
            mb += scoring_mb(shapes, [(cost, members) for cost, members, _ in models])
        return mb, seconds

    # cell (execution.jobs: cell, embrm.cell_job): one process does every step of the cell in
    # turn (pairs, labels, each run's training, the cell's scoring, each run's evaluation), so it
    # holds the largest step's memory at a time and takes the sum of the steps' times, with one
    # start-up. ``heads``: the head of each of the cell's runs (repeated once per annotator);
    # ``stacked``: those of the runs trained together (training.stack), in the same form.
    def cell(
        self, world: str, heads: Sequence[str], stacked: Sequence[str], pairs: int, attempt: int
    ) -> Request:
        return self._request(self.cell_need(world, heads, stacked, pairs), attempt)

    def cell_need(
        self, world: str, heads: Sequence[str], stacked: Sequence[str], pairs: int
    ) -> tuple[float, float]:
        """(MB, seconds of work) of a cell job before margins and start-up: what
        benchmarks/plan_scale.py adds up to estimate a whole study's wall time."""
        unstacked = list(heads)
        for head in stacked:
            unstacked.remove(head)
        needs = [(self._light_mb(world), 0.0)]
        needs += [self._train_need(world, head, pairs) for head in unstacked]
        if stacked:
            needs.append(self._train_cell_need(world, stacked, pairs))
        if self.per_cell:
            needs.append(self._score_need(world, heads, pairs))
        needs += [(self._evaluate_mb(world, head), 0.0) for head in heads]
        return max(mb for mb, _ in needs), sum(seconds for _, seconds in needs)

    def world_seconds(self, world: str) -> float:
        """Seconds of work of a world job (synthetic and npy sources)."""
        spec = self.plan.world_spec(world)
        return WORLD_ESTIMATES[spec["source"]](self.shapes(world))[1]

    # active: a round holds what training at n holds, the test scoring, and the pool's features
    # (two embeddings and two penultimate vectors per candidate, float32, plus their
    # differences); every round but the last trains at most at n and scores the test set once.
    def active(
        self, world: str, head: str, pairs: int, rounds: int, pool_size: int, attempt: int
    ) -> Request:
        shapes = self.shapes(world)
        cost, members, _ = self.head(head, shapes, pairs)
        width = max(shapes.train[2], cost.widest_layer)
        pool = pool_size * (2 * shapes.train[2] + 3 * width) * 4 / MB
        train = self.train(world, head, pairs, 1).mem_mb / MEMORY_SAFETY
        scoring = scoring_mb(shapes, [(cost, members)]) if self.per_cell else 0
        runtime = max(MIN_RUNTIME_MINUTES, rounds * self.train(world, head, pairs, attempt).runtime)
        return Request(mem_request(train + scoring + pool, attempt), runtime)
