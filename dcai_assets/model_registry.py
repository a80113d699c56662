"""The MLflow side of a retrain: one run with params, metrics, the model (signature, explicit
pip requirements), the datasets and the lineage; then a registry version, the gate, the aliases.
Everything goes through an explicit ``MlflowClient``; mlflow is imported inside the functions."""

import contextlib
import datetime as dt
import json
import os
import re
import socket
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dcai_assets.core.columns import LABEL, PARTITION
from dcai_assets.core.evaluation import Evaluation, GateVerdict, evaluate, gate
from dcai_assets.core.privacy import small_groups_suppressed
from dcai_assets.core.registry_debris import (
    ABANDONED,
    FAILED,
    GATE_TAG,
    LOST_RACE,
    PASSED,
    PENDING,
    PROMOTED_AT_TAG,
    PROMOTED_OVER_TAG,
    SUPERSEDED_BY_TAG,
    Debris,
    RunState,
    VersionState,
    find_debris,
)
from dcai_assets.core.training import feature_window, final_estimator
from dcai_assets.spec import PrivacySpec, TrainingSpec
from dcai_assets.tracking import MlflowTracking

PARTITION_COLUMN = PARTITION  # kept for the callers that import it from here
PROCESS_TAG = "dcai.process"  # host:pid:start of the process that writes a retrain's run
MODEL_NAME_TAG = "dcai.model_name"

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
    outcome: str  # the final dcai.gate: passed, failed or lost_race


@dataclass
class Gated:
    """A registered version with its gate decided but not acted on: tagged ``dcai.gate=pending``,
    alias ``challenger``, its run RUNNING. :func:`promote` finishes it; :func:`abandon` gives it up.
    ``over`` is the champion version it was gated against (``"none"``)."""

    model_name: str
    run_id: str
    experiment_id: str
    version: str
    verdict: GateVerdict
    champion: Evaluation | None
    over: str


def log_and_register(tracking: MlflowTracking, **kwargs) -> Registered:
    """:func:`register_and_gate`, then at once :func:`promote` (for callers that store nothing in
    between)."""
    return promote(tracking, register_and_gate(tracking, **kwargs))


def register_and_gate(
    tracking: MlflowTracking,
    *,
    experiment: str,
    model_name: str,
    pipeline,
    train: pd.DataFrame,
    evaluation_rows: pd.DataFrame,
    features: list[str],
    challenger: Evaluation,
    feature_importance: pd.Series,
    lineage: dict,
    training: TrainingSpec,
    classes: list[str],
    data_version: str,
    tags: dict[str, str],
    dataset: str,
    privacy: PrivacySpec | None = None,
) -> Gated:
    """Log the run (params, metrics, model, datasets, lineage), register it as a new version tagged
    ``dcai.gate=pending`` with alias ``challenger``, gate it against the champion and write the
    reasons. Nothing moves ``champion`` here: :func:`promote` does, once the caller has stored what
    the retrain produced. If anything fails after the version is created, the version is deleted:
    nothing is left half-registered. A process killed in between leaves states
    :func:`reconcile_registry` repairs at the next retrain. In no-human-access mode (``privacy``)
    ``evaluation.csv`` leaves out slices and fairness groups of too few rows."""
    client = tracking.client
    experiment_id = tracking.experiment_id(experiment)
    tags = {**tags, **_run_tags(model_name, lineage, challenger, data_version)}
    run = tracking.call(
        "create_run", lambda: client.create_run(experiment_id, tags=tags, run_name=f"{model_name}-train")
    )
    run_id = run.info.run_id
    try:
        _log_run(tracking, run_id, pipeline, features, training, challenger, feature_importance)
        _log_inputs(tracking, run_id, train, evaluation_rows, features, dataset)
        private = privacy is not None and privacy.no_human_access
        shown = small_groups_suppressed(challenger, privacy.min_group_size) if private else challenger
        _log_artifacts(tracking, run_id, pipeline, train[features].head(200), training, lineage, shown)
        tracking.ensure_registered_model(model_name)
        version = tracking.call(
            "create_model_version",
            lambda: client.create_model_version(
                model_name,
                source=f"runs:/{run_id}/model",
                run_id=run_id,
                tags={"dcai.data_version": data_version, GATE_TAG: PENDING},
            ),
        ).version
    except Exception:
        with contextlib.suppress(Exception):  # the server may be the thing that failed
            client.set_terminated(run_id, "FAILED")
        raise
    try:
        verdict, champion_eval, over = _gate_version(
            tracking,
            model_name,
            version,
            evaluation_rows,
            features,
            classes,
            training,
            challenger,
            data_version,
        )
    except Exception:
        with contextlib.suppress(Exception):
            client.set_terminated(run_id, "FAILED")
        with contextlib.suppress(Exception):  # nothing half-registered: the version goes (and its
            # challenger alias); the champion alias cannot point at it, only promote() moves it
            client.delete_model_version(model_name, version)
        raise
    return Gated(model_name, run_id, experiment_id, version, verdict, champion_eval, over)


