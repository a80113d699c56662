"""Schema as code: columns, dtypes, nullability, value sets, ranges, row-count bounds and drift
thresholds, inferred from a reference window and kept in a reviewable YAML file.

A short window cannot show every legitimate value, so what is inferred from it only warns
(``enforce: warn``); what the user declares (``schema_overrides``, or ``enforce: quarantine``
written in the file) quarantines rows or blocks the partition."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
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

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(
                f"column {self.name!r}: dtype {self.dtype!r} is not supported; expected one of {DTYPES}"
            )
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


_OVERRIDABLE = {f.name for f in fields(ColumnSchema)} - {"name", "reference"}


def infer_dtype(series: pd.Series) -> DType:
    """The schema dtype a pandas column maps to."""
    if pd.api.types.is_bool_dtype(series):
        return "bool"
    if pd.api.types.is_integer_dtype(series):
        return "int64"
    if pd.api.types.is_float_dtype(series):
        return "float64"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    non_null = series.dropna()
    if len(non_null):
        parsed = pd.to_datetime(non_null.head(1000), errors="coerce", utc=True, format="ISO8601")
        if parsed.notna().all() and non_null.head(1000).astype(str).str.len().min() >= 8:
            return "datetime"
    return "string"


def reference_profile(series: pd.Series, column: ColumnSchema, max_categories: int) -> ReferenceProfile:
    """Summarise a reference column into what drift detection compares against."""
    values = series.dropna()
    if column.is_categorical:
        shares = values.astype(str).value_counts(normalize=True)
        top = shares.head(max_categories)
        freqs = {str(k): round(float(v), 6) for k, v in top.items()}
        other = float(1.0 - top.sum())
        if other > 1e-9:
            freqs["__other__"] = round(other, 6)
        return ReferenceProfile(frequencies=freqs, rows=len(values))
    if column.is_numeric and len(values):
        x = values.to_numpy(dtype=float)
        edges = np.unique(np.quantile(x, np.linspace(0, 1, _N_BINS + 1)[1:-1]))
        counts = np.bincount(np.searchsorted(edges, x, side="left"), minlength=len(edges) + 1)
        return ReferenceProfile(
            bin_edges=[float(e) for e in edges],
            bin_frequencies=[round(float(c), 6) for c in counts / counts.sum()],
            median=float(np.median(x)),
            rows=len(x),
        )
    return ReferenceProfile()


def infer_schema(
    reference: Mapping[str, pd.DataFrame],
    *,
    key: list[str] | None = None,
    label: str | Sequence[str] | None = None,
    spans: Mapping[str, float] | None = None,
    max_categories: int = 50,
    range_margin: float = 0.25,
    row_margin: float = 0.5,
    null_margin: float = 2.0,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> TableSchema:
    """Infer a schema from a reference window of partitions (``{partition_key: DataFrame}``).

    Bounds are widened by margins (a window never shows every legitimate value) and marked
    ``enforce: warn``: rows outside them are reported, not quarantined, and a row count outside
    them warns. What ``overrides`` sets is declared: it quarantines (or blocks, for row counts).
    Each feature's drift threshold is set from the variation seen inside the window.

    Parameters
    ----------
    reference:
        The window, ``{partition_key: DataFrame}``.
    key:
        Key column(s); a single-column key is an id (no set, range or drift profile).
    label:
        Label and gold-label column(s): not features, so never drift-profiled.
    spans:
        ``{partition_key: days}`` the partitions cover (e.g. 31 for January, 1/24 for an hour);
        with it, row-count bounds are learnt per day and scale with each partition's span.
    overrides:
        ``{column: {setting: value}}``, and ``{"__table__": {...}}`` for the table's settings
        (``min_rows``, ``max_rows``, ``min_rows_per_day``, ``max_rows_per_day``,
        ``row_count_enforce``, ``max_quarantine_fraction``, ``drift_false_alarm_rate``).

    Examples
    --------
    >>> days = ["2024-01-01", "2024-01-02", "2024-01-03"]
    >>> reference = {
    ...     day: pd.DataFrame({"amount": np.arange(100.0) + i, "channel": ["web", "app"] * 50})
    ...     for i, day in enumerate(days)
    ... }
    >>> schema = infer_schema(reference, overrides={"amount": {"min": 0}})
    >>> schema.names
    ['amount', 'channel']
    >>> amount = schema.column("amount")
    >>> amount.dtype, amount.min, amount.enforce["min"], amount.enforce["max"]
    ('float64', 0, 'quarantine', 'warn')
    >>> sorted(schema.column("channel").allowed_values)
    ['app', 'web']
    """
    if not reference:
        raise ValueError("infer_schema: the reference window is empty; expected at least one partition")
    frames = list(reference.values())
    whole = pd.concat(frames, ignore_index=True)
    overrides = dict(overrides or {})
    table_overrides = dict(overrides.pop(TABLE, {}) or {})
    unknown = set(overrides) - set(whole.columns)
    if unknown:
        raise ValueError(
            f"schema_overrides names columns {sorted(unknown)} that are not in the reference data; "
            f"expected some of {list(whole.columns)}, or {TABLE!r} for table settings"
        )
    labels = {label} if isinstance(label, str) else set(label or ())
    missing_labels = labels - set(whole.columns)
    if missing_labels:
        raise ValueError(
            f"infer_schema: label column(s) {sorted(missing_labels)} are not in the reference data; "
            f"expected some of {list(whole.columns)}"
        )
    # A single-column key is an id: it grows and has no distribution. Parts of a composite key
    # (store + product number, say) are ordinary features.
    keys = set(key) if key and len(key) == 1 else set()
    columns: list[ColumnSchema] = []
    for name in whole.columns:
        s = whole[name]
        dtype = infer_dtype(s)
        null_fractions = [float(f[name].isna().mean()) for f in frames if len(f)]
        worst = max(null_fractions, default=0.0)
        col = ColumnSchema(name=str(name), dtype=dtype, nullable=bool(s.isna().any()))
        inferred: dict[str, str] = {}
        if col.nullable:
            col.max_null_fraction = round(min(1.0, max(worst * null_margin, worst + 0.05)), 4)
        if dtype in ("string", "bool"):
            uniques = s.dropna().astype(str).unique()
            if dtype == "string" and len(uniques) <= max_categories and name not in keys:
                col.allowed_values = sorted(uniques.tolist())
                inferred["allowed_values"] = "warn"
        elif dtype in ("int64", "float64") and name not in keys:  # ids grow: no range, no drift
            x = s.dropna().to_numpy(dtype=float)
            if len(x):
                lo, hi = float(x.min()), float(x.max())
                span = max(hi - lo, 1.0)
                col.min = 0.0 if lo >= 0 and lo - range_margin * span < 0 else lo - range_margin * span
                col.max = hi + range_margin * span
                if dtype == "int64":
                    col.min, col.max = float(np.floor(col.min)), float(np.ceil(col.max))
                inferred.update(min="warn", max="warn")
        declared = dict(overrides.get(str(name), {}))
        for attr, value in declared.items():
            if attr not in _OVERRIDABLE:
                raise ValueError(
                    f"schema_overrides[{name!r}]: unknown setting {attr!r}; "
                    f"expected one of {sorted(_OVERRIDABLE)}"
                )
            if attr != "enforce":
                setattr(col, attr, value)
            if attr in RULES:  # declared by the user: enforced unless they say otherwise
                inferred[attr] = "quarantine"
        inferred.update(declared.get("enforce") or {})
        col.enforce = {r: inferred[r] for r in RULES if r in inferred} or None
        col.__post_init__()  # re-check what the overrides set, e.g. the dtype
        if col.dtype in ("int64", "float64", "string", "bool") and name not in keys | labels:
            col.reference = reference_profile(s, col, max_categories)
        columns.append(col)
    schema = TableSchema(
        columns=columns, key=list(key or []), reference_partitions=[str(k) for k in reference]
    )
    _set_row_bounds(schema, reference, spans, row_margin)
    _set_drift_thresholds(schema, frames)
    _apply_table_overrides(schema, table_overrides)
    schema.note = (
        f"inferred from {len(frames)} reference partitions "
        f"({min(reference)} .. {max(reference)}, {len(whole):,} rows)"
    )
    return schema


_TABLE_OVERRIDABLE = (
    "min_rows",
    "max_rows",
    "min_rows_per_day",
    "max_rows_per_day",
    "row_count_enforce",
    "max_quarantine_fraction",
    "drift_false_alarm_rate",
)


def _set_row_bounds(
    schema: TableSchema,
    reference: Mapping[str, pd.DataFrame],
    spans: Mapping[str, float] | None,
    margin: float,
) -> None:
    """Learn row-count bounds (per partition, and per day when the spans are known); inferred
    from a few partitions, they warn until declared."""
    sizes = [len(f) for f in reference.values()]
    schema.min_rows = max(1, int(np.floor(min(sizes) * (1 - margin))))
    schema.max_rows = int(np.ceil(max(sizes) * (1 + margin)))
    schema.row_count_enforce = "warn"
    if spans is None:
        return
    missing = [k for k in reference if k not in spans]
    if missing:
        raise ValueError(f"spans: no span for reference partitions {missing[:5]}; expected days for each")
    days = np.array([float(spans[k]) for k in reference])
    if not np.all(np.isfinite(days)) or np.any(days <= 0):
        raise ValueError(f"spans: {dict(spans)!r}; expected a positive number of days per partition")
    rates = np.array(sizes, dtype=float) / days
    schema.min_rows_per_day = round(float(rates.min() * (1 - margin)), 4)
    schema.max_rows_per_day = round(float(rates.max() * (1 + margin)), 4)


def _apply_table_overrides(schema: TableSchema, settings: Mapping[str, Any]) -> None:
    """Table settings the user declares; a declared row bound replaces the learnt per-day one on
    its side (unless that is declared too) and makes the row count blocking."""
    unknown = set(settings) - set(_TABLE_OVERRIDABLE)
    if unknown:
        raise ValueError(
            f"schema_overrides[{TABLE!r}]: unknown settings {sorted(unknown)}; "
            f"expected some of {list(_TABLE_OVERRIDABLE)}"
        )
    for side in ("min", "max"):
        if f"{side}_rows" in settings and f"{side}_rows_per_day" not in settings:
            setattr(schema, f"{side}_rows_per_day", None)
    for attr, value in settings.items():
        setattr(schema, attr, value)
    if any(k.endswith(("_rows", "_rows_per_day")) for k in settings) and "row_count_enforce" not in settings:
        schema.row_count_enforce = "block"
    schema.__post_init__()


def _set_drift_thresholds(
    schema: TableSchema, frames: list[pd.DataFrame], factor: float = 2.0, floor: float = 0.05
) -> None:
    """Per-feature thresholds, ``factor`` x the largest drift seen inside the reference window
    (at least ``floor``), so that normal variation does not alert: one for a partition against
    the whole window, one for a partition against the one before it."""
    from dcai_assets.core.drift import column_drift, partition_profile

    frames = [f for f in frames if len(f)]
    profiles = [partition_profile(f, schema.columns) for f in frames]
    for col in schema.columns:
        ref = col.reference
        if ref is None or (ref.frequencies is None and ref.bin_edges is None):
            continue
        if col.drift_threshold is None:
            scores = [column_drift(f[col.name], col, ref, alpha=None).distance for f in frames]
            col.drift_threshold = round(max(floor, factor * max(scores, default=0.0)), 4)
        if col.step_drift_threshold is None:
            steps = [
                column_drift(cur[col.name], col, prev[col.name], alpha=None).distance
                for prev, cur in zip(profiles, frames[1:], strict=False)
                if col.name in prev
            ]
            col.step_drift_threshold = round(max(floor, factor * max(steps, default=0.0)), 4)
