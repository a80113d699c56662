"""Validated data: each raw partition conformed to the schema, checked by a GX suite and for
drift; failing rows go to quarantine with their reason, and the verdicts are asset checks."""

import hashlib
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
from upath import UPath

from dcai_assets.artifacts import ArtifactStore
from dcai_assets.assets.ranged import (
    PartitionCheck,
    PartitionOutput,
    backfill_policy,
    by_partition,
    emit_checks,
    emit_partitions,
    is_ranged,
)
from dcai_assets.assets.raw import RAW_DATA, READ_AS_TEXT, read_as_text, schema_text_columns
from dcai_assets.core.conformance import REASON_COLUMN, Conformance, conform, quarantine_reason_counts
from dcai_assets.core.drift import ColumnDrift, drift_report, partition_profile
from dcai_assets.core.expectations import SuiteResult, run_suite
from dcai_assets.core.reading import frame_digest
from dcai_assets.core.schema import ReferenceProfile, TableSchema
from dcai_assets.core.verdicts import (
    BLOCKING_CHECKS,
    CHECK_DESCRIPTIONS,
    NO_DRIFT_FROM_PREVIOUS,
    NO_DRIFT_FROM_REFERENCE,
    WARNING_CHECKS,
    Verdict,
    column_verdicts,
    drift_verdict,
    markdown_table,
)
from dcai_assets.errors import DataInputError
from dcai_assets.metadata import column_schema
from dcai_assets.partitions import asset_key, partitions_def
from dcai_assets.plots import bar_chart_svg, svg_markdown
from dcai_assets.privacy import examples_metadata, gated_conformance, gated_drift
from dcai_assets.spec import DatasetSpec, PrivacySpec, partition_order

VALIDATED_DATA = "validated_data"
QUARANTINED_ROWS = "quarantined_rows"


def schema_version(spec: DatasetSpec) -> str:
    """A hash of the schema file: editing the schema marks validated data stale."""
    path = Path(spec.schema_path)
    text = path.read_bytes() if path.exists() else b"missing"
    return hashlib.sha256(text).hexdigest()[:12]


def _display_path(path: str | Path) -> str:
    """A path as users would type it: relative to the working directory when it is inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def partition_span_days(pdef: dg.PartitionsDefinition, key: str) -> float | None:
    """Days a time-window partition covers (31 for January, 1/24 for an hour); None for dynamic
    or static partitions, or a key outside the definition."""
    if not isinstance(pdef, dg.TimeWindowPartitionsDefinition):
        return None
    try:
        window = pdef.time_window_for_partition_key(key)
    except Exception:  # a key that is not one of this definition's windows
        return None
    return (window.end - window.start).total_seconds() / 86_400.0


def not_features(spec: DatasetSpec) -> list[str]:
    """Columns that are never drift-checked: the label (gold) column and a single-column key."""
    ids = spec.key_columns if len(spec.key_columns) == 1 else []  # parts of a composite key are features
    return [c for c in (spec.label, *ids) if c]


def _reference_mismatch(spec: DatasetSpec, schema: TableSchema) -> str | None:
    """Says so when the schema was inferred from another window than the spec's reference."""
    if callable(spec.reference) or spec.reference is None or not schema.reference_partitions:
        return None
    wanted = [str(k) for k in spec.reference]
    if sorted(wanted) == sorted(schema.reference_partitions):
        return None
    return (
        f"the schema was inferred from partitions {schema.reference_partitions[:3]}... but "
        f"DatasetSpec.reference lists {wanted[:3]}...; regenerate the schema"
    )


def _previous_profile(
    context: dg.AssetExecutionContext, spec: DatasetSpec, artifacts: ArtifactStore, key: str
) -> tuple[str | None, dict[str, ReferenceProfile] | None]:
    registered = context.assets_def.partitions_def.get_partition_keys(
        dynamic_partitions_store=context.instance
    )
    keys = partition_order(registered, spec.partitioning)
    previous, stored = artifacts.latest_before(spec.name, "profiles", key, keys)
    if stored is None:
        return None, None
    return previous, {c: ReferenceProfile(**p) for c, p in stored.items()}


