"""No-human-access mode on a real Dagster instance: the examples gate, the spec setting, and
reading row-level outputs through the audited door."""

from __future__ import annotations

import dataclasses

import dagster as dg
import pandas as pd
import pytest

from dcai_assets import build_definitions
from dcai_assets.privacy import WITHHELD, audit_log, examples_markdown, gated_counts, gated_groups, read_rows
from dcai_assets.spec import PrivacySpec
from tests.conftest import sensor_readings

ON = PrivacySpec(no_human_access=True)


def test_privacy_is_off_by_default_and_protects_every_column_when_on(readings_spec):
    assert readings_spec.privacy == PrivacySpec()
    assert not PrivacySpec().protects("site")
    assert ON.protects("site") and ON.protects("anything")
    only = PrivacySpec(no_human_access=True, protected_columns=["site"])
    assert only.protected_columns == ("site",) and not only.protects("count")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"no_human_access": "yes"}, "no_human_access"),
        ({"min_group_size": 0}, "min_group_size"),
        ({"min_group_size": 2.5}, "min_group_size"),
        ({"protected_columns": "site"}, "protected_columns"),
        ({"protected_columns": ["site", 3]}, "protected_columns"),
    ],
)
def test_bad_privacy_settings_are_refused_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PrivacySpec(**kwargs)


def test_dataset_spec_refuses_a_privacy_that_is_not_a_privacy_spec(readings_spec):
    with pytest.raises(TypeError, match=r"DatasetSpec\.privacy"):
        dataclasses.replace(readings_spec, privacy={"no_human_access": True})


def test_the_examples_gate_renders_rows_when_off_and_aggregates_when_on():
    frame = sensor_readings("2024-01-10")
    off = examples_markdown(PrivacySpec(), frame, rows=3)
    assert frame["reading_id"].iloc[0] in off and frame["reading_id"].iloc[3] not in off
    rendered = []
    on = examples_markdown(ON, frame, rows=3, render=rendered.append, group_by=["site"])
    assert rendered == []  # the renderer never sees a row
    assert WITHHELD in on and "200 rows" in on and "| north |" in on
    assert not any(v in on for v in frame["reading_id"])


def test_gated_counts_suppress_small_groups_only_when_on():
    counts = pd.Series({"a": 40, "b": 2})
    assert gated_counts(PrivacySpec(), counts) == {"a": 40, "b": 2}
    assert gated_counts(ON, counts) == {"a": 40, "_suppressed_groups": 1, "_suppressed_rows": 2}


def test_gated_groups_drop_small_partitions_only_when_on():
    table = pd.DataFrame(
        {"partition": ["2024-01-01", "2024-01-02"], "rows": [40, 2], "mean_importance": [0.1, -0.7]}
    )
    off, off_note = gated_groups(PrivacySpec(), table)
    assert off is table and off_note == ""
    shown, note = gated_groups(ON, table)
    assert shown["partition"].tolist() == ["2024-01-01"]
    assert note == "1 group(s) with fewer than 10 rows suppressed (2 rows in all)"


def _ingest_and_collect(spec, resources, landing) -> tuple[pd.DataFrame, str]:
    """Ingest one day with an unparseable count; returns the day and everything the run shows
    (every event, with its metadata and check results, and every log message)."""
    day = sensor_readings("2024-01-12")
    day["count"] = day["count"].astype(object)
    day.loc[3, "count"] = "7 units"  # unparseable: quarantined, and quoted as an example when off
    day.to_csv(landing / "2024-01-12.csv", index=False)
    defs = dg.Definitions.merge(build_definitions(spec), dg.Definitions(resources=resources))
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("readings_ingest").execute_in_process(
            instance=instance, partition_key="2024-01-12", raise_on_error=False
        )
        shown = "\n".join(
            repr(r.dagster_event) + (r.user_message or "") for r in instance.all_logs(result.run_id)
        )
    return day, shown


def test_private_ingest_shows_no_row_value_in_metadata_checks_or_logs(readings_spec, resources, landing):
    day, shown = _ingest_and_collect(dataclasses.replace(readings_spec, privacy=ON), resources, landing)
    assert "7 units" not in shown
    assert not any(v in shown for v in day["reading_id"])
    assert WITHHELD in shown
    assert "`count` has 1 values that are not integers; rows quarantined" in shown


