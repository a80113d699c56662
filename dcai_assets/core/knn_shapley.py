"""Exact KNN-Shapley data valuation (Jia et al., VLDB 2019): the Shapley value of every training
row for the utility "accuracy of a K-nearest-neighbour classifier on the validation rows",
computed exactly in O(N log N) per validation row by a recursion over the rows sorted by
distance. Pure numpy/numba, no Dagster: usable from a notebook.

Utility, for a validation row v and a subset S of the training rows, with the rows of S sorted by
(squared Euclidean distance to v, row index): U_v(S) = (1/K) * sum over the first min(K, |S|)
rows of [label == label of v]; U_v(empty) = 0. The value of a training row is the weighted mean
over validation rows of its Shapley value for U_v (Shapley values are linear in the utility).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np


@dataclass(frozen=True)
class ShapleyResult:
    """Per training row: its exact KNN-Shapley value and its leave-one-out value (same utility)."""

    values: np.ndarray
    loo: np.ndarray


@numba.njit(cache=True)
def _value_one(
    X: np.ndarray, y: np.ndarray, v: np.ndarray, yv: int, k: int, weight: float,
    dist: np.ndarray, values: np.ndarray, loo: np.ndarray,
) -> None:  # fmt: skip
    """Add ``weight`` x the Shapley and LOO values of every training row for one validation row."""
    n, d = X.shape
    for i in range(n):
        s = 0.0
        for j in range(d):
            diff = X[i, j] - v[j]
            s += diff * diff
        dist[i] = s
    order = np.argsort(dist, kind="mergesort")  # stable: ties broken by row index
    last = order[n - 1]
    match_next = 1.0 if y[last] == yv else 0.0
    s_next = match_next / n
    values[last] += weight * s_next
    for r in range(n - 2, -1, -1):  # r is the 0-based rank; the paper's i = r + 1
        row = order[r]
        match = 1.0 if y[row] == yv else 0.0
        i = r + 1
        s_here = s_next + (match - match_next) / k * min(k, i) / i
        values[row] += weight * s_here
        s_next, match_next = s_here, match
    # Leave-one-out: removing a row among the K nearest lets the (K+1)-th in.
    enter = 0.0
    if n > k:
        enter = 1.0 if y[order[k]] == yv else 0.0
    for r in range(min(k, n)):
        row = order[r]
        match = 1.0 if y[row] == yv else 0.0
        loo[row] += weight * (match - enter) / k


@numba.njit(parallel=True, cache=True)
def _value_blocks(
    X: np.ndarray, y: np.ndarray, V: np.ndarray, yv: np.ndarray, w: np.ndarray, k: int, block: int,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Validation rows in fixed blocks, blocks in parallel; each block sums in its own buffer and
    the buffers are added in block order, so the result does not depend on the thread count."""
    n = X.shape[0]
    m = V.shape[0]
    blocks = (m + block - 1) // block
    values = np.zeros((blocks, n))
    loo = np.zeros((blocks, n))
    for b in numba.prange(blocks):
        dist = np.empty(n)
        for q in range(b * block, min(m, (b + 1) * block)):
            _value_one(X, y, V[q], yv[q], k, w[q], dist, values[b], loo[b])
    total_values = np.zeros(n)
    total_loo = np.zeros(n)
    for b in range(blocks):
        total_values += values[b]
        total_loo += loo[b]
    return total_values, total_loo


def knn_shapley(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    k: int = 5,
    *,
    val_weights: np.ndarray | None = None,
    block: int = 64,
) -> ShapleyResult:
    """Exact KNN-Shapley and leave-one-out values of each training row.

    ``y_train``/``y_val`` are class indices. ``val_weights`` (default: equal, summing to 1) turn
    the utility into a weighted accuracy, e.g. :func:`group_balanced_weights`. Validation rows are
    processed ``block`` at a time; memory is O(N x number of blocks), never N_val x N_train.

    Examples
    --------
    >>> result = knn_shapley(X_train, y_train, X_val, y_val, k=5)
    >>> harmful_first = np.argsort(result.values)
    """
    X = _matrix(X_train, "X_train")
    V = _matrix(X_val, "X_val")
    y = np.ascontiguousarray(y_train, dtype=np.int64)
    yv = np.ascontiguousarray(y_val, dtype=np.int64)
    if X.shape[0] == 0:
        raise ValueError("X_train: no training rows; expected at least one")
    if V.shape[0] == 0:
        raise ValueError("X_val: no validation rows; expected at least one")
    if X.shape[1] != V.shape[1]:
        raise ValueError(f"X_val has {V.shape[1]} features; expected {X.shape[1]}, as X_train")
    if y.shape != (X.shape[0],) or yv.shape != (V.shape[0],):
        raise ValueError("y_train and y_val: expected one label per row of X_train and X_val")
    if not 1 <= k <= X.shape[0]:
        raise ValueError(f"k: {k}; expected 1 <= k <= the number of training rows ({X.shape[0]})")
    w = np.full(V.shape[0], 1.0 / V.shape[0]) if val_weights is None else np.asarray(val_weights, float)
    if w.shape != (V.shape[0],):
        raise ValueError(f"val_weights: expected {V.shape[0]} weights, got shape {w.shape}")
    values, loo = _value_blocks(X, y, V, yv, np.ascontiguousarray(w), int(k), int(max(1, block)))
    return ShapleyResult(values=values, loo=loo)


def group_balanced_weights(groups: np.ndarray) -> np.ndarray:
    """Validation weights for a fairness-aware utility: each group of ``groups`` counts the same
    in total, however many validation rows it has (the mean of the per-group KNN accuracies)."""
    groups = np.asarray(groups)
    uniques, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    return 1.0 / (len(uniques) * counts[inverse])


def _matrix(X: np.ndarray, name: str) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (rows x features), got shape {X.shape}")
    bad = ~np.isfinite(X)
    if bad.any():
        cols = sorted(set(np.nonzero(bad)[1].tolist()))
        raise ValueError(
            f"{name}: NaN or infinite values in feature columns {cols[:10]}; expected finite numbers "
            "(impute or drop them in the pipeline's preprocessing)"
        )
    return np.ascontiguousarray(X)
