"""The github-actions target against a local GitHub API that opens every sealed box it receives."""

from __future__ import annotations

import base64
import logging
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

pytest.importorskip("nacl")

from providers.github import (
    KIND,
    OPERATIONS,
    GitHubActionsConfig,
    GitHubActionsTarget,
)
from rotator.adapters import Target
from rotator.adapters.discovery import Registry, registry
from rotator.adapters.secret import SecretValue
from rotator.adapters.values import OUTCOMES, Permission, Runtime
from rotator.engine.report import Result
from rotator.engine.runner import Engine
from rotator.errors import (
    NotFoundError,
    PermanentError,
    PermissionDeniedError,
    PolicyError,
    RotatorError,
    TransientError,
)
from rotator.journal.journal import Journal
from rotator.lifecycle import State
from rotator.policy.loader import load_policies
from rotator.sandbox.core.faults import ANY_STATUS, FaultPlan
from rotator.sandbox.github.server import GitHubServer, serve
from rotator.service.metrics import OPERATION_PATTERN
from rotator.testing import MemoryVerifier, TargetContract
from tests.conftest import FakeClock
from tests.providers.helpers import StepClock

TOKEN = "github_pat_11canaryTOKEN0123456789abcdef"
VALUE = "canary-Gh7xY2vK9pLm4Rt8Qw"
OLD = "old-value-0a1b2c3d4e5f6a7b"
REPO = "acme/payments"
ENV = "production"
ORG = "acme"
NAME = "DB_PASSWORD"
ROTATION = "0f3c2a9d8e7b4c1a9f0e1d2c3b4a5f60"
EARLIER = datetime(2025, 12, 1, 8, 0, tzinfo=UTC)
APP_ID = "123456"
APP_ID_ENV = "ROTATOR_TEST_GH_APP_ID"
APP_KEY_ENV = "ROTATOR_TEST_GH_APP_KEY"
INSTALLATION = 42


@dataclass
class Recorder:
    """Collects what ``runtime.on_request`` is told."""

    calls: list[tuple[str, str, str]] = field(default_factory=list)

    def __call__(self, provider: str, operation: str, outcome: str) -> None:
        self.calls.append((provider, operation, outcome))


@pytest.fixture
def clock() -> StepClock:
    """A clock that moves only when something sleeps on it (the server reads it too)."""
    return StepClock()


@pytest.fixture
def recorder() -> Recorder:
    """Records every request the target reports."""
    return Recorder()


@pytest.fixture
def runtime(clock: StepClock, recorder: Recorder) -> Runtime:
    """A runtime on the step clock whose request observer is ``recorder``."""
    return Runtime(clock=clock, sleep=clock.sleep, cache={}, on_request=recorder)


@pytest.fixture(autouse=True)
def github_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Put the token in GITHUB_TOKEN and turn the write pacing off (one test turns it on)."""
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("ROTATOR_RATE_LIMITS", "github.write=0")


@pytest.fixture
def github(clock: StepClock) -> Iterator[GitHubServer]:
    """A GitHub with repository acme/payments (environments production, prod/eu) and org acme."""
    for server in serve(clock, tokens=(TOKEN,)):
        server.add_repository(REPO, ENV, "prod/eu")
        server.add_organization(ORG)
        yield server


@pytest.fixture(scope="module")
def app_key() -> tuple[str, bytes]:
    """A GitHub App's RSA key: the private PEM (as GitHub hands it out) and the public PEM."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


def target(runtime: Runtime, server: GitHubServer, **fields: Any) -> GitHubActionsTarget:
    """Return the target of secret db_password in acme/payments (or what ``fields`` say)."""
    config: dict[str, Any] = {"repository": REPO, "name": "db_password", "api_url": server.url}
    if "organization" in fields:
        del config["repository"]
    config.update(fields)
    return GitHubActionsTarget(GitHubActionsConfig(**config), runtime, "payments-db")


def stored(server: GitHubServer, **scope: str) -> str | None:
    """Return the plaintext the server opened for DB_PASSWORD in the scope named (default repo)."""
    found = server.secret(server.scope(**(scope or {"repository": REPO})), NAME)
    return None if found is None else found.value


# -- write


def test_write_creates_a_repository_secret_that_opens_to_the_value(
    runtime: Runtime, github: GitHubServer, clock: StepClock
) -> None:
    """The server opens the sealed box to exactly the value, and the secret is created now."""
    target(runtime, github).write(ROTATION, SecretValue(VALUE))

    assert stored(github) == VALUE
    secret = github.secret(github.scope(repository=REPO), NAME)
    assert secret is not None and secret.created_at == secret.updated_at == clock.now
    prefix = f"/repos/{REPO}/actions/secrets"
    assert [(r.method, r.path) for r in github.requests] == [
        ("GET", f"{prefix}/{NAME}"),
        ("GET", f"{prefix}/public-key"),
        ("PUT", f"{prefix}/{NAME}"),
        ("GET", f"{prefix}/{NAME}"),
    ]


def test_every_request_carries_githubs_headers(runtime: Runtime, github: GitHubServer) -> None:
    """Accept, X-GitHub-Api-Version, User-Agent and the bearer token go with every request."""
    target(runtime, github).write(ROTATION, SecretValue(VALUE))

    for seen in github.requests:
        assert seen.header("Accept") == "application/vnd.github+json"
        assert seen.header("X-GitHub-Api-Version") == "2022-11-28"
        assert (seen.header("User-Agent") or "").startswith("rotator")
        assert seen.header("Authorization") == f"Bearer {TOKEN}"
    [put] = github.requests_to("PUT")
    assert put.header("Content-Type") == "application/json"


