"""A careless labeling function planted among a dataset's own LFs: does the per-LF table name it
first, and how precise are single orders at finding the wrong labels it leaves?

For each example: the example's LFs plus one careless rule are applied to every partition, the
label model is fitted on all of them (gold rows clamped), rows get gold where it exists and the
label model's class elsewhere, the example's pipeline is trained on all partitions but the newest
``holdout_partitions`` (label confidence as sample weights), and every training row is valued by
exact KNN-Shapley against the gold rows of the holdout, as the importance asset does. Prints:

- the rank the per-LF table gives the careless LF (goal: 1), and the rank the old rule (lowest
  mean row value first) gives it, with the share of the wrong training labels on its rows;
- the precision (share of truly wrong labels) of the first 5% of non-gold training rows whose
  truth is known, by the model's own confidence in the label and at random (the review queue,
  with every signal combined, is measured against every single order in ``review_queue.py``).

An example is a bundle of what a spec declares (``Example``); adding a dataset is one line in
``EXAMPLES``. ``--variants`` also plants other careless rules; ``--only=NAME`` runs one example
(``flights``, ``airport_weather``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the demo's `jobs` package

from dcai_assets import LabelingSpec, TrainingSpec
from dcai_assets.assets.importance import preprocess
from dcai_assets.core.knn_shapley import knn_shapley
from dcai_assets.core.label_model import fit_label_model
from dcai_assets.core.labeling import (
    ABSTAIN,
    LabelingFunction,
    LabelingFunctionSet,
    apply_lfs,
    gold_indices,
    labeling_function,
)
from dcai_assets.core.review import given_label_probability, per_labeling_function
from dcai_assets.core.training import fit_pipeline

INSPECTED = 0.05
K = 5


@dataclass(frozen=True)
class Example:
    """A dataset as its spec declares it, with the truth to score against and a careless LF.

    ``frames`` returns ``{partition: rows}``; ``truth`` the true class name of each row (NaN
    where unknown); ``careless`` the LF to plant among ``labeling.lfs``."""

    name: str
    frames: Callable[[], dict[str, pd.DataFrame]]
    labeling: LabelingSpec
    training: TrainingSpec
    truth: Callable[[pd.DataFrame], pd.Series]
    careless: LabelingFunction


def careless_rule(
    column: str, threshold: float, vote: int, name: str | None = None, *, above: bool = False
) -> LabelingFunction:
    """An LF that votes class ``vote`` on every row whose ``column`` is below ``threshold`` (above
    it with ``above``): a rule written from a hunch, right only as often as that class is common
    there."""

    def rule(df: pd.DataFrame) -> np.ndarray:
        hit = df[column] > threshold if above else df[column] < threshold
        return np.where(hit, vote, ABSTAIN)

    side = "above" if above else "below"
    return labeling_function(name or f"{column}_{side}_{threshold:g}", uses=[column])(rule)


def flights() -> Example:
    """The demo: six weeks of NYC flights from 2013-02-01; the careless rule calls every flight
    that left at all late (``dep_delay > 0``) late: a loose copy of the demo's ``departed_late``
    (over 20 minutes), wrong on the many flights that make up a few minutes in the air."""
    from jobs.flights_data import arrived_late, daily_frames
    from jobs.flights_labeling import FLIGHTS_LABELING, LATE
    from jobs.flights_training import FLIGHTS_TRAINING

    def truth(frame: pd.DataFrame) -> pd.Series:
        late = arrived_late(frame)
        return late.map({True: "late", False: "on_time"})

    return Example(
        name="flights",
        frames=lambda: daily_frames("2013-02-01", 42),
        labeling=FLIGHTS_LABELING,
        training=FLIGHTS_TRAINING,
        truth=truth,
        careless=careless_rule("dep_delay", 0, LATE, name="any_departure_delay_is_late", above=True),
    )


def airport_weather() -> Example:
    """The second example: 2013's hourly weather at the NYC airports, one partition per month;
    the careless rule calls every hour with humidity of 80% or more wet (about a quarter of those
    hours are)."""
    from jobs.airport_weather_data import monthly_frames, was_wet
    from jobs.airport_weather_labeling import AIRPORT_WEATHER_LABELING, WET
    from jobs.airport_weather_training import AIRPORT_WEATHER_TRAINING

    @labeling_function("humid_means_wet", uses=["humid"])
    def humid_means_wet(df: pd.DataFrame) -> np.ndarray:
        return np.where(df["humid"] >= 80, WET, ABSTAIN)

    return Example(
        name="airport weather",
        frames=lambda: monthly_frames("2013-01-01", "2013-12-01"),
        labeling=AIRPORT_WEATHER_LABELING,
        training=AIRPORT_WEATHER_TRAINING,
        truth=lambda frame: was_wet(frame).map({True: "wet", False: "dry"}),
        careless=humid_means_wet,
    )


def airport_weather_variants() -> list[Example]:
    """The second example with milder careless rules (``--variants``): each sets fewer wrong
    labels than the example's own weakest LF, so the table rightly ranks that LF above it."""
    from jobs.airport_weather_labeling import WET

    base = airport_weather()
    rules = [careless_rule("pressure", 1015, WET), careless_rule("temp", 40, WET)]
    return [replace(base, name=f"airport weather, {rule.name}", careless=rule) for rule in rules]


