"""The review queue: training rows ranked from the most harmful, each with a suggested action,
and aggregates per partition and per labeling function so a bad day or a bad rule stands out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from dcai_assets.core.label_doubt import LabelDoubt, LabelEvidence
from dcai_assets.core.labeling import ABSTAIN

_WHY = {
    "model": "the model, out of fold, gives the label p={p:.2f}",
    "gold_model": "a model of the gold rows gives the label p={p:.2f}",
    "label_model": "the label model gives the label p={p:.2f}",
    "lf_votes": "{against} of {votes} LF votes are against the label",
    "lf_source": "the labels of the LFs voting it are {p:.0%} right on gold rows",
}


def queue_reasons(
    evidence: LabelEvidence,
    doubt: LabelDoubt,
    labels: np.ndarray,
    importance: np.ndarray,
    *,
    lf_names: Sequence[str] = (),
    flagged_lfs: Sequence[str] = (),
    duplicate_of: Sequence | None = None,
    gold: np.ndarray | None = None,
) -> pd.DataFrame:
    """Why each row is in the queue and what to do, one row per row of ``evidence``.

    Parameters
    ----------
    evidence, doubt : the rows' signals and the fitted combination.
    labels : (n,) each row's label as a class index.
    importance : (n,) each row's value (negative: it hurts the model on the trusted holdout).
    lf_names : the LFs, one per column of ``evidence.votes``.
    flagged_lfs : LFs shown to set more wrong labels than the others (the per-LF table).
    duplicate_of : (n,) the row each row duplicates (same features), None where it duplicates none.
    gold : (n,) True for gold rows (hand-checked: kept, never relabeled).

    Returns
    -------
    A frame with ``doubt`` (probability the label is wrong), ``suggested_label`` and
    ``suggested_p`` (the most supported class and its probability), ``signal`` (the signal that
    most doubts the label, weighted), ``why`` (that signal's figure, and the LFs that voted the
    label), ``label_lfs`` and ``suggested_action``: relabel as X (and fix LF Y when a flagged LF
    set the label) when another class is more supported; else drop as duplicate; else check the
    outlier when the row hurts the model though its label looks right; else nothing.
    """
    classes = evidence.classes
    labels = np.asarray(labels, dtype=np.int64)
    importance = np.asarray(importance, dtype=float)
    n = evidence.rows
    for name, array in (("labels", labels), ("importance", importance)):
        if array.shape != (n,):
            raise ValueError(f"{name}: shape {array.shape}; expected ({n},), one per row of the evidence")
    if labels.size and (labels.min() < 0 or labels.max() >= len(classes)):
        raise ValueError(
            f"labels: values outside 0..{len(classes) - 1}; expected class indices of {list(classes)}"
        )
    if not np.isfinite(importance).all():
        raise ValueError("importance: NaN or infinite values; expected each row's value")
    support = doubt.support(evidence)
    rows = np.arange(n)
    ranked = np.argsort(-support, axis=1, kind="stable")
    suggested = ranked[:, 0]
    # The class the signals are asked about: the suggested one, or the runner-up for a label they back.
    other = np.where(suggested != labels, suggested, ranked[:, 1])
    contributions = doubt.contributions(evidence, labels, other)
    strongest = contributions.argmax(axis=1)
    label_lfs = _label_lfs(evidence, labels, lf_names)
    flagged = set(flagged_lfs)
    duplicate_of = [None] * n if duplicate_of is None else list(duplicate_of)
    gold = np.zeros(n, dtype=bool) if gold is None else np.asarray(gold, dtype=bool)
    if len(duplicate_of) != n or gold.shape != (n,):
        raise ValueError(f"duplicate_of and gold: expected {n} rows each, one per row of the evidence")
    source = evidence.source_accuracy() if evidence.votes is not None else None
    signals, whys, actions = [], [], []
    for i in rows:
        signal = doubt.signals[strongest[i]]
        lfs = label_lfs[i]
        setters = "set by " + ", ".join(f"`{f}`" for f in lfs) if lfs else "no LF voted it"
        signals.append(signal)
        whys.append(f"{_why(signal, evidence, source, i, labels[i])}; {setters}")
        relabel = classes[suggested[i]] if suggested[i] != labels[i] else None
        actions.append(_action(relabel, lfs, flagged, duplicate_of[i], importance[i], gold=bool(gold[i])))
    return pd.DataFrame(
        {
            "doubt": 1 - support[rows, labels],
            "suggested_label": [classes[c] for c in suggested],
            "suggested_p": support[rows, suggested],
            "signal": signals,
            "why": whys,
            "label_lfs": [", ".join(f) for f in label_lfs],
            "suggested_action": actions,
        }
    )


def _action(
    relabel: str | None, lfs: list[str], flagged: set[str], duplicate_of, importance: float, *, gold: bool
) -> str:
    """What to do with one row (see :func:`queue_reasons`)."""
    if gold:
        return "gold label (hand-checked): keep" + ("; a hard case for the model" if relabel else "")
    if relabel is not None:
        bad = [f for f in lfs if f in flagged]
        fix = (
            f"; fix LF `{bad[0]}` (its labels are less accurate on gold rows than the others')" if bad else ""
        )
        return f"relabel as {relabel}{fix}"
    if duplicate_of is not None:
        return f"drop as duplicate of row {duplicate_of}"
    if importance < 0:
        return "check outlier: it hurts the model though its label looks right"
    return ""


def _label_lfs(evidence: LabelEvidence, labels: np.ndarray, lf_names: Sequence[str]) -> list[list[str]]:
    """Per row, the LFs that voted its label."""
    if evidence.votes is None:
        return [[] for _ in labels]
    if len(lf_names) != evidence.votes.shape[1]:
        raise ValueError(f"lf_names: {len(lf_names)} names; expected {evidence.votes.shape[1]}, one per LF")
    names = np.asarray(lf_names, dtype=object)
    return [list(names[row == label]) for row, label in zip(evidence.votes, labels, strict=True)]


def _why(signal: str, evidence: LabelEvidence, source: np.ndarray | None, i: int, label: int) -> str:
    if signal == "lf_votes":
        votes = evidence.votes[i]
        cast = votes != ABSTAIN
        return _WHY[signal].format(against=int((cast & (votes != label)).sum()), votes=int(cast.sum()))
    if signal == "lf_source":
        return _WHY[signal].format(p=float(source[i, label]))
    return _WHY[signal].format(p=float(getattr(evidence, signal)[i, label]))


def given_label_probability(model, X: pd.DataFrame, labels: Sequence[str]) -> np.ndarray:
    """The probability a fitted classifier gives each row's current label (0 for a label it never
    saw): low means the model doubts the label."""
    proba = model.predict_proba(X)
    column = {str(c): i for i, c in enumerate(model.classes_)}
    index = np.array([column.get(str(label), -1) for label in labels])
    return np.where(index >= 0, proba[np.arange(len(index)), np.maximum(index, 0)], 0.0)


HARM_WEIGHTS = (0.0, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
"""The weights of the row value tried by :func:`harm_weight`, smallest first."""
QUEUE_DEPTHS = (0.01, 0.02, 0.05, 0.1, 0.2)
"""The shares of the queue at which :func:`harm_weight` compares expected precisions."""
_CLIP = 1e-6  # doubts are clipped to [_CLIP, 1 - _CLIP] before the logit, as the signals are


def _scores(importance: np.ndarray, doubt: np.ndarray, weight: float) -> np.ndarray:
    """logit(doubt) - weight x importance / (median |importance|): higher is inspected first."""
    d = np.clip(doubt, _CLIP, 1 - _CLIP)
    scale = float(np.median(np.abs(importance))) if len(importance) else 0.0
    if not scale > 0:
        scale = float(np.abs(importance).mean()) if len(importance) else 0.0
    harm = importance / scale if scale > 0 else np.zeros_like(importance)
    return np.log(d / (1 - d)) - weight * harm


def _expected_precision(doubt: np.ndarray, order: np.ndarray) -> np.ndarray:
    """The mean doubt of the first rows of ``order`` at each of :data:`QUEUE_DEPTHS` (one row at
    least): the share of wrong labels expected there, the doubts being calibrated on gold rows."""
    n = len(doubt)
    return np.array([doubt[order[: max(1, int(depth * n))]].mean() for depth in QUEUE_DEPTHS])


def harm_weight(importance: np.ndarray, doubt: np.ndarray, *, tolerance: float = 0.01) -> float:
    """How much the row value may reorder the doubted rows: the largest of :data:`HARM_WEIGHTS`
    whose order (:func:`review_order`) keeps the expected precision (the mean doubt of its first
    rows) within ``tolerance`` of that of the doubt order, at every depth of :data:`QUEUE_DEPTHS`.

    No truth is used: the doubts are probabilities fitted on gold rows. Where many rows are
    about equally doubted (many random mistakes), the most harmful of them come first; where the
    doubts fall off quickly, the row value barely moves them."""
    importance, doubt = _checked(importance, doubt)
    if len(doubt) == 0:
        return 0.0
    best = _expected_precision(doubt, np.argsort(-doubt, kind="stable"))
    chosen = 0.0
    for weight in HARM_WEIGHTS:
        order = np.lexsort((importance, -_scores(importance, doubt, weight)))
        if (_expected_precision(doubt, order) >= best - tolerance).all():
            chosen = weight
    return chosen


def _checked(importance, doubt) -> tuple[np.ndarray, np.ndarray]:
    importance = np.asarray(importance, dtype=float)
    doubt = np.asarray(doubt, dtype=float)
    if doubt.shape != importance.shape:
        raise ValueError(f"doubt: {len(doubt)} rows; expected {len(importance)}, one per row of importance")
    if not (np.isfinite(doubt).all() and np.isfinite(importance).all()):
        raise ValueError("importance and doubt: NaN or infinite values; expected finite numbers")
    return importance, doubt


def review_order(
    importance: np.ndarray,
    doubt: np.ndarray | None = None,
    *,
    weight: float | None = None,
    tolerance: float = 0.01,
) -> np.ndarray:
    """The order in which to inspect training rows, most worth inspecting first.

    ``doubt`` is each row's probability that its label is wrong, from every signal combined
    (:func:`dcai_assets.core.label_doubt.fit_label_doubt`); ``importance`` its row value
    (negative: it hurts the model on the holdout). Rows are ranked by logit(doubt) - ``weight`` x
    importance / median |importance|: the doubt first, and among rows about equally doubted the
    most harmful first, since fixing a wrong label that hurts the model gains the most accuracy.
    ``weight`` None: chosen by :func:`harm_weight` (the row value may cost at most ``tolerance``
    of expected precision). Remaining ties go by importance, lowest first. Without ``doubt``, this
    is the importance order."""
    importance = np.asarray(importance, dtype=float)
    if doubt is None:
        return np.argsort(importance, kind="stable")
    importance, doubt = _checked(importance, doubt)
    if weight is None:
        weight = harm_weight(importance, doubt, tolerance=tolerance)
    return np.lexsort((importance, -_scores(importance, doubt, weight)))


def review_ranks(
    importance: np.ndarray,
    doubt: np.ndarray | None = None,
    *,
    exclude: np.ndarray | None = None,
    weight: float | None = None,
) -> np.ndarray:
    """Each row's place in the review queue (1 = inspect first, as ``review_order`` ranks them),
    NaN for the rows ``exclude`` marks (gold rows: hand-checked already), which are neither
    ranked nor compared with (nor used to choose the ``weight`` of the row value)."""
    importance = np.asarray(importance, dtype=float)
    n = len(importance)
    keep = np.ones(n, dtype=bool) if exclude is None else ~np.asarray(exclude, dtype=bool)
    if len(keep) != n:
        raise ValueError(f"exclude: {len(keep)} rows; expected {n}, one per row of importance")
    ranks = np.full(n, np.nan)
    rows = np.flatnonzero(keep)
    picked = None if doubt is None else np.asarray(doubt, dtype=float)[keep]
    ranks[rows[review_order(importance[keep], picked, weight=weight)]] = np.arange(1, len(rows) + 1)
    return ranks


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


@dataclass(frozen=True)
class LabelingFunctionReview:
    """The per-LF view of the labels a model was trained on.

    ``table`` has one row per LF, most harmful first (``rank`` 1), with columns:

    - ``lf``, ``polarity`` (the classes it votes), ``votes`` and ``coverage`` (rows it voted on);
    - ``disagreement``: the share of its votes the label model decided otherwise;
    - ``gold_votes``, ``gold_correct``, ``accuracy`` [``accuracy_low``, ``accuracy_high``]: its
      votes on gold rows, and their accuracy with a Wilson interval;
    - ``labels``: training rows without gold whose label is its vote (it set or shared it);
    - ``label_gold``, ``label_accuracy`` [``label_accuracy_low``, ``label_accuracy_high``]: the
      same on the gold rows where its vote was what the label model chose, i.e. how often the
      labels it sets are right;
    - ``wrong_labels`` [``wrong_labels_low``, ``wrong_labels_high``]: ``labels`` x (1 - label
      accuracy), the wrong labels it set (NaN without gold rows to judge);
    - ``others_accuracy``: the accuracy on gold rows of the labels the other LFs set (rows where
      its vote was not the label); ``excess_wrong_labels``: ``labels`` x (``others_accuracy`` -
      ``label_accuracy_high``), the wrong labels it set beyond what the others' accuracy gives,
      at least (negative: it is better than the rest; NaN with fewer than ``min_gold`` gold rows);
    - ``value_sum``, ``value_mean``, ``harmful_share``: the KNN-Shapley values of its ``labels``
      rows (summed, mean, share negative);
    - ``status``: ``ok``, or why a figure is missing or thin (``too few gold rows (n=...)``).

    ``ranked_by`` states the rule; ``warnings`` what weakens the whole table; ``gold_classes``
    how many classes the gold rows an LF voted on hold (0: none to judge by; 1: accuracies are
    measured on one class alone).
    """

    table: pd.DataFrame
    ranked_by: str
    warnings: tuple[str, ...]
    gold_classes: int = 0

    def markdown(self) -> str:
        """The table for the Dagster UI: counts next to every rate."""
        head = (
            "| rank | LF | polarity | coverage | disagrees with label model | acc. vs gold (n) "
            "| labels set | their acc. vs gold [interval] (n) | wrong labels [interval] "
            "| beyond the others' acc. | value sum | value mean | status |"
        )
        lines = [head, "|" + "---|" * 13]
        for r in self.table.itertuples(index=False):
            cells = [
                str(r.rank),
                f"`{r.lf}`",
                r.polarity or "-",
                f"{r.coverage:.1%} ({r.votes:,})",
                _pct(r.disagreement),
                f"{_pct(r.accuracy)} ({r.gold_votes})",
                f"{r.labels:,}",
                f"{_pct(r.label_accuracy)} [{_pct(r.label_accuracy_low)}, {_pct(r.label_accuracy_high)}] "
                f"({r.label_gold})",
                "-"
                if np.isnan(r.wrong_labels)
                else f"{r.wrong_labels:,.0f} [{r.wrong_labels_low:,.0f}, {r.wrong_labels_high:,.0f}]",
                "-" if np.isnan(r.excess_wrong_labels) else f"{r.excess_wrong_labels:+,.0f}",
                "-" if np.isnan(r.value_sum) else f"{r.value_sum:+.3g}",
                "-" if np.isnan(r.value_mean) else f"{r.value_mean:+.2e}",
                r.status,
            ]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)


def _pct(value: float) -> str:
    return "-" if np.isnan(value) else f"{value:.0%}"


def _class_indices(name: str, array: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """``array`` as int64 class indices, refused unless every value is an integer in -1..k-1."""
    k = len(classes)
    if array.dtype.kind == "b":
        raise TypeError(
            f"{name}: booleans; expected integer class indices of {list(classes)}, -1 where there is none"
        )
    if array.dtype.kind not in "iuf":
        raise TypeError(
            f"{name}: values of type {array.dtype}; expected integer class indices of {list(classes)}, "
            "-1 where there is none"
        )
    if array.dtype.kind == "f" and not (np.isfinite(array) & (array == np.round(array))).all():
        raise ValueError(f"{name}: non-integer or NaN values; expected class indices, -1 where there is none")
    if array.size and (array.min() < ABSTAIN or array.max() >= k):
        raise ValueError(
            f"{name}: values outside -1..{k - 1}; expected class indices of {list(classes)} or -1"
        )
    return array.astype(np.int64)


def wilson_interval(correct: int, total: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion (NaN, NaN without trials)."""
    if total <= 0:
        return np.nan, np.nan
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    p = correct / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * np.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)


