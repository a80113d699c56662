"""The model card: what one retrain hands the stages after it (the importance scores, the UI),
typed, and stored as a one-row frame whose columns keep their names across releases."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field

import pandas as pd

_METRIC_PREFIX = "eval_"


@dataclass(frozen=True)
class ModelCard:
    """One retrain: the registered version, its window and inputs, its metrics and the gate's
    decision (``gate_passed``; whether the champion then moved is recorded apart, after the card
    is stored).

    ``train_partition_keys`` / ``holdout_partition_keys``: the window split in time order.
    ``partition_versions``: the data version of each labeled partition of the window.
    ``metrics``: the challenger's overall holdout metrics (NaN where undefined).
    """

    model_name: str
    version: int
    mlflow_run_id: str
    gate_passed: bool
    evaluated_against: str
    positive_class: str | None
    positive_class_rule: str
    evaluation_status: str
    holdout_widened_by: int
    train_rows: int
    train_partition_keys: list[str]
    holdout_partition_keys: list[str]
    metrics: dict[str, float] = field(default_factory=dict)
    lf_set_version: str = ""
    code_version: str = ""
    data_version: str = ""
    partition_versions: dict[str, str] = field(default_factory=dict)

    @property
    def model_uri(self) -> str:
        return f"models:/{self.model_name}/{self.version}"

    def to_frame(self) -> pd.DataFrame:
        """The stored form: one row; partition keys comma-joined, metrics as ``eval_<name>``."""
        row = {
            "model_name": self.model_name,
            "version": int(self.version),
            "mlflow_run_id": self.mlflow_run_id,
            "model_uri": self.model_uri,
            "gate_passed": bool(self.gate_passed),
            "evaluated_against": self.evaluated_against,
            "positive_class": self.positive_class,
            "positive_class_rule": self.positive_class_rule,
            "evaluation_status": self.evaluation_status,
            "holdout_widened_by": int(self.holdout_widened_by),
            **{f"{_METRIC_PREFIX}{k}": v for k, v in self.metrics.items()},
            "train_rows": int(self.train_rows),
            "train_partitions": len(self.train_partition_keys),
            "holdout_partitions": ",".join(self.holdout_partition_keys),
            "train_partition_keys": ",".join(self.train_partition_keys),
            "lf_set_version": self.lf_set_version,
            "code_version": self.code_version,
            "data_version": self.data_version,
            "partition_versions": json.dumps(self.partition_versions, sort_keys=True),
        }
        return pd.DataFrame([row])

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> ModelCard:
        """Read a stored card back (cards stored before the last four columns existed, too)."""
        if not isinstance(frame, pd.DataFrame) or len(frame) != 1:
            raise ValueError(
                f"ModelCard.from_frame: got {type(frame).__name__}"
                + (f" of {len(frame)} rows" if isinstance(frame, pd.DataFrame) else "")
                + "; expected the one-row frame of a trained_model materialization"
            )
        missing = [
            c for c in ("model_name", "version", "mlflow_run_id", "train_partition_keys") if c not in frame
        ]
        if missing:
            raise ValueError(f"ModelCard.from_frame: the card lacks columns {missing}; expected a model card")
        r = frame.iloc[0]

        def text(name: str, default: str = "") -> str:
            value = r.get(name, default)
            return (
                default if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
            )

        def keys(name: str) -> list[str]:
            return [k for k in text(name).split(",") if k]

        positive = r.get("positive_class")
        return cls(
            model_name=text("model_name"),
            version=int(r["version"]),
            mlflow_run_id=text("mlflow_run_id"),
            gate_passed=bool(r.get("gate_passed", False)),
            evaluated_against=text("evaluated_against"),
            positive_class=None if positive is None or pd.isna(positive) else str(positive),
            positive_class_rule=text("positive_class_rule"),
            evaluation_status=text("evaluation_status"),
            holdout_widened_by=int(r.get("holdout_widened_by", 0) or 0),
            train_rows=int(r.get("train_rows", 0)),
            train_partition_keys=keys("train_partition_keys"),
            holdout_partition_keys=keys("holdout_partitions"),
            metrics={
                str(c)[len(_METRIC_PREFIX) :]: float(r[c])
                for c in frame.columns
                if str(c).startswith(_METRIC_PREFIX)
            },
            lf_set_version=text("lf_set_version"),
            code_version=text("code_version"),
            data_version=text("data_version"),
            partition_versions=json.loads(text("partition_versions", "{}")),
        )


def data_version_of(lineage: dict) -> str:
    """The data version of a retrain: a digest of everything that decides its model (the window's
    data versions, the split, the LF and code versions, the holdout's labels)."""
    return hashlib.sha256(json.dumps(lineage, sort_keys=True).encode()).hexdigest()[:16]
