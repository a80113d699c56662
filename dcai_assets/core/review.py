"""The review queue: training rows ranked from the most harmful, each with a suggested action,
and aggregates per partition and per labeling function so a bad day or a bad rule stands out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def suggested_actions(
    values: np.ndarray, labels: Sequence[str], predicted: Sequence[str], sources: Sequence[str] | None = None
) -> np.ndarray:
    """Harmful rows the model disagrees with are likely mislabeled; harmful rows it agrees with are
    outliers or ambiguous; gold labels are hand-checked and never relabeled; the rest need
    nothing."""
    values = np.asarray(values)
    labels = np.asarray(labels, dtype=object)
    predicted = np.asarray(predicted, dtype=object)
    relabel = np.char.add("likely mislabeled: relabel as ", predicted.astype(str))
    actions = np.where(
        values < 0,
        np.where(labels != predicted, relabel, "outlier or ambiguous: review the row"),
        "",
    )
    if sources is not None:
        gold = (np.asarray(sources, dtype=object) == "gold") & (values < 0)
        actions = np.where(gold, "gold label (hand-checked): keep; a hard case for the model", actions)
    return actions


def review_order(importance: np.ndarray, confidence: np.ndarray | None = None) -> np.ndarray:
    """The order in which to inspect training rows, most suspicious first.

    Harmful rows (negative importance against the trusted holdout) come first, by importance; where
    the model's cross-validated confidence in the given label is known, each row's rank is the
    better of its importance rank and its low-confidence rank, so that a row flagged strongly by
    either signal is seen early: low confidence finds random flips, importance finds the errors a
    model learns to be confident about (a systematically wrong rule).
    """
    importance = np.asarray(importance, dtype=float)
    n = len(importance)
    by_importance = np.empty(n)
    by_importance[np.argsort(importance, kind="stable")] = np.arange(n)
    if confidence is None:
        return np.argsort(by_importance, kind="stable")
    by_confidence = np.empty(n)
    by_confidence[np.argsort(np.asarray(confidence, dtype=float), kind="stable")] = np.arange(n)
    best = np.minimum(by_importance, by_confidence)
    return np.lexsort((by_importance + by_confidence, best))


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