def per_labeling_function(
    votes: np.ndarray,
    gold: np.ndarray,
    lf_label: np.ndarray,
    values: np.ndarray,
    *,
    names: Sequence[str],
    classes: Sequence[str],
    confidence: float = 0.95,
    min_gold: int = 10,
) -> LabelingFunctionReview:
    """Which labeling function put the most wrong labels into the training set.

    Parameters
    ----------
    votes : (n, m) class indices each LF voted, ``-1`` = abstain; rows of the model's training
        window and holdout.
    gold : (n,) the gold class index, ``-1`` where there is none.
    lf_label : (n,) the class the label model chose from the votes, ``-1`` where no LF voted.
    values : (n,) each training row's KNN-Shapley value; NaN for rows the model was not trained
        on (holdout rows).
    names, classes : the LFs (one per column of ``votes``) and the classes.
    confidence : level of the accuracy intervals.
    min_gold : fewer gold rows than this behind an LF's label accuracy flag it as thin, and
        leave its ``excess_wrong_labels`` undetermined (NaN).

    Ranking: by ``excess_wrong_labels``, the wrong labels an LF set beyond what the labels the
    other LFs set would have had at their accuracy: its labels x (``others_accuracy`` - the upper
    bound of its label accuracy), most first; an LF with fewer than ``min_gold`` gold rows to judge
    counts as 0 (after those shown to be worse than the rest, before those shown not to be), and ties go by
    ``value_sum``, lowest first. Beyond the others, not the count alone, since a large accurate LF sets many
    wrong labels just by being large; the upper bound, not the point estimate, so that an LF with
    two unlucky gold rows is not named first; the summed value, not the mean, because a careless
    LF harms through many rows, each a little, while an accurate LF in a hard region has low
    values whatever its labels.
    """
    votes = np.asarray(votes)
    if votes.ndim != 2:
        raise ValueError(f"votes: {votes.ndim} dimensions; expected a (rows x LFs) matrix")
    n, m = votes.shape
    arrays = {"gold": gold, "lf_label": lf_label, "values": values}
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    for key, array in arrays.items():
        if array.shape != (n,):
            raise ValueError(f"{key}: {len(array)} rows; expected {n}, one per row of votes")
    if len(names) != m:
        raise ValueError(f"names: {len(names)} names; expected {m}, one per column of votes")
    votes = _class_indices("votes", votes, classes)
    gold = _class_indices("gold", arrays["gold"], classes)
    lf_label = _class_indices("lf_label", arrays["lf_label"], classes)
    values = arrays["values"].astype(float)
    has_gold = gold != ABSTAIN
    trained = np.isfinite(values)
    set_and_judged = has_gold & (lf_label != ABSTAIN)  # gold rows with a label from the LFs
    context = _Judged(gold, lf_label, values, has_gold, trained, set_and_judged)
    records = [
        _lf_record(name, votes[:, j], context, classes, confidence=confidence, min_gold=min_gold)
        for j, name in enumerate(names)
    ]
    table = pd.DataFrame(records)
    key = table.assign(
        _wrong=-table["excess_wrong_labels"].fillna(0.0), _value=table["value_sum"].fillna(np.inf)
    )
    table = table.loc[key.sort_values(["_wrong", "_value"], kind="stable").index].reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, m + 1))
    judged_classes = np.unique(gold[has_gold & (votes != ABSTAIN).any(axis=1)])
    warnings = _review_warnings(votes, gold, has_gold, judged_classes, classes)
    rule = (
        "wrong labels each LF set beyond the other LFs' accuracy, at least: its labels x (accuracy of "
        f"the others' labels on gold rows - the upper {confidence:.0%} bound of its own), most first; "
        "ties by the summed value of its rows, lowest first"
    )
    return LabelingFunctionReview(
        table=table, ranked_by=rule, warnings=tuple(warnings), gold_classes=len(judged_classes)
    )


