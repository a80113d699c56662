"""Data health checks on a real Dagster instance and MLflow: they run with the importance scores
and find training rows copied into the holdout, blocking when the spec says, with no false alarm
from the other checks."""

from __future__ import annotations

import dataclasses

import dagster as dg
import pandas as pd
import pytest

from dcai_assets import ImportanceSpec, LabelingSpec, TrainingSpec, build_definitions
from dcai_assets.assets.health import HEALTH_CHECKS
from dcai_assets.spec import HealthChecks
from tests.assets.test_labeled import LFS
from tests.assets.test_model import FEATURES, logistic_pipeline
from tests.conftest import sensor_readings

DAYS = ["2024-01-10", "2024-01-11", "2024-01-12"]  # two to train on, the last held out
SCORES = dg.AssetKey(["readings", "importance_scores"])


def definitions(spec, resources, tracking) -> dg.Definitions:
    training = TrainingSpec(pipeline=logistic_pipeline, features=FEATURES, holdout_partitions=1)
    return dg.Definitions.merge(
        build_definitions(
            spec, labeling=LabelingSpec(lfs=LFS), training=training, importance=ImportanceSpec()
        ),
        dg.Definitions(resources={**resources, "mlflow_tracking": tracking}),
    )


def land(defs, instance, landing, frames: dict[str, pd.DataFrame]) -> None:
    """Ingest and label ``frames`` (partition -> rows), then retrain."""
    for day, frame in frames.items():
        frame.to_csv(landing / f"{day}.csv", index=False)
        assert (
            defs.resolve_job_def("readings_ingest")
            .execute_in_process(instance=instance, partition_key=day)
            .success
        )
    if instance.get_latest_materialization_event(dg.AssetKey(["readings", "label_model"])) is None:
        assert defs.resolve_job_def("readings_fit_label_model").execute_in_process(instance=instance).success
    for day in frames:
        assert (
            defs.resolve_job_def("readings_label")
            .execute_in_process(instance=instance, partition_key=day)
            .success
        )
    assert defs.resolve_job_def("readings_train").execute_in_process(instance=instance).success


@pytest.mark.slow  # about a minute: three days ingested, labeled, trained and scored
def test_training_rows_copied_into_the_holdout_fail_the_blocking_duplicates_check_alone(
    readings_spec, resources, landing, tracking, tmp_path
):
    spec = dataclasses.replace(readings_spec, health_checks=HealthChecks(blocking=["duplicates"]))
    defs = definitions(spec, resources, tracking)
    frames = {day: sensor_readings(day) for day in DAYS}
    copied = frames[DAYS[0]].sample(20, random_state=0)  # a replayed export lands in the holdout day
    frames[DAYS[2]] = pd.concat([frames[DAYS[2]], copied], ignore_index=True)
    with dg.instance_for_test() as instance:
        land(defs, instance, landing, frames)
        result = dg.materialize(
            [*defs.assets, *defs.asset_checks], instance=instance, selection=[SCORES],
            resources={**resources, "mlflow_tracking": tracking}, raise_on_error=False,
        )  # fmt: skip
        assert result.get_asset_materialization_events()  # the scores are stored; the check then fails
        evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    labeled = pd.read_parquet(tmp_path / "lake" / "readings" / "labeled_set" / f"{DAYS[0]}.parquet")
    valued = labeled.loc[
        labeled["reading_id"].isin(copied["reading_id"]) & labeled["label"].notna(), "reading_id"
    ]
    assert set(evaluations) == set(HEALTH_CHECKS)
    duplicates = evaluations.pop("duplicates")
    assert not duplicates.passed and duplicates.severity == dg.AssetCheckSeverity.ERROR
    assert not result.success  # blocking: the run fails
    # rows where every LF abstained are neither trained on nor evaluated on: the copies of the others
    assert 10 <= len(valued) <= 20
    assert duplicates.metadata["holdout_copies_of_training_rows"].value == len(valued)
    assert duplicates.metadata["severity"].value == "ERROR (blocking)"
    examples = duplicates.metadata["examples"].value
    shown = [reading for reading in copied["reading_id"] if f"| {reading} |" in examples]
    assert len(shown) == min(10, len(valued)) and set(shown) <= set(valued)  # the first ten, all copies
    assert f"{len(valued)} rows in all" in examples
    assert "| pair | rows | copies |" in duplicates.metadata["table"].value
    # the other checks see nothing wrong, and warn only
    assert {n: e.passed for n, e in evaluations.items()} == dict.fromkeys(evaluations, True)
    assert {e.severity for e in evaluations.values()} == {dg.AssetCheckSeverity.WARN}
    assert all(e.metadata["status"].value == "determined" for e in evaluations.values())
