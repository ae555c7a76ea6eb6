"""Compare two results folders of the same experiment, timing aside.

    python benchmarks/compare_results.py results/default /elsewhere/results/default
    python benchmarks/compare_results.py A B --ignore per_prompt   # a record added on purpose
    python benchmarks/compare_results.py FINE COARSE --ignore execution   # execution.jobs

Checks that a code change left every number of an experiment as it was: arrays (worlds, pairs,
labels, predictions) must be equal bit for bit, models byte for byte, tables and JSON records
(also one saved as text inside an .npz, as active rounds save theirs) equal once wall-clock
fields are dropped (YAML compared as data). Logs, benchmarks, MLflow
bookkeeping, cell jobs' progress records and the HTML report describe the invocation rather than
the results and are skipped. Prints one line per kind of file
and every difference; exits 1 if any file differs or exists on one side only.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

# MLflow's artifact copies live under run ids that differ between invocations; cells/ holds the
# progress records of cell jobs (execution.jobs: cell), which fine-grained jobs do not write.
SKIPPED_DIRS = {"logs", "benchmarks", "tracking", "report", "mlartifacts", ".snakemake", "cells"}
SKIPPED_SUFFIXES = {".html", ".log", ".tmp"}
# Fields that measure the machine or the moment rather than the experiment.
TIMING_WORDS = ("seconds", "elapsed", "timestamp", "started", "finished", "duration", "wall")


def left_out(name: str, ignored: frozenset[str]) -> bool:
    """A timing field, or a key or column named by --ignore (one a change added on purpose)."""
    lowered = name.lower()
    return name in ignored or any(word in lowered for word in TIMING_WORDS)


def strip(value, ignored: frozenset[str]):
    if isinstance(value, dict):
        return {k: strip(v, ignored) for k, v in value.items() if not left_out(str(k), ignored)}
    if isinstance(value, list):
        return [strip(v, ignored) for v in value]
    return value


def equal(left: np.ndarray, right: np.ndarray) -> bool:
    # NaN equals NaN in numbers; strings and booleans compare as they are.
    numeric = np.issubdtype(left.dtype, np.inexact) and np.issubdtype(right.dtype, np.inexact)
    return np.array_equal(left, right, equal_nan=numeric)


def json_text(array: np.ndarray):
    """The record a 0-d string array holds as JSON text (an active round's), else None."""
    if array.ndim != 0 or array.dtype.kind != "U":
        return None
    try:
        return json.loads(array.item())
    except ValueError:
        return None


def same_entry(left: np.ndarray, right: np.ndarray, ignored: frozenset[str]) -> bool:
    # A JSON record saved beside the arrays is compared as a record: its timing fields aside.
    records = json_text(left), json_text(right)
    if records[0] is not None and records[1] is not None:
        return strip(records[0], ignored) == strip(records[1], ignored)
    return equal(left, right)


def same_arrays(a: Path, b: Path, ignored: frozenset[str]) -> bool:
    if a.suffix == ".npy":
        return equal(np.load(a), np.load(b))
    with np.load(a) as left, np.load(b) as right:
        if sorted(left.files) != sorted(right.files):
            return False
        return all(same_entry(left[k], right[k], ignored) for k in left.files)


def same_table(a: Path, b: Path, ignored: frozenset[str]) -> bool:
    read = pd.read_parquet if a.suffix == ".parquet" else pd.read_csv
    left, right = read(a), read(b)
    # Both tables must have the same columns (--ignore ones aside); timing values may differ.
    left = left.drop(columns=[c for c in left.columns if c in ignored])
    right = right.drop(columns=[c for c in right.columns if c in ignored])
    if list(left.columns) != list(right.columns):
        return False
    kept = [c for c in left.columns if not left_out(str(c), ignored)]
    return left[kept].equals(right[kept])


def same_json(a: Path, b: Path, ignored: frozenset[str]) -> bool:
    return strip(json.loads(a.read_text()), ignored) == strip(json.loads(b.read_text()), ignored)


def same_yaml(a: Path, b: Path, ignored: frozenset[str]) -> bool:
    # As data, so that --ignore drops a key there too (a setting that must not change results).
    import yaml

    return strip(yaml.safe_load(a.read_text()), ignored) == strip(
        yaml.safe_load(b.read_text()), ignored
    )


def same_yaml_or_text(a: Path, b: Path, ignored: frozenset[str]) -> bool:
    return a.read_bytes() == b.read_bytes()


def same_svg(a: Path, b: Path, ignored: frozenset[str]) -> bool:
    # Matplotlib stamps the drawing date into SVG metadata; the drawing itself must not change.
    def body(path: Path) -> list[str]:
        return [line for line in io.StringIO(path.read_text()) if "<dc:date>" not in line]

    return body(a) == body(b)


COMPARERS = {
    ".npy": same_arrays,
    ".npz": same_arrays,
    ".csv": same_table,
    ".parquet": same_table,
    ".json": same_json,
    ".yaml": same_yaml,
    ".svg": same_svg,
}


def files(root: Path) -> set[Path]:
    found = set()
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if not path.is_file() or SKIPPED_DIRS & set(relative.parts[:-1]):
            continue
        if path.suffix in SKIPPED_SUFFIXES or path.name.startswith("."):
            continue
        found.add(relative)
    return found


def compare(
    left: Path, right: Path, ignored: frozenset[str] = frozenset()
) -> tuple[Counter, list[str]]:
    ours, theirs = files(left), files(right)
    problems = [f"only in {left}: {p}" for p in sorted(ours - theirs)]
    problems += [f"only in {right}: {p}" for p in sorted(theirs - ours)]
    counts: Counter = Counter()
    for relative in sorted(ours & theirs):
        same = COMPARERS.get(relative.suffix, same_yaml_or_text)
        kind = relative.suffix or relative.name
        counts[kind] += 1
        if not same(left / relative, right / relative, ignored):
            problems.append(f"differs: {relative}")
            counts[f"{kind} differing"] += 1
    return counts, problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("left", type=Path)
    parser.add_argument("right", type=Path)
    parser.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="KEY",
        help="a JSON key or table column to leave out (repeatable): one a change added on purpose",
    )
    args = parser.parse_args(argv)
    for folder in (args.left, args.right):
        if not folder.is_dir():
            parser.error(f"{folder}: not a results folder")
    counts, problems = compare(args.left, args.right, frozenset(args.ignore))
    for kind, count in sorted(counts.items()):
        print(f"{kind:>20}: {count}")
    for problem in problems:
        print(problem)
    print("identical, timing aside" if not problems else f"{len(problems)} differences")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