EXAMPLES: list[Callable[[], Example]] = [flights, airport_weather]


def flights_variants() -> list[Example]:
    """The demo with other careless rules in place of the default one (``--variants``)."""
    from jobs.flights_labeling import LATE, ON_TIME

    base = flights()
    rules = [
        careless_rule("dep_delay", 5, LATE, above=True),
        careless_rule("distance", 800, ON_TIME, name="short_flights_are_on_time"),
        careless_rule("distance", 500, ON_TIME),
        careless_rule("distance", 1200, ON_TIME),
        careless_rule("sched_dep_time", 1300, ON_TIME),
        careless_rule("air_time", 60, LATE),  # right less than half the time: the label model overrules it
    ]
    return [replace(base, name=f"flights, {rule.name}", careless=rule) for rule in rules]


@dataclass(frozen=True)
class Outcome:
    """What one example measured."""

    name: str
    rows: int
    wrong_labels: int
    careless_share: float
    rank: int
    old_rank: int
    lfs: int
    precision: dict[str, float]
    inspected: int
    unknown: int
    table: pd.DataFrame
    seconds: float


def run(example: Example) -> Outcome:
    """Plant ``example.careless``, label, train, value, and measure the per-LF table and the queue."""
    started = time.perf_counter()
    lfs = LabelingFunctionSet([*example.labeling.lfs.lfs, example.careless], example.labeling.lfs.classes)
    classes = [str(c) for c in lfs.classes]
    frames = example.frames()
    keys = sorted(frames)
    frame = pd.concat([frames[k].assign(_partition=k) for k in keys], ignore_index=True)
    votes = apply_lfs(lfs, frame).matrix
    gold_column = example.labeling.gold_column
    gold = gold_indices(frame[gold_column], classes, column=gold_column)
    model, warning = fit_label_model(votes, gold, len(classes), kind=example.labeling.label_model)
    if warning:
        print(f"  {warning}")
    proba = model.predict_proba(votes)
    covered = (votes != ABSTAIN).any(axis=1)
    lf_label = np.where(covered, proba.argmax(axis=1), ABSTAIN)
    label = np.where(gold != ABSTAIN, gold, lf_label)
    confidence = np.where(gold != ABSTAIN, 1.0, proba.max(axis=1))
    index = {c: i for i, c in enumerate(classes)}
    truth = example.truth(frame).map(index).fillna(ABSTAIN).to_numpy(dtype=np.int64)

    held_keys = keys[-example.training.holdout_partitions :]
    in_window = ~frame["_partition"].isin(held_keys).to_numpy()
    train = in_window & (label != ABSTAIN)
    holdout = ~in_window & (gold != ABSTAIN)
    features = list(example.training.features)
    names = np.array(classes, dtype=object)
    weights = confidence[train] if example.training.use_confidence_weights else None
    pipeline = fit_pipeline(
        example.training.pipeline(),
        frame.loc[train, features],
        names[label[train]],
        sample_weight=weights,
        seed=example.training.seed,
        window=f"{int(train.sum())} rows",
    )
    X_train = preprocess(pipeline, frame[train], features, "training")
    X_val = preprocess(pipeline, frame[holdout], features, "holdout")
    values = knn_shapley(X_train, label[train], X_val, gold[holdout], k=K).values

    # The per-LF table over the window and the holdout, values for the training rows only.
    row_values = np.full(len(frame), np.nan)
    row_values[np.flatnonzero(train)] = values
    in_use = train | ~in_window
    review = per_labeling_function(
        votes[in_use], gold[in_use], lf_label[in_use], row_values[in_use], names=lfs.names, classes=classes
    )
    table = review.table
    careless = example.careless.name
    rank = int(table.loc[table["lf"] == careless, "rank"].iloc[0])
    old_order = table.sort_values("value_mean", na_position="last", kind="stable")["lf"].tolist()
    old_rank = old_order.index(careless) + 1

    # The orders of the single signals measured here; the queue is in review_queue.py.
    X = frame.loc[train, features]
    given = names[label[train]]
    own = given_label_probability(pipeline, X, given)
    is_gold = gold[train] != ABSTAIN
    wrong = (truth[train] != ABSTAIN) & (truth[train] != label[train]) & ~is_gold
    # Rows whose truth is unknown (cancelled flights) can be neither right nor wrong: left out.
    unknown = truth[train] == ABSTAIN
    candidates = np.flatnonzero(~is_gold & ~unknown)
    inspected = int(INSPECTED * len(candidates))
    orders = {
        "model confidence": candidates[np.argsort(own[candidates], kind="stable")][:inspected],
        "random": np.random.default_rng(0).permutation(candidates)[:inspected],
    }
    precision = {name: float(wrong[rows].mean()) for name, rows in orders.items()}
    voted_careless = votes[train, lfs.names.index(careless)] == label[train]
    return Outcome(
        name=example.name,
        rows=int(train.sum()),
        wrong_labels=int(wrong.sum()),
        careless_share=float((wrong & voted_careless).sum() / max(wrong.sum(), 1)),
        rank=rank,
        old_rank=old_rank,
        lfs=len(lfs.names),
        precision=precision,
        inspected=inspected,
        unknown=int((unknown & ~is_gold).sum()),
        table=table,
        seconds=time.perf_counter() - started,
    )


