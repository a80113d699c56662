"""A 60-day backfill of the demo's ingestion (raw, validated and quarantined rows per day; runs of up
to ``DatasetSpec.max_partitions_per_run`` days) with one and then two runs at a time, on a live
instance (daemon + webserver, the run queue of resources/dagster.yaml with ``max_concurrent_runs``
set to the worker count).

Prints the wall time of each, the speed-up, and where the time goes per run: waiting in the
queue, Dagster's run overhead (starting the run's process and loading the code, then Dagster's own
work inside the run) and compute (the steps themselves).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the demo's `jobs` package

import dagster as dg
import numpy as np
import yaml
from dagster._core.execution.backfill import BulkActionStatus

from jobs.live_instance import PROJECT_DIR, LiveInstance, wait_for
from jobs.simulator import simulate

START = "2013-04-01"  # sixty days with no injected fault
ASSETS = [["flights", "raw_data"], ["flights", "validated_data"], ["flights", "quarantined_rows"]]
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


def phases(instance: dg.DagsterInstance, run_id: str) -> dict[str, float]:
    """Where one run's time went, from its event log: waiting in the queue, starting (process
    start and code loading, launch to RUN_START), Dagster's own work inside the run (its duration
    minus its steps) and compute (the steps, STEP_START to STEP_SUCCESS or STEP_FAILURE)."""
    at, starts, compute = {}, {}, 0.0
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            continue
        kind = event.event_type.name  # the enum's name: its value still says PIPELINE_ for runs
        at.setdefault(kind, entry.timestamp)
        if kind == "STEP_START":
            starts[event.step_key] = entry.timestamp
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE") and event.step_key in starts:
            compute += entry.timestamp - starts.pop(event.step_key)
    end = at.get("RUN_SUCCESS", at.get("RUN_FAILURE"))
    return {
        "queued": at["RUN_STARTING"] - at["RUN_ENQUEUED"],
        "starting": at["RUN_START"] - at["RUN_STARTING"],
        "in_run": end - at["RUN_START"] - compute,
        "compute": compute,
    }


def backfill(workers: int, days: int, root: Path) -> dict[str, float]:
    """Land ``days`` files, launch one backfill over them, and time it with ``workers`` runs at once."""
    config = yaml.safe_load((PROJECT_DIR / "resources" / "dagster.yaml").read_text())
    config["concurrency"]["runs"]["max_concurrent_runs"] = workers
    dagster_yaml = root / "dagster.yaml"
    dagster_yaml.write_text(yaml.safe_dump(config))
    with LiveInstance(root, dagster_yaml=dagster_yaml, env={"DCAI_SENSORS": "stopped"}) as live:
        files = simulate(live.landing, START, days)
        partitions = [f.stem for f in files]
        launched = live.graphql(
            """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
                 __typename ... on LaunchBackfillSuccess { backfillId } ... on Error { message } } }""",
            {"params": {"partitionNames": partitions, "assetSelection": [{"path": p} for p in ASSETS]}},
        )["launchPartitionBackfill"]
        if launched["__typename"] != "LaunchBackfillSuccess":
            raise RuntimeError(f"the backfill was not launched: {launched}")
        instance = live.instance()
        print(f"{workers} worker(s): backfill of {days} days launched", flush=True)
        backfill_id = launched["backfillId"]
        wait_for(  # the backfill's runs: ranges of up to DatasetSpec.max_partitions_per_run days
            f"the backfill of {days} days to finish",
            lambda: (
                instance.get_backfill(backfill_id).status != BulkActionStatus.REQUESTED
                and all(r.status in FINISHED for r in instance.get_runs())
            ),
            timeout=60 * days,
            every=2,
        )
        records = instance.get_run_records()
        statuses = [r.dagster_run.status for r in records]
        failed = sorted(
            r.dagster_run.tags.get("dagster/partition", r.dagster_run.run_id)
            for r in records
            if r.dagster_run.status != dg.DagsterRunStatus.SUCCESS
        )
        if failed:
            print(f"  runs that did not succeed (partitions): {failed}", flush=True)
        timings = [phases(instance, r.dagster_run.run_id) for r in records]
        wall = max(r.end_time for r in records) - min(r.start_time for r in records)
    means = {k: float(np.mean([t[k] for t in timings])) for k in timings[0]}
    return {
        "runs": len(records),
        "succeeded": statuses.count(dg.DagsterRunStatus.SUCCESS),
        "wall": wall,
        **means,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=60)
    args = parser.parse_args()
    results = {}
    for workers in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            results[workers] = backfill(workers, args.days, Path(tmp))
            print(f"  done in {time.perf_counter() - started:.0f} s including start-up", flush=True)
    print(
        f"\n{'workers':>7} {'runs':>5} {'ok':>4} {'wall s':>7} {'runs/min':>8} | per run, s: "
        f"{'queued':>6} {'starting':>8} {'in-run':>6} {'compute':>7} | {'overhead':>8}"
    )
    for workers, r in results.items():
        overhead = r["starting"] + r["in_run"]
        print(
            f"{workers:>7} {r['runs']:>5} {r['succeeded']:>4} {r['wall']:>7.1f} "
            f"{60 * r['runs'] / r['wall']:>8.1f} |             {r['queued']:>6.1f} {r['starting']:>8.2f} "
            f"{r['in_run']:>6.2f} {r['compute']:>7.2f} | {overhead / (overhead + r['compute']):>8.0%}"
        )
    speedup = results[1]["wall"] / results[2]["wall"]
    print(
        f"speed-up with 2 workers: {speedup:.2f}x (ideal 2.00x on 2 cores). Per-run means: queued = "
        "waiting for a run slot; starting = process start and code loading; in-run = Dagster's own "
        "work in the run; compute = the steps; overhead = (starting + in-run) / (that + compute)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
