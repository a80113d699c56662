"""A 365-day backfill under the daemon: launched through GraphQL as the UI launches it, run by
the backfill daemon in ``ceil(365 / max_partitions_per_run)`` runs per stage (ingest, labeling)
and one for the label model, every partition right: its rows, its quarantine accounting, its
labels and the data version of its own content. Prints the runs, partitions and wall time.
On a 2-core VM shared with other work (load 6-8) the year took 329 s: the backfill daemon wakes
every 30 s between stages, and per day the GX suite and ~15 events written to the instance (check
verdicts, materializations), as a day's own run has.

Small synthetic data (24 rows a day, a duplicated row every 10th day), runs launched in the
daemon's process (Dagster's SyncInMemoryRunLauncher, as in the file-flood scenario): the
backfill's shape is under test, not process start-up."""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import yaml
from dagster._core.execution.backfill import BulkActionStatus
from dagster._core.storage.tags import BACKFILL_ID_TAG

from dcai_assets.core.reading import frame_digest
from dcai_assets.core.schema_inference import infer_schema
from jobs.live_instance import PROJECT_DIR, LiveInstance, wait_for
from tests.assets.test_labeled import LFS
from tests.conftest import sensor_readings
from tests.reliability.test_file_flood import dagster_yaml

pytestmark = pytest.mark.reliability

# DCAI_BACKFILL_DAYS (default 365, at most 365) scales it to the machine, as DCAI_FLOOD_FILES does.
DAYS = [
    d.strftime("%Y-%m-%d")
    for d in pd.date_range("2023-01-01", periods=min(365, int(os.environ.get("DCAI_BACKFILL_DAYS", "365"))))
]
ROWS = 24  # a reading an hour; one re-sent row is then 4% of a day, under the 5% that blocks it
PER_RUN = 30  # DatasetSpec.max_partitions_per_run's default
TIMEOUT = 900  # seconds: a ceiling for a loaded 2-core machine, not a duration
SELECTION = ["raw_data", "validated_data", "quarantined_rows", "label_model", "labeled_set"]
LAUNCH = """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
    __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }"""


def day_file(day: str, i: int) -> pd.DataFrame:
    frame = sensor_readings(day, rows=ROWS, seed=i)
    if i % 10 == 0:  # a re-sent row: the duplicate key is quarantined
        frame = pd.concat([frame, frame.iloc[[0]]], ignore_index=True)
    return frame


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    shm = Path("/dev/shm")  # the instance's SQLite files in memory where the machine allows
    root = (
        Path(tempfile.mkdtemp(prefix="dcai-year-", dir=shm))
        if shm.is_dir()
        else tmp_path_factory.mktemp("year")
    )
    data = root / "backfill"
    (data / "landing").mkdir(parents=True)
    for i, day in enumerate(DAYS):
        day_file(day, i).to_csv(data / "landing" / f"{day}.csv", index=False)
    reference = {d: sensor_readings(d, rows=ROWS, seed=i) for i, d in enumerate(DAYS[1:29])}
    infer_schema(reference, key=["reading_id"]).save(data / "readings.yaml")
    location = {
        "python_module": {
            "module_name": "tests.reliability.backfill_location",
            "working_directory": str(PROJECT_DIR),
            "location_name": "year",
        }
    }
    (root / "workspace.yaml").write_text(yaml.safe_dump({"load_from": [location]}))
    instance = LiveInstance(
        root,
        dagster_yaml=dagster_yaml(root / "dagster.yaml", max_concurrent_runs=2),
        workspace=root / "workspace.yaml",
        sensors=(),
        location="year",
        env={"DCAI_BACKFILL_DIR": str(data)},
    )
    try:
        with instance:
            yield instance, data
    finally:
        if root.parent == shm:
            shutil.rmtree(root, ignore_errors=True)


