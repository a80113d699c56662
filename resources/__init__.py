"""Resource sets for the demo code location, keyed by environment (``DCAI_ENV``: ``local``, the
default, or ``production``). Nothing in ``dcai_assets`` changes between them: only where data,
artifacts and MLflow live, and how steps execute.

Local: every location is overridable by environment variable; by default nothing is written
outside the project directory. Production: locations come from environment variables, read by
Dagster when a run starts (``dg.EnvVar``), so the UI shows where each value comes from.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dagster as dg

from dcai_assets import ArtifactStore, MlflowTracking, ParquetIOManager

PROJECT_DIR = Path(__file__).resolve().parent.parent
EXPERIMENT = "dcai_demo"


def data_dir() -> Path:
    """Root of the demo's local files (``DCAI_DATA_DIR``, default ``<project>/.data``)."""
    return Path(os.environ.get("DCAI_DATA_DIR", PROJECT_DIR / ".data"))


def landing_dir(dataset: str) -> Path:
    """Where partition files of ``dataset`` arrive (``DCAI_LANDING_DIR`` overrides the root)."""
    return Path(os.environ.get("DCAI_LANDING_DIR", data_dir() / "landing")) / dataset


def local_resources() -> dict[str, Any]:
    """Embedded defaults: Parquet and JSON files under the data directory, MLflow on SQLite."""
    root = data_dir()
    return {
        "io_manager": ParquetIOManager(base_dir=os.environ.get("DCAI_LAKE_DIR", str(root / "lake"))),
        "artifacts": ArtifactStore(base_dir=os.environ.get("DCAI_ARTIFACTS_DIR", str(root / "artifacts"))),
        "mlflow_tracking": MlflowTracking(
            tracking_uri=mlflow_tracking_uri(),
            artifact_location=os.environ.get("DCAI_MLFLOW_ARTIFACTS", str(root / "mlflow" / "artifacts")),
            experiment_name=EXPERIMENT,
        ),
    }


def production_resources() -> dict[str, Any]:
    """Shared storage: the lake and artifacts on any fsspec URL (``DCAI_LAKE_URL``,
    ``DCAI_ARTIFACTS_URL``: ``s3://...``, ``gs://...`` or a shared volume), MLflow on a tracking
    server (``MLFLOW_TRACKING_URI``) that keeps the artifacts itself."""
    return {
        "io_manager": ParquetIOManager(base_dir=dg.EnvVar("DCAI_LAKE_URL")),
        "artifacts": ArtifactStore(base_dir=dg.EnvVar("DCAI_ARTIFACTS_URL")),
        "mlflow_tracking": MlflowTracking(
            tracking_uri=dg.EnvVar("MLFLOW_TRACKING_URI"), experiment_name=EXPERIMENT
        ),
    }


def mlflow_tracking_uri() -> str:
    """MLflow on SQLite under the data directory, unless ``MLFLOW_TRACKING_URI`` says otherwise."""
    return os.environ.get("MLFLOW_TRACKING_URI", f"sqlite:///{data_dir() / 'mlflow' / 'mlflow.db'}")


def local_executor() -> dg.ExecutorDefinition:
    """The demo's steps are small: running them in the run's own process saves a process each."""
    return dg.in_process_executor


def production_executor() -> dg.ExecutorDefinition:
    """A process per step, at most ``DCAI_MAX_CONCURRENT_STEPS`` (default 2) at once per run: the
    shards of the importance valuation run side by side."""
    steps = int(os.environ.get("DCAI_MAX_CONCURRENT_STEPS", "2"))
    return dg.multiprocess_executor.configured({"max_concurrent": steps}, name="multiprocess_executor")


RESOURCE_SETS = {"local": local_resources, "production": production_resources}
EXECUTORS = {"local": local_executor, "production": production_executor}


def environment(env: str | None = None) -> str:
    """The environment's name (``env``, else ``DCAI_ENV``, else ``local``), checked."""
    env = env or os.environ.get("DCAI_ENV", "local")
    if env not in RESOURCE_SETS:
        raise ValueError(
            f"DCAI_ENV={env!r} is not a known resource set; expected one of {sorted(RESOURCE_SETS)}"
        )
    return env


def resource_set(env: str | None = None) -> dict[str, Any]:
    """The resources of environment ``env`` (default: ``DCAI_ENV`` or ``local``)."""
    return RESOURCE_SETS[environment(env)]()


def executor(env: str | None = None) -> dg.ExecutorDefinition:
    """How runs of environment ``env`` execute their steps."""
    return EXECUTORS[environment(env)]()
