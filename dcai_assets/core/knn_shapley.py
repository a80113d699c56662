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
_DIGITS = 1 << _DIGIT_BITS
_DIGIT_MASK = np.uint64(_DIGITS - 1)
_LONG_RUN = 32  # longer runs of equal sorted bits are finished by mergesort, not insertion sort


@numba.njit(cache=True)
def _radix_argsort(
    keys: np.ndarray, keys_tmp: np.ndarray, idx: np.ndarray, idx_tmp: np.ndarray, varying: np.uint64
) -> np.ndarray:
    """Stable argsort of uint64 keys (``idx`` holds 0..n-1; ``varying`` is the OR of every
    key XOR the first one, so bits above its top bit are the same in every key).

    LSD radix passes of 11-bit digits cover the top varying bits, about log2(n) + 6 of them, so
    that keys equal in those bits are rare; such runs are then finished on the full key. Keys
    and indices move together, so every pass reads and writes memory in sequence but the
    scatter. Ties keep index order, as a stable sort does."""
    n = keys.shape[0]
    if varying == 0:
        return idx
    top = 63
    while (varying >> np.uint64(top)) == 0:
        top -= 1
    size_bits = 1
    while (1 << size_bits) < n:
        size_bits += 1
    digits = (size_bits + 6 + _DIGIT_BITS - 1) // _DIGIT_BITS
    low = max(0, top + 1 - digits * _DIGIT_BITS)
    counts = np.zeros((digits, _DIGITS), np.int64)
    for i in range(n):
        rest = keys[i] >> np.uint64(low)
        for d in range(digits):
            counts[d, (rest >> np.uint64(_DIGIT_BITS * d)) & _DIGIT_MASK] += 1
    src_k, src_i, dst_k, dst_i = keys, idx, keys_tmp, idx_tmp
    position = np.empty(_DIGITS, np.int64)
    for d in range(digits):
        if counts[d].max() == n:
            continue
        total = 0
        for b in range(_DIGITS):
            position[b] = total
            total += counts[d, b]
        shift = np.uint64(low + _DIGIT_BITS * d)
        for i in range(n):
            key = src_k[i]
            b = (key >> shift) & _DIGIT_MASK
            p = position[b]
            dst_k[p] = key
            dst_i[p] = src_i[i]
            position[b] = p + 1
        src_k, dst_k = dst_k, src_k
        src_i, dst_i = dst_i, src_i
    if low == 0:
        return src_i
    # Runs equal in the sorted bits: put them in full-key order (stable).
    cut = np.uint64(low)
    start = 0
    while start < n:
        head = src_k[start] >> cut
        end = start + 1
        while end < n and (src_k[end] >> cut) == head:
            end += 1
        if end - start > _LONG_RUN:
            ranked = np.argsort(src_k[start:end], kind="mergesort")
            segment_k = src_k[start:end].copy()
            segment_i = src_i[start:end].copy()
            for j in range(end - start):
                src_k[start + j] = segment_k[ranked[j]]
                src_i[start + j] = segment_i[ranked[j]]
        else:
            for i in range(start + 1, end):
                key = src_k[i]
                item = src_i[i]
                j = i - 1
                while j >= start and src_k[j] > key:
                    src_k[j + 1] = src_k[j]
                    src_i[j + 1] = src_i[j]
                    j -= 1
                src_k[j + 1] = key
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
    cross_row: np.ndarray,
    v_sq: float,
    x_sq: np.ndarray,
    keys: np.ndarray,
    idx: np.ndarray,
    scratch: np.ndarray,
) -> np.uint64:
    """Distances from one row of the matrix product, as sortable keys (unsigned order = float
    order); returns the OR of every key XOR the first, which tells the sort which bits vary."""
    n = cross_row.shape[0]
    for i in range(n):
        scratch[i] = v_sq + x_sq[i] - 2.0 * cross_row[i]
    bits = scratch.view(np.uint64)
    varying = np.uint64(0)
    first = np.uint64(0)
    for i in range(n):
        u = bits[i]
        key = ~u if u & _SIGN else u | _SIGN
        keys[i] = key
        idx[i] = i
        if i == 0:
            first = key
        varying |= key ^ first
    return varying


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
        keys_tmp = np.empty(n, np.uint64)
        scratch = np.empty(n)
        idx = np.empty(n, np.int32)
        idx_tmp = np.empty(n, np.int32)
        stop = min(m, (b + 1) * block)
        for start in range(b * block, stop, batch):
            end = min(stop, start + batch)
            cross = np.dot(V[start:end], XT)
            for q in range(end - start):
                varying = _keys_from_cross(cross[q], _row_sq(V, start + q), x_sq, keys, idx, scratch)
                order = _radix_argsort(keys, keys_tmp, idx, idx_tmp, varying)
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


def reference_values(
    X_train: np.ndarray, y_train: np.ndarray, X_val: np.ndarray, y_val: np.ndarray, k: int = 5
) -> np.ndarray:
    """The same values the plain way (the kernel's distances, numpy's stable argsort, the
    recursion vectorised per validation row): slow, for checking the kernel."""
    X = _matrix(X_train, "X_train")
    V = _matrix(X_val, "X_val")
    y = np.asarray(y_train)
    n = len(X)
    dist = np.empty((len(V), n))
    squared_distances(V, np.ascontiguousarray(X.T), (X**2).sum(axis=1), dist)
    ranks = np.arange(1, n + 1)
    values = np.zeros(n)
    for row, label in zip(dist, y_val, strict=True):
        order = np.argsort(row, kind="stable")
        match = (y[order] == label).astype(float)
        s = np.empty(n)
        s[n - 1] = match[n - 1] / n
        step = (match[:-1] - match[1:]) / k * np.minimum(k, ranks[:-1]) / ranks[:-1]
        s[:-1] = s[n - 1] + np.cumsum(step[::-1])[::-1]
        values[order] += s / len(V)
    return values
