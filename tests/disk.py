"""A disk that is really full: ENOSPC from the kernel, for the tests of what a failed write leaves."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def full_disk(directory: Path) -> Iterator[None]:
    """Fill ``directory``'s file system until the kernel says ENOSPC; free it on exit. The ballast
    file is visible, yet not Parquet: the lake's checks ignore it."""
    ballast = directory / "ballast.bin"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT)
    try:
        for size in (1 << 20, 4096, 1):  # megabytes, then the last pages, then the last bytes
            while True:
                try:
                    os.write(fd, b"\0" * size)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    try:
        yield
    finally:
        ballast.unlink()
