"""One look's findings (docs/analysis-plan.md, "Sequential looks"): every part decided on the
look's seeds by the sequential rule of :mod:`.sequential`, parts decided or stopped at an earlier
look carried with their row, the settings the open parts need, and the look's pages and
decisions (findings.csv, .md, .rst, .html, decisions.json)."""

from __future__ import annotations

import json
from dataclasses import fields

import numpy as np
import pandas as pd

from . import statistics as st
from .plan import Plan, load
from .sequential import (
    DECIDED,
    FUTILE,
    LAST,
    LOOK_COLUMNS,
    OPEN,
    SETTING,
    futility,
    half_widths,
    information,
    nominal_levels,
    spent,
    step,
)

# ---------------------------------------------------------------------------------------------
# The findings table at a look


def part_key(row) -> str:
    return f"{row['world']}|{row['part']}|{row['statement']}"


def look_table(
    summary: pd.DataFrame,
    per_prompt,
    looks,
    seeds_order,
    k: int,
    previous: pd.DataFrame | None = None,
    plan: Plan | None = None,
):
    """The findings at look ``k`` (0-based) and the settings (run without seed) the open parts
    need: the summary restricted to the look's seeds; parts decided or stopped at an earlier
    look (``previous``: that look's table) keep their row."""
    from .part import COLUMNS, Part
    from .resampling import world_prompt_values
    from .table import combine, decide_world, prepare, without_golden_reward

    plan = plan or load()
    metric = plan.metric
    fractions = information(looks)
    seeds = [int(s) for s in seeds_order[: looks[k]]]
    last = k == len(looks) - 1
    frame = prepare(summary[summary["seed"].isin(seeds)], metric)
    carried = {}
    if previous is not None:
        kept = previous[(previous["part"] != "all") & previous["state"].isin([DECIDED, FUTILE])]
        carried = {part_key(row): row for _, row in kept.iterrows()}
    rows, needed, fallbacks = [], set(), {}
    for world, data in frame.groupby("world", sort=True):
        if "source" in data and bool((data["source"] == "preferences").all()):
            rows.extend(without_golden_reward(str(world), plan, metric))
            continue
        data = data[np.isfinite(data["value"])]
        z, why = world_prompt_values(data, metric, per_prompt)
        if z is None:
            fallbacks[str(world)] = why
        decided = decide_world(str(world), data, z, plan, metric)
        claims = [p for p in decided if p.part == "all"]
        for claim in claims:
            parts = [p for p in decided if p.claim == claim.claim and p.part != "all"]
            _sequential(parts, carried, k, looks, plan, last)
            for p in parts:
                if p.extra.get("state") == OPEN and "weights" in p.extra:
                    used = np.flatnonzero((p.extra["weights"] != 0).any(axis=0))
                    needed |= {
                        tuple(
                            str(v) if c != "n" else int(v) for c, v in zip(SETTING, r, strict=True)
                        )
                        for r in data.iloc[used][list(SETTING)].itertuples(index=False)
                    }
            claim.verdict, claim.note = combine(parts)
            claim.seeds = max((p.seeds for p in parts), default=0)
            rows.append(claim)
            rows.extend(parts)
    names = [f.name for f in fields(Part) if f.name != "extra"]
    kept = [*COLUMNS, *LOOK_COLUMNS[6:]]
    records = []
    for r in rows:
        record = {**{n: getattr(r, n) for n in names}, **_look_fields(r)}
        carry = carried.get(part_key(record)) if r.part != "all" else None
        # a part decided or stopped at an earlier look keeps the row of that look
        records.append({c: carry[c] for c in kept} if carry is not None else record)
    table = pd.DataFrame(records)
    table["look"] = k + 1
    table["looks"] = " → ".join(str(n) for n in looks)
    table["seeds_used"] = len(seeds)
    table["information"] = fractions[k]
    table["alpha_spent"] = 2 * float(spent(fractions[k], plan.alpha / 2))
    table["nominal_level"] = float(nominal_levels(fractions, plan.alpha / 2)[k])
    table = table[[*COLUMNS, *LOOK_COLUMNS]]
    table.attrs["prompt_fallback"] = fallbacks
    table.attrs["plan"] = plan
    table.attrs["seeds"] = seeds
    return table, sorted(needed)


