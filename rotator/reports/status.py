"""Each secret's standing, as ``rotator status`` shows it: one typed row per policy.

:func:`status_rows` is a pure function of what the engine and the journal
return (the policies' names, the journal's summaries, the plan, the recorded
last uses, the time); :func:`read_status` asks them. A :class:`StatusRow`
holds times as times; :meth:`StatusRow.as_dict` is the JSON form of
``rotator status --json``. Like every output of rotator, a row holds
identifiers (credential refs, rotation ids) and rotator's own messages, never
a value.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from rotator.adapters.durations import format_duration
from rotator.engine.report import Action, PlanItem
from rotator.engine.runner import Engine
from rotator.journal.records import SecretSummary, Usage
from rotator.lifecycle import State
from rotator.policy.model import Policy

#: A credential the issuer says was never used.
NEVER: Literal["never"] = "never"
#: When a credential was last used: a time, :data:`NEVER`, or None (not asked, or cannot tell).
LastUse = datetime | Literal["never"] | None


@dataclass(frozen=True)
class StatusRow:
    """One secret: its state, the current credential's age, the last rotation, what comes next."""

    secret: str
    #: The last rotation's state, ``never rotated``, or ``needs-attention``.
    state: str
    current_since: datetime | None
    #: How long the current credential has been current, in whole seconds.
    age: timedelta | None
    last_rotation: str | None
    last_rotation_at: datetime | None
    last_error: str | None
    next_due: datetime | None
    #: When the old credential, still in its grace, is revoked.
    old_grace_deadline: datetime | None
    overdue: bool
    current_ref: str | None
    current_last_used: LastUse
    old_ref: str | None
    old_last_used: LastUse
    #: False for a secret shown from the journal alone, its policy file having problems.
    policy_loaded: bool = True
    #: Who answers for it, and its labels, as its policy says (for routing and filters).
    owner: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form (times in ISO 8601, the age as a duration such as ``3d4h``)."""
        return {
            "secret": self.secret,
            "state": self.state,
            "current_since": _iso(self.current_since),
            "age": format_duration(self.age) if self.age is not None else None,
            "last_rotation": self.last_rotation,
            "last_rotation_at": _iso(self.last_rotation_at),
            "last_error": self.last_error,
            "next_due": _iso(self.next_due),
            "old_grace_deadline": _iso(self.old_grace_deadline),
            "overdue": self.overdue,
            "current_ref": self.current_ref,
            "current_last_used": _iso(self.current_last_used),
            "old_ref": self.old_ref,
            "old_last_used": _iso(self.old_last_used),
            "policy_loaded": self.policy_loaded,
            "owner": self.owner,
            "labels": dict(self.labels),
        }


@dataclass(frozen=True)
class StatusReport:
    """Every policy's row, and the instant they were read at (what relative times count from)."""

    now: datetime
    rows: list[StatusRow]

    def as_json(self) -> list[dict[str, Any]]:
        """Return the JSON form of ``rotator status --json``: one object per secret."""
        return [row.as_dict() for row in self.rows]


def read_status(
    engine: Engine, *, complete: bool = True, names: Collection[str] | None = None
) -> StatusReport:
    """Read the journal and plan with ``engine``, and return every policy's row; changes nothing.

    Not ``complete``: some policy files did not load, so every secret the
    journal knows without a loaded policy gets a row too, from the journal
    alone (it may be one of theirs). ``names``: only those secrets are read
    and planned (a plan may ask a store, so no other store is asked).
    """
    journal = engine.journal
    summaries = journal.summaries(names=names) if journal.exists() else {}
    now = engine.clock()
    plan = engine.plan(summaries, names=names)
    unloaded = () if complete else sorted(set(summaries) - set(engine.policies))
    policies = [n for n in engine.policies if names is None or n in names]
    asked = [*policies, *unloaded]
    used = journal.usage.of(asked) if summaries else {}
    rows = status_rows(
        policies, summaries, plan, used, now, unloaded=unloaded, policies=engine.policies
    )
    return StatusReport(now, rows)


def status_rows(
    names: Iterable[str],
    summaries: Mapping[str, SecretSummary],
    plan: Sequence[PlanItem],
    used: Mapping[tuple[str, str], Usage],
    now: datetime,
    *,
    unloaded: Iterable[str] = (),
    policies: Mapping[str, Policy] | None = None,
) -> list[StatusRow]:
    """Return one row per name (sorted) from the journal's summaries, the plan and last uses.

    Each of ``unloaded`` (secrets whose policy did not load) gets a row
    from its summary alone, ``policy_loaded`` False, sorted in with the rest.
    ``policies`` give each row its owner and labels.
    """
    due = {i.secret: i for i in plan if i.action in (Action.ROTATE, Action.REMIND)}
    attention = {i.secret for i in plan if i.action is Action.ATTENTION}
    # Could not be planned (its store unreadable): said where the last error goes.
    unplanned = {i.secret: i.reason for i in plan if i.action is Action.ERROR}
    overdue = {i.secret for i in plan if i.overdue_since is not None}
    rows: list[StatusRow] = []
    without_policy = set(unloaded)
    for name in sorted({*names, *without_policy}):
        summary = summaries.get(name) or SecretSummary()
        last = summary.last_rotation
        grace = next((r for r in summary.open if r.state is State.GRACE), None)
        item = due.get(name)
        current_ref = (last.new_ref if last.succeeded else last.old_ref) if last else None
        old_ref = grace.old_ref if grace else None
        policy = (policies or {}).get(name)
        state = last.state.value if last else "never rotated"
        rows.append(
            StatusRow(
                secret=name,
                state="needs-attention" if name in attention else state,
                current_since=summary.last_success,
                age=_age(summary.last_success, now),
                last_rotation=last.id if last else None,
                last_rotation_at=last.created_at if last else None,
                last_error=unplanned.get(name) or (last.error if last else None),
                next_due=item.due_at if item else None,
                old_grace_deadline=grace.grace_deadline if grace else None,
                overdue=name in overdue,
                current_ref=current_ref,
                current_last_used=_last_use(used, name, current_ref),
                old_ref=old_ref,
                old_last_used=_last_use(used, name, old_ref),
                policy_loaded=name not in without_policy,
                owner=policy.owner if policy else None,
                labels=dict(policy.labels) if policy else {},
            )
        )
    return rows


def _age(since: datetime | None, now: datetime) -> timedelta | None:
    """Return how long ago ``since`` was, in whole seconds (None for never)."""
    if since is None:
        return None
    return timedelta(seconds=int((now - since).total_seconds()))


def _last_use(used: Mapping[tuple[str, str], Usage], name: str, ref: str | None) -> LastUse:
    """Say when the issuer last saw ``ref`` used: a time, ``never``, or None (not asked)."""
    found = used.get((name, ref)) if ref else None
    if found is None:
        return None
    return found.last_used if found.last_used else NEVER


def _iso(at: datetime | str | None) -> str | None:
    """Return ``at`` in ISO 8601 (a word such as ``never`` as it is; None stays None)."""
    return at.isoformat() if isinstance(at, datetime) else at
