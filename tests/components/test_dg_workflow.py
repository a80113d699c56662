"""The `dg` front door as a new user meets it, with the real command-line tools in subprocesses:
in a fresh project (Dagster's own sandbox helper), `dg scaffold defs` the component, point its
defs.yaml at a folder of CSVs, infer the schema, `dg check defs`, then `dagster asset materialize`
the whole chain (raw -> validated -> labeled -> model -> importance) on a real instance, real GX
and MLflow on SQLite. The shell block of the README's "Adopt it with dg" section is what runs."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import yaml
from dagster.components.testing import create_defs_folder_sandbox

# The full lane (make test-slow): the real `dg` and `dagster` commands in a fresh project, each a
# process that loads Dagster, plus two materializations of the whole chain.
pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
COMPONENT = "dcai_assets.components.DataCentricPipeline"
DAYS = ["2024-01-01", "2024-01-02"]
ASSETS = [
    "raw_data",
    "validated_data",
    "quarantined_rows",
    "label_model",
    "labeled_set",
    "trained_model",
    "importance_scores",
]
DEFINITIONS_PY = """\
from pathlib import Path

import dagster as dg


@dg.definitions
def defs():
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
"""


def readme_dg_commands() -> list[str]:
    """The command lines of the README's "Adopt it with dg" shell block, comments stripped."""
    readme = (PROJECT / "README.md").read_text()
    section = readme.split("## Adopt it with dg", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"^```sh\n(.*?)^```", section, re.S | re.M)
    return [c for c in (line.split("#", 1)[0].strip() for line in block.splitlines()) if c]


def registry_entry_point(site: Path) -> None:
    """Make the pyproject's `dagster_dg_cli.registry_modules` entry point visible to `dg` when
    the installed metadata predates it (the package is installed in editable mode elsewhere)."""
    declared = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]["entry-points"]
    group = declared["dagster_dg_cli.registry_modules"]
    if any(
        ep.value == "dcai_assets.components" for ep in entry_points(group="dagster_dg_cli.registry_modules")
    ):
        return
    info = site / "dcai_assets_components-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: dcai-assets-components\nVersion: 0.1.0\n")
    lines = "".join(f"{name} = {value}\n" for name, value in group.items())
    (info / "entry_points.txt").write_text(f"[dagster_dg_cli.registry_modules]\n{lines}")


def day_of_scores(day: str, rows: int = 150) -> pd.DataFrame:
    """A made-up day: a score, and a gold label (score >= 0.5, 10% noise) on ~40% of rows."""
    rng = np.random.default_rng(int(day.replace("-", "")))
    score = rng.random(rows).round(4)
    truth = np.where(rng.random(rows) < 0.1, score < 0.5, score >= 0.5)
    label = np.where(truth, "positive", "negative").astype(object)
    label[rng.random(rows) > 0.4] = None
    return pd.DataFrame({"score": score, "label": label})


