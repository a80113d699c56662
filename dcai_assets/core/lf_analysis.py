"""What each labeling function did on a partition (coverage, overlaps, conflicts, polarity,
accuracy against gold and as the label model estimates it), and alerts that say what changed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from statistics import NormalDist

import numpy as np
import pandas as pd

from dcai_assets.core.labeling import ABSTAIN, LabelingFunctionSet

# A coverage change is worth an alert when it is large in points and relative to before (what
# matters), and unlikely to be sampling noise: a two-proportion z-test at COVERAGE_ALERT_ALPHA,
# Bonferroni-corrected over the LFs, so a partition of noise alerts about once in 100.
COVERAGE_ALERT_POINTS = 0.05
COVERAGE_ALERT_RATIO = 0.5
COVERAGE_ALERT_ALPHA = 0.01
# A pair of LFs is dependent when it votes the same class on DEPENDENCE_MARGIN more rows than
# LFs independent given the class would, and a one-sided binomial z-test at DEPENDENCE_ALPHA
# (Bonferroni-corrected over the pairs) says it is not chance.
DEPENDENCE_MARGIN = 0.25
DEPENDENCE_ALPHA = 0.001


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
            "votes": int(mine.sum()),
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
    previous_rows: int | None = None,
) -> list[str]:
    """Actionable alerts: coverage shifts (naming the columns the LF reads), LF errors, zero
    coverage, and LFs that only ever agree.

    A coverage shift alerts only when it is large (``COVERAGE_ALERT_POINTS`` and
    ``COVERAGE_ALERT_RATIO``) and significant for the two partitions' sizes (``rows`` today,
    ``previous_rows`` before: the same as today when not known), so small partitions do not
    alert on sampling noise.
    """
    alerts: list[str] = []
    today = rows or _rows(summary)
    before = previous_rows or today
    z_alert = NormalDist().inv_cdf(1 - COVERAGE_ALERT_ALPHA / (2 * max(len(summary), 1)))
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
            large = abs(delta) >= COVERAGE_ALERT_POINTS and abs(delta) >= COVERAGE_ALERT_RATIO * max(
                was, 1e-9
            )
            if large and _two_proportion_z(rec.coverage, today, was, before) >= z_alert:
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


def _rows(summary: pd.DataFrame) -> int:
    """The partition's row count, read back from an LF's votes and coverage (0 if none voted)."""
    voted = summary[summary["coverage"] > 0]
    return round(float((voted["votes"] / voted["coverage"]).max())) if len(voted) else 0


def _two_proportion_z(p1: float, n1: int, p2: float, n2: int) -> float:
    """|z| of the difference of two proportions under the pooled null (0 when undefined)."""
    if n1 <= 0 or n2 <= 0:
        return 0.0
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return float(abs(p1 - p2) / se) if se > 0 else (np.inf if p1 != p2 else 0.0)


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
    class_balance: Sequence[float] | None = None,
    min_overlap: int = 50,
    margin: float = DEPENDENCE_MARGIN,
    alpha: float = DEPENDENCE_ALPHA,
) -> list[str]:
    """Pairs of LFs that vote the same class on more rows than LFs independent given the true
    class would: the label model assumes independence, so it counts such a pair's evidence twice.

    Each LF is modelled from what is known of it: how often it votes each class (its coverage
    and polarity, as observed) and its accuracy, its errors spread over the other classes in
    proportion to ``class_balance`` (as the label model estimates it
    from the votes when not given). That gives
    P(vote | class) and so the expected number of rows two independent LFs vote the same class
    on; agreement that abstaining together explains (two one-sided LFs of one polarity always
    agree where both vote) is expected, not an alert. A pair alerts when it votes together on at
    least ``min_overlap`` rows, ``margin`` more than expected, and a one-sided binomial z-test at
    ``alpha`` (Bonferroni over the pairs) rejects independence.
    """
    L = np.asarray(L)
    n, m = L.shape
    if len(accuracies) != m or len(names) != m:
        raise ValueError(
            f"accuracies and names: {len(accuracies)} and {len(names)} values; expected one per LF "
            f"column of L ({m})"
        )
    if n == 0 or m < 2:
        return []
    balance = _class_balance(L, cardinality) if class_balance is None else np.asarray(class_balance, float)
    given = [_vote_given_class(L[:, j], float(accuracies[j]), balance, cardinality) for j in range(m)]
    z_alert = NormalDist().inv_cdf(1 - alpha / (m * (m - 1) / 2))
    alerts = []
    for j in range(m):
        for other in range(j + 1, m):
            together = int(((L[:, j] == L[:, other]) & (L[:, j] != ABSTAIN)).sum())
            if together < min_overlap:
                continue
            # Expected rows both vote the same class: n * sum over y, c of P(y) P(c | y) P(c | y).
            p = float(np.einsum("y,cy,cy->", balance, given[j], given[other]))
            expected = n * p
            se = np.sqrt(max(n * p * (1 - p), 1e-12))
            if together >= (1 + margin) * expected and (together - expected) / se >= z_alert:
                ratio = f"{together / expected:.1f}x" if expected > 0 else "infinitely more"
                alerts.append(
                    f"LFs `{names[j]}` and `{names[other]}` vote the same class on {together:,} of "
                    f"{n:,} rows, where LFs independent given the true class, with their coverage and "
                    f"accuracy, would on {expected:,.0f} ({ratio}): the label model counts their evidence "
                    "twice. Merge them, or drop one"
                )
    return alerts


def _class_balance(L: np.ndarray, cardinality: int) -> np.ndarray:
    """The class balance the label model estimates from the votes alone."""
    from dcai_assets.core.label_model import LabelModel

    return LabelModel(cardinality).fit(L).class_balance_


def _vote_given_class(votes: np.ndarray, accuracy: float, balance: np.ndarray, k: int) -> np.ndarray:
    """P(vote = c | class = y) as a (k, k) array, from the LF's observed rate of voting each
    class, its accuracy, and the class balance (errors split over the other classes by it)."""
    rate = np.array([(votes == c).mean() for c in range(k)])
    a = float(np.clip(accuracy if np.isfinite(accuracy) else 1.0 / k, 1e-6, 1 - 1e-6))
    joint = np.empty((k, k))  # joint[c, y] = P(vote c, class y)
    for c in range(k):
        others = balance.copy()
        others[c] = 0.0
        others = others / others.sum() if others.sum() > 0 else others
        joint[c] = (1 - a) * rate[c] * others
        joint[c, c] = a * rate[c]
    given = joint / np.maximum(balance, 1e-12)[None, :]
    total = given.sum(axis=0)  # P(any vote | y): at most 1, or the estimates disagree
    return given / np.maximum(total, 1.0)[None, :]
