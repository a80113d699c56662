"""Which registry versions and runs a killed retrain left: the pure decision, case by case."""

from dcai_assets.core.registry_debris import RunState, VersionState, find_debris


def test_a_passed_version_that_never_became_champion_is_marked_abandoned_not_left_passed():
    versions = [
        VersionState("1", "r1", {"dcai.gate": "passed", "dcai.superseded_by": "2"}),
        VersionState("2", "r2", {"dcai.gate": "passed", "dcai.promoted_over": "1"}),
        VersionState("3", "r3", {"dcai.gate": "passed", "dcai.promoted_over": "2"}),  # died before alias
        VersionState("4", "r4", {"dcai.gate": "failed"}),
    ]
    debris = find_debris(versions, [RunState("r3", "FINISHED", False)], champion="2")
    assert [(f.version, f.found, f.verdict) for f in debris.versions] == [("3", "passed", "abandoned")]


def test_a_replaced_champion_known_only_from_promoted_over_is_not_debris():
    versions = [
        VersionState("1", "r1", {"dcai.gate": "passed"}),  # killed before superseded_by was written
        VersionState("2", "r2", {"dcai.gate": "passed", "dcai.promoted_over": "1"}),
    ]
    assert not find_debris(versions, [], champion="2")


def test_a_pending_version_of_a_live_retrain_and_its_running_run_are_left_alone():
    versions = [VersionState("1", "r1", {"dcai.gate": "pending"}), VersionState("2", "r2", {})]
    runs = [RunState("r1", "RUNNING", True), RunState("r2", "RUNNING", None), RunState("r3", "RUNNING", None)]
    debris = find_debris(versions, runs, champion=None)
    assert not debris and debris.undetermined_runs == ["r2", "r3"]


def test_the_champion_without_a_verdict_gets_passed_and_a_dead_run_is_killed():
    versions = [VersionState("1", "r1", {"dcai.gate": "pending"}), VersionState("2", "r2", {})]
    debris = find_debris(versions, [RunState("r1", "RUNNING", False)], champion="1")
    assert [(f.version, f.verdict) for f in debris.versions] == [("1", "passed"), ("2", "abandoned")]
    assert [f.run_id for f in debris.runs] == ["r1"]


def test_a_champion_rolled_back_by_hand_is_not_debris():
    versions = [
        VersionState("1", "r1", {"dcai.gate": "passed", "dcai.superseded_by": "2"}),
        VersionState("2", "r2", {"dcai.gate": "passed", "dcai.promoted_at": "2026-12-06T10:00:00"}),
    ]
    assert not find_debris(versions, [], champion="1")  # an operator moved the alias back to 1
