"""Data health checks from the neighbour graph of the model's feature space, in the spirit of
cleanlab's Datalab: copies and near-duplicates (within the training window and between training
and holdout: leakage), outliers, class balance and label drift, and the review queue's likely
label errors. Weak segments are :mod:`dcai_assets.core.segments`. Each check returns a
:class:`HealthFinding`: whether it alarms, the counts behind it, an aggregate table and row-level
examples. Pure numpy/pandas/scikit-learn, no Dagster.

Every alarm is a statistical test against what clean data would show, plus a minimum effect
size, so that sampling noise on clean data does not alarm; a finding that cannot be decided (too
few rows) says so and does not alarm."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dcai_assets.core.columns import (
    GOLD,
    LABEL,
    LABEL_CONFIDENCE,
    LABEL_SOURCE,
    LF_PREFIX,
    PARTITION,
    PROBA_PREFIX,
    ROW,
)
from dcai_assets.core.findings import (
    DUPLICATES,
    LABEL_BALANCE,
    LABEL_ISSUES,
    OUTLIERS,
    WEAK_SEGMENTS,
    HealthFinding,
)
from dcai_assets.core.segments import feature_clusters, slices, weak_segments

_DERIVED = (PARTITION, ROW, LABEL, LABEL_SOURCE, LABEL_CONFIDENCE, "lf_set_version")  # not the data's own
_MIN_TAIL_ROWS = 5  # holdout rows above the outlier threshold, at least, for a stable quantile


@dataclass(frozen=True)
class NeighbourGraph:
    """The K nearest training rows of every training row (itself left out) and of every holdout
    row, in the model's preprocessed feature space (Euclidean, as the valuation's KNN).
    ``*_distances`` are sorted ascending per row, shape (rows, K); ``*_indices`` are positions
    among the training rows."""

    train_distances: np.ndarray
    train_indices: np.ndarray
    holdout_distances: np.ndarray
    holdout_indices: np.ndarray

    @property
    def k(self) -> int:
        return self.train_distances.shape[1]


_PROBE_ROWS = 128  # training rows a k-d tree is tried on before the search
_TREE_BELOW = 0.05  # the tree searches when its probe computed fewer distances per row than this share


def neighbour_graph(X_train: np.ndarray, X_val: np.ndarray, k: int) -> NeighbourGraph:
    """The K-nearest-neighbour graph of :class:`NeighbourGraph` (K capped at the training rows
    minus one). ValueError for fewer than two training rows, no holdout rows, a feature-count
    mismatch or non-finite features.

    The search is exact either way; how it is done depends on the data (:func:`_tree_if_pruning`):
    a k-d tree where it prunes (one-hot columns and a few numbers, as tabular models have: far
    below N^2, benchmarks/RESULTS.md), every pair otherwise (N^2, scikit-learn's brute force).
    Distances are square roots of sums of squared differences either way (brute force finds the
    neighbours through the norm expansion, whose rounding put rows with the same features up to
    3e-8 apart, and :func:`_exact` measures them again), so rows with the same
    features are at distance 0. Features are centred first (:func:`middle_values`), so a large
    common offset (timestamps, ids) changes no neighbour."""
    from sklearn.neighbors import NearestNeighbors

    from dcai_assets.core.knn_shapley import middle_values

    X_train = np.asarray(X_train, dtype=np.float64)
    X_val = np.asarray(X_val, dtype=np.float64)
    if X_train.ndim != 2 or X_val.ndim != 2 or X_train.shape[1] != X_val.shape[1]:
        raise ValueError(
            f"neighbour_graph: X_train {X_train.shape} and X_val {X_val.shape}; expected two 2-D arrays "
            "with the same number of features"
        )
    if len(X_train) < 2 or len(X_val) == 0:
        raise ValueError(
            f"neighbour_graph: {len(X_train)} training and {len(X_val)} holdout rows; expected at least "
            "two training rows and one holdout row"
        )
    if not (np.isfinite(X_train).all() and np.isfinite(X_val).all()):
        raise ValueError("neighbour_graph: X_train or X_val holds NaN or infinite values; expected finite")
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"neighbour_graph: k={k!r}; expected an integer >= 1")
    k = int(min(k, len(X_train) - 1))
    shift = middle_values(X_train)  # distances are the same; a large offset no longer costs digits
    X_train, X_val = X_train - shift, X_val - shift
    tree = _tree_if_pruning(X_train, k + 1)
    if tree is None:
        index = NearestNeighbors(n_neighbors=k + 1, algorithm="brute").fit(X_train)
        dist, ind = _exact(X_train, X_train, index.kneighbors(X_train, n_neighbors=k + 1)[1])
        hold_d, hold_i = _exact(X_val, X_train, index.kneighbors(X_val, n_neighbors=k)[1])
    else:
        dist, ind = _tree_query(tree, X_train, k + 1)
        hold_d, hold_i = _tree_query(tree, X_val, k)
    # Leave each row itself out: it is usually first, but an exact twin may come first instead.
    own = ind == np.arange(len(X_train))[:, None]
    drop = np.where(own.any(axis=1), own.argmax(axis=1), k)
    keep = np.ones_like(own)
    keep[np.arange(len(X_train)), drop] = False
    train_d = dist[keep].reshape(len(X_train), k)
    train_i = ind[keep].reshape(len(X_train), k)
    return NeighbourGraph(train_d, train_i, hold_d, hold_i)


def _exact(Q: np.ndarray, X: np.ndarray, ind: np.ndarray, rows: int = 16384) -> tuple[np.ndarray, np.ndarray]:
    """The distances from each row of ``Q`` to the training rows ``ind`` found for it, as sums of
    squared differences, and both sorted by them (ties in the order found)."""
    dist = np.empty(ind.shape)
    for start in range(0, len(Q), rows):
        part = slice(start, start + rows)
        dist[part] = np.sqrt(((Q[part, None, :] - X[ind[part]]) ** 2).sum(axis=2))
    order = np.argsort(dist, axis=1, kind="stable")
    return np.take_along_axis(dist, order, axis=1), np.take_along_axis(ind, order, axis=1)


def _tree_if_pruning(X_train: np.ndarray, k: int):
    """A k-d tree of the training rows if it prunes the search: its queries for ``k`` neighbours
    of ``_PROBE_ROWS`` training rows (seeded, so the choice is the data's) computed fewer than
    ``_TREE_BELOW`` x N distances each; None otherwise (dense many-dimensional features: brute
    force, whose distances cost a matrix product, is then faster)."""
    from sklearn.neighbors import KDTree

    n = len(X_train)
    tree = KDTree(X_train)
    probe = np.random.default_rng(0).choice(n, size=min(n, _PROBE_ROWS), replace=False)
    tree.reset_n_calls()
    tree.query(X_train[probe], k=k)
    return tree if tree.get_n_calls() < _TREE_BELOW * n * len(probe) else None


def _tree_query(tree, X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``tree.query(X, k)`` on every core: slices of ``X`` in threads (the query releases the GIL)."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    threads = max(1, min(cores, -(-len(X) // 1024)))
    if threads == 1:
        return tree.query(X, k=k)
    parts = np.array_split(np.arange(len(X)), threads)
    with ThreadPoolExecutor(threads) as pool:
        found = list(pool.map(lambda rows: tree.query(X[rows], k=k), parts))
    return np.vstack([d for d, _ in found]), np.vstack([i for _, i in found])


def _row_hashes(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    return pd.util.hash_pandas_object(frame[columns].astype(str), index=False).to_numpy()


def duplicates(
    graph: NeighbourGraph,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    *,
    show: list[str],
    max_share: float = 0.0,
    radius: float = 0.0,
) -> HealthFinding:
    """Copies of a row: identical in every column it arrived with (the labeling's columns and the
    partition left out, so a copy is found whatever label it was given; not chance when the data
    carries an id or a time), within the training window and between training and holdout (leakage:
    the model is evaluated on rows it learnt). Alarms when copies exceed ``max_share`` of the
    training rows, or of the holdout rows. Near-duplicates in the model's feature space (nearest
    neighbour within ``radius``, 0: the same features) are counted beside them: in a space of few
    distinct values they are common by chance, so they inform but never alarm."""
    columns = [
        c
        for c in train.columns
        if c in holdout.columns and c not in _DERIVED and not c.startswith((LF_PREFIX, PROBA_PREFIX))
    ]
    if not columns:
        raise ValueError("duplicates: the training and holdout rows share no data column to compare")
    train_hash, hold_hash = _row_hashes(train, columns), _row_hashes(holdout, columns)
    within = pd.Series(train_hash).duplicated(keep=False).to_numpy()
    leaked = np.isin(hold_hash, train_hash)
    near_train = graph.train_distances[:, 0] <= radius
    near_hold = graph.holdout_distances[:, 0] <= radius
    n, m = len(train), len(holdout)
    alarm = bool(within.sum() > max_share * n or leaked.sum() > max_share * m)
    table = pd.DataFrame(
        {
            "pair": ["within the training window", "holdout row copied from training"],
            "rows": [n, m],
            "copies": [int(within.sum()), int(leaked.sum())],
            "copy_share": [within.mean(), leaked.mean()],
            "feature_twins": [int(near_train.sum()), int(near_hold.sum())],
            "feature_twin_share": [near_train.mean(), near_hold.mean()],
        }
    )
    leaked_rows = holdout.loc[leaked, [c for c in show if c in holdout.columns]].assign(pair="holdout copy")
    within_rows = train.loc[within, [c for c in show if c in train.columns]].assign(pair="training copy")
    summary = (
        f"{int(leaked.sum())} of {m} holdout rows are copies of training rows (leakage), "
        f"{int(within.sum())} of {n} training rows have a copy in the window"
        + (f" (allowed share {max_share:g})" if max_share else "")
        + f"; feature-space twins (informative only): {int(near_hold.sum())} holdout, "
        f"{int(near_train.sum())} training"
    )
    counts = {
        "training_rows": n,
        "holdout_rows": m,
        "holdout_copies_of_training_rows": int(leaked.sum()),
        "training_rows_with_a_copy": int(within.sum()),
        "holdout_feature_twins": int(near_hold.sum()),
        "training_feature_twins": int(near_train.sum()),
    }
    return HealthFinding(DUPLICATES, alarm, summary, counts, table, pd.concat([leaked_rows, within_rows]))


def outliers(
    graph: NeighbourGraph,
    train: pd.DataFrame,
    *,
    show: list[str],
    factor: float = 3.0,
    max_share: float = 0.001,
    quantile: float = 0.99,
    alpha: float = 0.01,
) -> HealthFinding:
    """Training rows far outside the reference distribution: their distance to the K-th nearest
    other training row beyond ``factor`` times the holdout's ``quantile`` of the same distance
    (holdout rows measured against the training rows). Real data has a tail (a flight 15 hours
    late), so the check alarms only when more than ``max_share`` of the training rows are that far
    out and more of them than of the holdout rows by a one-sided Fisher exact test at ``alpha``.
    With too few holdout rows for ``quantile``, the quantile leaving five holdout rows above it is
    used (said in the summary)."""
    from scipy.stats import fisher_exact

    d_train, d_hold = graph.train_distances[:, -1], graph.holdout_distances[:, -1]
    n, m = len(d_train), len(d_hold)
    q = min(quantile, 1.0 - _MIN_TAIL_ROWS / m) if m > 2 * _MIN_TAIL_ROWS else None
    if q is None:
        summary = (
            f"undetermined: {m} holdout rows, too few to set a reference distance (need more than "
            f"{2 * _MIN_TAIL_ROWS})"
        )
        counts = {"training_rows": n, "holdout_rows": m}
        return HealthFinding(OUTLIERS, False, summary, counts, determined=False)
    reference = float(np.quantile(d_hold, q, method="higher"))
    threshold = factor * reference
    flagged = d_train > threshold
    count, tail = int(flagged.sum()), int((d_hold > threshold).sum())
    p = float(fisher_exact([[count, n - count], [tail, m - tail]], alternative="greater")[1])
    alarm = bool(count > max_share * n and p < alpha)
    order = np.argsort(-d_train)[:count]
    examples = train.iloc[order][[c for c in show if c in train.columns]].assign(
        kth_neighbour_distance=d_train[order], times_reference=d_train[order] / max(reference, 1e-300)
    )
    table = pd.DataFrame(
        {
            "rows": ["training", "holdout (reference)"],
            "count": [n, m],
            "beyond_threshold": [count, tail],
            "share": [count / n, tail / m],
            "median_kth_distance": [float(np.median(d_train)), float(np.median(d_hold))],
            "largest_kth_distance": [float(d_train.max()), float(d_hold.max())],
        }
    )
    summary = (
        f"{count} of {n} training rows ({count / n:.2%}) lie beyond {factor:g} x the holdout's {q:.3g} "
        f"quantile of the distance to the K-th neighbour (K={graph.k}, threshold {threshold:.3g}), against "
        f"{tail} of {m} holdout rows; alarm above {max_share:.2%} of the training rows and one-sided "
        f"Fisher p < {alpha:g} (p={p:.2g})"
    )
    counts = {
        "training_rows": n,
        "holdout_rows": m,
        "outliers": count,
        "holdout_rows_beyond": tail,
        "threshold": threshold,
        "quantile": q,
        "p_value": p,
    }
    return HealthFinding(OUTLIERS, alarm, summary, counts, table, examples)


def _shift(a: np.ndarray, b: np.ndarray) -> float:
    """Total variation distance between two count vectors' distributions."""
    return float(0.5 * np.abs(a / max(a.sum(), 1) - b / max(b.sum(), 1)).sum())


def _chi2_p(a: np.ndarray, b: np.ndarray) -> float:
    """Chi-square test of two count vectors; NaN when an expected count is below 5."""
    from scipy.stats import chi2_contingency

    table = np.vstack([a, b])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return np.nan
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0) / table.sum()
    return np.nan if expected.min() < 5 else float(chi2_contingency(table, correction=False)[1])


