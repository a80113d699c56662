"""Read one 1,000,000-row x 20-column CSV partition and conform it to its schema, as the raw and
validated assets do (text columns read as text, the rest parsed where every cell is a number),
next to peers measured in the same run: pandas' own typed ``read_csv`` alone, and the same file
read with every column as text (what schema inference does) and conformed."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from validate_partition import make_partition

from dcai_assets.core.conformance import conform
from dcai_assets.core.reading import read_table_file
from dcai_assets.core.schema_inference import infer_schema


def best_of(repeats: int, fn) -> tuple[float, object]:
    """The fastest of ``repeats`` calls, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    schema = infer_schema({f"day{d}": make_partition(20_000, d, corrupt=False) for d in range(3)})
    schema.max_rows = None
    text = [c.name for c in schema.columns if c.dtype == "string"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "2024-01-01.csv"
        make_partition(args.rows, 99).to_csv(path, index=False)
        print(f"partition: {args.rows:,} rows x 20 columns, {path.stat().st_size / 1e6:.0f} MB of CSV")
        peer, _ = best_of(args.repeats, lambda: pd.read_csv(path, low_memory=False))
        ours, conf = best_of(
            args.repeats, lambda: conform(read_table_file(path, "p", text_columns=text), schema)
        )
        all_text, conf_text = best_of(args.repeats, lambda: conform(read_table_file(path, "p"), schema))
    assert conf.rows_valid == conf_text.rows_valid and conf.rows_quarantined == conf_text.rows_quarantined
    print(f"pandas read_csv alone (peer)         : {peer:6.2f} s")
    print(f"read + conform (ours)                : {ours:6.2f} s   ratio to the peer {ours / peer:.2f}")
    print(f"read every column as text + conform  : {all_text:6.2f} s   ratio to ours {all_text / ours:.2f}")
    print(f"rows valid {conf.rows_valid:,}, quarantined {conf.rows_quarantined:,} (the same both ways)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
