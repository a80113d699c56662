"""The ``defs.yaml`` attributes of a :class:`DataCentricPipeline`: one model per section of the
Python spec (:mod:`dcai_assets.spec`), with the same names and defaults. The models are plain
data checked by ``dg check defs`` (a JSON schema, so a wrong field is reported with its line);
:mod:`dcai_assets.components.to_spec` turns them into the spec objects, which check the rest."""

from __future__ import annotations

from typing import Any, Literal

import dagster as dg
from pydantic import Field

HOOK_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_.]*$"
DURATION_PATTERN = r"^[0-9]+(\.[0-9]+)?[mhd]$"


def _hook(description: str, default: object = ...) -> Any:
    """A ``<module>:<attribute>`` field. Constraints go in the JSON schema that ``dg check defs``
    validates against (Dagster refuses pydantic constraints on nested plain models); the spec
    objects check values again when the definitions are built."""
    return Field(
        default,
        description=f"{description} (<module>:<attribute>)",
        json_schema_extra={"pattern": HOOK_PATTERN},
    )


def _at_least(minimum: float, default: object, maximum: float | None = None) -> Any:
    bounds = {"minimum": minimum} | ({} if maximum is None else {"maximum": maximum})
    return Field(default, json_schema_extra=bounds)


class SourceModel(dg.Resolvable, dg.Model):
    """Where raw partitions come from: a landing directory (file stem = partition key), or a
    Python loader. Set exactly one of ``landing_directory`` and ``load``."""

    landing_directory: str | None = Field(
        None, description="folder of partition files; relative paths start at this defs.yaml's folder"
    )
    suffixes: list[Literal[".csv", ".parquet"]] = Field(default_factory=lambda: [".csv", ".parquet"])
    existing_files: Literal["process", "skip"] = "process"
    load: str | None = _hook("load(partition_key) -> DataFrame", None)
    list_partitions: str | None = _hook("list_partitions() -> keys, for the landing sensor", None)


class PartitionsModel(dg.Resolvable, dg.Model):
    """How raw partitions are keyed: ``type`` and the settings of that type."""

    type: Literal["hourly", "daily", "weekly", "monthly", "static", "dynamic"]
    start: str | None = Field(None, description="time windows: YYYY-MM-DD (hourly also YYYY-MM-DD-HH:MM)")
    end: str | None = None
    timezone: str = "UTC"
    keys: list[str] | None = Field(None, description="static: the partition keys")
    order: Literal["time", "key"] | None = Field(None, description="static/dynamic: which keys are newest")


class LabelingModel(dg.Resolvable, dg.Model):
    """The labeling functions and the label model (:class:`dcai_assets.LabelingSpec`)."""

    lfs: str = _hook("a LabelingFunctionSet")
    gold_column: str | None = None
    label_model: Literal["dawid_skene", "majority_vote"] = "dawid_skene"
    max_iter: int = _at_least(1, 500)
    seed: int = _at_least(0, 0)
    min_label_coverage: float = _at_least(0, 0.5, 1)


class GateModel(dg.Resolvable, dg.Model):
    """When a challenger may replace the champion (:class:`dcai_assets.PromotionGate`)."""

    metric: str = "accuracy"
    max_drop: float = 0.0
    max_slice_drop: float = 0.05
    max_fairness_increase: float = 0.05
    min_rows: int = _at_least(1, 30)
    min_slice_rows: int = _at_least(1, 20)
    require_fairness: bool = False


class TrainingModel(dg.Resolvable, dg.Model):
    """How the model is trained, evaluated and promoted (:class:`dcai_assets.TrainingSpec`)."""

    pipeline: str = _hook("a factory returning a fresh scikit-learn Pipeline")
    features: list[str] = Field(json_schema_extra={"minItems": 1})
    window: int | None = _at_least(2, None)
    holdout_partitions: int = _at_least(1, 1)
    slices: list[str] = Field(default_factory=list)
    sensitive: str | None = None
    use_confidence_weights: bool = True
    gate: GateModel = GateModel()
    model_name: str | None = None
    seed: int = _at_least(0, 0)
    min_gold_rows: int = _at_least(1, 30)
    extra_pip_requirements: list[str] = Field(default_factory=list)
    skops_trusted_types: list[str] = Field(default_factory=list)
    positive_class: str | None = None
    min_class_rows: int = _at_least(1, 10)
    max_holdout_partitions: int | None = _at_least(1, None)