def _drift_table(ref: list[ColumnDrift], prev: list[ColumnDrift], prev_key: str | None) -> str:
    by_prev = {d.column: d for d in prev}
    head = (
        f"| feature | metric | n | vs reference | vs {prev_key or 'previous'} | threshold "
        "| of which sampling noise | drifted |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for d in sorted(ref, key=lambda d: d.distance / max(d.threshold or 1, 1e-12), reverse=True):
        p = by_prev.get(d.column)
        flag = "⚠" if d.drifted or (p is not None and p.drifted) else ""
        if d.undetermined:
            flag = f"too few values (n={d.n})"
        threshold = f"{d.threshold:.3f}" if d.threshold is not None else "-"
        noise = f"{d.noise_threshold:.3f}" if d.noise_threshold is not None else "-"
        vs_prev = f"{p.distance:.3f}" if p else "-"
        lines.append(
            f"| `{d.column}` | {d.metric} | {d.n if d.n is not None else '-'} | {d.distance:.3f} "
            f"| {vs_prev} | {threshold} | {noise} | {flag} |"
        )
    measured = [d for d in ref if d.threshold]
    chart = bar_chart_svg(
        [d.column for d in measured],
        [d.distance / d.threshold for d in measured],
        "drift from the reference, as a share of each feature's threshold (red: above it)",
        unit="x",
        highlight=[d.drifted for d in measured],
    )
    return "\n".join(lines) + "\n\n" + svg_markdown(chart, "drift per feature")


def _summary_table(verdicts: list[Verdict]) -> str:
    lines = ["| check | verdict | summary |", "|---|---|---|"]
    for v in verdicts:
        state = "✅ passed" if v.passed else ("❌ " if v.severity == "ERROR" else "⚠ ") + v.severity
        lines.append(f"| `{v.check}` | {state} | {v.summary.replace('|', '/')} |")
    return "\n".join(lines)


def build_validated_assets(spec: DatasetSpec) -> dg.AssetsDefinition:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)  # partitioned checks are in preview
        return _build_validated_assets(spec)


def _build_validated_assets(spec: DatasetSpec) -> dg.AssetsDefinition:
    """The ``<dataset>/validated_data`` and ``<dataset>/quarantined_rows`` assets and their checks."""
    pdef = partitions_def(spec)
    validated_key = asset_key(spec, VALIDATED_DATA)
    quarantine_key = asset_key(spec, QUARANTINED_ROWS)

    @dg.multi_asset(
        name=f"{spec.name}_validation",
        outs=_validation_outs(spec, validated_key, quarantine_key),
        ins={"raw": dg.AssetIn(key=asset_key(spec, RAW_DATA))},
        partitions_def=pdef,
        backfill_policy=backfill_policy(spec.max_partitions_per_run),
        check_specs=[
            dg.AssetCheckSpec(
                name,
                asset=validated_key,
                blocking=name in BLOCKING_CHECKS,
                description=CHECK_DESCRIPTIONS[name],
                partitions_def=pdef,  # one verdict per partition, not one overwriting the last
            )
            for name in (*BLOCKING_CHECKS, *WARNING_CHECKS)
        ],
    )
    def validation(
        context: dg.AssetExecutionContext,
        raw: Any,  # a DataFrame, or {partition: DataFrame} in a ranged run
        artifacts: ArtifactStore,
    ) -> Iterator[dg.Output | dg.AssetMaterialization | dg.AssetCheckResult]:
        check_raw_read_as_the_schema_says(context.instance, spec, context.partition_keys)
        if not is_ranged(context):
            v = _validate(context, spec, artifacts, context.partition_key, raw)
            yield from _single_partition_events(v, validated_key)
            return
        keys = context.partition_keys
        frames = by_partition(raw, keys, f"{RAW_DATA} of {spec.name}")
        # In partition order: each healthy day is the next one's drift baseline, as in single runs.
        context.log.info(f"partitions {keys[0]}...{keys[-1]}: running the GX suite on each of {len(keys)}")
        done = [_validate(context, spec, artifacts, key, frames[key], log=False) for key in keys]
        yield from emit_partitions(
            context, output_name="validated", asset_key=validated_key, outputs=[v.validated for v in done]
        )
        yield from emit_partitions(
            context, output_name="quarantine", asset_key=quarantine_key, outputs=[v.quarantine for v in done]
        )
        yield from emit_checks(context, [c for v in done for c in v.checks], validated_key)

    return validation


