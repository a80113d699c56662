"""Turn conformance, GX outcomes and drift into check verdicts whose messages say what changed,
how far (next to its threshold) and what to do about it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from dcai_assets.core.conformance import ColumnProblem, Conformance
from dcai_assets.core.drift import ColumnDrift
from dcai_assets.core.expectations import SuiteResult
from dcai_assets.core.schema import TableSchema

COLUMNS_MATCH_SCHEMA = "columns_match_schema"
DTYPES_MATCH_SCHEMA = "dtypes_match_schema"
ROW_COUNT_IN_BOUNDS = "row_count_in_bounds"
NULL_RATES_WITHIN_LIMITS = "null_rates_within_limits"
VALUES_WITHIN_DOMAIN = "values_within_domain"
NO_DRIFT_FROM_REFERENCE = "no_drift_from_reference"
NO_DRIFT_FROM_PREVIOUS = "no_drift_from_previous_partition"

BLOCKING_CHECKS = (
    COLUMNS_MATCH_SCHEMA,
    DTYPES_MATCH_SCHEMA,
    ROW_COUNT_IN_BOUNDS,
    NULL_RATES_WITHIN_LIMITS,
    VALUES_WITHIN_DOMAIN,
)
WARNING_CHECKS = (NO_DRIFT_FROM_REFERENCE, NO_DRIFT_FROM_PREVIOUS)
CHECK_DESCRIPTIONS = {
    COLUMNS_MATCH_SCHEMA: "Every schema column is present; no unexpected columns.",
    DTYPES_MATCH_SCHEMA: "Values parse as the schema's dtypes; unparseable rows are quarantined.",
    ROW_COUNT_IN_BOUNDS: (
        "The partition's row count is within the schema's bounds (per day of its span for time "
        "partitions); bounds inferred from the reference window only warn."
    ),
    NULL_RATES_WITHIN_LIMITS: "Null rates are within each column's allowed fraction.",
    VALUES_WITHIN_DOMAIN: (
        "Values are in their allowed sets and ranges (declared: rows quarantined; inferred from "
        "the reference window: reported and kept); keys are unique."
    ),
    NO_DRIFT_FROM_REFERENCE: (
        "Feature distributions are close to the reference window, beyond what sampling noise "
        "explains at the partition's size."
    ),
    NO_DRIFT_FROM_PREVIOUS: (
        "Feature distributions are close to the previous partition, beyond what sampling noise "
        "explains at both partitions' sizes."
    ),
}


@dataclass(frozen=True)
class Finding:
    """One observation behind a verdict: where, what was measured, against what, what to do."""

    column: str
    observed: str
    threshold: str
    message: str
    action: str
    severity: str = "ERROR"  # "ERROR" blocks downstream; "WARN" fails a warning check; "INFO" is shown only


@dataclass
class Verdict:
    """The outcome of one check on one partition."""

    check: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """INFO findings (e.g. drift on a feature the model ignores) are shown but do not fail."""
        return not self.counted

    @property
    def counted(self) -> list[Finding]:
        return [f for f in self.findings if f.severity in ("ERROR", "WARN")]

    @property
    def severity(self) -> str:
        return "ERROR" if any(f.severity == "ERROR" for f in self.findings) else "WARN"

    @property
    def summary(self) -> str:
        counted = self.counted
        if not counted:
            info = f" ({len(self.findings)} informational)" if self.findings else ""
            return "passed" + info
        return counted[0].message + (f" (+{len(counted) - 1} more)" if len(counted) > 1 else "")


_DTYPE_WORDS = {
    "int64": "integers",
    "int64 range": "integers in int64 range",
    "float64": "numbers",
    "finite": "finite numbers",
    "datetime": "timestamps",
    "bool": "booleans",
    "string": "text",
}


def _rows(rows: list[int]) -> str:
    if not rows:
        return ""
    word = "row" if len(rows) == 1 else "rows"
    return f", e.g. {word} " + ", ".join(str(r) for r in rows[:3])


def _pct(x: float) -> str:
    return f"{x:.1%}" if x < 0.1 else f"{x:.0%}"


def _ordinal(n: int) -> str:
    suffix = "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def column_verdicts(
    conf: Conformance,
    suite: SuiteResult,
    schema: TableSchema,
    schema_file: str,
    *,
    span_days: float | None = None,
) -> list[Verdict]:
    """Verdicts of the schema checks (columns, dtypes, row count, nulls, domains). Bounds
    inferred from the reference window (``enforce: warn``, ``row_count_enforce: warn``) give WARN
    findings, never ERROR; ``span_days`` is the partition's time span (row-count bounds)."""
    n = max(conf.rows_in, 1)
    limit = schema.max_quarantine_fraction
    by_rule: dict[str, list[ColumnProblem]] = {}
    for p in conf.problems:
        by_rule.setdefault(p.rule, []).append(p)
    return [
        _columns_verdict(conf, schema_file),
        _dtypes_verdict(by_rule.get("dtype", []), n, limit, schema_file),
        _row_count_verdict(conf, suite, schema, schema_file, span_days),
        _nulls_verdict(conf, suite, schema, by_rule.get("dtype", []), n, schema_file),
        _domain_verdict(by_rule, suite, n, limit, schema_file),
    ]


