"""The factory: a dataset spec in, the Dagster definitions of its pipeline out."""

from typing import Any

import dagster as dg

from dcai_assets.assets.health import build_health_checks
from dcai_assets.assets.importance import IMPORTANCE_SCORES, build_importance_asset
from dcai_assets.assets.labeled import (
    LABEL_MODEL,
    LABELED_SET,
    build_label_model_asset,
    build_labeled_set_asset,
)
from dcai_assets.assets.model import TRAINED_MODEL, build_trained_model_asset
from dcai_assets.assets.raw import RAW_DATA, REGISTER_HINT, build_raw_asset
from dcai_assets.assets.validated import QUARANTINED_ROWS, VALIDATED_DATA, build_validated_assets
from dcai_assets.assets.what_if import WHAT_IF, build_what_if_asset
from dcai_assets.automation import (
    TRIGGER_TAG,
    AutomationSpec,
    label_model_condition,
    model_condition,
    partition_condition,
    rescore_condition,
)
from dcai_assets.healing import build_healing_sensor
from dcai_assets.partitions import asset_key
from dcai_assets.sensors import LandingRoute, build_landing_sensor
from dcai_assets.spec import DatasetSpec, DynamicPartitions, ImportanceSpec, LabelingSpec, TrainingSpec


def ingest_job_name(spec: DatasetSpec) -> str:
    return f"{spec.name}_ingest"


def ingest_and_label_job_name(spec: DatasetSpec) -> str:
    return f"{spec.name}_ingest_and_label"


def continuous_job_name(spec: DatasetSpec) -> str:
    return f"{spec.name}_land_to_model"


def label_model_job_name(spec: DatasetSpec) -> str:
    return f"{spec.name}_fit_label_model"


def labeling_job_name(spec: DatasetSpec) -> str:
    return f"{spec.name}_label"


def train_job_name(spec: DatasetSpec) -> str:
    return f"{spec.name}_train"


def importance_job_name(spec: DatasetSpec) -> str:
    return f"{spec.name}_score_importance"


def what_if_job_name(spec: DatasetSpec) -> str:
    return f"{spec.name}_what_if"


def automation_sensor_name(spec: DatasetSpec) -> str:
    return f"{spec.name}_automation"


def build_definitions(
    spec: DatasetSpec,
    *,
    labeling: LabelingSpec | None = None,
    training: TrainingSpec | None = None,
    importance: ImportanceSpec | None = None,
    automation: AutomationSpec | None = None,
    sensor_interval_seconds: int = 30,
    sensor_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED,
) -> dg.Definitions:
    """Assets, checks, jobs and the landing sensor for one dataset.

    With ``labeling``, adds the label model and the labeled sets; with ``training`` too, the
    trained model; with ``importance``, the importance scores. With ``automation``, every stage
    after ingestion carries an automation condition and an automation-condition sensor runs them.
    Once the label model exists, the landing sensor requests ``<name>_ingest_and_label`` (read,
    validate, quarantine and label a landed partition in one run) instead of ``<name>_ingest``;
    with ``automation`` and a model, a tick that finds a single new partition requests
    ``<name>_land_to_model`` (the same, then retrain, gate and re-score, in one run).
    Resources are the caller's: an ``io_manager`` (e.g. :class:`ParquetIOManager`), an
    ``artifacts`` :class:`ArtifactStore` and, for training, an ``mlflow_tracking``
    :class:`MlflowTracking`.
    """
    if training is not None and labeling is None:
        raise ValueError("build_definitions: training needs labeling; expected a LabelingSpec too")
    if importance is not None and training is None:
        raise ValueError("build_definitions: importance needs training; expected a TrainingSpec too")
    assets: list[dg.AssetsDefinition] = [build_raw_asset(spec), build_validated_assets(spec)]
    ingest = dg.define_asset_job(
        ingest_job_name(spec),
        selection=dg.AssetSelection.assets(
            asset_key(spec, RAW_DATA), asset_key(spec, VALIDATED_DATA), asset_key(spec, QUARANTINED_ROWS)
        ),
        description=f"Read, validate and quarantine one partition of {spec.name}."
        + (REGISTER_HINT if isinstance(spec.partitioning, DynamicPartitions) else ""),
    )
    jobs = [ingest]
    ingest_and_label = None
    if labeling is not None:
        labeling_assets, labeling_jobs = _labeling_stage(spec, labeling, ingest)
        assets += labeling_assets
        jobs += labeling_jobs
        ingest_and_label = labeling_jobs[-1]
    model_assets, model_jobs = _model_stages(spec, labeling, training, importance)
    assets += model_assets
    jobs += model_jobs
    routes = _landing_routes(
        spec,
        ingest_and_label,
        model_stages=training is not None and automation is not None,
        scored=importance is not None,
    )
    jobs += [r.job for r in routes if r.job is not ingest_and_label]
    sensors: list = [
        build_landing_sensor(
            spec,
            ingest,
            minimum_interval_seconds=sensor_interval_seconds,
            default_status=sensor_status,
            routes=routes,
        )
    ]
    if automation is not None:
        assets = [_with_condition(a, spec, automation) for a in assets]
        sensors.append(_automation_sensor(spec, automation))
        if automation.heal_after_seconds is not None:
            sensors.append(build_healing_sensor(spec, automation, run_tags=_retry_tags(automation)))
    checks = [] if importance is None else [build_health_checks(spec, labeling, training, importance)]
    return dg.Definitions(assets=assets, asset_checks=checks, jobs=jobs, sensors=sensors)


