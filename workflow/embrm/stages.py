"""Stage entry points: files in, files out. The CLI and the Snakemake rules call only these.

The world, pairs, annotation and evaluation stages are here; the training stages (train,
train-cell, unstack, score) are in :mod:`embrm.fitting` and named here too.

Each stage reads its inputs, calls the logic modules, and writes every output atomically, so a
failed or interrupted job leaves nothing that looks finished.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from .declare import Option, stage
from .errors import DataError
from .fitting import score, train, train_cell, train_record, unstack, where_fitted  # noqa: F401
from .io import (
    link,
    read_json,
    read_npz,
    write_json,
    write_npz,
)
from .seeding import heldout_pair_stream, label_stream, pair_stream

log = logging.getLogger("embrm")


@stage(
    "world",
    "build a world directory (embeddings + golden rewards)",
    Option("spec", "--spec", "json", help="the world's config entry as JSON"),
    Option("out_dir", "--out"),
    Option("threads", "--threads", "int", required=False, default=1),
    Option("device", "--device", "text", required=False, default="auto"),
)
def build_world(spec: dict, out_dir: str | Path, *, threads: int = 1, device: str = "auto") -> None:
    from .sources import build_world as build

    started = time.perf_counter()
    build(spec, out_dir, threads=threads, device=device)
    log.info("world written to %s in %.1f s", out_dir, time.perf_counter() - started)


@stage(
    "pairs",
    "draw training and held-out pairs for a design",
    Option("world_dir", "--world"),
    Option("design", "--design", "text"),
    Option("n", "--n", "int"),
    Option("seed", "--seed", "int"),
    Option("heldout", "--heldout", "int"),
    Option("out", "--out"),
    Option(
        "of",
        "--of",
        "int",
        required=False,
        help="draw this many pairs and keep the first n (the design's largest quantity)",
    ),
)
def make_pairs(
    world_dir,
    design: str,
    n: int,
    seed: int,
    heldout: int,
    out: str | Path,
    *,
    of: int | None = None,
) -> None:
    """The cell's training and held-out pairs. ``of``: the largest quantity of ``design`` in the
    grid; the ``n`` pairs are the first ``n`` of a draw of that many (embrm.designs.make_pairs)."""
    from .designs import get
    from .designs import make_pairs as draw_pairs
    from .world import World

    world = World(world_dir)
    drawn = get(design)
    a, b = draw_pairs(
        world.train.rewards, design, n, pair_stream(seed), key="grid.quantities", of=of
    )
    test = world.test
    held = get(drawn.heldout)
    heldout_n = min(heldout, held.capacity(test.prompts, test.responses))
    ha, hb = held.draw(
        test.rewards, heldout_n, heldout_pair_stream(seed), key="annotation.heldout_pairs"
    )
    write_npz(out, a=a, b=b, heldout_a=ha, heldout_b=hb)
    log.info("%d %s pairs and %d held-out test pairs", a.size, design, ha.size)


@stage(
    "annotate",
    "label pairs with a simulated annotator",
    Option("world_dir", "--world"),
    Option("pairs_path", "--pairs"),
    Option("annotator_spec", "--annotator", "json"),
    Option("scale", "--scale", "json", help='"std" or a number, as JSON'),
    Option("seed", "--seed", "int"),
    Option("out", "--out"),
    Option("stats_out", "--stats"),
)
def annotate(
    world_dir,
    pairs_path,
    annotator_spec: dict,
    scale,
    seed: int,
    out: str | Path,
    stats_out: str | Path,
) -> None:
    from .annotators import annotate as label_pairs
    from .annotators import make_annotator, resolve_scale
    from .world import World

    world = World(world_dir)
    pairs = read_npz(pairs_path, "a", "b", "heldout_a", "heldout_b")
    annotator = make_annotator(annotator_spec)
    scale_value = resolve_scale(scale, world.reward_std)
    train_r, test_r = world.train.rewards.ravel(), world.test.rewards.ravel()
    # The same uniforms for every annotator and design of the seed (common random numbers).
    label, stats = label_pairs(
        annotator,
        train_r[pairs["a"]],
        train_r[pairs["b"]],
        scale_value,
        label_stream(seed, "train"),
    )
    heldout_label, heldout_stats = label_pairs(
        annotator,
        test_r[pairs["heldout_a"]],
        test_r[pairs["heldout_b"]],
        scale_value,
        label_stream(seed, "heldout"),
    )
    write_npz(out, label=label, heldout_label=heldout_label)
    write_json(stats_out, {"annotator": annotator_spec, "train": stats, "heldout": heldout_stats})
    log.info(
        "annotated %d pairs: realized error %.3f", stats["pairs"], stats["realized_error_rate"]
    )


@stage(
    "evaluate",
    "score test predictions: Best-of-N, Spearman, accuracy",
    Option("world_dir", "--world"),
    Option("predictions_path", "--predictions"),
    Option("pairs_path", "--pairs"),
    Option("labels_path", "--labels"),
    Option("annotation_stats_path", "--annotation-stats"),
    Option("train_info_path", "--train-info"),
    Option("curves_path", "--curves"),
    Option("run", "--run", "json"),
    Option("evaluation", "--evaluation", "json"),
    Option("out", "--out"),
    Option(
        "scoring_path",
        "--scoring",
        required=False,
        help="scoring.json of the score job that wrote the predictions",
    ),
    Option(
        "scoring_name",
        "--scored-as",
        "text",
        required=False,
        help="this run's name in --scoring (annotator/head)",
    ),
    Option(
        "device",
        "--device",
        "text",
        required=False,
        default="cpu",
        help="training.device: cuda (or auto after GPU training) picks Best-of-N on the GPU",
    ),
)
def evaluate(
    world_dir,
    predictions_path,
    pairs_path,
    labels_path,
    annotation_stats_path,
    train_info_path,
    curves_path,
    run: dict,
    evaluation: dict,
    out,
    *,
    scoring_path=None,
    scoring_name: str | None = None,
    device: str = "cpu",
) -> None:
    """Score one run's test predictions; every ensemble aggregation when it has several members.

    With ``scoring_path`` (the ``scoring.json`` of a cell's score job), the run's predictions came
    from that shared pass: its entry ``scoring_name`` supplies the run's scoring time. ``device``
    is ``training.device``: Best-of-N picks on the GPU for ``cuda``, and for ``auto`` when the run
    trained on one; otherwise with NumPy.
    """
    import csv

    from . import uncertainty
    from .evaluation import bon_draws, bon_method, clip_n_values, evaluate_per_prompt, oracle_for
    from .preference_metrics import apply as apply_preferences
    from .world import World

    world = World(world_dir)
    golden = world.test.rewards
    predictions = np.load(predictions_path)
    if predictions.ndim != 3 or predictions.shape[1:] != golden.shape:
        raise DataError(
            f"{predictions_path}: predictions shape {predictions.shape} does not match test rewards "
            f"{golden.shape} (expected (members, P, K))"
        )
    if not np.isfinite(predictions).all():
        raise DataError(f"{predictions_path}: predictions contain NaN or inf")
    pairs = read_npz(pairs_path, "heldout_a", "heldout_b")
    labels = read_npz(labels_path, "heldout_label")
    heldout = (pairs["heldout_a"], pairs["heldout_b"], labels["heldout_label"])
    if heldout[0].shape != heldout[2].shape or heldout[1].shape != heldout[2].shape:
        raise DataError(
            f"{labels_path}: {heldout[2].size} held-out labels for {heldout[0].size} pairs in "
            f"{pairs_path}"
        )
    if heldout[0].size and max(heldout[0].max(), heldout[1].max()) >= golden.size:
        raise DataError(
            f"{pairs_path}: held-out pair indices exceed the {golden.size} test responses"
        )
    prompts, responses = golden.shape
    training = read_json(train_info_path)
    if scoring_path is not None:
        training.update(shared_scoring(scoring_path, scoring_name))
    bon_device = evaluation_device(device, training.get("device"))
    started = time.perf_counter()
    # Exact Best-of-N draws nothing (orders None). The sampled estimator uses one set of orders
    # for every run and aggregation (seeded by evaluation.seed only), so differences between
    # runs are never differences between random draws.
    method = bon_method(evaluation)
    orders = bon_draws(evaluation, responses)
    n_values = clip_n_values(evaluation["n_values"], responses)
    oracle = oracle_for(golden, orders, n_values, device=bon_device)
    ensemble = predictions.shape[0] > 1
    lambdas = evaluation.get("uncertainty_lambdas", [])
    aggregations = uncertainty.aggregations(lambdas) if ensemble else ("mean",)
    truth = heldout_truth(read_json(annotation_stats_path), golden, heldout)
    scored = {
        how: evaluate_per_prompt(
            uncertainty.combine(predictions, how),
            golden,
            orders,
            n_values,
            heldout,
            oracle=oracle,
            device=bon_device,
            heldout_truth=truth,
        )
        for how in aggregations
    }
    results = {how: metrics for how, (metrics, _) in scored.items()}
    if ensemble:
        # Does the members' disagreement flag the pairs the ensemble orders wrongly?
        auc = uncertainty.disagreement_auc(predictions, golden, heldout[0], heldout[1])
        results["mean"]["disagreement_auc"] = auc
    # Worlds without a golden reward: preference metrics in, golden-reward metrics blanked.
    preference_prompts = apply_preferences(
        world_dir,
        world.info,
        results,
        {how: uncertainty.combine(predictions, how) for how in aggregations},
    )
    # Per-test-prompt values (the findings' interval over test prompts) live beside the metrics,
    # not in them: summary.csv and MLflow read only ``metrics``. The oracle's is every run's. A
    # world without a golden reward adds its pair-accuracy counts per test prompt.
    first = scored[aggregations[0]][1]
    per_prompt = {
        "bon_n": n_values[-1],
        "oracle_bon_gain": first["oracle_bon_gain"],
        "aggregations": {
            how: {
                **{k: v for k, v in values.items() if k != "oracle_bon_gain"},
                **preference_prompts.get(how, {}),
            }
            for how, (_, values) in scored.items()
        },
    }
    evaluate_seconds = time.perf_counter() - started
    with open(curves_path) as handle:
        curves = list(csv.DictReader(handle))
    write_json(
        out,
        {
            "run": run,
            "annotation": read_json(annotation_stats_path),
            "training": training,
            "curves": curves,
            "evaluation": {
                "bon": method,
                "repeats": int(evaluation["repeats"]),
                "seed": int(evaluation["seed"]),
                "n_values_requested": [int(n) for n in evaluation["n_values"]],
                "n_values": n_values,
                "test_prompts": int(prompts),
                "test_responses": int(responses),
                "heldout_pairs": int(heldout[0].size),
                "members": int(predictions.shape[0]),
                "aggregations": list(aggregations),
                "uncertainty_lambdas": [float(lam) for lam in lambdas] if ensemble else [],
            },
            "metrics": results,
            "per_prompt": per_prompt,
            "evaluate_seconds": evaluate_seconds,
            "evaluate_device": bon_device or "cpu",
            "finished_at": time.time(),  # wall clock: MLflow's end of the run
        },
    )
    if scoring_path is not None:
        # The run directory looks the same either way: predictions.npy (here a link into the
        # cell's scores) beside the model, for readers and for the MLflow artifact.
        link(Path(out).parent / "predictions.npy", predictions_path)
    mean = results["mean"]
    log.info(
        "BoN-%d gain %.4f (%.0f%% of oracle), Spearman %.3f, held-out accuracy %.3f in %.2f s",
        mean["bon_n_max"],
        mean["bon_gain"],
        100 * mean["bon_gain_normalized"],
        mean["spearman"],
        mean["accuracy_vs_golden"],
        evaluate_seconds,
    )


def heldout_truth(annotation: dict, golden: np.ndarray, heldout) -> np.ndarray | None:
    """The annotator's true P(first wins) of each held-out pair (``annotation`` is the
    annotate job's stats); None when the stats do not give the held-out pairs' reward scale."""
    from .annotators import make_annotator
    from .calibration import true_probability

    scale = annotation.get("heldout", {}).get("scale")
    if scale is None:
        return None
    flat = golden.ravel()
    annotator = make_annotator(annotation["annotator"], "annotation stats")
    return true_probability(annotator, flat[heldout[0]], flat[heldout[1]], float(scale))


def shared_scoring(scoring_path, name: str | None) -> dict:
    """The training-record fields of a run scored by its cell's score job: its own scoring time
    and what the shared pass cost (``scoring.*``)."""
    scoring = read_json(scoring_path)
    entry = scoring.get("runs", {}).get(name)
    if entry is None:
        raise DataError(f"{scoring_path}: no entry for run '{name}'")
    return {
        "predict_seconds": entry["predict_seconds"],
        "scoring": {
            "mode": "cell",
            "models": scoring["models"],
            "pass_seconds": scoring["pass_seconds"],
            "read_seconds": scoring["read_seconds"],
        },
    }


def evaluation_device(requested: str, trained_on: str | None) -> str | None:
    """Where Best-of-N picks: ``cuda`` when the config asks for it, or with ``auto`` when the run
    trained there; None (NumPy on the CPU, no torch import) otherwise."""
    if requested == "cuda" or (requested == "auto" and trained_on == "cuda"):
        from .heads.device import resolve_device

        return resolve_device("cuda")
    return None
