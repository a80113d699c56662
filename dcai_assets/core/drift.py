"""Drift of one partition against a reference profile: L-infinity distance for categorical
features (with the value that moved most), Jensen-Shannon divergence for numeric ones."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dcai_assets.core.schema import ColumnSchema, ReferenceProfile

OTHER = "__other__"


@dataclass(frozen=True)
class ColumnDrift:
    """How far one column moved, measured and explained."""

    column: str
    metric: str  # "L-inf" or "JSD"
    distance: float
    threshold: float | None
    detail: str  # what changed, in words built from the observed values

    @property
    def drifted(self) -> bool:
        return self.threshold is not None and self.distance > self.threshold


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
) -> ColumnDrift:
    """Measure how far ``values`` moved from ``reference`` and say it in words; ``step`` marks a
    comparison with the previous partition, judged by the column's step threshold."""
    threshold = column.step_drift_threshold if step else column.drift_threshold
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
        return ColumnDrift(column.name, "L-inf", distance, threshold, detail)
    if reference.bin_edges is not None and reference.bin_frequencies is not None:
        cur = histogram_shares(values, reference.bin_edges)
        if cur.sum() == 0:
            return ColumnDrift(column.name, "JSD", 0.0, threshold, "no numeric values")
        distance = jensen_shannon(cur, np.asarray(reference.bin_frequencies))
        median = float(pd.to_numeric(values, errors="coerce").median())
        detail = f"median {median:g}"
        if reference.median is not None:
            detail += f" (was {reference.median:g} in the {against})"
        return ColumnDrift(column.name, "JSD", distance, threshold, detail)
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
                frequencies={k: v for k, v in shares.items() if not k.startswith(f"{OTHER}:")}
            )
        elif ref.bin_edges is not None:
            numeric = pd.to_numeric(values, errors="coerce")
            out[col.name] = ReferenceProfile(
                bin_edges=list(ref.bin_edges),
                bin_frequencies=[float(v) for v in histogram_shares(numeric, ref.bin_edges)],
                median=None if numeric.dropna().empty else float(numeric.median()),
            )
    return out


def drift_report(
    frame: pd.DataFrame,
    columns: list[ColumnSchema],
    baseline: dict[str, ReferenceProfile] | None = None,
    *,
    against: str = "reference",
) -> list[ColumnDrift]:
    """Drift of every profiled column, against the schema's reference or a given baseline."""
    report = []
    for col in columns:
        ref = col.reference if baseline is None else baseline.get(col.name)
        if ref is None or col.name not in frame.columns:
            continue
        report.append(column_drift(frame[col.name], col, ref, against=against, step=baseline is not None))
    return report
