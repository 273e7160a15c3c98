"""Target ``github-actions``: a GitHub Actions secret of a repository, environment or organisation.

Policy fields (:class:`GitHubActionsConfig`)::

    targets:
      - kind: github-actions
        repository: acme/payments          # or organization: acme (exactly one)
        environment: production            # optional, only with repository
        name: DB_PASSWORD                  # letters, digits, _; not GITHUB_...; stored upper-case
        visibility: private                # organisation: all | private (default) | selected
        selected_repository_ids: [1296269] # with visibility: selected
        api_url: https://api.github.com    # GitHub Enterprise Server: https://HOST/api/v3
        token_env: GITHUB_TOKEN            # default
        timeout: 10s
        ca_file: /etc/ssl/ghes-ca.pem      # optional

**Credentials** come from the environment, never from the policy: the token
in ``token_env`` (default ``GITHUB_TOKEN``: a fine-grained personal access
token, or any token GitHub accepts as ``Authorization: Bearer``), or, when
``app_id_env``, ``app_private_key_env`` and ``installation_id`` are set, an
installation token of a GitHub App. For the App, rotator signs a JWT (RS256,
``iat`` 60 s in the past, ``exp`` 9 minutes ahead, so at most 10 minutes
after ``iat``; ``iss`` the app id) with the private key (the PEM text held in
``app_private_key_env``), trades it at ``POST /app/installations/{id}/
access_tokens`` for an installation token, and keeps that token in
``runtime.cache`` until five minutes before its ``expires_at``; a token
GitHub refuses with 401 is dropped and a new one minted once. Tokens, the
private key and the JWT are registered with :mod:`rotator.output.redact` and never
logged or raised.

**Requests** go through :mod:`providers.transport.http` (``https://``, or
``http://`` to loopback only; certificates verified against the system's CAs or
``ca_file``; no redirect followed; the proxy of ``HTTPS_PROXY``/``NO_PROXY``, or
the policy's ``proxy``), one attempt each: a
``TransientError`` carries the delay GitHub asked for and the engine
retries. Every request sends ``Accept: application/vnd.github+json``,
``X-GitHub-Api-Version: 2022-11-28``, a ``User-Agent`` and the token, and is
reported to ``runtime.on_request`` as provider ``github`` with an operation
of :data:`OPERATIONS`. PUT and DELETE are paced by the ``github.write`` rate
limit (1 a second per API host, as GitHub asks of clients making many
content-changing requests; ``ROTATOR_RATE_LIMITS=github.write=N``).

**write(rotation_id, value)**, where ``PREFIX`` is
``/repos/{owner}/{repo}/actions/secrets``,
``/repos/{owner}/{repo}/environments/{environment}/secrets`` or
``/orgs/{org}/actions/secrets``:

1. ``GET PREFIX/public-key`` gives ``{key_id, key}``. A 404 says which of
   repository, environment or organisation is missing (for an environment,
   ``GET /repos/{owner}/{repo}`` tells the two apart).
2. ``GET PREFIX/{name}`` reads the secret's metadata (``created_at``,
   ``updated_at``; GitHub never returns a value), and the answer's ``Date``
   header gives GitHub's own time before the write.
3. ``PUT PREFIX/{name}`` with ``{"encrypted_value": base64(sealed box of the
   UTF-8 value under the public key), "key_id": ...}`` (plus ``visibility``
   and ``selected_repository_ids`` for an organisation). 201: created;
   204: updated. The plaintext never leaves the process.
4. ``GET PREFIX/{name}`` again: the write counts as landed only if the
   secret exists and its ``updated_at`` is at or after the time read in step 2
   (less a second's leeway for skew between GitHub's machines), or, when
   GitHub sent no ``Date``, later than the ``updated_at`` of step 2.

*What that proves*: GitHub recorded a change of this secret, by name, at
this scope, after rotator's write began, and the PUT that caused it was
answered 2xx. *What it does not prove*: that the value GitHub holds is the
one rotator sent (a secret cannot be read back; a write by someone else in
the same second looks the same, as the timestamps count whole seconds), nor
that workflows have picked it up (a running job keeps the value it started
with). A check that fails raises ``TransientError`` (GitHub may not have
caught up yet): the engine writes again, then rolls back.

A replay re-encrypts and re-PUTs (a sealed box differs every time); writing
the same value twice is harmless. Values are limited to 48 KB, as GitHub's.

**restore(rotation_id, *, written, previous)** writes ``previous`` back the same
way. When ``previous`` is None, it deletes the secret if this rotation's
``write`` created it (answered 201), as recorded in ``runtime.cache``: a
restore after a restart of rotator cannot tell, since GitHub keeps no mark
rotator could read, and leaves the secret as it is, with a warning. A
missing repository, environment or organisation is logged, not raised (no
secret there to restore; raising would leave the rollback stuck).

**check()** reads the public key (the token may use the scope's Actions
secrets API) and the secret's metadata, and says so; it changes nothing.
Whether the token may *write* is only proven by the first write.

**Errors**: 401 ``PermissionDeniedError`` (the token or the app's JWT is
refused); 403 ``PermissionDeniedError``, except a rate limit (403 or 429 with
``retry-after``, or ``x-ratelimit-remaining: 0`` with ``x-ratelimit-reset``,
or a "secondary rate limit" message: ``TransientError`` with the delay
asked, 60 s when none is given); 404 ``NotFoundError`` naming what is
missing; 422 ``PermanentError``; a redirect (a renamed repository)
``PermanentError``; 408, a 5xx but 501, a timeout or a refused connection
``TransientError``; a refused certificate ``PermanentError``. Messages name
the scope, the secret and the status, with GitHub's own message (scrubbed);
never a token or a value.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from typing import Any, ClassVar, Literal
from urllib.parse import quote, urlsplit

from pydantic import Field, ValidationInfo, field_validator, model_validator

from providers.metering import answered, report, take
from providers.transport.failures import defuse, may_pass
from providers.transport.http import (
    Answer,
    TransportConfig,
    checked_url,
    exchange_json,
    message_of,
    request_outcome,
    unanswered,
)
from providers.transport.retry_after import asked_wait, server_time
from rotator.adapters import (
    Permission,
    Quota,
    SecretValue,
    Target,
    TokenScopes,
    limits,
    rates,
    redact,
)
from rotator.errors import (
    NotFoundError,
    PermanentError,
    PermissionDeniedError,
    ProviderError,
    TransientError,
)

KIND = "github-actions"
PROVIDER = "github"
DEFAULT_API = "https://api.github.com"
API_VERSION = "2022-11-28"
USER_AGENT = "rotator-github-actions"
#: GitHub's limit on the size of a secret's value.
MAX_VALUE_BYTES = 48 * 1024
#: Content-changing calls (the PUTs and DELETEs) per second per API host
#: (``ROTATOR_RATE_LIMITS=github.write=N``; 0 turns it off); reads are not paced.
WRITES = Quota(
    "github.write",
    1.0,
    "API host",
    frozenset({"secrets.put", "secrets.delete"}),
    "wait a second between content-changing requests (GitHub REST API best practices)",
)
QUOTAS = (WRITES,)
RATE_LIMITS = rates(QUOTAS)
WRITE_QUOTA = WRITES.name
#: The wait GitHub asks for after a secondary rate limit that names no time.
SECONDARY_WAIT = 60.0
#: How far in the past a JWT's ``iat`` is put (clock drift), and its lifetime from ``iat``.
JWT_BACKDATE = 60
JWT_LIFETIME = 600
#: An installation token is replaced this long before its ``expires_at``.
TOKEN_MARGIN = timedelta(minutes=5)
#: How far ``updated_at`` may lag behind GitHub's time of the read made before a write.
CLOCK_LEEWAY = timedelta(seconds=1)
#: The delay asked when the check after a write fails (GitHub may lag a little).
LANDED_RETRY = 2.0

#: The operation names reported to ``runtime.on_request``: a fixed set.
OPERATIONS = frozenset(
    {
        "secrets.public-key",
        "secrets.get",
        "secrets.put",
        "secrets.delete",
        "repos.get",
        "app.installation-token",
    }
)

_OWNER = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})"
_REPOSITORY = re.compile(rf"^({_OWNER})/([A-Za-z0-9._-]{{1,100}})$")
_ORGANIZATION = re.compile(rf"^{_OWNER}$")
_SECRET_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_APP_FIELDS = ("app_id_env", "app_private_key_env", "installation_id")

log = logging.getLogger(__name__)


def _env_name(field: str, value: str | None) -> str | None:
    if value is not None and not _ENV_NAME.fullmatch(value):
        raise ValueError(f"{field} {value!r} is not an environment variable name")
    return value


class GitHubActionsConfig(TransportConfig):
    """Policy fields of the ``github-actions`` target."""

    #: ``owner/name`` of a repository (or ``organization``: exactly one of the two).
    repository: str | None = None
    #: An organisation's login, for an organisation secret.
    organization: str | None = None
    #: A deployment environment of ``repository``, for an environment secret.
    environment: str | None = Field(default=None, min_length=1, max_length=255)
    #: The secret's name; GitHub stores it upper-case, so it is normalised so.
    name: str = Field(min_length=1, max_length=255)
    #: Which repositories of the organisation may use it (default ``private``).
    visibility: Literal["all", "private", "selected"] | None = None
    #: The repository ids that may, with ``visibility: selected``.
    selected_repository_ids: tuple[int, ...] = ()
    #: The REST API's root: ``https://HOST/api/v3`` for GitHub Enterprise Server.
    api_url: str = DEFAULT_API
    #: The environment variable holding the token (unless a GitHub App is configured).
    token_env: str = "GITHUB_TOKEN"  # noqa: S105 (a variable name, not a token)
    #: The environment variables holding the GitHub App's id and private key (PEM).
    app_id_env: str | None = None
    app_private_key_env: str | None = None
    #: The id of the App's installation on the repository's or organisation's account.
    installation_id: int | None = Field(default=None, ge=1)

    @field_validator("repository")
    @classmethod
    def _repository_ok(cls, value: str | None) -> str | None:
        if value is None:
            return None
        found = _REPOSITORY.fullmatch(value)
        if found is None or found.group(2) in (".", ".."):
            raise ValueError(f"repository {value!r} is not owner/name")
        return value

    @field_validator("organization")
    @classmethod
    def _organization_ok(cls, value: str | None) -> str | None:
        if value is not None and not _ORGANIZATION.fullmatch(value):
            raise ValueError(f"organization {value!r} is not a GitHub login")
        return value

    @field_validator("environment")
    @classmethod
    def _environment_ok(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or any(ord(c) < 32 for c in value)):
            raise ValueError("environment must be a name without control characters")
        return value

    @field_validator("name")
    @classmethod
    def _name_ok(cls, value: str) -> str:
        if not _SECRET_NAME.fullmatch(value):
            raise ValueError(
                f"secret name {value!r}: GitHub allows only letters, digits and _, "
                "not starting with a digit"
            )
        upper = value.upper()
        if upper.startswith("GITHUB_"):
            raise ValueError(f"secret name {value!r}: names starting with GITHUB_ are GitHub's")
        return upper

    @field_validator("api_url")
    @classmethod
    def _api_url_ok(cls, value: str) -> str:
        checked = checked_url(value)
        if urlsplit(checked).query:
            raise ValueError("api_url may not have a ?query")
        return checked.rstrip("/")

    @field_validator("token_env", "app_id_env", "app_private_key_env")
    @classmethod
    def _env_ok(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _env_name(info.field_name or "variable", value)

    @field_validator("selected_repository_ids")
    @classmethod
    def _ids_ok(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(i < 1 for i in value):
            raise ValueError("selected_repository_ids are positive repository ids")
        if len(set(value)) != len(value):
            raise ValueError("selected_repository_ids lists a repository twice")
        return value

    @model_validator(mode="after")
    def _scope_ok(self) -> GitHubActionsConfig:
        if (self.repository is None) == (self.organization is None):
            raise ValueError("give exactly one of repository (owner/name) or organization")
        if self.environment is not None and self.repository is None:
            raise ValueError("environment needs repository (organisations have no environments)")
        if self.organization is None and (
            self.visibility is not None or self.selected_repository_ids
        ):
            raise ValueError("visibility and selected_repository_ids are for organization secrets")
        if self.visibility == "selected" and not self.selected_repository_ids:
            raise ValueError("visibility selected needs selected_repository_ids")
        if self.selected_repository_ids and self.visibility != "selected":
            raise ValueError("selected_repository_ids needs visibility: selected")
        given = [f for f in _APP_FIELDS if getattr(self, f) is not None]
        if given and len(given) != len(_APP_FIELDS):
            missing = ", ".join(f for f in _APP_FIELDS if f not in given)
            raise ValueError(
                f"a GitHub App needs app_id_env, app_private_key_env and "
                f"installation_id: {missing} missing"
            )
        if given and "token_env" in self.model_fields_set:
            raise ValueError("give token_env or a GitHub App (app_id_env...), not both")
        if given:
            missing_sdk = app_sdk_missing()
            if missing_sdk:
                raise ValueError(missing_sdk)
        return self

    @property
    def uses_app(self) -> bool:
        """Tell whether the token is a GitHub App's installation token."""
        return self.installation_id is not None

    @property
    def effective_visibility(self) -> str:
        """Return the organisation secret's visibility (``private`` unless set)."""
        return self.visibility or "private"


