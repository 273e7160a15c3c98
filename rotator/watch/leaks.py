"""Leak reports from secret scanners: which managed secrets leaked, and what was done.

``rotator leaks ingest`` reads a report of gitleaks or trufflehog
(:mod:`rotator.watch.scanners`), compares every finding with the
credentials of every managed secret (:mod:`rotator.watch.credentials`), and
emergency-rotates each secret whose current credential, pending one or old
one still in its grace window leaked. An old credential already revoked
needs nothing; a finding that matches nothing is listed for a human.

Only a secret part that matches (a value's fingerprint, an AWS secret access
key) is a leak worth an emergency. A finding that matches by its public
identifier alone (an AWS access key id, with no secret key or one that is not
the key's) is answered as the secret's ``leaks.on_identifier_only`` says:
``rotate`` (the default) alerts ``identifier-leaked`` and starts a normal
rotation, whose grace keeps the old credential working; ``alert`` only
alerts; ``emergency`` rotates with no grace. Anyone who can feed reports
would otherwise be able to cut every consumer of a key off at once. What is
an identifier is each provider's to say
(:class:`rotator.adapters.scanning.CredentialFormat`); this module knows no
credential format.

Values are compared by keyed fingerprint only: each finding's leaked values
are fingerprinted as soon as the comparison starts and then dropped; a
store's value lives only while its fingerprints are taken. Refs are
identifiers, not secrets, and are compared as they are. Nothing here prints,
logs or raises a value, nor a finding's ``Match``, ``Raw`` or ``RawV2``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

import structlog

from rotator.adapters.durations import format_duration
from rotator.adapters.values import AlertEvent, Severity
from rotator.engine.runner import Engine
from rotator.errors import RotatorError
from rotator.watch.credentials import (
    ROTATE,
    Credentials,
    Known,
    Standing,
    ephemeral_fingerprint,
    recognise,
)
from rotator.watch.findings import Finding, Report

log = structlog.get_logger("rotator.leaks")


class Action(StrEnum):
    """What was done about one finding's match."""

    ROTATED = "rotated (emergency)"
    WOULD_ROTATE = "would rotate (dry run)"
    ROTATED_WITH_GRACE = "rotated with grace (identifier only)"
    WOULD_ROTATE_WITH_GRACE = "would rotate with grace (dry run)"
    ALERTED = "alerted (identifier only)"
    WOULD_ALERT = "would alert (dry run)"
    ALREADY_REVOKED = "already revoked"
    FAILED = "rotation failed"
    BY_HAND = "revoke by hand"
    NO_MATCH = "no match"


#: Actions that leave work for a human (exit 1).
NEEDS_HUMAN = frozenset({Action.FAILED, Action.BY_HAND, Action.NO_MATCH})


