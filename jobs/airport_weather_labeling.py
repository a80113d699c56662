"""Labeling functions of the airport-weather example: how an observer would guess "it rained or
snowed this hour" from humidity, dew point, visibility and pressure. None reads `precip`, which
holds the outcome."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dcai_assets import LabelingSpec
from dcai_assets.core.labeling import ABSTAIN, LabelingFunctionSet, labeling_function
from jobs.airport_weather_data import CLASSES, GOLD_COLUMN

DRY, WET = 0, 1


@labeling_function(uses=["humid"])
def saturated_air(df: pd.DataFrame) -> np.ndarray:
    """Relative humidity of 90% or more."""
    return np.where(df["humid"] >= 90, WET, ABSTAIN)


@labeling_function(uses=["humid"])
def dry_air(df: pd.DataFrame) -> np.ndarray:
    """Relative humidity under 70%: too dry to rain."""
    return np.where(df["humid"] < 70, DRY, ABSTAIN)


@labeling_function(uses=["visib"])
def poor_visibility(df: pd.DataFrame) -> np.ndarray:
    """Visibility under 3 miles: rain, snow or fog."""
    return np.where(df["visib"] < 3, WET, ABSTAIN)


@labeling_function(uses=["visib", "humid"])
def clear_view(df: pd.DataFrame) -> np.ndarray:
    """Ten miles of visibility and humidity under 85%."""
    return np.where((df["visib"] >= 10) & (df["humid"] < 85), DRY, ABSTAIN)


@labeling_function(uses=["pressure", "humid"])
def low_pressure_and_humid(df: pd.DataFrame) -> np.ndarray:
    """A low (under 1005 hPa) with humid air: a storm system passing."""
    return np.where((df["pressure"] < 1005) & (df["humid"] >= 80), WET, ABSTAIN)


@labeling_function(vectorized=False, uses=["temp", "dewp"])
def dew_point_reached(row) -> int:
    """The air is within 1 °F of its dew point (row-wise LF)."""
    return WET if row.temp - row.dewp < 1 else ABSTAIN


AIRPORT_WEATHER_LFS = LabelingFunctionSet(
    lfs=[saturated_air, dry_air, poor_visibility, clear_view, low_pressure_and_humid, dew_point_reached],
    classes=CLASSES,
)

AIRPORT_WEATHER_LABELING = LabelingSpec(lfs=AIRPORT_WEATHER_LFS, gold_column=GOLD_COLUMN)
