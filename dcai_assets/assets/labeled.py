"""Labeled sets: labeling functions applied to validated partitions, weighed by a label model
fitted on the votes of many partitions, with gold labels kept where the data has them."""

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd

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
from dcai_assets.assets.validated import (
    QUARANTINED_ROWS,
    VALIDATED_DATA,
    partitions_passing_blocking_checks,
)
from dcai_assets.core.columns import LF_PREFIX, PROBA_PREFIX
from dcai_assets.core.label_model import LabelModel, MajorityVote
from dcai_assets.core.labeling import ABSTAIN, Votes, apply_lfs, gold_indices
from dcai_assets.core.labels import ChosenLabels, choose_labels, fit_on_partitions
from dcai_assets.core.lf_analysis import lf_alerts, lf_summary, summary_markdown
from dcai_assets.core.reading import frame_digest
from dcai_assets.partitions import asset_key, partitions_def
from dcai_assets.privacy import gated_counts, lf_errors_gated
from dcai_assets.spec import DatasetSpec, LabelingSpec, partition_order

LABEL_MODEL = "label_model"
LABELED_SET = "labeled_set"
LABELS_COVER_ROWS = "labels_cover_rows"
LF_COVERAGE_STABLE = "lf_coverage_stable"
LF_COLUMN_PREFIX = LF_PREFIX
PROBA_COLUMN_PREFIX = PROBA_PREFIX


def _gold(
    frame: pd.DataFrame, spec: DatasetSpec, labeling: LabelingSpec, partition: str | None
) -> np.ndarray:
    column = labeling.gold_column or spec.label
    if column is None:
        return np.full(len(frame), ABSTAIN, dtype=np.int64)
    if column not in frame.columns:
        raise ValueError(
            f"gold label column {column!r} is not in the validated data of partition {partition!r}; "
            f"expected one of {list(frame.columns)}"
        )
    return gold_indices(frame[column], labeling.lfs.classes, column=column, partition=partition)


def _coverage_snapshot(stored: dict | None) -> tuple[dict[str, float] | None, int | None]:
    """Each LF's coverage in a stored partition and its row count (None in the older format,
    a bare {lf: coverage} mapping)."""
    if stored is None:
        return None, None
    if "coverage" in stored and isinstance(stored["coverage"], dict):
        return stored["coverage"], int(stored["rows"])
    return stored, None


def build_label_model_asset(spec: DatasetSpec, labeling: LabelingSpec) -> dg.AssetsDefinition:
    """``<dataset>/label_model``: LF accuracies and class balance, fitted on all usable partitions."""
    lf_set = labeling.lfs

    @dg.asset(
        key=asset_key(spec, LABEL_MODEL),
        ins={
            "validated": dg.AssetIn(
                key=asset_key(spec, VALIDATED_DATA), metadata={"allow_missing_partitions": True}
            )
        },
        group_name="labeled",
        kinds={"numba", "pandas"},
        owners=list(spec.owners),
        code_version=f"label-model-v2-{lf_set.version}",
        description=(
            "The label model: each labeling function's estimated accuracy and the class balance, "
            "fitted by EM on the LF votes of every validated partition whose blocking checks passed."
        ),
    )
    def label_model(context: dg.AssetExecutionContext, validated: dict) -> dg.Output[pd.DataFrame]:
        return _fit_label_model(context, spec, labeling, validated)

    return label_model


