"""Latency of continuous operation: from a new partition file to a new model and new importance
scores, with no manual step, against the floor of stock Dagster on the same kind of instance.

The floor: a code location of two no-op assets, ``a`` run by a sensor when a file lands (1 s
interval) and ``b`` by an eager automation condition (automation sensor, 1 s interval), both with
the in-process executor as the demo's; a file is dropped and timed until ``b``'s run ended. That
is the least two runs chained by a sensor and automation cost on this instance: the daemon's
sensor loop wakes every 5 s at most, and each run pays its process start and code loading.

Ours: the demo's Dagster daemon and webserver on a temporary instance (loopback), with the
demo's run launcher (a warm worker per run, ``dcai_assets.launcher``); a week lands and the first
model is awaited, then one new day at a time is dropped and timed until the re-scored importance
is recorded (the gate's verdict is recorded before it); the end of the run, after the data health
checks that follow the scores, is printed too. One run per new day: the landing sensor's
``flights_land_to_model`` (ingest, validate, label, retrain, gate, re-score). The days timed
pass validation (the demo's Feb 8-9 blizzard and Feb 12 rename fail a blocking check, so nothing
downstream runs). Prints the split per new day (sensor detection, run start, each run, the wait
for the automation tick), then our median, the floor's, and their ratio; and the 15 s target.
``--stock-too`` also times ours on Dagster's default run launcher.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the demo's `jobs` package

import dagster as dg

from jobs.live_instance import LiveInstance, wait_for
from jobs.simulator import simulate

TARGET_SECONDS = 15.0
IMPORTANCE = dg.AssetKey(["flights", "importance_scores"])
FLOOR_B = dg.AssetKey("floor_b")
DEMO_DAGSTER_YAML = Path(__file__).resolve().parents[1] / "resources" / "dagster.yaml"
NEW_DAYS = ["2013-02-10", "2013-02-11", "2013-02-13", "2013-02-14", "2013-02-15"]


def _floor_definitions() -> dg.Definitions:
    """The floor's code location (loaded by the daemon from this file, ``floor_defs``)."""
    landing = Path(os.environ.get("DCAI_DATA_DIR", ".")) / "landing" / "floor"

    @dg.asset
    def floor_a() -> None:
        """A no-op, run by the sensor."""

    @dg.asset(deps=[floor_a], automation_condition=dg.AutomationCondition.eager())
    def floor_b() -> None:
        """A no-op, run by automation after ``floor_a``."""

    job = dg.define_asset_job("floor_job", selection=[floor_a])

    @dg.sensor(job=job, minimum_interval_seconds=1, default_status=dg.DefaultSensorStatus.RUNNING)
    def floor_landing_sensor(context: dg.SensorEvaluationContext):
        seen = set(context.cursor.split(",")) if context.cursor else set()
        files = sorted(p.name for p in landing.glob("*.txt")) if landing.is_dir() else []
        new = [f for f in files if f not in seen]
        return dg.SensorResult(
            run_requests=[dg.RunRequest(run_key=f) for f in new], cursor=",".join(sorted(seen | set(new)))
        )

    automation = dg.AutomationConditionSensorDefinition(
        "floor_automation",
        target=dg.AssetSelection.all(),
        minimum_interval_seconds=1,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    return dg.Definitions(
        assets=[floor_a, floor_b],
        jobs=[job],
        sensors=[floor_landing_sensor, automation],
        executor=dg.in_process_executor,
    )


if os.environ.get("DCAI_LATENCY_FLOOR") == "1":  # only in the floor's code location
    floor_defs = _floor_definitions()


def materialization_count(instance: dg.DagsterInstance, key: dg.AssetKey) -> int:
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key), limit=100)
    return len(records.records)


def importance_count(instance: dg.DagsterInstance) -> int:
    return materialization_count(instance, IMPORTANCE)


def last_scored_at(instance: dg.DagsterInstance) -> float:
    """When the newest importance scores were recorded (their materialization event)."""
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=IMPORTANCE), limit=1)
    return records.records[0].timestamp


def stock_dagster_yaml(root: Path) -> Path:
    """The demo's instance configuration with Dagster's default run launcher (no warm worker)."""
    text = DEMO_DAGSTER_YAML.read_text()
    path = root / "stock-dagster.yaml"
    path.write_text(text[: text.index("run_launcher:")] if "run_launcher:" in text else text)
    return path


