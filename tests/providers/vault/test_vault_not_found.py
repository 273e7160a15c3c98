"""A Vault 404 means "no such key" only with an empty ``errors`` list; any other is an error.

Vault answers a read of a missing KV key (or version, or an empty list) with
``404 {"errors":[]}``. A wrong ``VAULT_NAMESPACE`` is a 404 too, but
``{"errors":["namespace not found"]}``; a path under no mount is ``no handler
for route``. Read as "no such key", those make a secret look absent, and a
rotation "roll back" against an empty store: they must fail, permanently,
saying why. Each test runs on the emulator and on the real server (OpenBao, or
the Vault ``VAULT_ADDR`` and ``VAULT_TOKEN`` name), except where it says why not.

The same holds behind a proxy or gateway that answers ``application/json;
charset=utf-8`` where Vault said ``application/json``: hvac fills
``exc.errors`` and ``exc.json`` only for the exact type, so there only the
raw body text tells "no such key" from the rest. The last tests put
:class:`~tests.providers.vault.proxy.ContentTypeProxy` between the adapters
and the Vault.
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from providers.vault.approle import AppRoleConfig, AppRoleSecretIdIssuer
from providers.vault.kv import VaultKvConfig, VaultKvStore
from providers.vault.token import TokenConfig, TokenIssuer
from rotator.adapters.secret import SecretValue
from rotator.engine.runner import Engine
from rotator.errors import NotFoundError, PermanentError
from rotator.journal.journal import Journal
from rotator.lifecycle import State
from rotator.policy.loader import load_policies
from tests.conftest import FakeClock
from tests.providers.helpers import new_rotation_id
from tests.providers.vault.backends import (
    Backend,
    clean_vault_env,
    point_at,
    runtime_for,
    skip_without_namespaces,
)
from tests.providers.vault.proxy import CHARSET_JSON, ContentTypeProxy

pytest_plugins = ["tests.providers.vault.conftest_backends"]


@pytest.fixture
def backend(vault_backend: Backend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Backend:
    """A Vault with a KV v2 mount holding ``app/db``, the adapters pointed at it (admin token)."""
    clean_vault_env(monkeypatch, tmp_path / "home")
    return _seeded(vault_backend, monkeypatch)


@pytest.fixture
def namespaced(backend: Backend) -> Backend:
    """``backend``, if it has namespaces (the test is skipped on a Vault without)."""
    skip_without_namespaces(backend)
    return backend


def _seeded(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> Backend:
    """Mount a KV v2 engine, write ``app/db`` there, and point the adapters at ``backend``."""
    mount = backend.enable_kv("kv")
    backend.admin().secrets.kv.v2.create_or_update_secret(
        path="app/db", secret={"value": "the-current-value"}, mount_point=mount
    )
    point_at(monkeypatch, backend, backend.root_token)
    return backend


def _store(backend: Backend, path: str = "app/db", mount: str | None = None) -> VaultKvStore:
    config = VaultKvConfig(mount=mount or backend.mounts[0], path=path)
    return VaultKvStore(config, runtime_for(backend), "app")


def _calls(store: VaultKvStore) -> dict[str, Callable[[], Any]]:
    """Every store method that reads before it writes, each on its own."""
    rotation_id = new_rotation_id()
    return {
        "current": store.current,
        "last_changed": store.last_changed,
        "pending": lambda: store.pending(rotation_id),
        "discard": lambda: store.discard(rotation_id),
        "replaced_version": lambda: store.replaced_version(rotation_id),
        "retire": lambda: store.retire("1"),
    }


def test_an_absent_key_is_none_not_an_error(backend: Backend) -> None:
    """The baseline: ``404 {"errors":[]}`` is "no such key", read as absent."""
    store = _store(backend, path="app/absent")
    assert store.current() is None
    assert store.last_changed() is None
    assert store.pending(new_rotation_id()) is None
    store.discard(new_rotation_id())
    assert _store(backend).current() is not None


def test_a_wrong_namespace_fails_every_call_saying_so(
    namespaced: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a VAULT_NAMESPACE Vault does not have, no call reads the secret as absent."""
    backend = namespaced
    monkeypatch.setenv("VAULT_NAMESPACE", f"{backend.prefix}-nowhere")
    store = _store(backend)
    # The first call fails where the session looks its own token up; later ones reach the KV.
    with pytest.raises(NotFoundError, match="namespace not found") as caught:
        store.current()
    assert caught.value.operation == "auth/token/lookup-self"
    for name, call in _calls(store).items():
        with pytest.raises(NotFoundError) as caught:
            call()
        assert isinstance(caught.value, PermanentError)
        assert not caught.value.retryable, name
        assert caught.value.provider == "vault-kv", name
        assert "namespace not found: check VAULT_NAMESPACE" in str(caught.value), name


