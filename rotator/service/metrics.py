"""Prometheus metrics of the daemon, on a registry of their own.

Each :class:`Metrics` owns a private ``CollectorRegistry`` (never the
process-wide default), so that tests and embedders can create as many as
they like. Label values are limited to policy names, provider kinds and the
fixed enums below: never a secret value, never anything unbounded (an error
message, a version id, a timestamp).

Events (a rotation finished, a provider answered, a reload) are counted as
they happen. Everything read from the journal (age, next due time, grace
deadline, secrets needing attention) is kept per secret and updated for the
secrets a pass touched (:meth:`Metrics.observe_secrets`), or replaced as a
whole (:meth:`Metrics.observe_journal`); both happen under a lock a scrape
also takes, so a scrape never sees half an update, and a secret dropped from
the policies disappears from every gauge at once.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric

from rotator import __version__
from rotator.journal.records import SecretSummary
from rotator.lifecycle import State, Transition

#: What a pass did to a rotation, as ``rotation_finished`` reports it: promoted
#: (``succeeded``), ``rolled_back``, a step ``failed`` (resumed later), ``skipped``
#: (another run holds the secret), or, at the grace deadline, the old credential
#: still in use was kept: the audit trail's words for that, never ``failed``.
ROTATION_OUTCOMES = frozenset(
    {
        "succeeded",
        "rolled_back",
        "failed",
        "skipped",
        Transition.GRACE_EXTENDED.value,
        Transition.GRACE_HELD.value,
    }
)
#: How a configuration reload ended.
RELOAD_OUTCOMES = frozenset({"succeeded", "failed"})
#: What became of an alert for one notifier.
ALERT_OUTCOMES = frozenset({"sent", "failed", "deduplicated"})
#: How one provider API request ended. ``throttled`` is counted apart from
#: other transient failures because the rate limiters are tuned against it.
PROVIDER_OUTCOMES = frozenset({"ok", "throttled", "transient", "permanent"})
#: Rotations take from well under a second (a random value in a local store)
#: to minutes (an issuer that propagates slowly, retries with backoff).
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)

#: An operation is an API call name ("PutSecretValue", "kv.read"): an identifier,
#: so free text (an error message, an id) cannot become a label value by mistake.
OPERATION_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]{0,63}")


@dataclass(frozen=True, slots=True)
class SecretGauges:
    """One secret's journal-derived gauges, as Unix times (None: no value)."""

    last_success: float | None = None
    next_due: float | None = None
    grace_deadline: float | None = None

    @classmethod
    def of(
        cls,
        summary: SecretSummary | None,
        next_due: datetime | None,
    ) -> SecretGauges:
        """Build the gauges from a journal summary and the plan's next due time."""
        last = summary.last_success if summary is not None else None
        deadlines = [
            r.grace_deadline
            for r in (summary.open if summary is not None else [])
            if r.state is State.GRACE and r.grace_deadline is not None
        ]
        return cls(
            last.timestamp() if last is not None else None,
            next_due.timestamp() if next_due is not None else None,
            min(deadlines).timestamp() if deadlines else None,
        )


