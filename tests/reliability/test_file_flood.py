"""1,000 files landing at once, then a restart of the daemon in the middle of the sensor's
submissions, then 50 more: each partition requested exactly once, and every run processed by the
daemon (its run queue), with the time per sensor tick and the time to drain printed.

The code location is tests/reliability/flood_location.py: the plugin's landing sensor targeting a
one-asset job (no GX, no MLflow). Runs are launched by the daemon's run queue in the daemon's own
process (Dagster's SyncInMemoryRunLauncher) instead of one process per run, whose start-up would
dominate 1,050 runs many times over; the sensor, the queue and the restart are under test, not
process start-up. DCAI_FLOOD_FILES (default 1000) and DCAI_FLOOD_TIMEOUT (seconds to drain,
default 600) scale it to the machine; its figures are in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import dagster as dg
import pytest
import yaml

from jobs.live_instance import PROJECT_DIR, LiveInstance, wait_for

pytestmark = pytest.mark.reliability

FIRST, MORE = int(os.environ.get("DCAI_FLOOD_FILES", "1000")), 50
DRAIN_TIMEOUT = float(os.environ.get("DCAI_FLOOD_TIMEOUT", "600"))  # seconds
SENSOR = "flood_landing_sensor"
START = "2020-01-01"


def dagster_yaml(path: Path, max_concurrent_runs: int) -> Path:
    config = {
        "telemetry": {"enabled": False},
        "concurrency": {"runs": {"max_concurrent_runs": max_concurrent_runs}},
        "run_queue": {"dequeue_interval_seconds": 1},
        "run_launcher": {
            "module": "dagster._core.launcher.sync_in_memory_run_launcher",
            "class": "SyncInMemoryRunLauncher",
        },
        # No captured stdout/stderr files per run (two `tail` processes each, in the daemon).
        "compute_logs": {
            "module": "dagster._core.storage.noop_compute_log_manager",
            "class": "NoOpComputeLogManager",
        },
    }
    path.write_text(yaml.safe_dump(config))
    return path


def workspace(path: Path) -> Path:
    location = {
        "python_module": {
            "module_name": "tests.reliability.flood_location",
            "working_directory": str(PROJECT_DIR),
            "location_name": "flood",
        }
    }
    path.write_text(yaml.safe_dump({"load_from": [location]}))
    return path


def land(landing: Path, first: int, count: int) -> list[str]:
    """``count`` day files from day ``first`` after START, each written beside and renamed in."""
    from datetime import date, timedelta

    days = [(date.fromisoformat(START) + timedelta(days=first + i)).isoformat() for i in range(count)]
    for day in days:
        tmp = landing / f".{day}.csv.tmp"
        tmp.write_text(f"id,value\n{day}-0,1\n{day}-1,2\n")
        tmp.rename(landing / f"{day}.csv")
    return days


def sensor_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    return list(instance.get_runs(filters=dg.RunsFilter(tags={"dagster/sensor_name": SENSOR})))


def sensor_ticks(instance: dg.DagsterInstance) -> list:
    state = next(s for s in instance.all_instigator_state() if s.name == SENSOR)
    return list(instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=10_000))


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    # The instance's SQLite files in memory when the machine has /dev/shm: 1,050 runs write ~20
    # events each, and the file system's syncs, not Dagster, would set the pace.
    shm = Path("/dev/shm")
    root = (
        Path(tempfile.mkdtemp(prefix="dcai-flood-", dir=shm))
        if shm.is_dir()
        else tmp_path_factory.mktemp("flood")
    )
    held = dagster_yaml(root / "held.yaml", max_concurrent_runs=0)  # the queue waits: see below
    instance = LiveInstance(
        root, dagster_yaml=held, workspace=workspace(root / "workspace.yaml"), env={"DCAI_SENSORS": "stopped"}
    )  # DCAI_SENSORS=stopped: LiveInstance waits for no demo sensor; this location's sensor is on
    try:
        with instance:
            yield instance
    finally:
        if root.parent == shm:
            shutil.rmtree(root, ignore_errors=True)


def test_a_flood_and_a_restart_request_each_partition_once_and_the_daemon_drains_them(live):
    started = time.monotonic()
    landing = live.data / "landing" / "flood"
    landing.mkdir(parents=True, exist_ok=True)
    handle = live.instance()
    expected = land(landing, 0, FIRST)
    landed = time.monotonic()
    # The queue is held (max 0 runs) until the restart, so that the restart hits the sensor while
    # it submits the flood's runs, not a run executing inside the daemon.
    submitted_at_restart = wait_for(
        "the sensor to submit runs of the flood",
        lambda: len(sensor_runs(handle)) >= min(100, FIRST) and len(sensor_runs(handle)),
        120,
    )
    live.stop()
    live.dagster_yaml = dagster_yaml(live.root / "open.yaml", max_concurrent_runs=-1)
    restart = time.monotonic()
    live.start()
    restarted = time.monotonic() - restart
    expected += land(landing, FIRST, MORE)
    total = FIRST + MORE

    def drained():
        runs = sensor_runs(handle)
        done = [r for r in runs if r.status in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE)]
        return len(runs) >= total and len(done) == len(runs)

    try:
        wait_for(f"{total} runs to be requested and finish", drained, timeout=DRAIN_TIMEOUT, every=1)
    except TimeoutError:
        runs = sensor_runs(handle)
        print(
            f"RELIABILITY: flood NOT DRAINED after {DRAIN_TIMEOUT} s: {len(runs)} of {total} runs "
            f"requested, {Counter(r.status.value for r in runs)}"
        )
        raise
    drain = time.monotonic() - landed

    runs = sensor_runs(handle)
    per_partition = Counter(r.tags.get("dagster/partition") for r in runs)
    assert sorted(per_partition) == sorted(expected)
    assert set(per_partition.values()) == {1}, [k for k, n in per_partition.items() if n > 1][:10]
    assert len({r.tags["dagster/run_key"] for r in runs}) == total
    assert Counter(r.status for r in runs) == {dg.DagsterRunStatus.SUCCESS: total}
    key = dg.AssetKey(["flood", "landed_lines"])
    assert handle.get_materialized_partitions(key) == set(expected)  # by runs, not only requests

    ticks = sensor_ticks(handle)
    busy = [t for t in ticks if t.tick_data.run_ids and t.tick_data.end_timestamp]
    quiet = [t for t in ticks if not t.tick_data.run_ids and t.tick_data.end_timestamp]
    seconds = lambda ts: [t.tick_data.end_timestamp - t.tick_data.timestamp for t in ts]  # noqa: E731
    cursors = [len(t.tick_data.cursor or "") for t in ticks]
    print(
        f"RELIABILITY: flood {FIRST} files then a daemon restart then {MORE}: {total} partitions, "
        f"each requested once ({len(runs)} runs, all SUCCESS, run by the daemon's queue); "
        f"{submitted_at_restart} runs submitted when the daemon was stopped, restart {restarted:.1f} s; "
        f"ticks with runs: {len(busy)} ({', '.join(f'{s:.1f}' for s in seconds(busy))} s from start to "
        "end, a tick resumed after the restart counting the restart too; "
        f"runs per tick {[len(t.tick_data.run_ids) for t in busy]}); quiet ticks: {len(quiet)}, "
        f"median {statistics.median(seconds(quiet) or [0]):.2f} s; largest cursor stored in a tick "
        f"{max(cursors)} bytes; drain from landing to the last run finished {drain:.1f} s; "
        f"wall {time.monotonic() - started:.1f} s"
    )
