"""Importance scores: the exact KNN-Shapley value of every training row of the latest model,
on the features its own preprocessing produces, against its holdout; and the review queue."""

import time
from dataclasses import dataclass
from itertools import pairwise

import dagster as dg
import numpy as np
import pandas as pd

from dcai_assets.assets.labeled import LABELED_SET, LF_COLUMN_PREFIX, PROBA_COLUMN_PREFIX
from dcai_assets.assets.model import TRAINED_MODEL
from dcai_assets.core.holdout import choose_holdout
from dcai_assets.core.knn_shapley import compile_kernels, group_balanced_weights, knn_shapley
from dcai_assets.core.reading import frame_digest
from dcai_assets.core.review import (
    LabelingFunctionReview,
    given_label_probability,
    histogram_markdown,
    per_labeling_function,
    per_partition,
    review_ranks,
    suggested_actions,
)
from dcai_assets.core.training import TrainingError, fit_pipeline
from dcai_assets.model_registry import PARTITION_COLUMN, load_sklearn_model
from dcai_assets.partitions import asset_key
from dcai_assets.plots import bar_chart_svg, histogram_svg, svg_markdown
from dcai_assets.spec import DatasetSpec, ImportanceSpec, LabelingSpec, TrainingSpec
from dcai_assets.tracking import MlflowTracking

IMPORTANCE_SCORES = "importance_scores"
_PROGRESS_FROM = 500_000_000  # training x holdout pairs (seconds of work): log progress from here


def preprocess(pipeline, frame: pd.DataFrame, features: list[str], what: str) -> np.ndarray:
    """The rows as the model's own preprocessing sees them (dense float64)."""
    if not hasattr(pipeline, "steps") or len(pipeline.steps) < 2:
        raise dg.Failure(
            f"the model is {type(pipeline).__name__}, not a scikit-learn Pipeline with a preprocessing "
            "step before the estimator; importance is computed on the preprocessed features, so the "
            "pipeline factory must return Pipeline([(..., preprocessing), (..., estimator)])"
        )
    transformed = pipeline[:-1].transform(frame[features])
    if hasattr(transformed, "toarray"):
        transformed = transformed.toarray()
    X = np.asarray(transformed, dtype=np.float64)
    bad = ~np.isfinite(X)
    if bad.any():
        try:
            names = list(pipeline[:-1].get_feature_names_out())
        except Exception:
            names = [f"#{i}" for i in range(X.shape[1])]
        columns = sorted({names[i] for i in np.nonzero(bad)[1]})
        raise dg.Failure(
            f"the preprocessed {what} rows hold NaN or infinite values in {columns[:10]}; expected finite "
            "numbers. Impute or drop them in the pipeline's preprocessing"
        )
    return X


@dataclass
class _Valuation:
    """What the valuation of one model needs: its labeled window and holdout partitions, the
    features of the window and of the rows valued against, as the model's preprocessing produces
    them, labels as class indices, and the weights of the rows valued against."""

    train: pd.DataFrame
    held: pd.DataFrame
    judged_by: str
    warning: str | None
    pipeline: object
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    weights: np.ndarray
    model_uri: str
    holdout_determined: bool = True  # False: single-class holdout (core.holdout.choose_holdout)
    holdout_flag: str | None = None  # the line every value-derived table starts with when False


def shard_bounds(rows: int, shards: int) -> list[tuple[int, int]]:
    """``shards`` consecutive (start, stop) ranges of nearly equal size covering ``rows`` rows."""
    edges = np.linspace(0, rows, shards + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in pairwise(edges)]


