"""The two training protocols: the study's released procedure, property by property, and embrm's
own (enough optimizer steps at any size, no choice made with the test split)."""

from __future__ import annotations

import itertools
import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import assert_agree_across_threads
from embrm.errors import ConfigError
from embrm.heads import make_head, study
from embrm.heads.base import PairData
from embrm.heads.ensemble import Ensemble
from embrm.heads.mlp import MLPHead

DIM = 8
SMALL = {"hidden": [16, 8]}


def pair_task(pairs: int, rows: int = 1500, seed: int = 0) -> PairData:
    g = np.random.default_rng(seed)
    x = g.standard_normal((rows, DIM)).astype(np.float32)
    r = x @ np.linspace(1.0, -0.5, DIM)
    a = g.integers(rows, size=pairs)
    b = (a + g.integers(1, rows, size=pairs)) % rows
    # Noisy BT labels, so that the validation loss moves both ways.
    label = (g.random(pairs) < 1 / (1 + np.exp(-(r[a] - r[b])))).astype(np.uint8)
    return PairData(x, a, b, label, source="train.npy", pairs_source="pairs.npz")


# -- the study's split -------------------------------------------------------------------------
@pytest.mark.parametrize("objective", ["bt", "clf"])
def test_study_split_puts_most_mirrors_of_validation_examples_in_training(objective):
    n = 2000
    g = np.random.default_rng(1)
    a, b = g.integers(5000, size=n), g.integers(5000, size=n)
    examples = study.examples(a, b, g.integers(0, 2, size=n), objective, seed=0)
    assert examples["target"].size == 2 * n  # both orders (BT) or both responses (CLF)
    train, val = study.split(2 * n, 0.2, member=9)
    assert val.size == math.ceil(0.2 * 2 * n) and train.size + val.size == 2 * n
    share = study.mirror_share(examples["pair"][train], examples["pair"][val])
    # Each validation example's partner is one of the other 2n − 1 examples, 80% of them training.
    assert abs(share - 0.8) < 0.03, share
    if objective == "bt":
        # The partner is the mirror image: the same pair reversed with the flipped label.
        flipped = {
            (f, s, t)
            for f, s, t in zip(*(examples[k] for k in ("first", "second", "target")), strict=True)
        }
        i = val[0]
        assert (examples["second"][i], examples["first"][i], 1 - examples["target"][i]) in flipped


def test_study_split_is_sklearns_train_test_split_with_random_state_42_plus_member():
    from sklearn.model_selection import train_test_split

    for member in (0, 9):
        train, val = study.split(101, 0.2, member)
        ref_train, ref_val = train_test_split(
            np.arange(101), test_size=0.2, random_state=42 + member
        )
        assert np.array_equal(train, ref_train) and np.array_equal(val, ref_val)
        permutation = np.random.RandomState(42 + member).permutation(101)
        assert np.array_equal(val, permutation[:21]) and np.array_equal(train, permutation[21:])


def test_embrm_split_keeps_both_orders_of_a_pair_together():
    data = pair_task(500)
    train, val = data.split(0.2, np.random.default_rng(0))
    assert not np.intersect1d(train, val).size  # split by pair: no validation pair in training


def test_study_heads_fit_on_the_study_split():
    data = pair_task(400)
    for head_type in ("bt-mlp", "clf-lgb"):
        params = {**SMALL, "max_epochs": 2} if head_type == "bt-mlp" else {}
        head = make_head(head_type, seed=0, protocol="study", **params).fit(data)
        train_pairs, val_pairs = head.split_pairs_
        assert train_pairs.size == 640 and val_pairs.size == 160
        assert abs(study.mirror_share(train_pairs, val_pairs) - 0.8) < 0.06


# -- the stopping rule -------------------------------------------------------------------------
SCRIPT = [1.0, 0.8, 0.9, 0.95, 0.85, 0.7, 0.75, 0.8, 0.82, 0.6]
# Epoch 4 does not stop (0.95 is not above 1.0), nor do 5-8 although the loss rises at 7 and 8;
# epoch 9 does (0.82 > 0.7, 0.75, 0.8). The best epoch is 6.
FIRST_STOP = 9


