"""The review queue's order, its doubts about labels, and its suggested actions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from dcai_assets.core.label_doubt import LabelEvidence, fit_label_doubt
from dcai_assets.core.review import (
    HARM_WEIGHTS,
    given_label_probability,
    harm_weight,
    per_labeling_function,
    queue_reasons,
    review_order,
    review_ranks,
)

CLASSES = ["no", "yes"]


def test_without_doubts_the_queue_is_the_importance_order():
    importance = np.array([0.3, -0.2, 0.1, -0.5])
    assert review_order(importance).tolist() == [3, 1, 2, 0]


def test_the_most_doubted_labels_come_first_and_ties_go_by_importance():
    importance = np.array([0.3, -0.2, 0.1, -0.5])
    doubt = np.array([0.9, 0.1, 0.9, 0.1])
    assert review_order(importance, doubt).tolist() == [2, 0, 3, 1]


def test_among_rows_about_equally_doubted_the_most_harmful_come_first():
    """Many random mistakes, all about surely wrong: the row value picks the harmful ones first,
    at no cost in expected precision; a weight of 0 keeps the doubt order (ties by value)."""
    rng = np.random.default_rng(0)
    n = 1000
    doubt = np.where(np.arange(n) < 300, 0.99 + 0.009 * rng.random(n), 0.05 * rng.random(n))
    importance = rng.normal(size=n)
    weight = harm_weight(importance, doubt)
    assert weight >= 1  # the surely wrong rows fill every depth up to 20%: the value may reorder them
    first = review_order(importance, doubt)[:50]
    assert (doubt[first] > 0.9).all()
    sure = np.flatnonzero(doubt > 0.9)
    assert importance[first].mean() < np.sort(importance[sure])[:100].mean() + 0.3  # among the most harmful
    plain = review_order(importance, doubt, weight=0.0)
    assert plain.tolist() == np.lexsort((importance, -np.clip(doubt, 1e-6, 1 - 1e-6))).tolist()


def test_where_the_doubts_fall_off_the_row_value_barely_moves_them():
    """Doubts spread from 1 down to 0: any sizeable weight would put less doubted rows first and
    cost expected precision, so the weight stays small and the first rows stay the most doubted."""
    n = 1000
    doubt = np.linspace(1, 0, n)
    importance = -np.random.default_rng(1).permuted(np.linspace(-1, 1, n))  # unrelated to the doubt
    weight = harm_weight(importance, doubt, tolerance=0.01)
    assert weight < 1
    first = review_order(importance, doubt)[:50]
    best = np.sort(doubt)[::-1][:50].mean()
    assert doubt[first].mean() >= best - 0.01
    assert harm_weight(importance, doubt, tolerance=1.0) == max(HARM_WEIGHTS)  # no limit: all the way


def test_the_harm_weight_refuses_nan_and_is_zero_without_rows():
    with pytest.raises(ValueError, match="NaN or infinite"):
        harm_weight(np.array([0.1, np.nan]), np.array([0.5, 0.5]))
    assert harm_weight(np.zeros(0), np.zeros(0)) == 0.0
    assert review_order(np.zeros(3), np.array([0.2, 0.9, 0.5])).tolist() == [1, 2, 0]  # no values: doubt


def test_the_order_refuses_nan_and_a_doubt_of_another_length():
    with pytest.raises(ValueError, match="NaN or infinite"):
        review_order(np.zeros(3), np.array([0.1, np.nan, 0.2]))
    with pytest.raises(ValueError, match="doubt: 2 rows; expected 3"):
        review_order(np.zeros(3), np.array([0.1, 0.2]))


def test_given_label_probability_reads_the_column_of_each_label_and_zero_for_unseen_labels():
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    model = LogisticRegression().fit(X, np.array(["no", "no", "yes", "yes"]))
    p = given_label_probability(model, X, ["no", "yes", "yes", "maybe"])
    proba = model.predict_proba(X)
    assert np.allclose(p[:3], [proba[0, 0], proba[1, 1], proba[2, 1]])
    assert p[3] == 0.0


def test_the_queue_finds_a_systematic_rule_the_model_learned_before_the_model_alone_does():
    """A careless rule labels a whole slice 'yes'; the model learns it and stays confident, a
    model of a few gold rows does not, and the weights fitted on gold rows trust the latter."""
    rng = np.random.default_rng(0)
    n = 4000
    X = rng.normal(size=(n, 2))
    truth = (X[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(int)
    rule = X[:, 1] > 1.2  # about 12% of rows
    labels = np.where(rule, 1, truth)
    wrong = labels != truth
    features = np.column_stack([X, rule])  # the slice is visible to the model
    gold = np.full(n, -1)
    picked = rng.choice(n, 300, replace=False)
    gold[picked] = truth[picked]
    model = LogisticRegression().fit(features, labels).predict_proba(features)
    gold_model = LogisticRegression().fit(features[picked], truth[picked]).predict_proba(features)
    evidence = LabelEvidence(CLASSES, model=model, gold_model=gold_model)
    doubt = 1 - fit_label_doubt(evidence, gold).support(evidence)[np.arange(n), labels]
    top = int(wrong.sum())
    precision_own = wrong[np.argsort(model[np.arange(n), labels], kind="stable")[:top]].mean()
    precision_queue = wrong[review_order(np.zeros(n), doubt)[:top]].mean()
    assert precision_queue > precision_own + 0.15


def queue(labels, model_p, votes, *, importance, gold=None, flagged=(), duplicate_of=None, classes=CLASSES):
    """The reasons for rows whose evidence is a model's probabilities and the LF votes, weighted equally."""
    evidence = LabelEvidence(
        classes, model=np.asarray(model_p), votes=np.asarray(votes), lf_accuracy=np.full(2, 0.9)
    )
    doubt = fit_label_doubt(evidence, np.full(len(labels), -1))  # no gold rows: equal weights
    return queue_reasons(
        evidence, doubt, np.asarray(labels), np.asarray(importance, dtype=float),
        lf_names=["rule_a", "rule_b"], flagged_lfs=flagged, duplicate_of=duplicate_of, gold=gold,
    )  # fmt: skip


