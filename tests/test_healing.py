"""Healing: a run that failed for a passing reason (the tracking server unreachable, the lake's disk
really full) is re-run by the healing sensor once its wait is over, with no file re-landed and no
person; a failure that would recur (bad input, a bug) is left alone; a healed run is not re-run."""

from __future__ import annotations

import json
import time

import dagster as dg
import pytest

from dcai_assets import AutomationSpec, MlflowTracking
from dcai_assets.healing import (
    ATTEMPT_TAG,
    HEALS_TAG,
    ErrorLink,
    passing_cause,
    wait_before,
)
from tests.assets.test_model import MODEL, failing_pipeline, land_and_label, logistic_pipeline
from tests.assets.test_model import definitions as model_definitions
from tests.conftest import sensor_readings
from tests.disk import full_disk
from tests.test_model_registry_promotion_order import small_lake  # noqa: F401  (a fixture)

DAYS = ["2024-01-10", "2024-01-11", "2024-01-12"]
UNREACHABLE = MlflowTracking(
    tracking_uri="http://127.0.0.1:9", max_retries=2, retry_wait_seconds=0.1, request_timeout_seconds=2
)


@pytest.fixture(autouse=True)
def unreachable_fails_fast(monkeypatch):
    """MLflow's own HTTP retries (with their backoff) left out: the tracking resource's bounded
    retries still run, against a port where nothing listens."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")


def definitions(spec, resources, tracking, *, heal_after: float | None = 0.0, pipeline=logistic_pipeline):
    automation = AutomationSpec(heal_after_seconds=heal_after, heal_attempts=2)
    return model_definitions(spec, resources, tracking, pipeline=pipeline, automation=automation)


def evaluate(defs: dg.Definitions, instance: dg.DagsterInstance):
    sensor = defs.get_sensor_def(healing_sensor_name_of(defs))
    return sensor.evaluate_tick(dg.build_sensor_context(instance=instance, definitions=defs))


def tick(defs: dg.Definitions, instance: dg.DagsterInstance) -> list[dg.RunRequest]:
    return list(evaluate(defs, instance).run_requests)


def healing_sensor_name_of(defs: dg.Definitions) -> str:
    return next(s.name for s in defs.sensors if s.name.endswith("_healing_sensor"))


def run(defs, instance, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    """The request run as the daemon would: in the sensor's job, named for the UI."""
    sensor = defs.get_sensor_def(healing_sensor_name_of(defs))
    assert sensor.job_name == "readings_heal"
    job = defs.resolve_job_def(request.job_name or sensor.job_name)
    return job.execute_in_process(
        instance=instance,
        asset_selection=list(request.asset_selection),
        partition_key=request.partition_key,
        tags=request.tags,
        raise_on_error=False,
    )


def failed_retrain(defs, instance) -> dg.ExecuteInProcessResult:
    result = defs.resolve_job_def("readings_train").execute_in_process(
        instance=instance, raise_on_error=False
    )
    assert not result.success
    return result


def test_a_retrain_failed_on_an_unreachable_tracking_server_is_healed_once_it_answers(
    readings_spec, resources, landing, tracking
):
    working = definitions(readings_spec, resources, tracking)
    down = definitions(readings_spec, resources, UNREACHABLE)
    with dg.instance_for_test() as instance:
        land_and_label(working, instance, landing, DAYS)
        failed_retrain(down, instance)
        assert len(tick(working, instance)) == 1
        retrained = working.resolve_job_def("readings_train").execute_in_process(instance=instance)
        assert tick(working, instance) == []  # the next retrain did what the failed one set out to

        failed = failed_retrain(down, instance)
        (request,) = tick(working, instance)
        assert request.asset_selection == [MODEL] and request.partition_key is None
        assert request.tags[HEALS_TAG] == failed.run_id and request.tags[ATTEMPT_TAG] == "1"
        trigger = request.tags["dcai/trigger"]
        assert "healing: attempt 1 of 2" in trigger and "did not answer" in trigger, trigger
        assert tick(working, instance) == [request]  # same run key: Dagster launches it once
        healed = run(working, instance, request)
        assert healed.success and healed.run_id != retrained.run_id
        assert instance.get_latest_materialization_event(MODEL).run_id == healed.run_id
        assert tick(working, instance) == []  # healed: nothing more


def test_healing_waits_longer_after_each_failed_attempt_and_gives_up_after_the_last(
    readings_spec, resources, landing, tracking
):
    with dg.instance_for_test() as instance:
        land_and_label(definitions(readings_spec, resources, tracking), instance, landing, DAYS)
        down = definitions(readings_spec, resources, UNREACHABLE)
        failed_retrain(down, instance)
        later = evaluate(definitions(readings_spec, resources, tracking, heal_after=3600), instance)
        assert not later.run_requests and "(1 waiting, 0 given up" in later.skip_message, later.skip_message
        for attempt in (1, 2):  # the server still down: each healing run fails the same way
            (request,) = tick(down, instance)
            assert request.tags[ATTEMPT_TAG] == str(attempt)
            assert not run(down, instance, request).success
        done = evaluate(down, instance)  # heal_attempts=2: given up, the failure stays
        assert not done.run_requests and "(0 waiting, 1 given up" in done.skip_message, done.skip_message


