"""A small Kubernetes API server for tests: real HTTP, the REST paths the Secret target uses.

No cluster can be run on the machines this project is built on, so the project
carries this stand-in. It is a stdlib ``ThreadingHTTPServer`` on loopback
(plain HTTP) that answers like the API server does, closely enough that the
official ``kubernetes`` client, configured from a generated kubeconfig file,
cannot tell the difference. It imports nothing outside the standard library.

Usage::

    from rotator.sandbox.kubernetes.server import KubernetesEmulator, Rule

    with KubernetesEmulator() as kube:
        kube.add_namespace("payments")
        kube.put_secret("payments", "payments-db", {"user": "app"})
        kube.add_workload("deployment", "payments", "payments-api")
        os.environ["KUBECONFIG"] = str(kube.kubeconfig_path)
        kube.authorize_only(Rule(verbs={"get"}, resources={"secrets"}))
        kube.inject_fault(503, method="PATCH", count=1, retry_after=2)

From a shell, ``python -m rotator.sandbox.kubernetes.server [--port N]
[--namespace NS]...`` prints ``export KUBECONFIG=...`` and serves until
Ctrl-C or SIGTERM.

What is emulated
================

Paths: ``GET /api/v1/namespaces/{ns}``; ``GET``/``POST``
``/api/v1/namespaces/{ns}/secrets`` and ``GET``/``PUT``/``PATCH``/``DELETE``
``.../secrets/{name}``; ``GET``/``PATCH``/``PUT``
``/apis/apps/v1/namespaces/{ns}/{deployments,statefulsets,daemonsets}/{name}``;
``POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews``. Any other
path is 404 ``the server could not find the requested resource``; a known
path with another verb is 405.

Authentication: ``Authorization: Bearer <token>``; none or an unknown token
is 401 ``Unauthorized``. Authorization: every request is checked against an
allow-list of :class:`Rule` (verb, API group, resource, resource name), as
RBAC does; by default everything is allowed. A refusal is 403 with the API
server's message (``secrets "x" is forbidden: User "rotator" cannot patch
resource "secrets" in API group "" in the namespace "payments"``).
SelfSubjectAccessReviews answer from the same rules (``status.allowed``);
creating one is always allowed, as the default ``system:basic-user`` role
does for every authenticated user.

Errors are ``Status`` objects (``kind: Status``, ``status: Failure``,
``message``, ``reason``, ``details``, ``code``) with the API server's
messages: ``secrets "x" not found``, ``... already exists``, ``Operation
cannot be fulfilled on secrets "x": the object has been modified; please
apply your changes to the latest version and try again`` (409 ``Conflict``),
``namespaces "x" not found`` for a create in a missing namespace, 422
``Invalid`` for bad data keys, non-base64 values, or a change of an
``immutable`` Secret's data.

Objects carry ``uid``, ``creationTimestamp`` and a ``resourceVersion`` taken
from one counter (like etcd's revision), bumped only when an object really
changes (a no-op patch keeps it, as the API server does); workloads carry a
``generation`` bumped when their ``spec`` changes. Secrets: ``stringData``
is merged into ``data`` on every write and never stored; empty maps are
left out of answers.

Writes: ``POST`` (201), ``PUT`` (optional ``resourceVersion``
precondition), ``DELETE`` (``preconditions`` ``resourceVersion``/``uid`` in
the body; answers a ``Success`` Status), ``PATCH`` with
``application/strategic-merge-patch+json`` or
``application/merge-patch+json`` (RFC 7386: maps merge, ``null`` deletes; a
``metadata.resourceVersion`` in the patch is a precondition). Strategic merge
is served as a JSON merge patch: correct for maps such as ``data`` and
annotations, while lists are replaced rather than merged by key, and
``$patch``-style directives are refused (400). Other patch types
(``json-patch+json``, ``apply-patch+yaml``) are 415 ``UnsupportedMediaType``.
``?dryRun=All`` validates and answers without storing.

Test hooks: :meth:`KubernetesEmulator.inject_fault` (a status, a
``Retry-After``, for the next N matching requests), :attr:`requests` (every
request as received: method, path, query, content type, body),
:meth:`secret` and :meth:`workload` (the stored objects).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import copy
import json
import re
import shutil
import signal
import tempfile
import threading
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any

from rotator.sandbox.core.http import EmulatorHandler, EmulatorHTTPServer, LoopbackServer

JSON = dict[str, Any]

#: Workload resources served under ``/apis/apps/v1``, with their kinds.
WORKLOAD_KINDS = {
    "deployments": "Deployment",
    "statefulsets": "StatefulSet",
    "daemonsets": "DaemonSet",
}
_SINGULAR = {"deployment": "deployments", "statefulset": "statefulsets", "daemonset": "daemonsets"}
#: Patch media types served; any other is 415.
PATCH_TYPES = ("application/merge-patch+json", "application/strategic-merge-patch+json")
_DATA_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")

_NAMESPACE = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)$")
_SECRETS = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/secrets(?:/(?P<name>[^/]+))?$")
_WORKLOADS = re.compile(
    r"^/apis/apps/v1/namespaces/(?P<ns>[^/]+)/(?P<res>deployments|statefulsets|daemonsets)"
    r"(?:/(?P<name>[^/]+))?$"
)
_SSAR = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"

_VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
#: Status reason and message of an injected fault, by HTTP status (others: InternalError).
_FAULT_REASONS = {
    400: ("BadRequest", "injected fault: bad request"),
    401: ("Unauthorized", "Unauthorized"),
    403: ("Forbidden", "injected fault: forbidden"),
    404: ("NotFound", "injected fault: not found"),
    409: (
        "Conflict",
        "Operation cannot be fulfilled: the object has been modified; please apply your "
        "changes to the latest version and try again",
    ),
    422: ("Invalid", "injected fault: invalid"),
    429: ("TooManyRequests", "Too many requests, please try again later."),
    500: ("InternalError", "Internal error occurred: injected fault"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: ("Timeout", "the server was unable to return a response in the time allotted"),
}


def _now() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class Rule:
    """One allow rule, as in an RBAC Role: ``"*"`` in a set matches anything.

    ``names`` empty means every object; a rule with names never matches a
    request without one (a create, a list), as in RBAC.
    """

    verbs: frozenset[str] | set[str] = frozenset({"*"})
    resources: frozenset[str] | set[str] = frozenset({"*"})
    groups: frozenset[str] | set[str] = frozenset({"*"})
    names: frozenset[str] | set[str] = frozenset()

    def allows(self, verb: str, group: str, resource: str, name: str) -> bool:
        """Tell whether this rule lets ``verb`` on ``resource`` (named ``name``) through."""
        if not ({"*", verb} & set(self.verbs)):
            return False
        if not ({"*", group} & set(self.groups)):
            return False
        if not ({"*", resource} & set(self.resources)):
            return False
        return not self.names or name in self.names


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the emulator received it."""

    method: str
    path: str
    query: str
    content_type: str
    body: bytes
    authenticated: bool


