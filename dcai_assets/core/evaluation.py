"""Evaluate a classifier the way it will be used: on the newest partitions, overall, per
partition and per slice, with a group-fairness gap; and decide whether a challenger may replace
the champion."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class PromotionGate:
    """When a challenger may become champion (compared on the same holdout and slices).

    ``max_drop``: the challenger's overall ``metric`` may be at most this much below the
    champion's. ``max_slice_drop``: the same, for every slice with at least ``min_slice_rows``
    rows. ``max_fairness_increase``: how much the fairness gap may grow. ``min_rows``: fewer
    evaluation rows than this and nothing is promoted.
    """

    metric: str = "accuracy"
    max_drop: float = 0.0
    max_slice_drop: float = 0.05
    max_fairness_increase: float = 0.05
    min_rows: int = 30
    min_slice_rows: int = 20


@dataclass
class Evaluation:
    """Metrics of one model on one evaluation set."""

    overall: dict[str, float]
    per_partition: dict[str, dict[str, float]]
    per_slice: dict[str, dict[str, dict[str, float]]]  # column -> value -> metrics
    fairness: dict[str, float]
    rows: int

    def table(self) -> pd.DataFrame:
        """Long format: scope, group, metric, value."""
        records = [("overall", "", k, v) for k, v in self.overall.items()]
        for p, m in self.per_partition.items():
            records += [("partition", p, k, v) for k, v in m.items()]
        for col, groups in self.per_slice.items():
            for g, m in groups.items():
                records += [(f"slice:{col}", g, k, v) for k, v in m.items()]
        records += [("fairness", "", k, v) for k, v in self.fairness.items()]
        return pd.DataFrame(records, columns=["scope", "group", "metric", "value"])


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[str]
) -> dict[str, float]:
    """Accuracy, macro F1, and for two classes the positive class's precision, recall and F1
    (the positive class is the second one, e.g. ``late`` in ``[on_time, late]``)."""
    y_true = np.asarray(y_true, dtype=object)
    y_pred = np.asarray(y_pred, dtype=object)
    out = {
        "accuracy": float((y_true == y_pred).mean()) if len(y_true) else float("nan"),
        "n": float(len(y_true)),
    }
    f1s = []
    for c in classes:
        tp = float(((y_pred == c) & (y_true == c)).sum())
        precision = tp / max(float((y_pred == c).sum()), 1.0)
        recall = tp / max(float((y_true == c).sum()), 1.0)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        f1s.append(f1)
        if len(classes) == 2 and c == classes[1]:
            out.update({"precision": precision, "recall": recall, "f1": f1})
    out["f1_macro"] = float(np.mean(f1s))
    return out


def fairness_gaps(
    y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray, positive: str, min_rows: int = 20
) -> dict[str, float]:
    """Group-fairness gaps over ``groups`` (groups with fewer than ``min_rows`` rows are left out).

    - ``demographic_parity_difference``: max - min over groups of P(pred = positive).
    - ``equalized_odds_difference``: the larger of the max - min gaps in true-positive rate and
      in false-positive rate over groups.
    """
    groups = np.asarray(groups, dtype=object)
    rates, tprs, fprs = [], [], []
    for g in pd.unique(groups):
        mask = groups == g
        if mask.sum() < min_rows:
            continue
        pred_pos = y_pred[mask] == positive
        true_pos = y_true[mask] == positive
        rates.append(pred_pos.mean())
        if true_pos.any():
            tprs.append(pred_pos[true_pos].mean())
        if (~true_pos).any():
            fprs.append(pred_pos[~true_pos].mean())

    def spread(values: list[float]) -> float:
        return float(max(values) - min(values)) if len(values) > 1 else 0.0

    return {
        "demographic_parity_difference": spread(rates),
        "equalized_odds_difference": max(spread(tprs), spread(fprs)),
    }


def evaluate(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    frame: pd.DataFrame,
    classes: Sequence[str],
    *,
    partition_column: str,
    slices: Sequence[str] = (),
    sensitive: str | None = None,
    min_slice_rows: int = 20,
    top_slices: int = 10,
) -> Evaluation:
    """Metrics overall, per partition (``partition_column``), per slice and the fairness gaps."""
    y_true = np.asarray(y_true, dtype=object)
    y_pred = np.asarray(y_pred, dtype=object)
    per_partition = {
        str(p): classification_metrics(y_true[mask], y_pred[mask], classes)
        for p in sorted(pd.unique(frame[partition_column]))
        if (mask := (frame[partition_column] == p).to_numpy()).any()
    }
    per_slice: dict[str, dict[str, dict[str, float]]] = {}
    for column in slices:
        values = frame[column].astype(str)
        groups = {}
        for value in values.value_counts().index[:top_slices]:
            mask = (values == value).to_numpy()
            if mask.sum() >= min_slice_rows:
                groups[str(value)] = classification_metrics(y_true[mask], y_pred[mask], classes)
        per_slice[column] = groups
    fairness = (
        fairness_gaps(y_true, y_pred, frame[sensitive].astype(str).to_numpy(), classes[-1], min_slice_rows)
        if sensitive
        else {}
    )
    return Evaluation(
        overall=classification_metrics(y_true, y_pred, classes),
        per_partition=per_partition,
        per_slice=per_slice,
        fairness=fairness,
        rows=len(y_true),
    )


@dataclass
class GateVerdict:
    """Whether the challenger is promoted, and why, in words."""

    promote: bool
    reasons: list[str] = field(default_factory=list)


def gate(challenger: Evaluation, champion: Evaluation | None, rules: PromotionGate) -> GateVerdict:
    """Compare a challenger with the champion on the same evaluation rows."""
    metric = rules.metric
    if challenger.rows < rules.min_rows:
        return GateVerdict(
            False, [f"only {challenger.rows} evaluation rows (need {rules.min_rows}): nothing is promoted"]
        )
    new = challenger.overall[metric]
    if champion is None:
        return GateVerdict(True, [f"no champion yet: the first model becomes champion ({metric} {new:.4f})"])
    reasons, ok = [], True
    old = champion.overall[metric]
    if new < old - rules.max_drop:
        ok = False
        reasons.append(
            f"{metric} {new:.4f} is below the champion's {old:.4f} by more than {rules.max_drop:g}"
        )
    else:
        reasons.append(f"{metric} {new:.4f} vs champion {old:.4f} (allowed drop {rules.max_drop:g})")
    for column, groups in challenger.per_slice.items():
        for value, m in groups.items():
            before = champion.per_slice.get(column, {}).get(value)
            if before is None or m["n"] < rules.min_slice_rows:
                continue
            if m[metric] < before[metric] - rules.max_slice_drop:
                ok = False
                reasons.append(
                    f"slice {column}={value}: {metric} {m[metric]:.4f} drops from {before[metric]:.4f} "
                    f"(more than {rules.max_slice_drop:g})"
                )
    for name, value in challenger.fairness.items():
        before = champion.fairness.get(name)
        if before is not None and value > before + rules.max_fairness_increase:
            ok = False
            reasons.append(
                f"{name} grows from {before:.4f} to {value:.4f} (more than {rules.max_fairness_increase:g})"
            )
    if ok:
        reasons.append("no slice or fairness regression beyond the thresholds")
    return GateVerdict(ok, reasons)
