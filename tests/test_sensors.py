"""The landing sensor over several ticks: one run per new or changed file, no duplicates, a cursor
that survives restarts, and bad files reported once and skipped."""

from __future__ import annotations

import json
import os

import dagster as dg

from dcai_assets import ArtifactStore, build_definitions
from dcai_assets.landing_state import handled
from dcai_assets.sensors import scan_landing_directory
from tests.conftest import sensor_readings


def tick(spec, instance, cursor=None) -> dg.SensorExecutionData:
    """One sensor evaluation, as the daemon does it, on freshly loaded definitions (a restart)."""
    defs = dg.Definitions.merge(
        build_definitions(spec),
        dg.Definitions(resources={"artifacts": ArtifactStore(base_dir=str(spec.source.path))}),
    )
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, definitions=defs, instance_ref=instance.get_ref()
    )
    return defs.resolve_sensor_def("readings_landing_sensor").evaluate_tick(context)


def write_day(landing, day: str) -> None:
    sensor_readings(day).to_csv(landing / f"{day}.csv", index=False)


def test_one_run_per_new_file_and_none_on_the_next_tick(readings_spec, landing):
    write_day(landing, "2024-01-10")
    write_day(landing, "2024-01-11")
    with dg.instance_for_test() as instance:
        first = tick(readings_spec, instance)
        assert [r.partition_key for r in first.run_requests] == ["2024-01-10", "2024-01-11"]
        assert all(r.run_key.startswith(f"{r.partition_key}.csv:") for r in first.run_requests)
        second = tick(readings_spec, instance, first.cursor)
        assert second.run_requests == []


def test_a_new_file_after_a_restart_is_the_only_one_requested(readings_spec, landing):
    write_day(landing, "2024-01-10")
    with dg.instance_for_test() as instance:
        cursor = tick(readings_spec, instance).cursor
        write_day(landing, "2024-01-12")
        later = tick(readings_spec, instance, cursor)  # new definitions, stored cursor
        assert [r.partition_key for r in later.run_requests] == ["2024-01-12"]


def test_changed_content_gets_a_new_run_key_but_a_touched_file_does_not(readings_spec, landing):
    write_day(landing, "2024-01-10")
    path = landing / "2024-01-10.csv"
    with dg.instance_for_test() as instance:
        first = tick(readings_spec, instance)
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
        touched = tick(readings_spec, instance, first.cursor)
        assert touched.run_requests == []
        path.write_text(path.read_text().replace("north", "North"))
        changed = tick(readings_spec, instance, touched.cursor)
        assert len(changed.run_requests) == 1
        assert changed.run_requests[0].partition_key == "2024-01-10"
        assert changed.run_requests[0].run_key != first.run_requests[0].run_key


def test_bad_files_are_reported_once_and_do_not_stop_good_ones(readings_spec, landing):
    write_day(landing, "2024-01-10")
    (landing / "notes.txt").write_text("hello")
    (landing / "yesterday.csv").write_text("a,b\n1,2\n")
    (landing / "2023-12-31.csv").write_text("a,b\n1,2\n")  # before the partitions start
    write_day(landing, "2024-01-13")
    sensor_readings("2024-01-13").to_parquet(landing / "2024-01-13.parquet")  # two files, one day
    cursor = {"files": {}, "rejected": {}, "keys": []}
    requests, _, problems = scan_landing_directory(readings_spec, cursor)
    assert [r.partition_key for r in requests] == ["2024-01-10"]
    text = "\n".join(problems)
    assert "file 'notes.txt'" in text and "unsupported file type '.txt'" in text
    assert "file 'yesterday.csv'" in text and "YYYY-MM-DD" in text
    assert "file '2023-12-31.csv'" in text and "outside the partitions' range" in text
    assert "2 files hold this partition" in text
    assert len(problems) == 5
    cursor = json.loads(json.dumps(cursor))  # as stored between ticks
    _, _, again = scan_landing_directory(readings_spec, cursor)
    assert again == []  # reported once, not on every tick


def test_sensor_skips_when_nothing_is_new(readings_spec, landing):
    with dg.instance_for_test() as instance:
        result = tick(readings_spec, instance)
        assert result.run_requests == []
        assert result.skip_message == "no new or changed partitions"