class ApiError(Exception):
    """An error answer: a Kubernetes ``Status`` with ``code`` and ``reason``."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: JSON | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = dict(headers or {})

    def status(self) -> JSON:
        """Return the ``Status`` body the API server sends."""
        body: JSON = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def _qualified(resource: str, group: str) -> str:
    """Return ``secrets`` or ``deployments.apps``, as API messages name a resource."""
    return f"{resource}.{group}" if group else resource


def _details(resource: str, group: str, name: str) -> JSON:
    details: JSON = {"name": name, "kind": resource}
    if group:
        details["group"] = group
    return details


def not_found(resource: str, group: str, name: str) -> ApiError:
    """Return the API server's 404 for an object."""
    return ApiError(
        404,
        "NotFound",
        f'{_qualified(resource, group)} "{name}" not found',
        _details(resource, group, name),
    )


def conflict(resource: str, group: str, name: str, why: str) -> ApiError:
    """Return the API server's 409 ``Conflict`` (a failed precondition)."""
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {why}',
        _details(resource, group, name),
    )


def invalid(kind: str, name: str, cause: str) -> ApiError:
    """Return the API server's 422 ``Invalid``."""
    return ApiError(
        422, "Invalid", f'{kind} "{name}" is invalid: {cause}', {"name": name, "kind": kind}
    )


