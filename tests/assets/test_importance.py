"""Importance scores on a real Dagster instance and MLflow: scores, review queue, bad input."""

from __future__ import annotations

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from dcai_assets import (
    DatasetSpec,
    ImportanceSpec,
    LabelingSpec,
    LandingDirectory,
    TrainingSpec,
    build_definitions,
)
from dcai_assets.assets import importance as importance_assets
from dcai_assets.core.reading import frame_digest
from dcai_assets.core.review import per_labeling_function
from dcai_assets.core.schema_inference import infer_schema
from dcai_assets.spec import DailyPartitions
from tests.assets.test_labeled import LFS
from tests.assets.test_model import (
    FEATURES,
    GOLD_DAYS,
    gold_definitions,
    gold_spec,  # noqa: F401 (a fixture)
    land_and_label,
    land_and_label_gold,
    logistic_pipeline,
)
from tests.conftest import REFERENCE_DAYS, sensor_readings

DAYS = ["2024-01-10", "2024-01-11", "2024-01-12"]
NUMBERS = ["temperature", "humidity", "count"]


def definitions(spec, resources, tracking, pipeline=logistic_pipeline, features=FEATURES, k=5, shards=1):
    training = TrainingSpec(pipeline=pipeline, features=features, holdout_partitions=1)
    return dg.Definitions.merge(
        build_definitions(
            spec,
            labeling=LabelingSpec(lfs=LFS),
            training=training,
            importance=ImportanceSpec(k=k, shards=shards),
        ),
        dg.Definitions(resources={**resources, "mlflow_tracking": tracking}),
    )


def train_and_score(defs, instance) -> dg.ExecuteInProcessResult:
    assert defs.resolve_job_def("readings_train").execute_in_process(instance=instance).success
    return defs.resolve_job_def("readings_score_importance").execute_in_process(
        instance=instance, raise_on_error=False
    )


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    error = result.get_step_failure_events()[0].step_failure_data.error
    return (error.cause or error).message


def test_every_training_row_gets_a_score_traced_to_its_partition_and_key(
    readings_spec, resources, landing, tracking, tmp_path, monkeypatch
):
    monkeypatch.setattr(importance_assets, "_PROGRESS_FROM", 0)  # log progress even for this small set
    defs = definitions(readings_spec, resources, tracking)
    with dg.instance_for_test() as instance:
        land_and_label(defs, instance, landing, DAYS)
        result = train_and_score(defs, instance)
        assert result.success
        logged = [entry.user_message for entry in instance.all_logs(result.run_id)]
        assert any(message.startswith("valuation 100%") for message in logged)
        lake = tmp_path / "lake" / "readings"
        scores = pd.read_parquet(lake / "importance_scores.parquet")
        labeled = [pd.read_parquet(lake / "labeled_set" / f"{d}.parquet") for d in DAYS[:2]]
        assert len(scores) == sum(int(f["label"].notna().sum()) for f in labeled)
        assert set(scores["_partition"]) == set(DAYS[:2])
        assert scores["reading_id"].is_unique
        assert sorted(scores["rank"]) == list(range(1, len(scores) + 1))
        assert (scores.loc[scores["importance"] < 0, "suggested_action"] != "").all()
        materialization = result.get_asset_materialization_events()[0].materialization
        assert materialization.tags["dagster/data_version"] == frame_digest(scores)[:16]
        md = materialization.metadata
        assert "| review | partition | reading_id |" in md["review_queue"].value
        assert "| p(wrong) | suggested (p) | why |" in md["review_queue"].value
        assert sorted(scores["review_rank"]) == list(range(1, len(scores) + 1))
        assert scores["model_confidence"].between(0, 1).all()
        assert scores["doubt"].between(0, 1).all()
        ranks_by = md["review_queue_ranks_by"].value  # no gold rows: said, and the rest weighed equally
        assert "equal weights" in ranks_by and "Without a model of the gold rows" in ranks_by
        actions = scores["suggested_action"]
        assert actions.str.match(r"^(relabel as \w+|drop as duplicate of row \d+|check outlier: .*)?$").all()
        assert (
            "WARNING: the holdout's labels come from the same labeling functions"
            in md["holdout_warning"].value
        )
        assert md["by_labeling_function"].value.split("\n\n")[0].count("\n") == len(LFS.names) + 1
        assert md["most_harmful_lf_status"].value == "undetermined: no gold rows"
        assert "most_harmful_lf_excess_wrong_labels" not in md  # no string where a number is plotted
        assert "data:image/svg+xml;base64," in md["histogram"].value
        # numba compilation is timed apart from the valuation (compile_kernels runs first)
        assert md["compile_seconds"].value >= 0.0 and md["valuation_seconds"].value >= 0.0
        assert "seconds" not in md


