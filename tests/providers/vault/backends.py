"""Vault backends for the adapter tests: the emulator, and a real server (OpenBao unless named).

The fixtures live in ``conftest_backends`` (test modules load it with
``pytest_plugins``; the emulator's own fixtures are in ``conftest.py``,
owned separately). The ``vault_backend`` fixture is parametrized over:

- ``emulator``: :class:`rotator.sandbox.vault.VaultEmulator` on loopback,
  driven by a step clock shared with the adapters' runtime;
- ``openbao``: a real OpenBao dev server, the session's (the ``openbao``
  fixture in ``tests/conftest.py``), its clock the wall clock; or, when
  ``VAULT_ADDR`` and ``VAULT_TOKEN`` are set, ``vault``: the real Vault they
  name instead (a token allowed to mount engines and auth methods, write
  policies and list token accessors, such as a dev server's root token).
  Read at import time, before any test rewrites the environment.

Each test gets a unique prefix. Fixtures mount a KV v2 engine and an AppRole
auth method at prefixed paths, write prefixed policies, and remove all of it
afterwards. The adapters run with least-privilege tokens holding exactly the
policies from :func:`kv_policy`, :func:`approle_policy` and
:func:`token_policy`, the ones the docs recommend.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import hvac
import pytest

from rotator.adapters.values import Runtime
from rotator.sandbox.vault.openbao import OpenBaoServer
from tests.providers.helpers import StepClock

REAL_ADDR = os.environ.get("VAULT_ADDR", "")
REAL_TOKEN = os.environ.get("VAULT_TOKEN", "")
REAL_NAMESPACE = os.environ.get("VAULT_NAMESPACE", "")
REAL_CACERT = os.environ.get("VAULT_CACERT", "")
REAL_SKIP_VERIFY = os.environ.get("VAULT_SKIP_VERIFY", "")
#: The real server's parameter id: ``vault`` for the one VAULT_ADDR names, else ``openbao``.
REAL_VAULT = "vault" if REAL_ADDR and REAL_TOKEN else "openbao"


def kv_policy(
    mount: str,
    path: str,
    *,
    staging_mount: str | None = None,
    staging_prefix: str = ".rotator-pending",
    destroy_on_retire: bool = False,
) -> str:
    """Return the least-privilege ACL policy for the ``vault-kv`` store of ``mount/path``."""
    staging = staging_mount or mount
    rules = [
        f'path "{mount}/data/{path}" {{ capabilities = ["create", "read", "update"] }}',
        f'path "{mount}/metadata/{path}" {{ capabilities = ["read", "update"] }}',
        f'path "{mount}/delete/{path}" {{ capabilities = ["update"] }}',
        # The staging metadata is always written first, so the data write is an update.
        f'path "{staging}/data/{staging_prefix}/{path}/*" {{ capabilities = ["read", "update"] }}',
        f'path "{staging}/metadata/{staging_prefix}/{path}/*" '
        '{ capabilities = ["create", "read", "update", "delete"] }',
    ]
    if destroy_on_retire:
        rules.append(f'path "{mount}/destroy/{path}" {{ capabilities = ["update"] }}')
    return "\n".join(rules) + "\n"


def approle_policy(mount: str, role: str) -> str:
    """Return the least-privilege ACL policy for the ``vault-approle-secret-id`` issuer."""
    base = f"auth/{mount}/role/{role}"
    return (
        f'path "{base}/role-id" {{ capabilities = ["read"] }}\n'
        f'path "{base}/secret-id" {{ capabilities = ["update", "list"] }}\n'
        f'path "{base}/secret-id/lookup" {{ capabilities = ["update"] }}\n'
        f'path "{base}/secret-id-accessor/lookup" {{ capabilities = ["update"] }}\n'
        f'path "{base}/secret-id-accessor/destroy" {{ capabilities = ["update"] }}\n'
    )


def token_policy(*, list_accessors: bool = True) -> str:
    """Return the least-privilege ACL policy for the ``vault-token`` issuer."""
    rules = (
        'path "auth/token/create-orphan" { capabilities = ["update", "sudo"] }\n'
        'path "auth/token/lookup-accessor" { capabilities = ["update"] }\n'
        'path "auth/token/revoke-accessor" { capabilities = ["update"] }\n'
    )
    if list_accessors:
        rules += 'path "auth/token/accessors" { capabilities = ["list", "sudo"] }\n'
    return rules


@dataclass
class Backend:
    """One Vault the tests run against, and what they created in it."""

    name: str
    url: str
    root_token: str = field(repr=False)
    prefix: str
    clock: Callable[[], datetime]
    step: StepClock | None = None
    emulator: Any = None
    namespace: str = ""
    cacert: str = ""
    skip_verify: str = ""
    mounts: list[str] = field(default_factory=list)
    auth_mounts: list[str] = field(default_factory=list)
    policies: list[str] = field(default_factory=list)
    accessors: list[str] = field(default_factory=list)
    #: On a server the tests own, the token accessors there before the test: cleanup
    #: revokes every other (the adapters' tokens too); ``None`` elsewhere.
    preexisting: frozenset[str] | None = None
    #: The unseal key of a server the tests own (its outage is a seal); "" elsewhere.
    unseal_key: str = field(default="", repr=False)

    def client(self, token: str | None = None) -> Any:
        """Return an hvac client for this Vault with ``token`` (default: the admin token)."""
        import hvac

        verify: bool | str = True
        if self.skip_verify:
            verify = False
        elif self.cacert:
            verify = self.cacert
        return hvac.Client(
            url=self.url,
            token=self.root_token if token is None else token,
            namespace=self.namespace or None,
            verify=verify,
        )

    def tick(self, seconds: float = 1.0) -> None:
        """Let time pass: the emulator's step clock moves; a real server's needs nothing.

        Vault treats a version as deleted once its deletion time is in the
        past, so a read at the very instant of a delete still sees it. The
        emulator's clock stands still between requests until moved; a real
        server stamps the deletion with its own clock (in nanoseconds) and
        compares it with the same clock when the next request arrives, which
        is later by then, so no wait is needed.
        """
        if self.step is not None:
            self.step.sleep(seconds)

    def admin(self) -> Any:
        """Return a client with the admin (root) token."""
        return self.client()

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        """Within the block, every request to this Vault fails as in an outage (a 503).

        The emulator is told to answer 503; the OpenBao the tests own is
        sealed, so it answers ``503 Vault is sealed`` as a real Vault does, and
        is unsealed afterwards with everything it held. A Vault named by
        VAULT_ADDR is not the tests' to seal: the test is skipped there.
        """
        if self.emulator is not None:
            self.emulator.inject_fault("/v1/", status=503, count=1000)
            try:
                yield
            finally:
                self.emulator.clear_faults()
            return
        if not self.unseal_key:
            pytest.skip("a Vault the tests do not own is not sealed on demand")
        self.admin().sys.seal()
        try:
            yield
        finally:
            self.admin().sys.submit_unseal_key(self.unseal_key)
            _wait_until(lambda: _active(self.admin()), f"{self.name} did not unseal")

    def environ(self, token: str) -> dict[str, str]:
        """Return the VAULT_* environment that points the adapters at this Vault."""
        env = {"VAULT_ADDR": self.url, "VAULT_TOKEN": token}
        if self.namespace:
            env["VAULT_NAMESPACE"] = self.namespace
        if self.cacert:
            env["VAULT_CACERT"] = self.cacert
        if self.skip_verify:
            env["VAULT_SKIP_VERIFY"] = self.skip_verify
        return env

    def enable_kv(self, name: str) -> str:
        """Mount a KV v2 engine at ``{prefix}-{name}``; return the mount path."""
        mount = f"{self.prefix}-{name}"
        admin = self.admin()
        admin.sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
        self.mounts.append(mount)
        # A real server upgrades a new mount to KV v2 in the background and
        # refuses writes until then ("Upgrading from non-versioned to versioned
        # data"): wait for it (a real server's own time, at most five seconds).
        deadline = time.monotonic() + 5
        while True:
            try:
                admin.secrets.kv.v2.read_secret_version(
                    path="rotator-ready-probe", mount_point=mount, raise_on_deleted_version=True
                )
            except hvac.exceptions.InvalidRequest as exc:
                if "Upgrading" not in str(exc):
                    raise
                assert time.monotonic() < deadline, f"KV v2 mount {mount} still upgrading after 5 s"
                time.sleep(0.1)
                continue
            except hvac.exceptions.InvalidPath:
                pass  # no such secret: the mount answers, it is ready
            return mount

    def enable_approle(self, name: str = "approle") -> str:
        """Mount AppRole at ``{prefix}-{name}`` unless it is there; return the mount path."""
        return self.enable_auth("approle", name)

    def enable_auth(self, method: str, name: str | None = None) -> str:
        """Mount auth ``method`` at ``{prefix}-{name or method}`` unless it is there; return it."""
        mount = f"{self.prefix}-{name or method}"
        admin = self.admin()
        if f"{mount}/" not in admin.sys.list_auth_methods().get("data", {}):
            admin.sys.enable_auth_method(method, path=mount)
            self.auth_mounts.append(mount)
        return mount

    def policy(self, name: str, hcl: str) -> str:
        """Write ACL policy ``{prefix}-{name}``; return its name."""
        full = f"{self.prefix}-{name}"
        self.admin().sys.create_or_update_policy(name=full, policy=hcl)
        if full not in self.policies:
            self.policies.append(full)
        return full

    def token(self, *policies: str, ttl: str = "1h", **extra: Any) -> str:
        """Create a token holding exactly ``policies`` (plus default); return it."""
        answer = self.admin().auth.token.create(
            policies=list(policies), ttl=ttl, display_name="rotator-test", **extra
        )
        self.accessors.append(answer["auth"]["accessor"])
        return str(answer["auth"]["client_token"])

    def token_accessors(self) -> frozenset[str]:
        """Return the accessors of every token the server holds (needs sudo: the admin token)."""
        return frozenset(self.admin().auth.token.list_accessors()["data"]["keys"])

    def cleanup(self) -> None:
        """Revoke the tokens and remove the mounts and policies the test created."""
        from hvac.exceptions import VaultError

        admin = self.admin()
        created = set(self.accessors)
        if self.preexisting is not None:
            created |= self.token_accessors() - self.preexisting
        for accessor in sorted(created):
            with contextlib.suppress(VaultError):
                admin.auth.token.revoke_accessor(accessor)
        for mount in self.mounts:
            admin.sys.disable_secrets_engine(path=mount)
        for mount in self.auth_mounts:
            admin.sys.disable_auth_method(path=mount)
        for name in self.policies:
            admin.sys.delete_policy(name=name)


#: How long the tests wait for what a server they own does by itself (unseal).
SERVER_TIMEOUT = 30.0


def _wait_until(done: Callable[[], bool], failure: str) -> None:
    """Poll ``done`` until it holds; fail the test after SERVER_TIMEOUT seconds."""
    deadline = time.monotonic() + SERVER_TIMEOUT
    pause = threading.Event()
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(failure)
        pause.wait(0.02)


def _active(admin: Any) -> bool:
    """Tell whether the server is unsealed and active (its ``sys/health``)."""
    health = admin.sys.read_health_status(method="GET")
    return isinstance(health, dict) and not health["sealed"] and not health["standby"]


def _wall_clock() -> datetime:
    return datetime.now(UTC)


def unique_prefix(tag: str = "rt") -> str:
    """Return a prefix for what one test creates: ``tag`` and 10 hex digits."""
    return f"{tag}{uuid.uuid4().hex[:10]}"


@contextlib.contextmanager
def emulated(prefix: str, step: StepClock | None = None) -> Iterator[Backend]:
    """Run a fresh Vault emulator for the block, as a Backend: on ``step`` if given, else wall time.

    A step clock is the one :func:`runtime_for` gives the adapters, so a test
    moves both at once; the end-to-end tests' rotator processes read the wall
    clock, so the emulator they talk to must too.
    """
    from rotator.sandbox.vault import VaultEmulator

    with VaultEmulator(clock=step) as vault:
        yield Backend(
            "emulator",
            vault.url,
            vault.root_token,
            prefix,
            step or _wall_clock,
            step=step,
            emulator=vault,
        )


@contextlib.contextmanager
def served(request: pytest.FixtureRequest, prefix: str) -> Iterator[Backend]:
    """The real server (see :func:`real_server`) for the block; what the test made goes after."""
    backend = real_server(request, prefix)
    try:
        yield backend
    finally:
        backend.cleanup()


@contextlib.contextmanager
def vault_for(
    request: pytest.FixtureRequest, prefix: str, step: StepClock | None = None
) -> Iterator[Backend]:
    """The Vault a fixture's parameter names, for the block: ``emulator`` (on ``step``) or real."""
    if request.param == "emulator":
        with emulated(prefix, step) as backend:
            yield backend
    else:
        with served(request, prefix) as backend:
            yield backend


