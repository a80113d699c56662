"""dcai_assets: a data-centric-AI pipeline as Dagster software-defined assets."""

from dcai_assets.artifacts import ArtifactStore
from dcai_assets.core.conformance import Conformance, conform
from dcai_assets.core.drift import ColumnDrift, drift_report
from dcai_assets.core.schema import ColumnSchema, TableSchema, infer_schema
from dcai_assets.definitions import build_definitions, ingest_job_name
from dcai_assets.errors import DataInputError
from dcai_assets.io.parquet import ParquetIOManager
from dcai_assets.spec import (
    CallableSource,
    DailyPartitions,
    DatasetSpec,
    DynamicPartitions,
    LandingDirectory,
)

__all__ = [
    "ArtifactStore",
    "CallableSource",
    "ColumnDrift",
    "ColumnSchema",
    "Conformance",
    "DailyPartitions",
    "DataInputError",
    "DatasetSpec",
    "DynamicPartitions",
    "LandingDirectory",
    "ParquetIOManager",
    "TableSchema",
    "build_definitions",
    "conform",
    "drift_report",
    "infer_schema",
    "ingest_job_name",
]