def floor(root: Path, repeats: int) -> list[float]:
    """Seconds from a dropped file to the end of the automation run of the trivial chain, on stock
    Dagster (the default run launcher)."""
    workspace = root / "workspace.yaml"
    workspace.write_text(
        "load_from:\n  - python_file:\n"
        f"      relative_path: {Path(__file__).resolve()}\n"
        "      attribute: floor_defs\n"
        f"      working_directory: {Path(__file__).resolve().parents[1]}\n"
        "      location_name: floor\n"
    )
    totals = []
    with LiveInstance(
        root,
        workspace=workspace,
        sensors=("floor_landing_sensor", "floor_automation"),
        location="floor",
        env={"DCAI_LATENCY_FLOOR": "1"},
        dagster_yaml=stock_dagster_yaml(root),
    ) as live:
        instance = live.instance()
        landing = live.data / "landing" / "floor"
        landing.mkdir(parents=True, exist_ok=True)
        for i in range(repeats):
            before = materialization_count(instance, FLOOR_B)
            dropped = time.time()
            (landing / f"{i}.txt").write_text("x")
            wait_for("floor_b", lambda b=before: materialization_count(instance, FLOOR_B) > b, 120, every=0.5)
            wait_for("the floor's runs to end", lambda d=dropped: all_ended(instance, d), 60, every=0.5)
            total, lines = split(instance, dropped)
            totals.append(total)
            print(f"\nfloor, file {i}: the automation run of floor_b ended {total:.1f} s after the drop")
            print("\n".join(lines))
            time.sleep(2)
    return totals


def stage(run: dg.DagsterRun) -> str:
    if run.job_name.endswith("_ingest"):
        return "ingest"
    if run.job_name.endswith("_ingest_and_label"):
        return "ingest+label"
    if run.job_name.endswith("_land_to_model"):
        return "ingest+label+retrain+re-score"
    keys = {k.path[-1] for k in run.asset_selection or ()}
    return "+".join(sorted(keys)) or run.job_name


def all_ended(instance: dg.DagsterInstance, dropped: float) -> bool:
    """Whether every run created since the drop has finished (its end time is recorded)."""
    return all(
        r.end_time is not None
        for r in instance.get_run_records()
        if r.create_timestamp.timestamp() >= dropped - 0.5
    )


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


def ours(days: int, *, stock: bool) -> list[float]:
    """Seconds from each new day's file to its re-scored importance, on the demo's instance (its
    warm-worker launcher, or Dagster's default launcher if ``stock``)."""
    launcher = "the default launcher" if stock else "the demo's launcher"
    with tempfile.TemporaryDirectory() as tmp:
        yaml = stock_dagster_yaml(Path(tmp)) if stock else None
        with LiveInstance(Path(tmp) / "instance", dagster_yaml=yaml) as live:
            instance = live.instance()
            started = time.time()
            simulate(live.landing, "2013-02-01", 7)
            wait_for("the first importance scores", lambda: importance_count(instance) >= 1, 600, every=1)
            print(
                f"\nours ({launcher}): 7 days to the first model and scores in {time.time() - started:.0f} s"
            )
            totals = []
            for day in NEW_DAYS[:days]:
                before = importance_count(instance)
                dropped = time.time()
                simulate(live.landing, day, 1)
                wait_for(
                    "new importance scores", lambda b=before: importance_count(instance) > b, 300, every=0.5
                )
                wait_for("the runs to end", lambda d=dropped: all_ended(instance, d), 120, every=0.5)
                ended, lines = split(instance, dropped)
                scored = last_scored_at(instance) - dropped
                totals.append(scored)
                print(
                    f"\nnew day {day} ({launcher}): verdict and re-scored importance recorded after "
                    f"{scored:.1f} s; the run ended after {ended:.1f} s (its health checks run last)"
                )
                print("\n".join(lines))
    return totals


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--days", type=int, default=3, help=f"new days to time, one at a time (<= {len(NEW_DAYS)})"
    )
    parser.add_argument(
        "--stock-too", action="store_true", help="also time ours with Dagster's default run launcher"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        floors = floor(Path(tmp), args.days)
    totals = ours(args.days, stock=False)
    stock = ours(args.days, stock=True) if args.stock_too else []
    median, floor_median = statistics.median(totals), statistics.median(floors)
    print(
        f"\nours: median {median:.1f} s ({', '.join(f'{t:.1f}' for t in totals)}) from file to re-scored "
        f"importance; floor: median {floor_median:.1f} s ({', '.join(f'{t:.1f}' for t in floors)}) for a "
        f"sensor run and an automation run of no-op assets; ratio {median / floor_median:.2f}; "
        f"target {TARGET_SECONDS:.0f} s ({'met' if median <= TARGET_SECONDS else 'NOT met'})"
    )
    if stock:
        stock_median = statistics.median(stock)
        print(
            f"ours with Dagster's default launcher: median {stock_median:.1f} s "
            f"({', '.join(f'{t:.1f}' for t in stock)}); warm launcher / default launcher "
            f"{median / stock_median:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
