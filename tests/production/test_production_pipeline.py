"""The production resource set for real: a Dagster instance on PostgreSQL (dagster-postgres, the
deploy/dagster.yaml of the recipe) and an MLflow tracking server with a Postgres backend store,
both on loopback. The demo runs there with the daemon queueing runs in parallel and the
importance valuation sharded over a multiprocess executor; its results equal those of the
embedded SQLite defaults, no run is lost, and two retrains racing each move the champion once."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from jobs.live_instance import PROJECT_DIR, REPOSITORY, LiveInstance, wait_for
from jobs.simulator import simulate
from tests.production.servers import MlflowServer, PostgresServer

pytestmark = pytest.mark.slow  # the full lane: a live instance (see pyproject.toml)

DAYS = [f"2013-02-0{d}" for d in range(1, 8)]  # seven days that pass validation
KEY = {
    name: dg.AssetKey(["flights", name])
    for name in ("validated_data", "labeled_set", "trained_model", "importance_scores")
}
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
MODEL = "flights_model"


@dataclass
class Deployment:
    """A finished demo: its live instance (None if it ran in process), lake and MLflow tracking URI."""

    live: LiveInstance | None
    lake: Path
    tracking_uri: str


def land_and_settle(live: LiveInstance, timeout: float = 1200) -> None:
    """Land the days and wait until the sensors' runs have labeled them, trained and scored. The
    ceiling is day-in-the-life's: about 170 s on a quiet 2-core machine, but in the full lane this
    fixture starts beside the reliability suite's live demo, and 480 s was passed at load 8-15 with
    no run failed (a failed run fails it at once, below)."""
    simulate(live.landing, DAYS[0], len(DAYS))
    instance = live.instance()

    def settled() -> bool:
        runs = instance.get_runs()
        failed = [r for r in runs if r.status == dg.DagsterRunStatus.FAILURE]
        if failed:  # every day passes validation: a failed run is a defect, say which at once
            raise AssertionError(
                f"run {failed[0].run_id} of {failed[0].job_name} failed; see {live.root}/logs"
            )
        return (
            instance.get_materialized_partitions(KEY["labeled_set"]) == set(DAYS)
            and instance.get_latest_materialization_event(KEY["importance_scores"]) is not None
            and all(r.status in FINISHED for r in runs)
        )

    wait_for(
        "importance scores of a model trained on every day, and no run left unfinished", settled, timeout
    )


# The same days through the demo's own in-process path (jobs.demo: a landing-sensor tick, the
# ingest runs, the label model fitted on every passing day, labeling, a retrain and re-scoring).
IN_PROCESS_ROUND = """
import sys
import dagster as dg
from jobs.demo import run_round
blocked, failed = run_round(dg.DagsterInstance.get(), sys.argv[1], int(sys.argv[2]))
sys.exit(f"blocked by a check: {blocked}; failed: {failed}" if blocked or failed else 0)
"""


@pytest.fixture(scope="module")
def local_round(tmp_path_factory):
    """The in-process reference run, started in the background; see ``local``. The production
    fixture asks for it first so that it runs beside the servers' start-up (mostly one process
    importing at a time, which leaves the other core idle)."""
    root = tmp_path_factory.mktemp("local")
    home, data = root / "home", root / "data"
    home.mkdir()
    shutil.copy(PROJECT_DIR / "resources" / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DCAI_", "MLFLOW_TRACKING"))}
    env.update(DAGSTER_HOME=str(home), DCAI_DATA_DIR=str(data), MLFLOW_DISABLE_TELEMETRY="true")
    log = root / "round.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", IN_PROCESS_ROUND, DAYS[0], str(len(DAYS))],
            cwd=PROJECT_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    yield process, data, log
    if process.poll() is None:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def local(local_round) -> Deployment:
    """The demo on its embedded defaults (SQLite instance and MLflow, in-process steps), run in
    process with no daemon: the reference the production results must equal. The same defaults
    under the daemon are tested in tests/e2e/test_day_in_the_life.py."""
    process, data, log = local_round
    returncode = process.wait(timeout=600)
    assert returncode == 0, log.read_text(errors="replace")[-3000:]
    return Deployment(None, data / "lake", f"sqlite:///{data / 'mlflow' / 'mlflow.db'}")


@pytest.fixture(scope="module")
def production(tmp_path_factory, local_round):
    """The demo with DCAI_ENV=production on Postgres and an MLflow server, still running."""
    root = tmp_path_factory.mktemp("production")
    with PostgresServer() as postgres:
        dagster_db, mlflow_db = postgres.create_database("dagster"), postgres.create_database("mlflow")
        with MlflowServer(mlflow_db, root / "mlflow-artifacts") as mlflow:
            lake = root / "lake"
            env = {
                "DCAI_ENV": "production",
                "DAGSTER_POSTGRES_URL": dagster_db,
                "MLFLOW_TRACKING_URI": mlflow.uri,
                "DCAI_LAKE_URL": lake.as_uri(),  # any fsspec URL: file:// here, s3:// in the cloud
                "DCAI_ARTIFACTS_URL": (root / "artifacts").as_uri(),
                "DCAI_LANDING_DIR": str(root / "data" / "landing"),
                "DCAI_MAX_CONCURRENT_STEPS": "2",
                "DCAI_IMPORTANCE_SHARDS": "2",
            }
            with LiveInstance(root, dagster_yaml=PROJECT_DIR / "deploy" / "dagster.yaml", env=env) as live:
                land_and_settle(live)
                yield Deployment(live, lake, mlflow.uri)


def step_intervals(instance: dg.DagsterInstance, run_id: str) -> dict[str, tuple[float, float]]:
    """(launch, end) time of every step of a run that succeeded, from its event log: from the
    moment the executor launched the step's worker process to the step's success."""
    starts, ends = {}, {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type_value == "STEP_WORKER_STARTING":
            starts[event.step_key] = entry.timestamp
        elif event.event_type_value == "STEP_SUCCESS":
            ends[event.step_key] = entry.timestamp
    return {key: (starts[key], ends[key]) for key in ends}


def launched_at(instance: dg.DagsterInstance, run_id: str) -> float:
    """When the run coordinator handed the run to the launcher (its RUN_STARTING event)."""
    return next(
        e.timestamp
        for e in instance.all_logs(run_id)
        if e.dagster_event is not None and e.dagster_event.event_type == dg.DagsterEventType.RUN_STARTING
    )


def overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    return min(a[1], b[1]) - max(a[0], b[0])


def test_the_demo_runs_on_postgres_and_an_mlflow_server_in_parallel_with_no_run_lost(production):
    instance = production.live.instance()
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    records = instance.get_run_records()
    assert {r.dagster_run.status for r in records} == {dg.DagsterRunStatus.SUCCESS}  # none lost or failed
    ingest = [r for r in records if r.dagster_run.job_name == "flights_ingest"]
    assert sorted(r.dagster_run.tags["dagster/partition"] for r in ingest) == DAYS  # one run per day
    assert instance.get_materialized_partitions(KEY["validated_data"]) == set(DAYS)
    # Runs in parallel: a second run was launched before the first ended (launch, not process
    # start, so a slow start on a loaded machine cannot hide it).
    spans = [(launched_at(instance, r.dagster_run.run_id), r.end_time) for r in records]
    assert max(overlap(a, b) for i, a in enumerate(spans) for b in spans[i + 1 :]) > 0
    scored = [r for r in records if KEY["importance_scores"] in (r.dagster_run.asset_selection or ())]
    steps = step_intervals(instance, scored[-1].dagster_run.run_id)
    shards = [v for k, v in steps.items() if "_shard_" in k]
    # The executor launched both shards' workers before either shard finished. (Whether the two
    # processes then overlapped in time depends on how fast a loaded machine starts them: in one
    # CI run the second worker's imports outlasted the first shard.)
    assert len(shards) == 2 and overlap(*shards) > 0
    client = MlflowClient(production.tracking_uri)
    versions = client.search_model_versions(f"name='{MODEL}'")
    assert [str(v.version) for v in versions] == ["1"]
    champion = client.get_model_version_by_alias(MODEL, "champion")
    assert str(champion.version) == "1" and champion.tags["dcai.promoted_over"] == "none"
    assert (production.lake / "flights" / "importance_scores.parquet").exists()


def test_production_results_equal_the_embedded_sqlite_results(production, local):
    for day in DAYS:
        pd.testing.assert_frame_equal(
            pd.read_parquet(production.lake / "flights" / "labeled_set" / f"{day}.parquet"),
            pd.read_parquet(local.lake / "flights" / "labeled_set" / f"{day}.parquet"),
        )
    cards = [pd.read_parquet(d.lake / "flights" / "trained_model.parquet") for d in (production, local)]
    metrics = [c for c in cards[0].columns if c.startswith("eval_")]
    assert metrics and np.allclose(cards[0][metrics], cards[1][metrics], rtol=0, atol=1e-12)
    scores = [
        pd.read_parquet(d.lake / "flights" / "importance_scores.parquet").set_index(["_partition", "_row"])
        for d in (production, local)
    ]
    sharded, whole = scores[0], scores[1].loc[scores[0].index]
    assert len(sharded) == len(scores[1]) > 1000
    np.testing.assert_allclose(sharded["importance"], whole["importance"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(sharded["loo"], whole["loo"], rtol=0, atol=1e-12)


def test_two_concurrent_retrains_each_move_the_champion_once_and_lose_no_version(production):
    live = production.live
    launched = []
    for _ in range(2):
        result = live.graphql(
            """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
                 __typename ... on LaunchRunSuccess { run { runId } } ... on Error { message } } }""",
            {"params": {"selector": {**REPOSITORY, "pipelineName": "flights_train"}}},
        )["launchRun"]
        assert result["__typename"] == "LaunchRunSuccess", result
        launched.append(result["run"]["runId"])
    instance = live.instance()
    wait_for(
        "both retrains and what they trigger to finish",
        lambda: all(r.status in FINISHED for r in instance.get_runs()),
        timeout=300,
        every=2,
    )
    runs = [instance.get_run_by_id(run_id) for run_id in launched]
    assert [r.status for r in runs] == [dg.DagsterRunStatus.SUCCESS] * 2
    spans = [next(iter(step_intervals(instance, run_id).values())) for run_id in launched]
    assert overlap(*spans) <= 0  # the registry pool ran the two training steps one after the other
    client = MlflowClient(production.tracking_uri)
    versions = {str(v.version): v for v in client.search_model_versions(f"name='{MODEL}'")}
    assert sorted(versions) == ["1", "2", "3"]  # no registry version lost
    passed = {
        v: versions[v].tags["dcai.promoted_over"]
        for v in versions
        if versions[v].tags["dcai.gate"] == "passed"
    }
    assert sorted(passed.values()) == sorted({*passed.values()})  # no champion replaced twice: no race
    champion = str(client.get_model_version_by_alias(MODEL, "champion").version)
    assert champion in passed and champion not in passed.values()  # the end of the chain of moves
    assert len(passed) == 3  # same data and code: each challenger passed and moved the champion once
