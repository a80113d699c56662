"""Monthly partitions (keys ``YYYY-MM-01``) of Seattle's daily weather (2012-2015), five classes
of weather, as the `vega_datasets` package bundles it (no download at run time)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from jobs.example_run import check_month_key

CLASSES = ["drizzle", "rain", "sun", "snow", "fog"]
GOLD_COLUMN = "weather_checked"
GOLD_FRACTION = 0.3  # days whose recorded weather an observer confirmed
SEASONS = {12: "winter", 1: "winter", 2: "winter", 3: "spring", 4: "spring", 5: "spring",
           6: "summer", 7: "summer", 8: "summer", 9: "autumn", 10: "autumn", 11: "autumn"}  # fmt: skip


def all_days() -> pd.DataFrame:
    """Every day with its month's partition key (``YYYY-MM-01``) in a ``month`` column, its
    season, and the recorded weather as gold on a random 30% of the days."""
    from vega_datasets import local_data

    days = local_data.seattle_weather()
    checked = np.random.default_rng(2012).random(len(days)) < GOLD_FRACTION
    return days.assign(
        date=days["date"].dt.strftime("%Y-%m-%d"),
        season=days["date"].dt.month.map(SEASONS),
        **{GOLD_COLUMN: np.where(checked, days["weather"], None)},
        month=days["date"].dt.strftime("%Y-%m-01"),
    )


def monthly_frames(first: str, last: str) -> dict[str, pd.DataFrame]:
    """``{YYYY-MM-01: days of that month}`` from month ``first`` to ``last`` (partition keys,
    inclusive)."""
    check_month_key("first", first)
    check_month_key("last", last)
    days = all_days()
    days = days[days["month"].between(first, last)]
    return {m: g.drop(columns="month").reset_index(drop=True) for m, g in days.groupby("month", sort=True)}


def reference_window() -> dict[str, pd.DataFrame]:
    """The year the schema is inferred from (2012: every season once)."""
    return monthly_frames("2012-01-01", "2012-12-01")
