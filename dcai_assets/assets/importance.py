"""Importance scores: the exact KNN-Shapley value of every training row of the latest model,
on the features its own preprocessing produces, against its holdout; and the review queue.

"Importance" in this module's asset and metadata names is a training row's value to the model
(:mod:`dcai_assets.core.valuation`); a feature's importance is the trained model's business."""

import time
from dataclasses import dataclass

import dagster as dg
import numpy as np
import pandas as pd

from dcai_assets.artifacts import ArtifactStore
from dcai_assets.assets.labeled import LABELED_SET
from dcai_assets.assets.model import TRAINED_MODEL
from dcai_assets.core.columns import LABEL, LABEL_SOURCE, PARTITION, ROW, lf_column
from dcai_assets.core.holdout import WindowSplit, split_window
from dcai_assets.core.knn_shapley import compile_kernels
from dcai_assets.core.model_card import ModelCard
from dcai_assets.core.reading import frame_digest
from dcai_assets.core.review import LabelingFunctionReview, histogram_markdown, per_partition
from dcai_assets.core.valuation import (
    RowScores,
    ValuationInputs,
    holdout_flag,
    label_doubts,
    lf_review,
    score_rows,
    shard_bounds,
    sum_shards,
    valuation_inputs,
)
from dcai_assets.core.valuation import (
    preprocessed_features as preprocess,  # the old name, for the benchmarks
)
from dcai_assets.core.valuation_blocks import blocked_values, valuation_key
from dcai_assets.io.valuation_store import ValuationBlockStore
from dcai_assets.model_registry import load_sklearn_model
from dcai_assets.partitions import asset_key
from dcai_assets.plots import bar_chart_svg, histogram_svg, svg_markdown
from dcai_assets.privacy import examples_markdown, gated_groups
from dcai_assets.spec import DatasetSpec, ImportanceSpec, LabelingSpec, PrivacySpec, TrainingSpec
from dcai_assets.tracking import MlflowTracking

IMPORTANCE_SCORES = "importance_scores"
_PROGRESS_FROM = 500_000_000  # training x holdout pairs (seconds of work): log progress from here

__all__ = ["IMPORTANCE_SCORES", "build_importance_asset", "preprocess", "shard_bounds"]


