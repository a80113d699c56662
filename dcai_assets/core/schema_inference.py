"""Schema inference: a :class:`~dcai_assets.core.schema.TableSchema` from a reference window of
partitions, with bounds widened by margins, declared overrides, and drift thresholds calibrated on
the variation inside the window (hence its own module: it uses both the schema types and drift)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

import numpy as np
import pandas as pd

from dcai_assets.core.conformance import coerce_column, missing_markers_as_null
from dcai_assets.core.drift import column_drift, partition_profile
from dcai_assets.core.schema import (
    _N_BINS,
    RULES,
    TABLE,
    ColumnSchema,
    DType,
    ReferenceProfile,
    TableSchema,
)

_OVERRIDABLE = {f.name for f in fields(ColumnSchema)} - {"name", "reference"}


def infer_dtype(series: pd.Series) -> DType:
    """The schema dtype a column maps to: its pandas dtype, or for text (a CSV's columns) what
    every value parses as. Digits with a leading zero (``000123``) are text, an id; integers with
    a missing value are ``float64``, as pandas reads them, unless a float could not hold them."""
    if pd.api.types.is_bool_dtype(series):
        return "bool"
    if pd.api.types.is_integer_dtype(series):
        return "int64"
    if pd.api.types.is_float_dtype(series):
        return "float64"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    values = missing_markers_as_null(series)
    text = values.dropna()
    if len(text) and pd.api.types.infer_dtype(text, skipna=True) == "string":
        parsed = _dtype_of_text(text.str.strip(), gaps=len(text) < len(series))
        if parsed is not None:
            return parsed
    if len(text):
        parsed = pd.to_datetime(text.head(1000), errors="coerce", utc=True, format="ISO8601")
        if parsed.notna().all() and text.head(1000).astype(str).str.len().min() >= 8:
            return "datetime"
    return "string"


def _dtype_of_text(text: pd.Series, gaps: bool) -> DType | None:
    """``int64``, ``float64`` or ``bool`` if every value of ``text`` parses as one, else None."""
    if text.str.fullmatch(r"[+-]?\d+").all():
        if text.str.fullmatch(r"[+-]?0\d+").any():
            return None  # zero-padded: an id or a code, kept as text
        digits = text.str.lstrip("+-")
        magnitude = digits[digits.str.len() >= 16].map(int)  # 2**53 has 16 digits
        if (magnitude > 2**63 - 1).any():
            return None
        if not gaps:
            return "int64"
        return None if (magnitude >= 2**53).any() else "float64"  # a float would round them
    if pd.to_numeric(text, errors="coerce").notna().all():
        return "float64"
    if not gaps and text.str.lower().isin(("true", "false")).all():
        return "bool"
    return None


def _declared_missing_as_null(
    frames: list[pd.DataFrame], overrides: Mapping[str, Mapping[str, Any]]
) -> list[pd.DataFrame]:
    """The frames with each column's declared ``missing_values`` (``schema_overrides``) as null."""
    declared = {
        name: frozenset(str(v).strip() for v in settings["missing_values"] or ())
        for name, settings in overrides.items()
        if isinstance(settings, Mapping) and settings.get("missing_values")
    }
    if not declared:
        return frames
    out = []
    for frame in frames:
        frame = frame.copy()
        for name, markers in declared.items():
            if name in frame.columns:
                frame[name] = missing_markers_as_null(frame[name], markers)
        out.append(frame)
    return out


def _typed(frames: list[pd.DataFrame]) -> tuple[list[pd.DataFrame], dict[Any, DType]]:
    """Each column's dtype over the whole window, and the frames with their text number and bool
    columns parsed as that dtype."""
    whole = pd.concat(frames, ignore_index=True)
    dtypes = {name: infer_dtype(whole[name]) for name in whole.columns}
    parse = {
        name: ColumnSchema(name=str(name), dtype=dtype)
        for name, dtype in dtypes.items()
        if dtype in ("int64", "float64", "bool")
    }
    out = []
    for frame in frames:
        frame = frame.copy()
        for name, column in parse.items():
            if name in frame.columns and not (
                frame[name].dtype.kind in "iufb" or pd.api.types.is_bool_dtype(frame[name])
            ):
                frame[name] = coerce_column(frame[name], column)[0]
        out.append(frame)
    return out, dtypes


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
    overrides = dict(overrides or {})
    frames, dtypes = _typed(_declared_missing_as_null(list(reference.values()), overrides))
    whole = pd.concat(frames, ignore_index=True)
    table_overrides = dict(overrides.pop(TABLE, {}) or {})
    labels = _check_named_columns(whole, overrides, label)
    # A single-column key is an id: it grows and has no distribution. Parts of a composite key
    # (store + product number, say) are ordinary features.
    keys = set(key) if key and len(key) == 1 else set()
    margins = {"range_margin": range_margin, "null_margin": null_margin}
    columns = [
        _infer_column(
            name, dtypes[name], whole[name], frames, overrides, keys, labels, max_categories, **margins
        )
        for name in whole.columns
    ]
    schema = TableSchema(
        columns=columns, key=list(key or []), reference_partitions=[str(k) for k in reference]
    )
    _set_row_bounds(schema, reference, spans, row_margin)
    _set_drift_thresholds(schema, frames)
    _apply_table_overrides(schema, table_overrides)
    schema.note = _note(reference, whole, overrides)
    return schema


def _note(
    reference: Mapping[str, pd.DataFrame], whole: pd.DataFrame, overrides: Mapping[str, Mapping[str, Any]]
) -> str:
    """The schema file's note: the window it was inferred from, and the columns whose dtype is a guess."""
    window = f"{min(reference)} .. {max(reference)}, {len(whole):,} rows"
    note = f"inferred from {len(reference)} reference partitions ({window})"
    empty = undetermined_columns(whole, overrides)
    if empty:
        note += "; no value in the window, dtype guessed as string (declare it in schema_overrides): "
        note += ", ".join(empty)
    return note


def undetermined_columns(whole: pd.DataFrame, overrides: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Columns with no value in the reference window and no declared dtype: their dtype is a
    guess (string), and nothing about their values was learnt."""
    return [
        str(name)
        for name in whole.columns
        if whole[name].isna().all() and "dtype" not in overrides.get(str(name), {})
    ]


def _check_named_columns(
    whole: pd.DataFrame, overrides: Mapping[str, Any], label: str | Sequence[str] | None
) -> set[str]:
    """Check that the overridden and label columns are in the data; return the label columns."""
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
    return labels


def _infer_column(
    name: Any,
    dtype: DType,
    s: pd.Series,
    frames: list[pd.DataFrame],
    overrides: Mapping[str, Mapping[str, Any]],
    keys: set[str],
    labels: set[str],
    max_categories: int,
    *,
    range_margin: float,
    null_margin: float,
) -> ColumnSchema:
    """One column's schema: learnt bounds (warn), then its overrides (declared), then its
    reference profile if it is a feature."""
    col, inferred = _learn_column(
        name, dtype, s, frames, name in keys, max_categories, range_margin, null_margin
    )
    _apply_column_overrides(col, name, dict(overrides.get(str(name), {})), inferred)
    if col.dtype in ("int64", "float64", "string", "bool") and name not in keys | labels:
        col.reference = reference_profile(s, col, max_categories)
    return col


def _learn_column(
    name: Any,
    dtype: DType,
    s: pd.Series,
    frames: list[pd.DataFrame],
    is_key: bool,
    max_categories: int,
    range_margin: float,
    null_margin: float,
) -> tuple[ColumnSchema, dict[str, str]]:
    """The column's dtype, null limit, and set or range widened by the margins; returns the
    column and the rules it inferred (all ``"warn"``)."""
    null_fractions = [float(f[name].isna().mean()) for f in frames if len(f)]
    worst = max(null_fractions, default=0.0)
    col = ColumnSchema(name=str(name), dtype=dtype, nullable=bool(s.isna().any()))
    inferred: dict[str, str] = {}
    if col.nullable:
        col.max_null_fraction = round(min(1.0, max(worst * null_margin, worst + 0.05)), 4)
    if dtype in ("string", "bool"):
        uniques = s.dropna().astype(str).unique()
        if dtype == "string" and 0 < len(uniques) <= max_categories and not is_key:
            col.allowed_values = sorted(uniques.tolist())
            inferred["allowed_values"] = "warn"
    elif dtype in ("int64", "float64") and not is_key:  # ids grow: no range, no drift
        x = s.dropna().to_numpy(dtype=float)
        if len(x):
            lo, hi = float(x.min()), float(x.max())
            span = max(hi - lo, 1.0)
            col.min = 0.0 if lo >= 0 and lo - range_margin * span < 0 else lo - range_margin * span
            col.max = hi + range_margin * span
            if dtype == "int64":
                col.min, col.max = float(np.floor(col.min)), float(np.ceil(col.max))
            inferred.update(min="warn", max="warn")
    return col, inferred


def _apply_column_overrides(
    col: ColumnSchema, name: Any, declared: Mapping[str, Any], inferred: dict[str, str]
) -> None:
    """Set what the user declares for the column (its rules then quarantine unless its
    ``enforce`` says otherwise) and re-validate the column."""
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
