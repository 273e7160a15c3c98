"""Rotations against a provider that throttles: moto_server behind a per-service request quota.

The CLI runs as a subprocess with ``AWS_ENDPOINT_URL`` pointing at a
:class:`~tests.throttle.ThrottlingProxy` in front of the session's
moto_server. Secrets Manager gets a quota of ``QUOTA`` requests a second,
several times below what ``rotator run --once`` sends unhindered on loopback,
so throttling is certain; every rotation must still succeed, and the
throughput the provider lets through must stay near the quota. The checks
read moto directly (not through the proxy), always naming the version
stage: moto's default read is stale after a label move.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.retries.standard import RetryContext, ThrottlingErrorDetector

from providers.aws.errors import THROTTLING_CODES
from tests.e2e.conftest import Completed, Rotator, client, unmeasured
from tests.throttle import ThrottlingProxy, TokenBucket

SECRETS = 30
#: Secrets Manager requests a second the proxy lets through (bursts of as many).
QUOTA = 20
#: rotator's own limits for the second test: together 90% of the quota, so
#: even the client's initial bursts (one second's worth each) fit the proxy's.
CLIENT_WRITES = 7
CLIENT_READS = 11


@pytest.fixture
def proxy(aws: dict[str, str]) -> Iterator[ThrottlingProxy]:
    """A throttling proxy in front of the freshly reset moto_server."""
    with ThrottlingProxy(aws["AWS_ENDPOINT_URL"], {"secretsmanager": QUOTA}) as running:
        yield running


def _seed(config: Path) -> dict[str, tuple[str, str]]:
    """Create SECRETS due secrets and their policy; return name -> (version id, value)."""
    sm = client("secretsmanager")
    lines = [
        "defaults: {schedule: {every: 1d}, grace: 1h}",
        "secrets:",
    ]
    seeded: dict[str, tuple[str, str]] = {}
    for i in range(SECRETS):
        name = f"bulk/s{i:02d}"
        value = secrets.token_urlsafe(18)
        created = sm.create_secret(Name=name, SecretString=value)
        seeded[name] = (created["VersionId"], value)
        lines.append(
            f"  - {{name: {name}, store: {{provider: aws-secretsmanager, secret_id: {name}}}, "
            "issuer: {kind: random, length: 24}}"
        )
    config.write_text("\n".join(lines) + "\n")
    return seeded


def _run(
    cli: Rotator, proxy: ThrottlingProxy, *, concurrency: int, rate_limits: str = ""
) -> Completed:
    """Run ``rotator run --once --json`` through the proxy, two days after seeding."""
    cli.env = {
        **cli.env,
        "AWS_ENDPOINT_URL": proxy.url,
        # Empty: rotator's built-in limits, which are above the proxy's quota.
        "ROTATOR_RATE_LIMITS": rate_limits,
        # Let every worker talk to Secrets Manager (the default caps one provider at 4).
        "ROTATOR_CONCURRENCY": f"aws-secretsmanager={concurrency}",
    }
    # Unmeasured: the tests time rotator's pace, which the coverage tracer slows
    # below the quota at concurrency 1 (the proxy would then never throttle).
    with unmeasured():
        return cli(
            "run",
            "--once",
            "--json",
            "--concurrency",
            str(concurrency),
            now=datetime.now(UTC) + timedelta(days=2),
        )


def _not_rotated(seeded: dict[str, tuple[str, str]]) -> list[str]:
    """Return the names whose AWSCURRENT is not a new value with the seed as AWSPREVIOUS.

    Only names are returned, so a failing assertion never shows a value.
    """
    sm = client("secretsmanager")
    wrong = []
    for name, (initial_id, initial_value) in seeded.items():
        current = sm.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")
        previous = sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")
        if not (
            current["VersionId"] != initial_id
            and len(current["SecretString"]) == 24
            and current["SecretString"] != initial_value
            and previous["VersionId"] == initial_id
            and previous["SecretString"] == initial_value
        ):
            wrong.append(name)
    return wrong


def _assert_all_rotated(result: Completed, seeded: dict[str, tuple[str, str]]) -> None:
    assert result.code == 0, result.stderr[-4000:]
    outcomes = {o["secret"]: o for o in result.json()}
    # Every secret must be reported: one left out of the summary was skipped in silence.
    missing = sorted(set(seeded) - set(outcomes))
    assert not missing, f"left out of the run's summary (and exit 0): {missing}"
    # rotator's messages name error codes and request ids, never a value.
    failed = {
        name: o["message"]
        for name, o in outcomes.items()
        if (o["result"], o["state"]) != ("ok", "grace")
    }
    assert not failed, failed
    assert _not_rotated(seeded) == []


def _throughput(proxy: ThrottlingProxy, service: str) -> tuple[int, float]:
    """Return the requests let through to ``service`` and the seconds they spanned."""
    admitted = proxy.admitted_at(service)
    return len(admitted), admitted[-1] - admitted[0]


@pytest.mark.e2e
def test_proxy_answers_beyond_the_quota_as_aws_throttles(aws: dict[str, str]) -> None:
    """Past its quota the proxy answers each service with the error botocore and rotator
    treat as throttling."""
    # A clock that never moves: one token per service, never refilled.
    limits = {"secretsmanager": 1, "iam": 1, "sts": 1, "apigateway": 1}
    no_retry = Config(retries={"mode": "standard", "total_max_attempts": 1})
    calls: dict[str, tuple[str, int, Any]] = {
        "secretsmanager": ("ThrottlingException", 400, lambda c: c.list_secrets()),
        "iam": ("Throttling", 400, lambda c: c.list_users()),
        "sts": ("Throttling", 400, lambda c: c.get_caller_identity()),
        "apigateway": ("TooManyRequestsException", 429, lambda c: c.get_api_keys()),
    }
    with ThrottlingProxy(aws["AWS_ENDPOINT_URL"], limits, burst=1, clock=lambda: 0.0) as throttling:
        for service, (code, status, call) in calls.items():
            api = client(service, endpoint_url=throttling.url, config=no_retry)
            call(api)
            with pytest.raises(ClientError) as raised:
                call(api)
            response = raised.value.response
            assert response["Error"]["Code"] == code, service
            assert response["ResponseMetadata"]["HTTPStatusCode"] == status, service
            context = RetryContext(attempt_number=1, parsed_response=response)
            assert ThrottlingErrorDetector(None).is_throttling_error_from_context(context)
            assert code in THROTTLING_CODES
        forwarded, throttled = throttling.forwarded(), throttling.throttled()
    assert forwarded == {
        ("secretsmanager", "ListSecrets"): 1,
        ("iam", "ListUsers"): 1,
        ("sts", "GetCallerIdentity"): 1,
        ("apigateway", "GET /apikeys"): 1,
    }
    assert throttled == forwarded


@pytest.mark.e2e
def test_token_bucket_refills_at_its_rate() -> None:
    """The proxy's bucket lets a burst through, then one request per 1/rate seconds."""
    now = [0.0]
    bucket = TokenBucket(4, clock=lambda: now[0])
    assert [bucket.admit() for _ in range(5)] == [True] * 4 + [False]
    now[0] += 0.2
    assert bucket.admit() is False, "a refused request must not count, nor 0.2 s make a token"
    now[0] += 0.05
    assert [bucket.admit(), bucket.admit()] == [True, False]
    now[0] += 100
    assert sum(bucket.admit() for _ in range(10)) == 4


