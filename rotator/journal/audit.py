"""The audit trail: one hash-chained record per action on a credential.

Every step the journal records (a rotation started by schedule, by hand or
in an emergency; minted; stored as pending; propagated to each target;
verified; promoted; grace extended; revoked; deleted; rolled back; a retry;
a failure) also appends an :class:`AuditRecord` in the same transaction, as
do facts learnt outside a rotation (a revoked key seen in use, a leak
report). A record says when, which secret and rotation, who (the *actor*:
``service``, ``one-shot`` or ``operator:NAME``), what, why, how it ended and
the keyed fingerprints and refs of the credentials involved, never a value.

The chain: record *n* carries ``prev_hash``, the hash of record *n-1*, and
its own ``hash``, an HMAC-SHA256 over its canonical JSON (sequence number
and ``prev_hash`` included) under a key derived from the installation's
fingerprint key. :func:`verify_chain` therefore names the first record that
was edited (its hash no longer matches its content), or after which records
were deleted, inserted or reordered (a gap in the numbers, a broken link).
Keyed rather than a bare SHA-256, so that someone who can write the
database but not read rotator's key file cannot rewrite the chain to
match. Cutting records off the end leaves a shorter valid chain; the
answer to that is an anchor kept elsewhere: ``audit verify`` prints the
head (``SEQ:HASH``), ``--anchor SEQ:HASH`` checks that a head noted earlier
is still there, and the JSONL sink ships every record as it is written.
"""

from __future__ import annotations

import csv
import getpass
import hashlib
import hmac
import io
import json
import os
import socket
import sys
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import structlog

from rotator.output.escaping import bytes_repr, csv_cell
from rotator.output.files import replace_file

log = structlog.get_logger("rotator.audit")

#: ``prev_hash`` of the first record.
GENESIS = "0" * 64


class AuditAction(StrEnum):
    """What an audit record says happened, besides a transition of the lifecycle.

    A record of a move between states carries the
    :class:`~rotator.lifecycle.Transition`'s own word (``minted``,
    ``promoted``, ``grace-cut-short``...); these are the other words, and no
    word is both (a test holds them apart).
    """

    SCHEDULED = "scheduled"
    MANUAL = "manual"
    EMERGENCY = "emergency"
    INVENTORY = "inventory"
    #: A retry, an error, an interruption: the step's name, the outcome says which.
    STEP = "step"
    #: A credential revoked earlier was seen in use.
    REVOKED_CREDENTIAL_USED = "revoked-credential-used"
    #: A leak report named a managed credential.
    LEAK_REPORTED = "leak-reported"
    #: The chain was started (first record of a journal, or after the upgrade adding it).
    TRAIL_STARTED = "trail-started"
    #: A person took the journal's rows as found after they failed their checks.
    TAMPERING_ACCEPTED = "tampering-accepted"


@dataclass(frozen=True)
class AuditRecord:
    """One link of the audit chain."""

    seq: int
    at: datetime
    actor: str
    action: str
    outcome: str
    secret: str | None = None
    rotation_id: str | None = None
    step: str | None = None
    reason: str | None = None
    detail: str | None = None
    old_ref: str | None = None
    new_ref: str | None = None
    old_fingerprint: str | None = None
    new_fingerprint: str | None = None
    prev_hash: str = GENESIS
    hash: str = ""
    #: The seal of the ``rotations`` row as this record left it (schema 5 on):
    #: binds the row the engine acts on to the chain (see ``Journal.verify_audit``).
    row_seal: str | None = None
    #: The ``events`` row this record was written with, and its seal (schema 5 on).
    event_id: int | None = None
    event_seal: str | None = None

    def canonical(self) -> bytes:
        """Return the bytes the hash covers: every field but ``hash``, as sorted compact JSON.

        The bindings added by schema 5 are left out while empty, so records
        written before them keep the hash they were sealed with.
        """
        return _canonical(self.as_dict())

    def seal(self, key: bytes) -> str:
        """Return the hash this record has when sealed under ``key`` (what verifying compares)."""
        return hmac.new(key, self.canonical(), hashlib.sha256).hexdigest()

    def sealed(self, key: bytes) -> AuditRecord:
        """Return this record with its ``hash`` computed under ``key``."""
        return replace(self, hash=self.seal(key))

    def linked(self, seq: int, prev_hash: str, key: bytes) -> AuditRecord:
        """Return this record as the chain's link ``seq`` after ``prev_hash``, sealed under ``key``.

        The same record as ``replace(self, seq=seq, prev_hash=prev_hash).sealed(key)``,
        built once: it is made for every step the journal records.
        """
        data = self.columns() | {"seq": seq, "prev_hash": prev_hash}
        body = _canonical(data | {"at": seal_time(self.at)})
        data["hash"] = hmac.new(key, body, hashlib.sha256).hexdigest()
        return AuditRecord(**data)

    def columns(self) -> dict[str, Any]:
        """Return the record's fields as they are stored (``at`` a datetime)."""
        return {name: getattr(self, name) for name in FIELDS}

    def as_dict(self) -> dict[str, object]:
        """Return a JSON-ready mapping (``at`` in UTC with microseconds)."""
        # Every field holds a flat value, so a shallow copy: dataclasses.asdict
        # deep-copies each one, which was most of verifying a chain.
        data: dict[str, object] = {name: getattr(self, name) for name in FIELDS}
        data["at"] = seal_time(self.at)
        return data


