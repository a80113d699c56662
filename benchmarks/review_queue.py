"""Does the review queue beat every single order of inspection, on both kinds of label errors?

For each example of ``careless_lf.EXAMPLES`` (the demo flights and the airport weather), two
scenarios: (a) the example's own LFs label the rows, then 15% of the non-gold training labels are
flipped to another class at random (a corrupted labeled set); (b) a careless LF on a coherent
slice (the example's ``careless`` rule) is planted among its LFs; and both again with a quarter of
the example's gold rows kept (the rest labeled by the LFs), where the gold-only model is weaker.
The holdout (the newest ``holdout_partitions``) is split at random, per seed and stratified by
class, into a valuation part (as many rows of each class as the example's holdout has gold rows,
these carrying their gold label) and a disjoint evaluation part (every other holdout row with a
known truth, whose gold labels are hidden). As the assets do, with the valuation part as the
holdout's gold rows: the label model (gold clamped), the example's pipeline trained on all
partitions but the holdout, exact KNN-Shapley against the valuation part, and the queue's signals
(out-of-fold model probabilities, a model of the gold rows, the label model's posterior, the LF
votes, each LF's accuracy on gold rows) combined by weights fitted on the gold rows
(:func:`dcai_assets.core.label_doubt.fit_label_doubt`), never on the planted errors. The
evaluation part is used only to measure accuracy: no signal, no row value sees it.

Orders compared in the same run, over the non-gold training rows whose truth is known: the review
queue; row value (most harmful first); model confidence (out-of-fold p(label), lowest first);
gold-only-model confidence; LF disagreement (share of the row's LF votes against its label, ties by
the label model's p(label)); random. For 5% and 10% inspected: precision (share of inspected rows
whose label is wrong) and the share of the evaluation accuracy lost to the errors that is
recovered after the inspected rows' labels are set to the truth and the model retrained (mean
gain over the seeds / mean loss; n/a when the errors cost no accuracy, i.e. the mean loss is not
two standard errors above 0). Each scenario is run with ``--seeds`` seeds (default 5: the flips,
the gold rows kept and the holdout split drawn anew); printed: means +- standard errors over the
seeds, and per cell the queue against the best single order (highest mean) as a paired
difference +- its standard error.

``--only=NAME`` runs one example (``flights``, ``airport_weather``); ``--subsample=F`` keeps a share
F of each partition's rows (default 1: all); ``--seeds=N``.
"""

from __future__ import annotations

import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the demo's `jobs` package
sys.path.insert(0, str(Path(__file__).resolve().parent))  # careless_lf

from careless_lf import EXAMPLES, Example

from dcai_assets.assets.importance import preprocess
from dcai_assets.core.columns import GOLD, LABEL, LABEL_SOURCE, lf_column, proba_column
from dcai_assets.core.knn_shapley import knn_shapley
from dcai_assets.core.label_model import fit_label_model
from dcai_assets.core.labeling import ABSTAIN, LabelingFunctionSet, apply_lfs, gold_indices
from dcai_assets.core.review import harm_weight, review_ranks
from dcai_assets.core.training import fit_pipeline
from dcai_assets.core.valuation import label_doubts, lf_review

FRACTIONS = (0.05, 0.10)
FLIPS = 0.15
K = 5
SEEDS = 5  # each scenario is repeated: flips, gold rows kept and holdout split drawn anew
# (errors, share of the example's gold rows kept); with fewer gold rows the gold-only model is weaker.
SCENARIOS = (("random flips", 1.0), ("careless LF", 1.0), ("random flips", 0.25), ("careless LF", 0.25))
ORDERS = ("review queue", "row value", "model confidence", "gold-only model", "LF disagreement", "random")


@dataclass(frozen=True)
class Scenario:
    """One scenario at one seed: precision and accuracy after the fixes, per (order, fraction)."""

    example: str
    kind: str
    seed: int
    rows: int
    candidates: int
    wrong: int
    valuation_rows: int
    evaluation_rows: int
    accuracy_noisy: float
    accuracy_clean: float
    precision: dict[tuple[str, float], float]
    accuracy: dict[tuple[str, float], float]
    weights: str
    seconds: float


