"""The two training protocols side by side: cost per run, and results on a reduced default grid.

    python benchmarks/protocols.py            # cost: each head under both protocols, same data
    python benchmarks/protocols.py --grid     # reduced grid through the stages, both protocols
    python benchmarks/protocols.py --grid --heads bt-mlp,clf-mlp --jobs 15   # part, in parallel
    python benchmarks/protocols.py --report a/grid.json b/grid.json          # merge parts
    python benchmarks/protocols.py --compare results/default results/study-protocol

Cost mode trains bt-mlp, clf-mlp and clf-lgb under ``protocol: embrm`` and ``protocol: study`` on
one annotated set of the default world of config.yaml (cross-random, 2,000 pairs, β = 1, seed 0)
and prints, per run, the training seconds, the epochs (boosting rounds for clf-lgb) and the
optimizer steps (rounds for clf-lgb).

Grid mode runs the pipeline's own stages (world, pairs, annotation, training, evaluation) on the
default world for same-random and cross-random pairs × β ∈ {1, 10} × ``--quantities`` (2,000) ×
``--seeds`` (0, 1, 2) × the three heads × both protocols, writes every run's metrics.json under
``--workdir``, prints BoN-500 gain, Spearman, epochs and seconds per setting, and tests the study's
findings under each protocol with paired t-tests over seeds (95% intervals).

Compare mode reads two finished experiments (each a results folder with summary.csv and
findings.csv, or a summary.csv itself): typically the default experiment of config.yaml
(``protocol: embrm``) and configs/study-protocol.yaml (the same world and grid under
``protocol: study``). Runs are paired by (world, design, n, seed, annotator, head), so both sides
saw the same pairs and labels (checked on the annotation statistics). It prints, as Markdown, per
design × annotator (β) × n × head: each protocol's BoN gain at the largest N, Spearman, epochs
(boosting rounds for clf-lgb) with optimizer steps, fit seconds and train-job CPU seconds per run
(means over seeds), and the paired difference first − second of gain and Spearman with its 95%
t-interval over seeds; the cost per run of each head on the same data; and the verdict of every
claim and part of each experiment's findings.csv side by side. A folder without summary.csv (an
experiment still running) is read from the metrics.json of its finished runs, and says so.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "workflow"))

import yaml  # noqa: E402
from embrm import stages  # noqa: E402
from embrm.heads.mlp import MLPHead  # noqa: E402

HEADS = ("bt-mlp", "clf-mlp", "clf-lgb")
PROTOCOLS = ("embrm", "study")
# Head parameters per protocol label; "embrm-1step" is embrm's protocol with the schedule it had
# before min_steps_per_epoch (one full-batch step per epoch below 10,240 examples), MLPs only.
VARIANTS = {
    "embrm": {"protocol": "embrm"},
    "study": {"protocol": "study"},
    "embrm-1step": {"protocol": "embrm", "min_steps_per_epoch": 1},
}


def steps_of(info: dict, curves: list[dict], params: dict, n_pairs: int) -> int:
    """Optimizer steps (boosting rounds) of one single-member run."""
    epochs = info["epochs_run"][0]
    if params["type"] == "clf-lgb":
        return epochs
    objective_examples = n_pairs if params["type"] == "bt-mlp" else 2 * n_pairs
    if params["protocol"] == "study":
        if params["type"] == "bt-mlp":
            objective_examples = 2 * n_pairs  # both orders
        n_train = objective_examples - math.ceil(params["val_fraction"] * objective_examples)
        return epochs * math.ceil(n_train / min(params["batch_size"], n_train))
    n_train_pairs = n_pairs - min(round(params["val_fraction"] * n_pairs), n_pairs - 1)
    per_pair = 1 if params["type"] == "bt-mlp" else 2
    return epochs * MLPHead.epoch_schedule(params, n_train_pairs * per_pair)[1]


class Pipeline:
    """The stages on the default world, cached under ``workdir``."""

    def __init__(self, workdir: Path, threads: int):
        # Imported up front so that no run's training time includes a library's import.
        import torch  # noqa: F401

        try:
            import lightgbm  # noqa: F401
        except ImportError:  # a machine that runs only the MLP heads
            pass

        # config.yaml spells out the world and evaluation settings in full, so it is read as
        # plain YAML here (no schema validation needed, nor its dependencies).
        self.config = yaml.safe_load((REPO / "config.yaml").read_text())
        self.workdir, self.threads = workdir, threads
        self.world = workdir / "world"
        spec = self.config["worlds"]["synthetic"]
        marker = self.world / "spec.json"
        if not (marker.is_file() and json.loads(marker.read_text()) == spec):
            stages.build_world(spec, self.world, threads=threads, device="cpu")
            marker.write_text(json.dumps(spec))

    def annotated(self, design: str, n: int, seed: int, beta: float) -> tuple[Path, Path, Path]:
        cell = self.workdir / design / f"n{n}" / f"seed{seed}"
        pairs = cell / "pairs.npz"
        if not pairs.is_file():
            stages.make_pairs(self.world, design, n, seed, 2000, pairs)
        labels, stats = cell / f"bt-{beta:g}" / "labels.npz", cell / f"bt-{beta:g}" / "stats.json"
        if not labels.is_file():
            spec = {"model": "bt", "beta": beta}
            stages.annotate(self.world, pairs, spec, "std", seed, labels, stats)
        return pairs, labels, stats

    def run(self, design, n, seed, beta, head, protocol, evaluate=True) -> dict:
        pairs, labels, stats = self.annotated(design, n, seed, beta)
        out = labels.parent / f"{head}-{protocol}"
        metrics = out / "metrics.json"
        if metrics.is_file():
            return json.loads(metrics.read_text())
        spec = {"type": head, "members": 1, "params": VARIANTS[protocol]}
        stages.train(
            self.world, pairs, labels, spec, seed, threads=self.threads, device="cpu",
            model_dir=out / "model", predictions_out=out / "predictions.npy",
            curves_out=out / "curves.csv", info_out=out / "train.json",
        )  # fmt: skip
        if not evaluate:
            return {"training": json.loads((out / "train.json").read_text())}
        run = {"design": design, "quantity": n, "seed": seed, "beta": beta, "head": head,
               "protocol": protocol}  # fmt: skip
        stages.evaluate(
            self.world, out / "predictions.npy", pairs, labels, stats, out / "train.json",
            out / "curves.csv", run, self.config["evaluation"], metrics,
        )  # fmt: skip
        return json.loads(metrics.read_text())


def cost(args) -> None:
    pipeline = Pipeline(args.workdir, args.threads)
    n = 2000
    print(f"default world, cross-random, {n} pairs, β = 1, seed 0, {args.threads} thread(s)")
    print(f"{'head':8} {'protocol':8} {'seconds':>8} {'epochs':>7} {'steps':>6}")
    for head, protocol in itertools.product(HEADS, PROTOCOLS):
        result = pipeline.run("cross-random", n, 0, 1.0, head, protocol, evaluate=False)
        info = result["training"]
        steps = steps_of(info, [], info["head"], n)
        print(
            f"{head:8} {protocol:8} {info['fit_seconds']:8.2f} {info['epochs_run'][0]:7d} "
            f"{steps:6d}"
        )


def interval(diffs: np.ndarray) -> tuple[float, float, float, float]:
    """Mean, 95% t-interval and paired t-test p-value of per-seed differences (an undefined
    interval with fewer than two seeds; a zero-width one when every seed differs alike)."""
    from scipy import stats

    mean = float(np.mean(diffs))
    if diffs.size < 2:
        return mean, float("nan"), float("nan"), float("nan")
    if np.all(diffs == diffs[0]):
        return mean, mean, mean, float("nan")
    half = float(stats.t.ppf(0.975, diffs.size - 1) * stats.sem(diffs))
    p = float(stats.ttest_1samp(diffs, 0.0).pvalue)
    return mean, mean - half, mean + half, p


def verdict(low: float, high: float, positive: str, negative: str) -> str:
    if low > 0:
        return positive
    if high < 0:
        return negative
    return "inconclusive"


def grid_row(args, setting) -> dict:
    design, n, beta, seed, head, protocol = setting
    result = Pipeline(args.workdir, args.threads).run(design, n, seed, beta, head, protocol)
    metrics, training = result["metrics"]["mean"], result["training"]
    return {
        "design": design, "quantity": n, "beta": beta, "seed": seed, "head": head,
        "protocol": protocol, "gain": metrics["bon_gain"], "spearman": metrics["spearman"],
        "epochs": training["epochs_run"][0], "best_epoch": training["best_epoch"][0],
        "seconds": training["fit_seconds"], "steps": steps_of(training, [], training["head"], n),
    }  # fmt: skip


def grid(args) -> None:
    pipeline = Pipeline(args.workdir, args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    quantities = [int(q) for q in args.quantities.split(",")]
    heads = [h for h in args.heads.split(",") if h]
    designs, betas = ("same-random", "cross-random"), (1.0, 10.0)
    protocols = [p for p in args.protocols.split(",") if p]
    settings = list(itertools.product(designs, quantities, betas, seeds, heads, protocols))
    for design, n, beta, seed, *_ in settings:
        pipeline.annotated(design, n, seed, beta)  # pairs and labels first, once
    rows = []
    if args.jobs > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("spawn")  # no fork after torch is loaded
        with ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
            for row in pool.map(grid_row, [args] * len(settings), settings):
                rows.append(row)
                print(json.dumps(row), flush=True)
    else:
        for setting in settings:
            rows.append(grid_row(args, setting))
            print(json.dumps(rows[-1]), flush=True)
    (args.workdir / "grid.json").write_text(json.dumps(rows, indent=2) + "\n")
    report(rows, seeds)


def report(rows: list[dict], seeds: list[int]) -> None:
    import pandas as pd

    frame = pd.DataFrame(rows)
    present = [h for h in HEADS if h in set(frame["head"])]
    labels = [p for p in VARIANTS if p in set(frame["protocol"])]
    keys = ["design", "quantity", "beta", "head", "protocol"]
    table = frame.groupby(keys).agg(
        gain=("gain", "mean"), gain_sd=("gain", "std"), spearman=("spearman", "mean"),
        spearman_sd=("spearman", "std"), epochs=("epochs", "mean"), steps=("steps", "mean"),
        seconds=("seconds", "mean"),
    )  # fmt: skip
    print(f"\nmeans over {len(seeds)} seeds")
    print(table.round(3).to_string())

    def values(protocol, head, **where):
        part = frame[(frame["protocol"] == protocol) & (frame["head"] == head)]
        for key, value in where.items():
            part = part[part[key] == value]
        return part.sort_values("seed")

    for other_label in [p for p in labels if p != "embrm"]:
        compare(frame, present, other_label, values)
    print("\nfindings (paired over seeds; mean difference [95% interval], p)")
    findings(frame, present, labels, values)


def compare(frame, present, other_label, values) -> None:
    print(f"\nprotocols compared (paired over seeds, same pairs and labels): embrm − {other_label}")
    for design, n, beta in itertools.product(
        sorted(set(frame["design"])), sorted(set(frame["quantity"])), sorted(set(frame["beta"]))
    ):
        for head in present:
            where = {"design": design, "quantity": n, "beta": beta}
            mine, theirs = values("embrm", head, **where), values(other_label, head, **where)
            if mine.empty or theirs.empty:
                continue
            cells = []
            for metric in ("gain", "spearman"):
                d = mine[metric].to_numpy() - theirs[metric].to_numpy()
                mean, low, high, _ = interval(d)
                cells.append(f"{metric} {mean:+.3f} [{low:+.3f}, {high:+.3f}]")
            print(f"  {design} n={n} β={beta:g} {head}: " + "; ".join(cells))


def findings(frame, present, labels, values) -> None:
    for protocol in labels:
        print(f"\nprotocol {protocol}")
        for design, n, beta in itertools.product(
            sorted(set(frame["design"])), sorted(set(frame["quantity"])), sorted(set(frame["beta"]))
        ):
            bt = values(protocol, "bt-mlp", design=design, quantity=n, beta=beta)
            for clf in [h for h in present if h.startswith("clf") and "bt-mlp" in present]:
                other = values(protocol, clf, design=design, quantity=n, beta=beta)
                for metric in ("gain", "spearman"):
                    d = other[metric].to_numpy() - bt[metric].to_numpy()
                    mean, low, high, p = interval(d)
                    print(
                        f"  F1 {design} n={n} β={beta:g}: {clf} − bt-mlp {metric} {mean:+.3f} "
                        f"[{low:+.3f}, {high:+.3f}] p={p:.3f} → "
                        f"{verdict(low, high, clf + ' better', 'bt-mlp better')}"
                    )
        for n in sorted(set(frame["quantity"])):
            for design in sorted(set(frame["design"])):
                # F2: drop in gain from β = 10 to β = 1, CLF minus BT (negative: CLF degrades less)
                drops = {}
                for head in present:
                    hi = values(protocol, head, design=design, quantity=n, beta=10.0)
                    lo = values(protocol, head, design=design, quantity=n, beta=1.0)
                    drops[head] = hi["gain"].to_numpy() - lo["gain"].to_numpy()
                for clf in [h for h in present if h.startswith("clf") and "bt-mlp" in present]:
                    mean, low, high, p = interval(drops["bt-mlp"] - drops[clf])
                    print(
                        f"  F2 {design} n={n}: gain lost from β=10 to β=1, bt-mlp − {clf} "
                        f"{mean:+.3f} [{low:+.3f}, {high:+.3f}] p={p:.3f} → "
                        f"{verdict(low, high, clf + ' degrades less', 'bt-mlp degrades less')}"
                    )
            for head, beta in itertools.product(present, sorted(set(frame["beta"]))):
                cross = values(protocol, head, design="cross-random", quantity=n, beta=beta)
                same = values(protocol, head, design="same-random", quantity=n, beta=beta)
                if cross.empty or same.empty:
                    continue
                mean, low, high, p = interval(cross["gain"].to_numpy() - same["gain"].to_numpy())
                print(
                    f"  F3 n={n} β={beta:g} {head}: cross − same gain {mean:+.3f} "
                    f"[{low:+.3f}, {high:+.3f}] p={p:.3f} → "
                    f"{verdict(low, high, 'cross better', 'same better')}"
                )
        seconds = frame[frame["protocol"] == protocol]["seconds"]
        print(f"  F4 cost: {seconds.mean():.2f} s per run on average, {seconds.sum():.0f} s in all")


# -- compare mode: two finished experiments ---------------------------------------------------
# Two runs are the same run under two protocols when these agree (heads of one cell share pairs
# and labels, so the two experiments' runs of one key saw the same data).
PAIR_KEYS = ["world", "design", "n", "seed", "annotator", "head"]
CELL_KEYS = ["world", "design", "annotator", "n", "head"]
# summary.csv columns compared: bon_gain is the Best-of-N gain at the largest N (bon_n_max);
# epochs counts the curve rows of a run (boosting rounds for clf-lgb), steps its optimizer steps;
# fit_seconds is training, validation included.
MEASURES = ["bon_gain", "spearman", "epochs", "steps", "fit_seconds"]
DIFFERENCES = ["bon_gain", "spearman"]
# Annotation statistics of the training pairs: equal on both sides when they share pairs and labels.
SAME_DATA = ["annotation_realized_error_rate", "annotation_mean_abs_dr"]


def steps_per_run(summary) -> np.ndarray:
    """Optimizer steps of each run (boosting rounds for heads without minibatches): epochs times
    the steps per epoch of the schedule the run's head used (``embrm.summary.steps_per_epoch``)."""
    from embrm.summary import steps_per_epoch

    params = [c for c in summary.columns if c.startswith("head_param_")]
    steps = []
    for row in summary.to_dict("records"):
        head = {c.removeprefix("head_param_"): row[c] for c in params if row[c] == row[c]}
        head["type"] = row.get("head_type", row["head"])
        per_epoch = steps_per_epoch({"head": head, "best_epoch": [1]}, int(row["n"]))
        steps.append(row["epochs"] * (per_epoch or 1))
    return np.asarray(steps, dtype=float)


