"""Power and error rates of the findings' tests, by simulation from the crossed model.

Reads the variance components of an experiment's tested parts (findings.csv: ``var_seed``,
``var_prompt``, ``var_interaction``, ``prompts``), takes their median over parts (or the
quartiles with ``--spread``), draws per-seed, per-prompt contrast values from the crossed model
with the effect planted at multiples of the plan's smallest effect of interest, and prints how
often the plan's rules give each verdict at several numbers of seeds:

    python benchmarks/findings_power.py results/<experiment>/findings.csv --seeds 5 10 20 40

The effects planted are the plan's, never the experiment's: the table says what the design can
decide, not what it found.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "workflow"))

from embrm.findings import load
from embrm.findings import statistics as st


def simulate(theta, var, seeds, prompts, reps, rng):
    s_sd, p_sd, e_sd = np.sqrt(var)
    return (
        theta
        + rng.normal(0, s_sd, (reps, seeds, 1))
        + rng.normal(0, p_sd, (reps, 1, prompts))
        + rng.normal(0, e_sd, (reps, seeds, prompts))
    )


def rates(theta, var, seeds, prompts, reps, plan, rng) -> dict:
    y = simulate(theta, var, seeds, prompts, reps, rng)
    out = st.crossed_interval(y)
    p = st.one_sided_p(out, 0.0, upper=False)
    verdict = st.verdicts(
        out["ci_low"], out["ci_high"], p, 0.0, st.SUPERIORITY, plan.sesoi, plan.alpha, out["se"]
    )
    covered = (out["ci_low"] <= theta) & (theta <= out["ci_high"])
    return {
        "replicated": (verdict == st.REPLICATED).mean(),
        "negligible": (verdict == st.NEGLIGIBLE).mean(),
        "contradicted": (verdict == st.CONTRADICTED).mean(),
        "coverage": covered.mean(),
        "half-width": float(np.median(out["ci_high"] - out["ci_low"]) / 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("findings", type=Path, help="results/<experiment>/findings.csv")
    parser.add_argument("--seeds", type=int, nargs="+", default=[5, 10, 20, 40])
    parser.add_argument("--effects", type=float, nargs="+", default=[0, 0.5, 1, 2, 3])
    parser.add_argument("--reps", type=int, default=4000)
    args = parser.parse_args(argv)
    if not args.findings.is_file():
        raise SystemExit(f"{args.findings}: not found (expected an experiment's findings.csv)")
    table = pd.read_csv(args.findings)
    needed = ["var_seed", "var_prompt", "var_interaction", "prompts"]
    if any(c not in table for c in needed):
        raise SystemExit(f"{args.findings}: no variance components (written by an older plan)")
    tested = table.dropna(subset=needed)
    tested = tested[tested["prompts"] > 1]
    if tested.empty:
        raise SystemExit(f"{args.findings}: no part has an interval over test prompts")
    plan = load()
    var = tested[["var_seed", "var_prompt", "var_interaction"]].median().to_numpy()
    prompts = int(tested["prompts"].median())
    print(
        f"median components over {len(tested)} parts: sd seed {np.sqrt(var[0]):.4f}, "
        f"prompt {np.sqrt(var[1]):.4f}, seed × prompt {np.sqrt(var[2]):.4f}; {prompts} prompts; "
        f"smallest effect of interest {plan.sesoi:g}; {args.reps} simulated experiments a cell"
    )
    rng = np.random.default_rng(0)
    rows = []
    for seeds in args.seeds:
        for k in args.effects:
            result = rates(k * plan.sesoi, var, seeds, prompts, args.reps, plan, rng)
            rows.append({"seeds": seeds, "true effect": f"{k:g} × sesoi", **result})
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
