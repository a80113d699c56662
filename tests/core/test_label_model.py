"""The label model: LF accuracies and class balance from votes alone, gold clamping, storage, fallbacks."""

from __future__ import annotations

import numpy as np
import pytest

from dcai_assets.core.label_model import (
    LabelModel,
    MajorityVote,
    SyntheticVotes,
    fit_label_model,
    one_sided_votes,
    synthetic_votes,
)

ACCURACIES = np.linspace(0.55, 0.95, 10)
COVERAGES = np.linspace(0.1, 0.8, 10)
LF_NAMES = [f"lf_{j}" for j in range(10)]
CLASSES = ["negative", "positive"]


@pytest.fixture(scope="module")
def votes() -> SyntheticVotes:
    return synthetic_votes(50_000, ACCURACIES, COVERAGES, np.array([0.7, 0.3]), seed=1)


@pytest.fixture(scope="module")
def model(votes) -> LabelModel:
    return LabelModel(cardinality=2).fit(votes.L)


def test_the_label_model_beats_majority_vote_on_covered_rows(votes, model):
    covered = (votes.L != -1).any(axis=1)
    truth = votes.y[covered]

    model_accuracy = (model.predict(votes.L)[covered] == truth).mean()
    majority_accuracy = (MajorityVote(2).predict(votes.L)[covered] == truth).mean()

    assert model_accuracy > majority_accuracy + 0.005


# Three classes 0.6/0.3/0.1, each LF votes one class only (c, hit rate on c, false alarms on the
# others): LF 5 is right on under 30% of its votes, yet 3.5 times likelier to fire on class 2.
ONE_SIDED = [(0, 0.5, 0.1), (0, 0.4, 0.2), (1, 0.6, 0.1), (1, 0.3, 0.05), (2, 0.5, 0.05), (2, 0.7, 0.2)]


@pytest.mark.parametrize("gold_fraction", [0.0, 0.05])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_with_one_sided_lfs_on_three_imbalanced_classes_the_label_model_is_at_least_majority_vote(
    gold_fraction, seed
):
    data = one_sided_votes(20_000, np.array([0.6, 0.3, 0.1]), ONE_SIDED, seed=seed)
    gold = np.where(np.random.default_rng(seed + 100).random(len(data.y)) < gold_fraction, data.y, -1)
    judged = (data.L != -1).any(axis=1) & (gold == -1)

    model = LabelModel(cardinality=3).fit(data.L, gold)
    model_accuracy = (model.predict(data.L)[judged] == data.y[judged]).mean()
    majority_accuracy = (MajorityVote(3).predict(data.L)[judged] == data.y[judged]).mean()

    assert data.accuracies[5] < 0.3
    assert model_accuracy >= majority_accuracy, (model_accuracy, majority_accuracy)


def test_a_one_sided_lf_right_on_few_of_its_votes_still_counts_for_its_class():
    data = one_sided_votes(20_000, np.array([0.6, 0.3, 0.1]), ONE_SIDED, seed=0)
    model = LabelModel(cardinality=3).fit(data.L)
    only_lf_5 = np.array([[-1, -1, -1, -1, -1, 2]], dtype=np.int8)
    no_vote_from_lf_5 = np.array([[-1, -1, -1, -1, -1, -1]], dtype=np.int8)

    assert model.predict_proba(only_lf_5)[0, 2] > model.predict_proba(no_vote_from_lf_5)[0, 2]


def test_the_label_model_recovers_each_lfs_accuracy_and_the_class_balance(votes, model):
    assert model.converged_
    np.testing.assert_allclose(model.accuracies_, ACCURACIES, atol=0.03)
    np.testing.assert_allclose(model.class_balance_, [0.7, 0.3], atol=0.03)