@dataclass
class Setting:
    """What every order is built from, for one scenario at one seed (see :func:`prepare`)."""

    example: str
    kind: str
    seed: int
    lab: np.ndarray  # the training rows' labels (class indices), errors included
    clean: np.ndarray  # the same with every known truth set (what the fixes set)
    wrong: np.ndarray  # per training row: a non-gold label that is not the truth
    candidates: np.ndarray  # training rows (positions) that are non-gold with a known truth
    gold_rows: np.ndarray  # per training row: a gold label (not in the queue)
    values: np.ndarray  # KNN-Shapley of the training rows against the valuation part
    doubts: object  # label_doubts(...) as the importance asset computes it
    accuracy: object  # labels -> accuracy on the evaluation part after a retrain
    accuracy_noisy: float
    accuracy_clean: float
    valuation_rows: int
    evaluation_rows: int
    started: float
    harm_weight: float = np.nan  # the weight of the row value in the queue's order


def split_holdout(
    truth: np.ndarray, holdout: np.ndarray, per_class: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """The valuation part of the holdout: ``per_class[c]`` rows of true class c drawn at random
    among the holdout rows with a known truth (as many gold rows per class as the example's own
    holdout has, so the valuation sees what the asset's would); the other holdout rows with a known
    truth are the evaluation part. Returns a boolean mask over all rows."""
    valuation = np.zeros(len(truth), dtype=bool)
    for c, count in enumerate(per_class):
        pool = np.flatnonzero(holdout & (truth == c))
        valuation[rng.choice(pool, size=min(int(count), len(pool)), replace=False)] = True
    return valuation


def prepare(
    example: Example, kind: str, *, subsample: float, gold_share: float = 1.0, seed: int = 0
) -> Setting:
    """Label, plant the errors, split the holdout, train, value, and compute the queue's signals."""
    started = time.perf_counter()
    extra = [example.careless] if kind == "careless LF" else []
    lfs = LabelingFunctionSet([*example.labeling.lfs.lfs, *extra], example.labeling.lfs.classes)
    classes = [str(c) for c in lfs.classes]
    names = np.array(classes, dtype=object)
    frames = example.frames()
    keys = sorted(frames)
    frame = pd.concat([frames[k].assign(_partition=k) for k in keys], ignore_index=True)
    if subsample < 1:
        frame = frame.sample(frac=subsample, random_state=seed).sort_index().reset_index(drop=True)
    votes = apply_lfs(lfs, frame).matrix
    gold_column = example.labeling.gold_column
    gold = gold_indices(frame[gold_column], classes, column=gold_column)
    index = {c: i for i, c in enumerate(classes)}
    truth = example.truth(frame).map(index).fillna(ABSTAIN).to_numpy(dtype=np.int64)
    held_keys = keys[-example.training.holdout_partitions :]
    in_window = ~frame["_partition"].isin(held_keys).to_numpy()
    rng = np.random.default_rng(seed)
    # The holdout, split: a valuation part (gold rows: the row values and every signal of the queue
    # may use them) and a disjoint evaluation part (truth used only to measure accuracy).
    per_class = np.bincount(gold[~in_window & (gold != ABSTAIN)], minlength=len(classes))
    if gold_share < 1:  # fewer hand-checked rows: the others are labeled by the LFs like the rest
        gold = np.where(rng.random(len(gold)) < gold_share, gold, ABSTAIN)
        per_class = np.round(per_class * gold_share).astype(int)
    valuation = split_holdout(truth, ~in_window & (truth != ABSTAIN), per_class, rng)
    evaluation = ~in_window & (truth != ABSTAIN) & ~valuation
    gold = np.where(in_window, gold, np.where(valuation, truth, ABSTAIN))
    label_model, _ = fit_label_model(votes, gold, len(classes), kind=example.labeling.label_model)
    proba = label_model.predict_proba(votes)
    covered = (votes != ABSTAIN).any(axis=1)
    lf_label = np.where(covered, proba.argmax(axis=1), ABSTAIN)
    label = np.where(gold != ABSTAIN, gold, lf_label)
    is_gold = gold != ABSTAIN
    train = in_window & (label != ABSTAIN)
    if kind == "random flips":
        flip = train & ~is_gold & (rng.random(len(frame)) < FLIPS)
        shift = rng.integers(1, len(classes), len(frame))
        label = np.where(flip, (label + shift) % len(classes), label)

    features = list(example.training.features)
    factory, fseed = example.training.pipeline, example.training.seed
    # The labeled set as the labeled asset writes it, split at the model's holdout; the evaluation
    # part is left out of what the queue sees.
    labeled = frame.assign(
        **{LABEL: names[np.maximum(label, 0)], LABEL_SOURCE: np.where(is_gold, GOLD, "label_model")},
        **{lf_column(n): votes[:, j] for j, n in enumerate(lfs.names)},
        **{proba_column(cl): proba[:, j] for j, cl in enumerate(classes)},
    )
    train_rows = labeled[train]
    held = labeled[~in_window & ~evaluation & (label != ABSTAIN)]
    t = np.flatnonzero(train)
    X_train = frame.loc[train, features]
    X_judged, y_judged = frame.loc[evaluation, features], names[truth[evaluation]]
    known = truth[t] != ABSTAIN
    candidates = np.flatnonzero(~is_gold[t] & known)  # positions within the training rows
    wrong = (label[t] != truth[t]) & known & ~is_gold[t]
    clean = np.where(known & ~is_gold[t], truth[t], label[t])

    def accuracy(y: np.ndarray) -> float:
        model = fit_pipeline(factory(), X_train, names[y], sample_weight=None, seed=fseed, window="bench")
        return float((model.predict(X_judged) == y_judged).mean())

    lab = label[t]
    pipeline = fit_pipeline(factory(), X_train, names[lab], sample_weight=None, seed=fseed, window="bench")
    acc_noisy = float((pipeline.predict(X_judged) == y_judged).mean())
    values = knn_shapley(
        preprocess(pipeline, frame[train], features, "training"), lab,
        preprocess(pipeline, frame[valuation], features, "holdout"), gold[valuation], k=K,
    ).values  # fmt: skip
    # The queue's signals exactly as the importance asset computes them.
    review = lf_review(train_rows, held, values, [lf_column(n) for n in lfs.names], lfs.names, classes)
    doubts = label_doubts(
        factory, pipeline, train_rows, held, features=features, classes=classes, lf_names=lfs.names,
        review=review, min_gold_rows=example.training.min_gold_rows, seed=fseed,
    )  # fmt: skip
    return Setting(
        example=example.name, kind=label_of(kind, gold_share), seed=seed, lab=lab, clean=clean,
        wrong=wrong, candidates=candidates, gold_rows=is_gold[t], values=values, doubts=doubts,
        accuracy=accuracy,
        accuracy_noisy=acc_noisy, accuracy_clean=accuracy(clean), valuation_rows=int(valuation.sum()),
        evaluation_rows=int(evaluation.sum()), started=started,
    )  # fmt: skip


def single_orders(s: Setting) -> dict[str, np.ndarray]:
    """The queue as the importance asset ranks it, and each single order, over the candidates."""
    evidence, rows, lab = s.doubts.evidence, np.arange(len(s.lab)), s.lab
    doubt = 1 - s.doubts.combination.support(evidence)[rows, lab]
    own = evidence.model[rows, lab]
    gold_own = evidence.gold_model[rows, lab]
    v = evidence.votes
    voted = (v != ABSTAIN).sum(axis=1)
    against = ((v != ABSTAIN) & (v != lab[:, None])).sum(axis=1) / np.maximum(voted, 1)
    lm_own = evidence.label_model[rows, lab]
    c, values = s.candidates, s.values
    # The queue as the importance asset ranks it (non-gold rows, the row value's weight chosen
    # over them), restricted to the candidates.
    weight = harm_weight(values[~s.gold_rows], doubt[~s.gold_rows])
    ranks = review_ranks(values, doubt, exclude=s.gold_rows, weight=weight)
    s.harm_weight = weight
    return {
        "review queue": c[np.argsort(ranks[c], kind="stable")],
        "row value": c[np.argsort(values[c], kind="stable")],
        "model confidence": c[np.argsort(own[c], kind="stable")],
        "gold-only model": c[np.argsort(gold_own[c], kind="stable")],
        "LF disagreement": c[np.lexsort((lm_own[c], -against[c]))],
        "random": np.random.default_rng(s.seed + 7).permutation(c),
    }


def measure(s: Setting, orders: dict[str, np.ndarray]) -> Scenario:
    """Precision of the first rows of each order, and the evaluation part's accuracy after their
    labels are set to the truth and the model retrained."""
    precision, accuracy = {}, {}
    c = s.candidates
    for name, order in orders.items():
        for fraction in FRACTIONS:
            inspected = order[: int(fraction * len(c))]
            precision[name, fraction] = float(s.wrong[inspected].mean())
            fixed = s.lab.copy()
            fixed[inspected] = s.clean[inspected]
            accuracy[name, fraction] = s.accuracy(fixed)
    return Scenario(
        example=s.example, kind=s.kind, seed=s.seed, rows=len(s.lab), candidates=len(c),
        wrong=int(s.wrong.sum()), valuation_rows=s.valuation_rows, evaluation_rows=s.evaluation_rows,
        accuracy_noisy=s.accuracy_noisy, accuracy_clean=s.accuracy_clean, precision=precision,
        accuracy=accuracy, weights=f"{s.doubts.combination.describe()}; row value weight {s.harm_weight:g}",
        seconds=time.perf_counter() - s.started,
    )  # fmt: skip


def run(example: Example, kind: str, *, subsample: float, gold_share: float = 1.0, seed: int = 0) -> Scenario:
    s = prepare(example, kind, subsample=subsample, gold_share=gold_share, seed=seed)
    return measure(s, single_orders(s))


def label_of(kind: str, gold_share: float) -> str:
    return kind if gold_share == 1 else f"{kind}, {gold_share:.0%} of the gold rows"


@dataclass(frozen=True)
class Cell:
    """The queue against the best single order (highest mean over the seeds) for one metric at
    one fraction of one scenario: means, and the paired difference with its standard error."""

    metric: str
    fraction: float
    queue: float
    rival: str
    best: float
    diff: float
    se: float

    def verdict(self) -> str:
        if not np.isfinite(self.diff):
            return "n/a"
        if self.diff >= 0:
            return "meets" + (" (ahead by more than 2 s.e.)" if self.diff > 2 * self.se else "")
        return "below" + (" (within 1 s.e.)" if -self.diff <= self.se else "")


def mean_se(x) -> tuple[float, float]:
    x = np.asarray(x, dtype=float)
    return float(x.mean()), float(x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else np.nan


def lost(runs: list[Scenario]) -> tuple[float, float, bool]:
    """The evaluation accuracy lost to the errors (mean, s.e. over the seeds), and whether it is
    lost at all (mean more than two standard errors above 0); recovered shares need it."""
    gap, se = mean_se([r.accuracy_clean - r.accuracy_noisy for r in runs])
    return gap, se, bool(gap > 0 and (not np.isfinite(se) or gap > 2 * se))


def recovered(runs: list[Scenario], order: str, fraction: float) -> tuple[float, float]:
    """Share of the lost accuracy regained (mean gain over the seeds / mean loss), with its s.e."""
    gap, _, ok = lost(runs)
    if not ok:
        return np.nan, np.nan
    m, se = mean_se([r.accuracy[order, fraction] - r.accuracy_noisy for r in runs])
    return m / gap, se / gap


def cells(runs: list[Scenario]) -> list[Cell]:
    out = []
    gap, _, ok = lost(runs)
    for metric in ("precision", "recovered"):
        for f in FRACTIONS:
            if metric == "precision":
                per = {o: np.array([r.precision[o, f] for r in runs]) for o in ORDERS}
            else:
                per = {o: np.array([r.accuracy[o, f] - r.accuracy_noisy for r in runs]) / gap for o in ORDERS}
                if not ok:
                    per = {o: np.full(len(runs), np.nan) for o in ORDERS}
            rival = max(ORDERS[1:], key=lambda o: np.nan_to_num(per[o].mean(), nan=-np.inf))
            d, se = mean_se(per["review queue"] - per[rival])
            out.append(Cell(metric, f, per["review queue"].mean(), rival, per[rival].mean(), d, se))
    return out


def group(results: list[Scenario]) -> dict[tuple[str, str], list[Scenario]]:
    out: dict[tuple[str, str], list[Scenario]] = {}
    for r in results:
        out.setdefault((r.example, r.kind), []).append(r)
    return out


def markdown(results: list[Scenario]) -> str:
    """Every order's mean (+- s.e. over the seeds) in every scenario."""
    head = "| dataset | errors | order | P@5% | P@10% | recovered @5% | recovered @10% |"
    lines = [head, "|---|---|---|---|---|---|---|"]
    for (example, kind), runs in group(results).items():
        for o in ORDERS:
            p = [mean_se([r.precision[o, f] for r in runs]) for f in FRACTIONS]
            rec = [recovered(runs, o, f) for f in FRACTIONS]
            cells_ = [f"{m:.3f} +- {se:.3f}" for m, se in p]
            cells_ += [f"{m:+.0%} +- {se:.0%}" if np.isfinite(m) else "n/a" for m, se in rec]
            lines.append(f"| {example} | {kind} | {o} | {' | '.join(cells_)} |")
    return "\n".join(lines)


def verdicts(results: list[Scenario]) -> str:
    """Per cell: the queue, the best single order, their paired difference +- s.e., the verdict."""
    lines = [
        "| dataset | errors | metric | queue | best single order | paired diff +- s.e. | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for (example, kind), runs in group(results).items():
        gap, gap_se, ok = lost(runs)
        for c in cells(runs):
            name = f"{'P' if c.metric == 'precision' else 'recovered'} @{c.fraction:.0%}"
            if c.metric == "recovered" and not ok:
                row = f"n/a | n/a | n/a | n/a: accuracy lost {gap:+.4f} +- {gap_se:.4f}"
            elif c.metric == "precision":
                row = f"{c.queue:.3f} | {c.rival} {c.best:.3f} | {c.diff:+.3f} +- {c.se:.3f} | {c.verdict()}"
            else:
                diff = f"{c.diff:+.1%} +- {c.se:.1%}"
                row = f"{c.queue:+.0%} | {c.rival} {c.best:+.0%} | {diff} | {c.verdict()}"
            lines.append(f"| {example} | {kind} | {name} | {row} |")
        if kind.startswith("random flips"):
            m, se = mean_se([r.precision["review queue", 0.05] for r in runs])
            word = "meets" if m >= 0.95 else "below"
            lines.append(f"| {example} | {kind} | P@5% >= 0.95 | {m:.3f} +- {se:.3f} | | | {word} |")
    return "\n".join(lines)


def option(name: str, default: str) -> str:
    return next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith(f"--{name}=")), default)


def main() -> int:
    only = [a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--only=")]
    subsample = float(option("subsample", "1"))
    seeds = range(int(option("seeds", str(SEEDS))))
    started = time.perf_counter()
    results = []
    for build in EXAMPLES:
        if only and build.__name__ not in only:
            continue
        example = build()
        for kind, gold_share in SCENARIOS:
            for seed in seeds:
                s = run(example, kind, subsample=subsample, gold_share=gold_share, seed=seed)
                print(
                    f"{s.example}, {s.kind}, seed {seed}: {s.rows:,} training rows, {s.candidates:,} "
                    f"non-gold with known truth, {s.wrong:,} wrong; holdout split into {s.valuation_rows:,} "
                    f"valuation and {s.evaluation_rows:,} evaluation rows; evaluation accuracy "
                    f"{s.accuracy_noisy:.4f} noisy vs {s.accuracy_clean:.4f} clean; {s.weights} "
                    f"({s.seconds:.0f} s)",
                    flush=True,
                )
                results.append(s)
    print()
    print(markdown(results))
    print()
    print(verdicts(results))
    print(
        f"\n{time.perf_counter() - started:.0f} s in all on {platform.machine()}, subsample {subsample:g}, "
        f"{len(seeds)} seeds"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
