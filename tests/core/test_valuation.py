"""Row valuation core: the model's preprocessing of its window, computed once and handed to the
shards; the scored rows; the model of gold rows. Plain frames in, plain arrays out."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from dcai_assets.core.knn_shapley import knn_shapley
from dcai_assets.core.label_doubt import LabelEvidence, fit_label_doubt
from dcai_assets.core.valuation import (
    LabelDoubts,
    ValuationInputs,
    class_probabilities,
    duplicate_of,
    gold_model,
    label_doubts,
    out_of_fold_probabilities,
    preprocessed_features,
    score_rows,
    shard_bounds,
    shard_values,
    sum_shards,
    valuation_inputs,
)

CLASSES = ["normal", "alert"]
FEATURES = ["temperature", "humidity"]


def rows(n: int, seed: int = 0, source: str = "lf") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    temperature = rng.normal(20, 5, n)
    return pd.DataFrame(
        {
            "temperature": temperature,
            "humidity": rng.normal(50, 10, n),
            "label": np.where(temperature > 20, "alert", "normal"),
            "label_source": source,
        }
    )


def pipeline():
    return Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())])


def fitted(train: pd.DataFrame):
    return pipeline().fit(train[FEATURES], train["label"])


def test_the_inputs_survive_a_parquet_hand_off_between_steps_exactly(tmp_path):
    train, holdout = rows(50), rows(20, seed=1)
    inputs = valuation_inputs(fitted(train), train, holdout, FEATURES, CLASSES, k=5)
    inputs.to_frame().to_parquet(tmp_path / "prepared.parquet")
    back = ValuationInputs.from_frame(pd.read_parquet(tmp_path / "prepared.parquet"))
    for name in ("X_train", "y_train", "X_val", "y_val", "weights"):
        np.testing.assert_array_equal(getattr(back, name), getattr(inputs, name), err_msg=name)
    assert back.weights.sum() == pytest.approx(1.0)


def test_the_holdout_groups_of_a_group_balanced_utility_survive_the_hand_off(tmp_path):
    train, holdout = rows(50), rows(20, seed=1)
    holdout["site"] = ["north"] * 15 + ["south"] * 5
    inputs = valuation_inputs(fitted(train), train, holdout, FEATURES, CLASSES, k=5, group="site")
    inputs.to_frame().to_parquet(tmp_path / "prepared.parquet")
    back = ValuationInputs.from_frame(pd.read_parquet(tmp_path / "prepared.parquet"))
    assert back.groups.tolist() == holdout["site"].tolist()
    np.testing.assert_array_equal(back.X_val, inputs.X_val)


def test_shards_of_the_prepared_inputs_sum_to_the_whole_valuation():
    train, holdout = rows(60), rows(23, seed=1)
    inputs = valuation_inputs(fitted(train), train, holdout, FEATURES, CLASSES, k=3)
    parts = [
        pd.DataFrame(dict(zip(("importance", "loo"), shard_values(inputs, a, b, k=3), strict=True)))
        for a, b in shard_bounds(len(inputs.X_val), 4)
    ]
    values, loo = sum_shards(parts, len(train))
    whole = knn_shapley(
        inputs.X_train, inputs.y_train, inputs.X_val, inputs.y_val, k=3, val_weights=inputs.weights
    )
    assert np.abs(whole.values).max() > 0
    np.testing.assert_allclose(values, whole.values, rtol=0, atol=1e-12)
    np.testing.assert_allclose(loo, whole.loo, rtol=0, atol=1e-12)


def test_a_shard_of_another_window_is_named_when_summed():
    parts = [pd.DataFrame({"importance": np.zeros(5), "loo": np.zeros(5)})] * 2
    parts.append(pd.DataFrame({"importance": np.zeros(4), "loo": np.zeros(4)}))
    with pytest.raises(ValueError, match="shard 3 of 3 valued 4 training rows; expected 5"):
        sum_shards(parts, 5)


def test_nan_after_preprocessing_is_a_clear_error_naming_the_column():
    train = rows(30)
    model = fitted(train)
    broken = train.assign(humidity=np.where(np.arange(30) == 4, np.nan, train["humidity"]))
    with pytest.raises(
        ValueError, match=r"preprocessed holdout rows hold NaN or infinite values in \['humidity'\]"
    ):
        preprocessed_features(model, broken, FEATURES, "holdout")


def test_a_model_without_a_preprocessing_step_is_a_clear_error():
    train = rows(30)
    model = LogisticRegression().fit(train[FEATURES], train["label"])
    with pytest.raises(ValueError, match="not a scikit-learn Pipeline with a preprocessing step"):
        preprocessed_features(model, train, FEATURES, "training")


def test_labels_outside_the_classes_and_an_empty_holdout_are_clear_errors():
    train = rows(30)
    model = fitted(train)
    with pytest.raises(ValueError, match=r"holdout labels \['storm'\] are not among the classes"):
        valuation_inputs(model, train, rows(5).assign(label="storm"), FEATURES, CLASSES, k=3)
    with pytest.raises(ValueError, match="0 holdout rows"):
        valuation_inputs(model, train, rows(5).iloc[:0], FEATURES, CLASSES, k=3)


def test_a_one_row_holdout_of_a_class_absent_from_training_and_k_above_the_rows_are_warned():
    train = rows(40)
    model = fitted(train)
    train = train.assign(label="normal")  # one class in training
    holdout = rows(1).assign(label="alert")
    inputs = valuation_inputs(model, train, holdout, FEATURES, CLASSES, k=50)
    assert inputs.weights.tolist() == [1.0]
    assert any("holdout classes ['alert'] are absent from training" in w for w in inputs.warnings)
    assert any("K=50 is larger than the 40 training rows" in w for w in inputs.warnings)


def test_no_model_of_gold_rows_from_too_few_or_a_single_class_of_gold_rows():
    one_class = rows(40, source="gold").assign(label="alert")
    model, why = gold_model(pipeline, FEATURES, one_class, min_gold_rows=30, seed=0)
    assert model is None and "40 gold rows, expected at least 30 covering two classes" in why
    model, why = gold_model(pipeline, FEATURES, rows(10, source="gold"), min_gold_rows=30, seed=0)
    assert model is None and why.startswith("10 gold rows")
    model, why = gold_model(pipeline, FEATURES, rows(40, source="gold"), min_gold_rows=30, seed=0)
    assert model is not None and why is None


def labeled(n: int, seed: int = 0, gold_share: float = 0.2, flips: float = 0.1) -> pd.DataFrame:
    """Rows as the labeled set holds them: one LF voting the label the rule gives, the label
    model's posterior, gold labels on a share of rows, and some non-gold labels flipped."""
    frame = rows(n, seed)
    rng = np.random.default_rng(seed + 100)
    truth = frame["label"].to_numpy()
    vote = (truth == "alert").astype(int)
    gold = rng.random(n) < gold_share
    flipped = ~gold & (rng.random(n) < flips)
    label = np.where(flipped, np.where(truth == "alert", "normal", "alert"), truth)
    return frame.assign(
        label=label,
        label_source=np.where(gold, "gold", "label_model"),
        lf__rule=vote,
        p__normal=np.where(vote == 1, 0.2, 0.8),
        p__alert=np.where(vote == 1, 0.8, 0.2),
        flipped=flipped,
    )


