"""The DataCentricPipeline component in process: the demo's defs.yaml builds what the Python spec
builds (one code path), the scaffolder's files load in Dagster's defs-folder sandbox, the YAML's
presentation settings reach the assets, and bad attributes fail naming the field."""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster.components.testing import create_defs_folder_sandbox

from dcai_assets.components import DataCentricPipeline
from dcai_assets.components.loading import load_pipeline, load_specs
from dcai_assets.spec import DailyPartitions, LandingDirectory, StaticPartitions, WhatIfSpec

PROJECT = Path(__file__).resolve().parents[2]
DEMO_YAML = PROJECT / "jobs" / "defs" / "flights" / "defs.yaml"
STAGES = ["raw_data", "validated_data", "quarantined_rows", "label_model", "labeled_set", "trained_model"]


def plain(obj):
    """A spec object as nested plain data (tuples and lists alike), to compare field by field."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list | tuple):
        return [plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    return obj


def summary(defs: dg.Definitions) -> dict:
    """What a user sees of the definitions: per asset its partitions, automation condition, code
    version, kinds, owners and group; the checks; the jobs' selections; the sensors."""
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "partitions": node.partitions_def,
            "automation_condition": node.automation_condition,
            "code_version": node.code_version,
            "kinds": node.kinds,
            "owners": node.owners,
            "group": node.group_name,
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "freshness": node.freshness_policy,
        }
    checks = {}
    for check_key in graph.asset_check_keys:
        spec = graph.get_check_spec(check_key)
        checks[check_key.to_user_string()] = (spec.blocking, spec.description)
    repo = defs.get_repository_def()
    jobs = {j.name: sorted(str(k) for k in j.asset_layer.executable_asset_keys) for j in repo.get_all_jobs()}
    sensors = {s.name: (type(s).__name__, s.minimum_interval_seconds) for s in defs.sensors or []}
    return {"assets": assets, "checks": checks, "jobs": jobs, "sensors": sensors}


def test_the_demo_yaml_declares_the_same_specs_as_the_python_demo():
    from jobs.flights import FLIGHTS
    from jobs.flights_labeling import FLIGHTS_LABELING
    from jobs.flights_training import FLIGHTS_TRAINING

    specs = load_specs(DEMO_YAML)
    assert plain(specs.dataset) == plain(FLIGHTS)
    assert plain(specs.labeling) == plain(FLIGHTS_LABELING)
    assert plain(specs.training) == plain(FLIGHTS_TRAINING)


def test_the_demo_code_location_is_the_yaml_and_equals_the_python_build():
    from jobs.definitions import defs as code_location
    from jobs.definitions import python_definitions

    python, from_yaml = summary(python_definitions()), summary(code_location)
    assert len(python["assets"]) == 8 and len(python["checks"]) == 14  # the comparison is not vacuous
    automated = {k for k, a in python["assets"].items() if a["automation_condition"] is not None}
    assert automated == {
        f"flights/{a}" for a in ["label_model", "labeled_set", "trained_model", "importance_scores"]
    }
    assert "flights_land_to_model" in python["jobs"]
    assert from_yaml == python


def test_the_demo_yaml_reads_the_demo_environment_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("DCAI_SENSORS", "stopped")
    monkeypatch.setenv("DCAI_IMPORTANCE_SHARDS", "3")
    monkeypatch.setenv("DCAI_LANDING_DIR", str(tmp_path))
    specs = load_specs(DEMO_YAML)
    assert specs.importance.shards == 3
    assert specs.sensor_status == specs.automation.default_status == dg.DefaultSensorStatus.STOPPED
    assert specs.dataset.source.path == tmp_path / "flights"
    monkeypatch.delenv("DCAI_SENSORS")
    assert load_specs(DEMO_YAML).sensor_status == dg.DefaultSensorStatus.RUNNING


