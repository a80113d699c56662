"""Which registry versions and tracking runs a dead retrain left behind: the pure decision the next
registry step acts on. No MLflow here: the caller reads versions, runs and process liveness, and
writes what :func:`find_debris` returns.

A retrain writes, in order: a RUNNING run; a version tagged ``dcai.gate=pending``; the reasons;
(its model card and drift ranks, outside MLflow) the ``champion`` alias (on a pass); the final
verdict; the run FINISHED. A process killed between
two writes leaves one of the states this module recognises."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

GATE_TAG = "dcai.gate"
PENDING = "pending"
PASSED = "passed"
FAILED = "failed"
ABANDONED = "abandoned"
LOST_RACE = "lost_race"  # passed its gate, but the champion moved to another version first
FINAL_VERDICTS = frozenset({PASSED, FAILED, ABANDONED, LOST_RACE})
PROMOTED_OVER_TAG = "dcai.promoted_over"
SUPERSEDED_BY_TAG = "dcai.superseded_by"
PROMOTED_AT_TAG = "dcai.promoted_at"  # written once the champion alias has moved to the version


@dataclass(frozen=True)
class RunState:
    """An MLflow run of the pipeline's retrains; ``owner_alive`` is None when it cannot be told."""

    run_id: str
    status: str
    owner_alive: bool | None


@dataclass(frozen=True)
class VersionState:
    """A registry version, its tags and the run that logged it."""

    version: str
    run_id: str | None
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class VersionFix:
    version: str
    run_id: str | None
    found: str  # the verdict tag as found ("none" when absent)
    verdict: str  # the verdict to write
    reason: str


@dataclass(frozen=True)
class RunFix:
    run_id: str
    reason: str


@dataclass
class Debris:
    """What to repair: versions to give a verdict, runs to end as KILLED, and RUNNING runs left
    alone because their owner may still be alive (``undetermined_runs``)."""

    versions: list[VersionFix] = field(default_factory=list)
    runs: list[RunFix] = field(default_factory=list)
    undetermined_runs: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.versions or self.runs)


def find_debris(versions: Sequence[VersionState], runs: Sequence[RunState], champion: str | None) -> Debris:
    """The versions and runs a dead retrain left: see the module docstring for the write order.

    Parameters
    ----------
    versions
        Every version of the registered model.
    runs
        The model's runs still RUNNING, and the runs of ``versions`` (any status).
    champion
        The version the ``champion`` alias points at, or None.

    Returns
    -------
    Debris
        - a RUNNING run whose owner is dead: end it as KILLED;
        - the champion with no final verdict: ``passed`` (the alias moves only after a pass);
        - another version with no final verdict whose run is not still alive: ``abandoned``;
        - a version tagged ``passed`` that is not the champion, was never champion (no
          ``dcai.promoted_at``) and that no later promotion replaced (no ``dcai.superseded_by``,
          no passed version promoted over it): ``abandoned``. Versions tagged by older releases
          lack ``dcai.promoted_at``; a champion rolled back by hand keeps it, and is left alone.
    """
    debris = Debris()
    by_run = {r.run_id: r for r in runs}
    for r in runs:
        if r.status != "RUNNING":
            continue
        if r.owner_alive is False:
            debris.runs.append(RunFix(r.run_id, "RUNNING, but the process that ran it is gone"))
        elif r.owner_alive is None:
            debris.undetermined_runs.append(r.run_id)
    replaced = {
        v.tags[PROMOTED_OVER_TAG]
        for v in versions
        if PROMOTED_OVER_TAG in v.tags and (v.tags.get(GATE_TAG) == PASSED or v.version == champion)
    }
    for v in versions:
        fix = _version_fix(v, champion, by_run, replaced)
        if fix is not None:
            debris.versions.append(fix)
    return debris


def _version_fix(
    v: VersionState, champion: str | None, by_run: dict[str, RunState], replaced: set[str]
) -> VersionFix | None:
    """The verdict a version needs (see :func:`find_debris`), or None."""
    found = v.tags.get(GATE_TAG)
    if v.version == champion:
        if found not in FINAL_VERDICTS:
            return VersionFix(
                v.version,
                v.run_id,
                found or "none",
                PASSED,
                "the champion alias moved to it (only a pass moves it); its retrain ended "
                "before recording the verdict",
            )
        return None
    if found not in FINAL_VERDICTS:
        run = by_run.get(v.run_id or "")
        if run is not None and run.status == "RUNNING" and run.owner_alive is not False:
            return None  # its retrain may still be gating it
        return VersionFix(
            v.version,
            v.run_id,
            found or "none",
            ABANDONED,
            "its retrain ended (process killed?) before a gate verdict; never champion",
        )
    if (
        found == PASSED
        and not ({SUPERSEDED_BY_TAG, PROMOTED_AT_TAG} & set(v.tags))
        and (v.version not in replaced)
    ):
        return VersionFix(
            v.version,
            v.run_id,
            found,
            ABANDONED,
            "tagged passed, but the champion alias never stayed on it and no later promotion "
            "replaced it: its retrain ended before promotion, or a concurrent retrain moved "
            "the alias",
        )
    return None