def real_server(request: pytest.FixtureRequest, prefix: str) -> Backend:
    """Return the real server as a Backend: VAULT_ADDR's Vault if given, else the session's OpenBao.

    On the OpenBao the tests own, the tokens there now are remembered, so
    that cleanup revokes every token made after (the adapters' too).
    """
    if REAL_ADDR and REAL_TOKEN:
        return Backend(
            REAL_VAULT,
            REAL_ADDR,
            REAL_TOKEN,
            prefix,
            _wall_clock,
            namespace=REAL_NAMESPACE,
            cacert=REAL_CACERT,
            skip_verify=REAL_SKIP_VERIFY,
        )
    server: OpenBaoServer = request.getfixturevalue("openbao")
    backend = Backend(REAL_VAULT, server.url, server.root_token, prefix, _wall_clock)
    backend.preexisting = backend.token_accessors()
    backend.unseal_key = server.unseal_key
    return backend


def skip_without_namespaces(backend: Backend) -> None:
    """Skip the test unless ``backend`` has namespaces (refuses one it does not have).

    OpenBao, Vault Enterprise and the emulator answer a namespace they do not
    have with a 404; Vault Community Edition ignores the namespace header, so
    there a wrong VAULT_NAMESPACE reads the root namespace (and VAULT_ADDR may
    name such a Vault).
    """
    from hvac.exceptions import InvalidPath

    probe = backend.client()
    probe.adapter.namespace = f"{backend.prefix}-nowhere"
    try:
        probe.auth.token.lookup_self()
    except InvalidPath:
        return
    finally:
        probe.adapter.close()
    pytest.skip(f"{backend.name} has no namespaces: it serves one it does not have")


def clean_vault_env(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """Remove every VAULT_* variable and point HOME at an empty directory."""
    for name in list(os.environ):
        if name.startswith("VAULT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))


def point_at(monkeypatch: pytest.MonkeyPatch, backend: Backend, token: str) -> None:
    """Set the environment so the adapters use ``backend`` with ``token``."""
    for name, value in backend.environ(token).items():
        monkeypatch.setenv(name, value)


def runtime_for(backend: Backend) -> Runtime:
    """Return a Runtime on the backend's clock with an empty cache."""
    if backend.step is not None:
        return Runtime(clock=backend.step, sleep=backend.step.sleep, cache={})
    return Runtime(clock=backend.clock, sleep=lambda s: None, cache={})


def new_rotation_id() -> str:
    """Return a rotation id as the engine makes them (32 hex characters)."""
    return uuid.uuid4().hex
