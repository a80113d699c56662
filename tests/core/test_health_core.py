"""Data health checks on the demo's flights (real data, true outcomes as labels): each seeded
defect is found by its check, clean data alarms none; and the checks' edge cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dcai_assets.core import health as health_core
from dcai_assets.core.columns import LABEL, LABEL_SOURCE, PARTITION
from dcai_assets.core.findings import DUPLICATES, LABEL_BALANCE, LABEL_ISSUES, OUTLIERS, WEAK_SEGMENTS
from dcai_assets.core.health import (
    HealthSettings,
    data_health,
    duplicates,
    label_balance,
    label_issues,
    neighbour_graph,
    outliers,
)
from dcai_assets.core.segments import weak_segments
from dcai_assets.core.valuation import preprocessed_features
from jobs.flights_data import arrived_late, daily_frames
from jobs.flights_training import CATEGORICAL, NUMERIC, flights_pipeline

FEATURES = NUMERIC + CATEGORICAL
CLASSES = ["on_time", "late"]
SHOW = [PARTITION, "carrier", "flight", "tailnum", "time_hour", LABEL]
WEAK_CARRIER = "MQ"


@pytest.fixture(scope="module")
def flights() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Eight days of flights with their true outcome as label: six to train on, two held out."""
    frames = daily_frames("2013-01-01", 8)
    labeled = []
    for day, frame in sorted(frames.items()):
        late = arrived_late(frame)
        frame = frame[late.notna()].copy()
        frame[LABEL] = np.where(late[late.notna()].astype(bool), "late", "on_time")
        frame[LABEL_SOURCE] = "lf"
        frame[PARTITION] = day
        labeled.append(frame.reset_index(drop=True))
    return pd.concat(labeled[:6], ignore_index=True), pd.concat(labeled[6:], ignore_index=True)


def health(train: pd.DataFrame, holdout: pd.DataFrame, settings: HealthSettings | None = None):
    """Fit the demo's pipeline on ``train`` and run every check, as the asset does."""
    pipeline = flights_pipeline().fit(train[FEATURES], train[LABEL])
    X_train = preprocessed_features(pipeline, train, FEATURES, "training")
    X_val = preprocessed_features(pipeline, holdout, FEATURES, "holdout")
    predicted = pipeline.predict(train[FEATURES]).astype(str)
    labels = train[LABEL].to_numpy()
    scores = train[SHOW].assign(
        **{LABEL_SOURCE: train[LABEL_SOURCE]},
        # The queue's action where the model disagrees with the label (``review.queue_reasons``
        # says "relabel as X" there); the label-issues check counts those.
        suggested_action=np.where(labels != predicted, np.char.add("relabel as ", predicted), ""),
    )
    return data_health(
        train, holdout, X_train, X_val, pipeline.predict(holdout[FEATURES]).astype(str),
        pipeline.predict_proba(holdout[FEATURES]).max(axis=1), scores,
        pipeline.predict_proba(train[FEATURES]).max(axis=1), features=FEATURES, classes=CLASSES,
        show=SHOW, k=5, settings=settings or HealthSettings(),
    )  # fmt: skip