def _look_fields(part) -> dict:
    return {
        "state": part.extra.get("state", ""),
        "decided_at_look": part.extra.get("decided_at_look", np.nan),
        "conditional_power": part.extra.get("conditional_power", np.nan),
    }


def _sequential(parts, carried: dict, k: int, looks, plan: Plan, last: bool) -> None:
    """Each tested part's verdict and state at look k (in place), Holm's step-down across the
    claim's parts counting those contradicted at earlier looks."""
    from .part import DEGENERATE_SE

    tested = [p for p in parts if p.verdict != st.NOT_TESTED]
    fractions = information(looks)
    keys = [part_key({"world": p.world, "part": p.part, "statement": p.statement}) for p in tested]
    before = [carried[key]["verdict"] if key in carried else "" for key in keys]
    verdict = np.array([b if b else "" for b in before], dtype=object)
    futile = np.array(
        [key in carried and carried[key]["state"] == FUTILE for key in keys], dtype=bool
    )
    verdict[futile] = st.INCONCLUSIVE  # stopped: no further test, not a rejection
    rejected_before = int(sum(v == st.CONTRADICTED for v in before))
    results = []
    for part in tested:
        usable = "y" in part.extra and np.isfinite(part.se) and part.se > DEGENERATE_SE
        results.append(st.crossed_interval(part.extra["y"]) if usable else None)
    contrasts = [part.extra["contrast"] for part in tested]
    widths = [half_widths(r) if r is not None else None for r in results]
    if tested:
        new = step(
            verdict,
            np.array([p.effect for p in tested]),
            lambda a: np.array([w(a) if w else np.nan for w in widths], dtype=float),
            np.array([r is not None for r in results]),
            np.array([p.threshold for p in tested]),
            np.array([c.distance(plan) for c in contrasts]),
            np.array([c.kind == st.SUPERIORITY for c in contrasts]),
            k,
            fractions,
            plan.alpha,
            rejected_before,
        )
    else:
        new = verdict
    q = float(nominal_levels(fractions, plan.alpha / 2)[k])
    for i, (part, key, result) in enumerate(zip(tested, keys, results, strict=True)):
        if key in carried:
            continue
        contrast = part.extra["contrast"]
        part.p_contradict_holm = float("nan")  # Holm runs across looks: see the nominal levels
        if result is not None:  # the interval at the look's nominal level
            shown = st.crossed_interval(part.extra["y"], confidence=1 - 2 * q)
            part.ci_low, part.ci_high = float(shown["ci_low"]), float(shown["ci_high"])
            part.df = float(shown["df"])
        if new[i]:
            part.verdict = str(new[i])
            part.extra.update(state=DECIDED, decided_at_look=k + 1)
            continue
        part.verdict = st.INCONCLUSIVE
        if last:
            part.extra.update(state=LAST)
            continue
        power = (
            float(
                futility(
                    result,
                    k,
                    looks,
                    part.threshold,
                    contrast.distance(plan),
                    contrast.kind == st.SUPERIORITY,
                    plan,
                    len(tested),
                )
            )
            if result is not None
            else 0.0
        )
        part.extra["conditional_power"] = power
        if power < plan.futility_power:
            part.extra.update(state=FUTILE, decided_at_look=k + 1)
        else:
            part.extra.update(state=OPEN)
    for part, key in zip(tested, keys, strict=True):
        if key in carried:  # verdict of the look it was decided at (combine() reads it)
            part.verdict = carried[key]["verdict"]
            part.extra.update(state=carried[key]["state"])