#: Fields that bind a record to the journal rows it was written with (schema 5).
BINDINGS = ("row_seal", "event_id", "event_seal")

#: A record's fields in order: also the columns of ``audit export --format csv``.
FIELDS = tuple(f.name for f in fields(AuditRecord))


def _canonical(data: Mapping[str, object]) -> bytes:
    """Return what a record's hash covers, from its JSON-ready fields (see ``canonical``)."""
    covered = {
        name: value
        for name, value in data.items()
        if name != "hash" and (value is not None or name not in BINDINGS)
    }
    return json.dumps(
        covered, sort_keys=True, separators=(",", ":"), default=_never_written
    ).encode()


def _never_written(value: object) -> object:
    """Stand in, in a record's hashed JSON, for bytes read back (SQLite keeps them in text columns).

    An object: a record's fields are flat, so no record rotator wrote hashes
    the same, and the record is found edited instead of failing the check.
    Anything else JSON cannot encode is rotator's own mistake when writing a
    record, and still raises TypeError.
    """
    return {"not written by rotator": bytes_repr(value)}


def named(value: Any) -> str:
    """Return a row's id or secret as a finding names it: its repr unless text (SQLite: bytes)."""
    return value if type(value) is str else repr(value)


def same_seal(expected: str, found: object) -> bool:
    """Tell, in constant time, whether ``found``, read back, is the seal or hash ``expected``.

    ``expected`` is one rotator computed (hex). False for what rotator never
    writes as a seal or hash: None, bytes, text that is not ASCII (on which
    ``hmac.compare_digest`` raises TypeError instead of answering).
    """
    return type(found) is str and found.isascii() and hmac.compare_digest(expected, found)


def seal_time(at: datetime) -> str:
    """Format a time the same way whatever database it came back from.

    The text is ``strftime("%Y-%m-%dT%H:%M:%S.%fZ")`` of the time in UTC, the
    form every seal and record was made with; ``isoformat`` writes the same
    text in half the time (each row sealed or checked formats several
    times), except for years before 1000, which it pads with zeros.
    """
    if at.tzinfo is UTC and at.year >= 1000:
        # Every time read back from the journal: no conversion, no copy.
        return at.isoformat(timespec="microseconds")[:-6] + "Z"
    utc = at.astimezone(UTC)
    if utc.year < 1000:
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def chain_key(fingerprint_key: bytes) -> bytes:
    """Derive the chain's HMAC key from the installation's fingerprint key."""
    return hmac.new(fingerprint_key, b"rotator audit chain v1", hashlib.sha256).digest()


def row_key(fingerprint_key: bytes) -> bytes:
    """Derive the HMAC key that seals journal rows from the installation's fingerprint key."""
    return hmac.new(fingerprint_key, b"rotator journal rows v1", hashlib.sha256).digest()


#: The JSON a row's seal covers; one encoder for every seal (``json.dumps`` with
#: these options builds a new one on each call, a fifth of a seal's cost).
_SEAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str).encode


def seal_row(key: bytes, table: str, values: Mapping[str, object]) -> str:
    """Return the seal of one journal row: an HMAC-SHA256 over its table and canonical values.

    Times are written the same way whatever database they came back from;
    the ``seal`` column itself is left out.
    """
    return seal_written(key, table, as_sealed(values))


def as_sealed(values: Mapping[str, object]) -> dict[str, object]:
    """Return a row's values as its seal covers them: times as :func:`seal_time`, no ``seal``."""
    return {
        name: seal_time(value) if isinstance(value, datetime) else value
        for name, value in values.items()
        if name != "seal"
    }


def seal_written(key: bytes, table: str, data: Mapping[str, object]) -> str:
    """Return the seal of a row's values already as :func:`as_sealed` gives them."""
    body = _SEAL_JSON([table, data])
    # The one-shot HMAC: the same digest as hmac.new(...).hexdigest(), without the object.
    return hmac.digest(key, body.encode(), "sha256").hex()


