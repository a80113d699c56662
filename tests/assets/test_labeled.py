"""Label model and labeled sets on a real Dagster instance: labels, marks, checks, staleness."""

from __future__ import annotations

import json

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._core.loader import LoadingContextForTest

from dcai_assets import LabelingSpec, build_definitions
from dcai_assets.assets.labeled import LABELS_COVER_ROWS, LF_COVERAGE_STABLE
from dcai_assets.core.labeling import ABSTAIN, LabelingFunctionSet, labeling_function
from tests.conftest import sensor_readings

NORMAL, ALERT = 0, 1
LABEL_MODEL = dg.AssetKey(["readings", "label_model"])
LABELED = dg.AssetKey(["readings", "labeled_set"])
VALIDATED = dg.AssetKey(["readings", "validated_data"])


@labeling_function(uses=["temperature"])
def hot(df):
    return np.where(df["temperature"] > 23, ALERT, ABSTAIN)


@labeling_function(uses=["temperature"])
def mild(df):
    return np.where(df["temperature"] < 19, NORMAL, ABSTAIN)


@labeling_function(uses=["humidity"])
def humid(df):
    return np.where(df["humidity"] > 80, ALERT, ABSTAIN)


@labeling_function(vectorized=False, uses=["count"])
def quiet(row):
    return NORMAL if row.count < 10 else ABSTAIN


LFS = LabelingFunctionSet(lfs=[hot, mild, humid, quiet], classes=["normal", "alert"])


def definitions(spec, resources, lfs=LFS):
    return dg.Definitions.merge(
        build_definitions(spec, labeling=LabelingSpec(lfs=lfs)), dg.Definitions(resources=resources)
    )


def ingest_and_label(defs, instance, days: list[str]) -> None:
    ingest = defs.resolve_job_def("readings_ingest")
    for day in days:
        ingest.execute_in_process(instance=instance, partition_key=day, raise_on_error=False)
    assert defs.resolve_job_def("readings_fit_label_model").execute_in_process(instance=instance).success
    label = defs.resolve_job_def("readings_label")
    for day in days:
        label.execute_in_process(instance=instance, partition_key=day, raise_on_error=False)


def test_labeled_set_keeps_every_row_with_votes_probabilities_label_and_source(
    readings_spec, resources, landing, tmp_path
):
    days = ["2024-01-10", "2024-01-11"]
    for day in days:
        sensor_readings(day).to_csv(landing / f"{day}.csv", index=False)
    defs = definitions(readings_spec, resources)
    with dg.instance_for_test() as instance:
        ingest_and_label(defs, instance, days)
        frame = pd.read_parquet(tmp_path / "lake" / "readings" / "labeled_set" / "2024-01-10.parquet")
        assert len(frame) == 200
        votes = frame[[f"lf__{n}" for n in LFS.names]]
        assert (votes.dtypes == np.int8).all()
        uncovered = (votes == ABSTAIN).all(axis=1)
        assert uncovered.any()  # some rows no LF covers...
        assert (frame.loc[uncovered, "label_source"] == "abstain").all()  # ...are kept and marked
        assert frame.loc[uncovered, "label"].isna().all()
        covered = frame[~uncovered]
        assert set(covered["label_source"]) == {"label_model"}
        assert np.allclose(covered[["p__normal", "p__alert"]].sum(axis=1), 1.0)
        assert (covered["label_confidence"] >= 0.5).all()
        assert (frame["lf_set_version"] == LFS.version).all()
        md = instance.get_latest_materialization_event(LABELED).asset_materialization.metadata
        assert md["lf_set_version"].value == LFS.version
        assert "| `humid` |" in md["labeling_functions"].value


def test_label_model_leaves_out_partitions_that_failed_a_blocking_check(readings_spec, resources, landing):
    sensor_readings("2024-01-10").to_csv(landing / "2024-01-10.csv", index=False)
    bad = sensor_readings("2024-01-11")
    bad.loc[:99, "humidity"] = None
    bad.to_csv(landing / "2024-01-11.csv", index=False)
    defs = definitions(readings_spec, resources)
    with dg.instance_for_test() as instance:
        ingest_and_label(defs, instance, ["2024-01-10", "2024-01-11"])
        md = instance.get_latest_materialization_event(LABEL_MODEL).asset_materialization.metadata
        assert md["partitions_used"].value == 1
        assert md["partitions_blocked"].value == ["2024-01-11"]
        assert md["rows"].value == 200


def test_editing_a_labeling_function_marks_labels_stale_but_not_validated_data(
    readings_spec, resources, landing
):
    sensor_readings("2024-01-10").to_csv(landing / "2024-01-10.csv", index=False)
    with dg.instance_for_test() as instance:
        ingest_and_label(definitions(readings_spec, resources), instance, ["2024-01-10"])

        @labeling_function(uses=["temperature"])
        def hot(df):  # the expert raised the threshold
            return np.where(df["temperature"] > 25, ALERT, ABSTAIN)

        edited = LabelingFunctionSet(lfs=[hot, mild, humid, quiet], classes=["normal", "alert"])
        assert edited.version != LFS.version
        graph = definitions(readings_spec, resources, edited).resolve_asset_graph()
        status = CachingStaleStatusResolver(instance, graph, LoadingContextForTest(instance))
        assert status.get_status(LABEL_MODEL) == StaleStatus.STALE
        assert status.get_status(LABELED, "2024-01-10") == StaleStatus.STALE
        assert status.get_status(VALIDATED, "2024-01-10") == StaleStatus.FRESH


