"""``embrm <stage>``: one subcommand per workflow stage.

Snakemake's per-job rules call these; they are equally usable by hand. Settings arrive as JSON
(``--spec``) exactly as the validated config holds them. A user-fixable problem prints
``error: …`` naming the key or file and exits with status 2; no output is left half-written.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys

from .errors import ConfigError, EmbrmError


def json_arg(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="embrm", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="stage", required=True)

    p = sub.add_parser("world", help="build a world directory (embeddings + golden rewards)")
    p.add_argument("--spec", type=json_arg, required=True, help="the world's config entry as JSON")
    p.add_argument("--out", required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="auto")

    p = sub.add_parser("pairs", help="draw training and held-out pairs for a design")
    p.add_argument("--world", required=True)
    p.add_argument("--design", required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--heldout", type=int, required=True)
    p.add_argument("--out", required=True)

    p = sub.add_parser("annotate", help="label pairs with a simulated annotator")
    p.add_argument("--world", required=True)
    p.add_argument("--pairs", required=True)
    p.add_argument("--annotator", type=json_arg, required=True)
    p.add_argument("--scale", type=json_arg, required=True, help='"std" or a number, as JSON')
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--stats", required=True)

    p = sub.add_parser("train", help="train a head (or ensemble); optionally score the test set")
    p.add_argument("--world", required=True)
    p.add_argument("--pairs", required=True)
    p.add_argument("--labels", required=True)
    p.add_argument("--head", type=json_arg, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="auto")
    p.add_argument("--model-dir", required=True)
    p.add_argument(
        "--predictions", help="write test predictions here (omit to only fit and save the model)"
    )
    p.add_argument("--curves", required=True)
    p.add_argument("--info", required=True)

    p = sub.add_parser("evaluate", help="score test predictions: Best-of-N, Spearman, accuracy")
    p.add_argument("--world", required=True)
    p.add_argument("--predictions", required=True)
    p.add_argument("--pairs", required=True)
    p.add_argument("--labels", required=True)
    p.add_argument("--annotation-stats", required=True)
    p.add_argument("--train-info", required=True)
    p.add_argument("--curves", required=True)
    p.add_argument("--run", type=json_arg, required=True)
    p.add_argument("--evaluation", type=json_arg, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--scoring", help="scoring.json of the score job that wrote the predictions")
    p.add_argument("--scored-as", help="this run's name in --scoring (annotator/head)")
    p.add_argument(
        "--device",
        default="cpu",
        help="training.device: cuda (or auto after GPU training) picks Best-of-N on the GPU",
    )

    p = sub.add_parser(
        "score", help="score several saved models with one read of the test embeddings"
    )
    p.add_argument("--world", required=True)
    p.add_argument(
        "--model",
        action="append",
        required=True,
        metavar="NAME=DIR",
        help="a saved model and the name of its predictions file (repeat for each model)",
    )
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", required=True, help="directory for <NAME>.npy and scoring.json")

    p = sub.add_parser(
        "train-cell", help="train a cell's MLP runs together (stacked weights, one process)"
    )
    p.add_argument("--world", required=True)
    p.add_argument("--pairs", required=True)
    p.add_argument(
        "--runs",
        type=json_arg,
        required=True,
        help='JSON list of {"name": "annotator/head", "head": head spec, "labels": path}',
    )
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="auto")
    p.add_argument("--score", action="store_true", help="also write each run's test predictions")
    p.add_argument("--out", required=True, help="directory for <name>/{model,curves.csv,...}")

    p = sub.add_parser("unstack", help="give one run of a stacked cell its own run outputs")
    p.add_argument("--cell", required=True, help="the train-cell output directory")
    p.add_argument("--name", required=True, help="the run's name in it (annotator/head)")
    p.add_argument("--model-dir", required=True)
    p.add_argument("--curves", required=True)
    p.add_argument("--info", required=True)
    p.add_argument("--predictions")

    p = sub.add_parser("active", help="choose and label an active design's pairs, in rounds")
    p.add_argument("--world", required=True)
    p.add_argument("--design", required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--annotator", type=json_arg, required=True)
    p.add_argument("--scale", type=json_arg, required=True, help='"std" or a number, as JSON')
    p.add_argument("--head", type=json_arg, required=True)
    p.add_argument("--active", type=json_arg, required=True, help="the config's active section")
    p.add_argument("--evaluation", type=json_arg, required=True)
    p.add_argument("--heldout", type=int, required=True)
    p.add_argument("--state", required=True, help="directory of the saved rounds (resumable)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="auto")
    p.add_argument("--pairs-out", required=True)
    p.add_argument("--labels-out", required=True)
    p.add_argument("--stats-out", required=True)

    p = sub.add_parser(
        "budget", help="labels needed to reach a target normalized Best-of-N gain, per head"
    )
    p.add_argument("summary", help="summary.csv/.parquet, a results directory or experiment name")
    p.add_argument(
        "--target", type=float, action="append", help="share of the oracle's gain (repeatable)"
    )
    p.add_argument("--confidence", type=float, default=0.95)
    p.add_argument("--csv", help="also write the table here")
    p.add_argument("--html", help="also write the table as a report page here")

    for name in ("plan", "validate"):
        p = sub.add_parser(
            name,
            help="check an experiment's config file and inputs; print the completed config, "
            "its runs and their count (what `snakemake --configfile FILE` runs)",
        )
        p.add_argument("config", help="the experiment's config file")
        p.add_argument(
            "--quiet", action="store_true", help="print only the summary line (for scripts)"
        )
        p.add_argument(
            "--name", action="store_true", help="print only the experiment's name (for scripts)"
        )
    return parser


def run_stage(parser: argparse.ArgumentParser, dispatch, argv: list[str] | None) -> int:
    """Parse ``argv``, log to stderr, run ``dispatch(args)``; a user-fixable error exits 2."""
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s embrm %(levelname)s %(message)s"
    )
    try:
        dispatch(args)
    except EmbrmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_stage(_parser(), _dispatch, argv)


def _dispatch(args: argparse.Namespace) -> None:
    from . import stages

    if args.stage == "world":
        stages.build_world(args.spec, args.out, threads=args.threads, device=args.device)
    elif args.stage == "pairs":
        stages.make_pairs(args.world, args.design, args.n, args.seed, args.heldout, args.out)
    elif args.stage == "annotate":
        stages.annotate(
            args.world, args.pairs, args.annotator, args.scale, args.seed, args.out, args.stats
        )
    elif args.stage == "train":
        stages.train(
            args.world,
            args.pairs,
            args.labels,
            args.head,
            args.seed,
            threads=args.threads,
            device=args.device,
            model_dir=args.model_dir,
            predictions_out=args.predictions,
            curves_out=args.curves,
            info_out=args.info,
        )
    elif args.stage == "evaluate":
        stages.evaluate(
            args.world,
            args.predictions,
            args.pairs,
            args.labels,
            args.annotation_stats,
            args.train_info,
            args.curves,
            args.run,
            args.evaluation,
            args.out,
            scoring_path=args.scoring,
            scoring_name=args.scored_as,
            device=args.device,
        )
    elif args.stage == "score":
        stages.score(
            args.world,
            model_arguments(args.model),
            args.out,
            threads=args.threads,
            device=args.device,
        )
    elif args.stage == "train-cell":
        stages.train_cell(
            args.world,
            args.pairs,
            args.runs,
            args.seed,
            threads=args.threads,
            device=args.device,
            out_dir=args.out,
            score=args.score,
        )
    elif args.stage == "unstack":
        stages.unstack(
            args.cell,
            args.name,
            model_out=args.model_dir,
            curves_out=args.curves,
            info_out=args.info,
            predictions_out=args.predictions,
        )
    elif args.stage == "active":
        from .active.rounds import stage

        stage(
            args.world,
            args.design,
            args.n,
            args.seed,
            args.annotator,
            args.scale,
            args.head,
            args.active,
            args.evaluation,
            args.heldout,
            args.state,
            pairs_out=args.pairs_out,
            labels_out=args.labels_out,
            stats_out=args.stats_out,
            threads=args.threads,
            device=args.device,
        )
    elif args.stage == "budget":
        from .active.budget import run_cli

        run_cli(args.summary, args.target or [0.6, 0.7, 0.8], args.confidence, args.csv, args.html)
    elif args.stage in ("plan", "validate"):
        from .plan import describe

        print(describe(args.config, quiet=args.quiet, name_only=args.name))


# Names become relative paths under the output directory: no empty, hidden or parent parts.
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*(/[A-Za-z0-9][A-Za-z0-9_.+-]*)*")


def model_arguments(values: list[str]) -> dict[str, str]:
    """``["name=dir", ...]`` -> ``{name: dir}``; names must be distinct."""
    models: dict[str, str] = {}
    for value in values:
        name, sep, directory = value.partition("=")
        if not sep or not directory or not MODEL_NAME.fullmatch(name):
            raise ConfigError(
                f"--model: expected NAME=DIR with NAME made of '/'-separated parts of letters, "
                f"digits and _.+- (not starting with a dot), got {value!r}"
            )
        if name in models:
            raise ConfigError(f"--model: name {name!r} given twice")
        models[name] = directory
    return models


if __name__ == "__main__":
    sys.exit(main())