def _fit_label_model(
    context: dg.AssetExecutionContext, spec: DatasetSpec, labeling: LabelingSpec, validated: dict
) -> dg.Output[pd.DataFrame]:
    """The label model fitted on the LF votes of every usable validated partition."""
    lf_set = labeling.lfs
    # A blocked day has no validated_data (it shows as failed); its quarantine says it was ingested.
    ingested = context.instance.get_materialized_partitions(asset_key(spec, QUARANTINED_ROWS))
    usable, blocked = partitions_passing_blocking_checks(
        context.instance, spec, sorted(set(validated) | ingested)
    )
    usable = [p for p in usable if p in validated]
    if blocked:
        context.log.warning(f"left out {len(blocked)} partitions that failed a blocking check: {blocked}")
    matrices, golds = [], []
    for p in usable:
        frame = validated[p]
        with lf_errors_gated(spec.privacy, p):
            matrices.append(apply_lfs(lf_set, frame, partition=p).matrix)
        golds.append(_gold(frame, spec, labeling, p))
    n = sum(len(m) for m in matrices)
    if n == 0:
        raise dg.Failure(
            f"no validated rows to fit the label model on: {len(usable)} usable partitions "
            f"({len(blocked)} blocked); expected at least one validated partition with rows"
        )
    context.log.info(
        f"fitting the label model on {n:,} rows x {len(lf_set.lfs)} LFs from {len(usable)} partitions"
    )
    fitted = fit_on_partitions(
        matrices, golds, lf_set, kind=labeling.label_model, max_iter=labeling.max_iter, seed=labeling.seed
    )
    if fitted.warning:
        context.log.warning(fitted.warning)
    for alert in fitted.dependent:
        context.log.warning(alert)
    model = fitted.model
    return dg.Output(
        fitted.table,
        data_version=dg.DataVersion(frame_digest(fitted.table)[:16]),
        metadata={
            "model": "majority vote" if isinstance(model, MajorityVote) else "Dawid-Skene (EM)",
            "fallback_warning": fitted.warning or "none",
            "converged": bool(getattr(model, "converged_", False)),
            "em_iterations": int(getattr(model, "n_iter_", 0)),
            "class_balance": dg.MetadataValue.json(fitted.class_balance),
            "rows": fitted.rows,
            "gold_rows": fitted.gold_rows,
            "partitions_used": len(usable),
            "partitions_blocked": dg.MetadataValue.json(blocked),
            "lf_set_version": lf_set.version,
            "labeling_functions": dg.MetadataValue.md(summary_markdown(fitted.summary)),
            "dependent_lfs": dg.MetadataValue.md(
                "\n".join(f"- {a}" for a in fitted.dependent) or "none found"
            ),
        },
    )


def build_labeled_set_asset(spec: DatasetSpec, labeling: LabelingSpec) -> dg.AssetsDefinition:
    """``<dataset>/labeled_set``: validated rows with LF votes, probabilistic and hard labels."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)  # partitioned checks are in preview
        return _build_labeled_set_asset(spec, labeling)


def _build_labeled_set_asset(spec: DatasetSpec, labeling: LabelingSpec) -> dg.AssetsDefinition:
    lf_set = labeling.lfs
    classes = list(lf_set.classes)
    key = asset_key(spec, LABELED_SET)
    pdef = partitions_def(spec)

    @dg.asset(
        key=key,
        partitions_def=pdef,
        ins={
            "validated": dg.AssetIn(key=asset_key(spec, VALIDATED_DATA)),
            "label_model": dg.AssetIn(key=asset_key(spec, LABEL_MODEL)),
        },
        check_specs=[
            dg.AssetCheckSpec(
                LABELS_COVER_ROWS,
                asset=key,
                partitions_def=pdef,
                description=f"At least {labeling.min_label_coverage:.0%} of rows get a label (gold or LFs).",
            ),
            dg.AssetCheckSpec(
                LF_COVERAGE_STABLE,
                asset=key,
                partitions_def=pdef,
                description="No LF's coverage shifted sharply since the previous partition; no LF raised.",
            ),
        ],
        backfill_policy=backfill_policy(spec.max_partitions_per_run),
        output_required=False,  # a ranged run records each partition itself
        group_name="labeled",
        kinds={"pandas", "parquet"},
        owners=list(spec.owners),
        code_version=f"labeled-set-v1-{lf_set.version}",
        description=(
            "Validated rows with every LF's vote (`lf__*`, -1 = abstain), the label model's class "
            "probabilities (`p__*`), the chosen `label`, its `label_confidence` and `label_source` "
            "(gold / label_model / majority_vote / abstain). Rows no LF covers are kept and marked."
        ),
    )
    def labeled_set(
        context: dg.AssetExecutionContext,
        validated: Any,  # a DataFrame, or {partition: DataFrame} in a ranged run
        label_model: pd.DataFrame,
        artifacts: ArtifactStore,
    ) -> Iterator[dg.Output | dg.AssetMaterialization | dg.AssetCheckResult]:
        model = LabelModel.from_frame(label_model, lf_set.names, classes)
        if not is_ranged(context):
            done = _label(context, spec, labeling, model, artifacts, context.partition_key, validated)
            yield dg.Output(
                done.output.value,
                data_version=dg.DataVersion(done.output.data_version),
                metadata=done.output.metadata,
            )
            for c in done.checks:
                yield c.result(key)
            return
        keys = context.partition_keys
        frames = by_partition(validated, keys, f"{VALIDATED_DATA} of {spec.name}")
        # In partition order: each day's LF coverage is compared with the day before, as in single runs.
        done = [_label(context, spec, labeling, model, artifacts, k, frames[k]) for k in keys]
        yield from emit_partitions(
            context, output_name="result", asset_key=key, outputs=[d.output for d in done]
        )
        yield from emit_checks(context, [c for d in done for c in d.checks], key)

    return labeled_set


@dataclass
class _Labeled:
    output: PartitionOutput
    checks: list[PartitionCheck]


def _label(
    context: dg.AssetExecutionContext,
    spec: DatasetSpec,
    labeling: LabelingSpec,
    model: LabelModel | MajorityVote,
    artifacts: ArtifactStore,
    partition: str,
    validated: pd.DataFrame,
) -> _Labeled:
    """One partition labeled: LF votes, the label model's probabilities, the chosen labels, and
    the two checks' verdicts."""
    lf_set = labeling.lfs
    with lf_errors_gated(spec.privacy, partition):
        votes = apply_lfs(lf_set, validated, partition=partition)
    proba = model.predict_proba(votes.matrix)
    gold = _gold(validated, spec, labeling, partition)
    model_name = "majority_vote" if isinstance(model, MajorityVote) else "label_model"
    chosen = choose_labels(validated, votes.matrix, proba, gold, lf_set, model_name=model_name)
    summary, alerts = _lf_drift(context, spec, labeling, model, artifacts, partition, votes, gold)
    out = chosen.frame
    counts = pd.Series(chosen.source).value_counts().to_dict()
    metadata = {
        "dagster/row_count": len(out),
        "lf_set_version": lf_set.version,
        "labeling_functions": dg.MetadataValue.md(summary_markdown(summary)),
        "alerts": dg.MetadataValue.md("\n".join(f"- {a}" for a in alerts) or "none"),
        "label_sources": dg.MetadataValue.json({k: int(v) for k, v in counts.items()}),
        "labels": dg.MetadataValue.json(gated_counts(spec.privacy, out["label"].value_counts())),
        "labeled_fraction": chosen.labeled_fraction,
        "label_model_accuracy_vs_gold": chosen.model_vs_gold
        if chosen.model_vs_gold is not None
        else "no gold rows",
        "gold_rows_covered_by_lfs": chosen.gold_covered,
    }
    checks = _label_checks(labeling, partition, chosen, alerts)
    return _Labeled(PartitionOutput(partition, out, frame_digest(out)[:16], metadata), checks)


