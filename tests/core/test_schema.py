"""Schema inference from a reference window, and the reviewable YAML file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dcai_assets.core.schema import ColumnSchema, TableSchema
from dcai_assets.core.schema_inference import infer_schema


def partition(day: int, rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(day)
    frame = pd.DataFrame(
        {
            "trip_id": [f"T{day}-{i:04d}" for i in range(rows)],  # the key
            "driver": [f"D{day}{i:03d}" for i in range(rows)],  # high cardinality text
            "zone": rng.choice(["north", "south", "east"], size=rows),  # low cardinality text
            "passengers": rng.integers(5, 46, size=rows),  # non-negative integers
            "temperature": rng.uniform(-10.0, 10.0, size=rows).round(2),  # may be negative
            "tip": rng.uniform(0.0, 20.0, size=rows).round(2),
            "pickup": [f"2024-01-0{day}T{i % 24:02d}:00:00" for i in range(rows)],
        }
    )
    if day == 2:  # 10% of tips missing on one day only
        frame.loc[: rows // 10 - 1, "tip"] = np.nan
    frame.loc[0, "passengers"] = 5  # the window's extremes are known exactly
    frame.loc[1, "passengers"] = 45
    frame.loc[0, "temperature"] = -10.0
    frame.loc[1, "temperature"] = 10.0
    return frame


@pytest.fixture(scope="module")
def reference() -> dict[str, pd.DataFrame]:
    return {"2024-01-01": partition(1, 40), "2024-01-02": partition(2, 50), "2024-01-03": partition(3, 60)}


@pytest.fixture(scope="module")
def schema(reference) -> TableSchema:
    return infer_schema(reference, key=["trip_id"])


def test_dtypes_are_inferred_from_the_window(schema):
    dtypes = {c.name: c.dtype for c in schema.columns}

    assert dtypes == {
        "trip_id": "string",
        "driver": "string",
        "zone": "string",
        "passengers": "int64",
        "temperature": "float64",
        "tip": "float64",
        "pickup": "datetime",
    }
    assert schema.key == ["trip_id"]


def as_csv_text(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as ``read_table_file`` reads it from a CSV: every cell text, empty cells missing."""
    return frame.astype(object).where(frame.notna(), np.nan).map(lambda v: v if pd.isna(v) else str(v))


def test_a_csv_window_read_as_text_gives_the_same_schema_as_typed_frames(reference, schema):
    from_text = infer_schema({k: as_csv_text(f) for k, f in reference.items()}, key=["trip_id"])

    assert from_text.to_yaml() == schema.to_yaml()


def test_text_columns_are_typed_by_what_every_value_parses_as():
    rows = {
        "station": ["000123", "000124", "010000"],  # zero-padded: an id, kept as text
        "count": ["1", "2", "30"],
        "count_with_gap": ["1", "NA", "30"],  # a missing value: float64, as pandas reads it
        "reading": ["1.5", "-2", "1e3"],
        "long_id": ["12345678901234567", None, "98765432109876543"],  # a float would round it
        "flag": ["True", "false", "TRUE"],
        "country": ["NA", "FR", "NA"],  # Namibia: text, not missing
    }
    schema = infer_schema({"2024-01-01": pd.DataFrame(rows)})
    columns = {c.name: c for c in schema.columns}

    assert {name: c.dtype for name, c in columns.items()} == {
        "station": "string",
        "count": "int64",
        "count_with_gap": "float64",
        "reading": "float64",
        "long_id": "string",
        "flag": "bool",
        "country": "string",
    }
    assert (columns["count"].min, columns["count"].max) == (0.0, 38.0)  # learnt from the numbers
    assert columns["count_with_gap"].nullable and not columns["country"].nullable
    assert columns["country"].allowed_values == ["FR", "NA"]
    assert columns["station"].allowed_values == ["000123", "000124", "010000"]


def test_declared_missing_values_make_a_text_columns_na_a_null_and_survive_the_yaml_file(tmp_path):
    rows = {"tailnum": ["N123", "NA", "N456", "NA"], "seats": ["100", "NA", "120", "80"]}
    overrides = {"tailnum": {"missing_values": ["NA"]}}

    schema = infer_schema({"2024-01-01": pd.DataFrame(rows)}, overrides=overrides)
    tailnum = schema.column("tailnum")

    assert tailnum.dtype == "string" and tailnum.nullable and tailnum.max_null_fraction > 0.5
    assert tailnum.allowed_values == ["N123", "N456"]
    assert TableSchema.load(schema.save(tmp_path / "schema.yaml")).column("tailnum").missing_values == ["NA"]
    assert schema.column("seats").dtype == "float64"  # NA is missing in a number column anyway


def test_missing_values_must_be_a_list_of_texts():
    with pytest.raises(ValueError, match="column 'tailnum': missing_values 'NA'; expected a list of texts"):
        ColumnSchema("tailnum", "string", missing_values="NA")