@pytest.fixture(scope="module")
def seeded_frames(flights):
    """The flights with every defect seeded: 1% of the training rows with one number a hundred
    times too large (a unit slip), 15% of the other training labels flipped at random, labels
    inverted in the holdout for one carrier (a group whose outcome follows another rule than the
    model learnt), and 25 training rows copied into the last holdout day."""
    train, holdout = (f.copy() for f in flights)
    rng = np.random.default_rng(7)
    far = rng.choice(len(train), size=len(train) // 100, replace=False)
    for column in NUMERIC:
        train[column] = train[column].astype(float)
    for row, column in zip(far, rng.choice(NUMERIC, size=len(far)), strict=True):
        train.loc[row, column] = train.loc[row, column] * 100 + 1000
    flip = {"late": "on_time", "on_time": "late"}
    flipped = rng.choice(np.setdiff1d(np.arange(len(train)), far), size=int(0.15 * len(train)), replace=False)
    train.loc[flipped, LABEL] = train.loc[flipped, LABEL].map(flip)
    weak = holdout["carrier"] == WEAK_CARRIER
    holdout.loc[weak, LABEL] = holdout.loc[weak, LABEL].map(flip)
    copied = train.drop(index=far).sample(25, random_state=1)
    holdout = pd.concat(
        [holdout, copied.assign(**{PARTITION: holdout[PARTITION].iloc[-1]})], ignore_index=True
    )
    return copied, train.iloc[far], train, holdout


@pytest.fixture(scope="module")
def seeded(seeded_frames):
    copied, far, train, holdout = seeded_frames
    return copied, far, health(train, holdout)


def test_clean_flights_raise_no_alarm(flights):
    findings = health(*flights)
    assert {name: f.alarm for name, f in findings.items()} == dict.fromkeys(findings, False)
    assert all(f.determined for f in findings.values())
    assert findings[DUPLICATES].counts["holdout_copies_of_training_rows"] == 0


def test_training_rows_copied_into_the_holdout_are_found_as_leakage(seeded):
    copied, _, findings = seeded
    found = findings[DUPLICATES]
    assert found.alarm
    assert found.counts["holdout_copies_of_training_rows"] == len(copied)
    assert found.counts["holdout_feature_twins"] >= len(copied)  # distance 0 in feature space too
    leaked = found.examples[found.examples["pair"] == "holdout copy"]
    assert set(leaked["tailnum"] + leaked["time_hour"].astype(str)) == set(
        copied["tailnum"] + copied["time_hour"].astype(str)
    )


def test_injected_outliers_are_flagged_with_their_rows(seeded):
    _, far, findings = seeded
    found = findings[OUTLIERS]
    assert found.alarm
    flagged = set(zip(found.examples["tailnum"], found.examples["time_hour"].astype(str), strict=True))
    injected = set(zip(far["tailnum"], far["time_hour"].astype(str), strict=True))
    assert len(flagged & injected) >= 0.8 * len(injected)  # most injected rows found
    assert len(flagged & injected) >= 0.75 * len(flagged)  # and few clean rows beside them
    assert found.counts["outliers"] == len(found.examples)


def test_a_group_whose_holdout_labels_follow_another_rule_is_the_weakest_segment(seeded):
    found = seeded[-1][WEAK_SEGMENTS]
    assert found.alarm
    top = found.table.iloc[0]
    assert top["slice"] == f"carrier = {WEAK_CARRIER}" and top["weak"]
    assert top["rows"] >= 30 and top["errors"] > 0.3 * top["rows"]
    assert top["accuracy_low"] <= top["accuracy"] <= top["accuracy_high"]
    assert found.counts["weak_slices"] == int(found.table["weak"].sum())


def test_randomly_flipped_training_labels_show_as_label_issues(seeded):
    found = seeded[-1][LABEL_ISSUES]
    assert found.alarm
    share = found.counts["likely_label_errors"] / found.counts["training_rows"]
    assert share >= 0.15 and found.counts["excess_share"] >= 0.05


def test_the_seeded_defects_do_not_fake_a_label_drift(seeded):
    assert not seeded[-1][LABEL_BALANCE].alarm


# --- edge cases ------------------------------------------------------------------------------


def test_neighbour_graph_leaves_each_row_itself_out_even_among_exact_twins():
    X = np.array([[0.0], [0.0], [0.0], [5.0]])
    graph = neighbour_graph(X, np.array([[0.1]]), k=2)
    assert not (graph.train_indices == np.arange(4)[:, None]).any()
    assert graph.train_distances[:3, 0].tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="same number of features"):
        neighbour_graph(X, np.zeros((1, 2)), k=2)
    with pytest.raises(ValueError, match="NaN"):
        neighbour_graph(np.array([[0.0], [np.nan]]), np.zeros((1, 1)), k=1)


def test_outliers_are_undetermined_with_a_tiny_holdout():
    rng = np.random.default_rng(0)
    graph = neighbour_graph(rng.normal(size=(50, 2)), rng.normal(size=(8, 2)), k=3)
    found = outliers(graph, pd.DataFrame({"id": range(50)}), show=["id"])
    assert not found.alarm and not found.determined
    assert "undetermined: 8 holdout rows" in found.summary


def _partitioned(labels: list[str], partition: str) -> pd.DataFrame:
    return pd.DataFrame({LABEL: labels, PARTITION: partition})


def test_a_rare_class_among_three_is_an_imbalance_alarm():
    train = _partitioned(["a"] * 300 + ["b"] * 190 + ["c"] * 10, "d1")
    holdout = _partitioned(["a"] * 60 + ["b"] * 38 + ["c"] * 2, "d2")
    found = label_balance(train, holdout, ["a", "b", "c"])
    assert found.alarm and found.counts["rare_classes"] == 1
    assert "['c']" in found.summary and found.counts["smallest_class_share"] == pytest.approx(0.02)


