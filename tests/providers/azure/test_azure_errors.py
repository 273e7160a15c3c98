"""Fault injection against the emulator: how Key Vault's failures reach the engine.

The SDK's own retries are turned off (``SDK_RETRIES = 0``) so that each
injected answer is what the store sees. Every test also checks that no
secret value reaches the error, its text or the exception it replaced.
"""

from __future__ import annotations

import socket
import traceback
from typing import TYPE_CHECKING, Any

import pytest

from providers.azure import identity
from providers.azure.errors import SoftDeletedError, azure_errors, vault_name
from providers.azure.keyvault import KeyVaultStore
from rotator.adapters.secret import SecretValue
from rotator.errors import PermanentError, PermissionDeniedError, TransientError

if TYPE_CHECKING:
    from tests.providers.azure.backends import Backend

# Fixtures akv_backend and akv_emulator.
pytest_plugins = ["tests.providers.azure.backends"]

OLD = "old-password-for-faults-01"
NEW = "new-password-for-faults-01"


@pytest.fixture(autouse=True)
def _no_sdk_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each injected answer reaches the store as is."""
    monkeypatch.setattr(identity, "SDK_RETRIES", 0)


def assert_clean(error: BaseException, *values: str) -> None:
    """No value in the error's text, its rendered traceback, or the exception it replaced."""
    rendered = "".join(traceback.format_exception(error))
    for value in (OLD, NEW, *values):
        assert value not in str(error)
        assert value not in rendered
    assert error.__cause__ is None
    context = error.__context__
    if context is not None:
        assert getattr(context, "response", None) is None
        assert getattr(context, "inner_exception", None) is None
        assert context.__traceback__ is None
        assert "Injected" not in str(context)


def test_429_with_retry_after_is_transient_with_its_delay(akv_emulator: Backend) -> None:
    """A throttled read becomes a TransientError whose delay is Retry-After."""
    name = akv_emulator.secret_name()
    akv_emulator.seed(name, OLD)
    akv_emulator.emulator.inject_fault(f"/secrets/{name}/", status=429, retry_after=7)
    with pytest.raises(TransientError) as caught:
        akv_emulator.store(name).current()
    assert caught.value.delay == 7.0
    assert caught.value.retryable
    assert "HTTP 429" in str(caught.value)
    assert caught.value.operation == f"get_secret {name}"
    assert_clean(caught.value)


def test_503_is_transient(akv_emulator: Backend) -> None:
    """A 5xx from the vault is a TransientError (no delay when no Retry-After)."""
    name = akv_emulator.secret_name()
    akv_emulator.seed(name, OLD)
    akv_emulator.emulator.inject_fault(f"/secrets/{name}/", status=503)
    with pytest.raises(TransientError) as caught:
        akv_emulator.store(name).current()
    assert caught.value.delay is None
    assert "HTTP 503" in str(caught.value)
    assert_clean(caught.value)


def test_408_is_transient(akv_emulator: Backend) -> None:
    """A request timeout answered by the service is a TransientError."""
    name = akv_emulator.secret_name()
    akv_emulator.emulator.inject_fault(f"/secrets/{name}/", status=408)
    with pytest.raises(TransientError, match="HTTP 408"):
        akv_emulator.store(name).current()


def test_403_is_permission_denied(akv_emulator: Backend) -> None:
    """A 403 that is not about a disabled version means the identity lacks the role."""
    name = akv_emulator.secret_name()
    akv_emulator.seed(name, OLD)
    akv_emulator.emulator.inject_fault(f"/secrets/{name}/", status=403)
    with pytest.raises(PermissionDeniedError, match="Key Vault Secrets Officer") as caught:
        akv_emulator.store(name).current()
    assert not caught.value.retryable
    assert_clean(caught.value)


def test_another_4xx_is_permanent(akv_emulator: Backend) -> None:
    """A 400 is a PermanentError that retrying will not fix."""
    name = akv_emulator.secret_name()
    akv_emulator.emulator.inject_fault(f"/secrets/{name}/", status=400)
    with pytest.raises(PermanentError) as caught:
        akv_emulator.store(name).current()
    assert type(caught.value) is PermanentError
    assert "HTTP 400" in str(caught.value)


def test_a_failed_write_carries_no_value(akv_emulator: Backend) -> None:
    """A 503 answering the set_secret that carried the pending value leaks it nowhere."""
    name = akv_emulator.secret_name()
    akv_emulator.emulator.inject_fault(f"/secrets/{name}--pending", status=503, method="PUT")
    store = akv_emulator.store(name)
    rid = akv_emulator.rotation_id()
    with pytest.raises(TransientError) as caught:
        store.put_pending(rid, SecretValue(NEW))
    assert_clean(caught.value)
    assert store.put_pending(rid, SecretValue(NEW)), "the retry goes through"


