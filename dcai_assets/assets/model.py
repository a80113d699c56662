"""Trained models: the user's scikit-learn Pipeline fitted on a window of labeled partitions,
evaluated on the newest ones, tracked in MLflow, registered as ``challenger`` and promoted to
``champion`` only when the gate passes."""

import contextlib
import hashlib
import json
import math
import time
from collections.abc import Iterator

import dagster as dg
import pandas as pd

from dcai_assets.artifacts import ArtifactStore
from dcai_assets.assets.labeled import LABELED_SET
from dcai_assets.core.evaluation import Evaluation, FairnessGap, available_metrics, resolve_positive_class
from dcai_assets.core.holdout import HoldoutChoice, choose_holdout
from dcai_assets.core.training import (
    TrainingError,
    build_pipeline,
    feature_window,
    final_estimator,
    fit_pipeline,
    importance_ranks,
    permutation_importance_by_feature,
)
from dcai_assets.model_registry import (
    PARTITION_COLUMN,
    Gated,
    abandon,
    evaluate_model,
    promote,
    reconcile_registry,
    register_and_gate,
)
from dcai_assets.partitions import asset_key, partitions_def
from dcai_assets.plots import bar_chart_svg, svg_markdown
from dcai_assets.recovery import RUN_RECOVERY, RUN_RECOVERY_KEY, RunRecovery
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


def _run_active(instance: dg.DagsterInstance, run_id: str) -> bool | None:
    """Whether a Dagster run is still in progress; None when this instance does not know it."""
    run = instance.get_run_by_id(run_id)
    return None if run is None else not run.is_finished


def _figure(value: float | None) -> str:
    return "undefined" if value is None or math.isnan(value) else f"{value:.4f}"


def _metrics_table(challenger: Evaluation, champion: Evaluation | None) -> str:
    lines = ["| metric | challenger | champion |", "|---|---|---|"]
    for k, v in challenger.overall.items():
        old = champion.overall.get(k) if champion else None
        lines.append(f"| {k} | {_figure(v)} | {'-' if champion is None else _figure(old)} |")
    notes = challenger.notes.get("overall", [])
    return "\n".join(lines) + ("\n\n" + "\n".join(f"- {n}" for n in notes) if notes else "")


def _slices_table(evaluation: Evaluation, metric: str) -> str:
    lines = ["| scope | group | n | " + metric + " | note |", "|---|---|---|---|---|"]

    def row(scope: str, group: str, m: dict[str, float], key: str) -> str:
        note = "; ".join(evaluation.notes.get(key, []))
        return f"| {scope} | {group} | {int(m['n'])} | {_figure(m.get(metric))} | {note} |"

    for p, m in evaluation.per_partition.items():
        lines.append(row("partition", p, m, f"partition:{p}"))
    for column, groups in evaluation.per_slice.items():
        for value, m in groups.items():
            lines.append(row(column, value, m, f"slice:{column}={value}"))
    return "\n".join(lines)


def _gap_figure(gap: FairnessGap) -> str:
    return _figure(gap.value) if gap.determined else "undetermined"


def _fairness_markdown(evaluation: Evaluation, champion: Evaluation | None) -> str:
    """Every gap with its interval and status, then every group with its counts and rates."""
    before = champion.fairness_gaps() if champion is not None else {}
    out = []
    for cls, report in evaluation.fairness.items():
        out.append(
            f"**positive class `{cls}`** over `{report.column}` (groups need {report.min_rows} rows, "
            f"TPR/FPR {report.min_outcome_rows} positives/negatives; {report.confidence:.0%} interval from "
            "per-group Wilson bounds, Bonferroni over the groups used)"
        )
        if report.missing_rows:
            out.append(
                f"\n{report.missing_rows} of {report.rows} rows have no `{report.column}`: in no group."
            )
        out += ["", f"| gap | challenger | {report.confidence:.0%} interval | champion | status |"]
        out.append("|---|---|---|---|---|")
        single = len(evaluation.fairness) == 1
        for name, g in report.gaps.items():
            old = before.get(name if single else f"{name}:{cls}")
            interval = "-" if g.ci_low is None else f"{g.ci_low:.4f} .. {g.ci_high:.4f}"
            status = "determined" if g.determined else f"**undetermined**: {g.reason}"
            champion_value = "-" if old is None else _gap_figure(old)
            out.append(f"| {name} | {_gap_figure(g)} | {interval} | {champion_value} | {status} |")
        out += ["", "| group | n | positives | predicted positive | selection rate | TPR | FPR | note |"]
        out.append("|---|---|---|---|---|---|---|---|")
        for r in report.groups:
            rates = (r.selection_rate, r.true_positive_rate, r.false_positive_rate)
            out.append(
                f"| {r.group} | {r.n} | {r.positives} | {r.predicted_positive} | "
                + " | ".join("-" if math.isnan(x) else f"{x:.3f}" for x in rates)
                + f" | {r.note} |"
            )
        out.append("")
    return "\n".join(out)


