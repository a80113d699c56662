"""What each LF did on a partition, and the alerts that say what changed."""

from __future__ import annotations

import re
from itertools import pairwise

import numpy as np
import pandas as pd
import pytest

from dcai_assets.core.label_model import synthetic_votes
from dcai_assets.core.labeling import ABSTAIN, LabelingFunctionSet, labeling_function
from dcai_assets.core.lf_analysis import dependent_pairs, lf_alerts, lf_summary, summary_markdown

CLASSES = ["no", "yes"]


def lf(name: str, uses: tuple[str, ...] = ()):
    return labeling_function(name, uses=uses)(lambda df: np.full(len(df), ABSTAIN))


THREE = LabelingFunctionSet([lf("a"), lf("b"), lf("c")], CLASSES)
# Rows: a and b agree, a and b conflict, a alone, c alone, a alone, b and c conflict.
L_SIX = np.array(
    [
        [1, 1, -1],
        [1, 0, -1],
        [0, -1, -1],
        [-1, -1, 1],
        [1, -1, -1],
        [-1, 0, 1],
    ],
    dtype=np.int8,
)
GOLD_SIX = np.array([1, 0, 0, -1, 0, 1])

WEATHER = LabelingFunctionSet([lf("heavy_rain", ("precip",)), lf("cold", ("temp", "month"))], CLASSES)


def weather_summary(rain_votes: int, cold_votes: int = 30, rows: int = 100) -> pd.DataFrame:
    L = np.full((rows, 2), ABSTAIN, dtype=np.int8)
    L[:rain_votes, 0] = 1
    L[rows - cold_votes :, 1] = 0
    return lf_summary(L, WEATHER)


def test_the_summary_reports_coverage_overlaps_conflicts_and_polarity_per_lf():
    summary = lf_summary(L_SIX, THREE).set_index("lf")

    assert summary["coverage"].tolist() == pytest.approx([4 / 6, 3 / 6, 2 / 6])
    assert summary["overlaps"].tolist() == pytest.approx([2 / 6, 3 / 6, 1 / 6])
    assert summary["conflicts"].tolist() == pytest.approx([1 / 6, 2 / 6, 1 / 6])
    assert summary["polarity"].tolist() == ["no, yes", "no, yes", "yes"]


def test_the_summary_reports_accuracy_against_gold_and_as_estimated():
    summary = lf_summary(L_SIX, THREE, gold=GOLD_SIX, estimated_accuracy=[0.9, 0.8, 0.7]).set_index("lf")

    assert summary["gold_votes"].tolist() == [4, 3, 1]
    assert summary["empirical_accuracy"].tolist() == pytest.approx([2 / 4, 2 / 3, 1.0])
    assert summary["estimated_accuracy"].tolist() == pytest.approx([0.9, 0.8, 0.7])


def test_without_gold_the_summary_has_no_empirical_accuracy():
    summary = lf_summary(L_SIX, THREE)

    assert summary["gold_votes"].tolist() == [0, 0, 0]
    assert summary["empirical_accuracy"].isna().all()
    assert summary["estimated_accuracy"].isna().all()


def test_a_coverage_drop_is_alerted_naming_the_column_the_lf_reads():
    alerts = lf_alerts(weather_summary(2), WEATHER, previous={"heavy_rain": 0.14, "cold": 0.30})

    assert alerts == [
        "LF `heavy_rain` covers 2% of rows today (was 14% in the previous partition): "
        "did the `precip` column change?"
    ]


def test_a_coverage_jump_names_the_previous_partition_and_every_column_read():
    alerts = lf_alerts(
        weather_summary(14, cold_votes=60),
        WEATHER,
        previous={"heavy_rain": 0.14, "cold": 0.30},
        previous_partition="2024-01-04",
    )

    assert alerts == [
        "LF `cold` covers 60% of rows today (was 30% in 2024-01-04): did the `temp`, `month` columns change?"
    ]


@pytest.mark.parametrize(
    ("today", "was"),
    [(12, 0.14), (5, 0.02), (54, 0.60)],
    ids=["small-in-points-and-ratio", "small-in-points", "small-relative-to-before"],
)
def test_a_small_coverage_change_is_not_alerted(today, was):
    assert lf_alerts(weather_summary(today), WEATHER, previous={"heavy_rain": was, "cold": 0.30}) == []