def train_cpu(folder: Path, summary) -> np.ndarray:
    """CPU seconds of each run's train job (Snakemake's benchmark file; NaN where absent). Unlike
    fit seconds (wall time) they do not grow when other work shares the cores; Snakemake samples
    them (every 30 s after a job's first 15 s), so they can miss the end of a long job."""
    import pandas as pd

    seconds = []
    for row in summary[["world", "design", "n", "seed", "annotator", "head"]].itertuples():
        path = folder / "benchmarks" / "train" / row.world / row.design / f"n{row.n}"
        path = path / f"seed{row.seed}" / row.annotator / f"{row.head}.tsv"
        seconds.append(
            pd.read_csv(path, sep="\t")["cpu_time"].iloc[0] if path.is_file() else np.nan
        )
    return np.asarray(seconds, dtype=float)


def read_experiment(path: Path):
    """(summary, findings or None, a line saying what was read) of one experiment.

    ``path`` is a results folder or a summary.csv. A folder without summary.csv (an experiment
    still running) is summarized from the metrics.json of its finished runs.
    """
    import pandas as pd
    from embrm.errors import DataError
    from embrm.summary import build_summary

    folder, table = (path.parent, path) if path.suffix == ".csv" else (path, path / "summary.csv")
    if table.is_file():
        summary = pd.read_csv(table)
        note = f"`{table}`: {len(summary)} runs"
    elif folder.is_dir() and (files := sorted(folder.glob("runs/**/metrics.json"))):
        summary = build_summary(files)
        note = (
            f"`{folder}`: no summary.csv yet; {len(summary)} finished runs read from metrics.json"
        )
    else:
        raise DataError(
            f"{path}: expected an experiment's results folder (with summary.csv or "
            "runs/**/metrics.json) or a summary.csv"
        )
    needed = [*PAIR_KEYS, *MEASURES, "bon_n_max"]
    missing = [c for c in needed if c != "steps" and c not in summary.columns]
    if missing:
        raise DataError(f"{table}: lacks column(s) {', '.join(missing)} of embrm's summary table")
    if summary.duplicated(PAIR_KEYS).any():
        raise DataError(f"{table}: several rows share one ({', '.join(PAIR_KEYS)})")
    # One copy first: summaries built column by column are fragmented, and assign warns.
    summary = summary.copy().assign(
        steps=steps_per_run(summary), train_cpu_seconds=train_cpu(folder, summary)
    )
    findings_csv = folder / "findings.csv"
    findings = None
    if findings_csv.is_file():
        findings = pd.read_csv(findings_csv, dtype={"claim": str, "world": str, "part": str})
    return summary, findings, note