def app_sdk_missing() -> str | None:
    """Say how to install what signing a GitHub App's JWT needs, or None if it is installed."""
    missing = []
    for name in ("PyJWT", "cryptography"):
        try:
            version(name)
        except PackageNotFoundError:
            missing.append(name)
    if not missing:
        return None
    return (
        f"a GitHub App needs {', '.join(missing)} to sign its JWT, which is not installed: "
        "pip install 'PyJWT[crypto]'"
    )


def seal(public_key: bytes, plain: bytes) -> str:
    """Return base64 of ``plain`` in a libsodium sealed box under ``public_key`` (Curve25519)."""
    from nacl.public import PublicKey, SealedBox

    return base64.b64encode(SealedBox(PublicKey(public_key)).encrypt(plain)).decode("ascii")


def app_jwt(app_id: str, private_key: str, now: datetime) -> str:
    """Return the RS256 JWT a GitHub App presents to mint installation tokens.

    ``iat`` is put :data:`JWT_BACKDATE` seconds in the past (clocks drift)
    and ``exp`` :data:`JWT_LIFETIME` seconds after it, so the token lives
    nine minutes from ``now``, within GitHub's ten.
    """
    import jwt

    issued = int(now.timestamp()) - JWT_BACKDATE
    claims = {"iat": issued, "exp": issued + JWT_LIFETIME, "iss": app_id}
    return jwt.encode(claims, private_key, algorithm="RS256")


