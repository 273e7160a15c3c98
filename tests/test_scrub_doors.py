"""Canaries at every door: servers and hooks that echo back all they are sent.

Rule of the house: no piece of a secret value, nor of rotator's own
credentials, reaches an exception, a log line (at DEBUG, the SDKs' included)
or a metric, whatever a remote server echoes back. Each adapter's error path
is driven against a local server answering with the whole request (request
line, headers and body) in the field the adapter reads, shifted so that a
value straddles the point where the adapter cuts the text; then every
8-character piece of every value is looked for.
"""

from __future__ import annotations

import io
import json
import logging
import random
import ssl
import string
import sys
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog

from rotator.adapters.roles import Issuer
from rotator.adapters.secret import SecretValue
from rotator.adapters.values import Alert, AlertEvent, Credential, Runtime, Severity
from rotator.errors import JournalError, RotatorError
from rotator.output import logs, redact
from rotator.service.metrics import Metrics
from tests.echo_server import (
    PIECE,
    STRADDLE,
    Canned,
    Echo,
    as_json,
    error_texts,
    found,
    pieces,
    running,
)

#: Where GitLab's echo puts a value: across the cut (its flattened ``value: `` comes first).
GITLAB_STRADDLE = STRADDLE - len("value: ")
ROTATION = "0f3c2a9d8e7b4c1a9f0e1d2c3b4a5f60"
#: 400 characters (what GitLab's message cut kept 289 of), drawn once.
NEW = "NeW" + "".join(random.Random(400).choices(string.ascii_letters + string.digits, k=397))
CURRENT = "CuRrEnTvalue" + "9a8b7c6d5e4f3a2b1c0d" * 2
GITLAB_TOKEN = "glpat-OwnGitLabToken0123456789"
GITHUB_TOKEN = "ghp_OwnGitHubToken0123456789abcdefghij"
HMAC_KEY = "OwnHmacKeyOfTheWebhook0123456789"
SLACK_TOKEN = "slacktoken_abcdefghijklmnopqrstuvwx"
VAULT_TOKEN = "hvs.OwnVaultToken0123456789abcdefgh"
VAULT_SECRET_ID = "0wnSecretId-1234-5678-9abc-def012345678"
AZURE_TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.OwnAzureToken0123456789.c2lnbmF0dXJl"


@pytest.fixture
def serve() -> Iterator[Callable[[Echo], Echo]]:
    """Start echo servers on loopback (TLS when given a context); stop them after the test."""
    with ExitStack() as stack:
        yield lambda echo: stack.enter_context(running(echo))


def message_shape(echo: str, _path: str) -> Canned:
    """GitHub's error: ``{"message": "..."}``, 422."""
    return as_json(422, {"message": echo})


def gitlab_shape(echo: str, _path: str) -> Canned:
    """GitLab's validation error: ``{"message": {"value": ["..."]}}``, 400."""
    return as_json(400, {"message": {"value": [echo]}})


# -- what the doors are checked with ---------------------------------------------


