"""Runs a dataset's pipeline end to end on the local Dagster instance and MLflow, as the daemon
would, for the examples beside the flights demo: land monthly files (keys ``YYYY-MM-01``), tick
the landing sensor, ingest, fit the label model, label, train and value the training rows, then
print what each stage reported. Only public names of `dcai_assets` are used."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pandas as pd

from dcai_assets import DatasetSpec
from dcai_assets.automation import automation_run_tags, partitions_changed
from dcai_assets.core.label_model import MajorityVote
from dcai_assets.job_names import (
    automation_sensor_name,
    importance_job_name,
    ingest_job_name,
    label_model_job_name,
    labeling_job_name,
    train_job_name,
)
from resources import data_dir

LF_PREFIX = "lf__"  # the labeled set's LF-vote columns


def console_config() -> dict:
    """Run config for the examples' in-process runs: the console shows warnings and errors only
    (``DCAI_CONSOLE_LOG_LEVEL=DEBUG`` shows every event, as ``dagster asset materialize`` does);
    the instance stores every event either way, for the UI."""
    level = os.environ.get("DCAI_CONSOLE_LOG_LEVEL", "WARNING").upper()
    return {"loggers": {"console": {"config": {"log_level": level}}}}


def check_month_key(argument: str, key: str) -> None:
    """A month's partition key is its first day, ``YYYY-MM-01``; anything else is a ValueError."""
    if not isinstance(key, str) or not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])-01", key):
        raise ValueError(f"{argument}: {key!r}; expected a month's partition key YYYY-MM-01, e.g. 2013-04-01")


@dataclass
class RunSummary:
    """What a run of the example did: partitions by outcome, and the stages that failed."""

    landed: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def land(frames: Mapping[str, pd.DataFrame], directory: Path) -> list[str]:
    """Write one Parquet file per partition into the landing directory, as an export would."""
    directory.mkdir(parents=True, exist_ok=True)
    for key, frame in frames.items():
        frame.to_parquet(directory / f"{key}.parquet", index=False)
    return list(frames)


def tick_landing_sensor(defs: dg.Definitions, spec: DatasetSpec, instance: dg.DagsterInstance) -> list:
    """Evaluate the landing sensor once, register the partitions it adds, return its run requests."""
    sensor = defs.resolve_sensor_def(f"{spec.name}_landing_sensor")
    context = dg.build_sensor_context(instance=instance, definitions=defs, instance_ref=instance.get_ref())
    result = sensor.evaluate_tick(context)
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return list(result.run_requests)


def run(defs: dg.Definitions, spec: DatasetSpec, frames: Mapping[str, pd.DataFrame]) -> RunSummary:
    """Land ``frames`` and run every stage once; returns what was blocked and what failed."""
    instance = dg.DagsterInstance.get()
    summary = RunSummary(landed=land(frames, Path(spec.source.path)))
    requests = tick_landing_sensor(defs, spec, instance)
    print(f"landed {len(summary.landed)} files; the landing sensor requested {len(requests)} ingest runs")
    sensor, automation = f"{spec.name}_landing_sensor", automation_sensor_name(spec)
    for request in requests:
        # Tagged as the daemon would: the UI shows the landing sensor as the launcher.
        job = defs.resolve_job_def(request.job_name or ingest_job_name(spec))
        result = job.execute_in_process(
            instance=instance,
            run_config=console_config(),
            partition_key=request.partition_key,
            tags={**request.tags, "dagster/sensor_name": sensor},
            raise_on_error=False,
        )
        if not result.success:
            errors = {e.step_failure_data.error.cls_name for e in result.get_step_failure_events()}
            target = summary.blocked if errors == {"DagsterAssetCheckFailedError"} else summary.failed
            target.append(request.partition_key)
    landed = [k for k in summary.landed if k not in summary.blocked and k not in summary.failed]
    changed = partitions_changed(landed) if landed else "no new partition passed validation"
    if (
        not defs.resolve_job_def(label_model_job_name(spec))
        .execute_in_process(
            instance=instance,
            run_config=console_config(),
            tags=automation_run_tags(automation, changed),
            raise_on_error=False,
        )
        .success
    ):
        summary.failed.append("label_model")
        return summary
    labeling = defs.resolve_job_def(labeling_job_name(spec))
    for key in landed:
        if not labeling.execute_in_process(
            instance=instance,
            run_config=console_config(),
            partition_key=key,
            tags=automation_run_tags(automation, partitions_changed([key])),
            raise_on_error=False,
        ).success:
            summary.failed.append(f"labeled_set {key}")
    for job, stage, trigger in (
        (train_job_name(spec), "trained_model", changed),
        (importance_job_name(spec), "importance_scores", "model retrained"),
    ):
        tags = automation_run_tags(automation, trigger)
        if (
            not defs.resolve_job_def(job)
            .execute_in_process(
                instance=instance, run_config=console_config(), tags=tags, raise_on_error=False
            )
            .success
        ):
            summary.failed.append(stage)
            break
    return summary


