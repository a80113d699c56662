"""A minimal code location for the file-flood scenario: the plugin's own landing sensor on a daily
dataset, targeting a one-asset job that counts a landed file's lines (no GX, no MLflow), so that
1,050 runs drain within the reliability budget. What is under test is the sensor and the daemon
(its sensor loop and its run queue), not the pipeline's stages."""

import os
from pathlib import Path

import dagster as dg

from dcai_assets import DatasetSpec, LandingDirectory
from dcai_assets.partitions import partitions_def
from dcai_assets.sensors import build_landing_sensor
from dcai_assets.spec import DailyPartitions

LANDING = Path(os.environ.get("DCAI_DATA_DIR", ".")) / "landing" / "flood"
SPEC = DatasetSpec(
    name="flood",
    source=LandingDirectory(path=LANDING),
    partitioning=DailyPartitions(start="2020-01-01", end="2023-12-31"),
    schema_path=Path(__file__).with_name("flood_schema_unused.yaml"),
)


@dg.asset(key=["flood", "landed_lines"], partitions_def=partitions_def(SPEC))
def landed_lines(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """The landed file's line count."""
    text = (LANDING / f"{context.partition_key}.csv").read_text()
    return dg.MaterializeResult(metadata={"lines": len(text.splitlines())})


FLOOD_JOB = dg.define_asset_job("flood_ingest", selection=[landed_lines], executor_def=dg.in_process_executor)

defs = dg.Definitions(
    assets=[landed_lines],
    jobs=[FLOOD_JOB],
    sensors=[
        build_landing_sensor(
            SPEC, FLOOD_JOB, minimum_interval_seconds=1, default_status=dg.DefaultSensorStatus.RUNNING
        )
    ],
)