@dataclass(frozen=True)
class _Scoring:
    """The valuation of one dataset's latest model, as the asset's steps call it: load the model's
    window, value its rows, and turn the values into the scores table and its metadata."""

    spec: DatasetSpec
    labeling: LabelingSpec
    training: TrainingSpec
    valuation: ImportanceSpec

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.labeling.lfs.classes]

    @property
    def features(self) -> list[str]:
        return list(self.training.features)

    @property
    def lf_columns(self) -> list[str]:
        return [lf_column(n) for n in self.labeling.lfs.names]

    def window(self, log, card: ModelCard, labeled: dict) -> WindowSplit:
        """The model's window, split at its own holdout (no further widening), as the trained
        model decided it (:func:`split_window`)."""
        train_keys, holdout_keys = card.train_partition_keys, card.holdout_partition_keys
        missing = [k for k in train_keys + holdout_keys if k not in labeled]
        if not train_keys or not holdout_keys or missing:
            raise dg.Failure(
                f"the model's window is empty or incomplete: training partitions {train_keys or 'none'}, "
                f"holdout partitions {holdout_keys or 'none'}, missing labeled partitions {missing}; "
                "expected the labeled sets the model was trained on"
            )
        window = train_keys + holdout_keys
        frame = pd.concat([labeled[k].assign(**{PARTITION: k}) for k in window], ignore_index=False)
        split = split_window(
            frame, window, self.classes, partition_column=PARTITION, holdout_partitions=len(holdout_keys),
            min_gold_rows=self.training.min_gold_rows, min_class_rows=self.training.min_class_rows,
        )  # fmt: skip
        if split.choice.warnings:
            log.warning(_holdout_warning(split))
        if len(split.evaluation) == 0:
            raise dg.Failure(f"no labeled holdout rows in {holdout_keys}; expected some to value against")
        return split

    def load(self, log, card: ModelCard, labeled: dict, tracking: MlflowTracking):
        """The model's window, the model, and its preprocessing of the window (once per model)."""
        split = self.window(log, card, labeled)
        pipeline = load_sklearn_model(tracking.client, card.mlflow_run_id)
        try:
            inputs = valuation_inputs(
                pipeline, split.train, split.evaluation, self.features, self.classes,
                k=self.valuation.k, group=self.valuation.group,
            )  # fmt: skip
        except ValueError as e:
            raise dg.Failure(str(e)) from None
        for warning in inputs.warnings:
            log.warning(warning)
        return split, pipeline, inputs

    def value(
        self, log, inputs: ValuationInputs, start: int, stop: int, model: str, artifacts: ArtifactStore
    ) -> pd.DataFrame:
        """The values of every training row for holdout rows start..stop-1, in blocks checkpointed
        in the artifact store (:mod:`dcai_assets.core.valuation_blocks`): what an interrupted or
        earlier valuation of the same model and rows finished is reused. The kernels are compiled
        first, outside the timing: the frame's attrs keep compile_seconds and valuation_seconds
        apart, and say which path was taken. ``model``: the model's version (:func:`_model_version`)."""
        compile_seconds = compile_kernels()
        started = time.perf_counter()
        long = len(inputs.X_train) * (stop - start) >= _PROGRESS_FROM

        first: list[tuple[float, int]] = []  # (time, rows done) at the first line: the pace from there

        def progress(blocks_done: int, blocks: int, done: int, total: int) -> None:
            if long:
                now = time.perf_counter()
                first[:] = first or [(now, done)]
                pace = (now - first[0][0]) / max(done - first[0][1], 1)
                left = f", about {pace * (total - done):.0f} s left" if done > first[0][1] else ""
                log.info(
                    f"valuation {done / total:.0%}: {done:,} of {total:,} holdout rows (block "
                    f"{blocks_done} of {blocks}) in {now - started:.1f} s{left}"
                )

        key = valuation_key(
            inputs.X_train, inputs.y_train, model_version=model,
            k=self.valuation.k, group=self.valuation.group, classes=len(self.classes),
        )  # fmt: skip
        store = ValuationBlockStore.of_dataset(artifacts, self.spec.name)
        result = blocked_values(
            inputs.X_train, inputs.y_train, inputs.X_val, inputs.y_val, key=key, store=store,
            groups=inputs.groups, start=start, stop=stop, progress=progress,
        )  # fmt: skip
        store.prune(keep=key.digest)
        seconds = time.perf_counter() - started
        log.info(
            f"valued {len(inputs.X_train):,} training rows against holdout rows {start}..{stop - 1} of "
            f"{len(inputs.X_val)} in {seconds:.2f} s ({inputs.X_train.shape[1]} preprocessed features, "
            f"K={self.valuation.k}); {result.path.describe()}"
        )
        part = pd.DataFrame({"importance": result.values, "loo": result.loo})
        part.attrs.update(
            compile_seconds=compile_seconds, valuation_seconds=seconds, valuation_path=result.path.describe()
        )
        return part

    def scores(
        self,
        log,
        split: WindowSplit,
        pipeline,
        values: np.ndarray,
        loo: np.ndarray,
        review: LabelingFunctionReview,
    ) -> RowScores:
        """The scored training rows, ranked by every signal about their labels combined."""
        train, features = split.train, self.features
        doubts = label_doubts(
            self.training.pipeline, pipeline, train, split.held, features=features, classes=self.classes,
            lf_names=self.labeling.lfs.names, review=review, min_gold_rows=self.training.min_gold_rows,
            seed=self.training.seed,
        )  # fmt: skip
        for note in doubts.notes:  # a signal left out weakens the queue
            log.warning(f"review queue without {note}")
        flagged = review.table.loc[review.table["excess_wrong_labels"] > 0, "lf"].tolist()
        keys = [PARTITION, *self.spec.key_columns, LABEL, LABEL_SOURCE, *self.lf_columns]
        return score_rows(
            train, values, loo, predicted=pipeline.predict(train[features]).astype(str), doubts=doubts,
            columns=keys, review_gold=self.valuation.review_gold, lf_names=self.labeling.lfs.names,
            flagged_lfs=flagged, features=features,
        )  # fmt: skip

    def output(
        self,
        log,
        card: ModelCard,
        split: WindowSplit,
        pipeline,
        values,
        loo,
        seconds: float,
        compile_seconds: float,
        path: str,
    ) -> dg.Output[pd.DataFrame]:
        review = lf_review(
            split.train, split.held, values, self.lf_columns, self.labeling.lfs.names, self.classes
        )
        scored = self.scores(log, split, pipeline, values, loo, review)
        for warning in review.warnings:
            log.warning(f"per-LF table: {warning}")
        table = scored.table.reset_index(names=ROW)
        metadata = _scores_metadata(self, card, split, scored, review)
        metadata["valuation_seconds"] = round(seconds, 2)  # numba compilation excluded:
        metadata["compile_seconds"] = round(compile_seconds, 2)  # done (or loaded) before the timing
        metadata["valuation_path"] = path  # full, resumed, incremental or unchanged
        return dg.Output(table, data_version=dg.DataVersion(frame_digest(table)[:16]), metadata=metadata)

    def whole(
        self, log, card: ModelCard, labeled: dict, tracking: MlflowTracking, artifacts: ArtifactStore
    ) -> dg.Output[pd.DataFrame]:
        """Unsharded: load, value every holdout row, score."""
        split, pipeline, inputs = self.load(log, card, labeled, tracking)
        part = self.value(log, inputs, 0, len(inputs.X_val), _model_version(card), artifacts)
        values, loo = part["importance"].to_numpy(), part["loo"].to_numpy()
        seconds, compile_seconds = part.attrs["valuation_seconds"], part.attrs["compile_seconds"]
        path = part.attrs["valuation_path"]
        return self.output(log, card, split, pipeline, values, loo, seconds, compile_seconds, path)


