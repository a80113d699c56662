"""The time a partition key stands for: parsing keys, ordering them by time and measuring the
span of a partition. Pure functions on strings and datetimes (no Dagster)."""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

UNITS = ("hour", "day", "week", "month", "year")

# Dagster's default key formats for its time-window partitions definitions.
KEY_FORMATS = {"hour": "%Y-%m-%d-%H:%M", "day": "%Y-%m-%d", "week": "%Y-%m-%d", "month": "%Y-%m-%d"}

# Keys of dynamic or static partitions that read as times: (pattern, strptime format, unit spanned;
# None when the key is an instant rather than a window).
_TIME_KEYS: tuple[tuple[re.Pattern, str, str | None], ...] = (
    (re.compile(r"\d{4}"), "%Y", "year"),
    (re.compile(r"\d{4}-\d{2}"), "%Y-%m", "month"),
    (re.compile(r"\d{4}-\d{2}-\d{2}"), "%Y-%m-%d", "day"),
    (re.compile(r"\d{4}-\d{2}-\d{2}-\d{2}:\d{2}"), "%Y-%m-%d-%H:%M", "hour"),
    (re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}"), "%Y-%m-%dT%H:%M", None),
    (re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}"), "%Y-%m-%dT%H:%M:%S", None),
)
TIME_KEY_FORMATS = "YYYY, YYYY-MM, YYYY-MM-DD, YYYY-MM-DD-HH:MM, YYYY-MM-DDTHH:MM[:SS]"


def parse_time_key(key: str) -> tuple[datetime, str | None] | None:
    """The start of the time ``key`` names and the unit it spans, or None if it names no time.

    >>> parse_time_key("2013-05")
    (datetime.datetime(2013, 5, 1, 0, 0), 'month')
    """
    for pattern, fmt, unit in _TIME_KEYS:
        if pattern.fullmatch(key):
            try:
                return datetime.strptime(key, fmt), unit
            except ValueError:
                return None  # e.g. 2013-13 or 2013-02-30
    return None


def natural_key(key: str) -> tuple:
    """Sort key that compares digit runs as numbers: ``batch_2`` before ``batch_10``."""
    parts = re.split(r"(\d+)", key)
    return (tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts if p), key)


def order_keys(keys: Iterable[str], order: str | Callable[[str], object] | None) -> list[str]:
    """``keys`` oldest first.

    ``order``: ``"time"`` (every key must parse, see :func:`parse_time_key`), ``"key"`` (natural
    key order), a callable giving each key's sort key, or None: time when every key parses, else
    natural key order. Ties are broken by the key, so the result never depends on input order.
    """
    keys = list(dict.fromkeys(keys))
    if callable(order):
        return sorted(sorted(keys), key=order)
    if order == "key":
        return sorted(keys, key=natural_key)
    times = {k: parse_time_key(k) for k in keys}
    unparsed = [k for k, t in times.items() if t is None]
    if order == "time" and unparsed:
        raise ValueError(
            f"partition keys {unparsed[:5]} do not name a time; expected one of {TIME_KEY_FORMATS} "
            "with order='time'"
        )
    if order not in (None, "time"):
        raise ValueError(f"order: {order!r}; expected 'time', 'key', a callable or None")
    if unparsed:
        return sorted(keys, key=natural_key)
    return sorted(keys, key=lambda k: (times[k][0], k))


def add_units(start: datetime, unit: str, n: int = 1) -> datetime:
    """``start`` moved by ``n`` units on the wall clock (months keep the day, clipped to the month)."""
    if unit == "hour":
        return start + timedelta(hours=n)
    if unit == "day":
        return start + timedelta(days=n)
    if unit == "week":
        return start + timedelta(weeks=n)
    if unit in ("month", "year"):
        months = start.month - 1 + n * (12 if unit == "year" else 1)
        year, month = start.year + months // 12, months % 12 + 1
        return start.replace(year=year, month=month, day=min(start.day, calendar.monthrange(year, month)[1]))
    raise ValueError(f"unit: {unit!r}; expected one of {UNITS}")


def is_window_start(t: datetime, unit: str) -> bool:
    """Whether ``t`` starts a window of ``unit`` as Dagster cuts them (weeks start on Sunday,
    months on their first day, every window at minute 0)."""
    if (t.minute, t.second, t.microsecond) != (0, 0, 0):
        return False
    if unit == "hour":
        return True
    if t.hour != 0:
        return False
    if unit == "day":
        return True
    if unit == "week":
        return t.weekday() == 6  # Sunday, Dagster's default
    if unit == "month":
        return t.day == 1
    raise ValueError(f"unit: {unit!r}; expected one of {tuple(KEY_FORMATS)}")


def first_window_start(start: datetime, unit: str) -> datetime:
    """The first window start at or after ``start`` (where Dagster's first partition begins)."""
    t = start.replace(minute=0, second=0, microsecond=0)
    if t < start:
        t += timedelta(hours=1)
    if unit != "hour":
        if t.hour:
            t = t.replace(hour=0) + timedelta(days=1)
        while not is_window_start(t, unit):
            t += timedelta(days=1)
    return t


def window_containing(t: datetime, unit: str) -> datetime:
    """The start of the window of ``unit`` that ``t`` falls in."""
    t = t.replace(minute=0, second=0, microsecond=0)
    if unit == "hour":
        return t
    t = t.replace(hour=0)
    if unit == "week":
        return t - timedelta(days=(t.weekday() + 1) % 7)  # back to Sunday
    if unit == "month":
        return t.replace(day=1)
    return t


def exists_locally(t: datetime, timezone: str) -> bool:
    """Whether the wall-clock time ``t`` exists in ``timezone`` (not skipped by a DST change)."""
    zone = ZoneInfo(timezone)
    return t.replace(tzinfo=zone).astimezone(UTC).astimezone(zone).replace(tzinfo=None) == t


def elapsed(start: datetime, end: datetime, timezone: str = "UTC") -> timedelta:
    """Real time between two wall-clock times of ``timezone`` (23 or 25 hours over a DST day)."""
    zone = ZoneInfo(timezone)
    return end.replace(tzinfo=zone).astimezone(UTC) - start.replace(tzinfo=zone).astimezone(UTC)
