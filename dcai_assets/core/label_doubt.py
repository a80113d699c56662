"""How likely each training label is wrong, from every signal the pipeline has about it, combined
by weights fitted on the gold rows (never on the errors a benchmark plants).

Each signal says how much it supports each class of each row (:class:`LabelEvidence`):

- ``model``: the user's model, out of fold (a row's probability comes from a fit without it);
- ``gold_model``: the same pipeline fitted on the gold rows alone (out of fold on the gold rows):
  it never saw an LF's systematic mistake;
- ``label_model``: the label model's posterior from the LF votes;
- ``lf_votes``: the share of the row's LF votes for the class (LF disagreement);
- ``lf_source``: how accurate, on gold rows, are the labels set by the best LF voting the class
  (the label source); 0.5 where no LF votes it.

:func:`fit_label_doubt` fits one weight per signal on the gold rows: every (gold row, class) pair
is an example, the class being the gold label or not, so the weights say how far each signal is
to be trusted to name the right class; a random flip and a careless LF's systematic mistake are
both "a class other than the true one" and need no planted example. The row's support for a class
is the softmax over classes of the weighted signals (:meth:`LabelDoubt.support`); its doubt is
1 - the support of its label. The row value (KNN-Shapley) is not a weight here: a gold row's value
is that of its gold label only, so the value of a wrong label cannot be fitted on gold rows; the
review order uses it to put the most harmful first among rows about equally doubted, as far as
that costs at most a point of expected precision (:func:`dcai_assets.core.review.harm_weight`),
and to flag harmful rows whose label looks right (:func:`dcai_assets.core.review.review_order`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dcai_assets.core.labeling import ABSTAIN

SIGNALS = ("model", "gold_model", "label_model", "lf_votes", "lf_source")
_CLIP = 1e-6  # probabilities are clipped to [_CLIP, 1 - _CLIP] before the logit


@dataclass(frozen=True)
class LabelEvidence:
    """Per row, what each signal says about each class; any signal may be None (not available).

    Parameters
    ----------
    classes : the class names, in the column order of every ``(n, k)`` array.
    model, gold_model, label_model : (n, k) probabilities of each class.
    votes : (n, m) the LF votes as class indices, -1 = abstain.
    lf_accuracy : (m,) the accuracy on gold rows of the labels each LF set (NaN: unknown); used
        with ``votes`` for the ``lf_source`` signal.
    """

    classes: tuple[str, ...]
    model: np.ndarray | None = None
    gold_model: np.ndarray | None = None
    label_model: np.ndarray | None = None
    votes: np.ndarray | None = None
    lf_accuracy: np.ndarray | None = None

    def __post_init__(self) -> None:
        classes = tuple(str(c) for c in self.classes)
        if len(classes) < 2 or len(set(classes)) != len(classes):
            raise ValueError(f"classes: {list(classes)}; expected two or more distinct class names")
        object.__setattr__(self, "classes", classes)
        k, rows = len(classes), None
        for name in ("model", "gold_model", "label_model"):
            array = getattr(self, name)
            if array is None:
                continue
            array = _float_array(name, array)
            if array.ndim != 2 or array.shape[1] != k:
                raise ValueError(f"{name}: shape {array.shape}; expected (rows, {k}), one column per class")
            if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
                raise ValueError(f"{name}: NaN, infinite or outside 0..1; expected class probabilities")
            rows = _same_rows(name, array, rows)
            object.__setattr__(self, name, array)
        if (self.votes is None) != (self.lf_accuracy is None):
            raise ValueError(
                "votes and lf_accuracy: expected both (the LF votes and each LF's accuracy) or neither"
            )
        if self.votes is not None:
            votes = np.asarray(self.votes)
            if votes.ndim != 2 or votes.dtype.kind not in "iu":
                raise TypeError(
                    f"votes: {votes.dtype} of shape {votes.shape}; expected a (rows, LFs) integer matrix"
                )
            if votes.size and (votes.min() < ABSTAIN or votes.max() >= k):
                raise ValueError(
                    f"votes: values outside -1..{k - 1}; expected class indices of {list(classes)}"
                )
            accuracy = _float_array("lf_accuracy", self.lf_accuracy)
            if accuracy.shape != (votes.shape[1],):
                raise ValueError(
                    f"lf_accuracy: shape {accuracy.shape}; expected ({votes.shape[1]},), one per LF"
                )
            finite = accuracy[np.isfinite(accuracy)]
            if np.isinf(accuracy).any() or (finite.size and (finite.min() < 0 or finite.max() > 1)):
                raise ValueError("lf_accuracy: infinite or outside 0..1; expected accuracies (NaN: unknown)")
            rows = _same_rows("votes", votes, rows)
            object.__setattr__(self, "votes", votes.astype(np.int64))
            object.__setattr__(self, "lf_accuracy", accuracy)
        if rows is None:
            raise ValueError("LabelEvidence: no signal given; expected at least one of " + ", ".join(SIGNALS))

    def take(self, rows: np.ndarray) -> LabelEvidence:
        """The evidence of ``rows`` only (indices)."""
        pick = {
            n: None if getattr(self, n) is None else getattr(self, n)[rows]
            for n in ("model", "gold_model", "label_model", "votes")
        }
        return LabelEvidence(self.classes, lf_accuracy=self.lf_accuracy, **pick)

    @property
    def rows(self) -> int:
        first = next(a for a in (self.model, self.gold_model, self.label_model, self.votes) if a is not None)
        return len(first)

    @property
    def available(self) -> tuple[str, ...]:
        """The signals given, in :data:`SIGNALS` order."""
        have = {
            "model": self.model is not None,
            "gold_model": self.gold_model is not None,
            "label_model": self.label_model is not None,
            "lf_votes": self.votes is not None,
            "lf_source": self.votes is not None,
        }
        return tuple(s for s in SIGNALS if have[s])

    def features(self) -> np.ndarray:
        """(n, k, signals) each signal's support of each class, on a log-odds scale."""
        columns = []
        for name in ("model", "gold_model", "label_model"):
            array = getattr(self, name)
            if array is not None:
                columns.append(_logit(array))
        if self.votes is not None:
            columns += [_logit(self._vote_share()), _logit(self.source_accuracy())]
        return np.stack(columns, axis=2)

    def _vote_share(self) -> np.ndarray:
        """Share of each row's LF votes for each class, smoothed (one vote spread over the classes)."""
        k = len(self.classes)
        counts = np.stack([(self.votes == c).sum(axis=1) for c in range(k)], axis=1).astype(float)
        return (counts + 1.0 / k) / (counts.sum(axis=1, keepdims=True) + 1.0)

    def source_accuracy(self) -> np.ndarray:
        """Per row and class, the accuracy of the best LF voting that class; 0.5 where none does or
        its accuracy is unknown."""
        accuracy = np.where(np.isfinite(self.lf_accuracy), self.lf_accuracy, 0.5)
        if self.votes.shape[1] == 0:
            return np.full((self.rows, len(self.classes)), 0.5)
        best = np.stack(
            [
                np.where(self.votes == c, accuracy[None, :], -np.inf).max(axis=1)
                for c in range(len(self.classes))
            ],
            axis=1,
        )
        return np.where(np.isfinite(best), best, 0.5)


