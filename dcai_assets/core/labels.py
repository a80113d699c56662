"""Labels from LF votes: the label model fitted on the votes of many partitions, and each row's
chosen label (gold where there is one, else the model's, else abstain)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dcai_assets.core.columns import LABEL, LABEL_CONFIDENCE, LABEL_SOURCE, lf_column, proba_column
from dcai_assets.core.label_model import LabelModel, MajorityVote, fit_label_model
from dcai_assets.core.labeling import ABSTAIN, LabelingFunctionSet
from dcai_assets.core.lf_analysis import dependent_pairs, lf_summary


@dataclass
class FittedLabels:
    """A label model fitted on stacked votes, with what its metadata reports."""

    model: LabelModel | MajorityVote
    warning: str | None  # why EM fell back to majority vote, if it did
    table: pd.DataFrame  # the model as a frame (``LabelModel.to_frame``)
    class_balance: dict[str, float]  # rounded to 3 places
    summary: pd.DataFrame  # ``lf_summary`` over all rows
    dependent: list[str]  # LF pairs that look dependent (Dawid-Skene only)
    rows: int
    gold_rows: int


def fit_on_partitions(
    matrices: Sequence[np.ndarray],
    golds: Sequence[np.ndarray],
    lf_set: LabelingFunctionSet,
    *,
    kind: str,
    max_iter: int,
    seed: int,
) -> FittedLabels:
    """Fit the label model on the stacked votes and gold labels of several partitions."""
    L = np.vstack(matrices)
    gold = np.concatenate(golds)
    model, warning = fit_label_model(L, gold, lf_set.cardinality, kind=kind, max_iter=max_iter, seed=seed)
    estimated = model.accuracies_ if isinstance(model, LabelModel) else None
    summary = lf_summary(L, lf_set, gold=gold, estimated_accuracy=estimated)
    dependent = (
        dependent_pairs(L, estimated, lf_set.names, lf_set.cardinality, class_balance=model.class_balance_)
        if estimated is not None
        else []
    )
    table = model.to_frame(lf_set.names, list(lf_set.classes))
    balance = table[table["kind"] == "class_balance"].set_index("name")["value"].round(3).to_dict()
    return FittedLabels(
        model, warning, table, balance, summary, dependent, rows=len(L), gold_rows=int((gold >= 0).sum())
    )


@dataclass
class ChosenLabels:
    """One partition's rows with their votes, probabilities and chosen labels."""

    frame: pd.DataFrame
    label_idx: np.ndarray  # class index per row, ABSTAIN where none
    source: np.ndarray  # "gold", the model's name or "abstain", per row
    labeled_fraction: float  # 0.0 for an empty partition
    model_vs_gold: float | None  # the model's accuracy on gold rows the LFs cover; None if none
    gold_covered: int  # gold rows the LFs cover


def choose_labels(
    frame: pd.DataFrame,
    L: np.ndarray,
    proba: np.ndarray,
    gold: np.ndarray,
    lf_set: LabelingFunctionSet,
    *,
    model_name: str,
) -> ChosenLabels:
    """Each row's label: gold where there is one, else the model's argmax where an LF voted, else
    abstain; probabilities are NaN on rows with neither."""
    classes = list(lf_set.classes)
    covered = (L != ABSTAIN).any(axis=1)
    has_gold = gold != ABSTAIN
    label_idx = np.where(has_gold, gold, np.where(covered, proba.argmax(axis=1), ABSTAIN))
    source = np.select([has_gold, covered], ["gold", model_name], "abstain")

    out = frame.copy()
    for j, name in enumerate(lf_set.names):
        out[lf_column(name)] = L[:, j]
    for c, name in enumerate(classes):
        out[proba_column(name)] = np.where(covered | has_gold, proba[:, c], np.nan)
    out[LABEL] = pd.Categorical.from_codes(label_idx, categories=classes)
    out[LABEL_CONFIDENCE] = np.where(has_gold, 1.0, np.where(covered, proba.max(axis=1), np.nan))
    out[LABEL_SOURCE] = source
    out["lf_set_version"] = lf_set.version

    judged = has_gold & covered
    model_vs_gold = float((proba[judged].argmax(axis=1) == gold[judged]).mean()) if judged.any() else None
    labeled_fraction = float((label_idx != ABSTAIN).mean()) if len(out) else 0.0
    return ChosenLabels(out, label_idx, source, labeled_fraction, model_vs_gold, int(judged.sum()))
