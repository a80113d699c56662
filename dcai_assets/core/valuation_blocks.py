"""Valuation that grows with the data: the exact KNN-Shapley values of the training rows, summed
over blocks of holdout rows that are checkpointed as they finish, so that a valuation killed
mid-way resumes from its completed blocks, and one whose holdout only gained rows adds the new
rows' contributions to a stored valuation instead of recomputing it.

Why this is exact: a row's value is sum_j w_j s_j, over holdout rows j, where s_j, the row's
Shapley value for the utility of holdout row j alone, depends only on the training rows, K and
holdout row j (its features and label). Only the weights depend on the other holdout rows:
w_j = 1 / m (KNN accuracy), or 1 / (G n_g) for row j of group g, one of G groups of n_g rows
(group-balanced accuracy). So each block stores, per group, the unweighted sums of s_j and of
the leave-one-out values; any set of blocks covering the holdout gives the values, with the
weights of the holdout as it is now.

What may be reused is decided by a key: the model version, content hashes of the training rows
(preprocessed features and labels) and of each holdout row (features, label, group), K, the
utility and the classes. Blocks are named by the key and their rows' hashes, so a block of
another key, or of other rows, is never read for this valuation. Storage is behind
:class:`BlockStore` (:mod:`dcai_assets.io.valuation_store` keeps it under the artifact store).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

from dcai_assets.core.knn_shapley import knn_shapley
from dcai_assets.core.validation import check_int

FORMAT = "valuation-blocks-v1"
TARGET_BLOCKS = 20  # a checkpoint and a progress line every 5% of the holdout rows
MIN_BLOCK_ROWS = 512  # fewer rows per kernel call leave cores idle (8 kernel blocks of 64)
MAX_TOTALS_BYTES = 2 * 1024**3  # per-group sums beyond this: no checkpoints (many groups x rows)
_HASH_KEYS = ("dcai-valuation-1", "dcai-valuation-2")  # two 64-bit hashes: 128 bits per row


@dataclass(frozen=True)
class BlockSums:
    """Unweighted sums over some holdout rows, per group: ``values[g]`` and ``loo[g]`` sum the
    training rows' KNN-Shapley and leave-one-out values for the ``counts[g]`` rows of group
    ``groups[g]``; ``rows`` are those holdout rows' hashes (:func:`row_hashes`), in order."""

    rows: np.ndarray
    groups: np.ndarray
    counts: np.ndarray
    values: np.ndarray
    loo: np.ndarray

    def fits(self, rows: np.ndarray, training_rows: int) -> bool:
        """Whether these are sums over exactly ``rows``, for ``training_rows`` training rows."""
        return (
            self.rows.shape == rows.shape
            and bool(np.array_equal(self.rows, rows))
            and self.values.shape == (len(self.groups), training_rows)
            and self.loo.shape == self.values.shape
            and int(self.counts.sum()) == len(rows)
        )


class BlockStore(Protocol):
    """Where blocks and complete valuations are kept, per key (:mod:`dcai_assets.io.valuation_store`).
    ``kind`` is ``"blocks"`` (checkpoints of a valuation in progress) or ``"complete"``."""

    def describe(self, key: str, description: dict) -> None: ...
    def read(self, key: str, kind: str, name: str) -> BlockSums | None: ...
    def write(self, key: str, kind: str, name: str, sums: BlockSums) -> None: ...
    def remove(self, key: str, kind: str, name: str) -> None: ...
    def complete(self, key: str) -> list[str]: ...
    def complete_rows(self, key: str, name: str) -> np.ndarray | None: ...


@dataclass(frozen=True)
class ValuationKey:
    """What the stored sums depend on; ``digest`` names them. Two valuations share blocks only
    when every field is equal."""

    model_version: str
    training_rows: str
    k: int
    utility: str
    classes: int

    @property
    def digest(self) -> str:
        return _digest(json.dumps({"format": FORMAT, **self.__dict__}, sort_keys=True).encode())[:32]


