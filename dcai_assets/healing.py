"""Healing: a run that failed for a passing reason (the lake's disk full, the tracking server or
the database unreachable) is re-run by itself once the cause may have gone, with a growing wait
between attempts, without anyone stepping in and without waiting for the next file to land.

What counts as passing (:func:`passing_cause`): an OS error of a full disk, a quota or an I/O
fault, a lost or refused connection, a timeout, the tracking server not answering. Everything
else (bad input, a bug, a failed blocking check, which is no error at all) is left failed: a
re-run would fail the same way. A run whose process died is Dagster's to retry (run retries).

The state is in the runs themselves: a healing run carries the failed run it heals
(``dcai/heals``) and its attempt (``dcai/heal_attempt``), so a restarted daemon loses nothing.
The sensor's cursor only remembers the failed runs it is done with (:class:`Settled`), so a tick
reads the logs of new failures only; without it, one tick reads them all again.
Assets the failed run did materialize, and assets materialized by any run since it started
(the next day's retrain, say), are not re-run."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import dagster as dg

from dcai_assets.automation import TRIGGER_TAG, AutomationSpec
from dcai_assets.spec import DatasetSpec

HEALS_TAG = "dcai/heals"
"""Run tag of a healing run: the id of the failed run it heals."""
ATTEMPT_TAG = "dcai/heal_attempt"
"""Run tag of a healing run: its attempt, 1 for the first."""
HORIZON_SECONDS = 2 * 24 * 3600  # failed runs older than this are left alone
LONGEST_WAIT_SECONDS = 3600.0  # the wait doubles after each attempt up to this
GAVE_UP = "gave up"
SETTLED = "settled"
RANGE_TAGS = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")  # a backfill's run

_PASSING_CLASSES = frozenset(
    {
        "TrackingUnavailableError",  # dcai_assets.tracking: MLflow did not answer
        "ConnectionError",
        "ConnectionRefusedError",
        "ConnectionResetError",
        "ConnectionAbortedError",
        "BrokenPipeError",
        "TimeoutError",
        "OperationalError",  # SQLAlchemy / psycopg2: the database could not be reached
    }
)
_PASSING_ERRNOS = ("[Errno 28]", "[Errno 122]", "[Errno 5]")  # ENOSPC, EDQUOT, EIO
_NEVER = frozenset({"DataInputError", "SchemaError", "DagsterTypeCheckDidNotPass"})


@dataclass(frozen=True)
class ErrorLink:
    """One exception of a failure's chain: its class name and message."""

    cls_name: str
    message: str


def error_chain(error) -> list[ErrorLink]:
    """A Dagster ``SerializableErrorInfo`` and its causes and contexts, outermost first."""
    links, todo, seen = [], [error], set()
    while todo:
        e = todo.pop(0)
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        links.append(ErrorLink(str(e.cls_name or ""), str(e.message or "")))
        todo += [getattr(e, "cause", None), getattr(e, "context", None)]
    return links


def passing_cause(chain: Sequence[ErrorLink]) -> str | None:
    """The message of the passing cause in a failure's chain, None if the failure would recur
    (bad input anywhere in the chain settles it: never re-run)."""
    if any(link.cls_name in _NEVER for link in chain):
        return None
    for link in chain:
        if link.cls_name in _PASSING_CLASSES:
            return link.message.strip().splitlines()[0] if link.message.strip() else link.cls_name
        if any(code in link.message for code in _PASSING_ERRNOS):
            return next(line for line in link.message.splitlines() if any(c in line for c in _PASSING_ERRNOS))
    return None


def wait_before(attempt: int, first_wait: float, longest_wait: float) -> float:
    """Seconds to wait after a failure before healing attempt ``attempt`` (1 = the first): the
    first wait, doubled at each attempt, at most ``longest_wait``."""
    if attempt < 1:
        raise ValueError(f"attempt: {attempt}; expected >= 1")
    return min(first_wait * 2 ** (attempt - 1), longest_wait)


def healing_sensor_name(spec: DatasetSpec) -> str:
    return f"{spec.name}_healing_sensor"


def healing_job_name(spec: DatasetSpec) -> str:
    """The job healing runs show under in the UI (the sensor's own job)."""
    return f"{spec.name}_heal"


def build_healing_sensor(
    spec: DatasetSpec,
    automation: AutomationSpec,
    *,
    run_tags: dict[str, str] | None = None,
) -> dg.SensorDefinition:
    """The sensor that re-runs ``spec``'s runs that failed for a passing reason (see the module)."""
    first = automation.heal_after_seconds or 0.0

    job = dg.define_asset_job(
        healing_job_name(spec),
        selection=dg.AssetSelection.key_prefixes(spec.name),
        description=f"What the healing sensor re-runs of {spec.name}: each run materializes only the "
        "assets a failed run set out to and nobody has since.",
    )

    @dg.sensor(
        name=healing_sensor_name(spec),
        job=job,
        minimum_interval_seconds=int(max(5, min(60, first))),
        default_status=automation.default_status,
        description=f"Re-runs {spec.name} runs that failed for a passing reason (a full disk, an "
        "unreachable server), waiting longer after each attempt.",
    )
    def healing_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        now = time.time()
        settled = Settled.from_cursor(context.cursor, since=now - HORIZON_SECONDS)
        requests, waiting = [], []
        for record, planned in _failed_roots(context.instance, spec, now, settled):
            request, note = _heal(context.instance, record, planned, automation, now, run_tags or {})
            if request is not None:
                requests.append(request)
            elif note in (GAVE_UP, SETTLED):
                settled.add(record, note)  # not looked at again: its logs are read once
            elif note:
                waiting.append(note)
        for note in waiting:
            context.log.info(note)
        if not requests:
            reason = "no failed run to heal now"
            if waiting or settled.given_up:
                reason += f" ({len(waiting)} waiting, {settled.given_up} given up after their last attempt)"
            return dg.SensorResult(skip_reason=reason, cursor=settled.to_cursor())
        return dg.SensorResult(run_requests=requests, cursor=settled.to_cursor())

    return healing_sensor


