"""Reading one partition file: parse errors name the file, partition, line and column."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from dcai_assets.core.reading import file_digest, find_partition_file, frame_digest, read_table_file
from dcai_assets.errors import DataInputError

SUFFIXES = (".csv", ".parquet")


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_a_well_formed_csv_is_read_as_is(tmp_path):
    path = write(tmp_path / "2024-01-01.csv", b"id,city\n1,Paris\n2,Lyon\n")

    frame = read_table_file(path, partition="2024-01-01")

    assert list(frame.columns) == ["id", "city"]
    assert frame["city"].tolist() == ["Paris", "Lyon"]


def test_ragged_rows_are_refused_naming_file_and_partition(tmp_path):
    path = write(tmp_path / "2024-01-02.csv", b"id,city\n1,Paris\n2,Lyon,extra\n")

    with pytest.raises(DataInputError) as info:
        read_table_file(path, partition="2024-01-02")

    message = str(info.value)
    assert "'2024-01-02.csv'" in message
    assert "partition '2024-01-02'" in message
    assert "cannot be parsed as CSV" in message
    assert "no more fields on a line than in the header" in message


def test_every_row_longer_than_the_header_is_refused(tmp_path):
    path = write(tmp_path / "2024-01-02.csv", b"id,city\n1,Paris,FR\n2,Lyon,FR\n")

    with pytest.raises(DataInputError) as info:
        read_table_file(path, partition="2024-01-02")
    assert "more fields than the header has names" in str(info.value)


def test_a_trailing_comma_on_every_row_keeps_values_in_their_columns(tmp_path):
    path = write(tmp_path / "2024-01-02.csv", b"id,city\n1,Paris,\n2,Lyon,\n")

    frame = read_table_file(path, partition="2024-01-02")
    assert frame["city"].tolist() == ["Paris", "Lyon"]


@pytest.mark.parametrize("data", [b"", b"  \n\n \t\n"], ids=["zero-bytes", "whitespace-only"])
def test_an_empty_file_is_refused(tmp_path, data):
    path = write(tmp_path / "2024-01-03.csv", data)

    with pytest.raises(DataInputError) as info:
        read_table_file(path, partition="2024-01-03")

    assert "the file is empty" in str(info.value)
    assert info.value.file == "2024-01-03.csv"
    assert info.value.partition == "2024-01-03"


def test_a_header_with_an_empty_column_name_is_refused(tmp_path):
    path = write(tmp_path / "2024-01-04.csv", b"id,,city\n1,2,Paris\n")

    with pytest.raises(DataInputError) as info:
        read_table_file(path, partition="2024-01-04")

    assert "empty column name" in str(info.value)
    assert "a name for every column" in str(info.value)


def test_latin1_bytes_are_refused_naming_line_column_and_utf8(tmp_path):
    data = "id,city,zip\n1,Paris,75001\n2,Montréal,H2X\n".encode("latin-1")
    path = write(tmp_path / "2024-01-05.csv", data)

    with pytest.raises(DataInputError) as info:
        read_table_file(path, partition="2024-01-05")

    message = str(info.value)
    assert "line 3" in message
    assert "column 'city'" in message
    assert "UTF-8" in message
    assert "byte 0xe9" in message
    assert info.value.column == "city"


def test_a_quoted_comma_does_not_shift_the_column_named_for_a_bad_byte(tmp_path):
    data = 'id,name,city,zip\n1,"Smith, J",Montréal,H2X\n'.encode("latin-1")
    path = write(tmp_path / "2024-01-05.csv", data)

    with pytest.raises(DataInputError) as info:
        read_table_file(path, partition="2024-01-05")

    assert info.value.column == "city"


def test_a_corrupt_parquet_file_is_refused(tmp_path):
    path = write(tmp_path / "2024-01-06.parquet", b"PAR1 this is not really parquet PAR1")

    with pytest.raises(DataInputError) as info:
        read_table_file(path, partition="2024-01-06")

    assert "not valid Parquet" in str(info.value)
    assert "'2024-01-06.parquet'" in str(info.value)


def test_a_parquet_file_round_trips(tmp_path):
    frame = pd.DataFrame({"id": [1, 2], "city": ["Paris", "Lyon"]})
    path = tmp_path / "2024-01-06.parquet"
    frame.to_parquet(path)

    pd.testing.assert_frame_equal(read_table_file(path, partition="2024-01-06"), frame)


def test_find_partition_file_without_a_file_names_the_partition(tmp_path):
    with pytest.raises(DataInputError) as info:
        find_partition_file(tmp_path, "2024-01-07", SUFFIXES)

    assert info.value.partition == "2024-01-07"
    assert "2024-01-07.csv" in str(info.value)


def test_find_partition_file_with_two_files_for_one_key_is_refused(tmp_path):
    write(tmp_path / "2024-01-08.csv", b"id\n1\n")
    write(tmp_path / "2024-01-08.parquet", b"whatever")

    with pytest.raises(DataInputError) as info:
        find_partition_file(tmp_path, "2024-01-08", SUFFIXES)

    assert "2 files hold this partition" in str(info.value)
    assert "exactly one file" in str(info.value)


def test_find_partition_file_returns_the_one_file(tmp_path):
    path = write(tmp_path / "2024-01-09.parquet", b"whatever")
    write(tmp_path / "2024-01-10.csv", b"id\n1\n")

    assert find_partition_file(tmp_path, "2024-01-09", SUFFIXES) == path


def test_file_digest_follows_content_not_modification_time(tmp_path):
    path = write(tmp_path / "2024-01-11.csv", b"id\n1\n")
    before = file_digest(path)

    os.utime(path, (1_000_000_000, 1_000_000_000))
    assert file_digest(path) == before

    write(path, b"id\n2\n")
    assert file_digest(path) != before


def test_frame_digest_is_stable_for_equal_frames_and_changes_with_a_value():
    def frame():
        return pd.DataFrame({"id": [1, 2, 3], "city": ["Paris", "Lyon", "Nice"]})

    changed = frame()
    changed.loc[2, "city"] = "Nizza"

    assert frame_digest(frame()) == frame_digest(frame())
    assert frame_digest(frame().set_axis([7, 8, 9])) == frame_digest(frame())
    assert frame_digest(changed) != frame_digest(frame())


def test_an_id_too_long_for_a_float_keeps_every_digit_when_the_column_has_a_gap(tmp_path):
    # Read as numbers, a column with an empty cell would be float64 and round 17-digit ids.
    path = write(tmp_path / "2024-01-03.csv", b"id,n\n12345678901234567,1\n,2\n98765432109876543,3\n")

    frame = read_table_file(path, partition="2024-01-03")

    assert frame["id"].tolist()[::2] == ["12345678901234567", "98765432109876543"]
    assert pd.isna(frame["id"].iloc[1])
    assert frame["n"].tolist() == ["1", "2", "3"]  # the schema parses the text


def test_every_csv_cell_is_read_as_the_text_in_the_file_and_only_an_empty_cell_is_missing(tmp_path):
    path = write(
        tmp_path / "2024-01-04.csv",
        b"id,country,x,flag\n000123,NA,1e300,True\n000124,,2.50,\n000125,null,NaN,false\n",
    )

    frame = read_table_file(path, partition="2024-01-04")

    assert frame["id"].tolist() == ["000123", "000124", "000125"]  # zeros kept
    assert frame["country"].iloc[[0, 2]].tolist() == ["NA", "null"]  # text, not missing
    assert pd.isna(frame["country"].iloc[1])  # the empty cell
    assert frame["x"].tolist() == ["1e300", "2.50", "NaN"]
    assert frame["flag"].iloc[[0, 2]].tolist() == ["True", "false"]


def test_only_the_named_text_columns_are_forced_to_text_the_others_are_parsed_where_they_can(tmp_path):
    path = write(tmp_path / "2024-01-05.csv", b"zip,count,reading,site\n02134,1,1.5,NA\n10001,2,NA,FR\n")

    frame = read_table_file(path, partition="2024-01-05", text_columns=["zip", "site"])

    assert frame["zip"].tolist() == ["02134", "10001"]
    assert frame["count"].dtype == "int64"
    assert frame["reading"].tolist() == ["1.5", "NA"]  # text for the schema to parse: NA is missing there
    assert frame["site"].tolist() == ["NA", "FR"]


def test_a_semicolon_separated_file_is_refused_naming_the_delimiter(tmp_path):
    path = write(tmp_path / "2024-01-06.csv", b"id;city\n1;Paris\n2;Lyon\n")

    with pytest.raises(DataInputError) as info:
        read_table_file(path, partition="2024-01-06")

    message = str(info.value)
    assert "file '2024-01-06.csv', partition '2024-01-06'" in message
    assert "the header has one column, 'id;city', which holds ';'" in message
    assert "comma-separated" in message


def test_a_one_column_file_is_still_read(tmp_path):
    path = write(tmp_path / "2024-01-07.csv", b"id\n1\n2\n")

    assert read_table_file(path, partition="2024-01-07")["id"].tolist() == ["1", "2"]
