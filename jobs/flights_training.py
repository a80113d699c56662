"""The demo's model: will a flight arrive more than 15 minutes late, from its schedule, route,
carrier and departure delay. Arrival columns and the gold column are never features."""

from __future__ import annotations

from dcai_assets import PromotionGate, TrainingSpec

NUMERIC = ["dep_delay", "sched_dep_time", "sched_arr_time", "distance"]
CATEGORICAL = ["carrier", "origin"]


def flights_pipeline():
    """Impute and scale numbers, one-hot the categories, then a logistic regression."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    features = ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), NUMERIC),
            (
                "categorical",
                OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=20),
                CATEGORICAL,
            ),
        ]
    )
    return Pipeline([("features", features), ("classifier", LogisticRegression(max_iter=1000))])


FLIGHTS_TRAINING = TrainingSpec(
    pipeline=flights_pipeline,
    features=NUMERIC + CATEGORICAL,
    holdout_partitions=3,
    slices=["carrier", "origin"],
    sensitive="origin",
    gate=PromotionGate(metric="accuracy", max_drop=0.01, max_slice_drop=0.05),
    min_gold_rows=30,
)
