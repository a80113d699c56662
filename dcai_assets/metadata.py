"""Dagster metadata helpers: tables and previews that render well in the UI."""

from __future__ import annotations

import dagster as dg
import pandas as pd


def column_schema(frame: pd.DataFrame) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name=str(c), type=str(t)) for c, t in frame.dtypes.items()])


def preview(frame: pd.DataFrame, rows: int = 5) -> dg.MetadataValue:
    """The first rows as a markdown table."""
    head = frame.head(rows)
    if head.empty:
        return dg.MetadataValue.md("_no rows_")
    cols = [str(c) for c in head.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in head.astype(str).iterrows():
        lines.append("| " + " | ".join(v.replace("|", "\\|") for v in row) + " |")
    return dg.MetadataValue.md("\n".join(lines))
