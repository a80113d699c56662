"""Where validation keeps what is not a DataFrame: full GX results, partition profiles, and the
feature-importance ranks a trained model leaves for drift alerts."""

from __future__ import annotations

import json
from typing import Any

import dagster as dg
from pydantic import Field, PrivateAttr, field_validator
from upath import UPath

from dcai_assets.io.tmp_files import DEFAULT_TMP_MAX_AGE_SECONDS, TmpSweeper, check_max_age, tmp_path


class ArtifactStore(dg.ConfigurableResource):
    """A directory of JSON artifacts, one file per dataset, kind and partition; ``base_dir`` is a
    local directory or any fsspec URL (e.g. ``s3://bucket/artifacts``)."""

    base_dir: str
    tmp_max_age_seconds: int = Field(
        default=DEFAULT_TMP_MAX_AGE_SECONDS,
        description="Hidden .tmp files of interrupted writes untouched for this long (at least 60 s) "
        "are removed when a write next goes into their directory.",
    )
    _sweeper: TmpSweeper | None = PrivateAttr(default=None)

    @field_validator("tmp_max_age_seconds")
    @classmethod
    def _at_least_a_minute(cls, value: int) -> int:
        check_max_age(value, "ArtifactStore.tmp_max_age_seconds")
        return value

    def path(self, dataset: str, kind: str, name: str) -> UPath:
        return UPath(self.base_dir) / dataset / kind / f"{name}.json"

    def write(self, dataset: str, kind: str, name: str, payload: Any) -> UPath:
        path = self.path(dataset, kind, name)
        text = json.dumps(payload, default=str, indent=1)
        if path.protocol not in ("", "file", "local"):
            path.write_text(text, encoding="utf-8")  # an object store's put is all or nothing
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._sweep(path.parent)
        tmp = tmp_path(path)  # a local write goes beside, then renames
        tmp.write_text(text, encoding="utf-8")
        tmp.rename(path)  # over the old file (``replace`` is not there for file:// URLs)
        return path

    def _sweep(self, directory: UPath) -> None:
        """Remove what killed writes left in ``directory`` (see dcai_assets.io.tmp_files)."""
        if self._sweeper is None:
            self._sweeper = TmpSweeper(self.tmp_max_age_seconds, "ArtifactStore.tmp_max_age_seconds")
        swept = self._sweeper.sweep(directory)
        if swept:
            dg.get_dagster_logger().warning(
                f"swept {len(swept)} stale temporary file(s) of interrupted writes from {directory}: "
                + ", ".join(p.name for p in swept)
            )

    def read(self, dataset: str, kind: str, name: str) -> Any | None:
        path = self.path(dataset, kind, name)
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None

    def latest_before(
        self, dataset: str, kind: str, partition: str, partition_keys: list[str], lookback: int = 31
    ) -> tuple[str | None, Any | None]:
        """The nearest earlier partition (within ``lookback``) that has a ``kind`` artifact, and it."""
        at = partition_keys.index(partition) if partition in partition_keys else len(partition_keys)
        for previous in reversed(partition_keys[max(0, at - lookback) : at]):
            stored = self.read(dataset, kind, previous)
            if stored is not None:
                return previous, stored
        return None, None

    def feature_importance_ranks(self, dataset: str) -> dict[str, int] | None:
        """Rank of each feature in the current champion's importance (1 = most important), if a
        model has been trained; drift alerts name it."""
        ranks = self.read(dataset, "model", "feature_importance_ranks")
        return {str(k): int(v) for k, v in ranks.items()} if ranks else None
