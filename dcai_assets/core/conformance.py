"""Bring a raw partition to its schema, row by row: coerce dtypes, and find the rows that break a
row-level rule (unparseable value, null where not allowed, value outside its set or range,
duplicate key). Nothing is dropped: failing rows go to quarantine with their reason. A set or
range marked ``enforce: warn`` (inferred from the reference window) only reports its rows."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import numpy as np
import pandas as pd

from dcai_assets.core.schema import ColumnSchema, TableSchema

REASON_COLUMN = "_quarantine_reason"
ROW_COLUMN = "_row"


@dataclass
class ColumnProblem:
    """Rows of one column that break one rule, with a few examples (row number, raw value)."""

    column: str
    rule: str  # "dtype", "null", "allowed_values", "range", "duplicate_key", "missing_column"
    count: int
    expected: str
    examples: list[tuple[int, object]] = field(default_factory=list)
    enforce: str = "quarantine"  # "warn": the rows are reported and kept (an inferred bound)


@dataclass
class Conformance:
    """The outcome of conforming one partition: what passed, what is quarantined and why."""

    valid: pd.DataFrame
    quarantine: pd.DataFrame
    coerced: pd.DataFrame  # all rows, schema columns, schema dtypes (unparseable values -> null)
    rows_in: int
    missing_columns: list[str]
    extra_columns: list[str]
    renamed_guess: dict[str, str]  # missing column -> extra column that looks like it
    problems: list[ColumnProblem]
    nulls: dict[str, ColumnProblem] = field(default_factory=dict)  # nulls as read, per column

    @property
    def rows_valid(self) -> int:
        return len(self.valid)

    @property
    def rows_quarantined(self) -> int:
        return len(self.quarantine)


def _examples(values: pd.Series, mask: np.ndarray, n: int = 3) -> list[tuple[int, object]]:
    idx = np.flatnonzero(mask)[:n]
    return [(int(values.index[i]), _plain(values.iloc[i])) for i in idx]


def _plain(v: object) -> object:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    if isinstance(v, str):
        return _clip(v)
    return v


_CLIP = 60


def _clip(text: str) -> str:
    """A value short enough for a message: a 10 MB cell is not copied into every reason."""
    return text if len(text) <= _CLIP else f"{text[:40]}... ({len(text):,} characters)"


MISSING_MARKERS = frozenset(
    {"", "NA", "N/A", "n/a", "NaN", "nan", "-NaN", "-nan", "NULL", "null", "None", "<NA>", "#N/A", "#NA"}
)
"""Text that means a missing value in a number, date or bool column (a CSV's columns are read as
text). In a text column it is text: ``NA`` may be Namibia, ``None`` a valid answer; a column's
``missing_values`` in the schema adds its own."""


def column_missing_markers(column: ColumnSchema) -> frozenset[str]:
    """The texts that are a missing value in ``column``."""
    markers = frozenset() if column.dtype == "string" else MISSING_MARKERS
    return markers | frozenset(v.strip() for v in column.missing_values or ())


def missing_markers_as_null(values: pd.Series, markers: frozenset[str] = MISSING_MARKERS) -> pd.Series:
    """``values`` with the text of ``markers`` (surrounding spaces ignored) as null; a column
    that holds no text is returned as it is."""
    if not markers or not (values.dtype == object or pd.api.types.is_string_dtype(values)):
        return values
    try:
        text = values.str.strip()  # null where a value is not text
    except AttributeError:  # an object column holding no text at all
        return values
    marker = text.isin(markers).to_numpy()
    return values.mask(marker) if marker.any() else values


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_EXACT_FLOAT = 2.0**53  # beyond this a float64 no longer holds every integer


@dataclass
class _Cast:
    """A column cast to its schema dtype, with why values failed and the numbers to range-check."""

    values: pd.Series  # schema dtype; failed values are null
    failed: np.ndarray
    why: dict[str, np.ndarray]  # expected (a dtype, "int64 range", "finite") -> rows failing it
    raw: pd.Series
    numbers: np.ndarray | None = None  # float values for min/max checks (numeric dtypes)

    def shown(self, mask: np.ndarray) -> pd.Series:
        """The values at ``mask`` for messages: as cast, or as found where the cast failed."""
        return self.values[mask].astype(object).where(~self.failed[mask], self.raw[mask])


def coerce_column(values: pd.Series, column: ColumnSchema) -> tuple[pd.Series, np.ndarray]:
    """Cast to the schema dtype; return the cast column and the mask of unparseable values."""
    cast = _cast(values, column)
    return cast.values, cast.failed


def _parse_numbers(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Each value as a float (text beyond the float range is +-inf, not NaN) and whether it is a
    number at all ('nan' is: a float's missing value)."""
    if pd.api.types.is_bool_dtype(values):
        return np.full(len(values), np.nan), np.zeros(len(values), bool)
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    number = ~np.isnan(x)
    for i in np.flatnonzero(~number & values.notna().to_numpy()):
        try:  # pandas gives NaN for '1e309' and for 'nan'; Python says inf and nan
            x[i] = float(str(values.iloc[i]).strip())
            number[i] = True
        except ValueError:
            pass
    return x, number


