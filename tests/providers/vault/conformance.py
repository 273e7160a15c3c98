"""One script of Vault requests, run against the emulator and a real server, answers compared.

Each :class:`Step` is one request: either an hvac call made the way rotator's
adapters make it::

    hvac_call("kv.read.latest", "secrets.kv.v2.read_secret_version", path="app", ...)

or a raw HTTP request around them::

    http("approle.login.no-role-id", "POST", "auth/$approle/login", {}, token="")

Strings in paths and arguments are ``string.Template`` text: ``$kv``,
``$approle``, ``$ns`` and the other names of :func:`names` (unique per run,
so a shared server stays usable), and values an earlier step saved from its
answer (``save={"sid": "data.secret_id"}``: a token, an accessor, a
secret-id). hvac sends them through its raw adapter with exceptions off, so
every answer, refusals included, comes back as it was on the wire.

:func:`run` plays the script against one server and returns, per step, an
:class:`Observation`: the HTTP status, the ``Content-Type``, the texts the
adapters match on (the ``errors`` list, ``data.error`` split as they split it,
and the ``warnings`` list) and the key paths of the JSON answer (values differ
between servers: ids, tokens, times), with the run's names and saved values
written back as ``${name}``. :func:`differences` compares two runs.
"""

from __future__ import annotations

import json
import string
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import hvac
import requests
from hvac.adapters import RawAdapter

from providers.vault.errors import unwrap

#: The policy a least-privilege token holds: read one KV path, nothing else.
READER_POLICY = 'path "$kv/data/app" { capabilities = ["read"] }\n'


@dataclass(frozen=True)
class Step:
    """One request of the script (see the module docstring)."""

    id: str
    #: An hvac method path (``secrets.kv.v2.read_secret_version``) or an HTTP verb.
    call: str
    #: The request path after ``/v1/`` (raw HTTP steps only).
    path: str = ""
    #: hvac keyword arguments, or the JSON body of a raw request (``None``: no body).
    args: Any = None
    #: Whose token: ``root``, a name an earlier step saved, or ``""`` for none.
    token: str = "root"
    #: ``X-Vault-Namespace`` (``""``: none).
    namespace: str = ""
    #: Name -> dotted path in the JSON answer, for later steps.
    save: Mapping[str, str] = field(default_factory=dict)

    @property
    def raw(self) -> bool:
        """Whether this step is a raw HTTP request rather than an hvac call."""
        return self.call.isupper()


def hvac_call(
    id: str,
    call: str,
    *,
    token: str = "root",
    namespace: str = "",
    save: Mapping[str, str] | None = None,
    **args: Any,
) -> Step:
    """A step calling hvac's ``call`` with keyword ``args``."""
    return Step(id, call, "", args, token, namespace, save or {})


def http(
    id: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str = "root",
    namespace: str = "",
    save: Mapping[str, str] | None = None,
) -> Step:
    """A step sending one raw HTTP request (with hvac's headers)."""
    return Step(id, method, path, body, token, namespace, save or {})


KV = {"mount_point": "$kv"}
APPROLE = {"mount_point": "$approle", "role_name": "app"}
CAS_REQUIRED = {"path": "guarded", "max_versions": 0, "cas_required": True}

