"""The five-class weather example end to end: ``python -m jobs.seattle_weather_demo [FIRST LAST]``
(months as partition keys ``YYYY-MM-01``, default 2012-01-01 .. 2012-12-01, the year whose
recorded classes follow the gauges; from 2013 on the table records most rainy days as fog)."""

from __future__ import annotations

import sys

from jobs.example_run import main_for
from jobs.seattle_weather import SEATTLE_WEATHER
from jobs.seattle_weather_data import CLASSES, monthly_frames
from jobs.seattle_weather_definitions import defs


def truth(frame):
    """The recorded weather of every day."""
    return frame["weather"].astype(object)


def main(argv: list[str]) -> int:
    first, last = argv if len(argv) == 2 else ("2012-01-01", "2012-12-01")
    return main_for(defs, SEATTLE_WEATHER, monthly_frames(first, last), CLASSES, truth)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
