"""The demo running for real: the Dagster daemon and webserver on a fresh instance, bound to
loopback, with its own data directory. Used by the day-in-the-life test and the latency
benchmark; ``python -m jobs.live_instance`` starts one and waits (Ctrl-C stops it cleanly)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

PROJECT_DIR = Path(__file__).resolve().parent.parent
REPOSITORY = {"repositoryLocationName": "dcai_demo", "repositoryName": "__repository__"}
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, every: float = 0.5) -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout`` seconds, naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f} s for {what}")
        time.sleep(every)


class LiveInstance:
    """``dagster-daemon`` and ``dagster-webserver`` for the demo's code location on an instance
    under ``root`` (DAGSTER_HOME ``root/home``, data ``root/data``); the webserver listens on
    127.0.0.1 only. Use as a context manager: both processes stop on exit.

    ``dagster_yaml`` is the instance's configuration (default: the demo's SQLite instance) and
    ``env`` extra environment for both processes, e.g. ``DCAI_ENV=production`` and its URLs.
    ``workspace`` (its code location ``location``) and ``sensors`` (waited for until each has
    ticked once) default to the demo's."""

    def __init__(
        self,
        root: Path,
        port: int | None = None,
        *,
        dagster_yaml: Path | None = None,
        env: dict[str, str] | None = None,
        workspace: Path | None = None,
        sensors: tuple[str, ...] = ("flights_landing_sensor", "flights_automation"),
        location: str = REPOSITORY["repositoryLocationName"],
    ):
        self.repository = {**REPOSITORY, "repositoryLocationName": location}
        self.workspace = workspace or PROJECT_DIR / "dagster_workspace.yaml"
        self.sensors = sensors
        self.root = Path(root)
        self.dagster_yaml = dagster_yaml or PROJECT_DIR / "resources" / "dagster.yaml"
        self.extra_env = dict(env or {})
        self.home = self.root / "home"
        self.data = self.root / "data"
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.processes: list[subprocess.Popen] = []

    @property
    def landing(self) -> Path:
        return self.data / "landing" / "flights"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DCAI_", "MLFLOW_TRACKING"))}
        env.update(
            DAGSTER_HOME=str(self.home),
            DCAI_DATA_DIR=str(self.data),
            MLFLOW_DISABLE_TELEMETRY="true",
            DO_NOT_TRACK="true",
            GX_ANALYTICS_ENABLED="false",
        )
        env.update(self.extra_env)
        return env

    def start(self) -> LiveInstance:
        self.home.mkdir(parents=True, exist_ok=True)
        self.landing.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.dagster_yaml, self.home / "dagster.yaml")
        self.instance().dispose()  # create the storage once, before two processes race to do it
        bin_dir = Path(sys.executable).parent
        workspace = str(self.workspace)
        logs = self.root / "logs"
        logs.mkdir(exist_ok=True)
        commands = {
            "daemon": [str(bin_dir / "dagster-daemon"), "run", "-w", workspace],
            "webserver": [
                str(bin_dir / "dagster-webserver"),
                *("-w", workspace, "-h", "127.0.0.1", "-p", str(self.port)),
            ],
        }
        for name, command in commands.items():
            log = open(logs / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
            self.processes.append(
                subprocess.Popen(
                    command,
                    cwd=PROJECT_DIR,
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        try:
            wait_for("the webserver to answer", self._serving, timeout=120)
            # Both sensors have looked once before anything lands: the automation sensor's first
            # evaluation treats what it finds as already handled.
            sensors = () if self.env.get("DCAI_SENSORS") == "stopped" else self.sensors
            for sensor in sensors:
                wait_for(f"a first tick of {sensor}", lambda s=sensor: self.sensor_ticks(s), timeout=60)
        except BaseException:
            self.stop()
            raise
        return self

    def _serving(self) -> bool:
        for process in self.processes:
            if process.poll() is not None:
                raise RuntimeError(
                    f"{process.args[0]} exited with {process.returncode}; see {self.root / 'logs'}"
                )
        try:
            with urllib.request.urlopen(f"{self.url}/server_info", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def graphql(self, query: str, variables: dict | None = None) -> dict[str, Any]:
        """Post a GraphQL query to the webserver; its ``data``, or an error with the server's message."""
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            payload = json.loads(response.read())
        if payload.get("errors"):
            raise RuntimeError(f"GraphQL errors: {payload['errors']}")
        return payload["data"]

    def sensor_ticks(self, sensor: str) -> int:
        """How many times ``sensor`` has ticked (asked through GraphQL, as the UI does)."""
        data = self.graphql(
            """query($selector: SensorSelector!) { sensorOrError(sensorSelector: $selector) {
                 __typename ... on Sensor { sensorState { ticks(limit: 5) { status } } } } }""",
            {"selector": {**self.repository, "sensorName": sensor}},
        )["sensorOrError"]
        return len(data["sensorState"]["ticks"]) if data["__typename"] == "Sensor" else 0

    def instance(self):
        """A handle on the live instance's storage, for reading runs and materializations."""
        import dagster as dg

        saved = {k: os.environ.get(k) for k in self.extra_env}
        os.environ.update(self.extra_env)  # e.g. DAGSTER_POSTGRES_URL, read as the config loads
        try:
            return dg.DagsterInstance.from_config(str(self.home))
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def stop(self) -> None:
        """SIGTERM, as a supervisor would; SIGKILL after 30 s."""
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes.clear()

    def __enter__(self) -> LiveInstance:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main() -> int:
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, LiveInstance(Path(tmp), port=args.port) as live:
        print(f"Dagster UI at {live.url}; drop files into {live.landing} (Ctrl-C stops)")
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main())
