"""The demo code location's Definitions: the flights pipeline on the environment's resources, with
its landing and automation sensors on, so new files flow through every stage by themselves."""

from __future__ import annotations

import os

import dagster as dg

from dcai_assets import AutomationSpec, ImportanceSpec, build_definitions
from jobs.flights import FLIGHTS
from jobs.flights_labeling import FLIGHTS_LABELING
from jobs.flights_training import FLIGHTS_TRAINING
from resources import executor, resource_set

# On unless DCAI_SENSORS=stopped (e.g. to run a backfill by hand on files that already landed).
SENSORS = (
    dg.DefaultSensorStatus.STOPPED
    if os.environ.get("DCAI_SENSORS") == "stopped"
    else dg.DefaultSensorStatus.RUNNING
)

defs = dg.Definitions.merge(
    build_definitions(
        FLIGHTS,
        labeling=FLIGHTS_LABELING,
        training=FLIGHTS_TRAINING,
        # DCAI_IMPORTANCE_SHARDS > 1 values the holdout in that many steps (parallel in production).
        importance=ImportanceSpec(k=5, shards=int(os.environ.get("DCAI_IMPORTANCE_SHARDS", "1"))),
        automation=AutomationSpec(
            retrain_cron="0 4 * * *",  # a nightly retrain as a safety net
            sensor_interval_seconds=1,
            default_status=SENSORS,
        ),
        sensor_interval_seconds=1,  # the daemon wakes every 5 s at most; 1 s means every wake-up
        sensor_status=SENSORS,
    ),
    # Resources and executor of the environment (DCAI_ENV: local, the default, or production).
    dg.Definitions(resources=resource_set(), executor=executor()),
)