@dataclass(frozen=True)
class Row:
    """One finding and what became of it for one managed secret (or for none)."""

    finding: Finding
    secret: str | None = None
    known: Known | None = None
    action: Action = Action.NO_MATCH
    detail: str = ""
    rotation_id: str | None = None

    def says(self) -> str:
        """Return the action as an operator reads it."""
        if self.action is Action.ALREADY_REVOKED:
            return f"already revoked at {_fmt(self.known.at if self.known else None)}"
        if self.action is Action.FAILED:
            return f"rotation failed: {self.detail}"
        if self.action is Action.ROTATED_WITH_GRACE:
            return "rotated with grace: only its identifier leaked, not its secret part"
        if self.action is Action.ALERTED:
            return f"alerted: only its identifier leaked, not its secret part; {self.detail}"
        if self.action is Action.BY_HAND:
            return "not rotated: replaced outside rotator and never revoked; revoke it by hand"
        if self.action is Action.NO_MATCH:
            if self.finding.redacted:
                return "no match: the report is redacted (gitleaks --redact); act by hand"
            return "no match: not a managed secret; act by hand"
        return self.action.value

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready mapping without any leaked value."""
        return {
            **self.finding.as_dict(),
            "secret": self.secret,
            "credential": self.known.standing.value if self.known else None,
            "action": self.action.value,
            "message": self.says(),
            "rotation_id": self.rotation_id,
        }


@dataclass(frozen=True)
class Triage:
    """What one report's findings matched, and what was done: rows, secrets not checked."""

    source: str
    tool: str
    dry_run: bool
    rows: list[Row]
    #: Secrets whose store could not be read, with why.
    unchecked: dict[str, str]

    def _secrets(self, action: Action) -> list[str]:
        return sorted({r.secret for r in self.rows if r.action is action and r.secret})

    def _findings(self, action: Action) -> int:
        return len({r.finding.number for r in self.rows if r.action is action})

    @property
    def findings(self) -> int:
        """Return how many findings the report held."""
        return len({r.finding.number for r in self.rows})

    @property
    def exit_code(self) -> int:
        """Return 1 when a human must act (a failure, a secret unchecked, a leak unmatched), else 0.

        As gitleaks itself exits 1 on leaks: an unmatched finding is a leak
        nobody has dealt with. A dry run's would-be rotations are not.
        """
        if self.unchecked or any(r.action in NEEDS_HUMAN for r in self.rows):
            return 1
        return 0

    def summary(self) -> str:
        """Return the one-line summary printed under the table."""
        rotated = self._secrets(Action.WOULD_ROTATE if self.dry_run else Action.ROTATED)
        parts = [
            f"{len(rotated)} secret(s) "
            + ("would be rotated (dry run)" if self.dry_run else "rotated (emergency)")
        ]
        graced = self._secrets(
            Action.WOULD_ROTATE_WITH_GRACE if self.dry_run else Action.ROTATED_WITH_GRACE
        )
        if graced:
            parts.append(
                f"{len(graced)} secret(s) "
                + (
                    "would be rotated with grace (dry run)"
                    if self.dry_run
                    else "rotated with grace (identifier only)"
                )
            )
        failed = self._secrets(Action.FAILED)
        if failed:
            parts.append(f"{len(failed)} rotation(s) failed")
        for action, words in (
            (Action.ALERTED, "alerted (identifier only)"),
            (Action.WOULD_ALERT, "would be alerted (dry run)"),
            (Action.ALREADY_REVOKED, "already revoked"),
            (Action.BY_HAND, "to revoke by hand"),
            (Action.NO_MATCH, "matched nothing"),
        ):
            count = self._findings(action)
            if count:
                parts.append(f"{count} finding(s) {words}")
        if self.unchecked:
            parts.append(f"{len(self.unchecked)} secret(s) could not be checked")
        return f"{self.findings} finding(s) in {self.source} ({self.tool}): " + "; ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        """Return the whole triage, JSON-ready, without any leaked value."""
        return {
            "report": self.source,
            "format": self.tool,
            "dry_run": self.dry_run,
            "findings": [r.as_dict() for r in self.rows],
            "unchecked": [{"secret": s, "error": e} for s, e in sorted(self.unchecked.items())],
            "summary": {
                "findings": self.findings,
                "rotated": self._secrets(Action.ROTATED),
                "would_rotate": self._secrets(Action.WOULD_ROTATE),
                "rotated_with_grace": self._secrets(Action.ROTATED_WITH_GRACE),
                "would_rotate_with_grace": self._secrets(Action.WOULD_ROTATE_WITH_GRACE),
                "alerted": self._findings(Action.ALERTED),
                "would_alert": self._findings(Action.WOULD_ALERT),
                "failed": self._secrets(Action.FAILED),
                "already_revoked": self._findings(Action.ALREADY_REVOKED),
                "revoke_by_hand": self._findings(Action.BY_HAND),
                "unmatched": self._findings(Action.NO_MATCH),
                "unchecked": sorted(self.unchecked),
                "exit_code": self.exit_code,
                "text": self.summary(),
            },
        }


@dataclass(frozen=True)
class _Match:
    """One finding's match with one managed secret, and what the secret's policy asks for."""

    secret: str
    known: Known
    #: Only the public identifier matched: no secret part of the finding did.
    identifier_only: bool
    #: ``emergency``, or for an identifier only the policy's ``leaks.on_identifier_only``.
    response: str

    @property
    def normal_rotation(self) -> bool:
        """Tell whether this match asks for a normal rotation (with grace) of its secret."""
        return self.response == "rotate" and self.known.standing is Standing.CURRENT


def _match(
    engine: Engine, credentials: Credentials, finding: Finding, fingerprints: frozenset[str]
) -> _Match | None:
    """Match one finding with one secret's credentials: by a secret part, else by identifier."""
    by_value = credentials.match(fingerprints, ())
    known = by_value or credentials.match((), finding.key_ids)
    if known is None:
        return None
    if by_value is not None:
        return _Match(credentials.secret, known, identifier_only=False, response="emergency")
    response = engine.policies[credentials.secret].leaks.on_identifier_only
    return _Match(credentials.secret, known, identifier_only=True, response=response)


