"""Asset factories, one module per stage."""

import warnings

import dagster as dg

# Content-hash data versions are the point of these assets; Dagster marks the parameter beta.
warnings.filterwarnings("ignore", message=".*data_version.*", category=dg.BetaWarning)
