"""Every code block of the README and of the docs/ pages runs: the Python blocks in order (the
README, then docs/*.md by name), as one file, on a synthetic orders table (then the pipeline they
declare is materialized end to end), and every shell command is either run here or, when it needs
what this machine lacks (Docker, Kubernetes), the files it names are checked. The lineage
commands run on the demo's output in tests/e2e/test_demo.py; the README's `sh` block of `dg`
commands in tests/components/test_dg_workflow.py."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

PROJECT = Path(__file__).resolve().parents[1]
PAGES = [PROJECT / "README.md", *sorted((PROJECT / "docs").glob("*.md"))]
# The README and the docs it links, as one text, in the order their Python blocks run.
README = "\n".join(page.read_text() for page in PAGES)
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def blocks(language: str) -> list[str]:
    return [body for lang, body in BLOCK.findall(README) if lang == language]


def shell_commands() -> list[str]:
    """One entry per command line of the README's bash blocks, comments stripped."""
    lines = []
    for body in blocks("bash"):
        for line in body.splitlines():
            command = line.split("#", 1)[0].strip()
            if command:
                lines.append(command)
    return lines


def orders_day(day: str, rows: int = 120) -> pd.DataFrame:
    """A day of a made-up shop's orders, matching the README's example."""
    rng = np.random.default_rng(int(day.replace("-", "")))
    returns = rng.poisson(1.2, rows)
    amount = rng.gamma(2.0, 30.0, rows).round(2)
    discount = rng.choice([0, 10, 20], rows, p=[0.6, 0.3, 0.1])
    returned = rng.random(rows) < 0.1 + 0.12 * returns + 0.004 * discount
    checked = np.where(rng.random(rows) < 0.2, returned.astype(int), -1)
    return pd.DataFrame(
        {
            "order_id": [f"{day}-{i}" for i in range(rows)],
            "amount": amount,
            "discount": discount,
            "country": rng.choice(["FR", "DE", "IT", "ES"], rows, p=[0.4, 0.3, 0.2, 0.1]),
            "channel": rng.choice(["web", "app"], rows),
            "customer_returns": returns,
            "returned_checked": pd.array(np.where(checked < 0, None, checked), dtype="Int64"),
        }
    )


DAYS = [f"2024-01-{d:02d}" for d in range(1, 11)]


@pytest.fixture
def walkthrough(tmp_path, monkeypatch) -> dict:
    """The README's Python blocks, run in order in a fresh directory holding ten days of orders."""
    landing = tmp_path / "landing" / "orders"
    landing.mkdir(parents=True)
    for day in DAYS:
        orders_day(day).to_csv(landing / f"{day}.csv", index=False)
    monkeypatch.chdir(tmp_path)
    source = "\n".join(blocks("python"))
    (tmp_path / "my_module.py").write_text(blocks("python")[0])
    namespace: dict = {"__name__": "readme"}
    exec(compile(source, "README.md", "exec"), namespace)
    return namespace


def test_readme_is_a_front_page_that_links_every_docs_page():
    front = (PROJECT / "README.md").read_text()
    assert len(front.splitlines()) <= 150, "the README is a front page: move sections to docs/"
    unlinked = [p.name for p in PAGES[1:] if f"](docs/{p.name})" not in front]
    assert not unlinked, f"docs pages the README does not link: {unlinked}"


def test_docs_links_to_other_pages_and_files_resolve():
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(PROJECT)} -> {target}")
    assert not broken, f"links to missing files: {broken}"


def test_every_readme_shell_command_is_known_to_this_test():
    handled = (
        *("make ", "dcai-assets schema infer", "dcai-assets lineage", "dcai-assets partitions"),
        *("dagster asset materialize", "cp deploy/", "docker compose", "helm "),
    )
    unknown = [c for c in shell_commands() if not c.startswith(handled)]
    assert not unknown, f"README commands this test neither runs nor checks: {unknown}"


def test_readme_make_targets_exist():
    makefile = (PROJECT / "Makefile").read_text()
    targets = {c.split()[1] for c in shell_commands() if c.startswith("make ")}
    targets |= set(re.findall(r"`make ([\w-]+)", README))
    assert targets >= {"demo", "test"}
    missing = [t for t in sorted(targets) if not re.search(rf"^{re.escape(t)}:", makefile, re.M)]
    assert not missing, f"README names make targets the Makefile lacks: {missing}"


