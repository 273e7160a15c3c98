"""The engine: drives rotations through the lifecycle, durably and idempotently.

The engine decides *what* to do; :mod:`rotator.policy.schedule` decides *when*. For
each policy it resumes unfinished rotations, starts one if the secret is due,
and revokes old credentials whose grace has ended. Every step calls its
adapters first and then records the new state in the journal; every step is
safe to repeat, so a run killed anywhere is finished by the next one:

- before minting, the issuer's inventory is recorded, so that a credential
  minted by a run that died before recording it is found and adopted or
  deleted (``Issuer.recover``): nothing is orphaned, nothing minted twice;
- the new value goes to the store as a pending version at once, keyed by the
  rotation id, so a crash cannot lose it;
- a failure before promote rolls back; after promote, nothing ever rolls
  back to a credential that may have been revoked.

Every recorded step is also a link of the audit chain (:mod:`rotator.journal.audit`,
written by the journal). What a person must hear about (a failure, a secret
needing attention, an overdue or reminder-only credential, an old or revoked
credential still in use, an emergency) is raised through
:mod:`rotator.engine.alerts`, once per condition; :meth:`Engine.watch` records
credentials' last use and resends undelivered alerts, and
:meth:`Engine.check_audit` verifies the chain.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import threading
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, ClassVar, TypeVar

import structlog

from rotator.adapters.discovery import Registry, registry
from rotator.adapters.durations import format_duration
from rotator.adapters.replica import StoreReplica
from rotator.adapters.roles import (
    AlertEvent,
    Credential,
    Issuer,
    RequestObserver,
    Runtime,
    Severity,
    Store,
    Target,
    Verifier,
)
from rotator.adapters.secret import SecretValue
from rotator.clock import Clock, Sleep, system_clock, system_sleep
from rotator.engine import faults
from rotator.engine.alerts import Alerting
from rotator.engine.concurrency import Limits, run_bounded
from rotator.engine.preflight import Finding, check_policy
from rotator.errors import (
    ConfigError,
    ConflictError,
    Interrupted,
    JournalTampered,
    JournalUnavailable,
    LeaseLost,
    PermanentError,
    RotatorError,
    StillInUseError,
    TransientError,
    VerificationError,
)
from rotator.journal.audit import AnchorFile, AuditAction, ChainReport, Tampering
from rotator.journal.journal import Journal
from rotator.journal.leases import lease_owner
from rotator.journal.records import Rotation, SecretSummary
from rotator.lifecycle import BEFORE_PROMOTE, FORWARD, TERMINAL, State, Step, Transition
from rotator.policy.model import MIN_EXTENSION, NotifierSpec, Policy
from rotator.policy.schedule import max_age, min_interval, next_due

log = structlog.get_logger("rotator.engine")

_T = TypeVar("_T")

#: After a scheduled rotation rolled back, the next scheduled attempt waits
#: this long (or a quarter of the interval, if shorter), doubling with each
#: failure in a row up to FAILURE_BACKOFF_CAP, so a broken secret does not
#: mint and delete a credential on every pass of the service.
FAILURE_BACKOFF = timedelta(hours=1)
FAILURE_BACKOFF_CAP = timedelta(hours=24)
#: An unfinished rotation whose last step failed after its retries is tried
#: again on schedule this long after that failure (``rotator rotate`` at once).
STEP_RETRY_AFTER = timedelta(minutes=5)
#: After this many rollbacks in a row the secret needs attention: scheduled
#: attempts stop until an operator runs ``rotator rotate NAME``.
MAX_FAILURES_IN_A_ROW = 5


@dataclass(frozen=True)
class RetryPolicy:
    """How often, and how patiently, a step is retried after a transient error."""

    attempts: int = 4
    base_delay: float = 1.0
    max_delay: float = 30.0

    def delay(self, attempt: int, hint: float | None) -> float:
        """Return the wait before retry number ``attempt`` (1-based)."""
        if hint is not None:
            return min(hint, self.max_delay)
        return min(self.base_delay * 2.0 ** (attempt - 1), self.max_delay)


class Action(StrEnum):
    """What ``plan`` says the engine will do for a secret."""

    ROTATE = "rotate"
    RESUME = "resume"
    REVOKE = "revoke"
    DELETE = "delete"
    WAIT = "wait"
    ERROR = "error"
    #: Scheduled retries gave up; only ``rotator rotate NAME`` tries again.
    ATTENTION = "needs-attention"
    #: Due, but only a person can rotate it (issuer ``manual``): the owner is reminded.
    REMIND = "remind"


@dataclass(frozen=True)
class PlanItem:
    """One thing the engine would do (or is waiting to do) for one secret."""

    secret: str
    action: Action
    due_at: datetime | None
    due: bool
    reason: str
    rotation_id: str | None = None
    #: When the current credential became older than its policy allows (None: it is not).
    overdue_since: datetime | None = None
    #: An old credential still in use is held past its original grace deadline.
    held: bool = False

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready mapping."""
        return {
            "secret": self.secret,
            "action": self.action.value,
            "due": self.due,
            "due_at": self.due_at.isoformat() if self.due_at else None,
            "reason": self.reason,
            "rotation_id": self.rotation_id,
            "overdue_since": self.overdue_since.isoformat() if self.overdue_since else None,
            "held": self.held,
        }


class Result(StrEnum):
    """How handling one secret in a run ended."""

    OK = "ok"
    FAILED = "failed"
    WAITING = "waiting"
    SKIPPED = "skipped"


@dataclass
class Outcome:
    """What happened to one secret in a run."""

    secret: str
    result: Result
    message: str
    rotation_id: str | None = None
    state: State | None = None
    #: True when the failure was alerted where it was found (not as rotation-failed).
    alerted: bool = False


@dataclass
class RunReport:
    """Everything a run did, secret by secret."""

    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def failed(self) -> list[Outcome]:
        """Return the outcomes that failed."""
        return [o for o in self.outcomes if o.result is Result.FAILED]

    @property
    def exit_code(self) -> int:
        """Return 1 if anything failed, else 0 (README's exit codes, under "Commands")."""
        return 1 if self.failed else 0


@dataclass
class _Binding:
    policy: Policy
    store: Store[Any]
    issuer: Issuer[Any]
    targets: list[Target[Any]] = field(default_factory=list)
    verifiers: list[Verifier[Any]] = field(default_factory=list)