def check_raw_read_as_the_schema_says(
    instance: dg.DagsterInstance, spec: DatasetSpec, keys: Sequence[str]
) -> None:
    """A DataInputError naming the partition and columns when a stored raw partition was read
    from its CSV with other text columns than the schema now declares: validating it would keep
    the earlier read's values (``42`` for ``000042``). Re-materializing its raw data re-reads it."""
    readable, columns = schema_text_columns(spec)
    if not readable:
        return  # the schema file cannot be read: validation says so, naming it
    current = read_as_text(columns)
    raw_key = asset_key(spec, RAW_DATA)
    for key in keys:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=raw_key, asset_partitions=[key]), limit=1
        ).records
        if not records:
            continue
        metadata = records[0].asset_materialization.metadata
        source = metadata.get("source")
        if source is None or not str(source.value).lower().endswith(".csv"):
            continue
        recorded = metadata[READ_AS_TEXT].value if READ_AS_TEXT in metadata else "not recorded"
        if recorded == current:
            continue
        changed = (
            sorted(set(recorded) ^ set(current))
            if isinstance(recorded, list) and isinstance(current, list)
            else []
        )
        how = (
            "by an earlier version of dcai_assets, which did not record its text columns"
            if recorded == "not recorded"
            else f"with text columns {recorded}"
        )
        raise DataInputError(
            f"the stored {RAW_DATA} was read from its CSV {how}, but the schema now declares {current}"
            + (f" (changed: {', '.join(f'`{c}`' for c in changed)})" if changed else "")
            + ": its values keep the earlier read's typing (e.g. 000042 read as the number 42)",
            expected=f"{RAW_DATA} read with the text columns the schema declares",
            file=Path(str(source.value)).name,
            partition=key,
            column=changed[0] if len(changed) == 1 else None,
            action=(
                f"Materialize {raw_key.to_user_string()} for this partition first (with "
                f"{asset_key(spec, VALIDATED_DATA).to_user_string()}, as the ingest job does)"
            ),
        )


def _validation_outs(
    spec: DatasetSpec, validated_key: dg.AssetKey, quarantine_key: dg.AssetKey
) -> dict[str, dg.AssetOut]:
    """The validation step's two outputs: validated rows and quarantined rows."""
    version = f"validate-v1-{schema_version(spec)}"
    schema_file = _display_path(spec.schema_path)
    return {
        "validated": dg.AssetOut(
            key=validated_key,
            group_name="validated",
            kinds={"pandas", "parquet", "greatexpectations"},
            owners=list(spec.owners),
            code_version=version,
            description=(
                "Rows of each raw partition that conform to the schema, cast to its dtypes. "
                "A partition that fails a blocking check is not written: it shows as failed "
                f"and nothing downstream reads it. Schema: {schema_file}."
            ),
            # Not written when a blocking check fails, so the partition bar shows it failed.
            is_required=False,
        ),
        "quarantine": dg.AssetOut(
            key=quarantine_key,
            group_name="validated",
            kinds={"pandas", "parquet"},
            owners=list(spec.owners),
            code_version=version,
            description="Rows that failed a row-level check, as read, with the reason per row.",
            is_required=False,  # always written; a ranged run records each partition itself
        ),
    }


@dataclass
class _Validation:
    """One partition's outcome: its validated rows (None when blocked), quarantine and verdicts."""

    validated: PartitionOutput
    quarantine: PartitionOutput
    checks: list[PartitionCheck]


