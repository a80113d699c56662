"""Trained models: the user's scikit-learn Pipeline fitted on a window of labeled partitions,
evaluated on the newest ones, tracked in MLflow, registered as ``challenger`` and promoted to
``champion`` only when the gate passes."""

import contextlib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

import dagster as dg
import pandas as pd

from dcai_assets.artifacts import ArtifactStore
from dcai_assets.assets.labeled import LABELED_SET
from dcai_assets.assets.validated import partitions_passing_blocking_checks
from dcai_assets.core.columns import LABEL, LF_PREFIX, PARTITION, PROBA_PREFIX
from dcai_assets.core.evaluation import Evaluation, FairnessGap, available_metrics, resolve_positive_class
from dcai_assets.core.holdout import HoldoutChoice, WindowSplit, split_window
from dcai_assets.core.model_card import ModelCard, data_version_of
from dcai_assets.core.training import (
    TrainingError,
    feature_window,
    final_estimator,
    fit_labeled,
    importance_ranks,
    permutation_importance_by_feature,
)
from dcai_assets.model_registry import (
    Gated,
    abandon,
    evaluate_model,
    promote,
    reconcile_registry,
    register_and_gate,
)
from dcai_assets.partitions import asset_key, partitions_def
from dcai_assets.plots import bar_chart_svg, svg_markdown
from dcai_assets.privacy import gated_evaluation
from dcai_assets.recovery import RUN_RECOVERY, RUN_RECOVERY_KEY, RunRecovery
from dcai_assets.spec import DatasetSpec, LabelingSpec, PrivacySpec, TrainingSpec, partition_order
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


