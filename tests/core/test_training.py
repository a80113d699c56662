"""Fitting a user's pipeline reproducibly, failing in words, and explaining it by permutation importance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from dcai_assets.core.training import (
    TrainingError,
    feature_window,
    fit_pipeline,
    importance_ranks,
    permutation_importance_by_feature,
    seed_pipeline,
)

WINDOW = "flights 3 partitions 2024-01-01 .. 2024-01-03"


def labeled_rows(rows: int = 200, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """``signal`` decides the label (with 10% noise); ``noise_a`` and ``noise_b`` are unrelated."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "signal": rng.normal(size=rows),
            "noise_a": rng.normal(size=rows),
            "noise_b": rng.normal(size=rows),
        }
    )
    late = (X["signal"] > 0).to_numpy() ^ (rng.random(rows) < 0.1)
    return X, np.where(late, "late", "on_time").astype(object)


def forest() -> Pipeline:
    return Pipeline(
        [("scale", StandardScaler()), ("clf", RandomForestClassifier(n_estimators=15, max_depth=4))]
    )


class ExplodingClassifier(ClassifierMixin, BaseEstimator):
    def fit(self, X, y):
        raise RuntimeError("out of memory")


class RowCountingClassifier(ClassifierMixin, BaseEstimator):
    """Predicts ``late`` when ``signal`` > 0, and records how many rows each predict call saw."""

    def fit(self, X, y):
        self.classes_ = np.array(["late", "on_time"], dtype=object)
        self.seen_ = []
        return self

    def predict(self, X):
        self.seen_.append(len(X))
        return np.where(X["signal"].to_numpy() > 0, "late", "on_time").astype(object)


def test_seed_pipeline_sets_every_random_state_in_the_pipeline():
    pipeline = Pipeline([("pca", PCA(n_components=2)), ("clf", RandomForestClassifier())])

    seed_pipeline(pipeline, 7)

    assert pipeline.named_steps["pca"].random_state == 7
    assert pipeline.named_steps["clf"].random_state == 7


def test_fitting_with_the_same_seed_gives_identical_predictions():
    X, y = labeled_rows()

    first = fit_pipeline(forest(), X, y, sample_weight=None, seed=3, window=WINDOW)
    second = fit_pipeline(forest(), X, y, sample_weight=None, seed=3, window=WINDOW)
    other = fit_pipeline(forest(), X, y, sample_weight=None, seed=4, window=WINDOW)

    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))
    assert not np.array_equal(first.predict_proba(X), other.predict_proba(X))


@pytest.mark.parametrize("in_pipeline", [True, False], ids=["pipeline", "bare_estimator"])
def test_sample_weights_are_used_when_the_final_estimator_supports_them(in_pipeline):
    X, y = labeled_rows()
    weights = np.where(X["noise_a"] > 1.0, 50.0, 1.0)  # a heavy, arbitrary subset

    def model():
        lr = LogisticRegression()
        return Pipeline([("scale", StandardScaler()), ("lr", lr)]) if in_pipeline else lr

    weighted = fit_pipeline(model(), X, y, sample_weight=weights, seed=0, window=WINDOW)
    unweighted = fit_pipeline(model(), X, y, sample_weight=None, seed=0, window=WINDOW)

    coef = (lambda m: m[-1].coef_) if in_pipeline else (lambda m: m.coef_)
    assert not np.allclose(coef(weighted), coef(unweighted), atol=1e-3)


def test_sample_weights_are_skipped_for_an_estimator_without_sample_weight():
    X, y = labeled_rows()
    weights = np.where(X["noise_a"] > 1.0, 50.0, 1.0)

    def knn():
        return Pipeline([("scale", StandardScaler()), ("knn", KNeighborsClassifier(n_neighbors=5))])

    weighted = fit_pipeline(knn(), X, y, sample_weight=weights, seed=0, window=WINDOW)
    unweighted = fit_pipeline(knn(), X, y, sample_weight=None, seed=0, window=WINDOW)

    np.testing.assert_array_equal(weighted.predict_proba(X), unweighted.predict_proba(X))


