"""The bad-input catalogue: each kind of bad file, partition key, labeling function or model
factory, fed through the real pipeline (a Dagster instance: the landing sensor, the ingest run,
the label-model fit, the retrain). Each case asserts the error a user sees (naming the file,
partition, column or LF and what was expected) and that no row is lost: rows in the file =
valid + quarantined, counted from the stored outputs, or, when a file is refused, nothing stored
and the file left as it was. The table of cases is in docs/bad_inputs.md."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from dcai_assets import (
    ArtifactStore,
    CallableSource,
    DatasetSpec,
    LabelingSpec,
    LandingDirectory,
    MlflowTracking,
    ParquetIOManager,
    TrainingSpec,
    build_definitions,
)
from dcai_assets.core.conformance import REASON_COLUMN
from dcai_assets.core.labeling import ABSTAIN, LabelingFunctionSet, labeling_function
from dcai_assets.core.reading import file_digest
from dcai_assets.core.schema_inference import infer_schema
from dcai_assets.sensors import discover_partition_keys
from dcai_assets.spec import DailyPartitions, DynamicPartitions
from tests.conftest import REFERENCE_DAYS, sensor_readings

pytestmark = pytest.mark.reliability

FORTY_DIGITS = "1234567890123456789012345678901234567890"
GIANT = "x" * (10 * 1024 * 1024)  # a 10 MB cell
CASES_RUN: list[str] = []


# ---- shared instance and spec (one per module) ---------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def started() -> float:
    """When the catalogue's first case sets up: its wall figure starts here, not at import (the
    module may run after others in its pytest-xdist worker)."""
    return time.perf_counter()


@pytest.fixture(scope="module")
def world(tmp_path_factory, started):
    """One landing directory, schema, instance and set of definitions for every file case."""
    root = tmp_path_factory.mktemp("bad_inputs")
    landing = root / "landing"
    landing.mkdir()
    schema_path = root / "readings.yaml"
    frames = {d: sensor_readings(d) for d in REFERENCE_DAYS}
    infer_schema(frames, key=["reading_id"], overrides={"count": {"min": 0, "max": 1000}}).save(schema_path)
    spec = DatasetSpec(
        name="readings",
        source=LandingDirectory(path=landing),
        partitioning=DailyPartitions(start="2024-01-01", end="2024-03-01"),
        schema_path=schema_path,
        key="reading_id",
        schema_overrides={"count": {"min": 0, "max": 1000}},
    )
    resources = {
        "io_manager": ParquetIOManager(base_dir=str(root / "lake")),
        "artifacts": ArtifactStore(base_dir=str(root / "artifacts")),
    }
    defs = dg.Definitions.merge(build_definitions(spec), dg.Definitions(resources=resources))
    with dg.instance_for_test() as instance:
        yield {"root": root, "landing": landing, "spec": spec, "defs": defs, "instance": instance}
    load = os.getloadavg()[0]
    print(
        f"RELIABILITY: bad inputs {len(CASES_RUN)} cases, wall {time.perf_counter() - started:.1f} s "
        f"(load average {load:.1f} on {os.cpu_count()} cores)"
    )


def stored(world, asset: str, day: str) -> pd.DataFrame | None:
    path = world["root"] / "lake" / "readings" / asset / f"{day}.parquet"
    return pd.read_parquet(path) if path.exists() else None


def quarantine_counts(world, day: str) -> tuple[int, int, int]:
    """rows_in, rows_valid and rows_quarantined as the quarantine's materialization states them."""
    records = (
        world["instance"]
        .fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=dg.AssetKey(["readings", "quarantined_rows"]), asset_partitions=[day]
            ),
            limit=1,
        )
        .records
    )
    meta = records[0].asset_materialization.metadata
    return tuple(meta[k].value for k in ("rows_in", "rows_valid", "rows_quarantined"))


