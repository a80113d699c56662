"""What no-human-access mode may show (counts over groups of at least k rows), and the
append-only audit table."""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest

from dcai_assets.core.conformance import conform
from dcai_assets.core.drift import ColumnDrift
from dcai_assets.core.evaluation import evaluate
from dcai_assets.core.privacy import (
    WITHHELD,
    AuditLog,
    aggregate_markdown,
    group_counts,
    small_groups_suppressed,
    small_rows_dropped,
    without_examples,
    without_values,
)
from dcai_assets.core.schema import ColumnSchema, TableSchema


def test_groups_under_the_minimum_are_suppressed_and_counted():
    counts = group_counts({"a": 12, "b": 3, "c": 1, "d": 10}, 10)
    assert counts.shown == {"a": 12, "d": 10}
    assert (counts.suppressed_groups, counts.suppressed_rows) == (2, 4)
    assert counts.note == "2 group(s) with fewer than 10 rows suppressed (4 rows in all)"


def test_nothing_suppressed_says_nothing():
    assert group_counts({"a": 12}, 10).note == ""


def test_table_rows_of_small_groups_are_dropped_and_counted():
    table = pd.DataFrame({"day": ["a", "b", "c", "d"], "rows": [12, 3, 1, 10], "mean": [0.1, -0.4, 0.9, 0.0]})
    kept, note = small_rows_dropped(table, "rows", 10)
    assert kept["day"].tolist() == ["a", "d"]
    assert note == "2 group(s) with fewer than 10 rows suppressed (4 rows in all)"
    assert small_rows_dropped(table, "rows", 1)[1] == ""
    with pytest.raises(ValueError, match="size_column: 'n'"):
        small_rows_dropped(table, "n", 10)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "10"])
def test_min_group_size_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError, match="min_group_size"):
        group_counts({"a": 1}, bad)


def test_aggregate_shows_counts_and_large_groups_but_no_row_value():
    frame = pd.DataFrame(
        {"tail": [f"N{i:04d}X" for i in range(30)], "site": ["north"] * 25 + ["rare"] * 5, "x": range(30)}
    )
    text = aggregate_markdown(frame, 10, group_by=["site"])
    assert "30 rows" in text and WITHHELD in text
    assert "| tail | 30 | 30 |" in text
    assert "| north | 25 |" in text
    assert "rare" not in text and "N0001X" not in text
    assert "1 group(s) with fewer than 10 rows suppressed (5 rows in all)" in text


def test_a_frame_smaller_than_a_group_shows_its_size_only():
    frame = pd.DataFrame({"tail": ["N1", "N2"], "x": [1, 2]})
    text = aggregate_markdown(frame, 10)
    assert "2 rows" in text and "fewer than 10 rows" in text
    assert "tail" not in text


def test_aggregate_of_no_rows_and_of_unhashable_cells():
    assert "0 rows" in aggregate_markdown(pd.DataFrame({"a": []}), 10)
    frame = pd.DataFrame({"a": [[1], [1], [2]] * 5})
    assert "| a | 15 | 2 |" in aggregate_markdown(frame, 10)


def _schema() -> TableSchema:
    return TableSchema(
        columns=[
            ColumnSchema("tail", "string", nullable=False),
            ColumnSchema("distance", "int64", min=1),
        ]
    )


def test_conformance_without_examples_keeps_counts_but_no_value():
    raw = pd.DataFrame({"tail": ["N123AB", None, "N9"], "distance": ["1576 mi", "10", "-4"]})
    conf = conform(raw, _schema())
    assert any(p.examples for p in conf.problems)  # the example values are there to drop
    stripped = without_examples(conf)
    assert all(not p.examples for p in stripped.problems)
    assert all(not p.examples for p in stripped.nulls.values())
    assert [p.count for p in stripped.problems] == [p.count for p in conf.problems]
    assert "1576 mi" not in repr(stripped.problems) + repr(stripped.nulls)
    assert stripped.rows_quarantined == conf.rows_quarantined


