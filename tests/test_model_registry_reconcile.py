"""A retrain killed with SIGKILL between two registry writes, then the next retrain: it reconciles
what the dead one left (versions without a verdict, a ``passed`` version never promoted, runs left
RUNNING) before registering, and the champion stays loadable. Real Dagster instance, real MLflow
on SQLite, a real subprocess killed at each point."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from mlflow import MlflowClient

from dcai_assets import DatasetSpec, LandingDirectory, MlflowTracking
from dcai_assets.core.schema_inference import infer_schema
from dcai_assets.model_registry import load_sklearn_model
from dcai_assets.spec import DailyPartitions
from tests.assets.test_model import definitions, land_and_label, metadata, retrain
from tests.conftest import REFERENCE_DAYS, sensor_readings

MODEL_NAME = "readings_model"
EXPERIMENT = "test/readings"
DAYS = ["2024-01-10", "2024-01-11", "2024-01-12"]


def build(base: Path, mlflow_dir: Path, tracking_uri: str | None = None):
    """The readings pipeline on ``base`` (lake, landing, schema) tracking to ``mlflow_dir`` (a
    SQLite store), or to ``tracking_uri`` (a tracking server) if given."""
    from dcai_assets import ArtifactStore, ParquetIOManager

    schema_path = base / "schemas" / "readings.yaml"
    if not schema_path.exists():
        infer_schema({d: sensor_readings(d) for d in REFERENCE_DAYS}, key=["reading_id"]).save(schema_path)
    (base / "landing").mkdir(exist_ok=True)
    spec = DatasetSpec(
        name="readings",
        source=LandingDirectory(path=base / "landing"),
        partitioning=DailyPartitions(start="2024-01-01", end="2024-03-01"),
        schema_path=schema_path,
        key="reading_id",
    )
    resources = {
        "io_manager": ParquetIOManager(base_dir=str(base / "lake")),
        "artifacts": ArtifactStore(base_dir=str(base / "artifacts")),
    }
    tracking = MlflowTracking(
        tracking_uri=tracking_uri or f"sqlite:///{mlflow_dir / 'mlflow.db'}",
        artifact_location=None if tracking_uri else str(mlflow_dir / "mlartifacts"),
        experiment_name="test",
    )
    return definitions(spec, resources, tracking), tracking


# Run as a subprocess: kill this process right after the MLflow call named on the command line.
KILLED_RETRAIN = """
import os, signal, sys
from pathlib import Path
import dagster as dg
from mlflow.tracking.client import MlflowClient
from tests.test_model_registry_reconcile import build
from tests.assets.test_model import retrain

base, mlflow_dir, method, *match = sys.argv[1:]
original = getattr(MlflowClient, method)

def then_die(self, *args, **kwargs):
    out = original(self, *args, **kwargs)
    given = [str(a) for a in (*args, *kwargs.values())]
    if all(m in given for m in match):
        os.kill(os.getpid(), signal.SIGKILL)
    return out

setattr(MlflowClient, method, then_die)
defs, _ = build(Path(base), Path(mlflow_dir))
with dg.instance_for_test(temp_dir=str(Path(base) / "instance")) as instance:
    retrain(defs, instance)
