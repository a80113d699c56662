"""What each labeling function did on a partition (coverage, overlaps, conflicts, polarity,
accuracy against gold and as the label model estimates it), and alerts that say what changed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from dcai_assets.core.labeling import ABSTAIN, LabelingFunctionSet

# A coverage change is worth an alert when it is both large in points and large relative to before.
COVERAGE_ALERT_POINTS = 0.05
COVERAGE_ALERT_RATIO = 0.5


def lf_summary(
    L: np.ndarray,
    lf_set: LabelingFunctionSet,
    *,
    gold: np.ndarray | None = None,
    estimated_accuracy: Sequence[float] | None = None,
    previous_coverage: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """One row per LF: polarity, coverage (and its change since the previous partition),
    overlaps, conflicts, empirical and estimated accuracy."""
    n = L.shape[0]
    voted = L != ABSTAIN
    n_votes = voted.sum(axis=1)
    per_class = np.stack([(c == L).sum(axis=1) for c in range(lf_set.cardinality)], axis=1)
    rows = []
    for j, lf in enumerate(lf_set.lfs):
        mine = voted[:, j]
        overlap = mine & (n_votes > 1)
        # Conflict: another LF voted a different class on the same row.
        same_class = per_class[np.arange(n), np.clip(L[:, j], 0, None)]
        conflict = mine & (n_votes - same_class > 0)
        row = {
            "lf": lf.name,
            "polarity": ", ".join(lf_set.classes[c] for c in np.unique(L[mine, j])),
            "coverage": float(mine.mean()) if n else 0.0,
            "coverage_change": np.nan,
            "overlaps": float(overlap.mean()) if n else 0.0,
            "conflicts": float(conflict.mean()) if n else 0.0,
            "gold_votes": 0,
            "empirical_accuracy": np.nan,
            "estimated_accuracy": float(estimated_accuracy[j]) if estimated_accuracy is not None else np.nan,
        }
        if previous_coverage and lf.name in previous_coverage:
            row["coverage_change"] = row["coverage"] - float(previous_coverage[lf.name])
        if gold is not None:
            judged = mine & (gold != ABSTAIN)
            row["gold_votes"] = int(judged.sum())
            if judged.any():
                row["empirical_accuracy"] = float((L[judged, j] == gold[judged]).mean())
        rows.append(row)
    return pd.DataFrame(rows)


def lf_alerts(
    summary: pd.DataFrame,
    lf_set: LabelingFunctionSet,
    *,
    previous: Mapping[str, float] | None = None,
    previous_partition: str | None = None,
    errors: Mapping[str, list[int]] | None = None,
    rows: int = 0,
) -> list[str]:
    """Actionable alerts: coverage shifts (naming the columns the LF reads), LF errors, zero
    coverage, and LFs that only ever agree."""
    alerts: list[str] = []
    uses = {lf.name: lf.uses for lf in lf_set.lfs}
    if rows and (summary["coverage"] == 0).all():
        alerts.append(
            f"no labeling function voted on any of the {rows:,} rows: every row is marked abstain. "
            "Did the input columns change (see the validation checks)?"
        )
    for rec in summary.itertuples(index=False):
        was = (previous or {}).get(rec.lf)
        if was is not None:
            delta = rec.coverage - was
            if abs(delta) >= COVERAGE_ALERT_POINTS and abs(delta) >= COVERAGE_ALERT_RATIO * max(was, 1e-9):
                columns = ", ".join(f"`{c}`" for c in uses.get(rec.lf, ()))
                hint = (
                    f": did the {columns} column{'s' if len(uses[rec.lf]) > 1 else ''} change?"
                    if columns
                    else ""
                )
                alerts.append(
                    f"LF `{rec.lf}` covers {rec.coverage:.0%} of rows today (was {was:.0%} in "
                    f"{previous_partition or 'the previous partition'}){hint}"
                )
    for name, failed in (errors or {}).items():
        alerts.append(
            f"LF `{name}` raised on {len(failed)} rows (first: row {failed[0]}); "
            "they were counted as abstains"
        )
    voting = summary[summary["coverage"] > 0]
    one_class = voting["polarity"].nunique() == 1 and "," not in str(
        voting["polarity"].iloc[0] if len(voting) else ""
    )
    if len(voting) > 1 and (voting["conflicts"] == 0).all() and one_class:
        cls = voting["polarity"].iloc[0]
        alerts.append(
            f"all LFs that voted agree, always on `{cls}`: their accuracies cannot be told apart and every "
            f"covered row is labeled `{cls}`. Add LFs for the other classes, or gold labels"
        )
    return alerts


def summary_markdown(summary: pd.DataFrame) -> str:
    """The LF table for the Dagster UI."""
    head = "| LF | polarity | coverage | vs previous | overlaps | conflicts | acc. vs gold (n) | est. acc. |"
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for r in summary.itertuples(index=False):
        emp = f"{r.empirical_accuracy:.2f} ({r.gold_votes})" if not np.isnan(r.empirical_accuracy) else "-"
        est = f"{r.estimated_accuracy:.2f}" if not np.isnan(r.estimated_accuracy) else "-"
        change = f"{r.coverage_change:+.1%}" if not np.isnan(r.coverage_change) else "-"
        lines.append(
            f"| `{r.lf}` | {r.polarity or '-'} | {r.coverage:.1%} | {change} | {r.overlaps:.1%} "
            f"| {r.conflicts:.1%} | {emp} | {est} |"
        )
    return "\n".join(lines)


def dependent_pairs(
    L: np.ndarray,
    accuracies: Sequence[float],
    names: Sequence[str],
    cardinality: int,
    *,
    min_overlap: int = 50,
    margin: float = 0.1,
) -> list[str]:
    """Pairs of LFs that agree far more often than two independent LFs of their accuracy would.

    The label model assumes LFs err independently; a dependent pair is counted twice. Expected
    agreement of independent LFs with accuracies a and b: ab + (1-a)(1-b)/(k-1).
    """
    voted = L != ABSTAIN
    alerts = []
    m = L.shape[1]
    for j in range(m):
        for other in range(j + 1, m):
            both = voted[:, j] & voted[:, other]
            if both.sum() < min_overlap:
                continue
            observed = float((L[both, j] == L[both, other]).mean())
            a, b = accuracies[j], accuracies[other]
            expected = a * b + (1 - a) * (1 - b) / (cardinality - 1)
            if observed - expected > margin:
                alerts.append(
                    f"LFs `{names[j]}` and `{names[other]}` agree on {observed:.0%} of the "
                    f"{int(both.sum()):,} rows both vote on, where independent LFs of their accuracy "
                    f"would agree on {expected:.0%}: the label model counts their evidence twice. "
                    "Merge them, or drop one"
                )
    return alerts