def test_drift_explanations_lose_protected_values_and_keep_large_medians():
    drifts = [
        ColumnDrift("tail", "L-inf", 0.4, 0.1, "`N123AB` is now the most frequent value", n=500),
        ColumnDrift("delay", "JSD", 0.3, 0.1, "median 42.5 (was 3 in the reference)", n=500),
        ColumnDrift("few", "JSD", 0.3, 0.1, "median 7 (was 3)", n=4),
        ColumnDrift("open", "L-inf", 0.4, 0.1, "`public` share 90%", n=500),
    ]
    out = without_values(drifts, lambda c: c != "open", 10)
    assert "N123AB" not in out[0].detail and WITHHELD in out[0].detail
    assert out[1].detail == drifts[1].detail  # a median over 500 values is an aggregate
    assert "7" not in out[2].detail  # ... over 4 values it is nearly a row
    assert out[3].detail == drifts[3].detail  # not a protected column
    assert [d.distance for d in out] == [d.distance for d in drifts]


def test_evaluation_for_display_drops_small_slices_and_fairness_groups():
    rng = np.random.default_rng(0)
    n = 120
    frame = pd.DataFrame({"site": ["big"] * 100 + ["mid"] * 15 + ["tiny"] * 5, "p": "2024-01-01"})
    y = rng.integers(0, 2, n).astype(str)
    pred = rng.integers(0, 2, n).astype(str)
    ev = evaluate(
        y, pred, frame, ["0", "1"], partition_column="p", slices=["site"], sensitive="site", min_slice_rows=1
    )
    assert "tiny" in ev.per_slice["site"]
    shown = small_groups_suppressed(ev, 10)
    assert set(shown.per_slice["site"]) == {"big", "mid"}
    assert "tiny" not in repr(shown.table()) + repr(shown.warnings)
    assert any("1 group(s) with fewer than 10 rows suppressed (5 rows" in w for w in shown.warnings)
    assert all(r.group != "tiny" for rep in shown.fairness.values() for r in rep.groups)
    assert "tiny" in ev.per_slice["site"]  # the original, which gates judge, is untouched


def test_audit_log_appends_and_reads_back_in_order(tmp_path):
    log = AuditLog(tmp_path / "audit" / "access.sqlite")
    assert log.records() == ()
    first = log.append(
        who="ana", why="check a label", asset="flights/labeled_set", partition="2013-02-01", rows=3
    )
    second = log.append(who="bo", why="audit", asset="flights/importance_scores")
    records = log.records()
    assert [r.seq for r in records] == [first.seq, second.seq] == [1, 2]
    assert (records[0].who, records[0].why, records[0].partition, records[0].rows) == (
        "ana",
        "check a label",
        "2013-02-01",
        3,
    )
    assert records[0].at <= records[1].at and records[0].at.endswith("+00:00")


def test_audit_records_cannot_be_changed_or_deleted(tmp_path):
    path = tmp_path / "access.sqlite"
    log = AuditLog(path)
    log.append(who="ana", why="check a label", asset="flights/labeled_set")
    record = log.records()[0]
    with pytest.raises(AttributeError):
        record.who = "someone else"  # frozen: the API hands out copies it cannot write back
    assert not hasattr(log, "update") and not hasattr(log, "delete")
    connection = sqlite3.connect(path)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            connection.execute("UPDATE row_access SET who = 'mallory'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            connection.execute("DELETE FROM row_access")
    finally:
        connection.close()
    assert log.records() == (record,)


@pytest.mark.parametrize("field", ["who", "why", "asset"])
def test_audit_refuses_an_empty_who_why_or_asset(tmp_path, field):
    args = {"who": "ana", "why": "check", "asset": "flights/labeled_set", field: " "}
    with pytest.raises(ValueError, match=field):
        AuditLog(tmp_path / "a.sqlite").append(**args)
