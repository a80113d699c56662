"""``defs.yaml`` attributes -> the Python spec objects that ``build_definitions`` takes: the one
code path both front doors share. Paths are relative to the folder of the ``defs.yaml``; Python
hooks (``<module>:<attribute>``) are imported here, with errors that name the field."""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

from dcai_assets.automation import AutomationSpec
from dcai_assets.components.attributes import (
    AutomationModel,
    LabelingModel,
    PartitionsModel,
    SourceModel,
    TrainingModel,
    WhatIfModel,
)
from dcai_assets.core.evaluation import PromotionGate
from dcai_assets.core.labeling import LabelingFunctionSet
from dcai_assets.spec import (
    CallableSource,
    DailyPartitions,
    DatasetSpec,
    DynamicPartitions,
    HealthChecks,
    HourlyPartitions,
    ImportanceSpec,
    LabelingSpec,
    LandingDirectory,
    MonthlyPartitions,
    Partitioning,
    PrivacySpec,
    Source,
    StaticPartitions,
    TrainingSpec,
    WeeklyPartitions,
    WhatIfSpec,
)

if TYPE_CHECKING:
    from dcai_assets.components.pipeline import DataCentricPipeline

_TIME_WINDOWS = {
    "hourly": HourlyPartitions,
    "daily": DailyPartitions,
    "weekly": WeeklyPartitions,
    "monthly": MonthlyPartitions,
}
_STATUS = {"running": dg.DefaultSensorStatus.RUNNING, "stopped": dg.DefaultSensorStatus.STOPPED}


@dataclass(frozen=True)
class PipelineSpecs:
    """Everything ``build_definitions`` takes, as the Python front door would write it."""

    dataset: DatasetSpec
    labeling: LabelingSpec | None = None
    training: TrainingSpec | None = None
    importance: ImportanceSpec | None = None
    automation: AutomationSpec | None = None
    sensor_interval_seconds: int = 30
    sensor_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED

    def build_definitions(self) -> dg.Definitions:
        from dcai_assets.definitions import build_definitions

        return build_definitions(
            self.dataset,
            labeling=self.labeling,
            training=self.training,
            importance=self.importance,
            automation=self.automation,
            sensor_interval_seconds=self.sensor_interval_seconds,
            sensor_status=self.sensor_status,
        )


def _choice(value: Any, allowed: Any, field: str) -> Any:
    """``value`` if it is one of ``allowed``; a ValueError naming ``field`` otherwise (a string from
    a ``{{ template }}`` passes the YAML check, so values are checked here as well)."""
    if value not in allowed:
        raise ValueError(f"{field}: {value!r}; expected one of {sorted(allowed)}")
    return value


def import_hook(reference: str, field: str, expected: type | None = None) -> Any:
    """The object ``<module>:<attribute>`` names; a ValueError naming ``field`` when the module
    cannot be imported, the attribute is missing, or it is not an instance of ``expected``
    (callable when ``expected`` is None)."""
    module_name, sep, attribute = reference.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"{field}: {reference!r}; expected '<module>:<attribute>', e.g. my_project.lfs:LFS")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(
            f"{field}: {reference!r}: module {module_name!r} cannot be imported ({e}); expected a module "
            "on the project's Python path"
        ) from e
    obj: Any = module
    for part in attribute.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"{field}: {reference!r}: {module_name} has no attribute {attribute!r}")
        obj = getattr(obj, part)
    if expected is None and not callable(obj):
        raise ValueError(f"{field}: {reference!r} is a {type(obj).__name__}; expected a callable")
    if expected is not None and not isinstance(obj, expected):
        raise ValueError(f"{field}: {reference!r} is a {type(obj).__name__}; expected a {expected.__name__}")
    return obj