def _columns_verdict(conf: Conformance, schema_file: str) -> Verdict:
    """Missing columns (ERROR, with a rename guess) and unexpected ones (WARN)."""
    columns = Verdict(COLUMNS_MATCH_SCHEMA)
    for name in conf.missing_columns:
        guess = conf.renamed_guess.get(name)
        found = f"; the file has `{guess}`, which looks like a rename" if guess else ""
        action = (
            f"fix the export upstream, or rename `{name}` to `{guess}` in {schema_file}"
            if guess
            else f"fix the export upstream, or remove `{name}` from {schema_file}"
        )
        columns.findings.append(
            Finding(
                name,
                "missing",
                "present",
                f"column `{name}` is missing{found}; all rows quarantined",
                action,
            )
        )
    for name in conf.extra_columns:
        if name in conf.renamed_guess.values():
            continue
        columns.findings.append(
            Finding(
                name,
                "present",
                "absent",
                f"unexpected column `{name}` (not in the schema; kept in raw, not passed on)",
                f"add `{name}` to {schema_file} (or regenerate it) if it is intended, or drop it upstream",
                severity="WARN",
            )
        )
    return columns


def _dtypes_verdict(problems: list[ColumnProblem], n: int, limit: float, schema_file: str) -> Verdict:
    """Unparseable values per column; ERROR beyond the quarantine limit."""
    dtypes = Verdict(DTYPES_MATCH_SCHEMA)
    for p in problems:
        frac = p.count / n
        example = f", e.g. {p.examples[0][1]!r} (row {p.examples[0][0]})" if p.examples else ""
        expected = _DTYPE_WORDS.get(p.expected, p.expected)
        dtypes.findings.append(
            Finding(
                p.column,
                f"{p.count} unparseable ({_pct(frac)})",
                f"dtype {p.expected}; at most {_pct(limit)} quarantined",
                f"`{p.column}` has {p.count} values that are not {expected}{example}; rows quarantined",
                f"fix the export upstream, or set `dtype: string` for `{p.column}` in {schema_file}",
                severity="ERROR" if frac > limit else "WARN",
            )
        )
    return dtypes


def _row_count_verdict(
    conf: Conformance,
    suite: SuiteResult,
    schema: TableSchema,
    schema_file: str,
    span_days: float | None,
) -> Verdict:
    """The row count against its bounds; ERROR only when the bounds are declared."""
    rows = Verdict(ROW_COUNT_IN_BOUNDS)
    outcome = next(
        (o for o in suite.outcomes if o.expectation == "expect_table_row_count_to_be_between"), None
    )
    if outcome is not None and not outcome.success:
        bound = schema.describe_row_bounds(span_days)
        declared = schema.row_count_enforce == "block"
        tail = "" if declared else " (bounds inferred from the reference window: a warning only)"
        rows.findings.append(
            Finding(
                "(table)",
                f"{conf.rows_in:,} rows",
                bound,
                f"partition has {conf.rows_in:,} rows; expected {bound}{tail}",
                "check that the file is complete (a partial export?); to change the bounds, set "
                "schema_overrides={'__table__': {'min_rows_per_day': ..., 'max_rows_per_day': ...}} "
                "(or min_rows/max_rows for partitions without a time span) in the spec, which "
                "also makes them blocking, and regenerate " + schema_file,
                severity="ERROR" if declared else "WARN",
            )
        )
    return rows


def _nulls_verdict(
    conf: Conformance,
    suite: SuiteResult,
    schema: TableSchema,
    dtype_problems: list[ColumnProblem],
    n: int,
    schema_file: str,
) -> Verdict:
    """Null rates per column: over the allowed fraction, or any null in a non-nullable column."""
    limit = schema.max_quarantine_fraction
    unparseable = {p.column for p in dtype_problems}
    nulls = Verdict(NULL_RATES_WITHIN_LIMITS)
    for col in schema.columns:
        found = conf.nulls.get(col.name)
        if found is None or col.name in conf.missing_columns:
            continue
        frac = found.count / n
        allowed = col.max_null_fraction if col.nullable else 0.0
        o = suite.for_column(col.name, "expect_column_values_to_not_be_null")
        # GX sees unparseable values as nulls too; judge those columns on the nulls as read.
        limit_here = allowed if col.nullable else limit  # non-nullable: nulls are quarantined
        within = o.success if o is not None and col.name not in unparseable else frac <= limit_here
        if col.nullable and within:
            continue
        tail = "" if col.nullable else "; those rows are quarantined"
        nulls.findings.append(
            Finding(
                col.name,
                f"{found.count} nulls ({_pct(frac)})",
                f"allowed {_pct(allowed)}",
                f"`{col.name}` has {found.count} nulls (allowed {_pct(allowed)})"
                f"{_rows([r for r, _ in found.examples])}{tail}",
                f"fix the export upstream, or raise `max_null_fraction` for `{col.name}` to "
                f"{min(1.0, frac * 1.1):.2f} in {schema_file}",
                severity="WARN" if within else "ERROR",
            )
        )
    return nulls


