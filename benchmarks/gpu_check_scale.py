"""GPU check: the study-sized world, and sections c (one run per head at the study's shapes) and
d (stacked against one-by-one training)."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

from gpu_check_common import (
    FULL,
    LGB_MEASURED_ROUNDS,
    LGB_ROUNDS,
    QUICK,
    REPO,
    STUDY_BETAS,
    STUDY_CELLS,
    STUDY_MLP_RUNS,
    STUDY_RUNS,
    STUDY_WORLDS,
    Section,
    cuda_available,
    run,
)


# -- the study-sized world (background) -----------------------------------------------------------
def world_spec(quick: bool) -> dict:
    from embrm.config import Plan, load

    spec = dict(Plan(load(REPO / "configs" / "paper-scale.yaml")).world_spec("paper"))
    spec.update((QUICK if quick else FULL)["world"])
    return spec


def section_world(s: Section) -> None:
    spec = world_spec(s.quick)
    world = s.work / "world" / "paper"
    if world.exists():
        shutil.rmtree(world)
    seconds = run(
        [
            sys.executable,
            "-m",
            "embrm",
            "world",
            "--spec",
            json.dumps(spec),
            "--out",
            world,
            "--threads",
            str(os.cpu_count() or 1),
        ],
        s.log,
        s.left(),
    )
    values = spec["dim"] * (
        spec["train_prompts"] * spec["train_responses"]
        + spec["test_prompts"] * spec["test_responses"]
    )
    s.data.update(spec=spec, seconds=seconds, path=str(world), values=values)
    s.say(
        f"world {spec['train_prompts']}×{spec['train_responses']} / {spec['test_prompts']}×"
        f"{spec['test_responses']} × D={spec['dim']} {spec['dtype']}: {seconds:.1f} s "
        f"({seconds / values * 1e9:.1f} ns per value, while other sections ran)"
    )


def the_world(s: Section) -> Path:
    """The background world, once built (waits for it within the section's time)."""
    done = s.out / "world.json"
    while not done.exists() and s.left() > 5:
        time.sleep(1)
    if not done.exists():
        raise RuntimeError("the study-sized world was not built in time")
    record = json.loads(done.read_text())
    if not record["ok"]:
        raise RuntimeError(f"the world build failed: {record['error']}")
    return Path(record["data"]["path"])


# -- c: one run per head at the study's shapes --------------------------------------------------
def embrm(stage: str, **options) -> list:
    """``python -m embrm <stage> --key value ...`` (underscores in keys become dashes)."""
    command = [sys.executable, "-m", "embrm", stage]
    for key, value in options.items():
        values = value if isinstance(value, list) else [value]
        for item in values:
            command += [f"--{key.replace('_', '-')}", item]
    return command


def section_c(s: Section) -> None:
    cuda = cuda_available()
    device = "cuda" if cuda else "cpu"
    threads = os.cpu_count() or 1
    world = the_world(s)
    shapes = QUICK if s.quick else FULL
    n = shapes["pairs"]
    d = s.dir
    pairs, labels, stats = d / "pairs.npz", d / "labels.npz", d / "stats.json"
    stages: dict[str, float] = {}
    command = embrm(
        "pairs", world=world, design="same-random", n=n, seed=0, heldout=2000, out=pairs
    )
    stages["pairs"] = run(command, s.log, s.left())
    annotator = json.dumps({"model": "bt", "beta": 1})
    command = embrm(
        "annotate", world=world, pairs=pairs, annotator=annotator, scale='"std"', seed=0
    )
    stages["annotate"] = run([*command, "--out", labels, "--stats", stats], s.log, s.left())
    lgb_rounds = 50 if s.quick else LGB_ROUNDS
    heads = {
        "bt-mlp": {"type": "bt-mlp", "members": 1, "params": shapes["mlp"]},
        "clf-mlp": {"type": "clf-mlp", "members": 1, "params": shapes["mlp"]},
        "clf-lgb": {"type": "clf-lgb", "members": 1, "params": {"n_estimators": lgb_rounds}},
    }
    info = {}
    for name, spec in heads.items():
        command = embrm(
            "train",
            world=world,
            pairs=pairs,
            labels=labels,
            head=json.dumps(spec),
            seed=0,
            threads=threads,
            device="cpu" if name == "clf-lgb" else device,
            model_dir=d / name / "model",
            curves=d / name / "curves.csv",
            info=d / name / "train.json",
        )
        stages[f"train {name}"] = run(command, s.log, s.left())
        info[name] = json.loads((d / name / "train.json").read_text())
    models = [f"{name}={d / name / 'model'}" for name in heads]
    command = embrm(
        "score", world=world, model=models, threads=threads, device=device, out=d / "scores"
    )
    stages["score (3 models, one pass)"] = run(command, s.log, s.left())
    scoring = json.loads((d / "scores" / "scoring.json").read_text())
    evaluation = {"repeats": 100, "n_values": [2, 5, 10, 30, 50, 100, 300, 500], "seed": 0}
    metrics = {}
    for name in heads:
        command = embrm(
            "evaluate",
            world=world,
            predictions=d / "scores" / f"{name}.npy",
            pairs=pairs,
            labels=labels,
            annotation_stats=stats,
            train_info=d / name / "train.json",
            curves=d / name / "curves.csv",
            run=json.dumps({"head": name}),
            evaluation=json.dumps(evaluation),
            out=d / name / "metrics.json",
            scoring=d / "scores" / "scoring.json",
            scored_as=name,
            device=device,
        )
        stages[f"evaluate {name}"] = run(command, s.log, s.left())
        metrics[name] = json.loads((d / name / "metrics.json").read_text())
    world_record = json.loads((s.out / "world.json").read_text())["data"]
    records = {
        f"{name}-{kind}": d / name / f"{kind}.json"
        for name in heads
        for kind in ("train", "metrics")
    }
    records["scoring"] = d / "scores" / "scoring.json"
    s.data["records"] = {key: json.loads(path.read_text()) for key, path in records.items()}
    s.data.update(stages=stages, device=device, threads=threads, pairs=n, scoring=scoring)
    s.say(f"device {device}, {threads} threads, {n} pairs; stage wall seconds (process included):")
    s.say(f"  world (once per world): {world_record['seconds']:.1f}")
    for stage, seconds in stages.items():
        s.say(f"  {stage}: {seconds:.1f}")
    per_run = {}
    share = (scoring["read_seconds"]) / 18  # a study cell shares one read among 18 runs
    for name in heads:
        train, record = info[name], metrics[name]
        predict = scoring["runs"][name]["predict_seconds"]
        fit = train["fit_seconds"]
        if name == "clf-lgb":
            rounds = max(train["epochs_run"][0], 1)
            fit_full = fit / rounds * LGB_MEASURED_ROUNDS
            s.say(
                f"  clf-lgb: {rounds} rounds in {fit:.1f} s ({fit / rounds:.3f} s/round); "
                f"{LGB_MEASURED_ROUNDS} rounds → {fit_full:.0f} s (extrapolated)"
            )
            overhead = stages[f"train {name}"] - fit
            train_job = overhead + fit_full
        else:
            train_job = stages[f"train {name}"]
        run_seconds = train_job + predict + share + stages[f"evaluate {name}"]
        per_run[name] = run_seconds
        mean = record["metrics"]["mean"]
        s.say(
            f"  {name}: fit {fit:.1f} s ({train['epochs_run'][0]} epochs/rounds, best "
            f"{train['best_epoch'][0]}), scoring {predict:.1f} s, evaluate job "
            f"{stages[f'evaluate {name}']:.1f} s → {run_seconds:.1f} s per run; "
            f"BoN-{mean['bon_n_max']} gain {mean['bon_gain']:.3f}, Spearman {mean['spearman']:.3f}"
        )
    mlp = (per_run["bt-mlp"] + per_run["clf-mlp"]) / 2
    gpu_hours = STUDY_MLP_RUNS * mlp / 3600
    lgb_core_hours = (STUDY_RUNS - STUDY_MLP_RUNS) * per_run["clf-lgb"] * threads / 3600
    world_hours = STUDY_WORLDS * world_record["seconds"] / 3600
    s.data.update(
        per_run=per_run,
        study_mlp_gpu_hours=gpu_hours,
        study_lgb_core_hours=lgb_core_hours,
        study_world_hours=world_hours,
    )
    s.say(
        f"study on one GPU, one run per job, every run at this run's size (an upper bound: the "
        f"grid's quantities are 5k-40k): {STUDY_MLP_RUNS} MLP runs × {mlp:.1f} s = "
        f"{gpu_hours:.1f} GPU-hours; {STUDY_RUNS - STUDY_MLP_RUNS} clf-lgb runs = "
        f"{lgb_core_hours:.0f} core-hours on the host CPU ({lgb_core_hours / threads:.1f} h on "
        f"its {threads} cores); {STUDY_WORLDS} worlds {world_hours:.1f} h"
    )


# -- d: stacked against one by one -------------------------------------------------------------
def section_d(s: Section) -> None:
    import numpy as np
    import torch
    from embrm.heads.base import PairData
    from embrm.heads.ensemble import Ensemble
    from embrm.heads.stacked import fit_stacked
    from embrm.world import World

    device = "cuda" if torch.cuda.is_available() else "cpu"
    threads = os.cpu_count() or 1
    shapes = QUICK if s.quick else FULL
    n = shapes["pairs"]
    world = World(the_world(s))
    rewards = world.train.rewards.ravel()
    g = np.random.default_rng(0)
    # Same-prompt random pairs (what `pairs` draws for same-random): two responses of one prompt.
    prompts, k = world.train.rewards.shape
    p = g.integers(prompts, size=n)
    i = g.integers(k, size=n)
    j = (i + g.integers(1, k, size=n)) % k
    a, b = p * k + i, p * k + j
    scale = float(np.std(rewards))
    labels = {}
    for beta in STUDY_BETAS:
        chance = 1 / (1 + np.exp(-beta * (rewards[a] - rewards[b]) / scale))
        labels[beta] = (g.random(n) < chance).astype(np.uint8)
    embeddings = world.train.flat_embeddings
    # Alternating heads, so that a one-by-one pass cut short by time still covers both.
    runs = [(beta, head) for beta in STUDY_BETAS for head in ("bt-mlp", "clf-mlp")]
    data = {beta: PairData(embeddings, a, b, labels[beta]) for beta in STUDY_BETAS}
    test = np.asarray(world.test.flat_embeddings[:20_000], dtype=np.float32)

    def heads():
        return [
            Ensemble(head, seed=0, device=device, threads=threads, params=shapes["mlp"]).members[0]
            for _, head in runs
        ]

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    # Warm-up: CUDA context, cuBLAS handles and kernels, outside the timings.
    warm = Ensemble("bt-mlp", seed=1, device=device, threads=threads, params={"max_epochs": 1})
    warm.fit(PairData(embeddings, a[:2048], b[:2048], labels[1][:2048]))
    sync()
    budget = max(s.left() / 2 - 10, 10)
    one, one_seconds = [], []
    for (beta, _), head in zip(runs, heads(), strict=True):
        started = time.perf_counter()
        head.fit(data[beta])
        sync()
        one_seconds.append(time.perf_counter() - started)
        one.append(head)
        if sum(one_seconds) > budget and len(one) < len(runs):
            s.say(f"one by one: stopped after {len(one)} of {len(runs)} runs (time)")
            break
    stacked = heads()
    started = time.perf_counter()
    timing = fit_stacked(stacked, [data[beta] for beta, _ in runs], [f"{b}/{h}" for b, h in runs])
    sync()
    stacked_seconds = time.perf_counter() - started
    per_one = sum(one_seconds) / len(one)
    per_stacked = stacked_seconds / len(runs)
    # Agreement: predictions on test rows (BT up to its free constant), best epochs.
    worst, worst_centered, same_best = 0.0, 0.0, 0
    for h1, h2 in zip(one, stacked, strict=False):
        p1, p2 = h1.predict_reward(test), h2.predict_reward(test)
        worst = max(worst, float(np.abs(p1 - p2).max()))
        worst_centered = max(
            worst_centered, float(np.abs((p1 - p1.mean()) - (p2 - p2.mean())).max())
        )
        same_best += h1.best_epoch_ == h2.best_epoch_
    epochs = [len(h.curves_) for h in stacked]
    s.data.update(
        device=device,
        pairs=n,
        runs=len(runs),
        one_by_one_seconds=one_seconds,
        stacked_seconds=stacked_seconds,
        stacks=timing["stacks"],
        epochs=epochs,
        max_abs_prediction=worst,
        max_abs_prediction_centered=worst_centered,
        same_best_epoch=same_best,
        compared=len(one),
    )
    s.say(
        f"{len(runs)} MLP runs (6 β × bt-mlp, clf-mlp) at {n} pairs on {device}; epochs run "
        f"{epochs}"
    )
    s.say(
        f"one by one (in one process): {per_one:.2f} s per run ({len(one)} runs, "
        f"{sum(one_seconds):.1f} s)"
    )
    s.say(
        f"stacked: {stacked_seconds:.1f} s for {len(runs)} runs = {per_stacked:.2f} s per run "
        f"({per_one / per_stacked:.1f}× faster); stacks "
        + ", ".join(f"{t['models']} {t['type']} {t['seconds']:.1f} s" for t in timing["stacks"])
    )
    s.say(
        f"agreement on {len(one)} runs: max |Δ prediction| {worst:.3g} ({worst_centered:.3g} "
        f"after removing each model's mean: BT rewards are defined up to a constant); best epoch "
        f"equal in {same_best}/{len(one)}"
    )
    c_record = s.out / "c.json"
    overhead = None
    if c_record.exists():
        c = json.loads(c_record.read_text())
        if c.get("ok"):
            stages = c["data"]["stages"]
            fits = {}
            for name in ("bt-mlp", "clf-mlp"):
                info = json.loads((s.work / "c" / name / "train.json").read_text())
                fits[name] = stages[f"train {name}"] - info["fit_seconds"]
            overhead = sum(fits.values()) / len(fits)  # a train job's cost beyond its fit
            evaluate = (stages["evaluate bt-mlp"] + stages["evaluate clf-mlp"]) / 2
    hours_one = STUDY_MLP_RUNS * per_one / 3600
    hours_stacked = STUDY_MLP_RUNS * per_stacked / 3600
    s.data.update(study_fit_hours_one=hours_one, study_fit_hours_stacked=hours_stacked)
    s.say(
        f"study's {STUDY_MLP_RUNS} MLP runs, fits only: {hours_one:.1f} h one by one, "
        f"{hours_stacked:.1f} h stacked"
    )
    if overhead is not None:
        jobs_one = STUDY_MLP_RUNS * (per_one + overhead + evaluate) / 3600
        jobs_stacked = (STUDY_MLP_RUNS * (per_stacked + evaluate) + STUDY_CELLS * overhead) / 3600
        s.data.update(study_hours_one_jobs=jobs_one, study_hours_stacked_jobs=jobs_stacked)
        s.say(
            f"with the workflow's jobs (from c: {overhead:.1f} s per train job beyond its fit, "
            f"{evaluate:.1f} s per evaluate job): {jobs_one:.1f} h one train job per run, "
            f"{jobs_stacked:.1f} h one train_cell job per cell ({STUDY_CELLS} cells); scoring "
            f"not included (see c)"
        )
