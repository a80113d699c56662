"""Bad input to the public numeric API is refused with an error naming the argument and what was
expected; nothing is coerced silently. One parametrised case per row of the docs/spec.md table
"Input validation"; then the inputs that are supported by explicit conversion (string labels,
pandas objects) give the same values as plain arrays."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import scipy.sparse

from dcai_assets.core.knn_shapley import group_balanced_weights, knn_shapley
from dcai_assets.core.label_model import LabelModel, MajorityVote, fit_label_model


def problem():
    rng = np.random.default_rng(0)
    return {
        "X_train": rng.normal(size=(6, 2)),
        "y_train": np.array([0, 1, 0, 1, 1, 0]),
        "X_val": rng.normal(size=(3, 2)),
        "y_val": np.array([1, 0, 1]),
    }


def with_nan(a, where):
    a = a.copy()
    a[where] = np.nan
    return a


def both_tiny(p):
    """Training and validation features near 1e-170: their squares are below float64's range."""
    p["X_train"] = p["X_train"] * 1e-170
    return p["X_val"] * 1e-170


KNN_CASES = [
    # (argument changed, its bad value (a function of the good inputs), error, message)
    ("X_train", lambda p: scipy.sparse.csr_matrix(p["X_train"]), TypeError,
     "X_train: a scipy sparse matrix; expected a dense array (pass X_train.toarray())"),
    ("X_train", lambda p: pd.DataFrame({"a": p["X_train"][:, 0], "city": list("abcdef")}), ValueError,
     "X_train: non-numeric columns ['city']; expected numeric features"),
    ("X_train", lambda p: pd.Series(p["X_train"][:, 0]), ValueError,
     "X_train: a pandas Series; expected a 2-D matrix"),
    ("X_train", lambda p: p["X_train"].astype(str), TypeError, "X_train: <U32 values; expected real numbers"),
    ("X_val", lambda p: p["X_val"] + 1j, TypeError, "X_val: complex128 values; expected real numbers"),
    ("X_train", lambda p: p["X_train"][:, 0], ValueError, "X_train: expected a 2-D array (rows x features)"),
    ("X_train", lambda p: with_nan(p["X_train"], (2, 1)), ValueError,
     "X_train: NaN or infinite values in feature columns [1]"),
    ("X_val", lambda p: p["X_val"] * np.array([np.inf, 1.0]), ValueError,
     "X_val: NaN or infinite values in feature columns [0]"),
    ("X_val", lambda p: p["X_val"][:, :1], ValueError, "X_val has 1 features; expected 2, as X_train"),
    ("X_val", lambda p: np.empty((0, 2)), ValueError, "X_val: no validation rows; expected at least one"),
    ("X_train", lambda p: np.empty((0, 2)), ValueError, "X_train: no training rows; expected at least one"),
    ("X_train", lambda p: p["X_train"] * 1e160, ValueError, "X_train: squared distances overflow float64"),
    ("X_val", lambda p: both_tiny(p), ValueError,
     "X_train and X_val: feature columns [0, 1] vary by at most"),
    ("y_train", lambda p: p["y_train"] + 0.5, TypeError,
     "y_train: float labels; expected integer, bool or string class labels"),
    ("y_val", lambda p: p["y_val"].astype(float), TypeError, "y_val: float labels; expected integer"),
    ("y_train", lambda p: with_nan(p["y_train"].astype(float), 0), ValueError,
     "y_train: 1 NaN labels; expected a class for every row"),
    ("y_val", lambda p: np.array(["a", None, "b"], dtype=object), ValueError,
     "y_val: missing labels (None/NaN)"),
    ("y_train", lambda p: np.array(["a", 1, "b", 0, "a", 1], dtype=object), TypeError,
     "y_train: a mix of string and integer labels"),
    ("y_train", lambda p: p["y_train"][:5], ValueError, "y_train: 5 labels; expected 6, one per row"),
    ("y_val", lambda p: p["y_val"][:, None], ValueError, "y_val: expected a 1-D array of class labels"),
    ("y_val", lambda p: np.array(["1", "0", "1"]), TypeError,
     "y_train holds int64 labels and y_val <U1; expected the same kind"),
    ("k", lambda p: 2.5, TypeError, "k: expected an integer >= 1, got 2.5 (float)"),
    ("k", lambda p: True, TypeError, "k: expected an integer >= 1, got True (bool)"),
    ("k", lambda p: 0, ValueError, "k: 0; expected an integer >= 1"),
    ("val_weights", lambda p: np.array([0.5, np.nan, 0.5]), ValueError,
     "val_weights: 1 NaN or infinite weights; expected finite weights"),
    ("val_weights", lambda p: np.array([0.5, -0.1, 0.6]), ValueError,
     "val_weights: 1 negative weights; expected weights >= 0"),
    ("val_weights", lambda p: np.zeros(3), ValueError, "val_weights: all weights are zero"),
    ("val_weights", lambda p: np.ones(4), ValueError,
     "val_weights: expected 3 weights, one per validation row"),
    ("val_weights", lambda p: np.array(["1", "1", "1"]), TypeError, "val_weights: <U1 values; expected 3"),
    ("block", lambda p: 0, ValueError, "block: 0; expected an integer >= 1"),
    ("batch", lambda p: 4.0, TypeError, "batch: expected an integer >= 1, got 4.0 (float)"),
]  # fmt: skip


@pytest.mark.parametrize(("argument", "bad", "error", "message"), KNN_CASES)
def test_knn_shapley_refuses_bad_input_naming_the_argument(argument, bad, error, message):
    inputs = problem()
    inputs["k"] = 3
    inputs[argument] = bad(inputs)
    with pytest.raises(error, match=re.escape(message)):
        knn_shapley(**inputs)


