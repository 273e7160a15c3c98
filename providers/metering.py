"""What every adapter does around each request to its provider: pace it, then report it.

Pacing: :func:`take` takes a token from the :class:`rotator.adapters.ratelimit.TokenBucket`
of one quota (``secretsmanager.write``, ``vault``, ``keyvault``...) and one
scope (a region, a Vault address, a vault host), waiting on
``runtime.sleep`` when the bucket is empty; :func:`throttled` tells that
bucket the provider said "slow down", which cuts its rate (it grows back
while the provider is quiet). Buckets live in ``runtime.pacing``, so every
client and every thread of an engine share them, each at this process's
share of the quota (the runs on one journal divide it).

Reporting: :func:`report` tells ``runtime.on_request`` how one HTTP request
(one attempt: a request an SDK retries is reported once per attempt) ended,
as one of :data:`rotator.adapters.roles.OUTCOMES`:

- ``ok``: the provider answered 2xx;
- ``throttled``: the provider said "slow down" (HTTP 429, or an AWS
  throttling error code);
- ``transient``: a 5xx but 501, 408, a timeout or a lost connection;
- ``permanent``: any other answer (a redirect, which no adapter follows, or a
  501, which no retry changes), **including an expected 404** (a probe
  for a version that does not exist). The outcome describes the provider's
  answer, not whether rotator minded it: it is the class of error the answer
  would raise (``NotFoundError`` is a ``PermanentError``), so the counter
  agrees with the errors the adapters translate.

``operation`` is an API call name from a fixed set per provider
(``PutSecretValue``, ``kv.read``, ``secrets.get``), never a path, an id or a
value, so the label set stays bounded and leaks nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from rotator.adapters import Runtime, TokenBucket

log = logging.getLogger(__name__)


def bucket(runtime: Runtime, quota: str, scope: str, rate: float) -> TokenBucket:
    """Return the shared bucket of ``quota`` for ``scope``, created at ``rate`` on first use."""
    return runtime.pacing.bucket(quota, scope, rate, sleep=runtime.sleep)


def take(runtime: Runtime, limits: Mapping[str, float], quota: str, scope: str) -> float:
    """Take one token of ``quota`` for ``scope``, waiting if needed; return the seconds waited.

    ``limits`` maps quota names to calls per second (see
    :func:`rotator.adapters.ratelimit.limits`); a quota absent from it or set to 0 is
    not limited.
    """
    rate = limits.get(quota, 0.0)
    if rate <= 0:
        return 0.0
    return runtime.pacing.take(quota, scope, rate, sleep=runtime.sleep)


def throttled(runtime: Runtime, limits: Mapping[str, float], quota: str, scope: str) -> None:
    """Tell the bucket of ``quota`` for ``scope`` that the provider throttled a call: slow down.

    A quota not limited (absent from ``limits``, or 0) has no bucket to slow.
    """
    rate = limits.get(quota, 0.0)
    if rate > 0:
        bucket(runtime, quota, scope, rate).throttled()


def answered(
    runtime: Runtime,
    provider: str,
    operation: str,
    outcome: str,
    *,
    limits: Mapping[str, float],
    quota: str,
    scope: str,
) -> None:
    """Report one paced request (:func:`report`); a throttled one also slows its quota's pace."""
    if outcome == "throttled":
        throttled(runtime, limits, quota, scope)
    report(runtime, provider, operation, outcome)


def report(runtime: Runtime, provider: str, operation: str, outcome: str) -> None:
    """Tell ``runtime.on_request`` about one request; an observer that fails is only logged.

    Counting is a side channel: a broken observer must not turn a request
    that succeeded (a write that landed) into a failed step.
    """
    try:
        runtime.on_request(provider, operation, outcome)
    except Exception as exc:  # noqa: BLE001 (whatever the observer raises)
        log.warning(
            "the request observer failed for %s %s (%s): %s",
            provider,
            operation,
            outcome,
            type(exc).__name__,
        )
