"""Dagster components (the ``dg`` front door): registered through the
``dagster_dg_cli.registry_modules`` entry point, so ``dg list components`` shows them."""

from dcai_assets.components.pipeline import DataCentricPipeline

__all__ = ["DataCentricPipeline"]
