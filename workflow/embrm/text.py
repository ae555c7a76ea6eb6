"""``python -m embrm.text <stage>``: the text-world stages as separate jobs.

The Snakemake rules in ``workflow/rules/text.smk`` call these (generation, scoring and embedding
each on their own GPU job); ``embrm world`` runs the same stages in one process. Settings arrive
as the world's validated config entry (``--spec`` JSON). A user-fixable problem prints
``error: …`` and exits with status 2; outputs appear only when complete.
"""

from __future__ import annotations

import argparse
import logging
import sys

from .cli import json_arg, run_stage


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m embrm.text", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="stage", required=True)

    def add(name: str, help_text: str, *, device: bool = False) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument(
            "--spec", type=json_arg, required=True, help="the world's config entry as JSON"
        )
        if device:
            p.add_argument("--threads", type=int, default=1)
            p.add_argument("--device", default="auto")
        return p

    p = add("prompts", "select prompts (hf source)")
    p.add_argument("--out", required=True)
    p = add("generate", "sample K responses per prompt (hf source)", device=True)
    p.add_argument("--prompts", required=True)
    p.add_argument("--out", required=True)
    p = add("score", "golden rewards from the reward model (hf source)", device=True)
    p.add_argument("--responses", required=True)
    p.add_argument("--out", required=True)
    p = add("table", "read your table into the texts table (table source)")
    p.add_argument("--out", required=True)
    p = add("embed", "embed one split of the texts table", device=True)
    p.add_argument("--texts", required=True)
    p.add_argument("--split", choices=["train", "test"], required=True)
    p.add_argument("--out", required=True)
    p = add("world", "assemble the world directory")
    p.add_argument("--texts", required=True)
    p.add_argument("--train-embeddings", required=True)
    p.add_argument("--test-embeddings", required=True)
    p.add_argument("--out", required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_stage(_parser(), _dispatch, argv)


def _dispatch(args: argparse.Namespace) -> None:
    from .sources import text

    if args.stage == "prompts":
        text.stage_prompts(args.spec, args.out)
    elif args.stage == "generate":
        text.stage_generate(
            args.spec, args.prompts, args.out, device=args.device, threads=args.threads
        )
    elif args.stage == "score":
        text.stage_score(
            args.spec, args.responses, args.out, device=args.device, threads=args.threads
        )
    elif args.stage == "table":
        text.stage_table(args.spec, args.out)
    elif args.stage == "embed":
        summary = text.stage_embed(
            args.spec,
            args.texts,
            args.split,
            args.out,
            device=args.device,
            threads=args.threads,
        )
        logging.getLogger("embrm").info("embedded: %s", summary)
    elif args.stage == "world":
        embeddings = {"train": args.train_embeddings, "test": args.test_embeddings}
        text.stage_world(args.spec, args.texts, embeddings, args.out)


if __name__ == "__main__":
    sys.exit(main())