@dataclass
class Settled:
    """The failed runs the sensor is done with (the sensor's cursor): healed, left alone (a cause
    that would recur, another dataset's run, every asset materialized since) or given up. Each
    is kept until it leaves the horizon, so a tick reads the logs of new failures only."""

    runs: dict[str, tuple[float, str]] = field(default_factory=dict)  # run id: (updated, note)

    @classmethod
    def from_cursor(cls, cursor: str | None, since: float) -> Settled:
        stored = json.loads(cursor) if cursor else {}
        runs = {k: (float(t), str(n)) for k, (t, n) in stored.get("settled", {}).items() if float(t) >= since}
        return cls(runs)

    def to_cursor(self) -> str:
        return json.dumps({"settled": {k: list(v) for k, v in sorted(self.runs.items())}})

    def add(self, record: dg.RunRecord, note: str) -> None:
        self.runs[record.dagster_run.run_id] = (record.update_timestamp.timestamp(), note)

    def __contains__(self, run_id: str) -> bool:
        return run_id in self.runs

    @property
    def given_up(self) -> int:
        return sum(note == GAVE_UP for _, note in self.runs.values())


def _failed_roots(instance: dg.DagsterInstance, spec: DatasetSpec, now: float, settled: Settled) -> list:
    """The pipeline's failed runs within the horizon that are not healing runs and not settled,
    each with what it planned: (run record, [(asset key, partition or None)]). Another dataset's
    run is settled here."""
    records = instance.get_run_records(
        filters=dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.FAILURE], updated_after=_datetime(now - HORIZON_SECONDS)
        ),
        limit=500,
    )
    out = []
    for r in records:
        if HEALS_TAG in r.dagster_run.tags or r.dagster_run.run_id in settled:
            continue
        planned = _planned(instance, r.dagster_run.run_id)
        if planned and all(key.path[0] == spec.name for key, _ in planned):
            out.append((r, planned))
        else:
            settled.add(r, SETTLED)
    return out


def _heal(instance, root, planned, automation: AutomationSpec, now: float, run_tags: dict[str, str]):
    """The healing request for the failed run ``root`` that is due now, or None; and a note."""
    if automation.heal_after_seconds is None:
        return None, SETTLED
    run = root.dagster_run
    chain = sorted(
        instance.get_run_records(filters=dg.RunsFilter(tags={HEALS_TAG: run.run_id})),
        key=lambda r: int(r.dagster_run.tags.get(ATTEMPT_TAG, "0")),
    )
    if any(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in chain):
        return None, SETTLED  # healed
    if any(not r.dagster_run.is_finished for r in chain):
        return None, None  # a healing run is on its way
    last = chain[-1] if chain else root
    error = _step_error(instance, last.dagster_run.run_id)
    if error is None:
        return None, None  # its process died: Dagster's run retries' (not settled: a retry may fail)
    cause = passing_cause(error_chain(error))
    if cause is None:
        return None, SETTLED  # it would recur
    attempt, attempts = len(chain) + 1, automation.heal_attempts
    if attempt > attempts:
        return None, GAVE_UP
    started = root.start_time or root.create_timestamp.timestamp()
    pending = [(k, p) for k, p in planned if not _materialized_since(instance, k, p, started)]
    if not pending:
        return None, SETTLED  # every asset was materialized since, by this run or another
    ended = last.end_time or last.update_timestamp.timestamp()
    due = ended + wait_before(attempt, automation.heal_after_seconds, LONGEST_WAIT_SECONDS)
    if now < due:
        return None, f"run {run.run_id} failed ({cause}); healing attempt {attempt} in {due - now:.0f} s"
    tags = {
        **run_tags,
        TRIGGER_TAG: f"healing: attempt {attempt} of {attempts} for run {run.run_id[:8]}, failed: {cause}",
        HEALS_TAG: run.run_id,
        ATTEMPT_TAG: str(attempt),
    }
    key = f"heal:{run.run_id}:{attempt}"
    ranged = {t: run.tags[t] for t in RANGE_TAGS if t in run.tags}
    if ranged:  # a backfill's run over a range of partitions: the same range again
        keys = sorted({k for k, p in pending if p is not None}, key=lambda k: k.to_user_string())
        return dg.RunRequest(run_key=key, asset_selection=keys, tags={**tags, **ranged}), None
    # One partition per run: a partition's assets first; what depends on them (the model, the
    # scores) follows by automation once they are materialized.
    partition = next((p for _, p in pending if p is not None), None)
    keys = sorted({k for k, p in pending if p == partition}, key=lambda k: k.to_user_string())
    request = dg.RunRequest(run_key=key, asset_selection=keys, partition_key=partition, tags=tags)
    return request, None


def _step_error(instance: dg.DagsterInstance, run_id: str):
    """The error of a run's first failed step, None if no step failed (a crashed process)."""
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        event = record.dagster_event
        if event is not None and event.step_failure_data is not None:
            return event.step_failure_data.error
    return None


def _planned(instance: dg.DagsterInstance, run_id: str) -> list[tuple[dg.AssetKey, str | None]]:
    """What a run set out to materialize: (asset key, partition or None)."""
    out = []
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED):
        data = record.dagster_event.event_specific_data
        out.append((data.asset_key, data.partition))
    return out


def _materialized_since(
    instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None, since: float
) -> bool:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=key, asset_partitions=[partition] if partition else None, after_timestamp=since
        ),
        limit=1,
    ).records
    return bool(records)


def _datetime(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)
