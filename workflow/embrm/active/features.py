"""The selection model: penultimate features h(·) and rewards r̂(·) the rules read.

For a head whose model ends in a linear layer (``bt-mlp``, ``clf-mlp``: D → 1024 → 512 → 1;
``bt-linear``, ``clf-linear``: D → 1), h is the input of that last layer (the 512 hidden units;
the embedding itself for the linear heads) and r̂ its output. An ensemble is read through its first
member. A head without a last linear layer (``clf-lgb``, gradient-boosted trees) gets a stand-in:
a ``bt-linear`` model (Bradley-Terry with a linear reward on the embeddings) fitted each round to
the same labelled pairs; h is then the embedding. The model used is recorded per run
(``selection_model``).
"""

from __future__ import annotations

import numpy as np

from ..seeding import int_seed

FEATURE_CHUNK_ROWS = 16_384
STAND_IN = "bt-linear"


def last_linear(head) -> bool:
    """Whether a fitted head is a torch model ending in a linear layer."""
    model = getattr(head, "model_", None)
    if model is None:
        return False
    import torch

    return isinstance(model, torch.nn.Sequential) and isinstance(model[-1], torch.nn.Linear)


class SelectionModel:
    """h and r̂ of any embedding rows, from a fitted torch head."""

    def __init__(self, head, description: str):
        self.head = head
        self.description = description

    @classmethod
    def for_ensemble(cls, ensemble, data, *, seed: int, device: str, threads: int):
        """The run's own head (first member) when it ends in a linear layer, else the stand-in
        fitted on ``data`` (the labelled pairs)."""
        member = ensemble.members[0]
        if last_linear(member):
            return cls(member, f"{ensemble.head_type} (last layer)")
        from ..heads import make_head

        stand_in = make_head(
            STAND_IN,
            seed=int_seed(seed, "active", "stand-in"),
            device=device,
            threads=threads,
        )
        stand_in.fit(data)
        return cls(stand_in, f"{STAND_IN} on the embeddings (stand-in for {ensemble.head_type})")

    def features(self, embeddings, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(h float32 (m, d), r̂ float64 (m,)) of ``embeddings[index]``, read in chunks (a memory
        map is never copied whole)."""
        import torch

        model = self.head.model_
        body, last = model[:-1], model[-1]
        device = self.head.device_
        h_out = np.empty((index.size, last.in_features), dtype=np.float32)
        r_out = np.empty(index.size)
        with torch.inference_mode():
            for start in range(0, index.size, FEATURE_CHUNK_ROWS):
                part = index[start : start + FEATURE_CHUNK_ROWS]
                block = np.asarray(embeddings[part], dtype=np.float32)
                h = body(torch.from_numpy(block).to(device))
                h_out[start : start + part.size] = h.float().cpu().numpy()
                r_out[start : start + part.size] = last(h).squeeze(-1).double().cpu().numpy()
        return h_out, r_out

    def pair_features(self, embeddings, a: np.ndarray, b: np.ndarray):
        """(h(a) − h(b), r̂(a) − r̂(b)) for flat pair indices over ``embeddings`` (N, D); each
        distinct response is read and scored once."""
        used, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
        h, r = self.features(embeddings, used)
        ia, ib = inverse[: a.size], inverse[a.size :]
        return h[ia] - h[ib], r[ia] - r[ib]
