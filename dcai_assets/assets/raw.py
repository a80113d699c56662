"""Raw data: each partition stored exactly as read, versioned by a hash of its content."""

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd

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


def load_raw_partition(
    spec: DatasetSpec, key: str, *, all_text: bool = False
) -> tuple[pd.DataFrame, str, str]:
    """Read partition ``key`` from the spec's source: (frame, where it came from, content hash).
    A CSV's schema text columns are read as text, every column with ``all_text`` or no schema."""
    source = spec.source
    if isinstance(source, LandingDirectory):
        path = find_partition_file(source.path, key, source.suffixes)
        check_partition_key(key, spec.partitioning, file=path.name)
        digest = file_digest(path)
        text = None if all_text else _schema_text_columns(spec)
        return read_table_file(path, partition=key, text_columns=text), str(path), digest
    assert isinstance(source, CallableSource)
    check_partition_key(key, spec.partitioning)
    frame = source.load(key)
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(
            f"partition {key!r}: the source callable {getattr(source.load, '__name__', source.load)!r} "
            f"returned {type(frame).__name__}; expected a pandas DataFrame"
        )
    return frame, getattr(source.load, "__qualname__", "callable"), frame_digest(frame)


def _schema_text_columns(spec: DatasetSpec) -> list[str] | None:
    """The columns the spec's schema file declares as text; None (read all as text) without a
    readable schema file (validation then says what is wrong with it)."""
    path = Path(spec.schema_path) if spec.schema_path else None
    if path is None or not path.is_file():
        return None
    try:
        return [c.name for c in TableSchema.load(path).columns if c.dtype == "string"]
    except ValueError:
        return None


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
        code_version="raw-v1",
        description=(
            f"{spec.description or spec.name}: each partition exactly as it arrived, "
            "versioned by a SHA-256 of its content." + hint
        ),
    )
    def raw_data(context: dg.AssetExecutionContext) -> Iterator[dg.Output | dg.AssetMaterialization]:
        if not is_ranged(context):
            read = _read(context, spec, context.partition_key)
            yield dg.Output(
                read.value, data_version=dg.DataVersion(read.data_version), metadata=read.metadata
            )
            return
        reads = [_read(context, spec, key, log=False) for key in context.partition_keys]
        rows = sum(len(r.value) for r in reads)
        context.log.info(
            f"partitions {reads[0].key}...{reads[-1].key}: read {len(reads)} files, {rows:,} rows"
        )
        yield from emit_partitions(context, output_name="result", asset_key=context.asset_key, outputs=reads)

    return raw_data


def _read(
    context: dg.AssetExecutionContext, spec: DatasetSpec, key: str, log: bool = True
) -> PartitionOutput:
    frame, origin, digest = load_raw_partition(spec, key)
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
    return PartitionOutput(key, frame, digest[:16], metadata)