def ingest(world, day: str) -> dg.ExecuteInProcessResult:
    job = world["defs"].resolve_job_def("readings_ingest")
    return job.execute_in_process(instance=world["instance"], partition_key=day, raise_on_error=False)


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    error = result.get_step_failure_events()[0].step_failure_data.error
    return (error.cause or error).message


def what_validation_said(result: dg.ExecuteInProcessResult, day: str) -> str:
    """Every failed check's description and findings for ``day``, and the quarantine reasons."""
    texts = []
    for e in result.get_asset_check_evaluations():
        assert e.partition == day  # each verdict names its partition
        if not e.passed:
            texts += [e.asset_check_key.name, e.description or "", str(e.metadata["findings"].value)]
    return "\n".join(texts)


# ---- file cases: written to the landing directory, ingested as the sensor's run would be ---------


def day_frame(day: str, rows: int = 200) -> pd.DataFrame:
    return sensor_readings(day, rows=rows)


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


@dataclass
class FileCase:
    """A landing file for one day; ``refused``: the read fails and nothing may be stored."""

    id: str
    content: Callable[[str], bytes]
    expect: tuple[str, ...]  # fragments of the error / check / quarantine text
    rows: int  # data rows in the file
    refused: bool = False
    quarantined: int | None = None  # rows expected in quarantine, when known
    suffix: str = ".csv"
    check_valid: Callable[[pd.DataFrame], None] | None = None


def edit(day: str, change: Callable[[pd.DataFrame], pd.DataFrame], rows: int = 200) -> bytes:
    return csv_bytes(change(day_frame(day, rows)))


def _set(frame: pd.DataFrame, column: str, rows, value) -> pd.DataFrame:
    frame[column] = frame[column].astype(object)
    frame.loc[rows, column] = value
    return frame


def _ragged(day: str) -> bytes:
    lines = csv_bytes(day_frame(day)).split(b"\n")
    lines[7] += b",surplus"
    return b"\n".join(lines)


def _short_row(day: str) -> bytes:
    lines = csv_bytes(day_frame(day)).split(b"\n")
    lines[4] = b",".join(lines[4].split(b",")[:2])  # the last three fields are missing
    return b"\n".join(lines)


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _keeps_forty_digits(valid: pd.DataFrame) -> None:
    assert FORTY_DIGITS in valid["reading_id"].tolist()


