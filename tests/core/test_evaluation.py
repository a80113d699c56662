"""Evaluating a classifier overall, per partition, per slice and for fairness, and gating promotion."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dcai_assets.core.evaluation import (
    Evaluation,
    PromotionGate,
    classification_metrics,
    evaluate,
    fairness_gaps,
    gate,
)

CLASSES = ["on_time", "late"]
LATE, ON = "late", "on_time"


def group_rows(tp: int, fn: int, fp: int, tn: int) -> tuple[list[str], list[str]]:
    """(y_true, y_pred) of one group with the given confusion counts for the positive class ``late``."""
    y_true = [LATE] * (tp + fn) + [ON] * (fp + tn)
    y_pred = [LATE] * tp + [ON] * fn + [LATE] * fp + [ON] * tn
    return y_true, y_pred


def fairness_example() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group a: TPR 0.8, FPR 0.2; group b: TPR 0.6, FPR 0.6; group c: 5 rows, all predicted late."""
    true_a, pred_a = group_rows(tp=8, fn=2, fp=2, tn=8)
    true_b, pred_b = group_rows(tp=6, fn=4, fp=6, tn=4)
    true_c, pred_c = group_rows(tp=1, fn=0, fp=4, tn=0)
    y_true = np.array(true_a + true_b + true_c, dtype=object)
    y_pred = np.array(pred_a + pred_b + pred_c, dtype=object)
    groups = np.array(["a"] * 20 + ["b"] * 20 + ["c"] * 5, dtype=object)
    return y_true, y_pred, groups


def evaluation(
    accuracy: float,
    rows: int = 100,
    slices: dict[str, dict[str, float]] | None = None,
    fairness: dict[str, float] | None = None,
) -> Evaluation:
    """An Evaluation with the given overall accuracy and, per ``site`` value, slice accuracy."""
    return Evaluation(
        overall={"accuracy": accuracy, "n": float(rows)},
        per_partition={},
        per_slice={"site": {v: {"accuracy": a, "n": 40.0} for v, a in (slices or {}).items()}},
        fairness=fairness or {},
        rows=rows,
    )


def test_binary_metrics_report_the_second_class_as_positive():
    y_true = [LATE, LATE, LATE, LATE, ON, ON, ON, ON, ON, ON]
    y_pred = [LATE, LATE, LATE, ON, LATE, LATE, ON, ON, ON, ON]

    m = classification_metrics(np.array(y_true), np.array(y_pred), CLASSES)

    assert m["n"] == 10
    assert m["accuracy"] == pytest.approx(0.7)
    # late: 3 true positives of 5 predicted late and 4 truly late
    assert m["precision"] == pytest.approx(3 / 5)
    assert m["recall"] == pytest.approx(3 / 4)
    assert m["f1"] == pytest.approx(2 * 0.6 * 0.75 / 1.35)
    # on_time: 4 correct of 5 predicted on_time and 6 truly on_time
    f1_on_time = 2 * 0.8 * (4 / 6) / (0.8 + 4 / 6)
    assert m["f1_macro"] == pytest.approx((m["f1"] + f1_on_time) / 2)


def test_multiclass_metrics_have_accuracy_and_macro_f1_but_no_positive_class_metrics():
    y_true = np.array(["a", "a", "b", "b", "c", "c"])
    y_pred = np.array(["a", "b", "b", "b", "c", "a"])

    m = classification_metrics(y_true, y_pred, ["a", "b", "c"])

    assert not {"precision", "recall", "f1"} & set(m)
    assert m["accuracy"] == pytest.approx(4 / 6)
    # per-class F1: a 0.5, b 0.8 (precision 2/3, recall 1), c 2/3 (precision 1, recall 1/2)
    assert m["f1_macro"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)


def test_demographic_parity_difference_is_the_spread_of_positive_prediction_rates():
    y_true, y_pred, groups = fairness_example()

    gaps = fairness_gaps(y_true, y_pred, groups, positive=LATE, min_rows=20)

    # positive-prediction rates: a 10/20, b 12/20
    assert gaps["demographic_parity_difference"] == pytest.approx(0.1)


def test_equalized_odds_difference_is_the_larger_of_the_tpr_and_fpr_gaps():
    y_true, y_pred, groups = fairness_example()

    gaps = fairness_gaps(y_true, y_pred, groups, positive=LATE, min_rows=20)

    # TPR gap 0.8 - 0.6 = 0.2, FPR gap 0.6 - 0.2 = 0.4
    assert gaps["equalized_odds_difference"] == pytest.approx(0.4)


def test_groups_with_fewer_than_min_rows_are_left_out_of_the_fairness_gaps():
    y_true, y_pred, groups = fairness_example()

    with_small = fairness_gaps(y_true, y_pred, groups, positive=LATE, min_rows=5)
    without_small = fairness_gaps(y_true, y_pred, groups, positive=LATE, min_rows=20)

    # group c (5 rows) predicts late for every row: rate 1.0 vs group a's 0.5, FPR 1.0 vs 0.2
    assert with_small["demographic_parity_difference"] == pytest.approx(0.5)
    assert with_small["equalized_odds_difference"] == pytest.approx(0.8)
    assert without_small["demographic_parity_difference"] == pytest.approx(0.1)


