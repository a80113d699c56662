"""What-if: remove chosen training rows, retrain the same model on the rest, and judge both on the
same holdout; beside it, the same number of rows removed at random (several draws), so that a
gain can be told apart from the noise any removal brings. Pure: the caller passes ``retrain``
(rows in, holdout predictions and their :class:`Evaluation` out), which fits the user's pipeline
exactly as the trained model does."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dcai_assets.core.columns import GOLD, LABEL_SOURCE, lf_column
from dcai_assets.core.evaluation import Evaluation
from dcai_assets.core.training import TrainingError

Retrain = Callable[[pd.DataFrame], tuple[np.ndarray, Evaluation]]

TABLE_COLUMNS = [
    "removed_rows", "share", "metric", "before", "after", "change", "random_mean", "random_sd",
    "random_min", "random_max", "random_draws", "rows_fixed", "rows_broken", "paired_p", "verdict", "flag",
    "before_ci_low", "before_ci_high", "after_ci_low", "after_ci_high",
]  # fmt: skip


@dataclass(frozen=True)
class Outcome:
    """One retrain judged on the holdout: its predictions and evaluation, or why the fit failed."""

    removed: int
    predictions: np.ndarray | None
    evaluation: Evaluation | None
    error: str = ""


@dataclass(frozen=True)
class Step:
    """One size of the sweep: the chosen rows removed (``targeted``) and ``random`` draws of as
    many rows from the same pool."""

    size: int
    targeted: Outcome
    random: tuple[Outcome, ...]


@dataclass(frozen=True)
class WhatIfResult:
    """Before (nothing removed) and every step of the sweep, on the same holdout rows ``y_true``.

    ``selection`` says which rows were removed (for people); ``pool_rows`` is how many rows the
    targeted and the random removals chose from; ``min_rows`` the holdout size below which every
    figure is flagged as noise; ``metrics`` the overall metrics compared, first the headline."""

    selection: str
    train_rows: int
    pool_rows: int
    y_true: np.ndarray
    before: Outcome
    steps: tuple[Step, ...]
    min_rows: int
    metrics: tuple[str, ...] = ("accuracy",)
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def holdout_rows(self) -> int:
        return len(self.y_true)

    def table(self) -> pd.DataFrame:
        """One row per step and figure (``metrics``, then every fairness gap): before, after,
        the random draws' mean, standard deviation and range, the holdout rows the removal fixed
        and broke (headline metric only), a verdict and a flag. A figure that is undefined or
        undetermined is NaN with the flag saying why, never a number."""
        records = []
        before_gaps = _gaps(self.before)
        for step in self.steps:
            share = step.size / self.train_rows
            for metric in self.metrics:
                records.append(self._metric_row(step, share, metric))
            for name in sorted(before_gaps | _gaps(step.targeted)):
                records.append(self._gap_row(step, share, name))
        return pd.DataFrame.from_records(records, columns=TABLE_COLUMNS)

    def _base_flags(self, *outcomes: Outcome) -> list[str]:
        flags = []
        if self.holdout_rows < self.min_rows:
            flags.append(f"too few holdout rows: {self.holdout_rows} (need {self.min_rows}): noise")
        flags += [f"retrain failed after removing {o.removed} rows: {o.error}" for o in outcomes if o.error]
        if any(o.evaluation is not None and not o.evaluation.determined for o in outcomes):
            flags.append("undetermined: fewer than two classes with enough holdout rows")
        return flags

    def _metric_row(self, step: Step, share: float, metric: str) -> dict:
        before, after = _metric(self.before, metric), _metric(step.targeted, metric)
        draws = np.array([_metric(o, metric) for o in step.random])
        flags = self._base_flags(self.before, step.targeted)
        if math.isnan(before) or math.isnan(after):
            flags.append(f"{metric} undefined on these holdout rows")
        fixed = broken = None
        if (
            metric == self.metrics[0]
            and self.before.predictions is not None
            and step.targeted.predictions is not None
        ):
            was = self.before.predictions == self.y_true
            now = step.targeted.predictions == self.y_true
            fixed, broken = int((now & ~was).sum()), int((was & ~now).sum())
        row = self._random_summary(draws, step, flags)
        verdict, paired_p = "", math.nan
        if metric == self.metrics[0]:
            verdict = _verdict(after - before, draws - before, flags)
            if fixed is not None and not math.isnan(after - before):
                paired_p = mcnemar_p(fixed, broken)
                verdict += "; " + _significance(fixed, broken, paired_p)
        return {
            "removed_rows": step.size, "share": share, "metric": metric, "before": before,
            "after": after, "change": after - before, **row, "rows_fixed": fixed,
            "rows_broken": broken, "paired_p": paired_p, "verdict": verdict, "flag": "; ".join(flags),
            "before_ci_low": math.nan, "before_ci_high": math.nan, "after_ci_low": math.nan,
            "after_ci_high": math.nan,
        }  # fmt: skip

    def _gap_row(self, step: Step, share: float, name: str) -> dict:
        before_gap, after_gap = _gaps(self.before).get(name), _gaps(step.targeted).get(name)
        flags = self._base_flags(self.before, step.targeted)
        for when, gap in (("before", before_gap), ("after", after_gap)):
            if gap is None:
                flags.append(f"{when}: not computed")
            elif not gap.determined:
                flags.append(f"{when}: undetermined ({gap.reason})")
        before = _gap_value(before_gap)
        after = _gap_value(after_gap)
        draws = np.array([_gap_value(_gaps(o).get(name)) for o in step.random])
        row = self._random_summary(draws, step, flags, what="undetermined or failed")
        return {
            "removed_rows": step.size, "share": share, "metric": f"fairness: {name}", "before": before,
            "after": after, "change": after - before, **row, "rows_fixed": None, "rows_broken": None,
            "paired_p": math.nan, "verdict": "", "flag": "; ".join(flags), **_interval("before", before_gap),
            **_interval("after", after_gap),
        }  # fmt: skip

    @staticmethod
    def _random_summary(draws: np.ndarray, step: Step, flags: list[str], what: str = "failed") -> dict:
        """Mean, spread and range of the random draws; NaN (flagged) unless every draw has a
        figure: a mean over the draws that happened to work would be biased."""
        ok = ~np.isnan(draws)
        if len(draws) and not ok.all():
            flags.append(f"random: {int((~ok).sum())} of {len(draws)} draws {what}")
        if not len(draws) or not ok.all():
            return dict(random_mean=math.nan, random_sd=math.nan, random_min=math.nan, random_max=math.nan,
                        random_draws=len(draws))  # fmt: skip
        if len(draws) < 2:
            flags.append("random: one draw, no spread")
        return dict(
            random_mean=float(draws.mean()),
            random_sd=float(draws.std(ddof=1)) if len(draws) > 1 else math.nan,
            random_min=float(draws.min()),
            random_max=float(draws.max()),
            random_draws=len(draws),
        )

    def markdown(self) -> str:
        """The table for people (the asset's metadata and the command line), figures first, then
        the flags numbered under it, then the notes."""
        notes = "".join(f"\n\nNOTE: {n}" for n in self.notes)
        return table_markdown(self.table(), self.header()) + notes

    def header(self) -> str:
        return (
            f"Removed: {self.selection}. Training window {self.train_rows} rows (removals drawn from "
            f"{self.pool_rows}); holdout {self.holdout_rows} rows; random baseline: "
            f"{len(self.steps[0].random) if self.steps else 0} draws of as many rows per step."
        )


def _metric(outcome: Outcome, metric: str) -> float:
    if outcome.evaluation is None:
        return math.nan
    return float(outcome.evaluation.overall.get(metric, math.nan))


def _gaps(outcome: Outcome) -> dict:
    return {} if outcome.evaluation is None else outcome.evaluation.fairness_gaps()


def _gap_value(gap) -> float:
    return math.nan if gap is None or not gap.determined else float(gap.value)


def _interval(when: str, gap) -> dict:
    """A determined gap's confidence interval (see ``fairness_gaps``); NaN otherwise."""
    ok = gap is not None and gap.determined
    return {
        f"{when}_ci_low": float(gap.ci_low) if ok else math.nan,
        f"{when}_ci_high": float(gap.ci_high) if ok else math.nan,
    }


def _verdict(change: float, random_changes: np.ndarray, flags: list[str]) -> str:
    """How the targeted change compares with the random draws' (higher is better)."""
    if math.isnan(change):
        return "undetermined"
    if not len(random_changes) or np.isnan(random_changes).any():
        return "no random baseline"
    tail = "; figures flagged" if flags else ""
    if change > random_changes.max():
        return f"better than all {len(random_changes)} random removals{tail}"
    if change < random_changes.min():
        return f"worse than all {len(random_changes)} random removals{tail}"
    return f"within the random removals' range{tail}"


def mcnemar_p(fixed: int, broken: int) -> float:
    """Exact two-sided McNemar p-value of a change in accuracy on the same holdout rows: under no
    effect, each of the ``fixed + broken`` rows whose outcome changed is as likely fixed as broken
    (a binomial with p = 1/2). 1.0 when no row changed.

    >>> round(mcnemar_p(4, 1), 3), round(mcnemar_p(12, 1), 4), mcnemar_p(0, 0)
    (0.375, 0.0034, 1.0)
    """
    for name, value in (("fixed", fixed), ("broken", broken)):
        _check_int(name, value, 0)
    n, low = fixed + broken, min(fixed, broken)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(low + 1)) / 2.0**n
    return min(1.0, 2.0 * tail)


