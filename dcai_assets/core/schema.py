"""Schema as code: columns, dtypes, nullability, value sets, ranges, row-count bounds and drift
thresholds, inferred from a reference window and kept in a reviewable YAML file.

A short window cannot show every legitimate value, so what is inferred from it only warns
(``enforce: warn``); what the user declares (``schema_overrides``, or ``enforce: quarantine``
written in the file) quarantines rows or blocks the partition."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml

# Chance of a drift alert on a partition drawn from the reference distribution, per check and
# partition (shared across its features): one false alarm in about 1,000 partitions.
FALSE_ALARM_RATE = 0.001

DType = Literal["int64", "float64", "string", "bool", "datetime"]
DTYPES: tuple[str, ...] = ("int64", "float64", "string", "bool", "datetime")

# Outer histogram bins are open so that values beyond the reference range still land somewhere.
_N_BINS = 10
# Row-level rules whose enforcement is chosen per column: quarantine failing rows, or warn only.
RULES: tuple[str, ...] = ("allowed_values", "min", "max")
ENFORCE: tuple[str, ...] = ("quarantine", "warn")
ROW_COUNT_ENFORCE: tuple[str, ...] = ("block", "warn")
# The key of table-level settings in ``schema_overrides``.
TABLE = "__table__"
SECONDS_PER_DAY = 86_400.0


@dataclass
class ReferenceProfile:
    """The reference distribution a partition is compared with for drift."""

    frequencies: dict[str, float] | None = None  # categorical: value -> share (plus "__other__")
    bin_edges: list[float] | None = None  # numeric: inner edges; bins are (-inf, e0], ..., (eN, inf)
    bin_frequencies: list[float] | None = None
    median: float | None = None
    rows: int | None = None  # non-null values the profile was measured on (its sampling noise)


@dataclass
class ColumnSchema:
    """What one column must hold."""

    name: str
    dtype: DType
    nullable: bool = True
    max_null_fraction: float = 0.0
    allowed_values: list[Any] | None = None
    min: float | None = None
    max: float | None = None
    # rule ("allowed_values", "min", "max") -> "quarantine" (declared) or "warn" (inferred);
    # a rule not listed quarantines: whoever wrote it by hand declared it.
    enforce: dict[str, str] | None = None
    drift_threshold: float | None = None  # against the reference window
    step_drift_threshold: float | None = None  # against the previous partition
    reference: ReferenceProfile | None = None
    # Text a CSV holds for a missing value in this column, beyond an empty cell: e.g. ["NA"] for a
    # text column exported from R (a text column keeps NA as text unless it is listed here).
    missing_values: list[str] | None = None

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(
                f"column {self.name!r}: dtype {self.dtype!r} is not supported; expected one of {DTYPES}"
            )
        if self.missing_values is not None:
            if isinstance(self.missing_values, str) or not all(
                isinstance(v, str) for v in self.missing_values
            ):
                raise ValueError(
                    f"column {self.name!r}: missing_values {self.missing_values!r}; expected a list of "
                    "texts, e.g. [NA, n/a]"
                )
            self.missing_values = list(self.missing_values)
        if isinstance(self.reference, Mapping):
            self.reference = ReferenceProfile(**self.reference)
        if self.enforce is not None:
            if not isinstance(self.enforce, Mapping):
                raise ValueError(
                    f"column {self.name!r}: enforce {self.enforce!r}; expected a mapping of rule to "
                    f"one of {ENFORCE}, e.g. {{allowed_values: warn}}"
                )
            for rule, how in self.enforce.items():
                if rule not in RULES or how not in ENFORCE:
                    raise ValueError(
                        f"column {self.name!r}: enforce {rule}: {how!r}; expected a rule in {RULES} "
                        f"set to one of {ENFORCE}"
                    )
            self.enforce = dict(self.enforce)

    def enforcement(self, rule: str) -> str:
        """``"quarantine"`` or ``"warn"`` for a row-level rule of this column."""
        return (self.enforce or {}).get(rule, "quarantine")

    @property
    def is_numeric(self) -> bool:
        return self.dtype in ("int64", "float64")

    @property
    def is_categorical(self) -> bool:
        return self.dtype in ("string", "bool")


@dataclass
class TableSchema:
    """A dataset's schema: its columns plus table-level bounds."""

    columns: list[ColumnSchema]
    min_rows: int = 1  # per partition, when its time span is unknown (dynamic partitions)
    max_rows: int | None = None
    # Per day of the partition's time span: a monthly partition may hold ~30x a daily one.
    min_rows_per_day: float | None = None
    max_rows_per_day: float | None = None
    row_count_enforce: str = "block"  # "block" (declared) or "warn" (inferred)
    max_quarantine_fraction: float = 0.05
    drift_false_alarm_rate: float = FALSE_ALARM_RATE
    key: list[str] = field(default_factory=list)
    reference_partitions: list[str] = field(default_factory=list)
    note: str = ""

    def __post_init__(self) -> None:
        self.columns = [c if isinstance(c, ColumnSchema) else ColumnSchema(**c) for c in self.columns]
        names = [c.name for c in self.columns]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"schema lists columns {duplicated} more than once; expected unique names")
        if self.row_count_enforce not in ROW_COUNT_ENFORCE:
            raise ValueError(
                f"row_count_enforce: {self.row_count_enforce!r}; expected one of {ROW_COUNT_ENFORCE}"
            )
        if not 0.0 < float(self.drift_false_alarm_rate) < 1.0:
            raise ValueError(
                f"drift_false_alarm_rate: {self.drift_false_alarm_rate!r}; expected a probability in (0, 1)"
            )
        for name in ("min_rows_per_day", "max_rows_per_day"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int | float) or value < 0):
                raise ValueError(f"{name}: {value!r}; expected a non-negative number of rows per day")

    def row_bounds(self, span_days: float | None = None) -> tuple[int, int | None]:
        """(min, max) rows for a partition covering ``span_days`` days (None: span unknown).

        Per-day bounds scale with the span; each side falls back to the per-partition bound.
        """
        if span_days is not None and (not np.isfinite(span_days) or span_days <= 0):
            raise ValueError(f"span_days: {span_days!r}; expected a positive number of days or None")
        low, high = self.min_rows, self.max_rows
        if span_days is not None and self.min_rows_per_day is not None:
            low = int(np.floor(self.min_rows_per_day * span_days))
        if span_days is not None and self.max_rows_per_day is not None:
            high = int(np.ceil(self.max_rows_per_day * span_days))
        return low, high

    def describe_row_bounds(self, span_days: float | None = None) -> str:
        """The bounds in words, with the per-day rates they come from."""
        low, high = self.row_bounds(span_days)
        text = f"{low:,}–{high:,}" if high is not None else f"≥ {low:,}"
        per_day = span_days is not None and (
            self.min_rows_per_day is not None or self.max_rows_per_day is not None
        )
        if per_day:
            lo = f"{self.min_rows_per_day:,.1f}" if self.min_rows_per_day is not None else "-"
            hi = f"{self.max_rows_per_day:,.1f}" if self.max_rows_per_day is not None else "-"
            text += f" ({lo}–{hi} rows per day × {span_days:g} days)"
        return text

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> ColumnSchema:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"column {name!r} is not in the schema; expected one of {self.names}")

    # --- the reviewable file -------------------------------------------------------------------
    def to_yaml(self) -> str:
        data = _prune(asdict(self))
        header = "# Schema as code for dcai_assets. Review changes like code; regenerate with\n"
        header += "#   dcai-assets schema infer <module:spec>\n"
        header += "# enforce: warn = inferred from the reference window (rows outside are reported and\n"
        header += "# kept); quarantine = declared (rows outside are quarantined). row_count_enforce: warn\n"
        header += "# (inferred) or block (declared). Declare in the spec's schema_overrides, or edit here.\n"
        if self.note:
            header += f"# {self.note}\n"
        return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_yaml(), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> TableSchema:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(
                f"schema file {str(path)!r} does not exist; expected a YAML schema. "
                "Create it with `dcai-assets schema infer <module:spec>`"
            )
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"schema file {str(path)!r} is empty or not a mapping; expected a YAML schema")
        allowed = {f.name for f in fields(cls)}
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(
                f"schema file {str(path)!r}: unknown keys {sorted(unknown)}; expected {sorted(allowed)}"
            )
        column_keys = {f.name for f in fields(ColumnSchema)}
        for i, column in enumerate(data.get("columns") or []):
            name = column.get("name", f"#{i + 1}") if isinstance(column, dict) else f"#{i + 1}"
            unknown = set(column) - column_keys if isinstance(column, dict) else {"(not a mapping)"}
            if unknown:
                raise ValueError(
                    f"schema file {str(path)!r}, column {name!r}: unknown keys {sorted(unknown)}; "
                    f"expected some of {sorted(column_keys)}"
                )
        try:
            return cls(**data)
        except (TypeError, ValueError) as e:
            raise ValueError(f"schema file {str(path)!r}: {e}") from e


def _prune(value: Any) -> Any:
    """Drop None entries so the YAML file shows only what is set."""
    if isinstance(value, dict):
        return {k: _prune(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
