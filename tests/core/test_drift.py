"""Drift of a partition against the reference window or the previous partition, said in words."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dcai_assets.core.drift import column_drift, drift_report, jensen_shannon, partition_profile
from dcai_assets.core.schema import ColumnSchema, ReferenceProfile, reference_profile


def carriers(shares: dict[str, int]) -> pd.Series:
    return pd.Series([name for name, count in shares.items() for _ in range(count)])


def numeric_column(seed: int = 0) -> ColumnSchema:
    col = ColumnSchema("distance", "float64", drift_threshold=0.05, step_drift_threshold=0.05)
    values = pd.Series(np.random.default_rng(seed).normal(1000.0, 100.0, 2000))
    col.reference = reference_profile(values, col, max_categories=50)
    return col


CARRIER = ColumnSchema(
    "carrier",
    "string",
    drift_threshold=0.1,
    step_drift_threshold=0.9,
    reference=ReferenceProfile(frequencies={"UA": 0.5, "AA": 0.3, "DL": 0.2}),
)


def test_jensen_shannon_is_zero_for_identical_and_one_for_disjoint_distributions():
    assert jensen_shannon(np.array([0.2, 0.3, 0.5]), np.array([0.2, 0.3, 0.5])) == pytest.approx(0.0)
    assert jensen_shannon(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1.0)
    assert 0.0 < jensen_shannon(np.array([0.6, 0.4]), np.array([0.4, 0.6])) < 1.0


def test_a_new_most_frequent_value_is_named_with_the_one_it_replaced():
    drift = column_drift(carriers({"EV": 60, "UA": 20, "AA": 20}), CARRIER, CARRIER.reference)

    assert drift.drifted
    assert drift.metric == "L-inf"
    assert "`EV` is now the most frequent value" in drift.detail
    assert "(was `UA`" in drift.detail
    # EV is new: its 60% lands in the pooled "other" bucket, the largest move
    assert drift.distance == pytest.approx(0.6)


def test_a_categorical_sample_like_the_reference_does_not_drift():
    drift = column_drift(carriers({"UA": 48, "AA": 32, "DL": 20}), CARRIER, CARRIER.reference)

    assert not drift.drifted
    assert drift.distance == pytest.approx(0.02)


def test_a_shifted_numeric_distribution_drifts_above_its_threshold():
    col = numeric_column()
    shifted = pd.Series(np.random.default_rng(1).normal(1150.0, 100.0, 500))

    drift = column_drift(shifted, col, col.reference)

    assert drift.metric == "JSD"
    assert drift.distance > col.drift_threshold
    assert drift.drifted
    assert f"(was {col.reference.median:g} in the reference)" in drift.detail


def test_a_numeric_sample_from_the_same_distribution_does_not_drift():
    col = numeric_column()
    same = pd.Series(np.random.default_rng(2).normal(1000.0, 100.0, 500))

    drift = column_drift(same, col, col.reference)

    assert drift.distance < col.drift_threshold
    assert not drift.drifted


def test_drift_against_the_previous_partition_uses_the_step_threshold():
    previous = pd.DataFrame({"carrier": carriers({"UA": 50, "AA": 30, "DL": 20})})
    current = pd.DataFrame({"carrier": carriers({"UA": 20, "AA": 60, "DL": 20})})
    profile = partition_profile(previous, [CARRIER])

    vs_previous = drift_report(current, [CARRIER], profile, against="previous partition 2024-01-02")
    vs_reference = drift_report(current, [CARRIER])

    assert [d.threshold for d in vs_previous] == [0.9]
    assert not vs_previous[0].drifted  # 0.3 is under the step threshold
    assert "previous partition 2024-01-02" in vs_previous[0].detail
    assert [d.threshold for d in vs_reference] == [0.1]
    assert vs_reference[0].drifted  # and over the reference threshold


def test_a_column_without_values_or_a_profile_is_not_reported_as_drift():
    empty = column_drift(pd.Series([None, None], dtype=object), CARRIER, CARRIER.reference)
    unprofiled = drift_report(pd.DataFrame({"carrier": ["UA"]}), [ColumnSchema("carrier", "string")])

    assert not empty.drifted
    assert empty.detail == "no non-null values"
    assert unprofiled == []
