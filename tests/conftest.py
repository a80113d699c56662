"""Shared fixtures: a small synthetic dataset (not the demo's), its schema, and resources on tmp dirs;
and the examples' end-to-end commands, run in a background lane beside the unit tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dcai_assets import ArtifactStore, DatasetSpec, LandingDirectory, MlflowTracking, ParquetIOManager
from dcai_assets.core.schema_inference import infer_schema
from dcai_assets.spec import DailyPartitions


def sensor_readings(day: str, rows: int = 200, seed: int = 0) -> pd.DataFrame:
    """A day of readings from a fleet of sensors: the test dataset."""
    rng = np.random.default_rng(seed + int(day.replace("-", "")))
    return pd.DataFrame(
        {
            "reading_id": [f"{day}-{i}" for i in range(rows)],
            "site": rng.choice(["north", "south", "east", "west"], size=rows, p=[0.4, 0.3, 0.2, 0.1]),
            "temperature": rng.normal(20.0, 3.0, size=rows).round(2),
            "humidity": rng.uniform(20, 90, size=rows).round(1),
            "count": rng.integers(0, 50, size=rows),
        }
    )


REFERENCE_DAYS = [f"2024-01-0{i}" for i in range(1, 8)]


def readings_spec_in(root: Path) -> DatasetSpec:
    """A daily dataset landing as CSV files in ``root/landing``, with its schema inferred from a
    week of data (``root/schemas``)."""
    landing = root / "landing"
    landing.mkdir(parents=True, exist_ok=True)
    schema_path = root / "schemas" / "readings.yaml"
    frames = {d: sensor_readings(d) for d in REFERENCE_DAYS}
    infer_schema(frames, key=["reading_id"]).save(schema_path)
    return DatasetSpec(
        name="readings",
        source=LandingDirectory(path=landing),
        partitioning=DailyPartitions(start="2024-01-01", end="2024-03-01"),
        schema_path=schema_path,
        key="reading_id",
    )


def resources_in(root: Path) -> dict:
    """The lake and the artifact store under ``root``."""
    return {
        "io_manager": ParquetIOManager(base_dir=str(root / "lake")),
        "artifacts": ArtifactStore(base_dir=str(root / "artifacts")),
    }


def tracking_in(root: Path, empty_db: Path) -> MlflowTracking:
    """Real MLflow tracking and registry on a SQLite database of its own under ``root``: a copy
    of ``empty_db`` (see ``empty_mlflow_db``)."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(empty_db, root / "mlflow.db")
    return MlflowTracking(
        tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
        artifact_location=str(root / "mlartifacts"),
        experiment_name="test",
    )


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    path = tmp_path / "landing"
    path.mkdir()
    return path


@pytest.fixture
def readings_spec(tmp_path: Path, landing: Path) -> DatasetSpec:
    """A daily dataset landing as CSV files in ``landing``, with its schema inferred from a week of data."""
    return readings_spec_in(tmp_path)


@pytest.fixture
def resources(tmp_path: Path) -> dict:
    return resources_in(tmp_path)


@pytest.fixture(scope="session")
def empty_mlflow_db(tmp_path_factory) -> Path:
    """An MLflow SQLite database with its schema created, once per session: creating one runs
    MLflow's schema migrations (2-5 s, mostly SQLite commits), which each test would pay."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def tracking(tmp_path: Path, empty_mlflow_db: Path) -> MlflowTracking:
    """Real MLflow tracking and registry on a temporary SQLite database of its own."""
    return tracking_in(tmp_path, empty_mlflow_db)


# --- end-to-end commands in a background lane --------------------------------------------------

PROJECT = Path(__file__).resolve().parents[1]


@dataclass
class CommandRun:
    """What an example's command printed, and its Dagster home, data directory and environment."""

    stdout: str
    home: Path
    data: Path
    env: dict[str, str]


