"""The landing sensor: registers new partitions and requests one ingest run per new or changed
file (run key = file name + content hash). A bad file is reported and skipped, never fatal. What it
has handled is kept in the landing state store (``landing_state``), not in its cursor. When the
schema file changed since its last tick, it also re-runs every partition whose validation failed
(blocked), once per schema version: a schema fix heals the days it unblocks without a person."""

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from dcai_assets.assets.raw import RAW_DATA, raw_code_version, reads_csv, schema_text_columns
from dcai_assets.assets.validated import schema_version
from dcai_assets.core.reading import file_digest
from dcai_assets.errors import DataInputError
from dcai_assets.landing_state import LandingTick, store_for
from dcai_assets.spec import (
    CallableSource,
    DatasetSpec,
    DynamicPartitions,
    LandingDirectory,
    check_partition_key,
    partition_order,
)

FILE_TAG = "dcai/file"
DIGEST_TAG = "dcai/sha256"


@dataclass(frozen=True)
class LandingRoute:
    """A job the landing sensor requests instead of its ingest job on the ticks where
    ``when(instance, n)`` holds, ``n`` being the number of partitions that tick requests (e.g.
    ingest, label and retrain in one run when a single day lands and a model exists)."""

    job: Any  # a JobDefinition or an unresolved asset job
    when: Callable[[dg.DagsterInstance, int], bool]


def scan_landing_directory(
    spec: DatasetSpec, cursor: dict, is_open: Callable[[str], bool] | None = None
) -> tuple[list[dg.RunRequest], list[str], list[str]]:
    """Compare the landing directory with ``cursor`` (``files``: name -> [size, mtime_ns,
    sha256] of the last requested version; ``rejected``: name -> [size, mtime_ns] already
    reported as bad), updated in place; files no longer in the directory are dropped from it.

    ``is_open(key)`` says whether a time-window partition exists yet (its window has ended); a
    file for a window still to come is left for a later tick, not recorded. Returns (run
    requests, new partition keys, problems found this tick).
    """
    source = spec.source
    assert isinstance(source, LandingDirectory)
    directory = Path(source.path)
    requests: list[dg.RunRequest] = []
    new_keys: list[str] = []
    problems: list[str] = []
    if not directory.is_dir():
        problems.append(f"landing directory {str(directory)!r} does not exist; expected a directory of files")
        return requests, new_keys, problems
    with os.scandir(directory) as listing:  # one stat per file: the entry knows its type
        entries = sorted(
            (e for e in listing if not e.name.startswith(".") and e.is_file()), key=lambda e: e.name
        )
    stems: dict[str, list[str]] = {}
    for entry in entries:
        stem, suffix = os.path.splitext(entry.name)
        if suffix in source.suffixes:
            stems.setdefault(stem, []).append(entry.name)
    for entry in entries:
        name = entry.name
        try:
            stat = entry.stat()
        except OSError as e:
            problems.append(f"file {name!r}: cannot be read ({e})")
            continue
        signature = [stat.st_size, stat.st_mtime_ns]
        known = cursor["files"].get(name)
        if known and known[:2] == signature:
            continue  # unchanged since the last tick: no need to hash again
        path = Path(entry.path)
        try:
            key = _check_file(path, spec, stems)
            if is_open is not None and not is_open(key):
                continue  # its day has not begun: picked up on a later tick
            digest = file_digest(path)
        except Exception as e:  # one bad file stops neither the others nor the sensor
            if cursor["rejected"].get(name) != signature:
                problems.append(str(e))
                cursor["rejected"][name] = signature
            continue
        cursor["rejected"].pop(name, None)
        cursor["files"][name] = [*signature, digest]
        if known and known[2] == digest:
            continue  # touched, same content
        if isinstance(spec.partitioning, DynamicPartitions):
            new_keys.append(key)
        requests.append(
            dg.RunRequest(
                partition_key=key,
                run_key=f"{name}:{digest}",
                tags={FILE_TAG: name, DIGEST_TAG: digest},
            )
        )
    present = {e.name for e in entries}
    for table in (cursor["files"], cursor["rejected"]):
        for name in [n for n in table if n not in present]:
            table.pop(name)  # removed from the directory: if it comes back, it is seen anew
    return requests, new_keys, problems