def test_stopping_rule_on_a_scripted_loss_sequence():
    stops = [study.should_stop(SCRIPT[:k]) for k in range(1, len(SCRIPT) + 1)]
    assert stops.index(True) + 1 == FIRST_STOP
    assert not any(study.should_stop(SCRIPT[:k]) for k in range(1, 4))  # never before epoch 4
    assert not study.should_stop([1.0, 2.0, 3.0, 3.0])  # equal is not larger
    assert study.should_stop([1.0, 2.0, 3.0, 3.5])  # a rising loss stops at the 4th epoch


def scripted_validation(monkeypatch, losses, snapshots):
    """Make the study's validation return ``losses`` in turn, keeping the weights it saw."""

    def validate(self, x, val):
        snapshots.append({k: v.detach().clone() for k, v in self.model_.state_dict().items()})
        return losses[len(snapshots) - 1], 0.5

    monkeypatch.setattr(MLPHead, "_study_validate", validate)


def test_study_fit_stops_by_the_rule_and_keeps_the_final_not_the_best_weights(monkeypatch):
    snapshots = []
    scripted_validation(monkeypatch, SCRIPT, snapshots)
    head = make_head("bt-mlp", seed=0, protocol="study", **SMALL).fit(pair_task(300))
    assert len(head.curves_) == FIRST_STOP == head.best_epoch_
    assert [row["val_loss"] for row in head.curves_] == SCRIPT[:FIRST_STOP]
    final = head.model_.state_dict()
    assert all(np.array_equal(final[k], snapshots[-1][k]) for k in final)
    best = int(np.argmin(SCRIPT[:FIRST_STOP]))  # epoch 6, not the one kept
    assert any(not np.array_equal(final[k], snapshots[best][k]) for k in final)


def test_study_fit_runs_max_epochs_when_the_rule_never_fires(monkeypatch):
    snapshots = []
    scripted_validation(monkeypatch, [1.0 / (k + 1) for k in range(40)], snapshots)
    head = make_head("clf-mlp", seed=0, protocol="study", **SMALL).fit(pair_task(200))
    assert len(head.curves_) == 30 == head.best_epoch_


# -- the schedule ------------------------------------------------------------------------------
def test_study_epoch_is_ceil_n_over_batch_sampled_steps(monkeypatch, training_batches):
    import embrm.heads.mlp as mlp

    draws = training_batches
    steps = []

    class CountingAdam(mlp.Adam):
        def step(self):
            steps.append(1)
            super().step()

    monkeypatch.setattr(mlp, "Adam", CountingAdam)
    data = pair_task(500)  # CLF: 1,000 examples, 800 in training
    head = make_head(
        "clf-mlp", seed=0, protocol="study", batch_size=300, max_epochs=2, patience=3, **SMALL
    ).fit(data)
    per_epoch = math.ceil(800 / 300)
    assert head.steps_per_epoch_ == per_epoch == 3
    assert len(steps) == len(draws) == 2 * per_epoch
    for batch in draws:  # each step: the first `batch` of a fresh permutation
        assert batch.size == 300 and np.unique(batch).size == 300
    epoch = np.concatenate(draws[:per_epoch])
    # Sampling, not a pass: 900 draws over 800 examples repeat some and miss others.
    assert np.unique(epoch).size < 800
    assert not all(np.array_equal(draws[0], d) for d in draws[1:])


def test_study_batch_is_the_whole_set_when_smaller_than_10240():
    head = make_head("bt-mlp", seed=0, protocol="study", max_epochs=1, **SMALL)
    head.fit(pair_task(300))  # 600 ordered pairs, 480 in training
    assert head.steps_per_epoch_ == 1


@pytest.mark.parametrize(
    ("n", "batch", "steps"),
    [(400, 40, 10), (800, 80, 10), (1600, 160, 10), (32_000, 3200, 10), (200_000, 10_240, 20)],
)
def test_embrm_schedule_gives_small_sets_enough_steps(n, batch, steps):
    assert MLPHead.epoch_schedule(MLPHead.defaults, n) == (batch, steps)


