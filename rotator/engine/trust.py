"""Trust in the journal: its audit chain verified before acting, tampered secrets set aside.

Every recorded step is a link of the audit chain (:mod:`rotator.journal.audit`).
Before it acts, the engine checks the chain since it last verified it (or
since the head kept in the anchor file, or from the start). A secret whose
rows fail their check is set aside (needs attention, alerted once); a chain
broken since its last acceptance, or a journal that lacks the anchored
record, sets every secret aside until a person checks.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

import structlog

from rotator.adapters.values import AlertEvent, Severity
from rotator.engine.alerts import Alerting, SecretAlerts
from rotator.engine.report import Outcome, Result
from rotator.errors import ConfigError, JournalError, JournalTampered
from rotator.journal.audit import GENESIS, AnchorFile, ChainReport, Tampering
from rotator.journal.journal import Journal
from rotator.journal.records import SecretSummary
from rotator.journal.verified import Mark

log = structlog.get_logger("rotator.engine")


@dataclass(frozen=True)
class _Reading:
    """What one check read in one state of the journal, before anything is acted on."""

    #: The record this process verified last, found missing (None: held, or not looked for).
    lost: tuple[int, str] | None
    #: Why the journal lacks the anchored record (None: it holds it, or no anchor).
    behind: str | None
    #: The record the chain is checked from, or the mark answers from (0: the whole chain).
    chain_from: int
    #: The journal found as a check at least as strict found it intact (taken).
    mark: Mark | None
    #: The digest to keep when the check finds everything intact ("": none to keep).
    digest: str
    #: The row-by-row check (None: the mark was taken instead).
    report: ChainReport | None
    #: The record by which a person last accepted the journal (0 too when not read: a mark).
    accepted: int


class JournalTrust:
    """What the engine knows of the journal's integrity, and the checks that keep it current."""

    def __init__(
        self,
        journal: Journal,
        alerting: Alerting,
        alerts: SecretAlerts,
        anchor: AnchorFile | None = None,
    ) -> None:
        self.journal = journal
        self.alerting = alerting
        self.alerts = alerts
        #: Where the last verified head of the audit chain is kept (outside the database).
        self.anchor = anchor
        # The last audit record verified (seq, hash): checks continue from it.
        self._audit_verified: tuple[int, str] | None = None
        # Secrets whose journal rows failed their check at the last
        # verification, with what was found: never acted on (needs attention).
        self._tampered: dict[str, str] = {}
        #: What is wrong with the journal as a whole (its head, its anchor): no
        #: secret is acted on while it lasts.
        self.trail_problem: str | None = None
        # Set once the journal is found without a record this process verified:
        # the anchor file's check, kept in memory. A journal restored under a
        # running service from an older copy (its ``verified`` digest with it),
        # or a database failing over to a replica that had not received the
        # last commits, is otherwise found consistent, and the service would go
        # on from the older head. Kept until the process ends, whatever the
        # journal looks like afterwards.
        self._lost: str | None = None
        self._checking = threading.Lock()

    def check_state(self) -> ChainReport:
        """Check the journal before acting: every row, and the chain since it was last verified.

        Since the last verification of this process, or else since the head
        kept in ``ROTATOR_AUDIT_ANCHOR``, or else the whole chain. Secrets
        whose rows fail are set aside (needs attention, alerted); a chain
        broken since the last acceptance, or a journal that lacks the
        anchored record, sets everything aside. A journal found exactly as
        a check that verified at least as much found it intact is not
        checked row by row again (rotator/journal/verified.py).
        """
        return self.check_audit(unless_unchanged=True)

    def check_audit(
        self,
        *,
        full: bool = False,
        anchor: tuple[int, str] | None = None,
        unless_unchanged: bool = False,
    ) -> ChainReport:
        """Verify the audit chain (from the last record verified, unless ``full``); alert if broken.

        A broken chain is alerted (``audit-chain-broken``, to every notifier
        that wants it) once per first bad record, and the next check is a
        full one again. ``unless_unchanged`` (the service's watch pass):
        a journal exactly as a check at least as strict found it intact is
        not checked row by row again, as in :meth:`check_state`; a person's
        ``audit verify`` always checks every row. A check made
        ``unless_unchanged`` that finds everything intact keeps the
        content's digest, so that the next one (of any process) is spared
        the row-by-row check.
        """
        # Read before the journal's state is fixed: read after, the anchor
        # could name a record written since, which that state lacks.
        kept = self._anchored()
        # One check at a time: the watch thread and a pass (a reload, a pass
        # after a failed one) share what each finds and where it continues.
        with self._checking:
            try:
                read = self._read(kept, full=full, anchor=anchor, unless_unchanged=unless_unchanged)
            except JournalTampered as exc:  # a value no check reads past (journal/schema.py)
                # Held, alerted; where checks continue from, and a record found
                # lost, stay as they were: the next check looks for them again.
                found = ChainReport(0, None, None, tampering=(Tampering(None, str(exc)),))
                self._note_tampering(found.tampering)
                return found
            return self._act_on(read)

    def _read(
        self,
        kept: tuple[int, str] | None,
        *,
        full: bool,
        anchor: tuple[int, str] | None,
        unless_unchanged: bool,
    ) -> _Reading:
        """Read all a check needs in one state of the journal, writing nothing.

        One state for the lookups, the digest, the chain and every row: the
        digest kept when the check finds everything intact is then the
        digest of what it checked (read apart, a row edited, put back while
        the check read it, and edited again would match a digest kept as
        checked). Nothing is written while that state is held (alerts, the
        digest kept, the anchor all come after): a migration queued behind
        this read must never wait on this process's own writes.
        """
        verified = self._audit_verified
        with self.journal.snapshot() as state:
            lost = None
            if (
                self._lost is None
                and verified is not None
                and not self.journal.trail.holds(*verified, on=state)
            ):
                lost, verified = verified, None  # a head the journal lost is not checked from
            if full:
                start, anchor = None, anchor or kept
            else:
                start = None if anchor is not None else verified or kept
            chain_from = start[0] if start is not None else 0
            mark, digest = None, ""
            keeping = unless_unchanged and anchor in (None, kept)
            if keeping:
                mark, digest = self.journal.verified.unchanged(chain_from, state)
            behind = None
            if (
                kept is not None
                and self.anchor is not None
                and not self.journal.trail.holds(*kept, on=state)
            ):
                behind = (
                    f"the journal does not hold the anchored audit record {kept[0]} "
                    f"({self.anchor.path}): dropped, or restored from an older copy"
                )
            if mark is not None and behind is None and lost is None and self._lost is None:
                return _Reading(lost, behind, chain_from, mark, digest, None, 0)
            report = self.journal.trail.verify(start=start, anchor=anchor, on=state)
            accepted = self.journal.trail.accepted_through(on=state)
        return _Reading(lost, behind, chain_from, None, digest, report, accepted)

    def _act_on(self, read: _Reading) -> ChainReport:
        """Act on what a check read: remember, alert, keep the digest and the anchor."""
        if read.lost is not None:
            # Said until the process ends (records appended to the older chain
            # afterwards change nothing); checks start from the anchor or the
            # chain's start again (see _lost).
            self._lost = (
                f"the journal no longer holds audit record {read.lost[0]}, which this "
                "process verified: dropped, restored from an older copy, or lost in a "
                "database failover (restart rotator once a person has checked)"
            )
            self._audit_verified = None
        mark, report = read.mark, read.report
        if report is None and mark is not None:  # as a check at least as strict found it
            self._note_tampering(())
            if mark.head_seq:
                self._audit_verified = (mark.head_seq, mark.head_hash)
                report = ChainReport(0, mark.head_seq, mark.head_hash, unchanged=True)
            else:  # an empty chain: no head to continue from
                report = ChainReport(0, None, None, unchanged=True)
            if self.anchor is not None:
                self.anchor.keep(report)
            return report
        assert report is not None  # _read returns a mark or a report
        trail = [Tampering(None, what) for what in self._trail_problems(read, report)]
        self._note_tampering((*report.tampering, *trail))
        if report.intact:
            # Not past a journal that lost what was verified: it stays distrusted.
            if not trail and report.head_seq is not None and report.head_hash is not None:
                self._audit_verified = (report.head_seq, report.head_hash)
                if self.anchor is not None:
                    self.anchor.keep(report)
            if read.digest and self.trail_problem is None:
                self._keep(read, report)
            return report
        self._audit_verified = None
        if trail:  # alerted as the journal not to be trusted
            return report
        problem = report.problem or "; ".join(t.what for t in report.tampering[:5])
        self.alerting.raise_alert(
            AlertEvent.AUDIT_CHAIN_BROKEN,
            Severity.CRITICAL,
            f"the audit trail in {self.journal.describe()} is broken: {problem}",
            secret=None,
            condition=f"{report.broken_at}" if report.problem else problem[:200],
            to=None,
            details={"first_bad_record": str(report.broken_at)},
        )
        return report

    def _keep(self, read: _Reading, report: ChainReport) -> None:
        """Keep the digest of the content a check found intact (the next check's shortcut)."""
        # An empty chain (rows but no records yet) is kept at its start.
        head = (report.head_seq or 0, report.head_hash or GENESIS)
        try:
            self.journal.verified.keep(read.digest, read.chain_from, head)
        except JournalError as exc:  # only the next check's cost depends on it
            log.warning("journal found intact, but that could not be kept", error=str(exc))

    def hold_everything(self, reason: str) -> None:
        """Act on no secret until the journal is checked again (a check that could not run)."""
        self._note_tampering([Tampering(None, reason)])

    def distrust_of(self, name: str, summary: SecretSummary) -> str | None:
        """Say why a secret's journal rows cannot be trusted (None: they can, as far as known)."""
        if self.trail_problem is not None:
            return self.trail_problem
        if name in self._tampered:
            return self._tampered[name]
        if summary.unreadable is not None:
            return summary.unreadable
        rows = [*summary.open, *([summary.last_rotation] if summary.last_rotation else [])]
        forged = next((r for r in rows if not r.intact), None)
        if forged is not None:
            return f"rotation {forged.id} does not match its seal"
        return None

    def refuse(self, name: str, what: str) -> Outcome:
        """Refuse to act on a secret whose journal rows failed their check; alert it."""
        self._tampered[name] = what
        log.error("journal rows tampered with; not acting", secret=name, problem=what)
        self._alert_tampered(name, what)
        return Outcome(
            name,
            Result.FAILED,
            f"not acting on {name}: its journal rows are not as rotator wrote them ({what}); "
            "run `rotator audit verify`",
            alerted=True,
        )

    def _trail_problems(self, read: _Reading, report: ChainReport) -> list[str]:
        """Say what makes the whole journal untrustworthy: a recent chain break, a lost anchor."""
        found = []
        if report.problem is not None and (report.broken_at or 0) > read.accepted:
            found.append(f"the audit trail: {report.problem}")
        for behind in (read.behind, self._lost):
            if behind is not None:
                found.append(behind)
        return found

    def _anchored(self) -> tuple[int, str] | None:
        """Return the head kept in the anchor file (None: no file, or nothing kept yet)."""
        if self.anchor is None:
            return None
        try:
            return self.anchor.read()
        except (OSError, ValueError) as exc:
            raise ConfigError(str(exc)) from None

    def _note_tampering(self, found: Iterable[Tampering]) -> None:
        """Remember which secrets failed their check, and alert each (critical, once)."""
        tampered: dict[str, str] = {}
        trail = [item.what for item in found if item.secret is None]
        if trail and self.trail_problem != trail[0]:
            self.alerting.raise_alert(
                AlertEvent.AUDIT_CHAIN_BROKEN,
                Severity.CRITICAL,
                f"the journal {self.journal.describe()} cannot be trusted: {trail[0]}; "
                "no secret is acted on until a person checks (`rotator audit verify`)",
                secret=None,
                condition=trail[0][:200],
                to=None,
            )
        self.trail_problem = trail[0] if trail else None
        for item in found:
            if item.secret is None:
                continue
            if item.secret not in tampered:
                self._alert_tampered(item.secret, item.what)
            tampered.setdefault(item.secret, item.what)
        self._tampered = tampered

    def _alert_tampered(self, name: str, what: str) -> None:
        """Alert that a secret's journal rows are not as rotator wrote them (critical)."""
        self.alerts.raise_alert(
            name,
            AlertEvent.JOURNAL_TAMPERED,
            Severity.CRITICAL,
            f"{name}: its journal rows are not as rotator wrote them: {what}. Nothing is "
            "revoked, extended or rotated for it until a person checks (`rotator audit verify`)",
            condition=what[:200],
        )
