"""The demo, end to end: simulate 35 days of flights landing, let the landing sensor request
ingest runs, run them on the local Dagster instance, and report what validation caught."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import dagster as dg
from tqdm import tqdm

from dcai_assets import ingest_job_name
from dcai_assets.partitions import asset_key
from jobs.definitions import defs
from jobs.flights import FLIGHTS
from jobs.simulator import FAULTS, simulate


def run_sensor_tick(instance: dg.DagsterInstance) -> list[dg.RunRequest]:
    """Evaluate the landing sensor once, as the daemon would, and keep its cursor."""
    sensor = defs.resolve_sensor_def(f"{FLIGHTS.name}_landing_sensor")
    cursor_file = Path(instance.root_directory) / "demo_sensor_cursor.json"
    cursor = cursor_file.read_text() if cursor_file.exists() else None
    context = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs)
    result = sensor.evaluate_tick(context)
    if result.cursor:
        cursor_file.write_text(result.cursor)
    return list(result.run_requests)


def main() -> int:
    started = time.perf_counter()
    instance = dg.DagsterInstance.get()
    landing = FLIGHTS.source.path
    files = simulate(landing)
    print(f"simulated {len(files)} daily files in {landing} ({len(FAULTS)} with injected faults)")
    requests = run_sensor_tick(instance)
    print(f"landing sensor requested {len(requests)} ingest runs")
    job = defs.resolve_job_def(ingest_job_name(FLIGHTS))
    sensor_name = f"{FLIGHTS.name}_landing_sensor"
    blocked, failed = [], []
    for request in tqdm(requests, desc="ingest runs", unit="run"):
        # The daemon's own dedup tags: `make ui` will not request these files again.
        tags = {**request.tags, "dagster/run_key": request.run_key, "dagster/sensor_name": sensor_name}
        result = job.execute_in_process(
            instance=instance, partition_key=request.partition_key, tags=tags, raise_on_error=False
        )
        if not result.success:
            errors = {e.step_failure_data.error.cls_name for e in result.get_step_failure_events()}
            bucket = blocked if errors == {"DagsterAssetCheckFailedError"} else failed
            bucket.append(request.partition_key)
    report(instance)
    print(f"\npartitions blocked by a failed blocking check (kept out of downstream): {blocked}")
    if failed:
        print(f"runs that failed with an error: {failed}")
    print(f"\ndemo finished in {time.perf_counter() - started:.0f} s.")
    print("Open the Dagster UI on it: make ui  (then http://127.0.0.1:3000)")
    return 1 if failed else 0


def report(instance: dg.DagsterInstance) -> None:
    """Per partition: rows in/valid/quarantined and what the checks said."""
    from dagster._core.event_api import PartitionKeyFilter

    key = asset_key(FLIGHTS, "validated_data")
    check_keys = list(defs.resolve_assets_def(key).check_keys)
    partitions = sorted(instance.get_materialized_partitions(key))
    print(f"\n{len(partitions)} validated partitions of {FLIGHTS.name}:")
    print(f"{'partition':<11} {'rows':>5} {'valid':>5} {'quar.':>5}  findings")
    for p in partitions:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=[p]), limit=1
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
        line = f"{p:<11} {counts[0]:>5} {counts[1]:>5} {counts[2]:>5}  "
        print(line + ("\n" + " " * len(line)).join(findings or ["ok"]))


if __name__ == "__main__":
    sys.exit(main())
