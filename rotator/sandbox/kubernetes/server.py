"""The emulated Kubernetes API server on a local port: serving, kubeconfig, seeding, test hooks.

See the package docstring for what is emulated.
"""

from __future__ import annotations

import base64
import copy
import json
import shutil
import tempfile
import urllib.parse
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any

from rotator.sandbox.core.clock import Clock, utc_now
from rotator.sandbox.core.faults import FaultPlan
from rotator.sandbox.core.http import EmulatorHandler, EmulatorHTTPServer, LoopbackServer
from rotator.sandbox.core.recording import RequestLog
from rotator.sandbox.kubernetes.api import KubernetesApi
from rotator.sandbox.kubernetes.objects import SINGULAR, WORKLOAD_KINDS, ObjectStore
from rotator.sandbox.kubernetes.rbac import Rule
from rotator.sandbox.kubernetes.status import FAULT_REASONS, JSON, ApiError, bad_request


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the emulator received it."""

    method: str
    path: str
    query: str
    content_type: str
    body: bytes
    authenticated: bool


class KubernetesEmulator(LoopbackServer):
    """A Kubernetes API server stand-in on a local port (see the package doc).

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
        clock: Clock | None = None,
    ) -> None:
        super().__init__(host, port)
        self.token = token or f"emulator-{uuid.uuid4().hex}"
        #: Bearer token -> user name; add entries to serve other identities.
        self.tokens: dict[str, str] = {self.token: user}
        self.clock: Clock = clock or utc_now
        #: The allow-list; ``None`` allows everything (a cluster-admin binding).
        self.rules: list[Rule] | None = None
        #: Every request received, in order.
        self.requests: RequestLog[RecordedRequest] = RequestLog()
        self._objects = ObjectStore(self._now)
        self._api = KubernetesApi(self._objects, self.allowed)
        self._faults = FaultPlan()
        self._dir: Path | None = None
        self.kubeconfig_path: Path | None = None

    def _now(self) -> datetime:
        # Read the attribute on every call so that replacing ``clock`` takes effect at once.
        return self.clock()

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
        with self._objects.lock:
            if name not in self._objects.namespaces:
                self._objects.namespaces[name] = self._objects.new_object(
                    "v1", "Namespace", name, None
                )
                self._objects.namespaces[name]["status"] = {"phase": "Active"}

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
        with self._objects.lock:
            if namespace not in self._objects.namespaces:
                self._objects.namespaces[namespace] = self._objects.new_object(
                    "v1", "Namespace", namespace, None
                )
            secret = self._objects.new_object("v1", "Secret", name, namespace)
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
            self._objects.secrets[(namespace, name)] = secret
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
        resource = SINGULAR[kind]
        with self._objects.lock:
            if namespace not in self._objects.namespaces:
                self._objects.namespaces[namespace] = self._objects.new_object(
                    "v1", "Namespace", namespace, None
                )
            obj = self._objects.new_object("apps/v1", WORKLOAD_KINDS[resource], name, namespace)
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
            self._objects.workloads[(resource, namespace, name)] = obj
            return copy.deepcopy(obj)

    def secret(self, namespace: str, name: str) -> JSON | None:
        """Return a copy of a stored Secret, or None."""
        with self._objects.lock:
            found = self._objects.secrets.get((namespace, name))
            return copy.deepcopy(found) if found is not None else None

    def secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        """Return a stored Secret's ``data`` decoded to text, or None if there is no Secret."""
        found = self.secret(namespace, name)
        if found is None:
            return None
        return {k: base64.b64decode(v).decode() for k, v in (found.get("data") or {}).items()}

    def workload(self, kind: str, namespace: str, name: str) -> JSON | None:
        """Return a copy of a stored workload (``kind`` singular, lower case), or None."""
        with self._objects.lock:
            found = self._objects.workloads.get((SINGULAR[kind], namespace, name))
            return copy.deepcopy(found) if found is not None else None

    def requests_to(self, method: str, path_prefix: str = "/") -> list[RecordedRequest]:
        """Return the recorded requests with this method whose path starts with ``path_prefix``."""
        return self.requests.matching(method, path_prefix)

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
        after = str(int(retry_after)) if retry_after is not None else None
        self._faults.add(path_prefix, status=status, count=count, method=method, retry_after=after)

    def clear_faults(self) -> None:
        """Drop every injected fault still waiting: the next requests are served normally."""
        self._faults.clear()

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
        self.requests.append(
            RecordedRequest(method, path, query, content_type, body, user is not None)
        )
        fault = self._faults.take(path, method)
        try:
            if fault is not None and fault.status is not None:
                reason, message = FAULT_REASONS.get(
                    fault.status, ("InternalError", f"injected fault {fault.status}")
                )
                extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                raise ApiError(fault.status, reason, message, {}, extra)
            if user is None:
                raise ApiError(401, "Unauthorized", "Unauthorized")
            params = {k: v[-1] for k, v in urllib.parse.parse_qs(query).items()}
            dry_run = params.get("dryRun") == "All"
            parsed = _parse_body(body) if body else None
            with self._objects.lock:
                status, reply = self._api.route(
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


def _parse_body(body: bytes) -> Any:
    """Decode a request's JSON body, or answer 400 as the API server does."""
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
