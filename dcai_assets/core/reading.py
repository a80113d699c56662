"""Read one partition file (CSV or Parquet) exactly as it is, or fail with an error that names
the file, partition, line, column and what was expected.

In a CSV only an empty cell is missing as read: the text ``NA`` (a country code) stays text. The
schema's text columns are read as the text in the file, so an id ``000123`` keeps its zeros; the
other columns are parsed as numbers where every cell is one (fast), else kept as text for the
schema to parse (:mod:`dcai_assets.core.conformance`); a 17-digit id is never rounded through a
float."""

from __future__ import annotations

import csv
import hashlib
import io
import warnings
from collections.abc import Collection
from pathlib import Path

import pandas as pd

from dcai_assets.errors import DataInputError

_CHUNK = 1 << 20


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes: the raw partition's data version."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def frame_digest(frame: pd.DataFrame) -> str:
    """A content hash of a DataFrame (values, column names and dtypes), independent of storage."""
    h = hashlib.sha256()
    h.update(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()


def find_partition_file(directory: str | Path, key: str, suffixes: tuple[str, ...]) -> Path:
    """The one file in ``directory`` that holds partition ``key``."""
    directory = Path(directory)
    found = [directory / f"{key}{s}" for s in suffixes if (directory / f"{key}{s}").is_file()]
    if not found:
        raise DataInputError(
            f"no file for this partition in {str(directory)!r}",
            expected="one of " + ", ".join(f"{key}{s}" for s in suffixes),
            partition=key,
        )
    if len(found) > 1:
        raise DataInputError(
            f"{len(found)} files hold this partition ({', '.join(p.name for p in found)})",
            expected="exactly one file per partition",
            partition=key,
            action="Remove all but one",
        )
    return found[0]


def read_table_file(
    path: str | Path, partition: str | None = None, *, text_columns: Collection[str] | None = None
) -> pd.DataFrame:
    """Parse a CSV (strict UTF-8) or Parquet file into a DataFrame, as read: no cleaning.

    A CSV's ``text_columns`` are read as text, every column when it is None (schema inference);
    an empty cell is missing, nothing else is. A Parquet file's columns keep their types."""
    path = Path(path)
    data = path.read_bytes()
    if not data.strip():
        raise DataInputError(
            "the file is empty",
            expected="a header row and at least the partition's data rows",
            file=path.name,
            partition=partition,
        )
    if path.suffix == ".parquet":
        try:
            return pd.read_parquet(io.BytesIO(data))
        except Exception as e:  # pyarrow raises several types for a corrupt file
            raise DataInputError(
                f"the file is not valid Parquet ({type(e).__name__}: {e})",
                expected="a Parquet file written by pyarrow, pandas or Spark",
                file=path.name,
                partition=partition,
            ) from e
    return _read_csv(data, path.name, partition, text_columns)


def _read_csv(
    data: bytes, name: str, partition: str | None, text_columns: Collection[str] | None
) -> pd.DataFrame:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line_no = data.count(b"\n", 0, e.start) + 1
        line_start = data.rfind(b"\n", 0, e.start) + 1
        header = next(csv.reader([data.split(b"\n", 1)[0].decode("utf-8", errors="replace").strip()]))
        # Parse the line up to the bad byte as CSV, so quoted commas do not shift the column.
        prefix = data[line_start : e.start].decode("utf-8", errors="replace")
        field_no = len(next(csv.reader([prefix + "x"]))) - 1
        column = header[field_no] if field_no < len(header) else None
        raise DataInputError(
            f"byte 0x{data[e.start]:02x} at line {line_no} (byte offset {e.start}) is not valid UTF-8",
            expected="UTF-8 text",
            file=name,
            partition=partition,
            column=column,
            action="Re-export the file as UTF-8 (it looks like Latin-1 or Windows-1252)",
        ) from None
    try:
        with warnings.catch_warnings():
            # More fields than header names would silently drop or shift data: make it an error.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                io.StringIO(text),
                dtype=str if text_columns is None else dict.fromkeys(text_columns, str),
                keep_default_na=False,
                na_values=[""],
                index_col=False,
                low_memory=False,
            )
    except pd.errors.ParserWarning as e:
        raise DataInputError(
            f"rows have more fields than the header has names ({str(e).strip()})",
            expected="one header name per field (a trailing comma on every row?)",
            file=name,
            partition=partition,
        ) from None
    except pd.errors.EmptyDataError:
        raise DataInputError(
            "the file has no header row",
            expected="a CSV header row",
            file=name,
            partition=partition,
        ) from None
    except pd.errors.ParserError as e:
        raise DataInputError(
            f"the file cannot be parsed as CSV ({str(e).strip()})",
            expected="comma-separated values with no more fields on a line than in the header",
            file=name,
            partition=partition,
        ) from e
    if frame.shape[1] == 1:
        header = str(frame.columns[0])
        sep = next((s for s in (";", "\t", "|") if s in header), None)
        if sep is not None:
            raise DataInputError(
                f"the header has one column, {_clip(header)!r}, which holds {sep!r}",
                expected=f"comma-separated values (the file looks {sep!r}-separated: re-export with commas)",
                file=name,
                partition=partition,
            )
    frame = _keep_long_integers_as_text(frame, text)
    unnamed = [c for c in frame.columns if str(c).startswith("Unnamed:")]
    if unnamed:
        raise DataInputError(
            f"the header has {len(unnamed)} empty column name(s) ({', '.join(map(str, unnamed))})",
            expected="a name for every column in the header row",
            file=name,
            partition=partition,
            column=str(unnamed[0]),
        )
    return frame


def _keep_long_integers_as_text(frame: pd.DataFrame, text: str) -> pd.DataFrame:
    """A column of integers with an empty cell is parsed as float64, which rounds integers beyond
    2**53 (a 17-digit id): such columns are re-read as the text in the file."""
    lossy = [
        c
        for c in frame.columns
        if frame[c].dtype == "float64" and (frame[c].abs() >= 2.0**53).to_numpy().any()
    ]
    if not lossy:
        return frame
    as_text = pd.read_csv(
        io.StringIO(text), dtype=str, keep_default_na=False, na_values=[""], index_col=False, usecols=lossy
    )  # rare: read again
    for c in lossy:
        if as_text[c].dropna().str.strip().str.fullmatch(r"[+-]?\d+").all():
            frame[c] = as_text[c]
    return frame


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
