"""Every partitioning on a real Dagster instance: a landing file per partition (file stem = key),
ingested, validated, labeled by the automation, and the model's holdout is the newest partition
by time, whatever order the files landed in."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from dcai_assets import (
    AutomationSpec,
    DatasetSpec,
    LabelingSpec,
    LandingDirectory,
    TrainingSpec,
    build_definitions,
)
from dcai_assets.cli import main as cli
from dcai_assets.core.schema_inference import infer_schema
from dcai_assets.landing_state import handled
from dcai_assets.sensors import scan_landing_directory
from dcai_assets.spec import (
    DailyPartitions,
    DynamicPartitions,
    HourlyPartitions,
    MonthlyPartitions,
    StaticPartitions,
    WeeklyPartitions,
)
from tests.assets.test_labeled import LFS
from tests.assets.test_model import FEATURES, logistic_pipeline
from tests.conftest import sensor_readings

VALIDATED = dg.AssetKey(["readings", "validated_data"])
LABELED = dg.AssetKey(["readings", "labeled_set"])
LABEL_MODEL = dg.AssetKey(["readings", "label_model"])

# Partitionings and two keys of each, all of them ended before 2024-02-01 (the automation's clock).
CASES = {
    "hourly": (
        HourlyPartitions(start="2024-01-01", timezone="Europe/Paris"),
        ["2024-01-10-05:00", "2024-01-10-06:00"],
    ),
    "daily": (DailyPartitions(start="2024-01-01"), ["2024-01-10", "2024-01-11"]),
    "weekly": (WeeklyPartitions(start="2023-12-01"), ["2024-01-07", "2024-01-14"]),
    "monthly": (
        MonthlyPartitions(start="2023-06-01", timezone="America/New_York"),
        ["2023-11-01", "2023-12-01"],
    ),
    "static": (StaticPartitions(keys=["pilot", "rollout", "general"]), ["pilot", "rollout"]),
    "dynamic": (DynamicPartitions(), ["batch_1", "batch_2"]),
}


def readings(key: str, seed: int) -> pd.DataFrame:
    """The test dataset's rows for any partition key (the key is in each row's id)."""
    frame = sensor_readings("2024-01-01", seed=seed)
    return frame.assign(reading_id=[f"{key}-{i}" for i in range(len(frame))])


def make_spec(tmp_path: Path, partitioning, keys: list[str]) -> DatasetSpec:
    """A dataset landing as CSV files named by partition key, its schema inferred from ``keys``."""
    landing = tmp_path / "landing"
    landing.mkdir(parents=True, exist_ok=True)
    schema_path = tmp_path / "readings.yaml"
    infer_schema({k: readings(k, i) for i, k in enumerate(keys)}, key=["reading_id"]).save(schema_path)
    return DatasetSpec(
        name="readings",
        source=LandingDirectory(path=landing),
        partitioning=partitioning,
        schema_path=schema_path,
        key="reading_id",
    )


def land(spec: DatasetSpec, keys: list[str]) -> None:
    for i, key in enumerate(keys):
        readings(key, i).to_csv(Path(spec.source.path) / f"{key}.csv", index=False)


def landing_sensor_tick(defs: dg.Definitions, instance: dg.DagsterInstance) -> dg.SensorExecutionData:
    context = dg.build_sensor_context(instance=instance, definitions=defs, instance_ref=instance.get_ref())
    result = defs.resolve_sensor_def("readings_landing_sensor").evaluate_tick(context)
    for request in result.dynamic_partitions_requests:  # what the daemon does with them
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


@pytest.mark.parametrize("case", list(CASES))
def test_each_partitioning_lands_ingests_and_validates_one_partition(tmp_path, resources, case):
    partitioning, keys = CASES[case]
    spec = make_spec(tmp_path, partitioning, keys)
    land(spec, keys[:1])
    defs = dg.Definitions.merge(build_definitions(spec), dg.Definitions(resources=resources))
    with dg.instance_for_test() as instance:
        tick = landing_sensor_tick(defs, instance)
        assert [r.partition_key for r in tick.run_requests] == keys[:1]
        assert handled(spec, instance, tick.cursor) == [f"{keys[0]}.csv"]
        result = defs.resolve_job_def("readings_ingest").execute_in_process(
            instance=instance, partition_key=keys[0]
        )
        assert result.success
        assert instance.get_materialized_partitions(VALIDATED) == {keys[0]}
        checks = result.get_asset_check_evaluations()
        assert checks and all(c.passed for c in checks if c.severity == dg.AssetCheckSeverity.ERROR)
        validated = result.asset_value(VALIDATED)
        assert len(validated) == 200


def test_only_dynamic_partitions_are_registered_by_the_landing_sensor(tmp_path, resources):
    for case in ("monthly", "static", "dynamic"):
        partitioning, keys = CASES[case]
        spec = make_spec(tmp_path / case, partitioning, keys)
        land(spec, keys)
        cursor = {"files": {}, "rejected": {}, "keys": []}
        requests, new_keys, problems = scan_landing_directory(spec, cursor)
        assert problems == []
        assert sorted(r.partition_key for r in requests) == sorted(keys)
        assert new_keys == (keys if case == "dynamic" else [])


@pytest.mark.parametrize(
    ("case", "bad", "message"),
    [
        ("hourly", "2024-01-10-05:30", "not the start of an hour"),
        ("weekly", "2024-01-08", "not the start of a week"),  # a Monday: weeks start on Sunday
        ("monthly", "2023-11", "of the form YYYY-MM-DD, e.g. 2024-05-01.csv"),
        ("static", "other", "not one of the declared static partitions"),
    ],
)
def test_a_landing_file_whose_name_is_no_key_of_the_partitioning_is_skipped_and_named(
    tmp_path, case, bad, message
):
    partitioning, keys = CASES[case]
    spec = make_spec(tmp_path, partitioning, keys)
    land(spec, [keys[0], bad])
    cursor = {"files": {}, "rejected": {}, "keys": []}
    requests, _, problems = scan_landing_directory(spec, cursor)
    assert [r.partition_key for r in requests] == [keys[0]]
    assert len(problems) == 1 and f"file '{bad}.csv'" in problems[0] and message in problems[0]


@pytest.mark.parametrize("case", [c for c in CASES if c != "daily"])  # daily: test_automation.py
def test_automation_labels_new_partitions_of_every_partitioning(tmp_path, resources, case):
    partitioning, keys = CASES[case]
    spec = make_spec(tmp_path, partitioning, keys)
    defs = dg.Definitions.merge(
        build_definitions(spec, labeling=LabelingSpec(lfs=LFS), automation=AutomationSpec()),
        dg.Definitions(resources=resources),
    )
    now = dt.datetime(2024, 2, 1, 12, tzinfo=dt.UTC)
    with dg.instance_for_test() as instance:
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=now)
        assert result.total_requested == 0  # nothing landed yet
        cursor = result.cursor
        land(spec, keys)
        landing_sensor_tick(defs, instance)
        for key in keys:
            defs.resolve_job_def("readings_ingest").execute_in_process(instance=instance, partition_key=key)
        history = []
        for minute in range(1, 6):
            result = dg.evaluate_automation_conditions(
                defs=defs,
                instance=instance,
                cursor=cursor,
                evaluation_time=now + dt.timedelta(minutes=minute),
            )
            cursor = result.cursor
            requested = {k: result.get_requested_partitions(k) for k in (LABEL_MODEL, LABELED)}
            requested = {k: v for k, v in requested.items() if v}
            if not requested:
                break
            history.append(requested)
            job = defs.resolve_implicit_global_asset_job_def()
            for key, partitions in requested.items():
                for partition in partitions:
                    job.execute_in_process(instance=instance, asset_selection=[key], partition_key=partition)
        assert history == [{LABEL_MODEL: {None}}, {LABELED: set(keys)}]
        assert instance.get_materialized_partitions(LABELED) == set(keys)


def test_the_holdout_is_the_newest_month_even_when_files_land_out_of_order(tmp_path, resources, tracking):
    landed = ["2014-02", "2013-01", "2013-05"]  # registration order
    spec = make_spec(tmp_path, DynamicPartitions(), landed)
    training = TrainingSpec(pipeline=logistic_pipeline, features=FEATURES, holdout_partitions=1)
    defs = dg.Definitions.merge(
        build_definitions(spec, labeling=LabelingSpec(lfs=LFS), training=training),
        dg.Definitions(resources={**resources, "mlflow_tracking": tracking}),
    )
    with dg.instance_for_test() as instance:
        for key in landed:  # one file per tick, as they arrive
            land(spec, [key])
            landing_sensor_tick(defs, instance)
            defs.resolve_job_def("readings_ingest").execute_in_process(instance=instance, partition_key=key)
        assert instance.get_dynamic_partitions("readings_batches") == landed
        defs.resolve_job_def("readings_fit_label_model").execute_in_process(instance=instance)
        for key in landed:
            defs.resolve_job_def("readings_label").execute_in_process(instance=instance, partition_key=key)
        result = defs.resolve_job_def("readings_train").execute_in_process(instance=instance)
        card = result.output_for_node("readings__trained_model")
        assert card.iloc[0]["holdout_partitions"] == "2014-02"
        assert card.iloc[0]["train_partition_keys"] == "2013-01,2013-05"


# --- registering dynamic partitions from the command line, on a real instance in DAGSTER_HOME ---

SPEC_MODULE = """
import dagster as dg
from dcai_assets import DatasetSpec, LandingDirectory, ParquetIOManager, ArtifactStore
from dcai_assets.spec import DynamicPartitions
from dcai_assets import build_definitions

