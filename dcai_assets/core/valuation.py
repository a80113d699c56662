"""Row valuation of a trained model: its training rows as its own preprocessing sees them,
valued by exact KNN-Shapley against its holdout, and the table of scored rows the review queue is
cut from. "Row value" here is a training row's worth to the model (negative: it hurts); a
feature's importance to the model is :func:`dcai_assets.core.training.permutation_importance_by_feature`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np
import pandas as pd

from dcai_assets.core.columns import GOLD, LABEL, LABEL_SOURCE, proba_column
from dcai_assets.core.holdout import HoldoutChoice
from dcai_assets.core.knn_shapley import group_balanced_weights, knn_shapley
from dcai_assets.core.review import (
    LabelingFunctionReview,
    given_label_probability,
    per_labeling_function,
    review_ranks,
    suggested_actions,
)
from dcai_assets.core.training import TrainingError, fit_pipeline

_ROLE, _Y, _WEIGHT, _GROUP = "_role", "_y", "_weight", "_group"


def preprocessed_features(pipeline, frame: pd.DataFrame, features: list[str], what: str) -> np.ndarray:
    """The rows as the model's own preprocessing (every step but the last) sees them: dense
    float64. ValueError if ``pipeline`` is not a Pipeline with a preprocessing step, or if the
    preprocessed ``what`` rows hold NaN or infinite values (naming the columns)."""
    if not hasattr(pipeline, "steps") or len(pipeline.steps) < 2:
        raise ValueError(
            f"the model is {type(pipeline).__name__}, not a scikit-learn Pipeline with a preprocessing "
            "step before the estimator; importance is computed on the preprocessed features, so the "
            "pipeline factory must return Pipeline([(..., preprocessing), (..., estimator)])"
        )
    transformed = pipeline[:-1].transform(frame[features])
    if hasattr(transformed, "toarray"):
        transformed = transformed.toarray()
    X = np.asarray(transformed, dtype=np.float64)
    bad = ~np.isfinite(X)
    if bad.any():
        try:
            names = list(pipeline[:-1].get_feature_names_out())
        except Exception:
            names = [f"#{i}" for i in range(X.shape[1])]
        columns = sorted({names[i] for i in np.nonzero(bad)[1]})
        raise ValueError(
            f"the preprocessed {what} rows hold NaN or infinite values in {columns[:10]}; expected finite "
            "numbers. Impute or drop them in the pipeline's preprocessing"
        )
    return X


@dataclass
class ValuationInputs:
    """What the KNN-Shapley valuation needs, computed once per model (not once per shard): the
    training and holdout rows as preprocessed features, their labels as class indices, and the
    holdout rows' weights (summing to 1). ``warnings`` say what limits the values; ``groups``, the
    holdout rows' groups of a group-balanced utility (None without one)."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    weights: np.ndarray
    warnings: list[str] = field(default_factory=list)
    groups: np.ndarray | None = None

    def to_frame(self) -> pd.DataFrame:
        """One frame (training rows, then holdout rows) for a hand-off between steps."""
        X = np.vstack([self.X_train, self.X_val])
        frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
        frame.insert(0, _ROLE, ["train"] * len(self.X_train) + ["holdout"] * len(self.X_val))
        frame.insert(1, _Y, np.concatenate([self.y_train, self.y_val]))
        frame.insert(2, _WEIGHT, np.concatenate([np.full(len(self.X_train), np.nan), self.weights]))
        if self.groups is not None:
            frame.insert(3, _GROUP, np.concatenate([np.full(len(self.X_train), ""), self.groups]))
        return frame

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> ValuationInputs:
        features = [c for c in frame.columns if c not in (_ROLE, _Y, _WEIGHT, _GROUP)]
        train = (frame[_ROLE] == "train").to_numpy()
        X = frame[features].to_numpy(dtype=np.float64)
        y = frame[_Y].to_numpy(dtype=np.int64)
        weights = frame[_WEIGHT].to_numpy(dtype=np.float64)[~train]
        groups = frame[_GROUP].to_numpy(dtype=str)[~train] if _GROUP in frame else None
        return cls(X[train], y[train], X[~train], y[~train], weights, groups=groups)