def test_write_updates_an_existing_secret(
    runtime: Runtime, github: GitHubServer, clock: StepClock
) -> None:
    """An existing secret gets the new value and a new updated_at; its created_at stays."""
    github.seed(github.scope(repository=REPO), NAME, OLD, EARLIER)

    target(runtime, github).write(ROTATION, SecretValue(VALUE))

    secret = github.secret(github.scope(repository=REPO), NAME)
    assert secret is not None
    assert (secret.value, secret.created_at, secret.updated_at) == (VALUE, EARLIER, clock.now)


def test_environment_secret_is_written_in_the_environment(
    runtime: Runtime, github: GitHubServer
) -> None:
    """An environment secret lands in the environment, not in the repository."""
    target(runtime, github, environment=ENV).write(ROTATION, SecretValue(VALUE))

    assert stored(github, repository=REPO, environment=ENV) == VALUE
    assert stored(github) is None
    [put] = github.requests_to("PUT")
    assert put.path == f"/repos/{REPO}/environments/{ENV}/secrets/{NAME}"


def test_environment_name_is_url_encoded(runtime: Runtime, github: GitHubServer) -> None:
    """A slash in an environment's name is sent as %2F, as GitHub asks."""
    target(runtime, github, environment="prod/eu").write(ROTATION, SecretValue(VALUE))

    assert stored(github, repository=REPO, environment="prod/eu") == VALUE
    assert github.requests_to("PUT")[0].path.startswith(f"/repos/{REPO}/environments/prod%2Feu/")


def test_organization_secret_is_private_by_default(runtime: Runtime, github: GitHubServer) -> None:
    """An organisation secret is written with visibility private unless told otherwise."""
    target(runtime, github, organization=ORG).write(ROTATION, SecretValue(VALUE))

    secret = github.secret(github.scope(organization=ORG), NAME)
    assert secret is not None
    assert (secret.value, secret.visibility) == (VALUE, "private")
    assert github.requests_to("PUT")[0].path == f"/orgs/{ORG}/actions/secrets/{NAME}"


def test_organization_secret_for_selected_repositories(
    runtime: Runtime, github: GitHubServer
) -> None:
    """visibility selected sends the repository ids with the sealed value."""
    tgt = target(
        runtime,
        github,
        organization=ORG,
        visibility="selected",
        selected_repository_ids=[1296269, 1296270],
    )
    tgt.write(ROTATION, SecretValue(VALUE))

    secret = github.secret(github.scope(organization=ORG), NAME)
    assert secret is not None
    assert (secret.visibility, secret.selected_repository_ids) == ("selected", [1296269, 1296270])


def test_writing_twice_is_harmless_and_seals_afresh(runtime: Runtime, github: GitHubServer) -> None:
    """A replay re-encrypts and re-PUTs: same plaintext, a different sealed box each time."""
    tgt = target(runtime, github)
    tgt.write(ROTATION, SecretValue(VALUE))
    tgt.write(ROTATION, SecretValue(VALUE))

    secret = github.secret(github.scope(repository=REPO), NAME)
    assert secret is not None and (secret.value, secret.writes) == (VALUE, 2)
    first, second = (r.body for r in github.requests_to("PUT"))
    assert first != second


def test_a_mapping_value_is_written_as_compact_json(runtime: Runtime, github: GitHubServer) -> None:
    """A credential with fields is stored as the compact, sorted JSON text the store holds."""
    pair = {"user": "payments", "password": "pw-0123456789abcdef"}
    target(runtime, github).write(ROTATION, SecretValue(pair))

    assert stored(github) == '{"password":"pw-0123456789abcdef","user":"payments"}'


def test_a_value_over_48_kb_is_refused_before_any_write(
    runtime: Runtime, github: GitHubServer
) -> None:
    """GitHub's 48 KB limit is checked locally: PermanentError, and nothing is PUT."""
    with pytest.raises(PermanentError, match="48 KB"):
        target(runtime, github).write(ROTATION, SecretValue("x" * (48 * 1024 + 1)))
    assert github.requests_to("PUT") == []


# -- proving the write landed


def test_a_write_that_does_not_move_updated_at_fails(
    runtime: Runtime, github: GitHubServer
) -> None:
    """A server that answers 204 but changes nothing makes write fail, naming both times."""
    github.seed(github.scope(repository=REPO), NAME, OLD, EARLIER)
    github.frozen = True

    with pytest.raises(TransientError, match="did not land") as caught:
        target(runtime, github).write(ROTATION, SecretValue(VALUE))

    assert "updated_at (2025-12-01T08:00:00Z) is before the write (2026-01-01T00:00:00Z)" in str(
        caught.value
    )
    assert stored(github) == OLD


def test_a_write_that_creates_nothing_fails(runtime: Runtime, github: GitHubServer) -> None:
    """A server that accepts a new secret but does not keep it makes write fail."""
    github.frozen = True

    with pytest.raises(TransientError, match="does not exist when read back"):
        target(runtime, github).write(ROTATION, SecretValue(VALUE))


