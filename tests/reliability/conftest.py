"""One live demo for the kill -9 and fault scenarios: started once, bootstrapped once (a first
model and its importance scores), then crashed and faulted again and again."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobs.live_instance import LiveInstance, wait_for
from tests.production.servers import MlflowServer
from tests.reliability.harness import (
    RECOVERY_TIMEOUT,
    Pipeline,
    kill9,
    step_failures,
    wait_for_step_start,
    wait_until_more,
)

BOOTSTRAP_DAYS = 4  # the trained model holds out the newest 3
LAKE_SIZE = "64m"
# A ceiling, not a duration: a first model takes ~1 min on a quiet machine, and 10-15 min on a
# 2-core VM at load 30 (a validation step 60 s instead of 2.5 s, the first scoring 450 s).
BOOTSTRAP_TIMEOUT = 1500


@contextlib.contextmanager
def small_disk(path: Path, size: str) -> Iterator[bool]:
    """A tmpfs of ``size`` mounted at ``path``, so that the lake's disk can really fill up; yields
    False (a plain directory) where mounting is not allowed (not root)."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
        ).returncode
        == 0
    )
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory) -> Iterator[Pipeline]:
    """The demo under the daemon with MLflow behind a tracking server (so that it can go down),
    the lake on a small disk of its own (so that it can fill up), after a first model."""
    root = tmp_path_factory.mktemp("reliability")
    lake = root / "lake"
    with (
        small_disk(lake, LAKE_SIZE) as lake_is_small_disk,
        MlflowServer(f"sqlite:///{root / 'mlflow.db'}", root / "mlflow-artifacts") as mlflow,
    ):
        env = {"MLFLOW_TRACKING_URI": mlflow.uri, "DCAI_LAKE_DIR": str(lake)}
        with LiveInstance(root, env=env) as live:
            pipeline = Pipeline(live, lake, mlflow.uri, mlflow=mlflow, lake_is_small_disk=lake_is_small_disk)
            start = time.monotonic()
            pipeline.land(BOOTSTRAP_DAYS)
            # The first fit of the label model is killed mid-step (test_live_demo reads the outcome):
            # the one stage that otherwise runs only when the LFs change or at its nightly cron.
            run_id, pid = wait_for_step_start(pipeline, "label_model", timeout=BOOTSTRAP_TIMEOUT)
            kill9(pid)
            killed = time.monotonic()
            try:
                wait_until_more(pipeline, "label_model", 0, timeout=RECOVERY_TIMEOUT)
                pipeline.label_model_kill = (run_id, time.monotonic() - killed, None)
            except TimeoutError as e:
                pipeline.label_model_kill = (run_id, None, str(e))

            def bootstrapped() -> bool:
                failures = step_failures(pipeline)
                if failures:  # every bootstrap day passes validation: say at once what broke
                    raise AssertionError(f"bootstrap failed: {failures}; see {root / 'logs'}")
                return pipeline.materializations("importance_scores") and not pipeline.unfinished_runs()

            wait_for("a first model and its importance scores", bootstrapped, timeout=BOOTSTRAP_TIMEOUT)
            print(
                f"RELIABILITY: bootstrap of {BOOTSTRAP_DAYS} days to a first model (label model killed "
                f"once): {time.monotonic() - start:.1f} s"
            )
            yield pipeline