def test_the_label_model_recovers_accuracies_with_three_classes():
    three = synthetic_votes(50_000, ACCURACIES, COVERAGES, np.array([0.5, 0.3, 0.2]), seed=2)

    model = LabelModel(cardinality=3).fit(three.L)

    np.testing.assert_allclose(model.accuracies_, ACCURACIES, atol=0.05)
    np.testing.assert_allclose(model.class_balance_, [0.5, 0.3, 0.2], atol=0.03)
    assert model.predict_proba(three.L).shape == (50_000, 3)


def test_two_fits_with_the_same_seed_give_identical_accuracies(votes, model):
    again = LabelModel(cardinality=2).fit(votes.L)

    np.testing.assert_array_equal(again.accuracies_, model.accuracies_)
    np.testing.assert_array_equal(again.class_balance_, model.class_balance_)


def test_gold_labels_pull_the_accuracies_towards_what_the_gold_rows_show():
    # One mediocre LF copied three times: EM alone takes their agreement for accuracy.
    base = synthetic_votes(
        50_000, np.array([0.6, 0.8, 0.75, 0.7]), np.array([0.6, 0.3, 0.3, 0.3]), np.array([0.5, 0.5]), seed=3
    )
    L = np.column_stack([base.L[:, 0], base.L[:, 0], base.L[:, 0], base.L[:, 1:]])
    gold = np.where(np.random.default_rng(0).random(len(L)) < 0.2, base.y, -1)
    known = gold >= 0
    voted = L != -1
    empirical = np.array(
        [(L[known & voted[:, j], j] == gold[known & voted[:, j]]).mean() for j in range(L.shape[1])]
    )

    unsupervised = LabelModel(cardinality=2).fit(L)
    clamped = LabelModel(cardinality=2).fit(L, gold)

    assert (np.abs(unsupervised.accuracies_ - empirical)[:3] > 0.2).all()  # EM alone is fooled
    np.testing.assert_allclose(clamped.accuracies_, empirical, atol=0.01)
    assert (np.abs(clamped.accuracies_ - empirical) < np.abs(unsupervised.accuracies_ - empirical)).all()