class ImportanceModel(dg.Resolvable, dg.Model):
    """How training rows are valued: KNN-Shapley (:class:`dcai_assets.ImportanceSpec`)."""

    k: int = _at_least(1, 5)
    group: str | None = Field(None, description="group-balanced utility over this column")
    review_rows: int = _at_least(0, 25)
    shards: int = _at_least(1, 1)
    review_gold: bool = False


class WhatIfModel(dg.Resolvable, dg.Model):
    """The what-if sweep (:class:`dcai_assets.spec.WhatIfSpec`)."""

    fractions: list[float] = Field(
        default_factory=lambda: [0.005, 0.01, 0.02, 0.05],
        description="shares of the training rows removed, each between 0 and 1",
    )
    random_repeats: int = _at_least(2, 5)


class PrivacyModel(dg.Resolvable, dg.Model):
    """No-human-access mode: aggregates only in the UI, logs and MLflow
    (:class:`dcai_assets.spec.PrivacySpec`)."""

    no_human_access: bool = False
    min_group_size: int = _at_least(1, 10)
    protected_columns: list[str] | None = Field(None, description="default: every data column")
    audit_path: str | None = Field(
        None, description="the audit table of row-level reads (default: <lake>/_audit/<name>/access.sqlite)"
    )


class HealthChecksModel(dg.Resolvable, dg.Model):
    """The data health checks on the importance scores (:class:`dcai_assets.spec.HealthChecks`)."""

    blocking: list[str] = Field(default_factory=list, description="checks whose failure blocks")
    alpha: float = _at_least(0, 0.01, 1)
    max_duplicate_share: float = _at_least(0, 0.0, 1)
    outlier_factor: float = _at_least(1, 3.0)
    max_outlier_share: float = _at_least(0, 0.001, 1)
    min_class_share: float = _at_least(0, 0.05, 1)
    max_label_shift: float = _at_least(0, 0.25, 1)
    min_slice_rows: int = _at_least(1, 30)
    min_accuracy_gap: float = _at_least(0, 0.15, 1)
    max_label_issue_excess: float = _at_least(0, 0.05, 1)


class AutomationModel(dg.Resolvable, dg.Model):
    """How the pipeline runs itself (:class:`dcai_assets.AutomationSpec`)."""

    lookback_days: int | None = _at_least(1, None)
    label_model_cron: str = "0 3 * * *"
    retrain_cron: str | None = None
    sensor_interval_seconds: int = _at_least(1, 5)
    default_status: Literal["running", "stopped"] = "stopped"
    max_retries: int = _at_least(0, 2)
    heal_after_seconds: float | None = _at_least(0, 300.0)
    heal_attempts: int = _at_least(1, 6)


class LandingSensorModel(dg.Resolvable, dg.Model):
    """The landing sensor that turns arriving partitions into ingest runs."""

    interval_seconds: int = _at_least(1, 30)
    default_status: Literal["running", "stopped"] = "stopped"


class FreshnessModel(dg.Resolvable, dg.Model):
    """A time-window freshness policy: the asset fails (warns) when its last materialization is
    older than ``fail_window`` (``warn_window``), e.g. ``26h``, ``90m``, ``2d``."""

    fail_window: str = Field(json_schema_extra={"pattern": DURATION_PATTERN})
    warn_window: str | None = Field(None, json_schema_extra={"pattern": DURATION_PATTERN})


class StorageModel(dg.Resolvable, dg.Model):
    """Local resources for the pipeline (Parquet lake, artifacts, MLflow on SQLite), all under
    ``data_dir``; leave out to provide ``io_manager``, ``artifacts`` and ``mlflow_tracking``
    yourself (e.g. in a ``resources.py`` of the defs folder). Resources are the project's, not
    one pipeline's: pipelines of one project give the same ``storage``, or one gives it."""

    data_dir: str = Field(description="relative paths start at this defs.yaml's folder")
    experiment_name: str | None = Field(None, description="MLflow experiment (default dcai_assets)")
    tracking_uri: str | None = Field(None, description="MLflow tracking URI; SQLite under data_dir if unset")


class FreshnessByAssetModel(dg.Resolvable, dg.Model):
    """Freshness policies by asset name (each optional)."""

    raw_data: FreshnessModel | None = None
    validated_data: FreshnessModel | None = None
    quarantined_rows: FreshnessModel | None = None
    label_model: FreshnessModel | None = None
    labeled_set: FreshnessModel | None = None
    trained_model: FreshnessModel | None = None
    importance_scores: FreshnessModel | None = None
