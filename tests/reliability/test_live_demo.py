"""The demo running under the daemon, crashed and faulted again and again; one live instance
(tests/reliability/conftest.py), bootstrapped once, the scenarios in order on the same pipeline.
One module, so that one pytest-xdist worker runs them all (`--dist loadfile`).

kill -9 at the worst moments: the run worker in the middle of each stage (one new day for the
four stage kills), then the code server the daemon launches runs from and the daemon itself.
After each the pipeline must heal with no person: the killed run is retried, nothing half-done is
visible, the champion loads, no registry slot stays held, every version has a gate verdict, and a
new day landing afterwards still becomes a new model and new importance scores.

Faults of the world around the pipeline, mid-run: the MLflow tracking server goes down, and the
lake's disk fills up (a real tmpfs of its own, really full: ENOSPC from the kernel). Each must
give a clear error naming what failed, leave nothing half-done (no visible partial file, no
registry version without a gate verdict, no champion change), and the pipeline must resume by
itself once the fault clears."""

from __future__ import annotations

import time

import dagster as dg
import pytest
from mlflow import MlflowClient

from tests.disk import full_disk
from tests.reliability.harness import (
    MODEL,
    RECOVERY_TIMEOUT,
    Pipeline,
    code_server_pid,
    failure_message,
    invariant_violations,
    kill9,
    new_day_to_model_and_scores,
    not_stuck,
    process,
    restart_daemon,
    wait_for_step_start,
    wait_settled,
    wait_until_more,
)

pytestmark = pytest.mark.reliability

# (what is killed, the step it is killed in, the asset whose new materialization means recovered)
STAGES = [
    ("ingest", "flights_validation", "validated_data"),
    ("labeling", "labeled_set", "labeled_set"),
    ("train", "trained_model", "trained_model"),
    ("importance", "importance_scores", "importance_scores"),
]


def assert_invariants(pipeline: Pipeline) -> None:
    if not pipeline.stuck:  # a stuck pipeline never settles: report what is wrong as it stands
        wait_settled(pipeline, RECOVERY_TIMEOUT)
    problems = invariant_violations(pipeline)
    assert not problems, "after recovery:\n" + "\n".join(problems)


def test_kill9_of_the_label_model_worker_mid_fit_is_retried_and_leaves_nothing_half_done(pipeline):
    run_id, seconds, error = pipeline.label_model_kill
    assert error is None, f"the label model never came back after its worker was killed: {error}"
    print(f"RELIABILITY: kill label_model worker (run {run_id[:8]}) mid-fit: recovered in {seconds:.1f} s")
    instance = pipeline.instance
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
    retries = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/parent_run_id": run_id}))
    assert [r.status for r in retries] == [dg.DagsterRunStatus.SUCCESS]
    assert_invariants(pipeline)


@pytest.fixture(scope="module")
def cascade(pipeline) -> dict:
    """One new day, whose runs are killed in each stage in turn (in STAGES order)."""
    return {"after": time.time()}


@pytest.mark.parametrize(("target", "step", "asset"), STAGES, ids=[s[0] for s in STAGES])
def test_kill9_of_a_run_worker_mid_stage_is_retried_to_success(pipeline, cascade, target, step, asset):
    not_stuck(pipeline)
    if target == "ingest":
        pipeline.land(1)
    before = pipeline.materializations(asset)
    run_id, pid = wait_for_step_start(pipeline, step, timeout=RECOVERY_TIMEOUT, after=cascade["after"])
    kill9(pid)
    cascade["after"] = time.time()
    try:
        seconds = wait_until_more(pipeline, asset, before, timeout=RECOVERY_TIMEOUT)
    except TimeoutError:
        pipeline.stuck = f"the kill of the {target} worker (run {run_id})"
        raise
    print(
        f"RELIABILITY: kill {target} worker (run {run_id[:8]}) mid-step {step}: recovered in {seconds:.1f} s"
    )
    killed = pipeline.instance.get_run_by_id(run_id)
    assert killed.status == dg.DagsterRunStatus.FAILURE, f"the killed run {run_id} is {killed.status}"


def test_after_the_stage_kills_every_invariant_holds(pipeline, cascade):
    assert_invariants(pipeline)


