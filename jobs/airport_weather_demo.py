"""The airport-weather example end to end: monthly files land, then every stage runs once on the
local Dagster instance and MLflow. ``python -m jobs.airport_weather_demo [FIRST LAST]`` (months
as partition keys ``YYYY-MM-01``, default 2013-04-01 .. 2013-09-01); ``make example``."""

from __future__ import annotations

import sys

from jobs.airport_weather import AIRPORT_WEATHER
from jobs.airport_weather_data import CLASSES, monthly_frames, was_wet
from jobs.airport_weather_definitions import defs
from jobs.example_run import main_for


def truth(frame):
    """The true outcome as class names."""
    return was_wet(frame).map({True: CLASSES[1], False: CLASSES[0]})


def main(argv: list[str]) -> int:
    first, last = argv if len(argv) == 2 else ("2013-04-01", "2013-09-01")
    return main_for(defs, AIRPORT_WEATHER, monthly_frames(first, last), CLASSES, truth)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
