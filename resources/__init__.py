"""Resource sets for the demo code location, keyed by environment (``DCAI_ENV``, default local).

Every location is overridable by environment variable; by default nothing is written outside
the project directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dcai_assets import ArtifactStore, MlflowTracking, ParquetIOManager

PROJECT_DIR = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """Root of the demo's local files (``DCAI_DATA_DIR``, default ``<project>/.data``)."""
    return Path(os.environ.get("DCAI_DATA_DIR", PROJECT_DIR / ".data"))


def landing_dir(dataset: str) -> Path:
    """Where partition files of ``dataset`` arrive (``DCAI_LANDING_DIR`` overrides the root)."""
    return Path(os.environ.get("DCAI_LANDING_DIR", data_dir() / "landing")) / dataset


def local_resources() -> dict[str, Any]:
    """Embedded defaults: Parquet and JSON files under the data directory."""
    root = data_dir()
    return {
        "io_manager": ParquetIOManager(base_dir=os.environ.get("DCAI_LAKE_DIR", str(root / "lake"))),
        "artifacts": ArtifactStore(base_dir=os.environ.get("DCAI_ARTIFACTS_DIR", str(root / "artifacts"))),
        "mlflow_tracking": MlflowTracking(
            tracking_uri=mlflow_tracking_uri(),
            artifact_location=os.environ.get("DCAI_MLFLOW_ARTIFACTS", str(root / "mlflow" / "artifacts")),
            experiment_name="dcai_demo",
        ),
    }


def mlflow_tracking_uri() -> str:
    """MLflow on SQLite under the data directory, unless ``MLFLOW_TRACKING_URI`` says otherwise."""
    return os.environ.get("MLFLOW_TRACKING_URI", f"sqlite:///{data_dir() / 'mlflow' / 'mlflow.db'}")


RESOURCE_SETS = {"local": local_resources}


def resource_set(env: str | None = None) -> dict[str, Any]:
    """The resources of environment ``env`` (default: ``DCAI_ENV`` or ``local``)."""
    env = env or os.environ.get("DCAI_ENV", "local")
    if env not in RESOURCE_SETS:
        raise ValueError(
            f"DCAI_ENV={env!r} is not a known resource set; expected one of {sorted(RESOURCE_SETS)}"
        )
    return RESOURCE_SETS[env]()
