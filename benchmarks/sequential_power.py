"""Sequential looks by simulation from the crossed model: error rates, power and seeds run.

Draws per-seed, per-prompt contrast values with given standard deviations of seed, prompt and
seed × prompt (by default the median components of the default experiment's parts,
docs/findings.md), plants the effect at multiples of the plan's smallest effect of interest,
and runs the plan's sequential procedure (embrm.findings.sequential.run_looks, the code of the
findings) against the fixed design at the last look's seeds:

    python benchmarks/sequential_power.py --looks 5 10 20 --reps 2000

Columns: how often each verdict is reached over all looks, the mean number of seeds a part
used (the seeds of the look it was decided or stopped at), and the fixed design's replication
rate at the last look's seeds.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "workflow"))

from embrm.findings import load
from embrm.findings import sequential as S
from embrm.findings import statistics as st


def simulate(theta, sds, seeds, prompts, reps, rng):
    s_sd, p_sd, e_sd = sds
    return (
        theta
        + rng.normal(0, s_sd, (reps, 1, seeds, 1))
        + rng.normal(0, p_sd, (reps, 1, 1, prompts))
        + rng.normal(0, e_sd, (reps, 1, seeds, prompts))
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--looks", type=int, nargs="+", default=[5, 10, 20])
    parser.add_argument("--sds", type=float, nargs=3, default=[0.034, 0.067, 0.297])
    parser.add_argument("--prompts", type=int, default=250)
    parser.add_argument("--multiples", type=float, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--reps", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    plan = load()
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    print(
        f"looks {args.looks}, sd seed/prompt/seed×prompt {args.sds}, {args.prompts} prompts, "
        f"{args.reps} experiments a row; plan {plan.version}"
    )
    print(
        "| effect | replicated | contradicted | negligible | stopped for futility | "
        "mean seeds | fixed design at last look: replicated |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for multiple in args.multiples:
        theta = multiple * plan.sesoi
        y = simulate(theta, args.sds, args.looks[-1], args.prompts, args.reps, rng)
        verdict, at, stopped = S.run_looks(y, args.looks, 0.0, plan.sesoi, True, plan)
        seeds = np.asarray([args.looks[-1], *args.looks])  # index 0: ran to the last look
        seeds_used = seeds[np.maximum(at, stopped)]
        fixed = st.crossed_interval(y[:, 0])
        print(
            f"| {multiple:g} × sesoi | {(verdict == st.REPLICATED).mean():.3f} | "
            f"{(verdict == st.CONTRADICTED).mean():.3f} | {(verdict == st.NEGLIGIBLE).mean():.3f} | "
            f"{(stopped > 0).mean():.3f} | {seeds_used.mean():.1f} | {(fixed['ci_low'] > 0).mean():.3f} |"
        )
    print(f"{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
