"""The demo, end to end, in two rounds on the local Dagster instance and MLflow database.

Round 1: 35 days of flights land (five with injected faults); the landing sensor requests one
ingest run per file; the label model is fitted and every partition that passed validation is
labeled; a model is trained, registered in MLflow and becomes champion. Round 2: seven more days
land and go through the same steps; the retrain becomes version 2 and is promoted only if it
passes the gate. Then it reports what validation caught, how good the labels are, and the gate.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
from tqdm import tqdm

from dcai_assets.assets.labeled import LF_COLUMN_PREFIX
from dcai_assets.assets.validated import partitions_passing_blocking_checks
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
from dcai_assets.partitions import asset_key
from jobs.definitions import defs
from jobs.example_run import console_config
from jobs.flights import FLIGHTS
from jobs.flights_data import arrived_late
from jobs.flights_labeling import CLASSES
from jobs.simulator import FAULTS, simulate
from resources import data_dir, mlflow_tracking_uri

SENSOR = f"{FLIGHTS.name}_landing_sensor"
AUTOMATION = automation_sensor_name(FLIGHTS)


def run_sensor_tick(instance: dg.DagsterInstance) -> list[dg.RunRequest]:
    """Evaluate the landing sensor once, as the daemon would, and keep its cursor."""
    sensor = defs.resolve_sensor_def(SENSOR)
    cursor_file = Path(instance.root_directory) / "demo_sensor_cursor.json"
    cursor = cursor_file.read_text() if cursor_file.exists() else None
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, definitions=defs, instance_ref=instance.get_ref()
    )
    result = sensor.evaluate_tick(context)
    if result.cursor:
        cursor_file.write_text(result.cursor)
    return list(result.run_requests)


def ingest(instance: dg.DagsterInstance, requests: list[dg.RunRequest]) -> tuple[list[str], list[str]]:
    """Run the requested ingest runs (ingest and label once the label model exists); returns
    (partitions blocked by a check, partitions that errored)."""
    blocked, failed = [], []
    for request in tqdm(requests, desc="ingest runs", unit="run"):
        job = defs.resolve_job_def(request.job_name or ingest_job_name(FLIGHTS))
        # The daemon's own tags: the UI shows the sensor as the launcher, and `make ui` will not
        # request these files again (run key). The sensor's tags say which file landed.
        tags = {**request.tags, "dagster/run_key": request.run_key, "dagster/sensor_name": SENSOR}
        result = job.execute_in_process(
            instance=instance,
            run_config=console_config(),
            partition_key=request.partition_key,
            tags=tags,
            raise_on_error=False,
        )
        if not result.success:
            errors = {e.step_failure_data.error.cls_name for e in result.get_step_failure_events()}
            (blocked if errors == {"DagsterAssetCheckFailedError"} else failed).append(request.partition_key)
    return blocked, failed


def _changed(landed: list[str]) -> str:
    return partitions_changed(landed) if landed else "no new partition passed validation; run by the demo"


def label(instance: dg.DagsterInstance, landed: list[str]) -> list[str]:
    """Fit the label model once, then label every partition that passed validation; runs are
    tagged as the automation sensor's, with ``landed`` (the partitions of this round) as the trigger."""
    validated = sorted(instance.get_materialized_partitions(asset_key(FLIGHTS, "validated_data")))
    usable, _ = partitions_passing_blocking_checks(instance, FLIGHTS, validated)
    print(f"fitting the label model on {len(usable)} validated partitions")
    defs.resolve_job_def(label_model_job_name(FLIGHTS)).execute_in_process(
        instance=instance, run_config=console_config(), tags=automation_run_tags(AUTOMATION, _changed(landed))
    )
    job = defs.resolve_job_def(labeling_job_name(FLIGHTS))
    failed = []
    for partition in tqdm(usable, desc="labeling runs", unit="run"):
        trigger = partitions_changed([partition]) if partition in landed else "label model refitted"
        if not job.execute_in_process(
            instance=instance,
            run_config=console_config(),
            partition_key=partition,
            tags=automation_run_tags(AUTOMATION, trigger),
            raise_on_error=False,
        ).success:
            failed.append(partition)
    return failed