@pytest.mark.parametrize(
    ("groups", "error", "message"),
    [
        (np.array(["a", None, "b"], dtype=object), ValueError, "groups: missing labels (None/NaN)"),
        (np.array([1.0, np.nan, 2.0]), ValueError, "groups: 1 NaN labels"),
        (np.array([1.5, 2.5]), TypeError, "groups: float labels"),
        (np.array([[1, 2]]), ValueError, "groups: expected a 1-D array"),
        (np.array([], dtype=int), ValueError, "groups: no rows; expected one group per validation row"),
    ],
)
def test_group_balanced_weights_refuses_bad_groups(groups, error, message):
    with pytest.raises(error, match=re.escape(message)):
        group_balanced_weights(groups)


VOTES = np.array([[0, 1, -1], [1, 1, 0], [-1, -1, 1]])

LABEL_MODEL_CASES = [
    ({"L": VOTES.astype(float)}, TypeError, "L: float values; expected integer votes"),
    ({"L": VOTES + 0.5}, TypeError, "L: float values; expected integer votes"),
    ({"L": np.where(VOTES == -1, np.nan, VOTES)}, ValueError, "L: 3 NaN entries"),
    ({"L": VOTES.astype(str)}, TypeError, "L: <U21 values; expected integer votes"),
    ({"L": scipy.sparse.csr_matrix(VOTES)}, TypeError, "L: a scipy sparse matrix; expected a dense array"),
    ({"L": VOTES + 1}, ValueError, "L: votes range 0..2; expected ABSTAIN (-1) or 0..1"),
    ({"L": VOTES[0]}, ValueError, "L: expected a 2-D label matrix (rows x LFs)"),
    ({"gold": np.array([0.0, 1.0, -1.0])}, TypeError, "gold: float values; expected integer labels"),
    ({"gold": np.array([0.0, np.nan, 1.0])}, ValueError, "gold: 1 NaN entries"),
    ({"gold": np.array([0, 2, -1])}, ValueError, "gold: labels range -1..2; expected -1 or 0..1"),
    ({"gold": np.array([0, 1])}, ValueError, "gold: expected 3 entries"),
    ({"cardinality": 2.0}, TypeError, "cardinality: expected an integer number of classes, got 2.0"),
    ({"cardinality": 1}, ValueError, "cardinality: 1; expected at least 2 classes"),
    ({"max_iter": 10.5}, TypeError, "max_iter: expected an integer >= 1, got 10.5 (float)"),
    ({"max_iter": 0}, ValueError, "max_iter: 0; expected an integer >= 1"),
    ({"kind": "snorkel"}, ValueError, "kind: 'snorkel'; expected 'dawid_skene' or 'majority_vote'"),
]


@pytest.mark.parametrize(("change", "error", "message"), LABEL_MODEL_CASES)
def test_fit_label_model_refuses_bad_input_naming_the_argument(change, error, message):
    inputs = {"L": VOTES, "gold": np.array([0, -1, 1]), "cardinality": 2} | change
    with pytest.raises(error, match=re.escape(message)):
        fit_label_model(**inputs)


@pytest.mark.parametrize("model", [LabelModel(2), MajorityVote(2)])
def test_label_model_and_majority_vote_fit_and_predict_refuse_float_votes(model):
    with pytest.raises(TypeError, match=re.escape("L: float values; expected integer votes")):
        model.fit(VOTES.astype(float))
    model.fit(VOTES)
    with pytest.raises(TypeError, match=re.escape("L: float values; expected integer votes")):
        model.predict_proba(VOTES.astype(float))


def test_string_labels_give_the_values_of_their_integer_codes():
    inputs = problem()
    names = np.array(["cat", "dog"])
    as_codes = knn_shapley(**inputs, k=3).values
    as_strings = knn_shapley(
        inputs["X_train"],
        names[inputs["y_train"]],
        inputs["X_val"],
        names[inputs["y_val"]].astype(object),
        k=3,
    ).values
    np.testing.assert_array_equal(as_strings, as_codes)


def test_a_string_validation_label_absent_from_training_earns_nothing():
    inputs = problem()
    result = knn_shapley(inputs["X_train"], np.array(list("ababba")), inputs["X_val"], np.array(["c"] * 3))
    assert np.all(result.values == 0)


def test_pandas_frames_and_series_give_the_values_of_their_arrays():
    inputs = problem()
    frame = pd.DataFrame(inputs["X_train"], columns=["a", "b"]).assign(b=lambda f: f["b"] > 0)
    as_pandas = knn_shapley(
        frame, pd.Series(inputs["y_train"]), pd.DataFrame(inputs["X_val"]), pd.Series(inputs["y_val"]),
        k=3, val_weights=pd.Series([0.2, 0.3, 0.5]),
    ).values  # fmt: skip
    as_arrays = knn_shapley(
        frame.to_numpy(dtype=float), inputs["y_train"], inputs["X_val"], inputs["y_val"], k=3,
        val_weights=np.array([0.2, 0.3, 0.5]),
    ).values  # fmt: skip
    np.testing.assert_array_equal(as_pandas, as_arrays)


def test_categorical_labels_are_encoded_like_their_strings():
    inputs = problem()
    labels = pd.Series(pd.Categorical(np.array(["x", "y"])[inputs["y_train"]]))
    values = knn_shapley(inputs["X_train"], labels, inputs["X_val"], np.array(["y", "x", "y"]), k=3).values
    np.testing.assert_array_equal(values, knn_shapley(**inputs, k=3).values)