def build_importance_asset(
    spec: DatasetSpec, labeling: LabelingSpec, training: TrainingSpec, importance: ImportanceSpec
) -> dg.AssetsDefinition:
    """``<dataset>/importance_scores``: one row per training row of the latest model. With
    ``importance.shards`` > 1, a graph of one step per holdout shard and a step that sums them."""
    classes = [str(c) for c in labeling.lfs.classes]
    features = list(training.features)
    lf_columns = [f"{LF_COLUMN_PREFIX}{n}" for n in labeling.lfs.names]
    keys = spec.key_columns
    k = importance.k
    ins = {
        "trained_model": dg.AssetIn(key=asset_key(spec, TRAINED_MODEL)),
        "labeled": dg.AssetIn(key=asset_key(spec, LABELED_SET), metadata={"allow_missing_partitions": True}),
    }
    properties = dict(
        key=asset_key(spec, IMPORTANCE_SCORES),
        ins=ins,
        group_name="importance",
        kinds={"numba", "pandas"},
        owners=list(spec.owners),
        code_version=f"importance-v1-k{k}-{importance.group}",
        description=(
            f"Exact KNN-Shapley value (K={k}) of every training row of the latest model, on "
            "the features its preprocessing produces, against its holdout: negative values hurt. With "
            "the review queue (most harmful first, with a suggested action) and per-partition and "
            "per-LF aggregates."
            + (f" Valued in {importance.shards} holdout shards, summed." if importance.shards > 1 else "")
        ),
    )

    def valuation(
        log, trained_model: pd.DataFrame, labeled: dict, mlflow_tracking: MlflowTracking
    ) -> _Valuation:
        card = trained_model.iloc[0]
        train_keys = [k for k in str(card["train_partition_keys"]).split(",") if k]
        holdout_keys = [k for k in str(card["holdout_partitions"]).split(",") if k]
        missing = [k for k in train_keys + holdout_keys if k not in labeled]
        if not train_keys or missing:
            raise dg.Failure(
                f"the model's window is empty or incomplete: training partitions {train_keys or 'none'}, "
                f"missing labeled partitions {missing}; expected the labeled sets the model was trained on"
            )
        frame = pd.concat(
            [labeled[k].assign(**{PARTITION_COLUMN: k}) for k in train_keys], ignore_index=False
        )
        train = frame[frame["label"].notna()]
        held = pd.concat(
            [labeled[k].assign(**{PARTITION_COLUMN: k}) for k in holdout_keys], ignore_index=False
        )
        held = held[held["label"].notna()]
        choice = choose_holdout(  # the model's own decision: its holdout, no further widening
            pd.concat([frame, held]), train_keys + holdout_keys, classes, partition_column=PARTITION_COLUMN,
            holdout_partitions=len(holdout_keys), min_gold_rows=training.min_gold_rows,
            min_class_rows=training.min_class_rows,
        )  # fmt: skip
        holdout = choice.select(held, partition_column=PARTITION_COLUMN)
        judged_by = f"{len(holdout)} {'gold' if choice.labels == 'gold' else 'LF'}-labeled holdout rows"
        warning = "WARNING: " + " | ".join(choice.warnings) if choice.warnings else None
        if warning:
            log.warning(warning)
        if len(holdout) == 0:
            raise dg.Failure(f"no labeled holdout rows in {holdout_keys}; expected some to value against")
        pipeline = load_sklearn_model(mlflow_tracking.client, str(card["mlflow_run_id"]))
        X_train = preprocess(pipeline, train, features, "training")
        X_val = preprocess(pipeline, holdout, features, "holdout")
        index = {c: i for i, c in enumerate(classes)}
        y_train = train["label"].astype(str).map(index).to_numpy(dtype=np.int64)
        y_val = holdout["label"].astype(str).map(index).to_numpy(dtype=np.int64)
        absent = sorted(set(holdout["label"].astype(str)) - set(train["label"].astype(str)))
        if absent:
            log.warning(f"holdout classes {absent} are absent from training: no row can match them")
        if k > len(train):
            log.warning(
                f"K={k} is larger than the {len(train)} training rows: every row is among the K "
                "nearest of every holdout row, so the values are exact but barely tell rows apart"
            )
        weights = (
            group_balanced_weights(holdout[importance.group].astype(str).to_numpy())
            if importance.group
            else np.full(len(holdout), 1.0 / len(holdout))
        )
        return _Valuation(
            train, held, judged_by, warning, pipeline, X_train, y_train, X_val, y_val, weights,
            str(card["model_uri"]), choice.determined, _holdout_flag(choice),
        )  # fmt: skip

    def value(log, v: _Valuation, start: int, stop: int) -> tuple[pd.DataFrame, float]:
        """The values of every training row for holdout rows start..stop-1 (with their global
        weights, so shards add up to the whole). The kernels are compiled first, outside the timing:
        the frame's attrs keep compile_seconds and valuation_seconds apart."""
        compile_seconds = compile_kernels()
        started = time.perf_counter()

        def progress(done: int, total: int) -> None:
            elapsed = time.perf_counter() - started
            log.info(
                f"valuation {done / total:.0%}: {done:,} of {total:,} holdout rows in {elapsed:.1f} s, "
                f"about {elapsed * (total - done) / done:.0f} s left"
            )

        if stop > start:
            long = len(v.X_train) * (stop - start) >= _PROGRESS_FROM
            result = knn_shapley(
                v.X_train, v.y_train, v.X_val[start:stop], v.y_val[start:stop], k=k,
                val_weights=v.weights[start:stop], progress=progress if long else None,
            )  # fmt: skip
            values, loo = result.values, result.loo
        else:
            values = loo = np.zeros(len(v.X_train))
        seconds = time.perf_counter() - started
        log.info(
            f"valued {len(v.train):,} training rows against holdout rows {start}..{stop - 1} of "
            f"{v.judged_by} in {seconds:.2f} s ({v.X_train.shape[1]} preprocessed features, K={k})"
        )
        part = pd.DataFrame({"importance": values, "loo": loo})
        part.attrs.update(compile_seconds=compile_seconds, valuation_seconds=seconds)
        return part, seconds

    def scores_output(
        context, v: _Valuation, values, loo, seconds: float, compile_seconds: float
    ) -> dg.Output[pd.DataFrame]:
        train = v.train
        predicted = v.pipeline.predict(train[features]).astype(str)
        labels = train["label"].astype(str).to_numpy()
        own = given_label_probability(v.pipeline, train[features], labels)
        trusted_model = _trusted_model(context, training, features, train, v.held)
        trusted, trusted_predicted = _trusted_doubts(context, trusted_model, train[features], labels)
        scores = train[[PARTITION_COLUMN, *keys, "label", "label_source", *lf_columns]].copy()
        scores["label"] = labels
        scores["predicted"] = predicted
        scores["importance"] = values
        scores["loo"] = loo
        scores["rank"] = scores["importance"].rank(method="first").astype(int)  # 1 = most harmful
        scores["model_confidence"] = own
        scores["trusted_confidence"] = np.nan if trusted is None else trusted
        scores["suggested_action"] = suggested_actions(
            values,
            labels,
            predicted,
            scores["label_source"],
            trusted_predicted,
        )
        gold_rows = (scores["label_source"] == "gold").to_numpy()
        exclude = None if importance.review_gold else gold_rows  # gold is hand-checked already
        scores["review_rank"] = pd.array(review_ranks(values, own, trusted, exclude=exclude), dtype="Int64")
        scores = scores.sort_values("review_rank", na_position="last")  # 1 = inspect first
        queue = scores[scores["review_rank"].notna()].head(importance.review_rows)
        lf_review = _lf_review(train, v.held, values, lf_columns, labeling.lfs.names, classes)
        for warning in lf_review.warnings:
            context.log.warning(f"per-LF table: {warning}")
        flag = v.holdout_flag or ""
        sorted_values = scores["importance"].to_numpy()
        part_table = per_partition(scores, PARTITION_COLUMN)
        table = scores.reset_index(names="_row")
        return dg.Output(
            table,
            data_version=dg.DataVersion(frame_digest(table)[:16]),
            metadata={
                "dagster/row_count": len(scores),
                "model_uri": v.model_uri,
                "valued_against": v.judged_by,
                "holdout_warning": v.warning
                or "none: the holdout is gold-labeled with enough rows of each class",
                "holdout_status": "determined" if v.holdout_determined else "undetermined (single class)",
                "k": k,
                "training_rows": len(v.train),
                "shards": importance.shards,
                "utility": f"group-balanced KNN accuracy over `{importance.group}`"
                if importance.group
                else "KNN accuracy",
                "harmful_rows": int((scores["importance"] < 0).sum()),
                "valuation_seconds": round(seconds, 2),  # numba compilation excluded:
                "compile_seconds": round(compile_seconds, 2),  # done (or loaded) before the timing
                "review_queue": dg.MetadataValue.md(flag + _queue_markdown(queue, keys)),
                "review_queue_gold_rows": "ranked, marked as gold"
                if importance.review_gold
                else (f"left out: {int(gold_rows.sum())} hand-checked rows"),
                "review_queue_ranks_by": (
                    "the better of two doubts about each label (the model's own p(label) and that of "
                    "the same pipeline fitted on gold rows only), halved for harmful rows"
                    if trusted is not None
                    else "the model's own p(label), halved for harmful rows (no model of gold rows: too "
                    "few gold rows)"
                ),
                "histogram": dg.MetadataValue.md(
                    flag
                    + svg_markdown(
                        histogram_svg(sorted_values, "importance of training rows (red: harmful)"),
                        "histogram",
                    )
                    + "\n\n"
                    + histogram_markdown(sorted_values)
                ),
                **_lf_review_metadata(lf_review, flag),
                "by_partition": dg.MetadataValue.md(
                    flag
                    + _table_markdown(
                        part_table.reset_index(),
                        [PARTITION_COLUMN, "rows", "harmful", "harmful_share", "mean_importance"],
                    )
                ),
            },
        )

    if importance.shards == 1:

        @dg.asset(**properties)
        def importance_scores(
            context: dg.AssetExecutionContext,
            trained_model: pd.DataFrame,
            labeled: dict,
            mlflow_tracking: MlflowTracking,
        ) -> dg.Output[pd.DataFrame]:
            v = valuation(context.log, trained_model, labeled, mlflow_tracking)
            part, seconds = value(context.log, v, 0, len(v.X_val))
            return scores_output(
                context, v, part["importance"].to_numpy(), part["loo"].to_numpy(), seconds,
                part.attrs["compile_seconds"],
            )  # fmt: skip

        return importance_scores

    prefix = "__".join(asset_key(spec, IMPORTANCE_SCORES).path)
    shards = importance.shards

    def shard_op(i: int) -> dg.OpDefinition:
        @dg.op(
            name=f"{prefix}_shard_{i}",
            ins={"trained_model": dg.In(), "labeled": dg.In(metadata={"allow_missing_partitions": True})},
            description=f"KNN-Shapley values of the training rows for holdout shard {i + 1} of {shards}.",
        )
        def value_shard(
            context: dg.OpExecutionContext, trained_model, labeled, mlflow_tracking: MlflowTracking
        ) -> pd.DataFrame:
            v = valuation(context.log, trained_model, labeled, mlflow_tracking)
            start, stop = shard_bounds(len(v.X_val), shards)[i]
            part, _ = value(context.log, v, start, stop)
            return part

        return value_shard

    @dg.op(
        name=f"{prefix}_sum_shards",
        ins={
            "trained_model": dg.In(),
            "labeled": dg.In(metadata={"allow_missing_partitions": True}),
            "parts": dg.In(),
        },
        description="Sums the shards' values, then ranks the rows and builds the review queue.",
    )
    def sum_shards(
        context: dg.OpExecutionContext, trained_model, labeled, parts, mlflow_tracking: MlflowTracking
    ) -> dg.Output[pd.DataFrame]:
        v = valuation(context.log, trained_model, labeled, mlflow_tracking)
        values, loo = np.zeros(len(v.X_train)), np.zeros(len(v.X_train))
        for i, part in enumerate(parts):
            if len(part) != len(values):
                raise dg.Failure(
                    f"shard {i + 1} of {shards} valued {len(part)} training rows; expected {len(values)}, "
                    "the rows of the model's window: did the window change between the steps?"
                )
            values += part["importance"].to_numpy()
            loo += part["loo"].to_numpy()
        seconds = max(float(p.attrs.get("valuation_seconds", 0.0)) for p in parts)  # side by side
        compile_seconds = max(float(p.attrs.get("compile_seconds", 0.0)) for p in parts)
        return scores_output(context, v, values, loo, seconds, compile_seconds)

    @dg.graph_asset(**properties)
    def importance_scores(trained_model, labeled):
        parts = [shard_op(i)(trained_model, labeled) for i in range(shards)]
        return sum_shards(trained_model, labeled, parts)

    return importance_scores


