"""What a user declares about their dataset: where partitions come from, how they are keyed, and
where its schema lives. One spec is all `build_definitions` needs."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from dcai_assets.core.evaluation import PromotionGate
from dcai_assets.core.findings import CHECK_NAMES
from dcai_assets.core.health import HealthSettings
from dcai_assets.core.labeling import LabelingFunctionSet
from dcai_assets.core.partition_time import (
    TIME_KEY_FORMATS,
    add_units,
    elapsed,
    exists_locally,
    first_window_start,
    is_window_start,
    order_keys,
    parse_time_key,
    window_containing,
)
from dcai_assets.errors import DataInputError

SUPPORTED_SUFFIXES = (".csv", ".parquet")
_KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=:-]*$")


def _require_int(owner: str, name: str, value: object, minimum: int, *, optional: bool = False) -> None:
    """Raise unless ``value`` is an integer >= ``minimum`` (or None when ``optional``): a spec
    field such as ``k=2.5`` or ``holdout_partitions=True`` is refused, never truncated."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(
            f"{owner}.{name}: {value!r}; expected an integer >= {minimum}" + (" or None" if optional else "")
        )


@dataclass(frozen=True)
class LandingDirectory:
    """Partitions arrive as files in a directory; the file stem is the partition key.

    ``existing_files``: what the landing sensor's first evaluation (or the first after its cursor
    is reset) does with files already there: ``"process"`` (default) requests a run for each;
    ``"skip"`` records them as handled without a run and logs how many, and which.
    """

    path: str | Path
    suffixes: tuple[str, ...] = SUPPORTED_SUFFIXES
    existing_files: Literal["process", "skip"] = "process"

    def __post_init__(self) -> None:
        if self.existing_files not in ("process", "skip"):
            raise ValueError(
                f"LandingDirectory.existing_files: {self.existing_files!r}; expected 'process' (run "
                "the files already there on the sensor's first evaluation) or 'skip' (only files "
                "that land afterwards)"
            )
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


def _spelled(fmt: str) -> str:
    """A strptime format as people write it: ``%Y-%m-%d`` -> ``YYYY-MM-DD``."""
    for code, text in (("%Y", "YYYY"), ("%m", "MM"), ("%d", "DD"), ("%H", "HH"), ("%M", "MM")):
        fmt = fmt.replace(code, text)
    return fmt


@dataclass(frozen=True)
class TimeWindowPartitions:
    """Base of the time-window partitionings: one partition per window of ``unit``, from the first
    window starting at or after ``start`` to the last one ending by ``end`` (open-ended when None),
    on the wall clock of ``timezone`` (an IANA name). Keys are Dagster's: the window's start as
    ``KEY_FORMAT``. A window becomes a partition once it has ended."""

    start: str
    end: str | None = None
    timezone: str = "UTC"

    UNIT: ClassVar[str] = ""
    KEY_FORMAT: ClassVar[str] = "%Y-%m-%d"
    KEY_EXAMPLE: ClassVar[str] = ""

    def __post_init__(self) -> None:
        name = type(self).__name__
        if not self.UNIT:
            raise TypeError(
                "TimeWindowPartitions is a base class; expected HourlyPartitions, DailyPartitions, "
                "WeeklyPartitions or MonthlyPartitions"
            )
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise ValueError(
                f"{name}.timezone: {self.timezone!r} is not a known time zone; expected an IANA name "
                "such as 'UTC' or 'Europe/Paris'"
            ) from None
        start = self._parse_bound("start", self.start)
        if self.end is not None and self._parse_bound("end", self.end) <= start:
            raise ValueError(f"{name}.end: {self.end!r} is not after start {self.start!r}")

    def _parse_bound(self, argument: str, value: Any) -> datetime:
        formats = ["%Y-%m-%d"] + (["%Y-%m-%d-%H:%M"] if self.UNIT == "hour" else [])
        if isinstance(value, str):
            for fmt in formats:
                try:
                    return datetime.strptime(value, fmt)
                except ValueError:
                    pass
        spelled = " or ".join(_spelled(f) for f in formats)
        raise ValueError(f"{type(self).__name__}.{argument}: {value!r}; expected a string {spelled}")

    @property
    def start_time(self) -> datetime:
        """The wall-clock start of the first partition."""
        return first_window_start(self._parse_bound("start", self.start), self.UNIT)

    @property
    def end_time(self) -> datetime | None:
        return None if self.end is None else self._parse_bound("end", self.end)

    @property
    def key_format_text(self) -> str:
        return _spelled(self.KEY_FORMAT)