def _run_tags(model_name: str, lineage: dict, challenger: Evaluation, data_version: str) -> dict[str, str]:
    return {
        "dcai.lf_set_version": lineage["lf_set_version"],
        "dcai.code_version": lineage["code_version"],
        "dcai.data_version": data_version,
        "dcai.train_partitions": feature_window(lineage["train_partitions"]),
        "dcai.holdout_partitions": ",".join(lineage["holdout_partitions"]),
        "dcai.partitions": _partitions_tag(lineage["partitions"]),
        "dcai.positive_class": challenger.positive_class or "none (per class, macro)",
        "dcai.evaluation": "determined" if challenger.determined else "undetermined",
        MODEL_NAME_TAG: model_name,
        PROCESS_TAG: process_identity(),
    }


def _log_run(
    tracking: MlflowTracking,
    run_id: str,
    pipeline,
    features: list[str],
    training: TrainingSpec,
    challenger: Evaluation,
    feature_importance: pd.Series,
) -> None:
    """The run's params (the pipeline's, the features, the seed) and metrics (the evaluation's,
    and each feature's permutation importance)."""
    from mlflow.entities import Metric, Param

    now = int(time.time() * 1000)
    params = [Param(k, str(v)[:500]) for k, v in pipeline.get_params(deep=False).items() if k != "steps"]
    params += [Param("features", ",".join(features)), Param("seed", str(training.seed))]
    params += [Param("estimator", type(final_estimator(pipeline)).__name__)]
    metrics = [Metric(metric_name(f"eval_{k}"), v, now, 0) for k, v in evaluation_metrics(challenger).items()]
    metrics += [
        Metric(metric_name(f"importance_{k}"), float(v), now, 0) for k, v in feature_importance.items()
    ]
    tracking.call(
        "log_batch", lambda: tracking.client.log_batch(run_id, metrics=metrics, params=params[:100])
    )


def _log_inputs(
    tracking: MlflowTracking,
    run_id: str,
    train: pd.DataFrame,
    evaluation_rows: pd.DataFrame,
    features: list[str],
    dataset: str,
) -> None:
    from mlflow.entities import DatasetInput, InputTag

    inputs = [
        DatasetInput(
            dataset_entity(train[[*features, LABEL]], f"{dataset}_train"),
            tags=[InputTag("mlflow.data.context", "training")],
        ),
        DatasetInput(
            dataset_entity(evaluation_rows[[*features, LABEL]], f"{dataset}_eval"),
            tags=[InputTag("mlflow.data.context", "evaluation")],
        ),
    ]
    tracking.call("log_inputs", lambda: tracking.client.log_inputs(run_id, datasets=inputs))


def _log_artifacts(
    tracking: MlflowTracking,
    run_id: str,
    pipeline,
    sample: pd.DataFrame,
    training: TrainingSpec,
    lineage: dict,
    challenger: Evaluation,
) -> None:
    """The model (signature, explicit pip requirements), ``lineage.json`` and ``evaluation.csv``."""
    import mlflow
    import sklearn
    from mlflow.models import infer_signature

    client = tracking.client
    with tempfile.TemporaryDirectory() as tmp:
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
        challenger.table().to_csv(Path(tmp) / "evaluation.csv", index=False)
        tracking.call("log_artifacts", lambda: client.log_artifacts(run_id, str(model_dir), "model"))
        for name in ("lineage.json", "evaluation.csv"):
            tracking.call(
                "log_artifact", lambda name=name: client.log_artifact(run_id, str(Path(tmp) / name))
            )