def test_a_365_day_backfill_runs_in_bounded_runs_and_every_partition_is_right(live):
    live, data = live
    params = {
        "assetSelection": [{"path": ["readings", name]} for name in SELECTION],
        "partitionNames": DAYS,
    }
    start = time.monotonic()
    launched = live.graphql(LAUNCH, {"params": params})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]
    instance = live.instance()

    def done():
        backfill = instance.get_backfill(backfill_id)
        return backfill if backfill.status != BulkActionStatus.REQUESTED else None

    backfill = wait_for(f"backfill {backfill_id} to finish", done, timeout=TIMEOUT)
    wall = time.monotonic() - start
    runs = instance.get_runs(filters=dg.RunsFilter(tags={BACKFILL_ID_TAG: backfill_id}))
    per_asset = Counter(k.path[-1] for r in runs for k in r.asset_selection or ())
    print(
        f"RELIABILITY: {len(DAYS)}-day backfill ({ROWS} rows a day, max_partitions_per_run={PER_RUN}): "
        f"{len(runs)} runs for {len(DAYS)} partitions x {len(SELECTION) - 1} partitioned assets + the "
        f"label model, {wall:.1f} s from launch to done ({wall / len(DAYS) * 1000:.0f} ms per day)"
    )
    records = instance.get_run_records(filters=dg.RunsFilter(tags={BACKFILL_ID_TAG: backfill_id}))
    busy = sum(r.end_time - r.start_time for r in records if r.start_time and r.end_time)
    print(
        f"RELIABILITY: {len(DAYS)}-day backfill runs per asset: {dict(sorted(per_asset.items()))}; "
        f"the runs themselves {busy:.1f} s in total ({busy / len(DAYS) * 1000:.0f} ms per day), the rest "
        "the backfill daemon's wake-ups (every 30 s in Dagster 1.13) between stages"
    )
    assert backfill.status == BulkActionStatus.COMPLETED_SUCCESS, backfill.error
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    bound = math.ceil(len(DAYS) / PER_RUN)
    assert per_asset == {
        "raw_data": bound,
        "validated_data": bound,
        "quarantined_rows": bound,
        "label_model": 1,
        "labeled_set": bound,
    }
    assert len(runs) == 2 * bound + 1
    for name in ("raw_data", "validated_data", "quarantined_rows", "labeled_set"):
        assert instance.get_materialized_partitions(dg.AssetKey(["readings", name])) == set(DAYS), name

    validated = latest_by_partition(instance, "validated_data")
    quarantined = latest_by_partition(instance, "quarantined_rows")
    for i, day in enumerate(DAYS):
        sent = len(day_file(day, i))
        q = {k: v.value for k, v in quarantined[day].metadata.items()}
        assert q["rows_in"] == q["rows_valid"] + q["rows_quarantined"] == sent, day
        assert q["rows_quarantined"] == (1 if i % 10 == 0 else 0), day  # the second copy of the key
        rows = pd.read_parquet(data / "lake" / "readings" / "validated_data" / f"{day}.parquet")
        assert len(rows) == q["rows_valid"]
        # The day's own data version: the digest of its own rows, as a single-partition run records.
        assert validated[day].tags["dagster/data_version"] == frame_digest(rows)[:16], day
        labeled = pd.read_parquet(data / "lake" / "readings" / "labeled_set" / f"{day}.parquet")
        assert labeled["reading_id"].tolist() == rows["reading_id"].tolist(), day
        assert labeled["lf_set_version"].unique().tolist() == [LFS.version], day
        assert (labeled["label"].isna() == (labeled["label_source"] == "abstain")).all(), day
    print(
        f"RELIABILITY: {len(DAYS)}-day backfill: all {len(DAYS)} partitions right (rows, quarantine, labels)"
    )


def latest_by_partition(instance: dg.DagsterInstance, name: str) -> dict[str, dg.AssetMaterialization]:
    records = instance.fetch_materializations(dg.AssetKey(["readings", name]), limit=10 * len(DAYS)).records
    latest: dict[str, dg.AssetMaterialization] = {}
    for r in records:  # newest first
        latest.setdefault(r.asset_materialization.partition, r.asset_materialization)
    return latest