def _single_partition_events(
    v: _Validation, validated_key: dg.AssetKey
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    """A single-partition run's outputs (validated rows only when not blocked) and verdicts."""
    if v.validated.value is not None:
        yield dg.Output(
            v.validated.value,
            output_name="validated",
            data_version=dg.DataVersion(v.validated.data_version),
            metadata=v.validated.metadata,
        )
    yield dg.Output(
        v.quarantine.value,
        output_name="quarantine",
        data_version=dg.DataVersion(v.quarantine.data_version),
        metadata=v.quarantine.metadata,
    )
    for c in v.checks:
        yield c.result(validated_key)


@dataclass
class _Checked:
    """One partition's conformance, GX suite and drift reports, and the verdicts drawn from them."""

    schema: TableSchema
    span: float | None
    conf: Conformance
    suite: SuiteResult
    verdicts: list[Verdict]
    ref_drift: list[ColumnDrift]
    prev_drift: list[ColumnDrift]
    prev_key: str | None


def _validate(
    context: dg.AssetExecutionContext,
    spec: DatasetSpec,
    artifacts: ArtifactStore,
    key: str,
    raw: pd.DataFrame,
    log: bool = True,
) -> _Validation:
    checked = _check(context, spec, artifacts, key, raw, log)
    conf, verdicts = checked.conf, checked.verdicts
    healthy = all(v.passed for v in verdicts if v.check != NO_DRIFT_FROM_PREVIOUS)
    if healthy:  # only a healthy partition becomes the next one's baseline
        profile = partition_profile(conf.valid, checked.schema.columns)
        artifacts.write(spec.name, "profiles", key, {c: asdict(p) for c, p in profile.items()})
    gx_path = artifacts.write(spec.name, "gx_results", key, checked.suite.full_result)
    for v in verdicts:
        for f in v.findings:
            log = {"ERROR": context.log.error, "WARN": context.log.warning}.get(f.severity, context.log.info)
            log(f"partition {key}: {f.message}. Suggested action: {f.action}")

    accounting = f"{conf.rows_in:,} in = {conf.rows_valid:,} valid + {conf.rows_quarantined:,} quarantined"
    # The same rule Dagster applies to fail the step: a blocking check failed with an ERROR.
    blocked_by = [
        v.check for v in verdicts if v.check in BLOCKING_CHECKS and not v.passed and v.severity == "ERROR"
    ]
    validated = PartitionOutput(key, None, "", {})
    if blocked_by:
        context.log.error(
            f"partition {key} is blocked by {', '.join(blocked_by)}: {VALIDATED_DATA} is not "
            f"written for it ({accounting}; every row stays in {RAW_DATA}), so it shows as failed "
            "and nothing downstream reads it. Suggested action: fix the file (the landing sensor "
            "re-runs it) or, if the data is right, the schema, then re-run this partition."
        )
    else:
        validated = _validated_output(spec, key, checked, accounting, gx_path)
    quarantine = _quarantine_output(key, conf, verdicts, accounting, blocked_by, gx_path, spec.privacy)
    return _Validation(validated, quarantine, _check_verdicts(key, verdicts))


def _check(
    context: dg.AssetExecutionContext,
    spec: DatasetSpec,
    artifacts: ArtifactStore,
    key: str,
    raw: pd.DataFrame,
    log: bool,
) -> _Checked:
    """Conform one raw partition, run the GX suite on it and measure its drift from the reference
    and from the previous healthy partition."""
    schema_file = _display_path(spec.schema_path)
    regenerate = "dcai-assets schema infer <module>:<SPEC>"
    schema = TableSchema.load(spec.schema_path)
    mismatch = _reference_mismatch(spec, schema)
    if mismatch:
        context.log.warning(f"partition {key}: {mismatch}")
    span = partition_span_days(context.assets_def.partitions_def, key)
    conf = conform(raw, schema)
    if log:  # a ranged run says it once (each log line is an event written to the instance)
        context.log.info(f"partition {key}: running the GX suite on {conf.rows_in:,} rows")
    suite = run_suite(conf.coerced, schema, name=spec.name, span_days=span)
    verdicts = column_verdicts(
        gated_conformance(spec.privacy, conf), suite, schema, schema_file, span_days=span
    )

    ranks = artifacts.feature_importance_ranks(spec.name)
    drift_settings = {"false_alarm_rate": schema.drift_false_alarm_rate, "exclude": not_features(spec)}
    ref_drift = gated_drift(spec.privacy, drift_report(conf.valid, schema.columns, **drift_settings))
    prev_key, prev_profile = _previous_profile(context, spec, artifacts, key)
    prev_drift = gated_drift(
        spec.privacy,
        drift_report(
            conf.valid,
            schema.columns,
            prev_profile,
            against=f"previous partition {prev_key}",
            **drift_settings,
        )
        if prev_profile
        else [],
    )
    verdicts.append(
        drift_verdict(NO_DRIFT_FROM_REFERENCE, ref_drift, importance_ranks=ranks, regenerate=regenerate)
    )
    verdicts.append(
        drift_verdict(NO_DRIFT_FROM_PREVIOUS, prev_drift, importance_ranks=ranks, regenerate=regenerate)
    )
    return _Checked(schema, span, conf, suite, verdicts, ref_drift, prev_drift, prev_key)


def _validated_output(
    spec: DatasetSpec, key: str, c: _Checked, accounting: str, gx_path: UPath
) -> PartitionOutput:
    """The validated rows of a partition no blocking check stopped, with their metadata."""
    conf = c.conf
    return PartitionOutput(
        key,
        conf.valid,
        frame_digest(conf.valid)[:16],
        {
            "rows_in": conf.rows_in,
            "rows_valid": conf.rows_valid,
            "rows_quarantined": conf.rows_quarantined,
            "accounting": accounting,
            "dagster/row_count": conf.rows_valid,
            "dagster/column_schema": column_schema(conf.valid),
            "checks": dg.MetadataValue.md(_summary_table(c.verdicts)),
            "drift": dg.MetadataValue.md(_drift_table(c.ref_drift, c.prev_drift, c.prev_key)),
            "compared_with_partition": c.prev_key or "none",
            "row_bounds": c.schema.describe_row_bounds(c.span),
            "reference_window": ", ".join(c.schema.reference_partitions) or "not recorded",
            "schema_version": schema_version(spec),
            "gx_result": dg.MetadataValue.path(str(gx_path)),
            "gx_success": c.suite.success,
        },
    )


def _quarantine_output(
    key: str,
    conf: Conformance,
    verdicts: list[Verdict],
    accounting: str,
    blocked_by: list[str],
    gx_path: UPath,
    privacy: PrivacySpec,
) -> PartitionOutput:
    """A partition's quarantined rows (written whether or not it is blocked), with their metadata."""
    return PartitionOutput(
        key,
        conf.quarantine,
        frame_digest(conf.quarantine)[:16],
        {
            "dagster/row_count": conf.rows_quarantined,
            "rows_in": conf.rows_in,
            "rows_valid": conf.rows_valid,
            "rows_quarantined": conf.rows_quarantined,
            "accounting": accounting,
            "blocked_by": ", ".join(blocked_by) or "none",
            "checks": dg.MetadataValue.md(_summary_table(verdicts)),
            "gx_result": dg.MetadataValue.path(str(gx_path)),
            "by_column": dg.MetadataValue.json(quarantine_reason_counts(conf.quarantine)),
            "preview": examples_metadata(
                privacy,
                conf.quarantine[[REASON_COLUMN, *conf.quarantine.columns[:-1]]],
                what="quarantined rows",
            ),
        },
    )


def _check_verdicts(key: str, verdicts: list[Verdict]) -> list[PartitionCheck]:
    """Each check's verdict on the partition, with its findings."""
    return [
        PartitionCheck(
            key,
            v.check,
            v.passed,
            dg.AssetCheckSeverity.ERROR if v.severity == "ERROR" else dg.AssetCheckSeverity.WARN,
            v.summary,
            {
                "findings": dg.MetadataValue.md(markdown_table(v)),
                "finding_count": len(v.findings),
                "partition": key,
            },
        )
        for v in verdicts
    ]


def partitions_passing_blocking_checks(
    instance: dg.DagsterInstance, spec: DatasetSpec, partitions: list[str]
) -> tuple[list[str], list[str]]:
    """Split validated partitions into (usable, blocked): blocked ones failed a blocking check in
    their latest evaluation, so they must not flow into anything downstream."""
    from dagster._core.event_api import PartitionKeyFilter

    check_keys = [dg.AssetCheckKey(asset_key(spec, VALIDATED_DATA), name) for name in BLOCKING_CHECKS]
    usable, blocked = [], []
    for p in partitions:
        latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            check_keys, partition_filter=PartitionKeyFilter(key=p)
        )
        failed = any(
            r.event is not None
            and not r.event.asset_check_evaluation.passed
            and r.event.asset_check_evaluation.severity == dg.AssetCheckSeverity.ERROR
            for r in latest.values()
        )
        (blocked if failed else usable).append(p)
    return usable, blocked
