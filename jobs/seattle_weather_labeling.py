"""Labeling functions of the weather example: a forecaster's guess of the day's weather from the
gauges (precipitation, temperatures, wind), never from the recorded `weather` itself."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dcai_assets import LabelingSpec
from dcai_assets.core.labeling import ABSTAIN, LabelingFunctionSet, labeling_function
from jobs.seattle_weather_data import CLASSES, GOLD_COLUMN

DRIZZLE, RAIN, SUN, SNOW, FOG = range(5)


@labeling_function(uses=["precipitation"])
def heavy_precipitation(df: pd.DataFrame) -> np.ndarray:
    """3 mm or more in the day: rain."""
    return np.where(df["precipitation"] >= 3, RAIN, ABSTAIN)


@labeling_function(uses=["precipitation"])
def light_precipitation(df: pd.DataFrame) -> np.ndarray:
    """A trace, under 1.5 mm: drizzle."""
    return np.where((df["precipitation"] > 0) & (df["precipitation"] < 1.5), DRIZZLE, ABSTAIN)


@labeling_function(uses=["precipitation"])
def dry(df: pd.DataFrame) -> np.ndarray:
    """No precipitation at all: sun."""
    return np.where(df["precipitation"] == 0, SUN, ABSTAIN)


@labeling_function(uses=["precipitation", "temp_min", "temp_max"])
def freezing_precipitation(df: pd.DataFrame) -> np.ndarray:
    """Precipitation on a day that froze and stayed cold: snow."""
    cold = (df["temp_min"] <= 0) & (df["temp_max"] < 6)
    return np.where((df["precipitation"] > 0) & cold, SNOW, ABSTAIN)


@labeling_function(uses=["precipitation", "wind", "temp_max"])
def calm_cool_dry(df: pd.DataFrame) -> np.ndarray:
    """Dry, calm and cool: the air stays moist near the ground, fog."""
    return np.where((df["precipitation"] == 0) & (df["wind"] < 2) & (df["temp_max"] < 15), FOG, ABSTAIN)


@labeling_function(uses=["precipitation", "temp_max"])
def warm_dry(df: pd.DataFrame) -> np.ndarray:
    """Dry and above 20 °C: sun."""
    return np.where((df["precipitation"] == 0) & (df["temp_max"] > 20), SUN, ABSTAIN)


@labeling_function(vectorized=False, uses=["precipitation", "wind"])
def windy_and_wet(row) -> int:
    """Precipitation with a strong wind: a rain front (row-wise LF)."""
    return RAIN if row.precipitation > 0 and row.wind > 4.5 else ABSTAIN


WEATHER_LFS = LabelingFunctionSet(
    lfs=[
        heavy_precipitation,
        light_precipitation,
        dry,
        freezing_precipitation,
        calm_cool_dry,
        warm_dry,
        windy_and_wet,
    ],
    classes=CLASSES,
)

SEATTLE_WEATHER_LABELING = LabelingSpec(lfs=WEATHER_LFS, gold_column=GOLD_COLUMN)
