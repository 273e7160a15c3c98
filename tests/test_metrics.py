"""The daemon's Prometheus metrics, read back through the exposition parser."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    generate_latest,
)
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from rotator import __version__
from rotator.journal.records import Rotation, SecretSummary
from rotator.lifecycle import State
from rotator.service.metrics import DURATION_BUCKETS, Metrics
from tests.conftest import START, FakeClock

POLICIES = {"db-password": "aws-secretsmanager", "api-key": "vault-kv"}


def _samples(metrics: Metrics) -> list[Sample]:
    payload, _ = metrics.render()
    return [
        sample
        for family in text_string_to_metric_families(payload.decode())
        for sample in family.samples
    ]


def _values(metrics: Metrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Return one sample name's values keyed by their sorted label pairs."""
    return {tuple(sorted(s.labels.items())): s.value for s in _samples(metrics) if s.name == name}


def _by_secret(metrics: Metrics, name: str) -> dict[str, float]:
    return {s.labels["secret"]: s.value for s in _samples(metrics) if s.name == name}


def _rotation(
    secret: str, state: State, promoted_at: datetime, grace_deadline: datetime
) -> Rotation:
    return Rotation(
        id=f"r-{secret}-{state}",
        secret=secret,
        state=state,
        trigger="schedule",
        created_at=START - timedelta(days=1),
        updated_at=START,
        promoted_at=promoted_at,
        grace_deadline=grace_deadline,
    )


def _observe(
    metrics: Metrics,
    clock: FakeClock,
    policies: dict[str, str] = POLICIES,
    needs_attention: int = 0,
) -> None:
    """Observe a journal where db-password is in grace and api-key is settled."""
    grace = _rotation(
        "db-password",
        State.GRACE,
        promoted_at=clock.now - timedelta(hours=2),
        grace_deadline=clock.now + timedelta(hours=22),
    )
    summaries = {
        "db-password": SecretSummary(clock.now - timedelta(hours=2), grace, [grace]),
        "api-key": SecretSummary(clock.now - timedelta(days=10)),
        # Known to the journal but no longer a policy: never exported.
        "orphan": SecretSummary(clock.now - timedelta(days=400)),
    }
    next_due = {
        "db-password": clock.now + timedelta(days=30),
        "api-key": None,
        "orphan": clock.now,
    }
    metrics.observe_journal(policies, summaries, next_due, needs_attention)


def test_rotation_finished_counts_by_secret_provider_and_outcome(clock: FakeClock) -> None:
    """Each finished rotation increments its own (secret, provider, outcome) series."""
    metrics = Metrics(clock)
    metrics.rotation_finished("db-password", "aws-secretsmanager", "succeeded", 1.5)
    metrics.rotation_finished("db-password", "aws-secretsmanager", "succeeded", 2.0)
    metrics.rotation_finished("api-key", "vault-kv", "rolled_back", 0.2)

    assert _values(metrics, "rotator_rotations_total") == {
        (
            ("outcome", "succeeded"),
            ("provider", "aws-secretsmanager"),
            ("secret", "db-password"),
        ): 2,
        (("outcome", "rolled_back"), ("provider", "vault-kv"), ("secret", "api-key")): 1,
    }


def test_rotation_duration_is_a_histogram_by_provider(clock: FakeClock) -> None:
    """Durations land in buckets labelled by provider only, from 0.05 s to 10 min."""
    metrics = Metrics(clock)
    metrics.rotation_finished("db-password", "aws-secretsmanager", "succeeded", 3.0)
    metrics.rotation_finished("other", "aws-secretsmanager", "failed", 400.0)

    buckets = {
        s.labels["le"]: s.value
        for s in _samples(metrics)
        if s.name == "rotator_rotation_duration_seconds_bucket"
        and s.labels["provider"] == "aws-secretsmanager"
    }
    assert buckets["0.05"] == 0
    assert buckets["2.5"] == 0
    assert buckets["5.0"] == 1
    assert buckets["300.0"] == 1
    assert buckets["600.0"] == 2
    assert buckets["+Inf"] == 2
    assert _values(metrics, "rotator_rotation_duration_seconds_sum") == {
        (("provider", "aws-secretsmanager"),): 403.0
    }
    assert DURATION_BUCKETS[0] == 0.05 and DURATION_BUCKETS[-1] == 600.0
    histogram = [s for s in _samples(metrics) if s.name.startswith("rotator_rotation_duration")]
    assert all("secret" not in s.labels for s in histogram)


def test_a_kept_old_credential_is_counted_under_its_own_word_and_not_timed(
    clock: FakeClock,
) -> None:
    """grace-extended and grace-held are counted; without a duration, no histogram sample."""
    metrics = Metrics(clock)
    metrics.rotation_finished("db-password", "aws-secretsmanager", "grace-extended", None)
    metrics.rotation_finished("db-password", "aws-secretsmanager", "grace-held", None)

    assert {
        labels[0][1]: value for labels, value in _values(metrics, "rotator_rotations_total").items()
    } == {"grace-extended": 1, "grace-held": 1}
    assert _values(metrics, "rotator_rotation_duration_seconds_count") == {}


