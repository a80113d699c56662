"""Validate one 1,000,000-row x 20-column partition: conformance (quarantine), the GX suite and
drift, as the validated asset does. Prints wall seconds and peak memory next to the targets
(10 s, 2 GB) and next to a baseline measured in the same run: the GX suite alone."""

from __future__ import annotations

import argparse
import resource
import sys
import time

import numpy as np
import pandas as pd

from dcai_assets.core.conformance import conform
from dcai_assets.core.drift import drift_report
from dcai_assets.core.expectations import run_suite
from dcai_assets.core.schema_inference import infer_schema
from dcai_assets.core.verdicts import column_verdicts

TARGET_SECONDS = 10.0
TARGET_PEAK_GB = 2.0


def make_partition(rows: int, seed: int, corrupt: bool = True) -> pd.DataFrame:
    """10 float, 4 int, 6 categorical columns; two with nulls; 0.1% corrupt values."""
    rng = np.random.default_rng(seed)
    data: dict[str, np.ndarray] = {}
    for i in range(10):
        data[f"f{i}"] = rng.normal(i, 1 + i, rows)
    for i in range(4):
        data[f"i{i}"] = rng.integers(0, 1000 * (i + 1), rows)
    for i in range(6):
        data[f"c{i}"] = rng.choice([f"v{j}" for j in range(15)], rows).astype(object)
    frame = pd.DataFrame(data)
    frame.loc[rng.random(rows) < 0.02, "f1"] = np.nan
    frame.loc[rng.random(rows) < 0.05, "c1"] = None
    bad = rng.random(rows) < (0.001 if corrupt else 0.0)
    frame.loc[bad, "c2"] = "unexpected"
    frame.loc[bad, "f3"] = 1e9
    return frame


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux reports KiB


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()

    reference = {f"day{d}": make_partition(20_000, d, corrupt=False) for d in range(5)}
    schema = infer_schema(reference)
    schema.max_rows = None  # the reference days are smaller than the benchmark's partition
    partition = make_partition(args.rows, 99)
    run_suite(partition.head(1000), schema)  # import GX and warm up outside the timings
    print(
        f"partition: {len(partition):,} rows x {partition.shape[1]} columns; "
        f"schema: {len(schema.columns)} columns"
    )

    started = time.perf_counter()
    suite_only = run_suite(partition, schema)
    baseline = time.perf_counter() - started

    started = time.perf_counter()
    t0 = time.perf_counter()
    conf = conform(partition, schema)
    t_conform = time.perf_counter() - t0
    t0 = time.perf_counter()
    suite = run_suite(conf.coerced, schema)
    t_suite = time.perf_counter() - t0
    t0 = time.perf_counter()
    verdicts = column_verdicts(conf, suite, schema, "schema.yaml")
    drifts = drift_report(conf.valid, schema.columns)
    t_rest = time.perf_counter() - t0
    total = time.perf_counter() - started
    peak = peak_gb()

    assert conf.rows_in == conf.rows_valid + conf.rows_quarantined
    failed = [v.check for v in verdicts if not v.passed]
    print(
        f"quarantined {conf.rows_quarantined:,} rows; checks with findings: {failed}; "
        f"drifted features: {[d.column for d in drifts if d.drifted]}; GX-only success={suite_only.success}"
    )
    print(f"split: conform {t_conform:.2f} s, GX suite {t_suite:.2f} s, verdicts + drift {t_rest:.2f} s")
    print(
        f"validation wall time   : {total:6.2f} s   target {TARGET_SECONDS:.0f} s   "
        f"ratio {total / TARGET_SECONDS:.2f}"
    )
    print(f"baseline (GX suite only): {baseline:6.2f} s   ours/baseline ratio {total / baseline:.2f}")
    print(
        f"peak memory            : {peak:6.2f} GB  target {TARGET_PEAK_GB:.0f} GB  "
        f"ratio {peak / TARGET_PEAK_GB:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