@dataclass(frozen=True)
class _Training:
    """One dataset's retrain, as the asset's body calls it: its window, the fit and evaluation,
    the lineage, and the card with its metadata."""

    spec: DatasetSpec
    labeling: LabelingSpec
    training: TrainingSpec

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.labeling.lfs.classes]

    @property
    def features(self) -> list[str]:
        return list(self.training.features)

    @property
    def model_name(self) -> str:
        return self.training.model_name or f"{self.spec.name}_model"

    @property
    def code_version(self) -> str:
        return f"train-v2-{self.training.code_version}-{self.labeling.lfs.version}"

    @property
    def labeled_key(self) -> dg.AssetKey:
        return asset_key(self.spec, LABELED_SET)

    def positive_rule(self) -> tuple[str | None, str]:
        """The positive class and the rule that chose it; ValueError for a spec that cannot work."""
        classes, training = self.classes, self.training
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
            return (
                None,
                f"none: {len(classes)} classes, per-class and macro metrics, fairness one-vs-rest per class",
            )
        if training.positive_class is None:
            return positive, f"{positive} (default: the second of the classes {classes})"
        return positive, f"{positive} (TrainingSpec.positive_class)"

    def window(self, instance: dg.DagsterInstance, log, labeled: dict) -> tuple[list[str], list[str]]:
        """The labeled partitions to train and evaluate on, oldest first; and those left out
        because their latest validation failed a blocking check (a day re-landed with bad data:
        its earlier labels no longer stand for what the source holds)."""
        spec, training = self.spec, self.training
        registered = partitions_def(spec).get_partition_keys(dynamic_partitions_store=instance)
        in_order = partition_order(registered, spec.partitioning)  # by time, not registration
        all_keys, blocked = partitions_passing_blocking_checks(
            instance, spec, [k for k in in_order if k in labeled]
        )
        if blocked:
            log.warning(
                f"left out {len(blocked)} labeled partition(s) whose latest validation failed a blocking "
                f"check (re-landed with data that does not pass): {blocked}"
            )
        window = all_keys[-training.window :] if training.window else all_keys
        if len(window) <= training.holdout_partitions:
            raise dg.Failure(
                f"{len(window)} labeled partitions of {spec.name}; expected more than "
                f"{training.holdout_partitions} (the newest are held out for evaluation). "
                "Label more partitions"
            )
        return window, blocked

    def split(self, labeled: dict, window: list[str]) -> WindowSplit:
        """The window's rows split at the trusted holdout (:func:`split_window`), checked."""
        frame = pd.concat([labeled[p].assign(**{PARTITION: p}) for p in window], ignore_index=False)
        missing = [f for f in self.features if f not in frame.columns]
        if missing:
            raise dg.Failure(
                f"features {missing} are not in the labeled sets of {self.spec.name}; expected columns of "
                f"{[c for c in frame.columns if not c.startswith((LF_PREFIX, PROBA_PREFIX, '_'))]}"
            )
        training = self.training
        split = split_window(
            frame, window, self.classes, partition_column=PARTITION,
            holdout_partitions=training.holdout_partitions, max_holdout_partitions=training.holdout_limit,
            min_gold_rows=training.min_gold_rows, min_class_rows=training.min_class_rows,
        )  # fmt: skip
        train_keys = list(split.choice.train_partitions)
        if frame[PARTITION].isin(train_keys).any() and split.train.empty:
            raise TrainingError(
                f"every row of the training window ({feature_window(train_keys)}) abstained: no LF "
                "voted and there is no gold label; expected labeled rows"
            )
        if split.evaluation.empty:
            raise dg.Failure(
                f"no labeled rows in the holdout partitions {list(split.choice.holdout_partitions)}: every "
                "row abstained; expected labeled rows to evaluate on. Label more partitions, or check the "
                "labeling functions"
            )
        return split

    def fit(self, log, split: WindowSplit) -> tuple[object, Evaluation, pd.Series, float]:
        """The fitted pipeline, its evaluation, its features' permutation importance, seconds."""
        training, features = self.training, self.features
        train, rows, train_keys = split.train, split.evaluation, list(split.choice.train_partitions)
        started = time.perf_counter()
        pipeline = fit_labeled(
            training.pipeline, train, features, confidence_weights=training.use_confidence_weights,
            seed=training.seed, window=f"{self.spec.name} {feature_window(train_keys)}",
        )  # fmt: skip
        challenger = evaluate_model(pipeline, rows, features, self.classes, training)
        feature_importance = permutation_importance_by_feature(
            pipeline, rows[features], rows[LABEL].astype(str).to_numpy(), seed=training.seed
        )
        seconds = time.perf_counter() - started
        log.info(
            f"trained {type(final_estimator(pipeline)).__name__} on {len(train):,} rows of "
            f"{feature_window(train_keys)}; {training.gate.metric} "
            f"{_figure(challenger.overall.get(training.gate.metric))} on {len(rows):,} rows of "
            f"{feature_window(list(split.choice.holdout_partitions))} ({split.choice.judged_by})"
        )
        flagged = gated_evaluation(self.spec.privacy, challenger).warnings
        if flagged:  # one log entry (each is an event the run writes), one line each
            log.warning(
                f"evaluation: {len(flagged)} figure(s) flagged:\n" + "\n".join(f"- {w}" for w in flagged)
            )
        return pipeline, challenger, feature_importance, seconds

    def lineage(self, split: WindowSplit, versions: dict[str, str], window: list[str], positive) -> dict:
        """What decides the model, stored with its MLflow run and digested into its data version."""
        choice = split.choice
        return {
            "partitions": {p: versions.get(p, "") for p in window},
            "train_partitions": list(choice.train_partitions),
            "holdout_partitions": list(choice.holdout_partitions),
            "lf_set_version": self.labeling.lfs.version,
            "code_version": self.code_version,
            "positive_class": positive,
            "holdout_labels": choice.labels,
            "holdout_class_counts": choice.class_counts,
            "holdout_widened_by": choice.extended_by,
        }

    def card(
        self, gated: Gated, split: WindowSplit, challenger: Evaluation, lineage: dict, positive_rule: str
    ) -> ModelCard:
        return ModelCard(
            model_name=self.model_name,
            version=int(gated.version),
            mlflow_run_id=gated.run_id,
            gate_passed=gated.verdict.promote,  # the decision; MLflow's dcai.gate has the outcome
            evaluated_against=split.choice.judged_by,
            positive_class=lineage["positive_class"],
            positive_class_rule=positive_rule,
            evaluation_status="determined" if challenger.determined else "undetermined",
            holdout_widened_by=split.choice.extended_by,
            train_rows=len(split.train),
            train_partition_keys=lineage["train_partitions"],
            holdout_partition_keys=lineage["holdout_partitions"],
            metrics=dict(challenger.overall),
            lf_set_version=self.labeling.lfs.version,
            code_version=self.code_version,
            data_version=data_version_of(lineage),
            partition_versions=lineage["partitions"],
        )