def _significance(fixed: int, broken: int, p: float, alpha: float = 0.05) -> str:
    """Whether the rows fixed and broken could be chance, in words."""
    if fixed + broken == 0:
        return "no holdout prediction changed"
    judged = f"significant at {alpha}" if p < alpha else "not significant: could be chance"
    return f"{fixed} fixed vs {broken} broken, McNemar p = {p:.2g} ({judged})"


def _figure(value, low=math.nan, high=math.nan) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    interval = "" if math.isnan(low) else f" ({low:.3f} .. {high:.3f})"
    return (f"{value:.4f}" if isinstance(value, float) else str(value)) + interval


def table_markdown(table: pd.DataFrame, header: str = "") -> str:
    """A :meth:`WhatIfResult.table` as a markdown table, each flag numbered below it."""
    head = ["removed", "metric", "before", "after", "change", "random mean ± sd [min .. max]"]
    head += ["fixed / broken", "verdict", "flag"]
    lines = ([header, ""] if header else []) + ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    flags: dict[str, int] = {}
    for _, r in table.iterrows():
        if math.isnan(r["random_mean"]):
            random = "-"
        else:
            sd = "" if math.isnan(r["random_sd"]) else f" ± {r['random_sd']:.4f}"
            random = f"{r['random_mean']:.4f}{sd} [{r['random_min']:.4f} .. {r['random_max']:.4f}]"
        change = "-" if math.isnan(r["change"]) else f"{r['change']:+.4f}"
        paired = "-" if pd.isna(r["rows_fixed"]) else f"{int(r['rows_fixed'])} / {int(r['rows_broken'])}"
        mark = ""
        if r["flag"]:
            mark = f"[{flags.setdefault(r['flag'], len(flags) + 1)}]"
        before = _figure(r["before"], r["before_ci_low"], r["before_ci_high"])
        cells = [f"{int(r['removed_rows'])} ({r['share']:.1%})", r["metric"], before]
        cells += [
            _figure(r["after"], r["after_ci_low"], r["after_ci_high"]),
            change,
            random,
            paired,
            r["verdict"] or "-",
            mark or "-",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if table["before_ci_low"].notna().any() or table["after_ci_low"].notna().any():
        lines += [
            "",
            "Fairness gaps: (low .. high) is the gap's simultaneous confidence interval over its groups "
            "(see fairness_gaps).",
        ]
    lines += [""] + [f"[{i}] {text}" for text, i in flags.items()]
    return "\n".join(lines).rstrip()


def sweep_sizes(train_rows: int, fractions: Sequence[float]) -> tuple[list[int], list[str]]:
    """How many rows each of ``fractions`` of ``train_rows`` is (rounded; once each, smallest
    first), and a note for each fraction that rounds to no row or to the whole window."""
    _check_fractions(fractions)
    sizes, notes = set(), []
    for f in fractions:
        n = math.floor(float(f) * train_rows + 0.5)  # half up
        if n < 1:
            notes.append(f"{f:.1%} of {train_rows} training rows is no row: skipped")
        elif n >= train_rows:
            notes.append(f"{f:.1%} of {train_rows} training rows leaves none to train on: skipped")
        else:
            sizes.add(n)
    return sorted(sizes), notes


def _check_fractions(fractions: Sequence[float]) -> None:
    if isinstance(fractions, str) or not isinstance(fractions, Sequence) or not len(fractions):
        raise ValueError(f"fractions: {fractions!r}; expected a non-empty list of numbers between 0 and 1")
    for f in fractions:
        if isinstance(f, bool) or not isinstance(f, int | float | np.floating) or not 0 < f < 1:
            raise ValueError(
                f"fractions: {f!r} in {list(fractions)}; expected numbers between 0 and 1 (exclusive)"
            )


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name}: {value!r}; expected an integer >= {minimum}")


