"""Does the review queue beat every single order of inspection, on both kinds of label errors?

For each example of ``careless_lf.EXAMPLES`` (the demo flights and the airport weather), two
scenarios: (a) the example's own LFs label the rows, then 15% of the non-gold training labels are
flipped to another class at random (a corrupted labeled set); (b) a careless LF on a coherent
slice (the example's ``careless`` rule) is planted among its LFs; and both again with a quarter of
the example's gold rows kept (the rest labeled by the LFs), where the gold-only model is weaker.
As the assets do: the label model
(gold clamped), the example's pipeline trained on all partitions but the newest
``holdout_partitions``, exact KNN-Shapley against the holdout's gold rows, and the queue's
signals (out-of-fold model probabilities, a model of the gold rows, the label model's posterior,
the LF votes, each LF's accuracy on gold rows) combined by weights fitted on the gold rows
(:func:`dcai_assets.core.label_doubt.fit_label_doubt`), never on the planted errors.

Orders compared in the same run, over the non-gold training rows whose truth is known: the review
queue; row value (most harmful first); model confidence (out-of-fold p(label), lowest first);
gold-only-model confidence; LF disagreement (share of the row's LF votes against its label, ties by
the label model's p(label)); random. For 5% and 10% inspected: precision (share of inspected rows
whose label is wrong) and the share of the holdout accuracy lost to the errors that is recovered
after the inspected rows' labels are set to the truth and the model retrained.

``--only=NAME`` runs one example (``flights``, ``airport_weather``); ``--subsample=F`` keeps a share
F of each partition's rows (default 1: all).
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
from dcai_assets.core.review import review_order
from dcai_assets.core.training import fit_pipeline
from dcai_assets.core.valuation import label_doubts, lf_review

FRACTIONS = (0.05, 0.10)
FLIPS = 0.15
K = 5
# (errors, share of the example's gold rows kept); with fewer gold rows the gold-only model is weaker.
SCENARIOS = (("random flips", 1.0), ("careless LF", 1.0), ("random flips", 0.25), ("careless LF", 0.25))
ORDERS = ("review queue", "row value", "model confidence", "gold-only model", "LF disagreement", "random")


@dataclass(frozen=True)
class Scenario:
    example: str
    kind: str
    rows: int
    candidates: int
    wrong: int
    accuracy_noisy: float
    accuracy_clean: float
    precision: dict[tuple[str, float], float]
    recovered: dict[tuple[str, float], float]
    weights: str
    seconds: float


def run(example: Example, kind: str, *, subsample: float, gold_share: float = 1.0, seed: int = 0) -> Scenario:
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
    if gold_share < 1:  # fewer hand-checked rows: the others are labeled by the LFs like the rest
        gold = np.where(np.random.default_rng(seed + 1).random(len(gold)) < gold_share, gold, ABSTAIN)
    label_model, _ = fit_label_model(votes, gold, len(classes), kind=example.labeling.label_model)
    proba = label_model.predict_proba(votes)
    covered = (votes != ABSTAIN).any(axis=1)
    lf_label = np.where(covered, proba.argmax(axis=1), ABSTAIN)
    label = np.where(gold != ABSTAIN, gold, lf_label)
    index = {c: i for i, c in enumerate(classes)}
    truth = example.truth(frame).map(index).fillna(ABSTAIN).to_numpy(dtype=np.int64)
    held_keys = keys[-example.training.holdout_partitions :]
    in_window = ~frame["_partition"].isin(held_keys).to_numpy()
    is_gold = gold != ABSTAIN
    train = in_window & (label != ABSTAIN)
    holdout = ~in_window & is_gold
    rng = np.random.default_rng(seed)
    if kind == "random flips":
        flip = train & ~is_gold & (rng.random(len(frame)) < FLIPS)
        shift = rng.integers(1, len(classes), len(frame))
        label = np.where(flip, (label + shift) % len(classes), label)

    features = list(example.training.features)
    factory, fseed = example.training.pipeline, example.training.seed
    # The labeled set as the labeled asset writes it, split at the model's holdout.
    labeled = frame.assign(
        **{LABEL: names[np.maximum(label, 0)], LABEL_SOURCE: np.where(is_gold, GOLD, "label_model")},
        **{lf_column(n): votes[:, j] for j, n in enumerate(lfs.names)},
        **{proba_column(cl): proba[:, j] for j, cl in enumerate(classes)},
    )
    train_rows = labeled[train]
    held = labeled[~in_window & (label != ABSTAIN)]
    t = np.flatnonzero(train)
    X_train = frame.loc[train, features]
    judged = ~in_window & (truth != ABSTAIN)  # accuracy on every holdout row with a known truth
    X_judged, y_judged = frame.loc[judged, features], names[truth[judged]]
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
    acc_clean = accuracy(clean)
    values = knn_shapley(
        preprocess(pipeline, frame[train], features, "training"), lab,
        preprocess(pipeline, frame[holdout], features, "holdout"), gold[holdout], k=K,
    ).values  # fmt: skip

    # The queue exactly as the importance asset builds it.
    review = lf_review(train_rows, held, values, [lf_column(n) for n in lfs.names], lfs.names, classes)
    doubts = label_doubts(
        factory, pipeline, train_rows, held, features=features, classes=classes, lf_names=lfs.names,
        review=review, min_gold_rows=example.training.min_gold_rows, seed=fseed,
    )  # fmt: skip
    evidence, rows = doubts.evidence, np.arange(len(t))
    doubt = 1 - doubts.combination.support(evidence)[rows, lab]

    # Single orders, over the candidates.
    own = evidence.model[rows, lab]
    gold_own = evidence.gold_model[rows, lab]
    v = evidence.votes
    voted = (v != ABSTAIN).sum(axis=1)
    against = ((v != ABSTAIN) & (v != lab[:, None])).sum(axis=1) / np.maximum(voted, 1)
    lm_own = evidence.label_model[rows, lab]
    c = candidates
    orders = {
        "review queue": c[review_order(values[c], doubt[c])],
        "row value": c[np.argsort(values[c], kind="stable")],
        "model confidence": c[np.argsort(own[c], kind="stable")],
        "gold-only model": c[np.argsort(gold_own[c], kind="stable")],
        "LF disagreement": c[np.lexsort((lm_own[c], -against[c]))],
        "random": rng.permutation(c),
    }
    precision, recovered = {}, {}
    for name, order in orders.items():
        for fraction in FRACTIONS:
            inspected = order[: int(fraction * len(c))]
            precision[name, fraction] = float(wrong[inspected].mean())
            fixed = lab.copy()
            fixed[inspected] = clean[inspected]
            gap = acc_clean - acc_noisy
            recovered[name, fraction] = (accuracy(fixed) - acc_noisy) / gap if gap > 0 else np.nan
    return Scenario(
        example=example.name, kind=label_of(kind, gold_share), rows=len(t), candidates=len(c),
        wrong=int(wrong.sum()), accuracy_noisy=acc_noisy, accuracy_clean=acc_clean, precision=precision,
        recovered=recovered,
        weights=doubts.combination.describe(), seconds=time.perf_counter() - started,
    )  # fmt: skip


def label_of(kind: str, gold_share: float) -> str:
    return kind if gold_share == 1 else f"{kind}, {gold_share:.0%} of the gold rows"


def markdown(results: list[Scenario]) -> str:
    head = "| dataset | errors | order | P@5% | P@10% | recovered @5% | recovered @10% |"
    lines = [head, "|---|---|---|---|---|---|---|"]
    for s in results:
        best = {f: max(s.precision[o, f] for o in ORDERS[1:]) for f in FRACTIONS}
        for o in ORDERS:
            cells = []
            for f in FRACTIONS:
                p = f"{s.precision[o, f]:.3f}"
                cells.append(f"**{p}**" if o != "review queue" and s.precision[o, f] == best[f] else p)
            rec = [
                f"{s.recovered[o, f]:+.0%}" if np.isfinite(s.recovered[o, f]) else "n/a" for f in FRACTIONS
            ]
            lines.append(f"| {s.example} | {s.kind} | {o} | {' | '.join(cells)} | {' | '.join(rec)} |")
    return "\n".join(lines)


def verdicts(results: list[Scenario]) -> list[str]:
    """The queue against the best single order at each fraction, with the standard error of that
    order's precision (a gap within it is a tie)."""
    out = []
    for s in results:
        for f in FRACTIONS:
            rival = max(ORDERS[1:], key=lambda o: s.precision[o, f])
            q, b = s.precision["review queue", f], s.precision[rival, f]
            inspected = int(f * s.candidates)
            se = np.sqrt(max(b * (1 - b), 1e-12) / inspected)
            word = "meets" if q >= b else ("ties (within 1 s.e.)" if q >= b - se else "MISSES")
            out.append(
                f"{s.example}, {s.kind}, {f:.0%} ({inspected:,} rows): queue {q:.3f} {word} the best single "
                f"order ({rival}) {b:.3f} +- {se:.3f}; {q - b:+.3f} = {round((q - b) * inspected):+d} rows"
            )
        if s.kind.startswith("random flips"):
            q = s.precision["review queue", 0.05]
            out.append(
                f"{s.example}, random flips: precision at 5% {q:.3f} "
                f"({'meets' if q >= 0.95 else 'MISSES'} 0.95)"
            )
    return out


def main() -> int:
    only = [a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--only=")]
    subsample = float(next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--subsample=")), 1))
    started = time.perf_counter()
    results = []
    for build in EXAMPLES:
        if only and build.__name__ not in only:
            continue
        example = build()
        for kind, gold_share in SCENARIOS:
            s = run(example, kind, subsample=subsample, gold_share=gold_share)
            print(
                f"{s.example}, {s.kind}: {s.rows:,} training rows, {s.candidates:,} non-gold with known "
                "truth, "
                f"{s.wrong:,} wrong; holdout accuracy {s.accuracy_noisy:.4f} noisy vs {s.accuracy_clean:.4f} "
                f"clean; {s.weights} ({s.seconds:.0f} s)",
                flush=True,
            )
            results.append(s)
    print()
    print(markdown(results))
    print()
    print("\n".join(verdicts(results)))
    print(f"\n{time.perf_counter() - started:.0f} s in all on {platform.machine()}, subsample {subsample:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