def valuation_key(
    X_train: np.ndarray, y_train: np.ndarray, *, model_version: str, k: int, group: str | None, classes: int
) -> ValuationKey:
    """The key of a valuation of these training rows (their exact bytes and labels)."""
    if not isinstance(model_version, str) or not model_version:
        raise ValueError(
            f"model_version: {model_version!r}; expected the model's version (a non-empty string)"
        )
    X = np.ascontiguousarray(X_train, dtype=np.float64)
    y = np.ascontiguousarray(y_train, dtype=np.int64)
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((X.shape, y.shape)).encode())
    h.update(X.tobytes())
    h.update(y.tobytes())
    utility = "knn-accuracy" if group is None else f"group-balanced-knn-accuracy:{group}"
    return ValuationKey(model_version, h.hexdigest(), check_int(k, "k", minimum=1), utility, int(classes))


def row_hashes(X_val: np.ndarray, y_val: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """A 128-bit hash of each holdout row (its features' exact bits, label and group): shape
    (rows, 2), uint64. Equal rows have equal hashes, and earn equal sums."""
    X = np.ascontiguousarray(X_val, dtype=np.float64)
    frame = pd.DataFrame(X.view(np.uint64) if X.size else np.zeros((len(X), 0), np.uint64))
    frame.columns = [f"x{i}" for i in range(frame.shape[1])]
    frame["_y"] = np.asarray(y_val, dtype=np.int64)
    frame["_group"] = "" if groups is None else np.asarray(groups, dtype=str)
    return np.stack(
        [pd.util.hash_pandas_object(frame, index=False, hash_key=key).to_numpy() for key in _HASH_KEYS],
        axis=1,
    ).astype(np.uint64)


@dataclass(frozen=True)
class ValuationPath:
    """How a valuation was obtained: ``full`` (every block computed), ``resumed`` (some blocks
    of an interrupted run reused), ``incremental`` (a stored valuation of a subset of the holdout
    rows reused; only the other rows valued), ``unchanged`` (a stored valuation of the same rows),
    or ``not checkpointed`` (``why``)."""

    kind: str
    rows: int
    blocks: int = 0
    blocks_reused: int = 0
    rows_reused: int = 0
    why: str = ""

    def describe(self) -> str:
        if self.kind == "not checkpointed":
            return f"full, not checkpointed: {self.why}"
        if self.kind == "unchanged":
            return f"unchanged: reused the stored valuation of the same {self.rows:,} holdout rows"
        resumed = f"{self.blocks_reused} of {self.blocks} blocks reused from an interrupted run"
        if self.kind == "incremental":
            new = self.rows - self.rows_reused
            return (
                f"incremental: {new:,} new holdout rows valued and added to the stored valuation of "
                f"{self.rows_reused:,} rows" + (f" ({resumed})" if self.blocks_reused else "")
            )
        if self.kind == "resumed":
            computed = self.blocks - self.blocks_reused
            return f"resumed: {resumed}, {computed} computed ({self.rows:,} holdout rows)"
        return f"full: {self.blocks} blocks of holdout rows computed ({self.rows:,} holdout rows)"


@dataclass(frozen=True)
class BlockedValuation:
    """The weighted values of the training rows for the valued holdout rows, and how they came."""

    values: np.ndarray
    loo: np.ndarray
    path: ValuationPath
    seconds_computing: float = 0.0


@dataclass
class _Plan:
    base: str | None  # a complete valuation of a subset of the rows, reused whole
    base_hashes: np.ndarray  # its rows' hashes
    blocks: list[np.ndarray] = field(default_factory=list)  # holdout row indices of each block


def default_block_rows(rows: int) -> int:
    """Rows per block: about :data:`TARGET_BLOCKS` blocks, none smaller than
    :data:`MIN_BLOCK_ROWS` (unless the rows are fewer)."""
    return max(1, min(rows, max(MIN_BLOCK_ROWS, -(-rows // TARGET_BLOCKS))))


def group_weights(groups: np.ndarray | None, rows: int) -> tuple[dict[str, float], np.ndarray]:
    """Each group's weight per row, 1 / (G n_g) (one group ``""`` of weight 1 / rows without
    groups), and the per-row weights."""
    labels = np.full(rows, "") if groups is None else np.asarray(groups, dtype=str)
    if labels.shape != (rows,):
        raise ValueError(f"groups: shape {labels.shape}; expected one group per holdout row ({rows})")
    uniques, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    per_group = 1.0 / (len(uniques) * counts)
    return dict(zip(uniques.tolist(), per_group.tolist(), strict=True)), per_group[inverse]


def blocked_values(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    *,
    key: ValuationKey,
    store: BlockStore,
    groups: np.ndarray | None = None,
    start: int = 0,
    stop: int | None = None,
    block_rows: int | None = None,
    progress: Callable[[int, int, int, int], None] | None = None,
    after_block: Callable[[int], None] | None = None,
) -> BlockedValuation:
    """Exact KNN-Shapley and leave-one-out values of the training rows for holdout rows
    ``start..stop-1``, weighted as in the whole holdout (equally, or balanced over ``groups``),
    reusing what ``store`` holds under ``key``: a complete valuation of a subset of these rows
    (only the others are valued), and the blocks an interrupted run finished. Blocks of
    ``block_rows`` rows (default :func:`default_block_rows`) are written as they finish; once all
    are done, one complete valuation of the rows replaces them.

    ``progress(blocks_done, blocks, rows_done, rows)`` is called after each block (reused or
    computed); ``after_block(i)`` after block ``i`` is written (a hook for tests).
    """
    m = len(X_val)
    stop = m if stop is None else stop
    if not 0 <= start < stop <= m:
        raise ValueError(f"start={start}, stop={stop}: expected 0 <= start < stop <= {m} holdout rows")
    n = len(X_train)
    per_group, _ = group_weights(groups, m)
    names = np.full(m, "") if groups is None else np.asarray(groups, dtype=str)
    if len(per_group) * n * 16 > MAX_TOTALS_BYTES:
        return _not_checkpointed(X_train, y_train, X_val, y_val, groups, start, stop, key.k)
    hashes = row_hashes(X_val[start:stop], y_val[start:stop], names[start:stop])
    store.describe(key.digest, key.__dict__ | {"format": FORMAT})
    plan, base_sums = _readable_plan(store, key.digest, hashes, block_rows, n)
    totals: dict[str, list] = {}
    if base_sums is not None:
        _add(totals, base_sums)
    reused, computing, done_rows = 0, 0.0, len(plan.base_hashes)
    written = []
    for i, rows in enumerate(plan.blocks):
        name = _digest(key.digest.encode() + hashes[rows].tobytes())[:40]
        sums = store.read(key.digest, "blocks", name)
        if sums is not None and sums.fits(hashes[rows], n):
            reused += 1
        else:
            started = time.perf_counter()
            sums = _block_sums(X_train, y_train, X_val, y_val, names, start + rows, hashes[rows], key.k)
            computing += time.perf_counter() - started
            store.write(key.digest, "blocks", name, sums)
            if after_block is not None:
                after_block(i)
        written.append(name)
        _add(totals, sums)
        done_rows += len(rows)
        if progress is not None:
            progress(i + 1, len(plan.blocks), done_rows, len(hashes))
    complete_name = _digest(hashes.tobytes())[:40]
    if complete_name != plan.base:
        store.write(key.digest, "complete", complete_name, _complete_sums(hashes, totals, n))
    for name in written:  # folded into the complete valuation
        store.remove(key.digest, "blocks", name)
    values, loo = np.zeros(n), np.zeros(n)
    for g, (v, lo, _) in totals.items():
        values += per_group[g] * v
        loo += per_group[g] * lo
    if plan.base is not None:
        kind = "unchanged" if not plan.blocks else "incremental"
    else:
        kind = "resumed" if reused else "full"
    path = ValuationPath(kind, len(hashes), len(plan.blocks), reused, len(plan.base_hashes))
    return BlockedValuation(values, loo, path, computing)


def _not_checkpointed(X_train, y_train, X_val, y_val, groups, start, stop, k) -> BlockedValuation:
    """One exact valuation of rows start..stop-1, for when per-group sums would take too much memory."""
    per_group, weights = group_weights(groups, len(X_val))
    result = knn_shapley(
        X_train, y_train, X_val[start:stop], y_val[start:stop], k=k, val_weights=weights[start:stop]
    )
    gb = MAX_TOTALS_BYTES / 1024**3
    why = f"{len(per_group)} groups x {len(X_train):,} training rows of sums exceed {gb:.0f} GB"
    return BlockedValuation(
        result.values, result.loo, ValuationPath("not checkpointed", stop - start, why=why)
    )


def _readable_plan(
    store: BlockStore, key: str, hashes: np.ndarray, block_rows: int | None, n: int
) -> tuple[_Plan, BlockSums | None]:
    """The plan, and the sums of the stored valuation it builds on; a stored valuation that
    cannot be read is planned without."""
    unreadable: set[str] = set()
    while True:
        plan = _plan(store, key, hashes, block_rows, unreadable)
        if plan.base is None:
            return plan, None
        base_sums = store.read(key, "complete", plan.base)
        if base_sums is not None and base_sums.fits(plan.base_hashes, n):
            return plan, base_sums
        unreadable.add(plan.base)


def _plan(
    store: BlockStore, key: str, hashes: np.ndarray, block_rows: int | None, exclude: set[str]
) -> _Plan:
    """The largest stored complete valuation of a subset of the rows, and blocks of the rest."""
    best, best_hashes = None, np.zeros((0, 2), np.uint64)
    matched = np.zeros(len(hashes), bool)
    for name in store.complete(key):
        stored = None if name in exclude else store.complete_rows(key, name)
        if (
            stored is None
            or len(stored) > len(hashes)
            or (best is not None and len(stored) <= len(best_hashes))
        ):
            continue
        covered = _matched(hashes, stored)
        if covered is not None:
            best, best_hashes, matched = name, stored, covered
    rest = np.nonzero(~matched)[0]
    size = (
        default_block_rows(len(rest))
        if block_rows is None
        else check_int(block_rows, "block_rows", minimum=1)
    )
    return _Plan(best, best_hashes, [rest[i : i + size] for i in range(0, len(rest), size)])


def _matched(hashes: np.ndarray, stored: np.ndarray) -> np.ndarray | None:
    """Which of ``hashes`` the multiset ``stored`` covers (one row per stored copy), or None if
    ``stored`` is not a sub-multiset of ``hashes``."""
    as_rows = np.ascontiguousarray(hashes).view([("a", np.uint64), ("b", np.uint64)]).ravel()
    old = np.ascontiguousarray(stored).view([("a", np.uint64), ("b", np.uint64)]).ravel()
    uniques, inverse, counts = np.unique(as_rows, return_inverse=True, return_counts=True)
    old_uniques, old_counts = np.unique(old, return_counts=True)
    at = np.searchsorted(uniques, old_uniques)
    present = at < len(uniques)
    present[present] = uniques[at[present]] == old_uniques[present]
    if not present.all() or (counts[at] < old_counts).any():
        return None
    wanted = np.zeros(len(uniques), np.int64)
    wanted[at] = old_counts
    order = np.argsort(inverse, kind="stable")
    sorted_groups = inverse[order]
    first = np.searchsorted(sorted_groups, sorted_groups)  # each row's rank among its equals
    matched = np.zeros(len(hashes), bool)
    matched[order] = (np.arange(len(order)) - first) < wanted[sorted_groups]
    return matched


def _block_sums(X_train, y_train, X_val, y_val, names, rows, hashes, k) -> BlockSums:
    """The unweighted sums over holdout ``rows``, one kernel call per group among them."""
    groups, inverse, counts = np.unique(names[rows], return_inverse=True, return_counts=True)
    values, loo = np.zeros((len(groups), len(X_train))), np.zeros((len(groups), len(X_train)))
    for g in range(len(groups)):
        these = rows[inverse == g]
        result = knn_shapley(
            X_train, y_train, X_val[these], y_val[these], k=k, val_weights=np.ones(len(these))
        )  # fmt: skip
        values[g], loo[g] = result.values, result.loo
    return BlockSums(hashes, groups.astype(str), counts.astype(np.int64), values, loo)


def _add(totals: dict[str, list], sums: BlockSums) -> None:
    """Add each group's sums (and row count) to the running totals."""
    for g, group in enumerate(sums.groups.tolist()):
        if group not in totals:
            totals[group] = [np.zeros(sums.values.shape[1]), np.zeros(sums.values.shape[1]), 0]
        totals[group][0] += sums.values[g]
        totals[group][1] += sums.loo[g]
        totals[group][2] += int(sums.counts[g])


def _complete_sums(hashes: np.ndarray, totals: dict[str, list], n: int) -> BlockSums:
    groups = sorted(totals)
    return BlockSums(
        hashes,
        np.array(groups, dtype=str),
        np.array([totals[g][2] for g in groups], np.int64),
        np.array([totals[g][0] for g in groups]).reshape(len(groups), n),
        np.array([totals[g][1] for g in groups]).reshape(len(groups), n),
    )


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=20).hexdigest()
