"""Conforming a raw partition to its schema: nothing is dropped, every quarantined row says why."""

from __future__ import annotations

import pandas as pd
import pytest

from dcai_assets.core.conformance import REASON_COLUMN, conform, guess_renames
from dcai_assets.core.schema import ColumnSchema, TableSchema

SCHEMA = TableSchema(
    columns=[
        ColumnSchema("flight_id", "int64", nullable=False),
        ColumnSchema("carrier", "string", nullable=False, allowed_values=["AA", "UA"]),
        ColumnSchema("dep_delay", "int64", nullable=True, max_null_fraction=0.5, min=0, max=100),
        ColumnSchema("distance", "float64", nullable=False),
        ColumnSchema("dep_time", "datetime", nullable=False),
    ],
    key=["flight_id"],
)


def raw_partition() -> pd.DataFrame:
    """Eight rows as read from CSV (all text); rows 1-5 each break one rule, 7 has an allowed null."""
    return pd.DataFrame(
        {
            "flight_id": ["1", "2", "3", "4", "5", "1", "7", "8"],
            "carrier": ["AA", "UA", None, "ZZ", "AA", "UA", "UA", "AA"],
            "dep_delay": ["5", "12 min", "0", "3", "500", "7", "9", None],
            "distance": ["100.5", "200", "300", "400", "500", "600", "700", "800"],
            "dep_time": [f"2024-01-01T0{i}:00:00" for i in range(8)],
            "comment": ["x"] * 8,
        }
    )


@pytest.fixture(scope="module")
def conf():
    return conform(raw_partition(), SCHEMA)


def reason(conf, row: int) -> str:
    return conf.quarantine.loc[row, REASON_COLUMN]


def test_every_row_is_either_valid_or_quarantined(conf):
    assert conf.rows_in == 8
    assert conf.rows_in == conf.rows_valid + conf.rows_quarantined
    assert sorted(conf.quarantine.index) == [1, 2, 3, 4, 5]
    assert sorted(conf.valid.index) == [0, 6, 7]


def test_each_quarantined_row_has_a_reason_naming_the_column(conf):
    expected_column = {1: "dep_delay", 2: "carrier", 3: "carrier", 4: "dep_delay", 5: "flight_id"}
    for row, column in expected_column.items():
        assert reason(conf, row).startswith(f"{column}: "), (row, reason(conf, row))


def test_an_unparseable_number_is_quarantined_with_its_raw_value_kept(conf):
    assert reason(conf, 1) == "dep_delay: not an integer ('12 min')"
    assert conf.quarantine.loc[1, "dep_delay"] == "12 min"
    problem = next(p for p in conf.problems if p.rule == "dtype")
    assert (problem.column, problem.count, problem.examples) == ("dep_delay", 1, [(1, "12 min")])


def test_a_null_in_a_non_nullable_column_is_quarantined(conf):
    assert reason(conf, 2) == "carrier: null not allowed"
    assert conf.nulls["carrier"].count == 1


def test_a_null_in_a_nullable_column_passes(conf):
    assert 7 in conf.valid.index
    assert pd.isna(conf.valid.loc[7, "dep_delay"])
    assert conf.nulls["dep_delay"].count == 1


def test_a_value_outside_the_allowed_set_is_quarantined(conf):
    assert reason(conf, 3) == "carrier: 'ZZ' not in allowed values"


def test_a_value_above_the_maximum_is_quarantined(conf):
    assert reason(conf, 4) == "dep_delay: '500' above max 100"


def test_a_value_below_the_minimum_is_quarantined():
    raw = raw_partition().iloc[[0]].assign(dep_delay=["-3"])

    result = conform(raw, SCHEMA)

    assert result.rows_quarantined == 1
    assert result.quarantine[REASON_COLUMN].iloc[0] == "dep_delay: '-3' below min 0"


def test_a_duplicate_key_quarantines_the_later_copy_only(conf):
    assert reason(conf, 5) == "flight_id: duplicate key"
    assert 0 in conf.valid.index  # the first copy passes


