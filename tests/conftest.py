"""Shared fixtures: a small synthetic dataset (not the demo's), its schema, and resources on tmp dirs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dcai_assets import (
    ArtifactStore,
    DailyPartitions,
    DatasetSpec,
    LandingDirectory,
    MlflowTracking,
    ParquetIOManager,
    infer_schema,
)


def sensor_readings(day: str, rows: int = 200, seed: int = 0) -> pd.DataFrame:
    """A day of readings from a fleet of sensors: the test dataset."""
    rng = np.random.default_rng(seed + int(day.replace("-", "")))
    return pd.DataFrame(
        {
            "reading_id": [f"{day}-{i}" for i in range(rows)],
            "site": rng.choice(["north", "south", "east", "west"], size=rows, p=[0.4, 0.3, 0.2, 0.1]),
            "temperature": rng.normal(20.0, 3.0, size=rows).round(2),
            "humidity": rng.uniform(20, 90, size=rows).round(1),
            "count": rng.integers(0, 50, size=rows),
        }
    )


REFERENCE_DAYS = [f"2024-01-0{i}" for i in range(1, 8)]


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    path = tmp_path / "landing"
    path.mkdir()
    return path


@pytest.fixture
def readings_spec(tmp_path: Path, landing: Path) -> DatasetSpec:
    """A daily dataset landing as CSV files, with its schema inferred from a week of data."""
    schema_path = tmp_path / "schemas" / "readings.yaml"
    frames = {d: sensor_readings(d) for d in REFERENCE_DAYS}
    infer_schema(frames, key=["reading_id"]).save(schema_path)
    return DatasetSpec(
        name="readings",
        source=LandingDirectory(path=landing),
        partitioning=DailyPartitions(start="2024-01-01", end="2024-03-01"),
        schema_path=schema_path,
        key="reading_id",
    )


@pytest.fixture
def resources(tmp_path: Path) -> dict:
    return {
        "io_manager": ParquetIOManager(base_dir=str(tmp_path / "lake")),
        "artifacts": ArtifactStore(base_dir=str(tmp_path / "artifacts")),
    }


@pytest.fixture
def tracking(tmp_path: Path) -> MlflowTracking:
    """Real MLflow tracking and registry on a temporary SQLite database."""
    return MlflowTracking(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        artifact_location=str(tmp_path / "mlartifacts"),
        experiment_name="test",
    )
