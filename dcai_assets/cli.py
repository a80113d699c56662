"""Command line: ``dcai-assets schema infer <module>:<SPEC>`` regenerates a dataset's schema file;
``dcai-assets lineage model NAME VERSION`` says what made a model version, and
``dcai-assets lineage partition KEY`` which model versions used a partition;
``dcai-assets partitions add|sync|list <module>:<SPEC>`` registers and lists a dataset's
partitions on the Dagster instance of ``$DAGSTER_HOME``; ``dcai-assets what-if <definitions>
DATASET`` retrains the latest model without its most harmful rows (or one LF's rows) beside
random removals, on that instance, and prints before and after."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from dcai_assets.assets.raw import load_raw_partition
from dcai_assets.core.schema_inference import infer_schema, undetermined_columns
from dcai_assets.spec import DatasetSpec


def load_spec(target: str) -> DatasetSpec:
    """Import ``module:ATTRIBUTE`` and check that it is a DatasetSpec, or read a pipeline's
    ``defs.yaml`` (``DataCentricPipeline`` component)."""
    if target.endswith((".yaml", ".yml")):
        from dcai_assets.components.loading import load_specs

        try:
            return load_specs(target).dataset
        except ValueError as e:
            raise SystemExit(str(e)) from e
    module_name, _, attr = target.partition(":")
    if not attr:
        raise SystemExit(
            f"spec {target!r}: expected <module>:<SPEC>, e.g. my_project.datasets:ORDERS, or a defs.yaml"
        )
    if os.getcwd() not in sys.path:  # like `python -m`: modules are found from the current directory
        sys.path.insert(0, os.getcwd())
    spec = getattr(importlib.import_module(module_name), attr, None)
    if not isinstance(spec, DatasetSpec):
        raise SystemExit(f"{target!r} is {type(spec).__name__}; expected a dcai_assets.DatasetSpec")
    return spec


def reference_frames(spec: DatasetSpec) -> dict[str, pd.DataFrame]:
    """The spec's reference window, read from its callable or from its source by partition key."""
    if spec.reference is None:
        raise SystemExit(f"spec {spec.name!r} has no reference window; set DatasetSpec.reference")
    if callable(spec.reference):
        return dict(spec.reference())
    from tqdm import tqdm

    return {
        k: load_raw_partition(spec, k, text_columns=None)[0]
        for k in tqdm(list(spec.reference), desc="reading reference")
    }


def reference_spans(spec: DatasetSpec, keys: list[str]) -> dict[str, float] | None:
    """Days each reference partition covers, when the spec's partitions are time windows and
    every key is one of them; None otherwise (row-count bounds are then per partition)."""
    from dcai_assets.assets.validated import partition_span_days
    from dcai_assets.partitions import partitions_def

    pdef = partitions_def(spec)
    spans = {k: partition_span_days(pdef, k) for k in keys}
    return None if any(v is None for v in spans.values()) else spans


def infer_command(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec)
    frames = reference_frames(spec)
    spans = reference_spans(spec, list(frames))
    try:
        schema = infer_schema(
            frames, key=spec.key_columns, label=spec.label, spans=spans, overrides=spec.schema_overrides
        )
    except ValueError as e:
        raise SystemExit(f"spec {args.spec!r}: {e}") from e
    out = Path(args.out or spec.schema_path)
    schema.save(out)
    print(f"wrote {out}: {len(schema.columns)} columns, {schema.note}")
    low, high = schema.row_bounds()
    per_day = (
        f", {schema.min_rows_per_day:g}–{schema.max_rows_per_day:g} rows per day"
        if schema.min_rows_per_day is not None and schema.max_rows_per_day is not None
        else ""
    )
    print(f"  rows: {low:,}–{high:,} per partition{per_day} ({schema.row_count_enforce})")
    for c in schema.columns:
        how = {r: c.enforcement(r) for r in ("allowed_values", "min", "max")}
        extra = f" values={len(c.allowed_values)}({how['allowed_values']})" if c.allowed_values else ""
        bounds = ""
        if c.min is not None and c.max is not None:
            bounds = f" range=[{c.min:g}, {c.max:g}]({how['min']}/{how['max']})"
        drift = f" drift<={c.drift_threshold}" if c.reference is not None else " not drift-checked"
        print(f"  {c.name:<24} {c.dtype:<9} nulls<={c.max_null_fraction:<6g}{bounds}{extra}{drift}")
    for name in undetermined_columns(pd.concat(frames.values(), ignore_index=True), spec.schema_overrides):
        print(
            f"  warning: `{name}` has no value in the reference window: its dtype is a guess "
            f"(string); declare it, e.g. schema_overrides={{{name!r}: {{'dtype': 'float64'}}}}"
        )
    return 0