def test_the_check_uses_githubs_clock_not_rotators(
    clock: StepClock, recorder: Recorder, github: GitHubServer
) -> None:
    """A rotator clock far ahead of GitHub's does not fail a write that landed."""
    ahead = Runtime(clock=lambda: clock.now + timedelta(hours=3), sleep=clock.sleep, cache={})

    target(ahead, github).write(ROTATION, SecretValue(VALUE))

    assert stored(github) == VALUE


@pytest.mark.parametrize(("skew", "lands"), [(-1, True), (-2, False)])
def test_a_second_of_skew_between_githubs_clocks_is_allowed(
    runtime: Runtime, github: GitHubServer, skew: int, lands: bool
) -> None:
    """updated_at a second behind GitHub's Date still counts as landed; two seconds do not."""
    github.write_skew = timedelta(seconds=skew)

    if lands:
        target(runtime, github).write(ROTATION, SecretValue(VALUE))
    else:
        with pytest.raises(TransientError, match="did not land"):
            target(runtime, github).write(ROTATION, SecretValue(VALUE))


def test_without_a_date_header_updated_at_must_move(
    runtime: Runtime, github: GitHubServer, clock: StepClock
) -> None:
    """With no Date to compare with, a write lands if updated_at moved past its old value."""
    github.send_date = False
    github.seed(github.scope(repository=REPO), NAME, OLD, EARLIER)
    tgt = target(runtime, github)
    tgt.write(ROTATION, SecretValue(VALUE))
    assert stored(github) == VALUE

    github.frozen = True
    clock.now += timedelta(minutes=1)
    with pytest.raises(TransientError, match="did not land"):
        tgt.write(ROTATION, SecretValue(OLD))


# -- restore


def test_restore_puts_the_previous_value_back(runtime: Runtime, github: GitHubServer) -> None:
    """After a write, restore leaves the secret opening to the previous value."""
    github.seed(github.scope(repository=REPO), NAME, OLD, EARLIER)
    tgt = target(runtime, github)
    tgt.write(ROTATION, SecretValue(VALUE))

    tgt.restore(ROTATION, written=SecretValue(VALUE), previous=SecretValue(OLD))

    assert stored(github) == OLD


def test_restore_deletes_a_secret_the_write_created(runtime: Runtime, github: GitHubServer) -> None:
    """With no previous value, the secret this rotation created is deleted; twice is harmless."""
    tgt = target(runtime, github)
    tgt.write(ROTATION, SecretValue(VALUE))

    tgt.restore(ROTATION, written=SecretValue(VALUE), previous=None)
    tgt.restore(ROTATION, written=SecretValue(VALUE), previous=None)

    assert stored(github) is None
    assert len(github.requests_to("DELETE")) == 1