SPEC = DatasetSpec(
    name="readings",
    source=LandingDirectory(path={landing!r}),
    partitioning=DynamicPartitions(),
    schema_path={schema!r},
    key="reading_id",
)
DAILY = DatasetSpec(
    name="daily",
    source=LandingDirectory(path={landing!r}),
    partitioning=__import__("dcai_assets.spec").spec.DailyPartitions(start="2024-01-01"),
    schema_path={schema!r},
)
defs = dg.Definitions.merge(
    build_definitions(SPEC),
    dg.Definitions(resources={{
        "io_manager": ParquetIOManager(base_dir={lake!r}),
        "artifacts": ArtifactStore(base_dir={artifacts!r}),
    }}),
)
"""


@pytest.fixture
def project(tmp_path, monkeypatch) -> tuple[Path, DatasetSpec, str]:
    """A project directory with a spec module, a landing directory and a Dagster home."""
    spec = make_spec(tmp_path, DynamicPartitions(), ["batch_1", "batch_2"])
    module = f"readings_project_{abs(hash(tmp_path))}"
    (tmp_path / f"{module}.py").write_text(
        textwrap.dedent(
            SPEC_MODULE.format(
                landing=str(spec.source.path),
                schema=str(spec.schema_path),
                lake=str(tmp_path / "lake"),
                artifacts=str(tmp_path / "artifacts"),
            )
        )
    )
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    return tmp_path, spec, module


def registered(home: Path) -> list[str]:
    assert os.environ["DAGSTER_HOME"] == str(home)
    with dg.DagsterInstance.get() as instance:
        return instance.get_dynamic_partitions("readings_batches")


def test_partitions_add_registers_keys_on_the_instance_of_dagster_home(project, capsys):
    root, _, module = project

    assert cli(["partitions", "add", f"{module}:SPEC", "batch_7", "2024-05"]) == 0
    assert cli(["partitions", "add", f"{module}:SPEC", "batch_7"]) == 0

    assert registered(root / "dagster_home") == ["batch_7", "2024-05"]
    out = capsys.readouterr().out
    assert "registered 2 new partitions" in out and "registered 0 new partitions" in out
    with pytest.raises(SystemExit, match="not allowed"):
        cli(["partitions", "add", f"{module}:SPEC", "../x"])
    with pytest.raises(SystemExit, match="only DynamicPartitions are registered"):
        cli(["partitions", "add", f"{module}:DAILY", "2024-01-05"])


def test_partitions_sync_registers_every_landing_file_and_reports_bad_ones(project, capsys):
    root, spec, module = project
    land(spec, ["batch_10", "batch_2"])
    (Path(spec.source.path) / "notes.txt").write_text("not data")

    assert cli(["partitions", "sync", f"{module}:SPEC"]) == 0

    assert registered(root / "dagster_home") == ["batch_2", "batch_10"]  # natural key order
    captured = capsys.readouterr()
    assert "skipped: file 'notes.txt'" in captured.err
    assert cli(["partitions", "list", f"{module}:SPEC"]) == 0
    assert capsys.readouterr().out.split() == ["batch_2", "batch_10"]


def test_partitions_add_needs_dagster_home(project, monkeypatch):
    _, _, module = project
    monkeypatch.delenv("DAGSTER_HOME")
    with pytest.raises(SystemExit, match="DAGSTER_HOME is not set"):
        cli(["partitions", "add", f"{module}:SPEC", "batch_1"])


def test_dagster_asset_materialize_of_a_dynamic_partition_works_once_added(project):
    """The documented path: the Dagster CLI refuses an unregistered key; after
    ``dcai-assets partitions add`` the same command materializes it."""
    root, spec, module = project
    land(spec, ["batch_1"])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(Path(__file__).resolve().parents[1])])}
    dagster = Path(sys.executable).with_name("dagster")
    command = [str(dagster), "asset", "materialize", "-m", module, "--select", "readings/raw_data"]

    before = subprocess.run([*command, "--partition", "batch_1"], env=env, capture_output=True, text=True)
    assert before.returncode != 0
    assert "containing the passed partition key `batch_1`" in before.stderr

    assert cli(["partitions", "add", f"{module}:SPEC", "batch_1"]) == 0
    after = subprocess.run([*command, "--partition", "batch_1"], env=env, capture_output=True, text=True)
    assert after.returncode == 0, after.stderr[-2000:]
    assert (root / "lake" / "readings" / "raw_data" / "batch_1.parquet").exists()


def test_the_previous_partition_of_the_drift_check_is_the_previous_month_not_the_previous_file(
    tmp_path, resources
):
    landed = ["2014-02", "2013-01", "2013-05"]  # registration order
    spec = make_spec(tmp_path, DynamicPartitions(), landed)
    defs = dg.Definitions.merge(build_definitions(spec), dg.Definitions(resources=resources))
    with dg.instance_for_test() as instance:
        compared = {}
        for key in landed:
            land(spec, [key])
            landing_sensor_tick(defs, instance)
            result = defs.resolve_job_def("readings_ingest").execute_in_process(
                instance=instance, partition_key=key
            )
            event = next(
                e.materialization
                for e in result.get_asset_materialization_events()
                if e.materialization.asset_key == VALIDATED
            )
            compared[key] = event.metadata["compared_with_partition"].value
        assert compared == {"2014-02": "none", "2013-01": "none", "2013-05": "2013-01"}
