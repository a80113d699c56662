"""The review queue's order, its doubts about labels, and its suggested actions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from dcai_assets.core.review import (
    given_label_probability,
    per_labeling_function,
    review_order,
    review_ranks,
    suggested_actions,
)

CLASSES = ["no", "yes"]


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


def careless_and_careful(careless: float = 0.60, broad: float = 0.97, seed: int = 0) -> dict:
    """LF votes on 20,000 rows (10% gold) of two classes: `careless` labels 4,000 rows alone (60%
    accurate by default), each wrong row harming the model a little; `careful` labels 800 rows at
    91% accuracy in a hard region, where even its right rows sit on the boundary (values of more
    negative mean); `broad` labels the other 15,200 (97% accurate by default)."""
    rng = np.random.default_rng(seed)
    n = 20_000
    y = rng.integers(0, 2, n)
    votes = np.full((n, 3), -1)
    who = np.full(n, 2)
    who[:4_000], who[4_000:4_800] = 0, 1
    for j, accuracy in enumerate([careless, 0.91, broad]):
        rows = who == j
        right = rng.random(n) < accuracy
        votes[rows, j] = np.where(right, y, 1 - y)[rows]
    gold = np.where(rng.random(n) < 0.1, y, -1)
    lf_label = votes.max(axis=1)  # one LF votes on each row
    wrong = lf_label != y
    values = np.where(wrong, -0.0004, 0.0002) + rng.normal(0, 1e-4, n)
    values[who == 1] -= 0.002  # the hard region: lower values whatever the label
    values[gold >= 0] = rng.normal(0, 1e-4, (gold >= 0).sum())
    return {"votes": votes, "gold": gold, "lf_label": lf_label, "values": values, "wrong": wrong}


def test_the_per_lf_view_names_the_careless_lf_first_not_the_accurate_one_with_low_mean_values():
    case = careless_and_careful()
    names = ["careless", "careful", "broad"]

    review = per_labeling_function(
        case["votes"], case["gold"], case["lf_label"], case["values"], names=names, classes=CLASSES
    )

    table = review.table.set_index("lf")
    assert review.table["lf"].tolist()[0] == "careless"
    assert table.loc["careful", "value_mean"] < table.loc["careless", "value_mean"]  # what misled
    assert table.loc["careless", "labels"] == ((case["votes"][:, 0] >= 0) & (case["gold"] < 0)).sum()
    judged = (case["votes"][:, 0] >= 0) & (case["gold"] >= 0)
    accuracy = (case["votes"][judged, 0] == case["gold"][judged]).mean()
    assert table.loc["careless", ["label_gold", "label_accuracy"]].tolist() == [judged.sum(), accuracy]
    low, high = table.loc["careless", ["label_accuracy_low", "label_accuracy_high"]]
    assert low < accuracy < high
    wrong = table.loc["careless", "labels"] * (1 - accuracy)
    assert table.loc["careless", "wrong_labels"] == wrong
    assert table.loc["careless", "wrong_labels_low"] < wrong < table.loc["careless", "wrong_labels_high"]
    assert table["rank"].tolist() == [1, 2, 3]
    assert "beyond the other LFs" in review.ranked_by


def test_a_large_fairly_accurate_lf_setting_more_wrong_labels_ranks_after_a_careless_smaller_one():
    case = careless_and_careful(careless=0.80, broad=0.94)

    review = per_labeling_function(
        case["votes"], case["gold"], case["lf_label"], case["values"], names=["careless", "careful", "broad"],
        classes=CLASSES,
    )  # fmt: skip

    table = review.table.set_index("lf")
    assert table.loc["broad", "wrong_labels"] > table.loc["careless", "wrong_labels"]  # by count alone
    assert review.table["lf"].iloc[0] == "careless"
    assert table.loc["broad", "excess_wrong_labels"] < 0 < table.loc["careless", "excess_wrong_labels"]


def test_the_per_lf_view_reports_gold_accuracy_and_disagreement_with_the_label_model():
    # Rows: a and b agree (gold yes), a overruled by b (gold no), a alone (gold no), c alone.
    votes = np.array([[1, 1, -1], [1, 0, -1], [0, -1, -1], [-1, -1, 1]])
    gold = np.array([1, 0, 0, -1])
    lf_label = np.array([1, 0, 0, 1])
    values = np.array([np.nan, np.nan, np.nan, -0.5])

    table = per_labeling_function(votes, gold, lf_label, values, names=["a", "b", "c"], classes=CLASSES)
    table = table.table.set_index("lf")

    assert table.loc["a", ["votes", "gold_votes", "gold_correct"]].tolist() == [3, 3, 2]
    assert table.loc["a", "disagreement"] == 1 / 3
    assert table.loc["a", "label_gold"] == 2  # rows 0 and 2 took its vote
    assert table.loc["c", ["labels", "value_sum"]].tolist() == [1, -0.5]
    assert table.loc["c", "status"] == "no gold rows where its vote was the label"
    assert table.loc["a", "status"] == "sets no training label"  # its rows are holdout rows


def test_an_lf_judged_on_few_gold_rows_is_flagged():
    votes = np.array([[1], [1], [1], [0]])
    review = per_labeling_function(
        votes,
        np.array([1, 0, -1, -1]),
        votes[:, 0],
        np.array([0.1, 0.1, -0.2, 0.3]),
        names=["a"],
        classes=CLASSES,
    )
    assert review.table.loc[0, "status"] == "too few gold rows (n=2 < 10): accuracy uncertain"


def test_an_lf_with_too_few_gold_rows_ranks_with_the_unjudged_lfs_not_below_them():
    """`thin` sets 4,000 labels behind only 4 (lucky) gold rows: its accuracy's upper bound is
    near 1, which must not read as "shown better than the rest" and rank it after `accurate`."""
    rng = np.random.default_rng(1)
    n = 14_000
    y = rng.integers(0, 2, n)
    who = np.repeat([0, 1, 2, 3], [5_000, 3_000, 4_000, 2_000])  # one LF votes on each row
    votes = np.full((n, 4), -1)
    for j, accuracy in enumerate([0.97, 0.85, 0.6, 0.9]):
        votes[who == j, j] = np.where(rng.random(n) < accuracy, y, 1 - y)[who == j]
    lf_label = votes.max(axis=1)
    gold = np.full(n, -1)
    judged = np.concatenate([np.flatnonzero(who == 0)[:1_000], np.flatnonzero(who == 1)[:1_000]])
    gold[judged] = y[judged]
    lucky = np.flatnonzero((who == 2) & (votes[:, 2] == y))[:4]
    gold[lucky] = y[lucky]
    values = rng.normal(0, 1e-4, n)
    values[who == 2] -= 1e-3  # its rows hurt the model

    review = per_labeling_function(
        votes, gold, lf_label, values, names=["accurate", "fair", "thin", "unjudged"], classes=CLASSES
    )

    table = review.table.set_index("lf")
    assert table.loc["thin", "label_gold"] == 4
    assert table.loc["thin", "status"] == "too few gold rows (n=4 < 10): accuracy uncertain"
    assert np.isnan(table.loc["thin", "excess_wrong_labels"])  # not a strongly negative figure
    assert table.loc["accurate", "excess_wrong_labels"] < 0 < table.loc["fair", "excess_wrong_labels"]
    # Shown worse first, then those not judged (by their rows' summed value), then shown better.
    assert review.table["lf"].tolist() == ["fair", "thin", "unjudged", "accurate"]


def test_without_gold_rows_the_per_lf_view_ranks_by_row_value_and_says_so():
    votes = np.array([[0, -1, -1], [0, -1, -1], [-1, 1, -1], [-1, -1, 2], [-1, -1, 2]])
    lf_label = votes.max(axis=1)
    values = np.array([0.1, 0.2, -0.3, -0.1, -0.1])

    review = per_labeling_function(
        votes, np.full(5, -1), lf_label, values, names=["x", "y", "z"], classes=["a", "b", "c"]
    )

    assert review.table["lf"].tolist() == ["y", "z", "x"]
    assert review.table["wrong_labels"].isna().all()
    assert any("no gold rows" in w for w in review.warnings)
    assert "| `y` |" in review.markdown()


def test_the_per_lf_view_rejects_arrays_of_different_lengths():
    with pytest.raises(ValueError, match="gold: 2 rows; expected 3"):
        per_labeling_function(
            np.zeros((3, 1)), np.zeros(2), np.zeros(3), np.zeros(3), names=["a"], classes=CLASSES
        )


def test_the_per_lf_view_rejects_nan_gold_labels():
    with pytest.raises(ValueError, match="gold: non-integer or NaN values; expected class indices, -1"):
        per_labeling_function(
            np.zeros((2, 1)), np.array([0.0, np.nan]), np.zeros(2), np.zeros(2), names=["a"], classes=CLASSES
        )


@pytest.mark.parametrize(
    ("votes", "error", "message"),
    [
        (np.array([[True], [False]]), TypeError, "votes: booleans; expected integer class indices"),
        (np.array([["yes"], ["no"]]), TypeError, "votes: values of type <U3; expected integer class"),
        (np.array([[0], [2]]), ValueError, "votes: values outside -1..1; expected class indices"),
        (np.array([[0.5], [1.0]]), ValueError, "votes: non-integer or NaN values; expected class"),
    ],
)
def test_the_per_lf_view_refuses_votes_that_are_not_class_indices_naming_the_argument(votes, error, message):
    with pytest.raises(error, match=message):
        per_labeling_function(votes, np.zeros(2), np.zeros(2), np.zeros(2), names=["a"], classes=CLASSES)


def test_gold_rows_are_left_out_of_the_review_order():
    importance = np.array([-0.5, 0.1, -0.2, 0.3])
    gold = np.array([True, False, False, False])

    ranks = review_ranks(importance, exclude=gold)

    assert np.isnan(ranks[0])
    assert ranks[1:].tolist() == [2, 1, 3]


def test_three_classes_get_actions_and_review_ranks():
    labels = ["rain", "sun", "fog", "sun"]
    predicted = ["sun", "sun", "fog", "fog"]
    actions = suggested_actions(np.array([-1.0, 0.5, -0.5, 0.1]), labels, predicted)
    assert actions.tolist() == [
        "likely mislabeled: relabel as sun",
        "",
        "outlier or ambiguous: review the row",
        "likely mislabeled: relabel as fog",
    ]
    ranks = review_ranks(np.zeros(4), np.array([0.2, 0.9, 0.5, 0.1]))
    assert ranks.tolist() == [2, 4, 3, 1]


def test_the_per_lf_view_names_a_careless_lf_among_three_classes():
    rng = np.random.default_rng(5)
    n = 12_000
    y = rng.choice(3, n, p=[0.5, 0.3, 0.2])
    votes = np.full((n, 3), -1)
    who = rng.choice(3, n, p=[0.25, 0.15, 0.6])  # one LF votes on each row
    for j, accuracy in enumerate([0.55, 0.9, 0.95]):
        rows = who == j
        wrong = (y + rng.integers(1, 3, n)) % 3
        votes[rows, j] = np.where(rng.random(n) < accuracy, y, wrong)[rows]
    gold = np.where(rng.random(n) < 0.1, y, -1)
    lf_label = votes.max(axis=1)
    values = np.where(lf_label == y, 1e-4, -1e-4)
    values[who == 1] -= 1e-3  # the accurate LF's rows lie in a hard region

    review = per_labeling_function(
        votes, gold, lf_label, values, names=["careless", "careful", "broad"], classes=["rain", "sun", "fog"]
    )

    assert review.table["lf"].tolist()[0] == "careless"
    assert review.table.set_index("lf").loc["careless", "polarity"] == "rain, sun, fog"
    assert review.warnings == ()
