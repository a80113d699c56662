"""What-if retrains on synthetic data: removing planted harmful rows helps where random removal
does not; every undetermined figure is flagged; bad arguments are refused by name."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from dcai_assets.core.evaluation import evaluate
from dcai_assets.core.knn_shapley import knn_shapley
from dcai_assets.core.training import TrainingError, fit_pipeline
from dcai_assets.core.what_if import harmful_order, lf_rows, mcnemar_p, sweep_sizes, what_if

CLASSES = ["a", "b"]


def two_clusters(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    label = rng.choice(CLASSES, size=n)
    centre = np.where(label == "a", -1.0, 1.0)
    return pd.DataFrame(
        {
            "x": centre + rng.normal(0, 0.6, n),
            "y": centre + rng.normal(0, 0.6, n),
            "group": rng.choice(["g1", "g2"], size=n),
            "label": label,
            "_partition": "p",
        }
    )


def one_nearest_neighbour():
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline([("scale", StandardScaler()), ("knn", KNeighborsClassifier(n_neighbors=1))])


def retrainer(holdout: pd.DataFrame, sensitive: str | None = None, min_slice_rows: int = 20):
    def retrain(rows: pd.DataFrame):
        model = fit_pipeline(
            one_nearest_neighbour(), rows[["x", "y"]], rows["label"].to_numpy(), sample_weight=None,
            seed=0, window="test",
        )  # fmt: skip
        predicted = model.predict(holdout[["x", "y"]])
        evaluation = evaluate(
            holdout["label"], predicted, holdout, CLASSES, partition_column="_partition",
            sensitive=sensitive, min_slice_rows=min_slice_rows,
        )  # fmt: skip
        return predicted, evaluation

    return retrain


@pytest.fixture(scope="module")
def planted():
    """600 clean training rows with 60 labels flipped (the planted harmful rows), a clean holdout
    of 300, and every training row's exact KNN-Shapley value against it."""
    train, holdout = two_clusters(600, 1), two_clusters(300, 2)
    flipped = np.random.default_rng(3).choice(len(train), size=60, replace=False)
    train.loc[flipped, "label"] = np.where(train.loc[flipped, "label"] == "a", "b", "a")
    values = knn_shapley(
        train[["x", "y"]].to_numpy(), train["label"].to_numpy(), holdout[["x", "y"]].to_numpy(),
        holdout["label"].to_numpy(), k=5,
    ).values  # fmt: skip
    return train, holdout, flipped, values


def test_removing_the_lowest_valued_rows_beats_every_random_removal_of_as_many(planted):
    train, holdout, flipped, values = planted
    result = what_if(
        train, holdout["label"].to_numpy(), retrainer(holdout), order=harmful_order(values), sizes=[30, 60],
        random_repeats=5, selection="lowest KNN-Shapley value",
    )  # fmt: skip
    table = result.table().set_index(["removed_rows", "metric"])
    for size in (30, 60):
        row = table.loc[(size, "accuracy")]
        assert row["after"] > row["before"] + 0.03  # 1-NN recovers most of the flips' damage
        assert row["after"] > row["random_max"]
        assert row["verdict"].startswith("better than all 5 random removals; ")
        assert row["rows_fixed"] > 3 * row["rows_broken"]
        assert row["paired_p"] < 0.05 and "(significant at 0.05)" in row["verdict"]
        assert row["random_draws"] == 5 and row["random_sd"] > 0
        assert row["flag"] == ""
    # the baseline is what an unmodified retrain scores, and the table shows it unchanged per step
    assert table.loc[(30, "accuracy"), "before"] == table.loc[(60, "accuracy"), "before"]
    assert len(set(harmful_order(values)[:60]) & set(flipped)) > 45  # the planted rows are found


def test_too_few_holdout_rows_flag_every_figure_with_the_count(planted):
    train, holdout, _, values = planted
    small = holdout.head(12)
    result = what_if(
        train, small["label"].to_numpy(), retrainer(small), order=harmful_order(values), sizes=[30],
        random_repeats=2, min_rows=30, notes=["the holdout's labels come from the LFs"],
    )  # fmt: skip
    flag = result.table().loc[0, "flag"]
    assert "too few holdout rows: 12 (need 30)" in flag
    assert "[1] too few holdout rows: 12 (need 30)" in result.markdown()
    assert result.markdown().endswith("NOTE: the holdout's labels come from the LFs")


