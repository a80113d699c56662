"""What-if: the latest model retrained without its most harmful training rows (lowest KNN-Shapley
value), or without the rows of one labeling function, next to as many rows removed at random;
judged on the model's holdout and logged as an MLflow run under the model's run, never
registered or promoted. Materialized on demand (``dcai-assets what-if``), never by automation."""

import dataclasses
import math

import dagster as dg
import numpy as np
import pandas as pd

from dcai_assets.assets.importance import IMPORTANCE_SCORES, _Scoring
from dcai_assets.assets.labeled import LABELED_SET
from dcai_assets.assets.model import TRAINED_MODEL
from dcai_assets.core.columns import GOLD, LABEL, LABEL_SOURCE, PARTITION, ROW
from dcai_assets.core.model_card import ModelCard
from dcai_assets.core.reading import frame_digest
from dcai_assets.core.training import feature_window, fit_labeled
from dcai_assets.core.what_if import WhatIfResult, harmful_order, lf_rows, sweep_sizes, what_if
from dcai_assets.model_registry import evaluate_model, metric_name
from dcai_assets.partitions import asset_key
from dcai_assets.plots import bar_chart_svg, svg_markdown
from dcai_assets.privacy import examples_metadata
from dcai_assets.spec import DatasetSpec, ImportanceSpec, LabelingSpec, TrainingSpec
from dcai_assets.tracking import MlflowTracking

WHAT_IF = "what_if"
FLAGGED = "flagged"  # WhatIfConfig.lf: the LF the per-LF table of the importance scores names
PARENT_TAG = "mlflow.parentRunId"  # nests the run under the model's run in the MLflow UI
WHAT_IF_OF_TAG = "dcai.what_if_of"


class WhatIfConfig(dg.Config):
    """What one what-if run removes. By default the spec's sweep (``WhatIfSpec.fractions`` of the
    training rows, most harmful first); ``rows``: one step of that many rows instead;
    ``fractions``: another sweep; ``lf``: every row that labeling function voted on (gold rows
    excepted), or ``"flagged"`` for the one the importance scores' per-LF table names."""

    rows: int | None = None
    fractions: list[float] | None = None
    lf: str | None = None
    random_repeats: int | None = None


def _examples(head: pd.DataFrame, columns: list[str]) -> str:
    """Removed rows as a markdown table; only called through the privacy gate
    (:func:`dcai_assets.privacy.examples_metadata`), which withholds rows in no-human-access mode."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for _, r in head.iterrows():
        cells = [f"{r[c]:+.2e}" if isinstance(r[c], float) else str(r[c]) for c in columns]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def _scored_values(train: pd.DataFrame, scores: pd.DataFrame) -> np.ndarray:
    """Each training row's KNN-Shapley value, matched by (partition, row index); a Failure when the
    scores do not cover exactly the model's training rows."""
    index = pd.MultiIndex.from_arrays([train[PARTITION].astype(str), train.index])
    by_row = scores.set_index([scores[PARTITION].astype(str), scores[ROW]])["importance"]
    if len(scores) != len(train) or not by_row.index.is_unique or not index.isin(by_row.index).all():
        raise dg.Failure(
            f"the importance scores hold {len(scores)} rows, the model's training window {len(train)} rows "
            f"({int((~index.isin(by_row.index)).sum())} without a score); expected one score per training "
            "row. Materialize the importance scores of the latest model first"
        )
    return by_row.loc[index].to_numpy(dtype=float)


def _scores_metadata(context: dg.AssetExecutionContext, key: dg.AssetKey) -> dict:
    event = context.instance.get_latest_materialization_event(key)
    return (
        {} if event is None or event.asset_materialization is None else event.asset_materialization.metadata
    )


def _value(metadata: dict, name: str):
    entry = metadata.get(name)
    return getattr(entry, "value", entry)


