"""``rotator run``: the engine as a long-running service.

The service keeps a *due-time index*: each secret's next due time, in a heap
(earliest first). It sleeps until the earliest one, or the reconcile period
(30 s by default) if that comes sooner, then runs a *pass* over just the
secrets that need one:

- those whose due time has come (a rotation, or a grace deadline: revoke);
- those whose last attempt failed in a way worth retrying (resume);
- those the journal says another process changed since the last pass (a
  one-shot run, ``rotator rotate`` by hand), so the index never goes stale;
- those that could not be planned (a store that did not answer).

Only those are planned again after the pass. The whole set is planned once
at start and after a reload, in chunks, so neither a pass nor the memory it
needs grows with the number of policies. Due times come from the journal
with the same arithmetic as ``plan``: a restart never triggers a wave of
rotations, a grace deadline reached while the service was down is honoured
at the first pass, and what became due during a long stop is caught up,
spread by each policy's jitter.

Signals: SIGHUP reloads the policies (also done when a policy file changes);
the new set replaces the old only if it validates, otherwise the old set
keeps running and the problems are logged and counted. SIGTERM and SIGINT
stop the service: no new secret or step is started, steps already running
get ``shutdown_deadline`` seconds to finish (every step is recorded, so the
next start resumes exactly there), and the process exits 0.
"""

from __future__ import annotations

import gc
import heapq
import signal
import threading
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType

import structlog

from rotator.clock import Clock, system_clock
from rotator.engine.report import Action, PlanItem, Result, RunReport
from rotator.engine.runner import Engine
from rotator.errors import ConfigError, JournalTampered, PolicyError, RotatorError
from rotator.lifecycle import State
from rotator.policy.loader import load_policies
from rotator.service.metrics import Metrics, SecretGauges
from rotator.watch.usage import watch_usage

log = structlog.get_logger("rotator.service")

#: Policies planned per journal read when the whole set is planned.
PLAN_CHUNK = 2000
#: How often a due reminder-only secret is looked at again (its reminder is sent once).
REMIND_RECHECK = timedelta(hours=1)


@dataclass(frozen=True)
class ServiceSettings:
    """How the service paces itself."""

    #: Seconds between passes when nothing becomes due sooner.
    reconcile: float = 30.0
    #: Never wake more often than this (a burst of due times is one pass).
    min_wait: float = 1.0
    #: Seconds running steps get to finish after SIGTERM (Kubernetes kills at 30).
    shutdown_deadline: float = 25.0
    #: Seconds between watch passes: last use, anomalies, undelivered alerts, the audit chain.
    watch: float = 900.0
    #: Every this many watch passes the whole audit chain is verified again
    #: (the others verify only what was appended since).
    full_audit_every: int = 24


def _policy_files(config: Path) -> dict[Path, float]:
    """Return each policy file with its modification time (to notice edits)."""
    files = (
        [config]
        if config.is_file()
        else sorted(p for p in config.glob("*") if p.suffix in (".yaml", ".yml"))
    )
    stamps: dict[Path, float] = {}
    for path in files:
        try:
            stamps[path] = path.stat().st_mtime
        except OSError:
            continue
    return stamps


def _settle_heap() -> None:
    """Move what is alive now (the policies, above all) out of the garbage collector's sight.

    The service holds its policies for hours; left in the collected
    generations, every full collection would walk all of them (0.1-0.2 s at
    100,000 policies). Frozen objects are still freed when a reload drops
    them.
    """
    gc.collect()
    gc.freeze()