def _gate_version(
    tracking: MlflowTracking,
    model_name: str,
    version: str,
    evaluation_rows: pd.DataFrame,
    features: list[str],
    classes: list[str],
    training: TrainingSpec,
    challenger: Evaluation,
    data_version: str,
) -> tuple[GateVerdict, Evaluation | None, str]:
    """Alias the version ``challenger``, gate it against the champion on the same rows, and tag
    the reasons; the verdict, the champion's evaluation and the champion version (``"none"``)."""
    client = tracking.client
    tracking.call("set alias", lambda: client.set_registered_model_alias(model_name, "challenger", version))
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
    client.set_model_version_tag(model_name, version, "dcai.gate_reasons", " | ".join(verdict.reasons)[:4900])
    return verdict, champion_eval, "none" if champion_version is None else str(champion_version.version)


def promote(tracking: MlflowTracking, gated: Gated) -> Registered:
    """Act on the gate decision of :func:`register_and_gate`: on a pass move ``champion`` (under
    the promotion lock, only if it still points at the version gated against), then write the
    final verdict and end the run FINISHED. ``dcai.gate=passed`` is written only after the alias
    moved. If this fails (the tracking server went away), the version is given up with
    :func:`abandon` as far as the server allows; what it does not allow, the next registry step
    reconciles (a version without a verdict, or ``passed`` and never champion, becomes
    ``abandoned``)."""
    client = tracking.client
    model_name, version, verdict = gated.model_name, gated.version, gated.verdict
    reasons_before = list(verdict.reasons)
    try:
        outcome = PASSED if verdict.promote else FAILED
        if verdict.promote:
            outcome = _promote(tracking, model_name, version, gated.over, verdict.reasons)
            verdict.promote = outcome == PASSED
        if verdict.reasons != reasons_before:
            client.set_model_version_tag(
                model_name, version, "dcai.gate_reasons", " | ".join(verdict.reasons)[:4900]
            )
        client.set_model_version_tag(model_name, version, GATE_TAG, outcome)
        client.set_tag(gated.run_id, GATE_TAG, outcome)
        tracking.call("set_terminated", lambda: client.set_terminated(gated.run_id, "FINISHED"))
    except Exception as e:
        try:
            champion_now = _alias_version(client, model_name, "champion")
        except Exception:  # unknown whether the alias moved: left to the next reconciliation
            with contextlib.suppress(Exception):
                client.set_terminated(gated.run_id, "FAILED")
            raise e from None
        if champion_now is None or str(champion_now.version) != str(version):
            abandon(tracking, gated, f"the promotion failed before the champion moved: {e}")
        else:  # the alias moved: it is the champion, whatever was not written after
            with contextlib.suppress(Exception):
                client.set_model_version_tag(model_name, version, GATE_TAG, PASSED)
            with contextlib.suppress(Exception):
                client.set_terminated(gated.run_id, "FAILED")
        raise
    return Registered(gated.run_id, gated.experiment_id, version, verdict, gated.champion, outcome)


def abandon(tracking: MlflowTracking, gated: Gated, reason: str) -> None:
    """Give up a gated version that will not be promoted (e.g. its model card could not be
    stored): ``dcai.gate=abandoned`` with the reason, its run FAILED. Best effort: the tracking
    server may be what failed; the next registry step reconciles what is left."""
    client = tracking.client
    at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    for key, value in {"dcai.abandoned_reason": f"{reason} ({at})"[:4900], GATE_TAG: ABANDONED}.items():
        with contextlib.suppress(Exception):
            client.set_model_version_tag(gated.model_name, gated.version, key, value)
    with contextlib.suppress(Exception):
        client.set_tag(gated.run_id, GATE_TAG, ABANDONED)
    with contextlib.suppress(Exception):
        client.set_terminated(gated.run_id, "FAILED")