@pytest.mark.e2e
@pytest.mark.parametrize("concurrency", [1, 8])
def test_every_rotation_succeeds_under_throttling(
    rotator_cli: Rotator, proxy: ThrottlingProxy, concurrency: int
) -> None:
    """With Secrets Manager throttled well below rotator's pace, every due secret rotates and
    the throughput settles near the quota."""
    seeded = _seed(rotator_cli.config)

    result = _run(rotator_cli, proxy, concurrency=concurrency)

    throttled = proxy.total(proxy.throttled(), "secretsmanager")
    forwarded, seconds = _throughput(proxy, "secretsmanager")
    print(
        f"concurrency {concurrency}: {forwarded} let through in {seconds:.1f}s, "
        f"{throttled} throttled"
    )
    _assert_all_rotated(result, seeded)
    assert throttled > 0, "the proxy never throttled: the quota does not bite"
    # The bucket caps what gets through (its burst, then QUOTA a second) ...
    assert forwarded <= QUOTA + QUOTA * seconds + 1
    # ... and backing off must not waste most of it.
    assert forwarded / seconds >= QUOTA / 2, f"{forwarded / seconds:.1f} requests/s"


@pytest.mark.e2e
def test_client_rate_limits_under_the_quota_avoid_throttling(
    rotator_cli: Rotator, proxy: ThrottlingProxy
) -> None:
    """ROTATOR_RATE_LIMITS under the provider's quota paces rotator so it is seldom throttled."""
    seeded = _seed(rotator_cli.config)

    result = _run(
        rotator_cli,
        proxy,
        concurrency=8,
        rate_limits=f"secretsmanager.write={CLIENT_WRITES},secretsmanager.read={CLIENT_READS}",
    )

    throttled = proxy.total(proxy.throttled(), "secretsmanager")
    forwarded, seconds = _throughput(proxy, "secretsmanager")
    print(f"client-limited: {forwarded} let through in {seconds:.1f}s, {throttled} throttled")
    _assert_all_rotated(result, seeded)
    paced = CLIENT_WRITES + CLIENT_READS
    # rotator's own buckets did the pacing: their bursts, then their rates.
    assert forwarded <= paced + paced * seconds + 1
    # Timing jitter between rotator and the proxy may cost a request or two.
    assert throttled <= 3, throttled


def test_a_throttling_answer_from_aws_slows_rotators_pace(
    proxy: ThrottlingProxy, aws: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first ThrottlingException cuts the write pace below the quota's ceiling; it is counted.

    Through the proxy (QUOTA requests a second) rotator's own client, with
    its pace not waiting (an injected sleep), sends writes faster than the
    quota: the answers it is throttled with reach its bucket.
    """
    from providers.aws.clients import RATE_LIMITS
    from providers.aws.clients import client as aws_client
    from providers.metering import bucket
    from rotator.adapters import Runtime
    from tests.conftest import FakeClock

    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    monkeypatch.delenv("ROTATOR_RATE_LIMITS", raising=False)
    name = "pace/" + secrets.token_hex(4)
    client("secretsmanager").create_secret(Name=name, SecretString="x" * 20)
    fake = FakeClock()
    runtime = Runtime(clock=fake, sleep=fake.sleep)
    sm = aws_client(runtime, "secretsmanager", aws.get("AWS_DEFAULT_REGION", "us-east-1"))
    region = sm.meta.region_name
    for _ in range(3 * QUOTA):
        # Throttled past botocore's retries, maybe: what matters is the bucket.
        with contextlib.suppress(ClientError):
            sm.put_secret_value(SecretId=name, SecretString=secrets.token_hex(12))
        if proxy.total(proxy.throttled(), "secretsmanager"):
            break
    assert proxy.total(proxy.throttled(), "secretsmanager") > 0
    paced = bucket(runtime, "secretsmanager.write", region, RATE_LIMITS["secretsmanager.write"])
    assert paced.throttles >= 1 and paced.cuts >= 1
    assert paced.rate < paced.ceiling == RATE_LIMITS["secretsmanager.write"]