FILE_CASES = [
    FileCase("empty", lambda d: b"", ("the file is empty",), 0, refused=True),
    FileCase("blank-lines-only", lambda d: b"\n\n  \n", ("the file is empty",), 0, refused=True),
    FileCase(
        "header-only",
        lambda d: b"reading_id,site,temperature,humidity,count\n",
        ("row_count_in_bounds", "partition has 0 rows; expected 100"),
        0,
    ),
    FileCase(
        "not-utf8",
        lambda d: csv_bytes(day_frame(d)).replace(b"north", "Zürich".encode("latin-1"), 1),
        ("is not valid UTF-8", "column 'site'", "at line 3"),
        200,
        refused=True,
    ),
    FileCase("ragged-long-row", _ragged, ("cannot be parsed as CSV", "line 8"), 200, refused=True),
    FileCase(
        "ragged-short-row",
        _short_row,
        ("`temperature` has 1 nulls", "temperature: null not allowed"),
        200,
        quarantined=1,
    ),
    FileCase(
        "missing-column",
        lambda d: edit(d, lambda f: f.drop(columns=["humidity"])),
        ("columns_match_schema", "`humidity` is missing", "humidity: column missing"),
        200,
        quarantined=200,
    ),
    FileCase(
        "renamed-column",
        lambda d: edit(d, lambda f: f.rename(columns={"humidity": "humidity_pct"})),
        ("`humidity` is missing", "`humidity_pct`", "looks like a rename"),
        200,
        quarantined=200,
    ),
    FileCase(
        "extra-column",
        lambda d: edit(d, lambda f: f.assign(note="checked")),
        ("unexpected column `note`",),
        200,
        quarantined=0,
    ),
    FileCase(
        "wrong-dtype-column",
        lambda d: edit(d, lambda f: f.assign(humidity=f["humidity"].astype(str) + " %")),
        ("dtypes_match_schema", "`humidity` has 200 values that are not numbers", "humidity: not a number"),
        200,
        quarantined=200,
    ),
    FileCase(
        "wrong-dtype-one-cell",
        lambda d: edit(d, lambda f: _set(f, "count", 3, "seven")),
        ("count: not an integer ('seven')",),
        200,
        quarantined=1,
    ),
    FileCase(
        "nan-heavy-column",
        lambda d: edit(d, lambda f: _set(f, "humidity", slice(0, 179), None)),
        ("null_rates_within_limits", "`humidity` has 180 nulls", "humidity: null not allowed"),
        200,
        quarantined=180,
    ),
    FileCase(
        "all-null-column",
        lambda d: edit(d, lambda f: f.assign(temperature=np.nan)),
        ("`temperature` has 200 nulls",),
        200,
        quarantined=200,
    ),
    FileCase(
        "duplicate-rows",
        lambda d: edit(d, lambda f: pd.concat([f, f.iloc[:5]]), rows=195),
        ("key (reading_id) has 5 duplicate rows", "reading_id: duplicate key"),
        200,
        quarantined=5,
    ),
    FileCase(
        "duplicate-key-other-values",
        lambda d: edit(d, lambda f: _set(f, "reading_id", 9, f.loc[8, "reading_id"])),
        ("reading_id: duplicate key",),
        200,
        quarantined=1,
    ),
    FileCase(
        "huge-1e300-in-integer",
        lambda d: edit(d, lambda f: _set(f, "count", 2, 1e300)),
        ("count: not an integer in int64 range ('1e+300')", "count: '1e+300' above max 1000"),
        200,
        quarantined=1,
    ),
    FileCase(
        "huge-40-digit-integer",
        lambda d: edit(d, lambda f: _set(f, "count", 2, FORTY_DIGITS)),
        (f"count: not an integer in int64 range ('{FORTY_DIGITS}')", f"'{FORTY_DIGITS}' above max 1000"),
        200,
        quarantined=1,
    ),
    FileCase(
        "huge-40-digit-id-kept",
        lambda d: edit(d, lambda f: _set(f, "reading_id", 0, FORTY_DIGITS)),
        (),
        200,
        quarantined=0,
        check_valid=_keeps_forty_digits,
    ),
    FileCase(
        "infinite-float",
        lambda d: edit(d, lambda f: _set(f, "temperature", [1, 2], ["inf", "-inf"])),
        ("temperature: not a finite number ('inf')", "temperature: not a finite number ('-inf')"),
        200,
        quarantined=2,
    ),
    FileCase(
        "float-overflow-1e309",
        lambda d: edit(d, lambda f: _set(f, "humidity", 4, "1e309")),
        ("humidity: not a finite number ('1e309')",),
        200,
        quarantined=1,
    ),
    FileCase(
        "giant-string-cell",
        lambda d: edit(d, lambda f: _set(f, "site", 6, GIANT)),
        ("`site` has 1 values outside the allowed set", "10,485,760 characters"),
        200,
        quarantined=0,
    ),
    FileCase(
        "utf8-bom",
        lambda d: b"\xef\xbb\xbf" + csv_bytes(day_frame(d)),
        (),
        200,
        quarantined=0,
    ),
    FileCase(
        "semicolon-delimiter",
        lambda d: day_frame(d).to_csv(index=False, sep=";").encode(),
        ("the header has one column", "';'", "comma-separated"),
        200,
        refused=True,
    ),
    FileCase(
        "parquet-wrong-schema",
        lambda d: _parquet(day_frame(d).assign(count=lambda f: f["count"].astype(str) + " units")),
        ("`count` has 200 values that are not integers", "count: not an integer ('"),
        200,
        quarantined=200,
        suffix=".parquet",
    ),
    FileCase(
        "parquet-truncated",
        lambda d: _parquet(day_frame(d))[:-100],
        ("the file is not valid Parquet",),
        200,
        refused=True,
        suffix=".parquet",
    ),
]