def empty_review(names=("rule",)):
    """A per-LF table without gold figures: each LF's label accuracy unknown."""
    return SimpleNamespace(table=pd.DataFrame({"lf": list(names), "label_accuracy": np.nan}))


def doubts_of(train: pd.DataFrame, held: pd.DataFrame, **kwargs):
    model = fitted(train)
    common = dict(features=FEATURES, classes=CLASSES, lf_names=["rule"], review=empty_review(), seed=0)
    return model, label_doubts(pipeline, model, train, held, **{**common, "min_gold_rows": 30, **kwargs})


def test_the_queue_puts_flipped_labels_first_with_every_signal_and_weights_fitted_on_gold():
    train, held = labeled(400), labeled(100, seed=1, flips=0)
    model, doubts = doubts_of(train, held)
    assert doubts.combination.signals == ("model", "gold_model", "label_model", "lf_votes", "lf_source")
    assert doubts.combination.status.startswith("fitted on")
    assert doubts.combination.fitted_on == int((train["label_source"] == "gold").sum()) + int(
        (held["label_source"] == "gold").sum()
    )
    scored = score_rows(
        train, np.zeros(len(train)), np.zeros(len(train)), predicted=model.predict(train[FEATURES]),
        doubts=doubts, columns=["label", "label_source"], review_gold=False, lf_names=["rule"],
        features=FEATURES,
    )  # fmt: skip
    flipped = int(train["flipped"].sum())
    first = scored.table.head(flipped)
    assert train.loc[first.index, "flipped"].mean() > 0.9
    assert (first["suggested_action"].str.startswith("relabel as")).mean() > 0.9
    assert scored.table[["doubt", "model_confidence", "trusted_confidence"]].notna().all().all()


