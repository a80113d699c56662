"""What ``dg scaffold defs dcai_assets.components.DataCentricPipeline`` writes. ``DEFS_YAML`` is
a ``str.format`` template (``{{``/``}}`` are literal braces, for Dagster's own templating)."""

DEFS_YAML = """\
# A data-centric pipeline: raw -> validated -> labeled -> trained model -> importance scores.
# The fields are the Python spec's (DatasetSpec, LabelingSpec, TrainingSpec, ImportanceSpec,
# AutomationSpec), same names and defaults; see the README's "Adopt it with dg".
# Check this file with `dg check defs`. Relative paths start at this file's folder.
type: {type_name}

attributes:
  name: {name}                     # asset-key prefix: {name}/raw_data, {name}/trained_model, ...
  owners: []                       # e.g. ["team:data-platform", "someone@example.com"]

  source:
    landing_directory: "{landing}"   # one file per partition, named by its key
    suffixes: [".csv", ".parquet"]

  partitions:
    type: daily                    # hourly | daily | weekly | monthly | static | dynamic
    start: "{start}"

  schema_path: schema.yaml         # write it with: dcai-assets schema infer <this defs.yaml>
  reference: ["{start}"]          # partitions the schema is inferred from
  key: null                        # column(s) identifying a row, e.g. [order_id]
  label: label                     # gold labels, where known (may be mostly empty)

  labeling:
    lfs: {module}.labeling:LABELING_FUNCTIONS
    gold_column: label

  training:
    pipeline: {module}.model:make_pipeline
    features: [score]
    holdout_partitions: 1
    min_gold_rows: 30

  importance:
    k: 5

  # health_checks:                 # five data health checks on the scores, warn-only by default
  #   blocking: [duplicates]       # e.g. copies of training rows in the holdout fail the run
  # what_if:                       # dcai-assets what-if: retrain without the most harmful rows
  #   fractions: [0.005, 0.01, 0.02, 0.05]
  # privacy:                       # no-human-access mode: only aggregates in the UI, logs, MLflow
  #   no_human_access: true

  automation:
    default_status: stopped        # running: new partitions flow through every stage by themselves

  landing_sensor:
    default_status: stopped

  storage:                         # Parquet lake, JSON artifacts and MLflow on SQLite, all here
    data_dir: "{{{{ context.project_root }}}}/.dcai_data"
"""

LABELING_PY = '''\
"""Labeling functions: how to guess the label from a row without looking at it. Each returns
a class index per row (its position in CLASSES) or ABSTAIN."""

import numpy as np
import pandas as pd

from dcai_assets.core.labeling import ABSTAIN, LabelingFunctionSet, labeling_function

CLASSES = ["negative", "positive"]
NEGATIVE, POSITIVE = 0, 1


@labeling_function(uses=["score"])
def high_score(df: pd.DataFrame) -> np.ndarray:
    """A high score is usually positive."""
    return np.where(df["score"] > 0.7, POSITIVE, ABSTAIN)


@labeling_function(uses=["score"])
def low_score(df: pd.DataFrame) -> np.ndarray:
    """A low score is usually negative."""
    return np.where(df["score"] < 0.3, NEGATIVE, ABSTAIN)


LABELING_FUNCTIONS = LabelingFunctionSet(lfs=[high_score, low_score], classes=CLASSES)
'''

MODEL_PY = '''\
"""The model factory: a fresh, unfitted scikit-learn Pipeline; it sees only the features the
defs.yaml lists."""


def make_pipeline():
    """Impute and scale the (numeric) features, then a logistic regression."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline as chain
    from sklearn.preprocessing import StandardScaler

    return chain(SimpleImputer(strategy="median"), StandardScaler(), LogisticRegression(max_iter=1000))
'''
