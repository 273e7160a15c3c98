"""boto3 clients for the AWS adapters: built once per service and region, then reused.

One ``boto3.Session`` is kept per :attr:`rotator.adapters.roles.Runtime.cache`
(sessions are not thread-safe to build clients from, so a lock guards it),
and one client per (service, region) in the same cache; clients themselves
are thread-safe. Every client uses botocore's ``standard`` retry mode.

Every client (the cached ones, and the uncached ones signing with a freshly
minted key) carries two botocore event handlers:

- ``before-call`` takes a token from the call's rate limit
  (:data:`QUOTAS`, per Region or account; see :func:`quota`), so a
  large run is paced at the published quotas, divided among the runs on
  the journal;
- ``needs-retry``, which botocore emits after every HTTP attempt (retries
  included), reports the attempt to ``runtime.on_request`` (see
  :mod:`providers.metering`), and a throttled one to its rate limit, whose
  pace it cuts (it grows back while AWS is quiet: the adaptive pacing of
  :mod:`rotator.adapters.ratelimit`). The provider label is ``aws-`` and the boto3
  service name (``aws-secretsmanager``, ``aws-iam``, ``aws-apigateway``,
  ``aws-sts``), whichever adapter made the call; the operation is the API
  name (``PutSecretValue``). A throttled attempt that botocore then retries
  is counted as ``throttled``, the retry on its own.

Rate limits (calls per second, per Region; IAM and STS per account: the
declarations of :data:`QUOTAS`), overridden with ``ROTATOR_RATE_LIMITS``
(e.g. ``secretsmanager.write=20,apigateway=2``; ``0`` turns one off):
``secretsmanager.write`` (PutSecretValue, UpdateSecretVersionStage,
UpdateSecret and the replication calls) 50, ``secretsmanager.read`` (every
other Secrets Manager call) 1000, ``apigateway`` 5, ``iam`` 10, ``sts`` 50:
each a ceiling, divided by the live runs sharing the journal, that the pace
starts at and returns to, cut while AWS throttles. A throttled attempt also
takes a token before botocore retries it, so retries are paced too.

Credentials, region and endpoint come from boto3's own chain, never from a
policy: environment, shared config, SSO, IRSA, instance profile. That chain
already honours ``AWS_ENDPOINT_URL`` and ``AWS_ENDPOINT_URL_<SERVICE>`` (how
the sandbox points everything at moto_server), so nothing here reimplements
it.

boto3 is imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, overload

from providers.aws.errors import attempt_outcome, aws_errors
from providers.metering import report, take, throttled
from rotator.adapters import USER_AGENT, Quota, Runtime, limits, rates, redact

if TYPE_CHECKING:
    import boto3
    from botocore.config import Config
    from mypy_boto3_apigateway import APIGatewayClient
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sts import STSClient

Service = Literal["secretsmanager", "iam", "apigateway", "sts"]

_SESSION_KEY = "aws:session"
_LOCK_KEY = "aws:lock"

#: Seconds to wait for a connection and for an answer, per attempt.
CONNECT_TIMEOUT = 10
READ_TIMEOUT = 30

#: What AWS meters a quota by: each Region of an account apart, or the account whole.
REGIONAL = "account and Region"
ACCOUNT = "account"

#: The quotas the AWS adapters pace their calls under, each named after its
#: boto3 service (``secretsmanager.write`` is Secrets Manager's), at most the
#: published quota (IAM publishes none). The runs on one journal divide each
#: (rotator.journal.shares), so together they stay at it; the pace adapts
#: beneath it: a throttling answer (the account's other writers, a retry
#: storm) cuts it, quiet time gives it back (rotator.adapters.ratelimit).
#: Measured in docs/performance.md: a tenth below the quota left a tenth of it
#: unused and avoided no throttling.
QUOTAS = (
    Quota(
        "secretsmanager.write",
        50.0,
        REGIONAL,
        frozenset(
            {
                "PutSecretValue",
                "UpdateSecret",
                "UpdateSecretVersionStage",
                "RemoveRegionsFromReplication",
                "ReplicateSecretToRegions",
                "StopReplicationToReplica",
            }
        ),
        "50 per second combined, not adjustable (AWS Secrets Manager quotas)",
    ),
    Quota(
        "secretsmanager.read",
        1000.0,
        REGIONAL,
        documented="DescribeSecret and GetSecretValue: 10,000 per second combined "
        "(AWS Secrets Manager quotas)",
    ),
    Quota(
        "apigateway",
        5.0,
        REGIONAL,
        documented="CreateApiKey, DeleteApiKey: 5 requests per second per account, "
        "not adjustable (Amazon API Gateway quotas)",
    ),
    Quota("iam", 10.0, ACCOUNT, documented="none published (IAM and AWS STS quotas)"),
    Quota(
        "sts",
        50.0,
        ACCOUNT,
        documented="see IAM and AWS STS quotas (rotator calls GetCallerIdentity only)",
    ),
)
#: Calls per second by quota name: the default of each of :data:`QUOTAS`.
RATE_LIMITS = rates(QUOTAS)


def _service(declared: Quota) -> str:
    """Return the boto3 service whose calls a quota counts (the name up to its first dot)."""
    return declared.name.partition(".")[0]


_DECLARED = {q.name: q for q in QUOTAS}
#: The quotas of each service, as declared.
_OF_SERVICE: dict[str, tuple[Quota, ...]] = {
    service: tuple(q for q in QUOTAS if _service(q) == service)
    for service in dict.fromkeys(_service(q) for q in QUOTAS)
}


def quota(service: str, operation: str) -> str:
    """Return the name of the rate limit an API call counts against.

    The quota of the service whose ``calls`` name the operation, else the one
    of the service that names none (every other call); a service with no
    declared quota is its own name, which no limit paces.
    """
    own = _OF_SERVICE.get(service, ())
    named = next((q for q in own if operation in q.calls), None)
    rest = next((q for q in own if not q.calls), None)
    found = named or rest
    return found.name if found is not None else service


def _scope(name: str, region: str | None) -> str:
    """Return where a quota's calls are paced: the client's Region, or the account (``""``)."""
    declared = _DECLARED.get(name)
    return "" if declared is not None and declared.scope == ACCOUNT else region or ""


def _throttle(runtime: Runtime, service: str, region: str | None) -> Callable[..., None]:
    """Return a ``before-call`` hook taking a token from the call's bucket."""
    configured = limits(RATE_LIMITS)

    def before_call(model: Any, **_: Any) -> None:
        name = quota(service, model.name)
        take(runtime, configured, name, _scope(name, region))

    return before_call