sys.exit(3)  # the kill point was never reached
"""


@pytest.fixture(scope="module")
def labeled(tmp_path_factory) -> Path:
    """Three labeled days on a persistent instance, shared by the tests (labeling is the slow part)."""
    base = tmp_path_factory.mktemp("pipeline")
    (base / "instance").mkdir()
    defs, _ = build(base, base)
    with dg.instance_for_test(temp_dir=str(base / "instance")) as instance:
        land_and_label(defs, instance, base / "landing", DAYS)
    return base


def kill_retrain_after(base: Path, mlflow_dir: Path, method: str, *match: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run(
        [sys.executable, "-c", KILLED_RETRAIN, str(base), str(mlflow_dir), method, *match],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]


def registry_state(tracking: MlflowTracking) -> tuple[dict[str, dict], list[str], str | None]:
    client = MlflowClient(tracking.tracking_uri)
    versions = {str(v.version): dict(v.tags) for v in client.search_model_versions(f"name='{MODEL_NAME}'")}
    experiment = client.get_experiment_by_name(EXPERIMENT)
    running = [
        r.info.run_id for r in client.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'")
    ]
    try:
        champion = str(client.get_model_version_by_alias(MODEL_NAME, "champion").version)
    except Exception:
        champion = None
    return versions, running, champion


def run_states(tracking: MlflowTracking) -> list[tuple[str, str]]:
    """(status, reconciled reason) of every run of the experiment, oldest first."""
    client = MlflowClient(tracking.tracking_uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    return [(r.info.status, r.data.tags.get("dcai.reconciled_reason", "")) for r in runs]


@pytest.mark.slow  # the full lane: retrains in subprocesses, killed
def test_each_retrain_after_a_killed_one_reconciles_its_debris_and_keeps_a_loadable_champion(
    labeled, tmp_path
):
    """Four retrains killed in turn, each at a later write, then one that completes. Each retrain
    first repairs what the one before it left: checked after every kill."""
    defs, tracking = build(labeled, tmp_path)
    kill_retrain_after(labeled, tmp_path, "log_batch")  # mid logging: a RUNNING run, no version
    assert [s for s, _ in run_states(tracking)] == ["RUNNING"]

    kill_retrain_after(labeled, tmp_path, "create_model_version", MODEL_NAME)  # a version, no verdict
    runs = run_states(tracking)
    assert runs[0][0] == "KILLED" and "process that ran it is gone" in runs[0][1], runs
    versions, _, _ = registry_state(tracking)
    assert list(versions) == ["1"] and versions["1"].get("dcai.gate") in (None, "pending")

    kill_retrain_after(labeled, tmp_path, "set_model_version_tag", "dcai.gate", "passed")
    versions, _, champion = registry_state(tracking)
    assert [s for s, _ in run_states(tracking)][:2] == ["KILLED", "KILLED"]
    assert versions["1"]["dcai.gate"] == "abandoned", versions["1"]
    assert "dcai.reconciled_reason" in versions["1"] and "dcai.reconciled_at" in versions["1"]
    assert champion == "2" and versions["2"]["dcai.gate"] == "passed"  # passed only once champion

    kill_retrain_after(labeled, tmp_path, "set_registered_model_alias", "champion")  # verdict unwritten
    versions, _, champion = registry_state(tracking)
    assert champion == "3" and versions["3"]["dcai.gate"] == "pending"

    with dg.instance_for_test(temp_dir=str(labeled / "instance")) as instance:
        result = retrain(defs, instance)
    assert result.success
    versions, running, champion = registry_state(tracking)
    assert running == [], f"runs left RUNNING: {running}"
    assert [s for s, _ in run_states(tracking)] == ["KILLED"] * 4 + ["FINISHED"]
    replaced = {t.get("dcai.promoted_over") for t in versions.values() if t.get("dcai.gate") == "passed"}
    for version, tags in versions.items():
        assert tags.get("dcai.gate") in {"passed", "failed", "abandoned", "lost_race"}, (version, tags)
        if tags["dcai.gate"] == "passed" and version != champion:
            assert "dcai.superseded_by" in tags or version in replaced, (
                f"version {version} passed, not champion"
            )
    assert versions["3"]["dcai.gate"] == "passed"  # the champion the killed retrain had moved to
    md = metadata(result)
    assert (md["reconciled_versions"], md["reconciled_runs"]) == (1, 1)
    client = MlflowClient(tracking.tracking_uri)
    model = load_sklearn_model(client, client.get_model_version_by_alias(MODEL_NAME, "champion").run_id)
    assert hasattr(model, "predict")


def test_a_dead_process_is_told_from_a_live_one_and_from_a_reused_pid():
    from dcai_assets.model_registry import _process_alive, process_identity

    assert _process_alive(process_identity()) is True
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    host = process_identity().split(":")[0]
    assert _process_alive(f"{host}:{child.pid}:") is False
    assert _process_alive(f"{host}:{os.getpid()}:1") is False  # same pid, another start time
    assert _process_alive(f"another-host:{os.getpid()}:") is None


def test_a_promotion_lock_left_by_a_dead_process_is_broken(tracking):
    from dcai_assets.model_registry import process_identity, promotion_lock

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = f"{process_identity().split(':')[0]}:{child.pid}:"
    client = MlflowClient(tracking.tracking_uri)
    client.create_registered_model(f"{MODEL_NAME}.promotion-lock", tags={"dcai.process": dead})
    with promotion_lock(tracking, MODEL_NAME, wait_seconds=5):
        held = client.get_registered_model(f"{MODEL_NAME}.promotion-lock")
        assert held.tags["dcai.process"] == process_identity()
    assert not client.search_registered_models(f"name = '{MODEL_NAME}.promotion-lock'")


def test_a_promotion_lock_held_by_a_live_process_is_waited_for_then_named(tracking):
    from dcai_assets.model_registry import process_identity, promotion_lock

    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = f"{process_identity().split(':')[0]}:{holder.pid}:"
        MlflowClient(tracking.tracking_uri).create_registered_model(
            f"{MODEL_NAME}.promotion-lock", tags={"dcai.process": live}
        )
        with (
            pytest.raises(TimeoutError, match=f"held by {live}"),
            promotion_lock(tracking, MODEL_NAME, wait_seconds=0.5),
        ):
            pass
    finally:
        holder.kill()
        holder.wait()
