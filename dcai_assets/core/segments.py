"""Weak segments: slices of the holdout (a feature's value, a quartile of a numeric feature, or a
cluster of the model's feature space) where the model's accuracy is far below its accuracy on the
rest, ranked.

A slice can be hard without anything being wrong: rows near the decision boundary are, and the
model says so by its confidence there. So a slice alarms only when it falls short of the model's
own confidence by ``min_gap`` more than the rest does (the model does not know it fails there:
a group it never learnt, labels that follow another rule), with at least ``min_rows`` rows and a
one-sided Welch test significant after a Bonferroni correction over every slice tested: on clean
data, the worst of many slices is low by chance."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dcai_assets.core.findings import WEAK_SEGMENTS, HealthFinding

_MAX_VALUES = 12  # a numeric feature with at most this many distinct values is sliced by value


def slices(
    holdout: pd.DataFrame,
    features: list[str],
    reference: pd.DataFrame,
    *,
    clusters: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """``{description: boolean mask over holdout rows}``: each value of a categorical (or
    few-valued) feature, each quartile of a numeric one (edges from ``reference``, the training
    rows), each cluster label of ``clusters``. Missing values are a slice of their own."""
    out: dict[str, np.ndarray] = {}
    for feature in features:
        column = holdout[feature]
        missing = column.isna().to_numpy()
        if missing.any():
            out[f"{feature} is missing"] = missing
        numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
        if numeric and reference[feature].nunique() > _MAX_VALUES:
            edges = np.unique(np.nanquantile(reference[feature].to_numpy(dtype=float), [0.25, 0.5, 0.75]))
            bins = np.digitize(column.to_numpy(dtype=float), edges)
            bounds = [-np.inf, *edges, np.inf]
            for b in range(len(edges) + 1):
                out[f"{bounds[b]:.4g} <= {feature} < {bounds[b + 1]:.4g}"] = (bins == b) & ~missing
        else:
            for value in column.dropna().unique():
                out[f"{feature} = {value}"] = (column == value).to_numpy()
    if clusters is not None:
        for c in np.unique(clusters):
            out[f"cluster {c}"] = clusters == c
    return out


def feature_clusters(
    X_train: np.ndarray, X_val: np.ndarray, n_clusters: int = 8, seed: int = 0
) -> np.ndarray:
    """Cluster labels of the holdout rows, by k-means fitted on the training rows of the model's
    preprocessed feature space (fewer clusters with fewer rows)."""
    from sklearn.cluster import KMeans

    n_clusters = int(min(n_clusters, len(X_train)))
    model = KMeans(n_clusters=n_clusters, n_init=3, random_state=seed).fit(X_train)
    return model.predict(X_val)


def wilson_interval(successes: np.ndarray, n: np.ndarray, z: float = 1.96) -> tuple[np.ndarray, np.ndarray]:
    """The Wilson score interval (95% by default) of a proportion."""
    successes, n = np.asarray(successes, dtype=float), np.asarray(n, dtype=float)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def _slice_table(
    correct: np.ndarray, confidence: np.ndarray, masks: dict[str, np.ndarray], min_rows: int
) -> pd.DataFrame:
    """One row per slice with ``min_rows`` rows in it and outside it: its counts, accuracy, the
    rest's, the model's mean confidence, the shortfall and the one-sided Welch p-value."""
    from scipy.stats import ttest_ind

    n_all, right_all = len(correct), int(correct.sum())
    residual = correct - confidence  # below 0 where the model promised more than it delivered
    rows = []
    for name, mask in masks.items():
        n = int(mask.sum())
        if n < min_rows or n_all - n < min_rows:
            continue
        right = int(correct[mask].sum())
        inside, outside = residual[mask], residual[~mask]
        shortfall = float(outside.mean() - inside.mean())
        p = float(ttest_ind(inside, outside, equal_var=False, alternative="less").pvalue)
        p = 1.0 if np.isnan(p) else p  # constant residuals on both sides: nothing to tell apart
        rest_acc = (right_all - right) / (n_all - n)
        rows.append((name, n, n - right, right / n, rest_acc, float(confidence[mask].mean()), shortfall, p))
    columns = ["slice", "rows", "errors", "accuracy", "rest_accuracy", "confidence", "shortfall", "p_value"]
    return pd.DataFrame(rows, columns=columns)


def weak_segments(
    holdout: pd.DataFrame,
    correct: np.ndarray,
    confidence: np.ndarray,
    masks: dict[str, np.ndarray],
    *,
    show: list[str],
    min_rows: int = 30,
    min_gap: float = 0.15,
    alpha: float = 0.01,
) -> HealthFinding:
    """Rank the slices ``masks`` of the holdout by how far the model's accuracy (``correct``: one
    boolean per holdout row) falls below its accuracy on the rest, and alarm as the module says
    (``confidence``: the model's probability of the class it predicted, per holdout row). The
    table holds every slice tested, weakest first: rows, errors, accuracy and its 95% Wilson
    interval, the rest's accuracy, the gap, the model's mean confidence, the shortfall against it
    beyond the rest's, and the p-value (raw and Bonferroni-adjusted)."""
    correct = np.asarray(correct, dtype=bool)
    confidence = np.asarray(confidence, dtype=float)
    if correct.shape != (len(holdout),) or confidence.shape != (len(holdout),):
        raise ValueError(
            f"weak_segments: correct {correct.shape} and confidence {confidence.shape}; expected "
            f"({len(holdout)},) each, one per holdout row"
        )
    if not np.isfinite(confidence).all() or (confidence < 0).any() or (confidence > 1).any():
        raise ValueError(
            "weak_segments: confidence holds values outside [0, 1] or NaN; expected probabilities"
        )
    n_all, right_all = len(correct), int(correct.sum())
    accuracy = right_all / n_all if n_all else np.nan
    table = _slice_table(correct, confidence, masks, min_rows)
    untested = len(masks) - len(table)
    if table.empty:
        summary = (
            f"undetermined: no slice has at least {min_rows} holdout rows (and as many outside it); "
            f"{untested} too small"
        )
        counts = {"holdout_rows": n_all, "slices_tested": 0, "slices_too_small": untested}
        return HealthFinding(WEAK_SEGMENTS, False, summary, counts, determined=False)
    low, high = wilson_interval(table["rows"] - table["errors"], table["rows"])
    table.insert(4, "accuracy_low", low)
    table.insert(5, "accuracy_high", high)
    table.insert(7, "gap", table["rest_accuracy"] - table["accuracy"])
    table["p_adjusted"] = np.minimum(1.0, table["p_value"] * len(table))
    table["weak"] = (table["p_adjusted"] < alpha) & (table["shortfall"] >= min_gap)
    table = table.sort_values(["weak", "gap"], ascending=[False, False]).reset_index(drop=True)
    weak = table[table["weak"]]
    examples = []
    for name in weak["slice"].head(3):
        wrong = masks[name] & ~correct
        examples.append(
            holdout.loc[wrong, [c for c in show if c in holdout.columns]].head(5).assign(slice=name)
        )
    worst = weak.iloc[0] if len(weak) else None
    summary = (
        f"{len(weak)} of {len(table)} slices tested are weak (accuracy short of the model's confidence "
        f"by {min_gap:g} more than elsewhere, Bonferroni-adjusted one-sided Welch p < {alpha:g}); overall "
        f"holdout accuracy {accuracy:.3f} ({right_all} of {n_all}); {untested} slices under {min_rows} rows "
        "not tested"
        + (
            f"; weakest: {worst['slice']} (accuracy {worst['accuracy']:.3f} on {worst['rows']} rows, "
            f"{worst['errors']} errors, against {worst['rest_accuracy']:.3f} elsewhere)"
            if worst is not None
            else ""
        )
    )
    counts = {
        "holdout_rows": n_all,
        "holdout_accuracy": accuracy,
        "slices_tested": len(table),
        "slices_too_small": untested,
        "weak_slices": len(weak),
        "largest_gap": float(table["gap"].max()),
        "largest_shortfall": float(table["shortfall"].max()),
    }
    found = pd.concat(examples) if examples else pd.DataFrame()
    return HealthFinding(WEAK_SEGMENTS, bool(len(weak)), summary, counts, table, found)
