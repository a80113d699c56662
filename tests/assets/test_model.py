"""Retrains on a real Dagster instance and a real MLflow (SQLite): registry, gate, lineage, bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from dcai_assets import (
    DatasetSpec,
    ImportanceSpec,
    LabelingSpec,
    LandingDirectory,
    MlflowTracking,
    PromotionGate,
    TrainingSpec,
    build_definitions,
)
from dcai_assets.assets.model import REGISTRY_POOL
from dcai_assets.core.evaluation import GAP_NAMES
from dcai_assets.core.schema_inference import infer_schema
from dcai_assets.spec import DailyPartitions
from tests.assets.test_labeled import LFS
from tests.conftest import REFERENCE_DAYS, sensor_readings

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


def definitions(spec, resources, tracking, pipeline=logistic_pipeline, gate=None, automation=None):
    training = TrainingSpec(
        pipeline=pipeline,
        features=FEATURES,
        holdout_partitions=1,
        slices=["site"],
        sensitive="site",
        gate=gate or PromotionGate(min_rows=30, max_drop=0.02),
    )
    return dg.Definitions.merge(
        build_definitions(spec, labeling=LabelingSpec(lfs=LFS), training=training, automation=automation),
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


def promoted(result: dg.ExecuteInProcessResult) -> bool:
    """Whether the retrain moved the champion: the observation recorded after the card was stored."""
    (event,) = [e for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"]
    return event.asset_observation_data.asset_observation.metadata["promoted"].value


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
        assert md["gate_passed"] is True and promoted(result) is True
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
        assert md["gate_passed"] is False and promoted(result) is False
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
    from dcai_assets.core.labeling import LabelingFunctionSet
    from tests.assets.test_labeled import hot, humid

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

    from dcai_assets.core.labeling import ABSTAIN, LabelingFunctionSet, labeling_function

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


# --- the holdout, the positive class, fairness and more than two classes, end to end ---

GOLD_DAYS = ["2024-01-10", "2024-01-11", "2024-01-12", "2024-01-13", "2024-01-14"]


def with_gold(frame: pd.DataFrame, gold: dict[str, int]) -> pd.DataFrame:
    """``frame`` with a sparse gold column ``status``: the first rows get the given classes."""
    status = [c for c, n in gold.items() for _ in range(n)]
    return frame.assign(status=status + [None] * (len(frame) - len(status)))


@pytest.fixture
def gold_spec(tmp_path, landing):
    """The readings dataset with a sparsely filled gold column ``status``."""
    schema_path = tmp_path / "schemas" / "readings_gold.yaml"
    frames = {d: with_gold(sensor_readings(d), {"normal": 20, "alert": 20}) for d in REFERENCE_DAYS}
    infer_schema(frames, key=["reading_id"]).save(schema_path)
    return DatasetSpec(
        name="readings",
        source=LandingDirectory(path=landing),
        partitioning=DailyPartitions(start="2024-01-01", end="2024-03-01"),
        schema_path=schema_path,
        key="reading_id",
        label="status",
    )


def land_and_label_gold(defs, instance, landing, gold: dict[str, dict[str, int]]) -> None:
    for day, classes in gold.items():
        with_gold(sensor_readings(day), classes).to_csv(landing / f"{day}.csv", index=False)
        defs.resolve_job_def("readings_ingest").execute_in_process(instance=instance, partition_key=day)
    defs.resolve_job_def("readings_fit_label_model").execute_in_process(instance=instance)
    for day in gold:
        defs.resolve_job_def("readings_label").execute_in_process(instance=instance, partition_key=day)


def gold_definitions(spec, resources, tracking, **training):
    settings = dict(pipeline=logistic_pipeline, features=FEATURES, holdout_partitions=1) | training
    return dg.Definitions.merge(
        build_definitions(
            spec,
            labeling=LabelingSpec(lfs=LFS),
            training=TrainingSpec(**settings),
            importance=ImportanceSpec(k=5),
        ),
        dg.Definitions(resources={**resources, "mlflow_tracking": tracking}),
    )


def test_a_single_class_gold_holdout_is_widened_until_both_classes_have_enough_rows(
    gold_spec, resources, landing, tracking
):
    gold = {d: {"normal": 20, "alert": 20} for d in GOLD_DAYS[:3]}
    gold |= {d: {"alert": 40} for d in GOLD_DAYS[3:]}  # the newest days: every gold row is an alert
    defs = gold_definitions(gold_spec, resources, tracking)
    with dg.instance_for_test() as instance:
        land_and_label_gold(defs, instance, landing, gold)
        result = retrain(defs, instance)
        assert result.success
        md = metadata(result)
        run = MlflowClient(tracking.tracking_uri).get_run(md["mlflow_run_id"])
        assert run.data.tags["dcai.holdout_partitions"] == ",".join(GOLD_DAYS[2:])
        assert md["holdout_widened_by"] == 2
        assert md["holdout_class_counts"] == {"normal": 20, "alert": 100}
        assert "widened by 2 to 3 partitions" in md["evaluation_warnings"]
        assert md["evaluation_status"] == "determined"
        logged = [e.user_message for e in instance.all_logs(result.run_id)]
        assert any(m.startswith("holdout: the newest 1 partitions had too few") for m in logged)


def test_a_holdout_single_class_at_the_widest_is_undetermined_not_promoted_and_flagged_in_importance(
    gold_spec, resources, landing, tracking
):
    gold = {d: {"normal": 20, "alert": 20} for d in GOLD_DAYS[:2]}
    gold |= {d: {"alert": 40} for d in GOLD_DAYS[2:]}
    defs = gold_definitions(gold_spec, resources, tracking, max_holdout_partitions=2)
    with dg.instance_for_test() as instance:
        land_and_label_gold(defs, instance, landing, gold)
        result = retrain(defs, instance)
        assert result.success
        md = metadata(result)
        assert md["gate_passed"] is False and promoted(result) is False
        assert "evaluation undetermined (single class: every row is 'alert'" in md["gate"]
        assert md["evaluation_status"] == "undetermined"
        assert "single-class holdout: only 'alert' has at least 10" in md["evaluation_warnings"]
        scores = defs.resolve_job_def("readings_score_importance").execute_in_process(instance=instance)
        importance_md = scores.get_asset_materialization_events()[0].materialization.metadata
        assert importance_md["holdout_status"].value == "undetermined (single class)"
        assert "single-class holdout" in importance_md["holdout_warning"].value


def test_a_fairness_gap_over_one_group_with_enough_rows_is_undetermined_not_zero(
    readings_spec, resources, landing, tracking
):
    # holdout 2024-01-12 has 53 labeled rows from north, 38 south, 20 east, 17 west: only north has 45
    defs = definitions(readings_spec, resources, tracking, gate=PromotionGate(min_rows=30, min_slice_rows=45))
    with dg.instance_for_test() as instance:
        land_and_label(defs, instance, landing, ["2024-01-10", "2024-01-11", "2024-01-12"])
        result = retrain(defs, instance)
        assert result.success
        md = metadata(result)
        assert md["fairness/demographic_parity_difference/status"] == "undetermined"
        assert "fairness/demographic_parity_difference" not in md  # no number, not 0.0
        rows = markdown_rows(md["fairness"])
        for name in GAP_NAMES:  # shown as undetermined with the reason, never as a number
            (gap,) = rows[name]
            assert gap[1:3] == ["undetermined", "-"], gap
            assert gap[4].startswith("**undetermined**") and "1 group(s) with enough rows" in gap[4], gap
        assert [r[1] for r in (rows["north"] + rows["south"] + rows["east"] + rows["west"])] == [
            "53", "38", "20", "17"
        ]  # fmt: skip
        assert rows["south"][0][-1] == "too few rows (n=38, need 45)"
        assert "fairness could not be checked: demographic_parity_difference is undetermined" in md["gate"]
        assert "demographic_parity_difference over 'site'" in md["evaluation_warnings"]
        run = MlflowClient(tracking.tracking_uri).get_run(md["mlflow_run_id"])
        assert "eval_demographic_parity_difference" not in run.data.metrics
        logged = [e.user_message for e in instance.all_logs(result.run_id)]
        assert any(
            m.startswith("evaluation: ") and "- demographic_parity_difference over 'site'" in m
            for m in logged
        )


def markdown_rows(text: str) -> dict[str, list[list[str]]]:
    """The rows of every markdown table in ``text`` by their first cell, as lists of cells."""
    rows: dict[str, list[list[str]]] = {}
    for line in text.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows.setdefault(cells[0], []).append(cells)
    return rows


def test_fairness_gaps_are_numeric_metadata_and_mlflow_metrics_with_intervals_and_group_counts(
    readings_spec, resources, landing, tracking
):
    defs = definitions(readings_spec, resources, tracking, gate=PromotionGate(min_rows=30, min_slice_rows=15))
    with dg.instance_for_test() as instance:
        land_and_label(defs, instance, landing, ["2024-01-10", "2024-01-11", "2024-01-12"])
        result = retrain(defs, instance)
        assert result.success
        event = result.get_asset_materialization_events()[0].materialization
        dp = event.metadata["fairness/demographic_parity_difference"]
        assert isinstance(dp, dg.FloatMetadataValue)
        md = metadata(result)
        assert md["fairness/demographic_parity_difference/ci_low"] <= dp.value
        assert dp.value <= md["fairness/demographic_parity_difference/ci_high"]
        assert md["fairness/demographic_parity_difference/groups_used"] == 4
        groups = md["fairness/groups"]["alert"]
        assert sum(g["n"] for g in groups.values()) == md["evaluation_rows"]
        assert md["fairness/demographic_parity_difference/smallest_group_rows"] == min(
            g["n"] for g in groups.values()
        )
        metrics = MlflowClient(tracking.tracking_uri).get_run(md["mlflow_run_id"]).data.metrics
        assert metrics["eval_demographic_parity_difference"] == pytest.approx(dp.value)
        assert "eval_demographic_parity_difference.ci_high" in metrics


def test_a_declared_positive_class_drives_precision_and_is_shown_in_the_model_card(
    readings_spec, resources, landing, tracking, tmp_path
):
    defs = gold_definitions(readings_spec, resources, tracking, positive_class="normal", sensitive="site")
    with dg.instance_for_test() as instance:
        land_and_label(defs, instance, landing, ["2024-01-10", "2024-01-11", "2024-01-12"])
        result = retrain(defs, instance)
        assert result.success
        md = metadata(result)
        assert md["positive_class"] == "normal (TrainingSpec.positive_class)"
        assert (md["eval_precision"], md["eval_recall"]) == (
            md["eval_precision:normal"],
            md["eval_recall:normal"],
        )
        assert set(md["fairness/groups"]) == {"normal"}  # the gaps are about predicting `normal`
        card = pd.read_parquet(tmp_path / "lake" / "readings" / "trained_model.parquet")
        assert card.loc[0, "positive_class"] == "normal"
        run = MlflowClient(tracking.tracking_uri).get_run(md["mlflow_run_id"])
        assert run.data.tags["dcai.positive_class"] == "normal"


def test_the_default_positive_class_is_the_second_class_and_stated(
    readings_spec, resources, landing, tracking
):
    defs = definitions(readings_spec, resources, tracking)
    with dg.instance_for_test() as instance:
        land_and_label(defs, instance, landing, ["2024-01-10", "2024-01-11"])
        md = metadata(retrain(defs, instance))
        assert md["positive_class"] == "alert (default: the second of the classes ['normal', 'alert'])"


@pytest.mark.parametrize(
    ("settings", "error", "message"),
    [
        ({"positive_class": "warning"}, ValueError, "TrainingSpec.positive_class: 'warning' is not a class"),
        ({"positive_class": 1}, TypeError, "TrainingSpec.positive_class: 1 is a int"),
        ({"min_class_rows": 0}, ValueError, "TrainingSpec.min_class_rows: 0; expected an integer >= 1"),
        ({"max_holdout_partitions": 1, "holdout_partitions": 2}, ValueError, "is below holdout_partitions=2"),
    ],
)
def test_bad_positive_class_and_holdout_settings_are_clear_errors(
    readings_spec, resources, tracking, settings, error, message
):
    with pytest.raises(error, match=message):
        gold_definitions(readings_spec, resources, tracking, **settings)


def test_more_than_two_classes_get_per_class_metrics_and_one_vs_rest_fairness(
    readings_spec, resources, landing, tracking
):
    from dcai_assets.core.labeling import ABSTAIN, LabelingFunctionSet, labeling_function

    @labeling_function(uses=["temperature"])
    def cold(df):
        return np.where(df["temperature"] < 18, 0, ABSTAIN)

    @labeling_function(uses=["temperature"])
    def mild(df):
        return np.where(df["temperature"].between(19, 21), 1, ABSTAIN)

    @labeling_function(uses=["temperature"])
    def warm(df):
        return np.where(df["temperature"] > 22, 2, ABSTAIN)

    lfs = LabelingFunctionSet(lfs=[cold, mild, warm], classes=["cold", "mild", "warm"])
    training = TrainingSpec(
        pipeline=logistic_pipeline, features=FEATURES, sensitive="site",
        gate=PromotionGate(metric="f1_macro", min_slice_rows=10),
    )  # fmt: skip
    defs = dg.Definitions.merge(
        build_definitions(
            readings_spec, labeling=LabelingSpec(lfs=lfs, label_model="majority_vote"), training=training
        ),
        dg.Definitions(resources={**resources, "mlflow_tracking": tracking}),
    )
    with dg.instance_for_test() as instance:
        land_and_label(defs, instance, landing, ["2024-01-10", "2024-01-11", "2024-01-12"])
        result = retrain(defs, instance)
        assert result.success
        md = metadata(result)
        assert md["positive_class"].startswith("none: 3 classes, per-class and macro metrics")
        assert "eval_precision" not in md
        for c in ("cold", "mild", "warm"):
            assert 0 <= md[f"eval_f1:{c}"] <= 1 and md[f"eval_support:{c}"] > 0
            assert md[f"fairness/demographic_parity_difference:{c}/status"] in {"determined", "undetermined"}
        assert set(md["fairness/groups"]) == {"cold", "mild", "warm"}
        metrics = MlflowClient(tracking.tracking_uri).get_run(md["mlflow_run_id"]).data.metrics
        assert "eval_f1.cold" in metrics and "eval_f1_macro" in metrics
