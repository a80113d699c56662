"""The weather example's model: the day's weather class from its gauges. The recorded `weather`
and the gold column are never features."""

from __future__ import annotations

from dcai_assets import PromotionGate, TrainingSpec

NUMERIC = ["precipitation", "temp_max", "temp_min", "wind"]


def weather_pipeline():
    """Scale the gauges, then a multinomial logistic regression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))


SEATTLE_WEATHER_TRAINING = TrainingSpec(
    pipeline=weather_pipeline,
    features=NUMERIC,
    holdout_partitions=3,
    slices=["season"],
    sensitive="season",
    gate=PromotionGate(metric="accuracy", max_drop=0.02, max_slice_drop=0.1),
    min_gold_rows=20,
)