def test_a_holdout_of_another_class_mix_is_drift_but_a_swinging_day_only_informs():
    days = [_partitioned(["a"] * 80 + ["b"] * 20, f"d{i}") for i in range(5)]
    stormy = _partitioned(["a"] * 30 + ["b"] * 70, "d5")  # one day far from the others
    train = pd.concat([*days, stormy])
    same = label_balance(train, _partitioned(["a"] * 140 + ["b"] * 60, "h"), ["a", "b"])
    assert not same.alarm and same.counts["shifted_partitions"] >= 1
    drifted = label_balance(train, _partitioned(["a"] * 40 + ["b"] * 160, "h"), ["a", "b"])
    assert drifted.alarm and drifted.counts["holdout_shift"] >= 0.25
    with pytest.raises(ValueError, match=r"labels \['z'\] are not among the classes"):
        label_balance(train, _partitioned(["z"], "h"), ["a", "b"])


def test_weak_segments_test_no_slice_smaller_than_the_minimum_and_refuse_bad_input():
    holdout = pd.DataFrame({"site": ["x"] * 20 + ["y"] * 20})
    correct = np.array([False] * 20 + [True] * 20)
    masks = {"site = x": (holdout["site"] == "x").to_numpy()}
    found = weak_segments(holdout, correct, np.full(40, 0.9), masks, show=["site"], min_rows=30)
    assert not found.alarm and not found.determined and found.counts["slices_too_small"] == 1
    with pytest.raises(ValueError, match="one per holdout row"):
        weak_segments(holdout, correct[:5], np.full(40, 0.9), masks, show=["site"])
    with pytest.raises(ValueError, match=r"outside \[0, 1\] or NaN"):
        weak_segments(holdout, correct, np.full(40, np.nan), masks, show=["site"])


def test_a_hard_slice_the_model_knows_it_is_unsure_of_is_not_weak():
    rng = np.random.default_rng(3)
    n = 2000
    hard = np.arange(n) < 400
    confidence = np.where(hard, 0.6, 0.95)
    correct = rng.random(n) < confidence  # calibrated: as accurate as it is confident
    holdout = pd.DataFrame({"zone": np.where(hard, "border", "inland")})
    masks = {f"zone = {z}": (holdout["zone"] == z).to_numpy() for z in ("border", "inland")}
    found = weak_segments(holdout, correct, confidence, masks, show=["zone"])
    assert found.table.iloc[0]["slice"] == "zone = border" and found.table.iloc[0]["gap"] > 0.25
    assert not found.alarm
    overconfident = weak_segments(holdout, correct, np.full(n, 0.95), masks, show=["zone"])
    assert overconfident.alarm and overconfident.table.iloc[0]["slice"] == "zone = border"


def test_label_issues_leave_gold_rows_out_and_name_a_missing_column():
    scores = pd.DataFrame(
        {
            LABEL_SOURCE: ["gold"] * 50 + ["lf"] * 50,
            "suggested_action": ["likely mislabeled: relabel as a"] * 100,
        }
    )
    holdout_correct, holdout_confidence = np.arange(100) >= 5, np.full(100, 0.9)
    found = label_issues(scores, np.full(100, 0.9), holdout_correct, holdout_confidence, show=[LABEL_SOURCE])
    assert found.counts["likely_label_errors"] == 50 and found.alarm
    assert found.counts["expected_with_clean_labels"] == pytest.approx(2.5)  # 5% of the 50 LF rows
    with pytest.raises(ValueError, match="'suggested_action'"):
        label_issues(scores.drop(columns="suggested_action"), np.full(100, 0.9), holdout_correct,
                     holdout_confidence, show=[])  # fmt: skip


def test_harder_training_rows_are_expected_to_be_wrong_more_often_not_label_issues():
    rng = np.random.default_rng(5)
    holdout_confidence = rng.uniform(0.5, 1.0, 2000)
    holdout_correct = rng.random(2000) < holdout_confidence  # calibrated on clean labels
    confidence = rng.uniform(0.5, 0.8, 3000)  # harder days: the model is less sure of its rows
    disagree = rng.random(3000) >= confidence
    scores = pd.DataFrame(
        {LABEL_SOURCE: "lf", "suggested_action": np.where(disagree, "likely mislabeled: relabel as a", "")}
    )
    found = label_issues(scores, confidence, holdout_correct, holdout_confidence, show=[])
    assert disagree.mean() > 1.0 - holdout_correct.mean() + 0.05  # a plain error rate would alarm
    assert not found.alarm and abs(found.counts["excess_share"]) < 0.03