SCRIPT: tuple[Step, ...] = (
    # -- mounts and auth methods
    hvac_call(
        "sys.mounts.enable",
        "sys.enable_secrets_engine",
        backend_type="kv",
        path="$kv",
        options={"version": "2"},
    ),
    hvac_call(
        "sys.mounts.enable.conflict",
        "sys.enable_secrets_engine",
        backend_type="kv",
        path="$kv",
        options={"version": "2"},
    ),
    http("sys.mounts.read", "GET", "sys/mounts/$kv"),
    hvac_call("sys.mounts.tune.read", "sys.read_mount_configuration", path="$kv"),
    hvac_call("sys.auth.enable", "sys.enable_auth_method", method_type="approle", path="$approle"),
    http("sys.auth.read", "GET", "sys/auth/$approle"),
    hvac_call("sys.auth.tune.read", "sys.read_auth_method_tuning", path="$approle"),
    # -- KV v2: engine settings, versions, check-and-set
    hvac_call("kv.config.write", "secrets.kv.v2.configure", max_versions=5, **KV),
    hvac_call("kv.config.read", "secrets.kv.v2.read_configuration", **KV),
    hvac_call(
        "kv.read.missing",
        "secrets.kv.v2.read_secret_version",
        path="app",
        raise_on_deleted_version=True,
        **KV,
    ),
    hvac_call("kv.metadata.read.missing", "secrets.kv.v2.read_secret_metadata", path="app", **KV),
    hvac_call(
        "kv.write.create",
        "secrets.kv.v2.create_or_update_secret",
        path="app",
        secret={"password": "one"},
        cas=0,
        **KV,
    ),
    hvac_call(
        "kv.write.create-again",
        "secrets.kv.v2.create_or_update_secret",
        path="app",
        secret={"password": "again"},
        cas=0,
        **KV,
    ),
    hvac_call(
        "kv.write.cas-mismatch",
        "secrets.kv.v2.create_or_update_secret",
        path="app",
        secret={"password": "late"},
        cas=7,
        **KV,
    ),
    http(
        "kv.write.cas-unparsable",
        "POST",
        "$kv/data/app",
        {"options": {"cas": "seven"}, "data": {"password": "x"}},
    ),
    hvac_call(
        "kv.write.update",
        "secrets.kv.v2.create_or_update_secret",
        path="app",
        secret={"password": "two", "user": "svc"},
        cas=1,
        **KV,
    ),
    http("kv.write.no-data", "POST", "$kv/data/app", {"options": {}}),
    hvac_call(
        "kv.read.latest",
        "secrets.kv.v2.read_secret_version",
        path="app",
        raise_on_deleted_version=True,
        **KV,
    ),
    hvac_call(
        "kv.read.version",
        "secrets.kv.v2.read_secret_version",
        path="app",
        version=1,
        raise_on_deleted_version=True,
        **KV,
    ),
    hvac_call(
        "kv.read.version-missing",
        "secrets.kv.v2.read_secret_version",
        path="app",
        version=9,
        raise_on_deleted_version=True,
        **KV,
    ),
    hvac_call("kv.metadata.read", "secrets.kv.v2.read_secret_metadata", path="app", **KV),
    hvac_call(
        "kv.metadata.write",
        "secrets.kv.v2.update_metadata",
        path="app",
        max_versions=4,
        cas_required=False,
        delete_version_after="0s",
        custom_metadata={"rotator_rotation_id": "r1"},
        **KV,
    ),
    hvac_call("kv.metadata.read.custom", "secrets.kv.v2.read_secret_metadata", path="app", **KV),
    hvac_call(
        "kv.metadata.write.cas-required", "secrets.kv.v2.update_metadata", **CAS_REQUIRED, **KV
    ),
    hvac_call(
        "kv.write.cas-required",
        "secrets.kv.v2.create_or_update_secret",
        path="guarded",
        secret={"password": "x"},
        **KV,
    ),
    # A mount that mandates check-and-set: a key's metadata may not turn it off (a warning).
    hvac_call("kv.config.write.cas-required", "secrets.kv.v2.configure", cas_required=True, **KV),
    hvac_call(
        "kv.metadata.write.cas-mandated",
        "secrets.kv.v2.update_metadata",
        path="app",
        cas_required=False,
        custom_metadata={"rotator_rotation_id": "r1"},
        **KV,
    ),
    hvac_call("kv.config.write.cas-optional", "secrets.kv.v2.configure", cas_required=False, **KV),
    # Paths a KV v2 mount does not serve: 404 with a warning and no errors list.
    http("kv.invalid-path", "GET", "$kv/app"),
    http("kv.invalid-path.root", "GET", "$kv/data/"),
    # -- KV v2: soft delete, undelete, destroy
    hvac_call(
        "kv.delete.latest", "secrets.kv.v2.delete_latest_version_of_secret", path="app", **KV
    ),
    hvac_call(
        "kv.read.deleted",
        "secrets.kv.v2.read_secret_version",
        path="app",
        raise_on_deleted_version=True,
        **KV,
    ),
    hvac_call(
        "kv.undelete", "secrets.kv.v2.undelete_secret_versions", path="app", versions=[2], **KV
    ),
    hvac_call(
        "kv.read.undeleted",
        "secrets.kv.v2.read_secret_version",
        path="app",
        raise_on_deleted_version=True,
        **KV,
    ),
    hvac_call(
        "kv.delete.versions", "secrets.kv.v2.delete_secret_versions", path="app", versions=[1], **KV
    ),
    http("kv.delete.versions.none", "POST", "$kv/delete/app", {"versions": []}),
    hvac_call(
        "kv.read.version-deleted",
        "secrets.kv.v2.read_secret_version",
        path="app",
        version=1,
        raise_on_deleted_version=True,
        **KV,
    ),
    hvac_call(
        "kv.destroy", "secrets.kv.v2.destroy_secret_versions", path="app", versions=[1], **KV
    ),
    hvac_call(
        "kv.read.version-destroyed",
        "secrets.kv.v2.read_secret_version",
        path="app",
        version=1,
        raise_on_deleted_version=True,
        **KV,
    ),
    hvac_call(
        "kv.metadata.read.after-destroy", "secrets.kv.v2.read_secret_metadata", path="app", **KV
    ),
    # -- KV v2: lists and removal
    hvac_call(
        "kv.write.nested",
        "secrets.kv.v2.create_or_update_secret",
        path="dir/leaf",
        secret={"password": "x"},
        **KV,
    ),
    hvac_call("kv.list", "secrets.kv.v2.list_secrets", path="", **KV),
    hvac_call("kv.list.folder", "secrets.kv.v2.list_secrets", path="dir", **KV),
    hvac_call("kv.list.empty", "secrets.kv.v2.list_secrets", path="nothing", **KV),
    hvac_call(
        "kv.metadata.delete",
        "secrets.kv.v2.delete_metadata_and_all_versions",
        path="dir/leaf",
        **KV,
    ),
    hvac_call(
        "kv.metadata.delete.missing",
        "secrets.kv.v2.delete_metadata_and_all_versions",
        path="dir/leaf",
        **KV,
    ),
    hvac_call(
        "kv.read.no-mount",
        "secrets.kv.v2.read_secret_version",
        path="app",
        mount_point="$nowhere",
        raise_on_deleted_version=True,
    ),
    # -- policies and ACL refusals with a least-privilege token
    hvac_call(
        "sys.policy.write", "sys.create_or_update_acl_policy", name="$reader", policy=READER_POLICY
    ),
    hvac_call("sys.policy.read", "sys.read_acl_policy", name="$reader"),
    http("sys.policy.read.legacy", "GET", "sys/policy/$reader"),
    hvac_call("sys.policy.read.missing", "sys.read_acl_policy", name="$nowhere"),
    hvac_call(
        "token.create-orphan",
        "auth.token.create_orphan",
        policies=["$reader"],
        meta={"rotator_rotation_id": "r1"},
        display_name="conformance",
        ttl="1h",
        save={"reader_token": "auth.client_token", "reader_accessor": "auth.accessor"},
    ),
    hvac_call(
        "acl.kv.read.allowed",
        "secrets.kv.v2.read_secret_version",
        path="app",
        raise_on_deleted_version=True,
        token="reader_token",
        **KV,
    ),
    hvac_call(
        "acl.kv.read.denied",
        "secrets.kv.v2.read_secret_version",
        path="guarded",
        raise_on_deleted_version=True,
        token="reader_token",
        **KV,
    ),
    hvac_call(
        "acl.kv.write.denied",
        "secrets.kv.v2.create_or_update_secret",
        path="app",
        secret={"password": "x"},
        cas=2,
        token="reader_token",
        **KV,
    ),
    hvac_call(
        "acl.kv.list.denied", "secrets.kv.v2.list_secrets", path="", token="reader_token", **KV
    ),
    http("acl.sys.mounts.denied", "GET", "sys/mounts", token="reader_token"),
    hvac_call(
        "acl.token.create-orphan.denied",
        "auth.token.create_orphan",
        policies=["$reader"],
        ttl="1h",
        token="reader_token",
    ),
    hvac_call(
        "acl.capabilities-self",
        "sys.get_capabilities",
        paths=["$kv/data/app", "$kv/metadata/app"],
        token="reader_token",
    ),
    hvac_call(
        "acl.capabilities-self.one-path",
        "sys.get_capabilities",
        paths=["$kv/data/app"],
        token="reader_token",
    ),
    hvac_call("acl.capabilities-self.root", "sys.get_capabilities", paths=["$kv/data/app"]),
    hvac_call(
        "acl.unknown-token",
        "secrets.kv.v2.read_secret_version",
        path="app",
        raise_on_deleted_version=True,
        token="bogus",
        **KV,
    ),
    http("acl.no-token", "GET", "$kv/data/app", token=""),
    # -- tokens and accessors
    hvac_call(
        "token.create-orphan.ttl-capped",
        "auth.token.create_orphan",
        policies=["$reader"],
        ttl="2h",
        explicit_max_ttl="1h",
    ),
    hvac_call(
        "token.create-orphan.periodic",
        "auth.token.create_orphan",
        policies=["$reader"],
        meta={"rotator_rotation_id": "r2"},
        period="1h",
        save={"periodic_token": "auth.client_token", "periodic_accessor": "auth.accessor"},
    ),
    hvac_call("token.lookup-self", "auth.token.lookup_self", token="reader_token"),
    hvac_call("token.renew-self", "auth.token.renew_self", increment="30m", token="reader_token"),
    hvac_call("token.renew-self.periodic", "auth.token.renew_self", token="periodic_token"),
    hvac_call("token.lookup-accessor", "auth.token.lookup_accessor", accessor="$reader_accessor"),
    hvac_call("token.lookup-accessor.missing", "auth.token.lookup_accessor", accessor="$nowhere"),
    hvac_call("token.accessors.list", "auth.token.list_accessors"),
    hvac_call("token.accessors.list.denied", "auth.token.list_accessors", token="reader_token"),
    hvac_call("token.revoke-accessor", "auth.token.revoke_accessor", accessor="$periodic_accessor"),
    hvac_call("token.lookup-self.revoked", "auth.token.lookup_self", token="periodic_token"),
    hvac_call("token.revoke-accessor.missing", "auth.token.revoke_accessor", accessor="$nowhere"),
    # -- AppRole: the role, its secret-ids, logins
    hvac_call(
        "approle.role.write",
        "auth.approle.create_or_update_approle",
        token_policies=["$reader"],
        token_ttl="1h",
        secret_id_ttl="2h",
        **APPROLE,
    ),
    hvac_call("approle.role.read", "auth.approle.read_role", **APPROLE),
    hvac_call("approle.role.list", "auth.approle.list_roles", mount_point="$approle"),
    hvac_call(
        "approle.role-id.read",
        "auth.approle.read_role_id",
        save={"role_id": "data.role_id"},
        **APPROLE,
    ),
    hvac_call("approle.secret-id.list.empty", "auth.approle.list_secret_id_accessors", **APPROLE),
    hvac_call(
        "approle.secret-id.generate",
        "auth.approle.generate_secret_id",
        metadata={"rotator_rotation_id": "r1"},
        save={"sid": "data.secret_id", "sid_accessor": "data.secret_id_accessor"},
        **APPROLE,
    ),
    hvac_call(
        "approle.secret-id.generate.plain",
        "auth.approle.generate_secret_id",
        save={"sid2": "data.secret_id", "sid2_accessor": "data.secret_id_accessor"},
        **APPROLE,
    ),
    hvac_call("approle.secret-id.list", "auth.approle.list_secret_id_accessors", **APPROLE),
    hvac_call(
        "approle.secret-id.lookup", "auth.approle.read_secret_id", secret_id="$sid", **APPROLE
    ),
    hvac_call(
        "approle.secret-id.lookup.missing",
        "auth.approle.read_secret_id",
        secret_id="$nowhere",
        **APPROLE,
    ),
    hvac_call(
        "approle.secret-id-accessor.lookup",
        "auth.approle.read_secret_id_accessor",
        secret_id_accessor="$sid_accessor",
        **APPROLE,
    ),
    hvac_call(
        "approle.secret-id-accessor.lookup.missing",
        "auth.approle.read_secret_id_accessor",
        secret_id_accessor="$nowhere",
        **APPROLE,
    ),
    hvac_call(
        "approle.login",
        "auth.approle.login",
        role_id="$role_id",
        secret_id="$sid",
        use_token=False,
        mount_point="$approle",
        token="",
        save={"login_token": "auth.client_token"},
    ),
    hvac_call("approle.login.lookup-self", "auth.token.lookup_self", token="login_token"),
    hvac_call(
        "approle.login.wrong-secret-id",
        "auth.approle.login",
        role_id="$role_id",
        secret_id="$nowhere",
        use_token=False,
        mount_point="$approle",
        token="",
    ),
    hvac_call(
        "approle.login.wrong-role-id",
        "auth.approle.login",
        role_id="$nowhere",
        secret_id="$sid",
        use_token=False,
        mount_point="$approle",
        token="",
    ),
    http(
        "approle.login.empty-role-id",
        "POST",
        "auth/$approle/login",
        {"role_id": "", "secret_id": "$sid"},
        token="",
    ),
    http("approle.login.no-role-id", "POST", "auth/$approle/login", {}, token=""),
    http(
        "approle.login.no-secret-id",
        "POST",
        "auth/$approle/login",
        {"role_id": "$role_id"},
        token="",
    ),
    hvac_call(
        "approle.secret-id-accessor.destroy",
        "auth.approle.destroy_secret_id_accessor",
        secret_id_accessor="$sid_accessor",
        **APPROLE,
    ),
    hvac_call(
        "approle.secret-id-accessor.destroy.missing",
        "auth.approle.destroy_secret_id_accessor",
        secret_id_accessor="$sid_accessor",
        **APPROLE,
    ),
    hvac_call(
        "approle.login.destroyed-secret-id",
        "auth.approle.login",
        role_id="$role_id",
        secret_id="$sid",
        use_token=False,
        mount_point="$approle",
        token="",
    ),
    hvac_call(
        "approle.secret-id.destroy", "auth.approle.destroy_secret_id", secret_id="$sid2", **APPROLE
    ),
    hvac_call(
        "approle.secret-id.list.all-destroyed", "auth.approle.list_secret_id_accessors", **APPROLE
    ),
    hvac_call(
        "approle.secret-id.generate.no-role",
        "auth.approle.generate_secret_id",
        role_name="ghost",
        mount_point="$approle",
    ),
    hvac_call(
        "approle.secret-id.lookup.no-role",
        "auth.approle.read_secret_id",
        role_name="ghost",
        secret_id="$sid",
        mount_point="$approle",
    ),
    hvac_call(
        "approle.secret-id-accessor.destroy.no-role",
        "auth.approle.destroy_secret_id_accessor",
        role_name="ghost",
        secret_id_accessor="$sid_accessor",
        mount_point="$approle",
    ),
    hvac_call("approle.role.delete", "auth.approle.delete_role", **APPROLE),
    # -- namespaces: create, use through X-Vault-Namespace, unknown, delete
    hvac_call("ns.create", "sys.create_namespace", path="$ns"),
    http("ns.read", "GET", "sys/namespaces/$ns"),
    http("ns.read.missing", "GET", "sys/namespaces/$nowhere"),
    hvac_call("ns.child.create", "sys.create_namespace", path="team", namespace="$ns"),
    hvac_call("ns.list", "sys.list_namespaces", namespace="$ns"),
    hvac_call(
        "ns.mounts.enable",
        "sys.enable_secrets_engine",
        backend_type="kv",
        path="kv",
        options={"version": "2"},
        namespace="$ns",
    ),
    http("ns.mounts.list", "GET", "sys/mounts", namespace="$ns"),
    http("ns.mounts.read.path-prefix", "GET", "$ns/sys/mounts/kv"),
    http("ns.auth.list", "GET", "sys/auth", namespace="$ns"),
    hvac_call("ns.policy.list", "sys.list_acl_policies", namespace="$ns"),
    hvac_call(
        "ns.kv.write",
        "secrets.kv.v2.create_or_update_secret",
        path="app",
        secret={"password": "ns"},
        mount_point="kv",
        namespace="$ns",
    ),
    hvac_call(
        "ns.kv.read",
        "secrets.kv.v2.read_secret_version",
        path="app",
        mount_point="kv",
        raise_on_deleted_version=True,
        namespace="$ns",
    ),
    http("ns.kv.read.path-prefix", "GET", "$ns/kv/data/app"),
    hvac_call(
        "ns.token.create-orphan",
        "auth.token.create_orphan",
        ttl="1h",
        namespace="$ns",
        save={"ns_token": "auth.client_token"},
    ),
    hvac_call("ns.token.lookup-self", "auth.token.lookup_self", token="ns_token", namespace="$ns"),
    hvac_call("ns.token.outside", "auth.token.lookup_self", token="ns_token"),
    hvac_call(
        "ns.unknown.kv.read",
        "secrets.kv.v2.read_secret_version",
        path="app",
        mount_point="kv",
        raise_on_deleted_version=True,
        namespace="$ns/nowhere",
    ),
    hvac_call(
        "ns.unknown.kv.metadata.read",
        "secrets.kv.v2.read_secret_metadata",
        path="app",
        mount_point="kv",
        namespace="$nowhere",
    ),
    hvac_call(
        "ns.unknown.kv.metadata.delete",
        "secrets.kv.v2.delete_metadata_and_all_versions",
        path="app",
        mount_point="kv",
        namespace="$nowhere",
    ),
    hvac_call("ns.unknown.lookup-self", "auth.token.lookup_self", token="", namespace="$nowhere"),
    http(
        "ns.unknown.approle.login",
        "POST",
        "auth/$approle/login",
        {"role_id": "$role_id", "secret_id": "$sid"},
        token="",
        namespace="$nowhere",
    ),
    hvac_call("ns.child.delete", "sys.delete_namespace", path="team", namespace="$ns"),
    # -- random bytes
    http("sys.random.base64", "POST", "sys/tools/random/32", {"format": "base64"}),
    http("sys.random.hex", "POST", "sys/tools/random", {"bytes": 16, "format": "hex"}),
    http("sys.random.bad-format", "POST", "sys/tools/random/8", {"format": "base32"}),
    # -- removing what the script added
    hvac_call("sys.policy.delete", "sys.delete_acl_policy", name="$reader"),
    hvac_call("sys.auth.disable", "sys.disable_auth_method", path="$approle"),
    hvac_call("sys.auth.disable.missing", "sys.disable_auth_method", path="$approle"),
    hvac_call("sys.mounts.disable", "sys.disable_secrets_engine", path="$kv"),
    hvac_call(
        "kv.read.unmounted",
        "secrets.kv.v2.read_secret_version",
        path="app",
        raise_on_deleted_version=True,
        **KV,
    ),
)


