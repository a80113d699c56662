"""Raw -> validated on a real Dagster instance: versions, checks, quarantine, and bad input."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from dcai_assets import build_definitions
from dcai_assets.core.reading import file_digest
from dcai_assets.core.verdicts import (
    COLUMNS_MATCH_SCHEMA,
    NO_DRIFT_FROM_REFERENCE,
    NULL_RATES_WITHIN_LIMITS,
    VALUES_WITHIN_DOMAIN,
)
from tests.conftest import sensor_readings

RAW = dg.AssetKey(["readings", "raw_data"])
VALIDATED = dg.AssetKey(["readings", "validated_data"])
QUARANTINE = dg.AssetKey(["readings", "quarantined_rows"])


def run_ingest(spec, resources, instance, partition: str) -> dg.ExecuteInProcessResult:
    defs = dg.Definitions.merge(build_definitions(spec), dg.Definitions(resources=resources))
    job = defs.resolve_job_def("readings_ingest")
    return job.execute_in_process(instance=instance, partition_key=partition, raise_on_error=False)


def checks_by_name(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.asset_check_key.name: e for e in result.get_asset_check_evaluations()}


def metadata(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str) -> dict:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
    ).records
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


def test_clean_partition_passes_every_check_and_is_versioned_by_content(readings_spec, resources, landing):
    path = landing / "2024-01-10.csv"
    sensor_readings("2024-01-10").to_csv(path, index=False)
    with dg.instance_for_test() as instance:
        result = run_ingest(readings_spec, resources, instance, "2024-01-10")
        assert result.success
        assert all(e.passed for e in checks_by_name(result).values())
        raw = instance.get_latest_materialization_event(RAW).asset_materialization
        assert raw.tags["dagster/data_version"] == file_digest(path)[:16]
        md = metadata(instance, VALIDATED, "2024-01-10")
        assert (md["rows_in"], md["rows_valid"], md["rows_quarantined"]) == (200, 200, 0)
        assert "| `temperature` |" in md["drift"] and "data:image/svg+xml;base64," in md["drift"]


def test_null_burst_fails_a_blocking_check_with_an_actionable_message(readings_spec, resources, landing):
    day = sensor_readings("2024-01-11")
    day.loc[:79, "humidity"] = None  # 40% nulls; the reference had none
    day.to_csv(landing / "2024-01-11.csv", index=False)
    with dg.instance_for_test() as instance:
        result = run_ingest(readings_spec, resources, instance, "2024-01-11")
        assert not result.success  # the blocking check stops the run
        check = checks_by_name(result)[NULL_RATES_WITHIN_LIMITS]
        assert not check.passed and check.blocking
        assert check.severity == dg.AssetCheckSeverity.ERROR
        assert check.partition == "2024-01-11"
        assert "`humidity` has 80 nulls" in check.description
        assert "e.g. rows 0, 1, 2" in check.description
        # The blocked day is not written (so it shows as failed); its quarantine is stored.
        assert instance.get_materialized_partitions(VALIDATED) == set()
        assert instance.get_materialized_partitions(QUARANTINE) == {"2024-01-11"}


def test_quarantine_keeps_every_failing_row_with_its_reason(readings_spec, resources, landing, tmp_path):
    day = sensor_readings("2024-01-12")
    day["count"] = day["count"].astype(object)
    day.loc[3, "count"] = "seven"
    day.loc[5, "count"] = -4  # below the declared min 0
    day.loc[8, "reading_id"] = day.loc[9, "reading_id"]
    day.to_csv(landing / "2024-01-12.csv", index=False)
    with dg.instance_for_test() as instance:
        run_ingest(declared(readings_spec, {"count": {"min": 0}}), resources, instance, "2024-01-12")
        md = metadata(instance, VALIDATED, "2024-01-12")
        assert md["rows_in"] == md["rows_valid"] + md["rows_quarantined"] == 200
        quarantine = pd.read_parquet(
            tmp_path / "lake" / "readings" / "quarantined_rows" / "2024-01-12.parquet"
        )
        assert len(quarantine) == md["rows_quarantined"] == 3
        reasons = " | ".join(quarantine["_quarantine_reason"])
        assert "count: not an integer ('seven')" in reasons
        assert "count: '-4' below min 0" in reasons
        assert "reading_id: duplicate key" in reasons
        assert "seven" in quarantine["count"].tolist()  # raw value kept as read


def declared(spec, overrides: dict):
    """The spec with its schema re-inferred from the reference week plus ``overrides``."""
    from dataclasses import replace

    from dcai_assets.core.schema_inference import infer_schema
    from tests.conftest import REFERENCE_DAYS

    frames = {d: sensor_readings(d) for d in REFERENCE_DAYS}
    infer_schema(frames, key=spec.key_columns, overrides=overrides).save(spec.schema_path)
    return replace(spec, schema_overrides=overrides)


def test_a_value_the_reference_never_saw_is_reported_and_kept_without_blocking(
    readings_spec, resources, landing
):
    day = sensor_readings("2024-01-16")
    day.loc[5, "site"] = "moon"  # a site the reference week never saw
    day.loc[6, "count"] = 75  # above the reference's largest count
    day.to_csv(landing / "2024-01-16.csv", index=False)
    with dg.instance_for_test() as instance:
        result = run_ingest(readings_spec, resources, instance, "2024-01-16")
        assert result.success  # nothing blocks downstream
        check = checks_by_name(result)[VALUES_WITHIN_DOMAIN]
        assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
        assert "`site` has 1 values outside the allowed set inferred from the reference window" in (
            check.description
        )
        findings = check.metadata["findings"].value
        assert "'moon' (row 5)" in findings and "75 (row 6)" in findings and "rows kept" in findings
        md = metadata(instance, VALIDATED, "2024-01-16")
        assert (md["rows_in"], md["rows_valid"], md["rows_quarantined"]) == (200, 200, 0)
        assert md["row_bounds"] == "100–300"


def test_renamed_column_is_caught_by_name(readings_spec, resources, landing):
    sensor_readings("2024-01-13").rename(columns={"humidity": "humidity_pct"}).to_csv(
        landing / "2024-01-13.csv", index=False
    )
    with dg.instance_for_test() as instance:
        result = run_ingest(readings_spec, resources, instance, "2024-01-13")
        check = checks_by_name(result)[COLUMNS_MATCH_SCHEMA]
        assert not check.passed
        assert "`humidity` is missing" in check.description
        assert "`humidity_pct`" in check.description


def test_category_surge_warns_without_blocking(readings_spec, resources, landing):
    day = sensor_readings("2024-01-14")
    day.loc[:150, "site"] = "west"
    day.to_csv(landing / "2024-01-14.csv", index=False)
    with dg.instance_for_test() as instance:
        result = run_ingest(readings_spec, resources, instance, "2024-01-14")
        assert result.success
        check = checks_by_name(result)[NO_DRIFT_FROM_REFERENCE]
        assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
        assert "`west` is now the most frequent value" in check.description
        assert "(was `north`" in check.description


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "the file is empty"),
        (b"a,b\n1,2\n3,4,5,6\n", "cannot be parsed as CSV"),
        ("reading_id,site\n1,Zürich\n".encode("latin-1"), "is not valid UTF-8"),
    ],
    ids=["empty", "unparseable", "not-utf8"],
)
def test_bad_file_fails_clearly_and_keeps_what_was_stored(
    readings_spec, resources, landing, tmp_path: Path, content: bytes, expected: str
):
    path = landing / "2024-01-15.csv"
    sensor_readings("2024-01-15").to_csv(path, index=False)
    stored = tmp_path / "lake" / "readings" / "raw_data" / "2024-01-15.parquet"
    with dg.instance_for_test() as instance:
        assert run_ingest(readings_spec, resources, instance, "2024-01-15").success
        before = stored.read_bytes()
        path.write_bytes(content)  # a broken re-export of the same day
        result = run_ingest(readings_spec, resources, instance, "2024-01-15")
        assert not result.success
        error = result.get_step_failure_events()[0].step_failure_data.error
        message = error.cause.message if error.cause else error.message
        assert expected in message
        assert "file '2024-01-15.csv'" in message and "partition '2024-01-15'" in message
        assert stored.read_bytes() == before  # nothing stored is lost or overwritten


def test_factory_works_for_a_second_dataset_with_dynamic_batches_from_a_callable(tmp_path, resources):
    from dcai_assets import CallableSource, DatasetSpec
    from dcai_assets.core.schema_inference import infer_schema
    from dcai_assets.spec import DynamicPartitions

    def load(batch: str) -> pd.DataFrame:
        n = int(batch.split("_")[1])
        return pd.DataFrame({"order": range(n * 10, n * 10 + 10), "amount": [9.5] * 10, "paid": [True] * 10})

    schema_path = tmp_path / "orders.yaml"
    infer_schema({"batch_1": load("batch_1"), "batch_2": load("batch_2")}, key=["order"]).save(schema_path)
    spec = DatasetSpec(
        name="orders",
        source=CallableSource(load=load, list_partitions=lambda: ["batch_1", "batch_2", "batch_3"]),
        partitioning=DynamicPartitions(),
        schema_path=schema_path,
        key="order",
    )
    defs = dg.Definitions.merge(build_definitions(spec), dg.Definitions(resources=resources))
    with dg.instance_for_test() as instance:
        sensor = defs.resolve_sensor_def("orders_landing_sensor")
        context = dg.build_sensor_context(
            instance=instance, definitions=defs, instance_ref=instance.get_ref()
        )
        tick = sensor.evaluate_tick(context)
        assert [r.partition_key for r in tick.run_requests] == ["batch_1", "batch_2", "batch_3"]
        assert tick.dynamic_partitions_requests[0].partition_keys == ["batch_1", "batch_2", "batch_3"]
        instance.add_dynamic_partitions("orders_batches", ["batch_1", "batch_2", "batch_3"])
        result = defs.resolve_job_def("orders_ingest").execute_in_process(
            instance=instance, partition_key="batch_3"
        )
        assert result.success
        assert instance.get_materialized_partitions(dg.AssetKey(["orders", "validated_data"])) == {"batch_3"}


def test_schema_infer_learns_rows_per_day_skips_the_label_and_marks_inferred_bounds(
    tmp_path, monkeypatch, capsys
):
    from dcai_assets.cli import main
    from dcai_assets.core.schema import TableSchema

    (tmp_path / "weekly_spec.py").write_text(
        "import pandas as pd\n"
        "from dcai_assets import CallableSource, DatasetSpec\n"
        "from dcai_assets.spec import DailyPartitions\n"
        "from tests.conftest import sensor_readings\n"
        "def load(day):\n"
        "    frame = sensor_readings(day)\n"
        "    return frame.assign(checked=['ok', None, None, None] * (len(frame) // 4), coupon=None)\n"
        "SPEC = DatasetSpec(\n"
        "    name='weekly', source=CallableSource(load=load),\n"
        "    partitioning=DailyPartitions(start='2024-01-01'),\n"
        f"    schema_path={str(tmp_path / 'weekly.yaml')!r}, key='reading_id', label='checked',\n"
        "    reference=['2024-01-01', '2024-01-02', '2024-01-03'],\n"
        "    schema_overrides={'__table__': {'max_rows_per_day': 1000}, 'count': {'min': 0}},\n"
        ")\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)

    assert main(["schema", "infer", "weekly_spec:SPEC"]) == 0
    printed = capsys.readouterr().out
    assert "warning: `coupon` has no value in the reference window: its dtype is a guess" in printed

    schema = TableSchema.load(tmp_path / "weekly.yaml")
    assert (schema.min_rows_per_day, schema.max_rows_per_day) == (100.0, 1000)  # 200 a day, -50%
    assert schema.row_count_enforce == "block"  # a bound was declared
    assert schema.row_bounds(7.0) == (700, 7000)  # a week's worth
    assert schema.column("checked").reference is None  # the label is not a feature
    assert schema.column("site").enforce == {"allowed_values": "warn"}
    assert schema.column("count").enforce == {"min": "quarantine", "max": "warn"}
    assert schema.reference_partitions == ["2024-01-01", "2024-01-02", "2024-01-03"]


def test_re_declaring_a_column_as_text_marks_raw_stale_and_refuses_to_validate_the_old_read(
    readings_spec, resources, landing, tmp_path: Path
):
    import yaml

    day = sensor_readings("2024-01-16")
    day["count"] = [f"{c:03d}" for c in day["count"]]  # zero-padded codes in the file: 007
    day.to_csv(landing / "2024-01-16.csv", index=False)
    from dcai_assets.assets.raw import build_raw_asset
    from dcai_assets.assets.validated import build_validated_assets

    with dg.instance_for_test() as instance:
        assert run_ingest(readings_spec, resources, instance, "2024-01-16").success
        assert metadata(instance, RAW, "2024-01-16")["read_as_text"] == ["reading_id", "site"]
        assert pd.read_parquet(tmp_path / "lake" / "readings" / "raw_data" / "2024-01-16.parquet")[
            "count"
        ].iloc[0] == int(day["count"].iloc[0])  # as the schema then said: a number
        before = build_raw_asset(readings_spec).code_versions_by_key[RAW]

        schema = yaml.safe_load(readings_spec.schema_path.read_text())
        count = next(c for c in schema["columns"] if c["name"] == "count")
        count.update(dtype="string", min=None, max=None)
        readings_spec.schema_path.write_text(yaml.safe_dump(schema, sort_keys=False))
        raw = build_raw_asset(readings_spec)
        assert raw.code_versions_by_key[RAW] != before  # the UI shows raw_data stale: code changed

        alone = dg.materialize(
            [raw, build_validated_assets(readings_spec)],
            selection=[VALIDATED, QUARANTINE],
            partition_key="2024-01-16",
            instance=instance,
            resources=resources,
            raise_on_error=False,
        )
        assert not alone.success
        error = alone.get_step_failure_events()[0].step_failure_data.error
        message = error.cause.message if error.cause else error.message
        assert "partition '2024-01-16'" in message and "file '2024-01-16.csv'" in message
        assert "column 'count'" in message and "changed: `count`" in message
        assert "Materialize readings/raw_data for this partition first" in message

        assert run_ingest(readings_spec, resources, instance, "2024-01-16").success  # re-reads the file
        validated = pd.read_parquet(tmp_path / "lake" / "readings" / "validated_data" / "2024-01-16.parquet")
        assert validated["count"].tolist() == day["count"].tolist()  # '007' kept as written
