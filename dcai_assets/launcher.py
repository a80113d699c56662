"""A run launcher that keeps one run worker warm per code location.

Dagster's default launcher asks the code server to start a fresh process for every run; that
process imports Dagster and the code location, and the run's steps then import what they use
(Great Expectations, MLflow, scikit-learn, numba): seconds before any work starts, on every run.
:class:`WarmRunLauncher` starts the next run's process as soon as it hands a run over, so those
imports happen while nothing waits. Each process still executes exactly one run, as with the
default launcher.

Configure it in the instance's ``dagster.yaml``::

    run_launcher:
      module: dcai_assets.launcher
      class: WarmRunLauncher
      config:
        preload_modules:  # per code location: what its steps import, beyond the location itself
          dcai_demo: [great_expectations, mlflow, numba]

A warm worker belongs to one code server (its server id): after a code location is reloaded, the
old worker is stopped and runs use the new code. A code location with its own Python executable
is launched through the code server, as by the default launcher. Run monitoring finds a dead run
worker through :meth:`WarmRunLauncher.check_run_worker_health` (the worker's host, pid and start
time are run tags); ``terminate`` sends the worker SIGTERM, which cancels the run.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import Any

import dagster as dg
from dagster._core.launcher import CheckRunHealthResult, LaunchRunContext, WorkerStatus
from dagster._core.launcher.default_run_launcher import DefaultRunLauncher
from dagster._serdes import ConfigurableClassData, serialize_value

from dcai_assets.recovery import WorkerProcess, process_start

LAUNCHER_TAG = "dcai/launcher"


@dataclass
class _Worker:
    process: subprocess.Popen
    server_id: str | None


class WarmRunLauncher(DefaultRunLauncher):
    """Launches each run in a worker process that was started, and imported its code, before the
    run arrived (see the module's docstring)."""

    def __init__(
        self,
        inst_data: ConfigurableClassData | None = None,
        preload_modules: dict[str, list[str]] | None = None,
    ):
        super().__init__(inst_data=inst_data)
        self._preload = {location: list(modules) for location, modules in (preload_modules or {}).items()}
        self._warm: dict[str, _Worker] = {}  # by code location origin
        self._started: list[subprocess.Popen] = []  # handed a run; reaped once they exit
        self._lock = threading.Lock()

    @classmethod
    def config_type(cls) -> dict:
        return {
            "preload_modules": dg.Field(
                dg.Map(str, [str]),
                is_required=False,
                default_value={},
                description="Per code location name, modules its worker imports before a run arrives.",
            )
        }

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData, config_value: dict[str, Any]
    ) -> WarmRunLauncher:
        return cls(inst_data=inst_data, preload_modules=config_value.get("preload_modules"))

    # -- launching ---------------------------------------------------------------------------

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        origin = run.job_code_origin
        if origin is None or not _same_python(origin.repository_origin.executable_path):
            super().launch_run(context)  # another environment: its code server starts the run
            return
        key, server_id = serialize_value(origin.repository_origin), _server_id(context, run)
        with self._lock:
            self._reap()
            worker = self._take(key, server_id) or self._spawn(key, server_id, run)
            process = worker.process
            recorded = WorkerProcess(socket.gethostname(), process.pid, process_start(process.pid))
            self._instance.add_run_tags(run.run_id, {**recorded.as_tags(), LAUNCHER_TAG: "warm"})
            try:
                _hand_over(process, run.run_id, self._instance.get_ref())
            except OSError:  # the worker died while it waited: start one for this run
                self._retire(process)
                process = self._spawn(key, server_id, run).process
                recorded = WorkerProcess(socket.gethostname(), process.pid, process_start(process.pid))
                self._instance.add_run_tags(run.run_id, recorded.as_tags())
                _hand_over(process, run.run_id, self._instance.get_ref())
            self._started.append(process)
            try:  # the next run's worker starts importing now
                self._warm[key] = self._spawn(key, server_id, run)
            except OSError as error:  # this run is launched: the next one starts its worker itself
                self._instance.report_engine_event(
                    f"Could not start the next run's warm worker: {error}", run, cls=self.__class__
                )
        self._run_ids.add(run.run_id)

    def _take(self, key: str, server_id: str | None) -> _Worker | None:
        worker = self._warm.pop(key, None)
        if worker is None:
            return None
        if worker.server_id != server_id or worker.process.poll() is not None:
            self._retire(worker.process)  # code reloaded since it started, or it died: not for this run
            return None
        return worker

    def _spawn(self, key: str, server_id: str | None, run: dg.DagsterRun) -> _Worker:
        cwd = getattr(run.job_code_origin.repository_origin.code_pointer, "working_directory", None) or None
        location = run.remote_job_origin.location_name if run.remote_job_origin is not None else ""
        process = subprocess.Popen(
            [sys.executable, "-m", "dcai_assets.run_worker", key, *self._preload.get(location, [])],
            stdin=subprocess.PIPE,
            cwd=cwd,
            text=True,
        )
        return _Worker(process, server_id)

    def _retire(self, process: subprocess.Popen) -> None:
        """Stop an idle warm worker: closing its input ends it (it exits on end of input)."""
        try:
            if process.stdin is not None:
                process.stdin.close()
        except OSError:
            pass
        self._started.append(process)  # reaped with the others once it has exited

    def _reap(self) -> None:
        self._started = [p for p in self._started if p.poll() is None]

    # -- monitoring and termination ----------------------------------------------------------

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        with self._lock:
            self._reap()  # a dead child is a zombie until reaped: is_gone() counts it as gone
        worker = WorkerProcess.from_tags(dict(run.tags))
        if worker is None or worker.host != socket.gethostname():
            # Launched by the code server (which reports its own dead workers) or on another host.
            return CheckRunHealthResult(WorkerStatus.RUNNING, "not a worker of this host's launcher")
        if worker.is_gone():
            return CheckRunHealthResult(
                WorkerStatus.FAILED,
                f"run worker process {worker.pid} on {worker.host} is gone (killed or crashed)",
            )
        return CheckRunHealthResult(WorkerStatus.RUNNING)

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            return False
        worker = WorkerProcess.from_tags(dict(run.tags))
        if worker is None or run.tags.get(LAUNCHER_TAG) != "warm":
            return super().terminate(run_id)
        self._instance.report_run_canceling(run)
        if worker.host != socket.gethostname() or worker.is_gone():
            self._instance.report_engine_event(
                f"Cannot signal run worker {worker.pid} on {worker.host} from here.", run, cls=self.__class__
            )
            return False
        os.kill(worker.pid, signal.SIGTERM)  # the worker turns it into an interrupt: run CANCELED
        return True

    def dispose(self) -> None:
        with self._lock:
            for worker in self._warm.values():
                self._retire(worker.process)
            self._warm.clear()


def _same_python(executable: str | None) -> bool:
    return executable is None or os.path.realpath(executable) == os.path.realpath(sys.executable)


def _server_id(context: LaunchRunContext, run: dg.DagsterRun) -> str | None:
    """The id of the code server the run's job was loaded from: it changes when the code location
    is reloaded, so a worker that imported the old code is not used."""
    if context.workspace is None or run.remote_job_origin is None:
        return None
    name = run.remote_job_origin.repository_origin.code_location_origin.location_name
    try:
        return getattr(context.workspace.get_code_location(name), "server_id", None)
    except Exception:  # no server id: the worker is keyed by origin alone
        return None


def _hand_over(process: subprocess.Popen, run_id: str, instance_ref) -> None:
    assert process.stdin is not None
    process.stdin.write(json.dumps({"run_id": run_id, "instance_ref": serialize_value(instance_ref)}) + "\n")
    process.stdin.close()