def test_an_undetermined_fairness_gap_is_flagged_and_never_a_number(planted):
    train, holdout, _, values = planted
    holdout = holdout.assign(group=["g1"] * 290 + ["g2"] * 10)  # g2 is too small for any gap
    result = what_if(
        train, holdout["label"].to_numpy(), retrainer(holdout, sensitive="group"),
        order=harmful_order(values), sizes=[30], random_repeats=2,
    )  # fmt: skip
    gaps = result.table()
    gaps = gaps[gaps["metric"].str.startswith("fairness: ")]
    assert len(gaps) == 4
    assert gaps[["before", "after", "change", "random_mean"]].isna().all().all()
    assert gaps["flag"].str.contains("before: undetermined (", regex=False).all()
    assert "before: undetermined (1 group(s) with enough rows" in gaps["flag"].iloc[0]
    assert gaps["flag"].str.contains("random: 2 of 2 draws undetermined").all()
    md = result.markdown()
    assert "| fairness: demographic_parity_difference | - | - | - |" in md


def test_a_determined_fairness_gap_is_shown_before_and_after(planted):
    train, holdout, _, values = planted
    result = what_if(
        train, holdout["label"].to_numpy(), retrainer(holdout, sensitive="group"),
        order=harmful_order(values), sizes=[30], random_repeats=3,
    )  # fmt: skip
    table = result.table().set_index("metric")
    dp = table.loc["fairness: demographic_parity_difference"]
    assert 0 <= dp["before"] <= 1 and 0 <= dp["after"] <= 1 and not math.isnan(dp["random_mean"])
    assert dp["flag"] == ""
    assert dp["after_ci_low"] <= dp["after"] <= dp["after_ci_high"]  # shown with its interval
    assert f"{dp['after']:.4f} ({dp['after_ci_low']:.3f} .. {dp['after_ci_high']:.3f})" in result.markdown()


def test_a_retrain_that_fails_is_reported_with_its_error_not_a_figure():
    train = pd.DataFrame({"x": [0.0, 1, 2, 3], "y": 0.0, "label": list("aaab"), "_partition": "p"})
    holdout = train.copy()
    result = what_if(
        train, holdout["label"].to_numpy(), retrainer(holdout), order=np.array([3, 0]), sizes=[1],
        random_repeats=1, min_rows=1,
    )  # fmt: skip
    row = result.table().iloc[0]
    assert math.isnan(row["after"]) and row["verdict"] == "undetermined"
    assert "retrain failed after removing 1 rows" in row["flag"] and "two classes" in row["flag"]


def test_the_random_draws_come_from_the_pool_and_repeat_with_the_seed():
    removed = []
    train = pd.DataFrame({"x": np.arange(20.0), "label": ["a", "b"] * 10, "_partition": "p"})

    def retrain(rows):
        removed.append(sorted(set(range(20)) - set(rows.index)))
        if len(removed) == 1:
            raise TrainingError("no")  # the baseline fails: reported, not raised
        return np.array(["a"]), evaluate(["a"], ["a"], train.head(1), CLASSES, partition_column="_partition")

    kwargs = dict(order=np.array([0, 1]), sizes=[2], pool=np.arange(10, 20), random_repeats=3, min_rows=1)
    first = what_if(train, ["a"], retrain, **kwargs)
    draws = removed[2:]
    assert all(set(d) <= set(range(10, 20)) and len(d) == 2 for d in draws)
    assert removed[1] == [0, 1]
    removed.clear()
    what_if(train, ["a"], retrain, **kwargs)
    assert removed[2:] == draws
    assert "retrain failed after removing 0 rows: no" in first.table().loc[0, "flag"]


def test_sweep_sizes_round_each_fraction_of_the_window_and_say_what_they_skip():
    assert sweep_sizes(1000, [0.005, 0.01, 0.02, 0.05]) == ([5, 10, 20, 50], [])
    sizes, notes = sweep_sizes(50, [0.005, 0.02, 0.021, 0.5])
    assert sizes == [1, 25]
    assert notes == ["0.5% of 50 training rows is no row: skipped"]


@pytest.mark.parametrize(
    ("fractions", "message"),
    [([], "non-empty list"), ([0.0], "between 0 and 1"), ([1.5], "between 0 and 1"), (["1%"], "'1%'"),
     ([True], "True"), ("0.01", "non-empty list")],
)  # fmt: skip
def test_sweep_sizes_refuse_fractions_outside_zero_to_one(fractions, message):
    with pytest.raises(ValueError, match="fractions") as e:
        sweep_sizes(100, fractions)
    assert message in str(e.value)


def test_harmful_order_refuses_missing_values_and_non_numbers():
    assert harmful_order(np.array([0.3, -0.2, 0.1, -0.2])).tolist() == [1, 3, 2, 0]
    with pytest.raises(ValueError, match="values: 1 of 2 are NaN"):
        harmful_order(np.array([0.1, np.nan]))
    with pytest.raises(TypeError, match="values: <U1"):
        harmful_order(np.array(["a", "b"]))


