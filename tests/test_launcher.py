"""WarmRunLauncher on a real instance, with real worker processes: runs are executed by a worker
started before they were launched, dead workers are reported to run monitoring, and terminate
cancels a run."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.launcher import WorkerStatus
from dagster._core.test_utils import in_process_test_workspace, instance_for_test, poll_for_finished_run
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

from dcai_assets.launcher import LAUNCHER_TAG, WarmRunLauncher
from dcai_assets.recovery import WorkerProcess, process_start

LOCATION = Path(__file__).parent / "fixtures" / "launcher_location.py"
LAUNCHER = {
    "module": "dcai_assets.launcher",
    "class": "WarmRunLauncher",
    "config": {"preload_modules": {"<<in_process>>": ["colorsys"]}},
}


@pytest.fixture
def release(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "release"
    monkeypatch.setenv("DCAI_TEST_RELEASE", str(path))  # inherited by the workers
    return path


@pytest.fixture
def instance(tmp_path, release):
    with instance_for_test(overrides={"run_launcher": LAUNCHER}, temp_dir=str(tmp_path)) as instance:
        yield instance
        release.touch()  # lets a step still waiting end


@pytest.fixture
def workspace(instance):
    origin = LoadableTargetOrigin(executable_path=sys.executable, python_file=str(LOCATION))
    with in_process_test_workspace(instance, origin) as workspace:
        yield workspace


def launch(instance: dg.DagsterInstance, workspace, job_name: str) -> str:
    location = workspace.get_code_location(next(iter(workspace.get_code_location_entries())))
    remote_job = next(iter(location.get_repositories().values())).get_full_job(job_name)
    job_def = _definitions().resolve_job_def(job_name)
    run = instance.create_run_for_job(
        job_def=job_def,
        remote_job_origin=remote_job.get_remote_origin(),
        job_code_origin=remote_job.get_python_origin(),
    )
    instance.launch_run(run.run_id, workspace)
    return run.run_id


def _definitions() -> dg.Definitions:
    import importlib.util

    spec = importlib.util.spec_from_file_location("launcher_location", LOCATION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.defs


def worker_of(instance: dg.DagsterInstance, run_id: str) -> WorkerProcess:
    worker = WorkerProcess.from_tags(dict(instance.get_run_by_id(run_id).tags))
    assert worker is not None, "the launcher did not record the run's worker"
    return worker


def test_the_second_run_executes_in_the_worker_started_before_it_was_launched(instance, workspace):
    assert isinstance(instance.run_launcher, WarmRunLauncher)
    first = launch(instance, workspace, "quick_job")
    assert poll_for_finished_run(instance, first, timeout=120).status == dg.DagsterRunStatus.SUCCESS
    warm = instance.run_launcher._warm  # the worker waiting for the next run
    assert len(warm) == 1
    waiting = next(iter(warm.values())).process
    waiting_since = process_start(waiting.pid)
    second = launch(instance, workspace, "quick_job")
    run = poll_for_finished_run(instance, second, timeout=120)
    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert run.tags[LAUNCHER_TAG] == "warm"
    worker = worker_of(instance, second)
    assert (worker.pid, worker.started) == (waiting.pid, waiting_since)
    # The asset's own record of the process that computed it: the warm worker, not a new one.
    materialization = instance.get_latest_materialization_event(dg.AssetKey("quick"))
    assert materialization.run_id == second
    metadata = materialization.asset_materialization.metadata
    assert metadata["pid"].value == worker.pid
    assert metadata["colorsys_loaded"].value is True  # preloaded as configured for this location
    assert worker_of(instance, first).pid != worker.pid


def test_a_killed_worker_is_reported_failed_to_run_monitoring(instance, workspace, release):
    run_id = launch(instance, workspace, "waits_job")
    deadline = time.monotonic() + 120
    while instance.get_run_by_id(run_id).status != dg.DagsterRunStatus.STARTED:
        assert time.monotonic() < deadline, "the run never started"
        time.sleep(0.1)
    run = instance.get_run_by_id(run_id)
    assert instance.run_launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING
    os.kill(worker_of(instance, run_id).pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while (health := instance.run_launcher.check_run_worker_health(run)).status == WorkerStatus.RUNNING:
        assert time.monotonic() < deadline, "the dead worker was still reported running"
        time.sleep(0.1)
    assert health.status == WorkerStatus.FAILED and "is gone" in health.msg
    instance.report_run_failed(run, health.msg)  # what run monitoring does with this answer


def test_terminate_cancels_the_run_in_its_worker(instance, workspace, release):
    run_id = launch(instance, workspace, "waits_job")
    deadline = time.monotonic() + 120
    while not any(
        e.dagster_event and e.dagster_event.event_type_value == "STEP_START"
        for e in instance.all_logs(run_id)
    ):
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(0.1)
    assert instance.run_launcher.terminate(run_id)
    assert poll_for_finished_run(instance, run_id, timeout=60).status == dg.DagsterRunStatus.CANCELED


def test_a_run_with_no_worker_record_is_not_reported_dead(instance):
    run = instance.create_run_for_job(job_def=_definitions().resolve_job_def("quick_job"))
    assert instance.run_launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING


def test_the_documented_configuration_is_the_demos_and_dagster_accepts_it(tmp_path):
    import re

    import yaml

    project = Path(__file__).resolve().parents[1]
    documented = [
        yaml.safe_load(block)
        for block in re.findall(
            r"^```yaml\n(.*?)^```", (project / "docs" / "operations.md").read_text(), re.S | re.M
        )
        if "WarmRunLauncher" in block
    ]
    demo = yaml.safe_load((project / "resources" / "dagster.yaml").read_text())
    assert documented == [{"run_launcher": demo["run_launcher"]}]
    with instance_for_test(overrides=documented[0], temp_dir=str(tmp_path)) as instance:
        launcher = instance.run_launcher
        assert isinstance(launcher, WarmRunLauncher)
        assert launcher._preload == demo["run_launcher"]["config"]["preload_modules"]
        assert (
            "dcai_demo" in launcher._preload
        )  # the demo's code location, as dagster_workspace.yaml names it
    workspace = yaml.safe_load((project / "dagster_workspace.yaml").read_text())
    assert workspace["load_from"][0]["python_module"]["location_name"] == "dcai_demo"
