"""No-human-access mode, the pure part: what may be shown of rows nobody may look at (counts over
groups of at least ``min_group_size`` rows, never a value of one row), and the append-only audit
table every read of row-level outputs is written to."""

from __future__ import annotations

import dataclasses
import getpass
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from dcai_assets.core.conformance import Conformance
from dcai_assets.core.drift import ColumnDrift
from dcai_assets.core.evaluation import Evaluation

WITHHELD = "withheld: no-human-access mode"


@dataclass(frozen=True)
class GroupCounts:
    """Rows per group, with the groups under ``min_group_size`` rows left out: ``suppressed_groups``
    groups holding ``suppressed_rows`` rows in all."""

    shown: dict[str, int]
    suppressed_groups: int
    suppressed_rows: int
    min_group_size: int

    @property
    def note(self) -> str:
        """What was left out, in words ("" when nothing was)."""
        if not self.suppressed_groups:
            return ""
        return (
            f"{self.suppressed_groups} group(s) with fewer than {self.min_group_size} rows "
            f"suppressed ({self.suppressed_rows} rows in all)"
        )


def _check_min_group_size(min_group_size: object) -> int:
    if isinstance(min_group_size, bool) or not isinstance(min_group_size, int) or min_group_size < 1:
        raise ValueError(f"min_group_size: {min_group_size!r}; expected an integer >= 1")
    return min_group_size


def group_counts(counts: Mapping[object, int], min_group_size: int) -> GroupCounts:
    """``counts`` (group -> rows) with every group of fewer than ``min_group_size`` rows suppressed.

    >>> group_counts({"a": 12, "b": 3, "c": 1}, 10).shown
    {'a': 12}
    >>> group_counts({"a": 12, "b": 3, "c": 1}, 10).note
    '2 group(s) with fewer than 10 rows suppressed (4 rows in all)'
    """
    k = _check_min_group_size(min_group_size)
    pairs = [(str(g), int(n)) for g, n in counts.items()]  # a dict or a value_counts() Series
    shown = {g: n for g, n in pairs if n >= k}
    small = [n for _, n in pairs if 0 < n < k]
    return GroupCounts(shown, len(small), sum(small), k)


def small_rows_dropped(
    table: pd.DataFrame, size_column: str, min_group_size: int
) -> tuple[pd.DataFrame, str]:
    """``table`` (one row per group, its size in ``size_column``) without the groups of fewer than
    ``min_group_size`` rows, and a note of what was left out ("" when nothing was).

    >>> t = pd.DataFrame({"day": ["a", "b"], "rows": [12, 3], "mean": [0.1, -0.4]})
    >>> kept, note = small_rows_dropped(t, "rows", 10)
    >>> kept["day"].tolist(), note
    (['a'], '1 group(s) with fewer than 10 rows suppressed (3 rows in all)')
    """
    k = _check_min_group_size(min_group_size)
    if size_column not in table.columns:
        raise ValueError(f"size_column: {size_column!r} is not a column of the table ({list(table.columns)})")
    small = table[size_column] < k
    counts = GroupCounts({}, int(small.sum()), int(table.loc[small, size_column].sum()), k)
    return table.loc[~small], counts.note


def aggregate_markdown(
    frame: pd.DataFrame, min_group_size: int, *, group_by: Iterable[str] = (), what: str = "rows"
) -> str:
    """What may be shown of ``frame`` instead of its rows: its size, per column the non-null and
    distinct counts, and for each ``group_by`` column the rows per value (groups under
    ``min_group_size`` suppressed). A frame under ``min_group_size`` rows shows its size only."""
    k = _check_min_group_size(min_group_size)
    lines = [f"_{len(frame):,} {what}; row-level values {WITHHELD}._"]
    if len(frame) == 0:
        return lines[0]
    if len(frame) < k:
        return lines[0] + f"\n\n_fewer than {k} rows: no per-column figures._"
    lines += ["", "| column | non-null | distinct |", "|---|---|---|"]
    for column in frame.columns:
        values = frame[column]
        lines.append(f"| {column} | {int(values.notna().sum()):,} | {_distinct(values):,} |")
    for column in group_by:
        if column not in frame.columns:
            continue
        counts = group_counts(frame[column].astype(str).value_counts(), k)
        lines += ["", f"rows per `{column}`:", "", "| value | rows |", "|---|---|"]
        lines += [f"| {_cell(g)} | {n:,} |" for g, n in counts.shown.items()]
        if counts.note:
            lines.append(f"| _{counts.note}_ | |")
    return "\n".join(lines)


def _distinct(values: pd.Series) -> int:
    try:
        return int(values.nunique())
    except TypeError:  # unhashable cells (lists, dicts)
        return int(values.astype(str).nunique())


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def without_examples(conf: Conformance) -> Conformance:
    """``conf`` with the example values (and row numbers) of every problem dropped: findings then
    say how many rows broke a rule, never which value did."""
    return dataclasses.replace(
        conf,
        problems=[dataclasses.replace(p, examples=[]) for p in conf.problems],
        nulls={c: dataclasses.replace(p, examples=[]) for c, p in conf.nulls.items()},
    )


