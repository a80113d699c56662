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


# Huge and non-finite numbers (issue 20, item 5): reported as found, never wrapped by an int64 cast.
BOUNDED = TableSchema(
    columns=[
        ColumnSchema("flight_id", "int64", nullable=False),
        ColumnSchema("dep_delay", "int64", nullable=True, min=0, max=100),
        ColumnSchema("distance", "float64", nullable=True, min=0, max=5000),
        ColumnSchema("tail", "string", nullable=True),
    ],
    key=["flight_id"],
)
FORTY_DIGITS = "1234567890123456789012345678901234567890"
WRAPPED = "-9223372036854775808"


def conform_rows(**columns) -> tuple:
    """Conform a two-row partition: row 0 clean, row 1 with the given values."""
    base = {"flight_id": ["1", "2"], "dep_delay": ["5", "6"], "distance": ["10", "20"], "tail": ["N1", "N2"]}
    base.update({k: ["1" if k == "flight_id" else base[k][0], v] for k, v in columns.items()})
    result = conform(pd.DataFrame(base), BOUNDED)
    text = " | ".join(result.quarantine[REASON_COLUMN]) + repr([p.examples for p in result.problems])
    return result, text


@pytest.mark.parametrize("value", [1e300, "1e300", FORTY_DIGITS, "9223372036854775808"])
def test_an_integer_beyond_int64_is_reported_as_found_with_the_bound_it_broke(value):
    result, text = conform_rows(dep_delay=value)

    assert result.rows_in == result.rows_valid + result.rows_quarantined
    assert result.quarantine.index.tolist() == [1]
    found = str(value)
    assert f"dep_delay: not an integer in int64 range ('{found}')" in text
    assert f"dep_delay: '{found}' above max 100" in text
    assert WRAPPED not in text
    assert {(p.rule, p.expected) for p in result.problems} == {
        ("dtype", "int64 range"),
        ("range", "above max 100"),
    }


def test_a_negative_40_digit_integer_breaks_the_min_as_found():
    _, text = conform_rows(dep_delay="-" + FORTY_DIGITS)

    assert f"dep_delay: '-{FORTY_DIGITS}' below min 0" in text
    assert WRAPPED not in text


def test_a_40_digit_number_in_an_int64_key_is_quarantined_not_wrapped():
    result, _ = conform_rows(flight_id=FORTY_DIGITS)

    assert result.quarantine.index.tolist() == [1]
    assert result.quarantine[REASON_COLUMN].tolist() == [
        f"flight_id: not an integer in int64 range ('{FORTY_DIGITS}')"
    ]
    assert result.quarantine.loc[1, "flight_id"] == FORTY_DIGITS  # kept as read


def test_the_int64_extremes_are_kept_exactly():
    raw = pd.DataFrame({"flight_id": ["9223372036854775807", "-9223372036854775808", "9007199254740993"]})
    schema = TableSchema(columns=[ColumnSchema("flight_id", "int64", nullable=False)])

    result = conform(raw, schema)

    assert result.rows_quarantined == 0
    assert result.valid["flight_id"].tolist() == [2**63 - 1, -(2**63), 2**53 + 1]


@pytest.mark.parametrize("value", [float("inf"), "inf", "-inf", 1e308 * 10])
def test_an_infinite_value_in_an_integer_column_is_quarantined_not_a_crash(value):
    result, text = conform_rows(dep_delay=value)

    assert result.quarantine.index.tolist() == [1]
    assert "dep_delay: not an integer" in text


@pytest.mark.parametrize("value", ["1e309", float("-inf"), "inf", 1e308 * 10])
def test_an_infinite_float_is_quarantined_as_not_finite(value):
    result, text = conform_rows(distance=value)

    assert result.quarantine.index.tolist() == [1]
    assert f"distance: not a finite number ('{value}')" in text
    assert ("dtype", "finite") in {(p.rule, p.expected) for p in result.problems}


def test_a_nan_string_in_a_float_column_is_a_null_not_a_number():
    result, _ = conform_rows(distance="nan")

    assert result.rows_quarantined == 0
    assert pd.isna(result.valid.loc[1, "distance"])
    assert result.nulls["distance"].count == 1


@pytest.mark.parametrize("marker", ["NA", " NA ", "null", "N/A", "None", ""])
def test_a_missing_marker_is_a_null_in_a_number_column_and_text_in_a_text_column(marker):
    result, _ = conform_rows(dep_delay=marker, distance=marker, tail=marker)

    assert result.rows_quarantined == 0
    assert pd.isna(result.valid.loc[1, "dep_delay"]) and pd.isna(result.valid.loc[1, "distance"])
    assert result.nulls["dep_delay"].examples == [(1, marker)]  # shown as found in the file
    if marker:  # a CSV's empty cell is read as missing; any other text is the value
        assert result.valid.loc[1, "tail"] == marker
        assert "tail" not in result.nulls


def test_a_text_column_treats_only_its_declared_missing_values_as_nulls():
    raw = pd.DataFrame({"tail": ["N1", "NA", " n/a ", "None"]})
    schema = TableSchema(columns=[ColumnSchema("tail", "string", missing_values=["NA", "n/a"])])

    result = conform(raw, schema)

    assert result.valid["tail"].tolist() == ["N1", None, None, "None"]
    assert result.nulls["tail"].count == 2


def test_a_missing_marker_in_a_non_nullable_number_column_is_quarantined_as_a_null():
    raw = pd.DataFrame({"flight_id": ["1", "NA"], "dep_delay": ["5", "6"]})
    schema = TableSchema(
        columns=[ColumnSchema("flight_id", "int64", nullable=False), ColumnSchema("dep_delay", "int64")]
    )

    result = conform(raw, schema)

    assert result.quarantine.index.tolist() == [1]
    assert ("null", "flight_id") in {(p.rule, p.column) for p in result.problems}


@pytest.mark.parametrize("value", [FORTY_DIGITS, 12345678901234567890, "00042"])
def test_a_long_number_in_a_text_column_keeps_every_digit(value):
    result, _ = conform_rows(tail=value)

    assert result.valid.loc[1, "tail"] == str(value)


def test_a_giant_cell_is_clipped_in_reasons_and_examples_but_kept_as_read():
    giant = "x" * 1_000_000
    raw = pd.DataFrame({"flight_id": ["1", "2"], "dep_delay": ["5", giant]})
    schema = TableSchema(columns=[ColumnSchema("flight_id", "int64"), ColumnSchema("dep_delay", "int64")])

    result = conform(raw, schema)

    reason = result.quarantine[REASON_COLUMN].iloc[0]
    assert reason == "dep_delay: not an integer ('" + "x" * 40 + "... (1,000,000 characters)')"
    assert result.problems[0].examples == [(1, "x" * 40 + "... (1,000,000 characters)")]
    assert result.quarantine.loc[1, "dep_delay"] == giant