def train(instance: dg.DagsterInstance, landed: list[str]) -> list[str]:
    """Retrain, register and gate the model, then re-score the importance of its training rows."""
    for job, asset, trigger in (
        (train_job_name(FLIGHTS), "trained_model", _changed(landed)),
        (importance_job_name(FLIGHTS), "importance_scores", "model retrained"),
    ):
        tags = automation_run_tags(AUTOMATION, trigger)
        if (
            not defs.resolve_job_def(job)
            .execute_in_process(
                instance=instance, run_config=console_config(), tags=tags, raise_on_error=False
            )
            .success
        ):
            return [asset]
    return []


def run_round(instance: dg.DagsterInstance, start: str, days: int) -> tuple[list[str], list[str]]:
    """Land ``days`` days from ``start``, then ingest, label and train; returns (blocked, failed)."""
    files = simulate(FLIGHTS.source.path, start, days)
    faults = sum(1 for f in files if f.stem in FAULTS)
    print(
        f"\nlanded {len(files)} daily files from {start} in {FLIGHTS.source.path} "
        f"({faults} with injected faults)"
    )
    requests = run_sensor_tick(instance)
    print(f"landing sensor requested {len(requests)} ingest runs")
    blocked, failed = ingest(instance, requests)
    landed = sorted({r.partition_key for r in requests} - set(blocked) - set(failed))
    failed += label(instance, landed)
    failed += train(instance, landed)
    return blocked, failed


def main() -> int:
    started = time.perf_counter()
    instance = dg.DagsterInstance.get()
    blocked, failed = run_round(instance, "2013-02-01", 35)
    more_blocked, more_failed = run_round(instance, "2013-03-08", 7)
    blocked, failed = blocked + more_blocked, failed + more_failed
    validation_report(instance)
    labeling_report(instance)
    training_report(instance)
    importance_report(instance)
    print(f"\npartitions blocked by a failed blocking check (kept out of downstream): {blocked}")
    if failed:
        print(f"runs that failed with an error: {failed}")
    print(f"\ndemo finished in {time.perf_counter() - started:.0f} s.")
    print("Open the Dagster UI on it: make ui  (then http://127.0.0.1:3000)")
    print(
        "Open the MLflow UI on it: make mlflow-ui  (then http://127.0.0.1:5000; "
        f"tracking {mlflow_tracking_uri()})"
    )
    return 1 if failed else 0


def importance_report(instance: dg.DagsterInstance, rows: int = 8) -> None:
    """The head of the review queue and the labeling functions whose labels hurt most."""
    event = instance.get_latest_materialization_event(asset_key(FLIGHTS, "importance_scores"))
    md = {k: v.value for k, v in event.asset_materialization.metadata.items()}
    print(
        f"\nimportance scores of the {md['model_uri']} training rows (KNN-Shapley, K={md['k']}, "
        f"against {md['valued_against']}, {md['valuation_seconds']} s, compiling the kernels "
        f"{md['compile_seconds']} s): {md['harmful_rows']:,} harmful rows"
    )
    print(f"review queue, ranked by {md['review_queue_ranks_by']}:")
    for line in str(md["review_queue"]).splitlines()[: rows + 2]:
        print(f"  {line}")
    print("labeling functions, whose supported labels hurt most first:")
    for line in str(md["by_labeling_function"]).splitlines()[:6]:
        print(f"  {line}")


def training_report(instance: dg.DagsterInstance) -> None:
    """Every retrain: the version it registered, its evaluation and the gate's verdict."""
    key = asset_key(FLIGHTS, "trained_model")
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key), limit=20).records
    observed = instance.fetch_observations(dg.AssetRecordsFilter(asset_key=key), limit=20).records
    outcome = {r.run_id: r.asset_observation.metadata for r in observed}  # written after promotion
    print(f"\n{len(records)} retrains of the {FLIGHTS.name} model (newest last):")
    for record in reversed(records):
        md = {k: v.value for k, v in record.asset_materialization.metadata.items()}
        after = outcome.get(record.run_id, {})
        verdict = (
            f"gate {after['gate_verdict'].value}"
            + (": promoted to champion" if after["promoted"].value else "")
            if after
            else "passed the gate, promotion not recorded (see MLflow's dcai.gate)"
            if md["gate_passed"]
            else "not promoted"
        )
        print(
            f"  {md['model_uri']}: trained on {md['train_rows']:,} rows, "
            f"evaluated on {md['evaluation_rows']} rows against {md['evaluated_against']}; {verdict}"
        )
        for line in str(md["gate"]).splitlines()[2:]:
            print(f"      {line}")
        print(
            f"      training {md['seconds_training']} s, "
            f"MLflow tracking and registry {md['seconds_tracking']} s"
        )


