"""Labeling functions: domain heuristics written as code that vote a class or abstain.

Vectorised LFs take a DataFrame and return one vote per row; they are what makes labeling a
million rows fast. Row-wise LFs take one row (a namedtuple) and return one vote. Votes are class
indices ``0..k-1`` or ``ABSTAIN`` (-1).
"""

from __future__ import annotations

import hashlib
import inspect
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

ABSTAIN = -1
OnError = Literal["raise", "abstain"]


class LabelingFunctionError(ValueError):
    """A labeling function failed or returned something that is not a vote."""


@dataclass(frozen=True)
class LabelingFunction:
    """A named heuristic that votes a class index or abstains.

    ``uses`` lists the columns it reads, so that a coverage alert can name them.
    """

    name: str
    fn: Callable[..., Any]
    vectorized: bool = True
    uses: tuple[str, ...] = ()
    description: str = ""

    @property
    def source_hash(self) -> str:
        """Hash of the function's source: editing the LF changes it."""
        try:
            source = textwrap.dedent(inspect.getsource(self.fn))
        except (OSError, TypeError):  # e.g. defined in a REPL
            source = getattr(self.fn, "__qualname__", repr(self.fn))
        return hashlib.sha256(source.encode()).hexdigest()[:12]

    def __call__(self, frame: pd.DataFrame) -> np.ndarray:
        if self.vectorized:
            return np.asarray(self.fn(frame))
        # A list, not a typed array, so that a float or text vote is refused, not truncated.
        return np.asarray([self.fn(row) for row in frame.itertuples(index=False)])


def labeling_function(
    name: str | None = None,
    *,
    vectorized: bool = True,
    uses: Sequence[str] = (),
) -> Callable[[Callable[..., Any]], LabelingFunction]:
    """Turn a function into a named labeling function.

    Examples
    --------
    >>> @labeling_function(uses=["amount"])
    ... def large_refund(df):
    ...     return np.where(df["amount"] < -1000, 1, ABSTAIN)
    >>> @labeling_function(vectorized=False)
    ... def small_order(row):
    ...     return 0 if 0 < row.amount < 40 else ABSTAIN
    >>> lfs = LabelingFunctionSet([large_refund, small_order], classes=["kept", "refund"])
    >>> lfs.names
    ['large_refund', 'small_order']
    >>> apply_lfs(lfs, pd.DataFrame({"amount": [-5000.0, 25.0, 300.0]})).matrix.tolist()
    [[1, -1], [-1, 0], [-1, -1]]
    """

    def wrap(fn: Callable[..., Any]) -> LabelingFunction:
        doc = (inspect.getdoc(fn) or "").strip().splitlines()
        return LabelingFunction(
            name=name or fn.__name__,
            fn=fn,
            vectorized=vectorized,
            uses=tuple(uses),
            description=doc[0] if doc else "",
        )

    return wrap


@dataclass(frozen=True)
class LabelingFunctionSet:
    """The LFs of one task and its classes; its version hashes every LF's source."""

    lfs: Sequence[LabelingFunction]
    classes: Sequence[str]
    on_error: OnError = "raise"

    def __post_init__(self) -> None:
        if len(self.classes) < 2:
            raise ValueError(f"classes: {list(self.classes)} has fewer than 2 classes; expected at least 2")
        names = [lf.name for lf in self.lfs]
        if not names:
            raise ValueError("lfs: the set is empty; expected at least one labeling function")
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"lfs: names {duplicated} are used more than once; expected unique names")
        if self.on_error not in ("raise", "abstain"):
            raise ValueError(f"on_error: {self.on_error!r}; expected 'raise' or 'abstain'")

    @property
    def names(self) -> list[str]:
        return [lf.name for lf in self.lfs]

    @property
    def cardinality(self) -> int:
        return len(self.classes)

    @property
    def version(self) -> str:
        """Changes when any LF's code, the LF list or the classes change."""
        parts = [f"{lf.name}:{lf.source_hash}" for lf in self.lfs] + list(self.classes)
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


@dataclass
class Votes:
    """The label matrix of one partition and what went wrong while computing it."""

    matrix: np.ndarray  # (n, m) int8, ABSTAIN = -1
    errors: dict[str, list[int]] = field(default_factory=dict)  # LF -> rows it raised on


def apply_lfs(lf_set: LabelingFunctionSet, frame: pd.DataFrame, *, partition: str | None = None) -> Votes:
    """Apply every LF to ``frame``: the (n x m) int8 label matrix.

    A failing LF raises a LabelingFunctionError naming the LF, partition and first failing row;
    with ``on_error="abstain"`` its failing rows abstain and are reported in ``Votes.errors``.
    """
    n = len(frame)
    matrix = np.full((n, len(lf_set.lfs)), ABSTAIN, dtype=np.int8)
    errors: dict[str, list[int]] = {}
    where = f"partition {partition!r}" if partition is not None else "the data"
    for j, lf in enumerate(lf_set.lfs):
        votes, failed = _apply_one(lf, frame)
        if failed:
            first, exc = failed[0]
            row = _plain(frame.index[first])
            if lf_set.on_error == "raise":
                raise LabelingFunctionError(
                    f"labeling function {lf.name!r} raised {type(exc).__name__}: {exc} on {where}, "
                    f"first failing row {row!r} ({_row_text(frame, first)}); expected a vote for every "
                    "row. Fix the LF, or set on_error='abstain' to count such rows as abstains"
                ) from exc
            errors[lf.name] = [i for i, _ in failed]
        matrix[:, j] = _check_votes(lf, votes, n, lf_set.cardinality, where, frame)
    return Votes(matrix=matrix, errors=errors)


