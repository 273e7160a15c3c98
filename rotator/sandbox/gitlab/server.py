"""A local GitLab REST API for the ``gitlab-ci`` tests: project CI/CD variables over real HTTP.

:class:`GitLabServer` speaks ``/api/v4/projects/:id/variables`` (list, get,
create, update, delete) with ``filter[environment_scope]``, finds a project
by numeric id or URL-encoded path, and keeps each variable's key, value,
scope and attributes. It checks what GitLab checks: the token
(``PRIVATE-TOKEN`` or ``Authorization: Bearer``; 401 without a known one),
the role (403 below Maintainer), the key's characters, a masked value
against GitLab's own ``Ci::Maskable`` expressions, a duplicate key in one
scope, and answers GitLab's 404 messages (``404 Project Not Found``,
``404 Variable Not Found``). A hidden variable's value is answered as null.
Faults can be queued as in :class:`rotator.sandbox.core.jsonapi.JsonApiServer`,
and ``ignore_writes`` makes it answer a PUT 200 without changing anything.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from ssl import SSLContext
from typing import Any
from urllib.parse import parse_qs, unquote

from rotator.sandbox.core.clock import Clock
from rotator.sandbox.core.jsonapi import JsonApiServer, Received, Reply

#: GitLab's expressions for masked values (Ci::Maskable): expanded, and raw.
MASKABLE = re.compile(r"\A[a-zA-Z0-9_+=/@:.~-]{8,}\Z")
MASKABLE_RAW = re.compile(r"\A[^ \t\r\n\f\v]{8,}\Z")
_KEY = re.compile(r"\A[a-zA-Z0-9_]{1,255}\Z")


@dataclass
class StoredVariable:
    """One CI/CD variable as GitLab keeps it."""

    key: str
    value: str
    environment_scope: str = "*"
    masked: bool = False
    protected: bool = False
    raw: bool = False
    variable_type: str = "env_var"
    hidden: bool = False
    description: str | None = None

    def as_json(self) -> dict[str, Any]:
        """Return the variable as the API answers it (no value when hidden)."""
        body = asdict(self)
        if self.hidden:
            body["value"] = None
        return body


@dataclass
class Project:
    """A project: its id, full path and variables."""

    id: int
    path: str
    variables: list[StoredVariable] = field(default_factory=list)

    def find(self, key: str, scope: str | None) -> list[StoredVariable]:
        """Return the variables called ``key`` (in ``scope`` if one is given)."""
        return [
            v
            for v in self.variables
            if v.key == key and (scope is None or v.environment_scope == scope)
        ]


class GitLabServer(JsonApiServer):
    """GitLab's project-level variables API, with state (see module doc)."""

    thread_name = "gitlab-fake"

    def __init__(
        self,
        clock: Clock | None = None,
        context: SSLContext | None = None,
        tokens: dict[str, str] | None = None,
    ) -> None:
        super().__init__(clock, context)
        #: token -> role (``maintainer``, ``developer``...).
        self.tokens: dict[str, str] = dict(tokens or {})
        self.projects: list[Project] = []
        #: Answer PUTs 200 without changing anything.
        self.ignore_writes = False

    def add_project(self, path: str) -> Project:
        """Create a project at ``path`` (its id counts from 100) and return it."""
        with self.lock:
            project = Project(100 + len(self.projects), path)
            self.projects.append(project)
            return project

    def variable(self, project: Project, key: str, scope: str = "*") -> StoredVariable | None:
        """Return the variable ``key`` in ``scope``, if any."""
        with self.lock:
            found = project.find(key, scope)
            return found[0] if found else None

    # -- the API

    def handle(self, received: Received) -> Reply:
        """Check the token and role, then route the request."""
        token = received.header("PRIVATE-TOKEN")
        if token is None:
            token = (received.header("Authorization") or "").removeprefix("Bearer ").strip()
        role = self.tokens.get(token or "")
        if role is None:
            return Reply(401, {"message": "401 Unauthorized"})
        raw_path, _, query = received.path.partition("?")
        parts = raw_path.strip("/").split("/")
        if parts[:3] != ["api", "v4", "projects"] or len(parts) < 5 or parts[4] != "variables":
            return Reply(404, {"error": "404 Not Found"})
        project = self._project(unquote(parts[3]))
        if project is None:
            return Reply(404, {"message": "404 Project Not Found"})
        if role != "maintainer":
            return Reply(403, {"message": "403 Forbidden"})
        filters = {k: v[0] for k, v in parse_qs(query).items()}
        scope = filters.get("filter[environment_scope]")
        key = unquote(parts[5]) if len(parts) > 5 else None
        body = _body(received)
        if key is None:
            if received.method == "GET":
                return Reply(200, [v.as_json() for v in project.variables])
            if received.method == "POST":
                return self._create(project, body)
            return Reply(405, {"message": "405 Method Not Allowed"})
        matches = project.find(key, scope)
        if len(matches) > 1:
            return Reply(
                409,
                {
                    "message": "There are multiple variables with provided parameters. "
                    "Please use 'filter[environment_scope]'"
                },
            )
        if not matches:
            return Reply(404, {"message": "404 Variable Not Found"})
        [found] = matches
        if received.method == "GET":
            return Reply(200, found.as_json())
        if received.method == "DELETE":
            project.variables.remove(found)
            return Reply(204)
        if received.method == "PUT":
            return self._update(found, body)
        return Reply(405, {"message": "405 Method Not Allowed"})

    def _project(self, ident: str) -> Project | None:
        for project in self.projects:
            if ident == str(project.id) or ident == project.path:
                return project
        return None

    def _create(self, project: Project, body: dict[str, Any]) -> Reply:
        key = str(body.get("key", ""))
        if not _KEY.match(key):
            return Reply(400, {"message": {"key": ["can contain only letters, digits and '_'."]}})
        scope = str(body.get("environment_scope", "*"))
        if project.find(key, scope):
            return Reply(400, {"message": {"key": [f"({key}) has already been taken"]}})
        variable = StoredVariable(
            key=key,
            value=str(body.get("value", "")),
            environment_scope=scope,
            masked=body.get("masked") is True,
            protected=body.get("protected") is True,
            raw=body.get("raw") is True,
            variable_type=str(body.get("variable_type", "env_var")),
            description=body.get("description"),
        )
        refused = _refused(variable)
        if refused is not None:
            return refused
        project.variables.append(variable)
        return Reply(201, variable.as_json())

    def _update(self, found: StoredVariable, body: dict[str, Any]) -> Reply:
        changed = StoredVariable(**asdict(found))
        if "value" in body:
            changed.value = str(body["value"])
        for name in ("masked", "protected", "raw"):
            if name in body:
                setattr(changed, name, body[name] is True)
        if "variable_type" in body:
            changed.variable_type = str(body["variable_type"])
        refused = _refused(changed)
        if refused is not None:
            return refused
        if not self.ignore_writes:
            for name, value in asdict(changed).items():
                setattr(found, name, value)
        return Reply(200, found.as_json())


def _body(received: Received) -> dict[str, Any]:
    """Return the request's JSON object (GitLab also takes forms; rotator sends JSON)."""
    if not received.body:
        return {}
    try:
        found = json.loads(received.body)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _refused(variable: StoredVariable) -> Reply | None:
    """Return GitLab's 400 for a masked value it cannot mask, else None."""
    if variable.masked:
        rule = MASKABLE_RAW if variable.raw else MASKABLE
        if not rule.match(variable.value):
            return Reply(400, {"message": {"value": ["is invalid"]}})
    return None


def serve(
    clock: Clock | None = None,
    context: SSLContext | None = None,
    tokens: dict[str, str] | None = None,
) -> Iterator[GitLabServer]:
    """Run a :class:`GitLabServer` for the duration of a fixture."""
    server = GitLabServer(clock, context, tokens)
    server.start()
    try:
        yield server
    finally:
        server.stop()