def test_a_transient_failure_of_promote_is_safe_to_retry(akv_emulator: Backend) -> None:
    """promote() failing with a 5xx on its write converges when the engine retries it."""
    name = akv_emulator.secret_name()
    old = akv_emulator.seed(name, OLD)
    store = akv_emulator.store(name)
    rid = akv_emulator.rotation_id()
    store.put_pending(rid, SecretValue(NEW))
    akv_emulator.emulator.inject_fault(f"/secrets/{name}", status=500, method="PUT")
    with pytest.raises(TransientError) as caught:
        store.promote(rid)
    assert_clean(caught.value)
    assert akv_emulator.latest(name).value == OLD
    assert store.promote(rid) == old.properties.version
    assert akv_emulator.latest(name).value == NEW


def test_an_unreadable_answer_to_a_write_that_landed_is_a_success(
    akv_emulator: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """promote() whose set landed but whose answer failed permanently reports the promotion."""
    name = akv_emulator.secret_name()
    old = akv_emulator.seed(name, OLD)
    store = akv_emulator.store(name)
    rid = akv_emulator.rotation_id()
    store.put_pending(rid, SecretValue(NEW))
    real_set = KeyVaultStore._set

    def set_then_fail(self: KeyVaultStore, secret: str, text: str, **kwargs: Any) -> Any:
        written = real_set(self, secret, text, **kwargs)
        if secret == name:
            raise PermanentError("DecodeError: the Azure SDK failed")
        return written

    monkeypatch.setattr(KeyVaultStore, "_set", set_then_fail)
    assert store.promote(rid) == old.properties.version
    assert akv_emulator.latest(name).value == NEW
    assert not akv_emulator.exists(f"{name}--pending")


def test_a_failed_cleanup_after_promote_does_not_fail_the_promotion(
    akv_emulator: Backend,
) -> None:
    """A refused delete of the companion is logged: the promotion has happened and stands."""
    name = akv_emulator.secret_name()
    old = akv_emulator.seed(name, OLD)
    store = akv_emulator.store(name)
    rid = akv_emulator.rotation_id()
    store.put_pending(rid, SecretValue(NEW))
    akv_emulator.emulator.inject_fault(f"/secrets/{name}--pending", status=403, method="DELETE")
    assert store.promote(rid) == old.properties.version
    assert akv_emulator.latest(name).value == NEW
    assert akv_emulator.exists(f"{name}--pending")
    assert store.promote(rid) == old.properties.version
    assert not akv_emulator.exists(f"{name}--pending"), "the replay cleaned up"


def test_a_refused_purge_is_logged_and_left(akv_emulator: Backend) -> None:
    """A purge refused with 403 (no purge permission in a vault that allows purges) leaves
    the companion soft-deleted, without error."""
    name = akv_emulator.secret_name()
    store = akv_emulator.store(name)
    rid = akv_emulator.rotation_id()
    store.put_pending(rid, SecretValue(NEW))
    akv_emulator.emulator.inject_fault(
        f"/deletedsecrets/{name}--pending", status=403, method="DELETE"
    )
    store.discard(rid)
    assert not akv_emulator.exists(f"{name}--pending")
    assert akv_emulator.soft_deleted(f"{name}--pending")


def test_409_deleted_but_recoverable_names_the_recover_command(akv_emulator: Backend) -> None:
    """Setting a soft-deleted secret is a PermanentError naming `az keyvault secret recover`."""
    name = akv_emulator.secret_name()
    akv_emulator.seed(name, OLD)
    akv_emulator.delete(name)
    vault = vault_name(akv_emulator.vault_url)
    with (
        pytest.raises(SoftDeletedError) as caught,
        azure_errors("azure-keyvault", f"set_secret {name}", vault=vault, secret=name),
    ):
        akv_emulator.admin.set_secret(name, NEW)
    assert isinstance(caught.value, PermanentError)
    message = str(caught.value)
    assert f"az keyvault secret recover --vault-name {vault} --name {name}" in message
    assert f"az keyvault secret purge --vault-name {vault} --name {name}" in message
    assert "HTTP 409" in message and "ObjectIsDeletedButRecoverable" in message
    assert_clean(caught.value)


def test_a_soft_deleted_secret_is_caught_at_promote_when_it_cannot_be_seen(
    akv_emulator: Backend,
) -> None:
    """Without the right to read deleted secrets the 409 of promote still names the command."""
    name = akv_emulator.secret_name()
    akv_emulator.seed(name, OLD)
    akv_emulator.delete(name)
    akv_emulator.emulator.inject_fault(f"/deletedsecrets/{name}", status=403, count=10)
    store = akv_emulator.store(name)
    assert store.current() is None, "a deleted secret we may not see looks like a new one"
    rid = akv_emulator.rotation_id()
    store.put_pending(rid, SecretValue(NEW))
    with pytest.raises(PermanentError, match="az keyvault secret recover") as caught:
        store.promote(rid)
    assert_clean(caught.value)


def test_a_closed_port_is_transient(akv_emulator: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nobody listening at the vault's address is a TransientError (try again later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setattr(identity, "CONNECT_TIMEOUT", 2)
    akv_emulator.vault_url = f"https://127.0.0.1:{port}"
    with pytest.raises(TransientError, match="could not reach the vault") as caught:
        akv_emulator.store("db").current()
    assert_clean(caught.value)


def test_a_slow_answer_is_a_transient_timeout(
    akv_emulator: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An answer slower than the read timeout is a TransientError."""
    name = akv_emulator.secret_name()
    akv_emulator.seed(name, OLD)
    monkeypatch.setattr(identity, "READ_TIMEOUT", 0.5)
    akv_emulator.emulator.inject_fault(f"/secrets/{name}/", status=None, delay=1.5)
    with pytest.raises(TransientError, match="did not answer") as caught:
        akv_emulator.store(name).current()
    assert_clean(caught.value)


def test_an_untrusted_certificate_is_permanent(
    akv_emulator: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A vault certificate the CA bundle does not vouch for is a PermanentError about TLS."""
    monkeypatch.delenv("AZURE_CA_BUNDLE")
    with pytest.raises(PermanentError, match="TLS") as caught:
        akv_emulator.store(akv_emulator.secret_name()).current()
    assert "AZURE_CA_BUNDLE" in str(caught.value)


def test_no_identity_is_permanent_with_a_hint(
    akv_emulator: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A credential that cannot get a token is a PermanentError listing the identity options."""
    monkeypatch.setenv("ROTATOR_AZURE_CREDENTIAL", "environment")
    with pytest.raises(PermanentError) as caught:
        akv_emulator.store(akv_emulator.secret_name()).current()
    message = str(caught.value)
    assert "CredentialUnavailableError" in message
    assert "AZURE_FEDERATED_TOKEN_FILE" in message and "ROTATOR_AZURE_CREDENTIAL" in message
    assert not isinstance(caught.value, TransientError)


def test_a_managed_identity_refused_its_token_is_permanent(
    akv_emulator: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token endpoint refusing the identity header is a PermanentError with the identity hint."""
    monkeypatch.setenv("IDENTITY_HEADER", "not-the-emulators-header")
    with pytest.raises(PermanentError, match="no Azure identity could get a token") as caught:
        akv_emulator.store(akv_emulator.secret_name()).current()
    assert not caught.value.retryable
    assert "not-the-emulators-header" not in str(caught.value)


def http_response_error(status: int, **headers: str) -> Any:
    """Return the SDK's HttpResponseError for an answer with ``status`` and ``headers``."""
    import requests
    from azure.core.exceptions import HttpResponseError
    from azure.core.pipeline.transport import HttpRequest, RequestsTransportResponse

    answer = requests.Response()
    answer.status_code = status
    answer.headers.update(headers)
    answer._content = b'{"error": {"code": "Throttled", "message": "slow down"}}'
    request = HttpRequest("GET", "https://example.vault.azure.net/secrets/app")
    return HttpResponseError(response=RequestsTransportResponse(request, answer))


def test_an_http_date_retry_after_is_counted_from_the_answers_date() -> None:
    """An HTTP-date Retry-After is the seconds from the answer's own Date to it."""
    exc = http_response_error(
        429,
        **{"Date": "Thu, 01 Jan 2026 12:00:00 GMT", "Retry-After": "Thu, 01 Jan 2026 12:00:30 GMT"},
    )
    with pytest.raises(TransientError) as caught, azure_errors("azure-test", "get_secret app"):
        raise exc
    assert caught.value.delay == 30.0


@pytest.mark.parametrize(("status", "expected"), [(408, TransientError), (501, PermanentError)])
def test_a_408_may_pass_and_a_501_will_not(status: int, expected: type[Exception]) -> None:
    """Statuses are judged as every provider judges them: 408 transient, 501 permanent."""
    with pytest.raises(expected) as caught, azure_errors("azure-test", "get_secret app"):
        raise http_response_error(status)
    assert type(caught.value) is expected
