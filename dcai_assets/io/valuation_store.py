"""Checkpoints of the row valuation (:mod:`dcai_assets.core.valuation_blocks`) on any fsspec path:

``<root>/<key>/key.json``                 what the key stands for (model version, hashes, K, utility)
``<root>/<key>/blocks/<name>.npz``        a finished block of a valuation in progress
``<root>/<key>/complete/<name>.npz``      a complete valuation of some holdout rows
``<root>/<key>/complete/<name>.rows.npy`` its rows' hashes (written last: the record is complete)

Local writes go to a hidden ``.tmp`` file beside the target and are renamed over it, so a killed
write never leaves a file that looks finished; the stale ``.tmp`` files are swept like the
lake's (:mod:`dcai_assets.io.tmp_files`). On an object store a put is all or nothing.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import time
import uuid

import numpy as np
from upath import UPath

from dcai_assets.core.valuation_blocks import BlockSums
from dcai_assets.io.tmp_files import DEFAULT_TMP_MAX_AGE_SECONDS, TMP_SUFFIX, TmpSweeper, check_max_age

_ROWS = ".rows.npy"


class ValuationBlockStore:
    """Blocks and complete valuations under ``root``, one directory per valuation key.

    Examples
    --------
    >>> store = ValuationBlockStore(UPath("artifacts/my_dataset/valuation_blocks"))  # doctest: +SKIP
    """

    def __init__(self, root: UPath | str, max_age_seconds: float = DEFAULT_TMP_MAX_AGE_SECONDS):
        self.root = UPath(root)
        self.max_age_seconds = check_max_age(max_age_seconds)
        self._sweeper = TmpSweeper(self.max_age_seconds)

    @classmethod
    def of_dataset(cls, artifacts, dataset: str) -> ValuationBlockStore:
        """The store of ``dataset``'s valuations in an :class:`~dcai_assets.artifacts.ArtifactStore`
        (``<base_dir>/<dataset>/valuation_blocks``), sweeping as it does."""
        return cls(UPath(artifacts.base_dir) / dataset / "valuation_blocks", artifacts.tmp_max_age_seconds)

    def _path(self, key: str, kind: str, name: str, suffix: str = ".npz") -> UPath:
        if kind not in ("blocks", "complete"):
            raise ValueError(f"kind={kind!r}; expected 'blocks' or 'complete'")
        return self.root / key / kind / f"{name}{suffix}"

    def _put(self, path: UPath, data: bytes) -> None:
        if path.protocol not in ("", "file", "local"):
            path.write_bytes(data)  # an object store's put is all or nothing
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        self._sweeper.sweep(path.parent)
        # Unique per writer: two runs of the same valuation may write the same block at once.
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}{TMP_SUFFIX}")
        tmp.write_bytes(data)
        tmp.rename(path)

    def describe(self, key: str, description: dict) -> None:
        path = self.root / key / "key.json"
        if not path.exists():
            self._put(path, json.dumps(description, indent=1, sort_keys=True).encode())

    def write(self, key: str, kind: str, name: str, sums: BlockSums) -> None:
        buffer = io.BytesIO()
        np.savez(
            buffer, rows=sums.rows, groups=np.asarray(sums.groups, dtype=str), counts=sums.counts,
            values=sums.values, loo=sums.loo,
        )  # fmt: skip
        self._put(self._path(key, kind, name), buffer.getvalue())
        if kind == "complete":
            rows = io.BytesIO()
            np.save(rows, sums.rows)
            self._put(self._path(key, kind, name, _ROWS), rows.getvalue())

    def read(self, key: str, kind: str, name: str) -> BlockSums | None:
        """The stored sums, or None if absent or unreadable (then they are computed again)."""
        try:
            with np.load(io.BytesIO(self._path(key, kind, name).read_bytes()), allow_pickle=False) as f:
                return BlockSums(f["rows"], f["groups"], f["counts"], f["values"], f["loo"])
        except (FileNotFoundError, OSError, ValueError, KeyError):
            return None

    def remove(self, key: str, kind: str, name: str) -> None:
        for suffix in (_ROWS, ".npz"):  # the rows first: a record without them is not complete
            with contextlib.suppress(FileNotFoundError):
                self._path(key, kind, name, suffix).unlink()

    def blocks(self, key: str) -> list[str]:
        """The names of the finished blocks of valuations in progress under ``key``."""
        return self._names(key, "blocks", ".npz")

    def complete(self, key: str) -> list[str]:
        return self._names(key, "complete", _ROWS)

    def _names(self, key: str, kind: str, suffix: str) -> list[str]:
        try:
            entries = list((self.root / key / kind).iterdir())
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(
            p.name[: -len(suffix)] for p in entries if p.name.endswith(suffix) and not p.name.startswith(".")
        )

    def complete_rows(self, key: str, name: str) -> np.ndarray | None:
        try:
            rows = np.load(
                io.BytesIO(self._path(key, "complete", name, _ROWS).read_bytes()), allow_pickle=False
            )
        except (FileNotFoundError, OSError, ValueError):
            return None
        return rows if rows.ndim == 2 and rows.shape[1] == 2 and rows.dtype == np.uint64 else None

    def prune(self, keep: str, *, now: float | None = None) -> list[str]:
        """Remove the directories of other keys (other models, training rows, K or utility) that
        nothing has written to for ``max_age_seconds``; return their keys. A newer model never
        reads them, and a valuation still writing there is younger than that."""
        now = time.time() if now is None else now
        try:
            keys = [p for p in self.root.iterdir() if p.name != keep and not p.name.startswith(".")]
        except (FileNotFoundError, NotADirectoryError):
            return []
        removed = []
        for directory in keys:
            try:
                newest = max(p.stat().st_mtime for p in directory.rglob("*"))
            except (ValueError, OSError, NotImplementedError, KeyError):
                continue  # empty, or no ages to judge by: kept
            if now - newest > self.max_age_seconds:
                if directory.protocol in ("", "file", "local"):
                    shutil.rmtree(directory.path, ignore_errors=True)
                else:
                    directory.fs.rm(directory.path, recursive=True)
                removed.append(directory.name)
        return removed