def test_sharded_valuation_runs_a_step_per_shard_and_equals_the_unsharded_values(
    readings_spec, resources, landing, tracking, tmp_path
):
    whole_defs = definitions(readings_spec, resources, tracking)
    sharded_defs = definitions(readings_spec, resources, tracking, shards=3)
    scores_path = tmp_path / "lake" / "readings" / "importance_scores.parquet"
    with dg.instance_for_test() as instance:
        land_and_label(whole_defs, instance, landing, DAYS)
        assert train_and_score(whole_defs, instance).success
        whole = pd.read_parquet(scores_path).set_index("reading_id")
        result = sharded_defs.resolve_job_def("readings_score_importance").execute_in_process(
            instance=instance
        )
        assert result.success
        steps = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SUCCESS"}
        prefix = "readings__importance_scores"
        once = {f"{prefix}.{prefix}_prepare", f"{prefix}.{prefix}_sum_shards"}
        assert {f"{prefix}.{prefix}_shard_{i}" for i in range(3)} | once | {f"{prefix}_health"} == steps
        sharded = pd.read_parquet(scores_path).set_index("reading_id").loc[whole.index]
        assert (whole["importance"] != 0).mean() > 0.5  # a comparison of real values, not of zeros
        np.testing.assert_allclose(sharded["importance"], whole["importance"], rtol=0, atol=1e-12)
        np.testing.assert_allclose(sharded["loo"], whole["loo"], rtol=0, atol=1e-12)
        assert (sharded["rank"] == whole["rank"]).mean() > 0.99  # exact ties may swap by rounding
        md = result.get_asset_materialization_events()[0].materialization.metadata
        assert md["shards"].value == 3
        assert "| review | partition | reading_id |" in md["review_queue"].value


@pytest.mark.parametrize("shards", [1, 2])
def test_a_rerun_on_the_same_model_and_rows_reuses_the_stored_valuation_and_says_so(
    readings_spec, resources, landing, tracking, tmp_path, shards
):
    defs = definitions(readings_spec, resources, tracking, shards=shards)
    scores_path = tmp_path / "lake" / "readings" / "importance_scores.parquet"
    with dg.instance_for_test() as instance:
        land_and_label(defs, instance, landing, DAYS)
        first = train_and_score(defs, instance)
        assert first.success
        before = pd.read_parquet(scores_path)
        path = first.get_asset_materialization_events()[0].materialization.metadata["valuation_path"]
        assert path.value.count("full: ") == shards
        again = defs.resolve_job_def("readings_score_importance").execute_in_process(instance=instance)
        path = again.get_asset_materialization_events()[0].materialization.metadata["valuation_path"]
        assert path.value.count("unchanged: reused the stored valuation") == shards
        after = pd.read_parquet(scores_path)
        np.testing.assert_array_equal(after["importance"], before["importance"])
        np.testing.assert_array_equal(after["loo"], before["loo"])
        stored = list((tmp_path / "artifacts" / "readings" / "valuation_blocks").glob("*/complete/*.npz"))
        assert len(stored) == shards  # one complete valuation per holdout range, no blocks left


def test_sharded_valuation_loads_and_preprocesses_the_window_once_not_once_per_shard(
    readings_spec, resources, tracking
):
    job = definitions(readings_spec, resources, tracking, shards=3).resolve_job_def(
        "readings_score_importance"
    )
    prefix = "readings__importance_scores"
    graph = job.graph.node_named(prefix).definition
    ops = {node.name: node.definition for node in graph.nodes}
    loaders = [name for name, op in ops.items() if "mlflow_tracking" in op.required_resource_keys]
    assert sorted(loaders) == [f"{prefix}_prepare", f"{prefix}_sum_shards"]  # the sum needs predictions
    for i in range(3):
        shard = ops[f"{prefix}_shard_{i}"]
        assert list(shard.ins) == ["prepared"], "a shard reads the prepared rows, not the window or model"


def test_k_larger_than_the_training_rows_is_valued_exactly_with_a_warning(
    readings_spec, resources, landing, tracking
):
    defs = definitions(readings_spec, resources, tracking, k=100_000)
    with dg.instance_for_test() as instance:
        land_and_label(defs, instance, landing, DAYS)
        result = train_and_score(defs, instance)
        assert result.success
        logged = [entry.user_message for entry in instance.all_logs(result.run_id)]
        assert any("K=100000 is larger than the" in message for message in logged)
        scores = dg.AssetKey(["readings", "importance_scores"])
        md = instance.get_latest_materialization_event(scores).asset_materialization.metadata
        assert md["k"].value == 100_000 and md["training_rows"].value < 100_000


def bare_tree():
    from sklearn.pipeline import Pipeline
    from sklearn.tree import DecisionTreeClassifier

    return Pipeline([("classifier", DecisionTreeClassifier(random_state=0))])


