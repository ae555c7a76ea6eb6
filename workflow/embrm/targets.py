"""What an invocation of the workflow asks for, beyond each run's jobs: the files `rule all`
waits for, the figures the grid can draw, what the aggregation rules wait for, the tracking's
store, and the runs each sequential look needs.

:class:`Targets` belongs to a :class:`~embrm.layout.Layout` (``layout.targets``), which the
Snakefile and ``embrm plan`` build alike; the rules' input functions ask it, and the tests check
it without Snakemake (tests/test_layout.py). Paths come from :mod:`embrm.tree`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from functools import cached_property
from pathlib import Path

from . import shared_results
from .config import Plan
from .config import looks as configured_looks
from .tree import Tree

# Each figure is saved in both formats (embrm.figures.render).
FIGURE_FORMATS = ("png", "svg")


class Targets:
    """``cells``: with cell jobs (execution.jobs), the cells each one job does; else None."""

    def __init__(self, plan: Plan, tree: Tree, cells: Iterable[str] | None):
        self.plan = plan
        self.tree = tree
        self.config = plan.config
        self.cells = None if cells is None else list(cells)
        # findings.looks: numbers of seeds per sequential look (embrm.findings.sequential).
        self.looks: list[int] | None = configured_looks(self.config)

    # figures -----------------------------------------------------------------------------
    @cached_property
    def settings(self):
        """One row per planned run with the settings the figures vary over: decides which
        figures the grid can draw (embrm.figures.settings)."""
        from .figures import plan_settings

        return plan_settings(self.plan)

    @cached_property
    def drawable(self) -> tuple[list[str], dict[str, str]]:
        """The figures the grid can draw, and why each other one is not drawn (a figure whose
        axis has one value in this grid is not requested; the report lists the reasons)."""
        from .figures import available

        return available(self.settings)

    @property
    def figures(self) -> list[str]:
        return self.drawable[0]

    @property
    def skipped_figures(self) -> dict[str, str]:
        return self.drawable[1]

    @cached_property
    def findings_drawable(self) -> tuple[list[str], dict[str, str]]:
        """The findings' figures the grid can draw (the sensitivity map needs several worlds)."""
        from .figures import findings

        return findings.available(self.settings)

    @cached_property
    def figure_labels(self) -> dict[str, str]:
        """Every registered figure's label (the report's and the figure's title)."""
        from .figures import FIGURES

        return {name: spec.label for name, spec in FIGURES.items()}

    @cached_property
    def figure_captions(self) -> dict[str, str]:
        """Every registered figure's caption, its reStructuredText markup characters (|Δr| etc.)
        escaped for the report."""
        from .figures import FIGURES, rst_escape

        return {name: rst_escape(spec.caption) for name, spec in FIGURES.items()}

    def figure_files(self, names: Iterable[str]) -> list[str]:
        return [self.tree.figure(name, ext) for name in names for ext in FIGURE_FORMATS]

    # what the invocation asks for --------------------------------------------------------
    def tables(self) -> list[str]:
        return [self.tree.file("summary.csv"), self.tree.file("aggregate.csv")]

    def findings(self) -> list[str]:
        return [self.tree.file("findings.csv"), self.tree.file("findings.md")]

    @cached_property
    def planned_heads(self) -> dict[str, dict]:
        """The heads the grid runs, by run name (a sweep's values apart), each its ``type``,
        ``members`` and ``params``, in the config's order."""
        planned = {run.head for run in self.plan.runs}
        return {name: spec for name, spec in self.plan.head_specs.items() if name in planned}

    def attribution(self) -> list[str]:
        """The training recipe's attribution, when the grid's heads include a head type under
        both protocols' presets (embrm.findings.attribution)."""
        from .findings.attribution import attributes

        if not attributes(self.planned_heads):
            return []
        return [self.tree.file("attribution.md"), self.tree.page("attribution.html")]

    def final(self) -> list[str]:
        """`rule all`'s files: the tables, the drawable figures, the findings and their figures,
        the recipe's attribution where the heads make one, and the tracking's sync when tracking
        is on."""
        targets = [
            *self.tables(),
            *self.figure_files(self.figures),
            *self.findings(),
            *self.figure_files(self.findings_drawable[0]),
            *self.attribution(),
        ]
        if self.config["tracking"]["enabled"]:
            targets.append(self.tree.tracking("synced.json"))
        return targets

    def active(self) -> list[str]:
        """The budget table, when the grid has a learning curve to fit (the learning-curve
        figure is drawable)."""
        if "learning_curves" not in self.figures:
            return []
        return [self.tree.file("budget.csv"), self.tree.page("budget.html")]

    def finished_runs(self, metrics: list[str] | Callable) -> list[str] | Callable:
        """What the aggregation rules wait for: every run's metrics.json (``metrics``), or with
        cell jobs every cell's record (written after all of its runs' metrics.json)."""
        if self.cells is not None:
            return [self.tree.cell_record(cell) for cell in self.cells]
        return metrics

    # tracking ----------------------------------------------------------------------------
    @property
    def tracking_uri(self) -> str:
        """The configured tracking URI, else the MLflow database shared by every experiment
        under the results folder (each its own MLflow experiment)."""
        db = shared_results.mlflow_db(self.tree.root)
        return self.config["tracking"]["uri"] or f"sqlite:///{db}"

    def pending_tracking(self) -> str:
        """Changes whenever a sync could not reach the tracking backend, so the next invocation
        reruns the sync; stays at the last failure's time after a successful retry (no further
        reruns)."""
        state = Path(self.tree.tracking("synced.json"))
        if not state.exists():
            return ""
        try:
            content = json.loads(state.read_text())
        except ValueError:
            return "unreadable"
        return content.get("pending_since") or content.get("retried_pending_since", "")

    # sequential looks --------------------------------------------------------------------
    def look_runs(self, k: int, previous: dict | None) -> list:
        """The runs look ``k`` (1-based) stands on, given the previous look's decisions."""
        from .findings.sequential import look_runs

        assert self.looks, "look_runs needs findings.looks"
        return look_runs(self.plan.runs, self.config["grid"]["seeds"], self.looks, k - 1, previous)

    def last_look(self, decisions: Callable[[int], dict]) -> int:
        """The look that ends the sequence: the first whose decisions (``decisions(k)``) say
        done, the last at most."""
        assert self.looks, "last_look needs findings.looks"
        for k in range(1, len(self.looks) + 1):
            if decisions(k)["done"]:
                return k
        return len(self.looks)