def valuation_inputs(
    pipeline,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    features: list[str],
    classes: Sequence[str],
    *,
    k: int,
    group: str | None = None,
) -> ValuationInputs:
    """Preprocess the labeled training rows and the holdout rows valued against, index their
    labels by ``classes``, and weigh the holdout rows (equally, or balanced over ``group``).

    ValueError for an empty holdout or training set, or labels outside ``classes``."""
    if len(train) == 0 or len(holdout) == 0:
        raise ValueError(
            f"valuation_inputs: {len(train)} training rows and {len(holdout)} holdout rows; expected "
            "labeled rows in both"
        )
    index = {str(c): i for i, c in enumerate(classes)}
    labels = {}
    for what, rows in (("training", train), ("holdout", holdout)):
        y = rows[LABEL].astype(str).map(index)
        if y.isna().any():
            unknown = sorted(set(rows[LABEL].astype(str)) - set(index))
            raise ValueError(
                f"valuation_inputs: {what} labels {unknown[:10]} are not among the classes {list(index)}"
            )
        labels[what] = y.to_numpy(dtype=np.int64)
    warnings = []
    absent = sorted(set(holdout[LABEL].astype(str)) - set(train[LABEL].astype(str)))
    if absent:
        warnings.append(f"holdout classes {absent} are absent from training: no row can match them")
    if k > len(train):
        warnings.append(
            f"K={k} is larger than the {len(train)} training rows: every row is among the K "
            "nearest of every holdout row, so the values are exact but barely tell rows apart"
        )
    groups = holdout[group].astype(str).to_numpy() if group else None
    weights = group_balanced_weights(groups) if group else np.full(len(holdout), 1.0 / len(holdout))
    return ValuationInputs(
        preprocessed_features(pipeline, train, features, "training"),
        labels["training"],
        preprocessed_features(pipeline, holdout, features, "holdout"),
        labels["holdout"],
        weights,
        warnings,
        groups,
    )


def shard_bounds(rows: int, shards: int) -> list[tuple[int, int]]:
    """``shards`` consecutive (start, stop) ranges of nearly equal size covering ``rows`` rows."""
    edges = np.linspace(0, rows, shards + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in pairwise(edges)]