def test_a_pipeline_without_a_preprocessing_step_is_a_clear_error(
    readings_spec, resources, landing, tracking
):
    defs = definitions(readings_spec, resources, tracking, pipeline=bare_tree, features=NUMBERS)
    with dg.instance_for_test() as instance:
        land_and_label(defs, instance, landing, DAYS)
        result = train_and_score(defs, instance)  # a tree model is also logged and registered
        assert not result.success
        assert "a preprocessing step before the estimator" in failure_message(result)


def nan_passing_pipeline():
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline

    keep = ColumnTransformer([("keep", "passthrough", NUMBERS)])
    return Pipeline([("features", keep), ("classifier", HistGradientBoostingClassifier(max_iter=20))])


def test_nan_features_after_preprocessing_are_a_clear_error_naming_the_columns(
    readings_spec, resources, landing, tracking
):
    schema = readings_spec.schema_path
    schema.write_text(  # humidity may now be missing in up to 10% of rows
        schema.read_text().replace(
            "- name: humidity\n  dtype: float64\n  nullable: false\n  max_null_fraction: 0.0",
            "- name: humidity\n  dtype: float64\n  nullable: true\n  max_null_fraction: 0.1",
        )
    )
    defs = definitions(readings_spec, resources, tracking, pipeline=nan_passing_pipeline, features=NUMBERS)
    with dg.instance_for_test() as instance:
        for day in DAYS:
            frame = sensor_readings(day)
            frame.loc[:3, "humidity"] = np.nan
            frame.to_csv(landing / f"{day}.csv", index=False)
        ingest = defs.resolve_job_def("readings_ingest")
        for day in DAYS:
            assert ingest.execute_in_process(instance=instance, partition_key=day).success
        defs.resolve_job_def("readings_fit_label_model").execute_in_process(instance=instance)
        for day in DAYS:
            defs.resolve_job_def("readings_label").execute_in_process(instance=instance, partition_key=day)
        result = train_and_score(defs, instance)
        assert not result.success
        assert "hold NaN or infinite values in ['keep__humidity']" in failure_message(result)


def test_a_missing_labeled_partition_of_the_window_is_a_clear_error(
    readings_spec, resources, landing, tracking, tmp_path
):
    defs = definitions(readings_spec, resources, tracking)
    with dg.instance_for_test() as instance:
        land_and_label(defs, instance, landing, DAYS)
        assert defs.resolve_job_def("readings_train").execute_in_process(instance=instance).success
        (tmp_path / "lake" / "readings" / "labeled_set" / "2024-01-10.parquet").unlink()
        result = defs.resolve_job_def("readings_score_importance").execute_in_process(
            instance=instance, raise_on_error=False
        )
        assert not result.success
        assert "missing labeled partitions ['2024-01-10']" in failure_message(result)


def checked_readings(day: str) -> pd.DataFrame:
    """A day of readings where an operator checked about 30% of them by hand (`checked`)."""
    frame = sensor_readings(day)
    truth = np.where(frame["temperature"] + (frame["humidity"] - 55) / 10 > 21.5, "alert", "normal")
    checked = np.random.default_rng(int(day.replace("-", ""))).random(len(frame)) < 0.3
    return frame.assign(checked=np.where(checked, truth, None))


def checked_definitions(tmp_path, landing, resources, tracking, pipeline, features):
    """Readings with a sparse hand-checked `checked` column as gold labels."""
    schema_path = tmp_path / "schemas" / "checked.yaml"
    infer_schema({d: checked_readings(d) for d in REFERENCE_DAYS}, key=["reading_id"]).save(schema_path)
    spec = DatasetSpec(
        name="readings",
        source=LandingDirectory(path=landing),
        partitioning=DailyPartitions(start="2024-01-01", end="2024-03-01"),
        schema_path=schema_path,
        key="reading_id",
        label="checked",
    )
    return dg.Definitions.merge(
        build_definitions(
            spec,
            labeling=LabelingSpec(lfs=LFS, gold_column="checked"),
            training=TrainingSpec(pipeline=pipeline, features=features, holdout_partitions=1),
            importance=ImportanceSpec(k=5),
        ),
        dg.Definitions(resources={**resources, "mlflow_tracking": tracking}),
    )


def land_checked_and_score(defs, instance, landing) -> dg.ExecuteInProcessResult:
    for day in DAYS:
        checked_readings(day).to_csv(landing / f"{day}.csv", index=False)
        defs.resolve_job_def("readings_ingest").execute_in_process(instance=instance, partition_key=day)
    defs.resolve_job_def("readings_fit_label_model").execute_in_process(instance=instance)
    for day in DAYS:
        defs.resolve_job_def("readings_label").execute_in_process(instance=instance, partition_key=day)
    return train_and_score(defs, instance)


