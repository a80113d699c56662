"""A run worker started ahead of its run: ``python -m dcai_assets.run_worker ORIGIN [MODULE ...]``.

Started by :class:`dcai_assets.launcher.WarmRunLauncher`. It imports the code location (from
``ORIGIN``, a serialized ``RepositoryPythonOrigin``) and the listed modules, builds the repository,
then waits on standard input for one line: ``{"run_id": ..., "instance_ref": ...}``. It executes
that run the way ``dagster api execute_run`` does, and exits. End of input before any line (the
launcher went away) ends it quietly. So the imports a run needs are paid while no run waits.
"""

from __future__ import annotations

import importlib
import json
import sys
import time


def _warm_up(origin_text: str, modules: list[str]) -> None:
    from dagster._core.origin import RepositoryPythonOrigin
    from dagster._serdes import deserialize_value
    from dagster._utils.hosted_user_process import recon_repository_from_origin

    origin = deserialize_value(origin_text, RepositoryPythonOrigin)
    recon_repository_from_origin(
        origin
    ).get_definition().get_all_jobs()  # import the code location and build its jobs
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as error:  # the run imports what it needs anyway: only slower
            print(f"dcai_assets.run_worker: could not preload {module!r}: {error}", file=sys.stderr)


def _execute(request: dict) -> int:
    from dagster import DagsterInstance
    from dagster._cli.api import _execute_run_command_body
    from dagster._core.instance.ref import InstanceRef
    from dagster._serdes import deserialize_value
    from dagster._utils.interrupts import capture_interrupts

    ref = deserialize_value(request["instance_ref"], InstanceRef)
    # SIGTERM (the launcher's terminate) becomes an interrupt: the run ends CANCELED.
    with capture_interrupts(), DagsterInstance.from_ref(ref) as instance:
        return _execute_run_command_body(
            request["run_id"],
            instance,
            write_stream_fn=lambda _event: None,
            set_exit_code_on_failure=False,
        )


def main(argv: list[str]) -> int:
    if len(argv) < 1:
        print("usage: python -m dcai_assets.run_worker ORIGIN [MODULE ...]", file=sys.stderr)
        return 2
    started = time.monotonic()
    _warm_up(argv[0], argv[1:])
    warm_after = time.monotonic() - started
    line = sys.stdin.readline()
    if not line.strip():
        return 0  # the launcher closed our input without a run: nothing to do
    request = json.loads(line)
    print(f"dcai_assets.run_worker: warm after {warm_after:.1f} s; run {request['run_id']}", file=sys.stderr)
    return _execute(request)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
