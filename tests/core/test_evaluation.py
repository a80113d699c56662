"""Evaluating a classifier overall, per partition, per slice and for fairness, and gating promotion."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

from dcai_assets.core.evaluation import (
    GAP_NAMES,
    Evaluation,
    FairnessGap,
    FairnessReport,
    PromotionGate,
    available_metrics,
    classification_metrics,
    evaluate,
    fairness_gaps,
    gate,
    resolve_positive_class,
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


def gap_of(name: str, value: float | None) -> FairnessGap:
    """A determined gap of ``value`` (or an undetermined one for None) over groups a and b."""
    if value is None:
        return FairnessGap(name, "undetermined", None, None, None, ("a",), 40, "1 group(s) with enough rows")
    return FairnessGap(name, "determined", value, value - 0.01, value + 0.01, ("a", "b"), 40)


def evaluation(
    accuracy: float,
    rows: int = 100,
    slices: dict[str, dict[str, float]] | None = None,
    fairness: dict[str, float | None] | None = None,
) -> Evaluation:
    """An Evaluation with the given overall accuracy and, per ``site`` value, slice accuracy."""
    report = FairnessReport(
        column="sex",
        positive_class=LATE,
        min_rows=20,
        min_outcome_rows=5,
        groups=(),
        gaps={k: gap_of(k, v) for k, v in (fairness or {}).items()},
        confidence=0.95,
    )
    return Evaluation(
        overall={"accuracy": accuracy, "n": float(rows)},
        per_partition={},
        per_slice={"site": {v: {"accuracy": a, "n": 40.0} for v, a in (slices or {}).items()}},
        fairness={LATE: report} if fairness else {},
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
    assert gaps.gaps["demographic_parity_difference"].value == pytest.approx(0.1)


def test_equalized_odds_difference_is_the_larger_of_the_tpr_and_fpr_gaps():
    y_true, y_pred, groups = fairness_example()

    gaps = fairness_gaps(y_true, y_pred, groups, positive=LATE, min_rows=20)

    # TPR gap 0.8 - 0.6 = 0.2, FPR gap 0.6 - 0.2 = 0.4
    assert gaps.gaps["equalized_odds_difference"].value == pytest.approx(0.4)


def test_groups_with_fewer_than_min_rows_are_left_out_of_the_fairness_gaps():
    y_true, y_pred, groups = fairness_example()

    with_small = fairness_gaps(y_true, y_pred, groups, positive=LATE, min_rows=5, min_outcome_rows=1)
    without_small = fairness_gaps(y_true, y_pred, groups, positive=LATE, min_rows=20)

    # group c (5 rows) predicts late for every row: rate 1.0 vs group a's 0.5, FPR 1.0 vs 0.2
    assert with_small.gaps["demographic_parity_difference"].value == pytest.approx(0.5)
    assert with_small.gaps["false_positive_rate_difference"].value == pytest.approx(0.8)
    assert without_small.gaps["demographic_parity_difference"].value == pytest.approx(0.1)
    assert without_small.gaps["demographic_parity_difference"].groups == ("a", "b")


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
    gaps = fair.fairness[LATE].gaps
    assert gaps["demographic_parity_difference"].value == pytest.approx(1 / 15)
    assert gaps["equalized_odds_difference"].value == pytest.approx(3 / 7)


def test_evaluation_table_is_long_format_with_a_note_beside_every_value():
    y_true, y_pred, frame = evaluation_frame()
    ev = evaluate(y_true, y_pred, frame, CLASSES, partition_column="day", slices=["site"], sensitive="sex")

    table = ev.table()

    assert list(table.columns) == ["scope", "group", "metric", "value", "note"]
    assert set(table["scope"]) == {
        "overall", "partition", "slice:site", "fairness:sex:late", "fairness_group:sex:late"
    }  # fmt: skip
    row = table[(table["scope"] == "partition") & (table["group"] == "2024-01-02")]
    assert row.set_index("metric").loc["accuracy", "value"] == pytest.approx(0.4)
    groups = table[table["scope"] == "fairness_group:sex:late"].set_index(["group", "metric"])["value"]
    assert groups[("f", "n")] == 15 and groups[("f", "positives")] == 8
    # the groups have 15 rows, under the default minimum of 20: no gap, and the reason beside it
    gaps = table[table["scope"] == "fairness:sex:late"].set_index("metric")
    assert np.isnan(gaps.loc["demographic_parity_difference", "value"])
    assert "too few rows (n=15" in gaps.loc["demographic_parity_difference", "note"]


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


# --- classification metrics: undefined is NaN, one class is flagged, more than two classes ---


def test_precision_of_a_class_never_predicted_is_nan_not_zero():
    y_true = np.array([LATE, LATE, ON, ON, ON])
    y_pred = np.array([ON, ON, ON, ON, ON])

    m = classification_metrics(y_true, y_pred, CLASSES)

    assert np.isnan(m["precision"])  # nothing was predicted late: precision is undefined
    assert m["recall"] == 0.0
    assert np.isnan(m["precision_macro"])


def test_a_single_class_evaluation_is_undetermined_and_says_so():
    # the newest partitions hold only late flights: precision of late reads 1.0 by construction
    y_true = np.array([LATE] * 40, dtype=object)
    y_pred = np.array([LATE] * 30 + [ON] * 10, dtype=object)
    frame = pd.DataFrame({"day": ["2024-01-02"] * 40})

    ev = evaluate(y_true, y_pred, frame, CLASSES, partition_column="day")

    assert ev.overall["precision"] == 1.0
    assert not ev.determined
    assert any("single class: every row is 'late' (n=40)" in n for n in ev.notes["overall"])
    assert any("single class" in w for w in ev.warnings)


def test_too_few_rows_of_a_class_are_flagged_with_their_count():
    y_true = np.array([LATE] * 3 + [ON] * 37, dtype=object)
    frame = pd.DataFrame({"day": ["2024-01-02"] * 40})

    ev = evaluate(y_true, y_true.copy(), frame, CLASSES, partition_column="day", min_class_rows=10)

    assert not ev.determined  # only on_time reaches 10 rows
    assert any("too few rows of 'late' (n=3)" in n for n in ev.notes["overall"])


def test_multiclass_metrics_report_every_class_and_the_macro_averages():
    y_true = np.array(["a", "a", "b", "b", "c", "c"])
    y_pred = np.array(["a", "b", "b", "b", "c", "a"])

    m = classification_metrics(y_true, y_pred, ["a", "b", "c"])

    assert m["precision:a"] == pytest.approx(1 / 2) and m["recall:a"] == pytest.approx(1 / 2)
    assert m["precision:b"] == pytest.approx(2 / 3) and m["recall:b"] == 1.0
    assert m["precision:c"] == 1.0 and m["recall:c"] == pytest.approx(1 / 2)
    assert m["support:a"] == m["support:b"] == m["support:c"] == 2
    assert m["precision_macro"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert m["recall_macro"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)


def test_a_declared_positive_class_sets_precision_recall_and_f1_for_two_or_more_classes():
    y_true = np.array(["a", "a", "b", "b", "c", "c"])
    y_pred = np.array(["a", "b", "b", "b", "c", "a"])

    three = classification_metrics(y_true, y_pred, ["a", "b", "c"], positive_class="c")
    two = classification_metrics(np.array([LATE, ON, ON]), np.array([ON, ON, ON]), CLASSES, positive_class=ON)

    assert three["precision"] == 1.0 and three["recall"] == pytest.approx(1 / 2)
    assert two["precision"] == pytest.approx(2 / 3) and two["recall"] == 1.0


def test_the_positive_class_defaults_to_the_second_of_two_and_to_none_for_more():
    assert resolve_positive_class(CLASSES, None) == LATE
    assert resolve_positive_class(["a", "b", "c"], None) is None
    assert "precision" in available_metrics(CLASSES, None)
    assert "precision" not in available_metrics(["a", "b", "c"], None)
    assert "precision" in available_metrics(["a", "b", "c"], "b")


def test_a_positive_class_that_is_not_a_class_is_a_clear_error():
    with pytest.raises(ValueError, match=r"positive_class: 'delayed' is not a class; expected one of"):
        resolve_positive_class(CLASSES, "delayed")
    with pytest.raises(TypeError, match="positive_class: 1 is a int"):
        resolve_positive_class(CLASSES, 1)


# --- fairness: a gap over one group is undetermined, never 0 ---


def one_group_with_enough_rows() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group a: 40 rows, selection rate 0.3; group b: 8 rows, selection rate 0.5."""
    true_a, pred_a = group_rows(tp=10, fn=10, fp=2, tn=18)
    true_b, pred_b = group_rows(tp=3, fn=1, fp=1, tn=3)
    y_true = np.array(true_a + true_b, dtype=object)
    y_pred = np.array(pred_a + pred_b, dtype=object)
    return y_true, y_pred, np.array(["a"] * 40 + ["b"] * 8, dtype=object)


