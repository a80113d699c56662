"""Drift of one partition against a reference profile: L-infinity distance for categorical
features (with the value that moved most), Jensen-Shannon divergence for numeric ones.

A distance alerts only above the larger of two thresholds: the schema's (the smallest move worth
a look, learnt from the reference window) and the one sampling noise alone reaches with
probability ``alpha`` at this partition's size and the reference's (a small partition moves far
by chance; see `noise_threshold`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dcai_assets.core.schema import FALSE_ALARM_RATE, ColumnSchema, ReferenceProfile

OTHER = "__other__"


@dataclass(frozen=True)
class ColumnDrift:
    """How far one column moved, measured and explained."""

    column: str
    metric: str  # "L-inf" or "JSD"
    distance: float
    threshold: float | None  # the larger of the schema's threshold and the noise threshold
    detail: str  # what changed, in words built from the observed values
    n: int | None = None  # non-null values measured in the partition
    n_reference: int | None = None  # values behind the reference profile (None: not recorded)
    noise_threshold: float | None = None  # the distance sampling noise reaches with chance alpha
    max_distance: float = 1.0  # the largest distance this reference allows

    @property
    def undetermined(self) -> bool:
        """Too few values: noise alone can reach any distance, so no drift can be told."""
        return self.noise_threshold is not None and self.noise_threshold >= self.max_distance - 1e-9

    @property
    def drifted(self) -> bool:
        return self.threshold is not None and not self.undetermined and self.distance > self.threshold


def categorical_shares(values: pd.Series, known: list[str]) -> dict[str, float]:
    """Share of each known value, the rest pooled under ``__other__``."""
    v = values.dropna()
    if len(v) == 0:
        return {}
    shares = v.astype(str).value_counts(normalize=True)
    known_set = [k for k in known if k != OTHER]
    out = {k: float(shares.get(k, 0.0)) for k in known_set}
    out[OTHER] = float(max(0.0, 1.0 - sum(out.values())))
    # Keep the top unknown value by name: "a new value took over" is the actionable story.
    unknown = shares.drop(labels=[k for k in known_set if k in shares.index], errors="ignore")
    if len(unknown):
        out[f"{OTHER}:{unknown.index[0]}"] = float(unknown.iloc[0])
    return out


def histogram_shares(values: pd.Series, edges: list[float]) -> np.ndarray:
    """Shares of ``values`` in the reference bins (open outer bins)."""
    x = pd.to_numeric(values, errors="coerce").dropna().to_numpy(dtype=float)
    counts = np.bincount(np.searchsorted(np.asarray(edges), x, side="left"), minlength=len(edges) + 1)
    total = counts.sum()
    return counts / total if total else counts.astype(float)


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence in bits (0 = same, 1 = disjoint)."""
    p = np.asarray(p, dtype=float)
    q = np.asarray(q, dtype=float)
    if p.sum() == 0 or q.sum() == 0:
        return 0.0
    p, q = p / p.sum(), q / q.sum()
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_pm = np.where(p > 0, p * np.log2(p / m), 0.0).sum()
        kl_qm = np.where(q > 0, q * np.log2(q / m), 0.0).sum()
    return float(max(0.0, 0.5 * (kl_pm + kl_qm)))


def effective_size(n: int, n_reference: int | None) -> float:
    """The one-sample size whose noise equals that of comparing samples of ``n`` and
    ``n_reference`` values (``None``: a reference known exactly)."""
    if n_reference is None or n_reference <= 0:
        return float(n)
    return 1.0 / (1.0 / n + 1.0 / n_reference)


def linf_noise_threshold(shares: Mapping[str, float], n: int, n_reference: int | None, alpha: float) -> float:
    """The L-infinity distance that sampling noise exceeds with probability at most ``alpha``.

    Each share of ``n`` values drawn from ``shares`` is binomial; exact binomial tails at the
    effective size (`effective_size`), summed over the values (a union bound), give the
    smallest distance ``c`` with P(max |share - reference share| > c) <= ``alpha``. Returns 1.0
    when no distance can be told from noise (no values).
    """
    from scipy.special import bdtr, bdtrc  # binomial cdf and survival function

    m = round(effective_size(n, n_reference))
    p = np.array([v for v in shares.values() if v > 0], dtype=float)
    if m < 1 or not len(p):
        return 1.0
    p = p / p.sum()

    def tail(c: float) -> float:
        hi = np.floor(m * (p + c) + 1e-9)  # P(X/m - p > c) = P(X > hi)
        lo = np.ceil(m * (p - c) - 1e-9) - 1  # P(p - X/m > c) = P(X <= lo)
        above = np.where(hi >= m, 0.0, bdtrc(np.clip(hi, 0, m), m, p))
        above = np.where(hi < 0, 1.0, above)
        below = np.where(lo < 0, 0.0, bdtr(np.clip(lo, 0, m), m, p))
        below = np.where(lo >= m, 1.0, below)
        return float(np.sum(above + below))

    lo, hi = 0.0, 1.0
    if tail(lo) <= alpha:
        return 0.0
    for _ in range(40):  # bisection: the tail only falls as c grows
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if tail(mid) <= alpha else (mid, hi)
    return min(1.0, hi + 1e-9)  # a distance on the critical value itself does not alert


