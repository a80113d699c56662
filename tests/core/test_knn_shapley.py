"""Exact KNN-Shapley against brute force over all subsets, the efficiency axiom, invariance to
blocks and threads, leave-one-out, and bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from itertools import combinations, pairwise, permutations
from math import factorial
from pathlib import Path

import numba
import numpy as np
import pytest

from dcai_assets.core.knn_shapley import group_balanced_weights, knn_shapley, reference_values


def utility(subset: tuple[int, ...], dist: np.ndarray, y: np.ndarray, yv: int, k: int) -> float:
    """KNN accuracy on one validation row of the rows in ``subset`` (ties by row index)."""
    if not subset:
        return 0.0
    nearest = sorted(subset, key=lambda i: (dist[i], i))[:k]
    return sum(1.0 for i in nearest if y[i] == yv) / k


def brute_force(X, y, V, yv, k, weights=None) -> np.ndarray:
    """Shapley values by enumerating every subset: sum over S of |S|!(n-|S|-1)!/n! (U(S+i) - U(S))."""
    n = len(X)
    weights = np.full(len(V), 1 / len(V)) if weights is None else weights
    values = np.zeros(n)
    for v, label, w in zip(V, yv, weights, strict=True):
        dist = ((X - v) ** 2).sum(axis=1)
        for i in range(n):
            others = [j for j in range(n) if j != i]
            for size in range(n):
                coef = factorial(size) * factorial(n - size - 1) / factorial(n)
                for s in combinations(others, size):
                    values[i] += (
                        w * coef * (utility((*s, i), dist, y, label, k) - utility(s, dist, y, label, k))
                    )
    return values


def small_problem(n: int, n_val: int, classes: int, seed: int, ties: bool = False):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    if ties:  # several training rows at the same distance from the validation rows
        X = np.round(X)
    V = np.round(rng.normal(size=(n_val, 2))) if ties else rng.normal(size=(n_val, 2))
    return X, rng.integers(0, classes, n), V, rng.integers(0, classes, n_val)


@pytest.mark.parametrize("k", [1, 2, 3, 5])
@pytest.mark.parametrize(("classes", "ties"), [(2, False), (2, True), (3, False), (4, True)])
def test_values_equal_brute_force_shapley_over_all_subsets(k, classes, ties):
    X, y, V, yv = small_problem(n=8, n_val=3, classes=classes, seed=k * 10 + classes, ties=ties)
    exact = brute_force(X, y, V, yv, k)
    assert np.allclose(knn_shapley(X, y, V, yv, k=k).values, exact, atol=1e-9, rtol=0)


def test_values_equal_brute_force_with_ten_rows_and_group_balanced_weights():
    X, y, V, yv = small_problem(n=10, n_val=4, classes=2, seed=3)
    weights = group_balanced_weights(np.array(["a", "a", "a", "b"]))
    exact = brute_force(X, y, V, yv, 3, weights)
    assert np.allclose(knn_shapley(X, y, V, yv, k=3, val_weights=weights).values, exact, atol=1e-9, rtol=0)


def test_group_balanced_weights_give_each_group_the_same_total():
    weights = group_balanced_weights(np.array(["a", "a", "a", "b"]))
    assert weights.sum() == pytest.approx(1.0)
    assert weights[:3].sum() == pytest.approx(weights[3])


@pytest.mark.parametrize("k", [1, 5, 20])
def test_values_sum_to_the_utility_of_the_full_set(k):
    rng = np.random.default_rng(k)
    X, y = rng.normal(size=(300, 4)), rng.integers(0, 3, 300)
    V, yv = rng.normal(size=(40, 4)), rng.integers(0, 3, 40)
    full = np.mean(
        [utility(tuple(range(300)), ((X - v) ** 2).sum(1), y, c, k) for v, c in zip(V, yv, strict=True)]
    )
    assert knn_shapley(X, y, V, yv, k=k).values.sum() == pytest.approx(full, abs=1e-12)


def test_the_same_values_in_one_block_or_many_and_on_one_or_two_threads():
    rng = np.random.default_rng(7)
    X, y = rng.normal(size=(500, 5)), rng.integers(0, 2, 500)
    V, yv = rng.normal(size=(90, 5)), rng.integers(0, 2, 90)
    one_block = knn_shapley(X, y, V, yv, k=5, block=90).values
    available = numba.config.NUMBA_NUM_THREADS
    try:
        for block in (1, 7, 64):
            by_threads = []
            for threads in sorted({1, min(2, available)}):
                numba.set_num_threads(threads)
                by_threads.append(knn_shapley(X, y, V, yv, k=5, block=block))
            first = by_threads[0]
            assert all(np.array_equal(r.values, first.values) for r in by_threads)  # bit for bit
            assert all(np.array_equal(r.loo, first.loo) for r in by_threads)
            assert np.allclose(first.values, one_block, atol=1e-12, rtol=0)  # summation order only
    finally:
        numba.set_num_threads(available)


def test_progress_is_reported_in_steps_up_to_every_row_with_the_same_values():
    rng = np.random.default_rng(9)
    X, y = rng.normal(size=(400, 4)), rng.integers(0, 2, 400)
    V, yv = rng.normal(size=(1000, 4)), rng.integers(0, 2, 1000)
    seen = []
    with_progress = knn_shapley(
        X, y, V, yv, k=3, block=16, progress=lambda done, total: seen.append((done, total))
    )
    without = knn_shapley(X, y, V, yv, k=3, block=16)
    assert np.array_equal(with_progress.values, without.values)  # bit for bit: blocks summed in order
    assert np.array_equal(with_progress.loo, without.loo)
    assert 5 <= len(seen) <= 11 and seen[-1] == (1000, 1000)
    assert all(a[0] < b[0] for a, b in pairwise(seen))


def test_a_small_holdout_is_split_into_eight_blocks_so_every_core_gets_some():
    rng = np.random.default_rng(10)
    X, y = rng.normal(size=(300, 4)), rng.integers(0, 2, 300)
    V, yv = rng.normal(size=(40, 4)), rng.integers(0, 2, 40)
    default = knn_shapley(X, y, V, yv, k=3).values
    assert np.array_equal(default, knn_shapley(X, y, V, yv, k=3, block=5).values)  # 40 rows / 8
    assert not np.array_equal(default, knn_shapley(X, y, V, yv, k=3, block=64).values)  # summed apart
    big = rng.normal(size=(600, 4)), rng.integers(0, 2, 600)
    assert np.array_equal(knn_shapley(X, y, *big, k=3).values, knn_shapley(X, y, *big, k=3, block=64).values)


def test_leave_one_out_is_the_change_in_utility_when_a_row_is_removed():
    X, y, V, yv = small_problem(n=9, n_val=2, classes=2, seed=11)
    k = 3
    loo = knn_shapley(X, y, V, yv, k=k).loo
    for i in range(len(X)):
        rest = tuple(j for j in range(len(X)) if j != i)
        expected = np.mean(
            [
                utility(tuple(range(len(X))), ((X - v) ** 2).sum(1), y, c, k)
                - utility(rest, ((X - v) ** 2).sum(1), y, c, k)
                for v, c in zip(V, yv, strict=True)
            ]
        )
        assert loo[i] == pytest.approx(expected, abs=1e-12)


def test_a_mislabeled_row_in_a_clean_cluster_gets_the_lowest_value():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 0.3, (50, 2)), rng.normal(3, 0.3, (50, 2))])
    y = np.array([0] * 50 + [1] * 50)
    y[10] = 1  # a flipped label inside class 0's cluster
    V = np.vstack([rng.normal(0, 0.3, (20, 2)), rng.normal(3, 0.3, (20, 2))])
    yv = np.array([0] * 20 + [1] * 20)
    values = knn_shapley(X, y, V, yv, k=5).values
    assert np.argmin(values) == 10


def test_nan_or_infinite_features_are_refused_naming_the_columns():
    X, y, V, yv = small_problem(n=5, n_val=2, classes=2, seed=1)
    X[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"X_train: NaN or infinite values in feature columns \[1\]"):
        knn_shapley(X, y, V, yv)
    V[0, 0] = np.inf
    X[2, 1] = 0.0
    with pytest.raises(ValueError, match=r"X_val: NaN or infinite values in feature columns \[0\]"):
        knn_shapley(X, y, V, yv)


def test_an_empty_training_set_is_refused():
    with pytest.raises(ValueError, match="X_train: no training rows"):
        knn_shapley(np.empty((0, 2)), np.empty(0), np.zeros((1, 2)), np.zeros(1))


@pytest.mark.parametrize("k", [1, 5])
def test_the_fast_sort_matches_a_plain_stable_argsort_with_many_exact_ties(k):
    rng = np.random.default_rng(5)
    base = rng.integers(0, 3, size=(40, 3)).astype(float)  # few distinct points: long runs of ties
    X = base[rng.integers(0, 40, 3000)]
    y = rng.integers(0, 2, 3000)
    V = base[rng.integers(0, 40, 50)] + rng.integers(0, 2, (50, 3))
    yv = rng.integers(0, 2, 50)
    expected = reference_values(X, y, V, yv, k)
    assert np.allclose(knn_shapley(X, y, V, yv, k=k).values, expected, atol=1e-12, rtol=0)


def test_the_fast_sort_matches_a_plain_stable_argsort_on_continuous_features():
    rng = np.random.default_rng(6)
    X, y = rng.normal(size=(5000, 8)), rng.integers(0, 3, 5000)
    V, yv = rng.normal(size=(30, 8)), rng.integers(0, 3, 30)
    expected = reference_values(X, y, V, yv, 5)
    assert np.allclose(knn_shapley(X, y, V, yv, k=5).values, expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize(
    ("n", "far"),
    [
        (3000, 1e6),  # the in-cache sort, which keeps the dropped bits aside and sorts in place
        (100_000, 1e150),  # the in-cache sort, dropping more bits than it keeps aside
        (300_000, 1e6),  # the bucketed sort
    ],
)
def test_distances_equal_in_the_packed_key_bits_are_ordered_by_their_full_keys(n, far):
    # A far row stretches the range, so the packed key drops low distance bits; 30 rows, in
    # shuffled index order, sit an ulp apart: equal packed keys, distinct full keys. With rows at
    # 1e150 and 1e-150 (squared distances from 1e-300 to 1e300), 17 bits are dropped.
    rng = np.random.default_rng(8)
    X = rng.normal(scale=3.0, size=(n, 1))
    near = rng.choice(n, 30, replace=False)
    X[near, 0] = 1.0 + rng.permutation(30) * 2.0**-52
    X[0, 0] = far
    if far > 1e100:
        X[1, 0] = 1.0 / far
    y = rng.integers(0, 2, n)
    V, yv = np.array([[0.0], [0.5], [2.0]]), np.array([0, 1, 1])
    for k in (1, 5):
        expected = sort_reference(X, y, V, yv, k)
        np.testing.assert_allclose(knn_shapley(X, y, V, yv, k=k).values, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("features", [0, 1, 3, 4, 20, 21])
def test_distances_are_the_same_in_the_vector_blocks_and_the_scalar_last_columns(features):
    from dcai_assets.core.intrinsics import DOT_COLUMNS, DOT_ROWS
    from dcai_assets.core.knn_shapley import _batch_keys, _row_squares, squared_distances

    rng = np.random.default_rng(21)
    n = 2 * DOT_COLUMNS + 5  # two register blocks, then five columns in scalar code
    X = rng.normal(size=(n, features))
    X[n - 1] = X[3]  # the same row in a block and among the last columns
    V = rng.normal(size=(DOT_ROWS + 3, features))  # a full group of rows, then a clipped one
    V[:4] = 1e3 + X[[5, n - 2, 6, n - 3]] * 1e-9  # near zero, so some come out below zero
    X[[5, n - 2, 6, n - 3]] = V[:4]
    dist = np.empty((len(V), n))
    squared_distances(V, np.ascontiguousarray(X.T), _row_squares(X), dist)
    assert np.array_equal(dist[:, n - 1], dist[:, 3])
    expected = ((V[:, None, :] - X[None, :, :]) ** 2).sum(axis=2)
    np.testing.assert_allclose(dist, expected, rtol=1e-12, atol=1e-6)
    # The kernel's keys (finished in registers for whole blocks) are the same numbers, bit for bit.
    keys, bounds = np.empty((len(V), n), np.uint64), np.empty((len(V), 2), np.uint64)
    _batch_keys(V, 0, np.ascontiguousarray(X.T), _row_squares(X), keys, bounds)
    bits = dist.view(np.uint64)
    assert np.array_equal(keys, np.where(bits >> np.uint64(63) == 1, ~bits, bits | np.uint64(1 << 63)))
    assert np.array_equal(bounds, np.stack([keys.min(axis=1), keys.max(axis=1)], axis=1))


def test_keys_stored_around_the_cache_above_a_quarter_million_rows_are_the_same_numbers():
    from dcai_assets.core.intrinsics import DOT_ROWS
    from dcai_assets.core.knn_shapley import _MSD_FROM, _batch_keys, _row_squares, squared_distances

    rng = np.random.default_rng(22)
    n = _MSD_FROM + 3  # odd: rows of keys start on a cache line one time in eight (plain stores else)
    X, V = rng.normal(size=(n, 4)), rng.normal(size=(DOT_ROWS + 1, 4))
    XT, x_sq = np.ascontiguousarray(X.T), _row_squares(X)
    dist = np.empty((len(V), n))
    squared_distances(V, XT, x_sq, dist)
    keys, bounds = np.empty((len(V), n), np.uint64), np.empty((len(V), 2), np.uint64)
    _batch_keys(V, 0, XT, x_sq, keys, bounds)
    assert np.array_equal(keys, dist.view(np.uint64) | np.uint64(1 << 63))  # all positive here
    assert np.array_equal(bounds, np.stack([keys.min(axis=1), keys.max(axis=1)], axis=1))


def test_a_validation_class_absent_from_training_gives_no_credit_to_any_row():
    X, y, V, _ = small_problem(n=8, n_val=2, classes=2, seed=4)
    absent = np.array([7, 7])  # no training row has class 7
    result = knn_shapley(X, y, V, absent, k=3)
    assert np.all(result.values == 0) and np.all(result.loo == 0)


def test_holdout_shards_with_their_global_weights_sum_to_the_unsharded_values():
    from dcai_assets.assets.importance import shard_bounds

    rng = np.random.default_rng(11)
    X, y = rng.normal(size=(700, 4)), rng.integers(0, 3, 700)
    V, yv = rng.normal(size=(301, 4)), rng.integers(0, 3, 301)
    w = group_balanced_weights(rng.integers(0, 4, 301))
    whole = knn_shapley(X, y, V, yv, k=3, val_weights=w)
    bounds = shard_bounds(len(V), 4)
    assert bounds[0][0] == 0 and bounds[-1][1] == len(V)
    assert all(a[1] == b[0] for a, b in pairwise(bounds))
    values, loo = np.zeros(len(X)), np.zeros(len(X))
    for start, stop in bounds:
        part = knn_shapley(X, y, V[start:stop], yv[start:stop], k=3, val_weights=w[start:stop])
        values += part.values
        loo += part.loo
    np.testing.assert_allclose(values, whole.values, rtol=0, atol=1e-12)
    np.testing.assert_allclose(loo, whole.loo, rtol=0, atol=1e-12)


def test_more_shards_than_holdout_rows_leaves_some_shards_empty():
    from dcai_assets.assets.importance import shard_bounds

    bounds = shard_bounds(2, 5)
    assert sum(stop - start for start, stop in bounds) == 2
    assert sorted({stop - start for start, stop in bounds}) == [0, 1]


def kernel_distances(X, V):
    """The kernel's own squared distances: the same centring, the same arithmetic."""
    from dcai_assets.core.knn_shapley import _centred, squared_distances

    XT, x_sq, Vc = _centred(np.asarray(X, float), np.asarray(V, float))
    dist = np.empty((len(V), len(X)))
    squared_distances(Vc, XT, x_sq, dist)
    return dist


