"""The API server's REST paths: routing, authorization, and the verbs on each kind of object.

Paths: ``GET /api/v1/namespaces/{ns}``; ``GET``/``POST`` ``/api/v1/namespaces/{ns}/secrets``
and ``GET``/``PUT``/``PATCH``/``DELETE`` ``.../secrets/{name}``; ``GET``/``PATCH``/``PUT``
``/apis/apps/v1/namespaces/{ns}/{deployments,statefulsets,daemonsets}/{name}``; ``POST
/apis/authorization.k8s.io/v1/selfsubjectaccessreviews`` (see the package docstring).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

from rotator.sandbox.kubernetes.objects import (
    PATCH_TYPES,
    WORKLOAD_KINDS,
    ObjectStore,
    has_directives,
    merge_patch,
    normalise_secret,
    server_meta,
)
from rotator.sandbox.kubernetes.status import (
    JSON,
    MODIFIED,
    ApiError,
    bad_request,
    conflict,
    details,
    invalid,
    not_allowed,
    not_found,
    qualified,
)

_NAMESPACE = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)$")
_SECRETS = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/secrets(?:/(?P<name>[^/]+))?$")
_WORKLOADS = re.compile(
    r"^/apis/apps/v1/namespaces/(?P<ns>[^/]+)/(?P<res>deployments|statefulsets|daemonsets)"
    r"(?:/(?P<name>[^/]+))?$"
)
_SSAR = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
_VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}

#: Tells whether a user may use a verb on a resource (group, resource, name): RBAC's answer.
Allowed = Callable[[str, str, str, str], bool]


class KubernetesApi:
    """Answers the API server's REST paths over the stored objects, checking every request."""

    def __init__(self, objects: ObjectStore, allowed: Allowed) -> None:
        self._objects = objects
        self._allowed = allowed

    def route(
        self,
        method: str,
        path: str,
        content_type: str,
        body: Any,
        user: str,
        *,
        dry_run: bool,
    ) -> tuple[int, JSON]:
        """Answer one authenticated request (the store's lock held): its status and body."""
        if path == _SSAR:
            if method != "POST":
                raise not_allowed()
            return 201, self._review(body)
        if (match := _NAMESPACE.match(path)) is not None:
            if method != "GET":
                raise not_allowed()
            ns = match["ns"]
            self._authorize(user, "get", "", "namespaces", "", ns)
            found = self._objects.namespaces.get(ns)
            if found is None:
                raise not_found("namespaces", "", ns)
            return 200, copy.deepcopy(found)
        if (match := _SECRETS.match(path)) is not None:
            ns, name = match["ns"], match["name"]
            verb = _VERBS.get(method)
            if verb is None or (name is None and method not in ("GET", "POST")):
                raise not_allowed()
            if name is None and method == "GET":
                verb = "list"
            self._authorize(user, verb, "", "secrets", ns, name or "")
            return self._secrets(method, ns, name, content_type, body, dry_run=dry_run)
        if (match := _WORKLOADS.match(path)) is not None:
            ns, resource, name = match["ns"], match["res"], match["name"]
            if name is None or method not in ("GET", "PATCH", "PUT"):
                raise not_allowed()
            self._authorize(user, _VERBS[method], "apps", resource, ns, name)
            return self._workloads(method, resource, ns, name, content_type, body, dry_run=dry_run)
        raise ApiError(404, "NotFound", "the server could not find the requested resource", {})

    def _authorize(
        self, user: str, verb: str, group: str, resource: str, ns: str, name: str
    ) -> None:
        if self._allowed(verb, group, resource, name):
            return
        what = f'{qualified(resource, group)} "{name}"' if name else qualified(resource, group)
        raise ApiError(
            403,
            "Forbidden",
            f'{what} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
            f'in API group "{group}" in the namespace "{ns}"',
            details(resource, group, name),
        )

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
        allowed = self._allowed(
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
        secrets = self._objects.secrets
        if name is None:
            if method == "GET":
                items = [copy.deepcopy(s) for (n, _), s in sorted(secrets.items()) if n == ns]
                return 200, {
                    "kind": "SecretList",
                    "apiVersion": "v1",
                    "metadata": {"resourceVersion": str(self._objects.revision)},
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
        normalise_secret(updated, name)
        if current.get("immutable") is True and (
            updated.get("data") != current.get("data") or updated.get("immutable") is not True
        ):
            raise invalid(
                "Secret", name, "data: Forbidden: field is immutable when `immutable` is set"
            )
        return 200, self._keep(("secrets", ns, name), current, updated, dry_run=dry_run)

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
        if ns not in self._objects.namespaces:
            raise not_found("namespaces", "", ns)
        if (ns, name) in self._objects.secrets:
            raise ApiError(
                409,
                "AlreadyExists",
                f'secrets "{name}" already exists',
                details("secrets", "", name),
            )
        secret = self._objects.new_object("v1", "Secret", name, ns)
        for key in ("labels", "annotations"):
            if meta.get(key):
                secret["metadata"][key] = dict(meta[key])
        for key in ("data", "stringData", "immutable"):
            if key in body:
                secret[key] = copy.deepcopy(body[key])
        secret["type"] = body.get("type") or "Opaque"
        normalise_secret(secret, name)
        if not dry_run:
            self._objects.secrets[(ns, name)] = secret
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
        current = self._objects.workloads.get((resource, ns, name))
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
        return 200, self._keep((resource, ns, name), current, updated, dry_run=dry_run)

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
            raise conflict(resource, group, name, MODIFIED)
        updated = copy.deepcopy(body)
        updated["kind"] = current["kind"]
        updated["apiVersion"] = current["apiVersion"]
        updated["metadata"] = {**(body.get("metadata") or {}), **server_meta(current)}
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
        if content_type == "application/strategic-merge-patch+json" and has_directives(patch):
            raise bad_request(
                "emulator: strategic merge patch directives ($patch...) are not served"
            )
        version = (patch.get("metadata") or {}).get("resourceVersion")
        if version is not None and version != current["metadata"]["resourceVersion"]:
            raise conflict(resource, group, name, MODIFIED)
        updated = merge_patch(current, patch)
        if not isinstance(updated, dict):
            raise bad_request("the patch must be a JSON object")
        updated["kind"] = current["kind"]
        updated["apiVersion"] = current["apiVersion"]
        updated["metadata"] = {**(updated.get("metadata") or {}), **server_meta(current)}
        return updated

    def _keep(
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
        updated["metadata"]["resourceVersion"] = self._objects.next_version()
        resource, ns, name = key
        if resource == "secrets":
            self._objects.secrets[(ns, name)] = updated
        else:
            self._objects.workloads[(resource, ns, name)] = updated
        return copy.deepcopy(updated)
