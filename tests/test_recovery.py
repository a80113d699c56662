"""Crash recovery: a retrain killed with SIGKILL while it holds the model registry pool does not
block the retrains after it, and the shipped instance configs let the daemon free such slots.

The killed retrain runs in a subprocess (``python -m tests.test_recovery <root> <mode>``)
on a real SQLite instance shared with the test through its directory.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.instance.config import dagster_instance_config
from dagster._core.test_utils import create_run_for_test

from dcai_assets import ArtifactStore, DatasetSpec, LandingDirectory, MlflowTracking
from dcai_assets import ParquetIOManager as Lake
from dcai_assets.assets.model import REGISTRY_POOL
from dcai_assets.recovery import WorkerProcess, reconcile_dead_runs
from dcai_assets.spec import DailyPartitions
from tests.assets.test_model import definitions, land_and_label, logistic_pipeline

ROOT = Path(__file__).resolve().parents[1]
DAYS = ["2024-01-10", "2024-01-11"]
HOLDING = "DCAI_TEST_HOLDING_SLOT"  # the file the hanging retrain touches once it holds the slot
RETRAIN_TIMEOUT = 240  # seconds; a retrain blocked on the pool fails the test here, not hangs


def pipeline_definitions(root: Path, pipeline=logistic_pipeline) -> dg.Definitions:
    """The readings pipeline of tests/conftest.py on the files under ``root``."""
    spec = DatasetSpec(
        name="readings",
        source=LandingDirectory(path=root / "landing"),
        partitioning=DailyPartitions(start="2024-01-01", end="2024-03-01"),
        schema_path=root / "schemas" / "readings.yaml",
        key="reading_id",
    )
    resources = {
        "io_manager": Lake(base_dir=str(root / "lake")),
        "artifacts": ArtifactStore(base_dir=str(root / "artifacts")),
    }
    tracking = MlflowTracking(
        tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
        artifact_location=str(root / "mlartifacts"),
        experiment_name="test",
    )
    return definitions(spec, resources, tracking, pipeline=pipeline)


def hanging_pipeline():
    """A training pipeline factory that never returns: the step holds the pool until killed."""
    Path(os.environ[HOLDING]).touch()
    time.sleep(3600)


def worker(root: Path, mode: str) -> int:
    """Run the train job in this process on the instance in ``root/home``."""
    defs = pipeline_definitions(root, hanging_pipeline if mode == "hang" else logistic_pipeline)
    with dg.DagsterInstance.from_config(str(root / "home")) as instance:
        result = defs.resolve_job_def("readings_train").execute_in_process(
            instance=instance, raise_on_error=False
        )
        print(f"RUN {result.run_id} {'SUCCESS' if result.success else 'FAILURE'}", flush=True)
        return 0 if result.success else 1


def start_worker(root: Path, mode: str, **kwargs):
    env = {**os.environ, "PYTHONPATH": str(ROOT), HOLDING: str(root / "holding")}
    command = [sys.executable, "-m", "tests.test_recovery", str(root), mode]
    return command, {"env": env, "cwd": ROOT, **kwargs}


def registry_pool(instance: dg.DagsterInstance):
    return instance.event_log_storage.get_concurrency_info(REGISTRY_POOL)


@pytest.fixture
def shipped_instance(tmp_path, readings_spec):
    """A real SQLite instance configured by the demo's resources/dagster.yaml, with three days
    labeled (``readings_spec`` writes the schema under ``tmp_path``)."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(ROOT / "resources" / "dagster.yaml", home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        land_and_label(pipeline_definitions(tmp_path), instance, tmp_path / "landing", DAYS)
        yield instance


