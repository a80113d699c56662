"""No-human-access mode, the Dagster side: the one gate every row-level example goes through on
its way to metadata, logs or MLflow, and the one door to row-level outputs in the lake, which
writes who read what, when and why to an append-only audit table.

With ``DatasetSpec(privacy=PrivacySpec(no_human_access=True))`` the gate turns examples into
aggregates (see :func:`dcai_assets.core.privacy.aggregate_markdown`); off, it renders them as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pandas as pd
from upath import UPath

from dcai_assets.core.labeling import LabelingFunctionError
from dcai_assets.core.privacy import (
    WITHHELD,
    AccessRecord,
    AuditLog,
    aggregate_markdown,
    group_counts,
    small_groups_suppressed,
    small_rows_dropped,
    without_examples,
    without_values,
)
from dcai_assets.spec import DatasetSpec, PrivacySpec

__all__ = [
    "WITHHELD",
    "AccessRecord",
    "AuditLog",
    "audit_log",
    "examples_markdown",
    "examples_metadata",
    "gated_conformance",
    "gated_counts",
    "gated_drift",
    "gated_evaluation",
    "gated_groups",
    "lf_errors_gated",
    "read_rows",
]


def examples_markdown(
    privacy: PrivacySpec,
    frame: pd.DataFrame,
    *,
    rows: int = 5,
    render: Callable[[pd.DataFrame], str] | None = None,
    group_by: Iterable[str] = (),
    what: str = "rows",
) -> str:
    """The one gate for row-level examples: ``render(frame.head(rows))`` (default: a markdown
    table) when the mode is off; on, only aggregates of the whole ``frame`` (size, non-null and
    distinct counts per column, rows per value of each ``group_by`` column with groups under
    ``privacy.min_group_size`` suppressed). ``render`` is never called with rows when on."""
    if not privacy.no_human_access:
        head = frame.head(rows)
        return render(head) if render is not None else _markdown_rows(head)
    return aggregate_markdown(frame, privacy.min_group_size, group_by=group_by, what=what)


def examples_metadata(
    privacy: PrivacySpec,
    frame: pd.DataFrame,
    *,
    rows: int = 5,
    render: Callable[[pd.DataFrame], str] | None = None,
    group_by: Iterable[str] = (),
    what: str = "rows",
) -> dg.MetadataValue:
    """:func:`examples_markdown` as a Dagster markdown metadata value."""
    return dg.MetadataValue.md(
        examples_markdown(privacy, frame, rows=rows, render=render, group_by=group_by, what=what)
    )


def _markdown_rows(head: pd.DataFrame) -> str:
    if head.empty:
        return "_no rows_"
    cols = [str(c) for c in head.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in head.astype(str).iterrows():
        lines.append("| " + " | ".join(v.replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines)


def gated_counts(privacy: PrivacySpec, counts: Mapping[object, int]) -> dict[str, int]:
    """Rows per group for metadata (e.g. per class): when on, groups under ``min_group_size``
    rows are left out and counted under ``_suppressed_groups`` / ``_suppressed_rows``."""
    if not privacy.no_human_access:
        return {str(k): int(v) for k, v in counts.items()}
    kept = group_counts(counts, privacy.min_group_size)
    if not kept.suppressed_groups:
        return kept.shown
    return {
        **kept.shown,
        "_suppressed_groups": kept.suppressed_groups,
        "_suppressed_rows": kept.suppressed_rows,
    }


def gated_groups(
    privacy: PrivacySpec, table: pd.DataFrame, size_column: str = "rows"
) -> tuple[pd.DataFrame, str]:
    """A per-group table for metadata (e.g. per partition): when on, the groups of fewer than
    ``min_group_size`` rows (counted in ``size_column``) are left out, with a note saying how many
    groups and rows; off, the table and "" unchanged."""
    if not privacy.no_human_access:
        return table, ""
    return small_rows_dropped(table, size_column, privacy.min_group_size)


def gated_conformance(privacy: PrivacySpec, conf):
    """The conformance result findings and logs are built from: without example values when on."""
    return without_examples(conf) if privacy.no_human_access else conf


def gated_drift(privacy: PrivacySpec, drifts: list) -> list:
    """Drift results whose explanations name no value of a protected column when on."""
    if not privacy.no_human_access:
        return drifts
    return without_values(drifts, privacy.protects, privacy.min_group_size)


def gated_evaluation(privacy: PrivacySpec, evaluation):
    """An evaluation for display (metadata, MLflow artifacts): slices and fairness groups under
    ``min_group_size`` rows suppressed when on. ``None`` passes through."""
    if evaluation is None or not privacy.no_human_access:
        return evaluation
    return small_groups_suppressed(evaluation, privacy.min_group_size)


@contextmanager
def lf_errors_gated(privacy: PrivacySpec, partition: str) -> Iterator[None]:
    """When on, a labeling function's error (whose message quotes the failing row) is raised
    again with the row's values left out; off, it passes unchanged."""
    try:
        yield
    except LabelingFunctionError as e:
        if not privacy.no_human_access:
            raise
        cause = type(e.__cause__).__name__ if e.__cause__ is not None else "invalid votes"
        raise LabelingFunctionError(
            f"a labeling function failed on partition {partition!r} ({cause}); its message is "
            f"{WITHHELD}, since it quotes row values. Read the partition with "
            "dcai_assets.privacy.read_rows (audited) to debug, or set on_error='abstain'"
        ) from None


def audit_log(spec: DatasetSpec, lake: str | Path) -> AuditLog:
    """The audit table of ``spec``'s row-level reads: ``privacy.audit_path``, else
    ``<lake>/_audit/<name>/access.sqlite``."""
    path = spec.privacy.audit_path or Path(lake) / "_audit" / spec.name / "access.sqlite"
    return AuditLog(path)


def read_rows(
    spec: DatasetSpec,
    asset: str,
    partition: str | None = None,
    *,
    lake: str | Path,
    who: str,
    why: str,
) -> pd.DataFrame:
    """The rows of ``<spec.name>/<asset>`` (one ``partition`` of it, or the unpartitioned asset)
    from the Parquet lake under ``lake`` (the ``ParquetIOManager``'s ``base_dir``), after
    appending ``who``, ``why``, what and when to the audit table. The only sanctioned way to look
    at row-level outputs of a dataset in no-human-access mode.

    Raises
    ------
    ValueError
        ``who`` or ``why`` empty, or ``asset``/``partition`` not a plain name.
    FileNotFoundError
        No such asset or partition in the lake (the failed attempt is still recorded).
    """
    for name, value in (("who", who), ("why", why), ("asset", asset)):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"read_rows: {name}={value!r}; expected a non-empty string")
    for name, value in (("asset", asset), ("partition", partition)):
        if value is not None and ("/" in value or "\\" in value or value.startswith(".")):
            raise ValueError(f"read_rows: {name}={value!r}; expected a name without path separators")
    path = UPath(lake) / spec.name / asset
    path = path / f"{partition}.parquet" if partition is not None else path.with_suffix(".parquet")
    log = audit_log(spec, lake)
    what = f"{spec.name}/{asset}"
    if not path.exists():
        log.append(who=who, why=f"{why} (not found: nothing read)", asset=what, partition=partition, rows=0)
        raise FileNotFoundError(
            f"read_rows: no stored {what}"
            + (f" partition {partition!r}" if partition else "")
            + f" at {path}"
        )
    with path.open("rb") as f:
        frame = pd.read_parquet(f)
    log.append(who=who, why=why, asset=what, partition=partition, rows=len(frame))
    return frame
