"""The test session's own isolation: a test that points MLflow somewhere must not send a later
example command's runs there (CI once saw the demo log to a reliability test's MLflow server)."""

from __future__ import annotations

import os

import mlflow

from tests.reliability.harness import mlflow_tracking_uri


def test_pointing_mlflow_at_a_server_for_a_block_leaves_the_environment_as_it_was(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with mlflow_tracking_uri("http://127.0.0.1:9"):
        assert os.environ["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:9"  # what MLflow does
    assert "MLFLOW_TRACKING_URI" not in os.environ
    outer = f"sqlite:///{tmp_path / 'outer.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", outer)
    with mlflow_tracking_uri("http://127.0.0.1:9"):
        pass
    assert os.environ["MLFLOW_TRACKING_URI"] == outer
    assert mlflow.get_tracking_uri() == outer


def test_an_example_command_never_inherits_the_sessions_mlflow_location(monkeypatch, tmp_path):
    import tests.conftest as session

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "http://127.0.0.1:9")
    command = session.ExampleCommand("jobs.print_environment")
    seen: dict[str, str] = {}

    class Recorder:
        def __init__(self, argv, **kwargs):
            seen.update(kwargs["env"])
            raise RuntimeError("recorded")

    monkeypatch.setattr(session.subprocess, "Popen", Recorder)
    command.run(tmp_path / "example")
    assert "recorded" in command.outcome
    assert not {"MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"} & seen.keys()
    assert seen["DCAI_DATA_DIR"] == str(tmp_path / "example" / "data")
