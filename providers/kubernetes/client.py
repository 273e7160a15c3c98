"""One ``kubernetes`` API client per engine and kubeconfig context, and every request through it.

Credentials come from the environment, never from a policy file:

- in a pod (``KUBERNETES_SERVICE_HOST`` is set) and with no ``context`` in the
  policy: the pod's service account, through the official client's
  ``config.load_incluster_config()`` (which also re-reads the projected token
  when it rotates);
- otherwise a kubeconfig, through ``config.load_kube_config()``: the files
  ``KUBECONFIG`` names (a ``:``-separated list, merged as kubectl does), else
  ``~/.kube/config``, at the policy's ``context`` or the file's current one.
  The kubeconfig is never written back (``persist_config=False``), so a
  refreshed token of an auth plugin stays in memory.

A policy that names a ``context`` always uses a kubeconfig, even in a pod: a
context is a kubeconfig notion, and naming one says which cluster is meant.

A :class:`KubeSession` is built once per runtime and context and kept in
``runtime.cache`` (guarded by a lock: the engine runs secrets on threads; the
client's urllib3 pool is itself thread-safe). Every request goes through
:meth:`KubeSession.call`, which

- takes a token from the ``kubernetes`` rate limit first: 20 requests a
  second per API server by default (a rotation makes two to four requests
  per target and workload), well inside what the API server's
  priority-and-fairness gives one client, so a large run is slowed down
  rather than throttled with 429s (``ROTATOR_RATE_LIMITS=kubernetes=N``
  changes it; ``0`` turns it off);
- sends it with a timeout (connect 10 s, read 30 s: the client has none by
  default, and a hung API server must not hold an engine thread forever),
  once: urllib3's own retries are turned off (see :func:`build_api_client`),
  so every attempt is reported and every wait is the engine's;
- reports it to ``runtime.on_request`` as provider ``kubernetes`` with a
  fixed operation name (:data:`OPERATIONS`) and its outcome;
- translates errors (:func:`providers.kubernetes.errors.kubernetes_errors`);
- returns the answer's JSON as plain dicts. Responses are read raw
  (``_preload_content=False``) rather than as the client's model objects: the
  generated models and their (de)serialisers differ between client
  releases, the JSON does not.

Patch bodies are plain dicts, which every client release from 29 on sends as
``application/strategic-merge-patch+json`` (``kubectl``'s default patch type
too).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

from providers.kubernetes.errors import PROVIDER, kubernetes_errors, request_outcome, sdk
from providers.metering import answered, report, take
from rotator.adapters import Quota, Runtime, limits, rates, redact
from rotator.errors import PermanentError, ProviderError

#: Calls per second per API server (the ``kubernetes`` quota of
#: ``ROTATOR_RATE_LIMITS``), every request counted.
KUBERNETES = Quota(
    "kubernetes",
    20.0,
    "API server",
    documented="none fixed: API Priority and Fairness shares the server "
    "(Kubernetes API Priority and Fairness)",
)
QUOTAS = (KUBERNETES,)
RATE_LIMITS = rates(QUOTAS)
QUOTA = KUBERNETES.name
#: (connect, read) seconds for every request.
REQUEST_TIMEOUT = (10.0, 30.0)

#: The operation names reported to ``runtime.on_request``: a fixed set.
OPERATIONS = frozenset(
    {
        "namespaces.get",
        "secrets.get",
        "secrets.create",
        "secrets.patch",
        "secrets.delete",
        "deployments.get",
        "deployments.patch",
        "statefulsets.get",
        "statefulsets.patch",
        "daemonsets.get",
        "daemonsets.patch",
        "selfsubjectaccessreviews.create",
    }
)

_LOCK_KEY = "kubernetes:session-lock"


class KubeSession:
    """The API client of one cluster identity, and how every request to it is sent."""

    def __init__(self, runtime: Runtime, api_client: Any) -> None:
        client = sdk("kubernetes.client")
        self.runtime = runtime
        self.api_client = api_client
        self.host = str(api_client.configuration.host)
        self.core = client.CoreV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.authorization = client.AuthorizationV1Api(api_client)
        # Read once, when the session is built: a malformed ROTATOR_RATE_LIMITS
        # is a ConfigError before any request, not in the middle of one.
        self.limits = limits(RATE_LIMITS)

    def call(
        self,
        operation: str,
        target: str,
        method: Callable[..., Any],
        *args: Any,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Pace, send, report and translate one request; return its JSON body as a dict.

        ``operation`` is one of :data:`OPERATIONS`; ``target`` names what is
        addressed (``secrets payments/payments-db``), for error messages.
        """
        assert operation in OPERATIONS, operation
        take(self.runtime, self.limits, QUOTA, self.host)
        try:
            with kubernetes_errors(operation, target):
                try:
                    response = method(
                        *args,
                        _preload_content=False,
                        _request_timeout=REQUEST_TIMEOUT,
                        **kwargs,
                    )
                except Exception as exc:
                    answered(
                        self.runtime,
                        PROVIDER,
                        operation,
                        request_outcome(exc),
                        limits=self.limits,
                        quota=QUOTA,
                        scope=self.host,
                    )
                    raise
                report(self.runtime, PROVIDER, operation, "ok")
                return _json_body(response)
        except ProviderError as error:
            # The translated SDK exception was emptied, but some (a pydantic
            # validation error) render their text from internal state; drop
            # the link so nothing walking the chain can print it.
            error.__context__ = None
            raise


