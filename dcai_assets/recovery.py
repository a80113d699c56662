"""Crash recovery for runs that execute their steps in their own process (``execute_in_process``,
``materialize``, the in-process executor): a run killed with SIGKILL stays STARTED and keeps its
concurrency slots, so the next registry step waits for the ``dcai_model_registry`` pool forever.

No daemon watches such runs. So each run of the trained-model step records which process executes
it (host, pid and the process's start time, as run tags), and before it claims the pool it looks
for runs on this host whose recorded process is gone: it reports them failed and frees their slots.
A run of a live process, a run recorded on another host, or a run with no record is never touched;
runs launched by the daemon with a process per step are left to Dagster's run monitoring (see the
instance's ``dagster.yaml``).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

HOST_TAG = "dcai/worker_host"
PID_TAG = "dcai/worker_pid"
# The process's start time (clock ticks since boot, from /proc): a pid reused by a new process
# has another start time, so it is not taken for the dead run's process.
STARTED_TAG = "dcai/worker_started"

_IN_PROCESS_EVENT = "Executing steps in process"  # the in-process executor's first engine event


@dataclass(frozen=True)
class WorkerProcess:
    """The process that executes a run's steps: where it runs and which process it is."""

    host: str
    pid: int
    started: str | None  # None where the platform does not tell (no /proc)

    @classmethod
    def current(cls) -> WorkerProcess:
        return cls(socket.gethostname(), os.getpid(), process_start(os.getpid()))

    def as_tags(self) -> dict[str, str]:
        return {HOST_TAG: self.host, PID_TAG: str(self.pid), STARTED_TAG: self.started or ""}

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> WorkerProcess | None:
        """The recorded process, or None when the run has no (or a malformed) record."""
        host, pid = tags.get(HOST_TAG), tags.get(PID_TAG, "")
        if not host or not pid.isdigit():
            return None
        return cls(host, int(pid), tags.get(STARTED_TAG) or None)

    def is_gone(self) -> bool:
        """Whether this process, on this host, no longer runs. False for another host: from here
        nothing can be known about it."""
        if self.host != socket.gethostname():
            return False
        stat = _proc_stat(self.pid)
        if stat is not None:
            state, started = stat
            # Z: killed but not yet reaped by its parent; X: being reaped.
            return state in ("Z", "X") or (self.started is not None and started != self.started)
        if Path("/proc/self/stat").exists():
            return True  # Linux, and no such pid
        if os.name == "nt":
            return False  # os.kill(pid, 0) would terminate the process on Windows
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False  # alive, another user's
        return False


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """State and start time (fields 3 and 22 of ``/proc/<pid>/stat``), None if there is no such
    file (no such process, or no /proc)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the command name may hold spaces and ')'
    return fields[0], fields[19]


def process_start(pid: int) -> str | None:
    """The start time of process ``pid`` in clock ticks since boot, None where unknown."""
    stat = _proc_stat(pid)
    return None if stat is None else stat[1]


@dataclass(frozen=True)
class Reconciled:
    """A run found dead and what was done about it."""

    run_id: str
    worker: WorkerProcess
    status_before: str
    marked_failed: bool
    slots_freed: int
    claims_dropped: int  # claims that were still waiting for a slot

    def message(self) -> str:
        done = ["marked FAILURE"] if self.marked_failed else []
        done.append(f"freed {self.slots_freed} concurrency slot(s)")
        if self.claims_dropped:
            done.append(f"dropped {self.claims_dropped} waiting claim(s)")
        return (
            f"recovered run {self.run_id} ({self.status_before}): its process {self.worker.pid} on "
            f"{self.worker.host} is gone; " + ", ".join(done)
        )


def _held_slots(instance: dg.DagsterInstance, run_id: str) -> tuple[int, int]:
    """Slots held and claims still waiting for one by ``run_id``, over every pool."""
    storage = instance.event_log_storage
    held = waiting = 0
    for pool in storage.get_concurrency_keys():
        info = storage.get_concurrency_info(pool)
        held += sum(s.run_id == run_id for s in info.claimed_slots)
        waiting += sum(s.run_id == run_id and s.assigned_timestamp is None for s in info.pending_steps)
    return held, waiting


def reconcile_dead_runs(instance: dg.DagsterInstance, *, current_run_id: str) -> list[Reconciled]:
    """Fail the runs of this host whose recorded process is gone and free their slots.

    Candidates are the runs holding (or waiting for) a concurrency slot and the unfinished runs
    recorded on this host; ``current_run_id`` is never one.
    """
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []  # an ephemeral instance: no slots, and no earlier run survives the process
    candidates = set(storage.get_concurrency_run_ids())
    unfinished = instance.get_runs(
        dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING],
            tags={HOST_TAG: socket.gethostname()},
        )
    )
    candidates |= {r.run_id for r in unfinished}
    candidates.discard(current_run_id)
    out = []
    for run_id in sorted(candidates):
        run = instance.get_run_by_id(run_id)
        worker = WorkerProcess.from_tags(dict(run.tags)) if run is not None else None
        if run is None or worker is None or not worker.is_gone():
            continue
        status_before = run.status.value
        marked = not run.is_finished
        if marked:
            reason = (
                f"The process that executed this run ({worker.pid} on {worker.host}) is gone (killed, "
                "e.g. SIGKILL or out of memory); found by a later run, which marks this run failed "
                "and frees its concurrency slots."
            )
            instance.report_engine_event(reason, run, cls=RunRecovery)
            instance.report_run_failed(run, reason)
        held, waiting = _held_slots(instance, run_id)
        if held or waiting:
            storage.free_concurrency_slots_for_run(run_id)  # frees both
        if marked or held or waiting:
            out.append(Reconciled(run_id, worker, status_before, marked, held, waiting))
    return out


def executes_steps_here(instance: dg.DagsterInstance, run_id: str) -> bool:
    """Whether this process is the one executing ``run_id``'s steps (the in-process executor),
    hence the one holding its concurrency slots: the executor records its pid before the
    resources are set up. A step's own process under a multiprocess executor is not."""
    events = instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
    return any(
        e.message.startswith(_IN_PROCESS_EVENT) and f"(pid: {os.getpid()})" in e.message for e in events
    )


class RunRecovery(dg.ConfigurableResource):
    """Set up before a run's in-process executor claims any pool: records the run's process and
    recovers the dead runs of this host (see the module's docstring). Bound to the trained-model
    asset, so nothing has to be configured."""

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        instance, run = context.instance, context.dagster_run
        if instance is None or run is None:
            return
        if executes_steps_here(instance, run.run_id):
            instance.add_run_tags(run.run_id, WorkerProcess.current().as_tags())
        for done in reconcile_dead_runs(instance, current_run_id=run.run_id):
            if context.log is not None:
                context.log.warning(done.message())


RUN_RECOVERY_KEY = "dcai_run_recovery"
# One instance for every asset that binds it: Dagster requires asset-bound resources of the same
# key to be the same object.
RUN_RECOVERY = RunRecovery()