@dataclass(frozen=True)
class HourlyPartitions(TimeWindowPartitions):
    """One partition per hour, keyed ``YYYY-MM-DD-HH:MM`` (Dagster's hourly format), e.g. a file
    ``2024-05-01-13:00.csv`` for 13:00-14:00. ``start``/``end``: ``YYYY-MM-DD`` or
    ``YYYY-MM-DD-HH:MM``."""

    UNIT: ClassVar[str] = "hour"
    KEY_FORMAT: ClassVar[str] = "%Y-%m-%d-%H:%M"
    KEY_EXAMPLE: ClassVar[str] = "2024-05-01-13:00"


@dataclass(frozen=True)
class DailyPartitions(TimeWindowPartitions):
    """One partition per calendar day, keyed ``YYYY-MM-DD``."""

    UNIT: ClassVar[str] = "day"
    KEY_EXAMPLE: ClassVar[str] = "2024-05-01"


@dataclass(frozen=True)
class WeeklyPartitions(TimeWindowPartitions):
    """One partition per week, starting on Sunday (Dagster's default) and keyed by that Sunday's
    date ``YYYY-MM-DD``, e.g. ``2024-05-05.csv`` for 5-11 May 2024."""

    UNIT: ClassVar[str] = "week"
    KEY_EXAMPLE: ClassVar[str] = "2024-05-05"


@dataclass(frozen=True)
class MonthlyPartitions(TimeWindowPartitions):
    """One partition per calendar month, keyed by its first day ``YYYY-MM-DD`` (Dagster's
    format), e.g. ``2024-05-01.csv`` for May 2024."""

    UNIT: ClassVar[str] = "month"
    KEY_EXAMPLE: ClassVar[str] = "2024-05-01"


PartitionOrder = Literal["time", "key"] | Callable[[str], Any] | None


def _check_order(owner: str, order: Any) -> None:
    if order is not None and order not in ("time", "key") and not callable(order):
        raise ValueError(
            f"{owner}.order: {order!r}; expected 'time', 'key', a callable giving each key's sort key, "
            "or None (time when every key names one, else key order)"
        )


@dataclass(frozen=True)
class DynamicPartitions:
    """Batches keyed by whatever name the source gives them, registered as they arrive (by the
    landing sensor, or ``dcai-assets partitions add/sync``).

    ``order`` says which partitions are the newest (the model holds them out): None (default)
    orders by the time the keys name when every key names one (``YYYY``, ``YYYY-MM``,
    ``YYYY-MM-DD``, ``YYYY-MM-DD-HH:MM``, ``YYYY-MM-DDTHH:MM[:SS]``), else by natural key order
    (``batch_2`` before ``batch_10``); ``"time"`` requires keys that name a time (others are
    refused when they land); ``"key"`` is natural key order; a callable gives each key's sort
    key. Never the order in which the keys were registered.
    """

    order: PartitionOrder = None

    def __post_init__(self) -> None:
        _check_order("DynamicPartitions", self.order)