def test_restore_without_previous_leaves_a_secret_it_did_not_create(
    runtime: Runtime, github: GitHubServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A secret that existed before the write is not deleted; a warning says so."""
    github.seed(github.scope(repository=REPO), NAME, OLD, EARLIER)
    tgt = target(runtime, github)
    tgt.write(ROTATION, SecretValue(VALUE))

    with caplog.at_level(logging.WARNING):
        tgt.restore(ROTATION, written=SecretValue(VALUE), previous=None)

    assert stored(github) == VALUE
    assert github.requests_to("DELETE") == []
    assert "left as it is" in caplog.text


def test_restore_after_a_restart_does_not_delete(
    runtime: Runtime, github: GitHubServer, clock: StepClock
) -> None:
    """A new process cannot tell who created the secret, so it deletes nothing."""
    target(runtime, github).write(ROTATION, SecretValue(VALUE))
    restarted = Runtime(clock=clock, sleep=clock.sleep, cache={})

    target(restarted, github).restore(ROTATION, written=SecretValue(VALUE), previous=None)

    assert stored(github) == VALUE


def test_restore_in_a_missing_environment_is_a_no_op(
    runtime: Runtime, github: GitHubServer, caplog: pytest.LogCaptureFixture
) -> None:
    """With no environment there is no secret to restore: a warning, no error, no write."""
    with caplog.at_level(logging.WARNING):
        target(runtime, github, environment="staging").restore(
            ROTATION, written=SecretValue(VALUE), previous=SecretValue(OLD)
        )

    assert "nothing to restore" in caplog.text
    assert github.requests_to("PUT") == []


# -- errors


def test_a_refused_token_is_a_permission_error_naming_the_variable(
    runtime: Runtime, github: GitHubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 401 raises PermissionDeniedError naming the token variable, not the token."""
    monkeypatch.setenv("GITHUB_TOKEN", "github_pat_revoked000000000000")

    with pytest.raises(PermissionDeniedError, match="the token in GITHUB_TOKEN") as caught:
        target(runtime, github).write(ROTATION, SecretValue(VALUE))

    assert "HTTP 401: Bad credentials" in str(caught.value)
    assert "revoked000" not in str(caught.value)


def test_a_missing_token_variable_sends_nothing(
    runtime: Runtime, github: GitHubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unset token variable (token_env's) raises PermanentError naming it; nothing is sent."""
    monkeypatch.delenv("GITHUB_TOKEN")

    with pytest.raises(PermanentError, match="CI_SECRETS_TOKEN"):
        target(runtime, github, token_env="CI_SECRETS_TOKEN").write(ROTATION, SecretValue(VALUE))
    assert github.requests == []


def test_token_env_names_another_variable(
    runtime: Runtime, github: GitHubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """token_env picks the variable the token is read from."""
    monkeypatch.delenv("GITHUB_TOKEN")
    monkeypatch.setenv("CI_SECRETS_TOKEN", TOKEN)

    target(runtime, github, token_env="CI_SECRETS_TOKEN").write(ROTATION, SecretValue(VALUE))

    assert stored(github) == VALUE


def test_a_forbidden_request_says_what_the_token_needs(
    runtime: Runtime, github: GitHubServer
) -> None:
    """A 403 that is not a rate limit raises PermissionDeniedError naming the permission."""
    github.fail(403, body={"message": "Resource not accessible by personal access token"})

    with pytest.raises(PermissionDeniedError, match="Secrets: write") as caught:
        target(runtime, github).write(ROTATION, SecretValue(VALUE))

    assert "Resource not accessible" in str(caught.value)


def test_a_rate_limit_403_waits_until_the_reset(
    runtime: Runtime, github: GitHubServer, clock: StepClock, recorder: Recorder
) -> None:
    """403 with x-ratelimit-remaining 0 is a TransientError delayed until x-ratelimit-reset."""
    reset = int(clock.now.timestamp()) + 120
    github.fail(
        403,
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)},
        body={"message": "API rate limit exceeded for user ID 1."},
    )

    with pytest.raises(TransientError, match="rate limit") as caught:
        target(runtime, github).write(ROTATION, SecretValue(VALUE))

    assert caught.value.delay == 120.0
    assert recorder.calls[-1][2] == "throttled"


def test_a_429_waits_what_retry_after_asks(runtime: Runtime, github: GitHubServer) -> None:
    """429 with retry-after is a TransientError with that delay."""
    github.fail(429, headers={"retry-after": "30"}, body={"message": "Too many requests"})

    with pytest.raises(TransientError) as caught:
        target(runtime, github).write(ROTATION, SecretValue(VALUE))

    assert caught.value.delay == 30.0


def test_a_secondary_rate_limit_without_headers_waits_a_minute(
    runtime: Runtime, github: GitHubServer
) -> None:
    """A 403 secondary rate limit naming no time waits 60 s, as GitHub advises."""
    github.fail(
        403,
        method="PUT",
        body={"message": "You have exceeded a secondary rate limit. Please wait a few minutes."},
    )

    with pytest.raises(TransientError) as caught:
        target(runtime, github).write(ROTATION, SecretValue(VALUE))

    assert caught.value.delay == 60.0
    assert stored(github) is None


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"repository": "acme/missing"}, "repository acme/missing not found"),
        (
            {"environment": "staging"},
            "environment staging does not exist in repository acme/payments",
        ),
        ({"repository": "acme/missing", "environment": ENV}, "repository acme/missing not found"),
        ({"organization": "nobody"}, "organization nobody not found"),
    ],
)
def test_not_found_names_what_is_missing(
    runtime: Runtime, github: GitHubServer, fields: dict[str, str], words: str
) -> None:
    """A 404 says whether the repository, the environment or the organisation is missing."""
    with pytest.raises(NotFoundError, match=words):
        target(runtime, github, **fields).write(ROTATION, SecretValue(VALUE))
    assert github.requests_to("PUT") == []


def test_an_invalid_request_is_permanent(runtime: Runtime, github: GitHubServer) -> None:
    """A 422 raises PermanentError with GitHub's message."""
    github.fail(422, method="PUT", body={"message": "Invalid request.\n\nkey_id is invalid"})

    with pytest.raises(PermanentError, match="refused the request as invalid") as caught:
        target(runtime, github).write(ROTATION, SecretValue(VALUE))

    assert type(caught.value) is PermanentError
    assert "Invalid request. key_id is invalid" in str(caught.value)


def test_a_server_error_is_transient_and_changes_nothing(
    runtime: Runtime, github: GitHubServer, recorder: Recorder
) -> None:
    """A 500 on the PUT raises TransientError; the secret is untouched."""
    github.seed(github.scope(repository=REPO), NAME, OLD, EARLIER)
    github.fail(500, method="PUT", body={"message": "Server Error"})

    with pytest.raises(TransientError, match="HTTP 500"):
        target(runtime, github).write(ROTATION, SecretValue(VALUE))

    assert stored(github) == OLD
    assert ("github", "secrets.put", "transient") in recorder.calls


def test_a_server_errors_http_date_retry_after_counts_on_githubs_clock(
    clock: StepClock, github: GitHubServer
) -> None:
    """A 503's HTTP-date Retry-After counts from GitHub's Date, not from rotator's own clock."""
    ahead = Runtime(clock=lambda: clock.now + timedelta(hours=3), sleep=clock.sleep, cache={})
    asked = format_datetime(clock.now + timedelta(seconds=30), usegmt=True)
    github.fail(503, method="PUT", headers={"retry-after": asked}, body={"message": "Unavailable"})

    with pytest.raises(TransientError) as caught:
        target(ahead, github).write(ROTATION, SecretValue(VALUE))

    assert caught.value.delay == 30.0


def test_a_501_is_permanent(runtime: Runtime, github: GitHubServer, recorder: Recorder) -> None:
    """A 501 (the server does not do this) raises PermanentError, counted permanent."""
    github.fail(501, method="PUT", body={"message": "Not Implemented"})

    with pytest.raises(PermanentError, match="HTTP 501") as caught:
        target(runtime, github).write(ROTATION, SecretValue(VALUE))

    assert not caught.value.retryable
    assert ("github", "secrets.put", "permanent") in recorder.calls