def _trusted_model(
    context: dg.AssetExecutionContext,
    training: TrainingSpec,
    features: list[str],
    window: pd.DataFrame,
    holdout: pd.DataFrame,
):
    """The user's pipeline fitted on the gold rows of the window and holdout only: it never saw an
    LF's systematic mistake, so it doubts labels the model learned from one. None without gold."""
    gold = pd.concat([window[window["label_source"] == "gold"], holdout[holdout["label_source"] == "gold"]])
    if len(gold) < training.min_gold_rows or gold["label"].astype(str).nunique() < 2:
        context.log.info(
            f"review queue without a model of the gold rows: {len(gold)} gold rows, expected at least "
            f"{training.min_gold_rows} covering two classes"
        )
        return None
    try:
        return fit_pipeline(
            training.pipeline(),
            gold[features],
            gold["label"].astype(str).to_numpy(),
            sample_weight=None,
            seed=training.seed,
            window=f"{len(gold)} gold rows",
        )
    except TrainingError as e:
        context.log.warning(f"review queue without a model of the gold rows: {e}")
        return None


def _trusted_doubts(context, model, X: pd.DataFrame, labels: np.ndarray):
    """The gold-row model's p(label) and prediction for each training row; (None, None) without
    that model, or when it cannot score rows it never saw the like of (an unknown category)."""
    if model is None:
        return None, None
    try:
        return given_label_probability(model, X, labels), model.predict(X).astype(str)
    except ValueError as e:
        context.log.warning(
            f"review queue without a model of the gold rows: it cannot score the window ({e})"
        )
        return None, None