def test_no_lf_voting_on_any_row_is_alerted():
    summary = lf_summary(np.full((1234, 2), ABSTAIN, dtype=np.int8), WEATHER)

    alerts = lf_alerts(summary, WEATHER, rows=1234)

    assert len(alerts) == 1
    assert alerts[0].startswith("no labeling function voted on any of the 1,234 rows")


def test_lf_errors_are_alerted_with_their_count_and_first_row():
    alerts = lf_alerts(weather_summary(14), WEATHER, errors={"heavy_rain": [3, 7]})

    assert alerts == ["LF `heavy_rain` raised on 2 rows (first: row 3); they were counted as abstains"]


def test_lfs_that_only_ever_agree_on_one_class_are_alerted():
    L = np.full((10, 2), ABSTAIN, dtype=np.int8)
    L[:6, 0] = 1
    L[4:, 1] = 1

    alerts = lf_alerts(lf_summary(L, WEATHER), WEATHER)

    assert len(alerts) == 1
    assert alerts[0].startswith("all LFs that voted agree, always on `yes`")


def test_lfs_that_vote_different_classes_are_not_alerted_as_agreeing():
    assert lf_alerts(weather_summary(14), WEATHER) == []


def test_lfs_that_each_vote_both_classes_are_not_said_to_agree_on_one_class():
    L = np.full((4, 2), ABSTAIN, dtype=np.int8)
    L[[0, 1], 0] = [0, 1]
    L[[2, 3], 1] = [1, 0]

    alerts = lf_alerts(lf_summary(L, WEATHER), WEATHER)

    assert not any("always on `no, yes`" in alert for alert in alerts)


def test_the_markdown_summary_has_a_table_row_per_lf():
    summary = lf_summary(L_SIX, THREE, gold=GOLD_SIX)

    lines = summary_markdown(summary).splitlines()

    assert len(lines) == 2 + 3
    assert lines[0].startswith("| LF | polarity | coverage |")
    assert lines[2] == "| `a` | no, yes | 66.7% | - | 33.3% | 16.7% | 0.50 (4) | - |"
    assert [line.split(" | ")[0] for line in lines[2:]] == ["| `a`", "| `b`", "| `c`"]


def test_the_summary_shows_each_lfs_coverage_change_since_the_previous_partition():
    summary = lf_summary(L_SIX, THREE, previous_coverage={"a": 0.5})

    assert summary.loc[0, "coverage_change"] == pytest.approx(2 / 3 - 0.5)
    assert np.isnan(summary.loc[1, "coverage_change"])
    assert "| +16.7% |" in summary_markdown(summary).splitlines()[2]


def test_a_copied_lf_is_reported_as_dependent_and_independent_lfs_are_not():
    votes = synthetic_votes(5_000, np.array([0.7, 0.8, 0.7]), np.array([0.5, 0.5, 0.5]), np.array([0.5, 0.5]))
    L = np.column_stack([votes.L, votes.L[:, 0]])
    accuracies = [0.7, 0.8, 0.7, 0.7]

    alerts = dependent_pairs(L, accuracies, ["a", "b", "c", "a_copy"], 2)

    assert len(alerts) == 1
    found = re.match(r"LFs `a` and `a_copy` vote the same class on ([\d,]+) of ([\d,]+) rows", alerts[0])
    assert found, alerts[0]
    together, rows = (int(x.replace(",", "")) for x in found.groups())
    assert (together, rows) == ((L[:, 0] != ABSTAIN).sum(), 5_000)  # the copy agrees wherever `a` votes
    expected, ratio = re.search(r"would on ([\d,]+) \(([\d.]+)x\)", alerts[0]).groups()
    assert float(ratio) > 2
    assert together / int(expected.replace(",", "")) == pytest.approx(float(ratio), abs=0.05)


