"""Real servers for the production tests, on loopback and in temporary directories: a PostgreSQL
cluster from Debian's package (scripts/install-postgres.sh installs it) and an MLflow tracking
server whose backend store is a database on it. Both stop, with their children, on exit."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Self

from jobs.live_instance import free_port, wait_for


def postgres_bin() -> Path:
    """The newest PostgreSQL server binaries Debian installed (``/usr/lib/postgresql/<v>/bin``)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    if not found:
        raise RuntimeError(
            "no PostgreSQL server found in /usr/lib/postgresql: run scripts/install-postgres.sh"
        )
    return found[-1].parent


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


class _Server:
    """A server used as a context manager: started on enter, stopped on exit or a failed start."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


class PostgresServer(_Server):
    """A throwaway PostgreSQL cluster listening on 127.0.0.1 only, superuser ``dcai`` with trust
    authentication (loopback, temporary data). As root, it runs as the ``postgres`` system user,
    since PostgreSQL refuses to run as root."""

    user = "dcai"
    host = "127.0.0.1"

    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="dcai-postgres-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.bin = postgres_bin()

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*prefix, *command], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(
                f"{Path(command[0]).name} failed ({done.returncode}): "
                f"{done.stderr[-1500:]}\n{_tail(self.log)}"
            )

    def start(self) -> PostgresServer:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", self.user, "-A", "trust", "-E", "UTF8"
        )
        options = (
            f"-c listen_addresses={self.host} -p {self.port} -k {self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start"
        )
        wait_for("PostgreSQL to accept connections", self._accepts, timeout=60)
        return self

    def _accepts(self) -> bool:
        import psycopg2

        try:
            psycopg2.connect(self._dsn("postgres"), connect_timeout=2).close()
            return True
        except psycopg2.OperationalError:
            return False

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of ``database``, naming the psycopg2 driver: SQLAlchemy 2.1 would
        pick psycopg 3 for a bare ``postgresql://``, on which Dagster's queries fail."""
        return f"postgresql+psycopg2://{self.user}@{self.host}:{self.port}/{database}"

    def _dsn(self, database: str) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database; its SQLAlchemy URL."""
        import psycopg2

        connection = psycopg2.connect(self._dsn("postgres"))
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()
        return self.url(name)

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


class MlflowServer(_Server):
    """``mlflow server`` on 127.0.0.1 with ``backend_store_uri`` as its backend store; clients log
    artifacts through it into ``artifacts_destination``."""

    def __init__(self, backend_store_uri: str, artifacts_destination: Path) -> None:
        self.backend_store_uri = backend_store_uri
        self.artifacts = Path(artifacts_destination)
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.log = self.artifacts.parent / f"mlflow-server-{self.port}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> MlflowServer:
        self.artifacts.mkdir(parents=True, exist_ok=True)
        command = [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            *("--backend-store-uri", self.backend_store_uri),
            *("--artifacts-destination", str(self.artifacts)),
            *("--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"),
        ]
        env = {
            **os.environ,
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "true",
            # No job runner: its huey consumers (each a Python process importing mlflow) serve
            # GenAI jobs the tests never submit, and compete with the server as it starts.
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        }
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_for("the MLflow server to answer /health", self._healthy, timeout=180)
        return self

    def _healthy(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {self.process.returncode}:\n{_tail(self.log)}")
        try:
            with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)  # the server and its workers
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        time.sleep(0.2)