@pytest.mark.parametrize("head_type", ["bt-mlp", "clf-mlp"])
def test_embrm_protocol_never_keeps_a_first_step_model_at_500_pairs(head_type, monkeypatch):
    import embrm.heads.mlp as mlp

    steps = []

    class CountingAdam(mlp.Adam):
        def step(self):
            steps.append(1)
            super().step()

    monkeypatch.setattr(mlp, "Adam", CountingAdam)
    head = make_head(head_type, seed=0, threads=1).fit(pair_task(500))  # default schedule
    per_epoch = len(steps) / len(head.curves_)
    assert per_epoch == head.params["min_steps_per_epoch"] == 10
    assert head.best_epoch_ * per_epoch >= 10  # the kept model has had at least 10 steps
    # The study's schedule on the same set: one full-batch step per epoch.
    assert MLPHead.epoch_schedule({**head.params, "min_steps_per_epoch": 1}, 400)[1] == 1


# -- seeds and members -------------------------------------------------------------------------
def test_study_members_count_down_from_the_evaluated_last_member():
    params = {"protocol": "study", **SMALL, "max_epochs": 1}
    one = Ensemble("bt-mlp", members=1, params=params, seed=2)
    three = Ensemble("bt-mlp", members=3, params=params, seed=2)
    assert [m.params["study_member"] for m in one.members] == [9]
    assert [m.params["study_member"] for m in three.members] == [9, 8, 7]
    data = pair_task(200)
    one.fit(data)
    three.members[0].fit(data)
    x = data.embeddings[:50]
    # Member 0 is the released evaluation's model, whatever the ensemble size.
    assert np.array_equal(one.predict_reward(x)[0], three.members[0].predict_reward(x))
    alone = make_head("bt-mlp", seed=2, study_member=9, **params).fit(data)
    assert np.array_equal(alone.predict_reward(x), one.members[0].predict_reward(x))
    with pytest.raises(ConfigError, match=r"heads\.\*\.members.*at most study_member \+ 1 = 10"):
        Ensemble("bt-mlp", members=11, params=params)


def test_study_torch_seed_is_seed_times_42_plus_member():
    import torch
    from embrm.heads.torch_common import build_mlp

    head = make_head("clf-mlp", seed=3, protocol="study", max_epochs=1, **SMALL)
    head.fit(pair_task(100))
    assert study.torch_seed(3, 9) == 135
    # Its initial weights are those of a network built right after torch.manual_seed(135): the
    # first layer moves little in one epoch of one step at lr 1e-3.
    torch.manual_seed(135)
    initial = build_mlp(DIM, SMALL["hidden"])[0].weight.detach()
    trained = head.model_[0].weight.detach()
    assert float((trained - initial).abs().max()) <= 1.01e-3


def test_study_protocol_matches_a_literal_reading_of_the_released_training_loop():
    """An independent implementation of the released loop (separate module, torch's own Adam and
    BCELoss) on the same examples, split and seed gives the same model."""
    import torch

    data = pair_task(300)
    seed, member = 1, 9
    head = make_head("bt-mlp", seed=seed, protocol="study", max_epochs=6, **SMALL).fit(data)

    rows, a, b = data.compact()
    ex = study.examples(a, b, data.label, "bt", seed)
    train, val = study.split(ex["target"].size, 0.2, member)
    x = torch.from_numpy(rows)
    x_train = torch.stack([x[ex["first"][train]], x[ex["second"][train]]], dim=1)
    y_train = torch.from_numpy(ex["target"][train]).view(-1, 1)
    x_val = torch.stack([x[ex["first"][val]], x[ex["second"][val]]], dim=1)
    y_val = torch.from_numpy(ex["target"][val]).view(-1, 1)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = torch.nn.Linear(DIM, 16)
            self.fc2 = torch.nn.Linear(16, 8)
            self.fc3 = torch.nn.Linear(8, 1)

        def forward(self, z):
            return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(z)))))

    torch.manual_seed(seed * 42 + member)
    net = Net()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, foreach=True)
    criterion = torch.nn.BCELoss()
    batch = min(10_240, x_train.shape[0])
    losses = []
    for _ in range(6):
        for _ in range(0, x_train.shape[0], batch):
            idx = torch.randperm(x_train.shape[0])[:batch]
            optimizer.zero_grad()
            out = torch.sigmoid(net(x_train[idx][:, 0]) - net(x_train[idx][:, 1]))
            criterion(out, y_train[idx]).backward()
            optimizer.step()
        with torch.no_grad():
            out = torch.sigmoid(net(x_val[:, 0]) - net(x_val[:, 1]))
        losses.append(criterion(out, y_val).item())
        if len(losses) > 3 and all(losses[-1] > v for v in losses[-4:-1]):
            break
    assert len(head.curves_) == len(losses)
    assert np.allclose([r["val_loss"] for r in head.curves_], losses, atol=1e-6)
    with torch.no_grad():
        expected = net(x[:40]).squeeze(-1).numpy()
    assert np.allclose(head.predict_reward(rows[:40]), expected, atol=1e-6)