def protocol_label(summary) -> str:
    """The protocol every head of an experiment trained under (embrm's when not recorded)."""
    if "head_param_protocol" not in summary:
        return "embrm"
    values = sorted(set(summary["head_param_protocol"].fillna("embrm").astype(str)))
    return values[0] if len(values) == 1 else "mixed (" + ", ".join(values) + ")"


def _number(value: float, digits: int = 3, sign: bool = False) -> str:
    if value != value:  # NaN
        return "n/a"
    text = f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"
    return text.replace("-", "−")


def _difference(diffs: np.ndarray) -> str:
    """Mean [95% interval]; bold when the interval excludes 0 (otherwise inconclusive)."""
    mean, low, high, _ = interval(diffs)
    if low != low:
        return f"{_number(mean, sign=True)} ({diffs.size} seed)"
    text = f"{_number(mean, sign=True)} [{_number(low, sign=True)}, {_number(high, sign=True)}]"
    return f"**{text}**" if verdict(low, high, "+", "−") != "inconclusive" else text


def _markdown(header: list[str], rows: list[list]) -> list[str]:
    def line(cells) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return [line(header), "|" + "---|" * len(header)] + [line(row) for row in rows]


def paired_runs(first, second):
    """One row per run present in both experiments, measures suffixed _a (first) and _b."""
    import pandas as pd
    from embrm.errors import DataError

    columns = [*MEASURES, "train_cpu_seconds"]
    columns += [c for c in SAME_DATA if c in first and c in second]
    extra = ["beta"] if "beta" in first else []
    merged = pd.merge(
        first[PAIR_KEYS + columns + extra], second[PAIR_KEYS + columns],
        on=PAIR_KEYS, suffixes=("_a", "_b"),
    )  # fmt: skip
    for column in SAME_DATA:
        if f"{column}_a" not in merged:
            continue
        a, b = merged[f"{column}_a"].to_numpy(float), merged[f"{column}_b"].to_numpy(float)
        differ = ~np.isclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True)
        if differ.any():
            run = merged.loc[differ, PAIR_KEYS].iloc[0].to_dict()
            raise DataError(
                f"{column} differs between the experiments in {int(differ.sum())} paired runs "
                f"(first: {run}): they did not see the same pairs and labels, so their runs "
                "cannot be paired"
            )
    return merged


