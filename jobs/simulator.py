"""Writes daily flights files into the landing directory, as an upstream export would, with
realistic faults injected on a few days so that every check fires in the demo."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from jobs.flights_data import daily_frames


def rename_column(day: pd.DataFrame) -> pd.DataFrame:
    """An upstream release renamed `dep_time`."""
    return day.rename(columns={"dep_time": "dep_time_local"})


def wrong_dtype(day: pd.DataFrame) -> pd.DataFrame:
    """Distances exported with their unit, as text."""
    return day.assign(distance=day["distance"].astype(str) + " mi")


def category_surge(day: pd.DataFrame) -> pd.DataFrame:
    """A regional carrier takes over half of the schedule."""
    out = day.copy()
    rng = np.random.default_rng(7)
    pick = rng.random(len(out)) < 0.5
    out.loc[pick, "carrier"] = "EV"
    return out.drop_duplicates(["carrier", "flight", "origin", "sched_dep_time"])


def null_burst(day: pd.DataFrame) -> pd.DataFrame:
    """A broken feed leaves departure times empty for the afternoon."""
    out = day.copy()
    afternoon = out["sched_dep_time"].between(1200, 1800)
    out.loc[afternoon, ["dep_time", "dep_delay"]] = np.nan
    return out


def bad_values(day: pd.DataFrame) -> pd.DataFrame:
    """A handful of corrupt rows: negative distances and an unknown carrier code."""
    out = day.copy()
    out.loc[out.index[:3], "distance"] = -out.loc[out.index[:3], "distance"]
    out.loc[out.index[3:5], "carrier"] = "ZZ"
    return out


FAULTS: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "2013-02-12": rename_column,
    "2013-02-18": wrong_dtype,
    "2013-02-24": category_surge,
    "2013-03-02": null_burst,
    "2013-03-05": bad_values,
}
PARQUET_DAYS = {"2013-02-20"}  # some exports arrive as Parquet


def simulate(landing: Path, start: str = "2013-02-01", days: int = 35) -> list[Path]:
    """Write ``days`` daily files from ``start`` into ``landing``; returns the files written."""
    landing.mkdir(parents=True, exist_ok=True)
    written = []
    for day, frame in daily_frames(start, days).items():
        fault = FAULTS.get(day)
        if fault is not None:
            frame = fault(frame)
        if day in PARQUET_DAYS:
            path = landing / f"{day}.parquet"
            frame.to_parquet(path, index=False)
        else:
            path = landing / f"{day}.csv"
            frame.to_csv(path, index=False)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    """``python -m jobs.simulator --start 2013-03-10 --days 1``: land more days for the sensor."""
    import argparse

    from jobs.flights import FLIGHTS

    parser = argparse.ArgumentParser(description="Write daily flights files into the landing directory.")
    parser.add_argument("--start", default="2013-02-01", help="first day, YYYY-MM-DD")
    parser.add_argument("--days", type=int, default=35)
    args = parser.parse_args(argv)
    for path in simulate(FLIGHTS.source.path, args.start, args.days):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
