"""Translation of hvac and requests failures into rotator errors, and what messages may hold."""

from __future__ import annotations

import socket
import traceback
from pathlib import Path
from typing import Any

import pytest
import requests
from hvac import exceptions as hx

from providers.vault.client import session
from providers.vault.errors import TokenRejectedError, vault_errors
from providers.vault.kv import VaultKvConfig, VaultKvStore
from rotator.adapters.secret import SecretValue
from rotator.errors import (
    ConflictError,
    NotFoundError,
    PermanentError,
    PermissionDeniedError,
    ProviderError,
    TransientError,
)
from tests.providers.vault.backends import (
    Backend,
    clean_vault_env,
    new_rotation_id,
    point_at,
    runtime_for,
)

pytest_plugins = ["tests.providers.vault.conftest_backends"]

LEAK = "hunter2-very-secret-value"
PATH = "apps/errors"


def translate(exc: BaseException) -> ProviderError:
    """Run ``exc`` through vault_errors and return what comes out."""
    with pytest.raises(ProviderError) as caught, vault_errors("vault-test", "write x"):
        raise exc
    return caught.value


def assert_clean(error: ProviderError, *secrets: str) -> None:
    """The error, its context and the formatted traceback hold none of ``secrets``."""
    rendered = "".join(traceback.format_exception(error))
    for secret in (LEAK, *secrets):
        assert secret not in str(error)
        assert secret not in rendered
    assert error.__cause__ is None