def test_lf_rows_are_the_rows_it_voted_on_except_gold():
    train = pd.DataFrame(
        {"lf__hot": [1, -1, 0, 1], "lf__cold": [-1, 0, -1, -1], "label_source": ["lf", "lf", "lf", "gold"]}
    )
    assert lf_rows(train, "hot").tolist() == [0, 2]
    with pytest.raises(ValueError, match=r"lf: 'warm' .* expected one of \['cold', 'hot'\]"):
        lf_rows(train, "warm")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(sizes=[0]), "sizes: 0; expected an integer >= 1"),
        (dict(sizes=[4]), "sizes: 4 rows to remove; expected at most 3"),
        (dict(sizes=[]), "sizes: []"),
        (dict(sizes=[1], random_repeats=0), "random_repeats: 0"),
        (dict(sizes=[1], random_repeats=2.0), "random_repeats: 2.0"),
        (dict(sizes=[1], order=np.array([0, 0])), "order: expected distinct integer"),
        (dict(sizes=[1], order=np.array([9])), "order: positions outside 0..3"),
        (dict(sizes=[1], pool=np.array([7])), "pool: positions outside 0..3"),
        (dict(sizes=[1], min_rows=True), "min_rows: True"),
    ],
)
def test_what_if_refuses_bad_arguments_by_name(kwargs, message):
    train = pd.DataFrame({"x": [0.0, 1, 2, 3], "label": list("abab")})
    arguments = dict(order=np.array([0, 1, 2, 3])) | kwargs
    with pytest.raises(ValueError) as e:
        what_if(train, ["a"], lambda rows: None, **arguments)
    assert message in str(e.value)


def test_what_if_refuses_no_holdout_and_a_non_frame():
    with pytest.raises(ValueError, match="y_true: no holdout rows"):
        what_if(pd.DataFrame({"x": [1]}), [], lambda rows: None, order=np.array([0]), sizes=[1])
    with pytest.raises(TypeError, match="train: ndarray; expected a pandas DataFrame"):
        what_if(np.zeros((3, 1)), ["a"], lambda rows: None, order=np.array([0]), sizes=[1])


def test_the_columns_the_docs_name_for_the_what_if_table_exist():
    import re
    from pathlib import Path

    from dcai_assets.core.what_if import TABLE_COLUMNS

    concepts = (Path(__file__).resolve().parents[2] / "docs" / "concepts.md").read_text()
    row = next(line for line in concepts.splitlines() if line.startswith("| `<name>/what_if`"))
    named = re.findall(r"`([a-z_]+)`", row.split("; metadata:")[0])
    assert {"before", "after", "random_mean", "flag"} <= set(named)
    assert not set(named) - set(TABLE_COLUMNS)


def test_mcnemar_p_is_the_exact_two_sided_binomial_of_rows_fixed_against_rows_broken():
    assert mcnemar_p(4, 1) == 0.375  # 2 * (1 + 5) / 32
    assert mcnemar_p(1, 4) == mcnemar_p(4, 1)
    assert mcnemar_p(12, 1) == pytest.approx(2 * 14 / 2**13)
    assert mcnemar_p(0, 0) == 1.0 and mcnemar_p(5, 5) == 1.0
    with pytest.raises(ValueError, match="fixed"):
        mcnemar_p(-1, 2)


def test_a_gain_of_a_few_rows_better_than_every_random_draw_is_called_chance():
    """Three net rows of 140, as on the demo's flights: better than every random removal (which
    changed no prediction of that stable model) and still not evidence of a better model."""
    y = np.array(["a"] * 70 + ["b"] * 70)
    was = y.copy()
    was[60:70] = "b"  # 10 wrong before
    now = was.copy()
    now[60:64] = "a"  # 4 fixed
    now[0] = "b"  # 1 broken
    holdout = pd.DataFrame({"p": ["h"] * 140})
    outcomes = iter([was, now, was, was])  # before, the targeted removal, two random draws

    def retrain(rows):
        predicted = next(outcomes)
        return predicted, evaluate(pd.Series(y), predicted, holdout, ["a", "b"], partition_column="p")

    table = what_if(
        pd.DataFrame({"x": range(10)}), y, retrain, order=np.arange(10), sizes=[2], random_repeats=2
    ).table()
    row = table[table["metric"] == "accuracy"].iloc[0]
    assert (row["rows_fixed"], row["rows_broken"]) == (4, 1)
    assert row["paired_p"] == 0.375
    assert row["verdict"] == (
        "better than all 2 random removals; 4 fixed vs 1 broken, McNemar p = 0.38 "
        "(not significant: could be chance)"
    )