def _json_body(response: Any) -> dict[str, Any]:
    """Read a raw urllib3 response to the end and return its JSON object (``{}`` if none)."""
    try:
        raw = response.data
    finally:
        release = getattr(response, "release_conn", None)
        if callable(release):
            release()
    if not raw:
        return {}
    parsed = json.loads(raw)
    if not isinstance(parsed, dict):
        raise PermanentError(
            "the API server answered with something other than a JSON object",
            provider=PROVIDER,
        )
    return parsed


def build_api_client(context: str | None, environ: Mapping[str, str]) -> Any:
    """Load the credentials (in-cluster or kubeconfig, see the module doc) into a new ApiClient.

    Raises:
        PermanentError: no usable configuration (no token file in a pod, no
            kubeconfig, an unknown context).
    """
    client = sdk("kubernetes.client")
    config = sdk("kubernetes.config")
    configuration = client.Configuration()
    in_cluster = context is None and bool(environ.get("KUBERNETES_SERVICE_HOST"))
    with kubernetes_errors("config.load_incluster" if in_cluster else "config.load_kubeconfig"):
        if in_cluster:
            config.load_incluster_config(client_configuration=configuration)
        else:
            # Named explicitly: the client reads KUBECONFIG once, when it is
            # first imported, and rotator's environment is read at each build.
            config.load_kube_config(
                config_file=environ.get("KUBECONFIG") or "~/.kube/config",
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
    # No retries inside urllib3: it would honour a 503's or 429's Retry-After
    # on a GET by sleeping on the wall clock, out of the runtime's sleeper and
    # unseen by metering. The engine retries TransientErrors itself, with
    # backoff and the delay the answer asked for. (urllib3 still checks a
    # pooled connection is alive before reusing it.)
    configuration.retries = False
    register_own_credentials(configuration)
    return client.ApiClient(configuration)


def register_own_credentials(configuration: Any) -> None:
    """Register the token or password rotator's cluster identity signs in with (best effort).

    An in-cluster token is read again from its file as it rotates; the one
    loaded now is registered, and the client's logger is held anyway.
    """
    found: list[Any] = [getattr(configuration, "password", None)]
    api_key = getattr(configuration, "api_key", None)
    if isinstance(api_key, Mapping):
        for text in api_key.values():
            found.append(text)
            if isinstance(text, str):
                found.append(text.rpartition(" ")[2])  # "Bearer TOKEN"
    for text in found:
        if isinstance(text, str) and text:
            redact.register(text)


def session(
    runtime: Runtime, context: str | None, environ: Mapping[str, str] | None = None
) -> KubeSession:
    """Return the :class:`KubeSession` for ``context``, built once per runtime (kept in its cache).

    Raises:
        PermanentError: no usable Kubernetes configuration.
    """
    env = os.environ if environ is None else environ
    key = f"kubernetes:session:{context or ''}"
    cached = runtime.cache.get(key)
    if isinstance(cached, KubeSession):
        return cached
    # dict.setdefault is atomic, so two threads racing here still share one lock.
    lock: threading.Lock = runtime.cache.setdefault(_LOCK_KEY, threading.Lock())
    with lock:
        cached = runtime.cache.get(key)
        if not isinstance(cached, KubeSession):
            cached = KubeSession(runtime, build_api_client(context, env))
            runtime.cache[key] = cached
    return cached