def test_a_redirect_is_not_followed(runtime: Runtime, github: GitHubServer) -> None:
    """A 301 (a renamed repository) raises PermanentError saying to fix the policy."""
    github.fail(301, headers={"Location": "https://api.github.com/repositories/1"})

    with pytest.raises(PermanentError, match="renamed or moved"):
        target(runtime, github).write(ROTATION, SecretValue(VALUE))
    assert len(github.requests) == 1


def test_a_refused_connection_is_transient(runtime: Runtime, closed_port: int) -> None:
    """No listener: TransientError saying there was no answer."""
    config = GitHubActionsConfig(
        repository=REPO, name=NAME, api_url=f"http://127.0.0.1:{closed_port}"
    )
    with pytest.raises(TransientError, match="no answer"):
        GitHubActionsTarget(config, runtime, "p").write(ROTATION, SecretValue(VALUE))


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound but not listening: connecting to it is refused at once."""
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


# -- GitHub App


@pytest.fixture
def app(
    github: GitHubServer, app_key: tuple[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """Register the App (installed as 42) and put its id and key in the environment."""
    private, public = app_key
    github.add_app(APP_ID, public, INSTALLATION)
    monkeypatch.delenv("GITHUB_TOKEN")
    monkeypatch.setenv(APP_ID_ENV, APP_ID)
    monkeypatch.setenv(APP_KEY_ENV, private)
    return {
        "app_id_env": APP_ID_ENV,
        "app_private_key_env": APP_KEY_ENV,
        "installation_id": INSTALLATION,
    }


def test_app_token_is_minted_with_a_verified_jwt(
    runtime: Runtime, github: GitHubServer, app: dict[str, Any], clock: StepClock
) -> None:
    """The JWT verifies with the App's public key (iat 60 s back, exp 10 min after iat)."""
    target(runtime, github, **app).write(ROTATION, SecretValue(VALUE))

    assert stored(github) == VALUE
    [claims] = github.jwt_claims
    issued = int(clock.now.timestamp()) - 60
    assert claims == {"iat": issued, "exp": issued + 600, "iss": APP_ID}
    [token] = github.issued
    assert all(r.header("Authorization") == f"Bearer {token}" for r in github.requests_to("PUT"))


def test_app_token_is_cached_until_shortly_before_it_expires(
    runtime: Runtime, github: GitHubServer, app: dict[str, Any], clock: StepClock
) -> None:
    """Writes within the hour share one token; 56 minutes on, a new one is minted."""
    tgt = target(runtime, github, **app)
    tgt.write(ROTATION, SecretValue(VALUE))
    clock.now += timedelta(minutes=54)
    tgt.write(ROTATION, SecretValue(VALUE))
    assert len(github.jwt_claims) == 1

    clock.now += timedelta(minutes=2)
    tgt.write(ROTATION, SecretValue(VALUE))

    assert len(github.jwt_claims) == 2
    assert len(github.issued) == 2


def test_a_revoked_app_token_is_replaced_once(
    runtime: Runtime, github: GitHubServer, app: dict[str, Any]
) -> None:
    """A cached installation token GitHub refuses is replaced, and the request sent again."""
    tgt = target(runtime, github, **app)
    tgt.write(ROTATION, SecretValue(VALUE))
    github.issued.clear()

    tgt.write(ROTATION, SecretValue(OLD))

    assert stored(github) == OLD
    assert len(github.jwt_claims) == 2