def sort_reference(X, y, V, yv, k):
    """The values from the kernel's own distances, sorted by numpy's stable argsort: checks the
    kernel's sort alone where rows an ulp apart would be ordered differently by any other
    distance arithmetic (the plain reference's included)."""
    return values_from_distances(kernel_distances(X, V), y, yv, k)


def plain_loo(X, y, V, yv, k):
    """Leave-one-out the plain way: the kernel's distances, numpy's stable argsort."""
    dist = kernel_distances(X, V)
    loo = np.zeros(len(X))
    for row, label in zip(dist, yv, strict=True):
        order = np.argsort(row, kind="stable")
        match = (y[order] == label).astype(float)
        loo[order[:k]] += (match[:k] - match[k]) / k / len(V)
    return loo


@pytest.mark.parametrize("case", ["continuous", "ties", "nearest_in_several_buckets", "skewed"])
def test_above_a_quarter_million_rows_the_bucketed_sort_matches_a_plain_stable_argsort(case):
    rng = np.random.default_rng(12)
    n, k = 300_000, 5  # beyond 2^18 rows: one MSD pass, buckets sorted in scratch, prefetched additions
    if case == "continuous":
        X, V = rng.normal(size=(n, 6)), rng.normal(size=(6, 6))
    elif case == "ties":
        points = rng.integers(0, 3, size=(40, 6)).astype(float)
        X, V = points[rng.integers(0, 40, n)], points[rng.integers(0, 40, 6)]
    elif case == "nearest_in_several_buckets":  # three rows next to the validation rows, the rest far
        X, V = rng.normal(loc=20.0, size=(n, 6)), np.zeros((6, 6))
        X[[7, 70_000, 200_000]] = rng.normal(scale=1e-3, size=(3, 6))
    else:  # heavy-tailed distances and one far outlier: most keys crowd a few cells of the top bits
        X, V = rng.lognormal(sigma=1.5, size=(n, 6)), rng.lognormal(sigma=1.5, size=(6, 6))
        X[5] = 1e6
    y, yv = rng.integers(0, 2, n), rng.integers(0, 2, len(V))
    result = knn_shapley(X, y, V, yv, k=k)
    np.testing.assert_allclose(result.values, reference_values(X, y, V, yv, k), rtol=0, atol=1e-12)
    np.testing.assert_allclose(result.loo, plain_loo(X, y, V, yv, k), rtol=0, atol=1e-12)