def test_kill9_of_the_code_server_and_then_the_daemon_mid_run_heals_without_a_person(pipeline):
    """The code server the daemon launches runs from is killed while a day validates, then the
    daemon itself while the day's model trains; a supervisor restarts the daemon (only the daemon:
    it starts its own code server). The day still ends in a new model and importance scores."""
    not_stuck(pipeline)
    daemon = process(pipeline.live, "daemon")
    models = pipeline.materializations("trained_model")
    scores = pipeline.materializations("importance_scores")
    after = time.time()
    pipeline.land(1)
    wait_for_step_start(pipeline, "flights_validation", timeout=RECOVERY_TIMEOUT, after=after)
    server = code_server_pid(daemon.pid)
    kill9(server)
    seconds = wait_until_more(
        pipeline, "labeled_set", pipeline.materializations("labeled_set"), RECOVERY_TIMEOUT
    )
    print(
        f"RELIABILITY: kill code_server (pid {server}) mid-validation: recovered in {seconds:.1f} s "
        "(day labeled)"
    )

    wait_for_step_start(pipeline, "trained_model", timeout=RECOVERY_TIMEOUT, after=after)
    kill9(daemon.pid)
    killed = time.monotonic()
    restart_daemon(pipeline.live)
    wait_until_more(pipeline, "trained_model", models, RECOVERY_TIMEOUT)
    wait_until_more(pipeline, "importance_scores", scores, RECOVERY_TIMEOUT)
    print(
        f"RELIABILITY: kill daemon (pid {daemon.pid}) mid-retrain, restarted at once: recovered in "
        f"{time.monotonic() - killed:.1f} s (new model and importance)"
    )
    assert_invariants(pipeline)


def test_after_the_kills_a_new_day_still_becomes_a_new_model_and_new_scores_by_itself(pipeline):
    """Catching up on its own: no manual step after all the kills above."""
    not_stuck(pipeline)
    seconds = new_day_to_model_and_scores(pipeline)
    print(f"RELIABILITY: after every kill, a new day to new model and importance: {seconds:.1f} s")
    assert_invariants(pipeline)


# Faults around the pipeline, after the kills.


def registry_state(pipeline: Pipeline) -> tuple[str, list[str]]:
    """The champion's version and every version of the model."""
    client = MlflowClient(pipeline.tracking_uri)
    champion = client.get_model_version_by_alias(MODEL, "champion").version
    return str(champion), sorted(str(v.version) for v in client.search_model_versions(f"name='{MODEL}'"))


def failed_train_run(pipeline: Pipeline, run_id: str) -> dg.DagsterRun:
    wait_settled(pipeline, RECOVERY_TIMEOUT)
    run = pipeline.instance.get_run_by_id(run_id)
    assert run.status == dg.DagsterRunStatus.FAILURE, f"run {run_id} under the fault ended {run.status}"
    return run


def resumes(pipeline: Pipeline, fault: str) -> None:
    """A new day after the fault cleared becomes a new model and importance scores by itself."""
    seconds = new_day_to_model_and_scores(pipeline)
    print(f"RELIABILITY: {fault} cleared: a new day to new model and importance in {seconds:.1f} s")
    wait_settled(pipeline, RECOVERY_TIMEOUT)
    problems = invariant_violations(pipeline)
    assert not problems, f"after {fault} cleared:\n" + "\n".join(problems)


def test_mlflow_down_mid_retrain_fails_clearly_changes_nothing_and_resumes_when_it_is_back(pipeline):
    not_stuck(pipeline)
    champion, versions = registry_state(pipeline)
    after = time.time()
    pipeline.land(1)
    run_id, _ = wait_for_step_start(pipeline, "trained_model", timeout=RECOVERY_TIMEOUT, after=after)
    pipeline.mlflow.stop()
    down = time.monotonic()
    try:
        failed_train_run(pipeline, run_id)
        print(f"RELIABILITY: MLflow down mid-retrain: run failed after {time.monotonic() - down:.1f} s")
        message = failure_message(pipeline, run_id)
    finally:
        pipeline.mlflow.start()
    assert "MLflow tracking at" in message and pipeline.tracking_uri in message, message
    assert registry_state(pipeline) == (champion, versions)  # nothing registered, champion unchanged
    resumes(pipeline, "MLflow down")


def test_lake_disk_full_mid_retrain_fails_clearly_changes_nothing_and_resumes_when_freed(pipeline):
    if not pipeline.lake_is_small_disk:
        pytest.skip("the lake's own small tmpfs needs mount rights (root); a full disk is not faked")
    not_stuck(pipeline)
    champion, versions = registry_state(pipeline)
    after = time.time()
    pipeline.land(1)
    run_id, _ = wait_for_step_start(pipeline, "trained_model", timeout=RECOVERY_TIMEOUT, after=after)
    with full_disk(pipeline.lake):
        full = time.monotonic()
        failed_train_run(pipeline, run_id)
        print(f"RELIABILITY: lake disk full mid-retrain: run failed after {time.monotonic() - full:.1f} s")
    message = failure_message(pipeline, run_id)
    assert "No space left on device" in message and "trained_model" in message, message
    assert registry_state(pipeline)[0] == champion, "the champion moved although the retrain failed"
    client = MlflowClient(pipeline.tracking_uri)
    for version in set(registry_state(pipeline)[1]) - set(versions):
        tags = client.get_model_version(MODEL, version).tags
        assert tags.get("dcai.gate") != "passed", f"version {version} of the failed retrain reads {tags}"
    resumes(pipeline, "lake disk full")