def _exact_int(value: object) -> int | None:
    """An integral value as an exact Python int ('1e300' and 40-digit text included)."""
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return int(value)
    text = str(value).strip()
    try:
        return int(text)
    except ValueError:
        try:
            d = Decimal(text)
        except InvalidOperation:
            return None
        return int(d) if d.is_finite() and d == d.to_integral_value() else None


def _cast_int64(values: pd.Series, present: np.ndarray) -> _Cast:
    if isinstance(values.dtype, np.dtype) and values.dtype.kind in "iu":  # exact already
        raw = values.to_numpy()
        fits = raw <= _INT64_MAX if values.dtype.kind == "u" else np.ones(len(raw), bool)
        if fits.all():
            cast = pd.Series(raw.astype(np.int64), index=values.index)
            return _Cast(cast, ~fits, {}, values, raw.astype(float))
    x, number = _parse_numbers(values)
    finite = np.isfinite(x)
    with np.errstate(invalid="ignore"):
        integral = finite & (np.mod(np.where(finite, x, 0.0), 1) == 0)
    ints = np.zeros(len(x), dtype=np.int64)
    small = integral & (np.abs(np.where(finite, x, 0.0)) < _EXACT_FLOAT)
    ints[small] = x[small].astype(np.int64)
    out_of_range = np.zeros(len(x), bool)
    for i in np.flatnonzero(integral & ~small):  # exact arithmetic, never a wrapped cast
        exact = _exact_int(values.iloc[i])
        if exact is None or not _INT64_MIN <= exact <= _INT64_MAX:
            out_of_range[i] = True
        else:
            ints[i] = exact
    ok = integral & ~out_of_range
    null_text = number & np.isnan(x)  # 'nan' as text: a null, like an empty cell
    failed = present & ~ok & ~null_text
    cast = pd.Series(ints, index=values.index)
    if not ok.all():
        cast = cast.astype("Int64").mask(~ok)
    return _Cast(
        cast,
        failed | out_of_range,
        {"int64": failed & ~out_of_range, "int64 range": out_of_range},
        values,
        np.where(ok | out_of_range, x, np.nan),
    )


def _cast(values: pd.Series, column: ColumnSchema) -> _Cast:
    values = missing_markers_as_null(values, column_missing_markers(column))
    present = values.notna().to_numpy()
    if column.dtype == "int64":
        return _cast_int64(values, present)
    if column.dtype == "float64":
        x, number = _parse_numbers(values)
        infinite = np.isinf(x)
        not_number = present & ~number
        cast = pd.Series(np.where(infinite, np.nan, x), index=values.index, dtype="float64")
        why = {"float64": not_number, "finite": infinite}
        return _Cast(cast, not_number | infinite, why, values, cast.to_numpy())
    if column.dtype == "datetime":
        if pd.api.types.is_datetime64_any_dtype(values):
            cast = values if getattr(values.dt, "tz", None) else values.dt.tz_localize("UTC")
        else:
            cast = pd.to_datetime(values, errors="coerce", utc=True, format="ISO8601")
    elif column.dtype == "bool":
        if pd.api.types.is_bool_dtype(values):
            cast = values.astype("boolean")
        else:
            text = values.astype("string").str.strip().str.lower()
            cast = text.map({"true": True, "false": False, "1": True, "0": False}).astype("boolean")
    else:
        if pd.api.types.is_float_dtype(values) or pd.api.types.is_integer_dtype(values):
            # A numeric column where text was expected: keep the digits, not "1.0".
            cast = values.astype("string").str.removesuffix(".0")
        else:
            cast = values.astype("string")
        cast = cast.astype(object).where(present, None)
    failed = present & cast.isna().to_numpy()
    return _Cast(cast, failed, {column.dtype: failed}, values)