def names(prefix: str | None = None) -> dict[str, str]:
    """The names the script creates things under, unique per run unless ``prefix`` is given."""
    p = prefix or f"cf{uuid.uuid4().hex[:8]}"
    return {
        "kv": f"{p}-kv",
        "approle": f"{p}-approle",
        "reader": f"{p}-reader",
        "ns": f"{p}-ns",
        "nowhere": f"{p}-nowhere",
    }


@dataclass(frozen=True)
class Observation:
    """What one step's answer looked like, without the values that differ between servers."""

    status: int
    content_type: str | None
    #: The ``errors`` list, or ``None`` when the answer has no ``errors`` key.
    errors: tuple[str, ...] | None
    #: Every key path of the JSON answer (``data.metadata.version``; ``[]`` for list items).
    keys: frozenset[str]
    #: ``data.error`` split into its messages as the adapters split it (how Vault words an
    #: error it answers with a status of its choosing), or ``None`` when there is none.
    error: tuple[str, ...] | None = None
    #: The ``warnings`` list, or ``None`` when the answer has none (``null`` or no key).
    warnings: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Difference:
    """One way a step's answer differs between the emulator and the real server."""

    step: str
    #: ``status``, ``content type``, ``errors``, ``data.error``, ``warnings`` or ``key``.
    aspect: str
    #: The key path of a ``key`` difference (names templated back: ``${kv}/``), else "".
    key: str
    emulator: str
    server: str

    def __str__(self) -> str:
        what = f"key {self.key}" if self.aspect == "key" else self.aspect
        return f"{self.step}: {what}: emulator {self.emulator}, OpenBao {self.server}"


