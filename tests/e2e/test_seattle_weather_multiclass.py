"""A five-class label (Seattle's daily weather: drizzle, rain, sun, snow, fog) through every
stage on a real Dagster instance and MLflow: label model, training, slice metrics, fairness,
KNN-Shapley and the review queue, on six monthly partitions of 2012."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dcai_assets.core.evaluation import GAP_NAMES


@pytest.fixture(scope="module")
def weather_run(seattle_weather_run) -> tuple[str, Path]:
    """The example's command, run in the background lane of tests/conftest.py."""
    return seattle_weather_run.stdout, seattle_weather_run.home


def trained_model_metadata(home: Path) -> dict:
    import dagster as dg

    instance = dg.DagsterInstance.from_config(str(home))
    event = instance.get_latest_materialization_event(dg.AssetKey(["seattle_weather", "trained_model"]))
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def test_five_weather_classes_go_through_every_stage(weather_run):
    out, _ = weather_run

    assert "6 of 6 partitions passed validation" in out
    assert "runs that failed with an error" not in out
    assert re.search(r"class balance \{'drizzle': [\d.]+, 'fog': [\d.]+, 'rain'", out)
    label_model, majority_vote = (
        float(x) for x in re.search(r"label model (\d\.\d+), majority vote (\d\.\d+)", out).groups()
    )
    assert label_model >= majority_vote
    assert "models:/seattle_weather_model/1: trained on" in out
    assert "| review | partition | date | label |" in out
    labels = set(re.findall(r"\| (drizzle|rain|sun|snow|fog) \| label_model \|", out))
    assert len(labels) >= 2  # the review queue ranks rows of several classes


def test_a_fairness_gap_that_cannot_be_computed_is_undetermined_not_zero(weather_run):
    _, home = weather_run
    md = trained_model_metadata(home)

    # Few gold holdout rows per season: no season has the rows a gap needs, so every gap (one
    # vs rest for each of the five classes) is undetermined, with no number shown for it.
    statuses = {
        k.removesuffix("/status"): v
        for k, v in md.items()
        if k.startswith("fairness/") and k.endswith("/status")
    }
    assert statuses, sorted(md)
    assert set(statuses.values()) == {"undetermined"}
    assert not [gap for gap in statuses if isinstance(md.get(gap), float)]
    gap_rows = [
        cells
        for line in md["fairness"].splitlines()
        if (cells := [c.strip() for c in line.strip("|").split("|")])[0] in GAP_NAMES
    ]
    assert len(gap_rows) == len(GAP_NAMES) * 5  # every gap of every class, shown
    for cells in gap_rows:  # as undetermined with the reason, never as a number
        assert cells[1:3] == ["undetermined", "-"], cells
        assert cells[4].startswith("**undetermined**") and "group(s) with enough rows" in cells[4], cells
    for groups in md["fairness/groups"].values():  # with every group's counts
        assert (
            sum(g["n"] for g in groups.values()) + md["fairness/missing_group_rows"] == md["evaluation_rows"]
        )
    assert md["positive_class"].startswith("none: 5 classes")
    assert {gap.split(":")[-1] for gap in statuses} == {"drizzle", "rain", "sun", "snow", "fog"}