class DueIndex:
    """Each secret's next due time, with the earliest found in O(log n)."""

    def __init__(self) -> None:
        self._due: dict[str, float] = {}
        # (unix time, secret); entries superseded by a later put() stay in the
        # heap and are skipped when they surface (cheaper than removing them).
        self._heap: list[tuple[float, str]] = []

    def __len__(self) -> int:
        return len(self._due)

    def put(self, name: str, at: datetime | None) -> None:
        """Schedule ``name`` at ``at`` (None: nothing scheduled)."""
        if at is None:
            self._due.pop(name, None)
            return
        stamp = at.timestamp()
        if self._due.get(name) == stamp:
            return
        self._due[name] = stamp
        heapq.heappush(self._heap, (stamp, name))
        if len(self._heap) > 2 * len(self._due) + 1024:
            self._heap = [(at, n) for n, at in self._due.items()]
            heapq.heapify(self._heap)

    def pop_due(self, now: datetime) -> set[str]:
        """Remove and return the secrets due at or before ``now``."""
        limit = now.timestamp()
        found: set[str] = set()
        while self._heap and self._heap[0][0] <= limit:
            stamp, name = heapq.heappop(self._heap)
            if self._due.get(name) == stamp:
                del self._due[name]
                found.add(name)
        return found

    def earliest(self) -> datetime | None:
        """Return the earliest due time scheduled, if any."""
        while self._heap and self._due.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)
        if not self._heap:
            return None
        return datetime.fromtimestamp(self._heap[0][0], UTC)

    def get(self, name: str) -> datetime | None:
        """Return the due time scheduled for ``name``."""
        stamp = self._due.get(name)
        return None if stamp is None else datetime.fromtimestamp(stamp, UTC)


