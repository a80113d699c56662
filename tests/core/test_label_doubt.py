"""Every signal about a label combined into the probability it is wrong, weights fitted on gold rows."""

from __future__ import annotations

import numpy as np
import pytest

from dcai_assets.core.label_doubt import LabelEvidence, fit_label_doubt

CLASSES = ("no", "yes")


def two_noisy_views(n: int = 6000, gold_share: float = 0.2, seed: int = 0) -> dict:
    """Two-class rows, 15% of labels wrong, and two signals that each see the truth through their
    own independent noise (as a model of gold rows and the LF votes do), plus a third signal that
    is pure noise."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n)
    wrong = rng.random(n) < 0.15
    labels = np.where(wrong, 1 - truth, truth)

    def view(noise: float) -> np.ndarray:
        p_yes = 1 / (1 + np.exp(-((2 * truth - 1) * 1.5 + rng.normal(0, noise, n))))
        return np.column_stack([1 - p_yes, p_yes])

    gold = np.where(rng.random(n) < gold_share, truth, -1)
    noise = rng.random(n)
    return {
        "truth": truth,
        "labels": labels,
        "wrong": wrong,
        "gold": gold,
        "a": view(2.0),
        "b": view(2.0),
        "noise": np.column_stack([1 - noise, noise]),
    }


def doubt_of(evidence: LabelEvidence, combination, labels: np.ndarray) -> np.ndarray:
    return 1 - combination.support(evidence)[np.arange(len(labels)), labels]


def precision_at(doubt: np.ndarray, wrong: np.ndarray, rows: np.ndarray, share: float = 0.1) -> float:
    top = rows[np.argsort(-doubt[rows], kind="stable")][: int(share * len(rows))]
    return float(wrong[top].mean())


def test_the_combination_finds_wrong_labels_more_precisely_than_either_signal_alone():
    d = two_noisy_views()
    evidence = LabelEvidence(CLASSES, model=d["a"], gold_model=d["b"], label_model=d["noise"])
    combination = fit_label_doubt(evidence, d["gold"])
    candidates = np.flatnonzero(d["gold"] < 0)
    rows = np.arange(len(d["labels"]))
    combined = precision_at(doubt_of(evidence, combination, d["labels"]), d["wrong"], candidates)
    singles = [precision_at(1 - d[s][rows, d["labels"]], d["wrong"], candidates) for s in ("a", "b")]
    assert combined > max(singles) + 0.03
    weights = dict(zip(combination.signals, combination.weights, strict=True))
    assert weights["label_model"] < 0.2 * min(weights["model"], weights["gold_model"])  # the noise


def test_the_weights_are_fitted_on_gold_rows_alone_not_on_the_rows_to_review():
    d = two_noisy_views()
    evidence = LabelEvidence(CLASSES, model=d["a"], gold_model=d["b"])
    scrambled_a = d["a"].copy()
    non_gold = d["gold"] < 0
    scrambled_a[non_gold] = scrambled_a[non_gold][::-1]  # the rows to review say anything
    scrambled = LabelEvidence(CLASSES, model=scrambled_a, gold_model=d["b"])
    assert np.allclose(
        fit_label_doubt(evidence, d["gold"]).weights, fit_label_doubt(scrambled, d["gold"]).weights
    )
    assert fit_label_doubt(evidence, d["gold"]).fitted_on == int((d["gold"] >= 0).sum())


def test_a_row_doubted_by_one_signal_alone_still_ranks_above_rows_no_signal_doubts():
    d = two_noisy_views()
    rows = np.array([[0.9, 0.1], [0.9, 0.1], [0.9, 0.1]])
    a = np.vstack([d["a"], rows])
    b = np.vstack([d["b"], [[0.9, 0.1], [0.02, 0.98], [0.9, 0.1]]])  # row 1: only b doubts "no"
    votes = np.vstack([np.full((len(d["a"]), 1), -1), [[-1], [-1], [-1]]])
    evidence = LabelEvidence(CLASSES, model=a, gold_model=b, votes=votes, lf_accuracy=np.array([np.nan]))
    combination = fit_label_doubt(evidence, np.concatenate([d["gold"], [-1, -1, -1]]))
    doubt = doubt_of(evidence, combination, np.concatenate([d["labels"], [0, 0, 0]]))[-3:]
    assert doubt[1] > doubt[0] and doubt[1] > doubt[2]


def test_a_signal_that_points_the_wrong_way_on_gold_rows_gets_no_weight():
    d = two_noisy_views()
    contrary = d["b"][:, ::-1]  # says the opposite of a fair view
    evidence = LabelEvidence(CLASSES, model=d["a"], gold_model=contrary)
    combination = fit_label_doubt(evidence, d["gold"])
    assert (combination.weights >= 0).all()
    assert combination.weights[combination.signals.index("gold_model")] == 0
    assert "dropped" in combination.status and "gold_model" in combination.status


def test_three_classes_get_a_support_that_sums_to_one_and_names_the_backed_class():
    rng = np.random.default_rng(1)
    n = 3000
    truth = rng.integers(0, 3, n)
    onehot = np.eye(3)[truth]
    model = 0.6 * onehot + 0.4 * rng.dirichlet(np.ones(3), n)
    votes = np.where(rng.random((n, 2)) < 0.8, truth[:, None], -1)
    gold = np.where(rng.random(n) < 0.3, truth, -1)
    evidence = LabelEvidence(
        ("sun", "rain", "fog"), model=model, votes=votes, lf_accuracy=np.array([0.9, 0.8])
    )
    combination = fit_label_doubt(evidence, gold)
    support = combination.support(evidence)
    assert np.allclose(support.sum(axis=1), 1)
    assert (support.argmax(axis=1) == truth).mean() > 0.95


def test_gold_rows_of_one_class_fall_back_to_equal_weights_and_say_why():
    d = two_noisy_views()
    evidence = LabelEvidence(CLASSES, model=d["a"], gold_model=d["b"])
    one_class = np.where(d["gold"] == 1, 1, -1)
    combination = fit_label_doubt(evidence, one_class)
    assert combination.weights.tolist() == [1.0, 1.0]
    assert combination.status.startswith("equal weights") and "of 1 class(es)" in combination.status
    few = fit_label_doubt(evidence, np.where(np.arange(len(d["gold"])) < 10, d["truth"], -1), min_gold=30)
    assert few.status.startswith("equal weights: 10 gold rows")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"model": np.array([[0.5, np.nan]])}, ValueError, "model: NaN"),
        ({"model": np.array([[0.5, 1.5]])}, ValueError, "outside 0..1"),
        (
            {"gold_model": np.array([[0.5, 0.5, 0.0]])},
            ValueError,
            "gold_model: shape (1, 3); expected (rows, 2)",
        ),
        ({"label_model": np.array([["a", "b"]])}, TypeError, "label_model: values of type"),
        (
            {"model": np.full((2, 2), 0.5), "gold_model": np.full((3, 2), 0.5)},
            ValueError,
            "gold_model: 3 rows",
        ),
        (
            {"votes": np.array([[0, 2]]), "lf_accuracy": np.array([0.9, 0.9])},
            ValueError,
            "votes: values outside",
        ),
        ({"votes": np.array([[0.0, 1.0]]), "lf_accuracy": np.array([0.9, 0.9])}, TypeError, "votes: float64"),
        ({"votes": np.array([[0, 1]])}, ValueError, "votes and lf_accuracy"),
        (
            {"votes": np.array([[0, 1]]), "lf_accuracy": np.array([0.9])},
            ValueError,
            "lf_accuracy: shape (1,)",
        ),
        ({}, ValueError, "no signal given"),
    ],
)
def test_evidence_refuses_bad_signals_naming_the_argument(kwargs, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        LabelEvidence(CLASSES, **kwargs)


def test_gold_labels_that_are_not_class_indices_are_refused():
    evidence = LabelEvidence(CLASSES, model=np.full((3, 2), 0.5))
    with pytest.raises(TypeError, match="gold: float64"):
        fit_label_doubt(evidence, np.array([0.0, np.nan, 1.0]))
    with pytest.raises(ValueError, match=r"gold: values outside -1..1"):
        fit_label_doubt(evidence, np.array([0, 2, 1]))
    with pytest.raises(ValueError, match=r"gold: shape \(2,\)"):
        fit_label_doubt(evidence, np.array([0, 1]))


def test_one_class_is_refused_since_no_label_can_be_doubted_against_another():
    with pytest.raises(ValueError, match=r"classes: \['only'\]; expected two or more distinct class names"):
        LabelEvidence(("only",), model=np.ones((3, 1)))