def _timestamp(text: Any) -> datetime | None:
    """Return an ISO 8601 time of GitHub's (``2026-01-01T09:30:00Z``) as a datetime."""
    if not isinstance(text, str):
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _json(answer: Answer) -> dict[str, Any]:
    """Return an answer's JSON object ({} if it is not one)."""
    try:
        found = json.loads(answer.body)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


@dataclass(frozen=True)
class Metadata:
    """What GitHub says of a secret: when it was created and last updated (never a value)."""

    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class _AppToken:
    token: str
    expires_at: datetime


class GitHubActionsTarget(Target[GitHubActionsConfig]):
    """One GitHub Actions secret, written sealed under GitHub's public key (see module doc)."""

    kind: ClassVar[str] = KIND
    Config = GitHubActionsConfig
    requires: ClassVar[tuple[str, ...]] = ("pynacl",)
    extra: ClassVar[str] = "github"
    example: ClassVar[Mapping[str, object]] = {
        "repository": "example-org/app",
        "name": "DB_PASSWORD",
        "token_env": "GITHUB_TOKEN",
    }
    docs = "docs/providers/github.md#fields"
    quotas: ClassVar[Mapping[str, float]] = rates(QUOTAS)

    # -- naming

    def describe(self) -> str:
        """Return ``github-actions:<scope>#<NAME>``, with ``@<host>`` off github.com.

        The scope is ``owner/repo``, ``owner/repo/environments/<env>`` or
        ``orgs/<org>``.
        """
        c = self.config
        if c.organization is not None:
            where = f"orgs/{c.organization}"
        elif c.environment is not None:
            where = f"{c.repository}/environments/{c.environment}"
        else:
            where = f"{c.repository}"
        host = "" if c.api_url == DEFAULT_API else f"@{urlsplit(c.api_url).netloc}"
        return f"{KIND}:{where}#{c.name}{host}"

    @property
    def scope(self) -> str:
        """Name the secret's scope for messages: ``repository acme/payments``..."""
        c = self.config
        if c.organization is not None:
            return f"organization {c.organization}"
        if c.environment is not None:
            return f"environment {c.environment} of repository {c.repository}"
        return f"repository {c.repository}"

    @property
    def _subject(self) -> str:
        return f"secret {self.config.name} of {self.scope}"

    @property
    def _prefix(self) -> str:
        c = self.config
        if c.organization is not None:
            return f"/orgs/{c.organization}/actions/secrets"
        if c.environment is not None:
            return f"/repos/{c.repository}/environments/{quote(c.environment, safe='')}/secrets"
        return f"/repos/{c.repository}/actions/secrets"

    @property
    def _host(self) -> str:
        return urlsplit(self.config.api_url).netloc

    def _created(self) -> set[str]:
        """Return the rotations whose ``write`` created this secret (kept in ``runtime.cache``)."""
        found: set[str] = self.runtime.cache.setdefault(f"github:created:{self.describe()}", set())
        return found

    # -- tokens

    def _token_source(self) -> str:
        c = self.config
        if c.uses_app:
            return f"the installation token of GitHub App installation {c.installation_id}"
        return f"the token in {c.token_env}"

    def _token(self, *, fresh: bool = False) -> str:
        """Return the token to send: ``token_env``'s, or the App's installation token."""
        c = self.config
        if c.uses_app:
            return self._app_token(fresh=fresh)
        text = os.environ.get(c.token_env, "").strip()
        if not text:
            raise PermanentError(
                f"environment variable {c.token_env} (the GitHub token) is not set",
                provider=PROVIDER,
                operation="token",
            )
        redact.register(text)
        return text

    def _app_secret(self, env: str | None, what: str) -> str:
        text = os.environ.get(env or "", "").strip()
        if not text:
            raise PermanentError(
                f"environment variable {env} ({what}) is not set",
                provider=PROVIDER,
                operation="app.installation-token",
            )
        return text

    def _app_token(self, *, fresh: bool) -> str:
        """Return a cached installation token, minting one when none is left for long enough."""
        c = self.config
        key = f"github:app-token:{c.api_url}:{c.app_id_env}:{c.installation_id}"
        lock: threading.Lock = self.runtime.cache.setdefault(
            "github:app-token-lock", threading.Lock()
        )
        with lock:
            cached = self.runtime.cache.get(key)
            now = self.runtime.clock()
            if (
                not fresh
                and isinstance(cached, _AppToken)
                and now < cached.expires_at - TOKEN_MARGIN
            ):
                return cached.token
            minted = self._mint_app_token(now)
            self.runtime.cache[key] = minted
            return minted.token

    def _mint_app_token(self, now: datetime) -> _AppToken:
        """Sign a JWT with the App's key and trade it for an installation token."""
        c = self.config
        operation = "app.installation-token"
        app_id = self._app_secret(c.app_id_env, "the GitHub App's id")
        private_key = self._app_secret(c.app_private_key_env, "the GitHub App's private key")
        redact.register(private_key)
        for line in private_key.splitlines():
            redact.register(line.strip())
        missing = app_sdk_missing()
        if missing:
            raise PermanentError(missing, provider=PROVIDER, operation=operation)
        try:
            signed = app_jwt(app_id, private_key, now)
        except Exception as exc:  # noqa: BLE001 (PyJWT and cryptography raise many kinds)
            defuse(exc, type(exc).__name__)  # its frames hold the private key
            raise PermanentError(
                f"the private key in {c.app_private_key_env} cannot sign a JWT "
                f"({type(exc).__name__}): it must be the App's PEM private key",
                provider=PROVIDER,
                operation=operation,
            ) from None
        redact.register(signed)
        path = f"/app/installations/{c.installation_id}/access_tokens"
        answer = self._send(operation, "POST", path, None, signed)
        installation = f"installation {c.installation_id} of the GitHub App in {c.app_id_env}"
        if answer.status == 401:
            raise PermissionDeniedError(
                f"GitHub refused the App's JWT (HTTP 401): check that {c.app_id_env} holds the "
                f"App's id, {c.app_private_key_env} a current private key of it, and that this "
                "machine's clock is right",
                provider=PROVIDER,
                operation=operation,
            )
        if answer.status == 404:
            raise NotFoundError(
                f"{installation} not found (HTTP 404): is the App installed on the account, "
                "and is installation_id its installation's id?",
                provider=PROVIDER,
                operation=operation,
            )
        if not answer.succeeded:
            raise self._error(answer, operation, installation)
        body = _json(answer)
        token = body.get("token")
        expires_at = _timestamp(body.get("expires_at"))
        if not isinstance(token, str) or not token or expires_at is None:
            raise PermanentError(
                f"{installation}: GitHub's answer holds no token and expiry",
                provider=PROVIDER,
                operation=operation,
            )
        redact.register(token)
        log.info("minted an installation token of %s, valid until %s", installation, expires_at)
        return _AppToken(token, expires_at)

    # -- requests

    def _send(
        self,
        operation: str,
        method: str,
        path: str,
        payload: dict[str, Any] | None,
        token: str,
    ) -> Answer:
        """Pace, send and report one request; return the answer whatever its status."""
        assert operation in OPERATIONS, operation
        c = self.config
        if operation in WRITES.calls:
            take(self.runtime, limits(RATE_LIMITS), WRITE_QUOTA, self._host)
        answer = exchange_json(
            self.runtime,
            provider=PROVIDER,
            operation=operation,
            url=c.api_url + path,
            method=method,
            headers={
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": USER_AGENT,
                "Authorization": f"Bearer {token}",
            },
            payload=payload,
            timeout=c.timeout,
            ca_file=c.ca_file,
            proxy=c.proxy,
        )
        outcome = self._outcome(answer)
        if operation in WRITES.calls:
            answered(
                self.runtime,
                PROVIDER,
                operation,
                outcome,
                limits=limits(RATE_LIMITS),
                quota=WRITE_QUOTA,
                scope=self._host,
            )
        else:
            report(self.runtime, PROVIDER, operation, outcome)
        return answer

    def _request(
        self, operation: str, method: str, path: str, payload: dict[str, Any] | None = None
    ) -> Answer:
        """Send one request with the token; an App token refused with 401 is renewed once."""
        answer = self._send(operation, method, path, payload, self._token())
        if answer.status == 401 and self.config.uses_app:
            log.info("GitHub refused the cached installation token; minting a new one")
            answer = self._send(operation, method, path, payload, self._token(fresh=True))
        return answer

    def _outcome(self, answer: Answer) -> str:
        """Return the metering outcome of one answer (a 403 rate limit is throttling too)."""
        if answer.status == 403 and self._rate_limit_delay(answer) is not None:
            return "throttled"
        return request_outcome(answer)

    def _rate_limit_delay(self, answer: Answer) -> float | None:
        """Return the seconds GitHub asks to wait if the answer is a rate limit, else None."""
        now = server_time(answer.headers) or self.runtime.clock()
        asked = asked_wait(answer.headers, now)
        if asked is not None:
            return asked
        if answer.headers.get("x-ratelimit-remaining", "").strip() == "0":
            try:
                reset = float(answer.headers.get("x-ratelimit-reset", ""))
            except ValueError:
                return SECONDARY_WAIT
            return max(1.0, reset - now.timestamp())
        if "rate limit" in message_of(answer.body).lower():
            return SECONDARY_WAIT
        return None

    def _error(self, answer: Answer, operation: str, subject: str) -> ProviderError:
        """Translate an answer that is not a success into the matching rotator error."""
        common: dict[str, Any] = {"provider": PROVIDER, "operation": operation}
        status = answer.status
        if status is None:
            return unanswered(self._host, answer, PROVIDER, operation)
        said = message_of(answer.body)
        detail = f"HTTP {status}" + (f": {said}" if said else "")
        if status in (403, 429):
            delay = self._rate_limit_delay(answer)
            if delay is not None or status == 429:
                wait = SECONDARY_WAIT if delay is None else delay
                return TransientError(
                    f"{subject}: GitHub's rate limit was reached ({detail}); retry in {wait:g}s",
                    delay=wait,
                    **common,
                )
        if status == 401:
            return PermissionDeniedError(
                f"{subject}: GitHub refused {self._token_source()} ({detail}): "
                "it is invalid, expired or revoked",
                **common,
            )
        if status == 403:
            return PermissionDeniedError(
                f"{subject}: {self._token_source()} may not do this ({detail}); "
                f"it needs {self._needs()}",
                **common,
            )
        if status == 404:
            return NotFoundError(
                f"{subject}: not found, or the token cannot see it ({detail})", **common
            )
        if status == 422:
            return PermanentError(
                f"{subject}: GitHub refused the request as invalid ({detail})", **common
            )
        if 300 <= status < 400:
            return PermanentError(
                f"{subject}: GitHub answered a redirect ({detail}), which is not followed: "
                "was the repository renamed or moved? Put its current name in the policy",
                **common,
            )
        if may_pass(status):
            asked = asked_wait(answer.headers, self.runtime.clock())
            return TransientError(
                f"{subject}: GitHub failed to answer ({detail}); retry later",
                delay=asked,
                **common,
            )
        return PermanentError(f"{subject}: GitHub refused the request ({detail})", **common)

    def _needs(self) -> str:
        """Say what the token needs at this scope, as GitHub names the permissions."""
        c = self.config
        if c.organization is not None:
            return "the organization permission Secrets: write (organization_secrets)"
        if c.environment is not None:
            return "the repository permissions Environments: write and Secrets: write"
        return "the repository permission Secrets: write"

    # -- the API

    def public_key(self) -> tuple[str, bytes]:
        """Return the scope's ``(key_id, key)``; NotFoundError naming what is missing."""
        operation = "secrets.public-key"
        answer = self._request(operation, "GET", f"{self._prefix}/public-key")
        if answer.status == 404:
            raise self._missing_scope()
        if answer.status != 200:
            raise self._error(answer, operation, self.scope)
        body = _json(answer)
        key_id, key = body.get("key_id"), body.get("key")
        try:
            raw = base64.b64decode(key, validate=True) if isinstance(key, str) else b""
        except (binascii.Error, ValueError):
            raw = b""
        if not isinstance(key_id, str) or not key_id or len(raw) != 32:
            raise PermanentError(
                f"{self.scope}: GitHub's answer holds no 32-byte public key and key id",
                provider=PROVIDER,
                operation=operation,
            )
        return key_id, raw

    def _missing_scope(self) -> NotFoundError:
        """Name which of repository, environment, organisation is missing."""
        c = self.config
        operation = "secrets.public-key"
        if c.organization is not None:
            what = f"organization {c.organization} not found, or the token cannot see it"
        elif c.environment is None:
            what = f"repository {c.repository} not found, or the token cannot see it"
        else:
            answer = self._request("repos.get", "GET", f"/repos/{c.repository}")
            if answer.status == 200:
                what = (
                    f"environment {c.environment} does not exist in repository {c.repository} "
                    "(create it under Settings > Environments)"
                )
            elif answer.status == 404:
                what = f"repository {c.repository} not found, or the token cannot see it"
            else:
                raise self._error(answer, "repos.get", f"repository {c.repository}")
        return NotFoundError(f"{what} (HTTP 404)", provider=PROVIDER, operation=operation)

    def metadata(self) -> tuple[Metadata | None, datetime | None]:
        """Return the secret's metadata (None if absent) and GitHub's time of the answer."""
        operation = "secrets.get"
        answer = self._request(operation, "GET", f"{self._prefix}/{self.config.name}")
        if answer.status == 404:
            return None, server_time(answer.headers)
        if answer.status != 200:
            raise self._error(answer, operation, self._subject)
        body = _json(answer)
        created, updated = _timestamp(body.get("created_at")), _timestamp(body.get("updated_at"))
        if created is None or updated is None:
            raise PermanentError(
                f"{self._subject}: GitHub's answer holds no created_at and updated_at",
                provider=PROVIDER,
                operation=operation,
            )
        return Metadata(created, updated), server_time(answer.headers)

    def _put(self, value: SecretValue) -> bool:
        """Seal ``value`` and PUT it; return True if GitHub created the secret (201)."""
        c = self.config
        operation = "secrets.put"
        plain = value.text().encode("utf-8")
        if len(plain) > MAX_VALUE_BYTES:
            raise PermanentError(
                f"{self._subject}: the value is {len(plain)} bytes; GitHub takes at most 48 KB",
                provider=PROVIDER,
                operation=operation,
            )
        key_id, key = self.public_key()
        try:
            sealed = seal(key, plain)
        except Exception as exc:  # noqa: BLE001 (nacl raises its own ValueError/TypeError kinds)
            defuse(exc, type(exc).__name__)  # its frames hold the value
            raise PermanentError(
                f"{self.scope}: the value could not be sealed under GitHub's public key "
                f"({type(exc).__name__})",
                provider=PROVIDER,
                operation=operation,
            ) from None
        payload: dict[str, Any] = {"encrypted_value": sealed, "key_id": key_id}
        if c.organization is not None:
            payload["visibility"] = c.effective_visibility
            if c.selected_repository_ids:
                payload["selected_repository_ids"] = list(c.selected_repository_ids)
        answer = self._request(operation, "PUT", f"{self._prefix}/{c.name}", payload)
        if not answer.succeeded:
            raise self._error(answer, operation, self._subject)
        return answer.status == 201

    def _store(self, value: SecretValue) -> bool:
        """Write ``value`` and prove the write landed (see module doc); True if it created it."""
        before, mark = self.metadata()
        created = self._put(value)
        after, _ = self.metadata()
        self._check_landed(before, after, mark)
        return created

    def _check_landed(
        self, before: Metadata | None, after: Metadata | None, mark: datetime | None
    ) -> None:
        """Raise TransientError unless ``after`` shows a change at or after ``mark``."""
        common: dict[str, Any] = {
            "provider": PROVIDER,
            "operation": "secrets.get",
            "delay": LANDED_RETRY,
        }
        if after is None:
            raise TransientError(
                f"{self._subject}: GitHub accepted the write but the secret does not exist "
                "when read back; the write did not land (or GitHub has not caught up)",
                **common,
            )
        if mark is not None:
            since = mark.replace(microsecond=0)
            # Both times count whole seconds and come from different machines of
            # GitHub's: a second's leeway keeps a few milliseconds of skew at a
            # second's boundary from failing a write that landed.
            landed = after.updated_at >= since - CLOCK_LEEWAY
        elif before is not None:
            since = before.updated_at
            landed = after.updated_at > since
        else:
            return
        if not landed:
            raise TransientError(
                f"{self._subject}: GitHub accepted the write but the secret's updated_at "
                f"({_iso(after.updated_at)}) is before the write ({_iso(since)}): the write "
                "did not land (or GitHub has not caught up)",
                **common,
            )

    # -- the target

    def write(self, rotation_id: str, value: SecretValue) -> None:
        """Seal and PUT ``value``, then prove the secret's ``updated_at`` moved (see module doc).

        Raises:
            PermissionDeniedError: the token is refused (401) or may not (403).
            NotFoundError: the repository, environment or organisation is missing.
            TransientError: a rate limit, 5xx, no answer, or the check after the write failed.
            PermanentError: the token variable is unset, the value is over 48 KB, 422.
        """
        created = self._store(value)
        if created:
            self._created().add(rotation_id)
        log.info(
            "%s %s (rotation %s)", "created" if created else "updated", self.describe(), rotation_id
        )

    def restore(
        self, rotation_id: str, *, written: SecretValue | None, previous: SecretValue | None
    ) -> None:
        """Write ``previous`` back, or delete the secret if this rotation's write created it.

        A missing repository, environment or organisation leaves nothing to
        restore: it is logged, not raised.
        """
        if previous is not None:
            try:
                self._store(previous)
            except NotFoundError as exc:
                # No repository, environment or organisation: no secret to restore
                # (the write cannot have landed), and failing would leave the
                # rollback stuck.
                log.warning("%s: nothing to restore (%s)", self.describe(), exc)
                return
            log.info(
                "restored the previous value of %s (rotation %s)", self.describe(), rotation_id
            )
            return
        created = self._created()
        if rotation_id not in created:
            log.warning(
                "%s: no previous value to put back, and rotation %s did not create the secret "
                "(as far as this process knows); left as it is",
                self.describe(),
                rotation_id,
            )
            return
        operation = "secrets.delete"
        answer = self._request(operation, "DELETE", f"{self._prefix}/{self.config.name}")
        if answer.status != 404 and not answer.succeeded:
            raise self._error(answer, operation, self._subject)
        created.discard(rotation_id)
        log.info("deleted %s, which rotation %s had created", self.describe(), rotation_id)

    def check(self) -> str:
        """Read the scope's public key and the secret's metadata; change nothing."""
        key_id, _ = self.public_key()
        found, _ = self.metadata()
        state = (
            f"secret {self.config.name} exists (updated {_iso(found.updated_at)})"
            if found is not None
            else f"secret {self.config.name} absent (the first write creates it)"
        )
        return (
            f"public key {key_id} of {self.scope} readable with {self._token_source()}: "
            f"it may use the Actions secrets API there; {state}"
        )

    def permissions(self) -> list[Permission]:
        """Return the fine-grained token or GitHub App permissions each step needs.

        Named as a GitHub App's manifest names them (``secrets``,
        ``environments``, ``organization_secrets``), with the access level;
        the resource is ``repos/OWNER/NAME[/environments/ENV]`` or ``orgs/ORG``.
        """
        c = self.config
        step = "target: write the Actions secret"
        if c.organization is not None:
            found = [
                Permission(
                    PROVIDER,
                    ("organization_secrets:write",),
                    resource=f"orgs/{c.organization}",
                    step=step,
                )
            ]
        elif c.environment is not None:
            found = [
                Permission(
                    PROVIDER,
                    ("environments:write", "secrets:write"),
                    resource=f"repos/{c.repository}/environments/{c.environment}",
                    step=step,
                )
            ]
        else:
            found = [
                Permission(
                    PROVIDER, ("secrets:write",), resource=f"repos/{c.repository}", step=step
                )
            ]
        if c.uses_app:
            found.append(
                Permission(
                    PROVIDER,
                    (),
                    resource=f"the GitHub App whose id is in {c.app_id_env} is installed "
                    f"(installation {c.installation_id}) with the permissions above",
                    step="target: mint an installation token",
                )
            )
        return found


class GitHubTokenScopes(TokenScopes):
    """The ``github`` document: the token's permissions per resource."""

    system = PROVIDER
    order = 50
    heading = "GitHub: a fine-grained personal access token or GitHub App installation with"


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
