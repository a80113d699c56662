"""Importing the package and the demo's code location loads no heavy library it does not need
yet: every Dagster run worker imports the code location before its first step."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("numba", "llvmlite", "great_expectations", "mlflow", "sklearn", "matplotlib", "skops")


def modules_after_import(module: str) -> set[str]:
    """The top-level packages in sys.modules after importing ``module`` in a fresh interpreter."""
    code = f"import sys, {module}; print('\\n'.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    return set(out.stdout.split())


@pytest.mark.parametrize("module", ["dcai_assets", "jobs.definitions"])
def test_importing_the_code_location_loads_no_numba_gx_mlflow_sklearn_or_matplotlib(module):
    loaded = modules_after_import(module)
    assert "dagster" in loaded  # the import did run
    assert sorted(loaded & set(HEAVY)) == []


def test_the_kernels_stay_reachable_from_their_modules_once_used():
    from dcai_assets.core import knn_shapley as ks

    assert ks._MSD_FROM == 1 << 18
    assert ks.squared_distances.__name__ == "squared_distances"
    with pytest.raises(AttributeError, match="no attribute 'not_a_kernel'"):
        _ = ks.not_a_kernel


def test_applying_a_fitted_label_model_loads_no_numba(tmp_path):
    """A labeling run applies the stored label model: numba (and its threading layer) is loaded
    only where a model is fitted or rows are valued."""
    from dcai_assets.core.label_model import LabelModel

    rng = np.random.default_rng(0)
    L = rng.integers(-1, 3, size=(500, 4))
    path = tmp_path / "label_model.parquet"
    LabelModel(cardinality=3).fit(L).to_frame(["a", "b", "c", "d"], ["x", "y", "z"]).to_parquet(path)
    code = (
        "import sys, numpy as np, pandas as pd; from dcai_assets.core.label_model import LabelModel; "
        f"m = LabelModel.from_frame(pd.read_parquet({str(path)!r}), list('abcd'), list('xyz')); "
        "p = m.predict_proba(np.array([[0, 1, -1, 2]])); assert p.shape == (1, 3); "
        "print('numba' in sys.modules, flush=True); import os; os._exit(0)"
    )  # os._exit: a process that ran pandas.read_parquet aborts in interpreter shutdown about 1 time
    # in 5 on this pandas 2.3 / pyarrow 25 build ("terminate called without an active exception",
    # SIGABRT after the work is done); what this test checks is printed before that
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "False"
