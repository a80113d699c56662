"""Lineage from the MLflow registry: what made model version N, which versions used partition P
(two real retrains on a real Dagster instance, then the library and the command line)."""

from __future__ import annotations

import json

import dagster as dg
import pytest
from mlflow import MlflowClient

from dcai_assets.cli import main
from dcai_assets.lineage import model_lineage, models_using_partition
from tests.assets.test_labeled import LFS
from tests.assets.test_model import definitions, land_and_label, metadata, retrain
from tests.conftest import readings_spec_in, resources_in, tracking_in

FIRST = ["2024-01-10", "2024-01-11", "2024-01-12"]


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory, empty_mlflow_db):
    """Version 1 on three days (the third held out); version 2 after a fourth day arrived. Built
    once for the module: the tests only read the registry."""
    root = tmp_path_factory.mktemp("lineage")
    tracking = tracking_in(root, empty_mlflow_db)
    defs = definitions(readings_spec_in(root), resources_in(root), tracking)
    with dg.instance_for_test() as instance:
        land_and_label(defs, instance, root / "landing", FIRST)
        first = metadata(retrain(defs, instance))
        land_and_label(defs, instance, root / "landing", ["2024-01-13"])
        second = metadata(retrain(defs, instance))
    return MlflowClient(tracking.tracking_uri), first, second


def test_what_made_a_model_version(two_versions):
    client, first, second = two_versions
    assert model_lineage(client, "readings_model", 1).run_id == first["mlflow_run_id"]
    lineage = model_lineage(client, "readings_model", 2)
    assert lineage.run_id == second["mlflow_run_id"]
    assert lineage.partitions == second["partitions"]
    assert lineage.train_partitions == tuple(FIRST)
    assert lineage.holdout_partitions == ("2024-01-13",)
    assert lineage.lf_set_version == LFS.version
    assert lineage.code_version.startswith("train-")
    assert lineage.dagster_run_id and lineage.gate in {"passed", "failed"}
    text = lineage.markdown()
    assert "| 2024-01-13 | holdout |" in text and "| 2024-01-10 | train |" in text
    assert model_lineage(client, "readings_model", 1).holdout_partitions == ("2024-01-12",)


def test_which_versions_used_a_partition(two_versions):
    client, _, _ = two_versions
    both = models_using_partition(client, "2024-01-12")
    assert [(m.version, m.role_of("2024-01-12")) for m in both] == [("1", "holdout"), ("2", "train")]
    assert [m.version for m in models_using_partition(client, "2024-01-13", "readings_model")] == ["2"]
    assert models_using_partition(client, "2023-12-31") == []


def test_the_lineage_command_answers_both_questions(two_versions, capsys):
    uri = ["--tracking-uri", two_versions[0].tracking_uri]
    assert main(["lineage", "model", "readings_model", "1", *uri]) == 0
    assert "# readings_model version 1" in capsys.readouterr().out
    assert main(["lineage", "partition", "2024-01-11", "--json", *uri]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["version"], r["role"]) for r in rows] == [("1", "train"), ("2", "train")]
    with pytest.raises(SystemExit, match="no registered model 'readings_model' version 9"):
        main(["lineage", "model", "readings_model", "9", *uri])