def test_a_jwt_signed_with_another_key_is_refused(
    runtime: Runtime, github: GitHubServer, app: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key GitHub does not know raises PermissionDeniedError naming the variables, not the key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    monkeypatch.setenv(APP_KEY_ENV, pem)

    with pytest.raises(PermissionDeniedError, match=APP_KEY_ENV) as caught:
        target(runtime, github, **app).write(ROTATION, SecretValue(VALUE))

    assert "BEGIN" not in str(caught.value)
    assert not any(line in str(caught.value) for line in pem.splitlines()[1:-1])


def test_an_unknown_installation_is_not_found(
    runtime: Runtime, github: GitHubServer, app: dict[str, Any]
) -> None:
    """An installation id the App does not have raises NotFoundError naming it."""
    with pytest.raises(NotFoundError, match="installation 7 "):
        target(runtime, github, **{**app, "installation_id": 7}).write(ROTATION, SecretValue(VALUE))


def test_a_private_key_that_is_not_a_pem_is_permanent(
    runtime: Runtime, github: GitHubServer, app: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Garbage in the key variable raises PermanentError naming it; nothing is sent."""
    monkeypatch.setenv(APP_KEY_ENV, "not-a-pem-private-key-0123456789")

    with pytest.raises(PermanentError, match=f"{APP_KEY_ENV} cannot sign a JWT") as caught:
        target(runtime, github, **app).write(ROTATION, SecretValue(VALUE))

    assert "not-a-pem" not in str(caught.value)
    assert github.requests == []
    # The SDK's exception, kept as the context, is emptied: its frames held the key.
    context = caught.value.__context__
    assert context is not None and context.__traceback__ is None
    assert context.args == (type(context).__name__,)


def test_a_value_that_cannot_be_sealed_leaves_no_trace_in_the_error_chain(
    runtime: Runtime, github: GitHubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sealing failure quoting the value raises PermanentError whose context is emptied."""
    import providers.github as module

    def seal(key: bytes, plain: bytes) -> str:
        raise ValueError(f"cannot seal {plain!r}")

    monkeypatch.setattr(module, "seal", seal)

    with pytest.raises(PermanentError, match="could not be sealed") as caught:
        target(runtime, github).write(ROTATION, SecretValue(VALUE))

    context = caught.value.__context__
    assert context is not None and VALUE not in repr(context.args)
    assert context.__traceback__ is None


# -- nothing leaks


def test_the_value_never_reaches_a_request_a_log_an_error_or_describe(
    runtime: Runtime,
    github: GitHubServer,
    app_key: tuple[str, bytes],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Across writes, restores and every failure, the plaintext is only ever inside sealed boxes."""
    caplog.set_level(logging.DEBUG)
    github.seed(github.scope(repository=REPO), NAME, OLD, EARLIER)
    messages: list[str] = []

    def attempt(action: Any) -> None:
        try:
            action()
        except RotatorError as exc:
            messages.append(str(exc))

    tgt = target(runtime, github)
    tgt.write(ROTATION, SecretValue(VALUE))
    tgt.restore(ROTATION, written=SecretValue(VALUE), previous=SecretValue(OLD))
    for status in (401, 403, 404, 422, 429, 500):
        github.fail(status, method="PUT", body={"message": "refused by the test"})
        attempt(lambda: tgt.write(ROTATION, SecretValue(VALUE)))
    github.frozen = True
    attempt(lambda: tgt.write(ROTATION, SecretValue(VALUE)))
    github.frozen = False
    attempt(
        lambda: target(runtime, github, environment="staging").write(ROTATION, SecretValue(VALUE))
    )
    private, public = app_key
    github.add_app(APP_ID, public, INSTALLATION)
    monkeypatch.setenv(APP_ID_ENV, APP_ID)
    monkeypatch.setenv(APP_KEY_ENV, private)
    with_app = target(
        runtime,
        github,
        app_id_env=APP_ID_ENV,
        app_private_key_env=APP_KEY_ENV,
        installation_id=INSTALLATION,
    )
    with_app.write(ROTATION, SecretValue(VALUE))
    github.issued.clear()
    github.apps.clear()
    attempt(lambda: with_app.write(ROTATION, SecretValue(VALUE)))
    texts = [*messages, caplog.text, tgt.describe(), tgt.check(), with_app.describe()]

    assert len(messages) == 8
    assert stored(github) == VALUE  # the App's write went through, sealed
    received = github.everything_received()
    encoded = base64.b64encode(VALUE.encode()).decode()
    for plain in (VALUE, OLD, encoded):
        assert plain not in received
        assert all(plain not in text for text in texts)
    for credential in (TOKEN, *private.splitlines()[1:-1]):
        assert all(credential not in text for text in texts)


# -- check, permissions, reporting


def test_check_reads_the_public_key_and_changes_nothing(
    runtime: Runtime, github: GitHubServer
) -> None:
    """check reads the public key and the secret's metadata, says so, and writes nothing."""
    said = target(runtime, github, environment=ENV).check()

    assert "public key" in said and f"environment {ENV} of repository {REPO}" in said
    assert "absent (the first write creates it)" in said
    assert {r.method for r in github.requests} == {"GET"}


def test_check_of_a_missing_environment_is_not_found(
    runtime: Runtime, github: GitHubServer
) -> None:
    """check raises NotFoundError naming a missing environment."""
    with pytest.raises(NotFoundError, match="environment staging does not exist"):
        target(runtime, github, environment="staging").check()


def test_permissions_name_githubs_permissions_per_scope(
    runtime: Runtime, github: GitHubServer, app: dict[str, Any]
) -> None:
    """Repository, environment and organisation secrets each need their own permission."""
    repo = target(runtime, github).permissions()
    environment = target(runtime, github, environment=ENV).permissions()
    org = target(runtime, github, organization=ORG).permissions()
    with_app = target(runtime, github, **app).permissions()

    step = "target: write the Actions secret"
    assert repo == [Permission("github", ("secrets:write",), resource=f"repos/{REPO}", step=step)]
    assert environment == [
        Permission(
            "github",
            ("environments:write", "secrets:write"),
            resource=f"repos/{REPO}/environments/{ENV}",
            step=step,
        )
    ]
    assert org == [
        Permission("github", ("organization_secrets:write",), resource=f"orgs/{ORG}", step=step)
    ]
    assert with_app[0] == repo[0]
    assert with_app[1].actions == () and APP_ID_ENV in with_app[1].resource


def test_every_request_is_reported_with_a_fixed_operation(
    runtime: Runtime, github: GitHubServer, recorder: Recorder
) -> None:
    """Each request is reported as provider github with a known operation and outcome."""
    tgt = target(runtime, github)
    tgt.write(ROTATION, SecretValue(VALUE))
    tgt.restore(ROTATION, written=SecretValue(VALUE), previous=None)

    assert len(recorder.calls) == len(github.requests) == 5
    for provider, operation, outcome in recorder.calls:
        assert provider == "github"
        assert operation in OPERATIONS and OPERATION_PATTERN.fullmatch(operation)
        assert outcome in OUTCOMES
    assert ("github", "secrets.put", "ok") in recorder.calls
    assert ("github", "secrets.delete", "ok") in recorder.calls


def test_writes_are_paced_one_a_second(
    runtime: Runtime, github: GitHubServer, clock: StepClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the default github.write limit, a second PUT right after the first waits."""
    monkeypatch.delenv("ROTATOR_RATE_LIMITS")
    tgt = target(runtime, github)
    tgt.write(ROTATION, SecretValue(VALUE))
    assert clock.sleeps == []

    tgt.write(ROTATION, SecretValue(VALUE))

    [waited] = clock.sleeps
    assert 0 < waited <= 1.0


def test_describe_names_the_scope_and_the_host(runtime: Runtime, github: GitHubServer) -> None:
    """describe gives kind, scope and NAME, and the host when it is not api.github.com."""
    base = {"repository": REPO, "name": "db_password"}

    def described(**fields: Any) -> str:
        config = GitHubActionsConfig(**{**base, **fields})
        return GitHubActionsTarget(config, runtime, "p").describe()

    assert described() == f"{KIND}:{REPO}#{NAME}"
    assert described(environment=ENV) == f"{KIND}:{REPO}/environments/{ENV}#{NAME}"
    assert described(repository=None, organization=ORG) == f"{KIND}:orgs/{ORG}#{NAME}"
    assert (
        described(api_url="https://ghe.example.com/api/v3/")
        == f"{KIND}:{REPO}#{NAME}@ghe.example.com"
    )


# -- TLS


@pytest.fixture
def tls_github(clock: StepClock, tmp_path: Path) -> Iterator[tuple[GitHubServer, Path]]:
    """A GitHub over HTTPS with a throwaway CA's certificate; yields it and the CA file."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    for server in serve(clock, context, tokens=(TOKEN,)):
        server.add_repository(REPO)
        yield server, ca_file


def test_https_with_ca_file_and_an_untrusted_certificate(
    runtime: Runtime, tls_github: tuple[GitHubServer, Path]
) -> None:
    """With ca_file the write goes over TLS; without it the certificate is refused for good."""
    server, ca_file = tls_github
    target(runtime, server, ca_file=str(ca_file)).write(ROTATION, SecretValue(VALUE))
    assert stored(server) == VALUE

    with pytest.raises(PermanentError, match="certificate was refused"):
        target(runtime, server).write(ROTATION, SecretValue(VALUE))


# -- policy fields


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"organization": ORG}, "exactly one of repository"),
        ({"repository": None}, "exactly one of repository"),
        ({"repository": None, "organization": ORG, "environment": ENV}, "environment needs"),
        ({"name": "1PASSWORD"}, "not starting with a digit"),
        ({"name": "db-password"}, "only letters, digits and _"),
        ({"name": "github_token"}, "GITHUB_"),
        ({"repository": "acme"}, "not owner/name"),
        ({"repository": "acme/.."}, "not owner/name"),
        ({"visibility": "all"}, "for organization secrets"),
        ({"repository": None, "organization": ORG, "visibility": "selected"}, "needs selected"),
        (
            {"repository": None, "organization": ORG, "selected_repository_ids": [1]},
            "needs visibility: selected",
        ),
        ({"api_url": "http://github.example.com/api/v3"}, "https"),
        ({"api_url": "https://api.github.com/?x=1"}, "query"),
        ({"app_id_env": APP_ID_ENV}, "installation_id missing"),
        (
            {
                "token_env": "GITHUB_TOKEN",
                "app_id_env": APP_ID_ENV,
                "app_private_key_env": APP_KEY_ENV,
                "installation_id": 1,
            },
            "not both",
        ),
        ({"token_env": "not a name"}, "environment variable name"),
        ({"timeout": "0s"}, "longer than zero"),
    ],
)
def test_bad_fields_are_refused(fields: dict[str, Any], reason: str) -> None:
    """Each invalid policy is refused with a reason naming the problem."""
    base: dict[str, Any] = {"repository": REPO, "name": NAME}
    with pytest.raises(ValidationError, match=reason):
        GitHubActionsConfig(**{**base, **fields})