def harmful_order(values: np.ndarray) -> np.ndarray:
    """Row positions from the lowest KNN-Shapley value (most harmful) up; ties keep row order."""
    values = np.asarray(values)
    if (
        values.ndim != 1
        or not np.issubdtype(values.dtype, np.number)
        or np.issubdtype(values.dtype, np.bool_)
    ):
        raise TypeError(
            f"values: {values.dtype} array of shape {values.shape}; expected a 1-d array of numbers"
        )
    if not np.isfinite(values).all():
        raise ValueError(
            f"values: {int((~np.isfinite(values)).sum())} of {len(values)} are NaN or infinite; expected "
            "a finite KNN-Shapley value for every training row"
        )
    return np.argsort(values, kind="stable")


def lf_rows(train: pd.DataFrame, lf: str) -> np.ndarray:
    """Positions of the rows labeling function ``lf`` voted on (any class), gold rows excepted:
    their label is hand-checked, whatever the LF said."""
    column = lf_column(lf)
    if column not in train.columns:
        known = sorted(c.removeprefix("lf__") for c in train.columns if c.startswith("lf__"))
        raise ValueError(f"lf: {lf!r} voted on no column of the training rows; expected one of {known}")
    voted = train[column].to_numpy() != -1
    not_gold = (train[LABEL_SOURCE] != GOLD).to_numpy() if LABEL_SOURCE in train.columns else True
    return np.flatnonzero(voted & not_gold)