def _plain(value: Any) -> Any:
    """numpy scalars as plain Python values, so messages read `105`, not `np.int64(105)`."""
    return value.item() if isinstance(value, np.generic) else value


def _row_text(frame: pd.DataFrame, i: int, limit: int = 6) -> str:
    row = frame.iloc[i]
    items = [f"{k}={_plain(v)!r}" for k, v in list(row.items())[:limit]]
    return ", ".join(items) + (", ..." if len(row) > limit else "")


def _apply_one(lf: LabelingFunction, frame: pd.DataFrame) -> tuple[np.ndarray, list[tuple[int, Exception]]]:
    """Votes of one LF; rows it raises on abstain and are returned with their exception.

    A vectorised LF that raises is bisected to the rows that make it fail: O(f log n) calls.
    """
    try:
        return lf(frame), []
    except Exception as exc:
        if len(frame) <= 1:
            return np.full(len(frame), ABSTAIN), [(0, exc)]
    if not lf.vectorized:
        return _apply_rowwise(lf, frame)
    mid = len(frame) // 2
    left, left_failed = _apply_one(lf, frame.iloc[:mid])
    right, right_failed = _apply_one(lf, frame.iloc[mid:])
    votes = np.concatenate([np.asarray(left).reshape(-1), np.asarray(right).reshape(-1)])
    return votes, left_failed + [(i + mid, e) for i, e in right_failed]


def _apply_rowwise(
    lf: LabelingFunction, frame: pd.DataFrame
) -> tuple[np.ndarray, list[tuple[int, Exception]]]:
    votes = np.full(len(frame), ABSTAIN, dtype=np.int64)
    failed = []
    for i, row in enumerate(frame.itertuples(index=False)):
        try:
            votes[i] = lf.fn(row)
        except Exception as exc:
            failed.append((i, exc))
    return votes, failed


def _check_votes(
    lf: LabelingFunction, votes: np.ndarray, n: int, k: int, where: str, frame: pd.DataFrame
) -> np.ndarray:
    votes = np.asarray(votes).reshape(-1) if np.ndim(votes) else np.asarray(votes)
    if votes.shape != (n,):
        found = f"{votes.shape[0]} votes" if votes.ndim else f"one value ({_plain(votes.item())!r})"
        raise LabelingFunctionError(
            f"labeling function {lf.name!r} returned {found} on {where}; expected one vote per row ({n})"
        )
    if votes.dtype.kind == "f":
        if np.isnan(votes).any():
            i = int(np.flatnonzero(np.isnan(votes))[0])
            raise LabelingFunctionError(
                f"labeling function {lf.name!r} returned NaN on {where} at row {_plain(frame.index[i])!r}; "
                f"expected a class index 0..{k - 1} or ABSTAIN (-1)"
            )
        if (votes != np.round(votes)).any():
            raise LabelingFunctionError(
                f"labeling function {lf.name!r} returned non-integer votes on {where}; "
                f"expected class indices 0..{k - 1} or ABSTAIN (-1)"
            )
    elif votes.dtype.kind not in "iub":
        raise LabelingFunctionError(
            f"labeling function {lf.name!r} returned {votes.dtype} votes on {where}; "
            f"expected integer class indices 0..{k - 1} or ABSTAIN (-1)"
        )
    votes = votes.astype(np.int64)
    bad = (votes < ABSTAIN) | (votes >= k)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise LabelingFunctionError(
            f"labeling function {lf.name!r} voted {votes[i]} on {where} at row {_plain(frame.index[i])!r} "
            f"({int(bad.sum())} rows out of range); expected a class index 0..{k - 1} or ABSTAIN (-1)"
        )
    return votes.astype(np.int8)


def gold_indices(
    values: pd.Series, classes: Sequence[str], *, column: str, partition: str | None = None
) -> np.ndarray:
    """Gold labels as class indices (-1 where there is none); class names or indices accepted."""
    index = {str(i): i for i in range(len(classes))}
    index.update({str(c): i for i, c in enumerate(classes)})  # class names win over indices
    present = values.notna().to_numpy()
    text = values.astype(str).str.removesuffix(".0")
    mapped = text.map(index)
    bad = present & mapped.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        where = f" in partition {partition!r}" if partition is not None else ""
        raise LabelingFunctionError(
            f"gold label column {column!r}{where} holds {_plain(values.iloc[i])!r} "
            f"at row {_plain(values.index[i])!r} "
            f"({int(bad.sum())} such rows); expected one of {list(classes)} or their indices, or empty"
        )
    return np.where(present, mapped.fillna(-1).to_numpy(), ABSTAIN).astype(np.int64)