def guess_renames(missing: list[str], extra: list[str]) -> dict[str, str]:
    """Pair each missing column with the extra column whose name resembles it most."""
    guesses: dict[str, str] = {}
    pool = list(extra)
    for name in missing:
        match = difflib.get_close_matches(name, pool, n=1, cutoff=0.5)
        if not match:
            match = [e for e in pool if name in e or e in name][:1]
        if match:
            guesses[name] = match[0]
            pool.remove(match[0])
    return guesses


_Failing = list[tuple[np.ndarray, pd.Series]]  # (mask, reason text for failing rows)


def conform(raw: pd.DataFrame, schema: TableSchema) -> Conformance:
    """Split ``raw`` into schema-conforming rows and quarantined rows (with reasons)."""
    n = len(raw)
    raw = raw.reset_index(drop=True)
    raw.index.name = ROW_COLUMN
    missing = [c for c in schema.names if c not in raw.columns]
    extra = [str(c) for c in raw.columns if c not in schema.names]
    renames = guess_renames(missing, extra)
    problems: list[ColumnProblem] = []
    failing: _Failing = []

    coerced: dict[str, pd.Series] = {}
    nulls: dict[str, ColumnProblem] = {}
    for col in schema.columns:
        if col.name not in raw.columns:
            coerced[col.name] = _missing_column(col, renames, raw.index, problems, failing)
        else:
            coerced[col.name] = _conform_column(raw[col.name], col, problems, failing, nulls)
    frame = pd.DataFrame(coerced, index=raw.index)
    _check_duplicate_keys(frame, schema, raw, problems, failing)

    bad_any, reasons = _quarantine_reasons(failing, raw.index)
    quarantine = _stringify(raw.loc[bad_any]).copy()
    quarantine[REASON_COLUMN] = reasons[bad_any].astype(str)
    valid = frame.loc[~bad_any]
    return Conformance(
        valid=valid,
        quarantine=quarantine,
        coerced=frame,
        rows_in=n,
        missing_columns=missing,
        extra_columns=extra,
        renamed_guess=renames,
        problems=problems,
        nulls=nulls,
    )


def _missing_column(
    col: ColumnSchema,
    renames: dict[str, str],
    index: pd.Index,
    problems: list[ColumnProblem],
    failing: _Failing,
) -> pd.Series:
    """Record a schema column absent from the file (every row fails); return it as all nulls."""
    n = len(index)
    hint = f" (found `{renames[col.name]}` instead)" if col.name in renames else ""
    problems.append(ColumnProblem(col.name, "missing_column", n, f"column `{col.name}`{hint}"))
    reason = pd.Series(f"{col.name}: column missing{hint}", index=index)
    failing.append((np.ones(n, bool), reason))
    return pd.Series([None] * n, index=index, dtype=object)


def _conform_column(
    values: pd.Series,
    col: ColumnSchema,
    problems: list[ColumnProblem],
    failing: _Failing,
    nulls: dict[str, ColumnProblem],
) -> pd.Series:
    """Cast one present column and record its dtype, null, set and range problems (in that
    order); return the cast column."""
    result = _cast(values, col)
    cast, bad = result.values, result.failed
    for expected, mask in result.why.items():
        if mask.any():
            problems.append(
                ColumnProblem(col.name, "dtype", int(mask.sum()), expected, _examples(values, mask))
            )
            failing.append((mask, f"{col.name}: not {_article(expected)} (" + _text(values[mask]) + ")"))
    null = cast.isna().to_numpy() & ~bad
    if null.any():
        nulls[col.name] = ColumnProblem(
            col.name, "null", int(null.sum()), "no nulls", _examples(values, null)
        )
    if not col.nullable and null.any():
        problems.append(nulls[col.name])
        failing.append((null, pd.Series(f"{col.name}: null not allowed", index=values.index)[null]))
    if col.allowed_values is not None:
        _check_allowed_values(cast, col, problems, failing)
    if col.is_numeric and (col.min is not None or col.max is not None):
        _check_range(result, col, problems, failing)
    return cast


