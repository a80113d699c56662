"""Faults of the world around the pipeline, mid-run, on the demo under the daemon: the MLflow
tracking server goes down, and the lake's disk fills up (a real tmpfs of its own, really full:
ENOSPC from the kernel). Each must give a clear error naming what failed, leave nothing
half-done (no visible partial file, no registry version without a gate verdict, no champion
change), and the pipeline must resume by itself once the fault clears."""

from __future__ import annotations

import contextlib
import errno
import os
import time
from pathlib import Path

import dagster as dg
import pytest
from mlflow import MlflowClient

from tests.reliability.harness import (
    MODEL,
    RECOVERY_TIMEOUT,
    Pipeline,
    failure_message,
    invariant_violations,
    not_stuck,
    wait_for_step_start,
    wait_settled,
    wait_until_more,
)

# The live demo of test_kill9.py (conftest.py), on the same xdist worker.
pytestmark = [pytest.mark.reliability, pytest.mark.xdist_group("live_demo")]


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
    models = pipeline.materializations("trained_model")
    scores = pipeline.materializations("importance_scores")
    start = time.monotonic()
    pipeline.land(1)
    wait_until_more(pipeline, "trained_model", models, RECOVERY_TIMEOUT)
    wait_until_more(pipeline, "importance_scores", scores, RECOVERY_TIMEOUT)
    print(
        f"RELIABILITY: {fault} cleared: a new day to new model and importance in "
        f"{time.monotonic() - start:.1f} s"
    )
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


@contextlib.contextmanager
def full_disk(directory: Path):
    """Fill ``directory``'s file system until the kernel says ENOSPC; free it on exit."""
    ballast = directory / "ballast.bin"  # visible, yet not Parquet: the lake check ignores it
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT)
    try:
        for size in (1 << 20, 4096):  # megabytes, then the last pages
            while True:
                try:
                    os.write(fd, b"\0" * size)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    try:
        yield
    finally:
        ballast.unlink()


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