def test_gold_rows_are_left_out_of_the_review_queue_and_the_per_lf_table_judges_lfs_by_them(
    tmp_path, landing, resources, tracking
):
    defs = checked_definitions(tmp_path, landing, resources, tracking, nan_passing_pipeline, NUMBERS)
    with dg.instance_for_test() as instance:
        result = land_checked_and_score(defs, instance, landing)
        assert result.success
        scores = pd.read_parquet(tmp_path / "lake" / "readings" / "importance_scores.parquet")
        gold = scores["label_source"] == "gold"
        assert gold.sum() > 50
        assert scores.loc[gold, "review_rank"].isna().all()
        assert sorted(scores.loc[~gold, "review_rank"]) == list(range(1, int((~gold).sum()) + 1))
        md = result.get_asset_materialization_events()[0].materialization.metadata
        assert "| gold |" not in md["review_queue"].value
        assert md["review_queue_gold_rows"].value == f"left out: {int(gold.sum())} hand-checked rows"
        assert "conditional logit (fitted on " in md["review_queue_ranks_by"].value  # weights from gold rows
        table = md["by_labeling_function"].value
        assert "| rank | LF | polarity | coverage | disagrees with label model |" in table
        assert "Ranked by wrong labels each LF set beyond the other LFs' accuracy" in table
        named = md["most_harmful_lf"].value
        assert named in LFS.names or named.startswith("none: no LF's labels are shown less accurate")
        assert md["most_harmful_lf_status"].value.startswith("determined")
        excess = md["most_harmful_lf_excess_wrong_labels"]
        assert isinstance(excess, dg.FloatMetadataValue) and np.isfinite(excess.value)
        assert (excess.value > 0) == (named in LFS.names)


def test_a_gold_row_model_that_meets_an_unseen_category_leaves_the_queue_without_it(
    tmp_path, landing, resources, tracking
):
    defs = checked_definitions(tmp_path, landing, resources, tracking, logistic_pipeline, FEATURES)
    with dg.instance_for_test() as instance:
        result = land_checked_and_score(defs, instance, landing)
        assert result.success
        logged = [entry.user_message for entry in instance.all_logs(result.run_id)]
        assert any("review queue without a model of the gold rows: it cannot score" in m for m in logged)
        scores = pd.read_parquet(tmp_path / "lake" / "readings" / "importance_scores.parquet")
        assert scores["trusted_confidence"].isna().all()


def test_a_single_class_holdout_flags_the_named_lf_and_the_review_queue(
    gold_spec,  # noqa: F811
    resources,
    landing,
    tracking,
):
    gold = {d: {"normal": 20, "alert": 20} for d in GOLD_DAYS[:2]}
    gold |= {d: {"alert": 40} for d in GOLD_DAYS[2:]}  # the holdout, even at its widest, is all 'alert'
    defs = gold_definitions(gold_spec, resources, tracking, max_holdout_partitions=2)
    with dg.instance_for_test() as instance:
        land_and_label_gold(defs, instance, landing, gold)
        result = train_and_score(defs, instance)
        assert result.success
        md = result.get_asset_materialization_events()[0].materialization.metadata
        assert md["holdout_status"].value == "undetermined (single class)"
        assert md["most_harmful_lf_status"].value == "undetermined: single-class holdout"
        assert md["most_harmful_lf"].value.startswith("undetermined: single-class holdout")
        assert "most_harmful_lf_excess_wrong_labels" not in md
        for table in ("review_queue", "by_labeling_function", "by_partition"):
            assert md[table].value.startswith("**WARNING: single-class holdout: only 'alert' has"), table


@pytest.mark.parametrize(
    ("gold", "status"),
    [
        (np.array([1] * 30 + [-1] * 30), "undetermined: gold rows of one class"),
        (np.array([0, 1] * 2 + [-1] * 56), "undetermined: too few gold rows behind every LF's labels"),
    ],
)
def test_the_named_lf_is_undetermined_with_gold_of_one_class_or_too_few_gold_rows(gold, status):
    # `yes` votes yes on rows 0..29, `no` votes no on rows 30..59: with gold only on yes rows, `no`
    # reads as always wrong; with 4 gold rows, neither LF can be judged.
    votes = np.full((60, 2), -1)
    votes[:30, 0], votes[30:, 1] = 1, 0
    lf_label = votes.max(axis=1)
    review = per_labeling_function(
        votes, gold, lf_label, np.full(60, 0.01), names=["yes", "no"], classes=["no", "yes"]
    )

    md = importance_assets._lf_review_metadata(review)

    assert md["most_harmful_lf_status"] == status
    assert md["most_harmful_lf"].startswith(status)
    assert "most_harmful_lf_excess_wrong_labels" not in md
