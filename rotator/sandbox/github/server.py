"""A local GitHub REST API for the ``github-actions`` tests: real HTTP, real sealed boxes.

:class:`GitHubServer` speaks the Actions secrets endpoints of repositories,
environments and organisations (``public-key``, ``GET``/``PUT``/``DELETE``
of a secret), ``GET /repos/{owner}/{repo}``, and GitHub App installation
tokens (``POST /app/installations/{id}/access_tokens``, whose JWT it
verifies with the App's public key). Each scope holds its own libsodium key
pair: the server serves the public key and **opens every sealed box it
receives with the private key**, so a test reads the exact plaintext GitHub
would hold. It keeps ``created_at``/``updated_at`` on its own clock (the
test's), which also stamps each answer's ``Date`` header.

It checks what GitHub checks: the token (401 ``Bad credentials``), a
``User-Agent`` (403 without one), the API version header, the ``key_id``
(422), an organisation secret's ``visibility``, and secret names. Faults
(any status, headers and body) can be queued for a method and path prefix;
``frozen`` makes it answer a PUT 204 without changing anything,
``write_skew`` stamps ``updated_at`` off its clock, and ``send_date = False``
leaves ``Date`` out.

Serving, recording every raw request (method, path, headers, body) and the
queued faults come from the shared core's
:class:`rotator.sandbox.core.jsonapi.JsonApiServer`, as for the GitLab fake.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from ssl import SSLContext
from typing import Any
from urllib.parse import unquote

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, SealedBox

from rotator.sandbox.core.clock import Clock
from rotator.sandbox.core.jsonapi import JsonApiServer, Received, Reply

API_VERSION = "2022-11-28"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def iso(when: datetime) -> str:
    """Return ``when`` as GitHub writes times: ISO 8601, whole seconds, ``Z``."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class StoredSecret:
    """A secret as the server holds it: the plaintext it opened, and GitHub's metadata."""

    value: str
    created_at: datetime
    updated_at: datetime
    visibility: str | None = None
    selected_repository_ids: list[int] | None = None
    writes: int = 1


@dataclass
class Scope:
    """Where secrets live (a repository, an environment, an organisation): a key pair and them."""

    key: PrivateKey = field(default_factory=PrivateKey.generate)
    key_id: str = field(default_factory=lambda: str(secrets.randbelow(10**18)))
    secrets: dict[str, StoredSecret] = field(default_factory=dict)

    def public_key(self) -> dict[str, str]:
        """Return the public key as GitHub serves it."""
        return {"key_id": self.key_id, "key": base64.b64encode(bytes(self.key.public_key)).decode()}


@dataclass
class Repository:
    """A repository: its own secrets and its environments'."""

    id: int
    scope: Scope = field(default_factory=Scope)
    environments: dict[str, Scope] = field(default_factory=dict)


@dataclass
class App:
    """A GitHub App: the public half of its key and its installations."""

    public_key_pem: bytes
    installations: set[int]


