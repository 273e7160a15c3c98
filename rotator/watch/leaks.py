"""Leak reports from secret scanners: which managed secrets leaked, and what was done.

``rotator leaks ingest`` reads a report of gitleaks (``gitleaks detect
--report-format json``: one JSON array of findings) or trufflehog v3
(``trufflehog ... --json``: one JSON object per line), compares every finding
with the credentials of every managed secret, and emergency-rotates each
secret whose current credential, pending one or old one still in its grace
window leaked. An old credential already revoked needs nothing; a finding
that matches nothing is listed for a human.

Only a secret part that matches (a value's fingerprint, an AWS secret access
key) is a leak worth an emergency. A finding that matches by its public
identifier alone (an AWS access key id, with no secret key or one that is not
the key's) is answered as the secret's ``leaks.on_identifier_only`` says:
``rotate`` (the default) alerts ``identifier-leaked`` and starts a normal
rotation, whose grace keeps the old credential working; ``alert`` only
alerts; ``emergency`` rotates with no grace. Anyone who can feed reports
would otherwise be able to cut every consumer of a key off at once.

What a secret's credentials are, and where each stands:

- its current value, read live from its store, and each string field of a
  mapping value (an IAM key pair's ``SecretAccessKey``, an AppRole
  ``secret_id``): *current*;
- the values the journal fingerprinted (``old_fingerprint``,
  ``new_fingerprint`` of every rotation) and the refs it recorded
  (``old_ref``, ``new_ref``: an IAM access key id, which is what scanners
  report for AWS): *pending*, *in grace*, *revoked* (with when), or
  *superseded* (current once, then replaced outside rotator).

Values are compared by keyed fingerprint only: each finding's leaked values
are fingerprinted as soon as the comparison starts and then dropped; a
store's value lives only while its fingerprints are taken. Refs are
identifiers, not secrets, and are compared as they are. Nothing here prints,
logs or raises a value, nor a finding's ``Match``, ``Raw`` or ``RawV2``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

import structlog

from rotator.adapters.durations import format_duration
from rotator.adapters.roles import AlertEvent, Severity, Store
from rotator.adapters.secret import PUBLIC_FIELDS, SecretValue
from rotator.engine.runner import Engine
from rotator.errors import ConfigError, RotatorError
from rotator.journal.journal import Rotation
from rotator.lifecycle import BEFORE_PROMOTE, State

log = structlog.get_logger("rotator.leaks")

GITLEAKS = "gitleaks"
TRUFFLEHOG = "trufflehog"
TOOLS = (GITLEAKS, TRUFFLEHOG)

#: An AWS access key id. It identifies a key (it is in every signed request
#: and in CloudTrail); scanners report it as the finding, and the journal
#: records it as the rotation's ref.
AWS_KEY_ID = re.compile(r"(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}")
#: trufflehog's ``RawV2`` of an AWS finding: the key id, then the 40-character
#: secret key (joined by ``:`` in current versions, by nothing before).
_AWS_PAIR = re.compile(r"((?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}):?([A-Za-z0-9+/]{40})")
#: Field values of a stored mapping shorter than this are not compared (a
#: user name, a port): too likely to turn up in a report by chance.
MIN_FIELD_LENGTH = 8
#: What ``gitleaks --redact`` writes instead of the secret.
_GITLEAKS_REDACTED = "REDACTED"
#: Longest text taken from a report for display (file names, rule ids).
_MAX_TEXT = 300

Fingerprint = Callable[[SecretValue], str]


class ReportError(ConfigError):
    """A report that is not what its tool writes; refused before anything is compared."""

    def __init__(self, source: str, line: int, reason: str) -> None:
        self.source = source
        self.line = line
        self.reason = reason
        super().__init__(f"{source}:{line}: {reason}")


# -- findings ---------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One finding of a scanner: where it is, which rule found it, what leaked.

    ``values`` holds the leaked values (masked when printed); the comparison
    replaces each finding with a copy without them. ``key_ids`` holds the
    AWS access key ids found, which are identifiers, not secrets.
    """

    tool: str
    number: int
    report_line: int
    file: str
    line: int | None
    commit: str
    rule: str
    fingerprint: str = ""
    verified: bool | None = None
    key_ids: tuple[str, ...] = ()
    values: tuple[SecretValue, ...] = field(default=(), repr=False, compare=False)
    redacted: bool = False

    @property
    def location(self) -> str:
        """Return ``file:line`` (or what is known of it)."""
        if not self.file:
            return "-"
        return f"{self.file}:{self.line}" if self.line is not None else self.file

    @property
    def short_commit(self) -> str:
        """Return the commit abbreviated as git does (empty outside a git scan)."""
        return self.commit[:7]

    @property
    def key_hint(self) -> str:
        """Return the first AWS key id found, shortened so it can be told apart but not copied."""
        if not self.key_ids:
            return ""
        key = self.key_ids[0]
        return f"{key[:4]}…{key[-4:]}"

    def reason(self, *, identifier_only: bool = False) -> str:
        """Return the reason recorded with the rotation this finding causes."""
        kind = "leak (identifier only)" if identifier_only else "leak"
        text = f"{kind}: {self.tool} {self.rule or 'finding'} at {self.location}"
        return text + (f" (commit {self.short_commit})" if self.commit else "")

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready mapping without any leaked value."""
        return {
            "finding": self.number,
            "report_line": self.report_line,
            "file": self.file,
            "line": self.line,
            "commit": self.commit,
            "rule": self.rule,
            "fingerprint": self.fingerprint or None,
            "key_id": self.key_hint or None,
            "verified": self.verified,
        }


@dataclass(frozen=True)
class Report:
    """A parsed scanner report: where it came from, which tool wrote it, its findings."""

    source: str
    tool: str
    findings: tuple[Finding, ...]


def parse_report(data: bytes, source: str, tool: str | None = None) -> Report:
    """Parse a gitleaks or trufflehog report (``tool`` None: tell them apart by content).

    A JSON array is gitleaks; anything else is read as trufflehog's JSON
    lines (an empty input is trufflehog's answer when it finds nothing).

    Raises:
        ReportError: the report is not valid; the message names ``source``,
            the line and the reason, never a value.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ReportError(source, line, f"not UTF-8 text (byte {exc.start + 1})") from None
    if tool is None:
        tool = detect(text)
    if tool == GITLEAKS:
        return Report(source, GITLEAKS, tuple(_gitleaks(text, source)))
    if tool == TRUFFLEHOG:
        return Report(source, TRUFFLEHOG, tuple(_trufflehog(text, source)))
    raise ConfigError(f"unknown report format {tool!r}: expected one of {', '.join(TOOLS)}")


def detect(text: str) -> str:
    """Tell which tool wrote a report: a JSON array is gitleaks, JSON lines trufflehog."""
    head = text.lstrip()
    # gitleaks is written in Go, which encodes a list never filled as null.
    if head.startswith("[") or head.rstrip() == "null":
        return GITLEAKS
    return TRUFFLEHOG


def _line_of(text: str, position: int) -> int:
    return text.count("\n", 0, position) + 1


def _json_type(value: object) -> str:
    """Name a decoded value's JSON type, for messages (never the value itself)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _printable(text: str) -> str:
    """Return report text fit for a terminal and the journal: no control characters, bounded."""
    clean = "".join(c if c.isprintable() else "?" for c in text)
    return clean if len(clean) <= _MAX_TEXT else clean[: _MAX_TEXT - 1] + "…"


@dataclass(frozen=True)
class _Fields:
    """Typed access to one finding's fields; a wrong type is refused with the finding's line."""

    item: Mapping[str, Any]
    source: str
    line: int
    what: str

    def _refuse(self, reason: str) -> ReportError:
        return ReportError(self.source, self.line, f"{self.what}: {reason}")

    def text(self, key: str, *, required: bool = False) -> str:
        if key not in self.item:
            if required:
                raise self._refuse(f'has no "{key}" field')
            return ""
        value = self.item[key]
        if not isinstance(value, str):
            raise self._refuse(f'"{key}" must be a string, not {_json_type(value)}')
        if required and not value:
            raise self._refuse(f'"{key}" is empty')
        return value

    def number(self, key: str) -> int | None:
        if key not in self.item:
            return None
        value = self.item[key]
        if not isinstance(value, int) or isinstance(value, bool):
            raise self._refuse(f'"{key}" must be an integer, not {_json_type(value)}')
        return value

    def flag(self, key: str) -> bool | None:
        if key not in self.item:
            return None
        value = self.item[key]
        if not isinstance(value, bool):
            raise self._refuse(f'"{key}" must be true or false, not {_json_type(value)}')
        return value

    def mapping(self, key: str) -> Mapping[str, Any] | None:
        value = self.item.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self._refuse(f'"{key}" must be an object, not {_json_type(value)}')
        return value


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


def _array_items(text: str, source: str) -> Iterator[tuple[int, object]]:
    """Yield ``(line, item)`` for each element of a top-level JSON array.

    Each element is decoded by the json module where it starts, so that a
    finding's own line is known when it has to be refused.
    """
    decoder = json.JSONDecoder()
    position = _skip_space(text, 0)
    if text[position : position + 1] != "[":
        hint = (
            " (trufflehog JSON lines? use --scanner trufflehog)"
            if text[position:][:1] == "{"
            else ""
        )
        raise ReportError(
            source,
            _line_of(text, position),
            f"a gitleaks JSON report is a JSON array of findings{hint}",
        )
    position = _skip_space(text, position + 1)
    if text[position : position + 1] == "]":
        position += 1
    else:
        while True:
            start = position
            try:
                item, position = decoder.raw_decode(text, position)
            except json.JSONDecodeError as exc:
                raise ReportError(
                    source, exc.lineno, f"not valid JSON: {exc.msg} (column {exc.colno})"
                ) from None
            yield _line_of(text, start), item
            position = _skip_space(text, position)
            following = text[position : position + 1]
            if following == ",":
                position = _skip_space(text, position + 1)
                continue
            if following == "]":
                position += 1
                break
            raise ReportError(
                source,
                _line_of(text, position),
                "not valid JSON: expected ',' or ']' after a finding"
                if following
                else "not valid JSON: the array is not closed",
            )
    rest = _skip_space(text, position)
    if rest < len(text):
        raise ReportError(
            source, _line_of(text, rest), "not valid JSON: extra data after the array"
        )


def _gitleaks(text: str, source: str) -> Iterator[Finding]:
    """Parse ``gitleaks detect --report-format json`` output."""
    if text.strip() == "null":
        return
    for number, (line, item) in enumerate(_array_items(text, source), start=1):
        what = f"finding {number}"
        if not isinstance(item, dict):
            raise ReportError(source, line, f"{what} is a JSON {_json_type(item)}, not an object")
        fields = _Fields(item, source, line, what)
        secret = fields.text("Secret", required=True)
        fields.text("Match")  # type-checked only: it holds the secret too, and is never kept
        key_ids: tuple[str, ...] = ()
        values: tuple[SecretValue, ...] = ()
        # gitleaks' aws-access-token rule reports the key id as the secret.
        if AWS_KEY_ID.fullmatch(secret):
            key_ids = (secret,)
        else:
            values = (SecretValue(secret),)
        yield Finding(
            tool=GITLEAKS,
            number=number,
            report_line=line,
            file=_printable(fields.text("File")),
            line=fields.number("StartLine"),
            commit=_printable(fields.text("Commit")),
            rule=_printable(fields.text("RuleID") or fields.text("Description")),
            fingerprint=_printable(fields.text("Fingerprint")),
            key_ids=key_ids,
            values=values,
            redacted=secret == _GITLEAKS_REDACTED or secret.endswith("..."),
        )


def _is_log_line(item: Mapping[str, Any]) -> bool:
    """Tell a trufflehog log line (its stderr merged into the report) from a finding."""
    return (
        "msg" in item
        and "level" in item
        and not {"SourceMetadata", "DetectorName", "Raw"} & item.keys()
    )


def _trufflehog(text: str, source: str) -> Iterator[Finding]:
    """Parse ``trufflehog ... --json`` output: one finding object per line."""
    number = 0
    for line, raw_line in enumerate(text.split("\n"), start=1):
        body = raw_line.strip()
        if not body:
            continue
        try:
            item = json.loads(body)
        except json.JSONDecodeError as exc:
            indent = len(raw_line) - len(raw_line.lstrip())
            raise ReportError(
                source,
                line,
                f"not valid JSON: {exc.msg} (column {exc.colno + indent})" + _lines_hint(text),
            ) from None
        if not isinstance(item, dict):
            raise ReportError(
                source,
                line,
                f"a JSON {_json_type(item)}, not an object: trufflehog --json writes one "
                "finding object per line" + _lines_hint(text),
            )
        if _is_log_line(item):
            continue
        number += 1
        yield _trufflehog_finding(_Fields(item, source, line, f"finding {number}"), number)


def _lines_hint(text: str) -> str:
    """Say what a whole report that is not JSON lines seems to be instead."""
    try:
        whole = json.loads(text)
    except ValueError:
        return ""
    if isinstance(whole, list):
        return " (the report is one JSON array: a gitleaks report? use --scanner gitleaks)"
    if isinstance(whole, dict):
        return " (the report is one JSON object over several lines, not trufflehog --json output)"
    return ""


def _trufflehog_finding(fields: _Fields, number: int) -> Finding:
    raw = fields.text("Raw", required=True)
    raw_v2 = fields.text("RawV2")
    detector = fields.text("DetectorName")
    verified = fields.flag("Verified")
    file, line, commit = _trufflehog_place(fields)
    key_ids: list[str] = []
    values: list[SecretValue] = []
    # For AWS, Raw is the key id (an identifier); anything else is the secret.
    if AWS_KEY_ID.fullmatch(raw):
        key_ids.append(raw)
    else:
        values.append(SecretValue(raw))
    if raw_v2:
        values.append(SecretValue(raw_v2))
        pair = _AWS_PAIR.fullmatch(raw_v2)
        if pair is not None:
            key_id, secret_key = pair.groups()
            if key_id not in key_ids:
                key_ids.append(key_id)
            # The secret key alone, and the pair as the store and journal hold it.
            values.append(SecretValue(secret_key))
            values.append(SecretValue({"AccessKeyId": key_id, "SecretAccessKey": secret_key}))
    return Finding(
        tool=TRUFFLEHOG,
        number=number,
        report_line=fields.line,
        file=_printable(file),
        line=line,
        commit=_printable(commit),
        rule=_printable(detector),
        verified=verified,
        key_ids=tuple(key_ids),
        values=tuple(values),
    )


def _trufflehog_place(fields: _Fields) -> tuple[str, int | None, str]:
    """Return ``(file, line, commit)`` from ``SourceMetadata.Data.<source>``."""
    metadata = fields.mapping("SourceMetadata")
    if metadata is None:
        return "", None, ""
    data = _Fields(metadata, fields.source, fields.line, f"{fields.what}: SourceMetadata")
    sources = data.mapping("Data")
    if not sources:
        return "", None, ""
    # One key names the source (Git, Github, Filesystem, ...); its object says where.
    kind = next(iter(sources))
    detail = _Fields(sources, fields.source, fields.line, f"{fields.what}: SourceMetadata.Data")
    place = detail.mapping(kind)
    if place is None:
        return "", None, ""
    where = f"{fields.what}: SourceMetadata.Data.{_printable(kind)}"
    spot = _Fields(place, fields.source, fields.line, where)
    return spot.text("file") or spot.text("link"), spot.number("line"), spot.text("commit")


# -- what rotator knows of each managed secret's credentials ---------------------


class Standing(StrEnum):
    """Where a leaked credential stands in its secret's life."""

    #: What consumers use now.
    CURRENT = "current"
    #: Minted by an unfinished rotation, not current yet.
    PENDING = "pending"
    #: Replaced, still valid until its grace deadline.
    GRACE = "in grace"
    #: Revoked by a rotation (or deleted by a rollback).
    REVOKED = "revoked"
    #: Current once, then replaced outside rotator: nobody revoked it.
    SUPERSEDED = "superseded"


#: Most urgent first. A credential known twice is judged by the more urgent
#: standing, except that the journal's word on an old credential (revoked)
#: beats the guess that a replaced one is superseded.
_URGENCY = (
    Standing.CURRENT,
    Standing.PENDING,
    Standing.GRACE,
    Standing.REVOKED,
    Standing.SUPERSEDED,
)
#: Standings an emergency rotation deals with: it replaces the current and
#: pending credentials and revokes those in grace at once.
ROTATE = frozenset({Standing.CURRENT, Standing.PENDING, Standing.GRACE})


@dataclass(frozen=True)
class Known:
    """One credential rotator recognises: where it stands, since when, by which rotation."""

    standing: Standing
    at: datetime | None = None
    rotation_id: str | None = None

    def urgency(self) -> int:
        """Return the rank of this standing (0 is the most urgent)."""
        return _URGENCY.index(self.standing)


@dataclass
class Credentials:
    """Every credential of one managed secret rotator can recognise, by fingerprint and by ref."""

    secret: str
    fingerprints: dict[str, Known] = field(default_factory=dict)
    refs: dict[str, Known] = field(default_factory=dict)

    def add(self, known: Known, *, fingerprint: str | None = None, ref: str | None = None) -> None:
        """Record a credential under its fingerprint and/or ref, keeping the more urgent."""
        for table, key in ((self.fingerprints, fingerprint), (self.refs, ref)):
            if not key:
                continue
            before = table.get(key)
            if before is None or known.urgency() < before.urgency():
                table[key] = known

    def match(self, fingerprints: Collection[str], key_ids: Collection[str]) -> Known | None:
        """Return the most urgent credential among those leaked (None if none is this secret's)."""
        found = [self.fingerprints[f] for f in fingerprints if f in self.fingerprints]
        found += [self.refs[k] for k in key_ids if k in self.refs]
        return min(found, key=Known.urgency) if found else None


def _string_fields(value: SecretValue) -> dict[str, str]:
    """Return the string fields of a mapping value (or of a string holding a JSON object)."""
    plain: object = value.reveal()
    if isinstance(plain, str):
        if not plain.lstrip().startswith("{"):
            return {}
        try:
            plain = json.loads(plain)
        except ValueError:
            return {}
    if not isinstance(plain, Mapping):
        return {}
    return {str(k): v for k, v in plain.items() if isinstance(v, str)}


def _revoked_at(rotation: Rotation) -> datetime | None:
    """Return when a rotation's old credential was revoked (or its new one rolled back)."""
    return rotation.revoked_at or rotation.finished_at or rotation.updated_at


def recognise(
    name: str,
    store: Store[Any],
    history: list[Rotation],
    fingerprint: Fingerprint,
) -> Credentials:
    """Return what rotator knows of a secret's credentials: its store now, and its journal.

    Raises whatever the store raises when its current value cannot be read.
    """
    credentials = Credentials(name)
    current = store.current()
    live: str | None = None
    if current is not None:
        live = fingerprint(current.value)
        now = Known(Standing.CURRENT)
        credentials.add(now, fingerprint=live)
        for key, text in _string_fields(current.value).items():
            if key in PUBLIC_FIELDS:
                credentials.add(now, ref=text)
            elif len(text) >= MIN_FIELD_LENGTH:
                credentials.add(now, fingerprint=fingerprint(SecretValue(text)))
    for rotation in history:
        state, rid = rotation.state, rotation.id
        # The credential this rotation replaces (or was to replace).
        old: Known | None
        if state is State.GRACE:
            old = Known(Standing.GRACE, rotation.grace_deadline, rid)
        elif state in (State.REVOKED, State.DONE):
            old = Known(Standing.REVOKED, _revoked_at(rotation), rid)
        elif rotation.old_fingerprint is not None and rotation.old_fingerprint == live:
            old = Known(Standing.CURRENT, None, rid)  # not replaced (yet): still current
        else:
            old = None  # another rotation of this secret says where it stands
        if old is not None:
            credentials.add(old, fingerprint=rotation.old_fingerprint, ref=rotation.old_ref)
        # The credential this rotation minted.
        new: Known
        if state is State.ROLLED_BACK:
            new = Known(Standing.REVOKED, _revoked_at(rotation), rid)
        elif state in BEFORE_PROMOTE or state is State.ROLLING_BACK:
            new = Known(Standing.PENDING, None, rid)
        elif rotation.new_fingerprint is not None and rotation.new_fingerprint == live:
            new = Known(Standing.CURRENT, None, rid)
        else:
            new = Known(Standing.SUPERSEDED, rotation.promoted_at, rid)
        credentials.add(new, fingerprint=rotation.new_fingerprint, ref=rotation.new_ref)
    return credentials


def _ephemeral_fingerprint() -> Fingerprint:
    """Return a fingerprint under a key of this process only.

    Used when there is no journal yet: nothing recorded needs comparing,
    and the installation key is not created by a command that only reads.
    """
    key = secrets.token_bytes(32)

    def fingerprint(value: SecretValue) -> str:
        return hmac.new(key, value.text().encode(), hashlib.sha256).hexdigest()[:32]

    return fingerprint


# -- triage: compare, decide, rotate -----------------------------------------------


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
    fingerprint = journal.fingerprint if recorded else _ephemeral_fingerprint()
    # The leaked values become fingerprints now; the findings kept drop them.
    leaked = [
        (replace(f, values=()), frozenset(fingerprint(v) for v in f.values))
        for f in report.findings
    ]
    matches: list[list[_Match]] = [[] for _ in leaked]
    unchecked: dict[str, str] = {}
    # One read of the whole journal, not two queries per secret.
    recorded_rotations = journal.rotations_of(engine.policies) if recorded else {}
    for name in sorted(engine.policies):
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
    """Raise one ``identifier-leaked`` alert to the notifiers the secret's policy names."""
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
        to=policy.alerts,
        owner=policy.owner,
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