def _labeling_stage(spec: DatasetSpec, labeling: LabelingSpec, ingest: Any) -> tuple[list, list]:
    """The label model and the labeled sets, their jobs, and (last) the job that ingests and
    labels a landed partition in one run."""
    assets = [build_label_model_asset(spec, labeling), build_labeled_set_asset(spec, labeling)]
    jobs = [
        dg.define_asset_job(
            label_model_job_name(spec),
            selection=dg.AssetSelection.assets(asset_key(spec, LABEL_MODEL)),
            description=f"Fit the label model of {spec.name} on every usable validated partition.",
        ),
        dg.define_asset_job(
            labeling_job_name(spec),
            selection=dg.AssetSelection.assets(asset_key(spec, LABELED_SET)),
            description=f"Apply the LFs and the label model to one partition of {spec.name}.",
        ),
    ]
    # The landing sensor's run once the label model exists: a landed day is labeled in the
    # run that validates it (a failed blocking check still skips the labeling step), which
    # saves a run start and an automation tick per file.
    jobs.append(
        dg.define_asset_job(
            ingest_and_label_job_name(spec),
            selection=ingest.selection | dg.AssetSelection.assets(asset_key(spec, LABELED_SET)),
            description=f"Read, validate, quarantine and label one partition of {spec.name}.",
        )
    )
    return assets, jobs


def _model_stages(
    spec: DatasetSpec,
    labeling: LabelingSpec | None,
    training: TrainingSpec | None,
    importance: ImportanceSpec | None,
) -> tuple[list, list]:
    """The trained model and the importance scores, where specified, with their jobs."""
    assets, jobs = [], []
    if training is not None:
        assets.append(build_trained_model_asset(spec, labeling, training))
        jobs.append(
            dg.define_asset_job(
                train_job_name(spec),
                selection=dg.AssetSelection.assets(asset_key(spec, TRAINED_MODEL)),
                description=f"Retrain, evaluate, register and gate the model of {spec.name}.",
            )
        )
    if importance is not None:
        assets.append(build_importance_asset(spec, labeling, training, importance))
        jobs.append(
            dg.define_asset_job(
                importance_job_name(spec),
                selection=dg.AssetSelection.assets(asset_key(spec, IMPORTANCE_SCORES)),
                description=f"Re-score the training rows of the latest {spec.name} model (KNN-Shapley).",
            )
        )
        assets.append(build_what_if_asset(spec, labeling, training, importance))  # on demand only
        jobs.append(
            dg.define_asset_job(
                what_if_job_name(spec),
                selection=dg.AssetSelection.assets(asset_key(spec, WHAT_IF)),
                description=f"What-if of the latest {spec.name} model: retrain without its most harmful "
                "rows (or one LF's rows) beside random removals; never promoted (dcai-assets what-if).",
            )
        )
    return assets, jobs