def test_a_file_for_a_day_that_has_not_begun_waits_for_a_later_tick(readings_spec, landing):
    from dataclasses import replace
    from datetime import date, timedelta

    from dcai_assets.spec import DailyPartitions

    open_ended = replace(readings_spec, partitioning=DailyPartitions(start="2024-01-01"))
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    write_day(landing, "2024-01-10")
    sensor_readings(tomorrow).to_csv(landing / f"{tomorrow}.csv", index=False)
    with dg.instance_for_test() as instance:
        result = tick(open_ended, instance)
        assert [r.partition_key for r in result.run_requests] == ["2024-01-10"]
        assert handled(open_ended, instance, result.cursor) == ["2024-01-10.csv"]  # tomorrow: later


def test_partitions_sync_discovers_callable_source_keys_oldest_first_and_names_bad_ones(tmp_path):
    from dcai_assets import CallableSource, DatasetSpec
    from dcai_assets.sensors import discover_partition_keys
    from dcai_assets.spec import DynamicPartitions

    spec = DatasetSpec(
        name="readings",
        source=CallableSource(load=sensor_readings, list_partitions=lambda: ["2014-02", "../x", "2013-01"]),
        partitioning=DynamicPartitions(),
        schema_path=tmp_path / "s.yaml",
    )
    keys, problems = discover_partition_keys(spec)
    assert keys == ["2013-01", "2014-02"]
    assert len(problems) == 1 and "partition '../x'" in problems[0]


def test_a_callable_key_whose_window_has_not_ended_waits_for_a_later_tick(tmp_path):
    from datetime import date, timedelta

    from dcai_assets import CallableSource, DatasetSpec
    from dcai_assets.spec import DailyPartitions

    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    spec = DatasetSpec(
        name="readings",
        source=CallableSource(load=sensor_readings, list_partitions=lambda: ["2024-01-10", tomorrow]),
        partitioning=DailyPartitions(start="2024-01-01"),
        schema_path=tmp_path / "s.yaml",
    )
    with dg.instance_for_test() as instance:
        defs = dg.Definitions.merge(
            build_definitions(spec),
            dg.Definitions(resources={"artifacts": ArtifactStore(base_dir=str(tmp_path))}),
        )
        context = dg.build_sensor_context(instance=instance, definitions=defs)
        result = defs.resolve_sensor_def("readings_landing_sensor").evaluate_tick(context)
        assert [r.partition_key for r in result.run_requests] == ["2024-01-10"]
        assert handled(spec, instance, result.cursor) == ["2024-01-10"]  # tomorrow is seen again later


# --- the cursor stays small; what the sensor has handled lives in the landing state store ---


def wide_spec(readings_spec):
    """The readings spec over four years of days, room for a thousand files."""
    from dataclasses import replace

    from dcai_assets.spec import DailyPartitions

    return replace(readings_spec, partitioning=DailyPartitions(start="2020-01-01", end="2024-01-01"))


def write_tiny_days(landing, count: int, start: str = "2020-01-01") -> list[str]:
    """``count`` small day files (the sensor hashes them; it does not parse them)."""
    from datetime import date, timedelta

    first = date.fromisoformat(start)
    days = [(first + timedelta(days=i)).isoformat() for i in range(count)]
    for day in days:
        (landing / f"{day}.csv").write_text(f"reading_id,site\n{day}-0,north\n")
    return days


def test_the_cursor_stays_small_however_many_files_have_landed(readings_spec, landing):
    spec = wide_spec(readings_spec)
    write_tiny_days(landing, 20)
    with dg.instance_for_test() as instance:
        few = tick(spec, instance)
        write_tiny_days(landing, 1000)
        many = tick(spec, instance, few.cursor)
        assert len(many.run_requests) == 980  # the 20 seen before are not requested again
        assert len(many.cursor) < 200, f"the cursor holds {len(many.cursor)} bytes for 1,000 files"
        assert abs(len(many.cursor) - len(few.cursor)) <= 8  # constant, not per file
        assert tick(spec, instance, many.cursor).run_requests == []


