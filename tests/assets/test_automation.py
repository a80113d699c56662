"""Declarative automation on a real instance: each tick evaluates the conditions with
``evaluate_automation_conditions`` and then really runs what they requested, so the next tick
sees real materializations, check results and code versions."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict

import dagster as dg
import pytest

from dcai_assets import (
    AutomationSpec,
    ImportanceSpec,
    LabelingFunctionSet,
    LabelingSpec,
    TrainingSpec,
    build_definitions,
)
from tests.assets.test_labeling_assets import LFS, hot, humid, mild, quiet
from tests.assets.test_training_assets import FEATURES, logistic_pipeline
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
