"""What the landing sensor has handled, kept out of its cursor: one row per file (size, mtime,
SHA-256), per rejected file and per callable key, in a small SQLite file, so that the cursor
stays the same few dozen bytes whether 10 or a million files have landed.

The store commits with the cursor. A tick writes its changes as *pending* rows under a fresh
token and returns a cursor naming that token; the daemon stores a tick's cursor only once its
runs are submitted. The next tick commits the pending rows of the token its cursor names and
drops every other pending row (of a tick lost before its cursor was stored, or of a "test
sensor" evaluation in the UI), so a tick that never got its cursor stored has marked nothing
handled: its files are requested again, with the same run keys, and Dagster skips a run key it
has already launched for the sensor.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

STATE_DIR = ".dcai"  # hidden: the sensor never takes it for a landed file
FILES, REJECTED, KEYS = "files", "rejected", "keys"
LINEAGE_TTL_SECONDS = 180 * 24 * 3600  # state of a cursor unused this long (reset, instance gone) is dropped

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS lineages (lineage TEXT PRIMARY KEY, used REAL NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    lineage TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
    size INTEGER, mtime_ns INTEGER, digest TEXT,
    PRIMARY KEY (lineage, kind, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pending (
    lineage TEXT NOT NULL, token TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
    removed INTEGER NOT NULL, size INTEGER, mtime_ns INTEGER, digest TEXT,
    PRIMARY KEY (lineage, token, kind, name)) WITHOUT ROWID;
"""


