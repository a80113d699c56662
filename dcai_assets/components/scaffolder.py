"""``dg scaffold defs dcai_assets.components.DataCentricPipeline <path>``: a ``defs.yaml`` that
loads as it is, plus the two Python hooks it names (labeling functions and a model factory) as
stubs to edit. The templates live in :mod:`dcai_assets.components.templates`."""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
from pydantic import Field

from dcai_assets.components import templates


class ScaffoldParams(dg.Model):
    """Options of ``dg scaffold defs dcai_assets.components.DataCentricPipeline <path>``."""

    landing_directory: str | None = Field(
        None,
        description="where partition files land; relative to the project root (default data/landing/<name>)",
    )
    start: str = Field("2024-01-01", description="the first daily partition, YYYY-MM-DD")


def landing_attribute(landing_directory: str | None, name: str) -> str:
    """The defs.yaml value for the landing folder: a relative path given on the command line is
    the project root's (where ``dg`` runs), written as such since the YAML's paths are its folder's."""
    path = landing_directory or f"data/landing/{name}"
    if Path(path).is_absolute() or path.startswith("{{"):
        return path
    return "{{ context.project_root }}/" + path


def hook_module(target: Path, project_root: Path | None) -> str:
    """The dotted module name of the folder ``target`` (under ``src/`` when the project has one)."""
    target = target.resolve()
    roots = [] if project_root is None else [project_root.resolve() / "src", project_root.resolve()]
    for root in roots:
        if target.is_relative_to(root) and target != root:
            parts = target.relative_to(root).parts
            if all(p.isidentifier() for p in parts):
                return ".".join(parts)
    raise ValueError(
        f"scaffold target {target.name!r}: the folder path {target} is not an importable module under "
        "the project (expected folder names that are Python identifiers, e.g. my_pipeline)"
    )


class DataCentricPipelineScaffolder(dg.Scaffolder[ScaffoldParams]):
    @classmethod
    def get_scaffold_params(cls) -> type[ScaffoldParams]:
        return ScaffoldParams

    def scaffold(self, request: dg.ScaffoldRequest[ScaffoldParams]) -> None:
        target = Path(request.target_path)
        target.mkdir(parents=True, exist_ok=True)
        module = hook_module(target, request.project_root)
        name = re.sub(r"\W", "_", target.name)
        params = request.params or ScaffoldParams()
        landing = landing_attribute(params.landing_directory, name)
        (target / "defs.yaml").write_text(
            templates.DEFS_YAML.format(
                type_name=request.type_name,
                name=name,
                module=module,
                landing=landing,
                start=params.start,
            )
        )
        (target / "labeling.py").write_text(templates.LABELING_PY)
        (target / "model.py").write_text(templates.MODEL_PY)
