"""The ``DataCentricPipeline`` component: a dataset's pipeline declared in a ``defs.yaml``."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import BaseModel, Field

from dcai_assets.components.attributes import (
    AutomationModel,
    FreshnessByAssetModel,
    HealthChecksModel,
    ImportanceModel,
    LabelingModel,
    LandingSensorModel,
    PartitionsModel,
    PrivacyModel,
    SourceModel,
    StorageModel,
    TrainingModel,
    WhatIfModel,
)
from dcai_assets.components.scaffolder import DataCentricPipelineScaffolder
from dcai_assets.components.schema import precise_schema_model
from dcai_assets.components.to_spec import PipelineSpecs, parse_duration, resolve_path, to_specs


@dg.scaffold_with(DataCentricPipelineScaffolder)
class DataCentricPipeline(dg.Component, dg.Model, dg.Resolvable):
    """A dataset's data-centric pipeline, declared in YAML: raw -> validated -> labeled -> model
    -> importance.

    Raw partitions are validated (Great Expectations), labeled (labeling functions and a label
    model), used to train a scikit-learn model (tracked in MLflow), and valued row by row
    (KNN-Shapley) into a review queue.

    The attributes are those of :class:`dcai_assets.DatasetSpec` and its companions
    (``labeling``, ``training``, ``importance``, ``automation``); the definitions are built by
    :func:`dcai_assets.build_definitions`, exactly as from the Python spec. Python hooks (the
    labeling functions, the model factory, a loader) are ``<module>:<attribute>`` references.
    Relative paths start at this ``defs.yaml``'s folder.
    """

    name: str = Field(description="asset-key prefix, e.g. orders gives orders/raw_data")
    source: SourceModel
    partitions: PartitionsModel
    schema_path: str = Field(description="the reviewable schema file (dcai-assets schema infer writes it)")
    description: str | None = None
    key: str | list[str] | None = Field(None, description="column(s) identifying a row")
    label: str | None = Field(None, description="column of gold labels, if any (may be partly filled)")
    reference: list[str] | str | None = Field(
        None, description="partition keys the schema is inferred from, or a '<module>:<callable>'"
    )
    schema_overrides: dict[str, dict[str, Any]] | None = None
    owners: list[str] = Field(default_factory=list)
    group_name: str | None = Field(
        None, description="one asset group for the whole pipeline (default: per stage)"
    )
    labeling: LabelingModel | None = None
    training: TrainingModel | None = None
    importance: ImportanceModel | None = None
    what_if: WhatIfModel = WhatIfModel()
    privacy: PrivacyModel | None = None
    health_checks: HealthChecksModel | None = None
    automation: AutomationModel | None = None
    landing_sensor: LandingSensorModel = LandingSensorModel()
    freshness: FreshnessByAssetModel | None = None
    storage: StorageModel | None = None

    @classmethod
    def get_model_cls(cls) -> type[BaseModel]:
        return precise_schema_model(super().get_model_cls())

    def specs(self, base_dir: Path) -> PipelineSpecs:
        """The Python spec objects these attributes stand for; relative paths from ``base_dir``."""
        return to_specs(self, Path(base_dir))

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        defs = self.specs(context.path).build_definitions()
        defs = self._presented(defs)
        if self.storage is None:
            return defs
        return dg.Definitions.merge(defs, dg.Definitions(resources=self._resources(context.path)))

    def _presented(self, defs: dg.Definitions) -> dg.Definitions:
        """The definitions with the YAML's group and freshness policies (nothing when unset)."""
        policies = {}
        for asset in FreshnessByAssetModel.model_fields:
            policy = getattr(self.freshness, asset, None)
            if policy is not None:
                field = f"freshness.{asset}"
                policies[dg.AssetKey([self.name, asset])] = dg.FreshnessPolicy.time_window(
                    fail_window=parse_duration(policy.fail_window, f"{field}.fail_window"),
                    warn_window=None
                    if policy.warn_window is None
                    else parse_duration(policy.warn_window, f"{field}.warn_window"),
                )
        if self.group_name is None and not policies:
            return defs

        def present(spec: dg.AssetSpec) -> dg.AssetSpec:
            return spec.replace_attributes(
                group_name=self.group_name or spec.group_name,
                freshness_policy=policies.get(spec.key, spec.freshness_policy),
            )

        return defs.map_asset_specs(func=present)

    def _resources(self, base_dir: Path) -> dict[str, Any]:
        storage = self.storage
        assert storage is not None
        root = resolve_path(storage.data_dir, base_dir).resolve()
        return dict(local_resources(str(root), storage.tracking_uri, storage.experiment_name))


@cache
def local_resources(root: str, tracking_uri: str | None, experiment_name: str | None) -> tuple:
    """The resources of a ``storage`` section, one set of objects per setting: Dagster merges
    the definitions of a project's components only if a resource key holds the same object."""
    from dcai_assets.artifacts import ArtifactStore
    from dcai_assets.io.parquet import ParquetIOManager
    from dcai_assets.tracking import MlflowTracking

    tracking = {} if experiment_name is None else {"experiment_name": experiment_name}
    return (
        ("io_manager", ParquetIOManager(base_dir=f"{root}/lake")),
        ("artifacts", ArtifactStore(base_dir=f"{root}/artifacts")),
        (
            "mlflow_tracking",
            MlflowTracking(
                tracking_uri=tracking_uri or f"sqlite:///{root}/mlflow/mlflow.db",
                artifact_location=f"{root}/mlflow/artifacts",
                **tracking,
            ),
        ),
    )
