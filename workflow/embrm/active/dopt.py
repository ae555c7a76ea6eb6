"""``dopt``: the greedy D-optimal batch for the last linear layer of the reward model.

With h(·) the penultimate features of the current model and r̂ = ⟨w, h⟩ + c its last layer, a
labelled pair (a, b) adds x xᵀ · p(1 − p) to the Fisher information of w under the Bradley-Terry
likelihood, where x = h(a) − h(b) and p = σ(r̂(a) − r̂(b)). A batch S is D-optimal when it
maximizes log det(M₀ + Σ_{i∈S} w_i x_i x_iᵀ), w_i = p_i(1 − p_i). Here M₀ = λI: a small ridge
that makes the determinant finite before d pairs are chosen (``pastdopt`` adds the labelled
pairs' information to M₀).

Greedy selection adds one candidate at a time. By the matrix determinant lemma, adding j raises
log det M by log(1 + w_j q_j) with q_j = x_jᵀ M⁻¹ x_j, so the step picks the largest such gain;
then Sherman-Morrison updates M⁻¹ ← M⁻¹ − c u uᵀ (u = M⁻¹ x_j, c = w_j / (1 + w_j q_j)) and,
for every candidate at once, q_i ← q_i − c (x_iᵀ u)². One step costs one pass over the (N, d)
candidate features (a matrix-vector product) plus O(d·k) for u after k picks (M⁻¹ is kept as M₀⁻¹
minus the k rank-one terms); no determinant is ever formed.

The ridge λ is ``ridge`` times the average information one candidate adds per dimension,
mean_i(w_i ‖x_i‖²) / d, so it means the same whatever the scale of the features.
"""

from __future__ import annotations

import numpy as np

NEEDS_MODEL = True
NEEDS_FEATURES = True
# Rows of the candidate features per block when forming x_iᵀ M₀⁻¹ x_i (bounds the temporary).
QUADRATIC_CHUNK = 16_384


def fisher_weights(dr_hat: np.ndarray) -> np.ndarray:
    """p(1 − p) with p = σ(Δr̂): the Bradley-Terry information of one comparison."""
    p = 0.5 * (1.0 + np.tanh(0.5 * np.asarray(dr_hat, dtype=np.float64)))
    return p * (1.0 - p)


def ridge_value(diff: np.ndarray, weight: np.ndarray, ridge: float) -> float:
    """λ = ridge · mean(w‖x‖²)/d; a positive floor keeps M₀ invertible for degenerate pools."""
    d = diff.shape[1]
    scale = float(np.mean(weight * np.einsum("ij,ij->i", diff, diff, dtype=np.float64))) / d
    return float(ridge) * max(scale, 1e-12)


def base_information(
    dim: int, lam: float, past_diff: np.ndarray | None, past_weight: np.ndarray | None
) -> np.ndarray:
    """M₀ = λI + Σ_past w x xᵀ (float64)."""
    m0 = lam * np.eye(dim)
    if past_diff is not None and len(past_diff):
        x = np.asarray(past_diff, dtype=np.float64)
        m0 += (x * np.asarray(past_weight, dtype=np.float64)[:, None]).T @ x
    return m0


def greedy(
    diff: np.ndarray,
    weight: np.ndarray,
    batch: int,
    base_inverse: np.ndarray | float,
    quadratic: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy maximization of log det(M₀ + Σ w x xᵀ) from ``base_inverse`` = M₀⁻¹ (a matrix, or
    a number s for M₀⁻¹ = s·I).

    Returns the chosen positions in the order chosen and each pick's log-det gain. ``quadratic``
    may pass the q_i = x_iᵀ M₀⁻¹ x_i already known (computed here otherwise).

    M⁻¹ is kept as M₀⁻¹ − Σ_k c_k u_k u_kᵀ (the Sherman-Morrison terms of the picks so far), so a
    pick costs O(d·picks) besides the pass over the candidates, not O(d²) for rewriting M⁻¹.
    """
    x = np.ascontiguousarray(diff, dtype=np.float32)
    w = np.asarray(weight, dtype=np.float64)
    n, d = x.shape
    batch = min(batch, n)
    scalar = np.ndim(base_inverse) == 0
    if quadratic is not None:
        q = np.array(quadratic, dtype=np.float64)
    elif scalar:
        q = float(base_inverse) * np.einsum("ij,ij->i", x, x, dtype=np.float64)
    else:
        q = quadratic_forms(x, np.asarray(base_inverse, dtype=np.float64))
    terms = np.empty((batch, d))  # u_k
    scales = np.empty(batch)  # c_k = w_k / (1 + w_k q_k)
    taken = np.zeros(n, dtype=bool)
    picks, gains = [], []
    for t in range(batch):
        gain = np.log1p(w * np.maximum(q, 0.0))
        gain[taken] = -np.inf
        j = int(np.argmax(gain))  # ties: the earliest pool position
        picks.append(j)
        gains.append(float(gain[j]))
        taken[j] = True
        xj = x[j].astype(np.float64)
        u = float(base_inverse) * xj if scalar else base_inverse @ xj
        if t:
            u -= terms[:t].T @ (scales[:t] * (terms[:t] @ xj))
        terms[t] = u
        scales[t] = w[j] / (1.0 + w[j] * max(q[j], 0.0))
        v = x @ u.astype(np.float32)  # x_iᵀ M⁻¹ x_j for every candidate: one pass
        q -= scales[t] * np.square(v, dtype=np.float64)
    return np.asarray(picks, dtype=np.int64), np.asarray(gains)


def quadratic_forms(diff: np.ndarray, inverse: np.ndarray) -> np.ndarray:
    """q_i = x_iᵀ M⁻¹ x_i for every row, in blocks."""
    out = np.empty(diff.shape[0])
    for start in range(0, diff.shape[0], QUADRATIC_CHUNK):
        block = np.asarray(diff[start : start + QUADRATIC_CHUNK], dtype=np.float64)
        out[start : start + block.shape[0]] = np.einsum("ij,ij->i", block @ inverse, block)
    return out


def select_information(candidates, batch: int, ridge: float, past_diff=None, past_dr_hat=None):
    """Greedy D-optimal positions given optional past pairs; also returns the log-det gains."""
    diff = candidates.diff
    weight = fisher_weights(candidates.dr_hat)
    lam = ridge_value(diff, weight, ridge)
    dim = diff.shape[1]
    if past_diff is None or len(past_diff) == 0:
        # M₀ = λI: its inverse and the quadratic forms need no matrix product.
        return greedy(diff, weight, batch, 1.0 / lam)
    m0 = base_information(dim, lam, past_diff, fisher_weights(past_dr_hat))
    inverse = np.linalg.inv(m0)
    return greedy(diff, weight, batch, 0.5 * (inverse + inverse.T))


def select(candidates, batch: int, *, ridge: float, **_) -> np.ndarray:
    picks, _ = select_information(candidates, batch, ridge)
    return picks