def plain_reference(X, y, V, yv, k, weights=None):
    """Exact KNN-Shapley the plain way, independent of the kernel: squared distances as sums of
    squared differences, numpy's stable argsort, the recursion of Jia et al. (2019, Theorem 1)
    with min(K, i) (the farthest row's value is match / max(K, N), which also covers N < K)."""
    X, V = np.asarray(X, float), np.asarray(V, float)
    return values_from_distances([((X - v) ** 2).sum(axis=1) for v in V], y, yv, k, weights)


def values_from_distances(dist, y, yv, k, weights=None):
    """Shapley values given each validation row's squared distances: stable argsort, recursion."""
    n = len(dist[0])
    weights = np.full(len(dist), 1 / len(dist)) if weights is None else weights
    values = np.zeros(n)
    for row, label, w in zip(dist, yv, weights, strict=True):
        order = np.argsort(row, kind="stable")
        match = (np.asarray(y)[order] == label).astype(float)
        s = np.empty(n)
        s[n - 1] = match[n - 1] / max(k, n)
        for i in range(n - 2, -1, -1):  # rank i + 1, 1-based
            s[i] = s[i + 1] + (match[i] - match[i + 1]) / k * min(k, i + 1) / (i + 1)
        values[order] += w * s
    return values


def permutation_shapley(X, y, V, yv, k):
    """Shapley values by their definition: the mean over every order of the rows of each row's
    marginal utility when it joins those before it (ties by row index)."""
    n = len(X)
    values = np.zeros(n)
    orders = list(permutations(range(n)))
    for v, label in zip(V, yv, strict=True):
        dist = ((X - v) ** 2).sum(axis=1)
        for order in orders:
            for j, i in enumerate(order):
                before = order[:j]
                values[i] += utility((*before, i), dist, y, label, k) - utility(before, dist, y, label, k)
    return values / len(orders) / len(V)