def _zero_padded_ids(day: str) -> bytes:
    return edit(day, lambda f: f.assign(reading_id=[f"{i:06d}" for i in range(len(f))]))


def _keeps_zero_padding(valid: pd.DataFrame) -> None:
    assert valid["reading_id"].iloc[0] == "000000"


def _keeps_na_text(valid: pd.DataFrame) -> None:
    assert "NA" in valid["site"].tolist()


FILE_CASES += [
    FileCase(
        "numeric-text-ids-with-leading-zeros",
        _zero_padded_ids,
        (),
        200,
        quarantined=0,
        check_valid=_keeps_zero_padding,
    ),
    FileCase(
        "text-NA-read-as-null",
        lambda d: edit(d, lambda f: _set(f, "site", 3, "NA")),
        (),
        200,
        check_valid=_keeps_na_text,
    ),
]


@pytest.mark.parametrize("case", FILE_CASES, ids=[c.id for c in FILE_CASES])
def test_a_bad_file_is_named_and_loses_no_row(world, case: FileCase):
    day = (date(2024, 1, 10) + timedelta(days=FILE_CASES.index(case))).isoformat()
    name = f"{day}{case.suffix}"
    path = world["landing"] / name
    path.write_bytes(case.content(day))
    before = file_digest(path)

    result = ingest(world, day)

    CASES_RUN.append(case.id)
    if case.refused:
        assert not result.success
        message = failure_message(result)
        assert f"file '{name}'" in message and f"partition '{day}'" in message and "expected" in message
        for fragment in case.expect:
            assert fragment in message, message
        for asset in ("raw_data", "validated_data", "quarantined_rows"):
            assert stored(world, asset, day) is None  # nothing half-stored
        assert file_digest(path) == before  # the file is left as it came, for a re-export
        return
    said = what_validation_said(result, day)
    raw, valid, quarantine = (
        stored(world, a, day) for a in ("raw_data", "validated_data", "quarantined_rows")
    )
    said += "\n" + "\n".join(quarantine[REASON_COLUMN])
    if valid is None:  # blocked: no validated file (the day shows failed); raw keeps every row
        assert not result.success
        valid = raw.drop(index=quarantine.index)
        assert quarantine_counts(world, day) == (len(raw), len(valid), len(quarantine))
    for fragment in case.expect:
        assert fragment in said, said[:3000]
    assert len(raw) == case.rows  # every row of the file was read...
    assert len(raw) == len(valid) + len(quarantine)  # ...and is either valid or quarantined
    assert sorted([*valid.index, *quarantine.index]) == list(range(case.rows))
    if case.quarantined is not None:
        assert len(quarantine) == case.quarantined
    if case.check_valid:
        case.check_valid(valid)
    assert len(said) < 100_000  # a giant cell is not copied into every message


# ---- landing-sensor cases: the file is reported once, skipped, and left in place ----------------


def sensor_tick(spec, instance, artifacts: Path) -> tuple[dg.SensorExecutionData, list[str]]:
    defs = dg.Definitions.merge(
        build_definitions(spec),
        dg.Definitions(resources={"artifacts": ArtifactStore(base_dir=str(artifacts))}),
    )
    context = dg.build_sensor_context(instance=instance, definitions=defs, instance_ref=instance.get_ref())
    tick = defs.resolve_sensor_def("readings_landing_sensor").evaluate_tick(context)
    # What the tick logged as "skipped: ...", as the same scan reports it.
    problems = discover_partition_keys(spec)[1]
    return tick, problems


@dataclass
class SensorCase:
    id: str
    files: dict[str, bytes]  # landing files (one good day is always added)
    expect: tuple[str, ...]
    partitioning: object = None


def good(day: str) -> bytes:
    return csv_bytes(day_frame(day, rows=120))