def test_a_tick_whose_cursor_was_never_stored_leaves_its_files_unhandled(readings_spec, landing):
    """The daemon stores the cursor only once a tick's runs are submitted: a tick lost before
    that (crash, failed submission) must not have marked its files handled."""
    write_day(landing, "2024-01-10")
    with dg.instance_for_test() as instance:
        stored = tick(readings_spec, instance).cursor
        write_day(landing, "2024-01-11")
        lost = tick(readings_spec, instance, stored)  # evaluated, but its cursor never stored
        assert [r.partition_key for r in lost.run_requests] == ["2024-01-11"]
        again = tick(readings_spec, instance, stored)  # the daemon retries from the stored cursor
        assert [r.run_key for r in again.run_requests] == [r.run_key for r in lost.run_requests]
        assert tick(readings_spec, instance, again.cursor).run_requests == []


def test_files_handled_before_a_restart_stay_handled_after_it(readings_spec, landing):
    write_day(landing, "2024-01-10")
    write_day(landing, "2024-01-11")
    with dg.instance_for_test() as instance:
        cursor = tick(readings_spec, instance).cursor
        cursor = tick(readings_spec, instance, cursor).cursor or cursor  # a quiet tick
    write_day(landing, "2024-01-12")
    with dg.instance_for_test() as restarted:  # new process, new definitions, stored cursor
        later = tick(readings_spec, restarted, cursor)
        assert [r.partition_key for r in later.run_requests] == ["2024-01-12"]


def test_an_old_json_cursor_is_migrated_on_first_read(readings_spec, landing):
    from dcai_assets.core.reading import file_digest

    write_day(landing, "2024-01-10")
    write_day(landing, "2024-01-11")
    (landing / "notes.txt").write_text("hello")
    old = landing / "2024-01-10.csv"
    stat = old.stat()
    old_cursor = json.dumps(
        {
            "files": {old.name: [stat.st_size, stat.st_mtime_ns, file_digest(old)]},
            "rejected": {"notes.txt": [5, (landing / "notes.txt").stat().st_mtime_ns]},
            "keys": [],
        }
    )
    with dg.instance_for_test() as instance:
        result = tick(readings_spec, instance, old_cursor)
        assert [r.partition_key for r in result.run_requests] == ["2024-01-11"]  # 01-10 was handled
        assert "files" not in json.loads(result.cursor) and len(result.cursor) < 200
        retried = tick(readings_spec, instance, old_cursor)  # the migrating tick was lost: same again
        assert [r.run_key for r in retried.run_requests] == [r.run_key for r in result.run_requests]
        assert tick(readings_spec, instance, retried.cursor).run_requests == []


def test_files_removed_from_the_landing_directory_are_pruned_from_the_state(readings_spec, landing):
    write_day(landing, "2024-01-10")
    write_day(landing, "2024-01-11")
    with dg.instance_for_test() as instance:
        cursor = tick(readings_spec, instance).cursor
        (landing / "2024-01-10.csv").unlink()
        cursor = tick(readings_spec, instance, cursor).cursor
        cursor = tick(readings_spec, instance, cursor).cursor or cursor  # commits the prune
        assert handled(readings_spec, instance, cursor) == ["2024-01-11.csv"]


def test_the_first_evaluation_processes_files_already_there_by_default(readings_spec, landing):
    write_day(landing, "2024-01-10")
    write_day(landing, "2024-01-11")
    assert readings_spec.source.existing_files == "process"
    with dg.instance_for_test() as instance:
        first = tick(readings_spec, instance)
        assert [r.partition_key for r in first.run_requests] == ["2024-01-10", "2024-01-11"]


def test_existing_files_skip_records_them_with_a_logged_count_and_runs_only_new_ones(
    readings_spec, landing, capfd
):
    from dataclasses import replace

    from dcai_assets import LandingDirectory

    spec = replace(readings_spec, source=LandingDirectory(path=landing, existing_files="skip"))
    write_day(landing, "2024-01-10")
    write_day(landing, "2024-01-11")
    with dg.instance_for_test() as instance:
        first = tick(spec, instance)
        assert first.run_requests == []
        logged = capfd.readouterr().err  # the sensor's log, as the tick's log in the UI
        assert "2 files already in the landing directory" in logged
        assert "2024-01-10.csv, 2024-01-11.csv" in logged
        write_day(landing, "2024-01-12")
        later = tick(spec, instance, first.cursor)
        assert [r.partition_key for r in later.run_requests] == ["2024-01-12"]
        path = landing / "2024-01-10.csv"
        path.write_text(path.read_text().replace("north", "North"))  # a skipped file changes
        changed = tick(spec, instance, later.cursor)
        assert [r.partition_key for r in changed.run_requests] == ["2024-01-10"]