def test_ordinary_ingest_shows_row_values_the_same_search_finds(readings_spec, resources, landing):
    day, shown = _ingest_and_collect(readings_spec, resources, landing)
    assert "7 units" in shown
    assert any(v in shown for v in day["reading_id"])


def test_read_rows_returns_the_rows_and_records_who_why_and_what(readings_spec, tmp_path):
    lake = tmp_path / "lake"
    (lake / "readings" / "validated_data").mkdir(parents=True)
    frame = sensor_readings("2024-01-10")
    frame.to_parquet(lake / "readings" / "validated_data" / "2024-01-10.parquet")
    frame.head(4).to_parquet(lake / "readings" / "importance_scores.parquet")
    got = read_rows(readings_spec, "validated_data", "2024-01-10", lake=lake, who="ana", why="label audit")
    pd.testing.assert_frame_equal(got, frame)
    assert len(read_rows(readings_spec, "importance_scores", lake=lake, who="bo", why="review")) == 4
    with pytest.raises(FileNotFoundError, match="2024-01-11"):
        read_rows(readings_spec, "validated_data", "2024-01-11", lake=lake, who="ana", why="typo")
    records = audit_log(readings_spec, lake).records()
    assert [(r.who, r.asset, r.partition, r.rows) for r in records] == [
        ("ana", "readings/validated_data", "2024-01-10", 200),
        ("bo", "readings/importance_scores", None, 4),
        ("ana", "readings/validated_data", "2024-01-11", 0),
    ]
    assert records[0].why == "label audit" and "not found" in records[2].why
    assert (lake / "_audit" / "readings" / "access.sqlite").exists()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"who": ""}, "who"),
        ({"why": "  "}, "why"),
        ({"asset": "../secrets"}, "asset"),
        ({"partition": "a/b"}, "partition"),
    ],
)
def test_read_rows_refuses_an_anonymous_or_unexplained_read(readings_spec, tmp_path, kwargs, message):
    args = {"asset": "validated_data", "partition": "2024-01-10", "who": "ana", "why": "check"} | kwargs
    with pytest.raises(ValueError, match=message):
        read_rows(readings_spec, lake=tmp_path, **args)
    assert audit_log(readings_spec, tmp_path).records() == ()


def test_audit_path_in_the_spec_is_used(readings_spec, tmp_path):
    spec = dataclasses.replace(readings_spec, privacy=PrivacySpec(audit_path=tmp_path / "elsewhere.sqlite"))
    (tmp_path / "lake" / "readings").mkdir(parents=True)
    sensor_readings("2024-01-10").to_parquet(tmp_path / "lake" / "readings" / "importance_scores.parquet")
    read_rows(spec, "importance_scores", lake=tmp_path / "lake", who="ana", why="check")
    assert len(audit_log(spec, tmp_path / "lake").records()) == 1
    assert (tmp_path / "elsewhere.sqlite").exists()


def _failing_lf_set():
    from dcai_assets.core.labeling import ABSTAIN, LabelingFunctionSet, labeling_function

    @labeling_function(vectorized=False)
    def parses_site(row):
        return int(row.site) if row.site else ABSTAIN  # 'north' is not a number

    return LabelingFunctionSet([parses_site], classes=["a", "b"])


def test_a_failing_labeling_function_names_no_row_value_when_on():
    from dcai_assets.core.labeling import LabelingFunctionError, apply_lfs
    from dcai_assets.privacy import lf_errors_gated

    frame = pd.DataFrame({"site": ["north", "south"], "tail": ["N123AB", "N9"]})
    with pytest.raises(LabelingFunctionError) as off, lf_errors_gated(PrivacySpec(), "2024-01-10"):
        apply_lfs(_failing_lf_set(), frame, partition="2024-01-10")
    assert "N123AB" in str(off.value) or "north" in str(off.value)  # off: the row, to debug
    with pytest.raises(LabelingFunctionError) as on, lf_errors_gated(ON, "2024-01-10"):
        apply_lfs(_failing_lf_set(), frame, partition="2024-01-10")
    message = str(on.value)
    assert "N123AB" not in message and "north" not in message
    assert "ValueError" in message and "2024-01-10" in message and WITHHELD in message
    assert on.value.__cause__ is None and on.value.__suppress_context__