def _tracking_client(args: argparse.Namespace):
    uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise SystemExit("no MLflow tracking URI: pass --tracking-uri or set MLFLOW_TRACKING_URI")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one small JSON file
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def lineage_model_command(args: argparse.Namespace) -> int:
    from dcai_assets.lineage import model_lineage

    try:
        lineage = model_lineage(_tracking_client(args), args.name, args.version)
    except LookupError as e:
        raise SystemExit(str(e)) from e
    print(json.dumps(asdict(lineage), indent=1) if args.json else lineage.markdown())
    return 0


def lineage_partition_command(args: argparse.Namespace) -> int:
    from dcai_assets.lineage import models_using_partition

    found = models_using_partition(_tracking_client(args), args.partition, args.model)
    if args.json:
        print(json.dumps([asdict(m) | {"role": m.role_of(args.partition)} for m in found], indent=1))
        return 0
    if not found:
        print(f"no registered model version used partition {args.partition}")
        return 0
    print(f"{len(found)} model versions used partition {args.partition}:")
    print("| model | version | aliases | role | labeled-set data version | MLflow run |")
    print("|---|---|---|---|---|---|")
    for m in found:
        aliases = ", ".join(m.aliases) or "-"
        row = [m.model_name, m.version, aliases, m.role_of(args.partition), m.partitions.get(args.partition)]
        print("| " + " | ".join(str(c) for c in row) + f" | {m.run_id} |")
    return 0


def _instance():
    import dagster as dg

    if not os.environ.get("DAGSTER_HOME"):
        raise SystemExit(
            "DAGSTER_HOME is not set; expected the directory of the Dagster instance to register the "
            "partitions on (the one `dagster dev` and `dagster asset materialize` use)"
        )
    return dg.DagsterInstance.get()


def _register(spec: DatasetSpec, keys: list[str]) -> int:
    from dcai_assets.errors import DataInputError
    from dcai_assets.partitions import dynamic_partitions_name, register_partitions

    try:
        with _instance() as instance:
            new = register_partitions(instance, spec, keys)
    except (ValueError, DataInputError) as e:
        raise SystemExit(str(e)) from e
    print(
        f"registered {len(new)} new partitions of {spec.name} ({dynamic_partitions_name(spec)}); "
        f"{len(keys) - len(new)} were already registered"
    )
    for key in new:
        print(f"  + {key}")
    return 0


def partitions_add_command(args: argparse.Namespace) -> int:
    return _register(load_spec(args.spec), list(args.keys))


def partitions_sync_command(args: argparse.Namespace) -> int:
    from dcai_assets.sensors import discover_partition_keys

    spec = load_spec(args.spec)
    keys, problems = discover_partition_keys(spec)
    for problem in problems:
        print(f"skipped: {problem}", file=sys.stderr)
    return _register(spec, keys)


def partitions_list_command(args: argparse.Namespace) -> int:
    from dcai_assets.partitions import partitions_def
    from dcai_assets.spec import partition_order

    spec = load_spec(args.spec)
    with _instance() as instance:
        keys = partitions_def(spec).get_partition_keys(dynamic_partitions_store=instance)
    for key in partition_order(keys, spec.partitioning):
        print(key)
    return 0


def load_definitions(target: str):
    """The Dagster Definitions of ``<module>[:<attribute>]`` (attribute ``defs`` by default), or
    those a ``DataCentricPipeline`` ``defs.yaml`` builds."""
    import dagster as dg

    if target.endswith((".yaml", ".yml")):
        from dcai_assets.components.loading import load_pipeline

        try:
            component, context = load_pipeline(target)
        except ValueError as e:
            raise SystemExit(str(e)) from e
        return component.build_defs(context)
    module_name, _, attr = target.partition(":")
    if os.getcwd() not in sys.path:  # like `python -m`: modules are found from the current directory
        sys.path.insert(0, os.getcwd())
    defs = getattr(importlib.import_module(module_name), attr or "defs", None)
    if not isinstance(defs, dg.Definitions):
        raise SystemExit(
            f"{target!r} is {type(defs).__name__}; expected dagster Definitions, as <module>[:<attribute>] "
            "(attribute defs by default, e.g. jobs.definitions), or a pipeline's defs.yaml"
        )
    return defs


def what_if_command(args: argparse.Namespace) -> int:
    import dagster as dg

    from dcai_assets.assets.what_if import WHAT_IF

    defs = load_definitions(args.definitions)
    job_name = f"{args.dataset}_what_if"  # definitions.what_if_job_name of the dataset's spec
    try:
        job = defs.resolve_job_def(job_name)
    except dg.DagsterInvariantViolationError:
        raise SystemExit(
            f"{args.definitions!r} has no job {job_name!r}; expected a dataset built with importance scores "
            f"(ImportanceSpec), named {args.dataset!r}"
        ) from None
    given = {
        "rows": args.rows,
        "fractions": args.fractions,
        "lf": args.lf,
        "random_repeats": args.random_repeats,
    }
    config = {k: v for k, v in given.items() if v is not None}
    op = "__".join([args.dataset, WHAT_IF])
    with _instance() as instance:
        result = job.execute_in_process(
            instance=instance, raise_on_error=False, run_config={"ops": {op: {"config": config}}}
        )
    if not result.success:
        failures = result.get_step_failure_events()
        error = failures[0].step_failure_data.error if failures else None
        message = (error.cause or error).message.strip() if error else "the run failed before its step"
        raise SystemExit(f"what-if of {args.dataset} failed (Dagster run {result.run_id}): {message}")
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    print(f"what-if of {metadata['model_uri'].value} (Dagster run {result.run_id})\n")
    print(metadata["before_after"].value)
    print(
        f"\nMLflow run {metadata['mlflow_run_id'].value}, under the model's run "
        f"{metadata['mlflow_parent_run_id'].value}: nothing registered, no alias moved."
    )
    return 0