def report(outcome: Outcome) -> None:
    print(
        f"\n{outcome.name}: {outcome.rows:,} training rows, {outcome.wrong_labels:,} wrong non-gold labels, "
        f"{outcome.careless_share:.0%} of them on rows the careless LF labeled ({outcome.seconds:.0f} s)"
    )
    print(
        f"  careless LF ranked {outcome.rank} of {outcome.lfs} by the per-LF table (goal 1); "
        f"{outcome.old_rank} by the old rule (lowest mean row value first)"
    )
    shown = ["rank", "lf", "coverage", "labels", "label_accuracy", "label_gold", "wrong_labels"]
    shown += ["others_accuracy", "excess_wrong_labels", "value_sum", "value_mean", "status"]
    print(outcome.table[shown].to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    cells = ", ".join(f"{name} {p:.3f}" for name, p in outcome.precision.items())
    print(
        f"  precision of the first {INSPECTED:.0%} ({outcome.inspected:,} rows) of the non-gold rows with a "
        f"known truth ({outcome.unknown:,} without one left out) inspected: {cells}"
    )


def main() -> int:
    only = [a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--only=")]
    examples = [build() for build in EXAMPLES if not only or build.__name__ in only]
    if "--variants" in sys.argv[1:]:
        variants = flights_variants() + airport_weather_variants()
        examples += [e for e in variants if not only or e.name.split(",")[0].replace(" ", "_") in only]
    for example in examples:
        report(run(example))
    return 0


if __name__ == "__main__":
    sys.exit(main())