def _model_version(card: ModelCard) -> str:
    """The model version that keys its stored valuation blocks."""
    return f"{card.model_uri} (run {card.mlflow_run_id})"


def _holdout_warning(split: WindowSplit) -> str:
    return "WARNING: " + " | ".join(split.choice.warnings)


def _valued_against(split: WindowSplit) -> str:
    return f"{len(split.evaluation)} {'gold' if split.choice.labels == 'gold' else 'LF'}-labeled holdout rows"


def _scores_metadata(
    scoring: _Scoring, card: ModelCard, split: WindowSplit, scored: RowScores, review: LabelingFunctionReview
) -> dict:
    """The scores' metadata: what they were measured against, the review queue, the histogram and
    the per-partition and per-LF tables (each headed by the holdout's flag when undetermined)."""
    valuation, keys = scoring.valuation, scoring.spec.key_columns
    scores, flag = scored.table, holdout_flag(split.choice) or ""
    queue = _queue_examples(scores, valuation.review_rows)
    sorted_values = scores["importance"].to_numpy()
    part_table = per_partition(scores, PARTITION)
    return {
        "dagster/row_count": len(scores),
        "model_uri": card.model_uri,
        "valued_against": _valued_against(split),
        "holdout_warning": _holdout_warning(split)
        if split.choice.warnings
        else "none: the holdout is gold-labeled with enough rows of each class",
        "holdout_status": "determined" if split.choice.determined else "undetermined (single class)",
        "k": valuation.k,
        "training_rows": len(split.train),
        "shards": valuation.shards,
        "utility": f"group-balanced KNN accuracy over `{valuation.group}`"
        if valuation.group
        else "KNN accuracy",
        "harmful_rows": int((scores["importance"] < 0).sum()),
        "review_queue": dg.MetadataValue.md(
            flag
            + examples_markdown(
                scoring.spec.privacy,
                queue,
                rows=len(queue),
                render=lambda q: _queue_markdown(q, keys),
                group_by=[LABEL_SOURCE, "suggested_action"],
                what="rows at the head of the review queue",
            )
        ),
        "review_queue_gold_rows": "ranked, marked as gold"
        if valuation.review_gold
        else (f"left out: {int(scored.gold_rows.sum())} hand-checked rows"),
        "review_queue_ranks_by": scored.ranks_by(),
        "histogram": dg.MetadataValue.md(
            flag
            + svg_markdown(
                histogram_svg(sorted_values, "importance of training rows (red: harmful)"), "histogram"
            )
            + "\n\n"
            + histogram_markdown(sorted_values)
        ),
        **_lf_review_metadata(review, flag),
        "by_partition": dg.MetadataValue.md(flag + _partition_markdown(scoring.spec.privacy, part_table)),
    }


