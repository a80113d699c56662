"""A partition that fails a blocking check shows as failed in the Dagster UI (the partition bar and
the catalog read the webserver's GraphQL, queried here in-process), not as materialized; its rows
stay accounted for and its check verdicts recorded."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pandas as pd
from dagster._core.event_api import PartitionKeyFilter
from dagster._core.test_utils import in_process_test_workspace
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster_graphql.test.utils import execute_dagster_graphql

from dcai_assets import build_definitions
from dcai_assets.core.verdicts import BLOCKING_CHECKS, NULL_RATES_WITHIN_LIMITS
from tests.assets.test_validated import QUARANTINE, VALIDATED, run_ingest
from tests.conftest import sensor_readings

STATUSES = """query($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { ... on AssetNode {
    assetPartitionStatuses { ... on TimePartitionStatuses { ranges { status startKey endKey } } }
    partitionStats { numMaterialized numFailed }
} } }"""


@contextmanager
def ui(instance: dg.DagsterInstance, spec, tmp_path: Path) -> Iterator:
    """The workspace the webserver would serve for ``spec``, loaded in this process."""
    module = tmp_path / "readings_definitions.py"
    module.write_text(
        "import dagster as dg\n"
        "from dcai_assets import ArtifactStore, DatasetSpec, LandingDirectory\n"
        "from dcai_assets.spec import DailyPartitions\n"
        "from dcai_assets import ParquetIOManager, build_definitions\n"
        f"spec = DatasetSpec(name='readings', source=LandingDirectory(path={str(spec.source.path)!r}),"
        " partitioning=DailyPartitions(start='2024-01-01', end='2024-03-01'),"
        f" schema_path={str(spec.schema_path)!r}, key='reading_id')\n"
        f"resources = {{'io_manager': ParquetIOManager(base_dir={str(tmp_path / 'lake')!r}),"
        f" 'artifacts': ArtifactStore(base_dir={str(tmp_path / 'artifacts')!r})}}\n"
        "defs = dg.Definitions.merge(build_definitions(spec), dg.Definitions(resources=resources))\n"
    )
    origin = LoadableTargetOrigin(
        python_file=str(module), attribute="defs", working_directory=str(Path.cwd())
    )
    with in_process_test_workspace(instance, origin) as context:
        yield context


def partition_statuses(context, key: dg.AssetKey) -> tuple[dict[str, str], dict[str, int]]:
    """{partition: MATERIALIZED | FAILED | ...} as the partition bar draws it, and the catalog's counts."""
    node = execute_dagster_graphql(context, STATUSES, {"key": {"path": key.path}}).data["assetNodeOrError"]
    statuses = {}
    for r in node["assetPartitionStatuses"]["ranges"]:
        for day in pd.date_range(r["startKey"], r["endKey"], freq="D"):
            statuses[day.strftime("%Y-%m-%d")] = r["status"]
    return statuses, node["partitionStats"]


def null_burst(day: str) -> pd.DataFrame:
    frame = sensor_readings(day)
    frame.loc[:79, "humidity"] = None  # 40% nulls; the reference had none: null_rates_within_limits
    return frame


def test_a_blocked_partition_shows_as_failed_and_a_good_one_as_materialized(
    readings_spec, resources, landing, tmp_path
):
    sensor_readings("2024-01-10").to_csv(landing / "2024-01-10.csv", index=False)
    null_burst("2024-01-11").to_csv(landing / "2024-01-11.csv", index=False)
    with dg.instance_for_test() as instance:
        assert run_ingest(readings_spec, resources, instance, "2024-01-10").success
        blocked = run_ingest(readings_spec, resources, instance, "2024-01-11")
        assert not blocked.success
        failure = blocked.get_step_failure_events()[0].step_failure_data.error
        assert failure.cls_name == "DagsterAssetCheckFailedError"  # how the demo tells blocked from broken
        with ui(instance, readings_spec, tmp_path) as context:
            statuses, stats = partition_statuses(context, VALIDATED)
            assert statuses == {"2024-01-10": "MATERIALIZED", "2024-01-11": "FAILED"}
            assert (stats["numMaterialized"], stats["numFailed"]) == (1, 1)
            # Every row of the blocked day is still accounted for, and the quarantine is stored.
            quarantine, _ = partition_statuses(context, QUARANTINE)
            assert quarantine == {"2024-01-10": "MATERIALIZED", "2024-01-11": "MATERIALIZED"}
        assert instance.get_materialized_partitions(VALIDATED) == {"2024-01-10"}
        record = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=QUARANTINE, asset_partitions=["2024-01-11"]), limit=1
        ).records[0]
        md = {k: v.value for k, v in record.asset_materialization.metadata.items()}
        assert md["rows_in"] == md["rows_valid"] + md["rows_quarantined"] == 200
        assert md["dagster/row_count"] == md["rows_quarantined"] > 0
        assert md["blocked_by"] == NULL_RATES_WITHIN_LIMITS
        # Every check's verdict is recorded for the blocked day, not only the one that failed.
        latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(VALIDATED, name) for name in BLOCKING_CHECKS],
            partition_filter=PartitionKeyFilter(key="2024-01-11"),
        )
        verdicts = {k.name: r.event.asset_check_evaluation.passed for k, r in latest.items()}
        assert set(verdicts) == set(BLOCKING_CHECKS)
        assert verdicts[NULL_RATES_WITHIN_LIMITS] is False
        assert sum(not passed for passed in verdicts.values()) == 1