def label_balance(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    classes: list[str],
    *,
    min_class_share: float = 0.05,
    max_shift: float = 0.25,
    alpha: float = 0.01,
) -> HealthFinding:
    """Class balance per partition (``_partition`` column) and drift of the label distribution.
    Alarms for a class below ``min_class_share`` of the training rows (imbalance), or for a
    holdout whose label distribution differs from the training window's by a total variation
    distance of at least ``max_shift`` and by a chi-square test at ``alpha`` (drift: the model is
    judged on another class mix than it learnt). Each partition's shift from the rest of the
    window is in the table, marked ``shifted`` beyond ``max_shift``: daily label shares of real
    data swing (a stormy day), so a single partition informs but does not alarm."""
    rows = pd.concat([train, holdout])
    labels = rows[LABEL].astype(str)
    unknown = sorted(set(labels) - set(classes))
    if unknown:
        raise ValueError(f"label_balance: labels {unknown[:10]} are not among the classes {classes}")
    counts = pd.crosstab(rows[PARTITION], labels).reindex(columns=classes, fill_value=0)
    total = counts.to_numpy().sum(axis=0)
    per_partition = pd.DataFrame({PARTITION: counts.index, "rows": counts.sum(axis=1).to_numpy()})
    per_partition["role"] = np.where(
        per_partition[PARTITION].isin(set(holdout[PARTITION])), "holdout", "training"
    )
    for c in classes:
        per_partition[f"share_{c}"] = (counts[c] / counts.sum(axis=1).clip(lower=1)).to_numpy()
    observed = counts.to_numpy()
    per_partition["shift_vs_rest"] = [_shift(o, total - o) for o in observed]
    per_partition["status"] = np.where(per_partition["shift_vs_rest"] >= max_shift, "shifted", "ok")
    train_counts = train[LABEL].astype(str).value_counts().reindex(classes, fill_value=0).to_numpy()
    hold_counts = holdout[LABEL].astype(str).value_counts().reindex(classes, fill_value=0).to_numpy()
    train_share = train_counts / max(train_counts.sum(), 1)
    rare = [c for c, share in zip(classes, train_share, strict=True) if share < min_class_share]
    shift, p = _shift(hold_counts, train_counts), _chi2_p(hold_counts, train_counts)
    drifted = bool(shift >= max_shift and not np.isnan(p) and p < alpha)
    shares = ", ".join(
        f"{c} {sh:.1%} ({int(k)})" for c, sh, k in zip(classes, train_share, train_counts, strict=True)
    )
    hold_shares = ", ".join(
        f"{c} {k / max(hold_counts.sum(), 1):.1%} ({int(k)})"
        for c, k in zip(classes, hold_counts, strict=True)
    )
    test = "undetermined: too few rows for the chi-square test" if np.isnan(p) else f"chi-square p={p:.2g}"
    summary = (
        f"training labels: {shares}; holdout labels: {hold_shares}; shift {shift:.3f} ({test})"
        + (f"; classes below the minimum share {min_class_share:g}: {rare}" if rare else "")
        + (f"; DRIFT: shift >= {max_shift:g}" if drifted else "")
        + f"; {int((per_partition['status'] == 'shifted').sum())} of {len(per_partition)} partitions shifted "
        f">= {max_shift:g} from the rest of the window (informative)"
    )
    figures = {
        "training_rows": len(train),
        "holdout_rows": len(holdout),
        "rare_classes": len(rare),
        "smallest_class_share": float(train_share.min()),
        "holdout_shift": shift,
        "shifted_partitions": int((per_partition["status"] == "shifted").sum()),
    }
    if not np.isnan(p):
        figures["holdout_shift_p_value"] = p
    table = per_partition.sort_values("shift_vs_rest", ascending=False)
    return HealthFinding(LABEL_BALANCE, bool(rare or drifted), summary, figures, table)


