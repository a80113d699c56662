"""The demo code location: the flights pipeline declared in ``jobs/defs/flights/defs.yaml`` and
loaded through the ``DataCentricPipeline`` component, the way ``dg`` loads a project's defs folder,
on the environment's resources and executor (``jobs/defs/resources.py``). Its landing and
automation sensors are on (unless ``DCAI_SENSORS=stopped``), so new files flow through every
stage by themselves.

:func:`python_definitions` builds the same pipeline in Python from the spec objects of
``jobs/flights*.py`` (the hooks the YAML names); the tests hold the two equal."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from dcai_assets import AutomationSpec, ImportanceSpec, build_definitions
from jobs.flights import FLIGHTS
from jobs.flights_labeling import FLIGHTS_LABELING
from jobs.flights_training import FLIGHTS_TRAINING
from resources import executor, resource_set

PROJECT = Path(__file__).resolve().parents[1]

defs = dg.load_from_defs_folder(project_root=PROJECT)


def python_definitions() -> dg.Definitions:
    """The demo pipeline built in Python: what ``jobs/defs/flights/defs.yaml`` declares."""
    # On unless DCAI_SENSORS=stopped (e.g. to run a backfill by hand on files that already landed).
    sensors = (
        dg.DefaultSensorStatus.STOPPED
        if os.environ.get("DCAI_SENSORS") == "stopped"
        else dg.DefaultSensorStatus.RUNNING
    )
    return dg.Definitions.merge(
        build_definitions(
            FLIGHTS,
            labeling=FLIGHTS_LABELING,
            training=FLIGHTS_TRAINING,
            # DCAI_IMPORTANCE_SHARDS > 1 values the holdout in that many steps (parallel in production).
            importance=ImportanceSpec(k=5, shards=int(os.environ.get("DCAI_IMPORTANCE_SHARDS", "1"))),
            automation=AutomationSpec(
                retrain_cron="0 4 * * *",  # a nightly retrain as a safety net
                sensor_interval_seconds=1,
                default_status=sensors,
            ),
            sensor_interval_seconds=1,  # the daemon wakes every 5 s at most; 1 s means every wake-up
            sensor_status=sensors,
        ),
        # Resources and executor of the environment (DCAI_ENV: local, the default, or production).
        dg.Definitions(resources=resource_set(), executor=executor()),
    )
