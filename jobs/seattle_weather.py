"""The multi-class example: Seattle's daily weather, five classes (drizzle, rain, sun, snow,
fog), one partition per calendar month of 2012-2015 (keys ``YYYY-MM-01``). ``python -m
jobs.seattle_weather_demo`` runs it through every stage."""

from __future__ import annotations

from pathlib import Path

from dcai_assets import DatasetSpec, LandingDirectory
from dcai_assets.spec import MonthlyPartitions
from jobs.seattle_weather_data import CLASSES, GOLD_COLUMN, reference_window
from resources import landing_dir

SEATTLE_WEATHER = DatasetSpec(
    name="seattle_weather",
    description="Daily weather in Seattle, 2012-2015 (vega_datasets seattle-weather)",
    source=LandingDirectory(path=landing_dir("seattle_weather")),
    # One partition per month the table covers: 2012-01-01 .. 2015-12-01.
    partitioning=MonthlyPartitions(start="2012-01-01", end="2016-01-01"),
    schema_path=Path(__file__).parent / "schemas" / "seattle_weather.yaml",
    key="date",
    label=GOLD_COLUMN,
    reference=reference_window,
    schema_overrides={
        "weather": {"allowed_values": CLASSES},
        GOLD_COLUMN: {"allowed_values": CLASSES},
        "precipitation": {"min": 0, "max": 120},
        "wind": {"min": 0, "max": 30},
    },
    owners=["team:data-platform"],
)
