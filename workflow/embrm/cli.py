"""``python -m embrm <command>``: the workflow's stages and tools as subcommands.

Each command is registered once, with its options and its function, in :data:`COMMANDS`; the
workflow's stages (the world, the text-world stages, each cell's and run's) are declared beside
their functions (:mod:`embrm.declare`).
Snakemake's per-job rules call these; they are equally usable by hand. One command per workflow
stage; ``text <stage>`` runs the text-world stages as separate jobs (``world`` runs them in one
process); ``tracking <step>`` holds the MLflow logging steps of the workflow. Settings arrive as
JSON (``--spec``) exactly as the validated config holds them. A user-fixable problem prints
``error: …`` naming the key or file and exits with status 2; no output is left half-written.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass

from .declare import json_arg, model_arguments  # noqa: F401  (model_arguments: its former home)
from .errors import EmbrmError

# Commands under a group run as ``embrm <group> <command>``.
GROUPS = {
    "text": "the text-world stages as separate jobs",
    "tracking": "MLflow logging steps of the workflow",
}


@dataclass(frozen=True)
class Command:
    name: str  # "train", or "<group> <name>" ("text generate")
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int | None]  # None: success


COMMANDS: dict[str, Command] = {}


def command(name: str, help_text: str, arguments: Callable[[argparse.ArgumentParser], None]):
    """Register the decorated function as command ``name`` with the options ``arguments`` adds."""

    def register(run):
        if name in COMMANDS:
            raise ValueError(f"command {name!r} registered twice")
        COMMANDS[name] = Command(name, help_text, arguments, run)
        return run

    return register


# ---------------------------------------------------------------------------------------------
# The workflow's tools (its stages are declared beside their functions: embrm.declare)


def _budget_arguments(p):
    p.add_argument("summary", help="summary.csv/.parquet, a results directory or experiment name")
    p.add_argument(
        "--target", type=float, action="append", help="share of the oracle's gain (repeatable)"
    )
    p.add_argument("--confidence", type=float, default=0.95)
    p.add_argument("--csv", help="also write the table here")
    p.add_argument("--html", help="also write the table as a report page here")


@command(
    "budget",
    "labels needed to reach a target normalized Best-of-N gain, per head",
    _budget_arguments,
)
def _budget(args):
    from .active.budget import run_cli

    run_cli(args.summary, args.target or [0.6, 0.7, 0.8], args.confidence, args.csv, args.html)


def _plan_arguments(p):
    p.add_argument("config", help="the experiment's config file")
    p.add_argument("--quiet", action="store_true", help="print only the summary line (for scripts)")
    p.add_argument(
        "--name", action="store_true", help="print only the experiment's name (for scripts)"
    )


_PLAN_HELP = (
    "check an experiment's config file and inputs; print the completed config, its runs and "
    "their count (what `snakemake --configfile FILE` runs)"
)


@command("validate", _PLAN_HELP, _plan_arguments)
@command("plan", _PLAN_HELP, _plan_arguments)
def _plan(args):
    from .plan import describe

    print(describe(args.config, quiet=args.quiet, name_only=args.name))


# ---------------------------------------------------------------------------------------------
# MLflow logging steps (embrm.tracking): tracking never fails a job or the workflow


def _tracking_start_arguments(p):
    p.add_argument("--spec", type=json.loads, required=True)
    p.add_argument("--state", required=True)


@command("tracking start", "create database, experiment and parent run", _tracking_start_arguments)
def _tracking_start(args):
    from .tracking import start_invocation

    state = start_invocation(args.spec, args.state)
    if "error" in state:
        print(
            f"warning: MLflow at {state['uri']} is unavailable ({state['error']}); results "
            "stay on disk and are logged when it is back",
            file=sys.stderr,
        )


def _tracking_log_job_arguments(p):
    p.add_argument("--metrics", required=True)
    p.add_argument("--state", required=True)


@command("tracking log-job", "log one run from its metrics.json", _tracking_log_job_arguments)
def _tracking_log_job(args):
    from .tracking import log_job

    log_job(args.metrics, args.state)


def _tracking_finish_arguments(p):
    p.add_argument("--state", required=True)
    p.add_argument("--status", choices=["FINISHED", "FAILED", "KILLED"], default="FINISHED")


@command("tracking finish", "close the parent run", _tracking_finish_arguments)
def _tracking_finish(args):
    from .tracking import finish_invocation

    finish_invocation(args.state, args.status)


# ---------------------------------------------------------------------------------------------
# Parsing and running


def commands() -> dict[str, Command]:
    """The commands registered here and the stages declared with their functions (each run as
    its declaration says: :mod:`embrm.declare`)."""
    from . import stages  # noqa: F401  (declares its stages)
    from .active import rounds  # noqa: F401  (declares the active stage)
    from .declare import STAGES
    from .sources import text  # noqa: F401  (declares the text-world stages)

    declared = {
        name: Command(name, spec.help, spec.add_options, spec.call) for name, spec in STAGES.items()
    }
    clash = set(declared) & set(COMMANDS)
    if clash:
        raise ValueError(f"commands {sorted(clash)} are both declared stages and registered")
    return {**COMMANDS, **declared}


def parser() -> argparse.ArgumentParser:
    """The parser of every registered command (groups as nested subcommands)."""
    top = argparse.ArgumentParser(prog="embrm", description=__doc__.splitlines()[0])
    subparsers = {"": top.add_subparsers(dest="command", required=True)}
    for name, spec in commands().items():
        group, _, leaf = name.rpartition(" ")
        if group not in subparsers:
            g = subparsers[""].add_parser(group, help=GROUPS[group], description=GROUPS[group])
            subparsers[group] = g.add_subparsers(dest="step", required=True)
        p = subparsers[group].add_parser(leaf, help=spec.help, description=spec.help)
        spec.arguments(p)
        p.set_defaults(_command=spec)
    return top


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, log to stderr, run the command; a user-fixable error exits 2."""
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s embrm %(levelname)s %(message)s"
    )
    try:
        status = args._command.run(args)
    except EmbrmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
