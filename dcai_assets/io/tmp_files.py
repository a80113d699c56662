"""Hidden temporary files of interrupted writes: how they are named, and sweeping the stale ones.

A writer puts ``.<name>.<writer>.tmp`` beside its target (``<writer>``: its process id and a random
token, so that two writers of the same target, e.g. two retrains racing, never write into one
file) and renames it over the target once complete, so a reader never sees half a file and the
last complete write wins. A write killed before the rename (SIGKILL, out of memory, a lost
machine) leaves that hidden file behind, and nothing else would ever remove it. Before writing
into a directory, writers sweep the hidden temporary files there that nobody has written to for
``max_age_seconds``: long past any write in progress. Visible files are never touched.
"""

from __future__ import annotations

import os
import time
import uuid

from upath import UPath

TMP_SUFFIX = ".tmp"
DEFAULT_TMP_MAX_AGE_SECONDS = 3600
MIN_TMP_MAX_AGE_SECONDS = 60  # below this a slow write in progress could be taken for a dead one


def tmp_path(path: UPath) -> UPath:
    """Where a write of ``path`` goes before its rename: ``.<name>.<pid>-<token>.tmp`` beside it,
    a name no other write shares."""
    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:12]}{TMP_SUFFIX}")


def is_tmp_name(name: str) -> bool:
    return name.startswith(".") and name.endswith(TMP_SUFFIX) and len(name) > len(TMP_SUFFIX) + 1


def check_max_age(max_age_seconds: float, argument: str = "max_age_seconds") -> float:
    if not isinstance(max_age_seconds, int | float) or isinstance(max_age_seconds, bool):
        raise TypeError(f"{argument}: expected a number of seconds, got {max_age_seconds!r}")
    if not max_age_seconds >= MIN_TMP_MAX_AGE_SECONDS:
        raise ValueError(
            f"{argument}={max_age_seconds!r}: expected at least {MIN_TMP_MAX_AGE_SECONDS} seconds, "
            "or a write in progress could be swept"
        )
    return float(max_age_seconds)


def sweep_stale_tmp(directory: UPath, max_age_seconds: float, *, now: float | None = None) -> list[UPath]:
    """Remove the hidden temporary files directly in ``directory`` last modified more than
    ``max_age_seconds`` ago; return them. A file whose age cannot be read is kept.

    Examples
    --------
    >>> swept = sweep_stale_tmp(UPath("lake/my_dataset/validated_data"), 3600)  # doctest: +SKIP
    """
    max_age_seconds = check_max_age(max_age_seconds)
    now = time.time() if now is None else now
    try:
        entries = list(directory.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    swept = []
    for path in entries:
        if not is_tmp_name(path.name):
            continue
        try:
            modified = path.stat().st_mtime
        except (OSError, NotImplementedError, KeyError, ValueError):
            continue
        if not modified or now - modified <= max_age_seconds:
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            continue  # swept by another writer meanwhile
        swept.append(path)
    return swept


class TmpSweeper:
    """Sweeps each directory at most once per ``max_age_seconds`` (a listing per write would
    cost a request each on an object store); a killed write's file goes within twice that age."""

    def __init__(
        self, max_age_seconds: float = DEFAULT_TMP_MAX_AGE_SECONDS, argument: str = "max_age_seconds"
    ):
        self.max_age_seconds = check_max_age(max_age_seconds, argument)
        self._last_sweep: dict[str, float] = {}

    def sweep(self, directory: UPath) -> list[UPath]:
        key, now = str(directory), time.monotonic()
        last = self._last_sweep.get(key)
        if last is not None and now - last < self.max_age_seconds:
            return []
        self._last_sweep[key] = now
        return sweep_stale_tmp(directory, self.max_age_seconds)