def _not_allowed() -> ApiError:
    """Return the API server's 405 for a verb a path does not serve."""
    return ApiError(
        405,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource",
        {},
    )


def bad_request(message: str) -> ApiError:
    """Return a 400 ``BadRequest``."""
    return ApiError(400, "BadRequest", message, {})


_MODIFIED = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7386 JSON merge patch: maps merge, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _directives(patch: Any) -> bool:
    """Tell whether a strategic merge patch uses ``$``-directives (not emulated)."""
    if isinstance(patch, dict):
        return any(str(k).startswith("$") or _directives(v) for k, v in patch.items())
    if isinstance(patch, list):
        return any(_directives(v) for v in patch)
    return False


@dataclass
class _Fault:
    """An injected error waiting for the requests it applies to."""

    status: int
    method: str | None
    path_prefix: str
    remaining: int
    retry_after: str | None


@dataclass
class _State:
    """Everything the API server stores, guarded by one lock."""

    namespaces: dict[str, JSON] = field(default_factory=dict)
    secrets: dict[tuple[str, str], JSON] = field(default_factory=dict)
    workloads: dict[tuple[str, str, str], JSON] = field(default_factory=dict)
    revision: int = 0


class KubernetesEmulator(LoopbackServer):
    """A Kubernetes API server stand-in on a local port (see the module doc).

    Use it as a context manager, or call :meth:`start` and :meth:`stop`; starting
    also writes a kubeconfig file for it (:attr:`kubeconfig_path`).
    """

    thread_name = "kube-emulator"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        user: str = "rotator",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(host, port)
        self.token = token or f"emulator-{uuid.uuid4().hex}"
        #: Bearer token -> user name; add entries to serve other identities.
        self.tokens: dict[str, str] = {self.token: user}
        self.clock = clock or _now
        #: The allow-list; ``None`` allows everything (a cluster-admin binding).
        self.rules: list[Rule] | None = None
        #: Every request received, in order.
        self.requests: list[RecordedRequest] = []
        self._state = _State()
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._dir: Path | None = None
        self.kubeconfig_path: Path | None = None

    # -- lifecycle

    def _bind(self) -> EmulatorHTTPServer[KubernetesEmulator]:
        """Listen with the handler that speaks the API server's REST paths."""
        return EmulatorHTTPServer((self.host, self.port), _Handler, self)

    def _on_start(self) -> None:
        """Write a kubeconfig file naming the bound port."""
        self._dir = Path(tempfile.mkdtemp(prefix="kube-emulator-"))
        self.kubeconfig_path = self.write_kubeconfig(self._dir / "kubeconfig")

    def _on_stop(self) -> None:
        """Remove the kubeconfig file."""
        folder, self._dir = self._dir, None
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    # -- kubeconfig

    def kubeconfig(
        self, *, context: str = "emulator", token: str | None = None, server: str | None = None
    ) -> JSON:
        """Return a kubeconfig (as a dict) with one cluster, user and context for this server."""
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": server or self.url}}],
            "users": [{"name": context, "user": {"token": token or self.token}}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
            "current-context": context,
        }

    def write_kubeconfig(
        self,
        path: Path,
        *,
        context: str = "emulator",
        token: str | None = None,
        extra: Iterable[JSON] = (),
    ) -> Path:
        """Write a kubeconfig file (JSON, which is YAML) for this server; merge ``extra`` ones in.

        ``extra`` kubeconfigs (from :meth:`kubeconfig`) add their clusters,
        users and contexts; the current context stays ``context``.
        """
        config = self.kubeconfig(context=context, token=token)
        for other in extra:
            for section in ("clusters", "users", "contexts"):
                config[section].extend(other[section])
        path.write_text(json.dumps(config, indent=2))
        return path

    # -- seeding and inspection

    def add_namespace(self, name: str) -> None:
        """Create a namespace (no-op if it exists)."""
        with self._lock:
            if name not in self._state.namespaces:
                self._state.namespaces[name] = self._new_object("v1", "Namespace", name, None)
                self._state.namespaces[name]["status"] = {"phase": "Active"}

    def put_secret(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, str] | None = None,
        *,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        immutable: bool = False,
        type_: str = "Opaque",
    ) -> JSON:
        """Store a Secret (replacing any), its ``data`` given as plain text; return it."""
        with self._lock:
            if namespace not in self._state.namespaces:
                self._state.namespaces[namespace] = self._new_object(
                    "v1", "Namespace", namespace, None
                )
            secret = self._new_object("v1", "Secret", name, namespace)
            secret["type"] = type_
            encoded = {k: base64.b64encode(v.encode()).decode() for k, v in (data or {}).items()}
            if encoded:
                secret["data"] = encoded
            if labels:
                secret["metadata"]["labels"] = dict(labels)
            if annotations:
                secret["metadata"]["annotations"] = dict(annotations)
            if immutable:
                secret["immutable"] = True
            self._state.secrets[(namespace, name)] = secret
            return copy.deepcopy(secret)

    def add_workload(
        self,
        kind: str,
        namespace: str,
        name: str,
        *,
        paused: bool = False,
        template_annotations: Mapping[str, str] | None = None,
    ) -> JSON:
        """Store a Deployment, StatefulSet or DaemonSet (``kind`` singular, lower case)."""
        resource = _SINGULAR[kind]
        with self._lock:
            if namespace not in self._state.namespaces:
                self._state.namespaces[namespace] = self._new_object(
                    "v1", "Namespace", namespace, None
                )
            obj = self._new_object("apps/v1", WORKLOAD_KINDS[resource], name, namespace)
            obj["metadata"]["generation"] = 1
            template: JSON = {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "registry.invalid/app:1"}]},
            }
            if template_annotations:
                template["metadata"]["annotations"] = dict(template_annotations)
            spec: JSON = {"selector": {"matchLabels": {"app": name}}, "template": template}
            if resource != "daemonsets":
                spec["replicas"] = 1
            if paused:
                spec["paused"] = True
            obj["spec"] = spec
            obj["status"] = {"observedGeneration": 1}
            self._state.workloads[(resource, namespace, name)] = obj
            return copy.deepcopy(obj)

    def secret(self, namespace: str, name: str) -> JSON | None:
        """Return a copy of a stored Secret, or None."""
        with self._lock:
            found = self._state.secrets.get((namespace, name))
            return copy.deepcopy(found) if found is not None else None

    def secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        """Return a stored Secret's ``data`` decoded to text, or None if there is no Secret."""
        found = self.secret(namespace, name)
        if found is None:
            return None
        return {k: base64.b64decode(v).decode() for k, v in (found.get("data") or {}).items()}

    def workload(self, kind: str, namespace: str, name: str) -> JSON | None:
        """Return a copy of a stored workload (``kind`` singular, lower case), or None."""
        with self._lock:
            found = self._state.workloads.get((_SINGULAR[kind], namespace, name))
            return copy.deepcopy(found) if found is not None else None

    def requests_to(self, method: str, path_prefix: str = "/") -> list[RecordedRequest]:
        """Return the recorded requests with this method whose path starts with ``path_prefix``."""
        with self._lock:
            return [
                r for r in self.requests if r.method == method and r.path.startswith(path_prefix)
            ]

    # -- authorization and faults

    def authorize_only(self, *rules: Rule) -> None:
        """Allow only what ``rules`` allow (an RBAC Role's rules), for every user."""
        self.rules = list(rules)

    def allow_all(self) -> None:
        """Allow everything again (the default)."""
        self.rules = None

    def allowed(self, verb: str, group: str, resource: str, name: str) -> bool:
        """Tell whether the rules let ``verb`` on ``resource`` named ``name`` through."""
        rules = self.rules
        if rules is None:
            return True
        return any(rule.allows(verb, group, resource, name) for rule in rules)

    def inject_fault(
        self,
        status: int = 503,
        *,
        method: str | None = None,
        path_prefix: str = "/",
        count: int = 1,
        retry_after: float | None = None,
    ) -> None:
        """Answer the next ``count`` matching requests with ``status`` (a ``Status`` body).

        A request matches when its path starts with ``path_prefix`` and, if
        ``method`` is given, its verb is that one. ``retry_after`` adds a
        ``Retry-After`` header (whole seconds), as the API server sends with
        429 and some 5xx answers.
        """
        if count < 1:
            raise ValueError("count must be at least 1")
        if not 400 <= status <= 599:
            raise ValueError("status must be an HTTP error status")
        after = str(int(retry_after)) if retry_after is not None else None
        with self._lock:
            self._faults.append(
                _Fault(status, method.upper() if method else None, path_prefix, count, after)
            )

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        for fault in self._faults:
            if path.startswith(fault.path_prefix) and fault.method in (None, method):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None

    # -- object helpers (called with the lock held)

    def _next_version(self) -> str:
        self._state.revision += 1
        return str(self._state.revision)

    def _new_object(self, api_version: str, kind: str, name: str, namespace: str | None) -> JSON:
        meta: JSON = {
            "name": name,
            "uid": str(uuid.uuid4()),
            "resourceVersion": self._next_version(),
            "creationTimestamp": self.clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if namespace is not None:
            meta["namespace"] = namespace
        return {"kind": kind, "apiVersion": api_version, "metadata": meta}

    # -- one request

    def handle(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, JSON, dict[str, str]]:
        """Serve one HTTP request; return (status, JSON body, extra headers)."""
        raw_path, _, query = target.partition("?")
        path = urllib.parse.unquote(raw_path)
        token = ""
        authorization = headers.get("authorization", "")
        if authorization.lower().startswith("bearer "):
            token = authorization[len("bearer ") :].strip()
        user = self.tokens.get(token)
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        with self._lock:
            self.requests.append(
                RecordedRequest(method, path, query, content_type, body, user is not None)
            )
            fault = self._take_fault(method, path)
        try:
            if fault is not None:
                reason, message = _FAULT_REASONS.get(
                    fault.status, ("InternalError", f"injected fault {fault.status}")
                )
                extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                raise ApiError(fault.status, reason, message, {}, extra)
            if user is None:
                raise ApiError(401, "Unauthorized", "Unauthorized")
            params = {k: v[-1] for k, v in urllib.parse.parse_qs(query).items()}
            dry_run = params.get("dryRun") == "All"
            parsed = _parse_body(body) if body else None
            with self._lock:
                status, reply = self._route(
                    method, path, content_type, parsed, user, dry_run=dry_run
                )
            return status, reply, {}
        except ApiError as error:
            return error.code, error.status(), error.headers
        except Exception as exc:  # noqa: BLE001
            # An emulator bug must reach the client as the API server's 500, not a dropped
            # connection.
            failure = ApiError(
                500, "InternalError", f"emulator internal error: {type(exc).__name__}"
            )
            return 500, failure.status(), {}

    def _authorize(
        self, user: str, verb: str, group: str, resource: str, ns: str, name: str
    ) -> None:
        if self.allowed(verb, group, resource, name):
            return
        what = f'{_qualified(resource, group)} "{name}"' if name else _qualified(resource, group)
        raise ApiError(
            403,
            "Forbidden",
            f'{what} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
            f'in API group "{group}" in the namespace "{ns}"',
            _details(resource, group, name),
        )

    def _route(
        self,
        method: str,
        path: str,
        content_type: str,
        body: Any,
        user: str,
        *,
        dry_run: bool,
    ) -> tuple[int, JSON]:
        if path == _SSAR:
            if method != "POST":
                raise _not_allowed()
            return 201, self._review(body)
        if (match := _NAMESPACE.match(path)) is not None:
            if method != "GET":
                raise _not_allowed()
            ns = match["ns"]
            self._authorize(user, "get", "", "namespaces", "", ns)
            found = self._state.namespaces.get(ns)
            if found is None:
                raise not_found("namespaces", "", ns)
            return 200, copy.deepcopy(found)
        if (match := _SECRETS.match(path)) is not None:
            ns, name = match["ns"], match["name"]
            verb = _VERBS.get(method)
            if verb is None or (name is None and method not in ("GET", "POST")):
                raise _not_allowed()
            if name is None and method == "GET":
                verb = "list"
            self._authorize(user, verb, "", "secrets", ns, name or "")
            return self._secrets(method, ns, name, content_type, body, dry_run=dry_run)
        if (match := _WORKLOADS.match(path)) is not None:
            ns, resource, name = match["ns"], match["res"], match["name"]
            if name is None or method not in ("GET", "PATCH", "PUT"):
                raise _not_allowed()
            self._authorize(user, _VERBS[method], "apps", resource, ns, name)
            return self._workloads(method, resource, ns, name, content_type, body, dry_run=dry_run)
        raise ApiError(404, "NotFound", "the server could not find the requested resource", {})

    # -- SelfSubjectAccessReview

    def _review(self, body: Any) -> JSON:
        if not isinstance(body, dict) or body.get("kind") != "SelfSubjectAccessReview":
            raise bad_request("expected a SelfSubjectAccessReview")
        attributes = (body.get("spec") or {}).get("resourceAttributes")
        if not isinstance(attributes, dict):
            raise invalid(
                "SelfSubjectAccessReview",
                "",
                "spec.resourceAttributes: Required value: emulator serves resource attributes only",
            )
        allowed = self.allowed(
            str(attributes.get("verb") or ""),
            str(attributes.get("group") or ""),
            str(attributes.get("resource") or ""),
            str(attributes.get("name") or ""),
        )
        reply = copy.deepcopy(body)
        reply.setdefault("metadata", {})
        reply["metadata"]["creationTimestamp"] = None
        reply["status"] = {"allowed": allowed}
        if allowed:
            reply["status"]["reason"] = "emulator: allowed by its rules"
        return reply

    # -- Secrets

    def _secrets(
        self,
        method: str,
        ns: str,
        name: str | None,
        content_type: str,
        body: Any,
        *,
        dry_run: bool,
    ) -> tuple[int, JSON]:
        secrets = self._state.secrets
        if name is None:
            if method == "GET":
                items = [copy.deepcopy(s) for (n, _), s in sorted(secrets.items()) if n == ns]
                return 200, {
                    "kind": "SecretList",
                    "apiVersion": "v1",
                    "metadata": {"resourceVersion": str(self._state.revision)},
                    "items": items,
                }
            return self._create_secret(ns, body, dry_run=dry_run)
        current = secrets.get((ns, name))
        if current is None:
            raise not_found("secrets", "", name)
        if method == "GET":
            return 200, copy.deepcopy(current)
        if method == "DELETE":
            options = body if isinstance(body, dict) else {}
            preconditions = options.get("preconditions") or {}
            meta = current["metadata"]
            version = preconditions.get("resourceVersion")
            if version is not None and version != meta["resourceVersion"]:
                raise conflict(
                    "secrets",
                    "",
                    name,
                    f"Precondition failed: ResourceVersion in precondition: {version}, "
                    f"ResourceVersion in object meta: {meta['resourceVersion']}",
                )
            uid = preconditions.get("uid")
            if uid is not None and uid != meta["uid"]:
                raise conflict(
                    "secrets",
                    "",
                    name,
                    f"Precondition failed: UID in precondition: {uid}, UID in object meta: "
                    f"{meta['uid']}",
                )
            if not dry_run:
                del secrets[(ns, name)]
            return 200, {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": {"name": name, "kind": "secrets", "uid": meta["uid"]},
            }
        if method == "PUT":
            if not isinstance(body, dict):
                raise bad_request("the body of the request must be a Secret")
            self._check_identity(body, "Secret", "v1", ns, name)
            updated = self._replace(current, body, "secrets", "", name)
        else:
            updated = self._patch(current, body, content_type, "secrets", "", name)
        _normalise_secret(updated, name)
        if current.get("immutable") is True and (
            updated.get("data") != current.get("data") or updated.get("immutable") is not True
        ):
            raise invalid(
                "Secret", name, "data: Forbidden: field is immutable when `immutable` is set"
            )
        return 200, self._store(("secrets", ns, name), current, updated, dry_run=dry_run)

    def _create_secret(self, ns: str, body: Any, *, dry_run: bool) -> tuple[int, JSON]:
        if not isinstance(body, dict):
            raise bad_request("the body of the request must be a Secret")
        meta = body.get("metadata") or {}
        name = meta.get("name")
        if not isinstance(name, str) or not name:
            raise invalid(
                "Secret", "", "metadata.name: Required value: name or generateName is required"
            )
        self._check_identity(body, "Secret", "v1", ns, name)
        if ns not in self._state.namespaces:
            raise not_found("namespaces", "", ns)
        if (ns, name) in self._state.secrets:
            raise ApiError(
                409,
                "AlreadyExists",
                f'secrets "{name}" already exists',
                _details("secrets", "", name),
            )
        secret = self._new_object("v1", "Secret", name, ns)
        for key in ("labels", "annotations"):
            if meta.get(key):
                secret["metadata"][key] = dict(meta[key])
        for key in ("data", "stringData", "immutable"):
            if key in body:
                secret[key] = copy.deepcopy(body[key])
        secret["type"] = body.get("type") or "Opaque"
        _normalise_secret(secret, name)
        if not dry_run:
            self._state.secrets[(ns, name)] = secret
        return 201, copy.deepcopy(secret)

    # -- workloads

    def _workloads(
        self,
        method: str,
        resource: str,
        ns: str,
        name: str,
        content_type: str,
        body: Any,
        *,
        dry_run: bool,
    ) -> tuple[int, JSON]:
        current = self._state.workloads.get((resource, ns, name))
        if current is None:
            raise not_found(resource, "apps", name)
        if method == "GET":
            return 200, copy.deepcopy(current)
        if method == "PUT":
            if not isinstance(body, dict):
                raise bad_request(f"the body of the request must be a {WORKLOAD_KINDS[resource]}")
            self._check_identity(body, WORKLOAD_KINDS[resource], "apps/v1", ns, name)
            updated = self._replace(current, body, resource, "apps", name)
        else:
            updated = self._patch(current, body, content_type, resource, "apps", name)
        if updated.get("spec") != current.get("spec"):
            generation = int(current["metadata"].get("generation", 1)) + 1
            updated["metadata"]["generation"] = generation
            # No controllers run here: the rollout is "observed" at once.
            updated.setdefault("status", {})["observedGeneration"] = generation
        return 200, self._store((resource, ns, name), current, updated, dry_run=dry_run)

    # -- writes shared by every kind

    def _check_identity(self, body: JSON, kind: str, api_version: str, ns: str, name: str) -> None:
        if body.get("kind") not in (None, kind) or body.get("apiVersion") not in (
            None,
            api_version,
        ):
            raise bad_request(f"the body of the request was not a {kind} ({api_version})")
        meta = body.get("metadata") or {}
        if meta.get("namespace") not in (None, ns):
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on the "
                "request"
            )
        if meta.get("name") not in (None, name):
            raise bad_request("the name of the object does not match the name on the URL")

    def _replace(self, current: JSON, body: JSON, resource: str, group: str, name: str) -> JSON:
        version = (body.get("metadata") or {}).get("resourceVersion")
        if version and version != current["metadata"]["resourceVersion"]:
            raise conflict(resource, group, name, _MODIFIED)
        updated = copy.deepcopy(body)
        updated["kind"] = current["kind"]
        updated["apiVersion"] = current["apiVersion"]
        updated["metadata"] = {**(body.get("metadata") or {}), **_server_meta(current)}
        return updated

    def _patch(
        self, current: JSON, patch: Any, content_type: str, resource: str, group: str, name: str
    ) -> JSON:
        if content_type not in PATCH_TYPES:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types "
                "include: " + ", ".join(PATCH_TYPES),
                {},
            )
        if not isinstance(patch, dict):
            raise bad_request("the patch must be a JSON object")
        if content_type == "application/strategic-merge-patch+json" and _directives(patch):
            raise bad_request(
                "emulator: strategic merge patch directives ($patch...) are not served"
            )
        version = (patch.get("metadata") or {}).get("resourceVersion")
        if version is not None and version != current["metadata"]["resourceVersion"]:
            raise conflict(resource, group, name, _MODIFIED)
        updated = merge_patch(current, patch)
        if not isinstance(updated, dict):
            raise bad_request("the patch must be a JSON object")
        updated["kind"] = current["kind"]
        updated["apiVersion"] = current["apiVersion"]
        updated["metadata"] = {**(updated.get("metadata") or {}), **_server_meta(current)}
        return updated

    def _store(
        self, key: tuple[str, str, str], current: JSON, updated: JSON, *, dry_run: bool
    ) -> JSON:
        """Keep ``updated`` (a new resourceVersion) unless it changes nothing or is a dry run."""
        for meta_key in ("labels", "annotations"):
            if not updated["metadata"].get(meta_key):
                updated["metadata"].pop(meta_key, None)
        if updated == current:
            return copy.deepcopy(current)
        if dry_run:
            return copy.deepcopy(updated)
        updated["metadata"]["resourceVersion"] = self._next_version()
        resource, ns, name = key
        if resource == "secrets":
            self._state.secrets[(ns, name)] = updated
        else:
            self._state.workloads[(resource, ns, name)] = updated
        return copy.deepcopy(updated)