def test_yaml_and_python_differ_when_the_yaml_changes_a_setting(tmp_path):
    """The equality above can fail: a different retrain cron gives a different condition."""
    document = yaml.safe_load(DEMO_YAML.read_text())
    document["attributes"]["automation"]["retrain_cron"] = "0 5 * * *"
    document["attributes"]["schema_path"] = str(PROJECT / "jobs" / "schemas" / "flights.yaml")
    changed = tmp_path / "defs.yaml"
    changed.write_text(yaml.safe_dump(document))
    from jobs.definitions import python_definitions
    from resources import resource_set

    python_defs = python_definitions()
    component, context = load_pipeline(changed)
    yaml_defs = dg.Definitions.merge(component.build_defs(context), dg.Definitions(resources=resource_set()))
    model = "flights/trained_model"
    assert (
        summary(yaml_defs)["assets"][model]["automation_condition"]
        != summary(python_defs)["assets"][model]["automation_condition"]
    )


def scaffolded(sandbox, name: str = "orders", **attributes) -> Path:
    """Scaffold the component into the sandbox, then apply ``attributes`` to its defs.yaml."""
    path = sandbox.scaffold_component(DataCentricPipeline, defs_path=name)
    document = yaml.safe_load((path / "defs.yaml").read_text())
    document["attributes"].update(attributes)
    (path / "defs.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def test_the_scaffolded_defs_yaml_and_hooks_load_in_a_defs_folder_sandbox():
    with create_defs_folder_sandbox() as sandbox:
        path = scaffolded(sandbox)
        assert sorted(p.name for p in path.iterdir()) == ["defs.yaml", "labeling.py", "model.py"]
        with sandbox.load_component_and_build_defs(defs_path=path) as (component, defs):
            assert isinstance(component, DataCentricPipeline)
            keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
            assert keys == {f"orders/{s}" for s in [*STAGES, "importance_scores", "what_if"]}
            assert set(defs.resources) == {"io_manager", "artifacts", "mlflow_tracking"}
            lake = defs.resources["io_manager"].base_dir
            assert lake == str(sandbox.project_root.resolve() / ".dcai_data" / "lake")
            specs = component.specs(path)
            assert specs.dataset.source == LandingDirectory(
                path=sandbox.project_root / "data" / "landing" / "orders"
            )
            assert specs.dataset.partitioning == DailyPartitions(start="2024-01-01")
            assert specs.labeling.lfs.classes == ["negative", "positive"]


def test_owners_group_and_freshness_from_the_yaml_reach_the_assets():
    with create_defs_folder_sandbox() as sandbox:
        path = scaffolded(
            sandbox,
            owners=["team:risk"],
            group_name="orders_pipeline",
            freshness={"trained_model": {"fail_window": "26h", "warn_window": "90m"}},
        )
        with sandbox.load_component_and_build_defs(defs_path=path) as (_, defs):
            assets = summary(defs)["assets"]
    assert {a["group"] for a in assets.values()} == {"orders_pipeline"}
    assert all(a["owners"] == ["team:risk"] for a in assets.values())
    policy = assets["orders/trained_model"]["freshness"]
    assert (policy.fail_window.to_timedelta(), policy.warn_window.to_timedelta()) == (
        timedelta(hours=26),
        timedelta(minutes=90),
    )
    assert assets["orders/labeled_set"]["freshness"] is None
    assert assets["orders/trained_model"]["kinds"] == {"scikitlearn", "mlflow"}
    assert "greatexpectations" in assets["orders/validated_data"]["kinds"]
    assert "numba" in assets["orders/importance_scores"]["kinds"]


def attributes(**changes) -> dict:
    base = {
        "name": "orders",
        "source": {"landing_directory": "landing"},
        "partitions": {"type": "daily", "start": "2024-01-01"},
        "schema_path": "schema.yaml",
    }
    return base | changes


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"labeling": {"lfs": "no_such_module:LFS"}}, "labeling.lfs: 'no_such_module:LFS': module"),
        ({"labeling": {"lfs": "dcai_assets.spec:NOTHING"}}, "labeling.lfs: 'dcai_assets.spec:NOTHING'"),
        (
            {"labeling": {"lfs": "dcai_assets.spec:SUPPORTED_SUFFIXES"}},
            "is a tuple; expected a LabelingFunctionSet",
        ),
        ({"partitions": {"type": "daily"}}, "partitions.start: missing"),
        ({"partitions": {"type": "daily", "start": "2024-01-01", "keys": ["a"]}}, "['keys'] do not apply"),
        ({"partitions": {"type": "static"}}, "partitions.keys: missing"),
        ({"source": {"landing_directory": "x", "load": "m:f"}}, "source: expected exactly one"),
        ({"source": {}}, "source: expected exactly one"),
        ({"importance": {"k": 0}}, "ImportanceSpec.k: 0; expected an integer >= 1"),
        ({"what_if": {"fractions": [0.01, 5]}}, "WhatIfSpec.fractions: 5.0 in [0.01, 5.0]; expected numbers"),
        ({"what_if": {"random_repeats": 1}}, "WhatIfSpec.random_repeats: 1; expected an integer >= 2"),
    ],
)
def test_bad_attributes_fail_naming_the_field(tmp_path, changes, message):
    component = DataCentricPipeline.from_attributes_dict(attributes=attributes(**changes))
    with pytest.raises(ValueError, match=re.escape(message)):
        component.specs(tmp_path).build_definitions()