@dataclass(frozen=True)
class Tampering:
    """One journal row (or the chain's head) that does not match what rotator wrote."""

    #: The secret whose rows it concerns (None: the trail as a whole).
    secret: str | None
    what: str

    def __post_init__(self) -> None:
        # SQLite keeps bytes in a secret column too: a finding names them as
        # text, or alerting on it (JSON) and sorting names would fail.
        if self.secret is not None:
            object.__setattr__(self, "secret", named(self.secret))


@dataclass(frozen=True)
class ChainReport:
    """What a verification found: records checked, the head, the first break, tampered rows."""

    records: int
    head_seq: int | None
    head_hash: str | None
    broken_at: int | None = None
    problem: str | None = None
    #: Rows of rotations, events and leases, and the head, that fail their check.
    tampering: tuple[Tampering, ...] = ()
    #: True when the journal was found exactly as the last check that found it
    #: intact left it, so nothing was checked again (see rotator/journal/verified.py).
    unchanged: bool = False
    #: True when the chain was verified from its start, not from a record verified before.
    whole: bool = False

    @property
    def intact(self) -> bool:
        """True if no record or row was found edited, missing, inserted or reordered."""
        return self.problem is None and not self.tampering

    @property
    def head(self) -> str:
        """Return the head as ``SEQ:HASH`` (what to keep as an anchor), or ``-``."""
        return "-" if self.head_seq is None else f"{self.head_seq}:{self.head_hash}"


def parse_anchor(text: str) -> tuple[int, str]:
    """Parse ``SEQ:HASH``; ValueError saying what is expected otherwise."""
    seq, _, digest = text.partition(":")
    if not seq.isdigit() or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"anchor {text!r}: expected SEQ:HASH as `audit verify` prints it")
    return int(seq), digest


def verify_chain(
    records: Iterable[AuditRecord],
    key: bytes,
    *,
    anchor: tuple[int, str] | None = None,
    start: tuple[int, str] | None = None,
) -> ChainReport:
    """Check every link of the chain in order; report the first bad record.

    ``start`` (the ``seq`` and ``hash`` of a record already verified)
    continues a verification from there (records must then begin after
    it). ``anchor`` is a head noted earlier, which must still be in the
    chain with the same hash.
    """
    expected_seq, expected_prev = (1, GENESIS) if start is None else (start[0] + 1, start[1])
    count = 0
    last: AuditRecord | None = None
    anchored = anchor is None
    for record in records:
        if record.seq != expected_seq:
            where = _where(record)
            if record.seq > expected_seq:
                missing = (
                    f"record {expected_seq}"
                    if record.seq == expected_seq + 1
                    else f"records {expected_seq} to {record.seq - 1}"
                )
                problem = f"{missing} missing before {where}: deleted"
            else:
                problem = f"{where} is out of order after record {expected_seq - 1}"
            return _broken(count, last, record.seq, problem)
        if not same_seal(record.seal(key), record.hash):
            return _broken(
                count,
                last,
                record.seq,
                f"{_where(record)} does not match its hash: edited after writing",
            )
        if record.prev_hash != expected_prev:
            return _broken(
                count,
                last,
                record.seq,
                f"{_where(record)} does not follow record {expected_seq - 1}: "
                "a record before it was replaced, inserted or reordered",
            )
        if anchor is not None and record.seq == anchor[0]:
            if not same_seal(anchor[1], record.hash):
                return _broken(
                    count,
                    last,
                    record.seq,
                    f"{_where(record)} is not the anchored record: the chain was rewritten since",
                )
            anchored = True
        count += 1
        last = record
        expected_seq, expected_prev = record.seq + 1, record.hash
    if not anchored and anchor is not None:
        seq = anchor[0]
        return _broken(
            count,
            last,
            seq,
            f"record {seq} of the anchor is gone: the chain ends at "
            f"{last.seq if last else 'nothing'} (records were cut off the end)",
        )
    if last is None:
        head = (start[0], start[1]) if start is not None else (None, None)
        return ChainReport(0, head[0], head[1])
    return ChainReport(count, last.seq, last.hash)


def _where(record: AuditRecord) -> str:
    """Name a record in a problem: its number, time, action and secret."""
    where = f"record {record.seq} ({seal_time(record.at)}, {record.action}"
    return where + (f" of {record.secret})" if record.secret else ")")


def _broken(count: int, last: AuditRecord | None, seq: int, problem: str) -> ChainReport:
    return ChainReport(count, last.seq if last else None, last.hash if last else None, seq, problem)


