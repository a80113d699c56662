"""A day in the life of the demo, for real: the Dagster daemon and webserver run on loopback for a
temporary instance; partition files land, and validation, labeling, a new MLflow model version and
new importance scores appear with no manual call. Then the webserver's GraphQL API shows the asset
graph and staleness and launches a run, and headless Chromium renders the lineage graph."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest
from mlflow import MlflowClient

from jobs.live_instance import REPOSITORY, LiveInstance, wait_for
from jobs.simulator import simulate

pytestmark = pytest.mark.slow  # the full lane: a live instance (see pyproject.toml)

DAYS = [f"2013-02-0{d}" for d in range(1, 9)]  # Feb 8, the blizzard, fails a blocking check
PASSING = DAYS[:7]
KEY = {name: dg.AssetKey(["flights", name]) for name in ("validated_data", "labeled_set", "trained_model")}
IMPORTANCE = dg.AssetKey(["flights", "importance_scores"])


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """The running demo after eight days landed and everything they trigger has finished."""
    with LiveInstance(tmp_path_factory.mktemp("live")) as live:
        simulate(live.landing, DAYS[0], len(DAYS))
        instance = live.instance()
        wait_for(
            "importance scores of a model trained on every passing day",
            lambda: (
                instance.get_materialized_partitions(KEY["labeled_set"]) == set(PASSING)
                and instance.get_latest_materialization_event(IMPORTANCE) is not None
                and not instance.get_runs(filters=dg.RunsFilter(statuses=_UNFINISHED))
            ),
            # A ceiling, not a duration: ~3 min on a quiet 2-core machine; the end-to-end lane
            # runs on two xdist workers, and a loaded machine has taken more than 7 min.
            timeout=1200,
            every=2,
        )
        yield live


_UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def test_landed_files_become_a_model_and_importance_scores_with_no_manual_call(live):
    instance = live.instance()
    assert instance.get_materialized_partitions(KEY["validated_data"]) == set(PASSING)  # Feb 8 blocked
    assert "2013-02-08" not in instance.get_materialized_partitions(KEY["labeled_set"])
    runs = instance.get_runs()
    assert all("dagster/sensor_name" in r.tags for r in runs)  # every run came from a sensor
    trained = [r for r in runs if KEY["trained_model"] in (r.asset_selection or ())]
    assert len(trained) == 1  # eight days landed together: one retrain, not eight
    assert IMPORTANCE in trained[0].asset_selection  # re-scored in the retrain's run
    client = MlflowClient(f"sqlite:///{live.data / 'mlflow' / 'mlflow.db'}")
    champion = client.get_model_version_by_alias("flights_model", "champion")
    assert str(champion.version) == "1" and champion.tags["dcai.gate"] == "passed"


def test_graphql_shows_the_five_layers_their_edges_and_staleness(live):
    nodes = live.graphql("{ assetNodes { assetKey { path } groupName dependencyKeys { path } } }")[
        "assetNodes"
    ]
    groups = {n["assetKey"]["path"][-1]: n["groupName"] for n in nodes}
    assert set(groups.values()) == {"raw", "validated", "labeled", "model", "importance"}
    edges = {(d["path"][-1], n["assetKey"]["path"][-1]) for n in nodes for d in n["dependencyKeys"]}
    assert {
        ("raw_data", "validated_data"),
        ("validated_data", "label_model"),
        ("validated_data", "labeled_set"),
        ("label_model", "labeled_set"),
        ("labeled_set", "trained_model"),
        ("trained_model", "importance_scores"),
    } <= edges
    query = """query($key: AssetKeyInput!, $partition: String) { assetNodeOrError(assetKey: $key) {
        ... on AssetNode { staleStatus(partition: $partition) } } }"""

    def stale(name: str, partition: str | None = None) -> str:
        variables = {"key": {"path": ["flights", name]}, "partition": partition}
        return live.graphql(query, variables)["assetNodeOrError"]["staleStatus"]

    assert stale("labeled_set", "2013-02-03") == "FRESH"
    assert stale("labeled_set", "2013-02-08") == "MISSING"  # blocked by the failed check
    assert stale("trained_model") == "FRESH"


def test_the_blocked_day_is_failed_in_the_partition_bar_and_the_passing_days_materialized(live):
    node = live.graphql(
        """query($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { ... on AssetNode {
             assetPartitionStatuses { ... on TimePartitionStatuses { ranges { status startKey endKey } } }
             partitionStats { numMaterialized numFailed } } } }""",
        {"key": {"path": KEY["validated_data"].path}},
    )["assetNodeOrError"]
    ranges = [(r["startKey"], r["endKey"], r["status"]) for r in node["assetPartitionStatuses"]["ranges"]]
    assert ranges == [(PASSING[0], PASSING[-1], "MATERIALIZED"), ("2013-02-08", "2013-02-08", "FAILED")]
    assert node["partitionStats"] == {"numMaterialized": len(PASSING), "numFailed": 1}


def test_a_materialization_launched_through_graphql_succeeds(live):
    instance = live.instance()
    before = len(instance.fetch_materializations(IMPORTANCE, limit=100).records)
    launched = live.graphql(
        """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
             __typename ... on LaunchRunSuccess { run { runId } } ... on Error { message } } }""",
        {
            "params": {
                "selector": {
                    **REPOSITORY,
                    "pipelineName": "__ASSET_JOB",
                    "assetSelection": [{"path": ["flights", "importance_scores"]}],
                }
            }
        },
    )["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]

    def finished() -> str | None:
        status = live.graphql(
            "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }", {"id": run_id}
        )["runOrError"]["status"]
        return status if status in {"SUCCESS", "FAILURE", "CANCELED"} else None

    assert wait_for("the launched run to finish", finished, timeout=180) == "SUCCESS"
    assert len(instance.fetch_materializations(IMPORTANCE, limit=100).records) == before + 1


def test_headless_chromium_renders_the_lineage_graph(live, tmp_path):
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "Chromium is missing: scripts/install-chromium.sh installs Debian's package"
    names = ["raw_data", "validated_data", "label_model", "labeled_set", "trained_model", "importance_scores"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(
            f"{live.url}/assets/flights/importance_scores?view=lineage&lineageScope=upstream&lineageDepth=6"
        )
        for name in names:
            page.get_by_text(name, exact=True).first.wait_for(timeout=60_000)
        skip = page.get_by_role("button", name="Skip")  # the first-visit newsletter prompt
        if skip.count():
            skip.click()
        shot = Path(tmp_path) / "lineage.png"
        page.screenshot(path=str(shot))
        browser.close()
    assert shot.stat().st_size > 10_000


# Headless on a machine with no network: nothing in the background tries to reach out.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
