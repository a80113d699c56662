"""What a data health check found (:mod:`dcai_assets.core.health`,
:mod:`dcai_assets.core.segments`): the names of the checks and :class:`HealthFinding`."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

DUPLICATES = "duplicates"
OUTLIERS = "outliers"
LABEL_BALANCE = "label_balance"
WEAK_SEGMENTS = "weak_segments"
LABEL_ISSUES = "label_issues"
CHECK_NAMES = (DUPLICATES, OUTLIERS, LABEL_BALANCE, WEAK_SEGMENTS, LABEL_ISSUES)


@dataclass(frozen=True)
class HealthFinding:
    """What one check found. ``alarm``: the defect is shown beyond chance (the check fails);
    ``determined``: False when too few rows decide it (never alarms then). ``counts`` are the
    figures behind the verdict, ``table`` an aggregate table (no row values), ``examples`` the
    worst rows (row-level: shown only through the adapter's single examples function)."""

    name: str
    alarm: bool
    summary: str
    counts: dict[str, int | float]
    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    examples: pd.DataFrame = field(default_factory=pd.DataFrame)
    determined: bool = True