def test_nullability_and_null_fraction_come_from_the_worst_partition(schema):
    tip = schema.column("tip")
    zone = schema.column("zone")

    assert tip.nullable is True
    # worst day has 10% nulls: twice that, or 5 points more, whichever is larger
    assert tip.max_null_fraction == pytest.approx(0.2)
    assert zone.nullable is False
    assert zone.max_null_fraction == 0.0


def test_low_cardinality_text_gets_an_allowed_set_and_high_cardinality_text_does_not(schema):
    assert schema.column("zone").allowed_values == ["east", "north", "south"]
    assert schema.column("driver").allowed_values is None


def test_numeric_ranges_are_widened_and_clamped_at_zero_for_non_negative_columns(schema):
    passengers = schema.column("passengers")
    temperature = schema.column("temperature")

    # span 40, margin 25%: 5 - 10 would go negative, so the minimum stays at 0
    assert (passengers.min, passengers.max) == (0.0, 55.0)
    # span 20, margin 25%: -10 - 5 and 10 + 5
    assert (temperature.min, temperature.max) == (pytest.approx(-15.0), pytest.approx(15.0))


def test_row_count_bounds_are_widened_from_the_partition_sizes(schema):
    # sizes 40, 50, 60 with a 50% margin
    assert schema.min_rows == 20
    assert schema.max_rows == 90


def test_every_profiled_feature_gets_drift_thresholds_at_least_the_floor(schema):
    for name in ("driver", "zone", "passengers", "temperature", "tip"):
        col = schema.column(name)
        assert col.reference is not None, name
        assert col.drift_threshold is not None and col.drift_threshold >= 0.05, name
        assert col.step_drift_threshold is not None and col.step_drift_threshold >= 0.05, name
    assert schema.column("zone").reference.frequencies.keys() == {"north", "south", "east"}
    assert len(schema.column("tip").reference.bin_frequencies) == 10
    assert schema.column("pickup").drift_threshold is None


def test_a_single_column_key_gets_no_allowed_set_range_or_drift_profile(reference):
    frames = {k: f.assign(trip_no=range(len(f))) for k, f in reference.items()}
    schema = infer_schema(frames, key=["trip_no"])

    trip_no = schema.column("trip_no")
    assert trip_no.dtype == "int64"
    assert (trip_no.min, trip_no.max, trip_no.reference, trip_no.drift_threshold) == (None, None, None, None)
    assert schema.column("trip_id").reference is not None  # not the key here: an ordinary feature


def test_overrides_replace_inferred_settings(reference):
    schema = infer_schema(reference, overrides={"passengers": {"min": 1, "max": 8, "drift_threshold": 0.5}})

    passengers = schema.column("passengers")
    assert (passengers.min, passengers.max) == (1, 8)
    assert passengers.drift_threshold == 0.5


def test_an_override_for_an_unknown_column_is_refused(reference):
    with pytest.raises(ValueError, match="passenger_count"):
        infer_schema(reference, overrides={"passenger_count": {"min": 0}})


def test_an_override_of_an_unknown_setting_is_refused(reference):
    with pytest.raises(ValueError, match="minimum"):
        infer_schema(reference, overrides={"passengers": {"minimum": 0}})


def test_an_empty_reference_window_is_refused():
    with pytest.raises(ValueError, match="reference window is empty"):
        infer_schema({})


def test_the_schema_file_round_trips(schema, tmp_path):
    path = schema.save(tmp_path / "schemas" / "trips.yaml")

    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Schema as code")
    assert ": null" not in text  # unset settings are left out, not written as null
    assert TableSchema.load(path) == schema


def test_loading_a_schema_file_with_an_unknown_key_names_the_file(schema, tmp_path):
    path = schema.save(tmp_path / "trips.yaml")
    path.write_text(path.read_text(encoding="utf-8") + "max_row: 10\n", encoding="utf-8")

    with pytest.raises(ValueError) as info:
        TableSchema.load(path)

    assert str(path) in str(info.value)
    assert "max_row" in str(info.value)


def test_loading_a_schema_file_with_an_unknown_column_key_names_the_file(schema, tmp_path):
    path = schema.save(tmp_path / "trips.yaml")
    text = path.read_text(encoding="utf-8").replace(
        "  dtype: string\n", "  dtype: string\n  nulable: true\n", 1
    )
    path.write_text(text, encoding="utf-8")

    with pytest.raises(ValueError) as info:
        TableSchema.load(path)

    assert str(path) in str(info.value)


def test_loading_a_missing_schema_file_says_how_to_create_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="schema infer"):
        TableSchema.load(tmp_path / "nope.yaml")