def latest_metadata(spec: DatasetSpec, asset: str) -> dict:
    """The metadata of an asset's latest materialization, as plain values."""
    event = dg.DagsterInstance.get().get_latest_materialization_event(dg.AssetKey([spec.name, asset]))
    if event is None:
        return {}
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def labeling_report(
    spec: DatasetSpec, classes: list[str], truth: Callable[[pd.DataFrame], pd.Series]
) -> tuple[float, float, int]:
    """Accuracy of the LF-made labels against the true outcome (which no LF reads), next to
    majority vote on the same rows; returns (label model, majority vote, rows)."""
    root = Path(data_dir()) / "lake" / spec.name / "labeled_set"
    frames = [pd.read_parquet(f) for f in sorted(root.glob("*.parquet"))]
    if not frames:
        return float("nan"), float("nan"), 0
    frame = pd.concat(frames, ignore_index=True)
    true = truth(frame)
    rows = (frame["label_source"] == "label_model").to_numpy() & true.notna().to_numpy()
    y = pd.Categorical(true[rows], categories=classes).codes
    ours = pd.Categorical(frame.loc[rows, "label"].astype(str), categories=classes).codes
    votes = frame.loc[rows, [c for c in frame.columns if c.startswith(LF_PREFIX)]].to_numpy()
    mv = MajorityVote(len(classes)).predict(votes)
    sources = frame["label_source"].value_counts().to_dict()
    lm_accuracy, mv_accuracy = float((ours == y).mean()), float((mv == y).mean())
    print(
        f"\n{len(frames)} labeled partitions, {len(frame):,} rows (label sources {sources}); on the "
        f"{int(rows.sum()):,} LF-labeled rows whose outcome is known: label model {lm_accuracy:.3f}, "
        f"majority vote {mv_accuracy:.3f}"
    )
    return lm_accuracy, mv_accuracy, int(rows.sum())


def stage_report(spec: DatasetSpec) -> None:
    """What the label model, the trained model and the importance scores reported."""
    lm = latest_metadata(spec, "label_model")
    if lm:
        print(f"\nlabel model: {lm['model']}, class balance {lm['class_balance']}, {lm['rows']:,} rows")
        print(f"  fallback: {lm['fallback_warning']}; dependent LFs: {lm['dependent_lfs']}")
    tm = latest_metadata(spec, "trained_model")
    if tm:
        print(
            f"\n{tm['model_uri']}: trained on {tm['train_rows']:,} rows, evaluated on "
            f"{tm['evaluation_rows']} rows against {tm['evaluated_against']}"
        )
        for name in ("gate", "slices", "fairness"):
            if name in tm:
                print(f"  {name}:")
                for line in str(tm[name]).splitlines()[:14]:
                    print(f"    {line}")
    imp = latest_metadata(spec, "importance_scores")
    if imp:
        print(
            f"\nimportance scores (KNN-Shapley, K={imp['k']}, against {imp['valued_against']}): "
            f"{imp['harmful_rows']:,} harmful rows; review queue, ranked by {imp['review_queue_ranks_by']}:"
        )
        for line in str(imp["review_queue"]).splitlines()[:8]:
            print(f"  {line}")
        print("labeling functions, whose supported labels hurt most first:")
        for line in str(imp["by_labeling_function"]).splitlines()[:8]:
            print(f"  {line}")


def validation_report(summary: RunSummary) -> None:
    print(
        f"\n{len(summary.landed) - len(summary.blocked) - len(summary.failed)} of {len(summary.landed)} "
        f"partitions passed validation; blocked by a check: {summary.blocked or 'none'}"
    )
    if summary.failed:
        print(f"runs that failed with an error: {summary.failed}")


def main_for(
    defs: dg.Definitions,
    spec: DatasetSpec,
    frames: Mapping[str, pd.DataFrame],
    classes: list[str],
    truth: Callable[[pd.DataFrame], pd.Series],
) -> int:
    """Run, then report; exit status 1 if any run failed with an error."""
    summary = run(defs, spec, frames)
    validation_report(summary)
    labeling_report(spec, classes, truth)
    stage_report(spec)
    return 1 if summary.failed else 0