RELABEL_MARKERS = ("mislabeled", "relabel")  # how the review queue's action names a label error


def _expected_errors(
    confidence: np.ndarray, holdout_correct: np.ndarray, holdout_confidence: np.ndarray, bins: int = 10
) -> tuple[float, float]:
    """How many of the rows of ``confidence`` the model would get wrong if their labels were as
    clean as the holdout's: the holdout error rate among holdout rows of the same confidence
    (deciles of the holdout's), summed; with its variance (the rows' own, and that of each
    decile's rate estimated from its holdout rows)."""
    edges = np.unique(np.quantile(holdout_confidence, np.linspace(0, 1, bins + 1)[1:-1]))
    hold_bin, row_bin = np.digitize(holdout_confidence, edges), np.digitize(confidence, edges)
    expected, variance = 0.0, 0.0
    for b in np.unique(row_bin):
        rows, held = int((row_bin == b).sum()), hold_bin == b
        if not held.any():  # no holdout row that confident: the nearest decile's rate
            nearest = np.argmin(np.abs(holdout_confidence - confidence[row_bin == b].mean()))
            held = hold_bin == hold_bin[nearest]
        rate = float(1.0 - holdout_correct[held].mean())
        expected += rows * rate
        variance += rows * rate * (1 - rate) + rows**2 * rate * (1 - rate) / held.sum()
    return expected, variance