def _automation_sensor(
    spec: DatasetSpec, automation: AutomationSpec
) -> dg.AutomationConditionSensorDefinition:
    return dg.AutomationConditionSensorDefinition(
        automation_sensor_name(spec),
        target=dg.AssetSelection.key_prefixes(spec.name),
        minimum_interval_seconds=automation.sensor_interval_seconds,
        default_status=automation.default_status,
        run_tags={
            **_retry_tags(automation),
            # The daemon's runs cannot carry which partitions changed; the evaluation says.
            TRIGGER_TAG: "automation condition: see the sensor's evaluation for what changed",
        },
        description=f"Runs the {spec.name} stages whose automation conditions hold.",
    )


def _retry_tags(automation: AutomationSpec) -> dict[str, str]:
    return {
        "dagster/max_retries": str(automation.max_retries),
        "dagster/retry_on_asset_or_op_failure": "false",  # a failed check stays failed
    }


def _landing_routes(
    spec: DatasetSpec,
    ingest_and_label: Any,
    *,
    model_stages: bool,
    scored: bool,
) -> list[LandingRoute]:
    """What the landing sensor requests instead of the ingest job. A single landed partition,
    once a model exists: one run from the file to the gated model and its re-scored rows (one
    process start, one code load, no wait for an automation tick). More partitions at once (a
    backlog, a replay), or no model yet: ingest and label in one run per partition, and
    automation retrains once when they are all done."""
    if ingest_and_label is None:
        return []
    label_model, model = asset_key(spec, LABEL_MODEL), asset_key(spec, TRAINED_MODEL)
    routes = []
    if model_stages:
        keys = [model, *([asset_key(spec, IMPORTANCE_SCORES)] if scored else [])]
        continuous = dg.define_asset_job(
            continuous_job_name(spec),
            selection=ingest_and_label.selection | dg.AssetSelection.assets(*keys),
            description=f"One landed partition of {spec.name}: read, validate, quarantine and label "
            "it, then retrain, gate" + (" and re-score" if scored else "") + " in the same run.",
        )
        routes.append(
            LandingRoute(
                continuous, lambda i, n: n == 1 and _materialized(i, label_model) and _materialized(i, model)
            )
        )
    routes.append(LandingRoute(ingest_and_label, lambda i, n: _materialized(i, label_model)))
    return routes


def _materialized(instance: dg.DagsterInstance, key: dg.AssetKey) -> bool:
    return instance.get_latest_materialization_event(key) is not None


def _with_condition(
    assets_def: dg.AssetsDefinition, spec: DatasetSpec, automation: AutomationSpec
) -> dg.AssetsDefinition:
    """The asset with the automation condition of its stage (ingestion has none: the landing
    sensor runs raw and validated data together)."""
    conditions = {
        asset_key(spec, LABELED_SET): partition_condition(automation, asset_key(spec, LABEL_MODEL)),
        asset_key(spec, LABEL_MODEL): label_model_condition(automation),
        asset_key(spec, TRAINED_MODEL): model_condition(automation, asset_key(spec, LABELED_SET)),
        asset_key(spec, IMPORTANCE_SCORES): rescore_condition(asset_key(spec, TRAINED_MODEL)),
    }
    if not any(k in conditions for k in assets_def.keys):
        return assets_def
    return assets_def.map_asset_specs(
        lambda s: s.replace_attributes(automation_condition=conditions.get(s.key, s.automation_condition))
    )