@pytest.mark.parametrize("offset", [0.0, 1e6, 1.7e9, 1e9])
@pytest.mark.parametrize("k", [1, 5])
def test_values_equal_a_plain_reference_whatever_the_common_feature_offset(offset, k):
    # Timestamps, ids, large amounts: a common offset must not change any distance's order.
    rng = np.random.default_rng(31)
    X, y = rng.normal(size=(2000, 5)) + offset, rng.integers(0, 3, 2000)
    V, yv = rng.normal(size=(25, 5)) + offset, rng.integers(0, 3, 25)
    result = knn_shapley(X, y, V, yv, k=k)
    np.testing.assert_allclose(result.values, plain_reference(X, y, V, yv, k), rtol=0, atol=1e-9)


@pytest.mark.parametrize("offset", [0.0, 1e6, 1e9])
@pytest.mark.parametrize("k", [1, 3])
def test_values_equal_a_plain_reference_on_duplicate_rows_and_equal_distances_at_any_offset(offset, k):
    rng = np.random.default_rng(32)
    points = rng.integers(-2, 3, size=(12, 3)).astype(float)  # few points: many equal distances
    X = points[rng.integers(0, 12, 600)] + offset  # and many exact duplicates
    V = np.vstack([points[:4], rng.integers(-3, 4, size=(6, 3))]) + offset
    y, yv = rng.integers(0, 2, 600), rng.integers(0, 2, 10)
    result = knn_shapley(X, y, V, yv, k=k)
    np.testing.assert_allclose(result.values, plain_reference(X, y, V, yv, k), rtol=0, atol=1e-9)


