"""dcai_assets: a data-centric-AI pipeline as Dagster software-defined assets.

The top level holds what a pipeline user needs: the ``DataCentricPipeline`` component (for
``dg`` and a ``defs.yaml``), or ``build_definitions`` with the specs it takes, and the resources
the pipeline runs on. Everything else has its own public module:

- ``dcai_assets.spec``: every spec class, including the partitionings (``DailyPartitions``,
  ``MonthlyPartitions``, ``DynamicPartitions`` ...) and ``partition_order``/``partition_span``.
- ``dcai_assets.core``: the pure numeric functions, usable from a notebook without Dagster:
  ``core.labeling`` (``labeling_function``, ``LabelingFunctionSet``, ``ABSTAIN``, ``apply_lfs``),
  ``core.label_model``, ``core.knn_shapley``, ``core.drift``, ``core.schema``, ``core.schema_inference``,
  ``core.conformance``, ``core.evaluation``.
- For operators: ``dcai_assets.lineage`` (what made a model version), ``dcai_assets.job_names``,
  ``dcai_assets.automation`` (run tags of automated runs), ``dcai_assets.cli`` (``dcai-assets``).
"""

from __future__ import annotations

import importlib
import warnings

from dcai_assets.artifacts import ArtifactStore
from dcai_assets.automation import AutomationSpec
from dcai_assets.components import DataCentricPipeline
from dcai_assets.core.evaluation import PromotionGate
from dcai_assets.definitions import build_definitions
from dcai_assets.io.parquet import ParquetIOManager
from dcai_assets.spec import (
    CallableSource,
    DatasetSpec,
    ImportanceSpec,
    LabelingSpec,
    LandingDirectory,
    TrainingSpec,
)
from dcai_assets.tracking import MlflowTracking

__all__ = [
    "ArtifactStore",
    "AutomationSpec",
    "CallableSource",
    "DataCentricPipeline",
    "DatasetSpec",
    "ImportanceSpec",
    "LabelingSpec",
    "LandingDirectory",
    "MlflowTracking",
    "ParquetIOManager",
    "PromotionGate",
    "TrainingSpec",
    "build_definitions",
]

# Names the top level exported up to 0.1.0, and the module each lives in now. They stay
# importable from the top level, with a DeprecationWarning, until the next release.
_MOVED = {
    **dict.fromkeys(
        ["ABSTAIN", "LabelingFunction", "LabelingFunctionError", "LabelingFunctionSet"],
        "dcai_assets.core.labeling",
    ),
    **dict.fromkeys(["apply_lfs", "labeling_function"], "dcai_assets.core.labeling"),
    **dict.fromkeys(["LabelModel", "MajorityVote", "fit_label_model"], "dcai_assets.core.label_model"),
    **dict.fromkeys(
        ["ShapleyResult", "group_balanced_weights", "knn_shapley"], "dcai_assets.core.knn_shapley"
    ),
    **dict.fromkeys(["ColumnDrift", "drift_report"], "dcai_assets.core.drift"),
    **dict.fromkeys(["ColumnSchema", "TableSchema"], "dcai_assets.core.schema"),
    "infer_schema": "dcai_assets.core.schema_inference",
    **dict.fromkeys(["Conformance", "conform"], "dcai_assets.core.conformance"),
    **dict.fromkeys(
        [
            "DailyPartitions",
            "DynamicPartitions",
            "HourlyPartitions",
            "MonthlyPartitions",
            "StaticPartitions",
            "TimeWindowPartitions",
            "WeeklyPartitions",
            "partition_order",
            "partition_span",
        ],
        "dcai_assets.spec",
    ),
    **dict.fromkeys(["TRIGGER_TAG", "automation_run_tags", "partitions_changed"], "dcai_assets.automation"),
    **dict.fromkeys(
        [
            "automation_sensor_name",
            "importance_job_name",
            "ingest_and_label_job_name",
            "ingest_job_name",
            "label_model_job_name",
            "labeling_job_name",
            "train_job_name",
        ],
        "dcai_assets.job_names",
    ),
    **dict.fromkeys(["ModelLineage", "model_lineage", "models_using_partition"], "dcai_assets.lineage"),
    "DataInputError": "dcai_assets.errors",
}


def __getattr__(name: str) -> object:
    module = _MOVED.get(name)
    if module is None:
        raise AttributeError(f"module 'dcai_assets' has no attribute {name!r}")
    warnings.warn(
        f"dcai_assets.{name} is deprecated and will be removed in the next release; "
        f"use `from {module} import {name}`",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_MOVED])