def _observe(runtime: Runtime, service: str, region: str | None) -> Callable[..., None]:
    """Return a ``needs-retry`` hook reporting each attempt, and slowing down when throttled.

    It returns ``None`` so that botocore's own retry handler still decides
    whether (and how long after) to retry.
    """
    provider = f"aws-{service}"
    configured = limits(RATE_LIMITS)

    def needs_retry(
        response: Any = None,
        caught_exception: BaseException | None = None,
        operation: Any = None,
        **_: Any,
    ) -> None:
        name = getattr(operation, "name", None)
        name = name if isinstance(name, str) else "unknown"
        outcome = attempt_outcome(response, caught_exception)
        if outcome == "throttled":
            # Slow down, and pace the retry botocore is about to send: a
            # before-call token covers the first attempt only.
            paced = quota(service, name)
            throttled(runtime, configured, paced, _scope(paced, region))
            take(runtime, configured, paced, _scope(paced, region))
        report(runtime, provider, name, outcome)

    return needs_retry


def _instrument(runtime: Runtime, service: str, made: Any) -> None:
    """Register the rate limit and the request observer on a new client."""
    service_id = made.meta.service_model.service_id.hyphenize()
    made.meta.events.register(
        f"before-call.{service_id}", _throttle(runtime, service, made.meta.region_name)
    )
    made.meta.events.register(
        f"needs-retry.{service_id}", _observe(runtime, service, made.meta.region_name)
    )


def _own_keys(session: Any) -> Callable[..., None]:
    """Return a ``before-call`` hook registering the keys rotator's own identity signs with.

    Best effort: the secret key and session token of the shared session's
    credentials (renewed ones included, as an assumed role's are) are
    registered with :mod:`rotator.output.redact`, so an echo of them is masked.
    """
    try:
        credentials = session.get_credentials()
    except Exception:  # noqa: BLE001 (the calls themselves report broken credentials)
        credentials = None
    seen: set[str] = set()

    def before_call(**_: Any) -> None:
        if credentials is None:
            return
        try:
            frozen = credentials.get_frozen_credentials()
        except Exception:  # noqa: BLE001 (signing the call reports it)
            return
        for text in (frozen.secret_key, frozen.token):
            if text and text not in seen:
                seen.add(text)
                redact.register(text)

    return before_call


