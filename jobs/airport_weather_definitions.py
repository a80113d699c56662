"""The airport-weather example's code location: the pipeline declared in
``jobs/examples/airport_weather/defs.yaml`` and loaded through the ``DataCentricPipeline``
component, on the environment's resources. Sensors stay off: ``jobs.airport_weather_demo`` ticks
the landing sensor itself (turn them on in the UI to run it continuously).

:func:`python_definitions` builds the same pipeline in Python from the spec objects of
``jobs/airport_weather*.py`` (the hooks the YAML names); the tests hold the two equal."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from dcai_assets import ImportanceSpec, build_definitions
from dcai_assets.components.loading import load_pipeline
from jobs.airport_weather import AIRPORT_WEATHER
from jobs.airport_weather_labeling import AIRPORT_WEATHER_LABELING
from jobs.airport_weather_training import AIRPORT_WEATHER_TRAINING
from resources import executor, resource_set

DEFS_YAML = Path(__file__).parent / "examples" / "airport_weather" / "defs.yaml"


def _from_yaml() -> dg.Definitions:
    component, context = load_pipeline(DEFS_YAML)
    return component.build_defs(context)


def python_definitions() -> dg.Definitions:
    """The example built in Python: what the defs.yaml declares."""
    return dg.Definitions.merge(
        build_definitions(
            AIRPORT_WEATHER,
            labeling=AIRPORT_WEATHER_LABELING,
            training=AIRPORT_WEATHER_TRAINING,
            importance=ImportanceSpec(k=5),
        ),
        dg.Definitions(resources=resource_set(), executor=executor()),
    )


defs = dg.Definitions.merge(_from_yaml(), dg.Definitions(resources=resource_set(), executor=executor()))