def compare_experiments(first_path: Path, second_path: Path) -> str:
    """The Markdown report of compare mode (first − second)."""
    first, first_findings, first_note = read_experiment(first_path)
    second, second_findings, second_note = read_experiment(second_path)
    a, b = protocol_label(first), protocol_label(second)
    if a == b:
        a, b = f"{a} (first)", f"{b} (second)"
    merged = paired_runs(first, second)
    n_max = sorted(set(first["bon_n_max"]) | set(second["bon_n_max"]))
    gain = "BoN-" + "/".join(str(int(n)) for n in n_max) + " gain"
    seeds = sorted(set(merged["seed"]))
    lines = [
        f"## Protocols compared: {a} − {b}",
        "",
        f"- {a}: {first_note}",
        f"- {b}: {second_note}",
        f"- paired runs (same world, design, n, seed, annotator, head; same pairs and labels): "
        f"{len(merged)}; seeds {', '.join(str(int(s)) for s in seeds)}; only in {a}: "
        f"{len(first) - len(merged)}, only in {b}: {len(second) - len(merged)}",
    ]
    for label, summary in ((a, first), (b, second)):
        if "status" in summary:
            bad = summary[summary["status"].astype(str) != "ok"]
            if len(bad):
                names = "; ".join(
                    f"{r.design} n={r.n} {r.annotator} {r.head} seed {r.seed}: {r.status}"
                    for r in bad.itertuples()
                )
                lines.append(f"- degenerate runs under {label} (kept here): {names}")
    lines += [
        "",
        f"Means over the paired seeds; Δ = {a} − {b}, paired by seed: mean [95% t-interval over "
        "seeds]. **Bold**: the interval excludes 0; otherwise the difference is inconclusive. "
        "Fit s: wall seconds of training; job CPU s: CPU seconds of the whole train job.",
        "",
    ]
    several_worlds = merged["world"].nunique() > 1
    header = [
        *(["world"] if several_worlds else []), "design", "annotator", "n", "head", "seeds",
        f"{gain} {a}", f"{gain} {b}", f"Δ {gain}", f"Spearman {a}", f"Spearman {b}",
        "Δ Spearman", f"epochs (steps) {a}", f"epochs (steps) {b}", f"fit s (job CPU s) {a}",
        f"fit s (job CPU s) {b}",
    ]  # fmt: skip
    rows = []
    for key, cell in merged.sort_values("seed").groupby(CELL_KEYS, sort=True):
        world, design, annotator, n, head = key
        mean = cell[[f"{m}_{s}" for m in MEASURES for s in "ab"]].mean()
        row = [*([world] if several_worlds else []), design, annotator, int(n), head, len(cell)]
        for measure in DIFFERENCES:
            diffs = (cell[f"{measure}_a"] - cell[f"{measure}_b"]).to_numpy(float)
            row += [_number(mean[f"{measure}_a"]), _number(mean[f"{measure}_b"])]
            row.append(_difference(diffs))
        row += [
            f"{_number(mean[f'epochs_{s}'], 1)} ({_number(mean[f'steps_{s}'], 0)})" for s in "ab"
        ]
        for side in "ab":
            cpu = cell[f"train_cpu_seconds_{side}"].mean()
            row.append(f"{_number(mean[f'fit_seconds_{side}'], 1)} ({_number(cpu, 1)})")
        rows.append(row)
    lines += _markdown(header, rows)

    lines += [
        "",
        "### Cost per run on the same data (means over the paired runs)",
        "",
        "Fit seconds: wall time of training, validation included; other work sharing the cores "
        "inflates them. Job CPU seconds: the whole train job (process start and data loading "
        "included) from Snakemake's benchmark files, which sample a job every 0.5 s for its "
        "first 15 s and every 30 s after, so a longer job's last seconds can go uncounted: a "
        "lower bound for long jobs.",
        "",
    ]
    rows = []
    for head, part in [*merged.groupby("head", sort=True), ("all", merged)]:
        sa, sb = part["fit_seconds_a"].mean(), part["fit_seconds_b"].mean()
        ca, cb = part["train_cpu_seconds_a"].mean(), part["train_cpu_seconds_b"].mean()
        rows.append([
            head, len(part), _number(part["epochs_a"].mean(), 1),
            _number(part["epochs_b"].mean(), 1), _number(sa, 1), _number(sb, 1),
            _number(sb / sa, 1) + "×", _number(ca, 1), _number(cb, 1), _number(cb / ca, 1) + "×",
        ])  # fmt: skip
    header = ["head", "runs", f"epochs {a}", f"epochs {b}", f"fit s {a}", f"fit s {b}",
              f"{b} / {a}", f"job CPU s {a}", f"job CPU s {b}", f"{b} / {a}"]  # fmt: skip
    lines += _markdown(header, rows)

    lines += [
        "",
        "### The study's findings under each protocol (each experiment's findings.csv)",
        "",
    ]
    lines += findings_side_by_side(first_findings, second_findings, a, b)
    return "\n".join(lines) + "\n"