class Engine:
    """Runs rotations for a set of policies against one journal."""

    #: The method that runs each step of the lifecycle (``FORWARD`` says which step is next).
    STEP_HANDLERS: ClassVar[dict[Step, str]] = {
        Step.MINT: "_mint",
        Step.STORE: "_store",
        Step.PROPAGATE: "_propagate",
        Step.VERIFY: "_verify",
        Step.PROMOTE: "_promote",
        Step.REVOKE: "_revoke",
        Step.DELETE: "_delete",
        Step.ROLLBACK: "_rollback",
    }

    def __init__(
        self,
        policies: Iterable[Policy],
        journal: Journal,
        *,
        adapters: Registry | None = None,
        clock: Clock = system_clock,
        sleep: Sleep = system_sleep,
        retry: RetryPolicy | None = None,
        lease_ttl: timedelta = timedelta(minutes=15),
        limits: Limits | None = None,
        on_request: RequestObserver | None = None,
        notifiers: Mapping[str, NotifierSpec] | None = None,
        anchor: AnchorFile | None = None,
    ) -> None:
        self.policies = {p.name: p for p in policies}
        #: Where the last verified head of the audit chain is kept (outside the database).
        self.anchor = anchor
        self.journal = journal
        self.adapters = adapters or registry()
        self.clock = clock
        self.retry = retry or RetryPolicy()
        self.lease_ttl = lease_ttl
        self.limits = limits or Limits()
        self.owner = lease_owner()
        # Set when the service stops: retry waits end early and no further
        # step starts (each rotation stays at its last recorded step).
        self._interrupt = threading.Event()
        # A real sleep becomes a wait on that event; an injected one is kept.
        self.sleep: Sleep = self._interruptible_sleep if sleep is system_sleep else sleep
        self.runtime = Runtime(clock=clock, sleep=sleep)
        if on_request is not None:
            self.runtime.on_request = on_request
        self._bindings: dict[str, _Binding] = {}
        self._bindings_lock = threading.Lock()
        self._digests: dict[str, str] = {}
        # New credentials minted by this process, by rotation id: between mint
        # and store the value lives only here (a crash there is what
        # Issuer.recover is for).
        self._minted: dict[str, Credential] = {}
        # Values a person supplied (rotate --value-from-stdin), by rotation
        # id, until the mint step takes them.
        self._supplied: dict[str, SecretValue] = {}
        # The last audit record verified (seq, hash): checks continue from it.
        self._audit_verified: tuple[int, str] | None = None
        # Secrets whose journal rows failed their check at the last
        # verification, with what was found: never acted on (needs attention).
        self._tampered: dict[str, str] = {}
        # What is wrong with the journal as a whole (its head, its anchor): no
        # secret is acted on while it lasts.
        self._trail_problem: str | None = None
        self.alerting = Alerting(
            notifiers or {},
            journal,
            adapters=self.adapters,
            runtime=Runtime(clock=clock, sleep=self.sleep, on_request=self.runtime.on_request),
        )

    def replace_policies(
        self, policies: Iterable[Policy], notifiers: Mapping[str, NotifierSpec] | None = None
    ) -> None:
        """Switch to a new, already validated policy set (a reload).

        Adapters of changed or removed policies are rebuilt or dropped.
        Unfinished rotations of a removed secret stay in the journal and are
        reported by ``plan`` until its policy returns; none is abandoned.
        """
        if notifiers is not None:
            self.alerting.replace(notifiers)
        new = {p.name: p for p in policies}
        for name in list(self._bindings):
            if new.get(name) != self.policies.get(name):
                del self._bindings[name]
        self._digests = {}
        self.policies = new

    def digest(self, name: str) -> str:
        """Return a digest of what a policy says about rotating (not where it is written).

        Recorded with each rotation: a failure streak counts only while the
        policy stays the same, so editing a policy that needed attention
        lets the service try it again.
        """
        found = self._digests.get(name)
        if found is None:
            policy = self.policies[name]
            # What happens after promotion (grace bounds, leak responses) is
            # left out: changing it does not make a failing rotation work.
            text = policy.model_dump_json(
                exclude={
                    "source_file",
                    "source_line",
                    "description",
                    "owner",
                    "labels",
                    "alerts",
                    "leaks",
                    "max_grace",
                    "when_old_still_used_after_max",
                },
                serialize_as_any=True,  # the adapters' Config subclasses, not the base
            )
            found = self._digests[name] = hashlib.sha256(text.encode()).hexdigest()[:32]
        return found

    # -- adapters -------------------------------------------------------------

    def binding(self, name: str) -> _Binding:
        """Return the store and issuer adapters of a policy, built once."""
        found = self._bindings.get(name)
        if found is not None:
            return found
        policy = self.policies.get(name)
        if policy is None:
            raise ConfigError(f"no policy named {name!r}")
        store_cls = self.adapters.store(policy.store.provider)
        issuer_cls = self.adapters.issuer(policy.issuer.kind)
        targets: list[Target[Any]] = []
        for spec in policy.targets:
            if spec.provider is not None:
                replica = self.adapters.store(spec.provider)(spec.config, self.runtime, name)
                targets.append(StoreReplica(replica))
            else:
                targets.append(self.adapters.targets[spec.name](spec.config, self.runtime, name))
        built = _Binding(
            policy,
            store_cls(policy.store.config, self.runtime, name),
            issuer_cls(policy.issuer.config, self.runtime, name),
            targets,
            [self.adapters.verifiers[v.kind](v.config, self.runtime, name) for v in policy.verify],
        )
        with self._bindings_lock:
            # Two threads may build the same binding; both use the first kept.
            return self._bindings.setdefault(name, built)

    def _interruptible_sleep(self, seconds: float) -> None:
        """Sleep, waking early when the engine is interrupted."""
        self._interrupt.wait(seconds)

    def check(self, names: Iterable[str]) -> list[Finding]:
        """Run the preflight of each named policy (``rotator check``); changes nothing."""
        findings: list[Finding] = []
        for name in names:
            b = self.binding(name)
            findings.extend(check_policy(name, b.store, b.issuer, b.targets, b.verifiers))
        return findings

    def interrupt(self) -> None:
        """Stop starting steps: waits end, each rotation stays at its recorded step.

        Safe from a signal handler. Only for a process about to exit.
        """
        self._interrupt.set()

    # -- planning -------------------------------------------------------------

    def plan(
        self,
        summaries: dict[str, SecretSummary] | None = None,
        names: Collection[str] | None = None,
    ) -> list[PlanItem]:
        """Return what is due, when and why, for every policy (or those ``names``); changes nothing.

        ``summaries`` must cover the secrets planned (it is read from the
        journal when not given).
        """
        if summaries is None:
            summaries = self.journal.summaries(names=names) if self.journal.exists() else {}
        now = self.clock()
        items: list[PlanItem] = []
        chosen = self.policies.keys() if names is None else set(names) & self.policies.keys()
        for name in sorted(chosen):
            items.extend(self._plan_secret(name, summaries.get(name, SecretSummary()), now))
        orphans = set(summaries) - self.policies.keys()
        if names is not None:
            orphans &= set(names)
        for name in sorted(orphans):
            for rotation in summaries[name].open:
                items.append(
                    PlanItem(
                        name,
                        Action.ERROR,
                        None,
                        False,
                        f"rotation {rotation.id} is {rotation.state} but no policy "
                        f"names this secret any more; restore the policy to finish it",
                        rotation.id,
                    )
                )
        return items

    def _plan_secret(self, name: str, summary: SecretSummary, now: datetime) -> list[PlanItem]:
        tampered = self._tampering_of(name, summary)
        if tampered is not None:
            return [
                PlanItem(
                    name,
                    Action.ATTENTION,
                    None,
                    False,
                    f"its journal rows are not as rotator wrote them ({tampered}); nothing is "
                    "done for it until they are checked: `rotator audit verify`",
                )
            ]
        items: list[PlanItem] = []
        blocked = False
        for rotation in summary.open:
            blocked = blocked or rotation.blocking
            items.append(self._plan_open(rotation, now))
        if blocked:
            return items
        policy = self.policies[name]
        last = summary.last_success
        basis = "last rotation"
        if last is None:
            try:
                last = self._retrying(self.binding(name).store.last_changed)
            except RotatorError as exc:
                return [*items, PlanItem(name, Action.ERROR, None, False, str(exc))]
            basis = "last change in the store"
        due = next_due(policy.schedule, name, last, now)
        due_at, is_due = due.due_at, due.is_due
        reason = due.reason if last is None else f"{due.reason} ({basis})"
        overdue_since = None
        if last is not None and now - last > max_age(policy.schedule):
            overdue_since = last + max_age(policy.schedule)
        if self.adapters.issuer(policy.issuer.kind).reminder_only:
            # Nothing to retry on a schedule: a person rotates it, when reminded.
            return [
                *items,
                PlanItem(
                    name,
                    Action.REMIND,
                    due_at,
                    is_due,
                    f"{reason}; rotated by hand: `rotator rotate {name} --value-from-stdin`",
                    overdue_since=overdue_since,
                ),
            ]
        failed = summary.last_rotation
        streak = summary.failures_in_a_row
        if (
            failed is not None
            and failed.state is State.ROLLED_BACK
            and failed.finished_at
            and failed.policy_digest in (None, self.digest(name))
        ):
            if streak >= MAX_FAILURES_IN_A_ROW:
                items.append(
                    PlanItem(
                        name,
                        Action.ATTENTION,
                        None,
                        False,
                        f"{streak} rotations in a row rolled back (last: {failed.error}); "
                        f"not retried on schedule until `rotator rotate {name}`",
                        failed.id,
                    )
                )
                return items
            base = min(FAILURE_BACKOFF, min_interval(policy.schedule) / 4)
            wait = min(base * 2 ** max(streak - 1, 0), FAILURE_BACKOFF_CAP)
            retry_at = failed.finished_at + wait
            if retry_at > due_at:
                due_at, is_due = retry_at, retry_at <= now
                reason = (
                    f"last attempt {failed.id[:8]} rolled back ({failed.error}; "
                    f"{streak} in a row); {reason}"
                )
        items.append(
            PlanItem(name, Action.ROTATE, due_at, is_due, reason, overdue_since=overdue_since)
        )
        return items

    def _tampering_of(self, name: str, summary: SecretSummary) -> str | None:
        """Say why a secret's journal rows cannot be trusted (None: they can, as far as known)."""
        if self._trail_problem is not None:
            return self._trail_problem
        if name in self._tampered:
            return self._tampered[name]
        rows = [*summary.open, *([summary.last_rotation] if summary.last_rotation else [])]
        forged = next((r for r in rows if not r.intact), None)
        if forged is not None:
            return f"rotation {forged.id} does not match its seal"
        return None

    def check_state(self) -> ChainReport:
        """Check the journal before acting: every row, and the chain since it was last verified.

        Since the last verification of this process, or else since the head
        kept in ``ROTATOR_AUDIT_ANCHOR``, or else the whole chain. Secrets
        whose rows fail are set aside (needs attention, alerted); a chain
        broken since the last acceptance, or a journal that lacks the
        anchored record, sets everything aside.
        """
        return self.check_audit()

    def _trail_problems(self, report: ChainReport, kept: tuple[int, str] | None) -> list[str]:
        """Say what makes the whole journal untrustworthy: a recent chain break, a lost anchor."""
        found = []
        if (
            report.problem is not None
            and (report.broken_at or 0) > self.journal.trail.accepted_through()
        ):
            found.append(f"the audit trail: {report.problem}")
        behind = self._behind_anchor(kept)
        if behind is not None:
            found.append(behind)
        return found

    def hold_everything(self, reason: str) -> None:
        """Act on no secret until the journal is checked again (a check that could not run)."""
        self._note_tampering([Tampering(None, reason)])

    def _anchored(self) -> tuple[int, str] | None:
        """Return the head kept in the anchor file (None: no file, or nothing kept yet)."""
        if self.anchor is None:
            return None
        try:
            return self.anchor.read()
        except (OSError, ValueError) as exc:
            raise ConfigError(str(exc)) from None

    def _behind_anchor(self, kept: tuple[int, str] | None) -> str | None:
        """Say whether the journal lacks the anchored record ``kept`` (dropped, or older)."""
        if kept is None or self.anchor is None:
            return None
        seq, digest = kept
        found = next(iter(self.journal.trail.records(after=seq - 1)), None)
        if found is not None and found.seq == seq and found.hash == digest:
            return None
        return (
            f"the journal does not hold the anchored audit record {seq} "
            f"({self.anchor.path}): dropped, or restored from an older copy"
        )

    def _note_tampering(self, found: Iterable[Tampering]) -> None:
        """Remember which secrets failed their check, and alert each (critical, once)."""
        tampered: dict[str, str] = {}
        trail = [item.what for item in found if item.secret is None]
        if trail and self._trail_problem != trail[0]:
            self.alerting.raise_alert(
                AlertEvent.AUDIT_CHAIN_BROKEN,
                Severity.CRITICAL,
                f"the journal {self.journal.describe()} cannot be trusted: {trail[0]}; "
                "no secret is acted on until a person checks (`rotator audit verify`)",
                secret=None,
                condition=trail[0][:200],
                to=None,
            )
        self._trail_problem = trail[0] if trail else None
        for item in found:
            if item.secret is None:
                continue
            if item.secret not in tampered:
                self._alert_tampered(item.secret, item.what)
            tampered.setdefault(item.secret, item.what)
        self._tampered = tampered

    def _alert_tampered(self, name: str, what: str) -> None:
        self._alert(
            name,
            AlertEvent.JOURNAL_TAMPERED,
            Severity.CRITICAL,
            f"{name}: its journal rows are not as rotator wrote them: {what}. Nothing is "
            "revoked, extended or rotated for it until a person checks (`rotator audit verify`)",
            condition=what[:200],
        )

    @staticmethod
    def _plan_open(rotation: Rotation, now: datetime) -> PlanItem:
        until = _waits_until(rotation)
        held = _held(rotation)
        if held:
            action, reason = Action.REVOKE, _held_message(rotation)
        elif rotation.state is State.GRACE:
            action, reason = Action.REVOKE, f"old credential in grace until {_fmt(until)}"
        elif rotation.state is State.REVOKED:
            action, reason = Action.DELETE, f"old credential revoked; deleted at {_fmt(until)}"
        else:
            action, reason = Action.RESUME, f"unfinished rotation in state {rotation.state}"
            until = None
        if rotation.error is not None and rotation.state is not State.ROLLING_BACK:
            # Its last step failed after its retries (a provider down): try
            # again a while after that failure, not on every pass. (A
            # rollback's error is its reason: it goes on at once.)
            later = rotation.updated_at + STEP_RETRY_AFTER
            if until is None or later > until:
                until = later
                reason += f"; last attempt failed ({rotation.error}), tried again at {_fmt(later)}"
        due = until is None or until <= now
        at = until or rotation.updated_at
        return PlanItem(rotation.secret, action, at, due, reason, rotation.id, held=held)

    # -- running --------------------------------------------------------------

    def run_once(
        self, stop: Callable[[], bool] | None = None, deadline: float | None = None
    ) -> RunReport:
        """Resume unfinished rotations, rotate what is due, revoke what has passed its grace.

        See :meth:`execute` for ``stop`` and ``deadline``.
        """
        self.journal.migrate()
        self.check_state()
        return self.execute(self.plan(self.journal.summaries()), stop=stop, deadline=deadline)

    def execute(
        self,
        items: Iterable[PlanItem],
        *,
        stop: Callable[[], bool] | None = None,
        deadline: float | None = None,
    ) -> RunReport:
        """Do what the plan ``items`` say is due, several secrets at once within ``limits``.

        Secrets run concurrently up to ``limits.total``, and up to
        ``limits.of(provider)`` per store provider; one secret's failure
        never stops the others. ``stop`` is asked before each secret: once it
        says so, no further secret is started (the service's graceful
        shutdown). Rotations already running get ``deadline`` seconds (None:
        as long as they need) to reach their next recorded step; any still
        running then is reported as interrupted and resumed by the next run.
        """
        report = RunReport()
        by_secret: dict[str, list[PlanItem]] = {}
        for item in items:
            by_secret.setdefault(item.secret, []).append(item)
        work: list[tuple[str, bool]] = []
        for name, secret_items in by_secret.items():
            for item in secret_items:
                if item.overdue_since is not None:
                    self._alert_overdue(item)
            errors = [i for i in secret_items if i.action in (Action.ERROR, Action.ATTENTION)]
            if errors:
                for item in errors:
                    if item.action is Action.ATTENTION:
                        self._alert(
                            name,
                            AlertEvent.NEEDS_ATTENTION,
                            Severity.CRITICAL,
                            f"{name} needs attention: {item.reason}",
                            condition=item.rotation_id or "-",
                            rotation_id=item.rotation_id,
                        )
                report.outcomes.append(Outcome(name, Result.FAILED, errors[0].reason))
                continue
            for item in secret_items:
                if item.due and item.action is Action.REMIND:
                    report.outcomes.append(self._remind(item))
            if any(i.due and i.action is not Action.REMIND for i in secret_items):
                rotate = any(i.due and i.action is Action.ROTATE for i in secret_items)
                work.append((name, rotate))
            else:
                # Alerted when held: the run still fails while it lasts.
                report.outcomes += [
                    Outcome(name, Result.FAILED, i.reason, i.rotation_id, State.GRACE, alerted=True)
                    for i in secret_items
                    if i.held
                ]

        if len(work) > 1:
            # Replicas (and overlapping one-shot runs) start at different points
            # of the same list, so that they spread over the due secrets
            # instead of queueing on the same leases.
            start = int(hashlib.sha256(self.owner.encode()).hexdigest()[:8], 16) % len(work)
            work = work[start:] + work[:start]

        def provider_of(job: tuple[str, bool]) -> str:
            policy = self.policies.get(job[0])
            return policy.store.provider if policy is not None else ""

        def failed(job: tuple[str, bool], exc: Exception) -> list[Outcome]:
            # RotatorErrors are handled inside _process; this is a bug or a
            # journal outage. Its message may come from a library: not logged.
            log.error("secret failed unexpectedly", secret=job[0], error=type(exc).__name__)
            return [Outcome(job[0], Result.FAILED, f"unexpected {type(exc).__name__}")]

        finished = run_bounded(
            work,
            lambda job: self._process(job[0], start=job[1], trigger="schedule"),
            key=provider_of,
            limits=self.limits,
            on_error=failed,
            stop=stop,
            deadline=deadline,
        )
        for outcomes in finished.results:
            report.outcomes.extend(outcomes)
        for name, _ in finished.abandoned:
            self._interrupt.set()
            where = [f"{r.id} at {r.state}" for r in self.journal.open_rotations(name)]
            message = (
                f"still running at the shutdown deadline ({', '.join(where) or 'no rotation'}); "
                "the next start resumes it"
            )
            log.warning("interrupted by shutdown", secret=name, rotations=where)
            report.outcomes.append(Outcome(name, Result.WAITING, message))
        return report

    def rotate(
        self,
        name: str,
        *,
        emergency: bool = False,
        reason: str | None = None,
        value: SecretValue | None = None,
    ) -> RunReport:
        """Rotate one secret now (``emergency``: no grace for the old credential).

        ``value`` is a new value a person supplies (issuers that accept one,
        such as ``manual``): it is used instead of minting, and goes through
        store, propagation, verification and grace like a minted one.
        Raises ``ConfigError`` for an unknown name, a value the issuer does
        not accept, or a reminder-only secret without a value.
        """
        policy = self.policies.get(name)
        if policy is None:
            raise ConfigError(f"no policy named {name!r}")
        issuer = self.adapters.issuer(policy.issuer.kind)
        if value is not None and not issuer.accepts_value:
            raise ConfigError(
                f"{name}: issuer {policy.issuer.kind} mints its own credentials; "
                "a value can be supplied only to issuers that accept one (manual)"
            )
        if value is None and issuer.reminder_only:
            raise ConfigError(
                f"{name} is rotated by hand (issuer {policy.issuer.kind}): supply the new "
                f"value with `rotator rotate {name} --value-from-stdin`"
            )
        self.journal.migrate()
        self.check_state()  # a journal dropped or restored from an older copy is not acted on
        trigger = "emergency" if emergency else "manual"
        if emergency:
            self._alert(
                name,
                AlertEvent.EMERGENCY,
                Severity.CRITICAL,
                f"emergency rotation of {name}: {reason or 'no reason given'}; the old "
                "credential is revoked as soon as the new one is live",
                condition=uuid.uuid4().hex,
                details={"reason": reason or "", "actor": self.journal.actor},
            )
        outcomes = self._process(
            name, start=True, trigger=trigger, emergency=emergency, reason=reason, value=value
        )
        for outcome in outcomes:
            # Asked for by name, a rotation that could not start has failed.
            if outcome.result is Result.SKIPPED:
                outcome.result = Result.FAILED
        return RunReport(outcomes)

    def _process(
        self,
        name: str,
        *,
        start: bool,
        trigger: str,
        emergency: bool = False,
        reason: str | None = None,
        value: SecretValue | None = None,
    ) -> list[Outcome]:
        """Handle one secret under its lease: finish open rotations, maybe start one."""
        if self._trail_problem is not None:
            return [self._refused(name, self._trail_problem)]
        try:
            lease = self.journal.leases.acquire(name, self.owner, self.lease_ttl)
        except JournalTampered as exc:
            return [self._refused(name, str(exc))]
        if lease is None:
            log.info("skipped: another run holds this secret", secret=name)
            return [Outcome(name, Result.SKIPPED, "another run holds this secret's lease")]
        structlog.contextvars.bind_contextvars(secret=name)
        try:
            with self.journal.leases.holding(lease):
                found = self.journal.tampering.find(name)
                if found:
                    return [self._refused(name, found[0].what)]
                return self._process_locked(name, start, trigger, emergency, reason, value)
        except JournalTampered as exc:
            return [self._refused(name, str(exc))]
        finally:
            structlog.contextvars.unbind_contextvars("secret", "rotation_id", "step")
            with contextlib.suppress(RotatorError):  # an unreachable journal: the lease expires
                self.journal.leases.release(lease)

    def _refused(self, name: str, what: str) -> Outcome:
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

    def _process_locked(
        self,
        name: str,
        start: bool,
        trigger: str,
        emergency: bool,
        reason: str | None,
        value: SecretValue | None,
    ) -> list[Outcome]:
        outcomes: list[Outcome] = []
        blocking: Rotation | None = None
        for unfinished in self.journal.open_rotations(name):
            rotation = unfinished
            if emergency and rotation.state is State.GRACE:
                rotation = self.journal.advance(
                    rotation,
                    Transition.GRACE_CUT_SHORT,
                    "emergency rotation: grace cut short",
                    grace_deadline=self.clock(),
                )
            if emergency and rotation.state in BEFORE_PROMOTE and not rotation.emergency:
                # Finishing it would give the leaked credential a normal grace
                # (and its own new credential may be what leaked): roll it back,
                # and let the emergency rotation replace the credential at once.
                why = "superseded by an emergency rotation"
                rotation = self.journal.advance(
                    rotation, Transition.ROLLBACK_STARTED, why, error=why
                )
                rolled = self._advance_outcome(rotation)
                if rolled.state is State.ROLLED_BACK:
                    rolled.result, rolled.message = Result.OK, f"rolled back: {why}"
                outcomes.append(rolled)
                if rolled.state is not State.ROLLED_BACK:
                    blocking = rotation
                continue
            outcome = self._advance_safely(rotation)
            outcomes.append(outcome)
            finished_by_hand = trigger == "manual" or (
                trigger == "emergency" and unfinished.emergency
            )
            if (
                finished_by_hand
                and unfinished.state in BEFORE_PROMOTE
                and outcome.result is Result.OK
            ):
                # An interrupted rotation was finished: asked for by hand, that
                # is the rotation the operator wanted; do not mint another.
                outcome.message = f"finished interrupted rotation; {outcome.message}"
                return outcomes
            if outcome.state is not None and outcome.state not in TERMINAL | {State.REVOKED}:
                blocking = rotation
        if start and trigger == "schedule":
            # The plan was made before the lease was ours: another run may have
            # rotated this secret since. Decide again on what the journal says
            # now; a secret the journal still knows nothing of was rotated by
            # nobody, so the store need not be asked again.
            summary = self.journal.summaries(name).get(name, SecretSummary())
            if summary.last_rotation is not None:
                again = self._plan_secret(name, summary, self.clock())
                errors = [i for i in again if i.action in (Action.ERROR, Action.ATTENTION)]
                if errors:
                    return [*outcomes, Outcome(name, Result.FAILED, errors[0].reason)]
                start = any(i.due and i.action is Action.ROTATE for i in again)
        if not start:
            return outcomes
        if blocking is not None:
            if trigger != "schedule":
                outcomes.append(
                    Outcome(
                        name,
                        Result.FAILED,
                        f"rotation {blocking.id} is not finished (old credential in grace or "
                        "a step pending); wait for it, or use --emergency to cut its grace short",
                        blocking.id,
                    )
                )
            return outcomes
        now = self.clock()
        rotation = self.journal.create(
            Rotation(
                id=uuid.uuid4().hex,
                secret=name,
                state=State.PLANNED,
                trigger=trigger,
                created_at=now,
                updated_at=now,
                reason=reason,
                emergency=emergency,
                policy_digest=self.digest(name),
            ),
            detail=f"{trigger} rotation" + (f": {reason}" if reason else ""),
        )
        log.info("rotation started", rotation_id=rotation.id, trigger=trigger, emergency=emergency)
        if value is not None:
            self._supplied[rotation.id] = value
        try:
            outcomes.append(self._advance_safely(rotation))
        finally:
            self._supplied.pop(rotation.id, None)
        return outcomes

    def _advance_safely(self, rotation: Rotation) -> Outcome:
        """Advance a rotation, turning what ends it into an outcome (and an alert)."""
        outcome = self._advance_outcome(rotation)
        if outcome.result is Result.FAILED and not outcome.alerted:
            self._alert(
                rotation.secret,
                AlertEvent.ROTATION_FAILED,
                Severity.WARNING,
                f"rotation of {rotation.secret} failed: {outcome.message}",
                condition=f"{rotation.id}:{outcome.state}",
                rotation_id=rotation.id,
                details={"state": str(outcome.state or "-")},
            )
        elif (
            outcome.result is Result.OK
            and rotation.state in BEFORE_PROMOTE | {State.ROLLING_BACK}
            and outcome.state in (State.GRACE, State.REVOKED, State.DONE)
        ):
            self.alerting.clear(
                rotation.secret,
                (
                    AlertEvent.ROTATION_FAILED,
                    AlertEvent.NEEDS_ATTENTION,
                    AlertEvent.OVERDUE,
                    AlertEvent.ROTATION_DUE,
                ),
            )
            self._alert(
                rotation.secret,
                AlertEvent.ROTATION_SUCCEEDED,
                Severity.INFO,
                f"{rotation.secret} rotated: {outcome.message}",
                condition=rotation.id,
                rotation_id=rotation.id,
            )
        return outcome

    def _advance_outcome(self, rotation: Rotation) -> Outcome:
        try:
            rotation = self.advance(rotation)
        except Interrupted:
            latest = self.journal.get(rotation.id) or rotation
            log.warning("rotation interrupted by shutdown", state=str(latest.state))
            return Outcome(
                rotation.secret,
                Result.WAITING,
                f"interrupted by shutdown at {latest.state}; the next start resumes it",
                rotation.id,
                latest.state,
            )
        except StillInUseError as exc:
            # Alerted as old-still-in-use where it was found; not a failed rotation.
            latest = self.journal.get(rotation.id) or rotation
            return Outcome(
                rotation.secret, Result.FAILED, str(exc), rotation.id, latest.state, alerted=True
            )
        except RotatorError as exc:
            latest = self.journal.get(rotation.id) or rotation
            log.error(
                "rotation failed", rotation_id=rotation.id, state=str(latest.state), error=str(exc)
            )
            return Outcome(rotation.secret, Result.FAILED, str(exc), rotation.id, latest.state)
        if rotation.state is State.ROLLED_BACK:
            return Outcome(
                rotation.secret,
                Result.FAILED,
                f"rolled back: {rotation.error or 'see history'}",
                rotation.id,
                rotation.state,
            )
        if _held(rotation) and not self._step_due(rotation):
            return Outcome(
                rotation.secret,
                Result.FAILED,
                _held_message(rotation),
                rotation.id,
                rotation.state,
                alerted=True,
            )
        if rotation.state in (State.GRACE, State.REVOKED) and not self._step_due(rotation):
            return Outcome(
                rotation.secret, Result.OK, _waiting_message(rotation), rotation.id, rotation.state
            )
        return Outcome(
            rotation.secret, Result.OK, f"rotation {rotation.state}", rotation.id, rotation.state
        )

    def _step_due(self, rotation: Rotation) -> bool:
        until = _waits_until(rotation)
        return rotation.state not in TERMINAL and (until is None or until <= self.clock())

    def advance(self, rotation: Rotation) -> Rotation:
        """Drive one rotation forward as far as time allows; return where it stopped.

        A permanent failure before promote rolls back (and the rolled-back
        rotation is returned); any other failure is recorded and raised, the
        rotation staying where it was so the next run resumes it.
        """
        binding = self.binding(rotation.secret)
        structlog.contextvars.bind_contextvars(rotation_id=rotation.id)
        while rotation.state not in TERMINAL and self._step_due(rotation):
            step, _ = FORWARD[rotation.state]
            structlog.contextvars.bind_contextvars(step=step.value)
            faults.point(f"before:{step}")
            log.debug("step starting", state=str(rotation.state))
            try:
                if self._interrupt.is_set():
                    raise Interrupted(f"stopping before step {step}")
                handler = getattr(self, self.STEP_HANDLERS[step])
                after = self._with_retries(rotation, step, handler, binding)
            except LeaseLost:
                raise  # another run owns the secret now: record nothing, undo nothing
            except Interrupted as exc:
                latest = self.journal.get(rotation.id) or rotation
                self.journal.record(latest, step, "interrupted", f"{exc}; resumes at next start")
                raise
            except RotatorError as exc:
                latest = self.journal.get(rotation.id) or rotation
                if latest.state in BEFORE_PROMOTE and not exc.retryable:
                    log.warning("step failed; rolling back", error=str(exc))
                    rotation = self.journal.advance(
                        latest,
                        Transition.ROLLBACK_STARTED,
                        f"failed: {exc}",
                        step=step,
                        error=str(exc),
                    )
                    continue
                self.journal.record(latest, step, "error", str(exc))
                raise
            faults.point(f"after:{step}")
            if after.state is rotation.state and after.state is State.GRACE:
                # The grace was extended: nothing more to do until the new deadline.
                return after
            rotation = after
        return rotation

    def _retrying(
        self,
        call: Callable[[], _T],
        on_retry: Callable[[RotatorError, int, float], None] | None = None,
    ) -> _T:
        """Call an adapter, retrying transient errors with backoff; ``on_retry`` hears each wait.

        The wait ends early when the engine is interrupted, and then
        ``Interrupted`` is raised instead of trying again.
        """
        for attempt in range(1, self.retry.attempts + 1):
            try:
                return call()
            except RotatorError as exc:
                if not exc.retryable or attempt == self.retry.attempts:
                    raise
                hint = exc.delay if isinstance(exc, TransientError) else None
                delay = self.retry.delay(attempt, hint)
                if on_retry is not None:
                    on_retry(exc, attempt, delay)
                self.sleep(delay)
                if self._interrupt.is_set():
                    raise Interrupted("stopping while waiting to retry") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _with_retries(
        self,
        rotation: Rotation,
        step: Step,
        handler: Callable[[_Binding, Rotation], Rotation],
        binding: _Binding,
    ) -> Rotation:
        """Run one step, recording each retry of a transient failure in the journal."""
        latest = [rotation]

        def attempt() -> Rotation:
            faults.fail(step)
            return handler(binding, latest[0])

        def retrying(exc: RotatorError, number: int, delay: float) -> None:
            log.warning(
                "transient failure; retrying", error=str(exc), attempt=number, retry_in=delay
            )
            # With the journal itself down (the reason to retry), the retry
            # cannot be recorded: retry all the same.
            with contextlib.suppress(JournalUnavailable):
                latest[0] = self.journal.record(
                    latest[0],
                    step,
                    "retry",
                    f"{exc} (attempt {number} of {self.retry.attempts}, retry in {delay:g}s)",
                )

        return self._retrying(attempt, retrying)

    # -- the steps ------------------------------------------------------------

    def _keep(self, rotation: Rotation, old_ref: str | None) -> set[str]:
        """Refs the issuer must not touch: the current one and any still in grace."""
        keep = {old_ref} if old_ref else set()
        for other in self.journal.open_rotations(rotation.secret):
            if other.id != rotation.id and other.state is State.GRACE:
                keep |= {r for r in (other.old_ref, other.new_ref) if r}
        return keep

    def _mint(self, b: _Binding, rotation: Rotation) -> Rotation:
        """PLANNED -> MINTED: take the inventory, make room, mint (or adopt after a crash)."""
        if rotation.known_refs is None:
            current = b.store.current()
            old_ref = b.issuer.ref_of(current.value) if current else None
            deleted = b.issuer.prepare(self._keep(rotation, old_ref))
            known = tuple(b.issuer.inventory())
            detail = f"inventory: {len(known)} existing"
            if deleted:
                detail += f"; made room by deleting stale {', '.join(deleted)}"
            rotation = self.journal.record(
                rotation,
                Step.MINT,
                "info",
                detail,
                old_version_id=current.version_id if current else None,
                old_ref=old_ref,
                old_fingerprint=self.journal.fingerprint(current.value) if current else None,
                known_refs=known,
            )
        else:
            # A run died inside this step: adopt what it minted, or delete it.
            found = b.issuer.recover(
                rotation.id, known=rotation.known_refs, pending=b.store.pending(rotation.id)
            )
            if found is not None:
                return self._minted_as(
                    rotation,
                    found,
                    f"adopted {found.ref or 'credential'} minted by an interrupted run",
                )
        supplied = self._supplied.pop(rotation.id, None)
        if supplied is not None:
            credential = Credential(supplied, b.issuer.ref_of(supplied))
            self._minted[rotation.id] = credential
            return self._minted_as(
                rotation, credential, f"new value supplied by {self.journal.actor}"
            )
        credential = b.issuer.mint(rotation.id)
        self._minted[rotation.id] = credential
        faults.point("mint:issued")
        log.info("minted new credential", ref=credential.ref, issuer=b.issuer.kind)
        return self._minted_as(
            rotation, credential, f"minted {credential.ref or 'a new value'} at {b.issuer.kind}"
        )

    def _minted_as(self, rotation: Rotation, credential: Credential, detail: str) -> Rotation:
        """Keep a new credential in memory and record the rotation as minted."""
        self._minted[rotation.id] = credential
        return self.journal.advance(
            rotation,
            Transition.MINTED,
            detail,
            new_ref=credential.ref,
            new_fingerprint=self.journal.fingerprint(credential.value),
        )

    def _store(self, b: _Binding, rotation: Rotation) -> Rotation:
        """MINTED -> PENDING: write the new credential as the store's pending version."""
        credential = self._minted.get(rotation.id)
        if credential is None:
            # Resumed after a crash between mint and store: the value is in the
            # store already, or recoverable from the issuer, or lost for good.
            credential = b.issuer.recover(
                rotation.id, known=rotation.known_refs or (), pending=b.store.pending(rotation.id)
            )
            if credential is None:
                credential = b.issuer.mint(rotation.id)
                rotation = self._minted_as(
                    rotation,
                    credential,
                    "re-minted: the interrupted run's credential could not be recovered "
                    "and was deleted",
                )
            self._minted[rotation.id] = credential
        version_id = b.store.put_pending(rotation.id, credential.value)
        faults.point("store:written")
        log.info("stored as pending", store=b.store.describe(), version=version_id)
        return self.journal.advance(
            rotation,
            Transition.STORED_PENDING,
            f"pending version {version_id} in {b.store.describe()}",
            new_version_id=version_id,
            new_ref=credential.ref,
            new_fingerprint=self.journal.fingerprint(credential.value),
        )

    def _new_value(self, b: _Binding, rotation: Rotation, *, read_back: bool) -> SecretValue:
        """Return the rotation's new value, read back from the store (or kept since mint).

        With ``read_back`` the store's pending version is always read (what
        verify proves); otherwise the value kept in memory since mint is used
        when there is one. Raises ``ConflictError`` if the store lost it and
        ``VerificationError`` if it holds a value other than the one minted.
        """
        minted = None if read_back else self._minted.get(rotation.id)
        value = minted.value if minted is not None else b.store.pending(rotation.id)
        if value is None:
            raise ConflictError(
                f"pending version of rotation {rotation.id} vanished from {b.store.describe()}"
            )
        if self.journal.fingerprint(value) != rotation.new_fingerprint:
            raise VerificationError(
                f"{b.store.describe()} holds a different pending value than was minted"
            )
        return value

    def _propagate(self, b: _Binding, rotation: Rotation) -> Rotation:
        """PENDING -> PROPAGATED: write the new value to every target, in order.

        Every target write is idempotent, so a run that died between two
        targets writes them all again and converges.
        """
        if not b.targets:
            log.info("propagated", targets=0)
            return self.journal.advance(
                rotation, Transition.PROPAGATED, "no targets: consumers read the store"
            )
        value = self._new_value(b, rotation, read_back=False)
        for number, target in enumerate(b.targets, start=1):
            with _naming(f"target {number} ({target.describe()})"):
                target.write(rotation.id, value)
            faults.point(f"propagate:target{number}")
            log.info("propagated to target", target=target.describe(), number=number)
            # One audit record per target: which consumer got the new value when.
            rotation = self.journal.advance(
                rotation, Transition.PROPAGATED_TO_TARGET, f"target {number}: {target.describe()}"
            )
        return self.journal.advance(
            rotation,
            Transition.PROPAGATED,
            f"written to {len(b.targets)} target(s): " + ", ".join(t.describe() for t in b.targets),
        )

    def _verify(self, b: _Binding, rotation: Rotation) -> Rotation:
        """PROPAGATED -> VERIFIED: after the propagation delay, read back and prove it works."""
        delay = b.policy.propagation_delay
        if delay:
            # Counted from when propagation was recorded, so a restart does
            # not wait the whole delay again.
            left = (rotation.updated_at + delay - self.clock()).total_seconds()
            if left > 0:
                log.info("waiting for propagation", seconds=round(left, 3))
                self.sleep(left)
                if self._interrupt.is_set():
                    raise Interrupted("stopping while waiting for propagation")
        value = self._new_value(b, rotation, read_back=True)
        credential = Credential(value, rotation.new_ref)
        b.issuer.verify(credential)
        for verifier in b.verifiers:
            with _naming(f"check {verifier.describe()}"):
                verifier.verify(credential)
        log.info("verified new credential", ref=rotation.new_ref, checks=len(b.verifiers))
        checks = "".join(f", {v.describe()}" for v in b.verifiers)
        return self.journal.advance(
            rotation,
            Transition.VERIFIED,
            f"read back from the store (fingerprint matches) and accepted by {b.issuer.kind}"
            + checks,
        )

    def _promote(self, b: _Binding, rotation: Rotation) -> Rotation:
        """VERIFIED -> GRACE: make the new version current; start the old one's grace."""
        previous = b.store.promote(rotation.id, expires_on=self._expires_on(b.policy))
        faults.point("promote:moved")
        return self._promoted(b, rotation, previous, "promoted")

    def _expires_on(self, policy: Policy) -> datetime:
        """Return when a credential promoted now will have been replaced at the latest."""
        now = self.clock()
        return next_due(policy.schedule, policy.name, now, now).due_at + policy.grace

    def _promoted(
        self, b: _Binding, rotation: Rotation, previous: str | None, how: str
    ) -> Rotation:
        now = self.clock()
        grace = timedelta(0) if rotation.emergency else b.policy.grace
        deadline = now + grace
        self._minted.pop(rotation.id, None)
        log.info(
            f"{how}: new credential is current",
            grace_until=deadline.isoformat(),
            emergency=rotation.emergency,
        )
        return self.journal.advance(
            rotation,
            Transition.PROMOTED,
            f"{how}; old credential valid until {_fmt(deadline)}"
            + (" (emergency: no grace)" if rotation.emergency else ""),
            promoted_at=now,
            grace_deadline=deadline,
            old_version_id=previous or rotation.old_version_id,
        )

    def _revoke(self, b: _Binding, rotation: Rotation) -> Rotation:
        """GRACE -> REVOKED: at the grace deadline, revoke the old credential and retire it."""
        if (
            not rotation.emergency
            and rotation.old_ref
            and b.issuer.reports_last_use
            and rotation.promoted_at is not None
        ):
            since = rotation.checked_at or rotation.promoted_at
            last = b.issuer.last_used(rotation.old_ref)
            if last is not None and last > since:
                held = self._still_used(b.policy, rotation, last)
                if held is not None:
                    return held
        if rotation.old_ref:
            b.issuer.revoke(rotation.old_ref)
        faults.point("revoke:revoked")
        if b.issuer.reminder_only:
            self._alert(
                rotation.secret,
                AlertEvent.ROTATION_DUE,
                Severity.WARNING,
                f"{rotation.secret}: the old credential's grace ended; revoke it by hand now"
                + (
                    f" ({b.issuer.config.instructions})"
                    if getattr(b.issuer.config, "instructions", None)
                    else ""
                ),
                condition=f"revoke:{rotation.id}",
                rotation_id=rotation.id,
            )
        if rotation.old_version_id:
            b.store.retire(rotation.old_version_id)
        for target in b.targets:  # replicas retire the old value as the store just did
            target.retire(rotation.id)
        delay: timedelta = getattr(b.issuer.config, "delete_after", timedelta(0))
        delete_at = self.clock() + (delay if b.issuer.two_stage_revoke else timedelta(0))
        log.info("revoked old credential", ref=rotation.old_ref, version=rotation.old_version_id)
        return self.journal.advance(
            rotation,
            Transition.REVOKED,
            f"revoked {rotation.old_ref or 'old value'}; retired version "
            f"{rotation.old_version_id or '-'}",
            delete_at=delete_at,
            revoked_at=self.clock(),
        )

    def _still_used(self, policy: Policy, rotation: Rotation, last: datetime) -> Rotation | None:
        """Handle an old credential used after promotion: extend, hold, or None to revoke it.

        Never past ``max_grace`` after promotion: there, the old credential
        is revoked (``when_old_still_used_after_max: revoke``, the default)
        or held with a critical alert on every check (``alert``). A stolen
        key is not kept alive by using it.
        """
        assert rotation.promoted_at is not None and rotation.old_ref is not None
        now = self.clock()
        limit = rotation.promoted_at + policy.grace_limit
        what = f"old credential {rotation.old_ref} was used at {_fmt(last)}"
        mode = policy.when_old_still_used if now < limit else policy.when_old_still_used_after_max
        at_limit = now >= limit
        number = rotation.extensions + 1
        if mode == "extend":
            until = min(now + max(policy.grace, MIN_EXTENSION), limit)
            self._alert_still_used(
                rotation,
                Severity.WARNING,
                f"{what}; grace extended to {_fmt(until)} (extension {number}; never past "
                f"{_fmt(limit)}, max_grace after promotion)",
                condition=f"{rotation.id}:{number}",
                last=last,
            )
            log.warning("old credential still in use; grace extended", until=until.isoformat())
            return self.journal.advance(
                rotation,
                Transition.GRACE_EXTENDED,
                f"{what}; grace extended to {_fmt(until)} (extension {number}, "
                f"limit {_fmt(limit)})",
                grace_deadline=until,
                checked_at=now,
                extensions=number,
            )
        if mode == "alert":
            which = "when_old_still_used_after_max" if at_limit else "when_old_still_used"
            self._alert_still_used(
                rotation,
                Severity.CRITICAL if at_limit else Severity.WARNING,
                f"{what}; held, not revoked ({which}: alert"
                + (f", past max_grace {_fmt(limit)})" if at_limit else ")"),
                # Past the limit every check is alerted again; before it, once.
                condition=f"{rotation.id}:{f'limit:{number}' if at_limit else 'held'}",
                last=last,
            )
            self.journal.advance(
                rotation,
                Transition.GRACE_HELD,
                f"{what}; holding it (alert)",
                checked_at=now,
                extensions=number,
            )
            raise StillInUseError(
                f"{what} after its successor became current; not revoked "
                f"({which}: alert). Find the consumer, or rotate with --emergency to revoke it now"
            )
        why = "past max_grace" if at_limit else "when_old_still_used: revoke"
        self._alert_still_used(
            rotation,
            Severity.CRITICAL,
            f"{what}; revoked anyway ({why}): a consumer still using it fails from now on",
            condition=f"{rotation.id}:revoked",
            last=last,
        )
        log.warning("old credential still in use; revoking anyway", last_used=_fmt(last))
        return None

    def _alert_still_used(
        self, rotation: Rotation, severity: Severity, what: str, *, condition: str, last: datetime
    ) -> None:
        """Alert that an old credential was used after its successor became current."""
        self._alert(
            rotation.secret,
            AlertEvent.OLD_STILL_IN_USE,
            severity,
            f"{rotation.secret}: {what}: a consumer never picked up the new credential "
            "(or someone else holds the old one)",
            condition=condition,
            rotation_id=rotation.id,
            details={"ref": rotation.old_ref or "", "last_used": _fmt(last)},
        )

    def _delete(self, b: _Binding, rotation: Rotation) -> Rotation:
        """REVOKED -> DONE: look once more for use of the revoked credential, delete it for good."""
        try:
            self._check_revoked_use(b, rotation)
        except (TransientError, PermanentError) as exc:
            # Evidence for an alert, not a condition of deleting: go on.
            log.warning("last use of the revoked credential not checked", error=str(exc))
        if rotation.old_ref and b.issuer.two_stage_revoke:
            b.issuer.delete(rotation.old_ref)
            log.info("deleted old credential", ref=rotation.old_ref)
        return self.journal.advance(
            rotation,
            Transition.DELETED,
            f"deleted {rotation.old_ref}"
            if rotation.old_ref and b.issuer.two_stage_revoke
            else "done",
        )

    def _rollback(self, b: _Binding, rotation: Rotation) -> Rotation:
        """ROLLING_BACK -> ROLLED_BACK: remove the new credential; the old stays current."""
        current = b.store.current()
        if current is not None and self.journal.fingerprint(current.value) == (
            rotation.new_fingerprint
        ):
            # The store promoted it before the failure: it is live, never revoke
            # it. Judged by the keyed fingerprint, not the version id: stores
            # differ in what id a promoted version gets (Vault counts, Azure
            # mints a new one), while a fresh credential's value is unique.
            return self._promoted(b, rotation, rotation.old_version_id, "found already promoted")
        doomed = {rotation.new_ref} if rotation.new_ref else set()
        if rotation.known_refs is not None:
            found = b.issuer.recover(rotation.id, known=rotation.known_refs, pending=None)
            if found is not None and found.ref:
                doomed.add(found.ref)
        if b.targets:
            written = self._minted.get(rotation.id)
            new_value = written.value if written is not None else b.store.pending(rotation.id)
            old = current.value if current is not None else None
            for target in reversed(b.targets):
                with _naming(f"restoring target {target.describe()}"):
                    target.restore(rotation.id, written=new_value, previous=old)
                log.info("restored target", target=target.describe())
        for ref in sorted(doomed):
            b.issuer.revoke(ref)
            b.issuer.delete(ref)
        b.store.discard(rotation.id)
        self._minted.pop(rotation.id, None)
        log.warning("rolled back", deleted=sorted(doomed))
        return self.journal.advance(
            rotation,
            Transition.ROLLED_BACK,
            "new credential deleted, pending version removed; the old credential stays current"
            + (f" (deleted {', '.join(sorted(doomed))})" if doomed else ""),
        )

    # -- alerts and watching ---------------------------------------------------

    def _alert(
        self,
        name: str,
        event: AlertEvent,
        severity: Severity,
        summary: str,
        *,
        condition: str,
        rotation_id: str | None = None,
        details: Mapping[str, str] | None = None,
    ) -> None:
        """Raise an alert about one secret to the notifiers its policy names."""
        policy = self.policies.get(name)
        self.alerting.raise_alert(
            event,
            severity,
            summary,
            secret=name,
            condition=condition,
            to=policy.alerts if policy is not None else (),
            rotation_id=rotation_id,
            owner=policy.owner if policy is not None else None,
            details=details,
        )

    def _alert_overdue(self, item: PlanItem) -> None:
        """Alert that a secret's credential is older than its policy allows."""
        policy = self.policies[item.secret]
        since = item.overdue_since
        assert since is not None
        self._alert(
            item.secret,
            AlertEvent.OVERDUE,
            Severity.WARNING,
            f"{item.secret}: the current credential is older than its policy allows "
            f"({format_duration(max_age(policy.schedule))}) since {_fmt(since)}; {item.reason}",
            condition=since.isoformat(),
            details={"overdue_since": _fmt(since)},
        )

    def _remind(self, item: PlanItem) -> Outcome:
        """Remind the owner that a credential only a person can rotate is due."""
        policy = self.policies[item.secret]
        how = getattr(self.binding(item.secret).issuer.config, "instructions", None)
        self._alert(
            item.secret,
            AlertEvent.ROTATION_DUE,
            Severity.WARNING,
            f"{item.secret} is due for rotation by hand"
            + (f" ({how})" if how else "")
            + f": then run `rotator rotate {item.secret} --value-from-stdin`",
            condition=f"due:{item.due_at.isoformat() if item.due_at else '-'}",
            details={"owner": policy.owner or "", "due_at": _fmt(item.due_at)},
        )
        return Outcome(item.secret, Result.WAITING, f"due; owner reminded. {item.reason}")

    def _check_revoked_use(self, b: _Binding, rotation: Rotation) -> bool:
        """Alert if the issuer saw the revoked old credential used after its revocation."""
        if not (b.issuer.reports_last_use and rotation.old_ref and rotation.revoked_at):
            return False
        last = self._retrying(functools.partial(b.issuer.last_used, rotation.old_ref))
        with contextlib.suppress(RotatorError):
            self.journal.usage.record(rotation.secret, rotation.old_ref, last)
        if last is None or last <= rotation.revoked_at:
            return False
        what = (
            f"{rotation.old_ref}, revoked at {_fmt(rotation.revoked_at)}, was used at {_fmt(last)}"
        )
        self._alert(
            rotation.secret,
            AlertEvent.REVOKED_CREDENTIAL_USED,
            Severity.CRITICAL,
            f"{rotation.secret}: revoked credential {what}: someone still holds it "
            "(a consumer left behind, or a leak)",
            condition=f"{rotation.old_ref}:{last.isoformat()}",
            rotation_id=rotation.id,
            details={"ref": rotation.old_ref, "last_used": _fmt(last)},
        )
        with contextlib.suppress(RotatorError):
            self.journal.trail.note(
                AuditAction.REVOKED_CREDENTIAL_USED,
                "alert",
                f"revoked credential {what}",
                secret=rotation.secret,
                rotation_id=rotation.id,
                refs=(rotation.old_ref, None),
            )
        return True

    def watch(self, names: Collection[str] | None = None) -> WatchReport:
        """Record last use of credentials, alert on anomalies, resend undelivered alerts.

        For issuers that report last use: the current credential's and any
        old one's (in grace, or revoked and not yet deleted) last use is
        asked and recorded (``rotator status`` shows it), and a revoked
        credential used after its revocation is alerted. Then alerts left
        undelivered are sent again. One secret's failure is logged and the
        others go on. Changes no credential.
        """
        report = WatchReport()
        chosen = sorted(self.policies if names is None else set(names) & self.policies.keys())
        watched = [
            n for n in chosen if self.adapters.issuer(self.policies[n].issuer.kind).reports_last_use
        ]
        summaries = self.journal.summaries(names=watched) if watched else {}
        for name in watched:
            summary = summaries.get(name)
            if summary is None:
                continue
            try:
                report.checked += self._watch_usage(name, summary)
            except RotatorError as exc:
                report.errors += 1
                log.warning("last use not checked", secret=name, error=str(exc))
        delivery = self.alerting.flush()
        report.alerts_resent = len(delivery.sent)
        return report

    def check_audit(
        self, *, full: bool = False, anchor: tuple[int, str] | None = None
    ) -> ChainReport:
        """Verify the audit chain (from the last record verified, unless ``full``); alert if broken.

        A broken chain is alerted (``audit-chain-broken``, to every notifier
        that wants it) once per first bad record, and the next check is a
        full one again.
        """
        kept = self._anchored()
        if full:
            start, anchor = None, anchor or kept
        else:
            start = None if anchor is not None else self._audit_verified or kept
        report = self.journal.trail.verify(start=start, anchor=anchor)
        trail = [Tampering(None, what) for what in self._trail_problems(report, kept)]
        self._note_tampering((*report.tampering, *trail))
        if report.intact:
            if report.head_seq is not None and report.head_hash is not None:
                self._audit_verified = (report.head_seq, report.head_hash)
                if self.anchor is not None:
                    self.anchor.keep(report)
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

    def _watch_usage(self, name: str, summary: SecretSummary) -> int:
        """Ask and record the last use of one secret's credentials; return how many were asked."""
        b = self.binding(name)
        refs: dict[str, Rotation | None] = {}
        last = summary.last_rotation
        if last is not None:
            current = last.new_ref if last.succeeded else last.old_ref
            if current:
                refs[current] = None
        for rotation in summary.open:
            if rotation.state is State.GRACE and rotation.old_ref:
                refs.setdefault(rotation.old_ref, None)
            if rotation.state is State.REVOKED and rotation.old_ref:
                refs[rotation.old_ref] = rotation
        for ref, revoked in refs.items():
            if revoked is not None:
                self._check_revoked_use(b, revoked)
                continue
            used = self._retrying(functools.partial(b.issuer.last_used, ref))
            self.journal.usage.record(name, ref, used)
        return len(refs)


