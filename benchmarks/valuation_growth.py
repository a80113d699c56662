"""Valuation that grows with the data: what a resumed or incremental valuation costs against a
full recompute, measured in the same run.

Sizes: N_train=100,000 x N_val=10,000, 20 features, 3 classes, K=5 (``--quick``: a tenth), in
20 blocks of holdout rows.
Timed, each the fastest of ``--repeats`` runs, taken in turn:

- full: one :func:`knn_shapley` call (the valuation as it was), and the same valuation in
  checkpointed blocks from an empty store (what checkpointing costs);
- resumed: a valuation interrupted after half of its blocks were written, run again;
- incremental: a stored valuation of 90% of the holdout rows, then all of them (10% new rows).

Each result is checked against the full recompute (max abs difference). Targets: resumed at
most 0.6x the full run, incremental at most 0.2x, checkpointing overhead at most 1.1x.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dcai_assets.core.knn_shapley import compile_kernels, knn_shapley
from dcai_assets.core.valuation_blocks import blocked_values, valuation_key
from dcai_assets.io.valuation_store import ValuationBlockStore


class _Stop(Exception):
    pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a tenth of the sizes, for a smoke run")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each timing; the fastest counts")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    n, m, k = 100_000 // scale, 10_000 // scale, 5
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(n, 20)), rng.integers(0, 3, n)
    V, yv = rng.normal(size=(m, 20)), rng.integers(0, 3, m)
    key = valuation_key(X, y, model_version="benchmark", k=k, group=None, classes=3)
    compile_kernels()
    times: dict[str, list[float]] = {}
    diffs: dict[str, float] = {}
    reference = None

    paths: dict[str, str] = {}

    def timed(name: str, run) -> None:
        started = time.perf_counter()
        result = run()
        times.setdefault(name, []).append(time.perf_counter() - started)
        if hasattr(result, "path"):
            paths[name] = result.path.describe()
        if reference is not None:
            diffs[name] = max(diffs.get(name, 0.0), float(np.abs(result.values - reference.values).max()))

    def blocked(store, rows=m, **kwargs):
        return blocked_values(
            X, y, V[:rows], yv[:rows], key=key, store=store, block_rows=m // 20, **kwargs
        )  # fmt: skip

    def half_then_stop(blocks: int):
        def hook(i: int) -> None:
            if i + 1 == blocks // 2:
                raise _Stop

        return hook

    for _ in range(args.repeats):
        full = knn_shapley(X, y, V, yv, k=k)
        reference = reference or full
        timed("full recompute (one knn_shapley call)", lambda: knn_shapley(X, y, V, yv, k=k))
        with tempfile.TemporaryDirectory() as tmp:
            timed("full, in checkpointed blocks", lambda: blocked(ValuationBlockStore(Path(tmp) / "a")))
            interrupted = ValuationBlockStore(Path(tmp) / "b")
            with contextlib.suppress(_Stop):
                blocked(interrupted, after_block=half_then_stop(20))
            timed("resumed after 50% of the blocks", lambda s=interrupted: blocked(s))
            smaller = ValuationBlockStore(Path(tmp) / "c")
            blocked(smaller, rows=m - m // 10)
            timed("incremental, 10% new holdout rows", lambda s=smaller: blocked(s))
    best = {name: min(t) for name, t in times.items()}
    base = best["full recompute (one knn_shapley call)"]
    print(f"N_train={n:,} x N_val={m:,}, 20 features, 3 classes, K={k}; fastest of {args.repeats}")
    print("| run | seconds | ratio to full recompute | max abs diff vs full |")
    print("|---|---:|---:|---:|")
    for name, seconds in best.items():
        diff = f"{diffs[name]:.1e}" if name in diffs else "-"
        print(f"| {name} | {seconds:.2f} | {seconds / base:.2f} | {diff} |")
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