class GitHubServer(JsonApiServer):
    """GitHub's Actions secrets and App token endpoints, with state (see module doc)."""

    thread_name = "github-fake"

    def __init__(
        self,
        clock: Clock | None = None,
        context: SSLContext | None = None,
        tokens: tuple[str, ...] = (),
    ) -> None:
        super().__init__(clock, context)
        self.tokens: set[str] = set(tokens)
        self.repositories: dict[str, Repository] = {}
        self.organizations: dict[str, Scope] = {}
        self.apps: dict[str, App] = {}
        #: Installation tokens issued: token -> (installation, expiry).
        self.issued: dict[str, tuple[int, datetime]] = {}
        #: The claims of every JWT accepted.
        self.jwt_claims: list[dict[str, Any]] = []
        #: Answer PUTs of secrets 204 without storing anything.
        self.frozen = False
        #: Added to the clock when stamping ``updated_at`` (skew between GitHub's machines).
        self.write_skew = timedelta(0)

    # -- seeding and reading

    def add_repository(self, full_name: str, *environments: str) -> Repository:
        """Create a repository (with environments) and return it."""
        with self.lock:
            repo = Repository(id=len(self.repositories) + 1000)
            for name in environments:
                repo.environments[name] = Scope()
            self.repositories[full_name.lower()] = repo
            return repo

    def add_organization(self, login: str) -> Scope:
        """Create an organisation and return its scope."""
        with self.lock:
            scope = Scope()
            self.organizations[login.lower()] = scope
            return scope

    def add_app(self, app_id: str, public_key_pem: bytes, *installations: int) -> None:
        """Register a GitHub App by its public key, installed as ``installations``."""
        with self.lock:
            self.apps[app_id] = App(public_key_pem, set(installations))

    def scope(
        self,
        repository: str | None = None,
        environment: str | None = None,
        organization: str | None = None,
    ) -> Scope:
        """Return the scope named (KeyError if it does not exist)."""
        if organization is not None:
            return self.organizations[organization.lower()]
        repo = self.repositories[(repository or "").lower()]
        return repo.scope if environment is None else repo.environments[environment]

    def seed(self, scope: Scope, name: str, value: str, at: datetime) -> None:
        """Put a secret in ``scope`` as if written at ``at``."""
        with self.lock:
            scope.secrets[name.upper()] = StoredSecret(value, at, at)

    def secret(self, scope: Scope, name: str) -> StoredSecret | None:
        """Return the secret called ``name`` in ``scope``, if any."""
        with self.lock:
            return scope.secrets.get(name.upper())

    # -- the API

    def handle(self, received: Received) -> Reply:
        """Check the headers and the token, then route the request."""
        if not received.header("User-Agent"):
            return Reply(
                403,
                {
                    "message": "Request forbidden by administrative rules. Please make sure "
                    "your request has a User-Agent header"
                },
            )
        version = received.header("X-GitHub-Api-Version")
        if version is not None and version != API_VERSION:
            return Reply(400, {"message": f"API version {version} is not supported."})
        parts = [unquote(p) for p in received.path.split("?")[0].strip("/").split("/")]
        bearer = (received.header("Authorization") or "").removeprefix("Bearer ").strip()
        if parts[:2] == ["app", "installations"] and len(parts) == 4 and received.method == "POST":
            return self._installation_token(parts[2], bearer)
        if not self._token_ok(bearer):
            return Reply(
                401,
                {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"},
            )
        return self._route(received, parts)

    def _token_ok(self, bearer: str) -> bool:
        if bearer in self.tokens:
            return True
        issued = self.issued.get(bearer)
        return issued is not None and self.clock() < issued[1]

    def _route(self, received: Received, parts: list[str]) -> Reply:
        missing = Reply(404, {"message": "Not Found"})
        if parts[0] == "orgs" and len(parts) >= 4 and parts[2:4] == ["actions", "secrets"]:
            scope = self.organizations.get(parts[1].lower())
            if scope is None:
                return missing
            return self._secrets(received, scope, parts[4:], organization=True)
        if parts[0] != "repos" or len(parts) < 3:
            return missing
        repo = self.repositories.get(f"{parts[1]}/{parts[2]}".lower())
        if repo is None:
            return missing
        rest = parts[3:]
        if not rest and received.method == "GET":
            return Reply(200, {"id": repo.id, "full_name": f"{parts[1]}/{parts[2]}"})
        if rest[:2] == ["actions", "secrets"]:
            return self._secrets(received, repo.scope, rest[2:], organization=False)
        if len(rest) >= 3 and rest[0] == "environments" and rest[2] == "secrets":
            environment = repo.environments.get(rest[1])
            if environment is None:
                return missing
            return self._secrets(received, environment, rest[3:], organization=False)
        return missing

    def _secrets(
        self, received: Received, scope: Scope, rest: list[str], *, organization: bool
    ) -> Reply:
        if rest == ["public-key"] and received.method == "GET":
            return Reply(200, scope.public_key())
        if len(rest) != 1:
            return Reply(404, {"message": "Not Found"})
        name = rest[0].upper()
        found = scope.secrets.get(name)
        if received.method == "GET":
            if found is None:
                return Reply(404, {"message": "Not Found"})
            body: dict[str, Any] = {
                "name": name,
                "created_at": iso(found.created_at),
                "updated_at": iso(found.updated_at),
            }
            if organization:
                body["visibility"] = found.visibility
            return Reply(200, body)
        if received.method == "DELETE":
            if found is None:
                return Reply(404, {"message": "Not Found"})
            del scope.secrets[name]
            return Reply(204)
        if received.method == "PUT":
            return self._put(received, scope, name, organization=organization)
        return Reply(404, {"message": "Not Found"})

    def _put(self, received: Received, scope: Scope, name: str, *, organization: bool) -> Reply:
        if not _NAME.fullmatch(name) or name.startswith("GITHUB_"):
            return Reply(422, {"message": "Secret names can only contain alphanumeric characters"})
        try:
            body = json.loads(received.body)
            sealed = base64.b64decode(body["encrypted_value"], validate=True)
        except (ValueError, KeyError, TypeError):
            return Reply(422, {"message": "Invalid request: encrypted_value is required"})
        if body.get("key_id") != scope.key_id:
            return Reply(422, {"message": "Bad request: key_id does not match the current key"})
        try:
            plain = SealedBox(scope.key).decrypt(sealed).decode("utf-8")
        except (CryptoError, UnicodeDecodeError):
            return Reply(422, {"message": "Bad request: encrypted_value could not be decrypted"})
        visibility = body.get("visibility")
        selected = body.get("selected_repository_ids")
        if organization:
            if visibility not in ("all", "private", "selected"):
                return Reply(422, {"message": "Invalid request: visibility is required"})
            if visibility == "selected" and not (
                isinstance(selected, list) and all(isinstance(i, int) for i in selected)
            ):
                return Reply(422, {"message": "Invalid request: selected_repository_ids"})
        elif visibility is not None:
            return Reply(422, {"message": "Invalid request: visibility is not allowed here"})
        if self.frozen:
            return Reply(204)
        now = self.clock() + self.write_skew
        found = scope.secrets.get(name)
        if found is None:
            scope.secrets[name] = StoredSecret(plain, now, now, visibility, selected)
            return Reply(201, {})
        found.value, found.updated_at = plain, now
        found.visibility, found.selected_repository_ids = visibility, selected
        found.writes += 1
        return Reply(204)

    def _installation_token(self, installation: str, bearer: str) -> Reply:
        """Verify the App's JWT on the server's clock and issue an installation token."""
        import jwt

        refused = Reply(
            401,
            {"message": "A JSON web token could not be decoded", "documentation_url": "x"},
        )
        try:
            unverified = jwt.decode(bearer, options={"verify_signature": False})
            app = self.apps.get(str(unverified.get("iss")))
            if app is None:
                return refused
            claims = jwt.decode(
                bearer,
                app.public_key_pem,
                algorithms=["RS256"],
                options={"verify_exp": False, "verify_iat": False, "require": ["iat", "exp"]},
            )
        except jwt.PyJWTError:
            return refused
        now = self.clock().timestamp()
        if not (claims["iat"] <= now < claims["exp"] and claims["exp"] - now <= 600):
            return Reply(
                401, {"message": "'Expiration time' claim ('exp') is too far in the future"}
            )
        if not installation.isdigit() or int(installation) not in app.installations:
            return Reply(404, {"message": "Not Found"})
        self.jwt_claims.append(claims)
        token = "ghs_" + secrets.token_hex(18)
        expires = self.clock() + timedelta(hours=1)
        self.issued[token] = (int(installation), expires)
        return Reply(201, {"token": token, "expires_at": iso(expires), "permissions": {}})


def serve(
    clock: Clock | None = None, context: SSLContext | None = None, tokens: tuple[str, ...] = ()
) -> Iterator[GitHubServer]:
    """Run a :class:`GitHubServer` for the duration of a fixture."""
    server = GitHubServer(clock, context, tokens)
    server.start()
    try:
        yield server
    finally:
        server.stop()