def _lf_review(
    train: pd.DataFrame,
    held: pd.DataFrame,
    values: np.ndarray,
    lf_columns: list[str],
    names: list[str],
    classes: list[str],
) -> LabelingFunctionReview:
    """The per-LF table over the model's window (valued rows) and holdout (gold to judge by)."""
    rows = pd.concat([train, held], ignore_index=True)
    votes = rows[lf_columns].to_numpy(dtype=np.int64)
    proba = rows[[f"{PROBA_COLUMN_PREFIX}{c}" for c in classes]].to_numpy(dtype=float)
    covered = (votes != -1).any(axis=1)
    lf_label = np.where(covered, np.nan_to_num(proba, nan=-1.0).argmax(axis=1), -1)
    index = {c: i for i, c in enumerate(classes)}
    gold = np.where(
        rows["label_source"].to_numpy() == "gold", rows["label"].astype(str).map(index).fillna(-1), -1
    ).astype(np.int64)
    row_values = np.concatenate([values, np.full(len(held), np.nan)])
    return per_labeling_function(votes, gold, lf_label, row_values, names=names, classes=classes)


def _holdout_flag(choice) -> str | None:
    """The warning line that heads every table built on the row values when the holdout they are
    measured against is undetermined (single-class); None when it is determined."""
    if choice.determined:
        return None
    said = [w for w in choice.warnings if w.startswith("single-class holdout")] or ["single-class holdout"]
    return (
        f"**WARNING: {said[0]}.** The row values, and so this table, are measured against that holdout: "
        "undetermined.\n\n"
    )