def _promote(tracking: MlflowTracking, model_name: str, version: str, over: str, reasons: list[str]) -> str:
    """Move ``champion`` to ``version`` if it still points at ``over`` (the version it was gated
    against), under the promotion lock; tag the replaced champion. Returns the verdict.

    The registry step runs in a pool of limit 1; the lock makes the move safe where that pool is
    not configured: of two retrains gated against the same champion, the first to move the alias
    wins and the other lost the race (it is not compared with the new champion)."""
    client = tracking.client
    with promotion_lock(tracking, model_name):
        found = tracking.call("champion lookup", lambda: _alias_version(client, model_name, "champion"))
        now = "none" if found is None else str(found.version)
        if now != over:
            reasons.append(
                f"not promoted: passed its gate against champion {over}, but a concurrent retrain moved "
                f"the champion to version {now} first; the next retrain is gated against it"
            )
            return LOST_RACE
        client.set_model_version_tag(model_name, version, PROMOTED_OVER_TAG, over)
        tracking.call("set alias", lambda: client.set_registered_model_alias(model_name, "champion", version))
    client.set_model_version_tag(model_name, version, PROMOTED_AT_TAG, dt.datetime.now(dt.UTC).isoformat())
    if over != "none":
        with contextlib.suppress(Exception):  # a missing pointer is recovered from promoted_over
            client.set_model_version_tag(model_name, over, SUPERSEDED_BY_TAG, str(version))
    return PASSED


LOCK_SUFFIX = ".promotion-lock"


@contextlib.contextmanager
def promotion_lock(
    tracking: MlflowTracking, model_name: str, *, wait_seconds: float = 60.0, stale_seconds: float = 60.0
):
    """Hold ``<model_name>.promotion-lock``, a registered model with no versions that exists only
    while a retrain moves the champion alias (milliseconds): creating a registered model is the one
    atomic test-and-set every MLflow store offers. A lock whose holder died (its process is gone,
    or on another host it is older than ``stale_seconds``) is broken."""
    from mlflow.exceptions import MlflowException

    client = tracking.client
    name = f"{model_name}{LOCK_SUFFIX}"
    me = process_identity()
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            client.create_registered_model(
                name,
                tags={PROCESS_TAG: me},
                description=f"held while a retrain moves the champion alias of {model_name}; deleted after",
            )
            break
        except MlflowException as e:
            if "RESOURCE_ALREADY_EXISTS" not in str(e.error_code):
                raise
        try:
            held = client.get_registered_model(name)
        except MlflowException:
            continue  # released in between
        holder = held.tags.get(PROCESS_TAG, "")
        if holder == me:  # our create went through but its answer was lost
            break
        age = time.time() - held.creation_timestamp / 1000
        alive = _process_alive(holder) if holder else None
        if alive is False or (alive is None and age > stale_seconds):
            with contextlib.suppress(MlflowException):
                client.delete_registered_model(name)
            continue
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"the promotion lock {name!r} has been held by {holder or 'an unknown process'} for "
                f"{age:.0f} s; expected it released within {wait_seconds:.0f} s. Delete that registered "
                "model if its holder is gone"
            )
        time.sleep(0.05)
    try:
        yield
    finally:
        with contextlib.suppress(MlflowException):
            client.delete_registered_model(name)


def process_identity() -> str:
    """``host:pid:start`` of this process; the start time (Linux) tells a reused pid apart."""
    return f"{socket.gethostname()}:{os.getpid()}:{_process_start(os.getpid()) or ''}"


