"""MLflow tracking and registry through an explicit ``MlflowClient``: no process-global fluent
state, bounded retries, the experiment created once and safely. mlflow is imported inside the
methods (it takes seconds to import)."""

import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

import dagster as dg
from pydantic import Field, PrivateAttr

T = TypeVar("T")


class TrackingUnavailableError(RuntimeError):
    """The tracking server could not be reached within the retry budget."""


class MlflowTracking(dg.ConfigurableResource):
    """Where runs, models and registry versions go.

    ``tracking_uri`` is any MLflow URI (``sqlite:///...`` by default in the demo, or
    ``http://host:5000``); ``artifact_location`` is where a new experiment stores artifacts.
    """

    tracking_uri: str
    registry_uri: str | None = None
    artifact_location: str | None = None
    experiment_name: str = "dcai_assets"
    max_retries: int = Field(default=3, ge=1)
    retry_wait_seconds: float = 1.0
    request_timeout_seconds: int = 10

    _client: Any = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # MLflow's own HTTP retries default to minutes of back-off; bound them unless the user did.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", str(self.max_retries))
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(self.request_timeout_seconds))
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        if self.tracking_uri.startswith("sqlite:///"):
            path = self.tracking_uri.removeprefix("sqlite:///")
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)

    @property
    def client(self):
        if self._client is None:
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)
        return self._client

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """Run a tracking call with bounded retries; then fail with a message that says where."""
        last: Exception | None = None
        for attempt in range(1, self.max_retries + 1):
            try:
                return fn()
            except Exception as e:  # network errors surface as several MLflow/requests types
                if _is_client_error(e):
                    raise
                last = e
                if attempt < self.max_retries:
                    time.sleep(self.retry_wait_seconds * attempt)
        raise TrackingUnavailableError(
            f"MLflow tracking at {self.tracking_uri!r} did not answer {what} after {self.max_retries} "
            f"attempts ({type(last).__name__}: {str(last)[:300]}); expected a reachable tracking server. "
            "Nothing was registered"
        ) from last

    def experiment_id(self, name: str | None = None) -> str:
        """The experiment's id, creating it once; safe when two runs race to create it."""
        from mlflow.exceptions import MlflowException

        name = name or self.experiment_name

        def get_or_create() -> str:
            found = self.client.get_experiment_by_name(name)
            if found is not None:
                return found.experiment_id
            try:
                return self.client.create_experiment(name, artifact_location=self.artifact_location)
            except MlflowException:  # created by a concurrent run in between
                found = self.client.get_experiment_by_name(name)
                if found is None:
                    raise
                return found.experiment_id

        return self.call(f"for experiment {name!r}", get_or_create)

    def ensure_registered_model(self, name: str) -> None:
        from mlflow.exceptions import MlflowException

        def create() -> None:
            try:
                self.client.create_registered_model(name)
            except MlflowException as e:
                if "RESOURCE_ALREADY_EXISTS" not in str(e.error_code):
                    raise

        self.call(f"for registered model {name!r}", create)


def _is_client_error(e: Exception) -> bool:
    """A request the server understood and refused: retrying cannot help."""
    code = str(getattr(e, "error_code", ""))
    return code in {"INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST", "RESOURCE_ALREADY_EXISTS"}
