"""Latency of continuous operation: from a new partition file to a new model and new importance
scores, with no manual step.

Starts the demo's Dagster daemon and webserver on a temporary instance (loopback), lands a week
and waits for the first model, then drops one new day at a time and times until the retrain's
gate verdict and the re-scored importance exist. The days timed pass validation (the demo's
Feb 8-9 blizzard and Feb 12 rename fail a blocking check, so nothing downstream runs). Prints the
split per new day: sensor detection, run start, execution of each run, and the waits for the
automation ticks; then the median against the 30 s target and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the demo's `jobs` package

import dagster as dg

from jobs.live_instance import LiveInstance, wait_for
from jobs.simulator import simulate

TARGET_SECONDS = 30.0
IMPORTANCE = dg.AssetKey(["flights", "importance_scores"])
NEW_DAYS = ["2013-02-10", "2013-02-11", "2013-02-13", "2013-02-14", "2013-02-15"]


def importance_count(instance: dg.DagsterInstance) -> int:
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=IMPORTANCE), limit=100)
    return len(records.records)


def stage(run: dg.DagsterRun) -> str:
    if run.job_name.endswith("_ingest"):
        return "ingest"
    keys = {k.path[-1] for k in run.asset_selection or ()}
    return "+".join(sorted(keys)) or run.job_name


def split(instance: dg.DagsterInstance, dropped: float) -> tuple[float, list[str]]:
    """Seconds from the drop to the last run's end, and one line per run and wait."""
    records = sorted(
        (r for r in instance.get_run_records() if r.create_timestamp.timestamp() >= dropped - 0.5),
        key=lambda r: r.create_timestamp.timestamp(),
    )
    lines, previous_end = [], dropped
    for r in records:
        created = r.create_timestamp.timestamp()
        start, end = r.start_time or created, r.end_time or created
        wait = "sensor detection" if previous_end == dropped else "wait for the automation tick"
        lines.append(f"    {wait:<30} {created - previous_end:6.1f} s")
        lines.append(f"    {'run start (queue, process)':<30} {start - created:6.1f} s")
        lines.append(
            f"    {'run: ' + stage(r.dagster_run):<30} {end - start:6.1f} s  ({r.dagster_run.status.value})"
        )
        previous_end = max(previous_end, end)
    return previous_end - dropped, lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--days", type=int, default=3, help=f"new days to time, one at a time (<= {len(NEW_DAYS)})"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, LiveInstance(Path(tmp)) as live:
        instance = live.instance()
        started = time.time()
        simulate(live.landing, "2013-02-01", 7)
        wait_for("the first importance scores", lambda: importance_count(instance) >= 1, 600, every=1)
        print(f"bootstrap: 7 days to the first model and importance scores in {time.time() - started:.0f} s")
        totals = []
        for day in NEW_DAYS[: args.days]:
            before = importance_count(instance)
            dropped = time.time()
            simulate(live.landing, day, 1)
            wait_for("new importance scores", lambda b=before: importance_count(instance) > b, 300, every=0.5)
            total, lines = split(instance, dropped)
            totals.append(total)
            print(f"\nnew day {day}: verdict and importance after {total:.1f} s")
            print("\n".join(lines))
        median = statistics.median(totals)
        print(
            f"\nmedian {median:.1f} s from file to re-scored importance vs target {TARGET_SECONDS:.0f} s: "
            f"ratio {median / TARGET_SECONDS:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
