"""The MLflow side of a retrain: one run with params, metrics, the model (signature, explicit
pip requirements), the datasets and the lineage; then a registry version, the gate, the aliases.
Everything goes through an explicit ``MlflowClient``; mlflow is imported inside the functions."""

import contextlib
import json
import re
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dcai_assets.core.evaluation import Evaluation, GateVerdict, evaluate, gate
from dcai_assets.core.training import feature_window, final_estimator
from dcai_assets.spec import TrainingSpec
from dcai_assets.tracking import MlflowTracking

PARTITION_COLUMN = "_partition"

# MLflow's schema inference hints that integer columns cannot hold NaN; our signatures come from
# training data on purpose, so the hint is noise in every run log.
warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")


@dataclass
class Registered:
    """What one retrain left in MLflow."""

    run_id: str
    experiment_id: str
    version: str
    verdict: GateVerdict
    champion: Evaluation | None


def log_and_register(
    tracking: MlflowTracking,
    *,
    experiment: str,
    model_name: str,
    pipeline,
    train: pd.DataFrame,
    evaluation_rows: pd.DataFrame,
    features: list[str],
    challenger: Evaluation,
    importance: pd.Series,
    lineage: dict,
    training: TrainingSpec,
    classes: list[str],
    data_version: str,
    tags: dict[str, str],
    dataset: str,
) -> Registered:
    """Log the run (params, metrics, model, datasets, lineage), then register it as a new version
    with alias ``challenger``; the ``champion`` alias moves last, and only if the gate passes.
    If anything fails after the version is created, the version is deleted: nothing is left
    half-registered."""
    import mlflow
    import sklearn
    from mlflow.entities import DatasetInput, InputTag, Metric, Param
    from mlflow.models import infer_signature

    client = tracking.client
    experiment_id = tracking.experiment_id(experiment)
    tags = {
        **tags,
        "dcai.lf_set_version": lineage["lf_set_version"],
        "dcai.code_version": lineage["code_version"],
        "dcai.data_version": data_version,
        "dcai.train_partitions": feature_window(lineage["train_partitions"]),
        "dcai.holdout_partitions": ",".join(lineage["holdout_partitions"]),
        "dcai.partitions": _partitions_tag(lineage["partitions"]),
        "dcai.positive_class": challenger.positive_class or "none (per class, macro)",
        "dcai.evaluation": "determined" if challenger.determined else "undetermined",
    }
    run = tracking.call(
        "create_run", lambda: client.create_run(experiment_id, tags=tags, run_name=f"{model_name}-train")
    )
    run_id = run.info.run_id
    try:
        now = int(time.time() * 1000)
        params = [Param(k, str(v)[:500]) for k, v in pipeline.get_params(deep=False).items() if k != "steps"]
        params += [Param("features", ",".join(features)), Param("seed", str(training.seed))]
        params += [Param("estimator", type(final_estimator(pipeline)).__name__)]
        metrics = [
            Metric(metric_name(f"eval_{k}"), v, now, 0) for k, v in evaluation_metrics(challenger).items()
        ]
        metrics += [Metric(metric_name(f"importance_{k}"), float(v), now, 0) for k, v in importance.items()]
        tracking.call("log_batch", lambda: client.log_batch(run_id, metrics=metrics, params=params[:100]))
        inputs = [
            DatasetInput(
                dataset_entity(train[[*features, "label"]], f"{dataset}_train"),
                tags=[InputTag("mlflow.data.context", "training")],
            ),
            DatasetInput(
                dataset_entity(evaluation_rows[[*features, "label"]], f"{dataset}_eval"),
                tags=[InputTag("mlflow.data.context", "evaluation")],
            ),
        ]
        tracking.call("log_inputs", lambda: client.log_inputs(run_id, datasets=inputs))
        with tempfile.TemporaryDirectory() as tmp:
            sample = train[features].head(200)
            signature = infer_signature(sample, pipeline.predict(sample))
            requirements = [
                f"scikit-learn=={sklearn.__version__}",
                f"pandas=={pd.__version__}",
                f"numpy=={np.__version__}",
                *training.extra_pip_requirements,
            ]
            model_dir = Path(tmp) / "model"
            mlflow.sklearn.save_model(
                pipeline,
                model_dir,
                signature=signature,
                pip_requirements=requirements,
                # skops (MLflow's safe default) refuses types it does not know, e.g. the trees of
                # any tree model; this model was built here, so the types it holds are trusted.
                skops_trusted_types=[*_own_types(pipeline), *training.skops_trusted_types],
            )
            (Path(tmp) / "lineage.json").write_text(json.dumps(lineage, indent=1))
            challenger_table = challenger.table()
            challenger_table.to_csv(Path(tmp) / "evaluation.csv", index=False)
            tracking.call("log_artifacts", lambda: client.log_artifacts(run_id, str(model_dir), "model"))
            tracking.call(
                "log_artifact", lambda: client.log_artifact(run_id, str(Path(tmp) / "lineage.json"))
            )
            tracking.call(
                "log_artifact", lambda: client.log_artifact(run_id, str(Path(tmp) / "evaluation.csv"))
            )
        tracking.call("set_terminated", lambda: client.set_terminated(run_id, "FINISHED"))
    except Exception:
        with contextlib.suppress(Exception):  # the server may be the thing that failed
            client.set_terminated(run_id, "FAILED")
        raise

    tracking.ensure_registered_model(model_name)
    version = tracking.call(
        "create_model_version",
        lambda: client.create_model_version(
            model_name,
            source=f"runs:/{run_id}/model",
            run_id=run_id,
            tags={"dcai.data_version": data_version},
        ),
    ).version
    try:
        tracking.call(
            "set alias", lambda: client.set_registered_model_alias(model_name, "challenger", version)
        )
        champion_eval = None
        champion_version = tracking.call(
            "champion lookup", lambda: _alias_version(client, model_name, "champion")
        )
        if champion_version is not None:
            champion_eval = _evaluate_version(
                client, champion_version, evaluation_rows, features, classes, training
            )
        verdict = gate(challenger, champion_eval, training.gate)
        if champion_version is not None and champion_version.tags.get("dcai.data_version") == data_version:
            verdict.reasons.append(
                f"same inputs and code as champion version {champion_version.version} "
                f"(data version {data_version})"
            )
        client.set_model_version_tag(
            model_name, version, "dcai.gate", "passed" if verdict.promote else "failed"
        )
        client.set_model_version_tag(
            model_name, version, "dcai.gate_reasons", " | ".join(verdict.reasons)[:4900]
        )
        client.set_tag(run_id, "dcai.gate", "passed" if verdict.promote else "failed")
        if verdict.promote:  # which champion it replaced: a race would show two versions over one
            over = "none" if champion_version is None else str(champion_version.version)
            client.set_model_version_tag(model_name, version, "dcai.promoted_over", over)
            tracking.call(
                "set alias", lambda: client.set_registered_model_alias(model_name, "champion", version)
            )
    except Exception:
        # Nothing half-registered: the version goes, and with it the challenger alias.
        with contextlib.suppress(Exception):
            client.delete_model_version(model_name, version)
        raise
    return Registered(run_id, experiment_id, version, verdict, champion_eval)


