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

from dcai_assets.core.columns import GOLD, LABEL, LABEL_SOURCE, lf_column, proba_column
from dcai_assets.core.holdout import HoldoutChoice
from dcai_assets.core.knn_shapley import group_balanced_weights, knn_shapley
from dcai_assets.core.label_doubt import LabelDoubt, LabelEvidence, class_indices, fit_label_doubt
from dcai_assets.core.labeling import ABSTAIN
from dcai_assets.core.review import (
    LabelingFunctionReview,
    harm_weight,
    per_labeling_function,
    queue_reasons,
    review_ranks,
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


@dataclass
class LabelDoubts:
    """Every signal about the training rows' labels, combined: ``evidence`` (one row per training
    row), the fitted ``combination`` (weights fitted on the gold rows of the window and holdout),
    and ``notes`` on the signals left out and why."""

    evidence: LabelEvidence
    combination: LabelDoubt
    notes: list[str] = field(default_factory=list)

    def describe(self, harm_weight: float | None = None) -> str:
        """How the queue ranks, for the asset's metadata; ``harm_weight``: the weight of the row
        value in the order (:func:`dcai_assets.core.review.harm_weight`), None if not known."""
        text = (
            "the probability that each label is wrong, from the signals "
            f"{', '.join(self.combination.signals)} combined by a conditional logit "
            f"({self.combination.describe()})"
        )
        if harm_weight is None:
            text += "; among rows about equally doubted, the most harmful (lowest row value) first"
        elif harm_weight > 0:
            text += (
                f"; ranked by logit(doubt) - {harm_weight:g} x row value / median |row value|, so that among "
                "rows about equally doubted the most harmful come first (the largest weight costing at "
                "most 1 point of expected precision at 1-20% of the queue)"
            )
        else:
            text += (
                "; ties by row value, lowest first (any weight of the row value would cost more than "
                "1 point of expected precision)"
            )
        return text + "".join(f". Without {note}" for note in self.notes)


def label_doubts(
    factory,
    model,
    train: pd.DataFrame,
    held: pd.DataFrame,
    *,
    features: list[str],
    classes: Sequence[str],
    lf_names: Sequence[str],
    review: LabelingFunctionReview,
    min_gold_rows: int,
    seed: int,
    folds: int = 5,
) -> LabelDoubts:
    """The signals about each training row's label, and their combination fitted on gold rows.

    The training rows and the holdout's gold rows are scored alike: the user's pipeline
    (``factory``) out of fold on the training rows, the fitted ``model`` on the holdout rows; a
    model of the gold rows (out of fold on them); the label model's posterior (``p__`` columns);
    the LF votes and each LF's label accuracy on gold rows (``review``). The weights are fitted on
    the gold rows an LF voted on (:func:`fit_label_doubt`). A signal that cannot be had (too few
    gold rows, a failed fit) is left out and named in ``notes``."""
    gold_held = held[held[LABEL_SOURCE] == GOLD]
    rows = pd.concat([train, gold_held], ignore_index=True)
    n_train = len(train)
    labels = rows[LABEL].astype(str).to_numpy()
    gold = np.where(rows[LABEL_SOURCE].to_numpy() == GOLD, class_indices(labels, classes), -1)
    notes: list[str] = []
    try:
        own = out_of_fold_probabilities(
            factory, train[features], labels[:n_train], classes, folds=folds, seed=seed
        )
    except (TrainingError, ValueError) as e:
        notes.append(f"out-of-fold model probabilities: {e}; the model's own are used")
        own = class_probabilities(model, train[features], classes)
    own = np.vstack([own, class_probabilities(model, gold_held[features], classes)])
    fitted, why_not = gold_model(factory, features, rows, min_gold_rows=min_gold_rows, seed=seed)
    trusted = None
    if fitted is None:
        notes.append(f"a model of the gold rows: {why_not}")
    else:
        try:
            trusted = gold_model_probabilities(
                factory, fitted, rows[features], gold, classes, folds=folds, seed=seed
            )
        except (TrainingError, ValueError) as e:
            notes.append(f"a model of the gold rows: it cannot score the window ({e})")
    posterior = rows[[proba_column(c) for c in classes]].to_numpy(dtype=float)
    if not np.isfinite(posterior).all():
        notes.append("the label model's posterior: missing on some rows")
        posterior = None
    votes, accuracy = None, None
    if len(lf_names):
        votes = rows[[lf_column(name) for name in lf_names]].to_numpy(dtype=np.int64)
        accuracy = (
            review.table.set_index("lf")["label_accuracy"].reindex(list(lf_names)).to_numpy(dtype=float)
        )
    evidence = LabelEvidence(tuple(classes), own, trusted, posterior, votes, accuracy)
    covered = (votes != ABSTAIN).any(axis=1) if votes is not None else np.ones(len(rows), dtype=bool)
    combination = fit_label_doubt(evidence, np.where(covered, gold, ABSTAIN), min_gold=min_gold_rows)
    return LabelDoubts(evidence.take(np.arange(n_train)), combination, notes)


def duplicate_of(frame: pd.DataFrame, features: list[str]) -> list:
    """Per row, the index of the first earlier row with the same feature values (None if none)."""
    if len(frame) == 0:
        return []
    key = pd.util.hash_pandas_object(frame[features], index=False).to_numpy()
    first = pd.Series(frame.index, index=key).groupby(level=0).first()
    mapped = first.reindex(key).to_numpy()
    return [None if m == i else m for m, i in zip(mapped, frame.index, strict=True)]


@dataclass
class RowScores:
    """The scored training rows, ordered for review (1 = inspect first), and how they were ranked
    (``doubts`` None: by row value alone)."""

    table: pd.DataFrame
    gold_rows: np.ndarray
    doubts: LabelDoubts | None
    harm_weight: float | None = None

    def ranks_by(self) -> str:
        """How the queue ranks, for the asset's metadata."""
        if self.doubts is None:
            return "row value, lowest first"
        return self.doubts.describe(self.harm_weight)


def score_rows(
    train: pd.DataFrame,
    row_values: np.ndarray,
    loo: np.ndarray,
    *,
    predicted: np.ndarray,
    doubts: LabelDoubts,
    columns: list[str],
    review_gold: bool,
    lf_names: Sequence[str] = (),
    flagged_lfs: Sequence[str] = (),
    features: list[str] | None = None,
) -> RowScores:
    """One row per training row: its ``columns``, label, the model's prediction, its value
    (``importance``, rank 1 = most harmful), leave-one-out value, each signal's p(label)
    (``model_confidence`` out of fold, ``trusted_confidence`` from the gold-row model,
    ``label_model_confidence``), the queue's ``doubt``, ``suggested_label`` and ``suggested_p``,
    the ``signal`` that most doubts the label and ``why``, the LFs that voted the label, a
    ``suggested_action`` and its ``review_rank`` (gold rows left out unless ``review_gold``)."""
    names = train[LABEL].astype(str).to_numpy()
    classes = doubts.evidence.classes
    labels = class_indices(names, classes)
    rows = np.arange(len(train))
    scores = train[columns].copy()
    scores[LABEL] = names
    scores["predicted"] = predicted
    scores["importance"] = row_values
    scores["loo"] = loo
    scores["rank"] = scores["importance"].rank(method="first").astype(int)  # 1 = most harmful
    evidence = doubts.evidence
    for column, signal in (
        ("model_confidence", evidence.model),
        ("trusted_confidence", evidence.gold_model),
        ("label_model_confidence", evidence.label_model),
    ):
        scores[column] = np.nan if signal is None else signal[rows, labels]
    gold_rows = (train[LABEL_SOURCE] == GOLD).to_numpy()
    reasons = queue_reasons(
        evidence, doubts.combination, labels, np.asarray(row_values, dtype=float), lf_names=lf_names,
        flagged_lfs=flagged_lfs, gold=gold_rows,
        duplicate_of=duplicate_of(train, features) if features else None,
    )  # fmt: skip
    for column in reasons.columns:
        scores[column] = reasons[column].to_numpy()
    exclude = gold_rows if not review_gold else np.zeros(len(train), dtype=bool)  # gold: checked already
    values, doubt = np.asarray(row_values, dtype=float), reasons["doubt"].to_numpy()
    weight = harm_weight(values[~exclude], doubt[~exclude])
    ranks = review_ranks(values, doubt, exclude=exclude, weight=weight)
    scores["review_rank"] = pd.array(ranks, dtype="Int64")
    scores = scores.sort_values("review_rank", na_position="last", kind="stable")
    return RowScores(scores, gold_rows, doubts, weight)


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


def class_probabilities(model, X: pd.DataFrame, classes: Sequence[str]) -> np.ndarray:
    """(n, k) a fitted classifier's probability of each of ``classes`` (0 for a class it never
    saw), in the order of ``classes``."""
    out = np.zeros((len(X), len(classes)))
    if len(X) == 0:
        return out
    proba = model.predict_proba(X)
    column = {str(c): i for i, c in enumerate(model.classes_)}
    for j, c in enumerate(classes):
        if str(c) in column:
            out[:, j] = proba[:, column[str(c)]]
    return out


def out_of_fold_probabilities(
    factory, X: pd.DataFrame, labels: np.ndarray, classes: Sequence[str], *, folds: int = 5, seed: int = 0
) -> np.ndarray:
    """(n, k) each row's class probabilities from the pipeline ``factory()`` fitted on the other
    folds, so that a row's own (possibly wrong) label never vouches for itself. Folds are
    stratified when every class has ``folds`` rows, plain shuffled folds otherwise; ValueError
    with fewer than ``folds`` rows."""
    from sklearn.model_selection import KFold, StratifiedKFold

    labels = np.asarray(labels).astype(str)
    if len(labels) < folds:
        raise ValueError(
            f"out_of_fold_probabilities: {len(labels)} rows; expected at least {folds} (one per fold)"
        )
    counts = pd.Series(labels).value_counts()
    split = (
        StratifiedKFold(folds, shuffle=True, random_state=seed)
        if counts.min() >= folds
        else KFold(folds, shuffle=True, random_state=seed)
    )
    out = np.zeros((len(labels), len(classes)))
    for fit_rows, rows in split.split(X, labels):
        if len(np.unique(labels[fit_rows])) < 2:  # one class: it says that class, surely
            out[rows] = np.asarray([str(c) == labels[fit_rows][0] for c in classes], dtype=float)
            continue
        model = fit_pipeline(
            factory(), X.iloc[fit_rows], labels[fit_rows], sample_weight=None, seed=seed,
            window=f"{len(fit_rows)} rows of an out-of-fold split",
        )  # fmt: skip
        out[rows] = class_probabilities(model, X.iloc[rows], classes)
    return out


def gold_model_probabilities(
    factory,
    model,
    X: pd.DataFrame,
    gold: np.ndarray,
    classes: Sequence[str],
    *,
    folds: int = 5,
    seed: int = 0,
) -> np.ndarray:
    """(n, k) the gold-row model's class probabilities: from ``model`` (fitted on every gold row,
    :func:`gold_model`) for rows without gold, out of fold for the gold rows (``gold``: class
    index, -1 = none), so that a gold row's signals look like those of any other row when the
    combination's weights are fitted on them."""
    gold = np.asarray(gold)
    out = class_probabilities(model, X, classes)
    rows = np.flatnonzero(gold >= 0)
    if len(rows) >= folds:
        names = np.asarray(classes, dtype=object)[gold[rows]].astype(str)
        out[rows] = out_of_fold_probabilities(factory, X.iloc[rows], names, classes, folds=folds, seed=seed)
    return out