def test_existing_files_must_be_process_or_skip(landing):
    import pytest

    from dcai_assets import LandingDirectory

    with pytest.raises(ValueError, match=r"LandingDirectory.existing_files: 'ignore'.*'process'.*'skip'"):
        LandingDirectory(path=landing, existing_files="ignore")


def test_callable_source_keys_are_remembered_outside_the_cursor(tmp_path):
    from dcai_assets import CallableSource, DatasetSpec
    from dcai_assets.spec import DynamicPartitions

    listed = [f"batch_{i}" for i in range(300)]
    spec = DatasetSpec(
        name="readings",
        source=CallableSource(load=sensor_readings, list_partitions=lambda: list(listed)),
        partitioning=DynamicPartitions(),
        schema_path=tmp_path / "s.yaml",
    )
    with dg.instance_for_test() as instance:
        first = tick_callable(spec, instance, tmp_path)
        assert len(first.run_requests) == 300 and len(first.cursor) < 200
        listed.append("batch_300")
        later = tick_callable(spec, instance, tmp_path, first.cursor)
        assert [r.partition_key for r in later.run_requests] == ["batch_300"]


def tick_callable(spec, instance, tmp_path, cursor=None) -> dg.SensorExecutionData:
    defs = dg.Definitions.merge(
        build_definitions(spec),
        dg.Definitions(resources={"artifacts": ArtifactStore(base_dir=str(tmp_path))}),
    )
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, definitions=defs, instance_ref=instance.get_ref()
    )
    return defs.resolve_sensor_def("readings_landing_sensor").evaluate_tick(context)


def test_a_lost_state_file_is_logged_and_every_file_is_requested_again_with_its_run_key(
    readings_spec, landing, capfd
):
    import shutil

    write_day(landing, "2024-01-10")
    with dg.instance_for_test() as instance:
        first = tick(readings_spec, instance)
        shutil.rmtree(landing / ".dcai")
        again = tick(readings_spec, instance, first.cursor)
        assert [r.run_key for r in again.run_requests] == [r.run_key for r in first.run_requests]
        assert "every file is requested again" in capfd.readouterr().err


def test_a_cursor_the_sensor_did_not_write_is_refused_by_name(tmp_path):
    import pytest

    from dcai_assets.landing_state import LandingStateStore

    with pytest.raises(ValueError, match=r"landing sensor cursor 'not json'.*reset the cursor"):
        LandingStateStore(tmp_path / "state.sqlite").open("not json")