def _store(
    backend: Backend, mount: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> VaultKvStore:
    """A root-token vault-kv store on ``mount``, seeded with the LEAK value."""
    clean_vault_env(monkeypatch, tmp_path)
    point_at(monkeypatch, backend, backend.root_token)
    backend.admin().secrets.kv.v2.create_or_update_secret(
        path=PATH, secret={"password": LEAK}, mount_point=mount
    )
    config = VaultKvConfig(mount=mount, path=PATH, key="password")
    return VaultKvStore(config, runtime_for(backend), "errors-test")


@pytest.fixture
def store(
    emulator_backend: Backend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> VaultKvStore:
    """The emulator's secret/ mount only (these tests inject its faults), seeded with LEAK."""
    return _store(emulator_backend, "secret", monkeypatch, tmp_path)


@pytest.fixture
def any_store(
    vault_backend: Backend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> VaultKvStore:
    """A test mount on the emulator, then on a real server, seeded with LEAK."""
    return _store(vault_backend, vault_backend.enable_kv("kv"), monkeypatch, tmp_path)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (503, TransientError),
        (500, TransientError),
        (502, TransientError),
        (429, TransientError),
        (403, PermissionDeniedError),
        (400, PermanentError),
        (501, PermanentError),
    ],
)
def test_injected_status_is_translated(
    store: VaultKvStore,
    emulator_backend: Backend,
    status: int,
    expected: type[ProviderError],
) -> None:
    """An injected Vault failure surfaces as the matching rotator error with a clean message."""
    emulator_backend.emulator.inject_fault(path_prefix=f"/v1/secret/data/{PATH}", status=status)
    with pytest.raises(ProviderError) as caught:
        store.current()
    assert type(caught.value) is expected or isinstance(caught.value, expected)
    assert f"HTTP {status}" in str(caught.value)
    assert str(caught.value).startswith("vault-kv:read secret/data/")
    assert_clean(caught.value)
    current = store.current()
    assert current is not None and current.value == SecretValue(LEAK)


def test_retryable_flags(store: VaultKvStore, emulator_backend: Backend) -> None:
    """A 503 is retryable; a 403 is not."""
    vault = emulator_backend.emulator
    vault.inject_fault(path_prefix=f"/v1/secret/data/{PATH}", status=503)
    with pytest.raises(TransientError) as transient:
        store.current()
    assert transient.value.retryable
    vault.inject_fault(path_prefix=f"/v1/secret/data/{PATH}", status=403)
    with pytest.raises(PermissionDeniedError) as denied:
        store.current()
    assert not denied.value.retryable


def test_failed_write_does_not_leak_the_new_value(
    store: VaultKvStore, emulator_backend: Backend
) -> None:
    """A 503 while staging a value raises TransientError without the value anywhere."""
    new = "brand-new-secret-00000001"
    rid = new_rotation_id()
    emulator_backend.emulator.inject_fault(
        path_prefix=f"/v1/secret/data/.rotator-pending/{PATH}/{rid}", status=503, method="POST"
    )
    with pytest.raises(TransientError) as caught:
        store.put_pending(rid, SecretValue(new))
    assert_clean(caught.value, new)
    assert store.put_pending(rid, SecretValue(new)) == "2"


def test_cas_mismatch_is_a_conflict(any_store: VaultKvStore) -> None:
    """A write whose check-and-set does not match the current version raises ConflictError."""
    vault = session(any_store.runtime)
    mount = any_store.config.mount
    with pytest.raises(ConflictError) as caught:
        vault.call(
            f"write {mount}/data",
            lambda c: c.secrets.kv.v2.create_or_update_secret(
                path=PATH, secret={"password": "x-" + LEAK}, cas=7, mount_point=mount
            ),
        )
    assert "check-and-set parameter did not match the current version" in str(caught.value)
    assert "HTTP 400" in str(caught.value)
    assert_clean(caught.value)


def test_unreachable_vault_is_transient(
    emulator_backend: Backend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A refused connection raises TransientError."""
    # No server: the emulator backend only lends the test a runtime on its clock.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    clean_vault_env(monkeypatch, tmp_path)
    monkeypatch.setenv("VAULT_ADDR", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("VAULT_TOKEN", "hvs.unused-token-000000000")
    store = VaultKvStore(VaultKvConfig(path=PATH), runtime_for(emulator_backend), "errors-test")
    with pytest.raises(TransientError) as caught:
        store.current()
    assert "could not reach Vault" in str(caught.value)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (hx.InvalidRequest(errors=[f"value {LEAK} rejected"]), PermanentError),
        (hx.Unauthorized(errors=[f"bad {LEAK}"]), PermissionDeniedError),
        (hx.Forbidden(errors=["1 error occurred:\n\t* permission denied\n\n"]), TokenRejectedError),
        (hx.InvalidPath(errors=[]), NotFoundError),
        (hx.InvalidPath(errors=["namespace not found"]), NotFoundError),
        (hx.RateLimitExceeded(errors=[LEAK]), TransientError),
        (hx.InternalServerError(errors=[LEAK]), TransientError),
        (hx.VaultNotInitialized(errors=[LEAK]), PermanentError),
        (hx.BadGateway(LEAK), TransientError),
        (hx.VaultDown(errors=["Vault is sealed"]), TransientError),
        (hx.UnexpectedError(LEAK), PermanentError),
        (hx.ParamValidationError(LEAK), PermanentError),
        (
            hx.InvalidRequest(errors=["check-and-set parameter did not match the current version"]),
            ConflictError,
        ),
        (hx.InvalidRequest(errors=["invalid accessor"]), NotFoundError),
        (
            hx.InternalServerError(
                errors=[
                    "1 error occurred:\n\t* failed to find accessor entry for "
                    'secret_id_accessor: "abc"\n\n'
                ]
            ),
            NotFoundError,
        ),
        (hx.InvalidRequest(errors=['role "x" does not exist']), NotFoundError),
        (
            hx.InvalidRequest(errors=["root or sudo privileges required to create periodic token"]),
            PermissionDeniedError,
        ),
        (requests.exceptions.ConnectionError(LEAK), TransientError),
        (requests.exceptions.ReadTimeout(LEAK), TransientError),
        (requests.exceptions.SSLError(LEAK), PermanentError),
        (requests.exceptions.InvalidURL(LEAK), PermanentError),
    ],
)
def test_translation_table(exc: BaseException, expected: type[ProviderError]) -> None:
    """Each hvac or requests failure maps to its rotator error; Vault's text is never copied."""
    error = translate(exc)
    assert isinstance(error, expected)
    assert_clean(error)
    assert str(error).startswith("vault-test:write x: ")


def test_translated_exception_is_emptied() -> None:
    """The original exception, kept as context, loses its text, body and traceback."""
    original: Any = hx.InvalidPath(
        errors=None,
        text=f'{{"data": {{"data": {{"password": "{LEAK}"}}}}}}',
        json={"data": {"data": {"password": LEAK}}},
    )
    error = translate(original)
    context: Any = error.__context__
    assert context is original
    assert original.json is None and original.text is None and original.errors is None
    assert original.__traceback__ is None
    assert LEAK not in repr(original.args)


def test_translated_exception_loses_its_own_chain() -> None:
    """What the hvac exception was raised in (a parse error quoting the body) is dropped too."""
    original = hx.InvalidRequest(errors=["invalid request"])
    try:
        try:
            raise ValueError(f"cannot parse {LEAK}")
        except ValueError:
            raise original from None
    except hx.InvalidRequest:
        error = translate(original)
    assert error.__context__ is original
    assert original.__context__ is None and original.__cause__ is None


def test_requests_exception_loses_its_request() -> None:
    """A requests failure's request object (whose body may hold a secret-id) is dropped."""
    request = requests.Request("POST", "http://vault.invalid/", json={"secret_id": LEAK}).prepare()
    original = requests.exceptions.ConnectionError(LEAK, request=request)
    error = translate(original)
    assert isinstance(error, TransientError)
    assert original.request is None
    assert LEAK not in repr(original.args)


def test_known_messages_use_our_words() -> None:
    """A recognised message is rewritten, so an accessor or path in Vault's text is not copied."""
    error = translate(
        hx.InvalidRequest(errors=[f"failed to find accessor entry for secret_id_accessor: {LEAK}"])
    )
    assert "no secret-id has this accessor" in str(error)
    assert_clean(error)
