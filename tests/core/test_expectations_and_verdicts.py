"""A partition through conformance, the real GX suite and the verdicts, as the validated asset runs it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dcai_assets.core.conformance import conform
from dcai_assets.core.drift import ColumnDrift, drift_report
from dcai_assets.core.expectations import run_suite
from dcai_assets.core.schema import TableSchema
from dcai_assets.core.schema_inference import infer_schema
from dcai_assets.core.verdicts import (
    COLUMNS_MATCH_SCHEMA,
    DTYPES_MATCH_SCHEMA,
    NO_DRIFT_FROM_REFERENCE,
    NULL_RATES_WITHIN_LIMITS,
    ROW_COUNT_IN_BOUNDS,
    VALUES_WITHIN_DOMAIN,
    Verdict,
    column_verdicts,
    drift_verdict,
    markdown_table,
)

SCHEMA_FILE = "schemas/flights.yaml"


def flights(day: int, rows: int = 200) -> pd.DataFrame:
    """A day of flights; every 20th departure delay is missing (5%)."""
    rng = np.random.default_rng(day)
    delay = rng.integers(0, 60, size=rows).astype(float)
    delay[::20] = np.nan
    return pd.DataFrame(
        {
            "flight_id": [f"2024-01-{day:02d}-{i}" for i in range(rows)],
            "carrier": rng.choice(["UA", "AA", "DL"], size=rows, p=[0.5, 0.3, 0.2]),
            "distance": rng.normal(1000.0, 100.0, size=rows).round(1),
            "dep_delay": delay,
            "dep_time": [f"2024-01-{day:02d}T{i % 24:02d}:{i % 60:02d}:00" for i in range(rows)],
        }
    )


@pytest.fixture(scope="module")
def schema() -> TableSchema:
    reference = {f"2024-01-0{d}": flights(d) for d in (1, 2, 3)}
    return infer_schema(reference, key=["flight_id"], overrides={"dep_delay": {"max_null_fraction": 0.1}})


def verdicts_for(
    raw: pd.DataFrame, schema: TableSchema, span_days: float | None = None
) -> dict[str, Verdict]:
    conf = conform(raw, schema)
    suite = run_suite(conf.coerced, schema, name="flights", span_days=span_days)
    return {v.check: v for v in column_verdicts(conf, suite, schema, SCHEMA_FILE, span_days=span_days)}


def test_a_clean_partition_passes_every_verdict(schema):
    raw = flights(4)
    conf = conform(raw, schema)
    suite = run_suite(conf.coerced, schema, name="flights")
    verdicts = column_verdicts(conf, suite, schema, SCHEMA_FILE)
    verdicts.append(drift_verdict(NO_DRIFT_FROM_REFERENCE, drift_report(conf.valid, schema.columns)))

    assert suite.success, [o for o in suite.outcomes if not o.success]
    assert len(verdicts) == 6
    assert [v.check for v in verdicts if not v.passed] == []
    assert all(v.summary == "passed" for v in verdicts)


def test_a_null_burst_fails_the_null_rate_check_with_count_limit_and_rows(schema):
    raw = flights(4)
    raw.loc[:119, "dep_delay"] = np.nan  # 120 rows + 4 of the usual every-20th: 62%, allowed 10%

    verdict = verdicts_for(raw, schema)[NULL_RATES_WITHIN_LIMITS]

    assert not verdict.passed
    assert verdict.severity == "ERROR"
    finding = verdict.findings[0]
    assert finding.column == "dep_delay"
    assert "`dep_delay` has 124 nulls (allowed 10%)" in finding.message
    assert ", e.g. rows 0, 1, 2" in finding.message
    assert "max_null_fraction" in finding.action and SCHEMA_FILE in finding.action


def test_a_renamed_column_fails_the_column_check_and_names_the_schema_file(schema):
    raw = flights(4).rename(columns={"dep_time": "dep_time_local"})

    verdicts = verdicts_for(raw, schema)
    verdict = verdicts[COLUMNS_MATCH_SCHEMA]

    assert verdict.severity == "ERROR"
    assert len(verdict.findings) == 1  # the renamed column is not also reported as unexpected
    finding = verdict.findings[0]
    assert "column `dep_time` is missing" in finding.message
    assert "`dep_time_local`, which looks like a rename" in finding.message
    assert "all rows quarantined" in finding.message
    assert SCHEMA_FILE in finding.action
    assert "`dep_time_local`" in finding.action


def test_an_unexpected_extra_column_is_a_warning(schema):
    raw = flights(4).assign(gate=["A1"] * 200)

    verdict = verdicts_for(raw, schema)[COLUMNS_MATCH_SCHEMA]

    assert verdict.severity == "WARN"
    assert "unexpected column `gate`" in verdict.summary


def test_values_of_the_wrong_dtype_fail_the_dtype_check_with_an_example(schema):
    raw = flights(4)
    raw["distance"] = [f"{d:.0f} mi" for d in raw["distance"]]

    verdict = verdicts_for(raw, schema)[DTYPES_MATCH_SCHEMA]

    assert verdict.severity == "ERROR"
    finding = verdict.findings[0]
    assert finding.column == "distance"
    assert "`distance` has 200 values that are not numbers" in finding.message
    assert f"e.g. {raw.loc[0, 'distance']!r} (row 0)" in finding.message
    assert "dtype: string" in finding.action


def test_a_few_values_outside_the_allowed_set_warn_without_blocking(schema):
    raw = flights(4)
    raw.loc[[10, 50, 90], "carrier"] = "ZZ"  # 1.5%, under the 5% quarantine limit

    verdicts = verdicts_for(raw, schema)
    verdict = verdicts[VALUES_WITHIN_DOMAIN]

    assert not verdict.passed
    assert verdict.severity == "WARN"
    assert "`carrier` has 3 values outside the allowed set" in verdict.findings[0].message
    assert "'ZZ' (row 10)" in verdict.findings[0].message
    assert "add 'ZZ' to `allowed_values`" in verdict.findings[0].action
    assert all(
        verdicts[c].passed for c in (COLUMNS_MATCH_SCHEMA, DTYPES_MATCH_SCHEMA, NULL_RATES_WITHIN_LIMITS)
    )


def test_many_values_outside_a_declared_set_block_and_are_quarantined():
    reference = {f"2024-01-0{d}": flights(d) for d in (1, 2, 3)}
    declared = infer_schema(
        reference, key=["flight_id"], overrides={"carrier": {"allowed_values": ["UA", "AA", "DL"]}}
    )
    raw = flights(4)
    raw.loc[:39, "carrier"] = "ZZ"  # 20%

    conf = conform(raw, declared)
    verdict = verdicts_for(raw, declared)[VALUES_WITHIN_DOMAIN]

    assert verdict.severity == "ERROR"
    assert "rows quarantined" in verdict.findings[0].message
    assert conf.rows_quarantined == 40


def test_values_outside_an_inferred_set_or_range_warn_and_the_rows_stay_valid(schema):
    raw = flights(4)
    raw.loc[:39, "carrier"] = "ZZ"  # 20%: a new carrier the 3-day reference never saw
    raw.loc[40, "distance"] = 5000.0  # above the inferred max

    conf = conform(raw, schema)
    verdict = verdicts_for(raw, schema)[VALUES_WITHIN_DOMAIN]

    assert verdict.severity == "WARN"
    assert not verdict.passed
    assert [f.column for f in verdict.findings] == ["carrier", "distance"]
    carrier = verdict.findings[0]
    assert carrier.message.startswith(
        "`carrier` has 40 values outside the allowed set inferred from the reference window, "
        "e.g. 'ZZ' (row 0), 'ZZ' (row 1); rows kept"
    )
    assert "enforce: {allowed_values: quarantine}" in carrier.action
    assert "above max" in verdict.findings[1].message and "5000.0 (row 40)" in verdict.findings[1].message
    assert "enforce: {max: quarantine}" in verdict.findings[1].action
    assert (conf.rows_in, conf.rows_valid, conf.rows_quarantined) == (200, 200, 0)


def test_too_few_rows_warn_when_the_bounds_are_inferred(schema):
    raw = flights(4, rows=20)

    verdict = verdicts_for(raw, schema)[ROW_COUNT_IN_BOUNDS]

    assert verdict.severity == "WARN"
    assert verdict.findings[0].message == (
        f"partition has 20 rows; expected {schema.min_rows:,}–{schema.max_rows:,} "
        "(bounds inferred from the reference window: a warning only)"
    )
    assert schema.min_rows == 100


def test_too_few_rows_block_when_the_spec_declares_the_bounds():
    reference = {f"2024-01-0{d}": flights(d) for d in (1, 2, 3)}
    declared = infer_schema(reference, key=["flight_id"], overrides={"__table__": {"min_rows": 50}})

    verdict = verdicts_for(flights(4, rows=20), declared)[ROW_COUNT_IN_BOUNDS]

    assert verdict.severity == "ERROR"
    assert verdict.findings[0].message == f"partition has 20 rows; expected 50–{declared.max_rows:,}"


def _monthly(month: int, rows_per_day: float) -> tuple[str, pd.DataFrame, float]:
    start = pd.Timestamp(2022, 1, 1) + pd.DateOffset(months=month)
    days = float((start + pd.DateOffset(months=1) - start).days)
    rng = np.random.default_rng(month)
    rows = int(rows_per_day * days)
    frame = pd.DataFrame(
        {"amount": rng.gamma(2.0, 30.0, rows).round(2), "channel": rng.choice(["web", "shop"], rows)}
    )
    return start.strftime("%Y-%m"), frame, days


def test_row_count_bounds_scale_with_the_span_and_no_monthly_partition_of_a_growing_table_blocks():
    # 24 monthly partitions of a table growing 4% a month; the reference is its first 3 months.
    months = [_monthly(m, 40.0 * 1.04**m) for m in range(24)]
    spans = {key: days for key, _, days in months}
    schema = infer_schema({key: frame for key, frame, _ in months[:3]}, spans=spans)

    blocked, warned = [], []
    for key, frame, days in months:
        verdict = verdicts_for(frame, schema, span_days=days)[ROW_COUNT_IN_BOUNDS]
        (
            blocked
            if verdict.severity == "ERROR" and not verdict.passed
            else warned
            if not verdict.passed
            else []
        ).append(key)

    assert blocked == []
    assert warned == [key for key, frame, days in months if len(frame) > schema.max_rows_per_day * days]
    assert len(warned) > 0  # the growth is reported, as a warning
    # February's bounds are 28 days' worth, a 31-day month's 31 days' worth
    assert schema.row_bounds(28.0)[1] < schema.row_bounds(31.0)[1]
    assert schema.row_bounds(31.0) == (
        int(np.floor(schema.min_rows_per_day * 31)),
        int(np.ceil(schema.max_rows_per_day * 31)),
    )


def test_run_suite_reports_each_expectation_with_counts(schema):
    raw = flights(4)
    raw.loc[:119, "dep_delay"] = np.nan  # 120 rows + 4 of the usual every-20th

    suite = run_suite(conform(raw, schema).coerced, schema, name="flights")

    assert not suite.success
    nulls = suite.for_column("dep_delay", "expect_column_values_to_not_be_null")
    assert nulls is not None and not nulls.success
    assert nulls.unexpected_count == 124
    assert suite.full_result["success"] is False
    assert suite.for_column("carrier", "expect_column_values_to_be_in_set").success


def test_one_null_in_a_non_nullable_column_warns_even_beside_an_unparseable_value(schema):
    raw = flights(4)
    raw["distance"] = raw["distance"].astype(object)
    raw.loc[0, "distance"] = None
    raw.loc[1, "distance"] = "far"

    verdict = verdicts_for(raw, schema)[NULL_RATES_WITHIN_LIMITS]

    assert verdict.severity == "WARN"


def test_drift_verdict_names_the_feature_importance_rank():
    drifts = [
        ColumnDrift("carrier", "L-inf", 0.4, 0.1, "`EV` is now the most frequent value (was `UA`)"),
        ColumnDrift("distance", "JSD", 0.01, 0.05, "median 1000"),
    ]

    verdict = drift_verdict(NO_DRIFT_FROM_REFERENCE, drifts, importance_ranks={"carrier": 2, "distance": 1})

    assert [f.column for f in verdict.findings] == ["carrier"]  # distance is under its threshold
    finding = verdict.findings[0]
    assert finding.severity == "WARN"
    assert "it ranks 2nd in model importance" in finding.message
    assert "(L-inf 0.400 > 0.100)" in finding.message
    assert "regenerate the reference" in finding.action


def test_markdown_table_has_a_header_row_and_one_row_per_finding():
    drifts = [
        ColumnDrift("carrier", "L-inf", 0.4, 0.1, "share a|b moved"),
        ColumnDrift("distance", "JSD", 0.3, 0.05, "median 1200"),
    ]
    verdict = drift_verdict(NO_DRIFT_FROM_REFERENCE, drifts)

    lines = markdown_table(verdict).splitlines()

    assert lines[0] == f"**{NO_DRIFT_FROM_REFERENCE}**: 2 finding(s)"
    assert lines[2] == "| severity | column | observed | threshold | what happened | suggested action |"
    assert lines[3] == "|---|---|---|---|---|---|"
    assert len(lines) == 6
    assert lines[4].startswith("| WARN | `distance` |")  # worst (relative to threshold) first
    assert "a\\|b" in lines[5]  # a pipe in a message does not break the table
    assert markdown_table(Verdict(NO_DRIFT_FROM_REFERENCE)) == f"**{NO_DRIFT_FROM_REFERENCE}**: passed"