def shard_values(
    inputs: ValuationInputs,
    start: int,
    stop: int,
    *,
    k: int,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """KNN-Shapley and leave-one-out values of every training row for holdout rows start..stop-1,
    with their global weights, so that the shards of :func:`shard_bounds` sum to the whole."""
    if stop <= start:
        return np.zeros(len(inputs.X_train)), np.zeros(len(inputs.X_train))
    result = knn_shapley(
        inputs.X_train, inputs.y_train, inputs.X_val[start:stop], inputs.y_val[start:stop], k=k,
        val_weights=inputs.weights[start:stop], progress=progress,
    )  # fmt: skip
    return result.values, result.loo


def sum_shards(parts: Sequence[pd.DataFrame], rows: int) -> tuple[np.ndarray, np.ndarray]:
    """The row values and leave-one-out values summed over shard frames (columns ``importance``
    and ``loo``); ValueError naming the shard whose row count is not ``rows``."""
    values, loo = np.zeros(rows), np.zeros(rows)
    for i, part in enumerate(parts):
        if len(part) != rows:
            raise ValueError(
                f"shard {i + 1} of {len(parts)} valued {len(part)} training rows; expected {rows}, "
                "the rows of the model's window: did the window change between the steps?"
            )
        values += part["importance"].to_numpy()
        loo += part["loo"].to_numpy()
    return values, loo


def gold_model(factory, features: list[str], rows: pd.DataFrame, *, min_gold_rows: int, seed: int):
    """The user's pipeline fitted on the gold rows of ``rows`` only: it never saw an LF's
    systematic mistake, so it doubts labels the model learned from one. Returns ``(model, None)``
    or ``(None, why not)``: too few gold rows or one class, or ``"the fit failed: ..."``."""
    gold = rows[rows[LABEL_SOURCE] == GOLD]
    if len(gold) < min_gold_rows or gold[LABEL].astype(str).nunique() < 2:
        return None, f"{len(gold)} gold rows, expected at least {min_gold_rows} covering two classes"
    try:
        model = fit_pipeline(
            factory(), gold[features], gold[LABEL].astype(str).to_numpy(), sample_weight=None,
            seed=seed, window=f"{len(gold)} gold rows",
        )  # fmt: skip
    except TrainingError as e:
        return None, f"the fit failed: {e}"
    return model, None


def gold_model_doubts(model, X: pd.DataFrame, labels: np.ndarray):
    """The gold-row model's p(label) and prediction for each row: ``(p, predicted, None)``, or
    ``(None, None, why not)`` without that model or when it cannot score the rows (an unknown
    category)."""
    if model is None:
        return None, None, "no model of the gold rows"
    try:
        return given_label_probability(model, X, labels), model.predict(X).astype(str), None
    except ValueError as e:
        return None, None, f"it cannot score the window ({e})"


@dataclass
class RowScores:
    """The scored training rows, ordered for review (1 = inspect first), and the two doubts the
    review ranks by (``trusted`` is None without a model of the gold rows)."""

    table: pd.DataFrame
    gold_rows: np.ndarray
    trusted: np.ndarray | None


def score_rows(
    train: pd.DataFrame,
    row_values: np.ndarray,
    loo: np.ndarray,
    *,
    predicted: np.ndarray,
    own: np.ndarray,
    trusted: np.ndarray | None,
    trusted_predicted: np.ndarray | None,
    columns: list[str],
    review_gold: bool,
) -> RowScores:
    """One row per training row: its ``columns``, label, the model's prediction, its value
    (``importance``, rank 1 = most harmful), leave-one-out value, the two confidences in its label,
    a suggested action and its ``review_rank`` (gold rows left out unless ``review_gold``)."""
    labels = train[LABEL].astype(str).to_numpy()
    scores = train[columns].copy()
    scores[LABEL] = labels
    scores["predicted"] = predicted
    scores["importance"] = row_values
    scores["loo"] = loo
    scores["rank"] = scores["importance"].rank(method="first").astype(int)  # 1 = most harmful
    scores["model_confidence"] = own
    scores["trusted_confidence"] = np.nan if trusted is None else trusted
    scores["suggested_action"] = suggested_actions(
        row_values, labels, predicted, scores[LABEL_SOURCE], trusted_predicted
    )
    gold_rows = (scores[LABEL_SOURCE] == GOLD).to_numpy()
    exclude = None if review_gold else gold_rows  # gold is hand-checked already
    scores["review_rank"] = pd.array(review_ranks(row_values, own, trusted, exclude=exclude), dtype="Int64")
    scores = scores.sort_values("review_rank", na_position="last")
    return RowScores(scores, gold_rows, trusted)


def lf_review(
    train: pd.DataFrame,
    held: pd.DataFrame,
    row_values: np.ndarray,
    lf_columns: list[str],
    names: list[str],
    classes: list[str],
) -> LabelingFunctionReview:
    """The per-LF table over the model's window (valued rows) and holdout (gold to judge by)."""
    rows = pd.concat([train, held], ignore_index=True)
    votes = rows[lf_columns].to_numpy(dtype=np.int64)
    proba = rows[[proba_column(c) for c in classes]].to_numpy(dtype=float)
    covered = (votes != -1).any(axis=1)
    lf_label = np.where(covered, np.nan_to_num(proba, nan=-1.0).argmax(axis=1), -1)
    index = {c: i for i, c in enumerate(classes)}
    gold = np.where(
        rows[LABEL_SOURCE].to_numpy() == GOLD, rows[LABEL].astype(str).map(index).fillna(-1), -1
    ).astype(np.int64)
    all_values = np.concatenate([row_values, np.full(len(held), np.nan)])
    return per_labeling_function(votes, gold, lf_label, all_values, names=names, classes=classes)


def holdout_flag(choice: HoldoutChoice) -> str | None:
    """The warning line that heads every table built on the row values when the holdout they are
    measured against is undetermined (single-class); None when it is determined."""
    if choice.determined:
        return None
    said = [w for w in choice.warnings if w.startswith("single-class holdout")] or ["single-class holdout"]
    return (
        f"**WARNING: {said[0]}.** The row values, and so this table, are measured against that holdout: "
        "undetermined.\n\n"
    )