class _JournalCollector:
    """Exports the per-secret gauges; ages are computed at scrape time.

    The per-secret families are written as exposition text straight from the
    gauges (:meth:`render`), a chunk of :data:`CHUNK` secrets at a time: at
    100,000 secrets prometheus_client's own path builds 300,000 sample
    objects per scrape, and the scrape then costs seconds and a third more
    memory. The aggregate gauges go through the registry like every other
    metric (:meth:`collect`).
    """

    #: The per-secret families: name, help text, and which gauge each reads.
    FAMILIES = (
        (
            "rotator_secret_age_seconds",
            "Seconds since the secret's current credential was promoted.",
        ),
        (
            "rotator_secret_next_rotation_timestamp_seconds",
            "Unix time at which the secret is next due for rotation.",
        ),
        (
            "rotator_grace_deadline_timestamp_seconds",
            "Unix time at which the old credential, still in its grace window, is revoked.",
        ),
    )
    #: Secrets written per chunk of the exposition.
    CHUNK = 2000

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self.lock = threading.Lock()
        self.secrets: dict[str, SecretGauges] = {}
        self.policies = 0
        self.needing_attention = 0

    def describe(self) -> Iterable[Metric]:
        """Return the families this collector exports (so the registry rejects clashes)."""
        return [
            *(GaugeMetricFamily(name, text, labels=["secret"]) for name, text in self.FAMILIES),
            *self.collect(),
        ]

    def collect(self) -> Iterable[Metric]:
        """Return the aggregate gauges, as they are now."""
        with self.lock:
            policies, attention = self.policies, self.needing_attention
        return [
            GaugeMetricFamily(
                "rotator_secrets_needing_attention",
                "Secrets whose retries are exhausted; they wait for an operator.",
                value=attention,
            ),
            GaugeMetricFamily(
                "rotator_policies", "Rotation policies currently loaded.", value=policies
            ),
        ]

    def render(self) -> Iterator[bytes]:
        """Yield the per-secret families as text exposition (format 0.0.4), in chunks."""
        with self.lock:
            # In the order the secrets were observed (sorting 100,000 names
            # each scrape costs a tenth of it; Prometheus needs no order).
            secrets = list(self.secrets.items())
        now = self.clock().timestamp()
        for index, (name, text) in enumerate(self.FAMILIES):
            yield f"# HELP {name} {text}\n# TYPE {name} gauge\n".encode()
            for start in range(0, len(secrets), self.CHUNK):
                lines = []
                for secret, gauges in secrets[start : start + self.CHUNK]:
                    if index == 0:
                        value = None if gauges.last_success is None else now - gauges.last_success
                    else:
                        value = gauges.next_due if index == 1 else gauges.grace_deadline
                    if value is not None:
                        lines.append(f'{name}{{secret="{_label(secret)}"}} {value!r}\n')
                yield "".join(lines).encode()


def _label(value: str) -> str:
    """Escape a label value for the text exposition: backslash, double quote, newline."""
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


class _WithoutCreated:
    """A registry's families, less the client library's ``_created`` samples.

    prometheus_client gives every counter, histogram and summary child a
    ``_created`` sample (when the child was made), which the text format
    exposes as a series of its own: one more per rotations_total series, at
    100,000 secrets a hundred thousand series nobody queries. The library
    turns them off only for the whole process (``disable_created_metrics()``,
    or an environment variable read at import), which would also take them
    from anyone else using the library in the same process; so they are left
    out here, for rotator's own registry only.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterable[Metric]:
        """Return the registry's families, each without its ``_created`` samples."""
        for family in self.registry.collect():
            created = f"{family.name}_created"
            if not any(s.name == created for s in family.samples):
                yield family
                continue
            kept = Metric(family.name, family.documentation, family.type, family.unit)
            kept.samples = [s for s in family.samples if s.name != created]
            yield kept


