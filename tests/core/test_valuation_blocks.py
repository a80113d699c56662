"""Valuation in checkpointed blocks: the same values as one exact valuation, whatever was reused
(an interrupted run's blocks, a stored valuation of fewer holdout rows), and nothing reused
across keys."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from dcai_assets.core.knn_shapley import group_balanced_weights, knn_shapley
from dcai_assets.core.valuation_blocks import blocked_values, row_hashes, valuation_key
from dcai_assets.io.valuation_store import ValuationBlockStore

ROOT = Path(__file__).resolve().parents[2]


def data(n=60, m=40, classes=3, seed=0, d=3):
    rng = np.random.default_rng(seed)
    X, V = rng.normal(size=(n, d)), rng.normal(size=(m, d))
    y = rng.integers(0, classes, n)
    yv = rng.integers(0, classes, m)
    return X, y, V, yv


def key(X, y, k=3, model="run-1", group=None, classes=3):
    return valuation_key(X, y, model_version=model, k=k, group=group, classes=classes)


def value(X, y, V, yv, store, k=3, groups=None, model="run-1", **kwargs):
    group = None if groups is None else "g"
    return blocked_values(X, y, V, yv, key=key(X, y, k, model, group), store=store, groups=groups, **kwargs)


def exact(X, y, V, yv, k=3, groups=None):
    weights = None if groups is None else group_balanced_weights(groups)
    return knn_shapley(X, y, V, yv, k=k, val_weights=weights)


def assert_equal_to_full(result, X, y, V, yv, k=3, groups=None):
    full = exact(X, y, V, yv, k, groups)
    np.testing.assert_allclose(result.values, full.values, rtol=0, atol=1e-12)
    np.testing.assert_allclose(result.loo, full.loo, rtol=0, atol=1e-12)


class Interrupted(Exception):
    pass


def interrupt_after(blocks: int):
    def hook(i: int) -> None:
        if i + 1 == blocks:
            raise Interrupted

    return hook


@pytest.mark.parametrize("block_rows", [1, 7, 40, 1000])
def test_blocks_of_any_size_sum_to_the_exact_values_with_three_classes(tmp_path, block_rows):
    X, y, V, yv = data()
    result = value(X, y, V, yv, ValuationBlockStore(tmp_path), block_rows=block_rows)
    assert result.path.kind == "full"
    assert result.path.blocks == -(-40 // block_rows)
    assert_equal_to_full(result, X, y, V, yv)


@pytest.mark.parametrize(("n", "m", "k"), [(60, 1, 3), (4, 30, 7), (1, 1, 5)])
def test_one_holdout_row_and_k_above_the_training_rows_are_exact(tmp_path, n, m, k):
    X, y, V, yv = data(n=n, m=m)
    result = value(X, y, V, yv, ValuationBlockStore(tmp_path), k=k, block_rows=4)
    assert_equal_to_full(result, X, y, V, yv, k)


def test_a_killed_valuation_resumes_from_its_finished_blocks(tmp_path):
    X, y, V, yv = data(m=40)
    store = ValuationBlockStore(tmp_path)
    with pytest.raises(Interrupted):
        value(X, y, V, yv, store, block_rows=5, after_block=interrupt_after(3))
    written = []
    result = value(X, y, V, yv, store, block_rows=5, after_block=written.append)
    assert (result.path.kind, result.path.blocks, result.path.blocks_reused) == ("resumed", 8, 3)
    assert written == [3, 4, 5, 6, 7]  # only the unfinished blocks were computed
    assert "3 of 8 blocks reused" in result.path.describe()
    assert_equal_to_full(result, X, y, V, yv)


def test_a_finished_valuation_leaves_one_record_and_its_rerun_computes_nothing(tmp_path):
    X, y, V, yv = data()
    store = ValuationBlockStore(tmp_path)
    first = value(X, y, V, yv, store, block_rows=8)
    k = key(X, y).digest
    assert store.blocks(k) == [] and len(store.complete(k)) == 1  # the blocks folded into it
    written = []
    again = value(X, y, V, yv, store, block_rows=8, after_block=written.append)
    assert again.path.kind == "unchanged" and written == []
    np.testing.assert_array_equal(again.values, first.values)


@pytest.mark.parametrize(
    "change",
    ["model version", "k", "one training label", "one training feature", "group utility"],
)
def test_blocks_of_another_key_are_never_reused(tmp_path, change):
    X, y, V, yv = data(m=40)
    store = ValuationBlockStore(tmp_path)
    with pytest.raises(Interrupted):  # leaves finished blocks behind
        value(X, y, V, yv, store, block_rows=5, after_block=interrupt_after(4))
    value(X, y, V, yv, store, block_rows=5)  # and a complete valuation
    X2, y2, k, model, groups = X.copy(), y.copy(), 3, "run-1", None
    if change == "model version":
        model = "run-2"
    elif change == "k":
        k = 4
    elif change == "one training label":
        y2[7] = (y2[7] + 1) % 3
    elif change == "one training feature":
        X2[7, 0] += 1e-9
    else:
        groups = np.array(["a"] * 40)  # one group: the same weights, another utility
    result = value(X2, y2, V, yv, store, k=k, model=model, groups=groups, block_rows=5)
    assert (result.path.kind, result.path.blocks_reused) == ("full", 0)
    assert_equal_to_full(result, X2, y2, V, yv, k, groups)


@pytest.mark.parametrize("where", ["appended", "interleaved"])
def test_added_holdout_rows_are_valued_incrementally_and_equal_a_full_recompute(tmp_path, where):
    X, y, V, yv = data(n=80, m=100)
    store = ValuationBlockStore(tmp_path)
    old = np.arange(90) if where == "appended" else np.setdiff1d(np.arange(100), np.arange(3, 100, 10))
    value(X, y, V[old], yv[old], store, block_rows=16)
    written = []
    result = value(X, y, V, yv, store, block_rows=16, after_block=written.append)
    assert result.path.kind == "incremental"
    assert (result.path.rows, result.path.rows_reused) == (100, 90)
    assert written == [0]  # 10 new rows: one block
    assert result.path.describe().startswith("incremental: 10 new holdout rows")
    assert_equal_to_full(result, X, y, V, yv)


def test_an_incremental_valuation_killed_mid_way_resumes_too(tmp_path):
    X, y, V, yv = data(n=50, m=60)
    store = ValuationBlockStore(tmp_path)
    value(X, y, V[:30], yv[:30], store, block_rows=6)
    with pytest.raises(Interrupted):
        value(X, y, V, yv, store, block_rows=6, after_block=interrupt_after(2))
    result = value(X, y, V, yv, store, block_rows=6)
    assert (result.path.kind, result.path.rows_reused, result.path.blocks_reused) == ("incremental", 30, 2)
    assert_equal_to_full(result, X, y, V, yv)


def test_duplicate_holdout_rows_are_counted_once_per_copy(tmp_path):
    X, y, V, yv = data(n=30, m=10)
    V, yv = np.vstack([V, V[:4], V[:2]]), np.concatenate([yv, yv[:4], yv[:2]])  # rows 0, 1 thrice
    store = ValuationBlockStore(tmp_path)
    value(X, y, V[:14], yv[:14], store, block_rows=3)
    result = value(X, y, V, yv, store, block_rows=3)
    assert (result.path.kind, result.path.rows_reused) == ("incremental", 14)
    assert_equal_to_full(result, X, y, V, yv)


def test_a_holdout_that_lost_a_row_is_valued_in_full(tmp_path):
    X, y, V, yv = data(n=30, m=20)
    store = ValuationBlockStore(tmp_path)
    value(X, y, V, yv, store, block_rows=5)
    result = value(X, y, V[1:], yv[1:], store, block_rows=5)
    assert result.path.kind == "full"
    assert_equal_to_full(result, X, y, V[1:], yv[1:])


def test_group_balanced_values_stay_exact_when_rows_and_a_new_group_arrive(tmp_path):
    X, y, V, yv = data(n=70, m=50)
    groups = np.array(["a"] * 30 + ["b"] * 12 + ["c"] * 8)  # c only among the new rows
    store = ValuationBlockStore(tmp_path)
    first = value(X, y, V[:40], yv[:40], store, groups=groups[:40], block_rows=7)
    assert_equal_to_full(first, X, y, V[:40], yv[:40], groups=groups[:40])
    result = value(X, y, V, yv, store, groups=groups, block_rows=7)
    assert (result.path.kind, result.path.rows_reused) == ("incremental", 40)
    assert_equal_to_full(result, X, y, V, yv, groups=groups)


def test_a_changed_group_of_a_holdout_row_makes_it_another_row(tmp_path):
    X, y, V, yv = data(n=30, m=20)
    groups = np.array(["a", "b"] * 10)
    store = ValuationBlockStore(tmp_path)
    value(X, y, V, yv, store, groups=groups, block_rows=5)
    moved = groups.copy()
    moved[0] = "b"
    result = value(X, y, V, yv, store, groups=moved, block_rows=5)
    assert result.path.kind == "full"
    assert_equal_to_full(result, X, y, V, yv, groups=moved)


def test_a_range_of_the_holdout_is_weighted_as_in_the_whole_so_ranges_sum_to_it(tmp_path):
    X, y, V, yv = data(n=40, m=30)
    groups = np.array(["a"] * 20 + ["b"] * 10)
    store = ValuationBlockStore(tmp_path)
    parts = [
        value(X, y, V, yv, store, groups=groups, start=a, stop=b, block_rows=4)
        for a, b in [(0, 13), (13, 30)]
    ]
    full = exact(X, y, V, yv, groups=groups)
    np.testing.assert_allclose(parts[0].values + parts[1].values, full.values, rtol=0, atol=1e-12)


def test_a_corrupt_block_is_computed_again_not_read(tmp_path):
    X, y, V, yv = data(m=20)
    store = ValuationBlockStore(tmp_path)
    with pytest.raises(Interrupted):
        value(X, y, V, yv, store, block_rows=5, after_block=interrupt_after(2))
    k = key(X, y).digest
    broken = store.root / k / "blocks" / f"{store.blocks(k)[0]}.npz"
    broken.write_bytes(b"not a block")
    result = value(X, y, V, yv, store, block_rows=5)
    assert result.path.blocks_reused == 1
    assert_equal_to_full(result, X, y, V, yv)


def test_an_unreadable_stored_valuation_is_done_without(tmp_path):
    X, y, V, yv = data(m=20)
    store = ValuationBlockStore(tmp_path)
    value(X, y, V[:15], yv[:15], store, block_rows=5)
    k = key(X, y).digest
    (record,) = store.complete(k)
    (store.root / k / "complete" / f"{record}.npz").write_bytes(b"truncated")
    result = value(X, y, V, yv, store, block_rows=5)
    assert result.path.kind == "full"
    assert_equal_to_full(result, X, y, V, yv)


def test_too_many_group_sums_for_memory_are_valued_at_once_and_say_so(tmp_path, monkeypatch):
    from dcai_assets.core import valuation_blocks

    monkeypatch.setattr(valuation_blocks, "MAX_TOTALS_BYTES", 1000)
    X, y, V, yv = data(n=30, m=12)
    groups = np.array(list("abcdef") * 2)
    result = value(X, y, V, yv, ValuationBlockStore(tmp_path), groups=groups, block_rows=4)
    assert result.path.describe().startswith("full, not checkpointed: 6 groups x 30 training rows")
    assert_equal_to_full(result, X, y, V, yv, groups=groups)
    assert list(tmp_path.iterdir()) == []


def test_other_keys_untouched_for_the_max_age_are_pruned_and_the_current_one_kept(tmp_path):
    X, y, V, yv = data(m=10)
    store = ValuationBlockStore(tmp_path, max_age_seconds=60)
    value(X, y, V, yv, store, model="run-1")
    value(X, y, V, yv, store, model="run-2")
    old, new = key(X, y, model="run-1").digest, key(X, y, model="run-2").digest
    assert store.prune(keep=new) == []  # both just written
    assert store.prune(keep=new, now=time.time() + 120) == [old]
    assert sorted(p.name for p in tmp_path.iterdir()) == [new]


def test_row_hashes_tell_apart_rows_that_differ_in_one_bit_label_or_group():
    _, _, V, yv = data(m=3)
    V[1] = V[0]
    V[2] = V[0]
    V[2, 1] = np.nextafter(V[2, 1], 1)
    yv[:] = 0
    hashes = row_hashes(V, yv)
    assert (hashes[0] == hashes[1]).all() and not (hashes[0] == hashes[2]).all()
    assert not (row_hashes(V, yv + 1)[0] == hashes[0]).all()
    assert not (row_hashes(V, yv, np.array(["a", "b", "c"]))[0] == hashes[0]).all()


def test_bad_arguments_are_named():
    X, y, V, yv = data()
    with pytest.raises(ValueError, match="model_version"):
        valuation_key(X, y, model_version="", k=3, group=None, classes=3)
    with pytest.raises(ValueError, match="start=5, stop=2"):
        blocked_values(X, y, V, yv, key=key(X, y), store=None, start=5, stop=2)


KILLED = textwrap.dedent(
    """
    import os, sys, time
    import numpy as np
    from dcai_assets.core.valuation_blocks import blocked_values, valuation_key
    from dcai_assets.io.valuation_store import ValuationBlockStore

    rng = np.random.default_rng(0)
    X, V = rng.normal(size=(300, 4)), rng.normal(size=(200, 4))
    y, yv = rng.integers(0, 3, 300), rng.integers(0, 3, 200)
    key = valuation_key(X, y, model_version="run-1", k=5, group=None, classes=3)
    stop_after = int(os.environ.get("STOP_AFTER_BLOCKS", "0"))

    def after_block(i):
        if i + 1 == stop_after:
            print("blocks written", flush=True)
            time.sleep(600)  # killed here

    result = blocked_values(
        X, y, V, yv, key=key, store=ValuationBlockStore(sys.argv[1]), block_rows=20,
        after_block=after_block,
    )
    print(result.path.kind, result.path.blocks, result.path.blocks_reused)
    np.save(sys.argv[2], np.stack([result.values, result.loo]))
    """
)


def test_a_valuation_process_killed_mid_way_is_resumed_by_the_next_one(tmp_path):
    script = tmp_path / "value.py"
    script.write_text(KILLED)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STOP_AFTER_BLOCKS": "4"}
    store, out = tmp_path / "store", tmp_path / "values.npy"
    process = subprocess.Popen(
        [sys.executable, str(script), str(store), str(out)], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout.readline().strip() == "blocks written"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert len(list(store.glob("*/blocks/*.npz"))) == 4  # four of ten blocks finished
    started = time.monotonic()
    rerun = subprocess.run(
        [sys.executable, str(script), str(store), str(out)], env={**env, "STOP_AFTER_BLOCKS": "0"},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.split() == ["resumed", "10", "4"], time.monotonic() - started
    values, loo = np.load(out)
    rng = np.random.default_rng(0)
    X, V = rng.normal(size=(300, 4)), rng.normal(size=(200, 4))
    y, yv = rng.integers(0, 3, 300), rng.integers(0, 3, 200)
    full = knn_shapley(X, y, V, yv, k=5)
    np.testing.assert_allclose(values, full.values, rtol=0, atol=1e-12)
    np.testing.assert_allclose(loo, full.loo, rtol=0, atol=1e-12)
