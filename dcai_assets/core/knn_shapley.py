"""Exact KNN-Shapley data valuation (Jia et al., VLDB 2019): the Shapley value of every training
row for the utility "accuracy of a K-nearest-neighbour classifier on the validation rows",
computed exactly by a recursion over the rows sorted by distance. Distances are computed tile by
tile for a batch of validation rows (numba, the same arithmetic as :func:`squared_distances`), on
features centred first (:func:`_centred`: the norm expansion then loses no digits to an offset);
the sort, the cost that dominates, is a radix sort of one uint64 per training row that packs the
distance bits, the row index (ties in index order, as a stable sort) and whether the label
matches (linear in N). Pure numpy/numba, no Dagster: usable from a notebook.

Utility, for a validation row v and a subset S of the training rows, with the rows of S sorted by
(squared Euclidean distance to v, row index): U_v(S) = (1/K) * sum over the first min(K, |S|)
rows of [label == label of v]; U_v(empty) = 0. The value of a training row is the weighted mean
over validation rows of its Shapley value for U_v (Shapley values are linear in the utility).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dcai_assets.core.validation import (
    check_features,
    check_int,
    check_labels,
    check_weights,
    encode_labels,
)


def _kernels():
    """The numba kernels, imported on first use: numba and llvmlite take a noticeable part of a
    second to import, which every process importing :mod:`dcai_assets` would pay otherwise."""
    from dcai_assets.core import _knn_kernels

    return _knn_kernels


def __getattr__(name: str):
    # The kernels and their constants stay reachable as attributes of this module (lazily).
    if (name.startswith("_") and not name.startswith("__")) or name == "squared_distances":
        try:
            return getattr(_kernels(), name)
        except AttributeError:
            pass
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class ShapleyResult:
    """Per training row: its exact KNN-Shapley value and its leave-one-out value (same utility)."""

    values: np.ndarray
    loo: np.ndarray


def knn_shapley(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    k: int = 5,
    *,
    val_weights: np.ndarray | None = None,
    block: int | None = None,
    batch: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ShapleyResult:
    """Exact KNN-Shapley and leave-one-out values of each training row.

    ``y_train``/``y_val`` are class labels: integers, bools or strings (a validation label absent
    from training earns no row credit); ``k`` may exceed the number of training rows. Inputs are
    checked as listed in docs/spec.md, "Input validation" (pandas objects accepted; floats as labels,
    NaN, sparse matrices refused). Features are centred on a middle training value first, so a
    common offset does not change any distance. ``val_weights`` (default: equal, summing to 1) turn
    the utility into a weighted accuracy, e.g. :func:`group_balanced_weights`. Validation rows are
    processed ``block`` at a time (default 64, fewer below 512 validation rows so that 8 blocks keep
    every core busy; the blocks, not the thread count, fix the order of the sums); memory is O(N x
    number of blocks), never N_val x N_train. Their distances are computed ``batch`` rows at a time,
    sharing each read of X (default 16; 32 above 2^18 training rows, within 256 MB of keys per
    thread); neither changes the values.
    ``progress``, if given, is called as ``progress(rows_done, rows_total)`` after each tenth or
    so of the validation rows (the values are the same with or without it).

    Examples
    --------
    The last training row is labeled 0 among rows of class 1: it has the lowest value.

    >>> X_train = np.array([[0.0], [0.1], [1.0], [1.1]])
    >>> y_train = np.array([0, 0, 1, 0])
    >>> X_val, y_val = np.array([[0.05], [1.05]]), np.array([0, 1])
    >>> result = knn_shapley(X_train, y_train, X_val, y_val, k=1)
    >>> result.values.round(3).tolist()
    [0.208, 0.208, 0.458, 0.125]
    >>> np.argsort(result.values)[0].item()  # review the least valuable row first
    3
    """
    X = check_features(X_train, "X_train")
    V = check_features(X_val, "X_val")
    if X.shape[0] == 0:
        raise ValueError("X_train: no training rows; expected at least one")
    if V.shape[0] == 0:
        raise ValueError("X_val: no validation rows; expected at least one")
    if X.shape[1] != V.shape[1]:
        raise ValueError(f"X_val has {V.shape[1]} features; expected {X.shape[1]}, as X_train")
    n, m = X.shape[0], V.shape[0]
    y = check_labels(y_train, "y_train", n)
    yv = check_labels(y_val, "y_val", m)
    k = check_int(k, "k", minimum=1)
    w = np.full(m, 1.0 / m) if val_weights is None else check_weights(val_weights, "val_weights", m)
    kernels = _kernels()
    block = (
        min(kernels._BLOCK, -(-m // kernels._MIN_BLOCKS))
        if block is None
        else check_int(block, "block", minimum=1)
    )
    batch = _default_batch(n) if batch is None else check_int(batch, "batch", minimum=1)
    # Labels as small codes (absent from training: -1): the kernel reads them once per validation row.
    codes, yv_codes, classes = encode_labels(y, yv)
    codes = codes.astype(np.uint8 if len(classes) <= 256 else np.int32)
    threads = kernels.numba.get_num_threads()
    XT, x_sq, V = _centred(X, V)
    values, loo = np.zeros(n), np.zeros(n)
    blocks = -(-m // block)
    step = blocks if progress is None else max(threads, -(-blocks // 10))
    for first in range(0, blocks, step):
        last = min(blocks, first + step)
        kernels._value_blocks(
            XT, x_sq, codes, V, yv_codes, w, int(k), block, batch, threads, first, last, values, loo
        )  # fmt: skip
        if progress is not None:
            progress(min(m, last * block), m)
    return ShapleyResult(values=values, loo=loo)


def compile_kernels() -> float:
    """Compile the kernels :func:`knn_shapley` runs (or load them from numba's on-disk cache), on
    tiny inputs of every type it passes them; returns the seconds that took, 0.0 if they were
    ready. Call it before timing a valuation, so that compile time is not reported as
    valuation time (the first valuation in a fresh process compiles otherwise)."""
    before = _kernel_signatures()
    started = time.perf_counter()
    rng = np.random.default_rng(0)
    for classes in (2, 257):  # label codes as uint8, then int32
        n = max(classes, 8)
        X, V = rng.normal(size=(n, 3)), rng.normal(size=(2, 3))
        knn_shapley(X, np.arange(n) % classes, V, np.arange(2), k=3)
    seconds = time.perf_counter() - started
    return seconds if _kernel_signatures() != before else 0.0


def _kernel_signatures() -> dict[str, int]:
    """How many compiled signatures each numba kernel has."""
    kernels = _kernels()
    return {
        name: len(f.signatures)
        for name, f in vars(kernels).items()
        if isinstance(f, kernels.numba.core.dispatcher.Dispatcher)
    }


def _default_batch(n: int) -> int:
    """Validation rows whose distances are computed together: 16; above ``_MSD_FROM`` training
    rows, where X and the keys are read from memory, 32 (benchmarks/RESULTS.md) as long as their
    keys take at most ``_BATCH_BYTES`` per thread, and never fewer than a register block."""
    kernels = _kernels()
    if n <= kernels._MSD_FROM:
        return 16
    return int(max(kernels.DOT_ROWS, min(32, kernels._BATCH_BYTES // (8 * n))))


def group_balanced_weights(groups: np.ndarray) -> np.ndarray:
    """Validation weights for a fairness-aware utility: each group of ``groups`` counts the same
    in total, however many validation rows it has (the mean of the per-group KNN accuracies).

    Examples
    --------
    >>> group_balanced_weights(np.array(["a", "a", "a", "b"])).round(3).tolist()
    [0.167, 0.167, 0.167, 0.5]
    """
    groups = check_labels(groups, "groups")
    if groups.shape[0] == 0:
        raise ValueError("groups: no rows; expected one group per validation row")
    uniques, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    return 1.0 / (len(uniques) * counts[inverse])


def middle_values(X: np.ndarray) -> np.ndarray:
    """Per column, a training value near its middle: the median of an evenly spaced sample of up
    to 1,001 rows (robust to outliers; a value of the data, so integer features stay integers).
    Subtracting it before a norm-expansion distance keeps the digits a large offset would take."""
    sample = X[np.unique(np.linspace(0, X.shape[0] - 1, min(X.shape[0], 1001)).astype(np.int64))]
    return np.ascontiguousarray(np.partition(sample, (len(sample) - 1) // 2, axis=0)[(len(sample) - 1) // 2])


def _centred(X: np.ndarray, V: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(X - c).T, its columns' squared norms, and V - c, for c a training row's worth of values
    near the middle of each feature: distances through |v|^2 + |x|^2 - 2 v.x lose the digits a
    common offset takes (timestamps, ids: 1e9 cost 2e-2 in the values), differences do not.
    Each c_j is a training value (the middle of a sample of rows, robust to outliers), so
    integer-valued features stay integers and equal distances stay equal. Refuses features whose
    squares overflow or underflow float64 once centred."""
    shift = middle_values(X)
    kernels = _kernels()
    XT = kernels._transposed(X, shift)
    Vc = np.ascontiguousarray(V - shift)
    x_sq = kernels._column_squares(XT)
    with np.errstate(over="ignore"):
        v_sq = (Vc * Vc).sum(axis=1)
        largest = {"X_train": x_sq.max(), "X_val": v_sq.max()}
        spread = np.maximum(np.maximum(XT.max(axis=1), -XT.min(axis=1)), np.abs(Vc).max(axis=0))
    if not np.isfinite(2.0 * (largest["X_train"] + largest["X_val"])):
        name = max(largest, key=lambda a: largest[a])
        raise ValueError(
            f"{name}: squared distances overflow float64 (largest squared norm {largest[name]:.3g} once "
            "each feature is centred on its middle training value); expected features whose squares "
            "sum to well below 1e308: scale the features (e.g. StandardScaler)"
        )
    tiny = np.sqrt(np.finfo(np.float64).tiny)  # below this, squares are subnormal or zero
    small = np.nonzero((spread > 0) & (spread < tiny))[0].tolist()
    if small:
        raise ValueError(
            f"X_train and X_val: feature columns {small[:10]} vary by at most {spread[small].max():.3g} "
            "around their middle value, so their squares underflow float64 and distances along them "
            "are lost; scale the features (e.g. StandardScaler)"
        )
    return XT, x_sq, Vc


def reference_values(
    X_train: np.ndarray, y_train: np.ndarray, X_val: np.ndarray, y_val: np.ndarray, k: int = 5
) -> np.ndarray:
    """The same values the plain way, independent of the kernel: squared distances as sums of
    squared differences, numpy's stable argsort, the recursion of Jia et al. vectorised per
    validation row (equal weights). Slow: for checking the kernel."""
    X = check_features(X_train, "X_train")
    V = check_features(X_val, "X_val")
    y = np.asarray(y_train)
    n = len(X)
    ranks = np.arange(1, n + 1)
    values = np.zeros(n)
    for v, label in zip(V, y_val, strict=True):
        dist = ((X - v) ** 2).sum(axis=1)
        order = np.argsort(dist, kind="stable")
        match = (y[order] == label).astype(float)
        s = np.empty(n)
        s[n - 1] = match[n - 1] / max(k, n)
        step = (match[:-1] - match[1:]) / np.maximum(k, ranks[:-1])
        s[:-1] = s[n - 1] + np.cumsum(step[::-1])[::-1]
        values[order] += s / len(V)
    return values
