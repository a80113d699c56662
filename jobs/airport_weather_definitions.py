"""The airport-weather example's Definitions: the same plugin, another dataset, only through
the public spec API, on the environment's resources. Sensors stay off: `jobs.airport_weather_demo`
ticks the landing sensor itself (turn them on in the UI to run it continuously)."""

from __future__ import annotations

import dagster as dg

from dcai_assets import ImportanceSpec, build_definitions
from jobs.airport_weather import AIRPORT_WEATHER
from jobs.airport_weather_labeling import AIRPORT_WEATHER_LABELING
from jobs.airport_weather_training import AIRPORT_WEATHER_TRAINING
from resources import executor, resource_set

defs = dg.Definitions.merge(
    build_definitions(
        AIRPORT_WEATHER,
        labeling=AIRPORT_WEATHER_LABELING,
        training=AIRPORT_WEATHER_TRAINING,
        importance=ImportanceSpec(k=5),
    ),
    dg.Definitions(resources=resource_set(), executor=executor()),
)