def without_values(
    drifts: Iterable[ColumnDrift], protects: Callable[[str], bool], min_group_size: int
) -> list:
    """Drift results whose explanation names no value of a protected column: a categorical
    shift (which names the values whose share moved) says only that shares moved; a numeric
    one keeps its median, an aggregate, unless fewer than ``min_group_size`` values are behind it."""
    k = _check_min_group_size(min_group_size)
    out = []
    for d in drifts:
        if protects(d.column) and (d.metric != "JSD" or (d.n or 0) < k):
            detail = f"the shares of its values moved (values {WITHHELD})"
            if d.n is not None:
                detail += f" (n={d.n:,})"
            d = dataclasses.replace(d, detail=detail)
        out.append(d)
    return out


def small_groups_suppressed(evaluation: Evaluation, min_group_size: int) -> Evaluation:
    """A copy of ``evaluation`` for display: slices and fairness groups of fewer than
    ``min_group_size`` rows are left out (their value names a small group), and a note per
    column says how many were. Gates must judge the full evaluation, not this copy."""
    k = _check_min_group_size(min_group_size)
    notes = {s: list(n) for s, n in evaluation.notes.items()}
    per_slice = {}
    for column, groups in evaluation.per_slice.items():
        kept = {g: m for g, m in groups.items() if m.get("n", 0) >= k}
        for g in set(groups) - set(kept):
            notes.pop(f"slice:{column}={g}", None)
        counts = group_counts({g: int(m.get("n", 0)) for g, m in groups.items()}, k)
        if counts.note:
            notes.setdefault(f"slice:{column}", []).append(counts.note)
        per_slice[column] = kept
    fairness = {}
    for cls, report in evaluation.fairness.items():
        groups = tuple(r for r in report.groups if r.n >= k)
        fairness[cls] = dataclasses.replace(report, groups=groups)
    return dataclasses.replace(evaluation, per_slice=per_slice, fairness=fairness, notes=notes)


# --- the audit table ---------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS row_access (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    who TEXT NOT NULL,
    why TEXT NOT NULL,
    asset TEXT NOT NULL,
    partition TEXT,
    rows INTEGER,
    os_user TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS row_access_no_update BEFORE UPDATE ON row_access
BEGIN SELECT RAISE(ABORT, 'the audit table is append-only: records cannot be changed'); END;
CREATE TRIGGER IF NOT EXISTS row_access_no_delete BEFORE DELETE ON row_access
BEGIN SELECT RAISE(ABORT, 'the audit table is append-only: records cannot be deleted'); END;
"""


@dataclass(frozen=True)
class AccessRecord:
    """One read of row-level data: when, by whom, why, which asset and partition, how many rows."""

    seq: int
    at: str
    who: str
    why: str
    asset: str
    partition: str | None
    rows: int | None
    os_user: str


class AuditLog:
    """An append-only SQLite table of row-level reads. Its API appends and reads only, and
    triggers in the database refuse UPDATE and DELETE from any client.

    >>> import tempfile, pathlib
    >>> log = AuditLog(pathlib.Path(tempfile.mkdtemp()) / "access.sqlite")
    >>> record = log.append(who="ana", why="check a label", asset="orders/labeled_set", rows=3)
    >>> record.seq, record.who
    (1, 'ana')
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=30)
        connection.executescript(_SCHEMA)
        return connection

    def append(
        self, *, who: str, why: str, asset: str, partition: str | None = None, rows: int | None = None
    ) -> AccessRecord:
        """Write one record, stamped with the UTC time and the OS user; returns it."""
        for name, value in (("who", who), ("why", why), ("asset", asset)):
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"AuditLog.append: {name}={value!r}; expected a non-empty string")
        at = datetime.now(UTC).isoformat(timespec="microseconds")
        connection = self._connect()
        try:
            with connection:
                cursor = connection.execute(
                    "INSERT INTO row_access (at, who, why, asset, partition, rows, os_user) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (at, who, why, asset, partition, rows, _os_user()),
                )
            seq = int(cursor.lastrowid)
        finally:
            connection.close()
        return AccessRecord(seq, at, who, why, asset, partition, rows, _os_user())

    def records(self) -> tuple[AccessRecord, ...]:
        """Every record, oldest first (immutable copies)."""
        if not self.path.exists():
            return ()
        connection = self._connect()
        try:
            rows = connection.execute(
                "SELECT seq, at, who, why, asset, partition, rows, os_user FROM row_access ORDER BY seq"
            ).fetchall()
        finally:
            connection.close()
        return tuple(AccessRecord(*r) for r in rows)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "unknown"