def _fairness_metadata(evaluation: Evaluation) -> dict:
    """Each gap as numbers Dagster can plot and alert on: ``fairness/<gap>`` (only when
    determined), its interval, status, the groups it spans and the smallest group's rows; every
    group's counts as JSON; and the rows with no group (``fairness/missing_group_rows``)."""
    out: dict = {}
    for name, g in evaluation.fairness_gaps().items():
        key = f"fairness/{name}"
        out[f"{key}/status"] = g.status
        out[f"{key}/groups_used"] = len(g.groups)
        if g.determined:
            out[key] = dg.MetadataValue.float(g.value)
            out[f"{key}/ci_low"] = dg.MetadataValue.float(g.ci_low)
            out[f"{key}/ci_high"] = dg.MetadataValue.float(g.ci_high)
            out[f"{key}/smallest_group_rows"] = int(g.smallest_group_rows)
    if evaluation.fairness:  # the same rows, hence the same missing ones, for every positive class
        out["fairness/missing_group_rows"] = next(iter(evaluation.fairness.values())).missing_rows
        out["fairness/groups"] = dg.MetadataValue.json(
            {
                cls: {
                    r.group: {"n": r.n, "positives": r.positives, "predicted_positive": r.predicted_positive}
                    | ({"note": r.note} if r.note else {})
                    for r in report.groups
                }
                for cls, report in evaluation.fairness.items()
            }
        )
    return out


