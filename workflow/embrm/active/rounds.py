"""The round protocol of an active design, resumable at round granularity.

Round 0 labels a random seed batch from the candidate pool. Each later round k

1. trains the run's head on every pair labelled so far (rounds < k), with the run's seed;
2. evaluates that model on the test set (Best-of-N gain, Spearman, held-out accuracy): the
   learning-curve point at that number of labels. Only this evaluation reads the test set;
3. draws a fresh pool of unlabelled candidates and scores it with the selection model
   (:mod:`.features`);
4. selects a batch with the design's rule (:mod:`embrm.active`) and labels it with the run's
   annotator;

until the run's quantity n is labelled (the last batch is cut to fit). The model trained on all n
labels is the train rule's job, like for every other design.

Each round is saved as one file (``round<k>.npz``: its pairs, labels and a JSON record with the
pool size, the metrics of the model that chose it and timings) written atomically, beside
``plan.json``, the fingerprint of everything the rounds depend on. A killed job resumes after the
last saved round; since training, pools, selections and labels are seeded by the round, it makes
the same selections it would have made without the kill. A changed fingerprint starts over.

Random streams are named by the pool (same or cross), the round and the seed, not by the rule:
every rule of a pool starts from the same seed batch and, in round 1, chooses from the same
candidates, so differences between rules are differences of selection.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..declare import Option
from ..declare import stage as declare_stage
from ..errors import ConfigError, DataError
from ..hashing import stable_hash
from ..io import read_json, read_npz, write_json, write_npz
from ..seeding import heldout_pair_stream, label_stream, rng
from . import RULES, parse
from .features import SelectionModel
from .pool import draw_pool, pair_keys

log = logging.getLogger("embrm")

ROUND_METRICS = ("bon_gain", "bon_gain_normalized", "spearman", "accuracy_vs_golden")


@dataclass(frozen=True)
class Settings:
    """The ``active`` config section."""

    seed_batch: int = 100
    round_size: int = 100
    pool_size: int = 2000
    ridge: float = 1e-3

    @classmethod
    def from_config(cls, section: dict, where: str = "active") -> Settings:
        values = {**asdict(cls()), **(section or {})}
        unknown = sorted(set(values) - set(asdict(cls())))
        if unknown:
            raise ConfigError(f"config key '{where}.{unknown[0]}': unknown key")
        for key in ("seed_batch", "round_size", "pool_size"):
            value = values[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"config key '{where}.{key}': expected an integer ≥ 1, got {value!r}"
                )
        ridge = values["ridge"]
        if isinstance(ridge, bool) or not isinstance(ridge, int | float) or not ridge > 0:
            raise ConfigError(f"config key '{where}.ridge': expected a number > 0, got {ridge!r}")
        if values["pool_size"] < values["round_size"]:
            raise ConfigError(
                f"config key '{where}.pool_size': {values['pool_size']} candidates cannot fill "
                f"a round of {where}.round_size = {values['round_size']} pairs; expected "
                f"pool_size ≥ round_size"
            )
        return cls(**values)


def schedule(n: int, settings: Settings) -> list[int]:
    """Labels added per round: the seed batch, then full rounds, the last cut to reach ``n``."""
    sizes = [min(settings.seed_batch, n)]
    while sum(sizes) < n:
        sizes.append(min(settings.round_size, n - sum(sizes)))
    return sizes


def label_stats(annotator, r_a, r_b, labels, scale: float) -> dict:
    """The annotation statistics of :func:`embrm.annotators.annotate` for labels already drawn."""
    dr = np.asarray(r_a, dtype=np.float64) - np.asarray(r_b, dtype=np.float64)
    gap = np.abs(dr)
    p_correct = annotator.prob_correct(gap, scale)
    wrong = np.where(dr == 0, 0.5, (labels > 0) != (dr > 0))
    return {
        "pairs": int(dr.size),
        "mean_abs_dr": float(gap.mean()),
        "expected_error_rate": float(np.mean(1.0 - p_correct)),
        "expected_error_rate_se": float(np.sqrt(np.sum(p_correct * (1.0 - p_correct))) / dr.size),
        "realized_error_rate": float(np.mean(wrong)),
        "tied_pairs": int(np.count_nonzero(dr == 0)),
        "scale": float(scale),
    }


class RoundStore:
    """``plan.json`` and ``round<k>.npz`` files of one run's state directory."""

    def __init__(self, directory: str | Path, fingerprint: dict):
        self.directory = Path(directory)
        self.fingerprint = fingerprint
        plan = self.directory / "plan.json"
        if self.directory.exists():
            saved = read_json(plan) if plan.exists() else None
            if saved != fingerprint:
                log.info("%s: saved rounds belong to other settings; starting over", directory)
                shutil.rmtree(self.directory)
        if not plan.exists():
            write_json(plan, fingerprint)

    def path(self, k: int) -> Path:
        return self.directory / f"round{k:03d}.npz"

    def load(self, k: int) -> dict | None:
        path = self.path(k)
        if not path.exists():
            return None
        arrays = read_npz(path, "a", "b", "label", "record")
        return {
            "a": arrays["a"],
            "b": arrays["b"],
            "label": arrays["label"],
            "record": json.loads(str(arrays["record"])),
        }

    def save(self, k: int, a, b, label, record: dict) -> None:
        write_npz(
            self.path(k),
            a=np.asarray(a, np.int64),
            b=np.asarray(b, np.int64),
            label=np.asarray(label, np.uint8),
            record=np.array(json.dumps(record, sort_keys=True)),
        )