def _card_metadata(
    card: ModelCard,
    gated: Gated,
    split: WindowSplit,
    challenger: Evaluation,
    feature_importance: pd.Series,
    tracking_uri: str,
    gate_metric: str,
    privacy: PrivacySpec,
) -> dict:
    """The card's metadata in the UI: links, the gate, metrics tables, holdout, fairness (small
    groups suppressed in no-human-access mode)."""
    verdict, choice = gated.verdict, split.choice
    challenger, champion = gated_evaluation(privacy, challenger), gated_evaluation(privacy, gated.champion)
    gate = (
        "**passes the gate**: promoted to champion once this card is stored (the observation that "
        "follows says whether it was)"
        if verdict.promote
        else "**not promoted**"
    )
    return {
        "model_uri": card.model_uri,
        "model_version": card.version,
        "mlflow_run_id": card.mlflow_run_id,
        "mlflow_tracking_uri": tracking_uri,
        **_run_link(tracking_uri, gated.experiment_id, card.mlflow_run_id),
        "gate_passed": verdict.promote,
        "gate": dg.MetadataValue.md(gate + "\n\n" + "\n".join(f"- {r}" for r in verdict.reasons)),
        "metrics": dg.MetadataValue.md(_metrics_table(challenger, champion)),
        "positive_class": card.positive_class_rule,
        "evaluation_status": card.evaluation_status,
        "evaluation_warnings": dg.MetadataValue.md(
            "\n".join(f"- {w}" for w in [*choice.warnings, *challenger.warnings]) or "none"
        ),
        "holdout": dg.MetadataValue.md(_holdout_markdown(choice)),
        "holdout_class_counts": dg.MetadataValue.json(choice.class_counts),
        "holdout_widened_by": choice.extended_by,
        "metrics_by_partition_and_slice": dg.MetadataValue.md(_slices_table(challenger, gate_metric)),
        "feature_importance": dg.MetadataValue.md(_feature_importance_markdown(feature_importance)),
        # Numbers, so that the UI plots them over the retrains (undefined ones are left out:
        # `metrics` and `evaluation_warnings` say why).
        **{f"eval_{k}": float(v) for k, v in challenger.overall.items() if not math.isnan(v)},
        **_fairness_metadata(challenger),
        **(
            {"fairness": dg.MetadataValue.md(_fairness_markdown(challenger, champion))}
            if challenger.fairness
            else {}
        ),
        "evaluated_against": card.evaluated_against,
        "train_rows": card.train_rows,
        "evaluation_rows": len(split.evaluation),
        "partitions": dg.MetadataValue.json(card.partition_versions),
        "lf_set_version": card.lf_set_version,
    }


def _feature_importance_markdown(feature_importance: pd.Series) -> str:
    return (
        "| rank | feature | permutation importance |\n|---|---|---|\n"
        + "\n".join(f"| {i} | `{f}` | {v:.4f} |" for i, (f, v) in enumerate(feature_importance.items(), 1))
        + "\n\n"
        + svg_markdown(
            bar_chart_svg(
                list(feature_importance.index),
                feature_importance.to_numpy(),
                "permutation importance (accuracy drop)",
            ),
            "feature importance",
        )
    )