def test_a_partition_failed_on_a_full_disk_is_healed_when_there_is_room_again(
    readings_spec,
    resources,
    landing,
    tracking,
    small_lake,  # noqa: F811
):
    defs = definitions(readings_spec, resources, tracking)
    with dg.instance_for_test() as instance:
        land_and_label(defs, instance, landing, DAYS[:2])
        sensor_readings(DAYS[2]).to_csv(landing / f"{DAYS[2]}.csv", index=False)
        ingest = defs.resolve_job_def("readings_ingest")
        with full_disk(small_lake):
            failed = ingest.execute_in_process(instance=instance, partition_key=DAYS[2], raise_on_error=False)
            assert not failed.success
            (request,) = tick(defs, instance)
        assert request.partition_key == DAYS[2] and request.tags[HEALS_TAG] == failed.run_id
        assert "No space left on device" in request.tags["dcai/trigger"], request.tags
        assert run(defs, instance, request).success
        assert DAYS[2] in instance.get_materialized_partitions(dg.AssetKey(["readings", "validated_data"]))
        assert tick(defs, instance) == []

        # A run over a range of partitions (a backfill's) is healed as the same range.
        ranged = {
            "dagster/asset_partition_range_start": DAYS[0],
            "dagster/asset_partition_range_end": DAYS[2],
        }
        with full_disk(small_lake):
            backfill = ingest.execute_in_process(instance=instance, tags=ranged, raise_on_error=False)
            assert not backfill.success
        (request,) = tick(defs, instance)
        assert request.partition_key is None and request.tags[HEALS_TAG] == backfill.run_id
        assert {k: request.tags[k] for k in ranged} == ranged
        assert run(defs, instance, request).success
        assert tick(defs, instance) == []


def test_a_failure_that_would_recur_is_not_healed(readings_spec, resources, landing, tracking):
    defs = definitions(readings_spec, resources, tracking, pipeline=failing_pipeline)
    with dg.instance_for_test() as instance:
        land_and_label(defs, instance, landing, DAYS)
        failed_retrain(defs, instance)  # the pipeline cannot fit a text column: a bug, not a passing cause
        assert tick(defs, instance) == []


@pytest.mark.parametrize(
    ("chain", "cause"),
    [
        (
            [ErrorLink("OSError", "[Errno 28] No space left on device: 'lake/x.parquet'")],
            "[Errno 28] No space",
        ),
        (
            [
                ErrorLink("DagsterExecutionStepExecutionError", "x"),
                ErrorLink("ConnectionRefusedError", "refused"),
            ],
            "refused",
        ),
        ([ErrorLink("TrackingUnavailableError", "MLflow tracking at 'h' did not answer")], "did not answer"),
        ([ErrorLink("DataInputError", "file 'a.csv': [Errno 5] read error; expected CSV")], None),
        ([ErrorLink("ValueError", "could not convert string to float: 'x'")], None),
        ([ErrorLink("OSError", "[Errno 2] No such file or directory: 'a.csv'")], None),
        ([], None),
    ],
)
def test_which_causes_pass(chain, cause):
    found = passing_cause(chain)
    assert (found is None) if cause is None else (cause in found), found


def test_the_wait_doubles_up_to_the_longest():
    assert [wait_before(a, 300, 3600) for a in (1, 2, 3, 4, 5)] == [300, 600, 1200, 2400, 3600]
    with pytest.raises(ValueError, match="attempt: 0; expected >= 1"):
        wait_before(0, 300, 3600)
    with pytest.raises(ValueError, match="heal_after_seconds: -1; expected >= 0 or None"):
        AutomationSpec(heal_after_seconds=-1)


def test_a_settled_failure_is_remembered_in_the_cursor_and_not_looked_at_again(
    readings_spec, resources, landing, tracking
):
    broken = definitions(readings_spec, resources, tracking, pipeline=failing_pipeline)
    down = definitions(readings_spec, resources, UNREACHABLE)
    working = definitions(readings_spec, resources, tracking)
    sensor = working.get_sensor_def(healing_sensor_name_of(working))

    def evaluate_with(cursor: str | None):
        context = dg.build_sensor_context(instance=instance, definitions=working, cursor=cursor)
        return sensor.evaluate_tick(context)

    with dg.instance_for_test() as instance:
        land_and_label(working, instance, landing, DAYS)
        bug = failed_retrain(broken, instance)  # the pipeline cannot fit a text column: would recur
        first = evaluate_with(None)
        assert not first.run_requests
        assert json.loads(first.cursor)["settled"][bug.run_id][1] == "settled"

        outage = failed_retrain(down, instance)  # passing: healed unless the cursor says settled
        (request,) = evaluate_with(first.cursor).run_requests
        assert request.tags[HEALS_TAG] == outage.run_id
        stored = json.loads(first.cursor)
        stored["settled"][outage.run_id] = [time.time(), "settled"]
        assert not evaluate_with(json.dumps(stored)).run_requests  # its logs are not read again

        # A run whose process died (no step failed) is Dagster's run retries' to start again; a
        # retry may still fail for a passing reason, so it is never settled.
        crashed = instance.create_run_for_job(
            working.resolve_job_def("readings_train"), asset_selection=frozenset({MODEL})
        )
        instance.report_run_failed(crashed)
        assert crashed.run_id not in json.loads(evaluate_with(first.cursor).cursor)["settled"]

        old = {"settled": {"gone": [time.time() - 3 * 24 * 3600, "gave up"]}}
        beyond = evaluate_with(json.dumps(old))  # older than the two-day horizon: forgotten
        assert "gone" not in json.loads(beyond.cursor)["settled"]