class _WhatIf:
    """One dataset's what-if, as the asset's body calls it."""

    def __init__(
        self, spec: DatasetSpec, labeling: LabelingSpec, training: TrainingSpec, importance: ImportanceSpec
    ):
        self.spec, self.labeling, self.training = spec, labeling, training
        self.scoring = _Scoring(spec, labeling, training, importance)

    def run(
        self, context, config: WhatIfConfig, card: ModelCard, scores: pd.DataFrame, labeled: dict
    ) -> tuple[WhatIfResult, pd.DataFrame]:
        """The what-if's result, and the training rows its largest step removed (with their value)."""
        scored_model = _value(_scores_metadata(context, asset_key(self.spec, IMPORTANCE_SCORES)), "model_uri")
        if scored_model != card.model_uri:
            raise dg.Failure(
                f"the importance scores value the rows of {scored_model or 'no known model'}, the latest "
                f"model is {card.model_uri}; expected scores of the latest model. Materialize "
                f"{self.spec.name}/{IMPORTANCE_SCORES} first"
            )
        split = self.scoring.window(context.log, card, labeled)
        train, holdout = split.train, split.evaluation
        values = _scored_values(train, scores)
        training, features, classes = self.training, self.scoring.features, self.scoring.classes
        window = f"{self.spec.name} {feature_window(list(split.choice.train_partitions))}"

        def retrain(rows: pd.DataFrame):
            model = fit_labeled(
                training.pipeline, rows, features, confidence_weights=training.use_confidence_weights,
                seed=training.seed, window=window,
            )  # fmt: skip
            return model.predict(holdout[features]), evaluate_model(
                model, holdout, features, classes, training
            )

        repeats = self.spec.what_if.random_repeats if config.random_repeats is None else config.random_repeats
        try:
            result, removed = self._sweep(context, config, card, train, holdout, values, retrain, repeats)
        except ValueError as e:
            raise dg.Failure(f"what-if of {card.model_uri}: {e}") from None
        # Judged on LF labels, or on one class: said under the table, as the scores' metadata says it.
        return dataclasses.replace(result, notes=(*result.notes, *split.choice.warnings)), removed

    def _sweep(self, context, config, card, train, holdout, values, retrain, repeats):
        lf = self._lf(context, config)
        notes = []
        training = self.training
        if lf is not None:
            order = lf_rows(train, lf)
            if not len(order):
                raise dg.Failure(
                    f"labeling function {lf!r} labeled no training row of the model; nothing to remove"
                )
            sizes, pool = [len(order)], np.flatnonzero((train[LABEL_SOURCE] != GOLD).to_numpy())
            selection = f"the {len(order)} training rows labeling function `{lf}` voted on (gold rows kept)"
        else:
            order, pool = harmful_order(values), None
            if config.rows is not None:
                sizes = [config.rows]
            else:
                sizes, notes = sweep_sizes(len(train), config.fractions or list(self.spec.what_if.fractions))
                if not sizes:
                    raise dg.Failure(f"no step left to run: {'; '.join(notes)}")
            selection = "the training rows with the lowest KNN-Shapley value (most harmful first)"
        metrics = list(dict.fromkeys(["accuracy", training.gate.metric]))
        result = what_if(
            train, holdout[LABEL].astype(str).to_numpy(), retrain, order=order, sizes=sizes, pool=pool,
            random_repeats=repeats, seed=training.seed, min_rows=training.gate.min_rows,
            selection=selection, metrics=metrics, notes=notes,
        )  # fmt: skip
        largest = order[: max(s.size for s in result.steps)]
        removed = train.iloc[largest].assign(importance=values[largest])
        return self._checked(context.log, result, card), removed

    def _lf(self, context, config: WhatIfConfig) -> str | None:
        """The labeling function whose rows are removed, if any; ``flagged``: the per-LF table's."""
        if config.lf is None:
            return None
        if config.rows is not None or config.fractions is not None:
            raise dg.Failure(
                "lf removes every row of one labeling function: expected no rows or fractions with it"
            )
        if config.lf != FLAGGED:
            if config.lf not in self.labeling.lfs.names:
                raise dg.Failure(
                    f"lf: {config.lf!r}; expected one of {list(self.labeling.lfs.names)} or 'flagged'"
                )
            return config.lf
        metadata = _scores_metadata(context, asset_key(self.spec, IMPORTANCE_SCORES))
        status = str(_value(metadata, "most_harmful_lf_status") or "")
        if status != "determined":
            raise dg.Failure(
                "the per-LF table of the importance scores flags no labeling function "
                f"({status or 'no status'}: {_value(metadata, 'most_harmful_lf')}); name one with lf, "
                f"one of {list(self.labeling.lfs.names)}"
            )
        return str(_value(metadata, "most_harmful_lf"))

    def _checked(self, log, result: WhatIfResult, card: ModelCard) -> WhatIfResult:
        """Say when the unmodified retrain does not reproduce the model's own holdout accuracy."""
        again = result.before.evaluation.overall.get("accuracy") if result.before.evaluation else math.nan
        recorded = card.metrics.get("accuracy", math.nan)
        if not (math.isclose(again, recorded, abs_tol=1e-12) or (math.isnan(again) and math.isnan(recorded))):
            note = (
                f"the retrain with nothing removed scores accuracy {again:.4f}, the model "
                f"{recorded:.4f}: the pipeline is not reproducible under its seed. Before and after are "
                "both retrains of this run, so they compare like with like; the model's own figure differs"
            )
            log.warning(note)
            return dataclasses.replace(result, notes=(*result.notes, note))
        return result


