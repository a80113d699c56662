"""Shared pieces of the kill -9 and fault scenarios: the demo on a live instance with the daemon
and an MLflow tracking server, finding and killing the process that runs a step, and the
invariants that must hold after any crash once the pipeline has recovered."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest

from dcai_assets.core.registry_debris import FINAL_VERDICTS
from jobs.live_instance import PROJECT_DIR, LiveInstance, wait_for
from jobs.simulator import FAULTS, PARQUET_DAYS, simulate

MODEL = "flights_model"
POOL = "dcai_model_registry"
# Seconds a crashed or faulted pipeline gets to heal itself: a retry waits for the daemon's run
# monitoring and queue (seconds each), and a busy 2-core CI machine runs a step 10x slower.
RECOVERY_TIMEOUT = 300
KEY = {
    name: dg.AssetKey(["flights", name])
    for name in (
        "raw_data",
        "validated_data",
        "quarantined_rows",
        "label_model",
        "labeled_set",
        "trained_model",
        "importance_scores",
    )
}
UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
# Days of the simulator that pass every blocking check: its injected faults are skipped, and the
# blizzard of Feb 8-9 and its tail on Feb 11 (51%, 58% and 8% of departure times missing).
GOOD_DAYS = [
    d.strftime("%Y-%m-%d")
    for d in pd.date_range("2013-02-01", "2013-03-31")
    if d.strftime("%Y-%m-%d") not in {*FAULTS, *PARQUET_DAYS, "2013-02-08", "2013-02-09", "2013-02-11"}
]


@dataclass
class Pipeline:
    """The demo running under the daemon, its lake and its MLflow tracking URI."""

    live: LiveInstance
    lake: Path
    tracking_uri: str
    landed: list[str] = field(default_factory=list)
    mlflow: Any = None  # the tracking server (tests.production.servers.MlflowServer)
    lake_is_small_disk: bool = False
    champion_version: str | None = None
    stuck: str | None = None  # set when a scenario left the pipeline stuck: later ones cannot run
    label_model_kill: tuple[str, float | None, str | None] | None = None  # run, seconds, error

    @property
    def instance(self) -> dg.DagsterInstance:
        if not hasattr(self, "_instance"):
            self._instance = self.live.instance()
        return self._instance

    def land(self, days: int = 1) -> list[str]:
        """Drop the next ``days`` passing days into the landing directory."""
        new = GOOD_DAYS[len(self.landed) : len(self.landed) + days]
        for day in new:
            simulate(self.live.landing, day, 1)
        self.landed += new
        return new

    def materializations(self, name: str) -> int:
        return len(self.instance.fetch_materializations(KEY[name], limit=1000).records)

    def unfinished_runs(self) -> list[dg.DagsterRun]:
        return list(self.instance.get_runs(filters=dg.RunsFilter(statuses=UNFINISHED)))


def wait_for_step_start(pipeline: Pipeline, step: str, timeout: float, after: float = 0.0) -> tuple[str, int]:
    """The run id and process id of the first step named ``step`` (an asset's name: the step key
    ends with it) to start after time ``after``; polled from the event log every 50 ms."""
    instance = pipeline.instance

    def started() -> tuple[str, int] | None:
        for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
            records = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.STEP_START).records
            for record in records:
                event = record.event_log_entry
                if event.timestamp >= after and event.dagster_event.step_key.endswith(step):
                    return run.run_id, event.dagster_event.pid
        return None

    return wait_for(f"a step {step!r} to start", started, timeout, every=0.05)


def kill9(pid: int) -> None:
    """SIGKILL, as the kernel's OOM killer or a pulled plug would."""
    os.kill(pid, signal.SIGKILL)


def children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (read from /proc: no psutil needed)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the command name in parentheses (which may hold spaces): state, ppid, ...
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if ppid == pid:
            found.append(int(entry.name))
    return found


