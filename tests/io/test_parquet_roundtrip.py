"""ParquetIOManager round trip: what an asset writes for a partition is what a later read of that
partition returns, value for value and dtype for dtype, on a local directory and on an fsspec URL;
through the IO manager's own calls (Dagster's context builders) and through real runs."""

from __future__ import annotations

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from dcai_assets import ParquetIOManager

DAYS = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-04")
PARTITIONS = DAYS.get_partition_keys()  # three days
KEY = dg.AssetKey(["readings", "table"])
INT64 = np.iinfo(np.int64)


def partition_frame(day: str, seed: int) -> pd.DataFrame:
    """Five rows that differ from one partition to the next, with the values a lake must keep."""
    rows = 5
    return pd.DataFrame(
        {
            "reading_id": [f"{day}-{i}" for i in range(rows)],
            "code": ["000042", "", None, "NA", "1e3"],  # strings that look like numbers or nulls
            "note": ["ünïcode ✓", 'comma, "quote"', "new\nline", "x" * 10_000, f"seed {seed}"],
            "count": np.array([INT64.min, -1, 0, seed, INT64.max], dtype=np.int64),
            "temperature": [np.nan, -0.0, 1e300, -np.inf, seed + 0.5],
            "all_missing": np.full(rows, np.nan),
            "flag": [True, False, True, False, seed % 2 == 0],
            "at": pd.date_range(day, periods=rows, freq="h", tz="UTC"),
        },
        # A named index (row numbers beyond 2**32) is stored and read back.
        index=pd.Index(np.arange(rows, dtype=np.int64) + 2**40 + 1000 * seed, name="row"),
    )


WRITTEN = {day: partition_frame(day, seed) for seed, day in enumerate(PARTITIONS)}


@pytest.fixture(params=["local", "memory"])
def lake(request, tmp_path) -> str:
    """A local directory, or an fsspec URL (an in-memory file system) unique to the test."""
    if request.param == "local":
        return str(tmp_path / "lake")
    return f"memory://roundtrip/{tmp_path.name}/lake"


def io_manager(base_dir: str):
    return ParquetIOManager(base_dir=base_dir).create_io_manager(dg.build_init_resource_context())


def write(manager, day: str, frame: pd.DataFrame) -> None:
    context = dg.build_output_context(asset_key=KEY, partition_key=day, asset_partitions_def=DAYS)
    manager.handle_output(context, frame)


def read(manager, days: list[str]):
    """One partition (a DataFrame) or a range of them (a dict keyed by partition)."""
    key_range = dg.PartitionKeyRange(days[0], days[-1])
    context = dg.build_input_context(
        asset_key=KEY, asset_partitions_def=DAYS, asset_partition_key_range=key_range
    )
    return manager.load_input(context)


def test_each_partition_reads_back_equal_to_what_was_written(lake):
    manager = io_manager(lake)
    for day, frame in WRITTEN.items():
        write(manager, day, frame)
    for day in PARTITIONS:
        back = read(manager, [day])
        pd.testing.assert_frame_equal(back, WRITTEN[day], check_exact=True)
        assert back["count"].iloc[0] == INT64.min and back["count"].iloc[-1] == INT64.max
        assert back["code"].tolist()[:4] == ["000042", "", None, "NA"]  # not retyped, not coerced


def test_several_partitions_read_at_once_are_a_dict_of_equal_frames_keyed_by_partition(lake):
    manager = io_manager(lake)
    for day, frame in WRITTEN.items():
        write(manager, day, frame)
    back = read(manager, PARTITIONS)
    assert list(back) == PARTITIONS
    for day in PARTITIONS:
        pd.testing.assert_frame_equal(back[day], WRITTEN[day], check_exact=True)


def test_rewriting_a_partition_replaces_it_and_leaves_the_others_as_they_were(lake):
    manager = io_manager(lake)
    for day, frame in WRITTEN.items():
        write(manager, day, frame)
    changed = partition_frame(PARTITIONS[1], seed=99)
    write(manager, PARTITIONS[1], changed)
    back = read(manager, PARTITIONS)
    pd.testing.assert_frame_equal(back[PARTITIONS[1]], changed, check_exact=True)
    for day in (PARTITIONS[0], PARTITIONS[2]):
        pd.testing.assert_frame_equal(back[day], WRITTEN[day], check_exact=True)


def test_a_partition_is_one_file_named_by_its_key_and_no_temporary_file_is_left(tmp_path):
    lake = tmp_path / "lake"
    manager = io_manager(str(lake))
    for day, frame in WRITTEN.items():
        write(manager, day, frame)
    folder = lake / "readings" / "table"
    assert sorted(p.name for p in folder.iterdir()) == [f"{day}.parquet" for day in PARTITIONS]
    for day in PARTITIONS:  # each file holds its own partition, readable without Dagster
        pd.testing.assert_frame_equal(pd.read_parquet(folder / f"{day}.parquet"), WRITTEN[day])


def test_an_unnamed_index_is_not_stored_and_reads_back_as_row_positions(tmp_path):
    """As documented: only a named index is kept (an unnamed one is usually what a filter left);
    the columns still read back equal."""
    frame = WRITTEN[PARTITIONS[0]].rename_axis(None)
    frame.index = [7, 3, 11, 5, 2]
    manager = io_manager(str(tmp_path / "lake"))
    write(manager, PARTITIONS[0], frame)
    back = read(manager, [PARTITIONS[0]])
    pd.testing.assert_frame_equal(back, frame.reset_index(drop=True), check_exact=True)


# Through real runs: each partition materialized in its own run, then one run of an asset that
# depends on every partition.
RECEIVED: dict[str, dict[str, pd.DataFrame]] = {}


@dg.asset(key=KEY, partitions_def=DAYS)
def table(context) -> pd.DataFrame:
    return WRITTEN[context.partition_key]


@dg.asset(key=["readings", "every_day"], ins={"table": dg.AssetIn(key=KEY)})
def every_day(table: dict[str, pd.DataFrame]) -> pd.DataFrame:
    RECEIVED["every_day"] = table
    return pd.DataFrame({"partitions": [len(table)]})


def test_runs_store_each_partition_and_a_downstream_run_reads_them_back_equal(tmp_path):
    resources = {"io_manager": ParquetIOManager(base_dir=str(tmp_path / "lake"))}
    RECEIVED.clear()
    with dg.instance_for_test() as instance:
        for day in PARTITIONS:
            assert dg.materialize([table], partition_key=day, instance=instance, resources=resources).success
        downstream = dg.materialize(
            [table, every_day], selection=[every_day], instance=instance, resources=resources
        )
        assert downstream.success
    received = RECEIVED["every_day"]
    assert sorted(received) == PARTITIONS
    for day in PARTITIONS:
        pd.testing.assert_frame_equal(received[day], WRITTEN[day], check_exact=True)