def test_names_are_upper_cased_and_defaults_hold() -> None:
    """A name is stored upper-case, as GitHub does; defaults: api.github.com, GITHUB_TOKEN."""
    config = GitHubActionsConfig(repository=REPO, name="db_password")
    assert config.name == NAME
    assert (config.api_url, config.token_env, config.uses_app) == (
        "https://api.github.com",
        "GITHUB_TOKEN",
        False,
    )
    org = GitHubActionsConfig(organization=ORG, name=NAME)
    assert org.effective_visibility == "private"


def test_an_app_without_pyjwt_is_refused_at_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without PyJWT installed, a policy naming a GitHub App is refused with the pip command."""
    from importlib.metadata import PackageNotFoundError

    import providers.github as module

    installed = module.version

    def version(name: str) -> str:
        if name == "PyJWT":
            raise PackageNotFoundError(name)
        return installed(name)

    monkeypatch.setattr(module, "version", version)
    with pytest.raises(ValidationError, match=r"needs PyJWT.*pip install 'PyJWT\[crypto\]'"):
        GitHubActionsConfig(
            repository=REPO,
            name=NAME,
            app_id_env=APP_ID_ENV,
            app_private_key_env=APP_KEY_ENV,
            installation_id=INSTALLATION,
        )
    assert GitHubActionsConfig(repository=REPO, name=NAME).uses_app is False


POLICY = """\
secrets:
  - name: payments-db
    store: {provider: aws-secretsmanager, secret_id: prod/payments/db}
    schedule: {every: 30d}
    grace: 1h
    targets:
      - kind: github-actions
        repository: acme/payments
        environment: production
        name: db_password