def test_no_labeled_rows_is_a_training_error_naming_the_window():
    X = pd.DataFrame({"signal": pd.Series([], dtype=float)})

    with pytest.raises(TrainingError, match="no labeled rows") as err:
        fit_pipeline(forest(), X, np.array([], dtype=object), sample_weight=None, seed=0, window=WINDOW)

    assert WINDOW in str(err.value)


def test_a_single_class_is_a_training_error_naming_the_class_and_the_window():
    X, _ = labeled_rows(rows=20)
    y = np.array(["late"] * 20, dtype=object)

    with pytest.raises(TrainingError) as err:
        fit_pipeline(forest(), X, y, sample_weight=None, seed=0, window=WINDOW)

    assert "has class 'late'" in str(err.value)
    assert WINDOW in str(err.value)


def test_a_single_class_from_a_numpy_string_array_is_named_plainly():
    X, _ = labeled_rows(rows=20)

    with pytest.raises(TrainingError) as err:
        fit_pipeline(forest(), X, np.array(["late"] * 20), sample_weight=None, seed=0, window=WINDOW)

    assert "has class 'late'" in str(err.value)


@pytest.mark.parametrize(
    ("model", "name"),
    [
        (Pipeline([("lr", LogisticRegression())]), "LogisticRegression"),
        (ExplodingClassifier(), "ExplodingClassifier"),
    ],
    ids=["strings_without_encoding", "estimator_that_raises"],
)
def test_an_estimator_that_fails_to_fit_is_a_training_error_naming_it_and_the_window(model, name):
    X, y = labeled_rows(rows=20)
    X["carrier"] = ["UA", "AA"] * 10

    with pytest.raises(TrainingError) as err:
        fit_pipeline(model, X, y, sample_weight=None, seed=0, window=WINDOW)

    message = str(err.value)
    assert message.startswith(f"{name} failed to fit on 20 rows x 4 features of {WINDOW}: ")
    assert err.value.__cause__ is not None


def test_permutation_importance_ranks_the_informative_feature_above_noise():
    X, y = labeled_rows(rows=400)
    model = fit_pipeline(forest(), X, y, sample_weight=None, seed=0, window=WINDOW)

    importance = permutation_importance_by_feature(model, X, y, seed=0)

    assert importance.index[0] == "signal"
    assert set(importance.index) == {"signal", "noise_a", "noise_b"}
    assert importance["signal"] > 0.2
    assert importance["signal"] > 5 * max(importance["noise_a"], importance["noise_b"], 0.01)


def test_permutation_importance_scores_at_most_max_rows():
    X, y = labeled_rows(rows=300)
    model = RowCountingClassifier().fit(X, y)

    importance = permutation_importance_by_feature(model, X, y, seed=0, max_rows=50, repeats=2)

    assert model.seen_ and set(model.seen_) == {50}
    assert importance.index[0] == "signal"


def test_importance_ranks_give_rank_one_to_the_top_feature_and_zero_to_negligible_ones():
    importance = pd.Series({"signal": 0.30, "hour": 0.05, "noise_a": 0.001, "noise_b": -0.02})

    ranks = importance_ranks(importance)

    assert ranks == {"signal": 1, "hour": 2, "noise_a": 0, "noise_b": 0}


def test_importance_ranks_rank_by_value_whatever_the_order_of_the_series():
    importance = pd.Series({"hour": 0.05, "signal": 0.30})

    assert importance_ranks(importance) == {"signal": 1, "hour": 2}


def test_feature_window_describes_the_partitions_for_messages():
    assert feature_window([]) == "no partitions"
    assert feature_window(["2024-01-01", "2024-01-02", "2024-01-03"]) == (
        "3 partitions 2024-01-01 .. 2024-01-03"
    )


def test_a_pipeline_factory_returning_a_non_estimator_is_refused_naming_the_factory():
    from dcai_assets.core.training import TrainingError, build_pipeline

    def named_model():
        return "LogisticRegression"

    with pytest.raises(
        TrainingError, match=r"TrainingSpec.pipeline '.*named_model' returned str \('LogisticRegression'\)"
    ):
        build_pipeline(named_model)


def test_a_pipeline_factory_returning_an_estimator_passes():
    from sklearn.linear_model import LogisticRegression

    from dcai_assets.core.training import build_pipeline

    assert isinstance(build_pipeline(LogisticRegression), LogisticRegression)
