"""The healing sensor's tick with many failed runs on the instance, with and without its cursor.

Every failed run within the horizon (two days, at most 500 runs) used to be looked at on every
tick: the events it planned and its step failure read from the event log. The cursor now
remembers the runs the sensor is done with (a cause that would recur, another dataset's run,
healed, given up), so a tick reads the logs of new failures only. Measured in the same run on the
same SQLite instance: a tick without the cursor (what every tick did) and a tick with the cursor
the first tick wrote, and the ratio.

    python benchmarks/healing_tick.py [--runs 200] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dagster as dg

from dcai_assets import AutomationSpec, DatasetSpec, LandingDirectory
from dcai_assets.healing import build_healing_sensor
from dcai_assets.spec import DailyPartitions

QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}  # the failures are expected


def failing_job(dataset: str) -> dg.JobDefinition:
    """A job whose one asset (under ``dataset``'s key prefix) fails with a bug: never healed."""

    @dg.asset(key=[dataset, "step"])
    def step() -> None:
        raise ValueError("a bug: the same input fails the same way")

    return dg.Definitions(assets=[step]).resolve_implicit_global_asset_job_def()


def median_seconds(action, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200, help="failed runs of this dataset and of another")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "home").mkdir()
        spec = DatasetSpec(
            name="bench",
            source=LandingDirectory(path=root / "landing"),
            partitioning=DailyPartitions(start="2024-01-01"),
            schema_path=root / "schema.yaml",
            key="id",
        )
        sensor = build_healing_sensor(spec, AutomationSpec(heal_after_seconds=0))
        with dg.DagsterInstance.local_temp(str(root / "home")) as instance:
            started = time.perf_counter()
            for dataset in ("bench", "other"):
                job = failing_job(dataset)
                for _ in range(args.runs // 2):
                    job.execute_in_process(instance=instance, run_config=QUIET, raise_on_error=False)
            print(f"{args.runs} failed runs on a SQLite instance in {time.perf_counter() - started:.1f} s")

            def tick(cursor: str | None):
                return sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor))

            first = tick(None)
            assert not first.run_requests and first.cursor
            without, _ = median_seconds(lambda: tick(None), args.repeat)
            with_cursor, again = median_seconds(lambda: tick(first.cursor), args.repeat)
            assert not again.run_requests and again.cursor == first.cursor
    print(f"| tick | s (median of {args.repeat}) | ratio |")
    print("|---|---|---|")
    print(f"| every failed run looked at (no cursor, as before) | {without:.3f} | 1 |")
    print(f"| with the cursor (settled runs skipped) | {with_cursor:.3f} | {with_cursor / without:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