# -- LightGBM ----------------------------------------------------------------------------------
def test_study_lgb_is_the_notebooks_lgb_train():
    data = pair_task(300)
    head = make_head("clf-lgb", seed=0, protocol="study").fit(data)
    assert head.best_epoch_ == len(head.curves_) == 1000  # no early stopping
    params = head.booster_.params
    assert params["objective"] == "binary"
    assert "num_leaves" not in params and "learning_rate" not in params  # LightGBM's stock ones
    scores = head.predict_reward(data.embeddings[:100])
    # Scored by the raw margin, not the notebook's probability: the same order without the ties
    # float32 makes of probabilities near 1 (tests/test_recipe.py).
    raw = head.booster_.predict(data.embeddings[:100], raw_score=True)
    assert np.array_equal(scores, raw.astype(np.float32))
    with pytest.raises(ConfigError, match=r"params\.learning_rate': is not used by protocol"):
        make_head("clf-lgb", protocol="study", learning_rate=0.05)


# -- no choice made with the test split -------------------------------------------------------
@pytest.mark.parametrize(
    ("head_type", "params"),
    [("clf-lgb", {}), ("bt-mlp", {"hidden": [16], "max_epochs": 8})],
)
def test_training_reads_nothing_of_the_test_split(stage_world, tmp_path, head_type, params):
    """Early stopping and every default are chosen on training data: with the world's test
    rewards and embeddings replaced by noise, the train stage saves the same model, bit for bit."""
    from embrm import stages

    scrambled = tmp_path / "scrambled"
    shutil.copytree(stage_world / "world", scrambled)
    g = np.random.default_rng(7)
    for name in ("test_rewards.npy", "test_embeddings.npy"):
        original = np.load(scrambled / name)
        np.save(scrambled / name, g.standard_normal(original.shape).astype(original.dtype))
    saved = {}
    for label, world in (("intact", stage_world / "world"), ("scrambled", scrambled)):
        out = tmp_path / label
        stages.train(
            world,
            stage_world / "pairs.npz",
            stage_world / "labels.npz",
            {"type": head_type, "members": 1, "params": params},
            seed=0,
            threads=1,
            device="cpu",
            model_dir=out / "model",
            predictions_out=None,  # fit only: the train stage itself must not need the test set
            curves_out=out / "curves.csv",
            info_out=out / "train.json",
        )
        weights = "model.txt" if head_type == "clf-lgb" else "model.safetensors"
        saved[label] = (out / "model" / "member0" / weights).read_bytes()
        saved[label + "-curves"] = (out / "curves.csv").read_bytes()
    assert saved["intact"] == saved["scrambled"]
    assert saved["intact-curves"] == saved["scrambled-curves"]


@pytest.fixture(scope="module")
def stage_world(tmp_path_factory):
    from embrm.io import write_npz
    from embrm.sources import build_world

    root = tmp_path_factory.mktemp("protocol-stage")
    spec = {
        "source": "synthetic", "kind": "gaussian", "train_prompts": 150, "train_responses": 4,
        "test_prompts": 10, "test_responses": 20, "dim": DIM, "latent_dim": 4, "tau": 0.5,
        "sigma": 1.0, "sigma_spread": 0.0, "noise": 0.05, "nonlinearity": 0.0,
        "dtype": "float32", "seed": 0,
    }  # fmt: skip
    build_world(spec, root / "world")
    g = np.random.default_rng(0)
    a = g.integers(600, size=400)
    b = (a + 1 + g.integers(599, size=400)) % 600
    write_npz(root / "pairs.npz", a=a, b=b, heldout_a=a[:5], heldout_b=b[:5])
    write_npz(root / "labels.npz", label=(a > b).astype(np.uint8), heldout_label=np.ones(5))
    return root


