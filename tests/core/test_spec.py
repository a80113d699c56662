"""Partition keys become file names, so unsafe or out-of-range keys are refused."""

from __future__ import annotations

import pytest

from dcai_assets.errors import DataInputError
from dcai_assets.spec import (
    DailyPartitions,
    DatasetSpec,
    DynamicPartitions,
    LandingDirectory,
    check_partition_key,
)

DAILY = DailyPartitions(start="2024-01-01", end="2024-02-01")


@pytest.mark.parametrize("key", ["../etc", "a/b", "", ".hidden", "a b"])
def test_unsafe_partition_keys_are_refused_naming_the_partition(key):
    with pytest.raises(DataInputError) as info:
        check_partition_key(key, DynamicPartitions(), file="x.csv")

    assert info.value.partition == key
    assert f"partition {key!r}" in str(info.value)
    assert "not allowed" in str(info.value)


@pytest.mark.parametrize("key", ["batch_7", "2024-05-01", "region=eu:v1.2"])
def test_safe_dynamic_partition_keys_are_accepted(key):
    assert check_partition_key(key, DynamicPartitions()) == key


def test_daily_partitioning_refuses_a_key_that_is_not_a_date():
    with pytest.raises(DataInputError) as info:
        check_partition_key("batch_7", DAILY, file="batch_7.csv")

    assert "not a date" in str(info.value)
    assert "YYYY-MM-DD" in str(info.value)
    assert "'batch_7.csv'" in str(info.value)


@pytest.mark.parametrize("key", ["2023-12-31", "2024-02-01"], ids=["before-start", "at-end"])
def test_daily_partitioning_refuses_a_date_outside_start_end(key):
    with pytest.raises(DataInputError) as info:
        check_partition_key(key, DAILY)

    assert "outside the partitions' range" in str(info.value)
    assert info.value.partition == key


@pytest.mark.parametrize("key", ["2024-01-01", "2024-01-31"])
def test_daily_partitioning_accepts_a_date_in_range(key):
    assert check_partition_key(key, DAILY) == key


@pytest.mark.parametrize("key", ["20240105", "2024-W01-5"])
def test_daily_partitioning_refuses_other_iso_date_spellings(key):
    with pytest.raises(DataInputError):
        check_partition_key(key, DAILY)


@pytest.mark.parametrize("name", ["my-data", "1st", "a b", ""])
def test_dataset_spec_rejects_a_name_unusable_as_asset_key_prefix(tmp_path, name):
    with pytest.raises(ValueError, match="asset-key prefix"):
        DatasetSpec(
            name=name,
            source=LandingDirectory(tmp_path),
            partitioning=DAILY,
            schema_path=tmp_path / "s.yaml",
        )


def test_dataset_spec_accepts_a_valid_name_and_lists_key_columns(tmp_path):
    spec = DatasetSpec(
        name="flights_2",
        source=LandingDirectory(tmp_path),
        partitioning=DAILY,
        schema_path=tmp_path / "s.yaml",
        key="flight_id",
    )

    assert spec.key_columns == ["flight_id"]


def test_a_single_string_as_reference_window_is_refused():
    from dcai_assets import DailyPartitions, DatasetSpec, LandingDirectory

    with pytest.raises(ValueError, match="is a single string; expected a list of partition keys"):
        DatasetSpec(
            name="orders",
            source=LandingDirectory(path="landing"),
            partitioning=DailyPartitions(start="2024-01-01"),
            schema_path="orders.yaml",
            reference="2024-01-05",
        )