@dataclass(frozen=True)
class LabelDoubt:
    """The fitted combination: one non-negative weight per available signal.

    ``fitted_on`` (gold rows) and ``status`` say how the weights were set: fitted, or equal
    weights and why."""

    signals: tuple[str, ...]
    weights: np.ndarray
    fitted_on: int
    status: str

    def support(self, evidence: LabelEvidence) -> np.ndarray:
        """(n, k) each class's probability of being the row's true label."""
        if evidence.available != self.signals:
            raise ValueError(
                f"evidence: signals {list(evidence.available)}; expected {list(self.signals)}, those fitted"
            )
        score = evidence.features() @ self.weights
        score -= score.max(axis=1, keepdims=True)
        e = np.exp(score)
        return e / e.sum(axis=1, keepdims=True)

    def contributions(self, evidence: LabelEvidence, labels: np.ndarray, other: np.ndarray) -> np.ndarray:
        """(n, signals) how much each signal favours class ``other`` over the row's ``labels``
        (class indices), weighted: the largest is the signal that most doubts the label."""
        x = evidence.features()
        rows = np.arange(len(labels))
        return (x[rows, other, :] - x[rows, labels, :]) * self.weights

    def describe(self) -> str:
        weights = ", ".join(f"{s} {w:.2f}" for s, w in zip(self.signals, self.weights, strict=True))
        return f"{self.status}; weights: {weights}"