@dataclass(frozen=True)
class StaticPartitions:
    """A fixed list of partition keys, e.g. ``StaticPartitions(keys=["train_2019", "train_2020"])``.

    ``order`` as for :class:`DynamicPartitions`, except that with None, keys that do not all name
    a time keep the order in which they are listed here.
    """

    keys: Sequence[str]
    order: PartitionOrder = None

    def __post_init__(self) -> None:
        if isinstance(self.keys, str) or not isinstance(self.keys, Sequence):
            raise TypeError(
                f"StaticPartitions.keys: {type(self.keys).__name__}; expected a list of partition keys, "
                f"e.g. [{self.keys!r}]"
            )
        if not self.keys:
            raise ValueError("StaticPartitions.keys: empty; expected at least one partition key")
        for key in self.keys:
            _check_safe_key(key, None)
        duplicated = sorted({k for k in self.keys if list(self.keys).count(k) > 1})
        if duplicated:
            raise ValueError(
                f"StaticPartitions.keys: {duplicated} listed more than once; expected unique keys"
            )
        _check_order("StaticPartitions", self.order)


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
        _require_int("LabelingSpec", "max_iter", self.max_iter, 1)
        _require_int("LabelingSpec", "seed", self.seed, 0)


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
        _require_int("TrainingSpec", "holdout_partitions", self.holdout_partitions, 1)
        _require_int("TrainingSpec", "window", self.window, 2, optional=True)
        _require_int("TrainingSpec", "min_gold_rows", self.min_gold_rows, 1)
        _require_int("TrainingSpec", "seed", self.seed, 0)
        if self.positive_class is not None and not isinstance(self.positive_class, str):
            raise TypeError(
                f"TrainingSpec.positive_class: {self.positive_class!r} is a "
                f"{type(self.positive_class).__name__}; expected the name of a class "
                "(a string, as in LabelingFunctionSet.classes) or None"
            )
        _require_int("TrainingSpec", "min_class_rows", self.min_class_rows, 1)
        _require_int("TrainingSpec", "max_holdout_partitions", self.max_holdout_partitions, 1, optional=True)
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
    rounding, since the value is a weighted sum over holdout rows. Gold rows are hand-checked,
    so the review queue leaves them out unless ``review_gold`` (then they are ranked too, and
    their suggested action says to keep the gold label)."""

    k: int = 5
    group: str | None = None
    review_rows: int = 25
    shards: int = 1
    review_gold: bool = False

    def __post_init__(self) -> None:
        _require_int("ImportanceSpec", "k", self.k, 1)
        _require_int("ImportanceSpec", "shards", self.shards, 1)
        _require_int("ImportanceSpec", "review_rows", self.review_rows, 0)


@dataclass(frozen=True)
class WhatIfSpec:
    """The ``what_if`` asset and ``dcai-assets what-if`` command: retrain the model without its
    most harmful rows (or one LF's rows) and compare with as many rows removed at random.

    ``fractions``: the sweep, as shares of the training window's rows removed (each between 0 and
    1). ``random_repeats``: random removals of the same size per step (their mean and spread are
    the baseline; at least 2, for a spread)."""

    fractions: Sequence[float] = (0.005, 0.01, 0.02, 0.05)
    random_repeats: int = 5

    def __post_init__(self) -> None:
        fractions = self.fractions
        if isinstance(fractions, str) or not isinstance(fractions, Sequence) or not fractions:
            raise ValueError(
                f"WhatIfSpec.fractions: {fractions!r}; expected a non-empty list of numbers in (0, 1)"
            )
        for f in fractions:
            if isinstance(f, bool) or not isinstance(f, int | float) or not 0 < f < 1:
                raise ValueError(
                    f"WhatIfSpec.fractions: {f!r} in {list(fractions)}; expected numbers between 0 and 1 "
                    "(exclusive), e.g. 0.01 for 1% of the training rows"
                )
        object.__setattr__(self, "fractions", tuple(fractions))  # hashable, as the spec is frozen
        _require_int("WhatIfSpec", "random_repeats", self.random_repeats, 2)


@dataclass(frozen=True)
class PrivacySpec:
    """No-human-access mode. With ``no_human_access``, no row-level value of a protected column
    reaches Dagster metadata, a log line or an MLflow param, tag or artifact: only aggregates,
    and any count over a group of fewer than ``min_group_size`` rows is suppressed (and said
    so). ``protected_columns``: None protects every data column. Row-level outputs in the lake
    are read through :func:`dcai_assets.privacy.read_rows`, which appends who, why, what and
    when to an append-only audit table at ``audit_path`` (default: ``<lake>/_audit/access.sqlite``)."""

    no_human_access: bool = False
    min_group_size: int = 10
    protected_columns: tuple[str, ...] | None = None
    audit_path: str | Path | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.no_human_access, bool):
            raise ValueError(f"PrivacySpec.no_human_access: {self.no_human_access!r}; expected True or False")
        _require_int("PrivacySpec", "min_group_size", self.min_group_size, 1)
        columns = self.protected_columns
        if columns is not None:
            if isinstance(columns, str) or not all(isinstance(c, str) and c for c in columns):
                raise ValueError(
                    f"PrivacySpec.protected_columns: {columns!r}; expected a list of column names "
                    "or None (every data column)"
                )
            object.__setattr__(self, "protected_columns", tuple(columns))

    def protects(self, column: object) -> bool:
        """Whether values of ``column`` are kept out of every UI surface (always False when off)."""
        if not self.no_human_access:
            return False
        return self.protected_columns is None or str(column) in self.protected_columns


@dataclass(frozen=True)
class HealthChecks(HealthSettings):
    """The data health checks on the importance scores (docs/concepts.md, "Data health checks"):
    each is warn-only unless named in ``blocking`` (then a failure is an ERROR that stops the
    assets downstream of the scores). The thresholds: ``alpha`` for every test; copies allowed
    up to ``max_duplicate_share`` (0: none); outliers beyond ``outlier_factor`` x the holdout's 99th
    percentile of the K-th neighbour distance, alarming above ``max_outlier_share`` of the
    training rows; a class below ``min_class_share`` of the training rows, or a holdout label mix
    ``max_label_shift`` (total variation) from the training window's; slices of at least
    ``min_slice_rows`` holdout rows falling ``min_accuracy_gap`` short of the model's confidence
    beyond the rest; likely label errors ``max_label_issue_excess`` above what the holdout's error
    rate at the same model confidence predicts."""

    blocking: Sequence[str] = ()

    def __post_init__(self) -> None:
        if isinstance(self.blocking, str) or not all(isinstance(b, str) for b in self.blocking):
            raise ValueError(
                f"HealthChecks.blocking: {self.blocking!r}; expected a list of check names "
                f"{list(CHECK_NAMES)}"
            )
        unknown = sorted(set(self.blocking) - set(CHECK_NAMES))
        if unknown:
            raise ValueError(
                f"HealthChecks.blocking: unknown checks {unknown}; expected names among {list(CHECK_NAMES)}"
            )
        object.__setattr__(self, "blocking", tuple(self.blocking))
        for name in (
            "alpha", "max_duplicate_share", "max_outlier_share", "min_class_share", "max_label_shift",
            "min_accuracy_gap", "max_label_issue_excess",
        ):  # fmt: skip
            _require_fraction(name, getattr(self, name), open_low=name == "alpha")
        factor = self.outlier_factor
        if isinstance(factor, bool) or not isinstance(factor, int | float) or not factor >= 1:
            raise ValueError(f"HealthChecks.outlier_factor: {factor!r}; expected a number >= 1")
        _require_int("HealthChecks", "min_slice_rows", self.min_slice_rows, 1)


def _require_fraction(name: str, value: object, *, open_low: bool = False) -> None:
    ok = not isinstance(value, bool) and isinstance(value, int | float) and 0 <= value <= 1
    if not ok or (open_low and value == 0):
        raise ValueError(
            f"HealthChecks.{name}: {value!r}; expected a number in {'(0' if open_low else '[0'}, 1]"
        )


Source = LandingDirectory | CallableSource
Partitioning = TimeWindowPartitions | DynamicPartitions | StaticPartitions


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
        Time windows (:class:`HourlyPartitions`, :class:`DailyPartitions`,
        :class:`WeeklyPartitions`, :class:`MonthlyPartitions`), :class:`StaticPartitions` or
        :class:`DynamicPartitions`.
    schema_path:
        The reviewable schema file (YAML) that validation compiles into a GX suite.
    key:
        Column(s) that identify a row; duplicates are quarantined.
    label:
        Column holding gold labels, if the data has any (may be partially filled).
    reference:
        The window a schema is inferred from (`dcai-assets schema infer`): a callable returning
        ``{partition: DataFrame}``, or partition keys to read from ``source``. Value sets, ranges
        and row counts inferred from it only warn; validation warns when the schema file was
        inferred from other partitions than these keys.
    schema_overrides:
        Settings declared on top of inference, per column (e.g. ``{"hour": {"min": 0, "max":
        23}}``) and for the table under ``"__table__"`` (``min_rows``, ``max_rows``,
        ``min_rows_per_day``, ``max_rows_per_day``, ``row_count_enforce``,
        ``max_quarantine_fraction``, ``drift_false_alarm_rate``). A declared set, ``min`` or
        ``max`` quarantines rows outside it; a declared row bound blocks the partition.
    health_checks:
        The data health checks on the importance scores and which of them block
        (:class:`HealthChecks`; default: all warn-only).
    max_partitions_per_run:
        The most partitions one run of a backfill (or of a relabel that automation starts)
        ingests or labels; a 365-day backfill is ``ceil(365 / max_partitions_per_run)`` runs per
        stage. Each partition still gets its own data version, checks and failed status.
    what_if:
        The what-if sweep (:class:`WhatIfSpec`): shares of the training window removed, and the
        random removals each is compared with.
    privacy:
        No-human-access mode (:class:`PrivacySpec`); off by default.
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
    max_partitions_per_run: int = 30
    what_if: WhatIfSpec = field(default_factory=WhatIfSpec)
    privacy: PrivacySpec = field(default_factory=lambda: PrivacySpec())
    health_checks: HealthChecks = HealthChecks()

    def __post_init__(self) -> None:
        if not isinstance(self.health_checks, HealthChecks):
            raise TypeError(
                f"DatasetSpec.health_checks: {type(self.health_checks).__name__}; expected HealthChecks"
            )
        if (
            isinstance(self.max_partitions_per_run, bool)
            or not isinstance(self.max_partitions_per_run, int)
            or self.max_partitions_per_run < 1
        ):
            raise ValueError(
                f"DatasetSpec.max_partitions_per_run: {self.max_partitions_per_run!r}; expected an int >= 1"
            )
        if not isinstance(self.what_if, WhatIfSpec):
            raise TypeError(f"DatasetSpec.what_if: {type(self.what_if).__name__}; expected a WhatIfSpec")
        if not isinstance(self.privacy, PrivacySpec):
            raise TypeError(f"DatasetSpec.privacy: {self.privacy!r}; expected a PrivacySpec")
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


def _check_safe_key(key: Any, file: str | None) -> None:
    if not isinstance(key, str) or not _KEY_PATTERN.match(key) or ".." in key:
        raise DataInputError(
            f"partition key {key!r} is not allowed (path separators, '..', spaces and "
            "leading dots are refused because keys become file names)",
            expected="letters, digits and _ . = : - only, e.g. '2024-05-01' or 'batch_7'",
            file=file,
            partition=key if isinstance(key, str) else repr(key),
        )


def check_partition_key(key: str, partitioning: Partitioning, *, file: str | None = None) -> str:
    """Return ``key`` if it is a safe partition key for ``partitioning``; raise otherwise.

    Keys end up in file paths, so separators, ``..`` and control characters are refused. A
    time-window key must be the start of a window (in Dagster's format) inside start/end; a
    static key one of the declared keys; a dynamic key with ``order="time"`` must name a time.
    """
    _check_safe_key(key, file)
    if isinstance(partitioning, TimeWindowPartitions):
        _check_time_window_key(key, partitioning, file)
    elif isinstance(partitioning, StaticPartitions):
        if key not in partitioning.keys:
            shown = ", ".join(list(partitioning.keys)[:10]) + (" ..." if len(partitioning.keys) > 10 else "")
            raise DataInputError(
                "not one of the declared static partitions",
                expected=f"one of {shown} (StaticPartitions.keys)",
                file=file,
                partition=key,
            )
    elif (
        isinstance(partitioning, DynamicPartitions)
        and partitioning.order == "time"
        and parse_time_key(key) is None
    ):
        raise DataInputError(
            "partition key does not name a time, and DynamicPartitions(order='time') needs one",
            expected=f"one of {TIME_KEY_FORMATS}, e.g. 2024-05 or 2024-05-01",
            file=file,
            partition=key,
        )
    return key


def _check_time_window_key(key: str, partitioning: TimeWindowPartitions, file: str | None) -> None:
    unit, form = partitioning.UNIT, partitioning.key_format_text
    example = f"{partitioning.KEY_EXAMPLE}{Path(file).suffix if file else ''}"
    try:
        if len(key) != len(partitioning.KEY_EXAMPLE):  # strptime accepts unpadded fields
            raise ValueError(key)
        start = datetime.strptime(key, partitioning.KEY_FORMAT)
    except ValueError:
        what = "a date" if unit != "hour" else "an hour"
        raise DataInputError(
            f"file name is not {what}" if file else f"partition key is not {what}",
            expected=f"a{'n' if unit == 'hour' else ''} {_ADJECTIVE[unit]} partition key of the form "
            f"{form}, e.g. {example}",
            file=file,
            partition=key,
        ) from None
    if not is_window_start(start, unit) or (
        unit == "hour" and not exists_locally(start, partitioning.timezone)
    ):
        containing = window_containing(start, unit)
        raise DataInputError(
            f"{key} is not the start of a{'n' if unit == 'hour' else ''} {unit}"
            + (f" in {partitioning.timezone}" if unit == "hour" else ""),
            expected=f"the key of the {unit} it falls in: {_WINDOW_START[unit]}, e.g. "
            f"{containing.strftime(partitioning.KEY_FORMAT)}",
            file=file,
            partition=key,
        )
    first, end = partitioning.start_time, partitioning.end_time
    if start < first or (end is not None and add_units(start, unit) > end):
        raise DataInputError(
            "date is outside the partitions' range",
            expected=f"a {unit} from {first.strftime(partitioning.KEY_FORMAT)}"
            + (f" ending by {partitioning.end}" if end is not None else " on"),
            file=file,
            partition=key,
        )


_ADJECTIVE = {"hour": "hourly", "day": "daily", "week": "weekly", "month": "monthly"}
_WINDOW_START = {
    "hour": "minute 00",
    "day": "the day",
    "week": "the Sunday that starts it",
    "month": "the month's first day",
}


def partition_order(keys: Iterable[str], partitioning: Partitioning) -> list[str]:
    """``keys`` oldest first: the one ordering every "newest N partitions" goes through.

    Time windows order by the window's start; dynamic and static partitions by their ``order``
    setting (by the time the keys name when they all name one). Never registration order.
    """
    keys = list(dict.fromkeys(keys))
    if isinstance(partitioning, TimeWindowPartitions):
        return sorted(keys)  # Dagster's formats are fixed-width, most significant field first
    if (
        isinstance(partitioning, StaticPartitions)
        and partitioning.order is None
        and any(parse_time_key(k) is None for k in keys)
    ):
        declared = {k: i for i, k in enumerate(partitioning.keys)}
        return sorted(keys, key=lambda k: (declared.get(k, len(declared)), k))
    return order_keys(keys, partitioning.order)


def partition_span(partitioning: Partitioning, key: str) -> timedelta | None:
    """The time partition ``key`` covers (real time: 23 h for a daily partition over a DST
    change), or None when it covers no known span (a batch name, an instant).

    Time windows: their window. Dynamic and static keys that name a year, month, day or
    Dagster-style hour span that unit (``2013-05``: 31 days). Call ``.total_seconds()`` or
    divide by ``timedelta(days=1)`` for a number.
    """
    if isinstance(partitioning, TimeWindowPartitions):
        check_partition_key(key, partitioning)
        start = datetime.strptime(key, partitioning.KEY_FORMAT)
        return elapsed(start, add_units(start, partitioning.UNIT), partitioning.timezone)
    parsed = parse_time_key(key)
    if parsed is None or parsed[1] is None:
        return None
    start, unit = parsed
    return add_units(start, unit) - start
