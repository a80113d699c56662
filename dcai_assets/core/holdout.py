"""Which rows a model is judged on: the newest partitions, gold labels when there are enough, and
never a holdout where one class stands alone without saying so. The one place this is decided;
the trained model and the importance scores both call :func:`split_window`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from dcai_assets.core.columns import GOLD, LABEL, LABEL_SOURCE


@dataclass(frozen=True)
class HoldoutChoice:
    """The holdout a model is evaluated and valued against, and how far it can be trusted.

    ``train_partitions`` / ``holdout_partitions``: the window split in time order (oldest first).
    ``labels``: ``"gold"`` (the gold rows of the holdout) or ``"lf"`` (every labeled row of the
    holdout, LF labels included: LF errors are then invisible). ``class_counts``: evaluation rows
    per class (every class of the LF set, zeros included). ``extended_by``: partitions added to
    the requested holdout to reach ``min_class_rows`` of every class. ``determined`` is False
    when fewer than two classes reach ``min_class_rows``: metrics such as precision are then
    artefacts of the single class, so nothing may be promoted or ranked against it unflagged.
    """

    train_partitions: tuple[str, ...]
    holdout_partitions: tuple[str, ...]
    labels: Literal["gold", "lf"]
    class_counts: dict[str, int]
    gold_rows: int
    min_class_rows: int
    extended_by: int = 0
    determined: bool = True
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def rows(self) -> int:
        return int(sum(self.class_counts.values()))

    @property
    def short_classes(self) -> dict[str, int]:
        """Classes with fewer than ``min_class_rows`` evaluation rows, and their counts."""
        return {c: n for c, n in self.class_counts.items() if n < self.min_class_rows}

    @property
    def judged_by(self) -> str:
        """How the evaluation labels were chosen, in words (for logs and metadata)."""
        counts = ", ".join(f"{c} {n}" for c, n in self.class_counts.items())
        what = (
            "gold labels"
            if self.labels == "gold"
            else "LF labels (too few gold rows: LF errors are invisible)"
        )
        return f"{what}: {self.rows} rows of {len(self.holdout_partitions)} partitions ({counts})"

    def select(self, frame: pd.DataFrame, *, partition_column: str) -> pd.DataFrame:
        """The evaluation rows of ``frame`` (labeled rows of the holdout partitions, gold only if
        ``labels == "gold"``)."""
        rows = frame[frame[partition_column].isin(self.holdout_partitions) & frame[LABEL].notna()]
        return rows[rows[LABEL_SOURCE] == GOLD] if self.labels == "gold" else rows


def choose_holdout(
    frame: pd.DataFrame,
    partitions: Sequence[str],
    classes: Sequence[str],
    *,
    partition_column: str,
    holdout_partitions: int,
    max_holdout_partitions: int | None = None,
    min_gold_rows: int = 30,
    min_class_rows: int = 10,
) -> HoldoutChoice:
    """Choose the holdout: the newest ``holdout_partitions`` of ``partitions`` (oldest first),
    widened one partition at a time, up to ``max_holdout_partitions`` and always leaving one to
    train on, until every class of ``classes`` has ``min_class_rows`` evaluation rows.

    At each width the evaluation rows are the holdout's gold rows if there are at least
    ``min_gold_rows`` of them, else all its labeled rows (LF labels). The first width where
    every class reaches the minimum is taken; if none does, the widest, with the short classes
    named in ``warnings``, and ``determined=False`` if fewer than two classes reach it.

    ``frame`` holds the window's rows with columns ``label`` (NaN = abstained), ``label_source``
    (``"gold"`` for gold rows) and ``partition_column``.
    """
    partitions = [str(p) for p in partitions]
    classes = [str(c) for c in classes]
    for name, value in (("holdout_partitions", holdout_partitions), ("min_class_rows", min_class_rows)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"choose_holdout: {name}={value!r}; expected an integer >= 1")
    missing = [c for c in (partition_column, LABEL, LABEL_SOURCE) if c not in frame.columns]
    if missing:
        raise ValueError(
            f"choose_holdout: frame lacks columns {missing}; expected the labeled rows of the window"
        )
    if len(partitions) <= holdout_partitions:
        raise ValueError(
            f"choose_holdout: {len(partitions)} partitions; expected more than holdout_partitions="
            f"{holdout_partitions} (the newest are held out, the rest train)"
        )
    widest = max(holdout_partitions, max_holdout_partitions or holdout_partitions)
    widest = min(widest, len(partitions) - 1)
    labeled = frame[frame[LABEL].notna()]
    label = labeled[LABEL].astype(str)
    is_gold = (labeled[LABEL_SOURCE] == GOLD).to_numpy()
    where = labeled[partition_column].astype(str)

    def candidate(width: int) -> tuple[Literal["gold", "lf"], dict[str, int], int]:
        inside = where.isin(partitions[-width:]).to_numpy()
        gold = int((inside & is_gold).sum())
        use: Literal["gold", "lf"] = "gold" if gold >= min_gold_rows else "lf"
        chosen = inside & is_gold if use == "gold" else inside
        counts = label[chosen].value_counts()
        return use, {c: int(counts.get(c, 0)) for c in classes}, gold

    for width in range(holdout_partitions, widest + 1):
        use, counts, gold = candidate(width)
        if all(n >= min_class_rows for n in counts.values()):
            break
    extended = width - holdout_partitions
    enough = [c for c, n in counts.items() if n >= min_class_rows]
    warnings = _holdout_warnings(
        use, counts, gold, partitions, width, extended,
        holdout_partitions=holdout_partitions, min_gold_rows=min_gold_rows, min_class_rows=min_class_rows,
    )  # fmt: skip
    determined = len(enough) >= 2
    return HoldoutChoice(
        train_partitions=tuple(partitions[:-width]),
        holdout_partitions=tuple(partitions[-width:]),
        labels=use,
        class_counts=counts,
        gold_rows=gold,
        min_class_rows=min_class_rows,
        extended_by=extended,
        determined=determined,
        warnings=tuple(warnings),
    )


def _holdout_warnings(
    use: str,
    counts: dict[str, int],
    gold: int,
    partitions: list[str],
    width: int,
    extended: int,
    *,
    holdout_partitions: int,
    min_gold_rows: int,
    min_class_rows: int,
) -> list[str]:
    """What :func:`choose_holdout` says about the holdout it chose, one sentence per doubt."""
    warnings = []
    if use == "lf":
        warnings.append(
            "the holdout's labels come from the same labeling functions that are being judged "
            f"({gold} gold rows in the holdout, expected at least {min_gold_rows}), so a systematic LF "
            "error is invisible here. Add gold labels to the newest partitions"
        )
    if extended:
        warnings.append(
            f"the newest {holdout_partitions} partitions had too few evaluation rows of some class; the "
            f"holdout was widened by {extended} to {width} partitions "
            f"({partitions[-width]} .. {partitions[-1]})"
        )
    short = {c: n for c, n in counts.items() if n < min_class_rows}
    enough = [c for c, n in counts.items() if n >= min_class_rows]
    if short:
        listed = ", ".join(f"{c!r} (n={n})" for c, n in short.items())
        warnings.append(
            f"too few {'gold' if use == 'gold' else 'LF-labeled'} evaluation rows of {listed} in the widest "
            f"holdout allowed ({width} partitions); expected at least {min_class_rows} per class: their "
            "per-class metrics are not trustworthy"
        )
    if len(enough) < 2:
        only = f"only {enough[0]!r} has" if enough else "no class has"
        warnings.append(
            f"single-class holdout: {only} at least {min_class_rows} evaluation rows; precision, recall "
            "and any ranking against it are artefacts of that class. The evaluation is undetermined "
            "and the model is not promoted; add gold labels of the other classes to recent partitions, "
            "or allow a wider holdout (TrainingSpec.max_holdout_partitions)"
        )
    return warnings


@dataclass(frozen=True)
class WindowSplit:
    """A model's window split by :func:`split_window`: the labeled rows it trains on, the labeled
    rows of its holdout partitions (``held``: gold and LF-labeled alike), and the rows it is judged
    on (``evaluation``: ``held``'s gold rows when ``choice.labels == "gold"``, else all of them)."""

    choice: HoldoutChoice
    train: pd.DataFrame
    held: pd.DataFrame
    evaluation: pd.DataFrame


def split_window(
    frame: pd.DataFrame,
    partitions: Sequence[str],
    classes: Sequence[str],
    *,
    partition_column: str,
    holdout_partitions: int,
    max_holdout_partitions: int | None = None,
    min_gold_rows: int = 30,
    min_class_rows: int = 10,
) -> WindowSplit:
    """The trusted holdout of a window and the rows on either side of it: the one decision the
    trained model (which may widen its holdout) and the importance scores (which value against the
    model's holdout as it was, ``holdout_partitions=len(model's holdout)``) both take.

    Arguments as :func:`choose_holdout`; rows whose ``label`` is NaN (every LF abstained, no
    gold label) are in none of the three frames.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"_partition": ["a", "a", "b", "b"], "label": ["x", "y", "x", "y"],
    ...                       "label_source": ["lf", "lf", "gold", "gold"]})
    >>> split = split_window(frame, ["a", "b"], ["x", "y"], partition_column="_partition",
    ...                      holdout_partitions=1, min_gold_rows=2, min_class_rows=1)
    >>> split.choice.labels, len(split.train), len(split.evaluation)
    ('gold', 2, 2)
    """
    choice = choose_holdout(
        frame, partitions, classes, partition_column=partition_column,
        holdout_partitions=holdout_partitions, max_holdout_partitions=max_holdout_partitions,
        min_gold_rows=min_gold_rows, min_class_rows=min_class_rows,
    )  # fmt: skip
    labeled = frame[frame[LABEL].notna()]
    where = labeled[partition_column]
    return WindowSplit(
        choice=choice,
        train=labeled[where.isin(choice.train_partitions)],
        held=labeled[where.isin(choice.holdout_partitions)],
        evaluation=choice.select(frame, partition_column=partition_column),
    )
