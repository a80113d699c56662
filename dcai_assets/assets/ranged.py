"""Ranged runs: one run materializing many partitions of a per-partition stage (a backfill under
``BackfillPolicy.multi_run``), each partition recording what a run of its own would record.

Dagster records a ranged output as one materialization per partition, but with a single data
version for the whole range and no way to leave a partition out; a check result there carries no
partition at all. So a ranged step here writes each partition through the IO manager itself and
logs, per partition, its own materialization (its data version, code version, input versions and
metadata) and its own check evaluations. A partition that is not written (a failed blocking check)
gets no materialization, and the failed blocking evaluation fails the step: Dagster then shows that
partition as failed, the others as materialized (what its backfill daemon expects of a ranged run
that "materialized some partitions and failed on others").

A step's output is still yielded when a later stage runs in the same run and loads it (an
ungiven output would skip that stage, and Dagster's backfill would wait for it forever): Dagster
then also records its own materialization of each partition, one data version for the whole range,
and the partition's own materialization follows it, so the latest one (what staleness, lineage and
the UI read) is the partition's own."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import dagster as dg
import pandas as pd
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluation,
    AssetCheckEvaluationTargetMaterializationData,
)
from dagster._core.definitions.data_version import (
    CODE_VERSION_TAG,
    DATA_VERSION_IS_USER_PROVIDED_TAG,
    DATA_VERSION_TAG,
    DEFAULT_DATA_VERSION,
    NULL_EVENT_POINTER,
    get_input_data_version_tag,
    get_input_event_pointer_tag,
)
from dagster._core.storage.tags import BACKFILL_ID_TAG


def backfill_policy(max_partitions_per_run: int) -> dg.BackfillPolicy:
    """Runs of at most ``max_partitions_per_run`` partitions for backfills and automation."""
    return dg.BackfillPolicy.multi_run(max_partitions_per_run=max_partitions_per_run)


def is_ranged(context: dg.AssetExecutionContext) -> bool:
    """Whether this run materializes a range of partitions (a backfill run) rather than one."""
    return not context.has_partition_key


@dataclass
class PartitionOutput:
    """What one partition of one asset output records: ``value`` is None when it is not written."""

    key: str
    value: pd.DataFrame | None
    data_version: str
    metadata: dict = field(default_factory=dict)


@dataclass(frozen=True)
class PartitionCheck:
    """One check's verdict on one partition."""

    key: str
    check_name: str
    passed: bool
    severity: dg.AssetCheckSeverity
    description: str
    metadata: dict = field(default_factory=dict)

    def result(self, asset_key: dg.AssetKey) -> dg.AssetCheckResult:
        """The verdict as a single-partition run yields it."""
        return dg.AssetCheckResult(
            check_name=self.check_name,
            asset_key=asset_key,
            passed=self.passed,
            severity=self.severity,
            description=self.description,
            metadata=self.metadata,
        )


def _downstream_in_run(context: dg.AssetExecutionContext, asset_key: dg.AssetKey) -> bool:
    layer = context.job_def.asset_layer
    return bool(layer.get(asset_key).child_keys & set(layer.selected_asset_keys))


def _input_provenance(
    context: dg.AssetExecutionContext, asset_key: dg.AssetKey, keys: list[str]
) -> dict[str, dict[str, str]]:
    """Per partition, the input tags Dagster writes on a materialization: each parent's data
    version and event (the same partition of a partitioned parent, the latest of another)."""
    layer = context.job_def.asset_layer
    tags: dict[str, dict[str, str]] = {k: {} for k in keys}
    for parent in layer.get(asset_key).parent_keys:
        partitioned = layer.get(parent).partitions_def is not None
        latest = _latest_records(context.instance, parent, keys if partitioned else [None])
        for k in keys:
            r = latest.get(k if partitioned else None)
            version = r.asset_materialization.tags.get(DATA_VERSION_TAG) if r else None
            tags[k][get_input_data_version_tag(parent)] = version or DEFAULT_DATA_VERSION.value
            tags[k][get_input_event_pointer_tag(parent)] = str(r.storage_id) if r else NULL_EVENT_POINTER
    return tags