SENSOR_CASES = [
    SensorCase(
        "unsupported-suffix", {"2024-02-01.xlsx": b"PK\x03\x04"}, ("file '2024-02-01.xlsx'", "'.xlsx'")
    ),
    SensorCase(
        "two-files-one-partition",
        {"2024-02-01.csv": good("2024-02-01"), "2024-02-01.parquet": _parquet(day_frame("2024-02-01"))},
        ("2 files hold this partition", "exactly one file per partition"),
    ),
    SensorCase("name-not-a-date", {"yesterday.csv": b"a\n1\n"}, ("file 'yesterday.csv'", "YYYY-MM-DD")),
    SensorCase(
        "space-in-name", {"2024-02-01 copy.csv": good("2024-02-01")}, ("'2024-02-01 copy' is not allowed",)
    ),
    SensorCase(
        "unicode-digits-in-name",
        {"２０２４-02-01.csv": good("2024-02-01")},
        ("file '２０２４-02-01.csv'", "is not allowed"),
    ),
    SensorCase(
        "date-outside-range", {"2023-12-31.csv": good("2023-12-31")}, ("outside the partitions' range",)
    ),
    SensorCase(
        "dynamic-key-unicode",
        {"bätch_1.csv": good("2024-02-01")},
        ("partition key 'bätch_1' is not allowed", "letters, digits"),
        partitioning=DynamicPartitions(),
    ),
    SensorCase(
        "dynamic-key-leading-dot-dot",
        {"x..y.csv": good("2024-02-01")},
        ("partition key 'x..y' is not allowed",),
        partitioning=DynamicPartitions(),
    ),
]


@pytest.mark.parametrize("case", SENSOR_CASES, ids=[c.id for c in SENSOR_CASES])
def test_a_bad_landing_file_is_reported_and_the_good_ones_go_on(world, tmp_path, case: SensorCase):
    landing = tmp_path / "landing"
    landing.mkdir()
    good_name = "2024-02-02.csv" if case.partitioning is None else "batch_2.csv"
    (landing / good_name).write_bytes(good("2024-02-02"))
    for name, content in case.files.items():
        (landing / name).write_bytes(content)
    before = {p.name: file_digest(p) for p in landing.iterdir() if p.is_file()}
    spec = replace(world["spec"], source=LandingDirectory(path=landing))
    if case.partitioning is not None:
        spec = replace(spec, partitioning=case.partitioning)

    tick, problems = sensor_tick(spec, world["instance"], tmp_path)

    CASES_RUN.append(case.id)
    requested = [r.partition_key for r in tick.run_requests]
    assert Path(good_name).stem in requested  # one bad file stops nothing else
    text = "\n".join(problems)
    for fragment in case.expect:
        assert fragment in text, text
    assert "expected" in text
    assert {
        p.name: file_digest(p) for p in landing.iterdir() if p.is_file()
    } == before  # nothing moved or lost


def test_unsafe_keys_from_a_callable_source_are_refused_by_name(world, tmp_path):
    keys = ["batch_1", "../x", "batch 7", "bätch", "/etc/passwd", ".hidden"]
    spec = replace(
        world["spec"],
        source=CallableSource(load=lambda k: day_frame("2024-02-01"), list_partitions=lambda: keys),
        partitioning=DynamicPartitions(),
    )

    tick, problems = sensor_tick(spec, world["instance"], tmp_path)

    CASES_RUN.append("callable-unsafe-keys")
    assert [r.partition_key for r in tick.run_requests] == ["batch_1"]
    for key in keys[1:]:
        assert any(f"partition {key!r}" in p and "is not allowed" in p for p in problems), (key, problems)


# ---- labeling functions and model factories: the run fails naming the LF, rows stay --------------

ALERT, NORMAL = 1, 0
LABEL_MODEL = dg.AssetKey(["readings", "label_model"])


@labeling_function(uses=["temperature"])
def hot(df):
    return np.where(df["temperature"] > 23, ALERT, ABSTAIN)