def validation_report(instance: dg.DagsterInstance) -> None:
    """Per partition: rows in/valid/quarantined and what the checks said."""
    from dagster._core.event_api import PartitionKeyFilter

    key = asset_key(FLIGHTS, "validated_data")
    quarantine = asset_key(FLIGHTS, "quarantined_rows")
    check_keys = list(defs.resolve_assets_def(key).check_keys)
    # Every ingested day has a quarantine (maybe empty); a blocked day has no validated data.
    partitions = sorted(instance.get_materialized_partitions(quarantine))
    _, blocked = partitions_passing_blocking_checks(instance, FLIGHTS, partitions)
    print(
        f"\n{len(partitions)} ingested partitions of {FLIGHTS.name}: {len(partitions) - len(blocked)} "
        f"validated, {len(blocked)} blocked (failed in the UI's partition bar): {', '.join(blocked)}"
    )
    print(f"{'partition':<11} {'rows':>5} {'valid':>5} {'quar.':>5}  findings")
    for p in partitions:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=quarantine, asset_partitions=[p]), limit=1
        ).records
        md = records[0].asset_materialization.metadata
        latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            check_keys, partition_filter=PartitionKeyFilter(key=p)
        )
        findings = []
        for ck in sorted(latest, key=lambda c: c.name):
            evaluation = latest[ck].event.asset_check_evaluation if latest[ck].event else None
            if evaluation is not None and not evaluation.passed:
                findings.append(f"[{evaluation.severity.value}] {evaluation.description}")
        counts = [md[name].value for name in ("rows_in", "rows_valid", "rows_quarantined")]
        line = f"{p:<11} {counts[0]:>5} {counts[1]:>5} {counts[2]:>5}  " + (
            "BLOCKED " if p in blocked else ""
        )
        print(line + ("\n" + " " * len(line)).join(findings or ["ok"]))


def labeling_report(instance: dg.DagsterInstance) -> None:
    """Per partition: how many rows got a label and how often it matches the true outcome (the
    arrival delay, which no LF reads), next to majority vote on the same rows."""
    root = Path(data_dir()) / "lake" / FLIGHTS.name / "labeled_set"
    partitions = sorted(instance.get_materialized_partitions(asset_key(FLIGHTS, "labeled_set")))
    print(f"\n{len(partitions)} labeled partitions (accuracy on LF-labeled rows against the true outcome):")
    print(
        f"{'partition':<11} {'rows':>5} {'gold':>5} {'LFs':>5} {'none':>5}  "
        f"{'label model':>11} {'maj. vote':>9}"
    )
    totals = np.zeros(3)
    for p in partitions:
        frame = pd.read_parquet(root / f"{p}.parquet")
        truth = arrived_late(frame)
        by_lfs = (frame["label_source"] == "label_model").to_numpy() & truth.notna().to_numpy()
        y = truth[by_lfs].astype(int).to_numpy()
        ours = (frame.loc[by_lfs, "label"].astype(str) == CLASSES[1]).astype(int).to_numpy()
        votes = frame.loc[by_lfs, [c for c in frame.columns if c.startswith(LF_COLUMN_PREFIX)]].to_numpy()
        mv = MajorityVote(len(CLASSES)).predict(votes)
        sources = frame["label_source"].value_counts()
        acc, acc_mv = (ours == y).mean(), (mv == y).mean()
        totals += [len(y), (ours == y).sum(), (mv == y).sum()]
        print(
            f"{p:<11} {len(frame):>5} {sources.get('gold', 0):>5} {sources.get('label_model', 0):>5} "
            f"{sources.get('abstain', 0):>5}  {acc:>11.3f} {acc_mv:>9.3f}"
        )
    if totals[0]:
        print(
            f"{'all':<11} {'':>5} {'':>5} {int(totals[0]):>5} {'':>5}  "
            f"{totals[1] / totals[0]:>11.3f} {totals[2] / totals[0]:>9.3f}"
        )


if __name__ == "__main__":
    sys.exit(main())
