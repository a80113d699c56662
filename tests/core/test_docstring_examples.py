"""The Examples in the numeric core's docstrings (what a notebook user copies) run as written."""

from __future__ import annotations

import doctest
import importlib

import pytest

DOCUMENTED = {
    "dcai_assets.core.knn_shapley": ["knn_shapley", "group_balanced_weights"],
    "dcai_assets.core.label_model": ["LabelModel", "fit_label_model"],
    "dcai_assets.core.drift": ["drift_report"],
    "dcai_assets.core.schema_inference": ["infer_schema"],
    "dcai_assets.core.labeling": ["labeling_function"],
    "dcai_assets.core.what_if": ["what_if"],
}


@pytest.mark.parametrize("module_name", sorted(DOCUMENTED))
def test_docstring_examples_of_the_core_run_as_written(module_name):
    module = importlib.import_module(module_name)
    tests = {t.name.rsplit(".", 1)[-1]: t for t in doctest.DocTestFinder().find(module) if t.examples}
    missing = [name for name in DOCUMENTED[module_name] if name not in tests]
    assert not missing, f"{module_name}: no Examples in the docstring of {missing}"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in tests.values():
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{module_name}: {result.failed} of {result.attempted} examples failed"