@labeling_function(uses=["temperature"])
def mild(df):
    return np.where(df["temperature"] < 19, NORMAL, ABSTAIN)


def lf(name: str, fn) -> object:
    return labeling_function(name)(fn)


def _raises(df):
    if (df["count"] > 45).any():
        raise ValueError("count too high")
    return np.full(len(df), ABSTAIN)


LF_CASES = {
    "lf-raises": (
        lf("raises", _raises),
        ("labeling function 'raises' raised ValueError: count too high", "first failing row"),
    ),
    "lf-wrong-shape": (
        lf("too_few", lambda df: np.zeros(3, dtype=int)),
        ("labeling function 'too_few' returned 3 votes", "expected one vote per row (120)"),
    ),
    "lf-returns-a-scalar": (
        lf("scalar", lambda df: 1),
        ("labeling function 'scalar' returned one value (1)", "expected one vote per row (120)"),
    ),
    "lf-wrong-type-text": (
        lf("words", lambda df: np.full(len(df), "alert")),
        ("labeling function 'words' returned <U5 votes", "expected integer class indices 0..1"),
    ),
    "lf-wrong-type-fraction": (
        lf("fraction", lambda df: np.full(len(df), 0.5)),
        ("labeling function 'fraction' returned non-integer votes",),
    ),
    "lf-returns-nan": (
        lf("nan_vote", lambda df: np.where(df["count"] > 40, np.nan, 1.0)),
        ("labeling function 'nan_vote' returned NaN", "expected a class index 0..1 or ABSTAIN"),
    ),
    "lf-label-outside-classes": (
        lf("three", lambda df: np.full(len(df), 2)),
        ("labeling function 'three' voted 2", "expected a class index 0..1 or ABSTAIN (-1)"),
    ),
    "lf-returns-none": (
        lf("nothing", lambda df: None),
        ("labeling function 'nothing' returned one value (None)", "expected one vote per row (120)"),
    ),
}


GOOD_LFS = LabelingFunctionSet(lfs=[hot, mild], classes=["normal", "alert"])


@pytest.fixture(scope="module")
def labeled_world(world, tmp_path_factory):
    """The file world's spec on its own landing directory and instance: two clean days,
    ingested and labeled by two sound LFs."""
    root = tmp_path_factory.mktemp("bad_lfs")
    landing = root / "landing"
    landing.mkdir()
    days = ["2024-02-10", "2024-02-11"]
    for day in days:
        (landing / f"{day}.csv").write_bytes(csv_bytes(day_frame(day, rows=120)))
    spec = replace(world["spec"], source=LandingDirectory(path=landing))
    resources = {
        "io_manager": ParquetIOManager(base_dir=str(root / "lake")),
        "artifacts": ArtifactStore(base_dir=str(root / "artifacts")),
    }
    with dg.instance_for_test() as instance:
        world_here = {"root": root, "spec": spec, "resources": resources, "instance": instance, "days": days}
        defs = labeled_defs(world_here, GOOD_LFS)
        for day in days:
            job = defs.resolve_job_def("readings_ingest")
            assert job.execute_in_process(instance=instance, partition_key=day).success
        assert defs.resolve_job_def("readings_fit_label_model").execute_in_process(instance=instance).success
        for day in days:
            job = defs.resolve_job_def("readings_label")
            assert job.execute_in_process(instance=instance, partition_key=day).success
        yield world_here


def labeled_defs(labeled_world, lfs, training=None):
    return dg.Definitions.merge(
        build_definitions(labeled_world["spec"], labeling=LabelingSpec(lfs=lfs), training=training),
        dg.Definitions(resources=labeled_world["resources"]),
    )


