"""Automation's relabel after an LF change runs as bounded runs, not one run per partition: 30
days backfilled (launched through GraphQL, as the UI launches it), the LF set changed, and the
relabel emitted as the automation sensor emits it (a backfill, since many partitions of one asset
are requested), all run by the backfill daemon's own iteration on a real instance, runs in process.
The 365-day backfill under the daemon is tests/reliability/test_backfill_year.py."""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from dagster._core.definitions.automation_tick_evaluation_context import build_run_requests
from dagster._core.event_api import PartitionKeyFilter
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.storage.tags import BACKFILL_ID_TAG
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.backfill import execute_backfill_iteration
from dagster_graphql.test.utils import execute_dagster_graphql

from dcai_assets.assets.labeled import LABELS_COVER_ROWS, LF_COVERAGE_STABLE
from dcai_assets.core.labeling import LabelingFunctionSet
from tests.assets.test_labeled import LFS, hot, humid, mild
from tests.conftest import sensor_readings

DAYS = [d.strftime("%Y-%m-%d") for d in pd.date_range("2024-01-01", periods=30, freq="D")]
KEYS = {n: dg.AssetKey(["readings", n]) for n in ("raw_data", "validated_data", "label_model", "labeled_set")}
PER_RUN = 30  # DatasetSpec.max_partitions_per_run's default
SYNC_LAUNCHER = {  # runs start as they are submitted, and execute in this process
    "run_coordinator": {"module": "dagster._core.run_coordinator", "class": "DefaultRunCoordinator"},
    "run_launcher": {
        "module": "dagster._core.launcher.sync_in_memory_run_launcher",
        "class": "SyncInMemoryRunLauncher",
    },
}
LAUNCH = """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
    __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }"""


def write_definitions(path: Path, spec, tmp_path: Path, lfs: str) -> Path:
    """A code location for ``spec`` labeled by the LF set ``lfs`` (an expression)."""
    path.write_text(
        "import dagster as dg\n"
        "from dcai_assets import ArtifactStore, AutomationSpec, DatasetSpec\n"
        "from dcai_assets import LabelingSpec, LandingDirectory, ParquetIOManager\n"
        "from dcai_assets.core.labeling import LabelingFunctionSet\n"
        "from dcai_assets.spec import DailyPartitions\n"
        "from dcai_assets import build_definitions\n"
        "from tests.assets.test_labeled import LFS, hot, humid, mild\n"
        f"spec = DatasetSpec(name='readings', source=LandingDirectory(path={str(spec.source.path)!r}),"
        " partitioning=DailyPartitions(start='2024-01-01', end='2024-03-01'),"
        f" schema_path={str(spec.schema_path)!r}, key='reading_id')\n"
        f"resources = {{'io_manager': ParquetIOManager(base_dir={str(tmp_path / 'lake')!r}),"
        f" 'artifacts': ArtifactStore(base_dir={str(tmp_path / 'artifacts')!r})}}\n"
        f"labeling = LabelingSpec(lfs={lfs})\n"
        "defs = dg.Definitions.merge(build_definitions(spec, labeling=labeling, automation=AutomationSpec()),"
        " dg.Definitions(resources=resources, executor=dg.in_process_executor))\n"
    )
    return path


@contextmanager
def code_location(instance: dg.DagsterInstance, module: Path) -> Iterator[WorkspaceProcessContext]:
    origin = LoadableTargetOrigin(
        python_file=str(module), attribute="defs", working_directory=str(Path.cwd())
    )
    target = InProcessWorkspaceLoadTarget(InProcessCodeLocationOrigin(origin))
    with WorkspaceProcessContext(instance, target) as context:
        yield context


def drain(context: WorkspaceProcessContext, backfill_id: str, iterations: int = 30) -> PartitionBackfill:
    """The backfill daemon's iterations until the backfill is done (its runs execute in process)."""
    logger = logging.getLogger("test_bounded_runs")
    for _ in range(iterations):
        list(execute_backfill_iteration(context, logger))
        backfill = context.instance.get_backfill(backfill_id)
        if backfill.status != BulkActionStatus.REQUESTED:
            return backfill
    raise AssertionError(f"backfill {backfill_id} still running after {iterations} daemon iterations")