@dataclass(frozen=True)
class _Judged:
    """The per-row arrays every LF's record is measured against (see :func:`per_labeling_function`)."""

    gold: np.ndarray
    lf_label: np.ndarray
    values: np.ndarray
    has_gold: np.ndarray
    trained: np.ndarray
    set_and_judged: np.ndarray


def _lf_record(
    name: str, vote: np.ndarray, j: _Judged, classes: Sequence[str], *, confidence: float, min_gold: int
) -> dict:
    """One LF's row of the per-LF table."""
    gold, lf_label, values, has_gold = j.gold, j.lf_label, j.values, j.has_gold
    trained, set_and_judged, n = j.trained, j.set_and_judged, len(vote)
    voted = vote != ABSTAIN
    chosen = vote == lf_label
    decided = voted & (lf_label != ABSTAIN)
    judged = voted & has_gold
    label_judged = judged & chosen
    labeled = voted & chosen & ~has_gold & trained
    correct = int((vote[judged] == gold[judged]).sum())
    label_correct = int((vote[label_judged] == gold[label_judged]).sum())
    label_gold = int(label_judged.sum())
    acc_low, acc_high = wilson_interval(correct, int(judged.sum()), confidence)
    lab_low, lab_high = wilson_interval(label_correct, label_gold, confidence)
    label_accuracy = label_correct / label_gold if label_gold else np.nan
    others = set_and_judged & ~(voted & chosen)
    others_accuracy = float((lf_label[others] == gold[others]).mean()) if others.any() else np.nan
    labels = int(labeled.sum())
    own = values[labeled]
    if not labels:
        status = "sets no training label"
    elif not label_gold:
        status = "no gold rows where its vote was the label"
    elif label_gold < min_gold:
        status = f"too few gold rows (n={label_gold} < {min_gold}): accuracy uncertain"
    else:
        status = "ok"
    return {
        "lf": name,
        "polarity": ", ".join(str(classes[c]) for c in np.unique(vote[voted])),
        "votes": int(voted.sum()),
        "coverage": float(voted.mean()) if n else np.nan,
        "disagreement": float((vote[decided] != lf_label[decided]).mean()) if decided.any() else np.nan,
        "gold_votes": int(judged.sum()),
        "gold_correct": correct,
        "accuracy": correct / judged.sum() if judged.any() else np.nan,
        "accuracy_low": acc_low,
        "accuracy_high": acc_high,
        "labels": labels,
        "label_gold": label_gold,
        "label_accuracy": label_accuracy,
        "label_accuracy_low": lab_low,
        "label_accuracy_high": lab_high,
        "wrong_labels": labels * (1 - label_accuracy),
        "wrong_labels_low": float(np.floor(labels * (1 - lab_high))) if label_gold else np.nan,
        "wrong_labels_high": float(np.ceil(labels * (1 - lab_low))) if label_gold else np.nan,
        "others_accuracy": others_accuracy,
        # Too few gold rows: the upper bound is near 1, which would read as "better than
        # the rest"; such an LF is ranked like one without gold (status says why).
        "excess_wrong_labels": labels * (others_accuracy - lab_high)
        if label_gold >= max(min_gold, 1)
        else np.nan,
        "value_sum": float(own.sum()) if labels else np.nan,
        "value_mean": float(own.mean()) if labels else np.nan,
        "harmful_share": float((own < 0).mean()) if labels else np.nan,
        "status": status,
    }


def _review_warnings(
    votes: np.ndarray,
    gold: np.ndarray,
    has_gold: np.ndarray,
    judged_classes: np.ndarray,
    classes: Sequence[str],
) -> list[str]:
    """What weakens the whole per-LF table: no gold rows to judge by, or gold of one class."""
    warnings = []
    if not (has_gold & (votes != ABSTAIN).any(axis=1)).any():
        warnings.append(
            "no gold rows where an LF voted: accuracies and wrong labels are unknown, so the LFs are "
            "ranked by the summed value of the rows they labeled alone. Add gold labels"
        )
    elif len(judged_classes) == 1:
        only = classes[int(judged_classes[0])]
        warnings.append(
            f"every gold row an LF voted on is `{only}`: accuracies are measured on that class alone, "
            "and an LF voting another class reads as always wrong. Add gold rows of the other classes"
        )
    return warnings


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
