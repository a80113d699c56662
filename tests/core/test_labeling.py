"""Labeling functions: declaring them, validating a set, versioning it, and applying it to a partition."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dcai_assets.core.labeling import (
    ABSTAIN,
    LabelingFunction,
    LabelingFunctionError,
    LabelingFunctionSet,
    apply_lfs,
    gold_indices,
    labeling_function,
)

CLASSES = ["on_time", "late"]


def readings() -> pd.DataFrame:
    """Eight rows indexed 100..107; rows 101, 103 and 107 have a negative `x`."""
    return pd.DataFrame(
        {"x": [1.0, -2.0, 9.0, -4.0, 0.25, 16.0, 4.0, -8.0], "site": list("nsewnsew")},
        index=range(100, 108),
    )


def one_lf_set(fn, *, vectorized: bool = True, on_error: str = "raise", name: str = "rule"):
    lf = labeling_function(name, vectorized=vectorized)(fn)
    return LabelingFunctionSet([lf], CLASSES, on_error=on_error)


@labeling_function(uses=["x"])
def big_x(df):
    """Votes late when x is large.

    More detail that is not part of the description.
    """
    return np.where(df["x"] > 5, 1, ABSTAIN)


@labeling_function(name="negative_x", vectorized=False, uses=["x", "site"])
def small_x(row):
    return 0 if row.x < 0 else ABSTAIN


def sqrt_per_element(df):
    """Fails with a math domain error on the rows where x is negative."""
    return np.array([1 if math.sqrt(v) > 2.5 else 0 for v in df["x"]])


def check_per_row(row):
    if row.x < 0:
        raise ValueError(f"x must not be negative, got {row.x}")
    return 1 if row.x > 6 else ABSTAIN


def import_lf_module(tmp_path: Path, module: str, body: str) -> LabelingFunction:
    """Write an LF named `rule` with the given body to a module file and import it."""
    path = tmp_path / f"{module}.py"
    path.write_text(
        "import numpy as np\n"
        "from dcai_assets.core.labeling import labeling_function\n\n\n"
        "@labeling_function()\n"
        "def rule(df):\n"
        f"    return {body}\n"
    )
    spec = importlib.util.spec_from_file_location(module, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[module] = mod
    spec.loader.exec_module(mod)
    return mod.rule


# --- the decorator -----------------------------------------------------------------------------------


def test_the_decorator_names_the_lf_after_the_function_and_describes_it_by_its_first_docstring_line():
    assert big_x.name == "big_x"
    assert big_x.uses == ("x",)
    assert big_x.description == "Votes late when x is large."
    assert big_x.vectorized is True


def test_the_decorator_takes_an_explicit_name_and_row_wise_mode():
    assert small_x.name == "negative_x"
    assert small_x.vectorized is False
    assert small_x.uses == ("x", "site")
    assert small_x.description == ""


def test_a_vectorized_lf_gets_the_whole_frame_and_a_row_wise_lf_gets_each_row_as_a_namedtuple():
    seen: dict[str, list] = {"frames": [], "rows": []}

    def whole(df):
        seen["frames"].append(df)
        return np.zeros(len(df), dtype=int)

    def each(row):
        seen["rows"].append(row)
        return 1

    frame = readings()
    lf_set = LabelingFunctionSet(
        [labeling_function("whole")(whole), labeling_function("each", vectorized=False)(each)], CLASSES
    )
    apply_lfs(lf_set, frame)

    assert len(seen["frames"]) == 1 and seen["frames"][0] is frame
    assert len(seen["rows"]) == len(frame)
    first = seen["rows"][0]
    assert first._fields == ("x", "site")
    assert (first.x, first.site) == (1.0, "n")


# --- validating a set ----------------------------------------------------------------------------------


def test_a_set_with_fewer_than_two_classes_is_refused():
    with pytest.raises(ValueError, match=r"classes: \['late'\] has fewer than 2 classes"):
        LabelingFunctionSet([big_x], ["late"])


def test_an_empty_set_is_refused():
    with pytest.raises(ValueError, match="lfs: the set is empty"):
        LabelingFunctionSet([], CLASSES)


def test_a_set_with_duplicate_lf_names_is_refused_naming_them():
    twin = labeling_function("big_x")(sqrt_per_element)

    with pytest.raises(ValueError, match=r"lfs: names \['big_x'\] are used more than once"):
        LabelingFunctionSet([big_x, small_x, twin], CLASSES)


def test_an_unknown_on_error_mode_is_refused():
    with pytest.raises(ValueError, match=r"on_error: 'skip'; expected 'raise' or 'abstain'"):
        LabelingFunctionSet([big_x], CLASSES, on_error="skip")


# --- versioning ------------------------------------------------------------------------------------------


def test_the_version_is_stable_for_the_same_code(tmp_path):
    first = import_lf_module(tmp_path, "lfs_first", "np.where(df['x'] > 5, 1, -1)")
    again = import_lf_module(tmp_path, "lfs_again", "np.where(df['x'] > 5, 1, -1)")

    assert LabelingFunctionSet([first], CLASSES).version == LabelingFunctionSet([again], CLASSES).version
    assert LabelingFunctionSet([big_x], CLASSES).version == LabelingFunctionSet([big_x], CLASSES).version


def test_the_version_changes_when_an_lfs_code_changes(tmp_path):
    before = import_lf_module(tmp_path, "lfs_before", "np.where(df['x'] > 5, 1, -1)")
    after = import_lf_module(tmp_path, "lfs_after", "np.where(df['x'] > 6, 1, -1)")

    assert before.name == after.name == "rule"
    assert LabelingFunctionSet([before], CLASSES).version != LabelingFunctionSet([after], CLASSES).version


def test_the_version_changes_when_the_classes_change():
    assert (
        LabelingFunctionSet([big_x], CLASSES).version
        != LabelingFunctionSet([big_x], ["on_time", "delayed"]).version
    )


# --- applying a set ----------------------------------------------------------------------------------------


def test_apply_lfs_returns_an_n_by_m_int8_matrix_with_minus_one_for_abstain():
    integral_floats = labeling_function("floats")(lambda df: np.where(df["x"] == 1.0, 0.0, -1.0))
    votes = apply_lfs(LabelingFunctionSet([big_x, small_x, integral_floats], CLASSES), readings())

    assert votes.matrix.dtype == np.int8
    assert votes.matrix.shape == (8, 3)
    assert votes.matrix[:, 0].tolist() == [-1, -1, 1, -1, -1, 1, -1, -1]
    assert votes.matrix[:, 1].tolist() == [-1, 0, -1, 0, -1, -1, -1, 0]
    assert votes.matrix[:, 2].tolist() == [0, -1, -1, -1, -1, -1, -1, -1]
    assert votes.errors == {}


def test_a_vectorized_lf_that_raises_names_the_lf_the_partition_and_the_first_failing_row():
    lf_set = one_lf_set(sqrt_per_element, name="sqrt_lf")

    with pytest.raises(LabelingFunctionError) as info:
        apply_lfs(lf_set, readings(), partition="2024-01-05")

    message = str(info.value)
    assert "'sqrt_lf' raised ValueError: math domain error" in message
    assert "partition '2024-01-05'" in message
    assert "first failing row 101 (x=-2.0, site='s')" in message
    assert "on_error='abstain'" in message


def test_the_failing_row_is_shown_with_plain_values_for_an_integer_index():
    frame = readings().set_axis([100, 105, 110, 115, 120, 125, 130, 135])
    lf_set = one_lf_set(sqrt_per_element, name="sqrt_lf")

    with pytest.raises(LabelingFunctionError) as info:
        apply_lfs(lf_set, frame)

    assert "first failing row 105 (x=-2.0, site='s')" in str(info.value)


def test_a_row_wise_lf_that_raises_names_the_lf_the_partition_and_the_first_failing_row():
    lf_set = one_lf_set(check_per_row, vectorized=False, name="checked")

    with pytest.raises(LabelingFunctionError) as info:
        apply_lfs(lf_set, readings(), partition="2024-01-05")

    message = str(info.value)
    assert "'checked' raised ValueError: x must not be negative, got -2.0" in message
    assert "partition '2024-01-05'" in message
    assert "first failing row 101" in message


def test_with_on_error_abstain_a_vectorized_lf_abstains_exactly_on_the_rows_it_fails_on():
    frame = pd.DataFrame({"x": np.arange(64.0)}, index=range(100, 164))
    failing = [0, 5, 6, 31, 32, 63]
    frame.iloc[failing, 0] = -1.0
    lf_set = one_lf_set(sqrt_per_element, on_error="abstain", name="sqrt_lf")

    votes = apply_lfs(lf_set, frame)

    assert votes.errors == {"sqrt_lf": failing}
    expected = np.where(frame["x"] < 0, ABSTAIN, np.where(np.sqrt(frame["x"].clip(0)) > 2.5, 1, 0))
    assert votes.matrix[:, 0].tolist() == expected.tolist()


def test_with_on_error_abstain_a_row_wise_lf_abstains_exactly_on_the_rows_it_fails_on():
    lf_set = one_lf_set(check_per_row, vectorized=False, on_error="abstain", name="checked")

    votes = apply_lfs(lf_set, readings())

    assert votes.errors == {"checked": [1, 3, 7]}
    assert votes.matrix[:, 0].tolist() == [-1, -1, 1, -1, -1, 1, -1, -1]


def test_an_out_of_range_vote_is_refused_naming_the_lf_the_row_and_the_valid_range():
    lf_set = one_lf_set(lambda df: np.where(df["x"] > 5, 5, ABSTAIN), name="too_big")

    with pytest.raises(LabelingFunctionError) as info:
        apply_lfs(lf_set, readings(), partition="2024-01-05")

    message = str(info.value)
    assert "'too_big' voted 5 on partition '2024-01-05' at row 102 (2 rows out of range)" in message
    assert "expected a class index 0..1 or ABSTAIN (-1)" in message


def test_a_vote_vector_of_the_wrong_length_is_refused_naming_the_lf():
    lf_set = one_lf_set(lambda df: np.zeros(len(df) - 1, dtype=int), name="short")

    with pytest.raises(
        LabelingFunctionError, match=r"'short' returned 7 votes on the data; expected .* \(8\)"
    ):
        apply_lfs(lf_set, readings())


def test_nan_votes_are_refused_naming_the_lf_and_the_row():
    lf_set = one_lf_set(lambda df: np.where(df["x"] > 0, 1.0, np.nan), name="nan_lf")

    with pytest.raises(LabelingFunctionError, match=r"'nan_lf' returned NaN on the data at row 101"):
        apply_lfs(lf_set, readings())


def test_non_integer_float_votes_are_refused_naming_the_lf():
    lf_set = one_lf_set(lambda df: df["x"] / 10, name="fraction")

    with pytest.raises(LabelingFunctionError, match=r"'fraction' returned non-integer votes"):
        apply_lfs(lf_set, readings())


def test_string_votes_are_refused_naming_the_lf():
    lf_set = one_lf_set(lambda df: np.where(df["x"] > 0, "late", "on_time"), name="words")

    with pytest.raises(LabelingFunctionError, match=r"'words' returned <U7 votes .* expected integer class"):
        apply_lfs(lf_set, readings())


def test_non_integer_float_votes_of_a_row_wise_lf_are_refused_naming_the_lf():
    lf_set = one_lf_set(lambda row: 0.7, vectorized=False, name="fraction_row")

    with pytest.raises(LabelingFunctionError, match="'fraction_row'"):
        apply_lfs(lf_set, readings())


def test_string_votes_of_a_row_wise_lf_are_refused_naming_the_lf():
    lf_set = one_lf_set(lambda row: "1", vectorized=False, name="words_row")

    with pytest.raises(LabelingFunctionError, match="'words_row'"):
        apply_lfs(lf_set, readings())


# --- gold labels ---------------------------------------------------------------------------------------


def test_gold_labels_map_class_names_and_indices_and_leave_missing_ones_at_minus_one():
    values = pd.Series(["late", "on_time", None, "1", 0, np.nan])

    assert gold_indices(values, CLASSES, column="label").tolist() == [1, 0, -1, 1, 0, -1]


def test_gold_labels_stored_as_floats_map_to_their_indices():
    values = pd.Series([1.0, 0.0, np.nan])

    assert gold_indices(values, CLASSES, column="label").tolist() == [1, 0, -1]


def test_an_unknown_gold_label_is_refused_naming_the_column_the_value_and_the_row():
    values = pd.Series(["late", "maybe", "maybe", 2], index=range(10, 14))

    with pytest.raises(LabelingFunctionError) as info:
        gold_indices(values, CLASSES, column="label", partition="2024-01-05")

    message = str(info.value)
    assert "gold label column 'label' in partition '2024-01-05' holds 'maybe' at row 11" in message
    assert "(3 such rows)" in message
    assert "expected one of ['on_time', 'late'] or their indices" in message


def test_an_unknown_gold_label_is_shown_at_a_plain_row_label_for_an_integer_index():
    values = pd.Series(["late", "maybe"], index=[10, 20])

    with pytest.raises(LabelingFunctionError, match=r"holds 'maybe' at row 20 \("):
        gold_indices(values, CLASSES, column="label")


def test_gold_labels_equal_to_numeric_class_names_map_to_those_classes():
    values = pd.Series([1, 2, 3])

    assert gold_indices(values, ["1", "2", "3"], column="stars").tolist() == [0, 1, 2]


@pytest.mark.parametrize(("value", "shown"), [(1, "one value (1)"), (None, "one value (None)")])
def test_an_lf_returning_one_value_instead_of_votes_is_refused_saying_what_it_returned(value, shown):
    lfs = LabelingFunctionSet(lfs=[labeling_function("single")(lambda df: value)], classes=["a", "b"])
    frame = pd.DataFrame({"x": [1, 2, 3]})

    with pytest.raises(LabelingFunctionError) as info:
        apply_lfs(lfs, frame, partition="p1")

    assert str(info.value) == (
        f"labeling function 'single' returned {shown} on partition 'p1'; expected one vote per row (3)"
    )
