"""The code location of the 365-day backfill scenario: a year of a small synthetic daily dataset
through validation and labeling (no training, no MLflow), everything under DCAI_BACKFILL_DIR.
Steps run in their run's process (in-process executor): the backfill's runs are under test."""

import os
from pathlib import Path

import dagster as dg

from dcai_assets import (
    ArtifactStore,
    DatasetSpec,
    LabelingSpec,
    LandingDirectory,
    ParquetIOManager,
    build_definitions,
)
from dcai_assets.spec import DailyPartitions
from tests.assets.test_labeled import LFS

ROOT = Path(os.environ.get("DCAI_BACKFILL_DIR", "."))
SPEC = DatasetSpec(
    name="readings",
    source=LandingDirectory(path=ROOT / "landing"),
    partitioning=DailyPartitions(start="2023-01-01", end="2024-01-01"),
    schema_path=ROOT / "readings.yaml",
    key="reading_id",
)
resources = {
    "io_manager": ParquetIOManager(base_dir=str(ROOT / "lake")),
    "artifacts": ArtifactStore(base_dir=str(ROOT / "artifacts")),
}
defs = dg.Definitions.merge(
    build_definitions(SPEC, labeling=LabelingSpec(lfs=LFS)),
    dg.Definitions(resources=resources, executor=dg.in_process_executor),
)
