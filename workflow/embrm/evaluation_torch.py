"""Best-of-N picks with torch, for runs that train and score on a GPU (``training.device: cuda``).

Picks exactly the responses :func:`embrm.evaluation_sampled.bon_pick_positions` picks: for each repeat,
prompt and N, the argmax of the predicted reward over the first N responses of that repeat's order,
the first one in the order on ties (``torch.argmax`` returns the first maximal index). The same code
runs on the CPU, which is how it is tested where no GPU is present. Kept apart from
``embrm.evaluation_sampled`` so that CPU evaluation jobs never import torch.
"""

from __future__ import annotations

import numpy as np

# Bytes of the (repeats, P, K) block of reordered scores held on the device at once.
BLOCK_BYTES = 256 * 2**20


def bon_pick_positions(scores: np.ndarray, orders: np.ndarray, n_values, device: str) -> np.ndarray:
    """(repeats, P, len(N)) index of the response Best-of-N picks, computed on ``device``.

    ``n_values`` must be sorted, distinct and at most K (see ``clip_n_values``).
    """
    import torch

    target = torch.device(device)
    table = torch.as_tensor(np.ascontiguousarray(scores)).to(target)  # (P, K)
    order = torch.as_tensor(np.ascontiguousarray(orders, dtype=np.int64)).to(target)  # (R, K)
    prompts, responses = table.shape
    repeats = order.shape[0]
    picks = torch.empty((repeats, prompts, len(n_values)), dtype=torch.int64, device=target)
    step = max(1, BLOCK_BYTES // max(1, prompts * responses * table.element_size()))
    for start in range(0, repeats, step):
        block = order[start : start + step]  # (B, K)
        reordered = table[:, block]  # (P, B, K): position j of each repeat's order
        for i, n in enumerate(n_values):
            position = reordered[..., :n].argmax(dim=-1)  # (P, B), first maximum
            picks[start : start + step, :, i] = block.gather(1, position.T)
    return picks.cpu().numpy()