def _check_file(path: Path, spec: DatasetSpec, stems: dict[str, list[str]]) -> str:
    """The partition key a landing file stands for, or a DataInputError saying why it has none."""
    source = spec.source
    assert isinstance(source, LandingDirectory)
    if path.suffix not in source.suffixes:
        raise DataInputError(
            f"unsupported file type {path.suffix or '(none)'!r}",
            expected="one of " + ", ".join(source.suffixes),
            file=path.name,
        )
    key = check_partition_key(path.stem, spec.partitioning, file=path.name)
    if len(stems[path.stem]) > 1:
        raise DataInputError(
            f"{len(stems[path.stem])} files hold this partition ({', '.join(stems[path.stem])})",
            expected="exactly one file per partition",
            file=path.name,
            partition=key,
        )
    return key


def build_landing_sensor(
    spec: DatasetSpec,
    job: dg.JobDefinition | Any,
    *,
    minimum_interval_seconds: int = 30,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED,
    routes: Sequence[LandingRoute] = (),
) -> dg.SensorDefinition:
    """A sensor that turns arriving partitions into ingest runs of ``job``; on each tick the
    first of ``routes`` whose condition holds names the job requested instead."""
    from dcai_assets.automation import TRIGGER_TAG
    from dcai_assets.partitions import partitions_def

    pdef = partitions_def(spec)
    jobs = [job, *(r.job for r in routes)]

    @dg.sensor(
        name=f"{spec.name}_landing_sensor",
        jobs=jobs,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description=f"Requests an ingest run of {spec.name} per new or changed partition.",
    )
    def landing_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        store = store_for(spec, context.instance)
        tick = store.open(context.cursor)
        _log_state(context, tick, store.path)
        if isinstance(spec.source, CallableSource):
            requests, new_keys, problems = _scan_callable(spec, tick.state, _is_open(pdef))
        else:
            requests, new_keys, problems = scan_landing_directory(spec, tick.state, _is_open(pdef))
            if tick.first and spec.source.existing_files == "skip":
                _log_skipped(context, spec, requests)
                requests, new_keys = [], []
        for problem in problems:  # reported once; the other files go on
            context.log.error(f"skipped: {problem}")
        cursor = store.save(tick, context.cursor)
        version, read = schema_version(spec), raw_code_version(spec)
        read_before = _cursor_value(context.cursor, READ_KEY)
        if not schema_text_columns(spec)[0]:  # unreadable (mid-edit): the reads stand as they are
            read = read_before
        if not tick.first:
            requests += _blocked_reruns(context, spec, pdef, tick, _cursor_value(context.cursor), version)
            requested = {r.partition_key for r in requests}
            rereads = _rereads(context, spec, pdef, tick, read_before, read)
            requests += [r for r in rereads if r.partition_key not in requested]
        cursor = _with_value(cursor, version)
        cursor = cursor if read is None else _with_value(cursor, read, READ_KEY)
        if not requests and not problems and not new_keys:
            return dg.SensorResult(skip_reason="no new or changed partitions", cursor=cursor)
        if isinstance(pdef, dg.DynamicPartitionsDefinition):
            known = set(pdef.get_partition_keys(dynamic_partitions_store=context.instance))
            new_keys = [k for k in dict.fromkeys(new_keys) if k not in known]
        add = [pdef.build_add_request(new_keys)] if new_keys else []
        chosen = next((r.job for r in routes if requests and r.when(context.instance, len(requests))), job)
        target = chosen.name
        requests = [
            r.with_replaced_attrs(
                job_name=target,
                tags={
                    TRIGGER_TAG: f"file {r.tags[FILE_TAG]} landed"
                    if FILE_TAG in r.tags
                    else f"partition {r.partition_key} listed",
                    **r.tags,  # a re-run of a blocked partition says so in its own trigger
                },
            )
            for r in requests
        ]
        return dg.SensorResult(run_requests=requests, dynamic_partitions_requests=add, cursor=cursor)

    return landing_sensor


SCHEMA_KEY = "schema"  # in the cursor: the schema version the handled partitions were validated under
READ_KEY = "read"  # in the cursor: raw_data's code version (the text columns) they were read with