def test_readme_docker_and_helm_commands_name_files_that_exist():
    # No Docker engine or Kubernetes cluster here: the stack itself is tested by
    # tests/production (real PostgreSQL and MLflow server); these check what the commands read.
    for command in shell_commands():
        if command.startswith(("cp deploy/", "docker compose", "helm ")):
            for word in shlex.split(command):
                if word.startswith("deploy/") and not word.endswith("/.env"):
                    assert (PROJECT / word).exists(), f"README command `{command}` names a missing {word}"


def test_readme_schema_command_writes_the_schema_the_spec_names(walkthrough, tmp_path):
    (command,) = [c for c in shell_commands() if c.startswith("dcai-assets schema infer")]
    exe = Path(sys.executable).with_name("dcai-assets")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(PROJECT)])}
    done = subprocess.run(
        [str(exe), *shlex.split(command)[1:]], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    schema = (tmp_path / "schemas" / "orders.yaml").read_text()
    assert "customer_returns" in schema and "returned_checked" in schema


@pytest.mark.slow  # the full lane: CLI subprocesses on a real instance
def test_readme_walkthrough_runs_end_to_end_on_a_real_instance(walkthrough, tmp_path):
    exe = Path(sys.executable).with_name("dcai-assets")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(PROJECT)])}
    subprocess.run([str(exe), "schema", "infer", "my_module:orders"], cwd=tmp_path, env=env, check=True)
    defs = walkthrough["defs"]
    assert isinstance(defs, dg.Definitions)
    with dg.instance_for_test() as instance:
        ingest = defs.resolve_job_def("orders_ingest")
        for day in DAYS:
            assert ingest.execute_in_process(instance=instance, partition_key=day).success
        assert defs.resolve_job_def("orders_fit_label_model").execute_in_process(instance=instance).success
        label = defs.resolve_job_def("orders_label")
        for day in DAYS:
            assert label.execute_in_process(instance=instance, partition_key=day).success
        assert defs.resolve_job_def("orders_train").execute_in_process(instance=instance).success
        card = instance.get_latest_materialization_event(dg.AssetKey(["orders", "trained_model"]))
        assert card is not None
    labeled = pd.read_parquet(tmp_path / "lake" / "orders" / "labeled_set" / f"{DAYS[-1]}.parquet")
    # The columns the README's table of assets names for labeled sets exist.
    named = ["lf__returns_often", "lf__small_full_price", "p__kept", "p__returned", "label"]
    for column in [*named, "label_confidence", "label_source", "lf_set_version"]:
        assert column in labeled.columns
    assert set(labeled["label_source"]) <= {"gold", "label_model", "abstain"}


@pytest.mark.slow  # the full lane: `dagster` CLI subprocesses
def test_readme_partition_commands_register_dynamic_keys_then_materialize(walkthrough, tmp_path):
    """The README's `partitions` block, run as written on the orders spec declared with
    `DynamicPartitions()` (what the block is about), against a fresh `DAGSTER_HOME`."""
    module = blocks("python")[0].replace('DailyPartitions(start="2024-01-01")', "DynamicPartitions()")
    module = module.replace("import DailyPartitions\n", "import DynamicPartitions\n")
    assert "DynamicPartitions()" in module
    (tmp_path / "my_module.py").write_text(module)
    for batch in ("batch_7", "batch_8"):
        orders_day(DAYS[0]).to_csv(tmp_path / "landing" / "orders" / f"{batch}.csv", index=False)
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(PROJECT)]),
        "DAGSTER_HOME": str(home),
    }
    commands = [
        c for c in shell_commands() if c.startswith(("dcai-assets partitions", "dagster asset materialize"))
    ]
    assert [c.split()[:3] for c in commands][-1] == ["dagster", "asset", "materialize"]
    for command in commands:
        words = shlex.split(command)
        exe = Path(sys.executable).with_name(words[0])
        done = subprocess.run(
            [str(exe), *words[1:]], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, f"README command `{command}`: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    listed = subprocess.run(
        [str(Path(sys.executable).with_name("dcai-assets")), "partitions", "list", "my_module:orders"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "batch_7" in listed and "batch_8" in listed
    assert (tmp_path / "lake" / "orders" / "raw_data" / "batch_7.parquet").exists()