class Metrics:
    """The daemon's Prometheus metrics: event counters and journal-derived gauges."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self.registry = CollectorRegistry()
        self._lock = threading.Lock()
        self._rotations = Counter(
            "rotator_rotations",
            "What passes did to rotations, by secret, provider and outcome (succeeded, "
            "rolled_back, failed, skipped; grace-extended, grace-held: an old credential "
            "still in use kept past its grace deadline).",
            ["secret", "provider", "outcome"],
            registry=self.registry,
        )
        self._durations = Histogram(
            "rotator_rotation_duration_seconds",
            "Wall-clock time of one rotation, from start to promote or rollback.",
            ["provider"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self._requests = Counter(
            "rotator_provider_requests",
            "Requests to provider APIs, by provider, operation and outcome.",
            ["provider", "operation", "outcome"],
            registry=self.registry,
        )
        self._reloads = Counter(
            "rotator_config_reloads",
            "Policy reloads attempted, by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self._alerts = Counter(
            "rotator_alerts",
            "Alerts per notifier, by event and outcome (sent, failed, deduplicated).",
            ["event", "outcome"],
            registry=self.registry,
        )
        self._audit_intact = Gauge(
            "rotator_audit_chain_intact",
            "1 if the last verification of the audit trail found it intact, 0 if broken.",
            registry=self.registry,
        )
        self._audit_records = Gauge(
            "rotator_audit_records_verified",
            "Audit records the last verification checked (the whole chain on a full one).",
            registry=self.registry,
        )
        build = Gauge(
            "rotator_build_info",
            "Always 1; the version label says which rotator is running.",
            ["version"],
            registry=self.registry,
        )
        build.labels(version=__version__).set(1)
        self._journal = _JournalCollector(clock)
        self.registry.register(self._journal)
        # Label sets of rotator_rotations_total, so that series of secrets
        # removed from the policies can be dropped (the client has no public
        # listing of its children).
        self._rotation_series: set[tuple[str, str, str]] = set()

    # -- events ------------------------------------------------------------------

    def rotation_finished(
        self, secret: str, provider: str, outcome: str, seconds: float | None
    ) -> None:
        """Count what a pass did to one rotation, and how long the rotation took (None: untimed).

        A grace extended or held, or a step failing after promote, is not a
        rotation's duration (that ends at promote or rollback): pass None.
        """
        _check(outcome, ROTATION_OUTCOMES, "rotation outcome")
        with self._lock:
            self._rotation_series.add((secret, provider, outcome))
            self._rotations.labels(secret, provider, outcome).inc()
        if seconds is not None:
            self._durations.labels(provider).observe(max(seconds, 0.0))

    def provider_request(self, provider: str, operation: str, outcome: str) -> None:
        """Count one request to a provider API."""
        _check(outcome, PROVIDER_OUTCOMES, "provider request outcome")
        if not OPERATION_PATTERN.fullmatch(operation):
            raise ValueError(f"operation must be an API call name, not {operation!r}")
        self._requests.labels(provider, operation, outcome).inc()

    def alert(self, event: str, outcome: str) -> None:
        """Count what became of one alert for one notifier."""
        _check(outcome, ALERT_OUTCOMES, "alert outcome")
        self._alerts.labels(event, outcome).inc()

    def audit_verified(self, intact: bool, records: int) -> None:
        """Record the outcome of an audit chain verification."""
        self._audit_intact.set(1 if intact else 0)
        self._audit_records.set(records)

    def config_reload(self, outcome: str) -> None:
        """Count one policy reload."""
        _check(outcome, RELOAD_OUTCOMES, "reload outcome")
        self._reloads.labels(outcome).inc()

    # -- journal -----------------------------------------------------------------

    def observe_journal(
        self,
        policies: Mapping[str, str],
        summaries: Mapping[str, SecretSummary],
        next_due: Mapping[str, datetime | None],
        needs_attention: int,
    ) -> None:
        """Replace the journal-derived gauges with what the journal says now.

        ``policies`` maps each loaded secret to its provider; secrets absent
        from it vanish from every per-secret gauge and from
        ``rotator_rotations_total``, so a year of policy changes leaves no
        stale series behind.
        """
        gauges = {
            name: SecretGauges.of(summaries.get(name), next_due.get(name)) for name in policies
        }
        collector = self._journal
        with collector.lock:
            collector.secrets = gauges
            collector.policies = len(policies)
            collector.needing_attention = needs_attention
        self.forget_secrets_except(policies)

    def observe_secrets(
        self,
        changed: Mapping[str, SecretGauges | None],
        *,
        policies: int,
        needs_attention: int,
    ) -> None:
        """Update the gauges of the secrets a pass touched (None: drop the secret)."""
        collector = self._journal
        with collector.lock:
            for name, gauges in changed.items():
                if gauges is None:
                    collector.secrets.pop(name, None)
                else:
                    collector.secrets[name] = gauges
            collector.policies = policies
            collector.needing_attention = needs_attention

    def forget_secrets_except(self, policies: Collection[str]) -> None:
        """Drop every series of a secret not in ``policies`` (after a reload)."""
        collector = self._journal
        with collector.lock:
            for name in [n for n in collector.secrets if n not in policies]:
                del collector.secrets[name]
        with self._lock:
            stale = {s for s in self._rotation_series if s[0] not in policies}
            for labels in stale:
                self._rotations.remove(*labels)
            self._rotation_series -= stale

    # -- exposition ----------------------------------------------------------------

    def render(self) -> tuple[bytes, str]:
        """Return the Prometheus text exposition and its content type."""
        chunks, content_type = self.render_chunks()
        return b"".join(chunks), content_type

    def render_chunks(self) -> tuple[list[bytes], str]:
        """Return the Prometheus text exposition in chunks (to write one after the other)."""
        chunks = [generate_latest(_WithoutCreated(self.registry)), *self._journal.render()]
        return chunks, CONTENT_TYPE_LATEST


def _check(value: str, allowed: frozenset[str], what: str) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; expected one of {sorted(allowed)}")