class _Tracked(dict):
    """A dict that remembers which keys were set or removed since it was loaded."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.changed: set[str] = set()

    def __setitem__(self, key, value) -> None:
        super().__setitem__(key, value)
        self.changed.add(key)

    def pop(self, key, *default):
        if key in self:
            self.changed.add(key)
        return super().pop(key, *default)


@dataclass
class LandingTick:
    """One evaluation's view of the store: ``state`` (``files``: name -> [size, mtime_ns,
    sha256]; ``rejected``: name -> [size, mtime_ns]; ``keys``: callable key -> True), updated in
    place by the scan, then written by :meth:`LandingStateStore.save`.

    ``first`` is True on the sensor's first evaluation (no cursor: new, or reset in the UI);
    ``lost`` is True when the cursor names state this store does not hold (the file was deleted).
    """

    lineage: str
    state: dict[str, _Tracked]
    first: bool = False
    lost: bool = False
    migrated: int = 0
    rewrite: bool = False  # a new cursor even if nothing changed: the former JSON one, or lost state
    token: str | None = field(default=None, repr=False)

    @property
    def changed(self) -> bool:
        return any(table.changed for table in self.state.values())


def state_path(directory: str | Path) -> Path:
    """The store of a landing directory: a hidden file inside it."""
    return Path(directory) / STATE_DIR / "landing-state.sqlite"


class LandingStateStore:
    """The SQLite file at ``path`` (created on first use, with its directory); one file may hold
    the state of several sensors or instances, each under its own lineage id."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @contextmanager
    def _connect(self, write: bool = True) -> Iterator[sqlite3.Connection]:
        """A connection in one transaction: immediate (the write lock taken at once) to write."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        except (OSError, sqlite3.Error) as e:
            raise OSError(
                f"landing state {str(self.path)!r}: cannot be opened ({e}); expected a writable "
                "directory (the landing sensor keeps what it has handled there)"
            ) from e
        try:
            if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                conn.executescript(_SCHEMA + f"PRAGMA user_version = {SCHEMA_VERSION};")
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    def open(self, cursor: str | None) -> LandingTick:
        """Commit what the tick that wrote ``cursor`` changed, drop any other pending change, and
        load the handled state. ``cursor`` may be None (first evaluation), this module's cursor,
        or the sensor's former JSON cursor (which is migrated here on first read)."""
        try:
            data = json.loads(cursor) if cursor else None
            if data is not None and not isinstance(data, dict):
                raise ValueError(f"a JSON {type(data).__name__}")
        except ValueError as e:
            raise ValueError(
                f"landing sensor cursor {cursor[:80]!r}: not one the sensor wrote ({e}); expected the "
                "JSON the sensor returns (reset the cursor in the UI to start over)"
            ) from None
        now = time.time()
        with self._connect(write=False) as conn:
            tick = self._quiet(conn, data, now)
        if tick is None:  # something to commit, migrate, drop or note: a write transaction
            with self._connect() as conn:
                tick = self._begin(conn, cursor, data)
                conn.execute("INSERT OR REPLACE INTO lineages VALUES (?, ?)", (tick.lineage, now))
                stale = [
                    r[0]
                    for r in conn.execute(
                        "SELECT lineage FROM lineages WHERE used < ?", (now - LINEAGE_TTL_SECONDS,)
                    )
                ]
                for lineage in stale:
                    for table in ("entries", "pending", "lineages"):
                        conn.execute(f"DELETE FROM {table} WHERE lineage = ?", (lineage,))
        with self._connect(write=False) as conn:
            rows = conn.execute(
                "SELECT kind, name, size, mtime_ns, digest FROM entries WHERE lineage = ?", (tick.lineage,)
            ).fetchall()
        files, rejected, keys = {}, {}, {}
        for kind, name, size, mtime_ns, digest in rows:
            if kind == FILES:
                files[name] = [size, mtime_ns, digest]
            elif kind == REJECTED:
                rejected[name] = [size, mtime_ns]
            else:
                keys[name] = True
        tick.state = {FILES: _Tracked(files), REJECTED: _Tracked(rejected), KEYS: _Tracked(keys)}
        return tick

    def _quiet(self, conn: sqlite3.Connection, data: dict | None, now: float) -> LandingTick | None:
        """The tick, when ``cursor`` is this module's and nothing is pending (the previous tick
        changed nothing) and its lineage was used within a day; else None."""
        if data is None or "lineage" not in data:
            return None
        lineage = data["lineage"]
        used = conn.execute("SELECT used FROM lineages WHERE lineage = ?", (lineage,)).fetchone()
        if used is None or used[0] < now - 24 * 3600:
            return None
        if conn.execute("SELECT 1 FROM pending WHERE lineage = ? LIMIT 1", (lineage,)).fetchone():
            return None
        return LandingTick(lineage=lineage, state={})

    def _begin(self, conn: sqlite3.Connection, cursor: str | None, data: dict | None) -> LandingTick:
        if data is None:
            return LandingTick(lineage=uuid.uuid4().hex, state={}, first=True)
        if "lineage" not in data:  # the former cursor: everything in it was committed
            lineage = "json-" + hashlib.sha256(cursor.encode()).hexdigest()[:24]  # same on a retry
            known = conn.execute("SELECT 1 FROM lineages WHERE lineage = ?", (lineage,)).fetchone()
            rows = [(lineage, FILES, name, v[0], v[1], v[2]) for name, v in data.get(FILES, {}).items()] + [
                (lineage, REJECTED, name, v[0], v[1], None) for name, v in data.get(REJECTED, {}).items()
            ]
            rows += [(lineage, KEYS, key, None, None, None) for key in data.get(KEYS, [])]
            if not known:
                conn.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?)", rows)
            conn.execute("DELETE FROM pending WHERE lineage = ?", (lineage,))  # a lost first tick's
            return LandingTick(lineage=lineage, state={}, migrated=len(rows), rewrite=True)
        lineage, token = data["lineage"], data.get("token")
        known = conn.execute("SELECT 1 FROM lineages WHERE lineage = ?", (lineage,)).fetchone()
        if token:
            conn.execute(
                "INSERT OR REPLACE INTO entries SELECT lineage, kind, name, size, mtime_ns, digest "
                "FROM pending WHERE lineage = ? AND token = ? AND removed = 0",
                (lineage, token),
            )
            conn.execute(
                "DELETE FROM entries WHERE lineage = ? AND (kind, name) IN (SELECT kind, name FROM "
                "pending WHERE lineage = ? AND token = ? AND removed = 1)",
                (lineage, lineage, token),
            )
        conn.execute("DELETE FROM pending WHERE lineage = ?", (lineage,))
        return LandingTick(lineage=lineage, state={}, lost=not known, rewrite=not known)

    def save(self, tick: LandingTick, cursor: str | None) -> str:
        """Write the tick's changes as pending rows under a new token; the cursor to return
        (``cursor``, the one the tick started from, when nothing changed)."""
        if cursor and not tick.changed and not tick.rewrite:
            return cursor
        token = uuid.uuid4().hex[:16]
        rows = []
        for kind, table in tick.state.items():
            for name in table.changed:
                value = table.get(name)
                if value is None:
                    rows.append((tick.lineage, token, kind, name, 1, None, None, None))
                elif kind == FILES:
                    rows.append((tick.lineage, token, kind, name, 0, value[0], value[1], value[2]))
                elif kind == REJECTED:
                    rows.append((tick.lineage, token, kind, name, 0, value[0], value[1], None))
                else:
                    rows.append((tick.lineage, token, kind, name, 0, None, None, None))
        if rows:
            with self._connect() as conn:
                conn.executemany("INSERT OR REPLACE INTO pending VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        tick.token = token
        handled = len(tick.state[FILES]) + len(tick.state[KEYS])
        return json.dumps({"lineage": tick.lineage, "token": token, "handled": handled})


def store_for(spec, instance) -> LandingStateStore:
    """The store of ``spec``'s landing sensor: inside the landing directory, or for a
    :class:`CallableSource` (no directory) in the Dagster instance's local storage directory."""
    from dcai_assets.spec import LandingDirectory

    if isinstance(spec.source, LandingDirectory):
        return LandingStateStore(state_path(spec.source.path))
    return LandingStateStore(
        Path(instance.storage_directory()) / "dcai" / f"{spec.name}-landing-state.sqlite"
    )


def handled(spec, instance, cursor: str | None) -> list[str]:
    """The file names (or callable keys) handled as of ``cursor``, sorted, as the sensor's next
    tick sees them (it commits that cursor's pending changes, as the tick would)."""
    state = store_for(spec, instance).open(cursor).state
    return sorted([*state[FILES], *state[KEYS]])
