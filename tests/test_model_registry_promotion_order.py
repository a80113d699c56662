"""The champion moves only once the retrain's model card is stored: a lake that cannot take the card
(its disk really full: a small tmpfs of its own, ENOSPC from the kernel) fails the step, leaves the
champion and the drift ranks as they were, and gives the new version a verdict."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from mlflow import MlflowClient
from upath import UPath

from dcai_assets import MlflowTracking
from dcai_assets.core.registry_debris import FINAL_VERDICTS
from dcai_assets.io.parquet import PandasParquetIOManager
from tests.assets.test_model import MODEL, definitions, failure_message, land_and_label, retrain
from tests.disk import full_disk
from tests.production.servers import MlflowServer

MODEL_NAME = "readings_model"
DAYS = ["2024-01-10", "2024-01-11", "2024-01-12"]


@pytest.fixture
def small_lake(tmp_path: Path) -> Iterator[Path]:
    """The lake (``resources``' io_manager directory) on a 16 MB tmpfs of its own."""
    lake = tmp_path / "lake"
    lake.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(lake)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"a tmpfs for the lake needs mount rights (root): {mounted.stderr.decode().strip()}")
    try:
        yield lake
    finally:
        subprocess.run(["umount", "-l", str(lake)], capture_output=True)


def champion(client: MlflowClient) -> str:
    return str(client.get_model_version_by_alias(MODEL_NAME, "champion").version)


def verdicts(client: MlflowClient) -> dict[str, str | None]:
    return {
        str(v.version): v.tags.get("dcai.gate") for v in client.search_model_versions(f"name='{MODEL_NAME}'")
    }


def test_a_full_lake_fails_the_retrain_and_the_champion_does_not_move(
    readings_spec, resources, landing, tracking, small_lake, tmp_path
):
    defs = definitions(readings_spec, resources, tracking)
    client = MlflowClient(tracking.tracking_uri)
    ranks = tmp_path / "artifacts" / "readings" / "model" / "feature_importance_ranks.json"
    with dg.instance_for_test() as instance:
        land_and_label(defs, instance, landing, DAYS)
        assert retrain(defs, instance).success
        assert champion(client) == "1"
        ranks_before = ranks.read_bytes()
        card_before = (small_lake / "readings" / "trained_model.parquet").read_bytes()

        with full_disk(small_lake):
            result = retrain(defs, instance)  # same inputs: its gate passes, so it would be promoted
        assert not result.success
        message = failure_message(result)
        assert "No space left on device" in message, message
        assert champion(client) == "1", "the champion moved to a version whose model card was not stored"
        found = verdicts(client)
        assert set(found) == {"1", "2"} and all(v in FINAL_VERDICTS for v in found.values()), found
        assert found["2"] == "abandoned"
        version_2 = client.get_model_version(MODEL_NAME, "2")
        assert "model card" in version_2.tags["dcai.abandoned_reason"]
        assert "same inputs and code as champion version 1" in version_2.tags["dcai.gate_reasons"]
        assert client.get_run(version_2.run_id).info.status == "FAILED"
        assert ranks.read_bytes() == ranks_before  # drift ranks still the champion's
        assert (small_lake / "readings" / "trained_model.parquet").read_bytes() == card_before
        assert not [p for p in small_lake.rglob("*") if p.name.startswith(".") and p.is_file()]

        resumed = retrain(defs, instance)  # the disk has room again
        assert resumed.success
        assert champion(client) == "3"
        assert verdicts(client) == {"1": "passed", "2": "abandoned", "3": "passed"}


class StoreThenStop(dg.IOManager):
    """The lake's IO manager, and the MLflow server stops right after the model card is stored: the
    tracking server goes away between the card and the promotion."""

    def __init__(self, base: Path, server: MlflowServer):
        self.inner = PandasParquetIOManager(UPath(base))
        self.server = server

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        self.inner.handle_output(context, obj)
        if context.asset_key == MODEL:
            self.server.stop()

    def load_input(self, context: dg.InputContext):
        return self.inner.load_input(context)


@pytest.mark.slow  # the full lane: an MLflow server, stopped and restarted
def test_mlflow_down_after_the_card_is_stored_fails_the_step_and_the_next_retrain_abandons_the_version(
    readings_spec, resources, landing, tmp_path
):
    with MlflowServer(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "mlartifacts") as server:
        tracking = MlflowTracking(
            tracking_uri=server.uri, max_retries=1, retry_wait_seconds=0.1, request_timeout_seconds=5
        )
        client = MlflowClient(server.uri)
        defs = definitions(readings_spec, resources, tracking)
        stopping = {**resources, "io_manager": dg.IOManagerDefinition.hardcoded_io_manager(
            StoreThenStop(tmp_path / "lake", server))}  # fmt: skip
        with dg.instance_for_test() as instance:
            land_and_label(defs, instance, landing, DAYS)
            assert retrain(defs, instance).success
            result = retrain(definitions(readings_spec, stopping, tracking), instance)
            server.start()
            assert not result.success
            assert "MLflow tracking at" in failure_message(result) or "Connection refused" in str(
                result.get_step_failure_events()[0].step_failure_data.error
            )
            assert champion(client) == "1"
            # The card was stored and says what was decided, not that it was promoted.
            card = result.get_asset_materialization_events()[0].materialization.metadata
            assert card["gate_passed"].value is True and "promoted" not in card
            assert "promoted to champion once this card is stored" in card["gate"].value
            assert not [e for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"]
            assert verdicts(client)["2"] not in FINAL_VERDICTS  # the server was down: nothing written

            after = retrain(defs, instance)
            assert after.success
            assert verdicts(client) == {"1": "passed", "2": "abandoned", "3": "passed"}
            assert champion(client) == "3"
            assert client.get_run(client.get_model_version(MODEL_NAME, "2").run_id).info.status == "KILLED"
            observed = [e for e in after.all_events if e.event_type_value == "ASSET_OBSERVATION"]
            assert [
                e.asset_observation_data.asset_observation.metadata["promoted"].value for e in observed
            ] == [True]