def runs_per_asset(instance: dg.DagsterInstance, backfill_id: str) -> Counter:
    runs = instance.get_runs(filters=dg.RunsFilter(tags={BACKFILL_ID_TAG: backfill_id}))
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs), [r.status for r in runs]
    return Counter(k for r in runs for k in r.asset_selection or ())


def automation_tick(defs: dg.Definitions, instance: dg.DagsterInstance, cursor):
    """What the automation sensor does on a tick: evaluate the conditions, turn what they request
    into run requests (a backfill when many partitions of an asset are requested), submit them."""
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
    requests = build_run_requests(
        result._requested_subsets,
        defs.resolve_asset_graph(),
        run_tags={},
        emit_backfills=True,
    )
    return result.cursor, requests


def load_defs(module: Path) -> dg.Definitions:
    import importlib.util

    spec = importlib.util.spec_from_file_location(module.stem, module)
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded.defs


@contextmanager
def backfilled(readings_spec, landing, tmp_path) -> Iterator[tuple[dg.DagsterInstance, str, Path]]:
    """30 days landed, then one backfill of them through labeling, launched as the UI does."""
    for day in DAYS:
        sensor_readings(day).to_csv(landing / f"{day}.csv", index=False)
    with dg.instance_for_test(overrides=SYNC_LAUNCHER) as instance:
        v1 = write_definitions(tmp_path / "readings_v1.py", readings_spec, tmp_path, "LFS")
        with code_location(instance, v1) as context:
            selection = [*KEYS.values(), dg.AssetKey(["readings", "quarantined_rows"])]
            params = {"assetSelection": [{"path": k.path} for k in selection], "partitionNames": DAYS}
            launched = execute_dagster_graphql(context.create_request_context(), LAUNCH, {"params": params})
            result = launched.data["launchPartitionBackfill"]
            assert result["__typename"] == "LaunchBackfillSuccess", result
            assert drain(context, result["backfillId"]).status == BulkActionStatus.COMPLETED_SUCCESS
        yield instance, result["backfillId"], v1


def labeled(tmp_path: Path, day: str) -> pd.DataFrame:
    return pd.read_parquet(tmp_path / "lake" / "readings" / "labeled_set" / f"{day}.parquet")


