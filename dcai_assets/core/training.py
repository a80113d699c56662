"""Fit a user's scikit-learn Pipeline reproducibly on labeled rows, and explain it with
permutation importance on the raw features (what drift alerts talk about)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from dcai_assets.core.columns import LABEL, LABEL_CONFIDENCE


class TrainingError(ValueError):
    """Training cannot go on; the message says with which data and what was expected."""


def build_pipeline(factory):
    """Call the user's pipeline factory and check that it made an estimator to fit."""
    pipeline = factory()
    if not all(callable(getattr(pipeline, m, None)) for m in ("fit", "predict", "get_params")):
        name = getattr(factory, "__qualname__", repr(factory))
        shown = repr(pipeline)
        shown = shown if len(shown) <= 80 else shown[:80] + "..."
        raise TrainingError(
            f"TrainingSpec.pipeline {name!r} returned {type(pipeline).__name__} ({shown}); expected a "
            "scikit-learn estimator or Pipeline (an object with fit, predict and get_params): return "
            "the estimator itself, not its name or class"
        )
    return pipeline


def seed_pipeline(pipeline, seed: int):
    """Set every ``random_state`` parameter of the pipeline's steps to ``seed``."""
    params = {k: seed for k in pipeline.get_params(deep=True) if k.endswith("random_state")}
    return pipeline.set_params(**params) if params else pipeline


def final_estimator(pipeline):
    return pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline


def fit_pipeline(
    pipeline,
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    sample_weight: np.ndarray | None,
    seed: int,
    window: str,
):
    """Fit ``pipeline`` on (X, y); an error names the estimator and the data window."""
    from sklearn.utils.validation import has_fit_parameter

    classes = pd.unique(y)
    if len(y) == 0:
        raise TrainingError(f"no labeled rows in the training window ({window}); expected at least one")
    if len(classes) < 2:
        raise TrainingError(
            f"every labeled row in the training window ({window}) has class {str(classes[0])!r}; expected at "
            "least two classes. Widen the window, or check the labeling functions"
        )
    seed_pipeline(pipeline, seed)
    estimator = final_estimator(pipeline)
    kwargs = {}
    if sample_weight is not None and has_fit_parameter(estimator, "sample_weight"):
        name = pipeline.steps[-1][0] if hasattr(pipeline, "steps") else None
        kwargs = {f"{name}__sample_weight" if name else "sample_weight": sample_weight}
    try:
        return pipeline.fit(X, y, **kwargs)
    except Exception as e:
        raise TrainingError(
            f"{type(estimator).__name__} failed to fit on {len(X):,} rows x {X.shape[1]} features of "
            f"{window}: {type(e).__name__}: {e}"
        ) from e


def fit_labeled(
    factory, rows: pd.DataFrame, features: list[str], *, confidence_weights: bool, seed: int, window: str
):
    """A fresh pipeline from ``factory`` fitted on labeled ``rows`` as the trained model is: on
    ``features``, their ``label``, weighted by ``label_confidence`` when ``confidence_weights``."""
    return fit_pipeline(
        build_pipeline(factory),
        rows[features],
        rows[LABEL].astype(str).to_numpy(),
        sample_weight=rows[LABEL_CONFIDENCE].to_numpy(dtype=float) if confidence_weights else None,
        seed=seed,
        window=window,
    )


def permutation_importance_by_feature(
    pipeline, X: pd.DataFrame, y: np.ndarray, *, seed: int, max_rows: int = 2000, repeats: int = 3
) -> pd.Series:
    """Mean drop in accuracy when each raw feature is shuffled (on at most ``max_rows`` rows),
    largest first."""
    from sklearn.inspection import permutation_importance

    if len(X) > max_rows:
        take = np.random.default_rng(seed).choice(len(X), size=max_rows, replace=False)
        X, y = X.iloc[take], np.asarray(y)[take]
    result = permutation_importance(pipeline, X, y, n_repeats=repeats, random_state=seed, scoring="accuracy")
    return pd.Series(result.importances_mean, index=list(X.columns)).sort_values(ascending=False)


def importance_ranks(importance: pd.Series, negligible: float = 0.01) -> dict[str, int]:
    """Rank 1 = most important; features whose importance is below ``negligible`` x the top one
    get rank 0 (negligible), so that drift on them is downgraded."""
    importance = importance.sort_values(ascending=False)
    top = max(float(importance.max()), 1e-12)
    ranks = {}
    for rank, (feature, value) in enumerate(importance.items(), start=1):
        ranks[str(feature)] = rank if value >= negligible * top and value > 0 else 0
    return ranks


def feature_window(partitions: Sequence[str]) -> str:
    """A short description of a partition window for messages."""
    if not partitions:
        return "no partitions"
    return f"{len(partitions)} partitions {partitions[0]} .. {partitions[-1]}"
