"""Synthetic metrics.json records shaped like the evaluate stage writes them.

Figures and tables are tested on these without training anything: the numbers follow simple
known rules (gain grows with β, with the number of pairs and with cross-prompt pairing).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
from embrm.evaluation_exact import kl_upper_bound, pick_probabilities
from embrm.overoptimization import gao_fit

N_VALUES = [2, 5, 10, 50]
RANDOM_PICK = 0.1
ORACLE = [0.6, 1.1, 1.4, 2.0]
# Exact KL of Best-of-N from uniform with K = 50 distinct scores, at N_VALUES.
_W = pick_probabilities(N_VALUES[-1])[np.array(N_VALUES) - 1]
KL = (_W * np.log(np.where(_W > 0, _W, 1.0) * N_VALUES[-1])).sum(axis=1).tolist()


def record(
    world="w1",
    design="same-random",
    n=100,
    seed=0,
    beta=1.0,
    head="bt-mlp",
    members=1,
    gain=0.5,
    mean_abs_dr=1.0,
    spearman=0.4,
) -> dict:
    """One run's metrics.json content with the headline numbers given."""
    curve = [gain * f for f in (0.3, 0.6, 0.8, 1.0)]

    def metrics(shift: float) -> dict:
        g = gain + shift
        gains = [c + shift for c in curve]
        alpha, beta = gao_fit(np.sqrt(KL), gains)
        return {
            "bon_kl_curve": KL,
            "bon_kl_bound_curve": kl_upper_bound(N_VALUES).tolist(),
            "bon_quantile_curve": [0.5 + 0.1 * x for x in gains],
            "bon_win_rate_curve": [0.5 + 0.1 * x for x in gains],
            "bon_gold_z_curve": [0.4 * x for x in gains],
            "bon_proxy_z_curve": [0.4 * x + 0.1 * (i + 1) for i, x in enumerate(gains)],
            "bon_kl": KL[-1],
            "bon_quantile": 0.5 + 0.1 * g,
            "bon_win_rate": 0.5 + 0.1 * g,
            "gao_alpha": alpha,
            "gao_beta": beta,
            "bon_peak_n": N_VALUES[-1],
            "bon_peak_kl": KL[-1],
            "bon_peak_before_k": 0.0,
            "proxy_gold_gap": 0.4,
            "n_values": N_VALUES,
            "bon_reward": [RANDOM_PICK + c + shift for c in curve],
            "bon_gain_curve": [c + shift for c in curve],
            "oracle_bon_reward": ORACLE,
            "random_pick_reward": RANDOM_PICK,
            "oracle_best_reward": ORACLE[-1],
            "bon_n_max": N_VALUES[-1],
            "bon_gain": g,
            "oracle_bon_gain": ORACLE[-1] - RANDOM_PICK,
            "bon_gain_normalized": g / (ORACLE[-1] - RANDOM_PICK),
            "spearman": spearman,
            "spearman_defined_fraction": 1.0,
            "accuracy_vs_labels": 0.6,
            "accuracy_vs_golden": 0.7,
        }

    annotator = f"bt-beta{beta:g}"
    aggregations = {"mean": metrics(0.0)}
    if members > 1:
        aggregations.update({"min": metrics(-0.05), "first": metrics(-0.02)})
    return {
        "run": {
            "world": world,
            "design": design,
            "n": n,
            "seed": seed,
            "annotator": annotator,
            "head": head,
            "source": "synthetic",
            "world_spec": {"source": "synthetic", "tau": 0.5, "test_responses": 50},
        },
        "annotation": {
            "annotator": {"model": "bt", "beta": beta},
            "train": {
                "pairs": n,
                "mean_abs_dr": mean_abs_dr,
                "expected_error_rate": 0.5 / (1 + beta),
                "realized_error_rate": 0.5 / (1 + beta),
                "scale": 1.0,
            },
            "heldout": {
                "pairs": 50,
                "mean_abs_dr": mean_abs_dr,
                "expected_error_rate": 0.2,
                "realized_error_rate": 0.2,
                "scale": 1.0,
            },
        },
        "training": {
            "head": {
                "type": head,
                "members": members,
                "seed": 1234 + seed,
                "device": "auto",
                "hidden": [8, 4],
                "lr": 0.001,
            },
            "fit_seconds": 1.0,
            "predict_seconds": 0.1,
            "device": "cpu",
        },
        "curves": [
            {"member": "0", "epoch": "1", "train_loss": "0.7", "val_loss": "0.69"},
            {"member": "0", "epoch": "2", "train_loss": "0.6", "val_loss": "0.65"},
        ],
        "evaluation": {
            "repeats": 10,
            "seed": 0,
            "n_values_requested": N_VALUES,
            "n_values": N_VALUES,
            "test_prompts": 20,
            "test_responses": 50,
            "heldout_pairs": 50,
            "members": members,
            "aggregations": list(aggregations),
        },
        "metrics": aggregations,
        "evaluate_seconds": 0.01,
    }


def grid(
    worlds=("w1",),
    designs=("same-random", "cross-random", "same-similar", "cross-similar"),
    quantities=(100, 400),
    betas=(1.0, 10.0),
    heads=("bt-mlp", "clf-lgb"),
    seeds=(0, 1, 2),
    members=1,
) -> list[dict]:
    """Records of a full grid; the gain rises with β, n and cross-prompt pairing, plus noise."""
    rng = np.random.default_rng(0)
    out = []
    for world, design, n, beta, head, seed in itertools.product(
        worlds, designs, quantities, betas, heads, seeds
    ):
        cross = design.startswith("cross")
        similar = design.endswith("similar")
        dr = (1.6 if cross else (0.4 if similar else 1.1)) + 0.01 * seed
        gain = (
            0.2
            + 0.1 * np.log10(beta)
            + 0.05 * np.log10(n)
            + 0.2 * dr
            + (0.05 if head.startswith("clf") else 0.0)
            + rng.normal(0, 0.02)
        )
        out.append(
            record(
                world,
                design,
                n,
                seed,
                beta,
                head,
                members,
                float(gain),
                dr,
                float(0.3 + 0.1 * dr + rng.normal(0, 0.01)),
            )
        )
    return out


def write(records: list[dict], directory: Path) -> list[Path]:
    """Write each record as its own metrics.json; return the paths."""
    paths = []
    for i, rec in enumerate(records):
        path = Path(directory) / f"run{i}" / "metrics.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rec))
        paths.append(path)
    return paths
