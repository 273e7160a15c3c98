"""Target ``gitlab-ci``: one CI/CD variable of a GitLab project, in one environment scope.

Policy fields (:class:`GitLabCiConfig`)::

    targets:
      - kind: gitlab-ci
        project: payments/api          # group/sub/project path, or the numeric id
        key: DB_PASSWORD               # letters, digits, _; at most 255
        environment_scope: "*"         # default: every environment
        masked: true                   # default
        protected: false               # default
        raw: true                      # default: a $ in the value is not expanded
        variable_type: env_var         # or file
        url: https://gitlab.com        # self-managed GitLab: its address
        token_env: GITLAB_TOKEN        # default
        auth: private-token            # or bearer (an OAuth token)
        timeout: 10s
        ca_file: /etc/ssl/gitlab-ca.pem

**Credentials**: the token in ``token_env`` (a project, group or personal
access token with the ``api`` scope, whose user has the Maintainer role on
the project), sent as ``PRIVATE-TOKEN`` (or ``Authorization: Bearer`` with
``auth: bearer``). It is registered with :mod:`rotator.output.redact` and never
logged or raised.

**Requests** go through :mod:`providers.transport.http` (``https://``, or
``http://`` to loopback only; certificates verified; no redirect followed; the
proxy of ``HTTPS_PROXY``/``NO_PROXY``, or the policy's ``proxy``),
one attempt each, to GitLab's project-level variables API under
``{url}/api/v4``, the project id URL-encoded (``payments%2Fapi``) and the
scope always named by ``filter[environment_scope]``:

- ``GET  /projects/:id/variables/:key?filter[environment_scope]=S``
- ``POST /projects/:id/variables`` (create, with ``environment_scope``)
- ``PUT  /projects/:id/variables/:key?filter[environment_scope]=S`` (update)
- ``DELETE /projects/:id/variables/:key?filter[environment_scope]=S``

Each is paced by the ``gitlab`` rate limit (10 a second per GitLab host,
``ROTATOR_RATE_LIMITS=gitlab=N``) and reported to ``runtime.on_request`` as
provider ``gitlab`` with an operation of :data:`OPERATIONS`. The value
travels only in request bodies (as GitLab's API requires), never in a URL.

**Attributes**: ``masked``, ``protected``, ``raw`` and ``variable_type`` set
in the policy are applied at every write; those left out take their default
when rotator creates the variable and are left as they are on an existing
one (so a variable someone protected by hand is not unprotected).

**write(rotation_id, value)** reads the variable, refuses one that is
``hidden`` (GitLab never returns its value, so rotator could neither verify
nor restore it), and, when the variable will be masked, refuses a value
GitLab cannot mask, saying which rule fails without quoting it: at least 8
characters; no spaces or line breaks; and, unless ``raw``, only letters,
digits and ``_ + = / @ : . ~ -`` (GitLab's ``Ci::Maskable`` rules). It then
creates the variable (POST, described ``created by rotator (rotation ID)``),
updates it (PUT) when its value or an attribute differs, or changes nothing
when it already carries both. Verification reads the variable back (GitLab
returns a variable's value to a Maintainer) and compares the value with
what was written, in memory: a difference raises ``ConflictError``. Nothing
of either value is logged.

**restore(rotation_id, *, written, previous)** reads the variable and, if it
still holds ``written`` (or ``written`` was lost), puts ``previous`` back
(value only) and reads it back; if ``previous`` is None, it deletes the
variable when this rotation created it (its description, or the record in
``runtime.cache``). A variable changed by someone else since, or one this
rotation did not create, is left as it is, with a warning. A missing
project is logged, not raised.

**check()** reads the variable (the variables API answers only a
Maintainer, so a 200 or a "Variable Not Found" proves the role); it changes
nothing.

**Errors**: 400 ``PermanentError`` with GitLab's reason (a key created
meanwhile by someone else: ``TransientError``); 401 and 403
``PermissionDeniedError`` naming the token variable and what it needs; 404
``NotFoundError`` naming the project; 429 ``TransientError`` with the delay
of ``Retry-After`` (or ``RateLimit-Reset``); 408, a 5xx but 501, a timeout
or a refused connection ``TransientError``; a redirect or a refused certificate
``PermanentError``.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal
from urllib.parse import quote, urlsplit

from pydantic import Field, field_validator

from providers.metering import answered, take
from providers.transport.failures import may_pass
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
    ConflictError,
    NotFoundError,
    PermanentError,
    PermissionDeniedError,
    ProviderError,
    TransientError,
)

KIND = "gitlab-ci"
PROVIDER = "gitlab"
DEFAULT_URL = "https://gitlab.com"
USER_AGENT = "rotator-gitlab-ci"
#: Calls per second per GitLab host (``ROTATOR_RATE_LIMITS=gitlab=N``; 0 turns it
#: off), every request counted.
GITLAB = Quota(
    "gitlab",
    10.0,
    "GitLab host",
    documented="authenticated API requests per user and minute, set by each instance "
    "(GitLab rate limits)",
)
QUOTAS = (GITLAB,)
RATE_LIMITS = rates(QUOTAS)
QUOTA = GITLAB.name
#: The operation names reported to ``runtime.on_request``: a fixed set.
OPERATIONS = frozenset(
    {"variables.get", "variables.create", "variables.update", "variables.delete"}
)
#: The attributes of a variable the policy may set.
ATTRIBUTES = ("masked", "protected", "raw", "variable_type")
#: The shortest value GitLab masks.
MASK_MIN_LENGTH = 8
#: What Ruby's ``\\s`` matches: GitLab refuses these in a masked value.
_WHITESPACE = frozenset(" \t\r\n\f\v")
#: GitLab's alphabet for a masked value that is expanded (``raw: false``).
_MASKABLE_EXPANDED = re.compile(r"[a-zA-Z0-9_+=/@:.~-]*")

_KEY = r"^[A-Za-z0-9_]{1,255}$"
_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_SCOPE = re.compile(r"^[A-Za-z0-9 _./${}*-]{1,255}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

log = logging.getLogger(__name__)


def masking_problems(value: str, *, raw: bool) -> list[str]:
    """Return which of GitLab's masking rules ``value`` breaks (empty: it can be masked).

    The reasons never quote the value, nor any character of it.
    """
    problems = []
    if len(value) < MASK_MIN_LENGTH:
        problems.append(f"it must be at least {MASK_MIN_LENGTH} characters long")
    if any(c in _WHITESPACE for c in value):
        problems.append("it may not contain spaces, tabs or line breaks")
    if not raw and not _MASKABLE_EXPANDED.fullmatch(
        "".join(c for c in value if c not in _WHITESPACE)
    ):
        problems.append(
            "with raw: false it may hold only letters, digits and _ + = / @ : . ~ - "
            "(raw: true allows any other character)"
        )
    return problems


class GitLabCiConfig(TransportConfig):
    """Policy fields of the ``gitlab-ci`` target."""

    #: The project: its numeric id or its full path (``group/sub/project``).
    project: str
    #: The variable's key.
    key: str = Field(pattern=_KEY)
    #: The environments the variable is for (``*``: all).
    environment_scope: str = "*"
    masked: bool = True
    protected: bool = False
    #: True: GitLab does not expand ``$`` references in the value.
    raw: bool = True
    variable_type: Literal["env_var", "file"] = "env_var"
    #: GitLab's address: ``https://gitlab.com`` or a self-managed instance's.
    url: str = DEFAULT_URL
    #: The environment variable holding the token.
    token_env: str = "GITLAB_TOKEN"  # noqa: S105 (a variable name, not a token)
    #: How the token is sent: ``PRIVATE-TOKEN`` (access tokens) or ``Authorization: Bearer``.
    auth: Literal["private-token", "bearer"] = "private-token"

    @field_validator("project", mode="before")
    @classmethod
    def _project_ok(cls, value: Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise ValueError("project is a numeric id or a group/project path")
        text = value.strip().strip("/")
        if text.isdigit():
            if int(text) < 1:
                raise ValueError("a project id is a positive number")
            return text
        segments = text.split("/")
        if len(segments) < 2 or not all(_SEGMENT.fullmatch(s) for s in segments):
            raise ValueError(f"project {value!r} is not a numeric id or a group/project path")
        if text.endswith((".git", ".atom")):
            raise ValueError(f"project {value!r}: give the path without .git or .atom")
        return text

    @field_validator("environment_scope")
    @classmethod
    def _scope_ok(cls, value: str) -> str:
        if not _SCOPE.fullmatch(value):
            raise ValueError(
                f"environment_scope {value!r} is not * or an environment name (pattern)"
            )
        return value

    @field_validator("url")
    @classmethod
    def _url_ok(cls, value: str) -> str:
        checked = checked_url(value)
        if urlsplit(checked).query:
            raise ValueError("url may not have a ?query")
        return checked.rstrip("/")

    @field_validator("token_env")
    @classmethod
    def _env_ok(cls, value: str) -> str:
        if not _ENV_NAME.fullmatch(value):
            raise ValueError(f"token_env {value!r} is not an environment variable name")
        return value


@dataclass(frozen=True)
class Variable:
    """A CI/CD variable as GitLab returns it (``value`` None when hidden)."""

    key: str
    value: str | None
    environment_scope: str
    masked: bool
    protected: bool
    raw: bool
    variable_type: str
    hidden: bool
    description: str | None

    def attribute(self, name: str) -> Any:
        """Return one of :data:`ATTRIBUTES`."""
        return getattr(self, name)


def _variable(body: Any) -> Variable | None:
    """Parse one variable of GitLab's JSON (None if it is not one)."""
    if not isinstance(body, dict) or not isinstance(body.get("key"), str):
        return None
    value = body.get("value")
    description = body.get("description")
    return Variable(
        key=body["key"],
        value=value if isinstance(value, str) else None,
        environment_scope=str(body.get("environment_scope", "*")),
        masked=body.get("masked") is True,
        protected=body.get("protected") is True,
        raw=body.get("raw") is True,
        variable_type=str(body.get("variable_type", "env_var")),
        hidden=body.get("hidden") is True,
        description=description if isinstance(description, str) else None,
    )


