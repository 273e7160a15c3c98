"""The engine: drives rotations through the lifecycle, durably and idempotently.

The engine decides *what* to do; :mod:`rotator.policy.schedule` decides *when*. For
each policy it resumes unfinished rotations, starts one if the secret is due,
and revokes old credentials whose grace has ended. It wires the pieces that
do the work: :mod:`.plan` (what is due, as pure functions of what it
gathers), :mod:`.driver` (a secret's rotations under its lease), :mod:`.steps`
(the lifecycle's steps, one table), :mod:`.grace` (an old credential still
used), :mod:`.retry`, :mod:`.trust` (the audit chain checked before acting)
and :mod:`.alerts`; :mod:`.report` holds what it says it did.

What a person must hear about (a failure, a secret needing attention, an
overdue or reminder-only credential, an old or revoked credential still in
use, an emergency) is raised through :mod:`rotator.engine.alerts`, once per
condition; :mod:`rotator.watch.usage` records credentials' last use and
resends undelivered alerts.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import datetime, timedelta

import structlog

from rotator.adapters.discovery import Registry, registry
from rotator.adapters.durations import format_duration
from rotator.adapters.secret import SecretValue
from rotator.adapters.values import AlertEvent, RequestObserver, Runtime, Severity, StoreRef
from rotator.clock import Clock, Sleep, system_clock, system_sleep
from rotator.engine.alerts import Alerting, SecretAlerts
from rotator.engine.binding import Binding, bind
from rotator.engine.concurrency import Limits, run_bounded
from rotator.engine.driver import Driver
from rotator.engine.grace import Grace
from rotator.engine.plan import (
    plan_from_journal,
    plan_next_rotation,
    plan_orphans,
    plan_unreadable_store,
    policy_digest,
)
from rotator.engine.preflight import Finding, check_policy
from rotator.engine.report import Action, Outcome, PlanItem, Result, RunReport
from rotator.engine.retry import Retrier, RetryPolicy
from rotator.engine.shares import QuotaSharing
from rotator.engine.steps import Steps
from rotator.engine.trust import JournalTrust
from rotator.engine.waits import format_time
from rotator.errors import ConfigError, RotatorError
from rotator.journal.audit import AnchorFile, ChainReport
from rotator.journal.journal import Journal
from rotator.journal.leases import lease_owner
from rotator.journal.records import SecretSummary
from rotator.lifecycle import State
from rotator.output.spelling import did_you_mean
from rotator.policy.model import NotifierSpec, Policy
from rotator.policy.schedule import max_age

log = structlog.get_logger("rotator.engine")


class Engine:
    """Runs rotations for a set of policies against one journal."""

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
        self.journal = journal
        self.adapters = adapters or registry()
        self.clock = clock
        self.lease_ttl = lease_ttl
        self.limits = limits or Limits()
        self.owner = lease_owner()
        # Set when the service stops: retry waits end early and no further
        # step starts (each rotation stays at its last recorded step).
        self._interrupt = threading.Event()
        # A real sleep becomes a wait on that event; an injected one is kept.
        self.sleep: Sleep = self._interruptible_sleep if sleep is system_sleep else sleep
        #: This run's share of each provider quota, beside the other runs on the journal.
        self.sharing = QuotaSharing(journal, self.owner)
        self.runtime = Runtime(clock=clock, sleep=sleep, pacing=self.sharing.pacing)
        if on_request is not None:
            self.runtime.on_request = on_request
        self.runtime.read_current = self._read_current
        self.runtime.read_store = self._read_store
        self._bindings: dict[str, Binding] = {}
        self._bindings_lock = threading.Lock()
        self.alerting = Alerting(
            notifiers or {},
            journal,
            adapters=self.adapters,
            runtime=Runtime(
                clock=clock,
                sleep=self.sleep,
                on_request=self.runtime.on_request,
                pacing=self.runtime.pacing,
            ),
        )
        self.alerts = SecretAlerts(self.alerting, lambda: self.policies)
        self.trust = JournalTrust(journal, self.alerting, self.alerts, anchor)
        self.retrier = Retrier(retry or RetryPolicy(), journal, self.sleep, self._interrupt)
        self.grace = Grace(journal, clock, self.alerts, self.retrier)
        self.steps = Steps(
            journal,
            clock=clock,
            sleep=self.sleep,
            interrupted=self._interrupt,
            alerts=self.alerts,
            grace=self.grace,
        )
        self.driver = Driver(
            journal,
            clock=clock,
            lease=(self.owner, lease_ttl),
            interrupted=self._interrupt,
            steps=self.steps,
            retrier=self.retrier,
            trust=self.trust,
            alerts=self.alerts,
            alerting=self.alerting,
            binding=self.binding,
            replan=self._plan_secret,
            digest=self.digest,
            rotating=self.sharing.rotating,
        )

    @property
    def anchor(self) -> AnchorFile | None:
        """Where the last verified head of the audit chain is kept (outside the database)."""
        return self.trust.anchor

    @anchor.setter
    def anchor(self, anchor: AnchorFile | None) -> None:
        self.trust.anchor = anchor

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
        self.policies = new

    def digest(self, name: str) -> str:
        """Return the digest of a policy's rotation settings (see :func:`.plan.policy_digest`)."""
        return policy_digest(self.policies[name])

    def binding(self, name: str) -> Binding:
        """Return the store and issuer adapters of a policy, built once."""
        found = self._bindings.get(name)
        if found is not None:
            return found
        policy = self.policies.get(name)
        if policy is None:
            raise ConfigError(f"no policy named {name!r}")
        built = bind(policy, self.adapters, self.runtime)
        with self._bindings_lock:
            # Two threads may build the same binding; both use the first kept.
            return self._bindings.setdefault(name, built)

    def _read_current(self, name: str) -> SecretValue | None:
        """Read a secret's current value from its policy's store (an adapter's ``read_current``)."""
        version = self.binding(name).store.current()
        return version.value if version is not None else None

    def _concurrency_key(self, name: str) -> str:
        """Return ``PROVIDER@SCOPE`` for a secret's store (the bare provider if no scope)."""
        policy = self.policies.get(name)
        if policy is None:
            return ""
        try:
            scope = self.binding(name).store.quota_scope()
        except Exception as exc:  # noqa: BLE001 (a plugin's bug: count it under its provider)
            log.warning("quota scope not told", secret=name, error=type(exc).__name__)
            scope = ""
        return f"{policy.store.provider}@{scope}" if scope else policy.store.provider

    def _read_store(self, ref: StoreRef) -> SecretValue | None:
        """Read the current value a store block names (an adapter's ``read_store``)."""
        store = self.adapters.store(ref.provider)(ref.config, self.runtime, ref.describe())
        version = store.current()
        return version.value if version is not None else None

    def _interruptible_sleep(self, seconds: float) -> None:
        """Sleep, waking early when the engine is interrupted."""
        self._interrupt.wait(seconds)

    def check(self, names: Iterable[str]) -> list[Finding]:
        """Run the preflight of each named policy (``rotator check``); changes nothing."""
        findings: list[Finding] = []
        summaries = self.journal.summaries(names=list(names)) if self.journal.exists() else {}
        for name in names:
            b = self.binding(name)
            # Every credential an unfinished rotation holds is rotator's own, kept.
            open_ = summaries[name].open if name in summaries else ()
            kept = {ref for r in open_ for ref in (r.old_ref, r.new_ref) if ref}
            findings.extend(check_policy(name, b.store, b.issuer, b.targets, b.verifiers, kept))
        return findings

    def interrupt(self) -> None:
        """Stop starting steps: waits end, each rotation stays at its recorded step.

        Safe from a signal handler. Only for a process about to exit.
        """
        self._interrupt.set()

    def check_state(self) -> ChainReport:
        """Check the journal before acting (see :meth:`.trust.JournalTrust.check_state`)."""
        return self.trust.check_state()

    def check_audit(
        self,
        *,
        full: bool = False,
        anchor: tuple[int, str] | None = None,
        unless_unchanged: bool = False,
    ) -> ChainReport:
        """Verify the audit chain; alert if broken (see :meth:`.trust.JournalTrust.check_audit`)."""
        return self.trust.check_audit(full=full, anchor=anchor, unless_unchanged=unless_unchanged)

    def hold_everything(self, reason: str) -> None:
        """Act on no secret until the journal is checked again (a check that could not run)."""
        self.trust.hold_everything(reason)

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
        return [*items, *plan_orphans(summaries, self.policies.keys(), names)]

    def _plan_secret(self, name: str, summary: SecretSummary, now: datetime) -> list[PlanItem]:
        """Plan one secret: asks its store when it last changed only if the journal cannot say."""
        known = plan_from_journal(name, summary, self.trust.distrust_of(name, summary), now)
        if known.settled:
            return known.items
        policy = self.policies[name]
        store_changed = None
        if summary.last_success is None:
            try:
                store_changed = self.retrier.call(self.binding(name).store.last_changed)
            except RotatorError as exc:
                return [*known.items, plan_unreadable_store(name, str(exc))]
        reminder_only = self.adapters.issuer(policy.issuer.kind).reminder_only
        after = plan_next_rotation(
            policy, summary, store_changed, reminder_only=reminder_only, now=now
        )
        return [*known.items, *after]

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
        with self.sharing.running():
            return self._execute(items, stop=stop, deadline=deadline)

    def _execute(
        self,
        items: Iterable[PlanItem],
        *,
        stop: Callable[[], bool] | None,
        deadline: float | None,
    ) -> RunReport:
        """Do what :meth:`execute` says."""
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
                        self.alerts.raise_alert(
                            name,
                            AlertEvent.NEEDS_ATTENTION,
                            Severity.CRITICAL,
                            f"{name} needs attention: {item.reason}",
                            condition=item.rotation_id or "-",
                            rotation_id=item.rotation_id,
                        )
                # Nothing is tried for it this run: an unreadable store failed now,
                # retries given up failed before.
                first = errors[0]
                result = Result.FAILED if first.action is Action.ERROR else Result.ATTENTION
                report.outcomes.append(Outcome(name, result, first.reason, first.rotation_id))
                continue
            for item in secret_items:
                if item.due and item.action is Action.REMIND:
                    report.outcomes.append(self._remind(item))
            if any(i.due and i.action is not Action.REMIND for i in secret_items):
                rotate = any(i.due and i.action is Action.ROTATE for i in secret_items)
                work.append((name, rotate))
            else:
                # Held (alerted where it was found), or failed and waiting for its
                # retry: nothing is tried now, but the run fails while it lasts.
                report.outcomes += [
                    Outcome(
                        name,
                        Result.ATTENTION,
                        i.reason,
                        i.rotation_id,
                        State.GRACE if i.held else None,
                    )
                    for i in secret_items
                    if i.held or i.failing
                ]

        if len(work) > 1:
            # Replicas (and overlapping one-shot runs) start at different points
            # of the same list, so that they spread over the due secrets
            # instead of queueing on the same leases.
            start = int(hashlib.sha256(self.owner.encode()).hexdigest()[:8], 16) % len(work)
            work = work[start:] + work[:start]

        # Per provider and quota scope (a Region, a vault): scopes have quotas
        # of their own, so they proceed side by side. Told once, before any
        # worker starts: a key must not fail or change inside run_bounded.
        keys = {name: self._concurrency_key(name) for name, _ in work}

        def provider_of(job: tuple[str, bool]) -> str:
            return keys.get(job[0], "")

        def failed(job: tuple[str, bool], exc: Exception) -> list[Outcome]:
            # RotatorErrors are handled inside the driver; this is a bug or a
            # journal outage. Its message may come from a library: not logged.
            log.error("secret failed unexpectedly", secret=job[0], error=type(exc).__name__)
            return [Outcome(job[0], Result.FAILED, f"unexpected {type(exc).__name__}")]

        finished = run_bounded(
            work,
            lambda job: self.driver.process(job[0], start=job[1], trigger="schedule"),
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
            raise ConfigError(f"no policy named {name!r}{did_you_mean(name, self.policies)}")
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
            self.alerts.raise_alert(
                name,
                AlertEvent.EMERGENCY,
                Severity.CRITICAL,
                f"emergency rotation of {name}: {reason or 'no reason given'}; the old "
                "credential is revoked as soon as the new one is live",
                condition=uuid.uuid4().hex,
                details={"reason": reason or "", "actor": self.journal.actor},
            )
        with self.sharing.running():
            outcomes = self.driver.process(
                name, start=True, trigger=trigger, emergency=emergency, reason=reason, value=value
            )
        for outcome in outcomes:
            # Asked for by name, a rotation that could not start has failed.
            if outcome.result is Result.SKIPPED:
                outcome.result = Result.FAILED
        return RunReport(outcomes)

    # -- what the plan says a person must hear ---------------------------------

    def _alert_overdue(self, item: PlanItem) -> None:
        """Alert that a secret's credential is older than its policy allows."""
        policy = self.policies[item.secret]
        since = item.overdue_since
        assert since is not None
        self.alerts.raise_alert(
            item.secret,
            AlertEvent.OVERDUE,
            Severity.WARNING,
            f"{item.secret}: the current credential is older than its policy allows "
            f"({format_duration(max_age(policy.schedule))}) since {format_time(since)}; "
            f"{item.reason}",
            condition=since.isoformat(),
            details={"overdue_since": format_time(since)},
        )

    def _remind(self, item: PlanItem) -> Outcome:
        """Remind the owner that a credential only a person can rotate is due."""
        policy = self.policies[item.secret]
        how = getattr(self.binding(item.secret).issuer.config, "instructions", None)
        self.alerts.raise_alert(
            item.secret,
            AlertEvent.ROTATION_DUE,
            Severity.WARNING,
            f"{item.secret} is due for rotation by hand"
            + (f" ({how})" if how else "")
            + f": then run `rotator rotate {item.secret} --value-from-stdin`",
            condition=f"due:{item.due_at.isoformat() if item.due_at else '-'}",
            details={"owner": policy.owner or "", "due_at": format_time(item.due_at)},
        )
        return Outcome(item.secret, Result.WAITING, f"due; owner reminded. {item.reason}")
