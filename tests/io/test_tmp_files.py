"""Hidden ``.tmp`` files left by killed writes are swept when the lake or the artifact store next
writes into their directory; fresh ones (a write in progress) and visible files are kept."""

from __future__ import annotations

import os
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from upath import UPath

from dcai_assets import ArtifactStore, ParquetIOManager
from dcai_assets.io.tmp_files import sweep_stale_tmp

HOURS = 3600


def plant(directory: Path, name: str, age_seconds: float) -> Path:
    """A file ``name`` in ``directory`` last written ``age_seconds`` ago."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(b"half a write")
    stamp = time.time() - age_seconds
    os.utime(path, (stamp, stamp))
    return path


def debris(directory: Path) -> dict[str, Path]:
    return {
        "stale": plant(directory, ".2024-01-01.parquet.tmp", 2 * HOURS),
        "fresh": plant(directory, ".2024-01-02.parquet.tmp", 10),  # a write in progress
        "visible_old": plant(directory, "notes.tmp", 2 * HOURS),  # not ours: not hidden
        "other_hidden": plant(directory, ".keep", 2 * HOURS),
    }


DAYS = dg.DailyPartitionsDefinition(start_date="2024-01-01")


@dg.asset(key=["readings", "validated"], partitions_def=DAYS)
def validated(context) -> pd.DataFrame:
    return pd.DataFrame({"partition": [context.partition_key], "x": [1.0]})


def test_the_lake_sweeps_stale_tmp_files_where_it_writes_and_keeps_fresh_and_visible_ones(tmp_path):
    lake = tmp_path / "lake"
    files = debris(lake / "readings" / "validated")
    elsewhere = plant(lake / "readings" / "labeled", ".2024-01-01.parquet.tmp", 2 * HOURS)
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [validated],
            partition_key="2024-01-05",
            instance=instance,
            resources={"io_manager": ParquetIOManager(base_dir=str(lake))},
        )
        assert result.success
        logs = [e.message for e in instance.all_logs(result.run_id)]
    assert not files["stale"].exists()
    assert files["fresh"].exists() and files["visible_old"].exists() and files["other_hidden"].exists()
    assert elsewhere.exists()  # not written into in this run: left for its own next write
    assert (lake / "readings" / "validated" / "2024-01-05.parquet").exists()
    assert any("swept 1 stale temporary file" in m and ".2024-01-01.parquet.tmp" in m for m in logs)


def test_the_artifact_store_sweeps_stale_tmp_files_where_it_writes(tmp_path):
    store = ArtifactStore(base_dir=str(tmp_path / "artifacts"))
    files = debris(tmp_path / "artifacts" / "readings" / "profiles")
    store.write("readings", "profiles", "2024-01-05", {"rows": 3})
    assert not files["stale"].exists()
    assert files["fresh"].exists() and files["visible_old"].exists() and files["other_hidden"].exists()
    assert store.read("readings", "profiles", "2024-01-05") == {"rows": 3}


def test_the_age_after_which_tmp_files_are_swept_is_configurable_but_never_below_a_minute(tmp_path):
    directory = tmp_path / "lake"
    ten_minutes = plant(directory, ".a.parquet.tmp", 600)
    assert sweep_stale_tmp(UPath(directory), 3600) == []
    assert sweep_stale_tmp(UPath(directory), 300) == [UPath(ten_minutes)]
    with pytest.raises(ValueError, match="tmp_max_age_seconds=5: expected at least 60 seconds"):
        ParquetIOManager(base_dir=str(directory), tmp_max_age_seconds=5)
    with pytest.raises(ValueError, match="tmp_max_age_seconds=0: expected at least 60 seconds"):
        ArtifactStore(base_dir=str(directory), tmp_max_age_seconds=0)


def test_a_tmp_file_whose_age_cannot_be_read_is_kept():
    directory = UPath("memory://sweep-test/lake")
    (directory / ".a.parquet.tmp").write_bytes(b"half")
    assert sweep_stale_tmp(directory, 60, now=time.time() + 10 * HOURS) == []
    assert (directory / ".a.parquet.tmp").exists()


def test_writers_of_the_same_target_never_share_a_temporary_file(tmp_path):
    """Two retrains racing write the same unpartitioned asset at once. With one shared temporary
    name, one writer's rename took the other's file away (FileNotFoundError in a CI run of the
    racing scenario) and interleaved writes could be renamed into place. Each write now has its
    own; every write completes, the target holds one whole write, and no temporary file is left."""
    from concurrent.futures import ThreadPoolExecutor

    from dcai_assets.io.parquet import PandasParquetIOManager
    from dcai_assets.io.tmp_files import is_tmp_name
    from dcai_assets.io.tmp_files import tmp_path as temporary

    target = UPath(tmp_path / "lake" / "readings" / "trained_model.parquet")
    assert temporary(target) != temporary(target) and is_tmp_name(temporary(target).name)
    target.parent.mkdir(parents=True)
    manager = PandasParquetIOManager(UPath(tmp_path / "lake"))
    frames = [pd.DataFrame({"writer": [w] * 20_000, "x": range(20_000)}) for w in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda f: manager.dump_to_path(None, f, target), frames * 3))
    written = pd.read_parquet(target)
    assert len(written) == 20_000 and written["writer"].nunique() == 1
    assert [p.name for p in target.parent.iterdir()] == ["trained_model.parquet"]