def _holdout_markdown(choice: HoldoutChoice) -> str:
    lines = [
        f"- partitions: {feature_window(list(choice.holdout_partitions))}"
        + (f" (widened by {choice.extended_by})" if choice.extended_by else ""),
        f"- labels: {'gold' if choice.labels == 'gold' else 'LF labels'} ({choice.gold_rows} gold rows)",
        "- rows per class: " + ", ".join(f"{c} {n}" for c, n in choice.class_counts.items()),
        f"- evaluation: {'determined' if choice.determined else '**undetermined** (single class)'}",
    ]
    return "\n".join(lines + [f"- WARNING: {w}" for w in choice.warnings])


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
    try:
        positive = resolve_positive_class(classes, training.positive_class)
    except ValueError as e:
        raise ValueError(f"TrainingSpec.{e}") from None
    available = available_metrics(classes, training.positive_class)
    if training.gate.metric not in available:
        raise ValueError(
            f"PromotionGate.metric: {training.gate.metric!r} is not computed for {len(classes)} classes "
            f"with positive class {positive!r}; expected one of {sorted(available)}"
        )
    if positive is None:
        positive_rule = (
            f"none: {len(classes)} classes, per-class and macro metrics, fairness one-vs-rest per class"
        )
    elif training.positive_class is None:
        positive_rule = f"{positive} (default: the second of the classes {classes})"
    else:
        positive_rule = f"{positive} (TrainingSpec.positive_class)"
    features = list(training.features)
    model_name = training.model_name or f"{spec.name}_model"
    labeled_key = asset_key(spec, LABELED_SET)
    code_version = f"train-v2-{training.code_version}-{labeling.lfs.version}"

    @dg.asset(
        key=asset_key(spec, TRAINED_MODEL),
        ins={"labeled": dg.AssetIn(key=labeled_key, metadata={"allow_missing_partitions": True})},
        pool=REGISTRY_POOL,
        # Recovers runs killed holding the pool, before this step claims it (dcai_assets.recovery);
        # bound here, not by the caller, so no Definitions can leave it out.
        resource_defs={RUN_RECOVERY_KEY: RUN_RECOVERY},
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
        dcai_run_recovery: RunRecovery,  # does its work when set up, before the pool is claimed
    ) -> Iterator[dg.Output[pd.DataFrame] | dg.AssetObservation]:
        reconciled = reconcile_registry(  # what killed retrains left, before anything is registered
            mlflow_tracking,
            experiment=f"{mlflow_tracking.experiment_name}/{spec.name}",
            model_name=model_name,
            dagster_run_active=lambda run_id: _run_active(context.instance, run_id),
            by=context.run.run_id,
        )
        for line in reconciled.lines():
            context.log.warning(line)
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
        frame = pd.concat([labeled[p].assign(**{PARTITION_COLUMN: p}) for p in window], ignore_index=False)
        missing = [f for f in features if f not in frame.columns]
        if missing:
            raise dg.Failure(
                f"features {missing} are not in the labeled sets of {spec.name}; expected columns of "
                f"{[c for c in frame.columns if not c.startswith(('lf__', 'p__', '_'))]}"
            )
        choice = choose_holdout(
            frame,
            window,
            classes,
            partition_column=PARTITION_COLUMN,
            holdout_partitions=training.holdout_partitions,
            max_holdout_partitions=training.holdout_limit,
            min_gold_rows=training.min_gold_rows,
            min_class_rows=training.min_class_rows,
        )
        train_keys, holdout_keys = list(choice.train_partitions), list(choice.holdout_partitions)
        has_label = frame["label"].notna().to_numpy()
        in_train = frame[PARTITION_COLUMN].isin(train_keys).to_numpy()
        train = frame[in_train & has_label]
        evaluation_rows = choice.select(frame, partition_column=PARTITION_COLUMN)
        if in_train.any() and not (in_train & has_label).any():
            raise TrainingError(
                f"every row of the training window ({feature_window(train_keys)}) abstained: no LF "
                "voted and there is no gold label; expected labeled rows"
            )
        if evaluation_rows.empty:
            raise dg.Failure(
                f"no labeled rows in the holdout partitions {holdout_keys}: every row abstained; expected "
                "labeled rows to evaluate on. Label more partitions, or check the labeling functions"
            )
        judged_by = choice.judged_by
        for warning in choice.warnings:
            context.log.warning(f"holdout: {warning}")

        pipeline = build_pipeline(training.pipeline)
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
        score = challenger.overall.get(training.gate.metric)
        context.log.info(
            f"trained {type(final_estimator(pipeline)).__name__} on {len(train):,} rows of "
            f"{feature_window(train_keys)}; {training.gate.metric} {_figure(score)} "
            f"on {len(evaluation_rows):,} rows of {feature_window(holdout_keys)} ({judged_by})"
        )
        if challenger.warnings:  # one log entry (each is an event the run writes), one line each
            context.log.warning(
                f"evaluation: {len(challenger.warnings)} figure(s) flagged:\n"
                + "\n".join(f"- {w}" for w in challenger.warnings)
            )

        versions = _partition_versions(context.instance, labeled_key, window)
        lineage = {
            "partitions": {p: versions.get(p, "") for p in window},
            "train_partitions": train_keys,
            "holdout_partitions": holdout_keys,
            "lf_set_version": labeling.lfs.version,
            "code_version": code_version,
            "positive_class": positive,
            "holdout_labels": choice.labels,
            "holdout_class_counts": choice.class_counts,
            "holdout_widened_by": choice.extended_by,
        }
        data_version = hashlib.sha256(json.dumps(lineage, sort_keys=True).encode()).hexdigest()[:16]

        started = time.perf_counter()
        gated = register_and_gate(
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
        run_id, version, verdict, champion = gated.run_id, gated.version, gated.verdict, gated.champion
        with _abandoned_on_error(mlflow_tracking, gated, "the step failed before its model card was stored"):
            tracking_seconds = time.perf_counter() - started
            for reason in verdict.reasons:
                context.log.info(f"gate: {reason}")
            card = pd.DataFrame(
                [
                    {
                        "model_name": model_name,
                        "version": int(version),
                        "mlflow_run_id": run_id,
                        "model_uri": f"models:/{model_name}/{version}",
                        "gate_passed": verdict.promote,  # the decision; MLflow's dcai.gate has the outcome
                        "evaluated_against": judged_by,
                        "positive_class": positive,
                        "positive_class_rule": positive_rule,
                        "evaluation_status": "determined" if challenger.determined else "undetermined",
                        "holdout_widened_by": choice.extended_by,
                        **{f"eval_{k}": v for k, v in challenger.overall.items()},
                        "train_rows": len(train),
                        "train_partitions": len(train_keys),
                        "holdout_partitions": ",".join(holdout_keys),
                        "train_partition_keys": ",".join(train_keys),
                    }
                ]
            )
            output = dg.Output(
                card,
                data_version=dg.DataVersion(data_version),
                metadata={
                    "model_uri": f"models:/{model_name}/{version}",
                    "model_version": int(version),
                    "mlflow_run_id": run_id,
                    "mlflow_tracking_uri": mlflow_tracking.tracking_uri,
                    **_run_link(mlflow_tracking.tracking_uri, gated.experiment_id, run_id),
                    "gate_passed": verdict.promote,
                    "gate": dg.MetadataValue.md(
                        (
                            "**passes the gate**: promoted to champion once this card is stored (the "
                            "observation that follows says whether it was)"
                            if verdict.promote
                            else "**not promoted**"
                        )
                        + "\n\n"
                        + "\n".join(f"- {r}" for r in verdict.reasons)
                    ),
                    "metrics": dg.MetadataValue.md(_metrics_table(challenger, champion)),
                    "positive_class": positive_rule,
                    "evaluation_status": "determined" if challenger.determined else "undetermined",
                    "evaluation_warnings": dg.MetadataValue.md(
                        "\n".join(f"- {w}" for w in [*choice.warnings, *challenger.warnings]) or "none"
                    ),
                    "holdout": dg.MetadataValue.md(_holdout_markdown(choice)),
                    "holdout_class_counts": dg.MetadataValue.json(choice.class_counts),
                    "holdout_widened_by": choice.extended_by,
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
                    # Numbers, so that the UI plots them over the retrains (undefined ones are left out:
                    # `metrics` and `evaluation_warnings` say why).
                    **{f"eval_{k}": float(v) for k, v in challenger.overall.items() if not math.isnan(v)},
                    **_fairness_metadata(challenger),
                    **(
                        {"fairness": dg.MetadataValue.md(_fairness_markdown(challenger, champion))}
                        if challenger.fairness
                        else {}
                    ),
                    "evaluated_against": judged_by,
                    "train_rows": len(train),
                    "evaluation_rows": len(evaluation_rows),
                    "partitions": dg.MetadataValue.json(lineage["partitions"]),
                    "lf_set_version": labeling.lfs.version,
                    "seconds_training": round(train_seconds, 2),
                    "seconds_tracking": round(tracking_seconds, 2),
                    **reconciled.metadata(),
                },
            )
        yield from _store_then_promote(
            context, output, gated, mlflow_tracking, artifacts, spec.name, importance
        )

    return trained_model


def _store_then_promote(
    context: dg.AssetExecutionContext,
    output: dg.Output,
    gated: Gated,
    tracking: MlflowTracking,
    artifacts: ArtifactStore,
    dataset: str,
    importance: pd.Series,
) -> Iterator[dg.Output | dg.AssetObservation]:
    """Yield the model card, then move the champion: Dagster stores a yielded Output (the IO
    manager's write) before it resumes the body, so a card that cannot be stored (a full disk)
    fails the step at the ``yield``, the body never resumes, and the champion never moves to a
    version without a card. The drift ranks are written next, before the alias moves, and put back
    if it does not. The outcome follows as an observation: the card records the decision only.
    The version of a body that never resumes is abandoned when Dagster closes the generator, else
    by the next registry step's reconciliation."""
    with _abandoned_on_error(
        tracking,
        gated,
        f"its model card was not stored in the lake: the write failed or Dagster run "
        f"{context.run.run_id} was interrupted",
    ):
        yield output  # raises GeneratorExit here when the write fails: Dagster never resumes
    before = {}
    if gated.verdict.promote:
        names = {
            "feature_importance_ranks": importance_ranks(importance),
            "feature_importance": importance.to_dict(),
        }
        before = {name: artifacts.read(dataset, "model", name) for name in names}
        try:
            for name, payload in names.items():
                artifacts.write(dataset, "model", name, payload)
        except BaseException as e:
            _put_back(artifacts, dataset, before)
            abandon(tracking, gated, f"its feature-importance ranks could not be stored: {e}")
            raise
    reasons = len(gated.verdict.reasons)
    try:
        registered = promote(tracking, gated)
    except BaseException:
        _put_back(artifacts, dataset, before)  # the alias did not move, as far as can be told
        raise
    if not registered.verdict.promote:
        _put_back(artifacts, dataset, before)
    for reason in registered.verdict.reasons[reasons:]:
        context.log.warning(f"gate: {reason}")
    yield dg.AssetObservation(
        asset_key=context.asset_key,
        metadata={
            "model_version": int(registered.version),
            "promoted": registered.verdict.promote,
            "gate_verdict": registered.outcome,  # MLflow's dcai.gate of the version
        },
    )


@contextlib.contextmanager
def _abandoned_on_error(tracking: MlflowTracking, gated: Gated, reason: str) -> Iterator[None]:
    """Give the gated version up (``dcai.gate=abandoned`` with ``reason``) if the block raises."""
    try:
        yield
    except BaseException as e:
        abandon(tracking, gated, f"{reason}: {e}" if str(e) else reason)
        raise


def _put_back(artifacts: ArtifactStore, dataset: str, before: dict) -> None:
    """Restore the champion's drift artifacts as they were before this retrain wrote its own; a
    failure is logged, not raised over the error that made the retrain give up."""
    for name, payload in before.items():
        try:
            if payload is not None:
                artifacts.write(dataset, "model", name, payload)
            else:
                artifacts.path(dataset, "model", name).unlink(missing_ok=True)
        except OSError as e:
            dg.get_dagster_logger().error(
                f"could not restore the champion's {name} for drift alerts ({e}); the next promotion "
                "rewrites it"
            )
