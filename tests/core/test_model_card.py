"""The model card: the typed hand-off from the trained model to the stages after it, stored as a
one-row frame whose columns keep their names."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from dcai_assets.core.model_card import ModelCard, data_version_of


def card(**kwargs) -> ModelCard:
    fields = dict(
        model_name="readings_model",
        version=3,
        mlflow_run_id="abc123",
        gate_passed=False,
        evaluated_against="gold labels: 60 rows of 2 partitions (normal 30, alert 30)",
        positive_class=None,
        positive_class_rule="none: 3 classes",
        evaluation_status="undetermined",
        holdout_widened_by=1,
        train_rows=240,
        train_partition_keys=["2024-01-10", "2024-01-11"],
        holdout_partition_keys=["2024-01-12", "2024-01-13"],
        metrics={"accuracy": 0.75, "precision": float("nan")},
        lf_set_version="lfs-v2",
        code_version="train-v2-1-lfs-v2",
        data_version="0123456789abcdef",
        partition_versions={"2024-01-10": "v1", "2024-01-11": ""},
    )
    return ModelCard(**(fields | kwargs))


def test_a_card_stored_as_parquet_reads_back_with_its_partition_keys_as_lists(tmp_path):
    original = card()
    original.to_frame().to_parquet(tmp_path / "card.parquet")
    read = ModelCard.from_frame(pd.read_parquet(tmp_path / "card.parquet"))
    assert read.train_partition_keys == ["2024-01-10", "2024-01-11"]
    assert read.holdout_partition_keys == ["2024-01-12", "2024-01-13"]
    assert read.positive_class is None and read.version == 3 and read.holdout_widened_by == 1
    assert read.partition_versions == original.partition_versions
    assert read.metrics["accuracy"] == 0.75 and math.isnan(read.metrics["precision"])  # NaN stays NaN
    assert read.model_uri == "models:/readings_model/3"


def test_the_stored_card_keeps_the_column_names_and_forms_it_had():
    row = card(positive_class="alert").to_frame().iloc[0]
    assert row["train_partition_keys"] == "2024-01-10,2024-01-11"
    assert row["holdout_partitions"] == "2024-01-12,2024-01-13"
    assert row["train_partitions"] == 2 and row["model_uri"] == "models:/readings_model/3"
    assert row["eval_accuracy"] == 0.75 and row["positive_class"] == "alert"


def test_a_card_stored_before_the_lineage_columns_existed_still_reads():
    old = (
        card()
        .to_frame()
        .drop(columns=["lf_set_version", "code_version", "data_version", "partition_versions"])
    )
    read = ModelCard.from_frame(old)
    assert read.partition_versions == {} and read.lf_set_version == ""
    assert read.train_partition_keys == ["2024-01-10", "2024-01-11"]


@pytest.mark.parametrize(
    "frame",
    [pd.concat([card().to_frame()] * 2), card().to_frame().drop(columns=["mlflow_run_id"]), {"version": 1}],
)
def test_anything_but_a_one_row_card_is_a_clear_error(frame):
    with pytest.raises(ValueError, match=r"ModelCard\.from_frame"):
        ModelCard.from_frame(frame)


def test_the_data_version_changes_with_any_input_and_not_with_key_order():
    lineage = {"partitions": {"a": "1"}, "lf_set_version": "x"}
    assert data_version_of(lineage) == data_version_of(dict(reversed(list(lineage.items()))))
    assert data_version_of(lineage) != data_version_of(lineage | {"partitions": {"a": "2"}})