def label_issues(
    scores: pd.DataFrame,
    confidence: np.ndarray,
    holdout_correct: np.ndarray,
    holdout_confidence: np.ndarray,
    *,
    show: list[str],
    max_excess: float = 0.05,
    alpha: float = 0.01,
) -> HealthFinding:
    """The review queue's likely label errors (non-gold rows whose ``suggested_action`` says to
    relabel) against what clean labels would show: the model's holdout error rate at the same
    confidence (``confidence``: the model's probability of its predicted class for each scored
    row; the holdout's correctness and confidence likewise), so that harder training days do not
    look like label errors. Alarms when their share of the training rows exceeds the expected
    share by at least ``max_excess`` and by a one-sided z-test at ``alpha``."""
    from scipy.stats import norm

    for column in ("suggested_action", LABEL_SOURCE):
        if column not in scores.columns:
            raise ValueError(
                f"label_issues: the scores have no {column!r} column; expected the importance scores"
            )
    confidence = np.asarray(confidence, dtype=float)
    holdout_correct = np.asarray(holdout_correct, dtype=bool)
    holdout_confidence = np.asarray(holdout_confidence, dtype=float)
    if confidence.shape != (len(scores),) or holdout_correct.shape != holdout_confidence.shape:
        raise ValueError(
            f"label_issues: {len(scores)} scored rows but {confidence.shape} confidences, holdout "
            f"correctness {holdout_correct.shape} and confidence {holdout_confidence.shape}; expected "
            "one per row"
        )
    action = scores["suggested_action"].fillna("").astype(str).str.lower()
    queued = (scores[LABEL_SOURCE] != GOLD).to_numpy()
    likely = action.str.contains("|".join(RELABEL_MARKERS)).to_numpy() & queued
    n, m, count = len(scores), len(holdout_correct), int(likely.sum())
    if n == 0 or m < 10:
        summary = f"undetermined: {n} scored rows, {m} holdout rows (need at least 10)"
        counts = {"training_rows": n, "holdout_rows": m}
        return HealthFinding(LABEL_ISSUES, False, summary, counts, determined=False)
    expected, variance = _expected_errors(confidence[queued], holdout_correct, holdout_confidence)
    excess = (count - expected) / n
    p = float(norm.sf((count - expected) / np.sqrt(variance))) if variance > 0 else float(count <= expected)
    alarm = bool(p < alpha and excess >= max_excess)
    summary = (
        f"{count} of {n} training rows ({count / n:.2%}) are likely label errors in the review queue, "
        f"against {expected:.0f} expected from the model's holdout error rate at the same confidence "
        f"({m - int(holdout_correct.sum())} errors in {m} holdout rows); excess {excess:+.2%} of the rows, "
        f"one-sided p={p:.2g}"
    )
    counts = {
        "training_rows": n,
        "likely_label_errors": count,
        "expected_with_clean_labels": round(expected, 1),
        "holdout_rows": m,
        "holdout_errors": m - int(holdout_correct.sum()),
        "excess_share": excess,
        "p_value": p,
    }
    sort = "review_rank" if "review_rank" in scores.columns else "suggested_action"
    shown = [c for c in [*show, "suggested_action"] if c in scores.columns]
    examples = scores.loc[likely].sort_values(sort)[shown]
    return HealthFinding(LABEL_ISSUES, alarm, summary, counts, examples=examples)