def test_a_gap_with_only_one_group_above_the_minimum_is_undetermined_not_zero():
    y_true, y_pred, groups = one_group_with_enough_rows()

    report = fairness_gaps(y_true, y_pred, groups, positive=LATE, min_rows=20)

    for name in ("demographic_parity_difference", "equalized_odds_difference"):
        g = report.gaps[name]
        assert g.status == "undetermined"
        assert g.value is None and g.ci_low is None
    assert "too few rows (n=8, need 20)" in report.gaps["demographic_parity_difference"].reason
    assert any("demographic_parity_difference over 'group'" in w for w in report.warnings)


def test_every_group_is_reported_with_its_rows_positives_and_a_note_when_too_small():
    y_true, y_pred, groups = one_group_with_enough_rows()

    report = fairness_gaps(y_true, y_pred, groups, positive=LATE, min_rows=20)

    a, b = report.groups
    assert (a.group, a.n, a.positives, a.predicted_positive) == ("a", 40, 20, 12)
    assert a.selection_rate == pytest.approx(0.3) and a.true_positive_rate == pytest.approx(0.5)
    assert (b.group, b.n, b.positives) == ("b", 8, 4)
    assert b.note == "too few rows (n=8, need 20)"
    assert np.isnan(b.selection_rate)


def test_tpr_and_equalized_odds_are_undetermined_when_a_group_has_too_few_positives():
    true_a, pred_a = group_rows(tp=10, fn=10, fp=2, tn=18)
    true_b, pred_b = group_rows(tp=1, fn=1, fp=5, tn=23)  # 2 positives
    y_true = np.array(true_a + true_b, dtype=object)
    y_pred = np.array(pred_a + pred_b, dtype=object)
    groups = np.array(["a"] * 40 + ["b"] * 30, dtype=object)

    report = fairness_gaps(y_true, y_pred, groups, positive=LATE, min_rows=20, min_outcome_rows=5)

    assert report.gaps["demographic_parity_difference"].determined
    assert report.gaps["false_positive_rate_difference"].determined
    assert not report.gaps["true_positive_rate_difference"].determined
    assert not report.gaps["equalized_odds_difference"].determined
    assert "too few positives" in report.gaps["equalized_odds_difference"].reason


