"""The public API in two tiers: a top level of the few names a pipeline user needs, and every
name it used to export still importable from there for one release, with a warning that says
where it lives now."""

from __future__ import annotations

import importlib
import warnings

import pytest

import dcai_assets

OLD_TOP_LEVEL = [
    *("ABSTAIN", "TRIGGER_TAG", "CallableSource", "ColumnDrift", "ColumnSchema", "Conformance"),
    *("DailyPartitions", "DataInputError", "DynamicPartitions", "HourlyPartitions", "LabelModel"),
    *("LabelingFunction", "LabelingFunctionError", "LabelingFunctionSet", "MajorityVote"),
    *("ModelLineage", "MonthlyPartitions", "ShapleyResult", "StaticPartitions", "TableSchema"),
    *("TimeWindowPartitions", "WeeklyPartitions", "apply_lfs", "automation_run_tags"),
    *("automation_sensor_name", "conform", "drift_report", "fit_label_model"),
    *("group_balanced_weights", "importance_job_name", "infer_schema", "ingest_and_label_job_name"),
    *("ingest_job_name", "knn_shapley", "label_model_job_name", "labeling_function"),
    *("labeling_job_name", "model_lineage", "models_using_partition", "partition_order"),
    *("partition_span", "partitions_changed", "train_job_name"),
]
MOVED = sorted(set(OLD_TOP_LEVEL) - set(dcai_assets.__all__))


def test_top_level_exports_at_most_fifteen_names_and_each_resolves():
    assert len(dcai_assets.__all__) <= 15
    assert len(set(dcai_assets.__all__)) == len(dcai_assets.__all__)
    for name in dcai_assets.__all__:
        assert getattr(dcai_assets, name) is not None
    assert "DataCentricPipeline" in dcai_assets.__all__ and "build_definitions" in dcai_assets.__all__


def test_top_level_names_import_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        for name in dcai_assets.__all__:
            getattr(dcai_assets, name)


@pytest.mark.parametrize("name", MOVED)
def test_moved_name_warns_with_its_new_import_path_and_is_the_same_object(name):
    with pytest.warns(DeprecationWarning, match=rf"dcai_assets\.{name} is deprecated") as caught:
        old = getattr(dcai_assets, name)
    (message,) = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]
    module = message.split("`from ")[1].split(" import")[0]
    assert module != "dcai_assets" and f"import {name}`" in message
    assert getattr(importlib.import_module(module), name) is old


def test_moved_name_warns_on_from_import_too():
    with pytest.warns(DeprecationWarning, match=r"from dcai_assets\.core\.knn_shapley import knn_shapley"):
        from dcai_assets import knn_shapley
    from dcai_assets.core.knn_shapley import knn_shapley as new

    assert knn_shapley is new


def test_unknown_top_level_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        _ = dcai_assets.not_a_name
