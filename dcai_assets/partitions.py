"""The Dagster partitions definition a spec's partitioning stands for."""

from __future__ import annotations

import dagster as dg

from dcai_assets.spec import (
    DailyPartitions,
    DatasetSpec,
    DynamicPartitions,
    HourlyPartitions,
    MonthlyPartitions,
    StaticPartitions,
    TimeWindowPartitions,
    WeeklyPartitions,
)

_TIME_WINDOW_DEFINITIONS = {
    HourlyPartitions: dg.HourlyPartitionsDefinition,
    DailyPartitions: dg.DailyPartitionsDefinition,
    WeeklyPartitions: dg.WeeklyPartitionsDefinition,
    MonthlyPartitions: dg.MonthlyPartitionsDefinition,
}


def dynamic_partitions_name(spec: DatasetSpec) -> str:
    """The name the instance stores a dynamic dataset's registered keys under."""
    return f"{spec.name}_batches"


def partitions_def(spec: DatasetSpec) -> dg.PartitionsDefinition:
    p = spec.partitioning
    if isinstance(p, TimeWindowPartitions):
        definition = _TIME_WINDOW_DEFINITIONS[type(p)]
        # Dagster parses start/end in its key format; the spec also takes plain dates for hours.
        start, end = p.start_time, p.end_time
        return definition(start_date=start, end_date=end, timezone=p.timezone)
    if isinstance(p, StaticPartitions):
        return dg.StaticPartitionsDefinition(list(p.keys))
    assert isinstance(p, DynamicPartitions)
    return dg.DynamicPartitionsDefinition(name=dynamic_partitions_name(spec))


def asset_key(spec: DatasetSpec, name: str) -> dg.AssetKey:
    """``<dataset>/<name>``, e.g. ``orders/validated_data``."""
    return dg.AssetKey([spec.name, name])


def register_partitions(instance: dg.DagsterInstance, spec: DatasetSpec, keys: list[str]) -> list[str]:
    """Add ``keys`` to the dynamic partitions of ``spec`` on ``instance``; the keys that were new.

    Each key is checked as a landing file's would be (a bad key raises, naming it). Only dynamic
    partitionings are registered: time windows and static keys exist from the definitions.
    """
    from dcai_assets.spec import check_partition_key

    if not isinstance(spec.partitioning, DynamicPartitions):
        raise ValueError(
            f"dataset {spec.name!r} has {type(spec.partitioning).__name__}, whose partitions exist from "
            "the definitions; only DynamicPartitions are registered"
        )
    keys = [check_partition_key(k, spec.partitioning) for k in dict.fromkeys(keys)]
    name = dynamic_partitions_name(spec)
    known = set(instance.get_dynamic_partitions(name))
    new = [k for k in keys if k not in known]
    if new:
        instance.add_dynamic_partitions(name, new)
    return new