def _partition_markdown(privacy: PrivacySpec, part_table: pd.DataFrame) -> str:
    """The per-partition table; in no-human-access mode without partitions under the group minimum."""
    shown, note = gated_groups(privacy, part_table.reset_index())
    table = _table_markdown(shown, [PARTITION, "rows", "harmful", "harmful_share", "mean_importance"])
    return table + (f"\n\n_{note}_" if note else "")


def _asset_properties(spec: DatasetSpec, valuation: ImportanceSpec) -> dict:
    k = valuation.k
    return dict(
        key=asset_key(spec, IMPORTANCE_SCORES),
        ins={
            "trained_model": dg.AssetIn(key=asset_key(spec, TRAINED_MODEL)),
            "labeled": dg.AssetIn(
                key=asset_key(spec, LABELED_SET), metadata={"allow_missing_partitions": True}
            ),
        },
        group_name="importance",
        kinds={"numba", "pandas"},
        owners=list(spec.owners),
        code_version=f"importance-v1-k{k}-{valuation.group}",
        description=(
            f"Exact KNN-Shapley value (K={k}) of every training row of the latest model, on "
            "the features its preprocessing produces, against its holdout: negative values hurt. With "
            "the review queue (most harmful first, with a suggested action) and per-partition and "
            "per-LF aggregates."
            + (f" Valued in {valuation.shards} holdout shards, summed." if valuation.shards > 1 else "")
        ),
    )


def build_importance_asset(
    spec: DatasetSpec, labeling: LabelingSpec, training: TrainingSpec, importance: ImportanceSpec
) -> dg.AssetsDefinition:
    """``<dataset>/importance_scores``: one row per training row of the latest model. With
    ``importance.shards`` > 1, a graph: one step that loads the model and preprocesses its window,
    one step per holdout shard, and a step that sums them."""
    scoring = _Scoring(spec, labeling, training, importance)
    properties = _asset_properties(spec, importance)
    if importance.shards == 1:

        @dg.asset(**properties)
        def importance_scores(
            context: dg.AssetExecutionContext,
            trained_model: pd.DataFrame,
            labeled: dict,
            mlflow_tracking: MlflowTracking,
            artifacts: ArtifactStore,
        ) -> dg.Output[pd.DataFrame]:
            card = ModelCard.from_frame(trained_model)
            return scoring.whole(context.log, card, labeled, mlflow_tracking, artifacts)

        return importance_scores
    return _sharded_asset(scoring, properties)