def _server_meta(current: JSON) -> JSON:
    """Return the metadata fields a client cannot change."""
    meta = current["metadata"]
    kept = ("name", "namespace", "uid", "resourceVersion", "creationTimestamp", "generation")
    return {k: meta[k] for k in kept if k in meta}


def _normalise_secret(secret: JSON, name: str) -> None:
    """Fold ``stringData`` into ``data``, validate keys and base64, drop empty maps."""
    data = secret.get("data") or {}
    if not isinstance(data, dict):
        raise invalid("Secret", name, "data: Invalid value: must be a map")
    string_data = secret.pop("stringData", None) or {}
    if not isinstance(string_data, dict):
        raise invalid("Secret", name, "stringData: Invalid value: must be a map")
    for key, text in string_data.items():
        data[key] = base64.b64encode(str(text).encode()).decode()
    for key, value in data.items():
        if not _DATA_KEY.match(key) or key in (".", "..") or key.startswith(".."):
            raise invalid(
                "Secret",
                name,
                f"data[{key}]: Invalid value: a valid config key must consist of "
                "alphanumeric characters, '-', '_' or '.'",
            )
        try:
            base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError):
            # The real message quotes the bad value; this one does not need to.
            raise invalid(
                "Secret", name, f"data[{key}]: Invalid value: illegal base64 data"
            ) from None
    if data:
        secret["data"] = data
    else:
        secret.pop("data", None)


def _parse_body(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise bad_request("the body of the request could not be decoded as JSON") from None


class _Handler(EmulatorHandler):
    """Hands each request to the emulator and writes its answer (keep-alive, as urllib3 expects)."""

    server: EmulatorHTTPServer[KubernetesEmulator]

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, reply, extra = self.server.emulator.handle(self.command, self.path, headers, body)
        payload = json.dumps(reply).encode()
        self.send_response(status, HTTPStatus(status).phrase)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Audit-Id", str(uuid.uuid4()))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve


def main(argv: list[str] | None = None) -> None:
    """Serve an emulator from a shell until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--namespace", action="append", default=[], help="create this namespace")
    args = parser.parse_args(argv)
    stopping = threading.Event()
    # SIGTERM ends the wait like Ctrl-C does, so the kubeconfig file is removed.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stopping.set())
    with KubernetesEmulator(host=args.host, port=args.port) as kube:
        for namespace in args.namespace or ["default"]:
            kube.add_namespace(namespace)
        print(f"export KUBECONFIG={kube.kubeconfig_path}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stopping.wait()


if __name__ == "__main__":
    main()