@dataclass
class Seen:
    """What left the process while a door was driven: log lines and metrics."""

    logs: io.StringIO
    metrics: Metrics
    runtime: Runtime

    def everything(self, *errors: BaseException) -> str:
        """Return the logs, the metrics and every error's text, as one text to search."""
        rendered = self.metrics.render()[0].decode()
        return "\n".join([self.logs.getvalue(), rendered, *(error_texts(e) for e in errors)])

    def assert_clean(self, *errors: BaseException, secrets: Iterable[str]) -> None:
        """Fail naming the pieces of ``secrets`` found in logs, metrics or errors."""
        secrets = list(secrets)
        assert all(len(s) >= 2 * PIECE for s in secrets)
        leaked = found(self.everything(*errors), secrets)
        assert not leaked, f"{len(leaked)} pieces of secrets escaped, e.g. {leaked[:3]}"


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> Iterator[Seen]:
    """Logs configured at DEBUG into a buffer (restored after), metrics, and a runtime on them."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, structlog.get_config())
    held = {name: logging.getLogger(name).level for name in logs.SDK_LOGGERS}
    buffer = io.StringIO()
    logs.configure("json", "debug", buffer)
    now = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    metrics = Metrics(lambda: now)
    runtime = Runtime(
        clock=lambda: now, sleep=lambda _s: None, cache={}, on_request=metrics.provider_request
    )
    monkeypatch.setenv("ROTATOR_RATE_LIMITS", "gitlab=0,github.write=0,vault=0,keyvault=0")
    try:
        yield Seen(buffer, metrics, runtime)
    finally:
        root.handlers[:], level, config = saved
        root.setLevel(level)
        structlog.configure(**config)
        for name, level in held.items():
            logging.getLogger(name).setLevel(level)


def test_a_line_below_the_level_is_dropped_before_it_is_scrubbed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A debug line at level info is not scrubbed, stamped and rendered only to be dropped."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, structlog.get_config())
    held = {name: logging.getLogger(name).level for name in logs.SDK_LOGGERS}
    buffer = io.StringIO()
    logs.configure("json", "info", buffer)
    scrubbed: list[object] = []
    real = logs._scrub
    monkeypatch.setattr(logs, "_scrub", lambda value: scrubbed.append(value) or real(value))
    try:
        log = structlog.get_logger("rotator.engine")
        log.debug("step starting", state="planned")
        assert scrubbed == [] and buffer.getvalue() == ""
        log.info("stored as pending", version="v1")
        assert "v1" in scrubbed and json.loads(buffer.getvalue())["event"] == "stored as pending"
    finally:
        root.handlers[:], level, config = saved
        root.setLevel(level)
        structlog.configure(**config)
        for name, level in held.items():
            logging.getLogger(name).setLevel(level)


# -- the one door ---------------------------------------------------------------


def test_outside_text_scrubs_before_it_cuts() -> None:
    """A value straddling the cut is masked whole, not left as its first 289 characters."""
    SecretValue(NEW)
    text = "value: " + "x" * 278 + NEW + " and more"

    kept = redact.outside_text(text, 300)

    assert len(kept) <= 300 and kept.endswith(redact.ELLIPSIS)
    assert not found(kept, [NEW])


def test_outside_text_masks_a_value_an_answer_cut_itself() -> None:
    """A server that cut the echo itself leaves a start of the value: it is masked too."""
    SecretValue(NEW)

    kept = redact.outside_text(f"refused: {NEW[:50]}", 300)

    assert kept == f"refused: {redact.MASK}"


def test_outside_text_never_leaves_a_mask_cut_in_two() -> None:
    """The cut falls before a mask it would split."""
    SecretValue(NEW)
    for limit in range(20, 40):
        kept = redact.outside_text("y" * 20 + NEW, limit)
        assert len(kept) <= limit
        assert kept.removesuffix(redact.ELLIPSIS).strip("y") in ("", redact.MASK), kept


def test_outside_text_puts_text_on_one_line() -> None:
    """A message never spans lines of a log (nor forges one)."""
    assert redact.outside_text("a\nb\r\n  c\t", 100) == "a b c"


def test_every_rotator_error_is_scrubbed() -> None:
    """The last net: an error's text is scrubbed as it is made, whatever raised it."""
    SecretValue(CURRENT)

    error = JournalError(f"cannot use journal: the server said {CURRENT}")

    assert CURRENT not in str(error) and redact.MASK in str(error)


def test_a_mapping_value_is_registered_in_the_compact_form_hooks_receive() -> None:
    """text() of a mapping (compact JSON) is masked whole, keys and punctuation too."""
    value = SecretValue({"AccessKeyId": "AKIAEXAMPLE", "SecretAccessKey": CURRENT})

    assert redact.scrub(value.text()) == redact.MASK


# -- webhook target and HTTP verifier --------------------------------------------


