"""Choosing the holdout: gold when there is enough, widened past a single-class window, flagged when
it stays single-class."""

from __future__ import annotations

import pandas as pd
import pytest

from dcai_assets.core.holdout import choose_holdout

CLASSES = ["on_time", "late"]
DAYS = [f"2024-01-0{i}" for i in range(1, 8)]


def day_rows(
    day: str, gold: dict[str, int], lf: dict[str, int] | None = None, abstained: int = 0
) -> pd.DataFrame:
    """Rows of one partition: ``gold`` and ``lf`` map a class to a number of rows with that label."""
    records = [(day, c, "gold") for c, n in gold.items() for _ in range(n)]
    records += [(day, c, "lf") for c, n in (lf or {}).items() for _ in range(n)]
    records += [(day, None, "abstain")] * abstained
    return pd.DataFrame(records, columns=["_partition", "label", "label_source"])


def window(per_day: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(per_day.values(), ignore_index=True)


def choose(frame: pd.DataFrame, **kwargs):
    settings = dict(partition_column="_partition", holdout_partitions=2, max_holdout_partitions=4)
    settings |= dict(min_gold_rows=30, min_class_rows=10) | kwargs
    return choose_holdout(frame, DAYS, CLASSES, **settings)


def mixed_days() -> dict[str, pd.DataFrame]:
    return {d: day_rows(d, {"on_time": 15, "late": 15}, {"on_time": 50, "late": 20}) for d in DAYS}


def test_enough_gold_rows_of_every_class_in_the_newest_partitions_are_the_holdout():
    choice = choose(window(mixed_days()))

    assert choice.holdout_partitions == ("2024-01-06", "2024-01-07")
    assert choice.train_partitions == tuple(DAYS[:5])
    assert choice.labels == "gold" and choice.determined and choice.extended_by == 0
    assert choice.class_counts == {"on_time": 30, "late": 30}
    assert choice.warnings == ()


def test_a_single_class_gold_holdout_is_widened_until_every_class_has_enough_rows():
    days = mixed_days()
    for d in DAYS[-3:]:  # the newest three days: every gold row is late
        days[d] = day_rows(d, {"late": 20}, {"on_time": 50, "late": 20})

    choice = choose(window(days))

    assert choice.holdout_partitions == tuple(DAYS[-4:])  # widened by 2, to 4 partitions
    assert choice.extended_by == 2 and choice.labels == "gold" and choice.determined
    assert choice.class_counts == {"on_time": 15, "late": 75}
    assert "widened by 2 to 4 partitions (2024-01-04 .. 2024-01-07)" in choice.warnings[0]
    rows = choice.select(window(days), partition_column="_partition")
    assert len(rows) == 90 and set(rows["label_source"]) == {"gold"}


def test_a_holdout_still_single_class_at_the_widest_allowed_is_undetermined_and_says_so():
    days = {d: day_rows(d, {"late": 20}) for d in DAYS}

    choice = choose(window(days))

    assert not choice.determined
    assert choice.holdout_partitions == tuple(DAYS[-4:])  # the widest allowed
    assert choice.class_counts == {"on_time": 0, "late": 80}
    assert any("single-class holdout: only 'late' has at least 10" in w for w in choice.warnings)
    assert any("'on_time' (n=0)" in w for w in choice.warnings)


def test_widening_always_leaves_a_partition_to_train_on():
    days = {d: day_rows(d, {"late": 20}) for d in DAYS}

    choice = choose(window(days), max_holdout_partitions=50)

    assert choice.train_partitions == (DAYS[0],)


def test_too_few_gold_rows_fall_back_to_lf_labels_with_a_warning():
    days = {d: day_rows(d, {"late": 2}, {"on_time": 40, "late": 30}, abstained=5) for d in DAYS}

    choice = choose(window(days))

    assert choice.labels == "lf" and choice.gold_rows == 4 and choice.determined
    assert choice.class_counts == {"on_time": 80, "late": 64}  # abstained rows are not evaluation rows
    assert choice.warnings[0].startswith("the holdout's labels come from the same labeling functions")
    assert "(4 gold rows in the holdout, expected at least 30)" in choice.warnings[0]


def test_a_rare_class_is_named_but_two_classes_with_enough_rows_keep_the_evaluation_determined():
    classes = ["sun", "rain", "snow"]
    frame = window({d: day_rows(d, {"sun": 20, "rain": 20, "snow": 1}) for d in DAYS})

    choice = choose_holdout(
        frame, DAYS, classes, partition_column="_partition", holdout_partitions=2, max_holdout_partitions=3,
        min_class_rows=10,
    )  # fmt: skip

    assert choice.determined and choice.class_counts == {"sun": 60, "rain": 60, "snow": 3}
    assert choice.short_classes == {"snow": 3}
    assert any("'snow' (n=3)" in w for w in choice.warnings)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"holdout_partitions": 0}, "holdout_partitions=0; expected an integer >= 1"),
        ({"min_class_rows": 2.5}, "min_class_rows=2.5; expected an integer >= 1"),
        ({"holdout_partitions": 7}, "7 partitions; expected more than holdout_partitions=7"),
    ],
)
def test_bad_settings_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        choose(window(mixed_days()), **kwargs)


def split(frame: pd.DataFrame, **kwargs):
    from dcai_assets.core.holdout import split_window

    settings = dict(partition_column="_partition", holdout_partitions=2, max_holdout_partitions=4)
    settings |= dict(min_gold_rows=30, min_class_rows=10) | kwargs
    return split_window(frame, DAYS, CLASSES, **settings)


def test_the_window_split_leaves_abstained_rows_out_and_judges_a_gold_holdout_by_gold_rows_only():
    days = {
        d: day_rows(d, {"on_time": 15, "late": 15}, {"on_time": 50, "late": 20}, abstained=7) for d in DAYS
    }
    result = split(window(days))
    assert result.choice.labels == "gold"
    assert result.train["label"].notna().all() and result.held["label"].notna().all()
    assert len(result.train) == 5 * 100 and len(result.held) == 2 * 100  # 7 abstained per day left out
    assert set(result.train["_partition"]) == set(DAYS[:5]) and set(result.held["_partition"]) == set(
        DAYS[5:]
    )
    assert (result.evaluation["label_source"] == "gold").all() and len(result.evaluation) == 2 * 30


def test_the_window_split_of_a_single_class_holdout_is_flagged_undetermined():
    days = {d: day_rows(d, {"on_time": 20, "late": 20}) for d in DAYS[:3]}
    days |= {d: day_rows(d, {"late": 40}) for d in DAYS[3:]}
    result = split(window(days))
    assert not result.choice.determined
    assert set(result.evaluation["label"]) == {"late"}
    assert any(w.startswith("single-class holdout: only 'late' has") for w in result.choice.warnings)


def test_a_one_row_holdout_is_split_off_and_flagged_short_not_widened_past_its_window():
    days = {d: day_rows(d, {}, {"on_time": 30, "late": 30}) for d in DAYS[:6]}
    days[DAYS[6]] = day_rows(DAYS[6], {}, {"late": 1})
    result = split(window(days), holdout_partitions=1, max_holdout_partitions=1)
    assert list(result.choice.holdout_partitions) == [DAYS[6]] and len(result.evaluation) == 1
    assert not result.choice.determined and result.choice.labels == "lf"
    assert len(result.train) == 6 * 60
