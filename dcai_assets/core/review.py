"""The review queue: training rows ranked from the most harmful, each with a suggested action,
and aggregates per partition and per labeling function so a bad day or a bad rule stands out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def suggested_actions(
    values: np.ndarray,
    labels: Sequence[str],
    predicted: Sequence[str],
    sources: Sequence[str] | None = None,
    trusted_predicted: Sequence[str] | None = None,
) -> np.ndarray:
    """What to do with each row: rows the model disagrees with are likely mislabeled; rows it
    agrees with but a model of the gold rows does not carry a label the model may have learned
    from a wrong rule; other harmful rows are outliers or ambiguous; the rest need nothing. Gold
    labels are hand-checked and never relabeled."""
    values = np.asarray(values)
    labels = np.asarray(labels, dtype=object)
    predicted = np.asarray(predicted, dtype=object)
    actions = np.where(values < 0, "outlier or ambiguous: review the row", "").astype(object)
    if trusted_predicted is not None:
        trusted_predicted = np.asarray(trusted_predicted, dtype=object)
        rule = np.char.add(
            "label the model learned, but a model of the gold rows says ", trusted_predicted.astype(str)
        )
        actions = np.where(
            trusted_predicted != labels, np.char.add(rule, ": check the rule that set it"), actions
        )
    relabel = np.char.add("likely mislabeled: relabel as ", predicted.astype(str))
    actions = np.where(labels != predicted, relabel, actions)
    if sources is not None:
        gold = (np.asarray(sources, dtype=object) == "gold") & (actions != "")
        actions = np.where(gold, "gold label (hand-checked): keep; a hard case for the model", actions)
    return actions


def given_label_probability(model, X: pd.DataFrame, labels: Sequence[str]) -> np.ndarray:
    """The probability a fitted classifier gives each row's current label (0 for a label it never
    saw): low means the model doubts the label."""
    proba = model.predict_proba(X)
    column = {str(c): i for i, c in enumerate(model.classes_)}
    index = np.array([column.get(str(label), -1) for label in labels])
    return np.where(index >= 0, proba[np.arange(len(index)), np.maximum(index, 0)], 0.0)


def review_order(
    importance: np.ndarray,
    confidence: np.ndarray | None = None,
    trusted_confidence: np.ndarray | None = None,
) -> np.ndarray:
    """The order in which to inspect training rows, most suspicious first.

    Two doubts about a label, each as a rank (0 = most doubtful): ``confidence``, the model's own
    probability of the given label, finds random mistakes but not a systematically wrong rule,
    since the model learns the rule; ``trusted_confidence``, the probability from the same pipeline
    fitted on trusted (gold) rows only, which never saw the rule. A row's score is the better of
    its ranks, halved when its importance is negative (it hurts the model on the trusted holdout);
    ties go by importance. With neither doubt given, this is the importance order.
    """
    importance = np.asarray(importance, dtype=float)
    doubts = [np.asarray(c, dtype=float) for c in (confidence, trusted_confidence) if c is not None]
    if not doubts:
        return np.argsort(importance, kind="stable")
    score = np.minimum.reduce([_fractional_rank(d) for d in doubts])
    score = np.where(importance < 0, score / 2, score)
    return np.lexsort((importance, score))


def _fractional_rank(values: np.ndarray) -> np.ndarray:
    """The share of values strictly smaller than each one (0 = smallest); equal values tie."""
    return np.searchsorted(np.sort(values), values, side="left") / max(len(values), 1)


def per_partition(scores: pd.DataFrame, partition_column: str) -> pd.DataFrame:
    """Per partition: rows, harmful rows, their share, and the mean value, worst first."""
    grouped = scores.groupby(partition_column)["importance"]
    table = pd.DataFrame(
        {
            "rows": grouped.size(),
            "harmful": grouped.apply(lambda v: int((v < 0).sum())),
            "mean_importance": grouped.mean(),
        }
    )
    table["harmful_share"] = table["harmful"] / table["rows"]
    return table.sort_values("mean_importance")


def per_labeling_function(
    scores: pd.DataFrame, lf_columns: Sequence[str], classes: Sequence[str]
) -> pd.DataFrame:
    """Per LF: over the rows whose label it voted for, how many there are, the share that is
    harmful and the mean value; the LF with the lowest mean comes first."""
    records = []
    label_index = pd.Series(scores["label"]).map({c: i for i, c in enumerate(classes)}).to_numpy()
    for column in lf_columns:
        supports = scores[column].to_numpy() == label_index
        values = scores["importance"].to_numpy()[supports]
        records.append(
            {
                "lf": column.removeprefix("lf__"),
                "rows_supported": int(supports.sum()),
                "harmful_share": float((values < 0).mean()) if len(values) else np.nan,
                "mean_importance": float(values.mean()) if len(values) else np.nan,
            }
        )
    return pd.DataFrame(records).sort_values("mean_importance", na_position="last").reset_index(drop=True)


def histogram_markdown(values: np.ndarray, bins: int = 12, width: int = 40) -> str:
    """A text histogram of the values, for the UI."""
    counts, edges = np.histogram(values, bins=bins)
    top = max(int(counts.max()), 1)
    lines = ["```"]
    for count, lo, hi in zip(counts, edges[:-1], edges[1:], strict=True):
        bar = "#" * round(width * count / top)
        lines.append(f"{lo:+.2e} .. {hi:+.2e} | {bar} {count}")
    lines.append("```")
    return "\n".join(lines)