def _curve_svg(result: WhatIfResult) -> str:
    """Change of the headline metric per step: the targeted removal, then the random draws' mean."""
    table = result.table()
    headline = table[table["metric"] == result.metrics[0]]
    labels, values = [], []
    for _, r in headline.iterrows():
        step = f"{int(r['removed_rows'])} rows ({r['share']:.1%})"
        labels += [f"{step} chosen", f"{step} random mean"]
        values += [r["change"], r["random_mean"] - r["before"]]
    return bar_chart_svg(labels, values, f"{result.metrics[0]} change after removal (red: a loss)")


def _log_run(
    tracking: MlflowTracking, card: ModelCard, result: WhatIfResult, run_tags: dict
) -> tuple[str, str]:
    """An MLflow run under the model's run: the figures per step (``step`` = rows removed) and the
    table; no model is logged, so nothing can be registered or promoted from it."""
    from mlflow.entities import Metric, Param

    client = tracking.client
    experiment_id = tracking.call(
        "for the model's run", lambda: client.get_run(card.mlflow_run_id)
    ).info.experiment_id
    tags = {
        PARENT_TAG: card.mlflow_run_id,
        WHAT_IF_OF_TAG: card.model_uri,
        "dcai.model_version": str(card.version),
        "dcai.promoted": "never: a what-if run logs no model",
        **run_tags,
    }
    run = tracking.call(
        "to start the what-if run",
        lambda: client.create_run(
            experiment_id, tags=tags, run_name=f"{card.model_name}-v{card.version}-what-if"
        ),
    )
    run_id = run.info.run_id
    try:
        now = int(pd.Timestamp.now(tz="UTC").timestamp() * 1000)
        metrics = []
        for _, r in result.table().iterrows():
            name, step = metric_name(r["metric"].replace("fairness: ", "fairness.")), int(r["removed_rows"])
            for column in ("before", "after", "random_mean", "random_sd", "random_min", "random_max"):
                if not math.isnan(r[column]):  # undetermined figures are left out, never logged as 0
                    metrics.append(Metric(f"{name}.{column}", float(r[column]), now, step))
        params = [
            Param("selection", result.selection[:500]),
            Param("train_rows", str(result.train_rows)),
            Param("holdout_rows", str(result.holdout_rows)),
            Param("random_draws", str(len(result.steps[0].random))),
            Param("removed_rows", ",".join(str(s.size) for s in result.steps)),
        ]
        for i in range(0, len(metrics), 900):
            batch = metrics[i : i + 900]
            tracking.call("to log the what-if figures", lambda b=batch: client.log_batch(run_id, metrics=b))
        tracking.call("to log the what-if settings", lambda: client.log_batch(run_id, params=params))
        text = result.markdown()
        tracking.call("to log the what-if table", lambda: client.log_text(run_id, text, "what_if.md"))
        tracking.call("to end the what-if run", lambda: client.set_terminated(run_id, "FINISHED"))
    except BaseException:
        tracking.call("to end the what-if run", lambda: client.set_terminated(run_id, "FAILED"))
        raise
    return run_id, experiment_id