def test_inferred_sets_and_ranges_warn_and_declared_ones_quarantine(reference, tmp_path):
    schema = infer_schema(reference, key=["trip_id"], overrides={"passengers": {"min": 1}})

    assert schema.column("zone").enforce == {"allowed_values": "warn"}
    assert schema.column("temperature").enforce == {"min": "warn", "max": "warn"}
    assert schema.column("passengers").enforce == {"min": "quarantine", "max": "warn"}
    text = schema.to_yaml()
    assert "enforce:\n    allowed_values: warn" in text
    assert TableSchema.load(schema.save(tmp_path / "s.yaml")).column("passengers").enforce == {
        "min": "quarantine",
        "max": "warn",
    }


def test_an_inferred_rule_can_be_declared_enforced_without_changing_its_bound(reference):
    schema = infer_schema(reference, overrides={"zone": {"enforce": {"allowed_values": "quarantine"}}})

    assert schema.column("zone").allowed_values == ["east", "north", "south"]
    assert schema.column("zone").enforce == {"allowed_values": "quarantine"}


def test_inferred_row_count_bounds_warn_and_table_overrides_declare_them(reference):
    inferred = infer_schema(reference)
    declared = infer_schema(reference, overrides={"__table__": {"min_rows": 10, "max_rows": 500}})

    assert inferred.row_count_enforce == "warn"
    assert (declared.min_rows, declared.max_rows, declared.row_count_enforce) == (10, 500, "block")
    assert declared.row_bounds(1.0) == (10, 500)  # no per-day bounds left to override them


def test_row_count_bounds_are_learnt_per_day_when_the_spans_are_known(reference):
    # 40, 50 and 60 rows over 1, 1 and 2 days: 40 to 50 rows a day, widened by 50%
    schema = infer_schema(reference, spans={"2024-01-01": 1.0, "2024-01-02": 1.0, "2024-01-03": 2.0})

    assert (schema.min_rows_per_day, schema.max_rows_per_day) == (15.0, 75.0)
    assert schema.row_bounds(31.0) == (465, 2325)  # a monthly partition
    assert schema.row_bounds(1 / 24) == (0, 4)  # an hourly one
    assert schema.row_bounds(None) == (20, 90)  # a dynamic one: the per-partition bounds
    assert "15.0–75.0 rows per day × 31 days" in schema.describe_row_bounds(31.0)


def test_a_declared_per_day_bound_replaces_the_learnt_one(reference):
    schema = infer_schema(
        reference,
        spans={k: 1.0 for k in reference},
        overrides={"__table__": {"max_rows_per_day": 1000, "row_count_enforce": "warn"}},
    )

    assert schema.max_rows_per_day == 1000
    assert schema.row_count_enforce == "warn"


def test_bad_table_overrides_and_spans_are_refused_naming_the_setting(reference):
    with pytest.raises(ValueError, match=r"__table__.*max_row"):
        infer_schema(reference, overrides={"__table__": {"max_row": 5}})
    with pytest.raises(ValueError, match="row_count_enforce: 'error'"):
        infer_schema(reference, overrides={"__table__": {"row_count_enforce": "error"}})
    with pytest.raises(ValueError, match="spans: no span for reference partitions"):
        infer_schema(reference, spans={"2024-01-01": 1.0})
    with pytest.raises(ValueError, match="span_days: 0"):
        infer_schema(reference).row_bounds(0)


def test_the_label_column_gets_no_drift_profile_and_the_window_is_recorded(reference):
    schema = infer_schema(reference, key=["trip_id"], label="zone")

    assert schema.column("zone").reference is None
    assert schema.column("zone").drift_threshold is None
    assert schema.column("zone").allowed_values == ["east", "north", "south"]  # still validated
    assert schema.reference_partitions == ["2024-01-01", "2024-01-02", "2024-01-03"]
    with pytest.raises(ValueError, match=r"label column.*'outcome'"):
        infer_schema(reference, label="outcome")


def test_a_column_empty_in_the_whole_window_is_flagged_as_a_guess_and_learns_no_value_set(tmp_path):
    from dcai_assets.core.reading import read_table_file

    days = {}
    for day in ("2024-01-01", "2024-01-02"):  # read as `schema infer` reads a CSV: every cell text
        (tmp_path / f"{day}.csv").write_text("amount,coupon\n1.5,\n2.5,\n3.0,\n")
        days[day] = read_table_file(tmp_path / f"{day}.csv", text_columns=None)
    schema = infer_schema(days)
    coupon = schema.column("coupon")
    assert (coupon.dtype, coupon.max_null_fraction) == ("string", 1.0)
    assert coupon.allowed_values is None  # an empty set would call every future value unseen
    assert "dtype guessed as string (declare it in schema_overrides): coupon" in schema.note
    declared = infer_schema(days, overrides={"coupon": {"dtype": "float64"}})
    assert declared.column("coupon").dtype == "float64" and "guessed" not in declared.note