def _process_start(pid: int) -> str | None:
    """The start time of ``pid`` in clock ticks since boot (Linux), None elsewhere or if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _process_alive(identity: str) -> bool | None:
    """Whether the process named by a ``dcai.process`` tag runs; None when it is on another host."""
    host, _, rest = identity.partition(":")
    pid_text, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return True  # not Linux: the pid exists
    if state[0] in {"Z", "X"}:  # killed, not yet reaped
        return False
    return not start or state[19] == start


def _owner_alive(tags: dict, dagster_run_active: Callable[[str], bool | None] | None) -> bool | None:
    """Whether the retrain that wrote a run is alive: not if its Dagster run has ended (an
    in-process run's process outlives it), else its process on this host, else its Dagster run's
    status; None when neither can tell."""
    run_id = tags.get("dagster.run_id")
    active = dagster_run_active(run_id) if run_id and dagster_run_active is not None else None
    if active is False:
        return False
    if PROCESS_TAG in tags:
        alive = _process_alive(tags[PROCESS_TAG])
        if alive is not None:
            return alive
    return active


@dataclass
class Reconciled:
    """What :func:`reconcile_registry` found and repaired."""

    debris: Debris
    checked_versions: int
    checked_runs: int

    def metadata(self) -> dict[str, int]:
        return {
            "reconciled_versions": len(self.debris.versions),
            "reconciled_runs": len(self.debris.runs),
            "running_runs_left_alone": len(self.debris.undetermined_runs),
        }

    def lines(self) -> list[str]:
        """One log line per repair."""
        out = [
            f"registry: version {f.version} (dcai.gate={f.found}) -> dcai.gate={f.verdict}: {f.reason}"
            for f in self.debris.versions
        ]
        out += [f"registry: MLflow run {f.run_id} -> KILLED: {f.reason}" for f in self.debris.runs]
        out += [
            f"registry: MLflow run {r} is RUNNING and its owner cannot be checked from here; left alone"
            for r in self.debris.undetermined_runs
        ]
        return out


def reconcile_registry(
    tracking: MlflowTracking,
    *,
    experiment: str,
    model_name: str,
    dagster_run_active: Callable[[str], bool | None] | None = None,
    by: str = "",
) -> Reconciled:
    """Repair what killed retrains of ``model_name`` left (see
    :func:`dcai_assets.core.registry_debris.find_debris`): give versions a verdict
    (``dcai.gate=abandoned`` with ``dcai.reconciled_reason`` and ``dcai.reconciled_at``), and end
    RUNNING runs whose process is gone as KILLED. Run it in the registry step, before registering.

    ``dagster_run_active(run_id)`` says whether a Dagster run is still in progress (None if
    unknown); it decides for runs written on another host."""
    from mlflow.exceptions import MlflowException

    client = tracking.client
    try:
        tracking.call("registered model lookup", lambda: client.get_registered_model(model_name))
    except MlflowException as e:
        if "RESOURCE_DOES_NOT_EXIST" not in str(e.error_code):
            raise
        found_versions = []
    else:
        found_versions = _all_versions(tracking, model_name)
    experiment_id = tracking.experiment_id(experiment)
    running = tracking.call(
        "search runs",
        lambda: client.search_runs(
            [experiment_id],
            filter_string=f"attributes.status = 'RUNNING' and attributes.run_name = '{model_name}-train'",
            max_results=1000,
        ),
    )
    champion = tracking.call("champion lookup", lambda: _alias_version(client, model_name, "champion"))
    champion = None if champion is None else str(champion.version)
    runs = {
        r.info.run_id: RunState(r.info.run_id, r.info.status, _owner_alive(r.data.tags, dagster_run_active))
        for r in running
    }
    versions = [VersionState(str(v.version), v.run_id, dict(v.tags)) for v in found_versions]
    for v in versions:  # the runs of versions without a final verdict: still gating them, or dead?
        if v.run_id and v.run_id not in runs and v.tags.get(GATE_TAG) in (None, PENDING):
            with contextlib.suppress(MlflowException):  # a deleted run: its version is abandoned
                r = tracking.call("get run", lambda rid=v.run_id: client.get_run(rid))
                runs[v.run_id] = RunState(
                    v.run_id, r.info.status, _owner_alive(r.data.tags, dagster_run_active)
                )
    debris = find_debris(versions, list(runs.values()), champion)
    at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    for fix in debris.versions:
        for key, value in {
            GATE_TAG: fix.verdict,
            "dcai.reconciled_reason": fix.reason,
            "dcai.reconciled_at": at + (f" by Dagster run {by}" if by else ""),
            "dcai.gate_before_reconcile": fix.found,
        }.items():
            tracking.call(
                "reconcile version",
                lambda k=key, x=value, v=fix.version: client.set_model_version_tag(model_name, v, k, x),
            )
        if fix.run_id:
            with contextlib.suppress(MlflowException):
                client.set_tag(fix.run_id, GATE_TAG, fix.verdict)
    for fix in debris.runs:
        with contextlib.suppress(MlflowException):
            client.set_tag(fix.run_id, "dcai.reconciled_reason", f"{fix.reason} ({at})")
        tracking.call("end run", lambda rid=fix.run_id: client.set_terminated(rid, "KILLED"))
    return Reconciled(debris, len(versions), len(runs))


def _all_versions(tracking: MlflowTracking, model_name: str) -> list:
    out, token = [], None
    while True:
        page = tracking.call(
            "search model versions",
            lambda t=token: tracking.client.search_model_versions(f"name='{model_name}'", page_token=t),
        )
        out += list(page)
        token = page.token
        if not token:
            return out


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
    ds = mlflow.data.from_pandas(frame, name=name, targets=LABEL)
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
        rows[LABEL].astype(str).to_numpy(),
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