@dataclass(frozen=True)
class HealthSettings:
    """The thresholds of the checks (the spec's :class:`dcai_assets.HealthChecks` carries them)."""

    alpha: float = 0.01
    max_duplicate_share: float = 0.0
    outlier_factor: float = 3.0
    max_outlier_share: float = 0.001
    min_class_share: float = 0.05
    max_label_shift: float = 0.25
    min_slice_rows: int = 30
    min_accuracy_gap: float = 0.15
    max_label_issue_excess: float = 0.05


def data_health(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    X_train: np.ndarray,
    X_val: np.ndarray,
    holdout_predicted: np.ndarray,
    holdout_confidence: np.ndarray,
    scores: pd.DataFrame,
    scores_confidence: np.ndarray,
    *,
    features: list[str],
    classes: list[str],
    show: list[str],
    k: int,
    settings: HealthSettings = HealthSettings(),
    seed: int = 0,
) -> dict[str, HealthFinding]:
    """Every check, by name (``CHECK_NAMES`` of :mod:`dcai_assets.core.findings`), on a model's
    training rows and holdout (frames with ``label`` and ``_partition``; ``X_*`` as the model's
    preprocessing sees them), its predictions on the holdout and their probabilities, and its
    importance scores (the review queue) with the model's probability of its predicted class
    for each scored row. ``show``: the columns that identify a row in the examples."""
    if len(train) != len(X_train) or len(holdout) != len(X_val) or len(holdout_predicted) != len(holdout):
        raise ValueError(
            f"data_health: {len(train)} training rows but {len(X_train)} feature rows, {len(holdout)} "
            f"holdout rows but {len(X_val)} feature rows and {len(holdout_predicted)} predictions; "
            "expected one each"
        )
    s = settings
    graph = neighbour_graph(X_train, X_val, k)
    correct = np.asarray(holdout_predicted).astype(str) == holdout[LABEL].astype(str).to_numpy()
    masks = slices(holdout, features, train, clusters=feature_clusters(X_train, X_val, seed=seed))
    return {
        DUPLICATES: duplicates(graph, train, holdout, show=show, max_share=s.max_duplicate_share),
        OUTLIERS: outliers(
            graph, train, show=show, factor=s.outlier_factor, max_share=s.max_outlier_share, alpha=s.alpha
        ),
        LABEL_BALANCE: label_balance(
            train,
            holdout,
            classes,
            min_class_share=s.min_class_share,
            max_shift=s.max_label_shift,
            alpha=s.alpha,
        ),
        WEAK_SEGMENTS: weak_segments(
            holdout,
            correct,
            holdout_confidence,
            masks,
            show=show,
            min_rows=s.min_slice_rows,
            min_gap=s.min_accuracy_gap,
            alpha=s.alpha,
        ),
        LABEL_ISSUES: label_issues(
            scores,
            scores_confidence,
            correct,
            holdout_confidence,
            show=show,
            max_excess=s.max_label_issue_excess,
            alpha=s.alpha,
        ),
    }