class Project:
    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root, self.env = root, env

    def run(self, command: str | list[str]) -> subprocess.CompletedProcess:
        args = shlex.split(command) if isinstance(command, str) else command
        return subprocess.run(
            [str(BIN / args[0]), *args[1:]], cwd=self.root, env=self.env, capture_output=True, text=True
        )

    def ok(self, command: str | list[str]) -> str:
        done = self.run(command)
        assert done.returncode == 0, f"{command}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done.stdout + done.stderr


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A fresh dg project named shop, as `create-dagster project` lays it out."""
    site = tmp_path_factory.mktemp("site")
    registry_entry_point(site)
    with create_defs_folder_sandbox(project_name="shop") as sandbox:
        root = sandbox.project_root
        (root / "dg.toml").write_text('directory_type = "project"\n\n[project]\nroot_module = "shop"\n')
        (root / "src" / "shop" / "__init__.py").write_text("")
        (root / "src" / "shop" / "defs" / "__init__.py").write_text("")
        (root / "src" / "shop" / "definitions.py").write_text(DEFINITIONS_PY)
        (root / ".dagster_home").mkdir()
        (root / ".dagster_home" / "dagster.yaml").write_text("")
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(PROJECT), str(site), str(root / "src")]),
            "DAGSTER_HOME": str(root / ".dagster_home"),
            "PATH": os.pathsep.join([str(BIN), os.environ.get("PATH", "")]),
        }
        yield Project(root, env)


@pytest.fixture(scope="module")
def pipeline(project):
    """The README's commands up to `dg dev`, on a folder of CSVs at landing/orders."""
    landing = project.root / "landing" / "orders"
    landing.mkdir(parents=True)
    for day in DAYS:
        day_of_scores(day).to_csv(landing / f"{day}.csv", index=False)
    commands = readme_dg_commands()
    assert [c.split()[:2] for c in commands] == [
        ["dg", "list"],
        ["dg", "scaffold"],
        ["dcai-assets", "schema"],
        ["dg", "check"],
        ["dg", "dev"],
    ]
    listed, scaffold, infer, check, _dev = commands
    outputs = {"list": project.ok(listed), "scaffold": project.ok(scaffold)}
    defs_yaml = project.root / "src" / "shop" / "defs" / "orders" / "defs.yaml"
    # The scaffold options pointed the YAML at the CSVs; the stub hooks fit this data as they are.
    document = yaml.safe_load(defs_yaml.read_text())
    assert (
        document["attributes"]["source"]["landing_directory"] == "{{ context.project_root }}/landing/orders"
    )
    assert document["attributes"]["reference"] == [DAYS[0]]
    outputs["infer"] = project.ok(infer)
    outputs["check"] = project.ok(check)
    return defs_yaml, outputs


def test_dg_lists_the_component_through_its_entry_point(pipeline):
    _, outputs = pipeline
    assert COMPONENT in outputs["list"]


def test_dg_scaffold_defs_writes_a_defs_yaml_and_stub_hooks_that_load(pipeline, project):
    defs_yaml, outputs = pipeline
    folder = defs_yaml.parent
    assert {p.name for p in folder.iterdir()} >= {"defs.yaml", "labeling.py", "model.py", "schema.yaml"}
    attributes = yaml.safe_load(defs_yaml.read_text())["attributes"]
    assert attributes["labeling"]["lfs"] == "shop.defs.orders.labeling:LABELING_FUNCTIONS"
    assert attributes["training"]["pipeline"] == "shop.defs.orders.model:make_pipeline"
    assert "All definitions loaded successfully." in outputs["check"]


def test_dagster_asset_materialize_runs_the_whole_chain_on_the_scaffolded_pipeline(pipeline, project):
    select = ",".join(f"orders/{a}" for a in ASSETS)
    module = ["-m", "shop.definitions"]
    # Two runs, one per day: day 1 ingested, the label model fitted on it and day 1 labeled; day 2
    # ingested and labeled, the model trained on day 1 (day 2 held out), the training rows valued.
    first = ",".join(f"orders/{a}" for a in [*ASSETS[:3], "label_model", "labeled_set"])
    project.ok(["dagster", "asset", "materialize", *module, "--select", first, "--partition", DAYS[0]])
    second = ",".join(
        f"orders/{a}" for a in [*ASSETS[:3], "labeled_set", "trained_model", "importance_scores"]
    )
    project.ok(["dagster", "asset", "materialize", *module, "--select", second, "--partition", DAYS[1]])

    instance = dg.DagsterInstance.from_config(project.env["DAGSTER_HOME"])
    materialized = {
        a
        for a in select.split(",")
        if instance.get_latest_materialization_event(dg.AssetKey.from_user_string(a))
    }
    assert materialized == set(select.split(","))
    model = instance.get_latest_materialization_event(dg.AssetKey(["orders", "trained_model"]))
    metadata = model.asset_materialization.metadata
    assert metadata["evaluation_status"].value == "determined"
    assert metadata["model_uri"].value == "models:/orders_model/1"
    assert str(metadata["mlflow_tracking_uri"].value).startswith(f"sqlite:///{project.root}/.dcai_data/")
    scores = instance.get_latest_materialization_event(dg.AssetKey(["orders", "importance_scores"]))
    # Day 1's rows with a label: gold, or a vote of one of the stub LFs (score > 0.7 or < 0.3).
    day = day_of_scores(DAYS[0])
    labeled = day["label"].notna() | (day["score"] > 0.7) | (day["score"] < 0.3)
    assert scores.asset_materialization.metadata["training_rows"].value == int(labeled.sum())