def jsd_noise_threshold(
    bin_frequencies: Sequence[float], n: int, n_reference: int | None, alpha: float, *, draws: int = 4000
) -> float:
    """The Jensen-Shannon divergence (bits) that sampling noise exceeds with probability about
    ``alpha``.

    Draws ``draws`` pairs of samples of ``n`` and ``n_reference`` values from the reference bins,
    and fits a scaled chi-square (matching the mean and variance of their divergences) whose
    upper ``alpha`` quantile is returned: at large n this is Pearson's X^2 / (8 n ln 2), and at
    small n it keeps the heavier tail that empty bins give. Seeded: the same inputs give the same
    threshold. Capped at 1.0 (no divergence can be told from noise).
    """
    from scipy.special import chdtri  # inverse chi-square survival function

    q = np.asarray(bin_frequencies, dtype=float)
    q = q[q > 0]
    if n < 1 or len(q) < 2:
        return 1.0 if n < 1 else 0.0
    q = q / q.sum()
    rng = np.random.default_rng([n, n_reference or 0, len(q)])  # seeded: reproducible verdicts
    cur = rng.multinomial(n, q, size=draws) / n
    ref = rng.multinomial(n_reference, q, size=draws) / n_reference if n_reference else np.tile(q, (draws, 1))
    m = 0.5 * (cur + ref)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_cur = np.where(cur > 0, cur * np.log2(cur / m), 0.0).sum(axis=1)
        kl_ref = np.where(ref > 0, ref * np.log2(ref / m), 0.0).sum(axis=1)
    jsd = 0.5 * (kl_cur + kl_ref)
    mean, var = float(jsd.mean()), float(jsd.var())
    # The fit misses the lumps of tiny samples (all values in one bin); the drawn quantile, at
    # the smallest level the draws resolve, bounds the threshold from below.
    drawn = float(np.quantile(jsd, 1.0 - max(alpha, 10.0 / draws)))
    if mean <= 0 or var <= 0:
        return min(1.0, drawn)
    scale, dof = var / (2 * mean), 2 * mean**2 / var  # scale * chi2(dof) has this mean and variance
    return float(min(1.0, max(drawn, scale * chdtri(dof, alpha))))


def _judged(
    column: ColumnSchema,
    metric: str,
    distance: float,
    minimum: float | None,
    detail: str,
    n: int,
    n_reference: int | None,
    noise: float | None,
    max_distance: float = 1.0,
) -> ColumnDrift:
    threshold = None if minimum is None else max(minimum, noise or 0.0)
    if noise is not None and noise >= max_distance - 1e-9:
        detail += f"; too few values (n={n}) to tell drift from sampling noise"
    else:
        detail += f" (n={n:,}" + (f"; reference n={n_reference:,}" if n_reference else "") + ")"
    return ColumnDrift(column.name, metric, distance, threshold, detail, n, n_reference, noise, max_distance)


def _top(shares: dict[str, float]) -> tuple[str, float]:
    named = {k.removeprefix(f"{OTHER}:"): v for k, v in shares.items() if k != OTHER}
    if not named:
        return OTHER, 0.0
    k = max(named, key=named.__getitem__)
    return k, named[k]