def test_a_row_breaking_two_rules_lists_both_reasons():
    raw = raw_partition().iloc[[0]].assign(carrier=["ZZ"], dep_delay=["late"])

    result = conform(raw, SCHEMA)

    assert result.quarantine[REASON_COLUMN].iloc[0] == (
        "carrier: 'ZZ' not in allowed values; dep_delay: not an integer ('late')"
    )


def test_a_missing_column_quarantines_every_row_and_guesses_the_rename():
    raw = raw_partition().rename(columns={"dep_time": "dep_time_local"})

    result = conform(raw, SCHEMA)

    assert result.missing_columns == ["dep_time"]
    assert result.renamed_guess == {"dep_time": "dep_time_local"}
    assert result.rows_valid == 0
    assert result.rows_quarantined == 8
    assert (
        result.quarantine[REASON_COLUMN]
        .str.contains("dep_time: column missing (found `dep_time_local` instead)", regex=False)
        .all()
    )


def test_guess_renames_pairs_each_missing_column_with_the_most_similar_extra_one():
    guesses = guess_renames(["dep_time", "carrier"], ["comment", "dep_time_local", "carrier_code"])

    assert guesses == {"dep_time": "dep_time_local", "carrier": "carrier_code"}
    assert guess_renames(["dep_time"], ["zzz"]) == {}


def test_extra_columns_are_reported_but_not_passed_on(conf):
    assert conf.extra_columns == ["comment"]
    assert "comment" not in conf.valid.columns
    assert list(conf.valid.columns) == SCHEMA.names
    assert "comment" in conf.quarantine.columns  # quarantined rows keep everything as read


def test_valid_rows_have_the_schema_dtypes(conf):
    valid = conf.valid

    assert valid["flight_id"].dtype == "int64"
    assert pd.api.types.is_integer_dtype(valid["dep_delay"])  # nullable Int64: it holds a null
    assert valid["distance"].dtype == "float64"
    assert str(valid["dep_time"].dtype) == "datetime64[ns, UTC]"
    assert valid["carrier"].tolist() == ["AA", "UA", "AA"]
    assert valid.loc[0, "distance"] == 100.5
    assert valid.loc[6, "dep_time"] == pd.Timestamp("2024-01-01T06:00:00", tz="UTC")


def test_a_clean_partition_quarantines_nothing():
    raw = raw_partition().iloc[[0, 6, 7]]

    result = conform(raw, SCHEMA)

    assert result.rows_quarantined == 0
    assert result.problems == []
    assert result.rows_valid == 3


def test_rows_outside_bounds_marked_warn_are_reported_and_kept():
    inferred = TableSchema(
        columns=[
            ColumnSchema("flight_id", "int64", nullable=False),
            ColumnSchema(
                "carrier", "string", allowed_values=["AA", "UA"], enforce={"allowed_values": "warn"}
            ),
            ColumnSchema("dep_delay", "int64", min=0, max=100, enforce={"min": "quarantine", "max": "warn"}),
        ]
    )
    raw = pd.DataFrame(
        {"flight_id": [1, 2, 3, 4], "carrier": ["AA", "HA", "UA", "UA"], "dep_delay": [5, 500, -3, 7]}
    )

    conf = conform(raw, inferred)

    assert conf.rows_in == conf.rows_valid + conf.rows_quarantined
    # only the declared min quarantines: a rare carrier and a long delay the reference never saw stay
    assert conf.quarantine["flight_id"].tolist() == [3]
    assert conf.quarantine[REASON_COLUMN].tolist() == ["dep_delay: '-3' below min 0"]
    reported = {(p.column, p.rule, p.enforce, p.count) for p in conf.problems}
    assert reported == {
        ("carrier", "allowed_values", "warn", 1),
        ("dep_delay", "range", "warn", 1),
        ("dep_delay", "range", "quarantine", 1),
    }
    assert [p.examples for p in conf.problems if p.column == "carrier"] == [[(1, "HA")]]


def test_an_unknown_enforcement_is_refused_naming_the_column():
    with pytest.raises(ValueError, match="column 'carrier': enforce allowed_values: 'drop'"):
        ColumnSchema("carrier", "string", allowed_values=["AA"], enforce={"allowed_values": "drop"})