def _own_types(model) -> list[str]:
    """The types skops would refuse in ``model``, serialised in this process."""
    import skops.io

    return list(skops.io.get_untrusted_types(data=skops.io.dumps(model)))


def _partitions_tag(partitions: dict[str, str], limit: int = 4800) -> str:
    """Partition -> data version as JSON, or a pointer to lineage.json when it is too long for a tag."""
    text = json.dumps(partitions, separators=(",", ":"))
    return text if len(text) <= limit else f"{len(partitions)} partitions: see the lineage.json artifact"


def dataset_entity(frame: pd.DataFrame, name: str, schema_rows: int = 1000):
    """An MLflow dataset (name, digest over all rows, profile) whose schema is inferred from a
    sample: MLflow's own inference walks every value of text columns (seconds on 300k rows)."""
    import mlflow
    from mlflow.entities import Dataset
    from mlflow.models import infer_signature

    frame = frame.reset_index(drop=True)
    ds = mlflow.data.from_pandas(frame, name=name, targets="label")
    schema = infer_signature(frame.head(schema_rows)).inputs
    config = ds.source.to_dict()
    return Dataset(
        name=ds.name,
        digest=ds.digest,
        source_type=ds.source._get_source_type(),
        source=json.dumps(config),
        schema=json.dumps({"mlflow_colspec": schema.to_dict()}),
        profile=json.dumps(ds.profile),
    )


def load_sklearn_model(client, run_id: str):
    """The scikit-learn model logged by run ``run_id``, through the explicit client."""
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        return mlflow.sklearn.load_model(client.download_artifacts(run_id, "model", tmp))


def _alias_version(client, model_name: str, alias: str):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(model_name, alias)
    except MlflowException as e:  # only "no such alias" means there is none; other errors are real
        if str(getattr(e, "error_code", "")) in {"INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST"}:
            return None
        raise


def _evaluate_version(client, version, rows: pd.DataFrame, features, classes, training) -> Evaluation:
    """The champion's metrics on the challenger's evaluation rows."""
    return evaluate_model(load_sklearn_model(client, version.run_id), rows, features, classes, training)


def evaluate_model(
    model, rows: pd.DataFrame, features: list[str], classes: list[str], training: TrainingSpec
) -> Evaluation:
    """A model's metrics on evaluation rows, with the training spec's slices, fairness column and
    positive class."""
    return evaluate(
        rows["label"].astype(str).to_numpy(),
        model.predict(rows[features]),
        rows,
        classes,
        partition_column=PARTITION_COLUMN,
        slices=training.slices,
        sensitive=training.sensitive,
        min_slice_rows=training.gate.min_slice_rows,
        positive_class=training.positive_class,
        min_class_rows=training.min_class_rows,
    )


def metric_name(name: str) -> str:
    """``name`` as an MLflow metric name (alphanumerics, ``_ - . /`` and spaces on every OS):
    ``precision:late`` becomes ``precision.late``."""
    return re.sub(r"[^\w.\- ]", "_", name.replace(":", ".")).replace("..", "._")


def evaluation_metrics(evaluation: Evaluation) -> dict[str, float]:
    """The figures of an evaluation that are defined, by name: overall metrics, and for every
    determined fairness gap its value and interval (``<gap>``, ``<gap>.ci_low``, ``<gap>.ci_high``;
    ``<gap>:<class>`` per class). NaN metrics and undetermined gaps are left out, not logged as 0."""
    out = {k: float(v) for k, v in evaluation.overall.items() if not np.isnan(v)}
    for name, gap in evaluation.fairness_gaps().items():
        if gap.determined:
            out[name] = float(gap.value)
            out[f"{name}.ci_low"] = float(gap.ci_low)
            out[f"{name}.ci_high"] = float(gap.ci_high)
    return out
