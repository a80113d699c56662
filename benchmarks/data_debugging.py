"""Data debugging on the demo: which rows to inspect first, when labels are wrong in two ways.

Scenarios on the demo flights (Feb 1 - Mar 9 2013 to train, Mar 10-14 as a clean holdout): (1) 15%
of training labels flipped at random; (2) a careless labeling rule that calls every EWR departure
from 15:00 to 18:59 "late" (about 10% of rows). Orders of inspection: (a) importance (exact
KNN-Shapley against the clean holdout, most harmful first), (b) random, (c) the model's own
cross-validated low confidence in the given label (confident learning), (d) the probability a
model fitted on the trusted holdout alone gives the label, (e) the two doubts and the importance
combined as the review queue ranked them before it combined every signal (the queue as it is
now needs the LF votes and gold rows: see ``review_queue.py``). After each 5% of rows inspected,
the wrong labels found are fixed and the model retrained. Prints precision and recall of the
inspected rows and the share of the lost holdout accuracy recovered, per fraction and order, and
the per-LF aggregate of scenario 2.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the demo's `jobs` package

from dcai_assets.core.knn_shapley import knn_shapley
from dcai_assets.core.labeling import apply_lfs
from dcai_assets.core.review import given_label_probability, per_labeling_function
from jobs.flights_data import arrived_late, daily_frames
from jobs.flights_labeling import CLASSES, FLIGHT_LFS
from jobs.flights_training import CATEGORICAL, NUMERIC, flights_pipeline

FEATURES = NUMERIC + CATEGORICAL
STEPS = (0.05, 0.10, 0.15, 0.20, 0.30)


def load() -> tuple[pd.DataFrame, pd.DataFrame]:
    days = daily_frames("2013-02-01", 42)
    frames = []
    for day, frame in days.items():
        truth = arrived_late(frame)
        frame = frame[truth.notna()].assign(day=day, y=truth[truth.notna()].astype(int).to_numpy())
        frames.append(frame)
    flights = pd.concat(frames, ignore_index=True)
    holdout_days = sorted(days)[-5:]
    return flights[~flights["day"].isin(holdout_days)].reset_index(drop=True), flights[
        flights["day"].isin(holdout_days)
    ].reset_index(drop=True)


def dense(model, frame: pd.DataFrame) -> np.ndarray:
    """The rows as the model's own preprocessing sees them."""
    X = model[:-1].transform(frame[FEATURES])
    return np.asarray(X.toarray() if hasattr(X, "toarray") else X, dtype=float)


def fit_score(train: pd.DataFrame, labels: np.ndarray, holdout: pd.DataFrame):
    model = flights_pipeline().fit(train[FEATURES], labels)
    return model, float((model.predict(holdout[FEATURES]) == holdout["y"].to_numpy()).mean())


def low_confidence(train: pd.DataFrame, labels: np.ndarray) -> np.ndarray:
    """Cross-validated probability of the given label (lowest first = most suspicious)."""
    from sklearn.model_selection import cross_val_predict

    proba = cross_val_predict(flights_pipeline(), train[FEATURES], labels, cv=5, method="predict_proba")
    return proba[np.arange(len(labels)), labels]


def _two_doubts(importance: np.ndarray, own: np.ndarray, trusted: np.ndarray) -> np.ndarray:
    """The better of the two doubts' fractional ranks, halved for harmful rows; ties by importance."""
    rank = [np.searchsorted(np.sort(d), d) / len(d) for d in (own, trusted)]
    score = np.minimum(*rank)
    return np.lexsort((importance, np.where(importance < 0, score / 2, score)))


