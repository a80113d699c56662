"""Raw data: each partition stored exactly as read, versioned by a hash of its content. A CSV's
columns the schema declares as text are read as text (``000042`` stays ``000042``)."""

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd
import yaml

from dcai_assets.assets.ranged import PartitionOutput, backfill_policy, emit_partitions, is_ranged
from dcai_assets.core.reading import file_digest, find_partition_file, frame_digest, read_table_file
from dcai_assets.core.schema import TableSchema
from dcai_assets.metadata import column_schema
from dcai_assets.partitions import asset_key, partitions_def
from dcai_assets.privacy import examples_metadata
from dcai_assets.spec import (
    CallableSource,
    DatasetSpec,
    DynamicPartitions,
    LandingDirectory,
    check_partition_key,
)

RAW_DATA = "raw_data"


TextColumns = list[str] | None
"""The columns of a CSV read as text; None for every column."""

READ_AS_TEXT = "read_as_text"
"""Metadata of a raw partition read from a CSV: the columns read as text, or ``"every column"``."""


def load_raw_partition(
    spec: DatasetSpec, key: str, *, text_columns: TextColumns
) -> tuple[pd.DataFrame, str, str]:
    """Read partition ``key`` from the spec's source: (frame, where it came from, content hash).
    A CSV's ``text_columns`` (the schema's: :func:`csv_text_columns`) are read as text, every
    column when None."""
    source = spec.source
    if isinstance(source, LandingDirectory):
        path = find_partition_file(source.path, key, source.suffixes)
        check_partition_key(key, spec.partitioning, file=path.name)
        digest = file_digest(path)
        return read_table_file(path, partition=key, text_columns=text_columns), str(path), digest
    assert isinstance(source, CallableSource)
    check_partition_key(key, spec.partitioning)
    frame = source.load(key)
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(
            f"partition {key!r}: the source callable {getattr(source.load, '__name__', source.load)!r} "
            f"returned {type(frame).__name__}; expected a pandas DataFrame"
        )
    return frame, getattr(source.load, "__qualname__", "callable"), frame_digest(frame)


def csv_text_columns(spec: DatasetSpec) -> TextColumns:
    """The columns the spec's schema file declares as text, which a CSV partition is read with;
    None (read all as text) without a readable schema file (validation then says what is wrong
    with it)."""
    readable, columns = schema_text_columns(spec)
    return columns if readable else None


def schema_text_columns(spec: DatasetSpec) -> tuple[bool, TextColumns]:
    """(False, None) when the schema file exists but cannot be read (a typo mid-edit): nothing
    can be said of its text columns; else (True, its text columns, or None without a file)."""
    path = Path(spec.schema_path) if spec.schema_path else None
    if path is None or not path.is_file():
        return True, None
    try:
        return True, sorted(c.name for c in TableSchema.load(path).columns if c.dtype == "string")
    except (ValueError, yaml.YAMLError):  # validation names the file and what is wrong
        return False, None


def reads_csv(spec: DatasetSpec) -> bool:
    """The spec's partitions may be CSV files, whose text columns the schema decides."""
    return isinstance(spec.source, LandingDirectory) and ".csv" in spec.source.suffixes


def read_as_text(columns: TextColumns) -> list[str] | str:
    """How :data:`READ_AS_TEXT` records ``columns``."""
    return "every column" if columns is None else sorted(columns)


def raw_code_version(spec: DatasetSpec) -> str:
    """``raw-v2``, and for a landing directory the columns its CSV files are read as text with:
    re-declaring a column as text in the schema marks the raw partitions stale (they hold the
    values as typed by the earlier read, e.g. ``42`` for ``000042``)."""
    if not reads_csv(spec):
        return "raw-v2"
    text = json.dumps(read_as_text(csv_text_columns(spec)))
    return f"raw-v2-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


REGISTER_HINT = (
    " Dynamic partitions exist once registered: the landing sensor registers each file it sees; "
    "to materialize a key by hand first run `dcai-assets partitions add <module>:<SPEC> KEY` "
    "(or `partitions sync` for every landing file), else Dagster refuses the key."
)


def build_raw_asset(spec: DatasetSpec) -> dg.AssetsDefinition:
    """The partitioned ``<dataset>/raw_data`` asset."""
    hint = REGISTER_HINT if isinstance(spec.partitioning, DynamicPartitions) else ""

    @dg.asset(
        key=asset_key(spec, RAW_DATA),
        partitions_def=partitions_def(spec),
        backfill_policy=backfill_policy(spec.max_partitions_per_run),
        output_required=False,  # a ranged run records each partition itself
        group_name="raw",
        kinds={"pandas", "parquet"},
        owners=list(spec.owners),
        code_version=raw_code_version(spec),
        description=(
            f"{spec.description or spec.name}: each partition exactly as it arrived, "
            "versioned by a SHA-256 of its content." + hint
        ),
    )
    def raw_data(context: dg.AssetExecutionContext) -> Iterator[dg.Output | dg.AssetMaterialization]:
        text = csv_text_columns(spec)  # once a run: the schema file is read once
        if not is_ranged(context):
            read = _read(context, spec, context.partition_key, text)
            yield dg.Output(
                read.value, data_version=dg.DataVersion(read.data_version), metadata=read.metadata
            )
            return
        reads = [_read(context, spec, key, text, log=False) for key in context.partition_keys]
        rows = sum(len(r.value) for r in reads)
        context.log.info(
            f"partitions {reads[0].key}...{reads[-1].key}: read {len(reads)} files, {rows:,} rows"
        )
        yield from emit_partitions(context, output_name="result", asset_key=context.asset_key, outputs=reads)

    return raw_data


def _read(
    context: dg.AssetExecutionContext, spec: DatasetSpec, key: str, text: TextColumns, log: bool = True
) -> PartitionOutput:
    frame, origin, digest = load_raw_partition(spec, key, text_columns=text)
    if log:  # a ranged run says it once (each log line is an event written to the instance)
        context.log.info(
            f"partition {key}: read {len(frame):,} rows x {frame.shape[1]} columns from {origin}"
        )
    metadata = {
        "source": origin,
        "sha256": digest,
        "dagster/row_count": len(frame),
        "dagster/column_schema": column_schema(frame),
        "preview": examples_metadata(spec.privacy, frame),
    }
    if origin.lower().endswith(".csv"):
        metadata[READ_AS_TEXT] = dg.MetadataValue.json(read_as_text(text))
    return PartitionOutput(key, frame, digest[:16], metadata)