def test_a_copy_is_found_whatever_label_it_was_given_and_twins_alone_do_not_alarm():
    train = pd.DataFrame({"id": [1, 2, 3, 4], "x": [0.0, 1.0, 2.0, 3.0], LABEL: ["a", "b", "a", "b"]})
    train[PARTITION], train[LABEL_SOURCE] = "d1", "lf"
    holdout = pd.DataFrame(
        {"id": [2, 9], "x": [1.0, 3.0], LABEL: ["a", "b"], PARTITION: "d2", LABEL_SOURCE: "gold"}
    )
    graph = neighbour_graph(train[["x"]].to_numpy(), holdout[["x"]].to_numpy(), k=1)
    found = duplicates(graph, train, holdout, show=["id", LABEL])
    assert found.alarm and found.counts["holdout_copies_of_training_rows"] == 1
    assert found.examples["id"].tolist() == [2]  # row 9 shares x with row 4: a twin, not a copy
    assert found.counts["holdout_feature_twins"] == 2
    clean = duplicates(graph, train, holdout.assign(id=[8, 9]), show=["id"])
    assert not clean.alarm and clean.counts["holdout_feature_twins"] == 2


# --- the neighbour search: a k-d tree where it prunes, brute force otherwise -------------------


def test_the_seeded_defects_are_found_alike_by_the_tree_and_by_brute_force(seeded_frames, monkeypatch):
    """The k-d tree (chosen on the demo's features from a few tens of thousands of rows; on these
    5,000 rows brute force is) and brute force (the only search before the tree) find the same
    copies, twins and outliers, the same outlier rows, and every check the same verdict."""
    _, _, train, holdout = seeded_frames
    found = {}
    for search, share in (("tree", 1.0), ("brute", 0.0)):
        monkeypatch.setattr(health_core, "_TREE_BELOW", share)
        found[search] = health(train, holdout)
    tree, brute = found["tree"], found["brute"]
    assert {n: f.alarm for n, f in brute.items()} == {n: f.alarm for n, f in tree.items()}
    assert tree[DUPLICATES].alarm and tree[OUTLIERS].alarm
    for name in (DUPLICATES, OUTLIERS):
        assert brute[name].counts == pytest.approx(tree[name].counts, rel=1e-9), name
    kth = "largest_kth_distance"
    assert brute[OUTLIERS].table[kth].to_numpy() == pytest.approx(tree[OUTLIERS].table[kth].to_numpy())
    assert brute[OUTLIERS].examples.index.tolist() == tree[OUTLIERS].examples.index.tolist()


def test_neighbour_graph_uses_the_tree_on_few_dimensions_and_brute_force_on_many():
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(4)
    for rows, dims, tree in ((20_000, 3, True), (3000, 40, False)):
        X, V = rng.normal(size=(rows, dims)), rng.normal(size=(300, dims))
        assert (health_core._tree_if_pruning(X, 6) is not None) == tree
        graph = neighbour_graph(X, V, k=5)
        index = NearestNeighbors(n_neighbors=6, algorithm="brute").fit(X)
        assert graph.train_distances == pytest.approx(index.kneighbors(X)[0][:, 1:], rel=1e-9, abs=1e-12)
        assert graph.holdout_distances == pytest.approx(index.kneighbors(V, 5)[0], rel=1e-9, abs=1e-12)


def test_rows_with_the_same_features_are_twins_at_distance_exactly_zero():
    rng = np.random.default_rng(5)
    numbers = rng.normal(size=(4000, 3)).round(1)  # few distinct values: many twins by chance
    one_hot = np.eye(8)[rng.integers(0, 8, 4000)]
    X = np.hstack([numbers, one_hot])
    _, inverse, counts = np.unique(X, axis=0, return_inverse=True, return_counts=True)
    graph = neighbour_graph(X, X[:100] + 0.01, k=5)
    assert ((graph.train_distances[:, 0] == 0) == (counts[inverse.ravel()] > 1)).all()


@pytest.mark.parametrize("dims", [3, 40])  # the k-d tree and brute force
def test_a_huge_common_offset_changes_no_neighbour(dims):
    """Timestamps or ids as features: 1e9 added to a column would cost the norm expansion its
    digits (neighbours picked by rounding); the graph centres the features first."""
    rng = np.random.default_rng(6)
    X, V = rng.normal(size=(3000, dims)), rng.normal(size=(200, dims))
    plain = neighbour_graph(X, V, k=5)
    offset = np.zeros(dims)
    offset[0] = 1e9
    shifted = neighbour_graph(X + offset, V + offset, k=5)
    assert (shifted.train_indices == plain.train_indices).all()
    assert (shifted.holdout_indices == plain.holdout_indices).all()
    # 1e9 + x keeps x to about 1e-7 (float64's step there): the distances can be no closer
    assert shifted.holdout_distances == pytest.approx(plain.holdout_distances, abs=1e-6)