def column_drift(
    values: pd.Series,
    column: ColumnSchema,
    reference: ReferenceProfile,
    *,
    against: str = "reference",
    step: bool = False,
    alpha: float | None = FALSE_ALARM_RATE,
) -> ColumnDrift:
    """Measure how far ``values`` moved from ``reference`` and say it in words; ``step`` marks a
    comparison with the previous partition, judged by the column's step threshold. ``alpha`` is
    the chance that sampling noise alone makes this column alert (None: the distance only, no
    noise threshold; for learning thresholds, not for alerting)."""
    threshold = column.step_drift_threshold if step else column.drift_threshold
    n_ref = reference.rows
    if reference.frequencies is not None:
        ref = {k: float(v) for k, v in reference.frequencies.items()}
        cur = categorical_shares(values, list(ref))
        if not cur:
            return ColumnDrift(column.name, "L-inf", 0.0, threshold, "no non-null values")
        new_name = next((k for k in cur if k.startswith(f"{OTHER}:")), None)
        keys = [k for k in ref if k != OTHER] + [OTHER]
        diffs = {k: cur.get(k, 0.0) - ref.get(k, 0.0) for k in keys}
        biggest = max(diffs, key=lambda k: abs(diffs[k]))
        distance = abs(diffs[biggest])
        cur_top, cur_top_share = _top(cur)
        ref_top, ref_top_share = _top(ref)
        if cur_top != ref_top:
            detail = (
                f"`{cur_top}` is now the most frequent value (was `{ref_top}` in the {against}); "
                f"its share is {cur_top_share:.0%}, `{ref_top}` had {ref_top_share:.0%}"
            )
        else:
            label = biggest
            if biggest == OTHER and new_name is not None:
                label = new_name.removeprefix(f"{OTHER}:")
            detail = (
                f"`{label}` share {cur.get(biggest, 0.0):.0%} (was {ref.get(biggest, 0.0):.0%} "
                f"in the {against})"
            )
        n = int(values.notna().sum())
        noise = None if alpha is None else linf_noise_threshold(ref, n, n_ref, alpha)
        return _judged(column, "L-inf", distance, threshold, detail, n, n_ref, noise)
    if reference.bin_edges is not None and reference.bin_frequencies is not None:
        cur = histogram_shares(values, reference.bin_edges)
        if cur.sum() == 0:
            return ColumnDrift(column.name, "JSD", 0.0, threshold, "no numeric values")
        ref_bins = np.asarray(reference.bin_frequencies, dtype=float)
        distance = jensen_shannon(cur, ref_bins)
        numeric = pd.to_numeric(values, errors="coerce")
        median = float(numeric.median())
        detail = f"median {median:g}"
        if reference.median is not None:
            detail += f" (was {reference.median:g} in the {against})"
        n = int(numeric.notna().sum())
        noise = None if alpha is None else jsd_noise_threshold(ref_bins, n, n_ref, alpha)
        # all values in one bin is as far as a sample can move (1.0 if a bin was empty)
        largest = max(jensen_shannon(np.eye(len(ref_bins))[k], ref_bins) for k in range(len(ref_bins)))
        return _judged(column, "JSD", distance, threshold, detail, n, n_ref, noise, largest)
    return ColumnDrift(column.name, "none", 0.0, threshold, "no reference profile")


def partition_profile(frame: pd.DataFrame, columns: list[ColumnSchema]) -> dict[str, ReferenceProfile]:
    """Profile a partition on the reference's own bins and values, to compare later partitions."""
    out: dict[str, ReferenceProfile] = {}
    for col in columns:
        ref = col.reference
        if ref is None or col.name not in frame.columns:
            continue
        values = frame[col.name]
        if ref.frequencies is not None:
            shares = categorical_shares(values, list(ref.frequencies))
            out[col.name] = ReferenceProfile(
                frequencies={k: v for k, v in shares.items() if not k.startswith(f"{OTHER}:")},
                rows=int(values.notna().sum()),
            )
        elif ref.bin_edges is not None:
            numeric = pd.to_numeric(values, errors="coerce")
            out[col.name] = ReferenceProfile(
                bin_edges=list(ref.bin_edges),
                bin_frequencies=[float(v) for v in histogram_shares(numeric, ref.bin_edges)],
                median=None if numeric.dropna().empty else float(numeric.median()),
                rows=int(numeric.notna().sum()),
            )
    return out


def drift_report(
    frame: pd.DataFrame,
    columns: list[ColumnSchema],
    baseline: dict[str, ReferenceProfile] | None = None,
    *,
    against: str = "reference",
    false_alarm_rate: float = FALSE_ALARM_RATE,
    exclude: Sequence[str] = (),
) -> list[ColumnDrift]:
    """Drift of every profiled column, against the schema's reference or a given baseline.

    ``false_alarm_rate`` is the chance that a partition drawn from the reference distribution
    raises any alert, split evenly across the measured columns (Bonferroni). ``exclude`` names
    columns that are not features (the label, gold labels): they are never drift-checked.

    Examples
    --------
    >>> from dcai_assets.core.schema_inference import infer_schema
    >>> reference = {day: pd.DataFrame({"channel": ["web", "app"] * 50}) for day in ["d1", "d2", "d3"]}
    >>> schema = infer_schema(reference)
    >>> (drift,) = drift_report(pd.DataFrame({"channel": ["web"] * 100}), schema.columns)
    >>> drift.drifted, drift.metric, drift.distance
    (True, 'L-inf', 0.5)
    >>> drift.detail
    '`web` share 100% (was 50% in the reference) (n=100; reference n=300)'
    """
    if not 0.0 < false_alarm_rate < 1.0:
        raise ValueError(f"false_alarm_rate: {false_alarm_rate!r}; expected a probability in (0, 1)")
    measured = []
    for col in columns:
        ref = col.reference if baseline is None else baseline.get(col.name)
        if ref is None or col.name not in frame.columns or col.name in exclude:
            continue
        measured.append((col, ref))
    alpha = false_alarm_rate / max(1, len(measured))
    step = baseline is not None
    return [
        column_drift(frame[col.name], col, ref, against=against, step=step, alpha=alpha)
        for col, ref in measured
    ]
