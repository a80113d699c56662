"""dcai_assets: a data-centric-AI pipeline as Dagster software-defined assets."""

from dcai_assets.artifacts import ArtifactStore
from dcai_assets.automation import (
    TRIGGER_TAG,
    AutomationSpec,
    automation_run_tags,
    partitions_changed,
)
from dcai_assets.core.conformance import Conformance, conform
from dcai_assets.core.drift import ColumnDrift, drift_report
from dcai_assets.core.evaluation import PromotionGate
from dcai_assets.core.knn_shapley import ShapleyResult, group_balanced_weights, knn_shapley
from dcai_assets.core.label_model import LabelModel, MajorityVote, fit_label_model
from dcai_assets.core.labeling import (
    ABSTAIN,
    LabelingFunction,
    LabelingFunctionError,
    LabelingFunctionSet,
    apply_lfs,
    labeling_function,
)
from dcai_assets.core.schema import ColumnSchema, TableSchema
from dcai_assets.core.schema_inference import infer_schema
from dcai_assets.definitions import (
    automation_sensor_name,
    build_definitions,
    importance_job_name,
    ingest_and_label_job_name,
    ingest_job_name,
    label_model_job_name,
    labeling_job_name,
    train_job_name,
)
from dcai_assets.errors import DataInputError
from dcai_assets.io.parquet import ParquetIOManager
from dcai_assets.lineage import ModelLineage, model_lineage, models_using_partition
from dcai_assets.spec import (
    CallableSource,
    DailyPartitions,
    DatasetSpec,
    DynamicPartitions,
    HourlyPartitions,
    ImportanceSpec,
    LabelingSpec,
    LandingDirectory,
    MonthlyPartitions,
    StaticPartitions,
    TimeWindowPartitions,
    TrainingSpec,
    WeeklyPartitions,
    partition_order,
    partition_span,
)
from dcai_assets.tracking import MlflowTracking

__all__ = [
    "ABSTAIN",
    "TRIGGER_TAG",
    "ArtifactStore",
    "AutomationSpec",
    "CallableSource",
    "ColumnDrift",
    "ColumnSchema",
    "Conformance",
    "DailyPartitions",
    "DataInputError",
    "DatasetSpec",
    "DynamicPartitions",
    "HourlyPartitions",
    "ImportanceSpec",
    "LabelModel",
    "LabelingFunction",
    "LabelingFunctionError",
    "LabelingFunctionSet",
    "LabelingSpec",
    "LandingDirectory",
    "MajorityVote",
    "MlflowTracking",
    "ModelLineage",
    "MonthlyPartitions",
    "ParquetIOManager",
    "PromotionGate",
    "ShapleyResult",
    "StaticPartitions",
    "TableSchema",
    "TimeWindowPartitions",
    "TrainingSpec",
    "WeeklyPartitions",
    "apply_lfs",
    "automation_run_tags",
    "automation_sensor_name",
    "build_definitions",
    "conform",
    "drift_report",
    "fit_label_model",
    "group_balanced_weights",
    "importance_job_name",
    "infer_schema",
    "ingest_and_label_job_name",
    "ingest_job_name",
    "knn_shapley",
    "label_model_job_name",
    "labeling_function",
    "labeling_job_name",
    "model_lineage",
    "models_using_partition",
    "partition_order",
    "partition_span",
    "partitions_changed",
    "train_job_name",
]
