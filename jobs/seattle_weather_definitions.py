"""The weather example's Definitions (five classes), through the public spec API only."""

from __future__ import annotations

import dagster as dg

from dcai_assets import ImportanceSpec, build_definitions
from jobs.seattle_weather import SEATTLE_WEATHER
from jobs.seattle_weather_labeling import SEATTLE_WEATHER_LABELING
from jobs.seattle_weather_training import SEATTLE_WEATHER_TRAINING
from resources import executor, resource_set

defs = dg.Definitions.merge(
    build_definitions(
        SEATTLE_WEATHER,
        labeling=SEATTLE_WEATHER_LABELING,
        training=SEATTLE_WEATHER_TRAINING,
        importance=ImportanceSpec(k=5),
    ),
    dg.Definitions(resources=resource_set(), executor=executor()),
)