def key_paths(value: Any, prefix: str = "") -> Iterator[str]:
    """Every key path in a JSON value: ``a``, ``a.b``; list items descend as ``a.[]``."""
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}{key}"
            yield path
            yield from key_paths(item, path + ".")
    elif isinstance(value, list):
        for item in value:
            yield from key_paths(item, prefix + "[].")


def untemplate(text: str, context: Mapping[str, str]) -> str:
    """Write a run's names and saved values back as ``${name}``, so both runs read alike."""
    for name, value in sorted(context.items(), key=lambda item: -len(item[1])):
        if len(value) >= _SHORTEST_TEMPLATED:
            text = text.replace(value, f"${{{name}}}")
    return text


#: Values shorter than this are left alone when templating back (they could be anywhere).
_SHORTEST_TEMPLATED = 6


def observe(response: requests.Response, context: Mapping[str, str]) -> Observation:
    """Reduce an HTTP answer to what the comparison looks at, the run's values templated back."""
    body: Any = None
    if response.content.strip():
        body = response.json()
    return observation(response.status_code, response.headers.get("Content-Type"), body, context)


def observation(
    status: int, content_type: str | None, body: Any, context: Mapping[str, str]
) -> Observation:
    """Reduce an answer's status, Content-Type and JSON body (``None``: none) to an Observation."""
    errors = error = warnings = None
    if isinstance(body, dict):
        if "errors" in body:
            errors = tuple(untemplate(str(e), context) for e in body["errors"] or ())
        data = body.get("data")
        if isinstance(data, dict) and isinstance(data.get("error"), str):
            error = tuple(untemplate(e, context) for e in unwrap(data["error"]))
        if body.get("warnings") is not None:
            warnings = tuple(untemplate(str(w), context) for w in body["warnings"])
    return Observation(
        status,
        content_type,
        errors,
        frozenset(untemplate(key, context) for key in key_paths(body)),
        error,
        warnings,
    )