_PARTITIONS_HELP = """Dynamic partitions exist only once registered: the landing sensor registers each
file it sees, but `dagster asset materialize --partition KEY` fails with "must have a
PartitionsDefinition containing the passed partition key" for a key not registered yet (the UI
offers registered keys only). Register it first with
`dcai-assets partitions add <module>:<SPEC> KEY`, or every key the source holds with
`dcai-assets partitions sync <module>:<SPEC>`. Both use the instance in $DAGSTER_HOME."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dcai-assets", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    schema = commands.add_parser("schema", help="schema as code").add_subparsers(dest="action", required=True)
    infer = schema.add_parser("infer", help="infer the schema from the spec's reference window")
    infer.add_argument(
        "spec", help="<module>:<SPEC>, e.g. my_project.datasets:ORDERS, or a pipeline's defs.yaml"
    )
    infer.add_argument("--out", help="write here instead of the spec's schema_path")
    infer.set_defaults(func=infer_command)
    lineage = commands.add_parser(
        "lineage", help="what made a model version; which versions used a partition"
    )
    which = lineage.add_subparsers(dest="action", required=True)
    model = which.add_parser("model", help="partitions, data versions, LF set, code and run of a version")
    model.add_argument("name", help="registered model name")
    model.add_argument("version", help="registered model version")
    partition = which.add_parser("partition", help="registered model versions that used a partition")
    partition.add_argument("partition", help="partition key, e.g. 2024-01-31")
    partition.add_argument("--model", help="only this registered model (default: all)")
    for sub in (model, partition):
        sub.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI)")
        sub.add_argument("--json", action="store_true", help="print JSON instead of tables")
    model.set_defaults(func=lineage_model_command)
    partition.set_defaults(func=lineage_partition_command)
    partitions = commands.add_parser(
        "partitions",
        help="register dynamic partitions (before `dagster asset materialize --partition`), list them",
        description=_PARTITIONS_HELP,
    ).add_subparsers(dest="action", required=True)
    add = partitions.add_parser(
        "add", help="register partition keys of a dynamic dataset", description=_PARTITIONS_HELP
    )
    add.add_argument("spec", help="<module>:<SPEC>, e.g. my_project.datasets:ORDERS")
    add.add_argument("keys", nargs="+", metavar="KEY", help="partition keys, e.g. batch_7 2024-05")
    add.set_defaults(func=partitions_add_command)
    sync = partitions.add_parser(
        "sync",
        help="register every key the source holds (landing files, or list_partitions)",
        description=_PARTITIONS_HELP,
    )
    sync.add_argument("spec", help="<module>:<SPEC>, e.g. my_project.datasets:ORDERS")
    sync.set_defaults(func=partitions_sync_command)
    listing = partitions.add_parser(
        "list", help="the dataset's partitions, oldest first (the order the model uses)"
    )
    listing.add_argument("spec", help="<module>:<SPEC>, e.g. my_project.datasets:ORDERS")
    listing.set_defaults(func=partitions_list_command)
    what_if = commands.add_parser(
        "what-if",
        help="retrain without the most harmful rows (or an LF's rows) beside random removals; never promoted",
        description="Materializes <DATASET>/what_if on the Dagster instance of $DAGSTER_HOME and prints "
        "accuracy and fairness before and after each step, beside as many rows removed at random. By "
        "default the sweep of the spec (WhatIfSpec.fractions of the training rows, lowest KNN-Shapley "
        "value first). Needs the importance scores of the latest model.",
    )
    what_if.add_argument(
        "definitions",
        help="<module>[:<attribute>] holding the Definitions (e.g. jobs.definitions), or a defs.yaml",
    )
    what_if.add_argument("dataset", help="the dataset's name (its asset-key prefix), e.g. orders")
    pick = what_if.add_mutually_exclusive_group()
    pick.add_argument("--rows", type=int, help="remove this many of the most harmful rows (one step)")
    pick.add_argument(
        "--fractions", type=float, nargs="+", help="shares of the training rows, e.g. 0.01 0.05"
    )
    pick.add_argument(
        "--lf", help="remove every row this labeling function voted on; 'flagged': the per-LF table's"
    )
    what_if.add_argument("--random-repeats", type=int, help="random removals per step (default: the spec's)")
    what_if.set_defaults(func=what_if_command)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