def build_trained_model_asset(
    spec: DatasetSpec, labeling: LabelingSpec, training: TrainingSpec
) -> dg.AssetsDefinition:
    """``<dataset>/trained_model``: one retrain, its evaluation, MLflow run and registry verdict."""
    retrain = _Training(spec, labeling, training)
    positive, positive_rule = retrain.positive_rule()
    model_name = retrain.model_name

    @dg.asset(
        key=asset_key(spec, TRAINED_MODEL),
        ins={"labeled": dg.AssetIn(key=retrain.labeled_key, metadata={"allow_missing_partitions": True})},
        pool=REGISTRY_POOL,
        resource_defs={RUN_RECOVERY_KEY: RUN_RECOVERY},  # bound here: no Definitions can leave it out
        group_name="model",
        kinds={"scikitlearn", "mlflow"},  # the names the Dagster UI draws icons for
        owners=list(spec.owners),
        code_version=retrain.code_version,
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
        experiment = f"{mlflow_tracking.experiment_name}/{spec.name}"
        reconciled = reconcile_registry(  # what killed retrains left, before anything is registered
            mlflow_tracking, experiment=experiment, model_name=model_name,
            dagster_run_active=lambda run_id: _run_active(context.instance, run_id), by=context.run.run_id,
        )  # fmt: skip
        for line in reconciled.lines():
            context.log.warning(line)
        window, blocked = retrain.window(context.instance, context.log, labeled)
        split = retrain.split(labeled, window)
        for warning in split.choice.warnings:
            context.log.warning(f"holdout: {warning}")
        pipeline, challenger, feature_importance, train_seconds = retrain.fit(context.log, split)
        versions = _partition_versions(context.instance, retrain.labeled_key, window)
        lineage = retrain.lineage(split, versions, window, positive)
        started = time.perf_counter()
        gated = register_and_gate(
            mlflow_tracking, experiment=experiment, model_name=model_name, pipeline=pipeline,
            train=split.train, evaluation_rows=split.evaluation, features=retrain.features,
            challenger=challenger, feature_importance=feature_importance, lineage=lineage,
            training=training, classes=retrain.classes, data_version=data_version_of(lineage),
            tags={
                "dagster.run_id": context.run.run_id,
                "dagster.asset_key": context.asset_key.to_user_string(),
            },
            dataset=spec.name, privacy=spec.privacy,
        )  # fmt: skip
        with _abandoned_on_error(mlflow_tracking, gated, "the step failed before its model card was stored"):
            tracking_seconds = time.perf_counter() - started
            for reason in gated.verdict.reasons:
                context.log.info(f"gate: {reason}")
            card = retrain.card(gated, split, challenger, lineage, positive_rule)
            metadata = _card_metadata(
                card, gated, split, challenger, feature_importance, mlflow_tracking.tracking_uri,
                training.gate.metric, spec.privacy,
            )  # fmt: skip
            metadata |= {
                "seconds_training": round(train_seconds, 2),
                "seconds_tracking": round(tracking_seconds, 2),
                "partitions_left_out_blocked": dg.MetadataValue.json(blocked),
                **reconciled.metadata(),
            }
            output = dg.Output(
                card.to_frame(), data_version=dg.DataVersion(card.data_version), metadata=metadata
            )
        yield from _store_then_promote(
            context, output, gated, mlflow_tracking, artifacts, spec.name, feature_importance
        )

    return trained_model


def _store_then_promote(
    context: dg.AssetExecutionContext,
    output: dg.Output,
    gated: Gated,
    tracking: MlflowTracking,
    artifacts: ArtifactStore,
    dataset: str,
    feature_importance: pd.Series,
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
            "feature_importance_ranks": importance_ranks(feature_importance),
            "feature_importance": feature_importance.to_dict(),
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