class Service:
    """Runs passes of the engine until stopped; reloads policies when told."""

    def __init__(
        self,
        engine: Engine,
        config: str | Path,
        *,
        settings: ServiceSettings | None = None,
        clock: Clock = system_clock,
        report: Callable[[object], None] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.engine = engine
        self.metrics = metrics
        if metrics is not None:
            engine.alerting.on_outcome = metrics.alert
        self.config = Path(config)
        self.settings = settings or ServiceSettings()
        self.clock = clock
        self.report = report
        self.stopping = threading.Event()
        self._wake = threading.Event()
        self._reload_requested = False
        self._stamps = _policy_files(self.config)
        #: When the loop last finished a pass (the liveness probe reads it).
        self.last_pass: datetime | None = None
        self.reloads_failed = 0
        #: Future due times, by secret.
        self.index = DueIndex()
        #: Secrets to look at on the next pass whatever their due time: due
        #: already (a retry), not plannable (an error), or needing attention.
        self._again: set[str] = set()
        self._attention: set[str] = set()
        #: Whether the whole set must be planned (at start, after a reload).
        self._stale = True
        #: The journal's latest change seen, to notice other processes' work.
        self._watermark: datetime | None = None
        #: When the last watch pass started, and the thread running one.
        self._watched: datetime | None = None
        self._watcher: threading.Thread | None = None
        self._watches = 0

    # -- control ----------------------------------------------------------

    def install_signal_handlers(self) -> None:
        """Route SIGTERM/SIGINT to a graceful stop and SIGHUP to a reload."""
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_reload)

    def _on_stop(self, signum: int, _frame: FrameType | None) -> None:
        log.info(
            "stopping: no new work; running steps get the shutdown deadline",
            signal=signal.Signals(signum).name,
            deadline_seconds=self.settings.shutdown_deadline,
        )
        self.stop()

    def _on_reload(self, _signum: int, _frame: FrameType | None) -> None:
        self.request_reload()

    def stop(self) -> None:
        """Start no new secret or step; let running steps finish (safe from a signal handler)."""
        self.stopping.set()
        self.engine.interrupt()
        self._wake.set()

    def request_reload(self) -> None:
        """Reload the policies before the next pass (safe from a signal handler)."""
        self._reload_requested = True
        self._wake.set()

    # -- the loop -----------------------------------------------------------

    def reload(self) -> bool:
        """Validate the policy files again; switch to them only if they are all valid.

        Whatever the files hold, a reload never stops the service: any error
        while loading them (an invalid policy, or a bug the files trigger)
        is logged and counted, and the policies in force keep running.
        """
        self._reload_requested = False
        self._stamps = _policy_files(self.config)
        try:
            policies = load_policies(self.config)
        except Exception as exc:  # noqa: BLE001 (a reload must never end the service)
            self._refuse_reload(exc)
            return False
        before = set(self.engine.policies)
        self.engine.replace_policies(policies, policies.notifiers)
        del policies
        _settle_heap()
        self._stale = True
        if self.metrics is not None:
            self.metrics.config_reload("succeeded")
            self.metrics.forget_secrets_except(self.engine.policies)
        after = set(self.engine.policies)
        log.info(
            "policies reloaded",
            added=sorted(after - before),
            removed=sorted(before - after),
            total=len(after),
        )
        return True

    def _refuse_reload(self, exc: Exception) -> None:
        """Log and count a reload whose files could not be loaded."""
        self.reloads_failed += 1
        if self.metrics is not None:
            self.metrics.config_reload("failed")
        if isinstance(exc, PolicyError):
            problems = [str(p) for p in exc.problems]
        elif isinstance(exc, ConfigError):
            problems = [str(exc)]
        else:
            # not a policy problem: a bug the files trigger; the traceback is for its report
            problems = [f"unexpected {type(exc).__name__} while loading: {exc}"]
            log.error("reload failed unexpectedly", exc_info=exc)
        log.error("reload refused: the policies in force keep running", problems=problems)

    def _files_changed(self) -> bool:
        return _policy_files(self.config) != self._stamps

    def next_wait(self) -> float:
        """Return the seconds until the earliest due time, bounded by the reconcile period."""
        wait = self.settings.reconcile
        earliest = self.index.earliest()
        if earliest is not None:
            wait = min(wait, (earliest - self.clock()).total_seconds())
        return max(wait, self.settings.min_wait)

    def run_pass(self) -> None:
        """Run one pass over the secrets that need one, logging (never raising) its failure."""
        started = self.clock()
        try:
            # What planning everything found due is acted on as planned: planned
            # again, each secret the journal knows nothing of would be asked of
            # its store twice before the pass starts. The driver decides again
            # under each secret's lease in any case.
            planned: dict[str, list[PlanItem]] = {}
            if self._stale:
                self.engine.journal.migrate()
                planned = self._plan_everything()
            names, changed = self._names_for_pass(started)
            fresh = {n: planned[n] for n in names if n in planned and n not in changed}
            again = names - fresh.keys()
            items = [i for found in fresh.values() for i in found]
            if again:
                items += self.engine.plan(names=again)
            items.sort(key=lambda item: item.secret)  # the order plan gives, stable per secret
            result = self.engine.execute(
                items,
                stop=self.stopping.is_set,
                deadline=self.settings.shutdown_deadline,
            )
        except RotatorError as exc:
            log.error("pass failed", error=str(exc))
            self._stale = True  # whatever the pass missed, the next one plans anew
        else:
            if result.outcomes:
                # A log line, never a table on stdout: a service's streams are merged and
                # shipped by systemd, Docker and Kubernetes, where only log lines belong.
                log.info(
                    "pass finished",
                    handled=len(result.outcomes),
                    failed=len(result.failed),
                    attention=len(result.attention),
                    seconds=round((self.clock() - started).total_seconds(), 3),
                )
                if self.report is not None:
                    self.report(result)
            if self.metrics is not None:
                self._count(result, started)
            try:
                self._replan(names, reminded=True)
            except RotatorError as exc:
                log.warning("planning after the pass failed", error=str(exc))
                self._stale = True
        self._maybe_watch()
        self.last_pass = self.clock()

    def _maybe_watch(self) -> None:
        """Start a watch pass on its own thread when one is due and none is running."""
        now = self.clock()
        running = self._watcher is not None and self._watcher.is_alive()
        if running or self.stopping.is_set():
            return
        if (
            self._watched is not None
            and (now - self._watched).total_seconds() < self.settings.watch
        ):
            return
        self._watched = now
        full = self._watches % self.settings.full_audit_every == 0
        self._watches += 1
        self._watcher = threading.Thread(
            target=self.watch, kwargs={"full_audit": full}, name="rotator-watch", daemon=True
        )
        self._watcher.start()

    def watch(self, *, full_audit: bool = False) -> None:
        """Run one watch pass (see ``watch_usage`` and ``Engine.check_audit``); never raises."""
        try:
            # Between full checks, a journal exactly as a check found it intact is
            # taken as checked (a digest read, no seal per row): at 100,000 secrets,
            # seconds of CPU each watch period otherwise. Full checks check every row.
            chain = self.engine.check_audit(full=full_audit, unless_unchanged=not full_audit)
            if self.metrics is not None:
                self.metrics.audit_verified(chain.intact, chain.records)
            report = watch_usage(self.engine)
        except RotatorError as exc:
            log.warning("watch pass failed", error=str(exc))
            return
        log.info(
            "watch pass done",
            credentials_checked=report.checked,
            errors=report.errors,
            alerts_resent=report.alerts_resent,
            audit_records_verified=chain.records,
            audit_intact=chain.intact,
        )

    def _names_for_pass(self, now: datetime) -> tuple[set[str], set[str]]:
        """Return the secrets this pass looks at (see the module docstring), and those of them
        another process changed since the last look."""
        names = self.index.pop_due(now) | self._again
        self._again = set()
        changed = self._changed_elsewhere()
        return names | changed, changed

    def _changed_elsewhere(self) -> set[str]:
        """Return the secrets whose journal rows changed after the last look's latest change.

        Strictly after: a row another process stamps with the very
        microsecond of that change is missed until its secret is next
        planned for another reason (its due time, a reconcile of a retry),
        which only delays noticing it; the plan itself always reads the
        journal.
        """
        names: set[str] = set()
        for name, at in self.engine.journal.changed_since(self._watermark):
            names.add(name)
            if at is not None and (self._watermark is None or at > self._watermark):
                self._watermark = at
        return names

    def _plan_everything(self) -> dict[str, list[PlanItem]]:
        """Plan every policy (at start and after a reload), a chunk of secrets at a time.

        Returns the plan items of the secrets found due now, for the pass
        about to run (one that could not be planned is planned again by it).
        """
        self.index = DueIndex()
        self._again, self._attention = set(), set()
        self._watermark = self.engine.journal.latest_change()
        # Before anything is planned, every row the engine decides on is
        # checked against its seal (the watch passes check again).
        try:
            checked = self.engine.check_state()
            if checked.whole and checked.intact:
                # It checked every row and the whole chain: the watch pass's full
                # check, due first at start, would do it all again straight away.
                self._watches = max(self._watches, 1)
        except ConfigError as exc:  # the anchor file unreadable: nothing can be trusted
            self.engine.hold_everything(f"the journal could not be checked: {exc}")
        except RotatorError as exc:  # a database blip: each secret is checked before acting
            log.warning("journal rows not checked", error=str(exc))
        names = sorted(self.engine.policies)
        due: dict[str, list[PlanItem]] = {}
        for start in range(0, len(names), PLAN_CHUNK):
            self._replan(names[start : start + PLAN_CHUNK], due=due)
        # Unfinished rotations of secrets no policy names any more stay parked
        # at their recorded step (plan and status show them) until their
        # policy comes back: said once here, not retried on every pass.
        try:
            unfinished = self.engine.journal.open_rotations()
        except JournalTampered as exc:  # each secret's own rows are checked before acting
            log.error("unfinished rotations not listed", error=str(exc))
            unfinished = []
        for rotation in unfinished:
            if rotation.secret not in self.engine.policies:
                log.warning(
                    "rotation parked: its secret has no policy any more",
                    secret=rotation.secret,
                    rotation_id=rotation.id,
                    state=str(rotation.state),
                )
        self._stale = False
        log.info(
            "schedule built",
            policies=len(names),
            scheduled=len(self.index),
            due_or_retrying=len(self._again),
        )
        return due

    def _replan(
        self,
        names: Collection[str],
        *,
        reminded: bool = False,
        due: dict[str, list[PlanItem]] | None = None,
    ) -> None:
        """Plan ``names`` again from the journal; update the index and the gauges.

        ``reminded``: the pass just handled these secrets, so a due
        reminder-only secret among them was reminded. ``due`` receives the
        plan items of the secrets due now (not of those that could not be
        planned: a store that did not answer is asked again by the pass).
        """
        if not names:
            return
        summaries = self.engine.journal.summaries(names=names)
        items = self.engine.plan(summaries, names=names)
        now = self.clock()
        by_secret: dict[str, list[PlanItem]] = {name: [] for name in names}
        for item in items:
            by_secret.setdefault(item.secret, []).append(item)
        gauges: dict[str, SecretGauges | None] = {}
        for name, secret_items in by_secret.items():
            self._schedule(name, secret_items, now, reminded=reminded)
            planned = not any(i.action is Action.ERROR for i in secret_items)
            if due is not None and name in self._again and planned:
                due[name] = secret_items
            if name not in self.engine.policies:
                gauges[name] = None
                continue
            next_due = min(
                (
                    i.due_at
                    for i in secret_items
                    if i.action in (Action.ROTATE, Action.REMIND) and i.due_at
                ),
                default=None,
            )
            gauges[name] = SecretGauges.of(summaries.get(name), next_due)
        if self.metrics is not None:
            self.metrics.observe_secrets(
                gauges,
                policies=len(self.engine.policies),
                needs_attention=len(self._attention),
            )

    def _schedule(
        self, name: str, items: Iterable[PlanItem], now: datetime, *, reminded: bool = False
    ) -> None:
        """Put one secret back in the index (or the retry set) from its plan items.

        A secret that needs attention is neither scheduled nor retried: it
        is logged once, at error level, and left alone until the journal
        shows a rotation by hand or a reload changes its policy (both make
        the service plan it again).
        """
        needed_attention = name in self._attention
        self._attention.discard(name)
        self._again.discard(name)
        earliest: datetime | None = None
        for item in items:
            if item.action is Action.ATTENTION:
                self._attention.add(name)
                if not needed_attention:
                    log.error("secret needs attention", secret=name, reason=item.reason)
            elif item.action is Action.REMIND and item.due and reminded:
                # A person rotates it: once reminded, look again in a while
                # (for overdue, or the value supplied), not on every pass.
                later = now + REMIND_RECHECK
                earliest = later if earliest is None else min(earliest, later)
            elif item.action is Action.ERROR or item.due:
                # Looked at again on the next pass (a reconcile tick at most away).
                self._again.add(name)
            elif item.due_at is not None and (earliest is None or item.due_at < earliest):
                earliest = item.due_at
        self.index.put(name, earliest if name not in self._again else None)

    def _count(self, result: RunReport, started: datetime) -> None:
        """Count what this pass did: rotations promoted, rolled back, failed or skipped, and holds.

        Counted from what the pass recorded, not from the run's verdict. A
        rotation promoted in this pass succeeded, whatever then became of
        its old credential; an old credential kept past its grace deadline
        is counted under the audit trail's word for it (grace-extended,
        grace-held), never as a failed rotation. A run fails on every pass
        while an old credential stays held: a pass that recorded nothing new
        for the rotation counts nothing.
        """
        assert self.metrics is not None
        for outcome in result.outcomes:
            policy = self.engine.policies.get(outcome.secret)
            provider = policy.store.provider if policy else "unknown"
            if outcome.result is Result.SKIPPED:
                self.metrics.rotation_finished(outcome.secret, provider, "skipped", 0.0)
                continue
            rotation = self.engine.journal.get(outcome.rotation_id) if outcome.rotation_id else None
            if rotation is not None and rotation.promoted_at and rotation.promoted_at >= started:
                took = (rotation.promoted_at - rotation.created_at).total_seconds()
                self.metrics.rotation_finished(outcome.secret, provider, "succeeded", took)
            if outcome.hold is not None:
                self.metrics.rotation_finished(outcome.secret, provider, outcome.hold.value, None)
            elif outcome.result is not Result.FAILED:
                continue
            elif rotation is None:
                self.metrics.rotation_finished(outcome.secret, provider, "failed", 0.0)
            elif rotation.updated_at >= started:
                kind = "rolled_back" if rotation.state is State.ROLLED_BACK else "failed"
                # A step failing after promote (the revoke, the delete) is not
                # part of the rotation's duration, which ends at promote.
                lasted = (
                    None
                    if rotation.succeeded
                    else max((self.clock() - rotation.created_at).total_seconds(), 0.0)
                )
                self.metrics.rotation_finished(outcome.secret, provider, kind, lasted)

    def ready(self) -> tuple[bool, str]:
        """Tell whether policies are loaded and the journal answers (the readiness probe)."""
        if not self.engine.policies:
            return False, "no policies loaded"
        if self.last_pass is None:
            return False, "first pass not finished"
        try:
            self.engine.journal.exists()
        except RotatorError as exc:
            return False, f"journal unreachable: {exc}"
        return True, "ready"

    def run(self) -> int:
        """Pass after pass until stopped; return the exit code (0)."""
        log.info("service started", policies=len(self.engine.policies), config=str(self.config))
        _settle_heap()
        while not self.stopping.is_set():
            if self._reload_requested or self._files_changed():
                self.reload()
            self.run_pass()
            if self.stopping.is_set():
                break
            self._wake.wait(self.next_wait())
            self._wake.clear()
        log.info("service stopped")
        return 0

    def alive(self, within: timedelta) -> bool:
        """Tell whether a pass finished within ``within`` (the liveness probe)."""
        return self.last_pass is not None and self.clock() - self.last_pass <= within
