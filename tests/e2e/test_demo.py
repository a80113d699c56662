"""The demo command end to end on a temp instance (run in the background lane of tests/conftest.py):
every injected fault is caught by name."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import dagster as dg

from tests.e2e.test_no_human_access import distinctive_values, everything_shown, leaks

PROJECT = Path(__file__).resolve().parents[2]


def test_demo_catches_each_injected_fault_labels_the_rest_and_trains_two_versions(demo_run):
    out, data, env = demo_run.stdout, demo_run.data, demo_run.env
    blocked = "2013-02-08, 2013-02-09, 2013-02-12, 2013-02-18, 2013-03-02, 2013-03-06, 2013-03-08"
    assert (
        "42 ingested partitions of flights: 35 validated, 7 blocked (failed in the UI's partition bar): "
        + blocked
        in out
    )
    assert not (data / "lake" / "flights" / "validated_data" / "2013-02-12.parquet").exists()
    assert "column `dep_time` is missing; the file has `dep_time_local`" in out
    assert "`distance` has 948 values that are not integers, e.g. '1576 mi'" in out
    assert "feature `carrier` shifted: `EV` is now the most frequent value" in out
    assert "`dep_time` has 320 nulls" in out
    assert "'ZZ' (row 3)" in out
    assert "runs that failed with an error" not in out
    assert (data / "lake" / "flights" / "quarantined_rows" / "2013-02-18.parquet").exists()
    # Every partition that passed validation is labeled; blocked ones are not.
    assert "35 labeled partitions" in out
    lake = data / "lake" / "flights" / "labeled_set"
    assert not (lake / "2013-02-12.parquet").exists()
    overall = next(line for line in out.splitlines() if line.startswith("all "))
    label_model, majority_vote = (float(x) for x in overall.split()[-2:])
    assert label_model > 0.85 and majority_vote > 0.85
    # Two retrains: version 1 becomes champion, version 2 is gated against it.
    assert "models:/flights_model/1: trained on" in out
    assert "no champion yet: the first model becomes champion" in out
    assert "models:/flights_model/2: trained on" in out
    assert "vs champion" in out
    # Drift alerts of the second round name the feature's rank in model importance.
    assert "it ranks 1st in model importance" in out
    assert (data / "mlflow" / "mlflow.db").exists()
    # Importance scores of the latest model's training rows, with the head of the review queue.
    assert "importance scores of the models:/flights_model/2 training rows" in out
    assert "| review | partition | carrier | flight | origin | sched_dep_time |" in out
    assert "review queue, ranked by the probability that each label is wrong, from the signals" in out
    assert (data / "lake" / "flights" / "importance_scores.parquet").exists()
    every_run_names_its_trigger(demo_run.home)
    readme_lineage_commands_run_on_the_demo(data, env)
    readme_importance_columns_exist(data / "lake" / "flights" / "importance_scores.parquet")
    what_if_runs_on_the_demo(env)


def every_run_names_its_trigger(home: Path) -> None:
    """No run of the demo reads "Manually launched" in the UI: the landing sensor's runs carry its
    name and the file that landed, automation's the tags the UI reads for it and the reason."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
    assert runs
    for run in runs:
        tags = run.tags
        if run.job_name in ("flights_ingest", "flights_ingest_and_label"):
            assert tags["dagster/sensor_name"] == "flights_landing_sensor"
            assert tags["dcai/trigger"] == f"file {tags['dcai/file']} landed"
        else:
            assert tags["dagster/sensor_name"] == "flights_automation", run.job_name
            assert tags["dagster/from_automation_condition"] == "true"
            assert re.fullmatch(
                r"partitions? .+ changed|label model refitted|model retrained", tags["dcai/trigger"]
            )
    # Round 2's files land after the label model exists: each is labeled in its ingest run.
    assert sum(r.job_name == "flights_ingest_and_label" for r in runs) == 7


