"""The ``kubernetes-secret`` target: one key of a Secret, and a restart of the workloads using it.

Policy fields (:class:`KubernetesSecretConfig`)::

    targets:
      - kind: kubernetes-secret
        namespace: payments
        name: payments-db
        key: password
        restart: [deployment/payments-api]   # deployment/, statefulset/, daemonset/ NAME
        context: prod-eu                     # optional kubeconfig context
        create: true                         # default: create the Secret if missing

Credentials: see :mod:`providers.kubernetes.client` (in-cluster service
account, else kubeconfig).

What ``write(rotation_id, value)`` does:

1. Reads the Secret. If ``data[key]`` already holds the value, nothing is
   written and nothing restarts, unless the Secret's
   ``rotator.io/rotation-id`` annotation names this rotation and a workload
   has not been restarted for it yet (see *Crash safety*).
2. Reads every workload of ``restart`` first, so that a missing workload or
   a paused Deployment (``kubectl rollout restart`` refuses those: it would
   not roll) fails the step before the Secret is touched.
3. Patches only ``data[key]`` (a strategic merge patch: other keys stay),
   annotates the Secret ``rotator.io/rotation-id: <rotation id>``, and sends
   the ``resourceVersion`` it read as a precondition, so a concurrent
   change is a 409 rather than a lost update (re-read and retried up to three
   times). A missing Secret is created when ``create`` is true: type
   ``Opaque``, labelled ``app.kubernetes.io/managed-by: rotator`` and
   annotated ``rotator.io/created-for: <rotation id>``.
4. Restarts each workload as ``kubectl rollout restart`` does: a strategic
   merge patch of ``spec.template.metadata.annotations`` setting
   ``kubectl.kubernetes.io/restartedAt`` to the time in RFC 3339 (UTC,
   seconds; the runtime's clock). The same patch sets
   ``rotator.io/restarted-for: <rotation id> <name>/<key>`` on the template.

Crash safety: the ``rotator.io/restarted-for`` marker is how a replay knows a
restart already happened, written in the same request as the restart itself
(so it can never claim a restart that did not happen). A process killed
between the Secret patch and the restarts leaves a Secret that carries the
value *and* this rotation's id: the replay restarts exactly the workloads
whose marker is not this rotation's, and a plain replay restarts nothing.
Timestamps were not used for this: kubectl's are second-grained and written
by other clocks, and a same-second ``restartedAt`` is no change at all (so no
rollout); the marker also makes two restarts in one second distinct. The
marker names the Secret and key as well, so two targets restarting one
workload in one rotation each still restart it (a replay of both then
restarts it again: more restarts than needed, never fewer).

What ``restore(rotation_id, *, written, previous)`` does: if the Secret's key
still holds ``written`` (or, when ``written`` was lost, the Secret still
carries this rotation's id), it puts ``previous`` back, or removes the key
when ``previous`` is None, or deletes the Secret when this rotation created
it and nothing else is left in it (with ``resourceVersion`` and ``uid``
preconditions). It annotates the Secret ``rotator.io/restored-for:
<rotation id>`` and restarts the workloads again (marker ``... restored``)
so they read the old value; a paused Deployment is patched all the same (it
rolls when resumed). A replay finishes the restarts of an interrupted
restore; when nothing of this rotation is in the Secret, ``restore`` changes
nothing.

``check()`` reads the Secret (or, if it is missing and ``create`` is true,
its namespace, when the identity may read namespaces) and every workload,
then asks the API server with a SelfSubjectAccessReview each permission
``write`` and ``restore`` need: ``patch`` on ``secrets/NAME`` (plus
``create``, and ``delete`` for the undo, when the Secret is still to be
created) and ``patch`` on each workload. It changes nothing.

Least privilege: a Role in the Secret's namespace, bound to rotator's
identity::

    rules:
      - apiGroups: [""]
        resources: [secrets]
        resourceNames: [payments-db]
        verbs: [get, patch, delete]      # delete: only to undo a Secret it created
      - apiGroups: [""]
        resources: [secrets]
        verbs: [create]                  # only with create: true (RBAC cannot name it)
      - apiGroups: [apps]
        resources: [deployments]         # and statefulsets, daemonsets as listed
        resourceNames: [payments-api]
        verbs: [get, patch]

The value is sent base64-encoded in request bodies only, never in a URL;
that encoding is registered with :mod:`rotator.output.redact` so it is scrubbed
from any log line too.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

from pydantic import Field, field_validator

from providers.kubernetes.client import QUOTAS, KubeSession, session
from providers.kubernetes.errors import PROVIDER, ConflictRetry, sdk
from rotator.adapters import Permission, ProviderConfig, SecretValue, Target, rates, redact
from rotator.errors import ConflictError, NotFoundError, PermanentError, PermissionDeniedError

KIND = "kubernetes-secret"

#: Secret annotations: which rotation wrote the key, undid it, created the Secret.
ROTATION_ID = "rotator.io/rotation-id"
RESTORED_FOR = "rotator.io/restored-for"
CREATED_FOR = "rotator.io/created-for"
#: Pod-template annotations: kubectl's restart stamp, and rotator's marker of why.
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
RESTARTED_FOR = "rotator.io/restarted-for"
#: The label of a Secret rotator created.
MANAGED_BY = "app.kubernetes.io/managed-by"

#: How often a change refused with 409 (the object changed meanwhile) is re-read and redone.
CONFLICT_ATTEMPTS = 3

_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_DATA_KEY = r"^[-._a-zA-Z0-9]+$"

#: Workload kinds a target may restart, with their resource (plural) names.
WORKLOADS = {"deployment": "deployments", "statefulset": "statefulsets", "daemonset": "daemonsets"}

log = logging.getLogger(__name__)

T = TypeVar("T")


class KubernetesSecretConfig(ProviderConfig):
    """Policy fields of the ``kubernetes-secret`` target."""

    namespace: str = Field(min_length=1, max_length=63, pattern=_DNS_LABEL)
    name: str = Field(min_length=1, max_length=253, pattern=_DNS_SUBDOMAIN)
    key: str = Field(min_length=1, max_length=253, pattern=_DATA_KEY)
    #: Workloads to restart after a change: ``deployment/NAME``, ``statefulset/NAME``,
    #: ``daemonset/NAME``, in the Secret's namespace.
    restart: tuple[str, ...] = ()
    #: A kubeconfig context; the kubeconfig's current one (or in-cluster) if unset.
    context: str | None = Field(default=None, min_length=1)
    #: Create the Secret (type Opaque) if it does not exist.
    create: bool = True

    @field_validator("key")
    @classmethod
    def _valid_key(cls, value: str) -> str:
        # The API server's own rule for data keys (IsConfigMapKey).
        if value in (".", "..") or value.startswith(".."):
            raise ValueError("a Secret key may not be '.' or '..' or start with '..'")
        return value

    @field_validator("restart")
    @classmethod
    def _valid_restart(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        seen: set[str] = set()
        for item in value:
            kind, sep, name = item.partition("/")
            if not sep or kind not in WORKLOADS:
                raise ValueError(
                    f"{item!r} is not deployment/NAME, statefulset/NAME or daemonset/NAME"
                )
            if len(name) > 253 or not re.match(_DNS_SUBDOMAIN, name):
                raise ValueError(f"{item!r}: {name!r} is not a valid Kubernetes object name")
            if item in seen:
                raise ValueError(f"{item!r} is listed twice")
            seen.add(item)
        return value


@dataclass(frozen=True)
class Workload:
    """One workload a target restarts."""

    kind: str
    name: str

    @classmethod
    def parse(cls, text: str) -> Workload:
        """Return the workload a validated ``kind/NAME`` entry names."""
        kind, _, name = text.partition("/")
        return cls(kind, name)

    @property
    def resource(self) -> str:
        """Return the plural resource name (``deployments``)."""
        return WORKLOADS[self.kind]

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"


def encode(value: SecretValue) -> str:
    """Return the base64 form of ``value`` a Secret's ``data`` holds, registered for scrubbing."""
    encoded = base64.b64encode(value.text().encode("utf-8")).decode("ascii")
    # The scrubber knows the plain, JSON, URL and XML forms; a Secret body
    # carries this one, so it is scrubbed from every log line as well.
    redact.register(encoded)
    return encoded


