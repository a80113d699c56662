"""Compile a schema into a Great Expectations Core 1.x suite and run it on a partition.

Great Expectations is imported inside the functions: it takes seconds to import, and loading the
Dagster definitions must stay fast.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from dcai_assets.core.schema import TableSchema

# GX 1.24 sends no usage statistics; older 1.x releases read this switch.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


@dataclass(frozen=True)
class ExpectationOutcome:
    """One expectation's verdict, flattened from the GX result."""

    expectation: str  # GX expectation type, e.g. "expect_column_values_to_not_be_null"
    column: str | None
    success: bool
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    observed_value: Any = None
    example_rows: list[int] = field(default_factory=list)
    example_values: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class SuiteResult:
    """A suite run: the flattened outcomes and GX's own full result as a JSON-able dict."""

    success: bool
    outcomes: list[ExpectationOutcome]
    full_result: dict[str, Any]

    def for_column(self, column: str, expectation: str) -> ExpectationOutcome | None:
        for o in self.outcomes:
            if o.column == column and o.expectation == expectation:
                return o
        return None


def build_suite(schema: TableSchema, name: str = "dcai_schema", span_days: float | None = None):
    """The GX ExpectationSuite that the schema file stands for; the row-count bounds are those of
    a partition covering ``span_days`` days (None: span unknown)."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    suite = gx.ExpectationSuite(name=name)
    # Missing and extra columns are judged by conformance, on the file's own columns: the frame GX
    # sees has been brought to the schema's columns already.
    min_rows, max_rows = schema.row_bounds(span_days)
    suite.add_expectation(gxe.ExpectTableRowCountToBeBetween(min_value=min_rows, max_value=max_rows))
    row_mostly = 1.0 - schema.max_quarantine_fraction
    for col in schema.columns:
        null_mostly = 1.0 - col.max_null_fraction if col.nullable else row_mostly
        suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=col.name, mostly=_clip(null_mostly)))
        if col.allowed_values is not None:
            suite.add_expectation(
                gxe.ExpectColumnValuesToBeInSet(
                    column=col.name, value_set=list(col.allowed_values), mostly=_clip(row_mostly)
                )
            )
        if col.is_numeric and (col.min is not None or col.max is not None):
            suite.add_expectation(
                gxe.ExpectColumnValuesToBeBetween(
                    column=col.name, min_value=col.min, max_value=col.max, mostly=_clip(row_mostly)
                )
            )
    return suite


def _clip(mostly: float) -> float:
    return float(min(1.0, max(0.0, mostly)))


def run_suite(
    frame: pd.DataFrame,
    schema: TableSchema,
    *,
    name: str = "dcai_schema",
    result_format: str = "BASIC",
    span_days: float | None = None,
) -> SuiteResult:
    """Validate ``frame`` (already coerced to the schema's dtypes) with an ephemeral GX context;
    ``span_days`` is the partition's time span, for the row-count bounds.

    ``BASIC`` keeps the run fast on large partitions (example rows come from conformance);
    ``SUMMARY`` or ``COMPLETE`` add GX's own unexpected-row indices to the kept result.
    """
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    source = context.data_sources.add_pandas(name=f"{name}_source")
    asset = source.add_dataframe_asset(name=f"{name}_frame")
    batch = asset.add_batch_definition_whole_dataframe(name="whole").get_batch(
        batch_parameters={"dataframe": frame}
    )
    result = batch.validate(build_suite(schema, name, span_days), result_format=result_format)
    outcomes = []
    for r in result.results:
        cfg = r.expectation_config
        res = r.result or {}
        outcomes.append(
            ExpectationOutcome(
                expectation=cfg.type,
                column=cfg.kwargs.get("column"),
                success=bool(r.success),
                unexpected_count=res.get("unexpected_count"),
                unexpected_percent=res.get("unexpected_percent"),
                observed_value=res.get("observed_value"),
                example_rows=_rows(res.get("partial_unexpected_index_list"))[:5],
                example_values=list(res.get("partial_unexpected_list") or [])[:5],
                kwargs={k: v for k, v in cfg.kwargs.items() if k != "batch_id"},
            )
        )
    return SuiteResult(success=bool(result.success), outcomes=outcomes, full_result=result.to_json_dict())


def _rows(index_list: list[Any] | None) -> list[int]:
    """Row numbers from GX's index list (plain indices, or dicts keyed by the index name)."""
    rows = []
    for item in index_list or []:
        if isinstance(item, dict):
            item = next((v for v in item.values() if isinstance(v, int)), None)
        if item is not None:
            rows.append(int(item))
    return rows
