"""The study's released training procedure: its data layout, split, seeds and stopping rule.

The study's heads (``bt-mlp``, ``clf-mlp``, ``clf-lgb``) take ``protocol: study`` to train the way
the authors' released scripts do (``networks.py`` and ``step5_train_rms.py`` of their repository;
clf-lgb from an exploratory notebook, since the training script has no LightGBM). This module
holds what the MLP and LightGBM heads share; each quirk is kept on purpose and says so:

- **Data.** Every pair becomes two examples. CLF: (winner, 1) and (loser, 0). BT: the pair in
  both orders, (winner, loser) → 1 and (loser, winner) → 0, so the BT set is doubled.
- **Pre-shuffle.** The released script shuffles the examples once before splitting, with torch's
  unseeded global generator (a different order every time it runs). embrm seeds that shuffle from
  the run seed so that runs repeat; since the split below permutes again, this changes nothing
  but reproducibility.
- **Split by example.** ``sklearn.model_selection.train_test_split(test_size=0.2,
  random_state=42 + member)`` on the examples, not on the pairs: a pair's two examples land in
  training and validation independently, so about 80% of the validation examples have their
  mirror image (BT) or their partner (CLF) in training. Validation loss then tracks training loss
  and the stopping rule below rarely fires.
- **Seeds.** Member ``m`` of a run with seed ``s`` sets torch's seed to ``s·42 + m`` before the
  network is built; the batches come from the same generator.
- **Stopping.** After each epoch: stop when the newest validation loss is larger than each of the
  previous 3 (so never before epoch 4); the weights of the last epoch run are kept, not the best.
- **Members.** The released script trains 10 members (m = 0…9) and the released evaluation loads
  only the last one (m = 9); its "mean", "min" and "first" aggregations therefore coincide.
"""

from __future__ import annotations

import numpy as np

from ..seeding import int_seed

__all__ = ["examples", "mirror_share", "preshuffle", "should_stop", "split", "torch_seed"]

STUDY_ENSEMBLE = 10  # members trained by the released script; its evaluation loads the last
STUDY_SPLIT_STATE = 42  # train_test_split(random_state = 42 + member)
STUDY_SEED_FACTOR = 42  # torch.manual_seed(seed · 42 + member)


def torch_seed(seed: int, member: int) -> int:
    """The torch seed of one member in the released script."""
    return seed * STUDY_SEED_FACTOR + member


def examples(a: np.ndarray, b: np.ndarray, label: np.ndarray, objective: str, seed: int) -> dict:
    """The study's training examples of all pairs, in its pre-shuffled order.

    ``clf``: ``row`` and ``target`` (winners then losers before the shuffle); ``bt``: ``first``,
    ``second`` and ``target`` (every pair as (winner, loser) → 1, then as (loser, winner) → 0).
    ``pair`` says which pair each example came from.
    """
    from .recipe.bt_examples import both_orders, pointwise

    builders = {"clf": pointwise, "bt": both_orders}
    if objective not in builders:
        raise ValueError(f"unknown objective {objective!r}")
    out = builders[objective](a, b, label, np.arange(a.size))
    if objective == "bt":
        out["first"], out["second"] = out.pop("a"), out.pop("b")
    return preshuffle(out, seed)


def preshuffle(examples: dict, seed: int) -> dict:
    """The released script's one shuffle of all examples before the split.

    Unseeded in the released script; seeded here so that a run repeats (see the module notes).
    """
    order = np.random.default_rng(int_seed(seed, "study-shuffle")).permutation(
        examples["target"].size
    )
    return {key: value[order] for key, value in examples.items()}


def split(n_examples: int, val_fraction: float, member: int) -> tuple[np.ndarray, np.ndarray]:
    """(training, validation) example positions exactly as the released script splits them.

    scikit-learn's own function is called, so the shuffling semantics are its own: validation is
    the first ceil(val_fraction · n) positions of ``RandomState(42 + member).permutation(n)`` and
    training the rest, both in that permuted order (the order matters: batches index into it).
    """
    from sklearn.model_selection import train_test_split

    train, val = train_test_split(
        np.arange(n_examples), test_size=val_fraction, random_state=STUDY_SPLIT_STATE + member
    )
    return train, val


def should_stop(val_losses: list[float], window: int = 3) -> bool:
    """The released stopping rule: the newest loss is larger than each of the previous ``window``.

    Never true before ``window + 1`` losses exist. Not patience in the usual sense: the loss may
    rise for many epochs as long as one of the last three values is above the newest.
    """
    if len(val_losses) <= window:
        return False
    newest = val_losses[-1]
    return all(newest > previous for previous in val_losses[-window - 1 : -1])


def mirror_share(train_pairs: np.ndarray, val_pairs: np.ndarray) -> float:
    """Share of validation examples whose pair also has an example in training.

    For BT that example is the validation example's mirror image (the same pair, reversed, with
    the flipped label); for CLF it is the other response of the same comparison.
    """
    return float(np.isin(val_pairs, train_pairs).mean()) if val_pairs.size else float("nan")