def _metadata(
    result: WhatIfResult, card: ModelCard, run_id: str, removed: pd.DataFrame, spec: DatasetSpec
) -> dict:
    keys = spec.key_columns
    table = result.table()
    headline = table[table["metric"] == result.metrics[0]].iloc[-1]  # the largest step
    out = {
        "dagster/row_count": len(table),
        "model_uri": card.model_uri,
        "mlflow_run_id": run_id,
        "mlflow_parent_run_id": card.mlflow_run_id,
        "promoted": "never: what-if runs log no model, register no version and move no alias",
        "removed": result.selection,
        "train_rows": result.train_rows,
        "holdout_rows": result.holdout_rows,
        "random_draws": len(result.steps[0].random),
        "before_after": dg.MetadataValue.md(result.markdown()),
        "curve": dg.MetadataValue.md(svg_markdown(_curve_svg(result), "what-if curve")),
        "removed_rows_examples": examples_metadata(
            spec.privacy,
            removed,
            rows=10,
            render=lambda head: (
                _examples(head, [PARTITION, *keys, LABEL, LABEL_SOURCE, "importance"])
                + (f"\n\n{len(removed) - len(head)} more rows not shown" if len(removed) > len(head) else "")
            ),
            group_by=[PARTITION, LABEL_SOURCE],
            what="removed rows",
        ),
        "largest_step_rows": int(headline["removed_rows"]),
        "largest_step_verdict": headline["verdict"],
        "largest_step_flag": headline["flag"] or "none",
    }
    for column in ("before", "after", "random_mean", "random_sd"):  # numbers only when defined
        if not math.isnan(headline[column]):
            out[f"largest_step_{result.metrics[0]}_{column}"] = dg.MetadataValue.float(
                float(headline[column])
            )
    return out


def build_what_if_asset(
    spec: DatasetSpec, labeling: LabelingSpec, training: TrainingSpec, importance: ImportanceSpec
) -> dg.AssetsDefinition:
    """``<dataset>/what_if``: the before/after table of one what-if run (one row per step and figure)."""
    job = _WhatIf(spec, labeling, training, importance)

    @dg.asset(
        key=asset_key(spec, WHAT_IF),
        ins={
            "trained_model": dg.AssetIn(key=asset_key(spec, TRAINED_MODEL)),
            "importance_scores": dg.AssetIn(key=asset_key(spec, IMPORTANCE_SCORES)),
            "labeled": dg.AssetIn(
                key=asset_key(spec, LABELED_SET), metadata={"allow_missing_partitions": True}
            ),
        },
        group_name="importance",
        kinds={"scikitlearn", "mlflow"},
        owners=list(spec.owners),
        code_version="what-if-v1",
        description=(
            "What-if: the latest model retrained without its most harmful training rows (lowest "
            "KNN-Shapley value; a sweep over shares of the window) or without one labeling function's "
            "rows, against as many rows removed at random; accuracy and fairness before and after on "
            "its holdout. An MLflow run under the model's run, never promoted. On demand only."
        ),
    )
    def what_if_asset(
        context: dg.AssetExecutionContext,
        config: WhatIfConfig,
        trained_model: pd.DataFrame,
        importance_scores: pd.DataFrame,
        labeled: dict,
        mlflow_tracking: MlflowTracking,
    ) -> dg.Output[pd.DataFrame]:
        card = ModelCard.from_frame(trained_model)
        result, removed = job.run(context, config, card, importance_scores, labeled)
        run_id, _ = _log_run(
            mlflow_tracking, card, result,
            {"dagster.run_id": context.run.run_id, "dagster.asset_key": context.asset_key.to_user_string()},
        )  # fmt: skip
        context.log.info(f"what-if of {card.model_uri} (MLflow run {run_id}):\n{result.markdown()}")
        table = result.table()
        return dg.Output(
            table,
            data_version=dg.DataVersion(frame_digest(table)[:16]),
            metadata=_metadata(result, card, run_id, removed, spec),
        )

    return what_if_asset
