"""The second example (hourly weather at the NYC airports, monthly partitions of 2013) end to
end on a real Dagster instance and MLflow, on three months."""

from __future__ import annotations

import re

import pytest


def test_airport_weather_example_validates_labels_trains_and_values_three_months(airport_weather_run):
    out = airport_weather_run.stdout  # jobs.airport_weather_demo 2013-04-01 2013-06-01, see tests/conftest.py

    assert "landed 3 files; the landing sensor requested 3 ingest runs" in out
    assert "3 of 3 partitions passed validation; blocked by a check: none" in out
    assert "runs that failed with an error" not in out
    label_model, majority_vote = (
        float(x) for x in re.search(r"label model (\d\.\d+), majority vote (\d\.\d+)", out).groups()
    )
    assert label_model >= majority_vote and label_model > 0.85
    assert "models:/airport_weather_model/1: trained on" in out
    assert "against gold labels" in out
    assert "| review | partition | origin | time_hour |" in out
    lake = airport_weather_run.data / "lake" / "airport_weather"
    assert (lake / "labeled_set" / "2013-06-01.parquet").exists()
    assert (lake / "importance_scores.parquet").exists()


def test_airport_weather_definitions_load_with_every_stage_and_the_twelve_months_of_2013():
    import dagster as dg

    from jobs.airport_weather_definitions import defs

    repo = defs.get_repository_def()
    keys = {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()}
    assert {
        "airport_weather/raw_data",
        "airport_weather/labeled_set",
        "airport_weather/importance_scores",
    } <= keys
    raw = defs.resolve_assets_def(dg.AssetKey(["airport_weather", "raw_data"]))
    assert isinstance(raw.partitions_def, dg.MonthlyPartitionsDefinition)
    months = raw.partitions_def.get_partition_keys()
    assert months == [f"2013-{m:02d}-01" for m in range(1, 13)]


def test_month_arguments_are_partition_keys_and_a_bare_month_is_refused_by_name():
    from jobs.airport_weather_data import monthly_frames
    from jobs.seattle_weather_data import monthly_frames as seattle_frames

    # "2013-06" would silently drop June ("2013-06-01" sorts after it), so it is refused.
    with pytest.raises(ValueError, match=r"last: '2013-06'; expected a month's partition key YYYY-MM-01"):
        monthly_frames("2013-04-01", "2013-06")
    with pytest.raises(ValueError, match=r"first: '2012-01-15'"):
        seattle_frames("2012-01-15", "2012-06-01")
    assert list(seattle_frames("2012-11-01", "2012-12-01")) == ["2012-11-01", "2012-12-01"]
