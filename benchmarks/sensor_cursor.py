"""The landing sensor's state at 10^3, 10^4 and 10^5 files: the former JSON cursor (every file's
[size, mtime_ns, sha256] in the cursor) against the landing state store (a SQLite file beside the
landing directory, a cursor of a few dozen bytes), measured in the same run on the same files.

For each size it prints: the cursor's bytes; the sensor's time for a tick with nothing new and for
a tick with one new file (the scan itself is the same code for both: only how the state is read
and written differs); the time for the daemon to write one tick row holding the cursor into a
SQLite Dagster instance (it writes one per tick, skipped ticks included, and keeps them for days);
and the store's size on disk. Ratios are new / old.

    python benchmarks/sensor_cursor.py [--sizes 1000 10000 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dagster as dg
from dagster._core.scheduler.instigation import InstigatorType, TickData, TickStatus

from dcai_assets import DatasetSpec, LandingDirectory
from dcai_assets.landing_state import LandingStateStore, state_path
from dcai_assets.sensors import scan_landing_directory
from dcai_assets.spec import DynamicPartitions


def old_tick(spec: DatasetSpec, cursor: str | None) -> str:
    """The sensor as it was: the whole state parsed from, and written back into, the cursor."""
    state = json.loads(cursor) if cursor else {}
    for table in ("files", "rejected"):
        state.setdefault(table, {})
    state.setdefault("keys", [])
    scan_landing_directory(spec, state)
    return json.dumps(state)


def new_tick(spec: DatasetSpec, store: LandingStateStore, cursor: str | None) -> str:
    """The sensor now: commit the previous tick's rows, load, scan, write this tick's rows."""
    tick = store.open(cursor)
    scan_landing_directory(spec, tick.state)
    return store.save(tick, cursor)


def paired_seconds(old: Callable[[], object], new: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median seconds of each, timed in turn (old, new, old, ...) so both see the same load."""
    times: dict[int, list[float]] = {0: [], 1: []}
    for _ in range(repeat):
        for which, action in enumerate((old, new)):
            start = time.perf_counter()
            action()
            times[which].append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def median_seconds(action: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def tick_rows(instance: dg.DagsterInstance, home: Path, cursor: str, repeat: int) -> tuple[float, float]:
    """One tick row as the daemon writes it (a skipped tick carries the cursor too): the median
    seconds, and the bytes the instance's storage grew by per tick."""

    def write() -> None:
        instance.create_tick(
            TickData(
                instigator_origin_id="benchmark",
                instigator_name="benchmark_landing_sensor",
                instigator_type=InstigatorType.SENSOR,
                status=TickStatus.SKIPPED,
                timestamp=time.time(),
                selector_id="benchmark",
                cursor=cursor,
            )
        )

    before = sum(p.stat().st_size for p in home.rglob("*") if p.is_file())
    seconds = median_seconds(write, repeat)
    after = sum(p.stat().st_size for p in home.rglob("*") if p.is_file())
    return seconds, (after - before) / repeat


def measure(n: int, root: Path, repeat: int) -> dict[str, float]:
    landing = root / f"landing_{n}"
    landing.mkdir()
    for i in range(n):
        (landing / f"batch_{i:07d}.csv").write_text(f"id,value\n{i},{i % 7}\n")
    spec = DatasetSpec(
        name="bench",
        source=LandingDirectory(path=landing),
        partitioning=DynamicPartitions(),
        schema_path=root / "unused.yaml",
    )
    started = time.perf_counter()
    old_cursor = old_tick(spec, None)  # hashes every file once; both paths start from this state
    first_tick = time.perf_counter() - started
    store = LandingStateStore(state_path(landing))
    started = time.perf_counter()
    new_cursor = new_tick(spec, store, old_cursor)  # migrates the JSON cursor into the store
    migration = time.perf_counter() - started
    new_cursor = new_tick(spec, store, new_cursor)  # commits it: the steady state

    new_file = landing / "batch_9999999.csv"

    def with_new_file(tick: Callable[[], object]) -> Callable[[], object]:
        def run() -> None:
            new_file.write_text("id,value\n-1,0\n")
            tick()
            new_file.unlink()  # the tick's cursor is not kept: each repeat starts from the same state

        return run

    figures = {
        "files": n,
        "first_tick_s": first_tick,
        "migration_s": migration,
        "old_cursor_bytes": len(old_cursor),
        "new_cursor_bytes": len(new_cursor),
        "store_bytes": store.path.stat().st_size,
    }
    figures["old_quiet_s"], figures["new_quiet_s"] = paired_seconds(
        lambda: old_tick(spec, old_cursor), lambda: new_tick(spec, store, new_cursor), repeat
    )
    figures["old_one_new_s"], figures["new_one_new_s"] = paired_seconds(
        with_new_file(lambda: old_tick(spec, old_cursor)),
        with_new_file(lambda: new_tick(spec, store, new_cursor)),
        repeat,
    )
    home = root / f"instance_{n}"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        tick_rows(instance, home, new_cursor, 1)  # the tables' first pages
        figures["old_tick_row_s"], figures["old_tick_row_bytes"] = tick_rows(
            instance, home, old_cursor, repeat
        )
        figures["new_tick_row_s"], figures["new_tick_row_bytes"] = tick_rows(
            instance, home, new_cursor, repeat
        )
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    header = (
        "| files | cursor bytes old / new | quiet tick old / new (s) | ratio | one new file old / new (s) "
        "| ratio | tick row write old / new (ms) | instance growth per tick old / new (bytes) "
        "| store on disk (bytes/file) |"
    )
    print(header)
    print("|" + "---:|" * 9)
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            f = measure(n, Path(tmp), args.repeat)
        print(
            f"| {n:,} | {f['old_cursor_bytes']:,} / {f['new_cursor_bytes']} "
            f"| {f['old_quiet_s']:.3f} / {f['new_quiet_s']:.3f} | {f['new_quiet_s'] / f['old_quiet_s']:.2f} "
            f"| {f['old_one_new_s']:.3f} / {f['new_one_new_s']:.3f} "
            f"| {f['new_one_new_s'] / f['old_one_new_s']:.2f} "
            f"| {1000 * f['old_tick_row_s']:.1f} / {1000 * f['new_tick_row_s']:.1f} "
            f"| {f['old_tick_row_bytes']:,.0f} / {f['new_tick_row_bytes']:,.0f} "
            f"| {f['store_bytes'] / n:.0f} |",
            flush=True,
        )
        print(
            f"  first tick (hash every file): {f['first_tick_s']:.2f} s; migrating the JSON cursor into "
            f"the store: {f['migration_s']:.2f} s; cursor ratio new/old "
            f"{f['new_cursor_bytes'] / f['old_cursor_bytes']:.5f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
