"""Validated data: each raw partition conformed to the schema, checked by a GX suite and for
drift; failing rows go to quarantine with their reason, and the verdicts are asset checks."""

import hashlib
import warnings
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import dagster as dg
import pandas as pd

from dcai_assets.artifacts import ArtifactStore
from dcai_assets.assets.raw import RAW_DATA
from dcai_assets.core.conformance import REASON_COLUMN, conform
from dcai_assets.core.drift import ColumnDrift, drift_report, partition_profile
from dcai_assets.core.expectations import run_suite
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
from dcai_assets.metadata import column_schema, preview
from dcai_assets.partitions import asset_key, partitions_def
from dcai_assets.plots import bar_chart_svg, svg_markdown
from dcai_assets.spec import DatasetSpec, partition_order

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


def _previous_profile(
    context: dg.AssetExecutionContext, spec: DatasetSpec, artifacts: ArtifactStore
) -> tuple[str | None, dict[str, ReferenceProfile] | None]:
    registered = context.assets_def.partitions_def.get_partition_keys(
        dynamic_partitions_store=context.instance
    )
    keys = partition_order(registered, spec.partitioning)
    previous, stored = artifacts.latest_before(spec.name, "profiles", context.partition_key, keys)
    if stored is None:
        return None, None
    return previous, {c: ReferenceProfile(**p) for c, p in stored.items()}


def _drift_table(ref: list[ColumnDrift], prev: list[ColumnDrift], prev_key: str | None) -> str:
    by_prev = {d.column: d for d in prev}
    head = f"| feature | metric | vs reference | vs {prev_key or 'previous'} | threshold | drifted |"
    lines = [head, "|---|---|---|---|---|---|"]
    for d in sorted(ref, key=lambda d: d.distance / max(d.threshold or 1, 1e-12), reverse=True):
        p = by_prev.get(d.column)
        flag = "⚠" if d.drifted or (p is not None and p.drifted) else ""
        threshold = f"{d.threshold:.3f}" if d.threshold is not None else "-"
        vs_prev = f"{p.distance:.3f}" if p else "-"
        lines.append(f"| `{d.column}` | {d.metric} | {d.distance:.3f} | {vs_prev} | {threshold} | {flag} |")
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
    version = f"validate-v1-{schema_version(spec)}"
    schema_file = _display_path(spec.schema_path)
    regenerate = "dcai-assets schema infer <module>:<SPEC>"

    @dg.multi_asset(
        name=f"{spec.name}_validation",
        outs={
            "validated": dg.AssetOut(
                key=validated_key,
                group_name="validated",
                kinds={"pandas", "parquet", "great_expectations"},
                owners=list(spec.owners),
                code_version=version,
                description=(
                    "Rows of each raw partition that conform to the schema, cast to its dtypes. "
                    f"Schema: {schema_file}."
                ),
            ),
            "quarantine": dg.AssetOut(
                key=quarantine_key,
                group_name="validated",
                kinds={"pandas", "parquet"},
                owners=list(spec.owners),
                code_version=version,
                description="Rows that failed a row-level check, as read, with the reason per row.",
            ),
        },
        ins={"raw": dg.AssetIn(key=asset_key(spec, RAW_DATA))},
        partitions_def=pdef,
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
        context: dg.AssetExecutionContext, raw: pd.DataFrame, artifacts: ArtifactStore
    ) -> Iterator[dg.Output | dg.AssetCheckResult]:
        key = context.partition_key
        schema = TableSchema.load(spec.schema_path)
        conf = conform(raw, schema)
        context.log.info(f"partition {key}: running the GX suite on {conf.rows_in:,} rows")
        suite = run_suite(conf.coerced, schema, name=spec.name)
        verdicts = column_verdicts(conf, suite, schema, schema_file)

        ranks = artifacts.feature_importance_ranks(spec.name)
        ref_drift = drift_report(conf.valid, schema.columns)
        prev_key, prev_profile = _previous_profile(context, spec, artifacts)
        prev_drift = (
            drift_report(conf.valid, schema.columns, prev_profile, against=f"previous partition {prev_key}")
            if prev_profile
            else []
        )
        verdicts.append(
            drift_verdict(NO_DRIFT_FROM_REFERENCE, ref_drift, importance_ranks=ranks, regenerate=regenerate)
        )
        verdicts.append(
            drift_verdict(NO_DRIFT_FROM_PREVIOUS, prev_drift, importance_ranks=ranks, regenerate=regenerate)
        )

        healthy = all(v.passed for v in verdicts if v.check != NO_DRIFT_FROM_PREVIOUS)
        if healthy:  # only a healthy partition becomes the next one's baseline
            profile = partition_profile(conf.valid, schema.columns)
            artifacts.write(spec.name, "profiles", key, {c: asdict(p) for c, p in profile.items()})
        gx_path = artifacts.write(spec.name, "gx_results", key, suite.full_result)
        for v in verdicts:
            for f in v.findings:
                log = {"ERROR": context.log.error, "WARN": context.log.warning}.get(
                    f.severity, context.log.info
                )
                log(f"partition {key}: {f.message}. Suggested action: {f.action}")

        accounting = (
            f"{conf.rows_in:,} in = {conf.rows_valid:,} valid + {conf.rows_quarantined:,} quarantined"
        )
        yield dg.Output(
            conf.valid,
            output_name="validated",
            data_version=dg.DataVersion(frame_digest(conf.valid)[:16]),
            metadata={
                "rows_in": conf.rows_in,
                "rows_valid": conf.rows_valid,
                "rows_quarantined": conf.rows_quarantined,
                "accounting": accounting,
                "dagster/row_count": conf.rows_valid,
                "dagster/column_schema": column_schema(conf.valid),
                "checks": dg.MetadataValue.md(_summary_table(verdicts)),
                "drift": dg.MetadataValue.md(_drift_table(ref_drift, prev_drift, prev_key)),
                "compared_with_partition": prev_key or "none",
                "schema_version": schema_version(spec),
                "gx_result": dg.MetadataValue.path(str(gx_path)),
                "gx_success": suite.success,
            },
        )
        reasons = conf.quarantine[REASON_COLUMN].str.split("; ").explode().str.split(":").str[0]
        yield dg.Output(
            conf.quarantine,
            output_name="quarantine",
            data_version=dg.DataVersion(frame_digest(conf.quarantine)[:16]),
            metadata={
                "dagster/row_count": conf.rows_quarantined,
                "rows_in": conf.rows_in,
                "accounting": accounting,
                "by_column": dg.MetadataValue.json(reasons.value_counts().to_dict()),
                "preview": preview(conf.quarantine[[REASON_COLUMN, *conf.quarantine.columns[:-1]]]),
            },
        )
        for v in verdicts:
            yield dg.AssetCheckResult(
                check_name=v.check,
                asset_key=validated_key,
                passed=v.passed,
                severity=dg.AssetCheckSeverity.ERROR if v.severity == "ERROR" else dg.AssetCheckSeverity.WARN,
                description=v.summary,
                metadata={
                    "findings": dg.MetadataValue.md(markdown_table(v)),
                    "finding_count": len(v.findings),
                    "partition": key,
                },
            )

    return validation


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
