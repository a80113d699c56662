"""The multi-class example: Seattle's daily weather, five classes (drizzle, rain, sun, snow,
fog), one partition per month (dynamic month keys ``YYYY-MM``). ``python -m
jobs.seattle_weather_demo`` runs it through every stage."""

from __future__ import annotations

from pathlib import Path

from dcai_assets import DatasetSpec, DynamicPartitions, LandingDirectory
from jobs.seattle_weather_data import CLASSES, GOLD_COLUMN, reference_window
from resources import landing_dir

SEATTLE_WEATHER = DatasetSpec(
    name="seattle_weather",
    description="Daily weather in Seattle, 2012-2015 (vega_datasets seattle-weather)",
    source=LandingDirectory(path=landing_dir("seattle_weather")),
    # One batch per month; a monthly time partitioning can replace this once the spec has one.
    partitioning=DynamicPartitions(),
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
