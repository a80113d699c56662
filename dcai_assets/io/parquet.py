"""Parquet IO manager for pandas DataFrames, one file per partition, on any fsspec path; a range
of partitions is a dict of DataFrames keyed by partition, in and out."""

from __future__ import annotations

import dagster as dg
import pandas as pd
from pydantic import Field, field_validator
from upath import UPath

from dcai_assets.io.tmp_files import DEFAULT_TMP_MAX_AGE_SECONDS, TmpSweeper, check_max_age, tmp_path


class PandasParquetIOManager(dg.UPathIOManager):
    """Stores ``<base>/<asset key>/<partition>.parquet``; a named index is kept, e.g. row numbers."""

    extension: str = ".parquet"

    def __init__(self, base_path: UPath, tmp_max_age_seconds: float = DEFAULT_TMP_MAX_AGE_SECONDS):
        super().__init__(base_path=base_path)
        self._sweeper = TmpSweeper(tmp_max_age_seconds, "ParquetIOManager.tmp_max_age_seconds")

    def dump_to_path(self, context: dg.OutputContext, obj: pd.DataFrame, path: UPath) -> None:
        swept = self._sweeper.sweep(path.parent)  # what killed writes left here
        if swept:
            dg.get_dagster_logger().warning(  # the step's log (an OutputContext may have none)
                f"swept {len(swept)} stale temporary file(s) of interrupted writes from {path.parent}: "
                + ", ".join(p.name for p in swept)
            )
        # Write beside the target, then rename: a failed write never leaves half a file behind.
        tmp = tmp_path(path)
        with tmp.open("wb") as f:
            obj.to_parquet(f, index=obj.index.name is not None)
        tmp.rename(path)

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame | dict) -> None:
        """One partition: a DataFrame. A range of partitions (a backfill run): ``{partition:
        DataFrame}`` with every partition of the range, each written to its own file."""
        if not (context.has_asset_partitions and len(context.asset_partition_keys) > 1):
            return super().handle_output(context, obj)
        keys = context.asset_partition_keys
        if not isinstance(obj, dict):
            raise TypeError(
                f"{context.asset_key.to_user_string()}: an output for partitions {keys[0]}...{keys[-1]} "
                f"is a {type(obj).__name__}; expected a dict of DataFrames keyed by partition"
            )
        paths = self._get_paths_for_partitions(context)
        missing = [k for k in keys if k not in obj]
        extra = [k for k in obj if k not in paths]
        if missing or extra:
            raise ValueError(
                f"{context.asset_key.to_user_string()}: the output for partitions {keys[0]}...{keys[-1]} "
                f"lacks partitions {missing[:5]} and has unexpected ones {extra[:5]}; expected exactly "
                "the run's partitions"
            )
        for key in keys:
            self.make_directory(paths[key].parent)
            self.dump_to_path(context=context, obj=obj[key], path=paths[key])
        context.add_output_metadata({"partitions_written": len(keys)})

    def load_from_path(self, context: dg.InputContext, path: UPath) -> pd.DataFrame:
        with path.open("rb") as f:
            return pd.read_parquet(f)

    def load_partitions(self, context: dg.InputContext):
        """Many partitions with ``allow_missing_partitions``: read the stored ones, and say in one
        line how many were not there (instead of one warning per missing partition)."""
        keys = context.asset_partition_keys
        if not context.definition_metadata.get("allow_missing_partitions", False):
            return super().load_partitions(context)  # a single partition comes as a DataFrame
        paths = self._get_paths_for_partitions(context)
        stored = [k for k in keys if paths[k].exists()]
        context.log.info(
            f"loading {len(stored)} stored partitions of {len(keys)} ({len(keys) - len(stored)} not stored)"
        )
        return {k: self.load_from_path(context, paths[k]) for k in stored}


class ParquetIOManager(dg.ConfigurableIOManagerFactory):
    """Pandas DataFrames as Parquet under ``base_dir`` (a local directory or any fsspec URL)."""

    base_dir: str
    tmp_max_age_seconds: int = Field(
        default=DEFAULT_TMP_MAX_AGE_SECONDS,
        description="Hidden .tmp files of interrupted writes untouched for this long (at least 60 s) "
        "are removed when a write next goes into their directory.",
    )

    @field_validator("tmp_max_age_seconds")
    @classmethod
    def _at_least_a_minute(cls, value: int) -> int:
        check_max_age(value, "ParquetIOManager.tmp_max_age_seconds")
        return value

    def create_io_manager(self, context: dg.InitResourceContext) -> PandasParquetIOManager:
        return PandasParquetIOManager(UPath(self.base_dir), tmp_max_age_seconds=self.tmp_max_age_seconds)
