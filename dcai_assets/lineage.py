"""Versioned lineage from the MLflow registry: what made a model version (partitions and their
data versions, LF-set version, code version, run), and which versions used a partition.

Dagster tracks partition data versions only up to 100 upstream partitions, so every model run
also logs ``lineage.json``; these functions read it back. Pure MLflow, no Dagster import."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ModelLineage:
    """Everything a registered model version was made from."""

    model_name: str
    version: str
    run_id: str
    aliases: tuple[str, ...]
    gate: str
    partitions: dict[str, str]
    train_partitions: tuple[str, ...]
    holdout_partitions: tuple[str, ...]
    lf_set_version: str
    code_version: str
    data_version: str
    dagster_run_id: str
    source: str
    extra: dict[str, Any] = field(default_factory=dict)

    def role_of(self, partition: str) -> str | None:
        """``"train"``, ``"holdout"`` or None: how this version used ``partition``."""
        if partition in self.train_partitions:
            return "train"
        if partition in self.holdout_partitions:
            return "holdout"
        return None

    def markdown(self) -> str:
        """A readable answer to "what made this model version?"."""
        lines = [
            f"# {self.model_name} version {self.version}"
            + (f" ({', '.join(self.aliases)})" if self.aliases else ""),
            "",
            f"- MLflow run: `{self.run_id}` (model `{self.source}`)",
            f"- Dagster run: `{self.dagster_run_id or 'unknown'}`",
            f"- promotion gate: {self.gate or 'unknown'}",
            f"- labeling-function set version: `{self.lf_set_version}`",
            f"- model code version: `{self.code_version}`",
            f"- data version (partitions + LF set + code): `{self.data_version}`",
            f"- {len(self.train_partitions)} training and {len(self.holdout_partitions)} holdout partitions:",
            "",
            "| partition | role | data version |",
            "|---|---|---|",
        ]
        for partition, version in sorted(self.partitions.items()):
            lines.append(f"| {partition} | {self.role_of(partition) or '-'} | `{version or 'unknown'}` |")
        return "\n".join(lines)


def model_lineage(client, model_name: str, version: str | int) -> ModelLineage:
    """Read the lineage of ``model_name`` version ``version`` from its registry entry and run."""
    from mlflow.exceptions import MlflowException

    try:
        entry = client.get_model_version(model_name, str(version))
    except MlflowException as e:
        raise LookupError(f"no registered model {model_name!r} version {version}: {e.message}") from e
    run = client.get_run(entry.run_id)
    record = _lineage_record(client, entry.run_id)
    return ModelLineage(
        model_name=model_name,
        version=str(entry.version),
        run_id=entry.run_id,
        aliases=tuple(sorted(entry.aliases or ())),
        gate=entry.tags.get("dcai.gate", ""),
        partitions=dict(record.get("partitions", {})),
        train_partitions=tuple(record.get("train_partitions", ())),
        holdout_partitions=tuple(record.get("holdout_partitions", ())),
        lf_set_version=str(record.get("lf_set_version", run.data.tags.get("dcai.lf_set_version", ""))),
        code_version=str(record.get("code_version", run.data.tags.get("dcai.code_version", ""))),
        data_version=entry.tags.get("dcai.data_version", run.data.tags.get("dcai.data_version", "")),
        dagster_run_id=run.data.tags.get("dagster.run_id", ""),
        source=entry.source,
        extra={k: v for k, v in record.items() if k not in _RECORD_KEYS},
    )


def models_using_partition(client, partition: str, model_name: str | None = None) -> list[ModelLineage]:
    """Every registered version (of ``model_name``, or of any model with dcai lineage) whose
    training or holdout window held ``partition``, oldest first."""
    names = [model_name] if model_name else [m.name for m in client.search_registered_models()]
    found = []
    for name in names:
        for entry in client.search_model_versions(f"name = '{name}'"):
            if "dcai.data_version" not in entry.tags:
                continue
            lineage = model_lineage(client, name, entry.version)
            if lineage.role_of(partition):
                found.append(lineage)
    return sorted(found, key=lambda m: (m.model_name, int(m.version)))


_RECORD_KEYS = {"partitions", "train_partitions", "holdout_partitions", "lf_set_version", "code_version"}


def _lineage_record(client, run_id: str) -> dict[str, Any]:
    """The run's ``lineage.json`` artifact (written by every training run)."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run_id, "lineage.json", tmp)
        except Exception as e:
            raise LookupError(f"MLflow run {run_id} has no lineage.json artifact: {e}") from e
        return json.loads(Path(path).read_text())