def test_rotation_finished_refuses_an_unknown_outcome(clock: FakeClock) -> None:
    """An outcome outside the fixed enum is a bug and is refused, not exported."""
    metrics = Metrics(clock)
    with pytest.raises(ValueError, match="rotation outcome"):
        metrics.rotation_finished("db-password", "aws-secretsmanager", "exploded", 1.0)
    assert _values(metrics, "rotator_rotations_total") == {}


def test_provider_requests_are_counted_by_provider_operation_and_outcome(
    clock: FakeClock,
) -> None:
    """Provider requests are counted per (provider, operation, outcome)."""
    metrics = Metrics(clock)
    metrics.provider_request("aws-secretsmanager", "PutSecretValue", "ok")
    metrics.provider_request("aws-secretsmanager", "PutSecretValue", "throttled")
    metrics.provider_request("aws-secretsmanager", "PutSecretValue", "ok")

    assert _values(metrics, "rotator_provider_requests_total") == {
        (("operation", "PutSecretValue"), ("outcome", "ok"), ("provider", "aws-secretsmanager")): 2,
        (
            ("operation", "PutSecretValue"),
            ("outcome", "throttled"),
            ("provider", "aws-secretsmanager"),
        ): 1,
    }


def test_provider_request_refuses_free_text_labels(clock: FakeClock) -> None:
    """An operation that is not an API call name, or an unknown outcome, is refused."""
    metrics = Metrics(clock)
    with pytest.raises(ValueError, match="operation"):
        metrics.provider_request("vault-kv", "read failed: permission denied", "permanent")
    with pytest.raises(ValueError, match="operation"):
        metrics.provider_request("vault-kv", "x" * 65, "ok")
    with pytest.raises(ValueError, match="outcome"):
        metrics.provider_request("vault-kv", "kv.read", "HTTP 403")
    assert _values(metrics, "rotator_provider_requests_total") == {}


def test_config_reloads_are_counted_by_outcome(clock: FakeClock) -> None:
    """Reloads are counted as succeeded or failed, and nothing else is accepted."""
    metrics = Metrics(clock)
    metrics.config_reload("succeeded")
    metrics.config_reload("failed")
    metrics.config_reload("failed")
    with pytest.raises(ValueError, match="reload outcome"):
        metrics.config_reload("partial")

    assert _values(metrics, "rotator_config_reloads_total") == {
        (("outcome", "succeeded"),): 1,
        (("outcome", "failed"),): 2,
    }


def test_build_info_carries_the_version(clock: FakeClock) -> None:
    """rotator_build_info is 1 with the package version as its only label."""
    assert _values(Metrics(clock), "rotator_build_info") == {(("version", __version__),): 1}


def test_observe_journal_exports_age_next_due_and_grace(clock: FakeClock) -> None:
    """Age, next due time and grace deadline are computed from the journal and the clock."""
    metrics = Metrics(clock)
    _observe(metrics, clock, needs_attention=3)

    assert _by_secret(metrics, "rotator_secret_age_seconds") == {
        "db-password": 2 * 3600,
        "api-key": 10 * 86400,
    }
    assert _by_secret(metrics, "rotator_secret_next_rotation_timestamp_seconds") == {
        "db-password": (START + timedelta(days=30)).timestamp()
    }
    assert _by_secret(metrics, "rotator_grace_deadline_timestamp_seconds") == {
        "db-password": (START + timedelta(hours=22)).timestamp()
    }
    assert _values(metrics, "rotator_secrets_needing_attention") == {(): 3}
    assert _values(metrics, "rotator_policies") == {(): 2}


def test_age_grows_with_the_clock_between_observations(clock: FakeClock) -> None:
    """The age is computed at scrape time, so it keeps growing until the next observation."""
    metrics = Metrics(clock)
    _observe(metrics, clock)
    clock.advance(timedelta(minutes=5))

    assert _by_secret(metrics, "rotator_secret_age_seconds")["db-password"] == 2 * 3600 + 300


def test_a_secret_without_a_success_or_grace_has_no_such_series(clock: FakeClock) -> None:
    """A never-rotated secret has no age series, and one out of grace has no deadline series."""
    metrics = Metrics(clock)
    done = _rotation("db-password", State.DONE, START, START)
    metrics.observe_journal(
        POLICIES,
        {"db-password": SecretSummary(START, done, []), "api-key": SecretSummary()},
        {"db-password": START + timedelta(days=1), "api-key": START},
        0,
    )

    assert set(_by_secret(metrics, "rotator_secret_age_seconds")) == {"db-password"}
    assert _by_secret(metrics, "rotator_grace_deadline_timestamp_seconds") == {}
    assert set(_by_secret(metrics, "rotator_secret_next_rotation_timestamp_seconds")) == {
        "db-password",
        "api-key",
    }


