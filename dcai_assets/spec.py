"""What a user declares about their dataset: where partitions come from, how they are keyed, and
where its schema lives. One spec is all `build_definitions` needs."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from dcai_assets.core.evaluation import PromotionGate
from dcai_assets.core.labeling import LabelingFunctionSet
from dcai_assets.errors import DataInputError

SUPPORTED_SUFFIXES = (".csv", ".parquet")
_KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=:-]*$")


@dataclass(frozen=True)
class LandingDirectory:
    """Partitions arrive as files in a directory; the file stem is the partition key."""

    path: str | Path
    suffixes: tuple[str, ...] = SUPPORTED_SUFFIXES

    def __post_init__(self) -> None:
        unknown = set(self.suffixes) - set(SUPPORTED_SUFFIXES)
        if unknown:
            raise ValueError(
                f"LandingDirectory.suffixes: {sorted(unknown)} not supported; "
                f"expected a subset of {SUPPORTED_SUFFIXES}"
            )


@dataclass(frozen=True)
class CallableSource:
    """Partitions come from Python: ``load(partition_key) -> DataFrame``.

    ``list_partitions`` (optional) lets the sensor discover new keys.
    """

    load: Callable[[str], pd.DataFrame]
    list_partitions: Callable[[], Sequence[str]] | None = None


@dataclass(frozen=True)
class DailyPartitions:
    """One partition per calendar day, keyed ``YYYY-MM-DD``."""

    start: str
    end: str | None = None
    timezone: str = "UTC"


@dataclass(frozen=True)
class DynamicPartitions:
    """Batches keyed by whatever name the source gives them, registered as they arrive."""


@dataclass(frozen=True)
class LabelingSpec:
    """How a dataset gets its labels: the labeling functions, the gold labels, the label model.

    ``gold_column`` defaults to the dataset's ``label`` column. ``label_model`` is
    ``"dawid_skene"`` (LF accuracies and class balance estimated by EM) or ``"majority_vote"``.
    """

    lfs: LabelingFunctionSet
    gold_column: str | None = None
    label_model: Literal["dawid_skene", "majority_vote"] = "dawid_skene"
    max_iter: int = 500
    seed: int = 0
    min_label_coverage: float = 0.5

    def __post_init__(self) -> None:
        if self.label_model not in ("dawid_skene", "majority_vote"):
            raise ValueError(
                f"LabelingSpec.label_model: {self.label_model!r}; expected 'dawid_skene' or 'majority_vote'"
            )


@dataclass(frozen=True)
class TrainingSpec:
    """How models are trained, evaluated and promoted.

    ``pipeline`` builds a fresh scikit-learn Pipeline (preprocessing + estimator); it sees only
    ``features``. ``window`` is the number of newest labeled partitions to use (None = all);
    the newest ``holdout_partitions`` of them are held out for evaluation, not shuffled across
    time. ``slices`` are columns to report metrics per value; ``sensitive`` the column of the
    group-fairness gaps.

    ``positive_class``: the class precision, recall, F1 and the fairness gaps treat as positive.
    None means the second of the LF set's ``classes`` for two classes, and for more classes
    per-class and macro-averaged metrics with one-vs-rest fairness per class. It must be one of
    the classes (checked when the definitions are built).

    The holdout is chosen by ``core.holdout.choose_holdout``: gold rows if there are at least
    ``min_gold_rows``, else LF labels; if a class has fewer than ``min_class_rows`` evaluation
    rows, the holdout widens one partition at a time up to ``max_holdout_partitions`` (None =
    3 x ``holdout_partitions``); if fewer than two classes reach it, the evaluation is
    undetermined and nothing is promoted.
    """

    pipeline: Callable[[], Any]
    features: Sequence[str]
    window: int | None = None
    holdout_partitions: int = 1
    slices: Sequence[str] = ()
    sensitive: str | None = None
    use_confidence_weights: bool = True
    gate: PromotionGate = field(default_factory=PromotionGate)
    model_name: str | None = None
    seed: int = 0
    min_gold_rows: int = 30
    extra_pip_requirements: Sequence[str] = ()
    skops_trusted_types: Sequence[str] = ()
    positive_class: str | None = None
    min_class_rows: int = 10
    max_holdout_partitions: int | None = None

    def __post_init__(self) -> None:
        if not self.features:
            raise ValueError("TrainingSpec.features: empty; expected the columns the model may see")
        if self.holdout_partitions < 1:
            raise ValueError(f"TrainingSpec.holdout_partitions: {self.holdout_partitions}; expected >= 1")
        if self.positive_class is not None and not isinstance(self.positive_class, str):
            raise TypeError(
                f"TrainingSpec.positive_class: {self.positive_class!r} is a "
                f"{type(self.positive_class).__name__}; expected the name of a class "
                "(a string, as in LabelingFunctionSet.classes) or None"
            )
        for name in ("min_class_rows", "max_holdout_partitions"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"TrainingSpec.{name}: {value!r}; expected an integer >= 1")
        if self.max_holdout_partitions is not None and self.max_holdout_partitions < self.holdout_partitions:
            raise ValueError(
                f"TrainingSpec.max_holdout_partitions: {self.max_holdout_partitions} is below "
                f"holdout_partitions={self.holdout_partitions}; expected at least that many"
            )
        if self.window is not None and self.window <= self.holdout_partitions:
            raise ValueError(
                f"TrainingSpec.window: {self.window} partitions leaves none to train on after "
                f"{self.holdout_partitions} held out; expected a larger window or None"
            )

    @property
    def holdout_limit(self) -> int:
        """The most partitions the holdout may widen to (``max_holdout_partitions`` or 3 x)."""
        return self.max_holdout_partitions or 3 * self.holdout_partitions

    @property
    def code_version(self) -> str:
        """Changes with the pipeline factory's source, the features and the training settings."""
        import hashlib
        import inspect

        try:
            source = inspect.getsource(self.pipeline)
        except (OSError, TypeError):
            source = repr(self.pipeline)
        parts = [
            source,
            repr(list(self.features)),
            repr(self.window),
            repr(self.holdout_partitions),
            str(self.seed),
        ]
        if (self.positive_class, self.min_class_rows, self.max_holdout_partitions) != (None, 10, None):
            parts.append(repr((self.positive_class, self.min_class_rows, self.max_holdout_partitions)))
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class ImportanceSpec:
    """How training rows are valued: exact KNN-Shapley with ``k`` neighbours on the features the
    model's own preprocessing produces, against the model's holdout. With ``group``, the utility
    is the group-balanced accuracy over that column (each group counts the same). With
    ``shards`` > 1, the holdout is split into that many shards valued as separate steps (in
    parallel under a multiprocess or Kubernetes executor) and summed: the same values, to
    rounding, since the value is a weighted sum over holdout rows."""

    k: int = 5
    group: str | None = None
    review_rows: int = 25
    shards: int = 1

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"ImportanceSpec.k: {self.k}; expected at least 1")
        if self.shards < 1:
            raise ValueError(f"ImportanceSpec.shards: {self.shards}; expected at least 1")


