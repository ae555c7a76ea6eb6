"""Record what the heads' training procedures produce on a small fixed task (tests/test_recipe.py).

Run once from the code before the training procedure became components; the test then requires
the presets ``protocol: embrm`` and ``protocol: study`` to reproduce these numbers bit for bit
(same machine kind, one thread). Regenerate only when a change of results is intended:

    PYTHONPATH=workflow python tests/data/make_recipe_oracle.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

OUT = Path(__file__).with_name("recipe-oracle.npz")
DIM = 8
# (name, head type, members, params): both presets of every head that has them, ensembles too.
CASES = [
    ("bt-mlp-embrm", "bt-mlp", 1, {"protocol": "embrm"}),
    ("bt-mlp-study", "bt-mlp", 1, {"protocol": "study"}),
    ("clf-mlp-embrm", "clf-mlp", 1, {"protocol": "embrm"}),
    ("clf-mlp-study", "clf-mlp", 1, {"protocol": "study"}),
    ("bt-mlp-embrm-x2", "bt-mlp", 2, {"protocol": "embrm"}),
    ("clf-mlp-study-x2", "clf-mlp", 2, {"protocol": "study"}),
    ("clf-lgb-embrm", "clf-lgb", 1, {"protocol": "embrm", "n_estimators": 300}),
    ("clf-lgb-study", "clf-lgb", 1, {"protocol": "study"}),
]
MLP = {"hidden": [16, 8], "max_epochs": 40, "batch_size": 96, "lr": 1e-2}


def task():
    g = np.random.default_rng(0)
    x = g.standard_normal((1200, DIM)).astype(np.float32)
    r = x @ np.linspace(1.0, -0.5, DIM) + 0.5 * np.sin(3 * x[:, 0])
    a = g.integers(1200, size=500)
    b = (a + g.integers(1, 1200, size=500)) % 1200
    label = (g.random(500) < 1 / (1 + np.exp(-2 * (r[a] - r[b])))).astype(np.uint8)
    test = g.standard_normal((20, 10, DIM)).astype(np.float32)
    return x, a, b, label, test


def machine() -> str:
    """The kernels the numbers depend on: torch's CPU instruction set and version."""
    import torch

    return f"{torch.backends.cpu.get_cpu_capability()} torch {torch.__version__}"


def params_of(head_type: str, params: dict) -> dict:
    return {**(MLP if head_type.endswith("mlp") else {}), **params}


def run(name, head_type, members, params):
    from embrm.heads.base import PairData
    from embrm.heads.ensemble import Ensemble

    x, a, b, label, test = task()
    ensemble = Ensemble(
        head_type, members=members, params=params_of(head_type, params), seed=3, threads=1
    )
    ensemble.fit(PairData(x, a, b, label))
    out = {"predictions": ensemble.predict_reward(test)}
    out["curves"] = np.array(
        [[r["epoch"], r["train_loss"], r["val_loss"], r["val_accuracy"]] for r in ensemble.curves]
    )
    out["best_epoch"] = np.array([m.best_epoch_ for m in ensemble.members])
    if head_type == "clf-lgb":
        out["raw"] = np.stack(
            [m.booster_.predict(test.reshape(-1, DIM), raw_score=True) for m in ensemble.members]
        )
    out["params"] = np.array(json.dumps(ensemble.get_params(), sort_keys=True))
    return out


if __name__ == "__main__":
    arrays = {"machine": np.array(machine())}
    for case in CASES:
        for key, value in run(*case).items():
            arrays[f"{case[0]}/{key}"] = value
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(arrays)} arrays)")