def command_line(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def code_server_pid(daemon_pid: int) -> int:
    """The gRPC code server the daemon started for the demo's code location (it launches runs)."""
    return wait_for(
        "the daemon's code server",
        lambda: next((p for p in children(daemon_pid) if " api grpc" in command_line(p)), None),
        timeout=60,
    )


def process(live: LiveInstance, name: str):
    """The daemon's or the webserver's Popen."""
    return next(p for p in live.processes if Path(p.args[0]).name == f"dagster-{name}")


def restart_daemon(live: LiveInstance) -> None:
    """Start ``dagster-daemon`` again with the same command, as a supervisor (systemd, k8s) would."""
    import subprocess

    old = process(live, "daemon")
    old.wait()
    log = open(live.root / "logs" / "daemon.log", "ab")  # noqa: SIM115 - closed with the process
    new = subprocess.Popen(
        old.args, cwd=PROJECT_DIR, env=live.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    live.processes[live.processes.index(old)] = new


@contextmanager
def mlflow_tracking_uri(uri: str) -> Iterator[None]:
    """``mlflow.set_tracking_uri`` for a block. It also writes ``MLFLOW_TRACKING_URI`` into this
    process's environment, which every later subprocess of the test session would inherit (an
    example command then logs to this test's MLflow server): both are restored."""
    import mlflow

    before = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(None)  # clears MLflow's global and the environment variable
        if before is not None:
            os.environ["MLFLOW_TRACKING_URI"] = before


def invariant_violations(pipeline: Pipeline) -> list[str]:
    """What an operator would find wrong after a crash once everything has settled; empty if
    nothing. Checked: every landed row is either valid or quarantined; every visible lake file
    reads; the champion loads from MLflow; no pool slot is held or awaited; every registered
    version carries a gate verdict; no MLflow run is left RUNNING; no Dagster run is unfinished."""
    import mlflow
    from mlflow import MlflowClient

    problems = []
    lake = pipeline.lake / "flights"
    for day in pipeline.landed:
        rows_in = len(pd.read_csv(pipeline.live.landing / f"{day}.csv"))
        stored = {name: lake / name / f"{day}.parquet" for name in ("validated_data", "quarantined_rows")}
        missing = [str(p) for p in stored.values() if not p.exists()]
        if missing:
            problems.append(f"partition {day}: {rows_in} rows landed but {missing} not stored")
            continue
        valid, quarantined = (len(pd.read_parquet(p)) for p in stored.values())
        if rows_in != valid + quarantined:
            problems.append(
                f"partition {day}: rows_in {rows_in} != valid {valid} + quarantined {quarantined}"
            )
    for path in sorted(pipeline.lake.rglob("*")):
        if path.is_dir() or path.name.startswith("."):
            continue
        try:
            if path.suffix == ".parquet":
                pd.read_parquet(path)
            elif path.suffix == ".json":
                json.loads(path.read_text())
        except Exception as e:
            problems.append(f"visible partial file {path}: {type(e).__name__}: {e}")
    client = MlflowClient(pipeline.tracking_uri)
    try:
        champion = client.get_model_version_by_alias(MODEL, "champion")
        with mlflow_tracking_uri(pipeline.tracking_uri):
            mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
    except Exception as e:
        problems.append(f"champion of {MODEL} not loadable: {type(e).__name__}: {str(e)[:300]}")
        champion = None
    for version in client.search_model_versions(f"name='{MODEL}'"):
        if version.tags.get("dcai.gate") not in FINAL_VERDICTS:  # abandoned and lost_race are verdicts
            problems.append(f"{MODEL} version {version.version} has no gate verdict: tags {version.tags}")
    experiment = client.get_experiment_by_name("dcai_demo")
    if experiment is not None:
        running = client.search_runs(
            [experiment.experiment_id], "attributes.status = 'RUNNING'", max_results=50
        )
        problems += [f"MLflow run {r.info.run_id} left RUNNING" for r in running]
    info = pipeline.instance.event_log_storage.get_concurrency_info(POOL)
    if info.claimed_slots or info.pending_steps:
        problems.append(
            f"pool {POOL}: slots held by {[(s.run_id, s.step_key) for s in info.claimed_slots]}, "
            f"steps waiting {[(s.run_id, s.step_key) for s in info.pending_steps]}"
        )
    problems += [f"run {r.run_id} of {r.job_name} left {r.status.value}" for r in pipeline.unfinished_runs()]
    if champion is not None and not problems:
        pipeline.champion_version = str(champion.version)
    return problems


def failure_message(pipeline: Pipeline, run_id: str) -> str:
    """The step and run failure messages of a run, with their errors, as one text."""
    texts = []
    for entry in pipeline.instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or event.event_type_value not in {"STEP_FAILURE", "RUN_FAILURE"}:
            continue
        texts.append(event.message or "")
        error = getattr(event.event_specific_data, "error", None)
        while error is not None:
            texts.append(error.message)
            error = error.cause
    return "\n".join(texts)


def step_failures(pipeline: Pipeline) -> list[str]:
    """Runs that failed in a step (not killed): their job and failure message."""
    failed = pipeline.instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
    return [
        f"run {r.run_id} of {r.job_name}: {failure_message(pipeline, r.run_id)[:500]}"
        for r in failed
        if pipeline.instance.get_records_for_run(r.run_id, of_type=dg.DagsterEventType.STEP_FAILURE).records
    ]


def wait_until_more(pipeline: Pipeline, name: str, than: int, timeout: float) -> float:
    """Wait until ``name`` has more than ``than`` materializations; the seconds it took. On a
    timeout, the error says what is stuck: unfinished runs and the registry pool's slots."""
    start = time.monotonic()
    try:
        wait_for(f"a new materialization of {name}", lambda: pipeline.materializations(name) > than, timeout)
    except TimeoutError as e:
        info = pipeline.instance.event_log_storage.get_concurrency_info(POOL)
        stuck = [f"{r.job_name} {r.run_id[:8]} {r.status.value}" for r in pipeline.unfinished_runs()]
        pipeline.stuck = f"{e} (unfinished runs {stuck})"
        raise TimeoutError(
            f"{e}; unfinished runs {stuck}; pool {POOL} slots held by "
            f"{[(s.run_id[:8], s.step_key) for s in info.claimed_slots]}"
        ) from None
    return time.monotonic() - start


def new_day_to_model_and_scores(pipeline: Pipeline) -> float:
    """Land one new day and wait until it has become a new model and new importance scores, by
    itself; the seconds it took."""
    models = pipeline.materializations("trained_model")
    scores = pipeline.materializations("importance_scores")
    start = time.monotonic()
    pipeline.land(1)
    wait_until_more(pipeline, "trained_model", models, RECOVERY_TIMEOUT)
    wait_until_more(pipeline, "importance_scores", scores, RECOVERY_TIMEOUT)
    return time.monotonic() - start


def not_stuck(pipeline: Pipeline) -> None:
    """Fail at once, saying why, if an earlier scenario left the pipeline stuck for good."""
    if pipeline.stuck:
        pytest.fail(f"not reached: the pipeline stayed stuck after {pipeline.stuck}")


def wait_settled(pipeline: Pipeline, timeout: float) -> None:
    """Wait until no run is queued or in progress."""
    wait_for("every run to finish", lambda: not pipeline.unfinished_runs(), timeout)