def test_dg_check_defs_names_a_wrong_field_with_its_line(pipeline, project):
    defs_yaml, _ = pipeline
    good = defs_yaml.read_text()
    try:
        lines = good.splitlines()
        at = next(i for i, line in enumerate(lines) if line.strip().startswith("k:"))
        lines[at] = lines[at].replace("k:", "neighbours:")
        defs_yaml.write_text("\n".join(lines) + "\n")
        done = project.run("dg check defs")
        assert done.returncode == 1
        assert f"defs.yaml:{at + 1} " in done.stdout
        assert "attributes.importance.neighbours" in done.stdout
        assert "'neighbours' was unexpected" in done.stdout
        assert (
            "'neighbours' is not one of ['k', 'group', 'review_rows', 'shards', 'review_gold']" in done.stdout
        )
    finally:
        defs_yaml.write_text(good)


def test_dg_check_defs_refuses_bad_yaml_naming_the_line(pipeline, project):
    defs_yaml, _ = pipeline
    good = defs_yaml.read_text()
    try:
        defs_yaml.write_text(good.replace("  source:\n", "  source: [\n", 1))
        done = project.run("dg check defs")
        assert done.returncode == 1
        line = good.splitlines().index("  source:") + 1
        assert f'defs.yaml", line {line}' in done.stdout + done.stderr
    finally:
        defs_yaml.write_text(good)


def test_dg_check_defs_at_the_repository_root_checks_the_demo_yaml_and_loads_the_demo(project):
    env = {**project.env, "PYTHONPATH": project.env["PYTHONPATH"].replace(str(project.root / "src"), "")}
    done = subprocess.run(
        [str(BIN / "dg"), "check", "defs"], cwd=PROJECT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "All component YAML validated successfully." in done.stdout
    assert "All definitions loaded successfully." in done.stdout


def test_dg_dev_serves_the_pipeline_in_the_ui_on_127_0_0_1(pipeline, project):
    """The README's last step: `dg dev` starts the UI (webserver and daemon) on 127.0.0.1, and the
    UI's GraphQL lists the scaffolded pipeline's assets with their checks."""
    import json
    import signal
    import urllib.request

    from jobs.live_instance import free_port, wait_for

    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "dg"), "dev", "--port", str(port)],
        cwd=project.root,
        env=project.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # dg dev starts the webserver and the daemon: stop them together
    )
    query = (
        "{ assetNodes { assetKey { path } assetChecksOrError { ... on AssetChecks { checks { name } } } } }"
    )

    def served() -> dict | None:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/graphql",
            data=json.dumps({"query": query}).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return json.loads(response.read())
        except OSError:
            assert process.poll() is None, (
                f"dg dev exited with {process.returncode}: {process.stderr.read()[-3000:]}"
            )
            return None

    try:
        answer = wait_for("dg dev to serve the UI on 127.0.0.1", served, timeout=240, every=2)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
    nodes = answer["data"]["assetNodes"]
    keys = {"/".join(n["assetKey"]["path"]) for n in nodes}
    assert {f"orders/{a}" for a in ASSETS} <= keys
    checks = {c["name"] for n in nodes for c in (n["assetChecksOrError"].get("checks") or [])}
    assert "columns_match_schema" in checks
