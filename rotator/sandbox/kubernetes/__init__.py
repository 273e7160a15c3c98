"""An emulated Kubernetes API server: real HTTP, the REST paths the Secret target uses.

No cluster can be run on the machines this project is built on, so the project
carries this stand-in. It is a stdlib ``ThreadingHTTPServer`` on loopback
(plain HTTP) that answers like the API server does, closely enough that the
official ``kubernetes`` client, configured from a generated kubeconfig file,
cannot tell the difference. It imports nothing outside the standard library.

Usage::

    from rotator.sandbox.kubernetes import KubernetesEmulator, Rule

    with KubernetesEmulator() as kube:
        kube.add_namespace("payments")
        kube.put_secret("payments", "payments-db", {"user": "app"})
        kube.add_workload("deployment", "payments", "payments-api")
        os.environ["KUBECONFIG"] = str(kube.kubeconfig_path)
        kube.authorize_only(Rule(verbs={"get"}, resources={"secrets"}))
        kube.inject_fault(503, method="PATCH", count=1, retry_after=2)

From a shell, ``python -m rotator.sandbox.kubernetes [--port N]
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
``Retry-After``, for the next N matching requests), :meth:`clear_faults`
(drop those still waiting), :attr:`requests` (every request as received:
method, path, query, content type, body), :meth:`secret` and
:meth:`workload` (the stored objects).
"""

from rotator.sandbox.kubernetes.objects import merge_patch
from rotator.sandbox.kubernetes.rbac import Rule
from rotator.sandbox.kubernetes.server import KubernetesEmulator, RecordedRequest

__all__ = ["KubernetesEmulator", "RecordedRequest", "Rule", "merge_patch"]