@pytest.mark.parametrize("k", [4, 5, 9])
def test_k_at_or_above_the_training_size_equals_the_shapley_definition_over_all_orders(k):
    X, y, V, yv = small_problem(n=4, n_val=3, classes=2, seed=40 + k)
    y[0], yv[0] = yv[0], y[0]  # at least one match and one miss
    exact = permutation_shapley(X, y, V, yv, k)
    result = knn_shapley(X, y, V, yv, k=k)
    np.testing.assert_allclose(result.values, exact, rtol=0, atol=1e-12)
    np.testing.assert_allclose(result.values, plain_reference(X, y, V, yv, k), rtol=0, atol=1e-12)
    # With every row among the K nearest, removing one only takes away its own vote.
    expected_loo = np.mean([(y == c) / k for c in yv], axis=0)
    np.testing.assert_allclose(result.loo, expected_loo, rtol=0, atol=1e-12)


def test_features_whose_squares_overflow_are_refused_naming_the_argument():
    rng = np.random.default_rng(33)
    X, y = rng.normal(size=(50, 3)), rng.integers(0, 2, 50)
    V, yv = rng.normal(size=(5, 3)), rng.integers(0, 2, 5)
    with pytest.raises(ValueError, match=r"X_train: squared distances overflow float64.*scale the features"):
        knn_shapley(X * 1e160, y, V, yv)
    with pytest.raises(ValueError, match=r"X_val: squared distances overflow float64.*scale the features"):
        knn_shapley(X, y, V * 1e160, yv)