def to_jsonl(records: Iterable[AuditRecord]) -> Iterable[str]:
    """Yield each record as one line of JSON (with its newline)."""
    for record in records:
        # Bytes SQLite kept where rotator writes text are exported as their repr.
        line = json.dumps(
            record.as_dict(), sort_keys=True, separators=(",", ":"), default=bytes_repr
        )
        yield line + "\n"


def to_csv(records: Iterable[AuditRecord]) -> Iterable[str]:
    """Yield a CSV header and one row per record (RFC 4180 quoting).

    For spreadsheets: a text cell that starts like a formula (``=``, ``+``,
    ``-``, ``@``, tab, CR) gets a ``'`` first, so a name or a remote error
    cannot run as one. JSON lines hold every field exactly as hashed.
    """
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\r\n")
    writer.writeheader()
    yield buffer.getvalue()
    for record in records:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow({k: "" if v is None else csv_cell(v) for k, v in record.as_dict().items()})
        yield buffer.getvalue()


def actor(mode: str) -> str:
    """Name who acts in audit records: ``service@HOST``, ``one-shot@HOST``, ``operator:NAME@HOST``.

    ``ROTATOR_ACTOR`` names the person or pipeline (a CI job sets it to its
    run's URL); an operator is otherwise the user who ran ``sudo``, or the
    login name.
    """
    host = socket.gethostname()
    named = os.environ.get("ROTATOR_ACTOR", "").strip()
    if mode == "operator":
        try:
            named = named or os.environ.get("SUDO_USER", "") or getpass.getuser()
        except (KeyError, OSError):  # no passwd entry (a container's random uid)
            named = named or f"uid {os.getuid()}"
    return f"{mode}:{named}@{host}" if named else f"{mode}@{host}"


class JsonlSink:
    """Appends every audit record as one line of JSON to a file, or to stdout (``-``).

    For log shippers: the file is opened for each record (so that log
    rotation by rename just works) and written with one ``write`` of a whole
    line. A failure to write is logged, once, and does not stop rotations:
    the journal holds the chain.
    """

    def __init__(self, target: str) -> None:
        self.target = target
        self._lock = threading.Lock()
        self._warned = False

    def __call__(self, record: AuditRecord) -> None:
        """Append one record."""
        line = "".join(to_jsonl([record]))
        with self._lock:
            try:
                if self.target == "-":
                    sys.stdout.write(line)
                    sys.stdout.flush()
                    return
                # O_NOFOLLOW: a link planted at the sink's name is not written through.
                flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW
                fd = os.open(self.target, flags, 0o600)
                try:
                    os.write(fd, line.encode())
                finally:
                    os.close(fd)
            except OSError as exc:
                if not self._warned:
                    self._warned = True
                    log.error("audit sink not writable", sink=self.target, error=exc.strerror)


class AnchorFile:
    """The last verified head of the chain (``SEQ:HASH``), kept in a file outside the database.

    Whoever can write the database can drop it whole, or put back an older
    copy of it with its head: the sealed head cannot tell. A head kept where
    they cannot write (``ROTATOR_AUDIT_ANCHOR``, on rotator's host, not the
    database's) can: every later verification must still find that record.
    Written after each verification that found the chain intact.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)

    def read(self) -> tuple[int, str] | None:
        """Return the anchored head, or None before the first verification wrote one."""
        try:
            with open(self.path) as fh:
                text = fh.read().strip()
        except FileNotFoundError:
            return None
        try:
            return parse_anchor(text)
        except ValueError as exc:
            raise ValueError(f"ROTATOR_AUDIT_ANCHOR {self.path}: {exc}") from None

    def write(self, seq: int, digest: str) -> None:
        """Replace the anchored head whole (a random temporary name, then a rename)."""
        replace_file(Path(os.path.abspath(self.path)), f"{seq}:{digest}\n", private=True)

    def keep(self, report: ChainReport) -> None:
        """Anchor the head a verification found intact (a write that fails is logged, not fatal)."""
        if not report.intact or report.head_seq is None or report.head_hash is None:
            return
        try:
            self.write(report.head_seq, report.head_hash)
        except OSError as exc:
            log.warning("audit anchor not written", path=self.path, error=exc.strerror)


def anchor_from_env() -> AnchorFile | None:
    """Return the anchor file ``ROTATOR_AUDIT_ANCHOR`` names, or None if unset."""
    target = os.environ.get("ROTATOR_AUDIT_ANCHOR", "").strip()
    return AnchorFile(target) if target else None


def sink_from_env() -> JsonlSink | None:
    """Return the sink ``ROTATOR_AUDIT_LOG`` names (a file path or ``-``), or None if unset."""
    target = os.environ.get("ROTATOR_AUDIT_LOG", "").strip()
    return JsonlSink(target) if target else None