def _cursor_value(cursor: str | None, key: str = SCHEMA_KEY) -> str | None:
    """The version a cursor records under ``key`` (None for a first tick or a cursor from before)."""
    data = json.loads(cursor) if cursor else None
    return data.get(key) if isinstance(data, dict) else None


def _with_value(cursor: str, version: str, key: str = SCHEMA_KEY) -> str:
    data = json.loads(cursor)
    if data.get(key) == version:
        return cursor
    return json.dumps({**data, key: version})


def _rereads(
    context: dg.SensorEvaluationContext,
    spec: DatasetSpec,
    pdef: dg.PartitionsDefinition,
    tick: LandingTick,
    before: str | None,
    read: str | None,
) -> list[dg.RunRequest]:
    """After the schema declares other text columns (raw_data's code version ``before`` ->
    ``read``), one ingest run per handled file whose raw partition is stored: it holds the earlier
    read's values (``42`` for ``000042``), and validation refuses it until it is read again."""
    from dcai_assets.automation import TRIGGER_TAG
    from dcai_assets.partitions import asset_key

    if before is None or read is None or before == read or not reads_csv(spec):
        return []
    files = {Path(name).stem: name for name in tick.state["files"] if name.lower().endswith(".csv")}
    raw_key = asset_key(spec, RAW_DATA)
    stored = context.instance.get_materialized_partitions(raw_key)
    existing = set(pdef.get_partition_keys(dynamic_partitions_store=context.instance))
    keys = [k for k in partition_order(list(files), spec.partitioning) if k in stored and k in existing]
    # Unique per state of the stored reads, so a later change back and forth re-reads again.
    records = context.instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=raw_key), limit=1)
    latest = records.records
    state = latest[0].storage_id if latest else 0
    context.log.info(
        f"the schema's text columns changed (raw_data {before} -> {read}): re-reading "
        f"{len(keys)} stored partition(s)" + (f": {', '.join(keys[:10])}" if keys else "")
    )
    trigger = f"the schema's text columns changed (raw_data {before} -> {read}): re-reading the file"
    return [
        dg.RunRequest(
            partition_key=key,
            run_key=f"{spec.name}:{key}:{read}:{state}",
            tags={TRIGGER_TAG: trigger, FILE_TAG: files[key]},
        )
        for key in keys
    ]


def blocked_partitions(
    instance: dg.DagsterInstance, key: dg.AssetKey, pdef: dg.PartitionsDefinition, keys: Sequence[str]
) -> list[str]:
    """The ``keys`` whose latest materialization of ``key`` failed (a blocking check stopped it,
    as the partition bar shows), in order."""
    if not keys:
        return []
    status = instance.get_status_by_partition(key, list(keys), pdef) or {}
    return [k for k in keys if status.get(k) == dg.AssetPartitionStatus.FAILED]


def _blocked_reruns(
    context: dg.SensorEvaluationContext,
    spec: DatasetSpec,
    pdef: dg.PartitionsDefinition,
    tick: LandingTick,
    before: str | None,
    version: str,
) -> list[dg.RunRequest]:
    """After a schema change (``before`` -> ``version``), one run per blocked partition the sensor
    has handled, keyed by the new version so that each runs once; none when the schema is the
    same or the cursor does not say which it was."""
    from dcai_assets.assets.validated import VALIDATED_DATA
    from dcai_assets.automation import TRIGGER_TAG
    from dcai_assets.partitions import asset_key

    if before is None or before == version:
        return []
    if isinstance(spec.source, CallableSource):
        files = {key: None for key in tick.state["keys"]}
    else:
        files = {Path(name).stem: name for name in tick.state["files"]}
    existing = set(pdef.get_partition_keys(dynamic_partitions_store=context.instance))
    known = [k for k in files if k in existing]
    blocked = blocked_partitions(context.instance, asset_key(spec, VALIDATED_DATA), pdef, known)
    if not blocked:
        context.log.info(f"schema changed ({before} -> {version}): no blocked partition to re-run")
        return []
    context.log.info(
        f"schema changed ({before} -> {version}): re-running {len(blocked)} blocked partition(s): "
        + ", ".join(blocked[:10])
        + (f" and {len(blocked) - 10} more" if len(blocked) > 10 else "")
    )
    trigger = f"schema changed ({before} -> {version}): re-validating the blocked partition"
    return [
        dg.RunRequest(
            partition_key=key,
            run_key=f"{spec.name}:{key}:schema-{version}",
            tags={TRIGGER_TAG: trigger, **({FILE_TAG: files[key]} if files[key] else {})},
        )
        for key in blocked
    ]


