"""The review queue's order, its doubts about labels, and its suggested actions."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from dcai_assets.core.review import given_label_probability, review_order, suggested_actions


def test_without_doubts_the_queue_is_the_importance_order():
    importance = np.array([0.3, -0.2, 0.1, -0.5])
    assert review_order(importance).tolist() == [3, 1, 2, 0]


def test_a_row_doubted_by_either_signal_comes_before_rows_nobody_doubts():
    importance = np.array([0.1, 0.1, 0.1, 0.1])
    own = np.array([0.9, 0.1, 0.8, 0.7])  # row 1: the model doubts it
    trusted = np.array([0.9, 0.8, 0.05, 0.7])  # row 2: only the gold model doubts it
    order = review_order(importance, own, trusted)
    assert set(order[:2].tolist()) == {1, 2}
    assert order[-1] == 0


def test_harmful_rows_move_up_and_ties_go_by_importance():
    own = np.array([0.5, 0.4, 0.3, 0.2])
    assert review_order(np.array([0.1, 0.1, 0.1, 0.1]), own).tolist() == [3, 2, 1, 0]
    # Row 0 is the least doubted but hurts: its rank 3/4 halves to 3/8, ahead of row 1 (2/4).
    assert review_order(np.array([-0.1, 0.1, 0.1, 0.1]), own).tolist() == [3, 2, 0, 1]
    assert review_order(np.array([0.2, 0.1, 0.3, 0.0]), np.full(4, 0.5)).tolist() == [3, 1, 0, 2]


def test_given_label_probability_reads_the_column_of_each_label_and_zero_for_unseen_labels():
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    model = LogisticRegression().fit(X, np.array(["no", "no", "yes", "yes"]))
    p = given_label_probability(model, X, ["no", "yes", "yes", "maybe"])
    proba = model.predict_proba(X)
    assert np.allclose(p[:3], [proba[0, 0], proba[1, 1], proba[2, 1]])
    assert p[3] == 0.0


def test_the_queue_finds_a_systematic_rule_the_model_learned_before_the_model_alone_does():
    """A careless rule labels a whole slice 'late'; the model learns it and stays confident, a
    model of a few gold rows does not."""
    rng = np.random.default_rng(0)
    n = 4000
    X = rng.normal(size=(n, 2))
    truth = (X[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(int)
    rule = X[:, 1] > 1.2  # about 12% of rows
    labels = np.where(rule, 1, truth)
    wrong = labels != truth
    features = np.column_stack([X, rule])  # the slice is visible to the model, as origin and hour are
    model = LogisticRegression().fit(features, labels)
    gold = rng.choice(n, 300, replace=False)
    gold_model = LogisticRegression().fit(features[gold], truth[gold])
    own = given_label_probability(model, features, labels)
    trusted = given_label_probability(gold_model, features, labels)
    top = int(wrong.sum())
    precision_own = wrong[np.argsort(own, kind="stable")[:top]].mean()
    precision_queue = wrong[review_order(np.zeros(n), own, trusted)[:top]].mean()
    assert precision_queue > precision_own + 0.15


def test_actions_name_the_relabel_the_learned_rule_and_keep_gold():
    values = np.array([-1.0, -1.0, 0.5, 0.5, -1.0, 0.5])
    labels = ["late", "late", "late", "on_time", "late", "on_time"]
    predicted = ["on_time", "late", "late", "on_time", "on_time", "late"]
    trusted = ["on_time", "late", "on_time", "on_time", "on_time", "late"]
    sources = ["label_model", "label_model", "label_model", "label_model", "gold", "label_model"]
    actions = suggested_actions(values, labels, predicted, sources, trusted)
    assert actions[0] == "likely mislabeled: relabel as on_time"
    assert actions[1] == "outlier or ambiguous: review the row"
    assert actions[2].startswith("label the model learned, but a model of the gold rows says on_time")
    assert actions[3] == ""
    assert actions[4].startswith("gold label (hand-checked): keep")
    assert actions[5] == "likely mislabeled: relabel as late"  # the model disagrees, though not harmful