def test_a_partition_no_lf_covers_is_marked_and_its_coverage_check_fails(readings_spec, resources, landing):
    sensor_readings("2024-01-10").to_csv(landing / "2024-01-10.csv", index=False)
    calm = sensor_readings("2024-01-11")
    calm["temperature"] = 21.0  # between the thresholds: neither `hot` nor `mild` votes
    calm["humidity"] = 50.0
    calm["count"] = 30
    calm.to_csv(landing / "2024-01-11.csv", index=False)
    defs = definitions(readings_spec, resources)
    with dg.instance_for_test() as instance:
        ingest_and_label(defs, instance, ["2024-01-10"])
        defs.resolve_job_def("readings_ingest").execute_in_process(
            instance=instance, partition_key="2024-01-11", raise_on_error=False
        )
        result = defs.resolve_job_def("readings_label").execute_in_process(
            instance=instance, partition_key="2024-01-11", raise_on_error=False
        )
        check = {e.asset_check_key.name: e for e in result.get_asset_check_evaluations()}[LABELS_COVER_ROWS]
        assert not check.passed
        assert check.severity == dg.AssetCheckSeverity.ERROR
        assert "0% of 200 rows labeled" in check.description


def test_a_failing_labeling_function_fails_the_run_naming_lf_and_partition(readings_spec, resources, landing):
    @labeling_function()
    def broken(df):
        if (df["count"] > 45).any():
            raise ValueError("count too high")
        return np.full(len(df), ABSTAIN)

    sensor_readings("2024-01-10").to_csv(landing / "2024-01-10.csv", index=False)
    lfs = LabelingFunctionSet(lfs=[hot, mild, broken], classes=["normal", "alert"])
    defs = definitions(readings_spec, resources, lfs)
    with dg.instance_for_test() as instance:
        defs.resolve_job_def("readings_ingest").execute_in_process(
            instance=instance, partition_key="2024-01-10"
        )
        result = defs.resolve_job_def("readings_fit_label_model").execute_in_process(
            instance=instance, raise_on_error=False
        )
        assert not result.success
        error = result.get_step_failure_events()[0].step_failure_data.error
        message = (error.cause or error).message
        assert "labeling function 'broken' raised ValueError: count too high" in message
        assert "partition '2024-01-10'" in message
        assert "first failing row" in message


@pytest.mark.parametrize("kind", ["dawid_skene", "majority_vote"])
def test_either_label_model_labels_the_covered_rows(readings_spec, resources, landing, tmp_path, kind):
    sensor_readings("2024-01-10").to_csv(landing / "2024-01-10.csv", index=False)
    defs = dg.Definitions.merge(
        build_definitions(readings_spec, labeling=LabelingSpec(lfs=LFS, label_model=kind)),
        dg.Definitions(resources=resources),
    )
    with dg.instance_for_test() as instance:
        ingest_and_label(defs, instance, ["2024-01-10"])
        frame = pd.read_parquet(tmp_path / "lake" / "readings" / "labeled_set" / "2024-01-10.parquet")
        expected = "majority_vote" if kind == "majority_vote" else "label_model"
        assert expected in set(frame["label_source"])


def coverage_check(instance, day: str):
    for record in instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(LABELED, LF_COVERAGE_STABLE), limit=50
    ):
        evaluation = record.event.dagster_event.event_specific_data
        if evaluation.partition == day:
            return evaluation
    raise AssertionError(f"no {LF_COVERAGE_STABLE} evaluation for {day}")


def test_coverage_noise_between_small_partitions_passes_and_a_real_collapse_alerts(
    readings_spec, resources, landing, tmp_path
):
    # From 2024-01-08 to 01-09 `humid` goes from 9.5% to 19% of 200 rows by chance alone.
    sensor_readings("2024-01-08").to_csv(landing / "2024-01-08.csv", index=False)
    sensor_readings("2024-01-09").to_csv(landing / "2024-01-09.csv", index=False)
    dry = sensor_readings("2024-01-10")
    dry["humidity"] = dry["humidity"].clip(upper=60.0)  # the sensor saturates: `humid` never votes
    dry.to_csv(landing / "2024-01-10.csv", index=False)
    defs = definitions(readings_spec, resources)
    with dg.instance_for_test() as instance:
        ingest_and_label(defs, instance, ["2024-01-08", "2024-01-09", "2024-01-10"])

        assert coverage_check(instance, "2024-01-09").passed
        collapse = coverage_check(instance, "2024-01-10")
        assert not collapse.passed
        assert collapse.description.startswith("LF `humid` covers 0% of rows today (was 19% in 2024-01-09)")
        stored = json.loads(
            (tmp_path / "artifacts" / "readings" / "lf_stats" / "2024-01-10.json").read_text()
        )
        assert stored["rows"] == 200
        assert stored["coverage"]["humid"] == 0.0
