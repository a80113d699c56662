"""The column names the stages hand each other, in one place.

A labeled set holds the validated columns plus ``label`` (NaN where every LF abstained and there
is no gold label), ``label_source`` (``"gold"`` for hand-checked rows), ``label_confidence``, one
``lf__<name>`` vote column per labeling function and one ``p__<class>`` probability per class.
The stages that read several partitions at once add the partition key as ``_partition``.
"""

LABEL = "label"
LABEL_SOURCE = "label_source"
LABEL_CONFIDENCE = "label_confidence"
GOLD = "gold"  # the label_source of hand-checked rows
PARTITION = "_partition"  # the partition key, on frames that concatenate partitions
ROW = "_row"  # a stored frame's original row index, where the index is reset
LF_PREFIX = "lf__"  # one vote column per labeling function: lf__<name>
PROBA_PREFIX = "p__"  # one probability column per class: p__<class>


def lf_column(name: str) -> str:
    """The vote column of the labeling function ``name``."""
    return f"{LF_PREFIX}{name}"


def proba_column(cls: str) -> str:
    """The label-model probability column of class ``cls``."""
    return f"{PROBA_PREFIX}{cls}"
