"""The GPU check: every CUDA path of embrm run for real, timed, and compared with the CPU.

    benchmarks/gpu_check.sh [OUT_DIR] [--quick] [--sections abcde]   # the usual entry point
    python benchmarks/gpu_check.py OUT_DIR [--quick] [--sections abcde] [--deadline SECONDS]

Run from the repository root. OUT_DIR receives what is worth keeping, all of it small:
``report.txt`` (what is printed), one ``<section>.json`` (numbers and records) and
``<section>.log`` per section, and the experiments' summaries. Bulky files (the 5.7 GB world,
models, the experiments' folders) go to ``--work`` (default: ``embrm-gpu-check`` in the system's
temporary directory).

Sections, each in its own process with its own time limit, so one failing or hanging section
never stops the others (the report says which failed and shows its log's tail):

a. torch and CUDA facts, and the fp32 matrix-product speed of the device (TF32 off, as embrm
   trains).
b. The default experiment (``config.yaml``, tracking disabled) run twice with Snakemake, with
   ``training.device: cpu`` and ``cuda``, in separate folders; then the per-run differences of
   every metric between the two summaries. Without a GPU the second run uses ``auto`` (which
   resolves to the CPU: every difference must then be 0). ``--quick`` runs a tiny grid instead.
c. One run per head (bt-mlp, clf-mlp, clf-lgb) at the study's shapes: the synthetic world of
   ``configs/paper-scale.yaml`` (train 40,000 × 10, test 2,000 × 500, D = 2048, float16), 40,000
   same-prompt random pairs, BT β = 1; each stage a ``python -m embrm`` process as in the
   workflow (``training.scoring: cell``: the train jobs fit, one score job scores all three),
   timed; then seconds per run and the extrapolated cost of the study's 12,960 runs on one GPU.
   clf-lgb is capped at ``LGB_ROUNDS`` boosting rounds and its fit extrapolated per round to the
   1,673 rounds measured at this size on the CPU (docs/paper-scale.md).
d. Stacked against one-by-one training of a study-sized cell's MLP runs (6 BT annotators,
   β ∈ {0.5, 0.7, 1, 3, 5, 10}, × bt-mlp and clf-mlp at 40,000 pairs of the same world) in one
   process: seconds per run each way, agreement of the two (predictions, best epochs), and the
   extrapolated hours of the study's 8,640 MLP runs.
e. The text/hf model stages on tiny random-weight models as the tests build them
   (tests/data/tinymodels.py): last-token and mean-pooled embeddings, reward-model scores and
   sampled generations, on the CPU and on the GPU, compared.

The world of c and d is built in the background while a and b run. ``--quick`` shrinks every
shape so that the whole check runs on a laptop CPU in a few minutes; there, CUDA parts are
reported as skipped. The check stops itself at ``--deadline`` seconds (default 560: it fits a
10-minute command limit).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "workflow"))

import gpu_check_common  # noqa: E402
from gpu_check_common import (  # noqa: E402
    BUDGET,
    DEADLINE,
    ORDER,
    QUICK_BUDGET,
    REPO,
    Section,
    set_environment,
    tail,
)
from gpu_check_experiment import section_a, section_b  # noqa: E402
from gpu_check_scale import section_c, section_d, section_world  # noqa: E402
from gpu_check_text import section_e  # noqa: E402

SECTIONS = {
    "a": section_a,
    "b": section_b,
    "world": section_world,
    "c": section_c,
    "d": section_d,
    "e": section_e,
}


# -- the orchestrator ------------------------------------------------------------------------------
def run_section(name: str, out: Path, work: Path, quick: bool, seconds: float) -> None:
    """In this process: run one section, always leaving ``<name>.json``."""
    section = Section(name, out, work, quick, time.time() + seconds)
    try:
        SECTIONS[name](section)
        section.save(True)
    except BaseException as error:  # the report must say what happened
        traceback.print_exc()
        section.say(f"FAILED: {type(error).__name__}: {error}")
        section.save(False, f"{type(error).__name__}: {error}")
        raise SystemExit(1) from None


def launch(name: str, out: Path, work: Path, quick: bool, seconds: float) -> subprocess.Popen:
    command = [sys.executable, __file__, str(out), "--section", name, "--seconds", str(seconds)]
    command += ["--work", str(work)]
    if quick:
        command.append("--quick")
    log = open(out / f"{name}.log", "w")
    return subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, env=gpu_check_common.ENV, cwd=REPO
    )


def finish(name: str, proc: subprocess.Popen, out: Path, seconds: float) -> dict:
    try:
        proc.wait(timeout=max(seconds, 1))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    path = out / f"{name}.json"
    if path.exists():
        record = json.loads(path.read_text())
    else:
        record = {"section": name, "ok": False, "lines": [], "data": {}}
        record["error"] = f"no result (exit {proc.returncode}; killed at its time limit?)"
        path.write_text(json.dumps(record, indent=1))
    if not record["ok"]:
        record["log_tail"] = tail(out / f"{name}.log")
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default=os.environ.get("OUT") or "gpu_check_out")
    parser.add_argument("--quick", action="store_true", help="small shapes (CPU-sized)")
    parser.add_argument("--sections", default=ORDER, help="which of a-e to run (default all)")
    parser.add_argument("--deadline", type=float, default=None, help="stop after this many s")
    parser.add_argument("--section", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=60, help=argparse.SUPPRESS)
    parser.add_argument(
        "--work",
        help="where worlds, models and experiments go (default: a folder in the system's "
        "temporary directory); OUT_DIR keeps only reports, numbers and logs",
    )
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work or Path(tempfile.gettempdir()) / "embrm-gpu-check").resolve()
    work.mkdir(parents=True, exist_ok=True)
    set_environment(work)
    if args.section:
        run_section(args.section, out, work, args.quick, args.seconds)
        return 0

    budget = QUICK_BUDGET if args.quick else BUDGET
    deadline = time.time() + (args.deadline or (None if args.quick else DEADLINE) or 10**6)
    started = time.time()
    # In the order given (e.g. "aebcd" runs the short text/hf check before the long ones).
    wanted = list(dict.fromkeys(x for x in args.sections if x in ORDER))
    print(
        f"gpu_check: {'quick' if args.quick else 'full'} shapes, sections {''.join(wanted)}, "
        f"results in {out}",
        flush=True,
    )
    records: dict[str, dict] = {}
    for stale in out.glob("*.json"):
        stale.unlink()
    world = None
    if "c" in wanted or "d" in wanted:
        seconds = min(budget["world"], deadline - time.time())
        world = launch("world", out, work, args.quick, seconds)
    for name in wanted:
        left = deadline - time.time()
        if name in "cd" and world is not None:
            records["world"] = finish("world", world, out, min(budget["world"], left))
            world = None
            left = deadline - time.time()
        if left < 10:
            records[name] = {"section": name, "ok": False, "lines": [], "error": "out of time"}
            continue
        seconds = min(budget[name], left - 5)
        proc = launch(name, out, work, args.quick, seconds)
        records[name] = finish(name, proc, out, seconds + 10)
        status = "ok" if records[name]["ok"] else f"FAILED: {records[name].get('error')}"
        print(f"== section {name}: {status} ({time.time() - started:.0f} s so far)", flush=True)
    if world is not None:
        records["world"] = finish("world", world, out, 1)

    report = [f"gpu_check report ({'quick' if args.quick else 'full'} shapes), {out}"]
    for name in ["world", *wanted]:
        record = records.get(name)
        if record is None:
            continue
        state = "ok" if record["ok"] else f"FAILED: {record.get('error')}"
        report.append(f"--- {name}: {state}")
        report += [f"  {line}" for line in record.get("lines", [])]
        if not record["ok"] and record.get("log_tail"):
            report += ["  log tail:"] + [f"    {x}" for x in record["log_tail"].splitlines()]
    report.append(f"total {time.time() - started:.0f} s")
    text = "\n".join(report)
    print(text, flush=True)
    (out / "report.txt").write_text(text + "\n")
    return 0 if all(r["ok"] for r in records.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