def test_a_schema_change_re_runs_each_blocked_day_once_and_no_other(readings_spec, landing, resources):
    """A null burst blocks a day; the schema is then relaxed to accept it (as an operator would
    after deciding the nulls are fine): the next tick re-runs that day, and only that day, once,
    saying why; the day then validates, and later ticks request nothing more."""
    import yaml

    write_day(landing, "2024-01-10")
    bad = sensor_readings("2024-01-11")
    bad.loc[:79, "humidity"] = None
    bad.to_csv(landing / "2024-01-11.csv", index=False)
    validated = dg.AssetKey(["readings", "validated_data"])

    def run(spec, instance, request) -> bool:
        defs = dg.Definitions.merge(build_definitions(spec), dg.Definitions(resources=resources))
        job = defs.resolve_job_def(request.job_name)
        return job.execute_in_process(
            instance=instance, partition_key=request.partition_key, tags=request.tags, raise_on_error=False
        ).success

    with dg.instance_for_test() as instance:
        first = tick(readings_spec, instance)
        assert [run(readings_spec, instance, r) for r in first.run_requests] == [True, False]
        quiet = tick(readings_spec, instance, first.cursor)
        assert quiet.run_requests == []  # same schema: a blocked day waits for a fix

        schema = yaml.safe_load(readings_spec.schema_path.read_text())
        humidity = next(c for c in schema["columns"] if c["name"] == "humidity")
        humidity.update(nullable=True, max_null_fraction=0.5)
        readings_spec.schema_path.write_text(yaml.safe_dump(schema, sort_keys=False))
        fixed = tick(readings_spec, instance, quiet.cursor)  # reloaded definitions: the new schema
        assert [r.partition_key for r in fixed.run_requests] == ["2024-01-11"]
        request = fixed.run_requests[0]
        assert request.tags["dcai/trigger"].startswith("schema changed (")
        assert request.tags["dcai/trigger"].endswith("re-validating the blocked partition")
        assert request.tags["dcai/file"] == "2024-01-11.csv"
        assert run(readings_spec, instance, request)
        status = instance.get_status_by_partition(
            validated,
            ["2024-01-10", "2024-01-11"],
            dg.DailyPartitionsDefinition("2024-01-01", end_date="2024-03-01"),
        )
        assert set(status.values()) == {dg.AssetPartitionStatus.MATERIALIZED}
        assert tick(readings_spec, instance, fixed.cursor).run_requests == []


def test_declaring_a_column_as_text_re_reads_every_stored_day_once(readings_spec, landing, resources):
    """Zero-padded codes were read as numbers (the schema said int64); the schema then declares
    the column as text: the next tick re-runs each stored day once, saying why, and the codes are
    then kept as written; later ticks request nothing more."""
    import pandas as pd
    import yaml

    days = ["2024-01-10", "2024-01-11"]
    for day in days:
        frame = sensor_readings(day)
        frame.assign(count=[f"{c:03d}" for c in frame["count"]]).to_csv(landing / f"{day}.csv", index=False)

    def run(request) -> bool:
        defs = dg.Definitions.merge(build_definitions(readings_spec), dg.Definitions(resources=resources))
        job = defs.resolve_job_def(request.job_name)
        key, tags = request.partition_key, request.tags
        result = job.execute_in_process(instance=instance, partition_key=key, tags=tags, raise_on_error=False)
        return result.success

    with dg.instance_for_test() as instance:
        first = tick(readings_spec, instance)
        assert all(run(r) for r in first.run_requests) and len(first.run_requests) == 2
        assert tick(readings_spec, instance, first.cursor).run_requests == []

        schema = yaml.safe_load(readings_spec.schema_path.read_text())
        count = next(c for c in schema["columns"] if c["name"] == "count")
        count.update(dtype="string", min=None, max=None)
        readings_spec.schema_path.write_text(yaml.safe_dump(schema, sort_keys=False))
        changed = tick(readings_spec, instance, first.cursor)
        assert [r.partition_key for r in changed.run_requests] == days
        trigger = changed.run_requests[0].tags["dcai/trigger"]
        assert trigger.startswith("the schema's text columns changed (raw_data raw-v2-")
        assert trigger.endswith("re-reading the file")
        assert all(run(r) for r in changed.run_requests)
        lake = pd.read_parquet(landing.parent / "lake" / "readings" / "validated_data" / f"{days[0]}.parquet")
        assert lake["count"].str.len().eq(3).all()  # '007' as written
        assert tick(readings_spec, instance, changed.cursor).run_requests == []

        text = readings_spec.schema_path.read_text()
        readings_spec.schema_path.write_text(text + "\nnot: [valid")  # a typo mid-edit
        broken = tick(readings_spec, instance, changed.cursor)
        assert broken.run_requests == []  # nothing is said of the text columns: nothing re-read
        assert json.loads(broken.cursor)["read"] == json.loads(changed.cursor)["read"]
        readings_spec.schema_path.write_text(text)
        assert tick(readings_spec, instance, broken.cursor).run_requests == []


def test_the_first_tick_records_the_schema_and_re_runs_nothing(readings_spec, landing):
    write_day(landing, "2024-01-10")
    with dg.instance_for_test() as instance:
        first = tick(readings_spec, instance)
        assert json.loads(first.cursor)["schema"]
        assert [r.partition_key for r in first.run_requests] == ["2024-01-10"]
