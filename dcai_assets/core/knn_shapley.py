"""Exact KNN-Shapley data valuation (Jia et al., VLDB 2019): the Shapley value of every training
row for the utility "accuracy of a K-nearest-neighbour classifier on the validation rows",
computed exactly by a recursion over the rows sorted by distance. Distances come from one matrix
product per batch of validation rows; the sort, the cost that dominates, is a stable radix sort
of the distance bits (linear in N). Pure numpy/numba, no Dagster: usable from a notebook.

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


_SIGN = np.uint64(0x8000000000000000)


_DIGIT_BITS = 11
_DIGIT_MASK = np.uint64((1 << _DIGIT_BITS) - 1)
_LONG_RUN = 32  # longer runs of equal upper bits are sorted by mergesort, not insertion sort


@numba.njit(cache=True)
def _radix_argsort(
    keys: np.ndarray,
    idx: np.ndarray,
    hi: np.ndarray,
    hi_tmp: np.ndarray,
    idx_tmp: np.ndarray,
    counts: np.ndarray,
) -> np.ndarray:
    """Stable argsort of uint64 keys: an LSD radix sort (11-bit digits) of the upper 32 bits, a
    pass skipped when its digit is the same for every key (distances share exponent bits), then
    runs of equal upper bits put in full-key order. Ties keep index order, as a stable sort does.

    ``hi`` (upper 32 bits), ``idx`` (0..n-1) and ``counts`` (digit histograms) come filled by the
    pass that made the keys, saving a pass over the data."""
    n = keys.shape[0]
    src_h, src_i, dst_h, dst_i = hi, idx, hi_tmp, idx_tmp
    position = np.empty(1 << _DIGIT_BITS, np.int64)
    for d in range(3):
        if counts[d].max() == n:
            continue
        total = 0
        for b in range(1 << _DIGIT_BITS):
            position[b] = total
            total += counts[d, b]
        shift = np.uint64(_DIGIT_BITS * d)
        for i in range(n):
            h = src_h[i]
            b = (h >> shift) & _DIGIT_MASK
            p = position[b]
            dst_h[p] = h
            dst_i[p] = src_i[i]
            position[b] = p + 1
        src_h, dst_h = dst_h, src_h
        src_i, dst_i = dst_i, src_i
    start = 0
    while start < n:
        end = start + 1
        while end < n and src_h[end] == src_h[start]:
            end += 1
        if end - start > _LONG_RUN:
            segment = src_i[start:end].copy()
            ranked = np.argsort(keys[segment], kind="mergesort")
            for j in range(end - start):
                src_i[start + j] = segment[ranked[j]]
        else:
            for i in range(start + 1, end):
                item = src_i[i]
                key = keys[item]
                j = i - 1
                while j >= start and keys[src_i[j]] > key:
                    src_i[j + 1] = src_i[j]
                    j -= 1
                src_i[j + 1] = item
        start = end
    return src_i


@numba.njit(cache=True)
def _recursion(
    order: np.ndarray, y: np.ndarray, yv: int, k: int, weight: float, values: np.ndarray, loo: np.ndarray
) -> None:
    """Add ``weight`` x the exact Shapley (Jia et al. 2019, Theorem 1) and leave-one-out values of
    every training row, given the training rows sorted by distance to one validation row."""
    n = order.shape[0]
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
        loo[row] += weight * ((1.0 if y[row] == yv else 0.0) - enter) / k


@numba.njit(cache=True)
def squared_distances(V: np.ndarray, XT: np.ndarray, x_sq: np.ndarray, out: np.ndarray) -> None:
    """Squared Euclidean distances of the rows of V to the columns of XT: |v|^2 + |x|^2 - 2 v.x,
    one matrix product (BLAS) for the block. The kernel computes exactly these numbers too."""
    cross = np.dot(V, XT)
    for q in range(V.shape[0]):
        v_sq = _row_sq(V, q)
        for i in range(XT.shape[1]):
            out[q, i] = v_sq + x_sq[i] - 2.0 * cross[q, i]


@numba.njit(cache=True)
def _row_sq(V: np.ndarray, q: int) -> float:
    total = 0.0
    for j in range(V.shape[1]):
        total += V[q, j] * V[q, j]
    return total


@numba.njit(cache=True)
def _keys_from_cross(
    cross_row: np.ndarray, v_sq: float, x_sq: np.ndarray, keys: np.ndarray, hi: np.ndarray, idx: np.ndarray,
    counts: np.ndarray, scratch: np.ndarray,
) -> None:  # fmt: skip
    """One pass: distance, its sortable key, the key's upper bits and their digit histograms."""
    counts[:] = 0
    n = cross_row.shape[0]
    for i in range(n):
        scratch[i] = v_sq + x_sq[i] - 2.0 * cross_row[i]
    bits = scratch.view(np.uint64)
    for i in range(n):
        u = bits[i]
        key = ~u if u & _SIGN else u | _SIGN
        keys[i] = key
        h = key >> np.uint64(32)
        hi[i] = h
        idx[i] = i
        counts[0, h & _DIGIT_MASK] += 1
        counts[1, (h >> np.uint64(_DIGIT_BITS)) & _DIGIT_MASK] += 1
        counts[2, (h >> np.uint64(2 * _DIGIT_BITS)) & _DIGIT_MASK] += 1


@numba.njit(parallel=True, cache=True)
def _value_blocks(
    X: np.ndarray, y: np.ndarray, V: np.ndarray, yv: np.ndarray, w: np.ndarray, k: int, block: int, batch: int
) -> tuple[np.ndarray, np.ndarray]:
    """Validation rows in fixed blocks, blocks in parallel; each block sums in its own buffer and
    the buffers are added in block order, so the result does not depend on the thread count.
    Memory: O(N x blocks) for the buffers plus O(N x batch) per thread for distances."""
    n = X.shape[0]
    m = V.shape[0]
    XT = np.ascontiguousarray(X.T)
    x_sq = np.zeros(n)
    for i in range(n):
        for j in range(X.shape[1]):
            x_sq[i] += X[i, j] * X[i, j]
    blocks = (m + block - 1) // block
    values = np.zeros((blocks, n))
    loo = np.zeros((blocks, n))
    for b in numba.prange(blocks):
        keys = np.empty(n, np.uint64)
        counts = np.zeros((3, 1 << _DIGIT_BITS), np.int64)
        scratch = np.empty(n)
        hi = np.empty(n, np.uint64)
        hi_tmp = np.empty(n, np.uint64)
        idx = np.empty(n, np.int64)
        idx_tmp = np.empty(n, np.int64)
        stop = min(m, (b + 1) * block)
        for start in range(b * block, stop, batch):
            end = min(stop, start + batch)
            cross = np.dot(V[start:end], XT)
            for q in range(end - start):
                _keys_from_cross(cross[q], _row_sq(V, start + q), x_sq, keys, hi, idx, counts, scratch)
                order = _radix_argsort(keys, idx, hi, hi_tmp, idx_tmp, counts)
                _recursion(order, y, yv[start + q], k, w[start + q], values[b], loo[b])
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
    batch: int = 16,
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
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):  # numba runs the blocks in parallel already
        values, loo = _value_blocks(
            X, y, V, yv, np.ascontiguousarray(w), int(k), int(max(1, block)), int(max(1, batch))
        )
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