@pytest.mark.parametrize("case", list(LF_CASES), ids=list(LF_CASES))
def test_a_bad_labeling_function_fails_naming_itself_and_keeps_every_row(labeled_world, case):
    bad, expect = LF_CASES[case]
    lfs = LabelingFunctionSet(lfs=[hot, mild, bad], classes=["normal", "alert"])
    defs = labeled_defs(labeled_world, lfs)
    instance = labeled_world["instance"]
    fitted_before = instance.get_latest_materialization_event(LABEL_MODEL)

    result = defs.resolve_job_def("readings_fit_label_model").execute_in_process(
        instance=instance, raise_on_error=False
    )

    CASES_RUN.append(case)
    assert not result.success
    message = failure_message(result)
    for fragment in expect:
        assert fragment in message, message
    assert "partition '2024-02-10'" in message
    assert instance.get_latest_materialization_event(LABEL_MODEL) == fitted_before  # none on half the votes
    lake = labeled_world["root"] / "lake" / "readings"
    for day in labeled_world["days"]:
        assert len(pd.read_parquet(lake / "validated_data" / f"{day}.parquet")) == 120  # rows stay


def test_gold_labels_outside_the_declared_classes_fail_naming_column_value_and_classes(labeled_world):
    defs = dg.Definitions.merge(
        build_definitions(labeled_world["spec"], labeling=LabelingSpec(lfs=GOOD_LFS, gold_column="site")),
        dg.Definitions(resources=labeled_world["resources"]),
    )
    instance = labeled_world["instance"]
    fitted_before = instance.get_latest_materialization_event(LABEL_MODEL)

    result = defs.resolve_job_def("readings_fit_label_model").execute_in_process(
        instance=instance, raise_on_error=False
    )

    CASES_RUN.append("gold-label-outside-classes")
    assert not result.success
    message = failure_message(result)
    assert "gold label column 'site' in partition '2024-02-10' holds" in message, message
    assert "expected one of ['normal', 'alert'] or their indices, or empty" in message, message
    assert instance.get_latest_materialization_event(LABEL_MODEL) == fitted_before


def not_an_estimator():
    return "LogisticRegression"


def test_a_model_factory_returning_a_non_estimator_is_refused_by_name(labeled_world, tmp_path):
    tracking = MlflowTracking(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        artifact_location=str(tmp_path / "mlartifacts"),
        experiment_name="bad_inputs",
    )
    training = TrainingSpec(pipeline=not_an_estimator, features=["temperature", "humidity"])
    defs = dg.Definitions.merge(
        labeled_defs(labeled_world, GOOD_LFS, training),
        dg.Definitions(resources={"mlflow_tracking": tracking}),
    )
    instance = labeled_world["instance"]

    result = defs.resolve_job_def("readings_train").execute_in_process(
        instance=instance, raise_on_error=False
    )

    CASES_RUN.append("model-factory-not-an-estimator")
    assert not result.success
    message = failure_message(result)
    assert "TrainingSpec.pipeline" in message and "not_an_estimator" in message, message
    assert (
        "returned str ('LogisticRegression')" in message and "expected a scikit-learn estimator" in message
    ), message


# Last: it refits the label model with another LF set.
def test_an_lf_that_raises_under_on_error_abstain_labels_every_row_and_names_itself(labeled_world):
    bad, _ = LF_CASES["lf-raises"]
    lfs = LabelingFunctionSet(lfs=[hot, mild, bad], classes=["normal", "alert"], on_error="abstain")
    defs = labeled_defs(labeled_world, lfs)
    instance = labeled_world["instance"]

    assert defs.resolve_job_def("readings_fit_label_model").execute_in_process(instance=instance).success
    result = defs.resolve_job_def("readings_label").execute_in_process(
        instance=instance, partition_key="2024-02-11", raise_on_error=False
    )

    CASES_RUN.append("lf-raises-on-error-abstain")
    lake = labeled_world["root"] / "lake" / "readings"
    labeled = pd.read_parquet(lake / "labeled_set" / "2024-02-11.parquet")
    assert len(labeled) == len(pd.read_parquet(lake / "validated_data" / "2024-02-11.parquet")) == 120
    said = " ".join(f"{e.description} {e.metadata}" for e in result.get_asset_check_evaluations())
    assert "LF `raises` raised on" in said, said