def test_without_enough_gold_rows_the_queue_says_which_signal_it_left_out_and_weighs_the_rest_equally():
    train, held = labeled(200, gold_share=0.02), labeled(50, seed=1, gold_share=0.0)
    _, doubts = doubts_of(train, held)
    assert doubts.evidence.gold_model is None
    assert any(note.startswith("a model of the gold rows: ") for note in doubts.notes)
    assert doubts.combination.status.startswith("equal weights")
    assert "Without a model of the gold rows" in doubts.describe()


def test_out_of_fold_probabilities_never_let_a_row_vouch_for_its_own_label():
    frame = rows(200)
    labels = frame["label"].to_numpy().copy()
    labels[7] = "alert" if labels[7] == "normal" else "normal"  # one wrong label

    def one_neighbour():
        return Pipeline([("scale", StandardScaler()), ("model", KNeighborsClassifier(n_neighbors=1))])

    in_sample = class_probabilities(one_neighbour().fit(frame[FEATURES], labels), frame[FEATURES], CLASSES)
    oof = out_of_fold_probabilities(one_neighbour, frame[FEATURES], labels, CLASSES, folds=5, seed=0)
    own = CLASSES.index(labels[7])
    assert in_sample[7, own] == 1.0 and oof[7, own] == 0.0
    assert np.allclose(oof.sum(axis=1), 1)
    with pytest.raises(ValueError, match="3 rows; expected at least 5"):
        out_of_fold_probabilities(one_neighbour, frame[FEATURES].head(3), labels[:3], CLASSES)


def test_rows_with_the_same_features_as_an_earlier_row_are_named_duplicates():
    frame = rows(4)
    frame.loc[3, FEATURES] = frame.loc[1, FEATURES].to_numpy()
    assert duplicate_of(frame, FEATURES) == [None, None, None, 1]


def test_scored_rows_rank_the_most_harmful_first_and_leave_gold_rows_out_of_review():
    train = pd.concat([rows(4), rows(2, seed=1, source="gold")], ignore_index=True)
    values = np.array([0.3, -0.2, 0.1, -0.5, -0.9, 0.0])
    labels = train["label"].to_numpy()
    evidence = LabelEvidence(tuple(CLASSES), model=np.full((6, 2), 0.5))
    doubts = LabelDoubts(evidence, fit_label_doubt(evidence, np.full(6, -1)))
    common = dict(predicted=labels, doubts=doubts)
    scored = score_rows(train, values, values, columns=["label", "label_source"], review_gold=False, **common)
    table = scored.table
    assert table.loc[4, "rank"] == 1 and table.loc[3, "rank"] == 2  # row 4 (gold) is the most harmful
    assert pd.isna(table.loc[4, "review_rank"]) and pd.isna(table.loc[5, "review_rank"])
    assert table["review_rank"].iloc[0] == 1 and table.index[0] == 3  # the worst non-gold row first
    assert scored.gold_rows.tolist() == [False] * 4 + [True] * 2
    with_gold = score_rows(
        train, values, values, columns=["label", "label_source"], review_gold=True, **common
    )
    assert with_gold.table.index[0] == 4