def evaluate_model(ensemble, world, evaluation: dict, heldout) -> dict:
    """The learning-curve metrics of one round's model (the same code as the evaluate stage)."""
    from ..evaluation import bon_draws, clip_n_values
    from ..evaluation import evaluate as score
    from ..heads.ensemble import combine

    golden = world.test.rewards
    predictions = ensemble.predict_reward(world.test.embeddings, source=world.test.embeddings_path)
    orders = bon_draws(evaluation, golden.shape[1])  # None: exact Best-of-N (evaluation.bon)
    n_values = clip_n_values(evaluation["n_values"], golden.shape[1])
    metrics = score(combine(predictions, "mean"), golden, orders, n_values, heldout)
    return {key: float(metrics[key]) for key in ROUND_METRICS}


def run_rounds(
    world,
    design: str,
    n: int,
    seed: int,
    annotator_spec: dict,
    scale: float,
    head_spec: dict,
    settings: Settings,
    evaluation: dict,
    heldout: tuple,
    state_dir,
    *,
    threads: int = 1,
    device: str = "cpu",
    stop_after: int | None = None,
) -> dict:
    """Run (or resume) every round; returns the labelled pairs and the per-round records.

    ``stop_after`` ends the call after that many rounds were newly computed (tests of resuming).
    """
    from ..annotators import annotate, make_annotator
    from ..heads.ensemble import Ensemble
    from ..heads.pairs import PairData

    pool_kind, rule_name = parse(design)
    rule = RULES[rule_name]
    annotator = make_annotator(annotator_spec)
    prompts, responses = world.train.rewards.shape
    rewards = world.train.rewards.ravel()
    embeddings = world.train.flat_embeddings
    sizes = schedule(n, settings)
    fingerprint = {
        "design": design,
        "n": n,
        "seed": seed,
        "annotator": annotator_spec,
        "scale": scale,
        "head": head_spec,
        "active": asdict(settings),
        "evaluation": evaluation,
        "world": stable_hash(world.info),
    }
    store = RoundStore(state_dir, fingerprint)
    a_parts, b_parts, label_parts, records = [], [], [], []
    computed = 0
    for k, size in enumerate(sizes):
        saved = store.load(k)
        if saved is not None:
            a_parts.append(saved["a"])
            b_parts.append(saved["b"])
            label_parts.append(saved["label"])
            records.append(saved["record"])
            continue
        if stop_after is not None and computed >= stop_after:
            break
        started = time.perf_counter()
        record = {"round": k, "labels_before": int(sum(p.size for p in a_parts)), "size": size}
        labelled = (
            pair_keys(np.concatenate(a_parts), np.concatenate(b_parts), rewards.size)
            if a_parts
            else np.empty(0, np.int64)
        )
        candidates = draw_pool(
            prompts,
            responses,
            pool_kind,
            settings.pool_size,
            labelled,
            rng(seed, "active-pool", pool_kind, k),
        )
        if candidates.size < size:
            raise ConfigError(
                f"config key 'grid.quantities': design '{design}' ran out of unlabelled "
                f"candidate pairs in round {k} ({candidates.size} left for a batch of {size})"
            )
        record["pool"] = candidates.size
        chosen_by = rule if k > 0 else RULES["activerandom"]
        if k > 0:
            a_all, b_all = np.concatenate(a_parts), np.concatenate(b_parts)
            data = PairData(
                embeddings,
                a_all,
                b_all,
                np.concatenate(label_parts),
                source=str(world.train.embeddings_path),
                pairs_source=str(store.directory),
            )
            fit_started = time.perf_counter()
            ensemble = Ensemble.from_spec(head_spec, seed=seed, device=device, threads=threads).fit(
                data
            )
            record["fit_seconds"] = time.perf_counter() - fit_started
            record["metrics"] = evaluate_model(ensemble, world, evaluation, heldout)
            if getattr(rule, "NEEDS_MODEL", False):
                select_started = time.perf_counter()
                model = SelectionModel.for_ensemble(
                    ensemble, data, seed=seed, device=device, threads=threads
                )
                record["selection_model"] = model.description
                candidates.diff, candidates.dr_hat = model.pair_features(
                    embeddings, candidates.a, candidates.b
                )
                if getattr(rule, "NEEDS_PAST", False):
                    candidates.past_diff, candidates.past_dr_hat = model.pair_features(
                        embeddings, a_all, b_all
                    )
                record["features_seconds"] = time.perf_counter() - select_started
        select_started = time.perf_counter()
        picks = chosen_by.select(
            candidates,
            size,
            rng=rng(seed, "active-select", pool_kind, k),
            ridge=settings.ridge,
        )
        record["select_seconds"] = time.perf_counter() - select_started
        a, b = candidates.a[picks], candidates.b[picks]
        label, _ = annotate(
            annotator,
            rewards[a],
            rewards[b],
            scale,
            rng(seed, "active-annotate", json.dumps(annotator_spec, sort_keys=True), k),
        )
        record["mean_abs_dr"] = float(np.abs(rewards[a] - rewards[b]).mean())
        record["seconds"] = time.perf_counter() - started
        store.save(k, a, b, label, record)
        a_parts.append(a)
        b_parts.append(b)
        label_parts.append(label)
        records.append(record)
        computed += 1
        log.info(
            "round %d (%s): %d labels chosen from %d candidates%s in %.1f s",
            k,
            design if k else "seed batch",
            size,
            candidates.size,
            ""
            if "metrics" not in record
            else f"; model on {record['labels_before']} labels: BoN gain "
            f"{record['metrics']['bon_gain']:.4f}, Spearman {record['metrics']['spearman']:.3f}",
            record["seconds"],
        )
    empty = np.empty(0, np.int64)
    return {
        "a": np.concatenate(a_parts) if a_parts else empty,
        "b": np.concatenate(b_parts) if b_parts else empty,
        "label": np.concatenate(label_parts) if label_parts else empty.astype(np.uint8),
        "records": records,
        "complete": len(records) == len(sizes),
        "annotator": annotator,
        "rewards": rewards,
    }


