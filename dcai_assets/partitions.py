"""The Dagster partitions definition a spec's partitioning stands for."""

from __future__ import annotations

import dagster as dg

from dcai_assets.spec import DailyPartitions, DatasetSpec


def partitions_def(spec: DatasetSpec) -> dg.PartitionsDefinition:
    p = spec.partitioning
    if isinstance(p, DailyPartitions):
        return dg.DailyPartitionsDefinition(start_date=p.start, end_date=p.end, timezone=p.timezone)
    return dg.DynamicPartitionsDefinition(name=f"{spec.name}_batches")


def asset_key(spec: DatasetSpec, name: str) -> dg.AssetKey:
    """``<dataset>/<name>``, e.g. ``orders/validated_data``."""
    return dg.AssetKey([spec.name, name])