def evaluation_frame() -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """30 rows over two days; site north has 25 rows, south 5; sex splits the rows 15/15."""
    y_true = np.array([LATE, ON] * 15, dtype=object)
    y_pred = y_true.copy()
    y_pred[:6] = np.where(y_true[:6] == LATE, ON, LATE)  # the first 6 rows (day 2024-01-02) are wrong
    frame = pd.DataFrame(
        {
            "day": ["2024-01-02"] * 10 + ["2024-01-01"] * 20,
            "site": ["south"] * 5 + ["north"] * 25,
            "sex": ["f"] * 15 + ["m"] * 15,
        }
    )
    return y_true, y_pred, frame


def test_evaluate_reports_metrics_per_partition_keyed_by_the_partition_value():
    y_true, y_pred, frame = evaluation_frame()

    ev = evaluate(y_true, y_pred, frame, CLASSES, partition_column="day")

    assert list(ev.per_partition) == ["2024-01-01", "2024-01-02"]
    assert ev.per_partition["2024-01-02"]["accuracy"] == pytest.approx(0.4)
    assert ev.per_partition["2024-01-02"]["n"] == 10
    assert ev.per_partition["2024-01-01"]["accuracy"] == pytest.approx(1.0)
    assert ev.overall["accuracy"] == pytest.approx(24 / 30)
    assert ev.rows == 30


def test_evaluate_reports_only_slices_with_at_least_min_slice_rows():
    y_true, y_pred, frame = evaluation_frame()

    ev = evaluate(y_true, y_pred, frame, CLASSES, partition_column="day", slices=["site"], min_slice_rows=20)

    assert list(ev.per_slice["site"]) == ["north"]
    assert ev.per_slice["site"]["north"]["n"] == 25
    assert ev.per_slice["site"]["north"]["accuracy"] == pytest.approx(24 / 25)


def test_evaluate_computes_fairness_only_when_a_sensitive_column_is_given():
    y_true, y_pred, frame = evaluation_frame()

    plain = evaluate(y_true, y_pred, frame, CLASSES, partition_column="day", min_slice_rows=10)
    fair = evaluate(
        y_true, y_pred, frame, CLASSES, partition_column="day", sensitive="sex", min_slice_rows=10
    )

    assert plain.fairness == {}
    # f: 8 of 15 predicted late, TPR 5/8, FPR 3/7; m: 7 of 15 predicted late, TPR 1, FPR 0
    assert fair.fairness["demographic_parity_difference"] == pytest.approx(1 / 15)
    assert fair.fairness["equalized_odds_difference"] == pytest.approx(3 / 7)


def test_evaluation_table_is_long_format_with_scope_group_metric_value():
    y_true, y_pred, frame = evaluation_frame()
    ev = evaluate(y_true, y_pred, frame, CLASSES, partition_column="day", slices=["site"], sensitive="sex")

    table = ev.table()

    assert list(table.columns) == ["scope", "group", "metric", "value"]
    assert set(table["scope"]) == {"overall", "partition", "slice:site", "fairness"}
    row = table[(table["scope"] == "partition") & (table["group"] == "2024-01-02")]
    assert row.set_index("metric").loc["accuracy", "value"] == pytest.approx(0.4)
    assert len(table) == len(ev.overall) * 4 + len(ev.fairness)  # overall, 2 partitions, north


def test_too_few_evaluation_rows_promote_nothing_and_say_how_many():
    verdict = gate(evaluation(0.99, rows=12), evaluation(0.5), PromotionGate(min_rows=30))

    assert not verdict.promote
    assert "only 12 evaluation rows (need 30)" in verdict.reasons[0]


def test_the_first_model_is_promoted_when_there_is_no_champion():
    verdict = gate(evaluation(0.6), None, PromotionGate())

    assert verdict.promote
    assert "no champion yet" in verdict.reasons[0]


def test_a_challenger_worse_than_the_champion_beyond_max_drop_is_not_promoted():
    verdict = gate(evaluation(0.80), evaluation(0.85), PromotionGate(max_drop=0.01))

    assert not verdict.promote
    assert "0.8000" in verdict.reasons[0]
    assert "0.8500" in verdict.reasons[0]


def test_a_challenger_within_max_drop_of_the_champion_is_promoted():
    verdict = gate(evaluation(0.84), evaluation(0.85), PromotionGate(max_drop=0.02))

    assert verdict.promote


def test_a_slice_regression_beyond_max_slice_drop_blocks_promotion_and_names_the_slice():
    challenger = evaluation(0.90, slices={"north": 0.90, "south": 0.70})
    champion = evaluation(0.85, slices={"north": 0.85, "south": 0.80})

    verdict = gate(challenger, champion, PromotionGate(max_slice_drop=0.05))

    assert not verdict.promote
    slice_reasons = [r for r in verdict.reasons if "site=" in r]
    assert len(slice_reasons) == 1
    assert "site=south" in slice_reasons[0]


def test_a_growing_fairness_gap_beyond_max_fairness_increase_blocks_promotion():
    rules = PromotionGate(max_fairness_increase=0.05)
    champion = evaluation(0.85, fairness={"demographic_parity_difference": 0.10})

    worse = gate(evaluation(0.90, fairness={"demographic_parity_difference": 0.20}), champion, rules)
    slightly = gate(evaluation(0.90, fairness={"demographic_parity_difference": 0.14}), champion, rules)

    assert not worse.promote
    assert any("demographic_parity_difference grows from 0.1000 to 0.2000" in r for r in worse.reasons)
    assert slightly.promote
