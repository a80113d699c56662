"""Retrains on a real Dagster instance and a real MLflow (SQLite): registry, gate, lineage, bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from dcai_assets import LabelingSpec, MlflowTracking, PromotionGate, TrainingSpec, build_definitions
from dcai_assets.assets.model import REGISTRY_POOL
from tests.assets.test_labeling_assets import LFS
from tests.conftest import sensor_readings

MODEL = dg.AssetKey(["readings", "trained_model"])
FEATURES = ["temperature", "humidity", "count", "site"]


def logistic_pipeline():
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    columns = ColumnTransformer(
        [("num", StandardScaler(), ["temperature", "humidity", "count"]), ("cat", OneHotEncoder(), ["site"])]
    )
    return Pipeline([("features", columns), ("classifier", LogisticRegression(max_iter=500))])


def constant_pipeline():
    from sklearn.dummy import DummyClassifier
    from sklearn.pipeline import Pipeline

    return Pipeline([("classifier", DummyClassifier(strategy="constant", constant="alert"))])


def failing_pipeline():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    return Pipeline([("classifier", LogisticRegression())])  # cannot fit the text column `site`


def definitions(spec, resources, tracking, pipeline=logistic_pipeline, gate=None):
    training = TrainingSpec(
        pipeline=pipeline,
        features=FEATURES,
        holdout_partitions=1,
        slices=["site"],
        sensitive="site",
        gate=gate or PromotionGate(min_rows=30, max_drop=0.02),
    )
    return dg.Definitions.merge(
        build_definitions(spec, labeling=LabelingSpec(lfs=LFS), training=training),
        dg.Definitions(resources={**resources, "mlflow_tracking": tracking}),
    )


def land_and_label(defs, instance, landing, days: list[str]) -> None:
    for day in days:
        sensor_readings(day).to_csv(landing / f"{day}.csv", index=False)
        defs.resolve_job_def("readings_ingest").execute_in_process(instance=instance, partition_key=day)
    defs.resolve_job_def("readings_fit_label_model").execute_in_process(instance=instance)
    for day in days:
        defs.resolve_job_def("readings_label").execute_in_process(instance=instance, partition_key=day)


def retrain(defs, instance) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def("readings_train").execute_in_process(instance=instance, raise_on_error=False)


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    error = result.get_step_failure_events()[0].step_failure_data.error
    return (error.cause or error).message


def metadata(result: dg.ExecuteInProcessResult) -> dict:
    event = result.get_asset_materialization_events()[0].materialization
    return {k: v.value for k, v in event.metadata.items()}


def test_first_retrain_registers_version_1_as_champion_with_its_lineage(
    readings_spec, resources, landing, tracking
):
    defs = definitions(readings_spec, resources, tracking)
    days = ["2024-01-10", "2024-01-11", "2024-01-12"]
    with dg.instance_for_test() as instance:
        land_and_label(defs, instance, landing, days)
        result = retrain(defs, instance)
        assert result.success
        md = metadata(result)
        assert md["model_uri"] == "models:/readings_model/1"
        assert 0 <= md["eval_accuracy"] <= 1 and "data:image/svg+xml" in md["feature_importance"]
        assert md["promoted"] is True
        assert "no champion yet" in md["gate"]
        assert set(md["partitions"]) == set(days)
        client = MlflowClient(tracking.tracking_uri)
        champion = client.get_model_version_by_alias("readings_model", "champion")
        assert str(champion.version) == "1"
        run = client.get_run(md["mlflow_run_id"])
        assert run.data.tags["dagster.run_id"] == result.run_id
        assert run.data.tags["dcai.lf_set_version"] == LFS.version
        assert run.data.tags["dcai.holdout_partitions"] == "2024-01-12"
        contexts = {i.tags[0].value: i.dataset.digest for i in run.inputs.dataset_inputs}
        assert set(contexts) == {"training", "evaluation"} and all(contexts.values())
        assert "eval_accuracy" in run.data.metrics
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"model", "lineage.json", "evaluation.csv"} <= artifacts
        requirements = Path(client.download_artifacts(run.info.run_id, "model/requirements.txt"))
        assert "scikit-learn==" in requirements.read_text()


def test_a_worse_challenger_is_registered_but_the_champion_stays(readings_spec, resources, landing, tracking):
    with dg.instance_for_test() as instance:
        good = definitions(readings_spec, resources, tracking)
        land_and_label(good, instance, landing, ["2024-01-10", "2024-01-11", "2024-01-12"])
        assert retrain(good, instance).success
        worse = definitions(readings_spec, resources, tracking, pipeline=constant_pipeline)
        result = retrain(worse, instance)
        assert result.success
        md = metadata(result)
        assert md["model_uri"] == "models:/readings_model/2"
        assert md["promoted"] is False
        assert "below the champion's" in md["gate"]
        client = MlflowClient(tracking.tracking_uri)
        assert str(client.get_model_version_by_alias("readings_model", "champion").version) == "1"
        assert str(client.get_model_version_by_alias("readings_model", "challenger").version) == "2"
        assert client.get_model_version("readings_model", "2").tags["dcai.gate"] == "failed"


def test_an_identical_retrain_is_recognisable_by_its_data_version(
    readings_spec, resources, landing, tracking
):
    defs = definitions(readings_spec, resources, tracking)
    with dg.instance_for_test() as instance:
        land_and_label(defs, instance, landing, ["2024-01-10", "2024-01-11", "2024-01-12"])
        first, second = retrain(defs, instance), retrain(defs, instance)
        versions = [r.get_asset_materialization_events()[0].materialization.tags["dagster/data_version"]
                    for r in (first, second)]  # fmt: skip
        assert versions[0] == versions[1]
        assert "same inputs and code as champion version 1" in metadata(second)["gate"]


def test_a_pipeline_that_fails_to_fit_names_the_estimator_and_the_window(
    readings_spec, resources, landing, tracking
):
    defs = definitions(readings_spec, resources, tracking, pipeline=failing_pipeline)
    with dg.instance_for_test() as instance:
        land_and_label(defs, instance, landing, ["2024-01-10", "2024-01-11", "2024-01-12"])
        result = retrain(defs, instance)
        assert not result.success
        message = failure_message(result)
        assert "LogisticRegression failed to fit" in message
        assert "readings 2 partitions 2024-01-10 .. 2024-01-11" in message
        with pytest.raises(MlflowException):
            MlflowClient(tracking.tracking_uri).get_registered_model("readings_model")


def test_too_few_labeled_partitions_is_a_clear_error(readings_spec, resources, landing, tracking):
    defs = definitions(readings_spec, resources, tracking)
    with dg.instance_for_test() as instance:
        land_and_label(defs, instance, landing, ["2024-01-10"])
        result = retrain(defs, instance)
        assert not result.success
        assert "1 labeled partitions of readings; expected more than 1" in failure_message(result)


def test_a_single_class_in_the_window_is_a_clear_error(readings_spec, resources, landing, tracking):
    from dcai_assets import LabelingFunctionSet
    from tests.assets.test_labeling_assets import hot, humid

    only_alerts = LabelingFunctionSet(lfs=[hot, humid], classes=["normal", "alert"])
    training = TrainingSpec(pipeline=logistic_pipeline, features=FEATURES)
    defs = dg.Definitions.merge(
        build_definitions(readings_spec, labeling=LabelingSpec(lfs=only_alerts), training=training),
        dg.Definitions(resources={**resources, "mlflow_tracking": tracking}),
    )
    with dg.instance_for_test() as instance:
        land_and_label(defs, instance, landing, ["2024-01-10", "2024-01-11"])
        result = retrain(defs, instance)
        assert not result.success
        assert "has class 'alert'; expected at least two classes" in failure_message(result)


def test_an_unreachable_tracking_server_fails_after_bounded_retries(
    readings_spec, resources, landing, tmp_path
):
    unreachable = MlflowTracking(
        tracking_uri="http://127.0.0.1:9", max_retries=2, retry_wait_seconds=0.1, request_timeout_seconds=2
    )
    defs = definitions(readings_spec, resources, unreachable)
    with dg.instance_for_test() as instance:
        land_and_label(defs, instance, landing, ["2024-01-10", "2024-01-11"])
        result = retrain(defs, instance)
        assert not result.success
        message = failure_message(result)
        assert "MLflow tracking at 'http://127.0.0.1:9' did not answer" in message
        assert "after 2 attempts" in message and "Nothing was registered" in message
        assert (
            not instance.get_materialized_partitions(MODEL)
            and instance.get_latest_materialization_event(MODEL) is None
        )


def test_a_failure_during_registration_leaves_no_version_and_the_champion_in_place(
    readings_spec, resources, landing, tracking, tmp_path
):
    defs = definitions(readings_spec, resources, tracking)
    with dg.instance_for_test() as instance:
        land_and_label(defs, instance, landing, ["2024-01-10", "2024-01-11", "2024-01-12"])
        assert retrain(defs, instance).success
        client = MlflowClient(tracking.tracking_uri)
        champion = client.get_model_version_by_alias("readings_model", "champion")
        shutil.rmtree(
            tmp_path / "mlartifacts" / champion.run_id / "artifacts" / "model"
        )  # champion unloadable
        result = retrain(defs, instance)
        assert not result.success
        versions = client.search_model_versions("name='readings_model'")
        assert [str(v.version) for v in versions] == ["1"]  # version 2 was removed again
        assert str(client.get_model_version_by_alias("readings_model", "champion").version) == "1"


def test_registry_writes_are_serialized_by_a_concurrency_pool(readings_spec, resources, tracking):
    defs = definitions(readings_spec, resources, tracking)
    assert defs.resolve_assets_def(MODEL).op.pool == REGISTRY_POOL


def test_a_window_where_every_row_abstained_is_a_clear_error(readings_spec, resources, landing, tracking):
    import numpy as np

    from dcai_assets import ABSTAIN, LabelingFunctionSet, labeling_function

    @labeling_function(uses=["temperature"])
    def boiling(df):
        return np.where(df["temperature"] > 100, 1, ABSTAIN)

    @labeling_function(uses=["temperature"])
    def frozen(df):
        return np.where(df["temperature"] < -50, 0, ABSTAIN)

    never = LabelingFunctionSet(lfs=[boiling, frozen], classes=["normal", "alert"])
    training = TrainingSpec(pipeline=logistic_pipeline, features=FEATURES)
    defs = dg.Definitions.merge(
        build_definitions(
            readings_spec, labeling=LabelingSpec(lfs=never, label_model="majority_vote"), training=training
        ),
        dg.Definitions(resources={**resources, "mlflow_tracking": tracking}),
    )
    with dg.instance_for_test() as instance:
        land_and_label(defs, instance, landing, ["2024-01-10", "2024-01-11"])
        result = retrain(defs, instance)
        assert not result.success
        message = failure_message(result)
        assert "every row of the training window (1 partitions 2024-01-10 .. 2024-01-10) abstained" in message