def run(name: str, train: pd.DataFrame, holdout: pd.DataFrame, noisy: np.ndarray) -> None:
    clean = train["y"].to_numpy()
    wrong = noisy != clean
    _, acc_clean = fit_score(train, clean, holdout)
    model, acc_noisy = fit_score(train, noisy, holdout)
    started = time.perf_counter()
    importance = knn_shapley(
        dense(model, train), noisy, dense(model, holdout), holdout["y"].to_numpy(), k=5
    ).values
    shapley_seconds = time.perf_counter() - started
    confidence = low_confidence(train, noisy)
    # The review queue's doubts, as the asset computes them: the trained model's own probability of
    # each given label, and that of the same pipeline fitted on the trusted (clean holdout) rows only.
    own = given_label_probability(model, train[FEATURES], noisy)
    trusted_model = flights_pipeline().fit(holdout[FEATURES], holdout["y"].to_numpy())
    trusted = given_label_probability(trusted_model, train[FEATURES], noisy)
    orders = {
        "importance": np.argsort(importance, kind="stable"),
        "random": np.random.default_rng(0).permutation(len(noisy)),
        "low confidence": np.argsort(confidence, kind="stable"),
        "trusted model": np.argsort(trusted, kind="stable"),
        "two doubts": _two_doubts(importance, own, trusted),
    }
    print(
        f"\n{name}: {wrong.sum():,} of {len(noisy):,} training labels wrong ({wrong.mean():.0%}); holdout "
        f"accuracy {acc_noisy:.4f} noisy vs {acc_clean:.4f} clean; KNN-Shapley {shapley_seconds:.1f} s"
    )
    print(f"  {'order':<15}" + "".join(f" {f'{int(f * 100)}%: P / R / recov.':>24}" for f in STEPS))
    best = {}
    for order_name, order in orders.items():
        cells = []
        for fraction in STEPS:
            inspected = order[: int(fraction * len(order))]
            found = wrong[inspected]
            fixed = noisy.copy()
            fixed[inspected] = clean[inspected]
            _, acc = fit_score(train, fixed, holdout)
            recovered = (
                (acc - acc_noisy) / (acc_clean - acc_noisy) if acc_clean != acc_noisy else float("nan")
            )
            precision, recall = found.mean(), found.sum() / wrong.sum()
            best.setdefault(fraction, {})[order_name] = precision
            cells.append(f"{precision:.2f} / {recall:.2f} / {recovered:+.0%}")
        print(f"  {order_name:<15}" + "".join(f" {c:>24}" for c in cells))
    # Best single order of the three; a tie is within one standard error of a precision.
    singles = ("importance", "random", "low confidence")
    verdicts = []
    for fraction in STEPS:
        queue = best[fraction]["two doubts"]
        rival_name = max(singles, key=lambda s: best[fraction][s])
        rival = best[fraction][rival_name]
        se = np.sqrt(max(rival * (1 - rival), 1e-12) / int(fraction * len(noisy)))
        word = "beats" if queue > rival + se else "ties" if queue >= rival - se else "LOSES to"
        cell = f"{queue:.3f} vs {rival:.3f} +- {se:.3f}"
        verdicts.append(f"{int(fraction * 100)}%: {word} {rival_name} ({cell})")
    print("  two doubts vs the best single order: " + "; ".join(verdicts))


def main() -> int:
    train, holdout = load()
    rng = np.random.default_rng(15)
    clean = train["y"].to_numpy()
    flips = rng.random(len(clean)) < 0.15
    run("1. 15% of labels flipped at random", train, holdout, np.where(flips, 1 - clean, clean))

    rule = (train["origin"] == "EWR") & train["sched_dep_time"].between(1500, 1859)
    noisy = np.where(rule, 1, clean)
    run("2. a careless rule labels every EWR departure 15:00-18:59 late", train, holdout, noisy)
    # The per-LF view with the careless rule among the demo's LFs: it should come first. The
    # labels here are set directly, not by a label model, and no training row is gold, so the
    # table ranks by the summed value of the rows each LF labeled (see careless_lf.py for the
    # full pipeline, with gold rows).
    votes = np.column_stack([apply_lfs(FLIGHT_LFS, train).matrix, np.where(rule, 1, -1)])
    names = [*FLIGHT_LFS.names, "ewr_afternoon_is_late"]
    model, _ = fit_score(train, noisy, holdout)
    values = knn_shapley(
        dense(model, train), noisy, dense(model, holdout), holdout["y"].to_numpy(), k=5
    ).values
    review = per_labeling_function(
        votes, np.full(len(noisy), -1), noisy, values, names=names, classes=CLASSES
    )
    print("\n  per-LF view in scenario 2 (no gold rows: lowest summed value first):")
    for r in review.table.itertuples(index=False):
        print(f"    {r.lf:<28} rows {r.labels:>6,}  harmful {r.harmful_share:.2f}  sum {r.value_sum:+.3f}")
    print(f"  first: {review.table['lf'].iloc[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
