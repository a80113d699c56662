"""Partition keys become file names, so unsafe or out-of-range keys are refused."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from dcai_assets.errors import DataInputError
from dcai_assets.spec import (
    DailyPartitions,
    DatasetSpec,
    DynamicPartitions,
    ImportanceSpec,
    LandingDirectory,
    TrainingSpec,
    WhatIfSpec,
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
    from dcai_assets import DatasetSpec, LandingDirectory
    from dcai_assets.spec import DailyPartitions

    with pytest.raises(ValueError, match="is a single string; expected a list of partition keys"):
        DatasetSpec(
            name="orders",
            source=LandingDirectory(path="landing"),
            partitioning=DailyPartitions(start="2024-01-01"),
            schema_path="orders.yaml",
            reference="2024-01-05",
        )


# --- which partitions are the newest: the partition's time, never registration order ---


def test_dynamic_partitions_are_ordered_by_the_month_they_name_not_by_registration():
    from dcai_assets.spec import partition_order

    registered = ["2014-02", "2013-01", "2013-05"]  # files landed out of order

    assert partition_order(registered, DynamicPartitions()) == ["2013-01", "2013-05", "2014-02"]


def test_dynamic_keys_of_mixed_time_spellings_are_ordered_by_time():
    from dcai_assets.spec import partition_order

    keys = ["2013-05-02T08:30", "2013", "2013-05-02-07:00", "2013-04", "2013-05-01"]

    assert partition_order(keys, DynamicPartitions()) == [
        "2013",
        "2013-04",
        "2013-05-01",
        "2013-05-02-07:00",
        "2013-05-02T08:30",
    ]


def test_dynamic_keys_that_are_not_all_times_fall_back_to_natural_key_order():
    from dcai_assets.spec import partition_order

    keys = ["batch_10", "batch_2", "batch_1"]

    assert partition_order(keys, DynamicPartitions()) == ["batch_1", "batch_2", "batch_10"]
    assert partition_order(["b", "2013-01", "a"], DynamicPartitions()) == ["2013-01", "a", "b"]


def test_dynamic_order_can_be_key_order_or_a_callable():
    from dcai_assets.spec import partition_order

    keys = ["2013-05", "2013-01", "2014-02"]
    by_suffix = DynamicPartitions(order=lambda k: k.split("-")[1])

    assert partition_order(["v10", "v9"], DynamicPartitions(order="key")) == ["v9", "v10"]
    assert partition_order(keys, by_suffix) == ["2013-01", "2014-02", "2013-05"]


def test_dynamic_order_time_refuses_keys_that_name_no_time():
    with pytest.raises(DataInputError, match="does not name a time"):
        check_partition_key("batch_7", DynamicPartitions(order="time"), file="batch_7.csv")
    assert check_partition_key("2013-02", DynamicPartitions(order="time")) == "2013-02"


def test_an_unknown_order_setting_is_refused():
    with pytest.raises(ValueError, match=r"DynamicPartitions\.order: 'newest'"):
        DynamicPartitions(order="newest")


def test_static_partitions_keep_their_declared_order_unless_every_key_names_a_time():
    from dcai_assets.spec import StaticPartitions, partition_order

    named = StaticPartitions(keys=["pilot", "rollout", "general"])
    dated = StaticPartitions(keys=["2021", "2019", "2020"])

    assert partition_order(["general", "pilot", "rollout"], named) == ["pilot", "rollout", "general"]
    assert partition_order(list(dated.keys), dated) == ["2019", "2020", "2021"]


@pytest.mark.parametrize(
    ("keys", "error", "match"),
    [
        ("pilot", TypeError, "expected a list of partition keys"),
        ([], ValueError, "empty"),
        (["a", "a"], ValueError, r"\['a'\] listed more than once"),
        (["ok", "a/b"], DataInputError, "not allowed"),
    ],
)
def test_static_partitions_refuse_bad_key_lists(keys, error, match):
    from dcai_assets.spec import StaticPartitions

    with pytest.raises(error, match=match):
        StaticPartitions(keys=keys)


def test_a_static_key_outside_the_declared_list_is_refused_naming_them():
    from dcai_assets.spec import StaticPartitions

    with pytest.raises(DataInputError) as info:
        check_partition_key("other", StaticPartitions(keys=["pilot", "rollout"]), file="other.csv")

    assert "not one of the declared static partitions" in str(info.value)
    assert "pilot, rollout" in str(info.value)


# --- monthly, weekly and hourly windows: Dagster's keys, checked like Dagster cuts them ---


def _windows():
    from dcai_assets.spec import HourlyPartitions, MonthlyPartitions, WeeklyPartitions

    return [
        DailyPartitions(start="2024-01-01", end="2024-03-01"),
        WeeklyPartitions(start="2024-01-03", end="2024-03-15"),
        MonthlyPartitions(start="2013-01-15", end="2013-06-15", timezone="America/New_York"),
        HourlyPartitions(start="2024-03-30", end="2024-04-01-05:00", timezone="Europe/Paris"),
    ]


@pytest.mark.parametrize("partitioning", _windows(), ids=lambda p: type(p).__name__)
def test_time_window_keys_accepted_are_exactly_dagsters_partition_keys(tmp_path, partitioning):
    from datetime import datetime, timedelta

    from dcai_assets.partitions import partitions_def

    spec = DatasetSpec(
        name="x", source=LandingDirectory(tmp_path), partitioning=partitioning, schema_path="s"
    )
    dagster_keys = set(partitions_def(spec).get_partition_keys())
    step, t = (
        (timedelta(hours=1), datetime(2024, 3, 29))
        if partitioning.UNIT == "hour"
        else (
            timedelta(days=1),
            datetime(2012, 12, 1) if partitioning.UNIT == "month" else datetime(2023, 12, 20),
        )
    )
    accepted = set()
    for _ in range(240):  # every hour or day around the range, so misaligned ones too
        key = t.strftime(partitioning.KEY_FORMAT)
        with contextlib.suppress(DataInputError):
            accepted.add(check_partition_key(key, partitioning))
        t += step

    assert dagster_keys and accepted == dagster_keys


def test_a_monthly_key_that_is_not_the_first_of_the_month_names_the_right_key():
    from dcai_assets.spec import MonthlyPartitions

    with pytest.raises(DataInputError) as info:
        check_partition_key("2013-05-15", MonthlyPartitions(start="2013-01-01"), file="2013-05-15.csv")

    assert "not the start of a month" in str(info.value)
    assert "the month's first day, e.g. 2013-05-01" in str(info.value)


def test_an_hourly_file_name_is_dagsters_hourly_key():
    from dcai_assets.spec import HourlyPartitions

    hourly = HourlyPartitions(start="2024-01-01")

    assert check_partition_key("2024-01-01-13:00", hourly, file="2024-01-01-13:00.csv") == "2024-01-01-13:00"
    with pytest.raises(DataInputError, match=r"YYYY-MM-DD-HH:MM, e.g. 2024-05-01-13:00.csv"):
        check_partition_key("2024-01-01T13", hourly, file="2024-01-01T13.csv")
    with pytest.raises(DataInputError, match=r"not the start of an hour.*e\.g\. 2024-01-01-13:00"):
        check_partition_key("2024-01-01-13:30", hourly)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"start": "01/02/2024"}, "MonthlyPartitions.start: '01/02/2024'; expected a string YYYY-MM-DD"),
        ({"start": "2024-01-01", "timezone": "Mars/Olympus"}, "not a known time zone"),
        ({"start": "2024-02-01", "end": "2024-01-01"}, "is not after start"),
    ],
)
def test_time_window_settings_are_validated(kwargs, match):
    from dcai_assets.spec import MonthlyPartitions

    with pytest.raises(ValueError, match=match):
        MonthlyPartitions(**kwargs)


def test_partition_span_is_the_real_length_of_the_window():
    from datetime import timedelta

    from dcai_assets.spec import HourlyPartitions, MonthlyPartitions, WeeklyPartitions, partition_span

    assert partition_span(MonthlyPartitions(start="2013-01-01"), "2013-02-01") == timedelta(days=28)
    assert partition_span(WeeklyPartitions(start="2024-01-01"), "2024-01-07") == timedelta(days=7)
    assert partition_span(HourlyPartitions(start="2024-01-01"), "2024-01-01-05:00") == timedelta(hours=1)
    paris = DailyPartitions(start="2024-01-01", timezone="Europe/Paris")
    assert partition_span(paris, "2024-03-31") == timedelta(hours=23)  # clocks go forward
    assert partition_span(DynamicPartitions(), "2013-05") == timedelta(days=31)
    assert partition_span(DynamicPartitions(), "2012") == timedelta(days=366)
    assert partition_span(DynamicPartitions(), "batch_7") is None


def _pipeline():
    return None


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (
            lambda: TrainingSpec(pipeline=_pipeline, features=["a"], holdout_partitions=2.5),
            "holdout_partitions",
        ),
        (
            lambda: TrainingSpec(pipeline=_pipeline, features=["a"], holdout_partitions=True),
            "holdout_partitions",
        ),
        (lambda: TrainingSpec(pipeline=_pipeline, features=["a"], window=4.0), "window"),
        (lambda: TrainingSpec(pipeline=_pipeline, features=["a"], min_gold_rows=0.5), "min_gold_rows"),
        (lambda: TrainingSpec(pipeline=_pipeline, features=["a"], seed=-1), "seed"),
        (lambda: ImportanceSpec(k=2.5), "ImportanceSpec.k"),
        (lambda: ImportanceSpec(k=True), "ImportanceSpec.k"),
        (lambda: ImportanceSpec(shards="2"), "shards"),
        (lambda: ImportanceSpec(review_rows=-1), "review_rows"),
        (lambda: WhatIfSpec(random_repeats=1), "WhatIfSpec.random_repeats: 1; expected an integer >= 2"),
        (lambda: WhatIfSpec(random_repeats=3.0), "WhatIfSpec.random_repeats"),
    ],
)
def test_integer_spec_fields_refuse_floats_bools_and_out_of_range_values(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_integer_spec_fields_accept_numpy_integers():
    assert ImportanceSpec(k=np.int64(3)).k == 3


@pytest.mark.parametrize(
    ("fractions", "match"),
    [((), "non-empty list"), ((0.01, 1.0), "1.0 in"), ((0,), "0 in"), (("1%",), "'1%'"), ("0.01", "'0.01'"),
     ((True,), "True in")],
)  # fmt: skip
def test_what_if_fractions_are_shares_between_zero_and_one(fractions, match):
    with pytest.raises(ValueError, match=r"WhatIfSpec\.fractions: ") as e:
        WhatIfSpec(fractions=fractions)
    assert match in str(e.value)


def test_what_if_settings_default_to_the_sweep_and_are_part_of_the_dataset_spec():
    assert WhatIfSpec() == WhatIfSpec(fractions=[0.005, 0.01, 0.02, 0.05], random_repeats=5)
    with pytest.raises(TypeError, match=r"DatasetSpec\.what_if: dict; expected a WhatIfSpec"):
        DatasetSpec(
            name="x", source=LandingDirectory(path="."), partitioning=DailyPartitions(start="2024-01-01"),
            schema_path="s.yaml", what_if={"fractions": [0.1]},
        )  # fmt: skip


def test_health_checks_are_warn_only_by_default_and_refuse_unknown_or_misspelt_settings():
    from dcai_assets.spec import HealthChecks

    assert HealthChecks().blocking == ()
    assert HealthChecks(blocking=["outliers", "weak_segments"]).blocking == ("outliers", "weak_segments")
    with pytest.raises(ValueError, match=r"unknown checks \['leakage'\]"):
        HealthChecks(blocking=["leakage"])
    with pytest.raises(ValueError, match="expected a list of check names"):
        HealthChecks(blocking="duplicates")
    with pytest.raises(ValueError, match=r"HealthChecks.alpha: 0; expected a number in \(0, 1\]"):
        HealthChecks(alpha=0)
    with pytest.raises(ValueError, match=r"HealthChecks\.outlier_factor"):
        HealthChecks(outlier_factor=0.5)
    with pytest.raises(ValueError, match=r"HealthChecks\.min_slice_rows"):
        HealthChecks(min_slice_rows=2.5)
    with pytest.raises(TypeError, match=r"DatasetSpec\.health_checks: dict; expected HealthChecks"):
        DatasetSpec(name="d", source=LandingDirectory("x"), partitioning=DailyPartitions(start="2024-01-01"),
                    schema_path="s.yaml", health_checks={"blocking": []})  # fmt: skip