def _fill(value: Any, context: Mapping[str, str]) -> Any:
    """Substitute ``$name`` in every string of a JSON-like value."""
    if isinstance(value, str):
        return string.Template(value).substitute(context)
    if isinstance(value, dict):
        return {k: _fill(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, context) for v in value]
    return value


def _dig(body: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        body = body.get(part) if isinstance(body, dict) else None
    return body


def run(url: str, root_token: str, run_names: Mapping[str, str]) -> dict[str, Observation]:
    """Play :data:`SCRIPT` against the server at ``url``; return each step's observation."""
    client = hvac.Client(url=url, adapter=RawAdapter, ignore_exceptions=True)
    context: dict[str, str] = {**run_names, "root": root_token, "bogus": "not-a-token"}
    observed: dict[str, Observation] = {}
    try:
        for step in SCRIPT:
            client.token = context[step.token] if step.token else None
            client.adapter.namespace = _fill(step.namespace, context) or None
            if step.raw:
                response = client.adapter.request(
                    step.call, f"/v1/{_fill(step.path, context)}", json=_fill(step.args, context)
                )
            else:
                method: Any = client
                for part in step.call.split("."):
                    method = getattr(method, part)
                response = method(**_fill(step.args or {}, context))
            observed[step.id] = observe(response, context)
            body = response.json() if step.save else None
            for name, dotted in step.save.items():
                value = _dig(body, dotted)
                if not isinstance(value, str) or not value:
                    raise AssertionError(
                        f"{step.id}: the answer (HTTP {response.status_code}) has no {dotted} "
                        "for later steps"
                    )
                context[name] = value
    finally:
        _clean_up(client, context)
        client.adapter.close()
    return observed


def _clean_up(client: hvac.Client, context: Mapping[str, str]) -> None:
    """Remove what a failed run may have left (every request may fail: it is best effort)."""
    client.token = context["root"]
    client.adapter.namespace = context["ns"]
    client.adapter.request("DELETE", "/v1/sys/namespaces/team")
    client.adapter.namespace = None
    for path in (
        f"sys/namespaces/{context['ns']}",
        f"sys/mounts/{context['kv']}",
        f"sys/auth/{context['approle']}",
        f"sys/policies/acl/{context['reader']}",
    ):
        client.adapter.request("DELETE", f"/v1/{path}")


def _texts(texts: Sequence[str] | None) -> str:
    """Write a list of texts as the docs table does: JSON, or ``none`` when there is none."""
    return "none" if texts is None else json.dumps(list(texts))


def differences(
    emulator: Mapping[str, Observation], server: Mapping[str, Observation]
) -> list[Difference]:
    """Every difference between two runs of the script, step by step, in script order."""
    found: list[Difference] = []
    for step in SCRIPT:
        ours, theirs = emulator[step.id], server[step.id]
        if ours.status != theirs.status:
            found.append(Difference(step.id, "status", "", str(ours.status), str(theirs.status)))
        if ours.content_type != theirs.content_type:
            found.append(
                Difference(
                    step.id,
                    "content type",
                    "",
                    str(ours.content_type or "none"),
                    str(theirs.content_type or "none"),
                )
            )
        for aspect, mine, other in (
            ("errors", ours.errors, theirs.errors),
            ("data.error", ours.error, theirs.error),
            ("warnings", ours.warnings, theirs.warnings),
        ):
            if mine != other:
                found.append(Difference(step.id, aspect, "", _texts(mine), _texts(other)))
        for key in sorted(ours.keys - theirs.keys):
            found.append(Difference(step.id, "key", key, "present", "absent"))
        for key in sorted(theirs.keys - ours.keys):
            found.append(Difference(step.id, "key", key, "absent", "present"))
    return found