def test_a_missing_mount_is_an_error_not_an_absent_secret(backend: Backend) -> None:
    """A path under no mount is ``no handler for route``: not found, naming the mount."""
    store = _store(backend, mount=f"{backend.prefix}-gone")
    for name, call in _calls(store).items():
        with pytest.raises(NotFoundError, match="is the secrets engine") as caught:
            call()
        assert not caught.value.retryable, name


def test_a_404_that_is_not_no_such_key_is_an_error(
    emulator_backend: Backend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A 404 that explains itself otherwise (here a fault the emulator injects) is no absence.

    On the emulator only: a real server is not told to fail.
    """
    clean_vault_env(monkeypatch, tmp_path / "home")
    backend = _seeded(emulator_backend, monkeypatch)
    store = _store(backend)
    for method, kind in (("GET", "data"), ("GET", "metadata"), ("DELETE", "metadata")):
        backend.emulator.inject_fault(f"/v1/{backend.mounts[0]}/{kind}/", status=404, method=method)
    with pytest.raises(NotFoundError, match="HTTP 404: no such path"):
        store.current()
    with pytest.raises(NotFoundError, match="HTTP 404: no such path"):
        store.last_changed()
    with pytest.raises(NotFoundError, match="HTTP 404: no such path"):
        store.discard(new_rotation_id())


def test_a_token_is_not_taken_for_revoked_in_a_wrong_namespace(
    namespaced: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Revoking by accessor in a namespace that does not exist fails; it is not "already gone"."""
    backend = namespaced
    minted = backend.admin().auth.token.create_orphan(policies=["default"], ttl="1h")["auth"]
    backend.accessors.append(minted["accessor"])
    monkeypatch.setenv("VAULT_NAMESPACE", f"{backend.prefix}-nowhere")
    issuer = TokenIssuer(TokenConfig(policies=["default"], ttl="1h"), runtime_for(backend), "app")
    for operation in ("auth/token/lookup-self", "auth/token/revoke-accessor"):
        # The first call fails where the session looks its own token up, the second at revoke.
        with pytest.raises(NotFoundError, match="namespace not found") as caught:
            issuer.revoke(minted["accessor"])
        assert caught.value.operation == operation
    looked_up = backend.admin().auth.token.lookup_accessor(minted["accessor"])
    assert looked_up["data"]["accessor"] == minted["accessor"]


def test_a_rotation_in_a_wrong_namespace_fails_instead_of_rolling_back(
    namespaced: Backend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The rotation stops rolling back, saying why, and the secret keeps its value."""
    backend = namespaced
    monkeypatch.setenv("VAULT_NAMESPACE", f"{backend.prefix}-nowhere")
    policy = {
        "name": "app",
        "store": {"provider": "vault-kv", "mount": backend.mounts[0], "path": "app/db"},
        "schedule": {"every": "30d"},
        "grace": "1h",
    }
    config = tmp_path / "policies.yaml"
    config.write_text(json.dumps({"secrets": [policy]}))
    clock = FakeClock()
    journal = Journal(f"sqlite:///{tmp_path / 'journal.db'}", clock)
    engine = Engine(load_policies(config), journal, clock=clock, sleep=clock.sleep)
    for run in (engine.rotate("app"), engine.run_once()):
        [outcome] = run.outcomes
        assert outcome.state is State.ROLLING_BACK, outcome.message
        assert "namespace not found: check VAULT_NAMESPACE" in outcome.message
    read = backend.admin().secrets.kv.v2.read_secret_version(
        path="app/db", mount_point=backend.mounts[0], raise_on_deleted_version=True
    )
    assert read["data"]["data"] == {"value": "the-current-value"}


# -- behind a proxy that answers application/json; charset=utf-8


def _context(backend: Backend) -> ssl.SSLContext | None:
    """The TLS settings the adapters use for ``backend``, for the proxy's upstream leg."""
    if not backend.url.startswith("https://"):
        return None
    context = ssl.create_default_context(cafile=backend.cacert or None)
    if backend.skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


@pytest.fixture
def proxied(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    """``backend``, the adapters reaching it through a :class:`ContentTypeProxy`."""
    with ContentTypeProxy(backend.url, context=_context(backend)) as proxy:
        monkeypatch.setenv("VAULT_ADDR", proxy.url)
        # The proxy speaks plain HTTP to the adapters, whatever the upstream leg is.
        monkeypatch.delenv("VAULT_CACERT", raising=False)
        yield backend


def test_the_proxy_answers_a_missing_key_with_a_charset(proxied: Backend) -> None:
    """The premise: the adapters see ``404 {"errors":[]}`` labelled with a charset."""
    answer = requests.get(
        f"{os.environ['VAULT_ADDR']}/v1/{proxied.mounts[0]}/data/app/absent",
        headers={"X-Vault-Token": proxied.root_token},
        timeout=10,
    )
    assert answer.status_code == 404
    assert answer.headers["Content-Type"] == CHARSET_JSON
    assert answer.json() == {"errors": []}


def test_an_absent_key_is_still_none(proxied: Backend) -> None:
    """``404 {"errors":[]}`` in the raw body is "no such key", as it is with the exact type."""
    store = _store(proxied, path="app/absent")
    assert store.current() is None
    assert store.last_changed() is None
    assert store.pending(new_rotation_id()) is None
    store.discard(new_rotation_id())
    assert store.replaced_version(new_rotation_id()) is None
    current = _store(proxied).current()
    assert current is not None and current.value.text() == "the-current-value"


def test_a_deleted_latest_version_is_read_as_deleted(proxied: Backend) -> None:
    """A read of a deleted version (a 404 with the envelope) is still no value, not an error.

    The next version is written with check-and-set against the deleted one's
    number, which only the answer's raw body tells.
    """
    proxied.admin().secrets.kv.v2.delete_latest_version_of_secret(
        path="app/db", mount_point=proxied.mounts[0]
    )
    proxied.tick()
    store = _store(proxied)
    assert store.current() is None
    rotation_id = new_rotation_id()
    store.put_pending(rotation_id, SecretValue("the-next-value"))
    store.promote(rotation_id)
    current = store.current()
    assert current is not None
    assert (current.version_id, current.value.text()) == ("2", "the-next-value")


@pytest.mark.usefixtures("namespaced")
def test_a_wrong_namespace_still_fails_saying_so(
    proxied: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An explained 404 is recognised from the raw body: it is neither absent nor a bare 404."""
    monkeypatch.setenv("VAULT_NAMESPACE", f"{proxied.prefix}-nowhere")
    store = _store(proxied)
    with pytest.raises(NotFoundError, match="namespace not found: check VAULT_NAMESPACE"):
        store.current()
    for name, call in _calls(store).items():
        with pytest.raises(NotFoundError) as caught:
            call()
        assert "namespace not found: check VAULT_NAMESPACE" in str(caught.value), name


def test_a_missing_mount_still_fails_naming_it(proxied: Backend) -> None:
    """``no handler for route`` is recognised from the raw body too."""
    store = _store(proxied, mount=f"{proxied.prefix}-gone")
    for name, call in _calls(store).items():
        with pytest.raises(NotFoundError, match="is the secrets engine"):
            call()


def test_approle_listing_and_revoking_what_is_gone(proxied: Backend) -> None:
    """No secret-ids is an empty inventory; a secret-id destroyed twice is "already gone"."""
    mount = proxied.enable_approle()
    proxied.admin().auth.approle.create_or_update_approle(
        role_name="app", token_policies=["default"], mount_point=mount
    )
    issuer = AppRoleSecretIdIssuer(
        AppRoleConfig(role="app", mount=mount), runtime_for(proxied), "app"
    )
    assert issuer.inventory() == []
    minted = issuer.mint(new_rotation_id())
    assert minted.ref is not None and issuer.inventory() == [minted.ref]
    issuer.revoke(minted.ref)
    issuer.revoke(minted.ref)
    assert issuer.inventory() == []
