"""Declarative automation: the conditions under which each stage re-runs by itself, so a new or
changed partition flows through labeling, retraining and re-scoring with no manual step.

Why not Dagster's stock ``eager()`` everywhere: it waits for every upstream partition to exist
(one missing or failed day would block the model forever), it looks at the latest time window
only (replayed history and late corrections would be ignored), and on a 30-day backfill it would
retrain once per arriving day. The conditions here keep eager's shape and fix those three."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import dagster as dg
from dagster import AutomationCondition as AC


@dataclass(frozen=True)
class AutomationSpec:
    """How the pipeline runs itself.

    ``lookback_days``: partitions older than this are not re-run automatically (None = every
    partition); it applies to time-window partitionings (hourly to monthly), whose partitions
    Dagster knows the time of; static and dynamic partitions are all considered.
    ``label_model_cron``: when the label model is refitted on the partitions that
    arrived since its last fit (it is also fitted when missing and when the LF code changes).
    ``retrain_cron``: an optional safety net, e.g. ``"0 4 * * *"``: retrain at that tick even if
    nothing upstream changed. ``sensor_interval_seconds``: how often the automation sensor
    evaluates (the daemon wakes at most every 5 s). ``max_retries``: retries of a run whose
    process crashed (tracking calls retry inside the run; a failed blocking check never does).
    ``heal_after_seconds``: a run that failed for a passing reason (a full disk, an unreachable
    tracking server or database) is re-run this long after it failed, then after twice as long
    at each further failure (up to an hour), at most ``heal_attempts`` times; None: never
    (:mod:`dcai_assets.healing`).
    """

    lookback_days: int | None = None
    label_model_cron: str = "0 3 * * *"
    retrain_cron: str | None = None
    sensor_interval_seconds: int = 5
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED
    max_retries: int = 2
    heal_after_seconds: float | None = 300.0
    heal_attempts: int = 6

    def __post_init__(self) -> None:
        if self.lookback_days is not None and self.lookback_days < 1:
            raise ValueError(f"AutomationSpec.lookback_days: {self.lookback_days}; expected >= 1 or None")
        if self.max_retries < 0:
            raise ValueError(f"AutomationSpec.max_retries: {self.max_retries}; expected >= 0")
        if self.heal_after_seconds is not None and self.heal_after_seconds < 0:
            raise ValueError(
                f"AutomationSpec.heal_after_seconds: {self.heal_after_seconds}; expected >= 0 or None (never)"
            )
        if self.heal_attempts < 1:
            raise ValueError(f"AutomationSpec.heal_attempts: {self.heal_attempts}; expected >= 1")


def _pending_partition() -> AC:
    """A partition of a per-partition stage has work to do and may do it: an upstream partition,
    the label model or the stage's code changed since it last ran, and every upstream partition
    exists and passed its blocking checks."""
    trigger = (AC.newly_missing() | AC.any_deps_updated() | AC.code_version_changed()).since_last_handled()
    return trigger & ~AC.any_deps_missing() & AC.all_deps_blocking_checks_passed()


def _pending_label_model(automation: AutomationSpec) -> AC:
    """The label model has work to do: it is missing, the LF code changed, or partitions that
    passed their blocking checks arrived since its last fit and the cron ticked."""
    good = AC.any_deps_match(AC.newly_updated() & AC.all_checks_match(AC.check_passed(), blocking_only=True))
    return (
        (AC.missing() & good.since_last_handled())
        | AC.code_version_changed().since_last_handled()
        | (AC.cron_tick_passed(automation.label_model_cron).since_last_handled() & good.since_last_handled())
    )


def _busy(pending: AC) -> AC:
    """An upstream asset is running, about to run, or has pending work (Dagster's
    ``will_be_requested`` only sees upstream assets that can share the run, which a partitioned
    and an unpartitioned asset cannot)."""
    return AC.in_progress() | AC.will_be_requested() | AC.any_deps_in_progress() | pending


def partition_condition(automation: AutomationSpec, label_model: dg.AssetKey) -> AC:
    """A partition of a per-partition stage (the labeled set): re-run when its own upstream
    partition or the label model changed, or the stage's code changed; only once every upstream
    blocking check of that partition passed and the label model has nothing left to do."""
    waiting = AC.any_deps_match(_busy(_pending_label_model(automation))).allow(
        dg.AssetSelection.assets(label_model)
    )
    condition = _pending_partition() & ~AC.any_deps_in_progress() & ~waiting & ~AC.in_progress()
    if automation.lookback_days is not None:
        condition = AC.in_latest_time_window(dt.timedelta(days=automation.lookback_days)) & condition
    return condition.with_label("dcai: partition updated upstream, checks passed")


def label_model_condition(automation: AutomationSpec) -> AC:
    """The label model (fitted on every usable partition): fitted when missing, refitted when the
    LF code changes and on ``label_model_cron`` if partitions that passed their blocking checks
    arrived since. A failed or missing partition never blocks it."""
    settled = ~AC.any_deps_in_progress()
    return (_pending_label_model(automation) & settled & ~AC.in_progress()).with_label(
        "dcai: label model missing, LFs changed, or new checked partitions at the cron tick"
    )


def model_condition(automation: AutomationSpec, labeled: dg.AssetKey) -> AC:
    """The trained model (one model over many partitions): retrain when any upstream partition
    changed or the model code changed (or at ``retrain_cron``), once the batch has settled: no
    upstream partition running, about to run or with work pending. Missing or failed partitions
    are ignored, and a backfill of many days gives one retrain when it is done, not one per day."""
    changed = AC.any_deps_updated() | AC.code_version_changed()
    if automation.retrain_cron:
        changed = changed | AC.cron_tick_passed(automation.retrain_cron)
    trigger = changed.since_last_handled()
    busy = AC.any_deps_match(_busy(_pending_partition())).allow(dg.AssetSelection.assets(labeled))
    return (trigger & ~busy & ~AC.in_progress()).with_label(
        "dcai: upstream changed and settled, or model code changed"
    )


def rescore_condition(model_key: dg.AssetKey) -> AC:
    """Importance scores: re-scored after every retrain of ``model_key`` (in the same run when
    both are requested together) and when the scoring code changes."""
    model = dg.AssetSelection.assets(model_key)
    trigger = (AC.any_deps_updated().allow(model) | AC.code_version_changed()).since_last_handled()
    model_running = AC.any_deps_match(AC.in_progress()).allow(model)
    return (trigger & ~model_running & ~AC.in_progress()).with_label("dcai: re-score after every retrain")


TRIGGER_TAG = "dcai/trigger"
"""Run tag saying in words what started a run (a file landed, partitions changed, LFs changed)."""


def automation_run_tags(sensor_name: str, trigger: str) -> dict[str, str]:
    """Tags of a run declarative automation starts: those the daemon sets (the UI then shows
    "Declarative automation" and the sensor as the launcher) and ``dcai/trigger`` = ``trigger``,
    e.g. ``"partitions 2024-01-10, 2024-01-11 changed"`` or ``"LF code changed"``."""
    return {
        "dagster/sensor_name": sensor_name,
        "dagster/auto_materialize": "true",
        "dagster/from_automation_condition": "true",
        TRIGGER_TAG: trigger,
    }


def partitions_changed(keys: list[str], shown: int = 5) -> str:
    """``"partitions A, B changed"``, the first ``shown`` keys named and the rest counted."""
    if not keys:
        raise ValueError("partitions_changed: keys is empty; expected at least one partition key")
    head = ", ".join(keys[:shown])
    more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
    word = "partition" if len(keys) == 1 else "partitions"
    return f"{word} {head}{more} changed"