def _retrain(retrain: Retrain, rows: pd.DataFrame, removed: int, holdout_rows: int) -> Outcome:
    try:
        predictions, evaluation = retrain(rows)
    except TrainingError as e:
        return Outcome(removed, None, None, str(e))
    predictions = np.asarray(predictions).astype(str)
    if len(predictions) != holdout_rows:
        raise ValueError(
            f"retrain: returned {len(predictions)} predictions; expected one per holdout row ({holdout_rows})"
        )
    return Outcome(removed, predictions, evaluation)


def _positions(n: int, order, pool, sizes) -> tuple[np.ndarray, np.ndarray]:
    """``order`` and ``pool`` as checked positions among ``n`` training rows, and ``sizes`` checked
    against them (arguments of :func:`what_if`)."""
    order = np.asarray(order)
    if order.ndim != 1 or not np.issubdtype(order.dtype, np.integer) or len(np.unique(order)) != len(order):
        raise ValueError("order: expected distinct integer row positions, most to be removed first")
    if len(order) and (order.min() < 0 or order.max() >= n):
        raise ValueError(f"order: positions outside 0..{n - 1}; expected positions of training rows")
    pool = np.arange(n) if pool is None else np.unique(np.asarray(pool))
    if len(pool) and (pool.min() < 0 or pool.max() >= n):
        raise ValueError(f"pool: positions outside 0..{n - 1}; expected positions of training rows")
    if isinstance(sizes, str) or not isinstance(sizes, Sequence) or not len(sizes):
        raise ValueError(f"sizes: {sizes!r}; expected a non-empty list of row counts")
    for size in sizes:
        _check_int("sizes", size, 1)
        if size > len(order) or size > len(pool) or size >= n:
            raise ValueError(
                f"sizes: {size} rows to remove; expected at most {min(len(order), len(pool), n - 1)} "
                f"({len(order)} rows are candidates, {len(pool)} in the random pool, {n} in the window, "
                "and at least one must stay)"
            )
    return order, pool


