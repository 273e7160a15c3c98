"""Azure identities for the store: the real credentials, pinned by ROTATOR_AZURE_CREDENTIAL.

The round trips log in with azure-identity's real ``ManagedIdentityCredential``
(and ``DefaultAzureCredential``), pointed at the emulator's App Service
style token endpoint through ``IDENTITY_ENDPOINT`` and ``IDENTITY_HEADER``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from azure.identity import (
    AzureCliCredential,
    DefaultAzureCredential,
    EnvironmentCredential,
    ManagedIdentityCredential,
    WorkloadIdentityCredential,
)

from providers.azure import identity
from providers.azure.identity import (
    CREDENTIAL_KEY,
    build_credential,
    client_options,
    credential,
    secret_client,
)
from rotator.adapters.secret import SecretValue
from rotator.errors import PermanentError

if TYPE_CHECKING:
    from tests.providers.azure.backends import Backend

# Fixtures akv_backend and akv_emulator.
pytest_plugins = ["tests.providers.azure.backends"]

OLD = "old-password-identity-01"
NEW = "new-password-identity-01"


def round_trip(backend: Backend, runtime: Any = None) -> None:
    """Drive one whole rotation through the store and check what consumers see."""
    name = backend.secret_name()
    old = backend.seed(name, OLD)
    store = backend.store(name, runtime)
    rid = backend.rotation_id()
    store.put_pending(rid, SecretValue(NEW))
    assert store.pending(rid) == SecretValue(NEW)
    assert backend.latest(name).value == OLD
    assert store.promote(rid) == old.properties.version
    store.retire(old.properties.version)
    current = store.current()
    assert current is not None and current.value == SecretValue(NEW)
    assert backend.versions(name)[old.properties.version].enabled is False


def test_managed_identity_endpoint_drives_a_round_trip(akv_emulator: Backend) -> None:
    """ROTATOR_AZURE_CREDENTIAL=managed logs in through IDENTITY_ENDPOINT/IDENTITY_HEADER."""
    runtime = akv_emulator.runtime()
    round_trip(akv_emulator, runtime)
    assert isinstance(runtime.cache[CREDENTIAL_KEY], ManagedIdentityCredential)


def test_the_default_chain_finds_the_managed_identity(
    akv_emulator: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unpinned, DefaultAzureCredential reaches the same managed identity and works."""
    monkeypatch.delenv("ROTATOR_AZURE_CREDENTIAL")
    runtime = akv_emulator.runtime()
    round_trip(akv_emulator, runtime)
    assert isinstance(runtime.cache[CREDENTIAL_KEY], DefaultAzureCredential)


def test_a_credential_put_in_the_cache_is_used(
    akv_emulator: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The test seam: a credential cached under CREDENTIAL_KEY is used as is."""
    monkeypatch.delenv("IDENTITY_ENDPOINT")
    runtime = akv_emulator.runtime()
    seeded = akv_emulator.emulator.credential()
    runtime.cache[CREDENTIAL_KEY] = seeded
    round_trip(akv_emulator, runtime)
    assert runtime.cache[CREDENTIAL_KEY] is seeded


def test_the_challenge_resource_is_checked_unless_turned_off(
    akv_emulator: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without ROTATOR_AZURE_VERIFY_CHALLENGE_RESOURCE=false a vault on 127.0.0.1 is refused."""
    monkeypatch.delenv("ROTATOR_AZURE_VERIFY_CHALLENGE_RESOURCE")
    with pytest.raises(PermanentError, match="ROTATOR_AZURE_VERIFY_CHALLENGE_RESOURCE"):
        akv_emulator.store(akv_emulator.secret_name()).current()


@pytest.mark.usefixtures("akv_clean_env")
@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("managed", ManagedIdentityCredential),
        ("environment", EnvironmentCredential),
        ("cli", AzureCliCredential),
        ("default", DefaultAzureCredential),
        ("DEFAULT", DefaultAzureCredential),
    ],
)
def test_rotator_azure_credential_pins_one_credential(
    monkeypatch: pytest.MonkeyPatch, kind: str, expected: type
) -> None:
    """Each ROTATOR_AZURE_CREDENTIAL value builds exactly that azure-identity credential."""
    monkeypatch.setenv("ROTATOR_AZURE_CREDENTIAL", kind)
    assert type(build_credential()) is expected