def emit_partitions(
    context: dg.AssetExecutionContext,
    *,
    output_name: str,
    asset_key: dg.AssetKey,
    outputs: list[PartitionOutput],
    io_manager_key: str = "io_manager",
) -> Iterator[dg.Output | dg.AssetMaterialization]:
    """Write and record each partition of a ranged output as a run of its own would (see the
    module's docstring); partitions whose ``value`` is None get nothing."""
    written = [o for o in outputs if o.value is not None]
    pdef = context.assets_def.partitions_def
    if len(written) == len(outputs) and _downstream_in_run(context, asset_key):
        yield dg.Output(
            {o.key: o.value for o in written},
            output_name=output_name,
            metadata={"partition_range": f"{outputs[0].key}...{outputs[-1].key}"},
        )
    else:
        io_manager = getattr(context.resources, io_manager_key)
        for o in written:
            out = dg.build_output_context(  # the run's resources: nothing is built per partition
                asset_key=asset_key,
                partition_key=o.key,
                asset_partitions_def=pdef,
                resources=context.resources,
                instance=context.instance,
            )
            io_manager.handle_output(out, o.value)
    code_version = context.assets_def.code_versions_by_key.get(asset_key) or context.run_id
    provenance = _input_provenance(context, asset_key, [o.key for o in written])
    backfill = context.get_tag(BACKFILL_ID_TAG)
    for o in written:
        tags = {
            **provenance[o.key],
            CODE_VERSION_TAG: code_version,
            DATA_VERSION_TAG: o.data_version,
            DATA_VERSION_IS_USER_PROVIDED_TAG: "true",
        }
        if backfill:
            tags[BACKFILL_ID_TAG] = backfill
        yield dg.AssetMaterialization(asset_key=asset_key, partition=o.key, metadata=o.metadata, tags=tags)


def emit_checks(
    context: dg.AssetExecutionContext, checks: list[PartitionCheck], asset_key: dg.AssetKey
) -> Iterator[AssetCheckEvaluation | dg.Output]:
    """Each partition's check evaluations, then the checks' (empty) outputs; a failed blocking
    check with ERROR severity fails the step once everything is recorded."""
    selected = {k.name: k for k in context.selected_asset_check_keys if k.asset_key == asset_key}
    targets = _latest_materializations(context, asset_key, sorted({c.key for c in checks}))
    for c in checks:
        if c.check_name not in selected:
            continue
        spec = context.assets_def.get_spec_for_check_key(selected[c.check_name])
        yield AssetCheckEvaluation(
            asset_key=asset_key,
            check_name=c.check_name,
            passed=c.passed,
            metadata=c.metadata,
            severity=c.severity,
            description=c.description,
            blocking=spec.blocking,
            partition=c.key,
            target_materialization_data=targets.get(c.key),
        )
    for key in selected.values():
        yield dg.Output(None, output_name=context.assets_def.get_output_name_for_asset_check_key(key))


def _latest_materializations(
    context: dg.AssetExecutionContext, asset_key: dg.AssetKey, keys: list[str]
) -> dict[str, AssetCheckEvaluationTargetMaterializationData]:
    """Each partition's latest materialization (this run's, once logged): what its checks judged,
    as Dagster records it for a check of a single-partition run."""
    return {
        k: AssetCheckEvaluationTargetMaterializationData(
            storage_id=r.storage_id, run_id=r.run_id, timestamp=r.timestamp
        )
        for k, r in _latest_records(context.instance, asset_key, keys).items()
    }


def _latest_records(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, keys: list[str] | list[None]
) -> dict[str | None, dg.EventLogRecord]:
    """The latest materialization of each partition (``[None]``: of an unpartitioned asset): one
    query for all, then one per partition that many newer events of others crowded out."""
    partitions = None if keys == [None] else list(keys)
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=partitions), limit=max(1, 4 * len(keys))
    ).records
    latest: dict[str | None, dg.EventLogRecord] = {}
    for r in records:  # newest first
        latest.setdefault(r.asset_materialization.partition if partitions else None, r)
    for k in partitions or []:
        if k not in latest:
            found = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[k]), limit=1
            ).records
            if found:
                latest[k] = found[0]
    return latest


def by_partition(value: pd.DataFrame | Mapping[str, pd.DataFrame], keys: list[str], what: str) -> dict:
    """A ranged input as {partition: frame}, failing with the partitions it lacks."""
    if not isinstance(value, Mapping):
        if len(keys) == 1:
            return {keys[0]: value}
        raise TypeError(f"{what}: got one {type(value).__name__} for partitions {keys[0]}...{keys[-1]}")
    missing = [k for k in keys if k not in value]
    if missing:
        raise ValueError(f"{what}: partitions {missing[:5]} of {keys[0]}...{keys[-1]} were not loaded")
    return dict(value)
