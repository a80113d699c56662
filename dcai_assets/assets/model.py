"""Trained models: the user's scikit-learn Pipeline fitted on a window of labeled partitions,
evaluated on the newest ones, tracked in MLflow, registered as ``challenger`` and promoted to
``champion`` only when the gate passes."""

import hashlib
import json
import time

import dagster as dg
import pandas as pd

from dcai_assets.artifacts import ArtifactStore
from dcai_assets.assets.labeled import LABELED_SET
from dcai_assets.core.evaluation import Evaluation
from dcai_assets.core.training import (
    TrainingError,
    feature_window,
    final_estimator,
    fit_pipeline,
    importance_ranks,
    permutation_importance_by_feature,
)
from dcai_assets.model_registry import PARTITION_COLUMN, evaluate_model, log_and_register
from dcai_assets.partitions import asset_key, partitions_def
from dcai_assets.plots import bar_chart_svg, svg_markdown
from dcai_assets.spec import DatasetSpec, LabelingSpec, TrainingSpec, partition_order
from dcai_assets.tracking import MlflowTracking

TRAINED_MODEL = "trained_model"
REGISTRY_POOL = "dcai_model_registry"  # limit 1: two runs never race on the registry aliases


def _partition_versions(
    instance: dg.DagsterInstance, key: dg.AssetKey, partitions: list[str]
) -> dict[str, str]:
    """Data version of the latest materialization of each partition."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=partitions), limit=max(1, 10 * len(partitions))
    ).records
    versions: dict[str, str] = {}
    for r in records:  # newest first
        m = r.asset_materialization
        if m is not None and m.partition not in versions:
            versions[m.partition] = m.tags.get("dagster/data_version", "")
    return versions


def _metrics_table(challenger: Evaluation, champion: Evaluation | None) -> str:
    lines = ["| metric | challenger | champion |", "|---|---|---|"]
    for k, v in challenger.overall.items():
        old = champion.overall.get(k) if champion else None
        lines.append(f"| {k} | {v:.4f} | {'-' if old is None else f'{old:.4f}'} |")
    for k, v in challenger.fairness.items():
        old = champion.fairness.get(k) if champion else None
        lines.append(f"| {k} | {v:.4f} | {'-' if old is None else f'{old:.4f}'} |")
    return "\n".join(lines)


def _slices_table(evaluation: Evaluation, metric: str) -> str:
    lines = ["| scope | group | n | " + metric + " |", "|---|---|---|---|"]
    for p, m in evaluation.per_partition.items():
        lines.append(f"| partition | {p} | {int(m['n'])} | {m[metric]:.4f} |")
    for column, groups in evaluation.per_slice.items():
        for value, m in groups.items():
            lines.append(f"| {column} | {value} | {int(m['n'])} | {m[metric]:.4f} |")
    return "\n".join(lines)


def _run_link(tracking_uri: str, experiment_id: str, run_id: str) -> dict:
    """A link to the run in the MLflow UI when tracking is a server; for a local database, how to
    open it."""
    if tracking_uri.startswith(("http://", "https://")):
        url = f"{tracking_uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
        return {"mlflow_run": dg.MetadataValue.url(url)}
    return {
        "mlflow_run": f"mlflow ui --backend-store-uri {tracking_uri}: "
        f"experiment {experiment_id}, run {run_id}"
    }


def build_trained_model_asset(
    spec: DatasetSpec, labeling: LabelingSpec, training: TrainingSpec
) -> dg.AssetsDefinition:
    """``<dataset>/trained_model``: one retrain, its evaluation, MLflow run and registry verdict."""
    classes = [str(c) for c in labeling.lfs.classes]
    available = {"accuracy", "f1_macro"} | ({"precision", "recall", "f1"} if len(classes) == 2 else set())
    if training.gate.metric not in available:
        raise ValueError(
            f"PromotionGate.metric: {training.gate.metric!r} is not computed for {len(classes)} classes; "
            f"expected one of {sorted(available)}"
        )
    features = list(training.features)
    model_name = training.model_name or f"{spec.name}_model"
    labeled_key = asset_key(spec, LABELED_SET)
    code_version = f"train-v1-{training.code_version}-{labeling.lfs.version}"

    @dg.asset(
        key=asset_key(spec, TRAINED_MODEL),
        ins={"labeled": dg.AssetIn(key=labeled_key, metadata={"allow_missing_partitions": True})},
        pool=REGISTRY_POOL,
        group_name="model",
        kinds={"scikit-learn", "mlflow"},
        owners=list(spec.owners),
        code_version=code_version,
        description=(
            f"The model `{model_name}`: the training Pipeline fitted on the labeled sets of a window of "
            "partitions, evaluated on the newest ones (gold labels where there are any), logged to "
            "MLflow and registered as `challenger`; promoted to `champion` only if the gate passes."
        ),
    )
    def trained_model(
        context: dg.AssetExecutionContext,
        labeled: dict,
        mlflow_tracking: MlflowTracking,
        artifacts: ArtifactStore,
    ) -> dg.Output[pd.DataFrame]:
        registered = partitions_def(spec).get_partition_keys(dynamic_partitions_store=context.instance)
        in_order = partition_order(registered, spec.partitioning)  # by time, not registration
        all_keys = [k for k in in_order if k in labeled]
        window = all_keys[-training.window :] if training.window else all_keys
        if len(window) <= training.holdout_partitions:
            raise dg.Failure(
                f"{len(window)} labeled partitions of {spec.name}; expected more than "
                f"{training.holdout_partitions} (the newest are held out for evaluation). "
                "Label more partitions"
            )
        train_keys = window[: -training.holdout_partitions]
        holdout_keys = window[-training.holdout_partitions :]
        frame = pd.concat([labeled[p].assign(**{PARTITION_COLUMN: p}) for p in window], ignore_index=False)
        missing = [f for f in features if f not in frame.columns]
        if missing:
            raise dg.Failure(
                f"features {missing} are not in the labeled sets of {spec.name}; expected columns of "
                f"{[c for c in frame.columns if not c.startswith(('lf__', 'p__', '_'))]}"
            )
        has_label = frame["label"].notna().to_numpy()
        in_train = frame[PARTITION_COLUMN].isin(train_keys).to_numpy()
        train = frame[in_train & has_label]
        holdout = frame[~in_train & has_label]
        if in_train.any() and not (in_train & has_label).any():
            raise TrainingError(
                f"every row of the training window ({feature_window(train_keys)}) abstained: no LF "
                "voted and there is no gold label; expected labeled rows"
            )
        if holdout.empty:
            raise dg.Failure(
                f"no labeled rows in the holdout partitions {holdout_keys}: every row abstained; expected "
                "labeled rows to evaluate on. Label more partitions, or check the labeling functions"
            )
        gold = holdout[holdout["label_source"] == "gold"]
        if len(gold) >= training.min_gold_rows:
            evaluation_rows, judged_by = gold, "gold labels"
        else:
            evaluation_rows, judged_by = (
                holdout,
                "LF labels (no or too few gold rows: LF errors are invisible)",
            )
            context.log.warning(f"evaluating against {judged_by}")

        pipeline = training.pipeline()
        weights = train["label_confidence"].to_numpy(dtype=float) if training.use_confidence_weights else None
        started = time.perf_counter()
        fit_pipeline(
            pipeline,
            train[features],
            train["label"].astype(str).to_numpy(),
            sample_weight=weights,
            seed=training.seed,
            window=f"{spec.name} {feature_window(train_keys)}",
        )
        y_eval = evaluation_rows["label"].astype(str).to_numpy()
        challenger = evaluate_model(pipeline, evaluation_rows, features, classes, training)
        importance = permutation_importance_by_feature(
            pipeline, evaluation_rows[features], y_eval, seed=training.seed
        )
        train_seconds = time.perf_counter() - started
        score = challenger.overall[training.gate.metric]
        context.log.info(
            f"trained {type(final_estimator(pipeline)).__name__} on {len(train):,} rows of "
            f"{feature_window(train_keys)}; {training.gate.metric} {score:.4f} "
            f"on {len(evaluation_rows):,} rows of {feature_window(holdout_keys)} ({judged_by})"
        )

        versions = _partition_versions(context.instance, labeled_key, window)
        lineage = {
            "partitions": {p: versions.get(p, "") for p in window},
            "train_partitions": train_keys,
            "holdout_partitions": holdout_keys,
            "lf_set_version": labeling.lfs.version,
            "code_version": code_version,
        }
        data_version = hashlib.sha256(json.dumps(lineage, sort_keys=True).encode()).hexdigest()[:16]

        started = time.perf_counter()
        registered = log_and_register(
            mlflow_tracking,
            experiment=f"{mlflow_tracking.experiment_name}/{spec.name}",
            model_name=model_name,
            pipeline=pipeline,
            train=train,
            evaluation_rows=evaluation_rows,
            features=features,
            challenger=challenger,
            importance=importance,
            lineage=lineage,
            training=training,
            classes=classes,
            data_version=data_version,
            tags={
                "dagster.run_id": context.run.run_id,
                "dagster.asset_key": context.asset_key.to_user_string(),
            },
            dataset=spec.name,
        )
        run_id, version, verdict, champion = (
            registered.run_id,
            registered.version,
            registered.verdict,
            registered.champion,
        )
        tracking_seconds = time.perf_counter() - started
        if verdict.promote:
            ranks = importance_ranks(importance)
            artifacts.write(spec.name, "model", "feature_importance_ranks", ranks)
            artifacts.write(spec.name, "model", "feature_importance", importance.to_dict())
        for reason in verdict.reasons:
            context.log.info(f"gate: {reason}")
        card = pd.DataFrame(
            [
                {
                    "model_name": model_name,
                    "version": int(version),
                    "mlflow_run_id": run_id,
                    "model_uri": f"models:/{model_name}/{version}",
                    "promoted": verdict.promote,
                    "evaluated_against": judged_by,
                    **{f"eval_{k}": v for k, v in challenger.overall.items()},
                    "train_rows": len(train),
                    "train_partitions": len(train_keys),
                    "holdout_partitions": ",".join(holdout_keys),
                    "train_partition_keys": ",".join(train_keys),
                }
            ]
        )
        return dg.Output(
            card,
            data_version=dg.DataVersion(data_version),
            metadata={
                "model_uri": f"models:/{model_name}/{version}",
                "model_version": int(version),
                "mlflow_run_id": run_id,
                "mlflow_tracking_uri": mlflow_tracking.tracking_uri,
                **_run_link(mlflow_tracking.tracking_uri, registered.experiment_id, run_id),
                "promoted": verdict.promote,
                "gate": dg.MetadataValue.md(
                    ("**promoted to champion**" if verdict.promote else "**not promoted**")
                    + "\n\n"
                    + "\n".join(f"- {r}" for r in verdict.reasons)
                ),
                "metrics": dg.MetadataValue.md(_metrics_table(challenger, champion)),
                "metrics_by_partition_and_slice": dg.MetadataValue.md(
                    _slices_table(challenger, training.gate.metric)
                ),
                "feature_importance": dg.MetadataValue.md(
                    "| rank | feature | permutation importance |\n|---|---|---|\n"
                    + "\n".join(
                        f"| {i} | `{f}` | {v:.4f} |" for i, (f, v) in enumerate(importance.items(), 1)
                    )
                    + "\n\n"
                    + svg_markdown(
                        bar_chart_svg(
                            list(importance.index),
                            importance.to_numpy(),
                            "permutation importance (accuracy drop)",
                        ),
                        "feature importance",
                    )
                ),
                # Numbers, so that the UI plots them over the retrains.
                **{f"eval_{k}": float(v) for k, v in challenger.overall.items()},
                "evaluated_against": judged_by,
                "train_rows": len(train),
                "evaluation_rows": len(evaluation_rows),
                "partitions": dg.MetadataValue.json(lineage["partitions"]),
                "lf_set_version": labeling.lfs.version,
                "seconds_training": round(train_seconds, 2),
                "seconds_tracking": round(tracking_seconds, 2),
            },
        )

    return trained_model