def _log_state(context: dg.SensorEvaluationContext, tick: LandingTick, path: Any) -> None:
    if tick.migrated:
        context.log.info(f"moved {tick.migrated} entries of the former JSON cursor into {str(path)!r}")
    if tick.lost:
        context.log.warning(
            f"the landing state of this cursor is not in {str(path)!r} (deleted, or unused for 180 "
            "days): every file is requested again; Dagster skips the run keys it has already launched"
        )


def _log_skipped(
    context: dg.SensorEvaluationContext, spec: DatasetSpec, requests: list[dg.RunRequest]
) -> None:
    """existing_files="skip": say what the first evaluation recorded as handled without a run."""
    if not requests:
        return
    names = [r.tags[FILE_TAG] for r in requests]
    shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    context.log.warning(
        f"existing_files='skip': {len(names)} files already in the landing directory "
        f"{str(spec.source.path)!r} at the sensor's first evaluation are recorded as handled, "
        f"without a run: {shown}. Files that land or change from now on are processed; to process "
        "these too, reset the sensor's cursor with existing_files='process', or backfill them."
    )


def _is_open(pdef: dg.PartitionsDefinition) -> Callable[[str], bool] | None:
    """For time windows: whether a key's window has ended, so that its partition exists."""
    if isinstance(pdef, dg.TimeWindowPartitionsDefinition):
        return pdef.has_partition_key
    return None


def _scan_callable(
    spec: DatasetSpec, cursor: dict, is_open: Callable[[str], bool] | None = None
) -> tuple[list[dg.RunRequest], list[str], list[str]]:
    source = spec.source
    assert isinstance(source, CallableSource)
    if source.list_partitions is None:
        return [], [], []
    requests, new_keys, problems = [], [], []
    seen = cursor["keys"]  # key -> True
    listed = list(source.list_partitions())
    for key in listed:
        if key in seen:
            continue
        try:
            check_partition_key(key, spec.partitioning)
        except DataInputError as e:
            problems.append(str(e))
            continue
        if is_open is not None and not is_open(key):
            continue  # its window has not ended: picked up on a later tick
        seen[key] = True
        if isinstance(spec.partitioning, DynamicPartitions):
            new_keys.append(key)
        requests.append(dg.RunRequest(partition_key=key, run_key=f"{spec.name}:{key}"))
    present = set(listed)
    for key in [k for k in seen if k not in present]:
        seen.pop(key)  # no longer listed: if it comes back, Dagster skips its run key
    return requests, new_keys, problems


def discover_partition_keys(spec: DatasetSpec) -> tuple[list[str], list[str]]:
    """Every partition key the spec's source holds now (files in the landing directory, or
    ``CallableSource.list_partitions``), oldest first, and the problems of what was skipped."""
    from dcai_assets.spec import partition_order

    keys, problems = [], []
    if isinstance(spec.source, CallableSource):
        if spec.source.list_partitions is None:
            return [], ["the source is a CallableSource without list_partitions; expected keys to be given"]
        for key in spec.source.list_partitions():
            try:
                keys.append(check_partition_key(key, spec.partitioning))
            except DataInputError as e:
                problems.append(str(e))
        return partition_order(keys, spec.partitioning), problems
    directory = Path(spec.source.path)
    if not directory.is_dir():
        return [], [f"landing directory {str(directory)!r} does not exist; expected a directory of files"]
    files = sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))
    stems: dict[str, list[str]] = {}
    for p in files:
        if p.suffix in spec.source.suffixes:
            stems.setdefault(p.stem, []).append(p.name)
    for path in files:
        try:
            keys.append(_check_file(path, spec, stems))
        except DataInputError as e:
            problems.append(str(e))
    return partition_order(keys, spec.partitioning), problems
