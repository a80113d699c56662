"""A ``defs.yaml`` of a :class:`DataCentricPipeline` loaded outside ``dg``: by the command line
(``dcai-assets schema infer path/to/defs.yaml``) and by tests."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import yaml
from dagster._check import CheckError
from dagster.components.core.component_tree import ComponentTree

from dcai_assets.components.pipeline import DataCentricPipeline
from dcai_assets.components.to_spec import PipelineSpecs

TYPE_NAMES = ("dcai_assets.components.DataCentricPipeline", "dcai_assets.DataCentricPipeline")


def load_pipeline(defs_yaml: str | Path) -> tuple[DataCentricPipeline, dg.ComponentLoadContext]:
    """The component a ``defs.yaml`` declares and its load context, rendered as ``dg`` would:
    inside a ``dg`` project its root is ``context.project_root``; elsewhere the working directory."""
    path = Path(defs_yaml).resolve()
    if not path.is_file():
        raise ValueError(f"defs.yaml {str(defs_yaml)!r}: no such file; expected a component's defs.yaml")
    document = yaml.safe_load(path.read_text())
    if not isinstance(document, dict) or document.get("type") not in TYPE_NAMES:
        found = document.get("type") if isinstance(document, dict) else type(document).__name__
        raise ValueError(f"{path}: type {found!r}; expected a defs.yaml of type {TYPE_NAMES[0]}")
    try:
        tree = ComponentTree.for_project(path.parent)
    except (dg.DagsterError, CheckError):  # not inside a dg project
        tree = ComponentTree.for_test()
    context = tree.load_context.for_path(path.parent)
    model = DataCentricPipeline.get_model_cls().model_validate(document.get("attributes") or {})
    return DataCentricPipeline.load(model, context), context


def load_specs(defs_yaml: str | Path) -> PipelineSpecs:
    """The Python spec objects a ``defs.yaml`` stands for."""
    component, context = load_pipeline(defs_yaml)
    return component.specs(context.path)