def client_config() -> Config:
    """Return the botocore configuration every adapter client uses."""
    from botocore.config import Config

    return Config(
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        user_agent_extra=USER_AGENT,
    )


def _lock(runtime: Runtime) -> threading.Lock:
    lock: threading.Lock = runtime.cache.setdefault(_LOCK_KEY, threading.Lock())
    return lock


def _session(runtime: Runtime) -> boto3.Session:
    """Return the cache's boto3 session, creating it on first use (caller holds the lock)."""
    import boto3

    session = runtime.cache.get(_SESSION_KEY)
    if session is None:
        session = boto3.Session()
        runtime.cache[_SESSION_KEY] = session
    assert isinstance(session, boto3.Session)
    return session


@overload
def client(
    runtime: Runtime,
    service: Literal["secretsmanager"],
    region: str | None = None,
    **credentials: str,
) -> SecretsManagerClient: ...


@overload
def client(
    runtime: Runtime, service: Literal["iam"], region: str | None = None, **credentials: str
) -> IAMClient: ...


@overload
def client(
    runtime: Runtime, service: Literal["apigateway"], region: str | None = None, **credentials: str
) -> APIGatewayClient: ...


@overload
def client(
    runtime: Runtime, service: Literal["sts"], region: str | None = None, **credentials: str
) -> STSClient: ...


def client(
    runtime: Runtime, service: Service, region: str | None = None, **credentials: str
) -> Any:
    """Return the client for ``service`` in ``region`` (``None``: the default chain's).

    Without ``credentials`` the client is cached in ``runtime.cache`` and
    shared. With ``credentials`` (``aws_access_key_id``,
    ``aws_secret_access_key``, optionally ``aws_session_token``) a fresh,
    uncached client signs with exactly those keys, against the same endpoint
    and region as the cached client; see :func:`client_with_keys`.

    Raises:
        PermanentError: no region can be found, or the profile is broken.
    """
    if credentials:
        return client_with_keys(runtime, service, region, **credentials)
    key = f"aws:client:{service}:{region or ''}"
    cached = runtime.cache.get(key)
    if cached is not None:
        return cached
    with _lock(runtime):
        cached = runtime.cache.get(key)
        if cached is None:
            with aws_errors("aws", f"create {service} client"):
                shared = _session(runtime)
                cached = shared.client(service, region_name=region, config=client_config())
            _instrument(runtime, service, cached)
            service_id = cached.meta.service_model.service_id.hyphenize()
            cached.meta.events.register(f"before-call.{service_id}", _own_keys(shared))
            runtime.cache[key] = cached
    return cached


def client_with_keys(
    runtime: Runtime,
    service: Service,
    region: str | None,
    *,
    aws_access_key_id: str,
    aws_secret_access_key: str,
    aws_session_token: str | None = None,
) -> Any:
    """Return a new, uncached client that signs with the given access key.

    It talks to the same endpoint and region as the cached client of the
    same service (so a key is checked where it was minted, moto_server
    included). Used to prove a freshly minted IAM key works; the keys are
    held only by the returned client. Its calls are paced and reported like
    those of the cached clients.

    Raises:
        PermanentError: no region can be found, or the profile is broken.
    """
    import boto3

    template = client(runtime, service, region)
    with aws_errors("aws", f"create {service} client"):
        # A session of its own (never the shared one): it holds only these keys,
        # and building it needs no lock since no other thread sees it.
        session = boto3.Session(
            aws_access_key_id=aws_access_key_id,
            aws_secret_access_key=aws_secret_access_key,
            aws_session_token=aws_session_token,
            region_name=template.meta.region_name,
        )
        keyed = session.client(
            service,
            region_name=template.meta.region_name,
            endpoint_url=template.meta.endpoint_url,
            config=client_config(),
        )
    _instrument(runtime, service, keyed)
    return keyed
