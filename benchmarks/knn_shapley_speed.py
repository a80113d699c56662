"""Exact KNN-Shapley speed against a floor measured in the same run.

The floor is what any exact method must at least do the plain numpy way: the distance matrix
(one matrix product per block) plus one `np.argsort` per validation row. Sizes: N_train=100,000 x
N_val=10,000 and N_train=1,000,000 x N_val=1,000, 20 features, K=5 and K=1. Also checks the values
against a plain implementation of the recursion (stable argsort, Python loop) on a sample of
validation rows, and reports peak memory. Target: at most 0.25x the floor, under 4 GB. Each timing
is the fastest of ``--repeats`` runs (default 3), the floor's too, taken in turn so that both
see the same machine: on a shared machine noise only ever adds time.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import numpy as np

from dcai_assets.core.knn_shapley import knn_shapley, reference_values

TARGET_RATIO = 0.25


def floor_seconds(X: np.ndarray, V: np.ndarray, block: int = 256) -> float:
    """Distances by matrix product plus one np.argsort per validation row."""
    x_sq = (X**2).sum(axis=1)
    started = time.perf_counter()
    for start in range(0, len(V), block):
        chunk = V[start : start + block]
        dist = (chunk**2).sum(axis=1)[:, None] + x_sq[None, :] - 2.0 * chunk @ X.T
        for row in dist:
            np.argsort(row)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a tenth of the sizes, for a smoke run")
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs of each timing; the fastest counts, as for the floor"
    )
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    rng = np.random.default_rng(0)
    sizes = [(100_000 // scale, 10_000 // scale), (1_000_000 // scale, 1_000 // scale)]
    knn_shapley(rng.normal(size=(50, 20)), rng.integers(0, 2, 50), rng.normal(size=(5, 20)), np.zeros(5, int))
    data = []
    for n_train, n_val in sizes:
        X, y = rng.normal(size=(n_train, 20)), rng.integers(0, 2, n_train)
        V, yv = rng.normal(size=(n_val, 20)), rng.integers(0, 2, n_val)
        data.append((X, y, V, yv))
    ours: dict[tuple[int, int], float] = {}
    floor: dict[int, float] = {}

    def time_ours(X: np.ndarray, y: np.ndarray, V: np.ndarray, yv: np.ndarray) -> None:
        for k in (5, 1):
            started = time.perf_counter()
            knn_shapley(X, y, V, yv, k=k)
            seconds = time.perf_counter() - started
            ours[(len(X), k)] = min(ours.get((len(X), k), seconds), seconds)

    for X, y, V, yv in data:  # a first run of ours before any floor's: the peak memory is ours
        time_ours(X, y, V, yv)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    for X, y, V, yv in data:  # then floor and ours in turn, so that both see the same machine
        for repeat in range(args.repeats):
            seconds = floor_seconds(X, V, block=16)
            floor[len(X)] = min(floor.get(len(X), seconds), seconds)
            if repeat > 0:
                time_ours(X, y, V, yv)
    print(
        f"{'N_train':>9} {'N_val':>6} {'K':>2} {'ours s':>8} {'floor s':>8} {'ratio':>6} {'max |diff|':>11}"
    )
    worst = 0.0
    for X, y, V, yv in data:
        sample = slice(0, 20)
        for k in (5, 1):
            diff = np.abs(
                knn_shapley(X, y, V[sample], yv[sample], k=k).values
                - reference_values(X, y, V[sample], yv[sample], k)
            ).max()
            seconds = ours[(len(X), k)]
            ratio = seconds / floor[len(X)]
            worst = max(worst, ratio)
            line = f"{len(X):>9,} {len(V):>6,} {k:>2} {seconds:>8.2f} {floor[len(X)]:>8.2f} {ratio:>6.2f}"
            print(f"{line} {diff:>11.1e}")
    print(
        f"worst ratio {worst:.2f} (target {TARGET_RATIO}; fastest of {args.repeats} runs each); "
        f"peak memory of the kernel runs {peak:.2f} GB (target 4 GB)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