def test_webhook_target_echo(
    seen: Seen, serve: Callable[[Echo], Echo], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A receiver echoing the signed delivery (value included) in its 400."""
    from providers.http import WebhookConfig, WebhookTarget

    monkeypatch.setenv("HOOK_KEY", HMAC_KEY)
    echo = serve(Echo(lambda e, _p: as_json(400, {"error": e, "message": e}), needles=[NEW]))
    config = WebhookConfig(url=echo.url + "/hook", secret_env="HOOK_KEY", include_value=True)
    target = WebhookTarget(config, seen.runtime, "app")

    with pytest.raises(RotatorError) as raised:
        target.write(ROTATION, SecretValue(NEW))
    with pytest.raises(RotatorError) as restored:
        target.restore(ROTATION, written=SecretValue(NEW), previous=SecretValue(CURRENT))

    assert NEW in echo.requests[0] and CURRENT in echo.requests[1]
    seen.assert_clean(raised.value, restored.value, secrets=[NEW, CURRENT, HMAC_KEY])


def test_http_verifier_echo(seen: Seen, serve: Callable[[Echo], Echo]) -> None:
    """An endpoint echoing the credential's header back in its 401."""
    from providers.http import HttpVerifier, HttpVerifierConfig

    echo = serve(Echo(lambda e, _p: as_json(401, {"error": NEW.lower()[:60], "message": e})))
    config = HttpVerifierConfig(url=echo.url + "/me", headers={"Authorization": "Bearer {new}"})
    verifier = HttpVerifier(config, seen.runtime, "app")

    with pytest.raises(RotatorError) as raised:
        verifier.verify(Credential(SecretValue(NEW)))

    assert NEW in echo.requests[0]
    seen.assert_clean(raised.value, secrets=[NEW])


# -- GitLab and GitHub -----------------------------------------------------------


def _gitlab_route(stored: dict[str, str]) -> Callable[[str, str, Any, str], Canned | None]:
    """Answer reads with the variable as stored; keep what writes send (then echo them)."""

    def route(method: str, path: str, _headers: Any, _body: str) -> Canned | None:
        if method == "GET":
            if "value" not in stored:
                return as_json(404, {"message": "404 Variable Not Found"})
            return as_json(
                200,
                {"key": "APP_TOKEN", "value": stored["value"], "masked": True, "raw": True},
            )
        return None

    return route


@pytest.mark.parametrize("at", [GITLAB_STRADDLE, 150, 20])
def test_gitlab_target_echo_of_the_new_value(
    seen: Seen, serve: Callable[[Echo], Echo], monkeypatch: pytest.MonkeyPatch, at: int
) -> None:
    """GitLab echoing the 400-character value across its message's cut (the reproduced leak)."""
    from providers.gitlab import GitLabCiConfig, GitLabCiTarget

    monkeypatch.setenv("GITLAB_TOKEN", GITLAB_TOKEN)
    echo = serve(Echo(gitlab_shape, needles=[NEW], at=at, route=_gitlab_route({})))
    config = GitLabCiConfig(project="payments/api", key="APP_TOKEN", url=echo.url)
    target = GitLabCiTarget(config, seen.runtime, "app")

    with pytest.raises(RotatorError) as raised:
        target.write(ROTATION, SecretValue(NEW))

    assert "GitLab refused the request (HTTP 400: value: " in str(raised.value)
    seen.assert_clean(raised.value, secrets=[NEW, GITLAB_TOKEN])


def test_gitlab_target_echo_of_the_current_value_on_rollback(
    seen: Seen, serve: Callable[[Echo], Echo], monkeypatch: pytest.MonkeyPatch
) -> None:
    """GitLab echoing the live current value sent back during a rollback."""
    from providers.gitlab import GitLabCiConfig, GitLabCiTarget

    monkeypatch.setenv("GITLAB_TOKEN", GITLAB_TOKEN)
    echo = serve(
        Echo(
            gitlab_shape,
            needles=[CURRENT],
            at=GITLAB_STRADDLE,
            route=_gitlab_route({"value": NEW}),
        )
    )
    config = GitLabCiConfig(project="payments/api", key="APP_TOKEN", url=echo.url)
    target = GitLabCiTarget(config, seen.runtime, "app")
    written = SecretValue(NEW)
    # The engine read the current value from the store: SecretValue registers it.
    previous = SecretValue(CURRENT)

    with pytest.raises(RotatorError) as raised:
        target.restore(ROTATION, written=written, previous=previous)

    assert CURRENT in echo.requests[-1]
    seen.assert_clean(raised.value, secrets=[NEW, CURRENT, GITLAB_TOKEN])


def test_gitlab_token_echoed_across_the_cut(
    seen: Seen, serve: Callable[[Echo], Echo], monkeypatch: pytest.MonkeyPatch
) -> None:
    """GitLab echoing rotator's own token (its PRIVATE-TOKEN header) across the cut."""
    from providers.gitlab import GitLabCiConfig, GitLabCiTarget

    monkeypatch.setenv("GITLAB_TOKEN", GITLAB_TOKEN)
    echo = serve(Echo(lambda e, _p: as_json(403, {"message": e}), needles=[GITLAB_TOKEN]))
    config = GitLabCiConfig(project="payments/api", key="APP_TOKEN", url=echo.url)

    with pytest.raises(RotatorError) as raised:
        GitLabCiTarget(config, seen.runtime, "app").check()

    seen.assert_clean(raised.value, secrets=[GITLAB_TOKEN])


def test_github_token_echoed_across_the_cut(
    seen: Seen, serve: Callable[[Echo], Echo], monkeypatch: pytest.MonkeyPatch
) -> None:
    """GitHub echoing rotator's own token (its Authorization header) across the cut."""
    from providers.github import GitHubActionsConfig, GitHubActionsTarget

    monkeypatch.setenv("GITHUB_TOKEN", GITHUB_TOKEN)
    echo = serve(Echo(message_shape, needles=[GITHUB_TOKEN]))
    config = GitHubActionsConfig(repository="octo/app", name="APP_TOKEN", api_url=echo.url)

    with pytest.raises(RotatorError) as raised:
        GitHubActionsTarget(config, seen.runtime, "app").write(ROTATION, SecretValue(NEW))

    assert GITHUB_TOKEN in echo.requests[0]
    seen.assert_clean(raised.value, secrets=[NEW, GITHUB_TOKEN])


def test_github_app_jwt_echoed_across_the_cut(
    seen: Seen, serve: Callable[[Echo], Echo], monkeypatch: pytest.MonkeyPatch
) -> None:
    """GitHub echoing the App's JWT (minting an installation token) across the cut."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from providers.github import GitHubActionsConfig, GitHubActionsTarget

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    monkeypatch.setenv("APP_ID", "123456")
    monkeypatch.setenv("APP_KEY", pem)
    echo = serve(Echo(message_shape, needles=["Bearer ey"]))
    config = GitHubActionsConfig(
        repository="octo/app",
        name="APP_TOKEN",
        api_url=echo.url,
        app_id_env="APP_ID",
        app_private_key_env="APP_KEY",
        installation_id=42,
    )

    with pytest.raises(RotatorError) as raised:
        GitHubActionsTarget(config, seen.runtime, "app").write(ROTATION, SecretValue(NEW))

    [jwt] = [
        line.split("Bearer ", 1)[1].split()[0]
        for line in echo.requests[0].splitlines()
        if line.lower().startswith("authorization:")
    ]
    key_lines = [line for line in pem.splitlines() if len(line) >= 2 * PIECE]
    seen.assert_clean(raised.value, secrets=[NEW, jwt, *key_lines])


# -- notifiers ----------------------------------------------------------------------


def _alert() -> Alert:
    return Alert(
        event=AlertEvent.ROTATION_FAILED,
        severity=Severity.CRITICAL,
        secret="app",
        summary="rotation failed",
        at=datetime(2026, 11, 2, 9, 0, tzinfo=UTC),
        key="app:rotation-failed:1",
    )


def test_webhook_notifier_echo(
    seen: Seen, serve: Callable[[Echo], Echo], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A receiver echoing the signed alert in its 400 (the HMAC key never travels)."""
    from providers.notifiers import WebhookNotifier, WebhookNotifierConfig

    monkeypatch.setenv("ALERT_KEY", HMAC_KEY)
    echo = serve(Echo(lambda e, _p: as_json(400, {"error": e})))
    config = WebhookNotifierConfig(url=echo.url + "/alerts", secret_env="ALERT_KEY")

    with pytest.raises(RotatorError) as raised:
        WebhookNotifier(config, seen.runtime, "hook").send(_alert())

    seen.assert_clean(raised.value, secrets=[HMAC_KEY])


def test_slack_notifier_echo_of_its_url_token(
    seen: Seen, serve: Callable[[Echo], Echo], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slack-like receiver answering the URL's token as its error code (it looks like one)."""
    from providers.notifiers import SlackConfig, SlackNotifier

    def token_as_code(_echo: str, path: str) -> Canned:
        return 404, path.rsplit("/", 1)[1].encode(), {"Content-Type": "text/plain"}

    echo = serve(Echo(token_as_code))
    monkeypatch.setenv("SLACK_URL", f"{echo.url}/services/T000/B000/{SLACK_TOKEN}")

    with pytest.raises(RotatorError) as raised:
        SlackNotifier(SlackConfig(url_env="SLACK_URL"), seen.runtime, "chat").send(_alert())

    seen.assert_clean(raised.value, secrets=[SLACK_TOKEN])


# -- Vault ------------------------------------------------------------------------


def _vault_route(method: str, path: str, _headers: Any, _body: str) -> Canned | None:
    """Answer the token's lookup as Vault would; every other read finds nothing."""
    if path.startswith("/v1/auth/token/lookup-self"):
        data = {"ttl": 0, "renewable": False, "policies": ["root"], "accessor": "acc"}
        return as_json(200, {"data": data})
    if path.endswith("/role-id"):
        return as_json(200, {"data": {"role_id": "app-role-id"}})
    if "/metadata/" in path and method == "POST":
        return 204, b"", {}
    if method == "GET":
        return as_json(404, {"errors": []})
    return None


def _vault_echo(serve: Callable[[Echo], Echo], monkeypatch: pytest.MonkeyPatch) -> Echo:
    echo = serve(
        Echo(lambda e, _p: as_json(400, {"errors": [e]}), needles=[NEW], route=_vault_route)
    )
    monkeypatch.setenv("VAULT_ADDR", echo.url)
    for name in ("VAULT_TOKEN", "VAULT_ROLE_ID", "VAULT_SECRET_ID", "VAULT_CACERT"):
        monkeypatch.delenv(name, raising=False)
    return echo


def test_vault_doors_echo(
    seen: Seen, serve: Callable[[Echo], Echo], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Vault echoing the KV write, the secret-id and token mints in its 400s."""
    from providers.vault.approle import AppRoleConfig, AppRoleSecretIdIssuer
    from providers.vault.kv import VaultKvConfig, VaultKvStore
    from providers.vault.token import TokenConfig, TokenIssuer

    echo = _vault_echo(serve, monkeypatch)
    monkeypatch.setenv("VAULT_TOKEN", VAULT_TOKEN)
    errors = []
    store = VaultKvStore(VaultKvConfig(path="apps/app"), seen.runtime, "app")
    with pytest.raises(RotatorError) as raised:
        store.put_pending(ROTATION, SecretValue(NEW))
    errors.append(raised.value)
    issuers: list[Issuer[Any]] = [
        AppRoleSecretIdIssuer(AppRoleConfig(role="app"), seen.runtime, "app"),
        TokenIssuer(TokenConfig(policies=["app"]), seen.runtime, "app"),
    ]
    for issuer in issuers:
        with pytest.raises(RotatorError) as raised:
            issuer.mint(ROTATION)
        errors.append(raised.value)

    assert any(NEW in r for r in echo.requests)
    seen.assert_clean(*errors, secrets=[NEW, VAULT_TOKEN])


def test_vault_approle_login_echo(
    seen: Seen, serve: Callable[[Echo], Echo], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Vault echoing rotator's own AppRole login (its secret-id) in a 400."""
    from providers.vault.kv import VaultKvConfig, VaultKvStore

    echo = _vault_echo(serve, monkeypatch)
    echo.needles = [VAULT_SECRET_ID]
    monkeypatch.setenv("VAULT_ROLE_ID", "rotator-role")
    monkeypatch.setenv("VAULT_SECRET_ID", VAULT_SECRET_ID)

    with pytest.raises(RotatorError) as raised:
        VaultKvStore(VaultKvConfig(path="apps/app"), seen.runtime, "app").current()

    assert any(VAULT_SECRET_ID in r for r in echo.requests)
    seen.assert_clean(raised.value, secrets=[VAULT_SECRET_ID])


# -- Azure ------------------------------------------------------------------------


class _Credential:
    """A token credential handing out one known token (rotator's own)."""

    def get_token(self, *_scopes: str, **_kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(AZURE_TOKEN, 4102444800)


@pytest.fixture
def tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ssl.SSLContext:
    """A server context whose CA azure-core trusts (through AZURE_CA_BUNDLE)."""
    import trustme

    ca = trustme.CA()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("AZURE_CA_BUNDLE", str(bundle))
    monkeypatch.setenv("ROTATOR_AZURE_VERIFY_CHALLENGE_RESOURCE", "false")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


def _challenge(method: str, path: str, headers: Any, _body: str) -> Canned | None:
    """Answer a request without a token with Key Vault's challenge; secret ``app`` is absent."""
    if headers.get("Authorization"):
        if method == "GET" and path.startswith("/secrets/app"):
            return as_json(404, {"error": {"code": "SecretNotFound", "message": "not found"}})
        return None
    challenge = (
        'Bearer authorization="https://login.microsoftonline.com/tenant", '
        'resource="https://vault.azure.net"'
    )
    return as_json(401, {"error": {"code": "Unauthorized"}}, **{"WWW-Authenticate": challenge})


def test_key_vault_echo_in_its_error_code(
    seen: Seen, serve: Callable[[Echo], Echo], tls: ssl.SSLContext
) -> None:
    """Key Vault answering with what it was sent as its error code (which looks like one)."""
    from providers.azure.identity import CREDENTIAL_KEY
    from providers.azure.keyvault import KeyVaultConfig, KeyVaultStore

    value = "Kv" + NEW[:60]

    def shape(echo: str, _path: str) -> Canned:
        code = value if value in echo else AZURE_TOKEN
        error = {"code": code, "message": echo, "innererror": {"code": code}}
        return as_json(400, {"error": error})

    echo = serve(Echo(shape, route=_challenge, context=tls))
    seen.runtime.cache[CREDENTIAL_KEY] = _Credential()
    store = KeyVaultStore(KeyVaultConfig(vault_url=echo.url, name="app"), seen.runtime, "app")
    other = KeyVaultStore(KeyVaultConfig(vault_url=echo.url, name="other"), seen.runtime, "app")

    errors = []
    for call in (lambda: store.put_pending(ROTATION, SecretValue(value)), other.current):
        with pytest.raises(RotatorError) as raised:
            call()
        errors.append(raised.value)

    assert any(AZURE_TOKEN in r for r in echo.requests)
    seen.assert_clean(*errors, secrets=[value, AZURE_TOKEN])


def test_identity_endpoint_answering_malformed_json(
    seen: Seen, serve: Callable[[Echo], Echo], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The managed-identity endpoint's token in a malformed answer reaches no log line."""
    from azure.identity import ManagedIdentityCredential

    body = f'{{"access_token": "{AZURE_TOKEN}", "expires_on": "soon", '.encode()
    echo = serve(Echo(lambda _e, _p: (200, body, {"Content-Type": "application/json"})))
    monkeypatch.setenv("IDENTITY_ENDPOINT", echo.url + "/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", "OwnIdentityHeader0123456789")
    for name in ("MSI_ENDPOINT", "MSI_SECRET", "AZURE_CLIENT_ID"):
        monkeypatch.delenv(name, raising=False)
    logging.getLogger("azure.identity").setLevel(logging.DEBUG)  # as a careless SDK might
    logging.getLogger("msal").setLevel(logging.DEBUG)

    with pytest.raises(Exception):  # the SDK's own: an adapter translates it
        ManagedIdentityCredential().get_token("https://vault.azure.net/.default")

    assert "get_token failed" in seen.logs.getvalue()
    seen.assert_clean(secrets=[AZURE_TOKEN])


# -- exec, AWS and Kubernetes ---------------------------------------------------------


ECHO_HOOK = "import sys; d = sys.stdin.read(); sys.stderr.write(d * 3); print(d); sys.exit(1)"


def test_exec_target_and_verifier_echo_on_stderr(seen: Seen) -> None:
    """A hook printing its stdin to stderr and stdout, then failing."""
    from providers.exec import ExecConfig, ExecTarget, ExecVerifier

    config = ExecConfig(command=[sys.executable, "-c", ECHO_HOOK])
    errors = []
    with pytest.raises(RotatorError) as raised:
        ExecTarget(config, seen.runtime, "app").write(ROTATION, SecretValue(NEW))
    errors.append(raised.value)
    with pytest.raises(RotatorError) as raised:
        ExecTarget(config, seen.runtime, "app").restore(
            ROTATION, written=None, previous=SecretValue(CURRENT)
        )
    errors.append(raised.value)
    with pytest.raises(RotatorError) as raised:
        ExecVerifier(config, seen.runtime, "app").verify(Credential(SecretValue(NEW)))
    errors.append(raised.value)

    seen.assert_clean(*errors, secrets=[NEW, CURRENT])


def test_aws_error_code_and_request_id_echoing_a_value(seen: Seen) -> None:
    """An AWS-compatible endpoint answering the value as its error code and request id."""
    from botocore.exceptions import ClientError

    from providers.aws.errors import aws_errors

    value = SecretValue(NEW[:60]).text()
    response = {
        "Error": {"Code": value, "Message": NEW},
        "ResponseMetadata": {"HTTPStatusCode": 400, "RequestId": value},
    }

    with pytest.raises(RotatorError) as raised, aws_errors("aws-secretsmanager", "PutSecretValue"):
        raise ClientError(response, "PutSecretValue")  # type: ignore[arg-type]

    seen.assert_clean(raised.value, secrets=[value])


def test_kubernetes_status_reason_echoing_a_value(seen: Seen) -> None:
    """An API server answering a letters-only value as its Status reason."""
    from providers.kubernetes.errors import from_status, status_reason

    value = SecretValue("Letters" + "OnlyValueOfTheSecret" * 2).text()
    body = json.dumps({"kind": "Status", "reason": value, "message": value})

    error = from_status(422, status_reason(body), {}, "secrets.patch", "secrets ns/app")

    seen.assert_clean(error, secrets=[value])


# -- the journal's password --------------------------------------------------------


def test_journal_password_in_the_query_is_masked(tmp_path: Path) -> None:
    """``?password=`` (and sslpassword) is hidden like a user-info password."""
    from rotator.journal.journal import Journal

    url = "postgresql://rotator@127.0.0.1:1/rotator?sslpassword=OwnSslPassword42&password=OwnPw0rd1234567"

    described = Journal(url, datetime.now, key_file=tmp_path / "k").describe()

    assert "OwnPw0rd" not in described and "OwnSslPa" not in described
    assert described.startswith("postgresql://rotator@127.0.0.1:1/rotator?")


def test_journal_password_is_registered_at_startup_and_never_echoed() -> None:
    """The CLI registers the journal's password: any echo of it, anywhere, is masked."""
    from click.testing import CliRunner

    from rotator.cli.main import cli

    password = "OwnJournalPassword0123"
    url = f"postgresql://rotator@127.0.0.1:1/rotator?password={password}"

    result = CliRunner().invoke(cli, ["db", "upgrade", "--state", url, "--log-format", "json"])

    assert result.exit_code != 0
    assert password not in result.output
    assert redact.scrub(f"FATAL: bad password {password}") == f"FATAL: bad password {redact.MASK}"


def test_a_password_with_an_unencoded_at_sign_is_never_quoted(tmp_path: Path) -> None:
    """Parsers split ``P@ss@w0rd...`` at an ``@``; what follows one is masked too."""
    from rotator.journal.journal import Journal

    url = "postgresql://rot:P@ss@w0rdLongEnough@127.0.0.1:1/x"
    with pytest.raises(JournalError) as raised:
        Journal(url, datetime.now, key_file=tmp_path / "k").exists()
    assert found(str(raised.value), ["P@ss@w0rdLongEnough"]) == []


def test_readyz_never_shows_the_journal_password(tmp_path: Path) -> None:
    """/readyz of a daemon whose journal is down names it without its password."""
    from rotator.journal.journal import Journal
    from rotator.service.health import HealthServer

    password = "OwnJournalPassword0123"
    url = f"postgresql://rotator@127.0.0.1:1/rotator?password={password}"
    journal = Journal(url, datetime.now, key_file=tmp_path / "k")

    def ready() -> tuple[bool, str]:
        try:
            journal.exists()
        except RotatorError as exc:
            return False, f"journal unreachable: {exc}"
        return True, "ready"

    probe = HealthServer(
        Metrics(datetime.now), host="127.0.0.1", port=0, alive=lambda: True, ready=ready
    )
    probe.start()
    try:
        with pytest.raises(urllib.request.HTTPError) as answered:
            urllib.request.urlopen(probe.url + "/readyz", timeout=10)
        body = answered.value.read().decode()
    finally:
        probe.stop()
        journal.close()

    assert body.startswith("not ready: journal unreachable")
    assert not found(body, [password])


def test_held_sdk_records_keep_only_their_fixed_words(seen: Seen) -> None:
    """An SDK's warning keeps its format string, names and exception types; DEBUG is dropped."""
    sdk = logging.getLogger("msal.token_cache")
    sdk.setLevel(logging.DEBUG)
    unknown = "NeverRegistered0123456789abcdef"

    sdk.debug("response body: %s", unknown)
    sdk.warning("%s.get_token failed: %s", "ManagedIdentityCredential", ValueError(unknown))
    sdk.warning(f"Content: {unknown}")
    sdk.error("request to %s failed after %d tries", f"https://h/{unknown}", 3)

    lines = [json.loads(line) for line in seen.logs.getvalue().splitlines()]
    assert [line["event"] for line in lines] == [
        "ManagedIdentityCredential.get_token failed: ValueError",
        "a message of msal.token_cache withheld (it may quote a request or an answer)",
        "request to <withheld> failed after 3 tries",
    ]
    assert not found(seen.logs.getvalue(), [unknown])


def test_rotators_own_records_are_not_held(seen: Seen) -> None:
    """Held loggers are the SDKs': rotator's own (providers.azure...) keep their words."""
    logging.getLogger("providers.azure.keyvault").debug("set %s", "0123456789abcdef")

    assert "set 0123456789abcdef" in seen.logs.getvalue()


@pytest.mark.parametrize("name", ["azure.identity", "azure.core.pipeline", "msal", "urllib3"])
def test_sdk_loggers_are_held(name: str) -> None:
    """Every SDK named in the brief is held, children included."""
    assert logs.is_held(name) and logs.is_held(name + ".child")


def test_alert_text_is_scrubbed_before_slack_clips_it() -> None:
    """A summary is scrubbed before it is cut to Slack's limits."""
    from providers.notifiers import slack_message

    SecretValue(NEW)
    alert = _alert()
    long = Alert(
        event=alert.event,
        severity=alert.severity,
        secret=alert.secret,
        summary="x" * 2990 + NEW,
        at=alert.at,
        key=alert.key,
    )

    assert not found(json.dumps(slack_message(long)), [NEW])


def test_a_piece_is_any_eight_characters() -> None:
    """The search itself: every 8 characters of a value, nothing shorter."""
    assert pieces("abcdefghi") == {"abcdefgh", "bcdefghi"}
    assert found("..bcdefghi..", ["abcdefghi"]) == ["bcdefghi"]
