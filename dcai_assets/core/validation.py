"""Input checks for the public numeric functions, as scikit-learn does them: once, at the boundary,
with an error that names the argument, what was found and what was expected. Nothing is coerced
silently: float labels are not truncated, ``k=2.5`` is not rounded, NaN is not a class.

pandas objects are accepted and converted explicitly; scipy sparse matrices are refused (call
``.toarray()``): the consumers here are dense kernels.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd


def _is_sparse(value: object) -> bool:
    """A scipy sparse matrix or array, detected without importing scipy."""
    return type(value).__module__.startswith("scipy.sparse")


def check_int(value: object, name: str, *, minimum: int) -> int:
    """``value`` as a Python int, if it is an integer (not a bool, not a float) >= ``minimum``."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer >= {minimum}, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name}: {value}; expected an integer >= {minimum}")
    return int(value)


def check_features(X: object, name: str) -> np.ndarray:
    """A dense, finite, float64, C-ordered rows x features matrix.

    Accepts numpy arrays and pandas DataFrames of numeric or bool columns; refuses sparse matrices,
    non-numeric columns, complex numbers, NaN and infinities, naming the columns.
    """
    if _is_sparse(X):
        raise TypeError(f"{name}: a scipy sparse matrix; expected a dense array (pass {name}.toarray())")
    if isinstance(X, pd.DataFrame):
        bad = [str(c) for c, t in X.dtypes.items() if t.kind not in "iufb"]
        if bad:
            raise ValueError(
                f"{name}: non-numeric columns {bad[:10]}; expected numeric features (encode them first, "
                "e.g. with the model's preprocessing)"
            )
        X = X.to_numpy(dtype=np.float64)
    elif isinstance(X, pd.Series):
        raise ValueError(
            f"{name}: a pandas Series; expected a 2-D matrix (rows x features), e.g. frame[[col]]"
        )
    X = np.asarray(X)
    if X.dtype.kind not in "iufb":
        raise TypeError(f"{name}: {X.dtype} values; expected real numbers (int, float or bool)")
    if X.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (rows x features), got shape {X.shape}")
    X = np.ascontiguousarray(X, dtype=np.float64)
    bad = ~np.isfinite(X)
    if bad.any():
        cols = sorted(set(np.nonzero(bad)[1].tolist()))
        raise ValueError(
            f"{name}: NaN or infinite values in feature columns {cols[:10]}; expected finite numbers "
            "(impute or drop them in the pipeline's preprocessing)"
        )
    return X


def check_labels(y: object, name: str, n: int | None = None) -> np.ndarray:
    """Class labels as a 1-D array of integers, bools or strings (``n`` of them if given).

    Refused: floats (never truncated; pass ``y.astype(int)`` if they are whole numbers), missing
    values (NaN, None), a mix of strings and numbers, sparse matrices, 2-D arrays.
    """
    if _is_sparse(y):
        raise TypeError(f"{name}: a scipy sparse matrix; expected a 1-D array of class labels")
    if isinstance(y, pd.Series | pd.Index | pd.Categorical):
        y = y.to_numpy(dtype=object) if isinstance(y.dtype, pd.CategoricalDtype) else y.to_numpy()
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of class labels, got shape {y.shape}")
    if n is not None and y.shape[0] != n:
        raise ValueError(f"{name}: {y.shape[0]} labels; expected {n}, one per row")
    if y.dtype.kind == "f":
        if np.isnan(y).any():
            raise ValueError(f"{name}: {int(np.isnan(y).sum())} NaN labels; expected a class for every row")
        raise TypeError(
            f"{name}: float labels; expected integer, bool or string class labels (floats are not "
            "truncated: pass y.astype(int) if they are whole numbers)"
        )
    if y.dtype.kind == "O":
        kinds = set()
        for value in y:
            if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
                raise ValueError(f"{name}: missing labels (None/NaN); expected a class for every row")
            if isinstance(value, str):
                kinds.add("str")
            elif isinstance(value, bool | np.bool_ | numbers.Integral):
                kinds.add("int")
            else:
                raise TypeError(
                    f"{name}: a label {value!r} of type {type(value).__name__}; expected integer, bool or "
                    "string class labels"
                )
        if len(kinds) > 1:
            raise TypeError(f"{name}: a mix of string and integer labels; expected one kind")
        y = y.astype(str) if kinds == {"str"} else y.astype(np.int64)
    elif y.dtype.kind not in "iubU":
        raise TypeError(f"{name}: {y.dtype} labels; expected integer, bool or string class labels")
    return y


def encode_labels(y_train: np.ndarray, y_val: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Codes 0..C-1 of the training classes for both arrays (checked by :func:`check_labels`);
    a validation label absent from training gets -1. Both must be of one kind (numbers or strings).
    Returns (train codes, validation codes, classes)."""
    if (y_train.dtype.kind == "U") != (y_val.dtype.kind == "U"):
        raise TypeError(
            f"y_train holds {y_train.dtype} labels and y_val {y_val.dtype}; expected the same kind "
            "(both strings or both integers), or no validation row could match a training class"
        )
    classes, codes = np.unique(y_train, return_inverse=True)
    where = np.minimum(np.searchsorted(classes, y_val), len(classes) - 1)
    val_codes = np.where(classes[where] == y_val, where, -1)
    return codes.astype(np.int64), val_codes.astype(np.int64), classes


def check_weights(w: object, name: str, n: int) -> np.ndarray:
    """``n`` finite, non-negative float64 weights with a positive sum."""
    if _is_sparse(w):
        raise TypeError(f"{name}: a scipy sparse matrix; expected a 1-D array of {n} weights")
    if isinstance(w, pd.Series):
        w = w.to_numpy()
    w = np.asarray(w)
    if w.dtype.kind not in "iuf":
        raise TypeError(f"{name}: {w.dtype} values; expected {n} real-valued weights")
    w = np.ascontiguousarray(w, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"{name}: expected {n} weights, one per validation row, got shape {w.shape}")
    if not np.isfinite(w).all():
        raise ValueError(
            f"{name}: {int((~np.isfinite(w)).sum())} NaN or infinite weights; expected finite weights"
        )
    if (w < 0).any():
        raise ValueError(f"{name}: {int((w < 0).sum())} negative weights; expected weights >= 0")
    if not w.sum() > 0:
        raise ValueError(f"{name}: all weights are zero; expected at least one positive weight")
    return w


def check_integer_array(values: object, name: str, what: str) -> np.ndarray:
    """``values`` as a numpy array of integers (or bools) of any shape (``what`` says what they
    are, for the message). Float arrays are refused, whole-valued or not: never truncated."""
    if _is_sparse(values):
        raise TypeError(
            f"{name}: a scipy sparse matrix; expected a dense array of {what} (pass {name}.toarray())"
        )
    if isinstance(values, pd.DataFrame | pd.Series):
        values = values.to_numpy()
    values = np.asarray(values)
    if values.dtype.kind == "f":
        nan = int(np.isnan(values).sum())
        if nan:
            raise ValueError(f"{name}: {nan} NaN entries; expected {what}")
        raise TypeError(
            f"{name}: float values; expected integer {what} (pass .astype(int) if they are whole numbers)"
        )
    if values.dtype.kind not in "iub":
        raise TypeError(f"{name}: {values.dtype} values; expected integer {what}")
    return values