def test_each_queue_row_says_which_signal_doubts_it_which_lf_set_it_and_what_to_suggest():
    reasons = queue([1, 0], [[0.97, 0.03], [0.9, 0.1]], [[1, -1], [0, 0]], importance=[0.1, 0.1])
    first = reasons.iloc[0]
    assert first["suggested_label"] == "no" and first["suggested_p"] > 0.9 and first["doubt"] > 0.9
    assert first["signal"] == "model"
    assert first["why"] == "the model, out of fold, gives the label p=0.03; set by `rule_a`"
    assert first["label_lfs"] == "rule_a"
    assert first["suggested_action"] == "relabel as no"
    assert reasons.iloc[1]["suggested_action"] == "" and reasons.iloc[1]["label_lfs"] == "rule_a, rule_b"


def test_actions_fix_a_flagged_lf_drop_duplicates_check_outliers_and_keep_gold():
    labels = [1, 0, 0, 1]
    model_p = [[0.97, 0.03], [0.9, 0.1], [0.9, 0.1], [0.03, 0.97]]
    votes = [[-1, 1], [0, -1], [0, -1], [-1, 0]]
    reasons = queue(
        labels, model_p, votes, importance=[0.1, 0.1, -0.2, 0.1], flagged=["rule_b"],
        duplicate_of=[None, 7, None, None], gold=np.array([False, False, False, True]),
    )  # fmt: skip
    actions = reasons["suggested_action"].tolist()
    assert (
        actions[0]
        == "relabel as no; fix LF `rule_b` (its labels are less accurate on gold rows than the others')"
    )
    assert actions[1] == "drop as duplicate of row 7"
    assert actions[2] == "check outlier: it hurts the model though its label looks right"
    assert actions[3].startswith("gold label (hand-checked): keep")


def test_a_row_the_lf_votes_doubt_most_names_them_as_the_reason():
    reasons = queue([1], [[0.4, 0.6]], [[0, 0]], importance=[0.0])
    assert reasons.iloc[0]["signal"] == "lf_votes"
    assert reasons.iloc[0]["why"] == "2 of 2 LF votes are against the label; no LF voted it"


def test_queue_reasons_refuse_labels_outside_the_classes_and_nan_importance():
    with pytest.raises(ValueError, match=r"labels: values outside 0..1"):
        queue([2], [[0.5, 0.5]], [[0, 0]], importance=[0.0])
    with pytest.raises(ValueError, match="importance: NaN"):
        queue([1], [[0.5, 0.5]], [[0, 0]], importance=[np.nan])


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


def test_three_classes_get_suggestions_actions_and_review_ranks():
    classes = ("rain", "sun", "fog")
    model_p = [[0.05, 0.9, 0.05], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.1, 0.1, 0.8]]
    votes = [[1, -1], [1, 1], [2, -1], [2, 2]]
    reasons = queue([0, 1, 2, 1], model_p, votes, importance=[-1.0, 0.5, -0.5, 0.1], classes=classes)
    assert reasons["suggested_label"].tolist() == ["sun", "sun", "fog", "fog"]
    assert reasons["suggested_action"].tolist() == [
        "relabel as sun",
        "",
        "check outlier: it hurts the model though its label looks right",
        "relabel as fog",
    ]
    ranks = review_ranks(np.zeros(4), reasons["doubt"].to_numpy())
    assert ranks[[0, 3]].tolist() in ([1, 2], [2, 1]) and ranks[1] == 4


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
