"""Label models: turn noisy, overlapping LF votes into probabilistic labels.

``LabelModel`` estimates each LF's accuracy and the class balance without gold labels, by EM on
the Dawid–Skene latent-class model: every LF's vote, abstain included, is a categorical draw
given the true class (``P(vote | class)``), so one-sided LFs that only ever vote one class are
modelled as they are. Labels are predicted by the same model's posterior (log class prior plus
each LF's ``log P(vote | class)``, its abstain included), not by a vote weighted by each LF's
accuracy: an accuracy is the share of an LF's votes that are right, which mixes the class
balance into it, so a one-sided LF for a rare class (right on 30% of its votes but 10 times
likelier to fire on its class than on another) got a negative weight and voted against its own
class, and with more than two classes the one-number accuracy also assumed an LF's errors fall
evenly on the other classes. Where gold labels exist, they are clamped during EM and shrink each
LF's ``P(vote | class)``, its accuracy and the class balance towards what the gold rows show.
E- and M-steps are numba kernels (:mod:`dcai_assets.core._label_model_kernels`, imported when a
model is fitted or applied), linear in the size of the label matrix.

``MajorityVote`` is the baseline with the same API.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dcai_assets.core.labeling import ABSTAIN
from dcai_assets.core.validation import check_int, check_integer_array

_EPS = 1e-4


def _check_cardinality(cardinality: int) -> None:
    if isinstance(cardinality, bool | np.bool_) or not isinstance(cardinality, int | np.integer):
        raise TypeError(f"cardinality: expected an integer number of classes, got {cardinality!r}")
    if cardinality < 2:
        raise ValueError(f"cardinality: {cardinality}; expected at least 2 classes")


def _check_matrix(L: np.ndarray, cardinality: int) -> np.ndarray:
    L = check_integer_array(L, "L", "votes: ABSTAIN (-1) or a class index")
    if L.ndim != 2:
        raise ValueError(f"L: expected a 2-D label matrix (rows x LFs), got shape {L.shape}")
    if L.size and (L.min() < ABSTAIN or L.max() >= cardinality):
        raise ValueError(
            f"L: votes range {L.min()}..{L.max()}; expected ABSTAIN (-1) or 0..{cardinality - 1}"
        )
    return np.ascontiguousarray(L, dtype=np.int8)


def _check_gold(gold: np.ndarray | None, n: int, cardinality: int) -> np.ndarray:
    if gold is None:
        return np.full(n, ABSTAIN, dtype=np.int64)
    gold = check_integer_array(gold, "gold", "labels: -1 where unknown, else a class index").astype(np.int64)
    if gold.shape != (n,):
        raise ValueError(f"gold: expected {n} entries (one per row, -1 where unknown), got {gold.shape}")
    if gold.size and (gold.min() < ABSTAIN or gold.max() >= cardinality):
        raise ValueError(
            f"gold: labels range {gold.min()}..{gold.max()}; expected -1 or 0..{cardinality - 1}"
        )
    return gold


class MajorityVote:
    """The baseline: each row's most voted class (ties split evenly); rows with no vote get the
    uniform distribution."""

    def __init__(self, cardinality: int = 2) -> None:
        _check_cardinality(cardinality)
        self.cardinality = cardinality

    def to_frame(self, lf_names: list[str], classes: list[str]) -> pd.DataFrame:
        rows = [{"kind": "class_balance", "name": c, "value": 1.0 / len(classes)} for c in classes]
        rows += [{"kind": "lf_accuracy", "name": n, "value": np.nan} for n in lf_names]
        rows.append({"kind": "fit", "name": "majority_vote", "value": 1.0})
        return pd.DataFrame(rows)

    def fit(self, L: np.ndarray, gold: np.ndarray | None = None) -> MajorityVote:
        _check_gold(gold, _check_matrix(L, self.cardinality).shape[0], self.cardinality)
        return self

    def predict_proba(self, L: np.ndarray) -> np.ndarray:
        L = _check_matrix(L, self.cardinality)
        counts = np.zeros((L.shape[0], self.cardinality))
        for y in range(self.cardinality):
            counts[:, y] = (y == L).sum(axis=1)
        top = counts.max(axis=1, keepdims=True)
        winners = (counts == top).astype(float)
        return winners / winners.sum(axis=1, keepdims=True)

    def predict(self, L: np.ndarray) -> np.ndarray:
        return self.predict_proba(L).argmax(axis=1)


class LabelModel:
    """Dawid–Skene label model fitted by EM, predicting by its posterior (see the module docstring).

    Parameters
    ----------
    cardinality : number of classes (>= 2).
    max_iter, tol : EM stops when the mean log-likelihood improves by less than ``tol``.
    smoothing : Dirichlet pseudo-count on P(vote | class) (keeps estimates off 0 and 1).
    gold_strength : how many gold votes the unsupervised estimate of an accuracy is worth.
    seed : breaks ties in the initial majority vote reproducibly.

    Attributes (after ``fit``)
    ----------
    accuracies_ : (m,) accuracy of each LF, P(right | voted) (shrunk towards gold if any).
    unsupervised_accuracies_ : (m,) the accuracies EM estimated (gold rows clamped, no shrinkage).
    vote_given_class_ : (m, k+1, k) P(vote | class), vote index 0 = abstain, used for prediction
        (shrunk towards gold if any).
    class_balance_ : (k,) estimated class prior.
    converged_, n_iter_, log_likelihood_.

    Examples
    --------
    Votes of three LFs on six rows (``-1`` abstains):

    >>> L = np.array([[0, 0, -1], [1, 1, 1], [1, -1, 0], [0, 0, 0], [1, 1, -1], [-1, 0, 0]])
    >>> model = LabelModel(cardinality=2).fit(L)
    >>> model.predict(L).tolist()
    [0, 1, 1, 0, 1, 0]
    >>> model.predict_proba(L).shape
    (6, 2)
    >>> model.accuracies_.round(2).tolist()
    [0.67, 0.7, 0.63]
    """

    def __init__(
        self,
        cardinality: int = 2,
        *,
        max_iter: int = 500,
        tol: float = 1e-6,
        smoothing: float = 1.0,
        gold_strength: float = 20.0,
        seed: int = 0,
    ) -> None:
        _check_cardinality(cardinality)
        check_int(max_iter, "max_iter", minimum=1)
        self.cardinality = cardinality
        self.max_iter = max_iter
        self.tol = tol
        self.smoothing = smoothing
        self.gold_strength = gold_strength
        self.seed = seed

    def fit(self, L: np.ndarray, gold: np.ndarray | None = None) -> LabelModel:
        """Estimate LF accuracies and the class balance from the label matrix ``L`` (n x m), with
        optional gold labels (``-1`` where unknown)."""
        L = _check_matrix(L, self.cardinality)
        n, m = L.shape
        gold = _check_gold(gold, n, self.cardinality)
        k = self.cardinality
        # Start from the majority vote (ties broken by the seed), clamped to gold where known.
        rng = np.random.default_rng(self.seed)
        q = MajorityVote(k).predict_proba(L)
        q = q + rng.uniform(0, 1e-6, q.shape)
        q /= q.sum(axis=1, keepdims=True)
        known = gold >= 0
        q[known] = np.eye(k)[gold[known]]
        log_theta = np.empty((m, k + 1, k))
        LT = np.ascontiguousarray(L.T)
        previous = -np.inf
        self.converged_ = False
        self.n_iter_ = 0
        ll = -np.inf
        prior = np.full(k, 1.0 / k)
        from dcai_assets.core import _label_model_kernels as kernels  # numba: imported when used

        for it in range(1, self.max_iter + 1):
            kernels._ds_m_step(LT, q, self.smoothing, log_theta)
            prior = (q.sum(axis=0) + self.smoothing) / (n + k * self.smoothing)
            ll = kernels._ds_e_step(L, log_theta, np.log(prior), gold, q) / max(n, 1)
            self.n_iter_ = it
            if not np.isfinite(ll):
                break
            if abs(ll - previous) < self.tol:
                self.converged_ = True
                break
            previous = ll
        theta = np.exp(log_theta)
        self.vote_given_class_ = theta
        self.log_likelihood_ = float(ll)
        self.unsupervised_accuracies_ = _accuracies(theta, prior)
        self.accuracies_ = self.unsupervised_accuracies_.copy()
        self.class_balance_ = prior
        if known.any():
            self._shrink_to_gold(L[known], gold[known])
        return self

    def _shrink_to_gold(self, L: np.ndarray, gold: np.ndarray) -> None:
        """Posterior mean of each LF's P(vote | class), accuracy and of the class balance given the
        gold rows, with the unsupervised estimate as a prior worth ``gold_strength`` votes (per
        LF and class for P(vote | class)): gold wins where it is ample."""
        tau, k = self.gold_strength, self.cardinality
        voted = L != ABSTAIN
        judged = voted.sum(axis=0)
        right = ((gold[:, None] == L) & voted).sum(axis=0)
        self.accuracies_ = (right + tau * self.unsupervised_accuracies_) / (judged + tau)
        counts = np.bincount(gold, minlength=k)
        self.class_balance_ = (counts + tau * self.class_balance_) / (counts.sum() + tau)
        seen = np.zeros_like(self.vote_given_class_)  # (m, k+1, k): gold rows per LF, vote and class
        for j in range(L.shape[1]):
            np.add.at(seen[j], (L[:, j].astype(np.int64) + 1, gold), 1.0)
        self.vote_given_class_ = (seen + tau * self.vote_given_class_) / (counts + tau)

    def predict_proba(self, L: np.ndarray) -> np.ndarray:
        """Posterior class probabilities (n x k) under the fitted model; a row without votes gets
        the class balance (no LF said anything about it)."""
        L = _check_matrix(L, self.cardinality)
        log_theta = np.log(np.clip(self.vote_given_class_, _EPS**2, 1.0))
        # The E-step of the fit, in numpy: one pass per LF keeps memory at n x k (no numba to
        # load in a labeling run, where this is the only numeric work).
        score = np.tile(np.log(self.class_balance_), (L.shape[0], 1))
        for j in range(L.shape[1]):
            score += log_theta[j, L[:, j] + 1, :]
        score -= score.max(axis=1, keepdims=True)
        q = np.exp(score)
        q /= q.sum(axis=1, keepdims=True)
        q[(L == ABSTAIN).all(axis=1)] = self.class_balance_
        return q

    def predict(self, L: np.ndarray) -> np.ndarray:
        return self.predict_proba(L).argmax(axis=1)

    # --- storage: a tidy table, readable in the UI and by pandas --------------------------------
    def to_frame(self, lf_names: list[str], classes: list[str]) -> pd.DataFrame:
        """Parameters as rows: one per LF (accuracy), one per class (prior) and one per LF, vote
        and class (``P(vote | class)``, named ``lf|vote|class``)."""
        rows = [
            {"kind": "lf_accuracy", "name": n, "value": float(a)}
            for n, a in zip(lf_names, self.accuracies_, strict=True)
        ]
        rows += [
            {"kind": "class_balance", "name": c, "value": float(p)}
            for c, p in zip(classes, self.class_balance_, strict=True)
        ]
        votes = ["abstain", *classes]
        rows += [
            {"kind": "vote_given_class", "name": f"{n}|{votes[v]}|{c}", "value": float(theta[v, y])}
            for n, theta in zip(lf_names, self.vote_given_class_, strict=True)
            for v in range(len(votes))
            for y, c in enumerate(classes)
        ]
        rows.append({"kind": "fit", "name": "majority_vote", "value": 0.0})
        rows.append({"kind": "fit", "name": "converged", "value": float(self.converged_)})
        rows.append({"kind": "fit", "name": "n_iter", "value": float(self.n_iter_)})
        return pd.DataFrame(rows)

    @classmethod
    def from_frame(
        cls, frame: pd.DataFrame, lf_names: list[str], classes: list[str]
    ) -> LabelModel | MajorityVote:
        """The model stored by ``to_frame``, checked against the current LFs and classes."""
        acc = frame[frame["kind"] == "lf_accuracy"].set_index("name")["value"]
        bal = frame[frame["kind"] == "class_balance"].set_index("name")["value"]
        if list(acc.index) != list(lf_names) or list(bal.index) != list(classes):
            raise ValueError(
                f"stored label model was fitted for LFs {list(acc.index)} and classes {list(bal.index)}; "
                f"expected LFs {lf_names} and classes {list(classes)}: re-materialize the label model"
            )
        fit = frame[frame["kind"] == "fit"].set_index("name")["value"]
        if fit.get("majority_vote", 0.0):
            return MajorityVote(len(classes))
        k, m = len(classes), len(lf_names)
        stored = frame[frame["kind"] == "vote_given_class"]
        votes = ["abstain", *classes]
        expected = [f"{n}|{v}|{c}" for n in lf_names for v in votes for c in classes]
        if list(stored["name"]) != expected:
            raise ValueError(
                f"stored label model has {len(stored)} P(vote | class) entries; expected {len(expected)} "
                f"({m} LFs x {k + 1} votes x {k} classes, named lf|vote|class; models stored before "
                "they were kept have none): re-materialize the label model"
            )
        theta = stored["value"].to_numpy(dtype=float)
        model = cls(cardinality=k)
        model.vote_given_class_ = theta.reshape(m, k + 1, k)
        model.accuracies_ = acc.to_numpy(dtype=float)
        model.class_balance_ = bal.to_numpy(dtype=float)
        model.converged_ = bool(fit.get("converged", 1.0))
        model.n_iter_ = int(fit.get("n_iter", 0))
        return model


def _accuracies(theta: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """P(vote is right | LF voted) of each LF, from P(vote | class) (m, k+1, k) and the prior."""
    right = np.einsum("y,jyy->j", prior, theta[:, 1:, :])
    cast = np.einsum("y,jy->j", prior, 1.0 - theta[:, 0, :])
    return right / np.maximum(cast, 1e-12)


def fit_label_model(
    L: np.ndarray,
    gold: np.ndarray | None,
    cardinality: int,
    *,
    kind: str = "dawid_skene",
    max_iter: int = 500,
    seed: int = 0,
) -> tuple[LabelModel | MajorityVote, str | None]:
    """Fit the chosen label model; if EM does not converge, fall back to majority vote.

    Returns the model and, on a fallback, the warning to show.

    Examples
    --------
    >>> L = np.array([[0, 0, -1], [1, 1, 1], [1, -1, 0], [0, 0, 0], [1, 1, -1], [-1, 0, 0]])
    >>> model, warning = fit_label_model(L, gold=None, cardinality=2)
    >>> type(model).__name__, warning
    ('LabelModel', None)
    >>> fit_label_model(L, None, 2, kind="majority_vote")[0].predict(L).tolist()
    [0, 1, 0, 0, 1, 0]
    """
    if kind not in ("dawid_skene", "majority_vote"):
        raise ValueError(f"kind: {kind!r}; expected 'dawid_skene' or 'majority_vote'")
    if kind == "majority_vote":
        return MajorityVote(cardinality).fit(L, gold), None
    model = LabelModel(cardinality, max_iter=max_iter, seed=seed).fit(L, gold)
    finite = np.isfinite(model.log_likelihood_) and np.isfinite(model.accuracies_).all()
    if model.converged_ and finite:
        return model, None
    why = "a non-finite likelihood" if not finite else f"no convergence in {model.n_iter_} EM iterations"
    return MajorityVote(cardinality), (
        f"label model stopped with {why}: falling back to majority vote. Raise max_iter, or check "
        "for LFs that always agree"
    )


@dataclass(frozen=True)
class SyntheticVotes:
    """LF votes with known truth, for benchmarks and tests."""

    L: np.ndarray
    y: np.ndarray
    accuracies: np.ndarray


def synthetic_votes(
    n: int,
    accuracies: np.ndarray,
    coverages: np.ndarray,
    class_balance: np.ndarray,
    *,
    copies: dict[int, tuple[int, float]] | None = None,
    seed: int = 0,
) -> SyntheticVotes:
    """Votes of conditionally independent LFs with the given accuracies and coverages.

    ``copies={j: (source, p)}`` makes LF j repeat LF ``source``'s vote with probability p
    (correlated LFs); its effective accuracy is returned in ``accuracies``.
    """
    rng = np.random.default_rng(seed)
    k = len(class_balance)
    m = len(accuracies)
    y = rng.choice(k, size=n, p=class_balance)
    L = np.full((n, m), ABSTAIN, dtype=np.int8)
    for j in range(m):
        voted = rng.random(n) < coverages[j]
        right = rng.random(n) < accuracies[j]
        wrong = (y + rng.integers(1, k, size=n)) % k
        L[voted, j] = np.where(right, y, wrong)[voted]
    effective = np.asarray(accuracies, dtype=float).copy()
    for j, (source, p) in (copies or {}).items():
        copy = (rng.random(n) < p) & (L[:, source] != ABSTAIN)
        L[copy, j] = L[copy, source]
        cast = L[:, j] != ABSTAIN
        effective[j] = float((L[cast, j] == y[cast]).mean())
    return SyntheticVotes(L=L, y=y, accuracies=effective)


def one_sided_votes(
    n: int,
    class_balance: np.ndarray,
    lfs: list[tuple[int, float, float]],
    *,
    seed: int = 0,
) -> SyntheticVotes:
    """Votes of one-sided LFs: ``lfs[j] = (c, hit, false_alarm)``, LF j votes class c with
    probability ``hit`` on rows of class c and ``false_alarm`` on the others, and abstains
    otherwise. ``accuracies`` holds each LF's share of right votes, measured."""
    rng = np.random.default_rng(seed)
    y = rng.choice(len(class_balance), size=n, p=class_balance)
    L = np.full((n, len(lfs)), ABSTAIN, dtype=np.int8)
    for j, (c, hit, false_alarm) in enumerate(lfs):
        fires = rng.random(n) < np.where(y == c, hit, false_alarm)
        L[fires, j] = c
    accuracies = np.array([(y[L[:, j] != ABSTAIN] == c).mean() for j, (c, _, _) in enumerate(lfs)])
    return SyntheticVotes(L=L, y=y, accuracies=accuracies)