def _lf_drift(
    context: dg.AssetExecutionContext,
    spec: DatasetSpec,
    labeling: LabelingSpec,
    model: LabelModel | MajorityVote,
    artifacts: ArtifactStore,
    partition: str,
    votes: Votes,
    gold: np.ndarray,
) -> tuple[pd.DataFrame, list[str]]:
    """The partition's LF summary and alerts, against the LF coverage of the partition before it
    (whose stats are read, and this one's written, in the artifact store); alerts are logged."""
    lf_set = labeling.lfs
    L = votes.matrix
    registered = context.assets_def.partitions_def.get_partition_keys(
        dynamic_partitions_store=context.instance
    )
    keys = partition_order(registered, spec.partitioning)
    previous_key, stored = artifacts.latest_before(spec.name, "lf_stats", partition, keys)
    previous, previous_rows = _coverage_snapshot(stored)
    estimated = model.accuracies_ if isinstance(model, LabelModel) else None
    summary = lf_summary(L, lf_set, gold=gold, estimated_accuracy=estimated, previous_coverage=previous)
    alerts = lf_alerts(
        summary,
        lf_set,
        previous=previous,
        previous_partition=previous_key,
        errors=votes.errors,
        rows=len(L),
        previous_rows=previous_rows,
    )
    coverage = dict(zip(summary["lf"], summary["coverage"], strict=True))
    artifacts.write(spec.name, "lf_stats", partition, {"rows": len(L), "coverage": coverage})
    for alert in alerts:
        context.log.warning(f"partition {partition}: {alert}")
    return summary, alerts


def _label_checks(
    labeling: LabelingSpec, partition: str, chosen: ChosenLabels, alerts: list[str]
) -> list[PartitionCheck]:
    """The verdicts of ``labels_cover_rows`` and ``lf_coverage_stable`` on one partition."""
    fraction = chosen.labeled_fraction
    return [
        PartitionCheck(
            partition,
            LABELS_COVER_ROWS,
            fraction >= labeling.min_label_coverage,
            dg.AssetCheckSeverity.ERROR if fraction == 0 else dg.AssetCheckSeverity.WARN,
            (
                f"{fraction:.0%} of {len(chosen.frame):,} rows labeled "
                f"(minimum {labeling.min_label_coverage:.0%}); "
                f"{int((chosen.label_idx == ABSTAIN).sum()):,} marked abstain"
            ),
            {"labeled_fraction": fraction},
        ),
        PartitionCheck(
            partition,
            LF_COVERAGE_STABLE,
            not alerts,
            dg.AssetCheckSeverity.WARN,
            alerts[0] if alerts else "passed",
            {"alerts": dg.MetadataValue.md("\n".join(f"- {a}" for a in alerts) or "none")},
        ),
    ]
