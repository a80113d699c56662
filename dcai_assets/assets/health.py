"""Data health checks on the importance scores: copies and leakage, outliers, label balance and
drift, weak segments and label issues (:mod:`dcai_assets.core.health`), as Dagster asset checks
with counts, a severity, an aggregate table and examples in their metadata. Warn-only unless the
spec's :class:`dcai_assets.spec.HealthChecks` names them in ``blocking``."""

import dagster as dg
import numpy as np
import pandas as pd

from dcai_assets.assets.importance import IMPORTANCE_SCORES, _Scoring
from dcai_assets.assets.labeled import LABELED_SET
from dcai_assets.assets.model import TRAINED_MODEL
from dcai_assets.core.columns import LABEL, LABEL_SOURCE, PARTITION, ROW
from dcai_assets.core.findings import (
    CHECK_NAMES,
    DUPLICATES,
    LABEL_BALANCE,
    LABEL_ISSUES,
    OUTLIERS,
    WEAK_SEGMENTS,
    HealthFinding,
)
from dcai_assets.core.health import data_health
from dcai_assets.core.model_card import ModelCard
from dcai_assets.partitions import asset_key
from dcai_assets.privacy import examples_metadata
from dcai_assets.spec import DatasetSpec, ImportanceSpec, LabelingSpec, PrivacySpec, TrainingSpec
from dcai_assets.tracking import MlflowTracking

__all__ = ["HEALTH_CHECKS", "build_health_checks"]

HEALTH_CHECKS = CHECK_NAMES
_EXAMPLE_ROWS = 10

_DESCRIPTIONS = {
    DUPLICATES: "Rows copied within the training window or from training into the holdout (leakage), "
    "with near-duplicates in the model's feature space beside them.",
    OUTLIERS: "Training rows whose distance to their K-th neighbour lies far beyond the holdout's.",
    LABEL_BALANCE: "Class imbalance per partition and drift of the holdout's label mix from training.",
    WEAK_SEGMENTS: "Holdout slices (feature values, quartiles, clusters) where the model falls far "
    "short of its own confidence, ranked.",
    LABEL_ISSUES: "The review queue's likely label errors against the model's holdout error rate.",
}


def _examples(frame: pd.DataFrame, privacy: PrivacySpec) -> dg.MetadataValue:
    """The only way row-level values reach metadata: the first rows of ``frame`` as a markdown
    table, through the privacy gate (aggregates only in no-human-access mode)."""
    if frame.empty:
        return dg.MetadataValue.md("no rows")
    return examples_metadata(
        privacy,
        frame,
        rows=_EXAMPLE_ROWS,
        render=lambda head: _markdown(head) + f"\n\n{len(frame)} rows in all",
        what="flagged rows",
    )


def _markdown(frame: pd.DataFrame) -> str:
    columns = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in frame.itertuples(index=False):
        cells = [f"{v:.3g}" if isinstance(v, float | np.floating) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _confidence(pipeline, train: pd.DataFrame, scores: pd.DataFrame, features: list[str]) -> np.ndarray:
    """The model's probability of its predicted class for each scored row, found by its partition
    and original row index (``_partition``, ``_row``); a Failure if the scores are not of this
    window (the scores are older than the model: re-score first)."""
    window = pd.MultiIndex.from_arrays([train[PARTITION], train.index])
    positions = window.get_indexer(pd.MultiIndex.from_arrays([scores[PARTITION], scores[ROW]]))
    if (positions < 0).any() or len(scores) != len(train):
        raise dg.Failure(
            f"the importance scores hold {len(scores)} rows, {int((positions < 0).sum())} of them not in the "
            f"model's window of {len(train)} training rows; expected the scores of this model: re-score it"
        )
    return pipeline.predict_proba(train.iloc[positions][features]).max(axis=1)


def _result(
    finding: HealthFinding, key: dg.AssetKey, blocking: bool, privacy: PrivacySpec
) -> dg.AssetCheckResult:
    severity = dg.AssetCheckSeverity.ERROR if blocking else dg.AssetCheckSeverity.WARN
    metadata: dict = {
        "summary": finding.summary,
        "severity": f"{severity.value} ({'blocking' if blocking else 'warn-only'})",
        "status": "determined" if finding.determined else "undetermined",
        **{name: value for name, value in finding.counts.items()},
        "table": dg.MetadataValue.md(_markdown(finding.table) if not finding.table.empty else "no table"),
        "examples": _examples(finding.examples, privacy),
    }
    return dg.AssetCheckResult(
        asset_key=key, check_name=finding.name, passed=not finding.alarm, severity=severity, metadata=metadata
    )


def build_health_checks(
    spec: DatasetSpec, labeling: LabelingSpec, training: TrainingSpec, importance: ImportanceSpec
) -> dg.AssetChecksDefinition:
    """The five health checks of ``<dataset>/importance_scores``, computed in one step: the
    model's window is preprocessed once and its neighbour graph serves every check."""
    scoring = _Scoring(spec, labeling, training, importance)
    key = asset_key(spec, IMPORTANCE_SCORES)
    blocking = set(spec.health_checks.blocking)
    model, labeled_set = asset_key(spec, TRAINED_MODEL), asset_key(spec, LABELED_SET)
    specs = [
        dg.AssetCheckSpec(
            name,
            asset=key,
            description=_DESCRIPTIONS[name],
            blocking=name in blocking,
            additional_deps=[model, labeled_set],
        )
        for name in HEALTH_CHECKS
    ]

    inputs = {"importance_scores": key, "trained_model": model, "labeled": labeled_set}

    # An op rather than @multi_asset_check: that decorator refuses input metadata on a key that is
    # also a check's dependency, and the labeled sets are read with ``allow_missing_partitions``.
    @dg.op(
        name=f"{'__'.join(key.path)}_health",
        ins={
            "importance_scores": dg.In(),
            "trained_model": dg.In(),
            "labeled": dg.In(metadata={"allow_missing_partitions": True}),
        },
        out={s.get_python_identifier(): dg.Out(dg.Nothing, is_required=False) for s in specs},
        description="Data health checks from the neighbour graph of the model's feature space.",
    )
    def health_checks(
        context: dg.OpExecutionContext,
        importance_scores: pd.DataFrame,
        trained_model: pd.DataFrame,
        labeled: dict,
        mlflow_tracking: MlflowTracking,
    ):
        card = ModelCard.from_frame(trained_model)
        split, pipeline, inputs = scoring.load(context.log, card, labeled, mlflow_tracking)
        features = scoring.features
        held = split.evaluation
        findings = data_health(
            split.train, held, inputs.X_train, inputs.X_val,
            pipeline.predict(held[features]).astype(str), pipeline.predict_proba(held[features]).max(axis=1),
            importance_scores, _confidence(pipeline, split.train, importance_scores, features),
            features=features, classes=scoring.classes,
            show=[PARTITION, *spec.key_columns, LABEL, LABEL_SOURCE], k=importance.k,
            settings=spec.health_checks, seed=training.seed,
        )  # fmt: skip
        selected = {k.name for k in context.selected_asset_check_keys}
        for name in HEALTH_CHECKS:
            if name in selected:
                finding = findings[name]
                (context.log.warning if finding.alarm else context.log.info)(f"{name}: {finding.summary}")
                yield _result(finding, key, name in blocking, spec.privacy)

    return dg.AssetChecksDefinition.create(
        keys_by_input_name=inputs,
        node_def=health_checks,
        check_specs_by_output_name={s.get_python_identifier(): s for s in specs},
        can_subset=True,
    )