def _check_allowed_values(
    cast: pd.Series, col: ColumnSchema, problems: list[ColumnProblem], failing: _Failing
) -> None:
    """Values outside the column's allowed set; quarantined unless the set only warns."""
    allowed = {str(v) for v in col.allowed_values}
    ok = cast.isna() | cast.astype(str).isin(allowed)
    out = ~ok.to_numpy()
    if out.any():
        enforce = col.enforcement("allowed_values")
        problems.append(
            ColumnProblem(
                col.name,
                "allowed_values",
                int(out.sum()),
                "one of the allowed values",
                _examples(cast, out),
                enforce,
            )
        )
        if enforce == "quarantine":
            failing.append((out, col.name + ": " + _text(cast[out]) + " not in allowed values"))


def _check_range(result: _Cast, col: ColumnSchema, problems: list[ColumnProblem], failing: _Failing) -> None:
    """Values below the column's min, then above its max; quarantined unless the bound only warns."""
    x = result.numbers
    n = len(result.values)
    with np.errstate(invalid="ignore"):
        low = x < col.min if col.min is not None else np.zeros(n, bool)
        high = x > col.max if col.max is not None else np.zeros(n, bool)
    for mask, word, bound in ((low, "below min", col.min), (high, "above max", col.max)):
        if mask.any():
            enforce = col.enforcement(word.split()[1])
            problems.append(
                ColumnProblem(
                    col.name,
                    "range",
                    int(mask.sum()),
                    f"{word.split()[0]} {word.split()[1]} {bound:g}",
                    _examples(result.shown(mask), np.ones(int(mask.sum()), bool)),
                    enforce,
                )
            )
            if enforce == "quarantine":
                failing.append((mask, col.name + ": " + _text(result.shown(mask)) + f" {word} {bound:g}"))


def _check_duplicate_keys(
    frame: pd.DataFrame,
    schema: TableSchema,
    raw: pd.DataFrame,
    problems: list[ColumnProblem],
    failing: _Failing,
) -> None:
    """Rows repeating an earlier row's key (checked only when every key column is in ``raw``)."""
    keys = [k for k in schema.key if k in raw.columns]
    if keys and len(keys) == len(schema.key):
        dup = frame[keys].duplicated(keep="first").to_numpy()
        if dup.any():
            label = ", ".join(keys)
            problems.append(
                ColumnProblem(
                    label,
                    "duplicate_key",
                    int(dup.sum()),
                    "unique keys",
                    _examples(frame[keys[0]], dup),
                )
            )
            failing.append((dup, pd.Series(f"{label}: duplicate key", index=raw.index)[dup]))


def _quarantine_reasons(failing: _Failing, index: pd.Index) -> tuple[np.ndarray, pd.Series]:
    """Which rows fail any rule, and each row's reasons joined with '; ' in the order found."""
    bad_any = np.zeros(len(index), bool)
    for mask, _ in failing:
        bad_any |= mask
    reasons = pd.Series("", index=index, dtype=object)
    for mask, text in failing:
        sel = reasons.index[mask]
        before = reasons.loc[sel].to_numpy(dtype=object)
        added = text.to_numpy(dtype=object)
        reasons.loc[sel] = np.where(before == "", added, before + "; " + added)
    return bad_any, reasons


def quarantine_reason_counts(quarantine: pd.DataFrame) -> dict[str, int]:
    """Quarantined rows per failing column: each reason's text before its first ':'."""
    reasons = quarantine[REASON_COLUMN].str.split("; ").explode().str.split(":").str[0]
    return reasons.value_counts().to_dict()


def _article(dtype: str) -> str:
    return {
        "int64": "an integer",
        "int64 range": "an integer in int64 range",
        "float64": "a number",
        "finite": "a finite number",
        "datetime": "a timestamp",
        "bool": "a boolean",
    }.get(dtype, f"a {dtype}")


def _text(values: pd.Series) -> pd.Series:
    text = values.astype(str)
    long = text.str.len() > _CLIP
    if long.any():
        text = text.where(~long, text[long].map(_clip))
    return "'" + text + "'"


def _stringify(frame: pd.DataFrame) -> pd.DataFrame:
    """Quarantined rows keep their raw values; object columns holding mixed types become text so
    that any row can be stored as Parquet."""
    out = frame.copy()
    for name in out.columns:
        if out[name].dtype == object and pd.api.types.infer_dtype(out[name], skipna=True) != "string":
            out[name] = out[name].astype("string")
    return out
