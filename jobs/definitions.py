"""The demo code location's Definitions: the flights pipeline on the environment's resources."""

from __future__ import annotations

import dagster as dg

from dcai_assets import ImportanceSpec, build_definitions
from jobs.flights import FLIGHTS
from jobs.flights_labeling import FLIGHTS_LABELING
from jobs.flights_training import FLIGHTS_TRAINING
from resources import resource_set

defs = dg.Definitions.merge(
    build_definitions(
        FLIGHTS,
        labeling=FLIGHTS_LABELING,
        training=FLIGHTS_TRAINING,
        importance=ImportanceSpec(k=5),
        sensor_interval_seconds=5,
        sensor_status=dg.DefaultSensorStatus.RUNNING,
    ),
    dg.Definitions(resources=resource_set()),
)