def what_if(
    train: pd.DataFrame,
    y_true: np.ndarray,
    retrain: Retrain,
    *,
    order: np.ndarray,
    sizes: Sequence[int],
    pool: np.ndarray | None = None,
    random_repeats: int = 5,
    seed: int = 0,
    min_rows: int = 30,
    selection: str = "chosen rows",
    metrics: Sequence[str] = ("accuracy",),
    notes: Sequence[str] = (),
) -> WhatIfResult:
    """Retrain on ``train`` as it is, then without its first ``size`` rows of ``order``
    (positions, e.g. :func:`harmful_order` or :func:`lf_rows`) for each of ``sizes``; and, for
    each size, without ``random_repeats`` random draws of as many rows from ``pool`` (positions;
    default every row). ``y_true``: the holdout labels ``retrain`` predicts.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from dcai_assets.core.evaluation import evaluate
    >>> train = pd.DataFrame({"x": [0, 1, 2, 3, 4, 5], "label": list("aaabbb"), "p": "d"})
    >>> holdout = pd.DataFrame({"x": [0.5, 4.5], "label": ["a", "b"], "p": "h"})
    >>> def retrain(rows):  # a threshold halfway between the classes' means
    ...     cut = rows.groupby("label")["x"].mean().mean()
    ...     pred = np.where(holdout["x"] > cut, "b", "a")
    ...     return pred, evaluate(holdout["label"], pred, holdout, ["a", "b"], partition_column="p",
    ...                           min_class_rows=1)
    >>> result = what_if(train, holdout["label"].to_numpy(), retrain, order=np.array([5, 0]),
    ...                  sizes=[1], random_repeats=2, min_rows=2)
    >>> row = result.table().iloc[0]
    >>> int(row["removed_rows"]), float(row["before"]), float(row["after"]), row["flag"]
    (1, 1.0, 1.0, '')
    """
    if not isinstance(train, pd.DataFrame):
        raise TypeError(f"train: {type(train).__name__}; expected a pandas DataFrame of training rows")
    n = len(train)
    y_true = np.asarray(y_true).astype(str)
    if len(y_true) == 0:
        raise ValueError("y_true: no holdout rows; expected the labels of the rows the model is judged on")
    _check_int("random_repeats", random_repeats, 1)
    _check_int("min_rows", min_rows, 1)
    _check_int("seed", seed, 0)
    order, pool = _positions(n, order, pool, sizes)
    if not len(metrics) or not all(isinstance(m, str) for m in metrics):
        raise ValueError(f"metrics: {metrics!r}; expected names of overall metrics, e.g. ['accuracy']")
    before = _retrain(retrain, train, 0, len(y_true))
    steps = []
    for size in sorted(set(int(s) for s in sizes)):
        keep = np.ones(n, dtype=bool)
        keep[order[:size]] = False
        targeted = _retrain(retrain, train[keep], size, len(y_true))
        draws = []
        for r in range(random_repeats):
            rng = np.random.default_rng([seed, size, r])
            keep = np.ones(n, dtype=bool)
            keep[rng.choice(pool, size=size, replace=False)] = False
            draws.append(_retrain(retrain, train[keep], size, len(y_true)))
        steps.append(Step(size, targeted, tuple(draws)))
    return WhatIfResult(
        selection=selection, train_rows=n, pool_rows=len(pool), y_true=y_true, before=before,
        steps=tuple(steps), min_rows=min_rows, metrics=tuple(dict.fromkeys(metrics)), notes=tuple(notes),
    )  # fmt: skip


__all__ = [
    "Outcome", "Retrain", "Step", "WhatIfResult", "harmful_order", "lf_rows", "mcnemar_p", "sweep_sizes",
    "table_markdown", "what_if",
]  # fmt: skip