def findings_side_by_side(first, second, a: str, b: str) -> list[str]:
    """Per claim, then per tested part: each experiment's verdict (and effect, interval)."""
    import pandas as pd

    missing = [label for label, table in ((a, first), (b, second)) if table is None]
    if missing:
        return [f"findings.csv absent for {', '.join(missing)} (experiment not finished)."]
    keys = ["world", "claim", "part", "statement"]
    # Suffix every column on both sides: the two tables need not have the same columns (a
    # findings.csv of the first plan has bootstrap bounds, a later one does not).
    first, second = (
        table.rename(columns={c: f"{c}_{side}" for c in table.columns if c not in keys})
        for table, side in ((first, "a"), (second, "b"))
    )
    merged = pd.merge(first, second, on=keys, how="outer", sort=False)
    several_worlds = merged["world"].nunique() > 1

    def cell(row, side: str) -> str:
        verdict_ = row[f"verdict_{side}"]
        if verdict_ != verdict_:
            return "absent"
        if row["part"] == "all":
            note = row[f"note_{side}"]
            return f"**{verdict_}**" + (f" ({note})" if isinstance(note, str) and note else "")
        effect, low, high = (row[f"{k}_{side}"] for k in ("effect", "ci_low", "ci_high"))
        if effect != effect:
            return str(verdict_)
        # The interval the verdict stands on; a findings.csv of the first plan also has the
        # bootstrap interval its verdicts needed, shown after it.
        bounds = [
            f"{_number(lo, sign=True)}, {_number(hi, sign=True)}"
            for lo, hi in ((low, high), (row.get(f"boot_low_{side}"), row.get(f"boot_high_{side}")))
            if lo is not None and lo == lo
        ]
        interval_ = f" [{'; '.join(bounds)}]" if bounds else ""
        return f"{_number(effect, sign=True)}{interval_} {verdict_}"

    lines = []
    for title, chosen in (("claim", merged["part"] == "all"), ("part", merged["part"] != "all")):
        rows = [
            [*([r["world"]] if several_worlds else []), r["claim"],
             *([] if title == "claim" else [r["part"]]), r["statement"], cell(r, "a"), cell(r, "b")]
            for _, r in merged[chosen].iterrows()
        ]  # fmt: skip
        header = [*(["world"] if several_worlds else []), "claim",
                  *([] if title == "claim" else ["part"]), "statement", a, b]  # fmt: skip
        lines += [*_markdown(header, rows), ""]
    return lines[:-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", action="store_true", help="reduced grid, both protocols")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--quantities", default="2000")
    parser.add_argument("--threads", type=int, default=1, help="threads per run")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (grid mode)")
    parser.add_argument("--heads", default=",".join(HEADS), help="grid mode: comma-separated")
    parser.add_argument(
        "--protocols", default=",".join(PROTOCOLS), help=f"grid mode, some of {list(VARIANTS)}"
    )
    parser.add_argument(
        "--workdir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "embrm-protocols"
    )
    parser.add_argument(
        "--report", type=Path, nargs="+", help="only print the report of these grid.json files"
    )
    parser.add_argument(
        "--compare", type=Path, nargs=2, metavar=("FIRST", "SECOND"),
        help="two experiments' results folders (or summary.csv): print FIRST − SECOND",
    )  # fmt: skip
    args = parser.parse_args()
    if args.compare:
        print(compare_experiments(*args.compare), end="")
        return
    if args.report:
        rows = [row for path in args.report for row in json.loads(path.read_text())]
        report(rows, sorted({row["seed"] for row in rows}))
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.grid:
        grid(args)
    else:
        cost(args)


if __name__ == "__main__":
    main()
