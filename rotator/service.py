"""``rotator run``: the engine as a long-running service.

The service runs a *pass* (:meth:`rotator.engine.Engine.run_once`: resume
unfinished rotations, rotate what is due, revoke what has passed its grace)
whenever something becomes due, and at least every ``reconcile`` seconds.
It sleeps until the earliest due time the plan knows of, so a rotation due at
03:00 starts at 03:00, not at the next reconcile tick. Due times come from
the journal with the same arithmetic as ``plan``: a restart never triggers a
wave of rotations, and a grace deadline reached while the service was down is
honoured at the first pass after it comes back.

Signals: SIGHUP reloads the policies (also done when a policy file changes);
the new set replaces the old only if it validates, otherwise the old set
keeps running and the problems are logged. SIGTERM and SIGINT stop the
service: no new secret is started, the pass in progress finishes the secret
it is on (every step is recorded, so the next start resumes exactly there),
and the process exits 0.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType

import structlog

from rotator.clock import Clock, system_clock
from rotator.engine import Action, Engine, PlanItem, Result, RunReport
from rotator.errors import ConfigError, PolicyError, RotatorError
from rotator.journal import SecretSummary
from rotator.lifecycle import State
from rotator.loader import load_policies
from rotator.metrics import Metrics
from rotator.policy import Policy

log = structlog.get_logger("rotator.service")


@dataclass(frozen=True)
class ServiceSettings:
    """How the service paces itself."""

    #: Seconds between passes when nothing becomes due sooner.
    reconcile: float = 30.0
    #: Never wake more often than this (a burst of due times is one pass).
    min_wait: float = 1.0


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
        #: The plan made after the last pass (None until then, or after a reload).
        self._plan: list[PlanItem] | None = None
        self.reloads_failed = 0

    # -- control ----------------------------------------------------------

    def install_signal_handlers(self) -> None:
        """Route SIGTERM/SIGINT to a graceful stop and SIGHUP to a reload."""
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_reload)

    def _on_stop(self, signum: int, _frame: FrameType | None) -> None:
        log.info("stopping: finishing the secret in progress", signal=signal.Signals(signum).name)
        self.stop()

    def _on_reload(self, _signum: int, _frame: FrameType | None) -> None:
        self.request_reload()

    def stop(self) -> None:
        """Stop after the secret in progress (safe from a signal handler)."""
        self.stopping.set()
        self._wake.set()

    def request_reload(self) -> None:
        """Reload the policies before the next pass (safe from a signal handler)."""
        self._reload_requested = True
        self._wake.set()

    # -- the loop -----------------------------------------------------------

    def reload(self) -> bool:
        """Validate the policy files again; switch to them only if they are all valid."""
        self._reload_requested = False
        self._stamps = _policy_files(self.config)
        try:
            policies: list[Policy] = load_policies(self.config)
        except PolicyError as exc:
            self.reloads_failed += 1
            if self.metrics is not None:
                self.metrics.config_reload("failed")
            log.error(
                "reload refused: the policies in force keep running",
                problems=[str(p) for p in exc.problems],
            )
            return False
        except ConfigError as exc:
            self.reloads_failed += 1
            if self.metrics is not None:
                self.metrics.config_reload("failed")
            log.error("reload refused: the policies in force keep running", error=str(exc))
            return False
        before = set(self.engine.policies)
        self.engine.replace_policies(policies)
        self._plan = None
        if self.metrics is not None:
            self.metrics.config_reload("succeeded")
        after = set(self.engine.policies)
        log.info(
            "policies reloaded",
            added=sorted(after - before),
            removed=sorted(before - after),
            total=len(after),
        )
        return True

    def _files_changed(self) -> bool:
        return _policy_files(self.config) != self._stamps

    def next_wait(self) -> float:
        """Return the seconds until the earliest due time, bounded by the reconcile period."""
        now = self.clock()
        plan = self._plan if self._plan is not None else self.engine.plan()
        upcoming = [item.due_at for item in plan if item.due_at is not None and item.due_at > now]
        wait = self.settings.reconcile
        if upcoming:
            wait = min(wait, (min(upcoming) - now).total_seconds())
        return max(wait, self.settings.min_wait)

    def run_pass(self) -> None:
        """Run one pass of the engine, logging (never raising) a failure of the pass."""
        started = self.clock()
        try:
            result = self.engine.run_once(stop=self.stopping.is_set)
        except RotatorError as exc:
            log.error("pass failed", error=str(exc))
        else:
            if self.report is not None and result.outcomes:
                self.report(result)
            if self.metrics is not None:
                self._count(result, started)
        self._replan()
        self.last_pass = self.clock()

    def _replan(self) -> None:
        """Plan once after a pass: the next wake-up and the gauges both read this plan."""
        self._plan = None
        try:
            summaries = self.engine.journal.summaries()
            self._plan = self.engine.plan(summaries)
        except RotatorError as exc:
            log.warning("planning after the pass failed", error=str(exc))
            return
        if self.metrics is not None:
            self._observe(summaries, self._plan)

    def _count(self, result: RunReport, started: datetime) -> None:
        """Count the rotations this pass promoted, rolled back, failed or skipped."""
        assert self.metrics is not None
        for outcome in result.outcomes:
            policy = self.engine.policies.get(outcome.secret)
            provider = policy.store.provider if policy else "unknown"
            rotation = self.engine.journal.get(outcome.rotation_id) if outcome.rotation_id else None
            if outcome.result is Result.SKIPPED:
                self.metrics.rotation_finished(outcome.secret, provider, "skipped", 0.0)
            elif outcome.result is Result.FAILED:
                rolled_back = rotation is not None and rotation.state is State.ROLLED_BACK
                seconds = (self.clock() - rotation.created_at).total_seconds() if rotation else 0.0
                kind = "rolled_back" if rolled_back else "failed"
                self.metrics.rotation_finished(outcome.secret, provider, kind, max(seconds, 0.0))
            elif rotation is not None and rotation.promoted_at and rotation.promoted_at >= started:
                seconds = (rotation.promoted_at - rotation.created_at).total_seconds()
                self.metrics.rotation_finished(outcome.secret, provider, "succeeded", seconds)

    def _observe(self, summaries: dict[str, SecretSummary], plan: list[PlanItem]) -> None:
        """Refresh the per-secret gauges from the journal and the plan."""
        assert self.metrics is not None
        next_due = {i.secret: i.due_at for i in plan if i.action is Action.ROTATE}
        policies = {n: p.store.provider for n, p in self.engine.policies.items()}
        failing = sum(1 for i in plan if i.action in (Action.ERROR, Action.ATTENTION))
        self.metrics.observe_journal(policies, summaries, next_due, failing)

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
        while not self.stopping.is_set():
            if self._reload_requested or self._files_changed():
                self.reload()
            self.run_pass()
            if self.stopping.is_set():
                break
            try:
                wait = self.next_wait()
            except RotatorError as exc:
                log.error("planning failed", error=str(exc))
                wait = self.settings.reconcile
            self._wake.wait(wait)
            self._wake.clear()
        log.info("service stopped")
        return 0

    def alive(self, within: timedelta) -> bool:
        """Tell whether a pass finished within ``within`` (the liveness probe)."""
        return self.last_pass is not None and self.clock() - self.last_pass <= within
