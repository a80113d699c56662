"""Declarative automation on a real instance: each tick evaluates the conditions with
``evaluate_automation_conditions`` and then really runs what they requested, so the next tick
sees real materializations, check results and code versions."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict

import dagster as dg
import pytest

from dcai_assets import AutomationSpec, ImportanceSpec, LabelingSpec, TrainingSpec, build_definitions
from dcai_assets.core.labeling import LabelingFunctionSet
from tests.assets.test_labeled import LFS, hot, humid, mild, quiet
from tests.assets.test_model import FEATURES, logistic_pipeline
from tests.conftest import sensor_readings

KEYS = {name: dg.AssetKey(["readings", name]) for name in ("label_model", "labeled_set", "trained_model")}
IMPORTANCE = dg.AssetKey(["readings", "importance_scores"])


def definitions(
    spec, resources, tracking, lfs=LFS, pipeline=logistic_pipeline, automation=None
) -> dg.Definitions:
    return dg.Definitions.merge(
        build_definitions(
            spec,
            labeling=LabelingSpec(lfs=lfs),
            training=TrainingSpec(pipeline=pipeline, features=FEATURES, holdout_partitions=1),
            importance=ImportanceSpec(k=3),
            automation=automation or AutomationSpec(),
        ),
        dg.Definitions(resources={**resources, "mlflow_tracking": tracking}),
    )


class Automation:
    """Ticks of the automation sensor, each running what it requested, counted per asset. The
    sensor is on from the start: its first evaluation happens before any data lands (what was
    already there when a sensor is first turned on counts as handled)."""

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance):
        self.defs, self.instance = defs, instance
        self.cursor = None
        self.now = dt.datetime(2024, 2, 1, 12, 0, tzinfo=dt.UTC)
        self.requested: Counter = Counter()
        assert self.tick() == {}

    def tick(self) -> dict[dg.AssetKey, set]:
        self.now += dt.timedelta(minutes=1)
        result = dg.evaluate_automation_conditions(
            defs=self.defs, instance=self.instance, cursor=self.cursor, evaluation_time=self.now
        )
        self.cursor = result.cursor
        requested = {}
        for key in [*KEYS.values(), IMPORTANCE]:
            partitions = result.get_requested_partitions(key)
            if partitions:
                requested[key] = partitions
                self.requested[key] += 1
        self._run(requested)
        return requested

    def settle(self, ticks: int = 8) -> list[dict]:
        """Tick until nothing more is requested; the requests of every tick."""
        history = []
        for _ in range(ticks):
            requested = self.tick()
            if not requested:
                return history
            history.append(requested)
        raise AssertionError(f"automation did not settle in {ticks} ticks: {history}")

    def _run(self, requested: dict[dg.AssetKey, set]) -> None:
        job = self.defs.resolve_implicit_global_asset_job_def()
        by_partition = defaultdict(list)
        for key, partitions in requested.items():
            for partition in partitions:
                by_partition[partition].append(key)
        for partition, keys in sorted(by_partition.items(), key=lambda kv: kv[0] is not None):
            job.execute_in_process(
                instance=self.instance, asset_selection=keys, partition_key=partition, raise_on_error=False
            )


def land(defs, instance, landing, days, frames=None) -> None:
    """What the landing sensor does: a file per day, then the ingest run of that day."""
    for day in days:
        frame = frames[day] if frames and day in frames else sensor_readings(day)
        frame.to_csv(landing / f"{day}.csv", index=False)
        defs.resolve_job_def("readings_ingest").execute_in_process(
            instance=instance, partition_key=day, raise_on_error=False
        )


@pytest.fixture
def automation(readings_spec, resources, tracking, landing):
    defs = definitions(readings_spec, resources, tracking)
    with dg.instance_for_test() as instance:
        yield Automation(defs, instance), landing


def test_new_partitions_flow_through_the_whole_chain_with_no_manual_step(automation):
    auto, landing = automation
    land(auto.defs, auto.instance, landing, ["2024-01-10", "2024-01-11", "2024-01-12"])
    history = auto.settle()
    assert history[0] == {KEYS["label_model"]: {None}}
    assert history[1] == {KEYS["labeled_set"]: {"2024-01-10", "2024-01-11", "2024-01-12"}}
    assert history[2] == {KEYS["trained_model"]: {None}, IMPORTANCE: {None}}  # re-scored in the same run
    assert auto.instance.get_latest_materialization_event(IMPORTANCE) is not None
    # A new day: labeled with the current label model (refitted only on its cron), then one retrain.
    land(auto.defs, auto.instance, landing, ["2024-01-13"])
    history = auto.settle()
    assert history == [
        {KEYS["labeled_set"]: {"2024-01-13"}},
        {KEYS["trained_model"]: {None}, IMPORTANCE: {None}},
    ]


def test_failed_validation_requests_nothing_downstream_and_a_later_day_still_retrains(automation):
    auto, landing = automation
    land(auto.defs, auto.instance, landing, ["2024-01-10", "2024-01-11", "2024-01-12"])
    auto.settle()
    bad = sensor_readings("2024-01-13")
    bad.loc[:79, "humidity"] = None  # fails the blocking null-rate check
    land(auto.defs, auto.instance, landing, ["2024-01-13"], {"2024-01-13": bad})
    assert auto.settle() == []  # nothing downstream of a failed blocking check
    # 2024-01-14 is missing and 2024-01-13 failed; a later day still gets through to a new model.
    land(auto.defs, auto.instance, landing, ["2024-01-15"])
    history = auto.settle()
    assert history == [
        {KEYS["labeled_set"]: {"2024-01-15"}},
        {KEYS["trained_model"]: {None}, IMPORTANCE: {None}},
    ]
    assert "2024-01-13" not in auto.instance.get_materialized_partitions(KEYS["labeled_set"])


def test_a_backfill_of_many_days_gives_one_retrain_not_one_per_day(automation):
    auto, landing = automation
    days = [f"2024-01-{d:02d}" for d in range(10, 20)]
    land(auto.defs, auto.instance, landing, days)
    auto.settle()
    assert auto.requested[KEYS["trained_model"]] == 1
    assert auto.requested[KEYS["label_model"]] == 1
    assert auto.instance.get_materialized_partitions(KEYS["labeled_set"]) == set(days)


def test_changing_lf_code_refits_relabels_and_retrains_and_model_code_retrains(
    readings_spec, resources, tracking, landing
):
    days = ["2024-01-10", "2024-01-11", "2024-01-12"]
    with dg.instance_for_test() as instance:
        auto = Automation(definitions(readings_spec, resources, tracking), instance)
        land(auto.defs, instance, landing, days)
        auto.settle()
        # The LF set loses one function: its version (a hash of the LF sources) changes.
        auto.defs = definitions(
            readings_spec, resources, tracking, lfs=LabelingFunctionSet([hot, mild, humid], LFS.classes)
        )
        assert LabelingFunctionSet([hot, mild, humid], LFS.classes).version != LFS.version != quiet
        history = auto.settle()
        assert history[0] == {KEYS["label_model"]: {None}}
        assert history[1] == {KEYS["labeled_set"]: set(days)}
        assert history[2] == {KEYS["trained_model"]: {None}, IMPORTANCE: {None}}

        def other_pipeline():  # new model code: a different source, so a new code version
            return logistic_pipeline().set_params(classifier__C=0.5)

        auto.defs = definitions(
            readings_spec,
            resources,
            tracking,
            lfs=LabelingFunctionSet([hot, mild, humid], LFS.classes),
            pipeline=other_pipeline,
        )
        assert auto.settle() == [{KEYS["trained_model"]: {None}, IMPORTANCE: {None}}]


def test_the_optional_nightly_retrain_runs_even_when_nothing_changed(
    readings_spec, resources, tracking, landing
):
    nightly = AutomationSpec(retrain_cron="0 4 * * *")
    with dg.instance_for_test() as instance:
        auto = Automation(definitions(readings_spec, resources, tracking, automation=nightly), instance)
        land(auto.defs, instance, landing, ["2024-01-10", "2024-01-11", "2024-01-12"])
        auto.settle()
        assert auto.tick() == {}  # 12:0x: nothing changed, no cron tick
        auto.now = dt.datetime(2024, 2, 2, 4, 0, 30, tzinfo=dt.UTC)
        assert auto.settle() == [{KEYS["trained_model"]: {None}, IMPORTANCE: {None}}]


class Landing:
    """Ticks of the landing sensor (cursor kept), each running what it requested as the daemon
    would: the requested job, partition and tags."""

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance):
        self.defs, self.instance, self.cursor = defs, instance, None

    def tick(self) -> list[dg.ExecuteInProcessResult]:
        sensor = self.defs.resolve_sensor_def("readings_landing_sensor")
        context = dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursor,
            definitions=self.defs,
            instance_ref=self.instance.get_ref(),
        )
        result = sensor.evaluate_tick(context)
        self.cursor = result.cursor or self.cursor
        results = []
        for request in result.run_requests:
            job = self.defs.resolve_job_def(request.job_name or "readings_ingest")
            results.append(
                job.execute_in_process(
                    instance=self.instance,
                    partition_key=request.partition_key,
                    tags=request.tags,
                    raise_on_error=False,
                )
            )
        return results


def materialized_by(result: dg.ExecuteInProcessResult) -> set[dg.AssetKey]:
    return {e.asset_key for e in result.get_asset_materialization_events()}


def _bootstrapped(auto, landing) -> Landing:
    """Three days landed through the sensor, then automation fits, labels, trains and scores."""
    sensor = Landing(auto.defs, auto.instance)
    for day in ["2024-01-10", "2024-01-11", "2024-01-12"]:
        sensor_readings(day).to_csv(landing / f"{day}.csv", index=False)
    first = sensor.tick()  # no label model yet: ingestion only, automation labels afterwards
    assert [r.dagster_run.job_name for r in first] == ["readings_ingest"] * 3
    assert auto.settle()[-1] == {KEYS["trained_model"]: {None}, IMPORTANCE: {None}}
    return sensor


def test_a_single_landed_day_goes_from_file_to_rescored_model_in_one_run(automation):
    auto, landing = automation
    sensor = _bootstrapped(auto, landing)
    sensor_readings("2024-01-13").to_csv(landing / "2024-01-13.csv", index=False)
    (run,) = sensor.tick()
    assert run.success
    assert run.dagster_run.job_name == "readings_land_to_model"
    assert materialized_by(run) >= {KEYS["labeled_set"], KEYS["trained_model"], IMPORTANCE}
    assert "2024-01-13" in auto.instance.get_materialized_partitions(KEYS["labeled_set"])
    # Nothing is left for automation: the same day is not labeled, retrained or re-scored again.
    assert auto.settle() == []
    assert auto.requested[KEYS["trained_model"]] == 1  # the bootstrap's retrain only


def test_days_landing_together_are_labeled_in_their_runs_and_automation_retrains_once(automation):
    auto, landing = automation
    sensor = _bootstrapped(auto, landing)
    for day in ["2024-01-13", "2024-01-14"]:
        sensor_readings(day).to_csv(landing / f"{day}.csv", index=False)
    runs = sensor.tick()
    assert [r.dagster_run.job_name for r in runs] == ["readings_ingest_and_label"] * 2
    assert all(KEYS["labeled_set"] in materialized_by(r) for r in runs)
    assert all(KEYS["trained_model"] not in materialized_by(r) for r in runs)
    # One retrain for both days, not one per day; the labeled partitions are not requested again.
    assert auto.settle() == [{KEYS["trained_model"]: {None}, IMPORTANCE: {None}}]
    assert auto.requested[KEYS["labeled_set"]] == 1


def test_a_failed_blocking_check_in_the_one_run_chain_stops_labeling_and_retraining(automation):
    auto, landing = automation
    sensor = _bootstrapped(auto, landing)
    models_before = len(auto.instance.fetch_materializations(KEYS["trained_model"], limit=100).records)
    bad = sensor_readings("2024-01-13")
    bad.loc[:79, "humidity"] = None  # fails the blocking null-rate check
    bad.to_csv(landing / "2024-01-13.csv", index=False)
    (run,) = sensor.tick()
    assert not run.success
    assert {e.step_failure_data.error.cls_name for e in run.get_step_failure_events()} == {
        "DagsterAssetCheckFailedError"
    }
    assert run.dagster_run.job_name == "readings_land_to_model"  # labeling and training were in the run...
    assert "2024-01-13" not in auto.instance.get_materialized_partitions(KEYS["labeled_set"])  # ...not run
    assert (
        len(auto.instance.fetch_materializations(KEYS["trained_model"], limit=100).records) == models_before
    )
    assert auto.settle() == []


def test_without_automation_the_landing_sensor_never_retrains(readings_spec, resources, tracking, landing):
    defs = dg.Definitions.merge(
        build_definitions(
            readings_spec,
            labeling=LabelingSpec(lfs=LFS),
            training=TrainingSpec(pipeline=logistic_pipeline, features=FEATURES, holdout_partitions=1),
        ),
        dg.Definitions(resources={**resources, "mlflow_tracking": tracking}),
    )
    assert "readings_land_to_model" not in {j.name for j in defs.resolve_all_job_defs()}
    sensor = defs.resolve_sensor_def("readings_landing_sensor")
    assert {t.job_name for t in sensor.targets} == {"readings_ingest", "readings_ingest_and_label"}


def test_every_run_of_the_example_driver_names_what_triggered_it(
    readings_spec, resources, tracking, tmp_path, monkeypatch
):
    from jobs.example_run import run

    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    days = ["2024-01-10", "2024-01-11", "2024-01-12"]
    summary = run(
        definitions(readings_spec, resources, tracking), readings_spec, {d: sensor_readings(d) for d in days}
    )
    assert summary.failed == [] and summary.blocked == []
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs()
    by_job = defaultdict(list)
    for r in runs:
        by_job[r.job_name].append(r.tags)
    assert sorted(by_job) == [
        "readings_fit_label_model",
        "readings_ingest",
        "readings_label",
        "readings_score_importance",
        "readings_train",
    ]
    # The landing sensor's runs: the UI shows the sensor as the launcher; the tag names the file.
    assert sorted(t["dcai/trigger"] for t in by_job["readings_ingest"]) == [
        f"file {d}.parquet landed" for d in days
    ]
    assert {t["dagster/sensor_name"] for t in by_job["readings_ingest"]} == {"readings_landing_sensor"}
    # Automation's runs carry the tags the UI reads for declarative automation, and the reason.
    for job in ("readings_fit_label_model", "readings_label", "readings_train", "readings_score_importance"):
        for tags in by_job[job]:
            assert tags["dagster/sensor_name"] == "readings_automation"
            assert tags["dagster/from_automation_condition"] == "true"
            assert tags["dagster/auto_materialize"] == "true"
    assert sorted(t["dcai/trigger"] for t in by_job["readings_label"]) == [
        f"partition {d} changed" for d in days
    ]
    assert (
        by_job["readings_train"][0]["dcai/trigger"] == "partitions 2024-01-10, 2024-01-11, 2024-01-12 changed"
    )
    assert by_job["readings_score_importance"][0]["dcai/trigger"] == "model retrained"


def test_the_ui_tags_of_our_runs_are_dagsters_own():
    from dagster._core.storage import tags

    from dcai_assets.automation import automation_run_tags

    assert set(automation_run_tags("s", "x")) == {
        tags.SENSOR_NAME_TAG,
        tags.AUTO_MATERIALIZE_TAG,
        tags.AUTOMATION_CONDITION_TAG,
        "dcai/trigger",
    }


def test_a_day_re_landed_with_blocked_data_is_left_out_of_the_next_retrain(automation):
    auto, landing = automation
    land(auto.defs, auto.instance, landing, ["2024-01-10", "2024-01-11", "2024-01-12"])
    auto.settle()
    first = auto.instance.get_latest_materialization_event(KEYS["trained_model"]).asset_materialization
    assert "2024-01-10" in first.metadata["partitions"].value
    # The same day lands again with a null burst: blocked, so its validated data is not replaced...
    bad = sensor_readings("2024-01-10")
    bad.loc[:79, "humidity"] = None
    land(auto.defs, auto.instance, landing, ["2024-01-10"], {"2024-01-10": bad})
    assert auto.settle() == []
    # ...and the next retrain no longer trains on the labels of what the source replaced.
    land(auto.defs, auto.instance, landing, ["2024-01-13"])
    assert auto.settle()[-1] == {KEYS["trained_model"]: {None}, IMPORTANCE: {None}}
    latest = auto.instance.get_latest_materialization_event(KEYS["trained_model"]).asset_materialization
    assert "2024-01-10" not in latest.metadata["partitions"].value
    assert latest.metadata["partitions_left_out_blocked"].value == ["2024-01-10"]
    logged = [
        e.user_message for e in auto.instance.all_logs(latest_run_id(auto.instance, KEYS["trained_model"]))
    ]
    assert any("left out 1 labeled partition(s)" in m and "2024-01-10" in m for m in logged)


def latest_run_id(instance: dg.DagsterInstance, key: dg.AssetKey) -> str:
    return instance.get_latest_materialization_event(key).run_id
