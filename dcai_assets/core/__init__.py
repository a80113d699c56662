"""Pure algorithms (pandas/numpy/numba). Nothing here imports dagster."""