def test_predicted_probabilities_sum_to_one_and_a_row_without_votes_gets_the_class_balance(votes, model):
    L = np.vstack([votes.L[:100], np.full((1, 10), -1, dtype=np.int8)])

    proba = model.predict_proba(L)

    assert proba.shape == (101, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(proba[-1], model.class_balance_)


def test_a_fit_that_does_not_converge_falls_back_to_majority_vote_with_a_warning(votes):
    fallback, warning = fit_label_model(votes.L, None, 2, max_iter=1)

    assert isinstance(fallback, MajorityVote)
    assert "no convergence in 1 EM iterations" in warning
    assert "majority vote" in warning


def test_a_fit_that_converges_returns_the_label_model_without_a_warning(votes):
    fitted, warning = fit_label_model(votes.L, None, 2)

    assert isinstance(fitted, LabelModel)
    assert warning is None


def test_a_stored_label_model_predicts_what_the_fitted_one_did(votes, model):
    stored = model.to_frame(LF_NAMES, CLASSES)

    restored = LabelModel.from_frame(stored, LF_NAMES, CLASSES)

    assert isinstance(restored, LabelModel)
    np.testing.assert_array_equal(restored.predict(votes.L), model.predict(votes.L))
    np.testing.assert_allclose(restored.predict_proba(votes.L), model.predict_proba(votes.L), rtol=1e-12)


def test_a_stored_three_class_model_fitted_with_gold_predicts_what_the_fitted_one_did():
    data = one_sided_votes(5_000, np.array([0.6, 0.3, 0.1]), ONE_SIDED, seed=3)
    gold = np.where(np.arange(len(data.y)) % 20 == 0, data.y, -1)
    fitted = LabelModel(cardinality=3).fit(data.L, gold)
    names, classes = [f"lf_{j}" for j in range(6)], ["a", "b", "c"]

    restored = LabelModel.from_frame(fitted.to_frame(names, classes), names, classes)

    np.testing.assert_allclose(restored.predict_proba(data.L), fitted.predict_proba(data.L), rtol=1e-12)


def test_a_stored_model_without_vote_probabilities_is_refused_asking_to_re_materialize(model):
    stored = model.to_frame(LF_NAMES, CLASSES)
    older = stored[stored["kind"] != "vote_given_class"]

    with pytest.raises(ValueError, match=r"P\(vote \| class\) entries.*re-materialize the label model"):
        LabelModel.from_frame(older, LF_NAMES, CLASSES)


def test_a_stored_majority_vote_fallback_is_restored_as_majority_vote():
    stored = MajorityVote(2).to_frame(LF_NAMES, CLASSES)

    assert isinstance(LabelModel.from_frame(stored, LF_NAMES, CLASSES), MajorityVote)


def test_a_stored_model_for_other_lfs_is_refused_asking_to_re_materialize(model):
    stored = model.to_frame(LF_NAMES, CLASSES)

    with pytest.raises(ValueError, match="re-materialize the label model") as info:
        LabelModel.from_frame(stored, [*LF_NAMES, "new_lf"], CLASSES)
    assert "expected LFs" in str(info.value) and "'new_lf'" in str(info.value)


def test_a_stored_model_for_other_classes_is_refused_asking_to_re_materialize(model):
    stored = model.to_frame(LF_NAMES, CLASSES)

    with pytest.raises(ValueError, match="re-materialize the label model"):
        LabelModel.from_frame(stored, LF_NAMES, ["no", "yes"])


def test_a_stored_model_for_more_lfs_than_the_current_ones_is_refused(model):
    stored = model.to_frame(LF_NAMES, CLASSES)

    with pytest.raises(ValueError, match="re-materialize the label model"):
        LabelModel.from_frame(stored, LF_NAMES[:-1], CLASSES)


def test_a_one_dimensional_label_matrix_is_refused_naming_l():
    with pytest.raises(ValueError, match=r"L: expected a 2-D label matrix .* got shape \(3,\)"):
        LabelModel(cardinality=2).fit(np.array([0, 1, -1]))


def test_votes_out_of_range_are_refused_naming_l():
    with pytest.raises(ValueError, match=r"L: votes range -1\.\.2; expected ABSTAIN \(-1\) or 0\.\.1"):
        LabelModel(cardinality=2).fit(np.array([[0, 2], [-1, 1]]))


def test_gold_of_the_wrong_length_is_refused_naming_gold():
    with pytest.raises(ValueError, match=r"gold: expected 2 entries .* got \(3,\)"):
        LabelModel(cardinality=2).fit(np.array([[0, 1], [-1, 1]]), gold=np.array([0, 1, 1]))


def test_gold_labels_out_of_range_are_refused_naming_gold():
    with pytest.raises(ValueError, match=r"gold: labels range -1\.\.3"):
        LabelModel(cardinality=2).fit(np.array([[0, 1], [-1, 1]]), gold=np.array([-1, 3]))


def test_fewer_than_two_classes_are_refused():
    with pytest.raises(ValueError, match="cardinality: 1; expected at least 2 classes"):
        LabelModel(cardinality=1)


@pytest.mark.parametrize("k", [2, 3, 5])
def test_predict_proba_equals_the_fit_e_step_posterior(k):
    """Prediction (numpy) and the fit's E-step (numba kernel) compute the same posterior."""
    from dcai_assets.core import _label_model_kernels as kernels

    rng = np.random.default_rng(k)
    L = rng.integers(-1, k, size=(2_000, 7))
    L[:50] = -1  # rows with no vote get the class balance in both
    model = LabelModel(cardinality=k).fit(L)
    log_theta = np.log(np.clip(model.vote_given_class_, 1e-8, 1.0))  # _EPS ** 2, as predict
    expected = np.empty((L.shape[0], k))
    kernels._ds_e_step(L, log_theta, np.log(model.class_balance_), np.full(L.shape[0], -1), expected)
    expected[(L == -1).all(axis=1)] = model.class_balance_
    np.testing.assert_allclose(model.predict_proba(L), expected, rtol=1e-10, atol=1e-12)