def triage(engine: Engine, report: Report, *, dry_run: bool = False) -> Triage:
    """Match a report's findings to the managed secrets and rotate those that leaked.

    Every secret's credentials are read before anything is rotated, so the
    rows say what the report matched, not what a rotation made of it. A
    secret whose secret part leaked is emergency-rotated; one whose public
    identifier alone did is answered as its ``leaks.on_identifier_only``
    says (see the module). A secret is rotated once however many findings
    match it, with the first such finding as the reason, and an emergency
    wins over a normal rotation. A store that cannot be read leaves that
    secret unchecked; the others go on. With ``dry_run`` nothing changes and
    no alert is raised.
    """
    journal = engine.journal
    recorded = journal.exists()
    fingerprint = journal.fingerprint if recorded else ephemeral_fingerprint()
    # The leaked values become fingerprints now; the findings kept drop them.
    leaked = [
        (replace(f, values=()), frozenset(fingerprint(v) for v in f.values))
        for f in report.findings
    ]
    matches: list[list[_Match]] = [[] for _ in leaked]
    unchecked: dict[str, str] = {}
    # One read of the whole journal, not two queries per secret.
    recorded_rotations, unreadable = journal.rotations_of(engine.policies) if recorded else ({}, {})
    for name in sorted(engine.policies):
        if name in unreadable:  # its rows not as rotator wrote them: recognised from none
            unchecked[name] = unreadable[name]
            log.warning(
                "secret could not be checked for leaks", secret=name, error=unreadable[name]
            )
            continue
        history = recorded_rotations.get(name, [])
        try:
            credentials = recognise(name, engine.binding(name).store, history, fingerprint)
        except RotatorError as exc:
            unchecked[name] = str(exc)
            log.warning("secret could not be checked for leaks", secret=name, error=str(exc))
            continue
        except Exception as exc:  # noqa: BLE001 (one broken adapter must not hide the others' leaks)
            # Its message may come from a library and carry anything: only its type is told.
            unchecked[name] = f"unexpected {type(exc).__name__}"
            log.error(
                "secret could not be checked for leaks", secret=name, error=type(exc).__name__
            )
            continue
        for found, (finding, fingerprints) in zip(matches, leaked, strict=True):
            match = _match(engine, credentials, finding, fingerprints)
            if match is not None:
                found.append(match)
                log.warning(
                    "leaked credential matched",
                    secret=name,
                    credential=match.known.standing.value,
                    identifier_only=match.identifier_only,
                    finding=finding.number,
                    location=finding.location,
                    rule=finding.rule,
                )

    emergency, normal = _rotations_asked(matches, [f for f, _ in leaked])
    if not dry_run:
        _alert_identifiers(engine, matches, [f for f, _ in leaked], emergency)
    done: dict[str, tuple[Action, str, str | None]] = {}
    for name, finding in emergency.items():
        done[name] = (Action.WOULD_ROTATE, "", None) if dry_run else _rotate(engine, name, finding)
    graced: dict[str, tuple[Action, str, str | None]] = {}
    for name, finding in normal.items():
        graced[name] = (
            (Action.WOULD_ROTATE_WITH_GRACE, "", None)
            if dry_run
            else _rotate(engine, name, finding, emergency=False)
        )

    rows: list[Row] = []
    for found, (finding, _) in zip(matches, leaked, strict=True):
        if not found:
            rows.append(Row(finding))
        for match in found:
            rows.append(_row(finding, match, done, graced, dry_run=dry_run))
    return Triage(report.source, report.tool, dry_run, rows, unchecked)


def _rotations_asked(
    matches: list[list[_Match]], findings: list[Finding]
) -> tuple[dict[str, Finding], dict[str, Finding]]:
    """Return the secrets to rotate in an emergency and those to rotate normally, each with why.

    An emergency rotation replaces the credential anyway: a secret asked for
    both gets only the emergency one.
    """
    emergency: dict[str, Finding] = {}
    normal: dict[str, Finding] = {}
    for found, finding in zip(matches, findings, strict=True):
        for match in found:
            if match.known.standing not in ROTATE:
                continue
            if match.response == "emergency":
                emergency.setdefault(match.secret, finding)
            elif match.normal_rotation:
                normal.setdefault(match.secret, finding)
    return emergency, {n: f for n, f in normal.items() if n not in emergency}