def _sharded_asset(scoring: _Scoring, properties: dict) -> dg.AssetsDefinition:
    """The graph of the sharded valuation: prepare once, value each shard, sum."""
    prefix = "__".join(properties["key"].path)
    shards = scoring.valuation.shards

    @dg.op(
        name=f"{prefix}_prepare",
        ins={"trained_model": dg.In(), "labeled": dg.In(metadata={"allow_missing_partitions": True})},
        description="Loads the model and its window and preprocesses the rows once, for every shard.",
    )
    def prepare(context: dg.OpExecutionContext, trained_model, labeled, mlflow_tracking: MlflowTracking):
        card = ModelCard.from_frame(trained_model)
        _, _, inputs = scoring.load(context.log, card, labeled, mlflow_tracking)
        prepared = inputs.to_frame()
        prepared.attrs["model_version"] = _model_version(card)  # Parquet keeps attrs
        return prepared

    def shard_op(i: int) -> dg.OpDefinition:
        @dg.op(
            name=f"{prefix}_shard_{i}",
            description=f"KNN-Shapley values of the training rows for holdout shard {i + 1} of {shards}.",
        )
        def value_shard(
            context: dg.OpExecutionContext, prepared: pd.DataFrame, artifacts: ArtifactStore
        ) -> pd.DataFrame:
            inputs = ValuationInputs.from_frame(prepared)
            start, stop = shard_bounds(len(inputs.X_val), shards)[i]
            model = prepared.attrs["model_version"]  # set by the prepare step
            return scoring.value(context.log, inputs, start, stop, model, artifacts)

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
    def sum_shards_op(
        context: dg.OpExecutionContext, trained_model, labeled, parts, mlflow_tracking: MlflowTracking
    ) -> dg.Output[pd.DataFrame]:
        card = ModelCard.from_frame(trained_model)
        split = scoring.window(context.log, card, labeled)
        try:
            values, loo = sum_shards(parts, len(split.train))
        except ValueError as e:
            raise dg.Failure(str(e)) from None
        seconds = max(float(p.attrs.get("valuation_seconds", 0.0)) for p in parts)  # side by side
        compile_seconds = max(float(p.attrs.get("compile_seconds", 0.0)) for p in parts)
        path = "; ".join(f"shard {i + 1}: {p.attrs.get('valuation_path', '?')}" for i, p in enumerate(parts))
        pipeline = load_sklearn_model(mlflow_tracking.client, card.mlflow_run_id)
        return scoring.output(context.log, card, split, pipeline, values, loo, seconds, compile_seconds, path)

    @dg.graph_asset(**properties)
    def importance_scores(trained_model, labeled):
        prepared = prepare(trained_model, labeled)
        parts = [shard_op(i)(prepared) for i in range(shards)]
        return sum_shards_op(trained_model, labeled, parts)

    return importance_scores


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


def _queue_examples(scores: pd.DataFrame, rows: int) -> pd.DataFrame:
    """The first ``rows`` rows of the review queue: the one place this asset's row-level examples
    leave for metadata (a gate on who may see rows goes here)."""
    return scores[scores["review_rank"].notna()].head(rows)


def _queue_markdown(queue: pd.DataFrame, keys: list[str]) -> str:
    head = ["review", "partition", *keys, "label", "source", "p(wrong)", "suggested (p)", "why"]
    head += ["model p(label)", "gold model p(label)", "importance (rank)", "suggested action"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in queue.iterrows():
        cells = [str(r["review_rank"]), str(r[PARTITION]), *(str(r[k]) for k in keys), r[LABEL]]
        cells += [r[LABEL_SOURCE], f"{r['doubt']:.2f}", f"{r['suggested_label']} ({r['suggested_p']:.2f})"]
        cells += [f"{r['signal']}: {r['why']}"]
        cells += [
            "n/a" if pd.isna(r[c]) else f"{r[c]:.2f}" for c in ("model_confidence", "trusted_confidence")
        ]
        cells += [f"{r['importance']:+.2e} ({r['rank']})", r["suggested_action"] or "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _table_markdown(table: pd.DataFrame, columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for _, r in table.iterrows():
        cells = [f"{r[c]:.3g}" if isinstance(r[c], float) else str(r[c]) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