@declare_stage(
    "active",
    "choose and label an active design's pairs, in rounds",
    Option("world_dir", "--world"),
    Option("design", "--design", "text"),
    Option("n", "--n", "int"),
    Option("seed", "--seed", "int"),
    Option("annotator_spec", "--annotator", "json"),
    Option("scale_spec", "--scale", "json", help='"std" or a number, as JSON'),
    Option("head_spec", "--head", "json"),
    Option("active", "--active", "json", help="the config's active section"),
    Option("evaluation", "--evaluation", "json"),
    Option("heldout_pairs", "--heldout", "int"),
    Option("state_dir", "--state", help="directory of the saved rounds (resumable)"),
    Option("threads", "--threads", "int", required=False, default=1),
    Option("device", "--device", "text", required=False, default="auto"),
    Option("pairs_out", "--pairs-out"),
    Option("labels_out", "--labels-out"),
    Option("stats_out", "--stats-out"),
)
def stage(
    world_dir,
    design: str,
    n: int,
    seed: int,
    annotator_spec: dict,
    scale_spec,
    head_spec: dict,
    active: dict,
    evaluation: dict,
    heldout_pairs: int,
    state_dir,
    *,
    pairs_out,
    labels_out,
    stats_out,
    threads: int = 1,
    device: str = "cpu",
) -> None:
    """The ``active`` workflow stage: rounds, then the run's pairs, labels and statistics in the
    formats of the ``pairs`` and ``annotate`` stages (so train and evaluate read them alike)."""
    from ..annotators import annotate, make_annotator, resolve_scale
    from ..pairing import capacity, deal
    from ..world import World

    settings = Settings.from_config(active)
    pool_kind, rule_name = parse(design)
    world = World(world_dir)
    if n > capacity(*world.train.rewards.shape, pool_kind):
        raise ConfigError(
            f"config key 'grid.quantities': {n} pairs requested but design '{design}' allows at "
            f"most {capacity(*world.train.rewards.shape, pool_kind)} distinct pairs"
        )
    scale = resolve_scale(scale_spec, world.reward_std)
    annotator = make_annotator(annotator_spec)
    # Held-out test pairs: the pool's random design, as a static design of that pool would draw.
    test = world.test
    heldout_n = min(heldout_pairs, capacity(test.prompts, test.responses, pool_kind))
    ha, hb = deal(
        test.rewards,
        pool_kind,
        "random",
        heldout_n,
        heldout_pair_stream(seed),
        key="annotation.heldout_pairs",
    )
    test_r = test.rewards.ravel()
    # The held-out labels of the static designs too (the same uniforms for every annotator).
    heldout_label, heldout_stats = annotate(
        annotator, test_r[ha], test_r[hb], scale, label_stream(seed, "heldout")
    )
    result = run_rounds(
        world,
        design,
        n,
        seed,
        annotator_spec,
        scale,
        head_spec,
        settings,
        evaluation,
        (ha, hb, heldout_label),
        state_dir,
        threads=threads,
        device=device,
    )
    a, b, label = result["a"], result["b"], result["label"]
    if np.unique(pair_keys(a, b, result["rewards"].size)).size != a.size:
        raise DataError(f"{state_dir}: a labelled pair appears twice")  # never expected
    rewards = result["rewards"]
    train_stats = label_stats(annotator, rewards[a], rewards[b], label, scale)
    records = result["records"]
    curve = [{"labels": r["labels_before"], **r["metrics"]} for r in records if "metrics" in r]
    models = sorted({r["selection_model"] for r in records if "selection_model" in r})
    selection_model = models[0] if models else "none (random selection)"
    # Flat, for the summary table and MLflow: the learning curve as JSON text.
    train_stats.update(
        {
            "active_rule": rule_name,
            "active_pool": pool_kind,
            "active_rounds": len(records),
            "active_selection_model": selection_model,
            "active_curve": json.dumps(curve, sort_keys=True),
            "active_select_seconds": float(sum(r["select_seconds"] for r in records)),
        }
    )
    write_npz(pairs_out, a=a, b=b, heldout_a=ha, heldout_b=hb)
    write_npz(labels_out, label=label, heldout_label=heldout_label)
    write_json(
        stats_out,
        {
            "annotator": annotator_spec,
            "train": train_stats,
            "heldout": heldout_stats,
            "active": {
                "design": design,
                "rule": rule_name,
                "pool": pool_kind,
                "settings": asdict(settings),
                "selection_model": selection_model,
                "rounds": records,
            },
        },
    )
    log.info(
        "%s: %d labels in %d rounds (selection: %s)", design, a.size, len(records), selection_model
    )