def resolve_path(path: str, base_dir: Path) -> Path:
    """``path`` as given when absolute, else relative to ``base_dir`` (the defs.yaml's folder)."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else Path(os.path.normpath(base_dir / p))


def to_source(source: SourceModel, base_dir: Path) -> Source:
    if (source.landing_directory is None) == (source.load is None):
        raise ValueError(
            "source: expected exactly one of 'landing_directory' (a folder of partition files) and "
            "'load' (a '<module>:<callable>' reading one partition)"
        )
    if source.landing_directory is not None:
        return LandingDirectory(
            path=resolve_path(source.landing_directory, base_dir),
            suffixes=tuple(source.suffixes),
            existing_files=source.existing_files,
        )
    return CallableSource(
        load=import_hook(source.load, "source.load"),
        list_partitions=None
        if source.list_partitions is None
        else import_hook(source.list_partitions, "source.list_partitions"),
    )


def to_partitioning(partitions: PartitionsModel) -> Partitioning:
    kind = _choice(partitions.type, [*_TIME_WINDOWS, "static", "dynamic"], "partitions.type")
    given = {f for f in ("start", "end", "keys", "order") if getattr(partitions, f) is not None}
    allowed = {"static": {"keys", "order"}, "dynamic": {"order"}}.get(kind, {"start", "end"})
    if given - allowed:
        raise ValueError(
            f"partitions: {sorted(given - allowed)} do not apply to type {kind!r}; expected only "
            f"{sorted(allowed)}" + (" and timezone" if kind in _TIME_WINDOWS else "")
        )
    if kind in _TIME_WINDOWS:
        if partitions.start is None:
            raise ValueError(f"partitions.start: missing; expected the first {kind} window, e.g. 2024-05-01")
        return _TIME_WINDOWS[kind](start=partitions.start, end=partitions.end, timezone=partitions.timezone)
    if kind == "static":
        if partitions.keys is None:
            raise ValueError("partitions.keys: missing; expected the list of static partition keys")
        return StaticPartitions(keys=list(partitions.keys), order=partitions.order)
    return DynamicPartitions(order=partitions.order)


def to_reference(reference: list[str] | str | None) -> Any:
    """A list of partition keys as given; a string is a ``<module>:<callable>`` hook."""
    if reference is None or isinstance(reference, list):
        return reference
    return import_hook(reference, "reference")


def to_labeling(labeling: LabelingModel) -> LabelingSpec:
    return LabelingSpec(
        lfs=import_hook(labeling.lfs, "labeling.lfs", LabelingFunctionSet),
        gold_column=labeling.gold_column,
        label_model=labeling.label_model,
        max_iter=labeling.max_iter,
        seed=labeling.seed,
        min_label_coverage=labeling.min_label_coverage,
    )


def to_training(training: TrainingModel) -> TrainingSpec:
    fields = training.model_dump(exclude={"pipeline", "gate"})
    return TrainingSpec(
        pipeline=import_hook(training.pipeline, "training.pipeline"),
        gate=PromotionGate(**training.gate.model_dump()),
        **fields,
    )


def to_automation(automation: AutomationModel) -> AutomationSpec:
    fields = automation.model_dump(exclude={"default_status"})
    status = _STATUS[_choice(automation.default_status, _STATUS, "automation.default_status")]
    return AutomationSpec(default_status=status, **fields)


def to_what_if(what_if: WhatIfModel) -> WhatIfSpec:
    return WhatIfSpec(fractions=tuple(what_if.fractions), random_repeats=what_if.random_repeats)


def to_specs(component: DataCentricPipeline, base_dir: Path) -> PipelineSpecs:
    """The spec objects a :class:`DataCentricPipeline`'s attributes stand for."""
    dataset = DatasetSpec(
        name=component.name,
        description=component.description,
        source=to_source(component.source, base_dir),
        partitioning=to_partitioning(component.partitions),
        schema_path=resolve_path(component.schema_path, base_dir),
        key=component.key,
        label=component.label,
        reference=to_reference(component.reference),
        schema_overrides=component.schema_overrides or {},
        owners=list(component.owners),
        what_if=to_what_if(component.what_if),
        privacy=PrivacySpec()
        if component.privacy is None
        else PrivacySpec(
            **component.privacy.model_dump(exclude={"audit_path"}),
            audit_path=None
            if component.privacy.audit_path is None
            else resolve_path(component.privacy.audit_path, base_dir),
        ),
        **({} if component.health_checks is None else {"health_checks": to_health(component.health_checks)}),
    )
    sensor = component.landing_sensor
    return PipelineSpecs(
        dataset=dataset,
        labeling=None if component.labeling is None else to_labeling(component.labeling),
        training=None if component.training is None else to_training(component.training),
        importance=None
        if component.importance is None
        else ImportanceSpec(**component.importance.model_dump()),
        automation=None if component.automation is None else to_automation(component.automation),
        sensor_interval_seconds=sensor.interval_seconds,
        sensor_status=_STATUS[_choice(sensor.default_status, _STATUS, "landing_sensor.default_status")],
    )


def to_health(model) -> HealthChecks:
    """The :class:`HealthChecks` of a ``health_checks:`` block."""
    return HealthChecks(**{**model.model_dump(), "blocking": tuple(model.blocking)})


def parse_duration(text: str, field: str) -> timedelta:
    """``90m``, ``26h``, ``2d`` -> a timedelta."""
    units = {"m": "minutes", "h": "hours", "d": "days"}
    try:
        value = float(text[:-1])
        return timedelta(**{units[text[-1]]: value})
    except (ValueError, KeyError, IndexError):
        raise ValueError(f"{field}: {text!r}; expected a number and a unit m, h or d, e.g. 26h") from None