def _lf_review_metadata(review: LabelingFunctionReview, flag: str = "") -> dict:
    """The per-LF table, its rule and warnings, a chart of what it is ranked by, and the LF it
    names first as its own entry, with a status: ``determined`` only when gold rows of several
    classes show that LF worse than the rest and the holdout is determined (``flag`` empty).
    ``most_harmful_lf_excess_wrong_labels`` is a number when determined (with no LF shown worse,
    the largest excess, at most 0), and left out otherwise, so that it can be plotted."""
    table = review.table
    determined = table["excess_wrong_labels"].dropna()
    if len(determined):
        chart = bar_chart_svg(
            table["lf"],
            table["excess_wrong_labels"].fillna(0),
            "wrong labels each LF set beyond the other LFs' accuracy, at least",
        )
    else:
        chart = bar_chart_svg(
            table["lf"], table["value_sum"].fillna(0), "summed value of the rows each LF labeled"
        )
    first = f"`{table.iloc[0]['lf']}`"
    if flag:
        status = "undetermined: single-class holdout"
        named = f"{status} (ranked first: {first})"
    elif review.gold_classes == 0:
        status = "undetermined: no gold rows"
        named = f"undetermined: no gold rows to judge the LFs by (lowest summed row value: {first})"
    elif review.gold_classes == 1:
        status = "undetermined: gold rows of one class"
        named = f"{status} (ranked first: {first})"
    elif not len(determined):
        status = "undetermined: too few gold rows behind every LF's labels"
        named = f"{status} (ranked first: {first})"
    elif determined.max() > 0:
        status, named = "determined", str(table.iloc[0]["lf"])
    else:
        status = "determined: no LF shown worse than the others"
        named = "none: no LF's labels are shown less accurate on gold rows than the other LFs'"
    warnings = "".join(f"\n\nWARNING: {w}" for w in review.warnings)
    metadata = {
        "by_labeling_function": dg.MetadataValue.md(
            flag
            + review.markdown()
            + f"\n\nRanked by {review.ranked_by}.{warnings}\n\n"
            + svg_markdown(chart, "per labeling function")
        ),
        "most_harmful_lf": named,
        "most_harmful_lf_status": status,
    }
    if status.startswith("determined"):
        metadata["most_harmful_lf_excess_wrong_labels"] = float(determined.max())
    return metadata


def _queue_markdown(queue: pd.DataFrame, keys: list[str]) -> str:
    head = ["review", "partition", *keys, "label", "source", "model says", "p(label)", "gold model p(label)"]
    head += ["importance (rank)", "suggested action"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in queue.iterrows():
        cells = [str(r["review_rank"]), str(r[PARTITION_COLUMN]), *(str(r[k]) for k in keys), r["label"]]
        trusted = "n/a" if pd.isna(r["trusted_confidence"]) else f"{r['trusted_confidence']:.2f}"
        cells += [r["label_source"], r["predicted"], f"{r['model_confidence']:.2f}", trusted]
        cells += [f"{r['importance']:+.2e} ({r['rank']})", r["suggested_action"]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _table_markdown(table: pd.DataFrame, columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for _, r in table.iterrows():
        cells = [f"{r[c]:.3g}" if isinstance(r[c], float) else str(r[c]) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