def test_removed_secrets_drop_their_series(clock: FakeClock) -> None:
    """A secret dropped from the policies leaves no gauge or counter series behind."""
    metrics = Metrics(clock)
    metrics.rotation_finished("db-password", "aws-secretsmanager", "succeeded", 1.0)
    metrics.rotation_finished("api-key", "vault-kv", "failed", 1.0)
    _observe(metrics, clock)
    assert "db-password" in _by_secret(metrics, "rotator_grace_deadline_timestamp_seconds")

    _observe(metrics, clock, policies={"api-key": "vault-kv"})

    secrets = {s.labels.get("secret") for s in _samples(metrics)} - {None}
    assert secrets == {"api-key"}
    assert _values(metrics, "rotator_policies") == {(): 1}
    assert _by_secret(metrics, "rotator_rotations_total") == {"api-key": 1}


def test_labels_carry_only_the_given_names(clock: FakeClock) -> None:
    """Every label is a known key, and every secret label value is a policy name."""
    metrics = Metrics(clock)
    metrics.rotation_finished("db-password", "aws-secretsmanager", "succeeded", 1.0)
    metrics.provider_request("vault-kv", "kv.read", "ok")
    metrics.config_reload("succeeded")
    _observe(metrics, clock)

    samples = _samples(metrics)
    keys = {key for s in samples for key in s.labels}
    assert keys <= {"secret", "provider", "outcome", "operation", "version", "le"}
    assert {s.labels["secret"] for s in samples if "secret" in s.labels} <= set(POLICIES)
    assert {s.labels["provider"] for s in samples if "provider" in s.labels} <= set(
        POLICIES.values()
    )
    assert all("orphan" not in value for s in samples for value in s.labels.values())


def test_each_instance_has_a_private_registry(clock: FakeClock) -> None:
    """Two instances count independently, and nothing lands in the global registry."""
    first, second = Metrics(clock), Metrics(clock)
    first.config_reload("failed")

    assert _values(first, "rotator_config_reloads_total") == {(("outcome", "failed"),): 1}
    assert _values(second, "rotator_config_reloads_total") == {}
    assert REGISTRY.get_sample_value("rotator_config_reloads_total", {"outcome": "failed"}) is None


def test_render_returns_the_prometheus_content_type(clock: FakeClock) -> None:
    """render() returns text exposition bytes with prometheus-client's content type."""
    payload, content_type = Metrics(clock).render()

    assert content_type == CONTENT_TYPE_LATEST
    assert content_type.startswith("text/plain")
    assert b"# TYPE rotator_rotations_total counter" in payload


def test_no_created_series_are_exported(clock: FakeClock) -> None:
    """Counters and histograms export no ``_created`` sample (each a series of its own)."""
    metrics = Metrics(clock)
    metrics.rotation_finished("db-password", "aws-secretsmanager", "succeeded", 1.5)
    metrics.provider_request("aws-secretsmanager", "PutSecretValue", "ok")
    metrics.config_reload("succeeded")
    metrics.alert("rotation-failed", "sent")
    payload, _ = metrics.render()
    text = payload.decode()

    assert "rotator_rotations_total{" in text  # the counters themselves are there
    assert "rotator_rotation_duration_seconds_count{" in text
    assert [line for line in text.splitlines() if "_created" in line] == []
    # Left out of rotator's registry only: the library's other users keep theirs.
    other = CollectorRegistry()
    Counter("embedder_events", "An embedder's own counter.", registry=other).inc()
    assert b"embedder_events_created" in generate_latest(other)


def test_per_secret_gauges_written_directly_parse_back_exactly() -> None:
    """The per-secret families, written as text without the client library, read back through
    its parser: every value, and names with a quote, a backslash and a newline escaped."""
    from rotator.service.metrics import SecretGauges

    clock = FakeClock()
    metrics = Metrics(clock)
    now = clock().timestamp()
    odd = 'team "a"\\b\nc'
    metrics.observe_secrets(
        {
            "db-password": SecretGauges(now - 90.5, now + 3600.25, None),
            odd: SecretGauges(None, now + 7, now + 1e-3),
        },
        policies=2,
        needs_attention=1,
    )
    assert _by_secret(metrics, "rotator_secret_age_seconds") == {"db-password": 90.5}
    assert _by_secret(metrics, "rotator_secret_next_rotation_timestamp_seconds") == {
        "db-password": now + 3600.25,
        odd: now + 7,
    }
    assert _by_secret(metrics, "rotator_grace_deadline_timestamp_seconds") == {odd: now + 1e-3}
    assert _values(metrics, "rotator_policies") == {(): 2}
    chunks, content_type = metrics.render_chunks()
    assert b"".join(chunks) == metrics.render()[0] and content_type == CONTENT_TYPE_LATEST
