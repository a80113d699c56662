"""Errors for people: each names the file, partition and column involved and what was expected."""

from __future__ import annotations


class DataInputError(ValueError):
    """Input data that cannot be used as it is; the message says where and what was expected."""

    def __init__(
        self,
        problem: str,
        *,
        expected: str,
        file: str | None = None,
        partition: str | None = None,
        column: str | None = None,
        action: str | None = None,
    ) -> None:
        self.problem = problem
        self.expected = expected
        self.file = file
        self.partition = partition
        self.column = column
        self.action = action
        where = ", ".join(
            f"{label} {value!r}"
            for label, value in (("file", file), ("partition", partition), ("column", column))
            if value is not None
        )
        message = f"{where}: {problem}; expected {expected}" if where else f"{problem}; expected {expected}"
        if action:
            message += f". {action}"
        super().__init__(message)