@pytest.mark.usefixtures("akv_clean_env")
def test_the_default_is_default_azure_credential() -> None:
    """With ROTATOR_AZURE_CREDENTIAL unset the chain is DefaultAzureCredential."""
    assert type(build_credential()) is DefaultAzureCredential


@pytest.mark.usefixtures("akv_clean_env")
def test_workload_identity_reads_the_aks_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """workload builds WorkloadIdentityCredential from the variables AKS injects."""
    token_file = tmp_path / "token"
    token_file.write_text("federated-token")
    monkeypatch.setenv("ROTATOR_AZURE_CREDENTIAL", "workload")
    monkeypatch.setenv("AZURE_TENANT_ID", "00000000-0000-0000-0000-000000000000")
    monkeypatch.setenv("AZURE_CLIENT_ID", "11111111-1111-1111-1111-111111111111")
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token_file))
    assert type(build_credential()) is WorkloadIdentityCredential


@pytest.mark.usefixtures("akv_clean_env")
def test_workload_identity_without_its_variables_is_refused_with_a_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pinned credential whose configuration is missing is a PermanentError naming the options."""
    monkeypatch.setenv("ROTATOR_AZURE_CREDENTIAL", "workload")
    with pytest.raises(PermanentError, match="workload Azure credential is not configured") as e:
        build_credential()
    assert "AZURE_FEDERATED_TOKEN_FILE" in str(e.value)
    # The SDK's own exception, kept as the context, is emptied like every translated one.
    context = e.value.__context__
    assert context is not None and context.args == ("ValueError",)
    assert context.__traceback__ is None and context.__context__ is None


@pytest.mark.usefixtures("akv_clean_env")
def test_an_unknown_credential_kind_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """ROTATOR_AZURE_CREDENTIAL must name one of the supported credentials."""
    monkeypatch.setenv("ROTATOR_AZURE_CREDENTIAL", "interactive")
    with pytest.raises(PermanentError, match="workload, managed, environment, cli"):
        build_credential()


def test_the_credential_and_clients_are_cached_per_runtime(akv_emulator: Backend) -> None:
    """One credential per runtime cache, one SecretClient per vault URL."""
    runtime = akv_emulator.runtime()
    first = secret_client(runtime, akv_emulator.vault_url)
    assert secret_client(runtime, akv_emulator.vault_url + "/") is first
    assert secret_client(runtime, "https://other.vault.azure.net") is not first
    assert credential(runtime) is credential(runtime)
    assert credential(akv_emulator.runtime()) is not credential(runtime)


@pytest.mark.usefixtures("akv_clean_env")
def test_client_options_follow_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """AZURE_CA_BUNDLE wins over REQUESTS_CA_BUNDLE; the challenge check is on unless 'false'."""
    options = client_options()
    assert "connection_verify" not in options
    assert "verify_challenge_resource" not in options
    assert options["retry_total"] == identity.SDK_RETRIES
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/requests.pem")
    assert client_options()["connection_verify"] == "/etc/requests.pem"
    monkeypatch.setenv("AZURE_CA_BUNDLE", "/etc/azure.pem")
    monkeypatch.setenv("ROTATOR_AZURE_VERIFY_CHALLENGE_RESOURCE", "FALSE")
    options = client_options()
    assert options["connection_verify"] == "/etc/azure.pem"
    assert options["verify_challenge_resource"] is False
    monkeypatch.setenv("ROTATOR_AZURE_VERIFY_CHALLENGE_RESOURCE", "true")
    assert "verify_challenge_resource" not in client_options()
