"""The airport-weather model: did it rain or snow this hour, from the gauges. `precip` and the
gold column are never features."""

from __future__ import annotations

from dcai_assets import PromotionGate, TrainingSpec

NUMERIC = ["temp", "dewp", "humid", "wind_speed", "pressure", "visib"]
CATEGORICAL = ["origin"]


def airport_weather_pipeline():
    """Impute and scale the gauges, one-hot the airport, then a logistic regression."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    features = ColumnTransformer(
        [
            (
                "numeric",
                make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()),
                NUMERIC,
            ),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ]
    )
    return Pipeline([("features", features), ("classifier", LogisticRegression(max_iter=1000))])


AIRPORT_WEATHER_TRAINING = TrainingSpec(
    pipeline=airport_weather_pipeline,
    features=NUMERIC + CATEGORICAL,
    holdout_partitions=1,
    slices=["origin"],
    sensitive="origin",
    gate=PromotionGate(metric="accuracy", max_drop=0.01, max_slice_drop=0.05),
    min_gold_rows=30,
)