_EXPECTATION_OF = {
    "allowed_values": "expect_column_values_to_be_in_set",
    "range": "expect_column_values_to_be_between",
}


def _domain_verdict(
    by_rule: Mapping[str, list[ColumnProblem]],
    suite: SuiteResult,
    n: int,
    limit: float,
    schema_file: str,
) -> Verdict:
    """Values outside their set or range, then duplicate keys."""
    domain = Verdict(VALUES_WITHIN_DOMAIN)
    for p in by_rule.get("allowed_values", []) + by_rule.get("range", []):
        domain.findings.append(_domain_finding(p, suite, n, limit, schema_file))
    for p in by_rule.get("duplicate_key", []):
        frac = p.count / n
        domain.findings.append(
            Finding(
                p.column,
                f"{p.count} duplicates ({_pct(frac)})",
                "unique",
                f"key ({p.column}) has {p.count} duplicate rows{_rows([r for r, _ in p.examples])}; "
                "later copies quarantined",
                "deduplicate upstream, or fix the key columns in the spec",
                severity="ERROR" if frac > limit else "WARN",
            )
        )
    return domain


def _domain_finding(p: ColumnProblem, suite: SuiteResult, n: int, limit: float, schema_file: str) -> Finding:
    """One set or range problem; an inferred bound (``enforce: warn``) only ever warns."""
    o = suite.for_column(p.column, _EXPECTATION_OF[p.rule])
    frac = p.count / n
    within = o.success if o is not None else frac <= limit
    examples = ", ".join(f"{v!r} (row {r})" for r, v in p.examples[:2])
    inferred = p.enforce == "warn"
    rule = "allowed_values" if p.rule == "allowed_values" else p.expected.split()[1]
    if p.rule == "allowed_values":
        what = "outside the allowed set"
        new = p.examples[0][1] if p.examples else "<value>"
        action = (
            f"add {new!r} to `allowed_values` of `{p.column}` in {schema_file} if it is "
            "legitimate; else fix upstream"
        )
    else:
        what = p.expected
        action = f"fix upstream, or widen `min`/`max` of `{p.column}` in {schema_file}"
    if inferred:
        what += " inferred from the reference window"
        outcome_text = "rows kept (an inferred bound warns; a declared one quarantines)"
        action += (
            f"; to quarantine such rows, declare the rule: schema_overrides={{{p.column!r}: "
            f"{{{rule!r}: ...}}}} in the spec, or `enforce: {{{rule}: quarantine}}` in {schema_file}"
        )
    else:
        outcome_text = "rows quarantined"
    return Finding(
        p.column,
        f"{p.count} values ({_pct(frac)})",
        "reported (inferred)" if inferred else f"at most {_pct(limit)}",
        f"`{p.column}` has {p.count} values {what}, e.g. {examples}; {outcome_text}",
        action,
        severity="WARN" if within or inferred else "ERROR",
    )


def drift_verdict(
    check: str,
    drifts: list[ColumnDrift],
    *,
    importance_ranks: Mapping[str, int] | None = None,
    regenerate: str = "dcai-assets schema infer <module:spec>",
) -> Verdict:
    """Drift findings, worst first. Once a model exists (``importance_ranks``: feature -> rank,
    0 = negligible), each names the feature's importance rank, and drift on a feature the model
    does not use, or barely uses, is downgraded to INFO."""
    verdict = Verdict(check)
    for d in sorted(
        (d for d in drifts if d.drifted),
        key=lambda d: d.distance / max(d.threshold or 1, 1e-12),
        reverse=True,
    ):
        severity = "WARN"
        rank = (importance_ranks or {}).get(d.column)
        if rank:
            rank_text = f"; it ranks {_ordinal(rank)} in model importance"
        elif importance_ranks is None:
            rank_text = ""
        else:
            severity = "INFO"
            rank_text = (
                "; it has negligible importance in the model" if rank == 0 else "; the model does not use it"
            )
        verdict.findings.append(
            Finding(
                d.column,
                f"{d.metric} {d.distance:.3f}",
                f"{d.threshold:.3f}",
                f"feature `{d.column}` shifted: {d.detail}{rank_text} "
                f"({d.metric} {d.distance:.3f} > {d.threshold:.3f})",
                f"if this is the new normal, regenerate the reference (`{regenerate}`); "
                "otherwise check the upstream feed",
                severity=severity,
            )
        )
    return verdict


def markdown_table(verdict: Verdict) -> str:
    """The verdict as a markdown table for the Dagster UI."""
    if not verdict.findings:
        return f"**{verdict.check}**: passed"
    lines = [
        f"**{verdict.check}**: {len(verdict.findings)} finding(s)",
        "",
        "| severity | column | observed | threshold | what happened | suggested action |",
        "|---|---|---|---|---|---|",
    ]
    for f in verdict.findings:
        cells = [f.severity, f"`{f.column}`", f.observed, f.threshold, f.message, f.action]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)