Source = LandingDirectory | CallableSource
Partitioning = DailyPartitions | DynamicPartitions


@dataclass(frozen=True)
class DatasetSpec:
    """A tabular dataset described once; `build_definitions` turns it into Dagster definitions.

    Parameters
    ----------
    name:
        Asset-key prefix, e.g. ``"orders"`` gives ``orders/raw_data``.
    source:
        Where partitions come from.
    partitioning:
        Daily time windows or dynamic batches.
    schema_path:
        The reviewable schema file (YAML) that validation compiles into a GX suite.
    key:
        Column(s) that identify a row; duplicates are quarantined.
    label:
        Column holding gold labels, if the data has any (may be partially filled).
    reference:
        The window a schema is inferred from: a callable returning ``{partition: DataFrame}``,
        or partition keys to read from ``source``.
    schema_overrides:
        Per-column settings applied on top of inference (e.g. ``{"hour": {"min": 0, "max": 23}}``).
    """

    name: str
    source: Source
    partitioning: Partitioning
    schema_path: str | Path
    key: str | Sequence[str] | None = None
    label: str | None = None
    reference: Callable[[], Mapping[str, pd.DataFrame]] | Sequence[str] | None = None
    schema_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    owners: Sequence[str] = ()
    description: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.reference, str):
            raise ValueError(
                f"DatasetSpec.reference: {self.reference!r} is a single string; expected a list of "
                f"partition keys, e.g. [{self.reference!r}], or a callable"
            )
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.name):
            raise ValueError(
                f"DatasetSpec.name: {self.name!r} is not usable as an asset-key prefix; "
                "expected letters, digits and underscores"
            )

    @property
    def key_columns(self) -> list[str]:
        if self.key is None:
            return []
        return [self.key] if isinstance(self.key, str) else list(self.key)


def check_partition_key(key: str, partitioning: Partitioning, *, file: str | None = None) -> str:
    """Return ``key`` if it is a safe partition key for ``partitioning``; raise otherwise.

    Keys end up in file paths, so separators, ``..`` and control characters are refused.
    """
    if not isinstance(key, str) or not _KEY_PATTERN.match(key) or ".." in key:
        raise DataInputError(
            f"partition key {key!r} is not allowed (path separators, '..', spaces and "
            "leading dots are refused because keys become file names)",
            expected="letters, digits and _ . = : - only, e.g. '2024-05-01' or 'batch_7'",
            file=file,
            partition=key if isinstance(key, str) else repr(key),
        )
    if isinstance(partitioning, DailyPartitions):
        try:
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", key):
                raise ValueError(key)
            day = date.fromisoformat(key)
        except ValueError:
            raise DataInputError(
                "file name is not a date",
                expected="a daily partition key of the form YYYY-MM-DD, e.g. 2013-01-05.csv",
                file=file,
                partition=key,
            ) from None
        start = date.fromisoformat(partitioning.start)
        end = date.fromisoformat(partitioning.end) if partitioning.end else None
        if day < start or (end is not None and day >= end):
            raise DataInputError(
                "date is outside the partitions' range",
                expected=f"a day from {partitioning.start}"
                + (f" up to (not including) {partitioning.end}" if end else " on"),
                file=file,
                partition=key,
            )
    return key