def test_an_lf_change_relabels_30_days_in_bounded_runs_with_the_new_lfs(readings_spec, landing, tmp_path):
    new_version = LabelingFunctionSet([hot, mild, humid], LFS.classes).version
    assert new_version != LFS.version
    with backfilled(readings_spec, landing, tmp_path) as (instance, first, v1):
        # The backfill too: a run per stage and range (ingest, label model, labeling), not per day.
        bound = math.ceil(len(DAYS) / PER_RUN)
        assert len(instance.get_runs(filters=dg.RunsFilter(tags={BACKFILL_ID_TAG: first}))) == 2 * bound + 1
        cursor, requests = automation_tick(load_defs(v1), instance, None)
        assert requests == []  # the first evaluation: what exists counts as handled
        # The LF set loses one function: its version (a hash of the LF sources) changes.
        v2 = write_definitions(
            tmp_path / "readings_v2.py",
            readings_spec,
            tmp_path,
            "LabelingFunctionSet([hot, mild, humid], LFS.classes)",
        )
        defs = load_defs(v2)
        backfills = []
        with code_location(instance, v2) as context:
            for _ in range(6):  # ticks: refit the label model, then relabel
                cursor, requests = automation_tick(defs, instance, cursor)
                if not requests:
                    break
                for request in requests:
                    if request.requires_backfill_daemon():
                        backfill = PartitionBackfill.from_asset_graph_subset(
                            backfill_id=f"relabel{len(backfills)}",
                            backfill_timestamp=time.time(),
                            tags=dict(request.tags),
                            dynamic_partitions_store=instance,
                            asset_graph_subset=request.asset_graph_subset,
                            title="automation",
                            description=None,
                            run_config=None,
                        )
                        instance.add_backfill(backfill)
                        backfills.append(backfill.backfill_id)
                        drain(context, backfill.backfill_id)
                    else:
                        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
                            instance=instance, asset_selection=list(request.asset_selection or ())
                        )
                        assert result.success
        (relabel,) = backfills
        runs = runs_per_asset(instance, relabel)
        assert runs[KEYS["labeled_set"]] <= math.ceil(len(DAYS) / PER_RUN)
        # Every day relabeled by the new LF set: its version, its three LFs' votes, a label per row
        # (or marked abstain), and its own verdict of each labeled-set check from the relabel run.
        (run,) = instance.get_runs(filters=dg.RunsFilter(tags={BACKFILL_ID_TAG: relabel}))
        for day in DAYS:
            checks = instance.event_log_storage.get_latest_asset_check_execution_by_key(
                [dg.AssetCheckKey(KEYS["labeled_set"], n) for n in (LABELS_COVER_ROWS, LF_COVERAGE_STABLE)],
                partition_filter=PartitionKeyFilter(key=day),
            )
            assert {r.run_id for r in checks.values()} == {run.run_id} and len(checks) == 2
            frame = labeled(tmp_path, day)
            assert frame["lf_set_version"].unique().tolist() == [new_version]
            assert [c for c in frame.columns if c.startswith("lf__")] == ["lf__hot", "lf__mild", "lf__humid"]
            assert (frame["label"].isna() == (frame["label_source"] == "abstain")).all()
        # A day relabeled on its own gives the same rows, labels and data version as in the range.
        job = defs.resolve_implicit_global_asset_job_def()
        for day in (DAYS[0], DAYS[-1]):
            in_range = labeled(tmp_path, day), version(instance, day)
            assert job.execute_in_process(
                instance=instance, asset_selection=[KEYS["labeled_set"]], partition_key=day
            ).success
            pd.testing.assert_frame_equal(labeled(tmp_path, day), in_range[0])
            assert version(instance, day) == in_range[1]


def version(instance: dg.DagsterInstance, day: str) -> str:
    record = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=KEYS["labeled_set"], asset_partitions=[day]), limit=1
    ).records[0]
    return record.asset_materialization.tags["dagster/data_version"]


def test_the_io_manager_stores_a_range_as_one_file_per_partition_and_names_what_a_range_lacks(tmp_path):
    from dcai_assets import ParquetIOManager

    pdef = dg.DailyPartitionsDefinition(start_date="2024-01-01")
    days = dg.PartitionKeyRange("2024-01-01", "2024-01-03")
    key = dg.AssetKey(["readings", "validated_data"])
    manager = ParquetIOManager(base_dir=str(tmp_path)).create_io_manager(dg.build_init_resource_context())
    frames = {d: sensor_readings(d, rows=3) for d in ("2024-01-01", "2024-01-02", "2024-01-03")}
    out = dg.build_output_context(asset_key=key, asset_partitions_def=pdef, asset_partition_key_range=days)
    manager.handle_output(out, frames)
    assert sorted(p.name for p in (tmp_path / "readings" / "validated_data").iterdir()) == [
        "2024-01-01.parquet",
        "2024-01-02.parquet",
        "2024-01-03.parquet",
    ]
    loaded = manager.load_input(
        dg.build_input_context(asset_key=key, asset_partitions_def=pdef, asset_partition_key_range=days)
    )
    assert loaded.keys() == frames.keys()
    for d, frame in frames.items():
        pd.testing.assert_frame_equal(loaded[d], frame)
    with pytest.raises(ValueError, match=r"lacks partitions \['2024-01-03'\]"):
        manager.handle_output(out, {d: frames[d] for d in ("2024-01-01", "2024-01-02")})
    with pytest.raises(TypeError, match="expected a dict of DataFrames keyed by partition"):
        manager.handle_output(out, frames["2024-01-01"])