def one_sided_votes(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three LFs independent given the class: two one-sided ones that only ever vote `yes` (so
    they always agree where both vote) and a two-sided one."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    L = np.full((n, 3), ABSTAIN, dtype=np.int8)
    for j, (if_yes, if_no) in enumerate([(0.6, 0.08), (0.5, 0.1)]):
        fires = rng.random(n) < np.where(y == 1, if_yes, if_no)
        L[fires, j] = 1
    voted = rng.random(n) < 0.5
    right = rng.random(n) < 0.8
    L[voted, 2] = np.where(right, y, 1 - y)[voted]
    return L, y


def empirical_accuracies(L: np.ndarray, y: np.ndarray) -> list[float]:
    return [float((L[L[:, j] != ABSTAIN, j] == y[L[:, j] != ABSTAIN]).mean()) for j in range(L.shape[1])]


def test_one_sided_lfs_of_one_polarity_that_vote_together_by_chance_are_not_dependent():
    L, y = one_sided_votes(20_000)

    alerts = dependent_pairs(L, empirical_accuracies(L, y), ["delayed", "stormy", "two_sided"], 2)

    assert alerts == []


def test_a_duplicated_one_sided_lf_is_dependent():
    L, y = one_sided_votes(20_000)
    L = np.column_stack([L, L[:, 0]])

    alerts = dependent_pairs(L, empirical_accuracies(L, y), ["delayed", "stormy", "two_sided", "copy"], 2)

    assert len(alerts) == 1
    assert alerts[0].startswith("LFs `delayed` and `copy` vote the same class on ")


def test_lfs_of_three_classes_are_dependent_only_when_one_copies_another():
    votes = synthetic_votes(
        9_000, np.array([0.7, 0.6, 0.8]), np.array([0.6, 0.5, 0.4]), np.array([0.5, 0.3, 0.2]), seed=3
    )
    L = np.column_stack([votes.L, votes.L[:, 1]])
    accuracies = empirical_accuracies(L, votes.y)

    assert dependent_pairs(L[:, :3], accuracies[:3], ["a", "b", "c"], 3) == []
    alerts = dependent_pairs(L, accuracies, ["a", "b", "c", "b_copy"], 3)
    assert [a.split(" vote the same")[0] for a in alerts] == ["LFs `b` and `b_copy`"]


def random_partitions(rows: int, size: int, coverages: list[float], seed: int = 0) -> list[np.ndarray]:
    """One table's LF votes, shuffled and cut into partitions of ``size`` rows: any difference
    between them is sampling noise."""
    rng = np.random.default_rng(seed)
    L = np.full((rows, len(coverages)), ABSTAIN, dtype=np.int8)
    for j, coverage in enumerate(coverages):
        L[rng.random(rows) < coverage, j] = j % 2
    L = L[rng.permutation(rows)]
    return [L[i : i + size] for i in range(0, rows, size)]


def test_random_splits_of_one_table_raise_no_coverage_alert():
    lfs = LabelingFunctionSet([lf("rare", ("a",)), lf("common", ("b",)), lf("scarce", ("c",))], CLASSES)
    parts = random_partitions(6_000, 100, [0.045, 0.3, 0.1])
    alerts = []
    for before, today in pairwise(parts):
        previous = dict(zip(lfs.names, (before != ABSTAIN).mean(axis=0), strict=True))
        alerts += lf_alerts(lf_summary(today, lfs), lfs, previous=previous, rows=len(today))

    assert alerts == []


def test_a_coverage_collapse_on_a_large_partition_is_alerted():
    lfs = LabelingFunctionSet([lf("rare", ("a",)), lf("common", ("b",)), lf("scarce", ("c",))], CLASSES)
    before, today = random_partitions(10_000, 5_000, [0.07, 0.3, 0.1])
    today = today.copy()
    fired = np.flatnonzero(today[:, 0] != ABSTAIN)
    today[fired[: int(len(fired) * 0.7)], 0] = ABSTAIN  # 7% -> about 2%
    previous = dict(zip(lfs.names, (before != ABSTAIN).mean(axis=0), strict=True))

    alerts = lf_alerts(lf_summary(today, lfs), lfs, previous=previous, rows=len(today))

    assert len(alerts) == 1
    assert alerts[0].startswith("LF `rare` covers 2% of rows today (was 7% in the previous partition)")
