"""The environment-keyed resource sets: the same definitions on local files or on shared storage,
selected by DCAI_ENV, with nothing in dcai_assets changed between them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dcai_assets import ArtifactStore
from jobs.live_instance import PROJECT_DIR
from resources import executor, resource_set


def test_an_unknown_environment_is_a_clear_error():
    with pytest.raises(ValueError, match="DCAI_ENV='staging' is not a known resource set; expected one of"):
        resource_set("staging")


def test_production_reads_its_locations_from_the_environment_when_a_run_starts():
    resources = resource_set("production")
    assert {k: type(v).__name__ for k, v in resources.items()} == {
        "io_manager": "ParquetIOManager",
        "artifacts": "ArtifactStore",
        "mlflow_tracking": "MlflowTracking",
    }
    # EnvVars: resolved when a run starts, shown as such in the UI
    assert resources["io_manager"].base_dir.env_var_name == "DCAI_LAKE_URL"
    assert resources["artifacts"].base_dir.env_var_name == "DCAI_ARTIFACTS_URL"
    assert resources["mlflow_tracking"].tracking_uri.env_var_name == "MLFLOW_TRACKING_URI"
    assert executor("production").name == "multiprocess_executor"
    assert executor("local").name == "in_process"


def test_the_demo_definitions_load_in_both_environments():
    for env in ("local", "production"):
        loaded = subprocess.run(
            [sys.executable, "-c", "import jobs.definitions as d; print(d.defs.executor.name)"],
            cwd=PROJECT_DIR,
            env={"DCAI_ENV": env, "PATH": "/usr/bin:/bin", "HOME": str(PROJECT_DIR)},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert loaded.returncode == 0, loaded.stderr[-2000:]
        assert (
            loaded.stdout.split()[-1] == {"local": "in_process", "production": "multiprocess_executor"}[env]
        )


def test_artifacts_go_to_any_fsspec_url(tmp_path):
    for base in (tmp_path.as_uri(), str(tmp_path / "plain")):  # file:// and a plain directory
        store = ArtifactStore(base_dir=base)
        store.write("orders", "profile", "2024-01-01", {"rows": 3})
        store.write("orders", "profile", "2024-01-01", {"rows": 4})  # over the old one
        assert store.read("orders", "profile", "2024-01-01") == {"rows": 4}

    store = ArtifactStore(base_dir="memory://dcai-test/artifacts")  # an object store's kind of URL
    store.write("orders", "profile", "2024-01-01", {"rows": 3})
    assert store.read("orders", "profile", "2024-01-01") == {"rows": 3}
    assert store.read("orders", "profile", "2024-01-02") is None
    assert store.path("orders", "profile", "2024-01-01").protocol == "memory"