def test_a_good_day_replaced_by_a_bad_file_turns_failed_then_materialized_once_fixed(
    readings_spec, resources, landing, tmp_path
):
    path = landing / "2024-01-12.csv"
    sensor_readings("2024-01-12").to_csv(path, index=False)
    with dg.instance_for_test() as instance:
        assert run_ingest(readings_spec, resources, instance, "2024-01-12").success
        null_burst("2024-01-12").to_csv(path, index=False)  # a broken re-export of the same day
        assert not run_ingest(readings_spec, resources, instance, "2024-01-12").success
        with ui(instance, readings_spec, tmp_path) as context:
            assert partition_statuses(context, VALIDATED)[0] == {"2024-01-12": "FAILED"}
        sensor_readings("2024-01-12").to_csv(path, index=False)  # the export is fixed
        assert run_ingest(readings_spec, resources, instance, "2024-01-12").success
        with ui(instance, readings_spec, tmp_path) as context:
            assert partition_statuses(context, VALIDATED)[0] == {"2024-01-12": "MATERIALIZED"}


def run_ingest_range(spec, resources, instance, first: str, last: str) -> dg.ExecuteInProcessResult:
    """One run of the ingest job over partitions ``first``...``last``, as a backfill run is."""
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    defs = dg.Definitions.merge(build_definitions(spec), dg.Definitions(resources=resources))
    return defs.resolve_job_def("readings_ingest").execute_in_process(
        instance=instance,
        tags={ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last},
        raise_on_error=False,
    )


def latest(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str) -> dg.AssetMaterialization:
    return (
        instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
        )
        .records[0]
        .asset_materialization
    )


def test_a_blocked_partition_inside_a_ranged_run_shows_as_failed_and_the_others_as_materialized(
    readings_spec, resources, landing, tmp_path
):
    days = ["2024-01-10", "2024-01-11", "2024-01-12"]
    for day in days:
        (null_burst(day) if day == "2024-01-11" else sensor_readings(day)).to_csv(
            landing / f"{day}.csv", index=False
        )
    with dg.instance_for_test() as instance:
        ranged = run_ingest_range(readings_spec, resources, instance, days[0], days[-1])
        assert not ranged.success  # the blocked day fails the run, as it fails its own run
        assert {e.step_failure_data.error.cls_name for e in ranged.get_step_failure_events()} == {
            "DagsterAssetCheckFailedError"
        }
        assert instance.get_materialized_partitions(VALIDATED) == {"2024-01-10", "2024-01-12"}
        with ui(instance, readings_spec, tmp_path) as context:
            statuses, stats = partition_statuses(context, VALIDATED)
            assert statuses == {
                "2024-01-10": "MATERIALIZED",
                "2024-01-11": "FAILED",
                "2024-01-12": "MATERIALIZED",
            }
            assert (stats["numMaterialized"], stats["numFailed"]) == (2, 1)
            assert set(partition_statuses(context, QUARANTINE)[0].values()) == {"MATERIALIZED"}
        # Each day's quarantine accounts for its own rows, and its checks are its own.
        for day in days:
            md = {k: v.value for k, v in latest(instance, QUARANTINE, day).metadata.items()}
            assert md["rows_in"] == md["rows_valid"] + md["rows_quarantined"] == 200
            assert md["blocked_by"] == (NULL_RATES_WITHIN_LIMITS if day == "2024-01-11" else "none")
            checks = instance.event_log_storage.get_latest_asset_check_execution_by_key(
                [dg.AssetCheckKey(VALIDATED, name) for name in BLOCKING_CHECKS],
                partition_filter=PartitionKeyFilter(key=day),
            )
            verdicts = {k.name: r.event.asset_check_evaluation.passed for k, r in checks.items()}
            assert set(verdicts) == set(BLOCKING_CHECKS)
            assert sum(not passed for passed in verdicts.values()) == (1 if day == "2024-01-11" else 0)
        ranged_versions = {d: latest(instance, VALIDATED, d).tags["dagster/data_version"] for d in days[::2]}
        ranged_rows = {d: latest(instance, VALIDATED, d).metadata["rows_valid"].value for d in days[::2]}
    # The same days run one by one: the same data versions and row counts as in the ranged run.
    with dg.instance_for_test() as instance:
        for d in days[::2]:
            assert run_ingest(readings_spec, resources, instance, d).success
        assert {
            d: latest(instance, VALIDATED, d).tags["dagster/data_version"] for d in days[::2]
        } == ranged_versions
        assert {
            d: latest(instance, VALIDATED, d).metadata["rows_valid"].value for d in days[::2]
        } == ranged_rows