def test_features_whose_squares_underflow_are_refused_naming_the_columns():
    rng = np.random.default_rng(34)
    X, y = rng.normal(size=(50, 3)), rng.integers(0, 2, 50)
    V, yv = rng.normal(size=(5, 3)), rng.integers(0, 2, 5)
    X[:, 1] *= 1e-170
    V[:, 1] *= 1e-170
    with pytest.raises(ValueError, match=r"feature columns \[1\] vary by at most .*squares underflow.*scale"):
        knn_shapley(X, y, V, yv)


def test_compile_kernels_compiles_all_a_valuation_runs_so_its_timing_holds_no_compilation():
    # A fresh process: nothing compiled yet. After compile_kernels(), valuations of every kind
    # (string labels, over 256 classes, weights, progress, K > N) compile nothing more.
    script = """
import numpy as np
from dcai_assets.core import knn_shapley as ks
first = ks.compile_kernels()
ready = ks._kernel_signatures()
rng = np.random.default_rng(1)
for n, classes, k in ((50, 2, 5), (6, 3, 9), (400, 300, 3)):
    X, V = rng.normal(size=(n, 4)), rng.normal(size=(5, 4))
    y, yv = rng.integers(0, classes, n), rng.integers(0, classes, 5)
    ks.knn_shapley(X, y, V, yv, k=k, val_weights=np.full(5, 0.2), progress=lambda done, total: None)
    ks.knn_shapley(X, y.astype(str), V, yv.astype(str), k=k, block=2, batch=3)
print(first, ks.compile_kernels(), ready == ks._kernel_signatures())
"""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=root)
    assert out.returncode == 0, out.stderr
    first, second, unchanged = out.stdout.split()
    assert float(first) > 0.0  # the kernels were compiled (or loaded from numba's cache) here
    assert float(second) == 0.0  # and nothing was left to compile
    assert unchanged == "True"
