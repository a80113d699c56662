"""Where validation keeps what is not a DataFrame: full GX results, partition profiles, and the
feature-importance ranks a trained model leaves for drift alerts."""

from __future__ import annotations

import json
from typing import Any

import dagster as dg
from upath import UPath


class ArtifactStore(dg.ConfigurableResource):
    """A directory of JSON artifacts, one file per dataset, kind and partition; ``base_dir`` is a
    local directory or any fsspec URL (e.g. ``s3://bucket/artifacts``)."""

    base_dir: str

    def path(self, dataset: str, kind: str, name: str) -> UPath:
        return UPath(self.base_dir) / dataset / kind / f"{name}.json"

    def write(self, dataset: str, kind: str, name: str, payload: Any) -> UPath:
        path = self.path(dataset, kind, name)
        text = json.dumps(payload, default=str, indent=1)
        if path.protocol not in ("", "file", "local"):
            path.write_text(text, encoding="utf-8")  # an object store's put is all or nothing
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")  # a local write goes beside, then renames
        tmp.write_text(text, encoding="utf-8")
        tmp.rename(path)  # over the old file (``replace`` is not there for file:// URLs)
        return path

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
