"""The factory: a dataset spec in, the Dagster definitions of its pipeline out."""

from __future__ import annotations

import dagster as dg

from dcai_assets.assets.raw import RAW_DATA, build_raw_asset
from dcai_assets.assets.validated import QUARANTINED_ROWS, VALIDATED_DATA, build_validated_assets
from dcai_assets.partitions import asset_key
from dcai_assets.sensors import build_landing_sensor
from dcai_assets.spec import DatasetSpec


def ingest_job_name(spec: DatasetSpec) -> str:
    return f"{spec.name}_ingest"


def build_definitions(
    spec: DatasetSpec,
    *,
    sensor_interval_seconds: int = 30,
    sensor_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED,
) -> dg.Definitions:
    """Assets, checks, the ingest job and the landing sensor for one dataset.

    Resources are the caller's: an ``io_manager`` (e.g. :class:`ParquetIOManager`) and an
    ``artifacts`` :class:`ArtifactStore`.
    """
    raw = build_raw_asset(spec)
    validation = build_validated_assets(spec)
    ingest = dg.define_asset_job(
        ingest_job_name(spec),
        selection=dg.AssetSelection.assets(
            asset_key(spec, RAW_DATA),
            asset_key(spec, VALIDATED_DATA),
            asset_key(spec, QUARANTINED_ROWS),
        ),
        description=f"Read, validate and quarantine one partition of {spec.name}.",
    )
    sensor = build_landing_sensor(
        spec, ingest, minimum_interval_seconds=sensor_interval_seconds, default_status=sensor_status
    )
    return dg.Definitions(assets=[raw, validation], jobs=[ingest], sensors=[sensor])