def decisions(table: pd.DataFrame, needed, runs, looks, k: int) -> dict:
    """What the next look needs to know: whether the looks are done, the open parts and the
    settings they need, the runs this look stood on."""
    parts = table[(table["part"] != "all") & (table["verdict"] != st.NOT_TESTED)]
    open_ = parts[parts["state"] == OPEN]
    done = open_.empty or k == len(looks) - 1
    return {
        "look": k + 1,
        "looks": [int(n) for n in looks],
        "seeds": table.attrs.get("seeds", []),
        "done": bool(done),
        "open": [part_key(row) for _, row in open_.iterrows()],
        "needed": [] if done else [list(s) for s in needed],
        "runs": sorted(runs),
    }


def markdown_header(table: pd.DataFrame) -> str:
    """The look's state, for the top of findings.md."""
    first = table.iloc[0]
    parts = table[(table["part"] != "all") & (table["verdict"] != st.NOT_TESTED)]
    lines = [
        f"## Look {int(first['look'])} of the sequential plan (seeds per look {first['looks']})",
        "",
        f"Seeds used: {int(first['seeds_used'])} ({', '.join(map(str, table.attrs.get('seeds', [])))}); "
        f"information fraction {first['information']:.3f}; two-sided alpha spent so far "
        f"{first['alpha_spent']:.4g} of {(table.attrs.get('plan') or load()).alpha:g} "
        f"(Lan-DeMets O'Brien-Fleming); this look's one-sided nominal level "
        f"{first['nominal_level']:.3g}: the intervals below are at "
        f"{1 - 2 * first['nominal_level']:.4%}, not 95%, and a part is decided by them; "
        "'contradicted' runs Holm's rule across the looks (docs/analysis-plan.md), so the Holm "
        "column is empty.",
        "",
        "| part | statement | state | verdict | at look | conditional power |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for _, row in parts.iterrows():
        at = "" if not np.isfinite(row["decided_at_look"]) else str(int(row["decided_at_look"]))
        cp = row["conditional_power"]
        lines.append(
            f"| {row['part']} | {str(row['statement']).replace('|', chr(92) + '|')} | "
            f"{row['state']} | {row['verdict']} | {at} | "
            f"{'' if not np.isfinite(cp) else f'{cp:.2f}'} |"
        )
    return "\n".join([*lines, ""])


TEXT = (
    "world",
    "claim",
    "part",
    "statement",
    "test",
    "metric",
    "plan_version",
    "plan_sha256",
    "limited_by",
    "interval",
    "verdict",
    "note",
    "looks",
    "state",
)


def read(path) -> pd.DataFrame:
    """A look's findings.csv as written (text columns as text: plan version "2.2", claim "1")."""
    table = pd.read_csv(path, dtype={c: str for c in TEXT}, keep_default_na=False, na_values=[""])
    for column in TEXT:
        if column in table:
            table[column] = table[column].fillna("")
    return table


def write(summary, per_prompt, looks, seeds_order, k, runs, out: dict, previous_csv=None):
    """One look's findings.csv, .md, .rst, .html and decisions.json, written atomically."""
    from ..io import atomic_path
    from .pages import grid_meta, html, markdown, rst

    previous = None
    if previous_csv is not None:
        previous = read(previous_csv)
    table, needed = look_table(summary, per_prompt, looks, seeds_order, k, previous)
    meta = grid_meta(summary[summary["seed"].isin(table.attrs["seeds"])])
    texts = {
        "md": markdown_header(table) + "\n" + markdown(table, meta),
        "rst": rst(table),
        "html": html(table, meta),
        "decisions": json.dumps(decisions(table, needed, runs, looks, k), indent=1),
    }
    with atomic_path(out["csv"]) as tmp:
        table.to_csv(tmp, index=False)
    for name, text in texts.items():
        with atomic_path(out[name]) as tmp:
            tmp.write_text(text)
    return table