@dataclass
class WatchReport:
    """What a watch pass did: credentials checked, failures, alerts sent again."""

    checked: int = 0
    errors: int = 0
    alerts_resent: int = 0


@contextmanager
def _naming(what: str) -> Iterator[None]:
    """Prefix an adapter's error with which target or check failed, keeping its kind."""
    try:
        yield
    except RotatorError as exc:
        if exc.retryable:
            delay = exc.delay if isinstance(exc, TransientError) else None
            raise TransientError(f"{what}: {exc}", delay=delay) from exc
        kind = VerificationError if isinstance(exc, VerificationError) else PermanentError
        raise kind(f"{what}: {exc}") from exc


def _waits_until(rotation: Rotation) -> datetime | None:
    """Return the deadline a rotation waits for before its next step (None: no wait)."""
    if rotation.state is State.GRACE:
        return rotation.grace_deadline
    if rotation.state is State.REVOKED:
        return rotation.delete_at
    return None


def _held(rotation: Rotation) -> bool:
    """Tell whether an old credential is kept past its original grace deadline (in use)."""
    return rotation.state is State.GRACE and rotation.extensions > 0


def _held_message(rotation: Rotation) -> str:
    which = f"old credential {rotation.old_ref}" if rotation.old_ref else "old credential"
    return (
        f"{which} still in use, held past its original grace deadline "
        f"({rotation.extensions} extension(s) or hold(s)); next check "
        f"{_fmt(rotation.grace_deadline)}"
    )


def _fmt(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S UTC") if when else "-"


def _waiting_message(rotation: Rotation) -> str:
    if rotation.state is State.GRACE:
        return f"promoted; old credential revoked at {_fmt(rotation.grace_deadline)}"
    return f"old credential revoked; deleted at {_fmt(rotation.delete_at)}"