def created_by(rotation_id: str) -> str:
    """Return the description rotator gives a variable it creates."""
    return f"created by rotator (rotation {rotation_id})"


class GitLabCiTarget(Target[GitLabCiConfig]):
    """One GitLab CI/CD variable, written, read back and compared (see module doc)."""

    kind: ClassVar[str] = KIND
    Config = GitLabCiConfig
    example: ClassVar[Mapping[str, object]] = {
        "project": "example-group/app",
        "key": "DB_PASSWORD",
        "token_env": "GITLAB_TOKEN",
    }
    docs = "docs/providers/gitlab.md#fields"
    quotas: ClassVar[Mapping[str, float]] = rates(QUOTAS)

    # -- naming

    def describe(self) -> str:
        """Return ``gitlab-ci:<project>#<KEY>``, plus ``[<scope>]`` and ``@<host>`` off defaults."""
        c = self.config
        scope = "" if c.environment_scope == "*" else f"[{c.environment_scope}]"
        host = "" if c.url == DEFAULT_URL else f"@{urlsplit(c.url).netloc}"
        return f"{KIND}:{c.project}#{c.key}{scope}{host}"

    @property
    def _subject(self) -> str:
        c = self.config
        return f"variable {c.key} (scope {c.environment_scope}) of project {c.project}"

    @property
    def _host(self) -> str:
        return urlsplit(self.config.url).netloc

    @property
    def _project_path(self) -> str:
        return f"/api/v4/projects/{quote(self.config.project, safe='')}"

    @property
    def _variable_path(self) -> str:
        # Brackets as GitLab's documentation writes them; the scope itself encoded.
        scope = quote(self.config.environment_scope, safe="")
        return f"{self._project_path}/variables/{self.config.key}?filter[environment_scope]={scope}"

    def _created(self) -> set[str]:
        """Return the rotations whose ``write`` created this variable (in ``runtime.cache``)."""
        found: set[str] = self.runtime.cache.setdefault(f"gitlab:created:{self.describe()}", set())
        return found

    # -- requests

    def _token(self) -> str:
        env = self.config.token_env
        text = os.environ.get(env, "").strip()
        if not text:
            header = "PRIVATE-TOKEN" if self.config.auth == "private-token" else "Authorization"
            raise PermanentError(
                f"environment variable {env} (the GitLab token, sent as {header}) is not set",
                provider=PROVIDER,
                operation="token",
            )
        redact.register(text)
        return text

    def _request(
        self,
        operation: str,
        method: str,
        path: str,
        payload: dict[str, Any] | None = None,
    ) -> Answer:
        """Pace, send and report one request; return the answer whatever its status."""
        assert operation in OPERATIONS, operation
        c = self.config
        token = self._token()
        paced = limits(RATE_LIMITS)
        take(self.runtime, paced, QUOTA, self._host)
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if c.auth == "private-token":
            headers["PRIVATE-TOKEN"] = token
        else:
            headers["Authorization"] = f"Bearer {token}"
        answer = exchange_json(
            self.runtime,
            provider=PROVIDER,
            operation=operation,
            url=c.url + path,
            method=method,
            headers=headers,
            payload=payload,
            timeout=c.timeout,
            ca_file=c.ca_file,
            proxy=c.proxy,
        )
        outcome = request_outcome(answer)
        answered(
            self.runtime, PROVIDER, operation, outcome, limits=paced, quota=QUOTA, scope=self._host
        )
        return answer

    def _error(self, answer: Answer, operation: str, sent: tuple[str, ...] = ()) -> ProviderError:
        """Translate an answer that is not a success into the matching rotator error.

        GitLab's message is kept (scrubbed) unless it holds one of ``sent``
        (the values of the request): then only the status is said.
        """
        c = self.config
        common: dict[str, Any] = {"provider": PROVIDER, "operation": operation}
        subject = self._subject
        status = answer.status
        if status is None:
            return unanswered(self._host, answer, PROVIDER, operation)
        said = message_of(answer.body)
        if any(text and text in said for text in sent):
            said = ""
        detail = f"HTTP {status}" + (f": {said}" if said else "")
        if status == 400 and "has already been taken" in said:
            return TransientError(
                f"{subject}: created meanwhile by someone else ({detail}); retry reads it again",
                **common,
            )
        if status == 401:
            return PermissionDeniedError(
                f"{subject}: GitLab refused the token in {c.token_env} ({detail}): "
                "it is invalid, expired or revoked",
                **common,
            )
        if status == 403:
            return PermissionDeniedError(
                f"{subject}: the token in {c.token_env} may not manage the project's CI/CD "
                f"variables ({detail}); it needs the api scope and the Maintainer role",
                **common,
            )
        if status == 404:
            if "project" in said.lower():
                return NotFoundError(
                    f"project {c.project} not found, or the token cannot see it ({detail})",
                    **common,
                )
            return NotFoundError(f"{subject}: not found ({detail})", **common)
        if status == 429:
            return TransientError(
                f"{subject}: GitLab's rate limit was reached ({detail}); retry later",
                delay=self._rate_limit_delay(answer),
                **common,
            )
        if may_pass(status):
            return TransientError(
                f"{subject}: GitLab failed to answer ({detail}); retry later",
                delay=self._rate_limit_delay(answer),
                **common,
            )
        if 300 <= status < 400:
            return PermanentError(
                f"{subject}: GitLab answered a redirect ({detail}), which is not followed: "
                "put GitLab's final address in url",
                **common,
            )
        return PermanentError(f"{subject}: GitLab refused the request ({detail})", **common)

    def _rate_limit_delay(self, answer: Answer) -> float | None:
        """Return the seconds GitLab asks to wait (``Retry-After``, else ``RateLimit-Reset``)."""
        now = server_time(answer.headers) or self.runtime.clock()
        asked = asked_wait(answer.headers, now)
        if asked is not None:
            return asked
        try:
            reset = float(answer.headers.get("ratelimit-reset", ""))
        except ValueError:
            return None
        return max(1.0, reset - now.timestamp())

    # -- the API

    def read(self) -> Variable | None:
        """Return the variable in this scope, or None if it does not exist."""
        operation = "variables.get"
        answer = self._request(operation, "GET", self._variable_path)
        if answer.status == 404 and "variable" in message_of(answer.body).lower():
            return None
        if answer.status != 200:
            raise self._error(answer, operation)
        try:
            found = _variable(json.loads(answer.body))
        except ValueError:
            found = None
        if found is None:
            raise PermanentError(
                f"{self._subject}: GitLab's answer is not a variable",
                provider=PROVIDER,
                operation=operation,
            )
        if found.value is not None:
            # The old credential: scrubbed from any log line, as the new one is.
            redact.register(found.value)
        return found

    def _create(self, text: str, attributes: dict[str, Any], rotation_id: str) -> None:
        c = self.config
        payload = {
            "key": c.key,
            "value": text,
            "environment_scope": c.environment_scope,
            "description": created_by(rotation_id),
            **attributes,
        }
        answer = self._request(
            "variables.create", "POST", f"{self._project_path}/variables", payload
        )
        if not answer.succeeded:
            raise self._error(answer, "variables.create", (text,))

    def _update(self, text: str, attributes: dict[str, Any]) -> None:
        payload = {"value": text, **attributes}
        answer = self._request("variables.update", "PUT", self._variable_path, payload)
        if not answer.succeeded:
            raise self._error(answer, "variables.update", (text,))

    def _verify(self, text: str) -> None:
        """Read the variable back and compare its value with ``text`` (in memory only)."""
        found = self.read()
        if found is None:
            raise ConflictError(
                f"{self._subject}: GitLab accepted the write but the variable is gone when "
                "read back (deleted meanwhile?)",
                provider=PROVIDER,
                operation="variables.get",
            )
        if found.value != text:
            raise ConflictError(
                f"{self._subject}: GitLab accepted the write but returns a different value "
                "when read back (changed meanwhile?)",
                provider=PROVIDER,
                operation="variables.get",
            )

    def _refuse_hidden(self, found: Variable | None, operation: str) -> None:
        if found is not None and found.hidden:
            raise PermanentError(
                f"{self._subject} is hidden: GitLab never returns its value, so rotator could "
                "not verify or restore it; recreate it masked but not hidden",
                provider=PROVIDER,
                operation=operation,
            )

    def _check_maskable(self, text: str, masked: bool, raw: bool, operation: str) -> None:
        if not masked:
            return
        problems = masking_problems(text, raw=raw)
        if problems:
            raise PermanentError(
                f"{self._subject} is masked, and GitLab cannot mask this value: "
                + "; ".join(problems)
                + " (or set masked: false)",
                provider=PROVIDER,
                operation=operation,
            )

    def _attributes(self, found: Variable | None) -> dict[str, Any]:
        """Return the attributes to send: the policy's, or an existing one's it does not set."""
        c = self.config
        return {
            name: getattr(c, name)
            if found is None or name in c.model_fields_set
            else found.attribute(name)
            for name in ATTRIBUTES
        }

    # -- the target

    def write(self, rotation_id: str, value: SecretValue) -> None:
        """Create or update the variable with ``value``, then read it back and compare.

        Raises:
            PermanentError: the token variable is unset, the variable is
                hidden, the value breaks a masking rule, or GitLab refused (400).
            PermissionDeniedError: 401 or 403.
            NotFoundError: the project does not exist (or the token cannot see it).
            ConflictError: GitLab returns another value when read back.
            TransientError: 429, 5xx, no answer, or created meanwhile.
        """
        text = value.text()
        found = self.read()
        operation = "variables.create" if found is None else "variables.update"
        self._refuse_hidden(found, operation)
        attributes = self._attributes(found)
        self._check_maskable(text, attributes["masked"], attributes["raw"], operation)
        if found is None:
            self._create(text, attributes, rotation_id)
            self._created().add(rotation_id)
            log.info("created %s (rotation %s)", self.describe(), rotation_id)
        elif found.value != text or any(
            found.attribute(name) != attributes[name] for name in ATTRIBUTES
        ):
            self._update(text, attributes)
            log.info("updated %s (rotation %s)", self.describe(), rotation_id)
        else:
            log.info("%s already carries the value (rotation %s)", self.describe(), rotation_id)
            return
        self._verify(text)

    def restore(
        self, rotation_id: str, *, written: SecretValue | None, previous: SecretValue | None
    ) -> None:
        """Put ``previous`` back, or delete the variable this rotation created (see module doc).

        A missing project leaves nothing to restore: it is logged, not raised.
        """
        try:
            found = self.read()
        except NotFoundError as exc:
            # Failing here would leave the rollback stuck on a project that is gone.
            log.warning("%s: nothing to restore (%s)", self.describe(), exc)
            return
        if found is None:
            log.info("%s does not exist; nothing to restore", self.describe())
            return
        self._refuse_hidden(found, "variables.update")
        ours = written is not None and found.value == written.text()
        changed = written is not None and not ours
        if previous is not None:
            text = previous.text()
            if found.value == text:
                return
            if changed:
                log.warning(
                    "%s changed since rotation %s wrote it; left as it is",
                    self.describe(),
                    rotation_id,
                )
                return
            self._check_maskable(text, found.masked, found.raw, "variables.update")
            self._update(text, {})
            self._verify(text)
            log.info(
                "restored the previous value of %s (rotation %s)", self.describe(), rotation_id
            )
            return
        created = rotation_id in self._created() or found.description == created_by(rotation_id)
        if not created or changed:
            log.warning(
                "%s: no previous value to put back, and rotation %s %s; left as it is",
                self.describe(),
                rotation_id,
                "did not create the variable" if not created else "no longer holds its value",
            )
            return
        answer = self._request("variables.delete", "DELETE", self._variable_path)
        if answer.status != 404 and not answer.succeeded:
            raise self._error(answer, "variables.delete")
        self._created().discard(rotation_id)
        log.info("deleted %s, which rotation %s had created", self.describe(), rotation_id)

    def check(self) -> str:
        """Read the variable (proving the token's Maintainer role); change nothing."""
        found = self.read()
        c = self.config
        if found is None:
            return (
                f"project {c.project} readable with the token in {c.token_env}: variable "
                f"{c.key} (scope {c.environment_scope}) absent, the first write creates it "
                "(the variables API answers only a Maintainer)"
            )
        self._refuse_hidden(found, "variables.get")
        flags = ", ".join(
            f"{name}={str(found.attribute(name)).lower()}"
            for name in ("masked", "protected", "raw")
        )
        return (
            f"{self._subject} readable with the token in {c.token_env} (the variables API "
            f"answers only a Maintainer); {flags}"
        )

    def permissions(self) -> list[Permission]:
        """Return what the token needs: the ``api`` scope and the Maintainer role on the project."""
        project = f"projects/{self.config.project}"
        return [
            Permission(
                PROVIDER, ("api",), resource=project, step="target: write the CI/CD variable"
            ),
            Permission(
                PROVIDER,
                (),
                resource=(
                    f"the token's user (or access token's bot) has the Maintainer role on {project}"
                ),
                step="target: manage CI/CD variables",
            ),
        ]


class GitLabTokenScopes(TokenScopes):
    """The ``gitlab`` document: the token's permissions per resource."""

    system = PROVIDER
    order = 60
    heading = "GitLab: a project (or group) access token with"