def _row(
    finding: Finding,
    match: _Match,
    done: Mapping[str, tuple[Action, str, str | None]],
    graced: Mapping[str, tuple[Action, str, str | None]],
    *,
    dry_run: bool,
) -> Row:
    """Return the row saying what became of one finding's match with one secret."""
    name, known = match.secret, match.known
    if known.standing is Standing.REVOKED:
        return Row(finding, name, known, Action.ALREADY_REVOKED)
    if known.standing not in ROTATE:
        return Row(finding, name, known, Action.BY_HAND)
    # An emergency rotation deals with every credential of the secret it rotates.
    rotated = done.get(name) or (graced.get(name) if match.normal_rotation else None)
    if rotated is not None:
        action, detail, rotation_id = rotated
        return Row(finding, name, known, action, detail, rotation_id)
    action = Action.WOULD_ALERT if dry_run else Action.ALERTED
    return Row(finding, name, known, action, _identifier_outcome(match))


def _identifier_outcome(match: _Match) -> str:
    """Say what happens to a credential whose identifier alone leaked, when not rotated now."""
    if match.response == "alert":
        return "not rotated (leaks.on_identifier_only: alert)"
    if match.known.standing is Standing.GRACE:
        return f"revoked at its grace deadline, {_fmt(match.known.at)}"
    if match.known.standing is Standing.PENDING:
        return "minted by a rotation still under way; rotate again once it is done"
    return "a normal rotation starts now; the old credential stays valid for its grace"


def _alert_identifiers(
    engine: Engine,
    matches: list[list[_Match]],
    findings: list[Finding],
    emergency: Collection[str],
) -> None:
    """Alert ``identifier-leaked`` for each identifier-only match not answered by an emergency."""
    migrated = False
    for found, finding in zip(matches, findings, strict=True):
        for match in found:
            if not match.identifier_only or match.response == "emergency":
                continue
            if match.known.standing not in ROTATE or match.secret in emergency:
                continue
            if not migrated:
                engine.journal.migrate()  # alerts are recorded in the journal before being sent
                migrated = True
            _alert_identifier(engine, finding, match)


def _alert_identifier(engine: Engine, finding: Finding, match: _Match) -> None:
    """Raise one ``identifier-leaked`` alert to the secret's notifiers (named, or matching)."""
    policy = engine.policies[match.secret]
    then = _identifier_outcome(match)
    if match.normal_rotation:  # how long the grace is, for whoever reads the alert
        then += f" ({format_duration(policy.grace)})"
    where = finding.location + (f" (commit {finding.short_commit})" if finding.commit else "")
    engine.alerting.raise_alert(
        AlertEvent.IDENTIFIER_LEAKED,
        Severity.WARNING,
        f"{match.secret}: {finding.tool} reported the identifier {finding.key_hint} of its "
        f"{match.known.standing.value} credential at {where}, without its secret part; {then}",
        secret=match.secret,
        # one alert per place a key id is reported, not one per ingest of the same report
        condition=f"{','.join(finding.key_ids)}|{finding.location}|{finding.commit}",
        to=engine.alerts.notifiers_of(policy),
        owner=policy.owner,
        labels=policy.labels,
        details={
            "location": finding.location,
            "commit": finding.short_commit,
            "rule": finding.rule,
            "key_id": finding.key_hint,
            "credential": match.known.standing.value,
            "on_identifier_only": match.response,
        },
    )


def _rotate(
    engine: Engine, name: str, finding: Finding, *, emergency: bool = True
) -> tuple[Action, str, str | None]:
    """Rotate one secret (``emergency``: no grace); return the action, failure and rotation id."""
    kind = "emergency" if emergency else "normal"
    reason = finding.reason(identifier_only=not emergency)
    log.warning(f"{kind} rotation for a leak", secret=name, reason=reason)
    try:
        result = engine.rotate(name, emergency=emergency, reason=reason)
    except RotatorError as exc:
        return Action.FAILED, str(exc), None
    except Exception as exc:  # noqa: BLE001 (the other leaked secrets must still be rotated)
        log.error(f"{kind} rotation failed unexpectedly", secret=name, error=type(exc).__name__)
        return Action.FAILED, f"unexpected {type(exc).__name__}", None
    last = result.outcomes[-1] if result.outcomes else None
    rotation_id = last.rotation_id if last is not None else None
    if result.failed:
        return Action.FAILED, result.failed[0].message, rotation_id
    if last is None:
        return Action.FAILED, "the engine did nothing", None
    return (Action.ROTATED if emergency else Action.ROTATED_WITH_GRACE), "", rotation_id


def _fmt(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S UTC") if when else "an unknown time"