def _register_current(encoded: object) -> None:
    """Register the value a Secret's key holds now (base64 and plain): a live credential."""
    if not isinstance(encoded, str) or not encoded:
        return
    redact.register(encoded)
    # Not base64 text (binascii.Error and UnicodeDecodeError are ValueErrors):
    # its encoded form is all a body can carry, and it is registered.
    with contextlib.suppress(ValueError):
        redact.register(base64.b64decode(encoded, validate=True).decode("utf-8"))


def rfc3339(when: datetime) -> str:
    """Return ``when`` as kubectl writes ``restartedAt``: RFC 3339, seconds, here in UTC."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _annotations(obj: dict[str, Any] | None) -> dict[str, Any]:
    if obj is None:
        return {}
    found = (obj.get("metadata") or {}).get("annotations")
    return found if isinstance(found, dict) else {}


def _data(obj: dict[str, Any] | None) -> dict[str, Any]:
    if obj is None:
        return {}
    found = obj.get("data")
    return found if isinstance(found, dict) else {}


def _template_annotations(obj: dict[str, Any]) -> dict[str, Any]:
    template = (obj.get("spec") or {}).get("template") or {}
    found = (template.get("metadata") or {}).get("annotations")
    return found if isinstance(found, dict) else {}


def _retry_conflicts(step: Callable[[], T]) -> T:
    """Run a read-modify-write ``step``, again from the read when a precondition fails (409)."""
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        try:
            return step()
        except ConflictRetry:
            if attempt == CONFLICT_ATTEMPTS:
                raise
            log.info("the Secret changed meanwhile; reading it again (attempt %d)", attempt + 1)
    raise AssertionError("unreachable")  # pragma: no cover


class KubernetesSecretTarget(Target[KubernetesSecretConfig]):
    """One key of a Kubernetes Secret, and the workloads restarted to read it (see module doc)."""

    kind: ClassVar[str] = KIND
    Config: ClassVar[type[ProviderConfig]] = KubernetesSecretConfig
    requires: ClassVar[tuple[str, ...]] = ("kubernetes",)
    extra: ClassVar[str] = "kubernetes"
    example: ClassVar[Mapping[str, object]] = {
        "namespace": "app",
        "name": "app-db",
        "key": "password",
        "restart": ["deployment/app-api"],
    }
    docs = "docs/targets.md"
    quotas: ClassVar[Mapping[str, float]] = rates(QUOTAS)

    # -- naming

    def describe(self) -> str:
        """Return ``kubernetes-secret:<namespace>/<name>#<key>`` (with ``@<context>`` if set)."""
        c = self.config
        where = f"{KIND}:{c.namespace}/{c.name}#{c.key}"
        return f"{where}@{c.context}" if c.context else where

    @property
    def _where(self) -> str:
        return f"secrets {self.config.namespace}/{self.config.name}"

    @property
    def workloads(self) -> list[Workload]:
        """Return the workloads to restart, in policy order."""
        return [Workload.parse(item) for item in self.config.restart]

    def _marker(self, rotation_id: str, *, restored: bool = False) -> str:
        """Return the ``rotator.io/restarted-for`` value of this target's write (or its undo)."""
        mark = f"{rotation_id} {self.config.name}/{self.config.key}"
        return f"{mark} restored" if restored else mark

    def _session(self) -> KubeSession:
        return session(self.runtime, self.config.context)

    # -- requests

    def _read_secret(self, kube: KubeSession) -> dict[str, Any] | None:
        """Return the Secret as JSON, or None if it does not exist."""
        c = self.config
        try:
            found = kube.call(
                "secrets.get", self._where, kube.core.read_namespaced_secret, c.name, c.namespace
            )
        except NotFoundError:
            return None
        _register_current(_data(found).get(c.key))
        return found

    def _read_workload(self, kube: KubeSession, workload: Workload) -> dict[str, Any]:
        """Return the workload as JSON (NotFoundError if it does not exist)."""
        read = {
            "deployment": kube.apps.read_namespaced_deployment,
            "statefulset": kube.apps.read_namespaced_stateful_set,
            "daemonset": kube.apps.read_namespaced_daemon_set,
        }[workload.kind]
        return kube.call(
            f"{workload.resource}.get",
            f"{workload.resource} {self.config.namespace}/{workload.name}",
            read,
            workload.name,
            self.config.namespace,
        )

    def _restart(self, kube: KubeSession, workload: Workload, marker: str) -> None:
        """Patch the pod template as ``kubectl rollout restart`` does, plus rotator's marker."""
        patch = {
            "deployment": kube.apps.patch_namespaced_deployment,
            "statefulset": kube.apps.patch_namespaced_stateful_set,
            "daemonset": kube.apps.patch_namespaced_daemon_set,
        }[workload.kind]
        body = {
            "spec": {
                "template": {
                    "metadata": {
                        "annotations": {
                            RESTARTED_AT: rfc3339(self.runtime.clock()),
                            RESTARTED_FOR: marker,
                        }
                    }
                }
            }
        }
        kube.call(
            f"{workload.resource}.patch",
            f"{workload.resource} {self.config.namespace}/{workload.name}",
            patch,
            workload.name,
            self.config.namespace,
            body,
        )
        log.info("restarted %s in %s (%s)", workload, self.config.namespace, marker)

    def _patch_secret(
        self, kube: KubeSession, secret: dict[str, Any], data: Any, annotations: dict[str, Any]
    ) -> None:
        """Patch ``data[key]`` and annotations, on condition the Secret is still as read."""
        c = self.config
        version = (secret.get("metadata") or {}).get("resourceVersion")
        body = {
            "metadata": {"resourceVersion": version, "annotations": annotations},
            "data": {c.key: data},
        }
        kube.call(
            "secrets.patch",
            self._where,
            kube.core.patch_namespaced_secret,
            c.name,
            c.namespace,
            body,
        )

    def _create_secret(self, kube: KubeSession, rotation_id: str, encoded: str) -> None:
        """Create the Secret with only this key, labelled and annotated as rotator's."""
        client = sdk("kubernetes.client")
        c = self.config
        body = client.V1Secret(
            api_version="v1",
            kind="Secret",
            metadata=client.V1ObjectMeta(
                name=c.name,
                namespace=c.namespace,
                labels={MANAGED_BY: "rotator"},
                annotations={ROTATION_ID: rotation_id, CREATED_FOR: rotation_id},
            ),
            type="Opaque",
            data={c.key: encoded},
        )
        try:
            kube.call(
                "secrets.create", self._where, kube.core.create_namespaced_secret, c.namespace, body
            )
        except NotFoundError:
            # The Secret was absent, so a 404 here is its namespace.
            raise NotFoundError(
                f"namespace {c.namespace} does not exist (rotator creates Secrets, not namespaces)",
                provider=PROVIDER,
                operation="secrets.create",
            ) from None
        log.info("created Secret %s/%s", c.namespace, c.name)

    def _delete_secret(self, kube: KubeSession, secret: dict[str, Any]) -> None:
        """Delete the Secret, on condition it is still the one read; no-op if already gone."""
        client = sdk("kubernetes.client")
        c = self.config
        meta = secret.get("metadata") or {}
        options = client.V1DeleteOptions(
            preconditions=client.V1Preconditions(
                resource_version=meta.get("resourceVersion"), uid=meta.get("uid")
            )
        )
        try:
            kube.call(
                "secrets.delete",
                self._where,
                kube.core.delete_namespaced_secret,
                c.name,
                c.namespace,
                body=options,
            )
        except NotFoundError:
            return
        log.info("deleted Secret %s/%s, which rotator had created", c.namespace, c.name)

    # -- write

    def write(self, rotation_id: str, value: SecretValue) -> None:
        """Put ``value`` in ``data[key]`` and restart the workloads; nothing if already done."""
        kube = self._session()
        encoded = encode(value)
        marker = self._marker(rotation_id)
        pending = _retry_conflicts(lambda: self._write_secret(kube, rotation_id, encoded, marker))
        for workload in pending:
            self._restart(kube, workload, marker)

    def _write_secret(
        self, kube: KubeSession, rotation_id: str, encoded: str, marker: str
    ) -> list[Workload]:
        """Read, check and change the Secret if needed; return the workloads left to restart."""
        c = self.config
        secret = self._read_secret(kube)
        if secret is None and not c.create:
            raise NotFoundError(
                f"{self._where}: the Secret does not exist and the policy says create: false",
                provider=PROVIDER,
                operation="secrets.get",
            )
        changing = secret is None or _data(secret).get(c.key) != encoded
        if not changing and _annotations(secret).get(ROTATION_ID) != rotation_id:
            # It carries the value, and not through this rotation: nothing to do.
            return []
        if changing and secret is not None and secret.get("immutable") is True:
            raise PermanentError(
                f"{self._where}: the Secret is immutable; rotator cannot change it "
                "(recreate it without `immutable: true`)",
                provider=PROVIDER,
                operation="secrets.patch",
            )
        pending = self._not_restarted(kube, marker, refuse_paused=True)
        if secret is None:
            self._create_secret(kube, rotation_id, encoded)
        elif changing:
            self._patch_secret(
                kube, secret, encoded, {ROTATION_ID: rotation_id, RESTORED_FOR: None}
            )
            log.info("wrote key %s of Secret %s/%s", c.key, c.namespace, c.name)
        return pending

    def _not_restarted(
        self, kube: KubeSession, marker: str, *, refuse_paused: bool
    ) -> list[Workload]:
        """Return the workloads whose pod template does not carry ``marker`` yet."""
        pending = []
        for workload in self.workloads:
            obj = self._read_workload(kube, workload)
            if _template_annotations(obj).get(RESTARTED_FOR) == marker:
                continue
            paused = workload.kind == "deployment" and (obj.get("spec") or {}).get("paused")
            if paused and refuse_paused:
                raise ConflictError(
                    f"{workload} in {self.config.namespace} is paused and would not restart "
                    "(kubectl rollout resume it first)",
                    provider=PROVIDER,
                    operation="deployments.get",
                )
            pending.append(workload)
        return pending

    # -- restore

    def restore(
        self, rotation_id: str, *, written: SecretValue | None, previous: SecretValue | None
    ) -> None:
        """Put ``previous`` back if the key still holds this rotation's value; restart again."""
        kube = self._session()
        written_encoded = encode(written) if written is not None else None
        previous_encoded = encode(previous) if previous is not None else None
        outcome = _retry_conflicts(
            lambda: self._restore_secret(kube, rotation_id, written_encoded, previous_encoded)
        )
        if outcome == "untouched":
            return
        marker = self._marker(rotation_id, restored=True)
        written_marker = self._marker(rotation_id)
        for workload in self.workloads:
            try:
                obj = self._read_workload(kube, workload)
            except NotFoundError:
                log.warning("%s in %s is gone; not restarting it", workload, self.config.namespace)
                continue
            mark = _template_annotations(obj).get(RESTARTED_FOR)
            if mark == marker:
                continue
            if outcome == "gone" and mark != written_marker:
                # The Secret is gone: only a workload restarted for this
                # rotation's write is known to hold its value.
                continue
            if workload.kind == "deployment" and (obj.get("spec") or {}).get("paused"):
                log.warning("%s is paused; it reads the old value when resumed", workload)
            self._restart(kube, workload, marker)

    def _restore_secret(
        self,
        kube: KubeSession,
        rotation_id: str,
        written: str | None,
        previous: str | None,
    ) -> str:
        """Undo this rotation's change of the Secret if it is still there.

        Returns ``changed`` (undone now), ``restored`` (undone by an earlier
        call), ``gone`` (no Secret) or ``untouched`` (nothing of this
        rotation in it).
        """
        c = self.config
        secret = self._read_secret(kube)
        if secret is None:
            return "gone"
        data = _data(secret)
        annotations = _annotations(secret)
        current = data.get(c.key)
        if written is not None:
            ours = current == written
        else:
            # The engine lost what it wrote; the annotation says whether the
            # key still holds this rotation's value.
            ours = current is not None and annotations.get(ROTATION_ID) == rotation_id
        if not ours:
            return "restored" if annotations.get(RESTORED_FOR) == rotation_id else "untouched"
        if previous is None:
            others = [k for k in data if k != c.key]
            if not others and annotations.get(CREATED_FOR) == rotation_id:
                self._delete_secret(kube, secret)
                return "changed"
        self._patch_secret(kube, secret, previous, {ROTATION_ID: None, RESTORED_FOR: rotation_id})
        what = "removed key" if previous is None else "restored the previous value of key"
        log.info("%s %s of Secret %s/%s", what, c.key, c.namespace, c.name)
        return "changed"

    # -- permissions

    def permissions(self) -> list[Permission]:
        """Return the RBAC verbs each step needs in the Secret's namespace.

        ``get`` and ``patch`` on the Secret (write, restore), ``get`` and
        ``patch`` on each workload restarted; with ``create``: ``create`` on
        secrets (RBAC cannot name an object that does not exist yet) and
        ``delete`` on the Secret (a restore removes a Secret this rotation
        created). ``rotator check`` also creates selfsubjectaccessreviews,
        which every authenticated identity may, and reads the namespace
        when the Secret is missing (optional: it says so when it may not).
        """
        c = self.config
        where = f"contexts/{c.context}/" if c.context else ""
        where += f"namespaces/{c.namespace}"
        secret = f"{where}/secrets/{c.name}"
        found = [
            Permission(
                "kubernetes", ("get", "patch"), resource=secret, step="target: write secret"
            ),
        ]
        if c.create:
            found += [
                Permission(
                    "kubernetes",
                    ("create",),
                    resource=f"{where}/secrets",
                    step="target: create secret",
                ),
                Permission(
                    "kubernetes", ("delete",), resource=secret, step="target: undo a created secret"
                ),
            ]
        for workload in self.workloads:
            found.append(
                Permission(
                    "kubernetes",
                    ("get", "patch"),
                    resource=f"{where}/{workload.resource}.apps/{workload.name}",
                    step="target: restart workloads",
                )
            )
        return found

    # -- check

    def check(self) -> str:
        """Read the Secret and workloads, and ask (SelfSubjectAccessReview) for every permission."""
        kube = self._session()
        c = self.config
        secret = self._read_secret(kube)
        wanted: list[tuple[str, str, str, str]] = []
        if secret is None:
            if not c.create:
                raise NotFoundError(
                    f"{self._where}: the Secret does not exist and the policy says create: false",
                    provider=PROVIDER,
                    operation="secrets.get",
                )
            seen = f"Secret {c.namespace}/{c.name} absent (will be created"
            try:
                kube.call(
                    "namespaces.get",
                    f"namespaces {c.namespace}",
                    kube.core.read_namespace,
                    c.namespace,
                )
                seen += "; namespace exists)"
            except NotFoundError:
                raise NotFoundError(
                    f"namespace {c.namespace} does not exist",
                    provider=PROVIDER,
                    operation="namespaces.get",
                ) from None
            except PermissionDeniedError:
                # Namespaces are cluster-scoped: a namespaced Role, all rotator
                # needs otherwise, cannot grant reading one. Not knowing is fine.
                seen += "; namespace not readable, not checked)"
            wanted += [("create", "", "secrets", ""), ("delete", "", "secrets", c.name)]
        else:
            if secret.get("immutable") is True:
                raise PermanentError(
                    f"{self._where}: the Secret is immutable; rotator cannot change it",
                    provider=PROVIDER,
                    operation="secrets.get",
                )
            has = "has" if c.key in _data(secret) else "has no"
            seen = f"Secret {c.namespace}/{c.name} readable ({has} key {c.key})"
        wanted.append(("patch", "", "secrets", c.name))
        for workload in self.workloads:
            self._read_workload(kube, workload)
            wanted.append(("patch", "apps", workload.resource, workload.name))
        denied = [w for w in wanted if not self._allowed(kube, *w)]
        if denied:
            raise PermissionDeniedError(
                f"in namespace {c.namespace}, rotator may not "
                + ", ".join(_say(w) for w in denied)
                + " (SelfSubjectAccessReview; grant it in a Role)",
                provider=PROVIDER,
                operation="selfsubjectaccessreviews.create",
            )
        workloads = f"; {len(self.workloads)} workload(s) readable" if self.workloads else ""
        return f"{seen}{workloads}; allowed (SelfSubjectAccessReview): " + ", ".join(
            _say(w) for w in wanted
        )

    def _allowed(self, kube: KubeSession, verb: str, group: str, resource: str, name: str) -> bool:
        """Ask the API server whether this identity may ``verb`` the resource (a dry check)."""
        client = sdk("kubernetes.client")
        review = client.V1SelfSubjectAccessReview(
            api_version="authorization.k8s.io/v1",
            kind="SelfSubjectAccessReview",
            spec=client.V1SelfSubjectAccessReviewSpec(
                resource_attributes=client.V1ResourceAttributes(
                    namespace=self.config.namespace,
                    verb=verb,
                    group=group,
                    resource=resource,
                    name=name or None,
                )
            ),
        )
        reply = kube.call(
            "selfsubjectaccessreviews.create",
            "selfsubjectaccessreviews",
            kube.authorization.create_self_subject_access_review,
            review,
        )
        status = reply.get("status") or {}
        return status.get("allowed") is True


def _say(wanted: tuple[str, str, str, str]) -> str:
    """Render one permission as ``patch secrets/NAME`` (or ``create secrets``)."""
    verb, _group, resource, name = wanted
    return f"{verb} {resource}/{name}" if name else f"{verb} {resource}"