"""


def test_the_documented_policy_block_loads(tmp_path: Path) -> None:
    """The documented policy block validates into this target's Config, name upper-cased."""
    path = tmp_path / "p.yaml"
    path.write_text(POLICY)

    [policy] = load_policies(path, registry())

    [spec] = policy.targets
    assert spec.kind == KIND
    assert spec.config == GitHubActionsConfig(
        repository="acme/payments", environment="production", name="DB_PASSWORD"
    )


def test_a_bad_name_is_a_located_policy_problem(tmp_path: Path) -> None:
    """A reserved name is refused with the file, line and reason before anything runs."""
    path = tmp_path / "p.yaml"
    path.write_text(POLICY.replace("name: db_password", "name: GITHUB_SHA"))

    with pytest.raises(PolicyError) as caught:
        load_policies(path, registry())

    [problem] = caught.value.problems
    assert (problem.line, problem.path) == (10, "secrets[0].targets[0].name")
    assert "GITHUB_" in problem.reason


def test_the_policy_in_the_docs_loads(tmp_path: Path) -> None:
    """The policy example at the end of docs/providers/github.md is a valid policy."""
    text = (Path(__file__).parents[2] / "docs" / "providers" / "github.md").read_text()
    example = text.split("## A policy")[1].split("```yaml")[1].split("```")[0]
    path = tmp_path / "p.yaml"
    path.write_text(example)

    [policy] = load_policies(path, registry())

    [spec] = policy.targets
    assert spec.kind == KIND


# -- in the engine


#: A check that lets no credential in: the reference verifier on a service accepting nothing.
REFUSING = "    verify:\n      - kind: memory\n        service: accepts-nothing\n"


ENGINE_POLICY = """
secrets:
  - name: app
    store: {provider: aws-secretsmanager, secret_id: app}
    schedule: {every: 30d}
    grace: 1h
    targets:
      - kind: github-actions
        repository: acme/payments
        name: APP_TOKEN
        api_url: URL
"""


@pytest.fixture
def real_time_github() -> Iterator[GitHubServer]:
    """A GitHub on the real clock (the engine's clock is its own), with acme/payments."""
    for server in serve(tokens=(TOKEN,)):
        server.add_repository(REPO)
        yield server


def _engine(tmp_path: Path, url: str, extra: str = "") -> Engine:
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0) + timedelta(days=31))
    base = registry()
    adapters = Registry(
        base.stores, base.issuers, base.targets, {**base.verifiers, "memory": MemoryVerifier}
    )
    config = tmp_path / "policies.yaml"
    config.write_text(ENGINE_POLICY.replace("URL", url) + extra)
    journal = Journal(f"sqlite:///{tmp_path / 'j.db'}", clock)
    policies = load_policies(config, registry=adapters)
    return Engine(policies, journal, clock=clock, sleep=clock.sleep, adapters=adapters)


def _seed_store() -> Any:
    import boto3

    sm = boto3.client("secretsmanager", region_name="us-east-1")
    sm.create_secret(Name="app", SecretString=OLD)
    return sm


def _current(sm: Any) -> str:
    value: str = sm.get_secret_value(SecretId="app", VersionStage="AWSCURRENT")["SecretString"]
    return value


@pytest.mark.usefixtures("aws_in_process")
def test_a_rotation_propagates_to_the_github_secret(
    tmp_path: Path, real_time_github: GitHubServer
) -> None:
    """A random secret rotated in Secrets Manager reaches GitHub, opening to the new value."""
    sm = _seed_store()
    engine = _engine(tmp_path, real_time_github.url)

    [outcome] = engine.run_once().outcomes

    assert outcome.result is Result.OK and outcome.state is State.GRACE
    new = _current(sm)
    assert new != OLD
    found = real_time_github.secret(real_time_github.scope(repository=REPO), "APP_TOKEN")
    assert found is not None and found.value == new


@pytest.mark.usefixtures("aws_in_process")
def test_a_failing_check_rolls_the_github_secret_back(
    tmp_path: Path, real_time_github: GitHubServer
) -> None:
    """A verifier refusing the new key puts the previous value back in GitHub."""
    sm = _seed_store()
    scope = real_time_github.scope(repository=REPO)
    real_time_github.seed(scope, "APP_TOKEN", OLD, EARLIER)
    engine = _engine(tmp_path, real_time_github.url, REFUSING)

    [outcome] = engine.run_once().outcomes

    assert outcome.state is State.ROLLED_BACK
    assert _current(sm) == OLD
    found = real_time_github.secret(scope, "APP_TOKEN")
    assert found is not None and (found.value, found.writes) == (OLD, 3)


# -- the Target contract ------------------------------------------------------


class TestGitHubActionsContract(TargetContract):
    """The Target contract over a repository's Actions secret, against the local GitHub."""

    github: GitHubServer

    @pytest.fixture
    def target(self, runtime: Runtime, github: GitHubServer) -> Target[Any]:
        self.github = github
        return target(runtime, github)

    def carried(self, target: Target[Any]) -> SecretValue | None:
        found = stored(self.github)
        return None if found is None else SecretValue(found)

    @contextmanager
    def unavailable(self, target: Target[Any]) -> Iterator[None]:
        self.github.fail(503, times=1000)
        try:
            yield
        finally:
            self.github.faults = FaultPlan(ANY_STATUS)