def wilson(k: int, n: int, confidence: float) -> tuple[float, float]:
    """Wilson score interval of k successes in n rows, from scipy (an independent reference)."""
    ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def test_gap_intervals_are_simultaneous_wilson_bounds_with_a_bonferroni_correction():
    y_true, y_pred, groups = fairness_example()

    report = fairness_gaps(y_true, y_pred, groups, positive=LATE, min_rows=20)

    # two groups used, alpha 0.05 split over them: each group's Wilson interval at 97.5%
    (a_lo, a_hi), (b_lo, b_hi) = wilson(10, 20, 0.975), wilson(12, 20, 0.975)
    dp = report.gaps["demographic_parity_difference"]
    assert dp.ci_high == pytest.approx(max(a_hi, b_hi) - min(a_lo, b_lo))
    assert dp.ci_low == pytest.approx(max(0.0, max(a_lo, b_lo) - min(a_hi, b_hi)))
    # equalized odds splits alpha over the TPR and FPR gaps: 98.75% per group and rate
    tpr = [wilson(8, 10, 0.9875), wilson(6, 10, 0.9875)]
    fpr = [wilson(2, 10, 0.9875), wilson(6, 10, 0.9875)]
    high = max(max(h for _, h in r) - min(lo for lo, _ in r) for r in (tpr, fpr))
    low = max(max(0.0, max(lo for lo, _ in r) - min(h for _, h in r)) for r in (tpr, fpr))
    eo = report.gaps["equalized_odds_difference"]
    assert (eo.ci_low, eo.ci_high) == (pytest.approx(low), pytest.approx(high))
    for name, g in report.gaps.items():
        assert g.ci_low <= g.value <= g.ci_high, name
    assert dp.ci_high - dp.ci_low > 0.1  # 20 rows a group: a gap of 0.1 is well within noise