MLFLOW_LOCATIONS = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@dataclass
class ExampleCommand:
    """``python -m module *args`` on a fresh Dagster home (the demo's dagster.yaml) and data
    directory, ``timeout`` seconds at most; a CommandRun if it exits with 0."""

    module: str
    args: tuple[str, ...] = ()
    timeout: float = 600
    env: tuple[tuple[str, str], ...] = ()  # extra environment variables
    done: threading.Event = field(default_factory=threading.Event)
    outcome: CommandRun | str | None = None
    process: subprocess.Popen | None = None
    started: bool = False

    def run(self, root: Path) -> None:
        home, data = root / "dagster_home", root / "data"
        home.mkdir(parents=True)
        shutil.copy(PROJECT / "resources" / "dagster.yaml", home / "dagster.yaml")
        # The example's own MLflow (SQLite under its data directory), whatever an earlier test of
        # this process left in the environment.
        inherited = {k: v for k, v in os.environ.items() if k not in MLFLOW_LOCATIONS}
        env = {**inherited, "DAGSTER_HOME": str(home), "DCAI_DATA_DIR": str(data), **dict(self.env)}
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module, *self.args],
                cwd=PROJECT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                stdout, stderr = self.process.communicate(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                stdout, stderr = self.process.communicate()
                self.outcome = f"no exit after {self.timeout:.0f} s:\n{stdout[-3000:]}{stderr[-3000:]}"
                return
            if self.process.returncode != 0:
                self.outcome = f"exit {self.process.returncode}:\n{stdout[-3000:]}{stderr[-3000:]}"
            else:
                self.outcome = CommandRun(stdout, home, data, env)
        except BaseException as e:  # reported by the test that reads the outcome
            self.outcome = f"{type(e).__name__}: {e}"
        finally:
            self.done.set()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def result(self) -> CommandRun:
        self.done.wait()
        assert isinstance(self.outcome, CommandRun), f"python -m {self.module}: {self.outcome}"
        return self.outcome


# Each is a single process busy on one core for one to two minutes, while pytest itself uses
# one core: they run one after another in a background thread, started as soon as the tests
# that read them are collected (in the order those tests run), so they overlap the unit tests.
EXAMPLE_COMMANDS = {
    "airport_weather_run": ExampleCommand("jobs.airport_weather_demo", ("2013-04-01", "2013-06-01")),
    "demo_run": ExampleCommand("jobs.demo"),
    "demo_private_run": ExampleCommand("jobs.demo", env=(("DCAI_NO_HUMAN_ACCESS", "1"),)),
    "seattle_weather_run": ExampleCommand("jobs.seattle_weather_demo", ("2012-01-01", "2012-06-01")),
}
_LANE_ROOTS: list[Path] = []
_LANE_STOP = threading.Event()


def _lane_root() -> Path:
    _LANE_ROOTS.append(Path(tempfile.mkdtemp(prefix="dcai-e2e-")))
    return _LANE_ROOTS[-1]


def _run_lane(root: Path, names: list[str]) -> None:
    for name in names:
        if _LANE_STOP.is_set():
            EXAMPLE_COMMANDS[name].outcome = "not run: the session was ending"
            EXAMPLE_COMMANDS[name].done.set()
        else:
            EXAMPLE_COMMANDS[name].run(root / name)


# The full lane's modules that take longest, longest first. pytest-xdist (`--dist loadfile`) hands
# each module to one worker, in collection order with `--no-loadscope-reorder` (the Makefile's
# lanes); left in the directory's order, a module of minutes started near the end kept one worker
# busy while the other had nothing left to do. Modules not listed follow in their usual order.
LONGEST_FIRST = [
    "tests/reliability/test_live_demo.py",  # one live demo bootstrapped, then every kill and fault
    "tests/production/test_production_pipeline.py",  # Postgres, an MLflow server, the demo twice
    "tests/e2e/test_day_in_the_life.py",  # a live instance through eight days
    "tests/reliability/test_backfill_year.py",
    "tests/components/test_dg_workflow.py",
    "tests/e2e/test_demo.py",  # python -m jobs.demo
    "tests/reliability/test_file_flood.py",
    "tests/e2e/test_no_human_access.py",  # python -m jobs.demo again, no human access
    "tests/test_readme.py",
]


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test that reads an example's command is in the full lane (marker ``slow``); the modules
    in ``LONGEST_FIRST`` run first, in its order (a stable sort: each module's tests keep theirs)."""
    for item in items:
        if EXAMPLE_COMMANDS.keys() & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    rank = {module: i for i, module in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


def pytest_collection_finish(session: pytest.Session) -> None:
    # Not in a pytest-xdist worker (each collects every test): there a fixture runs its command.
    if session.config.option.collectonly or hasattr(session.config, "workerinput"):
        return
    wanted: list[str] = []
    for item in session.items:
        for name in getattr(item, "fixturenames", ()):
            if name in EXAMPLE_COMMANDS and name not in wanted:
                wanted.append(name)
                EXAMPLE_COMMANDS[name].started = True
    if wanted:
        threading.Thread(target=_run_lane, args=(_lane_root(), wanted), daemon=True).start()


def pytest_sessionfinish(session: pytest.Session) -> None:
    _LANE_STOP.set()
    for command in EXAMPLE_COMMANDS.values():
        command.stop()
    for root in _LANE_ROOTS:
        shutil.rmtree(root, ignore_errors=True)


def _example(name: str) -> CommandRun:
    command = EXAMPLE_COMMANDS[name]
    if not command.started:  # not in the lane: run it now
        command.started = True
        command.run(_lane_root() / name)
    return command.result()


@pytest.fixture(scope="session")
def airport_weather_run() -> CommandRun:
    """``python -m jobs.airport_weather_demo 2013-04-01 2013-06-01`` (three months)."""
    return _example("airport_weather_run")


@pytest.fixture(scope="session")
def demo_run() -> CommandRun:
    """``python -m jobs.demo``: the demo's two rounds, 42 days."""
    return _example("demo_run")


@pytest.fixture(scope="session")
def demo_private_run() -> CommandRun:
    """``python -m jobs.demo`` with the flights dataset in no-human-access mode
    (``DCAI_NO_HUMAN_ACCESS=1``)."""
    return _example("demo_private_run")


@pytest.fixture(scope="session")
def seattle_weather_run() -> CommandRun:
    """``python -m jobs.seattle_weather_demo 2012-01-01 2012-06-01`` (six months)."""
    return _example("seattle_weather_run")


# Figures the reliability scenarios print (lines starting "RELIABILITY:"), gathered from the
# captured output of every test phase, also from pytest-xdist workers, and printed together at the
# end of the run: `make reliability` shows them without `-s`.
_FIGURES: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for name, content in report.sections:
        if "stdout" in name:
            _FIGURES.extend(line for line in content.splitlines() if line.startswith("RELIABILITY:"))


def pytest_terminal_summary(terminalreporter) -> None:
    if _FIGURES:
        terminalreporter.section("reliability figures")
        for line in dict.fromkeys(_FIGURES):
            terminalreporter.write_line(line)