class SealedSplit:
    """A world's test split that fails on any read but its dimension."""

    def __init__(self, dim: int):
        self._dim = dim

    @property
    def dim(self) -> int:
        return self._dim

    def __getattr__(self, name):
        raise AssertionError(f"the test split was read ({name})")


def test_clf_lgb_default_search_never_reads_the_test_split(tmp_path, monkeypatch):
    """The search behind clf-lgb's defaults runs with the test split sealed."""
    import argparse
    import importlib.util

    from conftest import REPO
    from embrm.world import World

    spec = importlib.util.spec_from_file_location("bench_heads", REPO / "benchmarks/heads.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    opened = World._open

    def sealed_open(self, split):
        if split == "test":
            return SealedSplit(self.train.dim)
        return opened(self, split)

    monkeypatch.setattr(World, "_open", sealed_open)
    args = argparse.Namespace(workdir=tmp_path, threads=1, tune_trials=0, json=tmp_path / "s.json")
    bench.tune_lgb(args)  # LightGBM's stock settings and the previous defaults, 8 sets each
    rows = json.loads((tmp_path / "s.json").read_text())
    assert len(rows) == 2 and all(0 < r["val_loss"] < 1 for r in rows)


@pytest.mark.parametrize("head_type", ["bt-mlp", "clf-mlp", "clf-lgb"])
def test_study_protocol_is_deterministic_at_a_thread_count_and_agrees_across(head_type):
    data = pair_task(300)
    params = {"protocol": "study"}
    if head_type != "clf-lgb":
        params.update(SMALL, max_epochs=5)
    one, two, again = (
        make_head(head_type, seed=4, threads=t, **params).fit(data) for t in (1, 2, 2)
    )
    x = data.embeddings[:200]
    assert np.array_equal(two.predict_reward(x), again.predict_reward(x))  # the same bits
    assert [r["val_loss"] for r in two.curves_] == [r["val_loss"] for r in again.curves_]
    assert_agree_across_threads(one.predict_reward(x), two.predict_reward(x))
    common = min(len(one.curves_), len(two.curves_))
    assert_agree_across_threads(
        [r["val_loss"] for r in one.curves_[:common]], [r["val_loss"] for r in two.curves_[:common]]
    )


@pytest.mark.slow
def test_one_grid_holds_both_protocols_and_attributes_their_gap(tmp_path):
    """A workflow run with the same head under both protocols: each run trains as configured,
    and the heads that differ in the protocol alone make the recipe's attribution."""
    from conftest import TINY_CONFIG, deep_merge, snakemake
    from embrm.config import Plan

    config = deep_merge(TINY_CONFIG, {"tracking": {"enabled": False}})
    # The two heads differ in the protocol alone, so they make the attribution's pair.
    short = {"hidden": [16], "max_epochs": 5}
    config["heads"] = {
        "bt-mlp": {"params": short},
        "bt-mlp-study": {"type": "bt-mlp", "params": {**short, "protocol": "study"}},
    }
    config["grid"].update(designs=["same-random"], annotators=["bt"], heads=sorted(config["heads"]))
    snakemake(tmp_path, "--cores", "2", config=config)
    runs = Plan(config).runs
    assert {run.head for run in runs} == {"bt-mlp", "bt-mlp-study"}
    results = tmp_path / "results/default"
    for run in runs:
        info = json.loads((results / "runs" / run.run_dir / "train.json").read_text())
        protocol = "study" if run.head == "bt-mlp-study" else "embrm"
        assert info["head"]["protocol"] == protocol
        # 200 pairs: the study's batch is its whole (mirrored) training split, one step an
        # epoch, and its stopping rule does not fire in 5 epochs; embrm's schedule takes at
        # least 10 steps an epoch.
        if protocol == "study":
            assert info["steps_per_epoch"] == [1] and info["epochs_run"] == [5]
        else:
            assert info["steps_per_epoch"][0] >= 10
    attribution = (results / "attribution.md").read_text()
    assert "bt-mlp = bt-mlp.embrm, bt-mlp-study = bt-mlp.study" in attribution
    # The whole gap is the mean over cells of the runs' paired difference in normalized gain.
    summary = pd.read_csv(results / "summary.csv").pivot_table(
        index=["world", "design", "annotator", "n", "seed"],
        columns="head",
        values="bon_gain_normalized",
    )
    gap = (summary["bt-mlp"] - summary["bt-mlp-study"]).mean()
    row = next(line for line in attribution.splitlines() if "**all (embrm − study)**" in line)
    assert row.startswith("| bt-mlp |") and f"{gap:+.3f} [no interval]" in row  # one seed
    page = (results / "report/attribution.html").read_text()
    assert "<table" in page and "bt-mlp-study = bt-mlp.study" in page


@pytest.mark.parametrize("head_type", ["bt-mlp", "clf-lgb"])
def test_study_heads_save_and_reload_identically(head_type, tmp_path):
    from embrm.heads import load_head

    data = pair_task(200)
    params = {**SMALL, "max_epochs": 3} if head_type == "bt-mlp" else {}
    head = make_head(head_type, seed=1, protocol="study", **params).fit(data)
    head.save(tmp_path)
    again = load_head(tmp_path)
    assert again.params["protocol"] == "study" and again.params["study_member"] == 9
    x = data.embeddings[:100]
    assert np.array_equal(again.predict_reward(x), head.predict_reward(x))


# -- benchmarks/protocols.py --compare: two experiments side by side -----------------------------
def protocols_benchmark():
    import importlib.util

    from conftest import REPO

    spec = importlib.util.spec_from_file_location(
        "bench_protocols", REPO / "benchmarks/protocols.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


# Per head: the gain each protocol adds to a run's gain (embrm's, study's).
PROTOCOL_SHIFT = {"bt-mlp": (0.0, 0.2), "clf-mlp": (0.0, 0.0)}
# Training noise per seed under each protocol: the paired differences average to 0.
SEED_NOISE = {"embrm": (0.1, 0.9, 0.5, 0.3), "study": (0.3, 0.5, 0.9, 0.1)}


def experiment(protocol: str, seeds=range(4)):
    """A summary table as the workflow writes it: one row per run, same-random pairs, 500 and
    2,000 pairs, β 1 and 10, two heads; the annotation statistics depend only on the data."""
    import pandas as pd

    g = np.random.default_rng(0 if protocol == "embrm" else 1)
    rows = []
    for n, beta, seed, head in itertools.product((500, 2000), (1, 10), seeds, PROTOCOL_SHIFT):
        data = np.random.default_rng([n, beta, seed])  # the pairs and labels of the cell
        noise = 0.05 * SEED_NOISE[protocol][seed]
        gain = 1.5 + 0.05 * beta + PROTOCOL_SHIFT[head][protocol == "study"] + noise
        rows.append({
            "world": "synthetic", "design": "same-random", "n": n, "annotator": f"bt-beta{beta}",
            "head": head, "seed": seed, "status": "ok", "annotator_model": "bt",
            "beta": float(beta),
            "head_type": head, "head_param_protocol": protocol, "head_param_batch_size": 10240,
            "head_param_val_fraction": 0.2, "head_param_min_steps_per_epoch": 10,
            "annotation_realized_error_rate": (0.38 if beta == 1 else 0.08) + 0.01 * data.random(),
            "annotation_mean_abs_dr": 1.1 + 0.01 * data.random(),
            "bon_n_max": 500, "bon_gain": gain, "bon_gain_normalized": gain / 3.0,
            "spearman": 0.7 + 0.01 * g.random(), "epochs": 30 if protocol == "study" else 5,
            "fit_seconds": (10.0 if protocol == "study" else 2.0) + g.random(),
        })  # fmt: skip
    return pd.DataFrame(rows)


def write_experiment(folder, summary):
    from embrm.findings import findings

    folder.mkdir(parents=True)
    summary.to_csv(folder / "summary.csv", index=False)
    for run in summary.itertuples():  # Snakemake's benchmark file of each train job
        tsv = folder / f"benchmarks/train/{run.world}/{run.design}/n{run.n}/seed{run.seed}"
        tsv = tsv / run.annotator / f"{run.head}.tsv"
        tsv.parent.mkdir(parents=True, exist_ok=True)
        tsv.write_text(f"s\tcpu_time\n{3 * run.fit_seconds}\t{run.fit_seconds + 1}\n")
    findings(summary).to_csv(folder / "findings.csv", index=False)


def markdown_rows(report: str, first_cell: str) -> list[list[str]]:
    return [
        [c.strip() for c in line.strip("|").split("|")]
        for line in report.splitlines()
        if line.startswith(f"| {first_cell} ")
    ]


def test_compare_pairs_runs_and_prints_differences_with_t_intervals(tmp_path):
    import pandas as pd
    from scipy import stats

    bench = protocols_benchmark()
    embrm_, study_ = experiment("embrm"), experiment("study")
    write_experiment(tmp_path / "default", embrm_)
    write_experiment(tmp_path / "study-protocol", study_.iloc[::-1])  # row order must not matter
    report = bench.compare_experiments(tmp_path / "default", tmp_path / "study-protocol")
    assert "## Protocols compared: embrm − study" in report
    assert (
        "paired runs (same world, design, n, seed, annotator, head; same pairs and labels): 32;"
        in report
    )
    rows = {(r[1], r[2], r[3]): r for r in markdown_rows(report, "same-random")}
    assert len(rows) == 8  # 2 quantities × 2 β × 2 heads
    for (annotator, n, head), row in rows.items():
        cell = {"annotator": annotator, "n": int(n), "head": head}
        mine, theirs = (
            frame.loc[(frame[list(cell)] == pd.Series(cell)).all(axis=1)]
            for frame in (embrm_, study_)
        )
        mine, theirs = mine.sort_values("seed"), theirs.sort_values("seed")
        d = mine["bon_gain"].to_numpy() - theirs["bon_gain"].to_numpy()
        half = stats.t.ppf(0.975, d.size - 1) * stats.sem(d)
        expected = f"{d.mean():+.3f} [{d.mean() - half:+.3f}, {d.mean() + half:+.3f}]"
        assert row[4] == "4" and row[7].strip("*") == expected.replace("-", "−")
        # bt-mlp: the study is 0.2 ahead, decided (bold); clf-mlp: no shift, noise both ways.
        assert row[7].startswith("**") == (head == "bt-mlp")
        assert float(row[5]) == pytest.approx(mine["bon_gain"].mean(), abs=6e-4)
        assert float(row[6]) == pytest.approx(theirs["bon_gain"].mean(), abs=6e-4)
        # Epochs (optimizer steps): embrm's 10 steps an epoch; the study's one full-batch step.
        assert (row[11], row[12]) == ("5.0 (50)", "30.0 (30)")
        fit, cpu = row[14].rstrip(")").split(" (")
        assert float(fit) == pytest.approx(theirs["fit_seconds"].mean(), abs=0.05)
        assert float(cpu) == pytest.approx(theirs["fit_seconds"].mean() + 1, abs=0.05)
    cost = {r[0]: r for r in markdown_rows(report, "bt-mlp") + markdown_rows(report, "all")}
    assert float(cost["all"][6].rstrip("×")) == pytest.approx(
        study_["fit_seconds"].mean() / embrm_["fit_seconds"].mean(), abs=0.05
    )
    assert float(cost["all"][9].rstrip("×")) == pytest.approx(
        (study_["fit_seconds"].mean() + 1) / (embrm_["fit_seconds"].mean() + 1), abs=0.05
    )
    # Each claim's verdict, per protocol, as its own findings.csv says.
    rows = markdown_rows(report, "1") + markdown_rows(report, "2")
    claims = {r[0]: r for r in rows if len(r) == 4}  # claim, statement, embrm, study
    assert len(claims) == 2 and {len(r) for r in rows} == {4, 5}  # parts: claim, part, ...
    for side, folder in ((2, "default"), (3, "study-protocol")):
        table = pd.read_csv(tmp_path / folder / "findings.csv", dtype={"claim": str})
        for claim in ("1", "2"):
            verdict = table[(table["claim"] == claim) & (table["part"] == "all")]["verdict"].item()
            assert claims[claim][side].startswith(f"**{verdict}**")
    assert "1a" in report and "not tested" in report  # parts listed, untestable ones included


def test_compare_shows_the_bootstrap_interval_its_verdicts_also_stand_on(tmp_path):
    import pandas as pd

    bench = protocols_benchmark()
    write_experiment(tmp_path / "a", experiment("embrm"))
    write_experiment(tmp_path / "b", experiment("study"))
    path = tmp_path / "b" / "findings.csv"
    table = pd.read_csv(path, dtype={"claim": str, "part": str})
    tested = table["effect"].notna() & (table["part"] != "all")
    table.loc[tested, "boot_low"] = table.loc[tested, "effect"] - 0.5
    table.loc[tested, "boot_high"] = table.loc[tested, "effect"] + 0.5
    table.to_csv(path, index=False)
    report = bench.compare_experiments(tmp_path / "a", tmp_path / "b")
    part = next(r for r in markdown_rows(report, "1") if len(r) == 5 and r[1] == "1a")
    row = table[tested & (table["part"] == "1a")].iloc[0]
    boot = f"{row['boot_low']:+.3f}, {row['boot_high']:+.3f}".replace("-", "−")
    assert part[4].endswith(f"; {boot}] {row['verdict']}")  # study: t-interval; bootstrap
    assert ";" not in part[3]  # embrm's findings.csv has no bootstrap interval


def test_compare_refuses_runs_that_saw_different_labels(tmp_path):
    from embrm.errors import DataError

    bench = protocols_benchmark()
    study_ = experiment("study")
    study_.loc[3, "annotation_realized_error_rate"] += 0.01
    write_experiment(tmp_path / "a", experiment("embrm"))
    write_experiment(tmp_path / "b", study_)
    with pytest.raises(
        DataError, match=r"annotation_realized_error_rate differs .* in 1 paired runs"
    ):
        bench.compare_experiments(tmp_path / "a", tmp_path / "b")


def test_compare_names_the_file_it_cannot_use(tmp_path):
    from embrm.errors import DataError

    bench = protocols_benchmark()
    with pytest.raises(DataError, match="missing: expected an experiment's results folder"):
        bench.compare_experiments(tmp_path / "missing", tmp_path / "missing")
    write_experiment(tmp_path / "a", experiment("embrm").drop(columns="spearman"))
    with pytest.raises(DataError, match=r"a/summary.csv: lacks column\(s\) spearman"):
        bench.compare_experiments(tmp_path / "a", tmp_path / "a")


def test_compare_without_findings_or_with_one_seed_says_so(tmp_path):
    bench = protocols_benchmark()
    for name, protocol in (("a", "embrm"), ("b", "study")):
        (tmp_path / name).mkdir()
        experiment(protocol, seeds=[0]).to_csv(tmp_path / name / "summary.csv", index=False)
    report = bench.compare_experiments(tmp_path / "a" / "summary.csv", tmp_path / "b")
    rows = markdown_rows(report, "same-random")
    assert len(rows) == 8 and all(r[7].endswith("(1 seed)") and "**" not in r[7] for r in rows)
    assert "findings.csv absent for embrm, study" in report


def test_compare_reads_an_unfinished_experiment_from_its_finished_runs(tmp_path):
    """An experiment still running has no summary.csv: its finished runs' metrics.json are read."""
    import fake_runs

    bench = protocols_benchmark()
    records = fake_runs.grid(designs=("same-random",), quantities=(100,), seeds=(0, 1))
    write_experiment(tmp_path / "done", pd_summary(records))
    fake_runs.write(records[:5], tmp_path / "running" / "runs")
    report = bench.compare_experiments(tmp_path / "done", tmp_path / "running")
    assert "no summary.csv yet; 5 finished runs read from metrics.json" in report
    assert "same pairs and labels): 5;" in report
    assert f"only in embrm (first): {len(records) - 5}, only in embrm (second): 0" in report
    assert "findings.csv absent for embrm (second)" in report


def pd_summary(records):
    import pandas as pd
    from embrm.summary import run_row

    return pd.DataFrame([run_row(r) for r in records])