def simulated_groups(
    rng: np.random.Generator, tpr: list[float], fpr: list[float], n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Groups of ``n`` rows, half truly late, predicted late with the given TPR and FPR per group
    (so each group's true selection rate is the mean of its TPR and FPR)."""
    k = len(tpr)
    groups = np.repeat([f"g{i}" for i in range(k)], n)
    y_true = np.tile(np.array([LATE, ON]).repeat(n // 2), k)
    p = np.where(y_true == LATE, np.repeat(tpr, n), np.repeat(fpr, n))
    y_pred = np.where(rng.random(k * n) < p, LATE, ON)
    return y_true, y_pred, groups


def test_gap_intervals_cover_the_true_gaps_in_at_least_93_percent_of_seeded_runs():
    # five groups of 60: the last one's TPR and FPR are 0.05 higher, so every true gap is 0.05
    rng = np.random.default_rng(20261206)
    tpr, fpr = [0.6] * 4 + [0.65], [0.2] * 4 + [0.25]
    covered = dict.fromkeys(GAP_NAMES, 0)
    runs = 200
    for _ in range(runs):
        y_true, y_pred, groups = simulated_groups(rng, tpr, fpr, 60)
        report = fairness_gaps(y_true, y_pred, groups, positive=LATE, min_rows=20)
        for name in covered:
            g = report.gaps[name]
            covered[name] += g.ci_low <= 0.05 <= g.ci_high
    assert all(c / runs >= 0.93 for c in covered.values()), covered


def test_the_gap_interval_of_identical_groups_contains_the_estimate_and_zero():
    # four groups of 50 with the same true rates: the estimated gaps are sampling noise
    rng = np.random.default_rng(1)
    groups = np.repeat([f"g{i}" for i in range(4)], 50)
    y_true = np.where(rng.random(200) < 0.3, LATE, ON)
    y_pred = np.where(rng.random(200) < 0.3, LATE, ON)

    report = fairness_gaps(y_true, y_pred, groups, positive=LATE, min_rows=20)

    for name, g in report.gaps.items():
        assert g.ci_low <= g.value <= g.ci_high, (name, g)
        assert g.ci_low == 0.0, (name, g)


def test_no_predicted_positives_in_any_group_is_a_zero_gap_with_an_interval_of_nonzero_width():
    groups = np.array(["a"] * 20 + ["b"] * 20, dtype=object)
    y_true = np.array([LATE, ON] * 20, dtype=object)
    y_pred = np.array([ON] * 40, dtype=object)

    report = fairness_gaps(y_true, y_pred, groups, positive=LATE, min_rows=20)

    dp = report.gaps["demographic_parity_difference"]
    assert dp.value == 0.0 and dp.ci_low == 0.0
    assert dp.ci_high > 0.1  # 0 of 20 rows is compatible with a rate of 0.1 or more
    assert report.gaps["equalized_odds_difference"].ci_high > 0.1


def test_gap_intervals_narrow_as_the_groups_grow():
    y_true, y_pred, groups = fairness_example()
    keep = groups != "c"
    big = [np.concatenate([a[keep]] * 10) for a in (y_true, y_pred, groups)]

    small_ci = fairness_gaps(y_true, y_pred, groups, positive=LATE).gaps["demographic_parity_difference"]
    big_ci = fairness_gaps(*big, positive=LATE).gaps["demographic_parity_difference"]

    assert big_ci.value == pytest.approx(small_ci.value)
    assert big_ci.ci_high - big_ci.ci_low < 0.5 * (small_ci.ci_high - small_ci.ci_low)


def test_missing_sensitive_values_are_left_out_of_the_fairness_groups_and_counted():
    y_true, y_pred, groups = fairness_example()
    groups = groups.copy()
    groups[[0, 1, 2]] = None
    groups[[20, 21]] = np.nan

    report = fairness_gaps(y_true, y_pred, groups, positive=LATE, min_rows=15, column="sex")

    assert [r.group for r in report.groups] == ["a", "b", "c"]
    assert [r.n for r in report.groups] == [17, 18, 5]
    assert report.missing_rows == 5
    assert any("5 of 45 rows have no value in 'sex'" in w for w in report.warnings)


def test_evaluate_leaves_missing_values_out_of_slices_and_fairness_and_says_how_many():
    y_true, y_pred, frame = evaluation_frame()
    frame = frame.copy()
    frame["site"] = frame["site"].astype(object)
    frame.loc[:1, "site"] = None  # 2 rows
    frame.loc[5:7, "site"] = np.nan  # 3 rows
    frame.loc[:3, "sex"] = None  # 4 rows

    ev = evaluate(
        y_true, y_pred, frame, CLASSES, partition_column="day", slices=["site"], sensitive="sex",
        min_slice_rows=1,
    )  # fmt: skip

    assert set(ev.per_slice["site"]) == {"north", "south"}
    assert ev.per_slice["site"]["south"]["n"] == 3 and ev.per_slice["site"]["north"]["n"] == 22
    assert [r.group for r in ev.fairness[LATE].groups] == ["f", "m"]
    assert ev.fairness[LATE].missing_rows == 4
    assert any("5 of 30 rows have no value in 'site'" in w for w in ev.warnings)
    assert any("4 of 30 rows have no value in 'sex'" in w for w in ev.warnings)


def test_a_positive_class_that_is_not_a_label_is_a_clear_error_in_fairness_gaps():
    y_true, y_pred, groups = fairness_example()

    with pytest.raises(ValueError, match=r"positive: 'delayed' is not among the labels"):
        fairness_gaps(y_true, y_pred, groups, positive="delayed")
    with pytest.raises(
        ValueError, match=r"positive: 'delayed' is not among the classes \['on_time', 'late'\]"
    ):
        fairness_gaps(y_true, y_pred, groups, positive="delayed", classes=CLASSES)
    # a class of the declared classes that no row has is allowed: its gaps are 0 selection
    report = fairness_gaps(y_true, y_pred, groups, positive="cancelled", classes=[*CLASSES, "cancelled"])
    assert report.gaps["demographic_parity_difference"].value == 0.0


def test_multiclass_fairness_is_reported_one_vs_rest_for_every_class():
    rng = np.random.default_rng(0)
    y_true = rng.choice(["sun", "rain", "snow"], size=300)
    y_pred = np.where(rng.random(300) < 0.8, y_true, "sun")
    frame = pd.DataFrame({"day": ["d"] * 300, "region": rng.choice(["n", "s"], size=300)})

    ev = evaluate(y_true, y_pred, frame, ["sun", "rain", "snow"], partition_column="day", sensitive="region")
    declared = evaluate(
        y_true, y_pred, frame, ["sun", "rain", "snow"], partition_column="day", sensitive="region",
        positive_class="snow",
    )  # fmt: skip

    assert set(ev.fairness) == {"sun", "rain", "snow"}
    assert all(r.positive_class == c for c, r in ev.fairness.items())
    assert "demographic_parity_difference:snow" in ev.fairness_gaps()
    assert set(declared.fairness) == {"snow"}
    assert "demographic_parity_difference" in declared.fairness_gaps()


# --- the gate never compares what is undefined ---


def test_an_undetermined_fairness_gap_is_named_in_the_reasons_as_not_checked():
    champion = evaluation(0.85, fairness={"demographic_parity_difference": None})

    verdict = gate(
        evaluation(0.90, fairness={"demographic_parity_difference": None}), champion, PromotionGate()
    )

    assert verdict.promote
    assert any(
        r.startswith("fairness could not be checked: demographic_parity_difference is undetermined")
        for r in verdict.reasons
    )
    assert not any("no slice or fairness regression" in r for r in verdict.reasons)


def test_require_fairness_blocks_promotion_on_an_undetermined_gap():
    rules = PromotionGate(require_fairness=True)
    undetermined = evaluation(0.90, fairness={"demographic_parity_difference": None})

    assert not gate(undetermined, evaluation(0.85), rules).promote
    assert not gate(undetermined, None, rules).promote


def test_an_undetermined_evaluation_is_never_promoted_even_without_a_champion():
    single = evaluation(0.99)
    single.determined = False
    single.notes["overall"] = ["single class: every row is 'late' (n=100)"]

    verdict = gate(single, None, PromotionGate())

    assert not verdict.promote
    assert "evaluation undetermined (single class: every row is 'late' (n=100))" in verdict.reasons[0]


def test_an_undefined_gate_metric_blocks_promotion_instead_of_comparing_nan():
    challenger = evaluation(0.9)
    challenger.overall["precision"] = float("nan")

    verdict = gate(challenger, evaluation(0.8), PromotionGate(metric="precision"))

    assert not verdict.promote
    assert "precision is undefined on the evaluation rows" in verdict.reasons[0]


def test_labels_outside_the_classes_are_a_clear_error_not_silently_ignored():
    with pytest.raises(ValueError, match=r"y_true: labels \['delayed'\] are not among the classes"):
        classification_metrics(np.array([LATE, "delayed"]), np.array([LATE, ON]), CLASSES)
