"""The names of the jobs and sensors `build_definitions` makes for a dataset, for operators and
their own schedules, sensors and alerts (e.g. ``train_job_name(spec) == "orders_train"``)."""

from dcai_assets.definitions import (
    automation_sensor_name,
    continuous_job_name,
    importance_job_name,
    ingest_and_label_job_name,
    ingest_job_name,
    label_model_job_name,
    labeling_job_name,
    train_job_name,
)
from dcai_assets.healing import healing_job_name, healing_sensor_name

__all__ = [
    "automation_sensor_name",
    "continuous_job_name",
    "healing_job_name",
    "healing_sensor_name",
    "importance_job_name",
    "ingest_and_label_job_name",
    "ingest_job_name",
    "label_model_job_name",
    "labeling_job_name",
    "train_job_name",
]