def test_the_what_if_sweep_from_the_yaml_reaches_the_dataset_spec(tmp_path):
    component = DataCentricPipeline.from_attributes_dict(
        attributes=attributes(what_if={"fractions": [0.01, 0.1], "random_repeats": 8})
    )
    assert component.specs(tmp_path).dataset.what_if == WhatIfSpec(fractions=(0.01, 0.1), random_repeats=8)
    default = DataCentricPipeline.from_attributes_dict(attributes=attributes()).specs(tmp_path)
    assert default.dataset.what_if == WhatIfSpec()


def test_static_partitions_and_relative_paths_from_the_yaml_folder(tmp_path):
    component = DataCentricPipeline.from_attributes_dict(
        attributes=attributes(partitions={"type": "static", "keys": ["b1", "b2"], "order": "key"})
    )
    specs = component.specs(tmp_path)
    assert specs.dataset.partitioning == StaticPartitions(keys=["b1", "b2"], order="key")
    assert specs.dataset.schema_path == tmp_path / "schema.yaml"
    assert specs.dataset.source.path == tmp_path / "landing"


def test_two_pipelines_in_one_project_share_their_storage_resources():
    with create_defs_folder_sandbox() as sandbox:
        scaffolded(sandbox, "orders")
        scaffolded(sandbox, "returns")
        with sandbox.build_all_defs() as defs:
            keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
            lake = defs.resources["io_manager"].base_dir
    assert {"orders/trained_model", "returns/trained_model"} <= keys
    assert lake == str(sandbox.project_root.resolve() / ".dcai_data" / "lake")


def test_schema_infer_refuses_a_defs_yaml_of_another_component(tmp_path):
    from dcai_assets.cli import main

    other = tmp_path / "defs.yaml"
    other.write_text("type: dagster.PythonScriptComponent\nattributes: {}\n")
    with pytest.raises(
        SystemExit, match=re.escape("type 'dagster.PythonScriptComponent'; expected a defs.yaml of type")
    ):
        main(["schema", "infer", str(other)])


def test_the_second_example_is_its_yaml_and_equals_the_python_build():
    from jobs.airport_weather_definitions import defs as code_location
    from jobs.airport_weather_definitions import python_definitions

    python, from_yaml = summary(python_definitions()), summary(code_location)
    assert len(python["assets"]) == 8 and python["checks"]  # the comparison is not vacuous
    assert from_yaml == python


def test_a_health_checks_block_makes_the_named_checks_blocking_and_sets_thresholds(tmp_path):
    document = yaml.safe_load(DEMO_YAML.read_text())
    document["attributes"]["health_checks"] = {"blocking": ["duplicates"], "min_slice_rows": 50}
    document["attributes"]["schema_path"] = str(PROJECT / "jobs" / "schemas" / "flights.yaml")
    changed = tmp_path / "defs.yaml"
    changed.write_text(yaml.safe_dump(document))
    specs = load_specs(changed)
    assert specs.dataset.health_checks.blocking == ("duplicates",)
    assert specs.dataset.health_checks.min_slice_rows == 50
    from dcai_assets.assets.health import build_health_checks

    checks = build_health_checks(specs.dataset, specs.labeling, specs.training, specs.importance)
    blocking = {spec.name: spec.blocking for spec in checks.check_specs}
    assert blocking == {name: name == "duplicates" for name in blocking} and len(blocking) == 5
    document["attributes"]["health_checks"] = {"blocking": ["leaks"]}
    changed.write_text(yaml.safe_dump(document))
    with pytest.raises(Exception, match=r"unknown checks \['leaks'\]"):
        load_specs(changed)