def fit_label_doubt(
    evidence: LabelEvidence, gold: np.ndarray, *, min_gold: int = 30, regularization: float = 1.0
) -> LabelDoubt:
    """Fit the signals' weights on the rows with a gold label (``gold``: class index, -1 = none).

    A logistic regression over every (gold row, class) pair, the target being "this class is the
    gold label", without intercept: the softmax over a row's classes of the weighted signals is
    then a conditional logit. Weights are kept non-negative (a signal that seems to point the
    wrong way on gold rows, through its correlation with the others, is dropped and the rest
    refitted). With fewer than ``min_gold`` gold rows, or gold rows of one class, every signal
    gets weight 1 and ``status`` says why."""
    from sklearn.linear_model import LogisticRegression

    n, k = evidence.rows, len(evidence.classes)
    gold = np.asarray(gold)
    if gold.shape != (n,):
        raise ValueError(f"gold: shape {gold.shape}; expected ({n},), one per row of the evidence")
    if gold.dtype.kind not in "iu":
        raise TypeError(f"gold: {gold.dtype}; expected integer class indices, -1 where there is none")
    if gold.size and (gold.min() < ABSTAIN or gold.max() >= k):
        raise ValueError(
            f"gold: values outside -1..{k - 1}; expected class indices of {list(evidence.classes)}"
        )
    signals = evidence.available
    has = gold != ABSTAIN
    gold_classes = len(np.unique(gold[has]))
    if has.sum() < min_gold or gold_classes < 2:
        why = f"{int(has.sum())} gold rows of {gold_classes} class(es), expected at least {min_gold} of two"
        return LabelDoubt(signals, np.ones(len(signals)), int(has.sum()), f"equal weights: {why}")
    x = evidence.features()[has].reshape(-1, len(signals))
    y = (np.arange(k)[None, :] == gold[has][:, None]).reshape(-1)
    keep = np.ones(len(signals), dtype=bool)
    weights = np.zeros(len(signals))
    while keep.any():
        fit = LogisticRegression(C=regularization, fit_intercept=False, max_iter=1000)
        fit.fit(x[:, keep], y)
        weights[:] = 0.0
        weights[keep] = fit.coef_[0]
        if (weights >= 0).all():
            break
        keep &= weights > 0
    if not keep.any():
        return LabelDoubt(
            signals,
            np.ones(len(signals)),
            int(has.sum()),
            "equal weights: no signal supports the gold labels",
        )
    dropped = [s for s, kept in zip(signals, keep, strict=True) if not kept]
    status = f"fitted on {int(has.sum())} gold rows"
    if dropped:
        status += f" (dropped, weight <= 0: {', '.join(dropped)})"
    return LabelDoubt(signals, weights, int(has.sum()), status)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _CLIP, 1 - _CLIP)
    return np.log(p / (1 - p))


def _float_array(name: str, array) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype.kind not in "iuf" or array.dtype.kind == "b":
        raise TypeError(f"{name}: values of type {array.dtype}; expected numbers")
    return array.astype(float)


def _same_rows(name: str, array: np.ndarray, rows: int | None) -> int:
    if rows is not None and len(array) != rows:
        raise ValueError(f"{name}: {len(array)} rows; expected {rows}, as the other signals")
    return len(array)


def class_indices(labels: Sequence[str], classes: Sequence[str], *, name: str = "labels") -> np.ndarray:
    """``labels`` (class names) as indices into ``classes``; ValueError naming unknown ones."""
    index = {str(c): i for i, c in enumerate(classes)}
    out = np.array([index.get(str(v), -1) for v in labels], dtype=np.int64)
    if (out < 0).any():
        unknown = sorted({str(v) for v in labels if str(v) not in index})
        raise ValueError(f"{name}: {unknown[:10]} are not among the classes {list(index)}")
    return out