def readme_lineage_commands_run_on_the_demo(data: Path, env: dict) -> None:
    """The README's `dcai-assets lineage` block, with its `.data` pointed at this run's data."""
    from tests.test_readme import shell_commands

    commands = [c for c in shell_commands() if c.startswith("dcai-assets lineage")]
    assert len(commands) >= 2
    exe = Path(sys.executable).with_name("dcai-assets")
    for command in commands:
        args = [a.replace("sqlite:///.data/", f"sqlite:///{data}/") for a in shlex.split(command)[1:]]
        if "--tracking-uri" not in args:
            args += ["--tracking-uri", f"sqlite:///{data}/mlflow/mlflow.db"]
        done = subprocess.run([str(exe), *args], cwd=PROJECT, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"README command `{command}`: {done.stdout}{done.stderr}"
        assert done.stdout.strip(), f"README command `{command}` printed nothing"


def what_if_runs_on_the_demo(env: dict) -> None:
    """`dcai-assets what-if` on the demo's own model and scores (real flights, not synthetic rows):
    before and after, the random baseline from the same run, the paired test, the MLflow run."""
    exe = Path(sys.executable).with_name("dcai-assets")
    args = [
        str(exe),
        "what-if",
        "jobs.definitions",
        "flights",
        "--fractions",
        "0.05",
        "--random-repeats",
        "2",
    ]
    done = subprocess.run(args, cwd=PROJECT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "what-if of models:/flights_model/2" in out
    assert "random baseline: 2 draws of as many rows per step" in out
    row = next(line for line in out.splitlines() if line.startswith("| ") and "| accuracy |" in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    removed, _, before, after, change, random, fixed_broken, verdict = cells[:8]
    assert removed.endswith("(5.0%)")
    assert abs(float(after) - float(before) - float(change)) < 1e-3
    assert "±" in random and " / " in fixed_broken
    assert "random removals" in verdict and "McNemar p = " in verdict
    assert "nothing registered, no alias moved." in out


def readme_importance_columns_exist(path: Path) -> None:
    """Every backticked column the README's asset table lists for importance scores exists."""
    import pandas as pd

    from tests.test_readme import README

    row = next(line for line in README.splitlines() if line.startswith("| `<name>/importance_scores`"))
    described = row.split("; metadata:")[0]
    named = [n for n in re.findall(r"`([a-z_]+)`", described)]
    columns = set(pd.read_parquet(path).columns)
    assert {"importance", "review_rank", "label_source"} <= set(named)
    assert not set(named) - columns, f"README names columns importance_scores lacks: {set(named) - columns}"
    assert any(c.startswith("lf__") for c in columns)


def test_demo_definitions_load_with_every_asset_and_check():
    from jobs.definitions import defs

    repo = defs.get_repository_def()
    keys = {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()}
    assert keys == {
        "flights/raw_data",
        "flights/validated_data",
        "flights/quarantined_rows",
        "flights/label_model",
        "flights/labeled_set",
        "flights/trained_model",
        "flights/importance_scores",
        "flights/what_if",
    }
    checks = {(k.asset_key.to_user_string(), k.name) for k in repo.asset_graph.asset_check_keys}
    health = {"duplicates", "outliers", "label_balance", "weak_segments", "label_issues"}
    assert {name for key, name in checks if key == "flights/importance_scores"} == health
    assert len(checks) == 14  # the validation and labeling checks, and the five health checks
    assert defs.resolve_sensor_def("flights_landing_sensor") is not None
    automation = defs.resolve_sensor_def("flights_automation")
    assert automation.default_status == dg.DefaultSensorStatus.RUNNING
    conditions = {
        k.path[-1]: repo.asset_graph.get(k).automation_condition
        for k in repo.asset_graph.get_all_asset_keys()
    }
    assert all(conditions[name] is not None for name in ("label_model", "labeled_set", "trained_model"))


def test_the_leak_search_finds_raw_values_in_an_ordinary_demo_run(demo_run):
    """The control of test_no_human_access.py: the same search on the ordinary demo finds values."""
    values, key = distinctive_values(demo_run.data / "landing" / "flights")
    found = leaks(everything_shown(demo_run), values, key)
    # Previews of raw data and quarantined rows, examples in findings, the review queue.
    assert any(where.endswith("events") for where in found), found.keys()
    assert any(re.search(r"N\d", " ".join(hits)) for hits in found.values())  # a tail number
    assert any(key.search(" ".join(hits)) for hits in found.values())  # a row's key