@pytest.mark.slow  # the full lane: retrains in subprocesses, killed
def test_a_retrain_killed_holding_the_registry_pool_does_not_block_the_next(tmp_path, shipped_instance):
    instance = shipped_instance
    command, options = start_worker(tmp_path, "hang")
    hanging = subprocess.Popen(command, **options)
    try:
        deadline = time.monotonic() + RETRAIN_TIMEOUT
        while not (tmp_path / "holding").exists():
            assert hanging.poll() is None, "the hanging retrain exited before it held the pool"
            assert time.monotonic() < deadline, "the hanging retrain never reached its step"
            time.sleep(0.2)
        [slot] = registry_pool(instance).claimed_slots
        dead_run_id = slot.run_id
    finally:
        hanging.send_signal(signal.SIGKILL)
        hanging.wait()
    killed_at, killed_wall = time.monotonic(), time.time()

    command, options = start_worker(tmp_path, "train")
    retrain = subprocess.run(command, **options, capture_output=True, text=True, timeout=RETRAIN_TIMEOUT)
    seconds = time.monotonic() - killed_at
    assert retrain.returncode == 0, retrain.stdout[-3000:] + retrain.stderr[-3000:]

    dead = instance.get_run_by_id(dead_run_id)
    assert dead.status == dg.DagsterRunStatus.FAILURE
    assert f"({dead.tags['dcai/worker_pid']} on " in "\n".join(
        e.message for e in instance.all_logs(dead_run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
    )
    pool = registry_pool(instance)
    assert pool.claimed_slots == [] and pool.pending_steps == []
    [new_run] = [line.split()[1] for line in retrain.stdout.splitlines() if line.startswith("RUN ")]
    [recovered] = [
        e for e in instance.all_logs(new_run) if f"recovered run {dead_run_id} (STARTED)" in e.message
    ]
    assert "freed 1 concurrency slot(s)" in recovered.message
    print(
        f"kill -> slot freed by the next run {recovered.timestamp - killed_wall:.1f} s, -> that retrain "
        f"succeeded {seconds:.1f} s (a fresh Python process: imports and training included)"
    )


def fake_run(instance: dg.DagsterInstance, worker: WorkerProcess | None, status=dg.DagsterRunStatus.STARTED):
    """A run of ``worker`` (no record if None) holding the registry pool's slot."""
    run = create_run_for_test(
        instance, job_name="readings_train", status=status, tags=worker.as_tags() if worker else {}
    )
    claim = instance.event_log_storage.claim_concurrency_slot(
        REGISTRY_POOL, run.run_id, "readings__trained_model"
    )
    assert claim.is_claimed
    return run


@pytest.fixture
def pool_instance():
    with dg.instance_for_test() as instance:
        instance.event_log_storage.set_concurrency_slots(REGISTRY_POOL, 1)
        yield instance


def reaped_pid() -> int:
    """The pid of a process that ran and was reaped: gone."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.mark.parametrize(
    "worker",
    [
        pytest.param(WorkerProcess.current(), id="a live process"),
        pytest.param(WorkerProcess("another-host", reaped_pid(), None), id="a process on another host"),
        pytest.param(None, id="no record of its process"),
    ],
)
def test_runs_of_live_unknown_or_remote_processes_are_never_touched(pool_instance, worker):
    run = fake_run(pool_instance, worker)
    assert reconcile_dead_runs(pool_instance, current_run_id="the-current-run") == []
    assert pool_instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
    assert [s.run_id for s in registry_pool(pool_instance).claimed_slots] == [run.run_id]


def test_a_reused_pid_is_not_taken_for_the_dead_process(pool_instance):
    me = WorkerProcess.current()
    if me.started is None:
        pytest.skip("no process start times on this platform (no /proc)")
    earlier = WorkerProcess(me.host, me.pid, str(int(me.started) - 1))  # same pid, started before
    run = fake_run(pool_instance, earlier)
    [done] = reconcile_dead_runs(pool_instance, current_run_id="the-current-run")
    assert (done.run_id, done.marked_failed, done.slots_freed, done.claims_dropped) == (
        run.run_id,
        True,
        1,
        0,
    )
    assert pool_instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE


def test_a_finished_run_of_a_dead_process_gives_its_slot_back_without_a_new_status(pool_instance):
    gone = WorkerProcess(WorkerProcess.current().host, reaped_pid(), None)
    run = fake_run(pool_instance, gone, status=dg.DagsterRunStatus.FAILURE)
    [done] = reconcile_dead_runs(pool_instance, current_run_id="the-current-run")
    assert (done.run_id, done.marked_failed, done.slots_freed) == (run.run_id, False, 1)
    assert done.status_before == "FAILURE" == pool_instance.get_run_by_id(run.run_id).status.value
    assert registry_pool(pool_instance).claimed_slots == []


def test_a_dead_run_waiting_for_the_slot_drops_its_claim_and_the_holder_keeps_it(pool_instance):
    holder = fake_run(pool_instance, WorkerProcess.current())
    gone = WorkerProcess(WorkerProcess.current().host, reaped_pid(), None)
    waiting = create_run_for_test(
        pool_instance, job_name="readings_train", status=dg.DagsterRunStatus.STARTED, tags=gone.as_tags()
    )
    claim = pool_instance.event_log_storage.claim_concurrency_slot(
        REGISTRY_POOL, waiting.run_id, "readings__trained_model"
    )
    assert not claim.is_claimed
    [done] = reconcile_dead_runs(pool_instance, current_run_id="the-current-run")
    assert (done.run_id, done.slots_freed, done.claims_dropped) == (waiting.run_id, 0, 1)
    pool = registry_pool(pool_instance)
    assert [s.run_id for s in pool.claimed_slots] == [holder.run_id]
    assert {s.run_id for s in pool.pending_steps} == {holder.run_id}  # the holder's assigned claim


# --- the instance configuration: Dagster's run monitoring frees the slots of crashed runs --------


@pytest.mark.parametrize("config", ["resources/dagster.yaml", "deploy/dagster.yaml"])
def test_shipped_instance_configs_monitor_runs_and_free_slots_of_ended_runs(tmp_path, monkeypatch, config):
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", "postgresql+psycopg2://dagster:pw@postgres:5432/dagster")
    shutil.copy(ROOT / config, tmp_path / "dagster.yaml")
    validated, _ = dagster_instance_config(str(tmp_path))  # Dagster's own schema validation
    # An instance on that config (storage swapped for SQLite: Postgres is not what is checked).
    settings = {k: v for k, v in validated.items() if k != "storage"}
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(settings))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.run_monitoring_enabled
        assert "MONITORING" in instance.get_required_daemon_types()
        free_after = instance.run_monitoring_settings.get("free_slots_after_run_end_seconds")
        assert free_after and 0 < free_after <= 120
        assert 0 < instance.run_monitoring_poll_interval_seconds <= 30
        assert instance.run_monitoring_start_timeout_seconds >= 30
        assert instance.run_monitoring_max_resume_run_attempts == 0  # the default launcher cannot resume


if __name__ == "__main__":
    sys.exit(worker(Path(sys.argv[1]), sys.argv[2]))
