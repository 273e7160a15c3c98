"""The gitlab-ci target against a local GitLab API that keeps variables and checks masking rules."""

from __future__ import annotations

import json
import logging
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from providers.gitlab import (
    KIND,
    OPERATIONS,
    GitLabCiConfig,
    GitLabCiTarget,
    created_by,
    masking_problems,
)
from rotator.adapters import Target
from rotator.adapters.discovery import Registry, registry
from rotator.adapters.secret import SecretValue
from rotator.adapters.values import OUTCOMES, Permission, Runtime
from rotator.engine.report import Result
from rotator.engine.runner import Engine
from rotator.errors import (
    ConflictError,
    NotFoundError,
    PermanentError,
    PermissionDeniedError,
    RotatorError,
    TransientError,
)
from rotator.journal.journal import Journal
from rotator.lifecycle import State
from rotator.policy.loader import load_policies
from rotator.sandbox.core.faults import ANY_STATUS, FaultPlan
from rotator.sandbox.gitlab.server import GitLabServer, Project, StoredVariable, serve
from rotator.service.metrics import OPERATION_PATTERN
from rotator.testing import MemoryVerifier, TargetContract
from tests.conftest import FakeClock
from tests.providers.helpers import StepClock

TOKEN = "glpat-canaryTOKEN0123456789ab"
DEVELOPER = "glpat-developer0123456789ab"
VALUE = "canary-Gl7xY2vK9pLm4Rt8Qw"
OLD = "old-value-0a1b2c3d4e5f6a7b"
PROJECT = "payments/api"
KEY = "DB_PASSWORD"
ROTATION = "0f3c2a9d8e7b4c1a9f0e1d2c3b4a5f60"
VARIABLES = "/api/v4/projects/payments%2Fapi/variables"
#: DB_PASSWORD in scope *, as every request about it addresses it.
ONE = f"{VARIABLES}/{KEY}?filter[environment_scope]=%2A"
#: What writing a new variable sends: look, create, read back.
CREATE = [("GET", ONE), ("POST", VARIABLES), ("GET", ONE)]


@dataclass
class Recorder:
    """Collects what ``runtime.on_request`` is told."""

    calls: list[tuple[str, str, str]] = field(default_factory=list)

    def __call__(self, provider: str, operation: str, outcome: str) -> None:
        self.calls.append((provider, operation, outcome))


@pytest.fixture
def clock() -> StepClock:
    """A clock that moves only when something sleeps on it."""
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
def gitlab_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Put a Maintainer's token in GITLAB_TOKEN and turn pacing off."""
    monkeypatch.setenv("GITLAB_TOKEN", TOKEN)
    monkeypatch.setenv("ROTATOR_RATE_LIMITS", "gitlab=0")


@pytest.fixture
def gitlab(clock: StepClock) -> Iterator[GitLabServer]:
    """A GitLab with project payments/api; TOKEN is a Maintainer's, DEVELOPER a Developer's."""
    for server in serve(clock, tokens={TOKEN: "maintainer", DEVELOPER: "developer"}):
        server.add_project(PROJECT)
        yield server


@pytest.fixture
def project(gitlab: GitLabServer) -> Project:
    """The payments/api project of the server."""
    return gitlab.projects[0]


def target(runtime: Runtime, server: GitLabServer, **fields: Any) -> GitLabCiTarget:
    """Return the target of DB_PASSWORD in payments/api (or what ``fields`` say)."""
    config: dict[str, Any] = {"project": PROJECT, "key": KEY, "url": server.url, **fields}
    return GitLabCiTarget(GitLabCiConfig(**config), runtime, "payments-db")


def seed(project: Project, value: str = OLD, **attributes: Any) -> StoredVariable:
    """Put DB_PASSWORD in the project (scope * unless given) and return it."""
    variable = StoredVariable(KEY, value, **attributes)
    project.variables.append(variable)
    return variable


def writes(server: GitLabServer) -> list[tuple[str, str]]:
    """Return (method, path) of every request that could change something."""
    return [(r.method, r.path) for r in server.requests if r.method != "GET"]


def sent(server: GitLabServer, method: str) -> dict[str, Any]:
    """Return the JSON body of the only request of ``method``."""
    [seen] = server.requests_to(method)
    body: dict[str, Any] = json.loads(seen.body)
    return body


# -- write


def test_write_creates_the_variable_with_the_policys_attributes(
    runtime: Runtime, gitlab: GitLabServer, project: Project
) -> None:
    """A new variable is created masked, raw, unprotected, scope *, marked as rotator's."""
    target(runtime, gitlab).write(ROTATION, SecretValue(VALUE))

    variable = gitlab.variable(project, KEY)
    assert variable is not None
    assert (variable.value, variable.masked, variable.raw, variable.protected) == (
        VALUE,
        True,
        True,
        False,
    )
    assert (variable.variable_type, variable.description) == ("env_var", created_by(ROTATION))
    assert [(r.method, r.path) for r in gitlab.requests] == CREATE
    assert sent(gitlab, "POST")["environment_scope"] == "*"


def test_every_request_carries_the_private_token(runtime: Runtime, gitlab: GitLabServer) -> None:
    """Each request sends PRIVATE-TOKEN and a User-Agent, and no Authorization header."""
    target(runtime, gitlab).write(ROTATION, SecretValue(VALUE))

    # The requests were sent and seen: a check of every request holds of none at all.
    assert [(r.method, r.path) for r in gitlab.requests] == CREATE
    for seen in gitlab.requests:
        assert seen.header("PRIVATE-TOKEN") == TOKEN
        assert seen.header("Authorization") is None
        assert (seen.header("User-Agent") or "").startswith("rotator")


def test_bearer_auth_sends_an_authorization_header(
    runtime: Runtime, gitlab: GitLabServer, project: Project
) -> None:
    """auth: bearer sends the token as Authorization: Bearer instead."""
    target(runtime, gitlab, auth="bearer").write(ROTATION, SecretValue(VALUE))

    assert gitlab.variable(project, KEY) is not None
    assert [(r.method, r.path) for r in gitlab.requests] == CREATE
    assert all(r.header("Authorization") == f"Bearer {TOKEN}" for r in gitlab.requests)
    assert all(r.header("PRIVATE-TOKEN") is None for r in gitlab.requests)


def test_update_keeps_attributes_the_policy_does_not_set(
    runtime: Runtime, gitlab: GitLabServer, project: Project
) -> None:
    """An existing protected, expanded variable gets the value and stays protected and expanded."""
    seed(project, masked=True, protected=True, raw=False)

    target(runtime, gitlab).write(ROTATION, SecretValue(VALUE))

    variable = gitlab.variable(project, KEY)
    assert variable is not None
    assert (variable.value, variable.protected, variable.raw) == (VALUE, True, False)
    assert writes(gitlab) == [("PUT", f"{VARIABLES}/{KEY}?filter[environment_scope]=%2A")]


def test_update_applies_attributes_the_policy_sets(
    runtime: Runtime, gitlab: GitLabServer, project: Project
) -> None:
    """Attributes named in the policy are enforced on an existing variable."""
    seed(project, masked=False, protected=True, raw=False, variable_type="env_var")

    target(runtime, gitlab, protected=False, masked=True, raw=True, variable_type="file").write(
        ROTATION, SecretValue(VALUE)
    )

    variable = gitlab.variable(project, KEY)
    assert variable is not None
    assert (variable.protected, variable.masked, variable.raw, variable.variable_type) == (
        False,
        True,
        True,
        "file",
    )


def test_environment_scopes_are_kept_apart(
    runtime: Runtime, gitlab: GitLabServer, project: Project
) -> None:
    """Writing scope production changes only the production variable of that key."""
    seed(project, environment_scope="*")
    seed(project, environment_scope="production")

    target(runtime, gitlab, environment_scope="production").write(ROTATION, SecretValue(VALUE))

    everywhere = gitlab.variable(project, KEY, "*")
    production = gitlab.variable(project, KEY, "production")
    assert everywhere is not None and production is not None
    assert (everywhere.value, production.value) == (OLD, VALUE)
    assert all("filter[environment_scope]=production" in r.path for r in gitlab.requests)


def test_a_new_scope_is_created_beside_the_others(
    runtime: Runtime, gitlab: GitLabServer, project: Project
) -> None:
    """A key that exists only in scope * is created anew for scope review/*."""
    seed(project)

    target(runtime, gitlab, environment_scope="review/*").write(ROTATION, SecretValue(VALUE))

    created = gitlab.variable(project, KEY, "review/*")
    assert created is not None and created.value == VALUE
    assert sent(gitlab, "POST")["environment_scope"] == "review/*"
    assert gitlab.requests[0].path.endswith("filter[environment_scope]=review%2F%2A")


def test_a_numeric_project_id_is_used_as_is(
    runtime: Runtime, gitlab: GitLabServer, project: Project
) -> None:
    """project: 100 addresses the project by id."""
    target(runtime, gitlab, project=project.id).write(ROTATION, SecretValue(VALUE))

    assert gitlab.variable(project, KEY) is not None
    assert gitlab.requests[0].path.startswith(f"/api/v4/projects/{project.id}/variables/")


def test_writing_the_same_value_again_changes_nothing(
    runtime: Runtime, gitlab: GitLabServer
) -> None:
    """A replay finds the value already there and sends no write."""
    tgt = target(runtime, gitlab)
    tgt.write(ROTATION, SecretValue(VALUE))
    seen = len(writes(gitlab))

    tgt.write(ROTATION, SecretValue(VALUE))

    assert len(writes(gitlab)) == seen == 1


def test_a_value_that_does_not_read_back_is_a_conflict(
    runtime: Runtime, gitlab: GitLabServer, project: Project
) -> None:
    """GitLab answering 200 but keeping the old value fails the write, without quoting either."""
    seed(project, masked=True, raw=True)
    gitlab.ignore_writes = True

    with pytest.raises(ConflictError, match="different value when read back") as caught:
        target(runtime, gitlab).write(ROTATION, SecretValue(VALUE))

    assert VALUE not in str(caught.value) and OLD not in str(caught.value)


# -- masking rules


@pytest.mark.parametrize(
    ("value", "fields", "rule"),
    [
        ("short7x", {}, "at least 8 characters"),
        ("has a space-123", {}, "spaces, tabs or line breaks"),
        ("two\nlines-12345", {}, "spaces, tabs or line breaks"),
        ("dollar$sign-1234", {"raw": False}, "only letters, digits and _ + = / @ : . ~ -"),
        ("quote'mark-12345", {"raw": False}, "raw: true allows"),
    ],
)
def test_a_value_gitlab_cannot_mask_is_refused_before_sending(
    runtime: Runtime, gitlab: GitLabServer, value: str, fields: dict[str, Any], rule: str
) -> None:
    """Each masking rule a value breaks is named, the value is not quoted, nothing is written."""
    with pytest.raises(PermanentError, match="cannot mask this value") as caught:
        target(runtime, gitlab, **fields).write(ROTATION, SecretValue(value))

    assert rule in str(caught.value)
    assert value not in str(caught.value)
    assert writes(gitlab) == []


def test_every_rule_broken_is_named_at_once() -> None:
    """A short value with a space, not raw, breaks all three rules."""
    assert len(masking_problems("a b$", raw=False)) == 3
    assert masking_problems("a b$", raw=True) == [
        "it must be at least 8 characters long",
        "it may not contain spaces, tabs or line breaks",
    ]
    assert masking_problems("Any-printable!#%^&*()", raw=True) == []


def test_an_existing_expanded_variable_applies_the_strict_rule(
    runtime: Runtime, gitlab: GitLabServer, project: Project
) -> None:
    """An existing masked variable with raw false refuses a $ even when the policy says nothing."""
    seed(project, masked=True, raw=False)

    with pytest.raises(PermanentError, match="with raw: false"):
        target(runtime, gitlab).write(ROTATION, SecretValue("dollar$sign-1234"))


def test_an_unmasked_variable_takes_any_value(
    runtime: Runtime, gitlab: GitLabServer, project: Project
) -> None:
    """masked: false lifts the masking rules."""
    target(runtime, gitlab, masked=False).write(ROTATION, SecretValue("a b"))

    variable = gitlab.variable(project, KEY)
    assert variable is not None and (variable.value, variable.masked) == ("a b", False)


def test_a_hidden_variable_is_refused(
    runtime: Runtime, gitlab: GitLabServer, project: Project
) -> None:
    """A hidden variable (no value ever returned) cannot be verified, so it is not written."""
    seed(project, masked=True, hidden=True)

    with pytest.raises(PermanentError, match="is hidden"):
        target(runtime, gitlab).write(ROTATION, SecretValue(VALUE))
    assert writes(gitlab) == []


# -- restore


def test_restore_puts_the_previous_value_back(
    runtime: Runtime, gitlab: GitLabServer, project: Project
) -> None:
    """After a write, restore leaves the previous value (and sends only the value)."""
    seed(project, masked=True, raw=True)
    tgt = target(runtime, gitlab)
    tgt.write(ROTATION, SecretValue(VALUE))

    tgt.restore(ROTATION, written=SecretValue(VALUE), previous=SecretValue(OLD))

    variable = gitlab.variable(project, KEY)
    assert variable is not None and variable.value == OLD
    last_put = gitlab.requests_to("PUT")[-1]
    assert last_put.body == b'{"value":"' + OLD.encode() + b'"}'


def test_restore_deletes_a_variable_the_write_created_even_after_a_restart(
    runtime: Runtime, gitlab: GitLabServer, project: Project, clock: StepClock
) -> None:
    """The description marks the rotation that created it, so a new process deletes it too."""
    target(runtime, gitlab).write(ROTATION, SecretValue(VALUE))
    restarted = Runtime(clock=clock, sleep=clock.sleep, cache={})

    target(restarted, gitlab).restore(ROTATION, written=SecretValue(VALUE), previous=None)
    target(restarted, gitlab).restore(ROTATION, written=SecretValue(VALUE), previous=None)

    assert gitlab.variable(project, KEY) is None
    assert len(gitlab.requests_to("DELETE")) == 1


def test_restore_without_previous_leaves_a_variable_it_did_not_create(
    runtime: Runtime, gitlab: GitLabServer, project: Project, caplog: pytest.LogCaptureFixture
) -> None:
    """A variable that existed before the write is not deleted; a warning says so."""
    seed(project, masked=True, raw=True)
    tgt = target(runtime, gitlab)
    tgt.write(ROTATION, SecretValue(VALUE))

    with caplog.at_level(logging.WARNING):
        tgt.restore(ROTATION, written=SecretValue(VALUE), previous=None)

    assert gitlab.variable(project, KEY) is not None
    assert "did not create the variable" in caplog.text


def test_restore_leaves_a_value_someone_else_wrote_since(
    runtime: Runtime, gitlab: GitLabServer, project: Project, caplog: pytest.LogCaptureFixture
) -> None:
    """A variable changed after the write is left alone by restore."""
    tgt = target(runtime, gitlab)
    tgt.write(ROTATION, SecretValue(VALUE))
    variable = gitlab.variable(project, KEY)
    assert variable is not None
    variable.value = "someone-elses-value-123"

    with caplog.at_level(logging.WARNING):
        tgt.restore(ROTATION, written=SecretValue(VALUE), previous=SecretValue(OLD))
        tgt.restore(ROTATION, written=SecretValue(VALUE), previous=None)

    assert variable.value == "someone-elses-value-123"
    assert caplog.text.count("left as it is") == 2


def test_restore_when_the_write_never_ran_changes_nothing(
    runtime: Runtime, gitlab: GitLabServer, project: Project
) -> None:
    """A variable still holding the previous value gets no write; a missing one gets none either."""
    seed(project)
    target(runtime, gitlab).restore(ROTATION, written=SecretValue(VALUE), previous=SecretValue(OLD))
    target(runtime, gitlab, environment_scope="staging").restore(
        ROTATION, written=SecretValue(VALUE), previous=SecretValue(OLD)
    )

    # Each restore read its variable before deciding there was nothing to put back.
    assert [(r.method, r.path) for r in gitlab.requests] == [
        ("GET", ONE),
        ("GET", f"{VARIABLES}/{KEY}?filter[environment_scope]=staging"),
    ]


def test_restore_with_the_written_value_lost_puts_previous_back(
    runtime: Runtime, gitlab: GitLabServer, project: Project
) -> None:
    """With written unknown, the previous value (the store's current one) is put back."""
    seed(project, masked=True, raw=True)
    target(runtime, gitlab).write(ROTATION, SecretValue(VALUE))
    written = gitlab.variable(project, KEY)
    assert written is not None and written.value == VALUE

    target(runtime, gitlab).restore(ROTATION, written=None, previous=SecretValue(OLD))

    variable = gitlab.variable(project, KEY)
    assert variable is not None and variable.value == OLD
    assert json.loads(gitlab.requests_to("PUT")[-1].body) == {"value": OLD}


def test_restore_in_a_missing_project_is_a_no_op(
    runtime: Runtime, gitlab: GitLabServer, caplog: pytest.LogCaptureFixture
) -> None:
    """With no project there is no variable to restore: a warning, no error, no write."""
    with caplog.at_level(logging.WARNING):
        target(runtime, gitlab, project="payments/missing").restore(
            ROTATION, written=SecretValue(VALUE), previous=SecretValue(OLD)
        )

    assert "nothing to restore" in caplog.text
    assert writes(gitlab) == []


# -- errors


def test_a_missing_token_names_the_variable_and_the_header(
    runtime: Runtime, gitlab: GitLabServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unset GITLAB_TOKEN raises PermanentError naming it and PRIVATE-TOKEN; nothing is sent."""
    monkeypatch.delenv("GITLAB_TOKEN")

    with pytest.raises(PermanentError, match=r"GITLAB_TOKEN .*PRIVATE-TOKEN"):
        target(runtime, gitlab).write(ROTATION, SecretValue(VALUE))
    assert gitlab.requests == []


def test_an_unknown_token_is_a_permission_error(
    runtime: Runtime, gitlab: GitLabServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 401 raises PermissionDeniedError naming the variable, not the token."""
    monkeypatch.setenv("GITLAB_TOKEN", "glpat-revoked00000000000000")

    with pytest.raises(PermissionDeniedError, match="token in GITLAB_TOKEN") as caught:
        target(runtime, gitlab).write(ROTATION, SecretValue(VALUE))
    assert "revoked000" not in str(caught.value)


def test_a_developer_token_is_told_it_needs_maintainer(
    runtime: Runtime, gitlab: GitLabServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 403 says the token needs the api scope and the Maintainer role."""
    monkeypatch.setenv("GITLAB_TOKEN", DEVELOPER)

    with pytest.raises(PermissionDeniedError, match="Maintainer role"):
        target(runtime, gitlab).write(ROTATION, SecretValue(VALUE))


def test_a_missing_project_is_named(runtime: Runtime, gitlab: GitLabServer) -> None:
    """A 404 Project Not Found raises NotFoundError naming the project."""
    with pytest.raises(NotFoundError, match="project payments/missing not found"):
        target(runtime, gitlab, project="payments/missing").write(ROTATION, SecretValue(VALUE))


def test_a_value_gitlab_refuses_is_permanent_with_its_reason(
    runtime: Runtime, gitlab: GitLabServer
) -> None:
    """A 400 (an older GitLab's stricter mask rule) raises PermanentError with GitLab's reason."""
    gitlab.fail(400, method="POST", body={"message": {"value": ["is invalid"]}})

    with pytest.raises(PermanentError, match="value: is invalid") as caught:
        target(runtime, gitlab).write(ROTATION, SecretValue(VALUE))
    assert type(caught.value) is PermanentError


def test_a_reason_echoing_the_value_is_dropped(runtime: Runtime, gitlab: GitLabServer) -> None:
    """A 400 whose message holds the value sent is reported by status only."""
    gitlab.fail(400, method="POST", body={"message": {"value": [f"{VALUE} is invalid"]}})

    with pytest.raises(PermanentError) as caught:
        target(runtime, gitlab).write(ROTATION, SecretValue(VALUE))
    assert "HTTP 400" in str(caught.value) and VALUE not in str(caught.value)


def test_a_variable_created_meanwhile_is_transient(runtime: Runtime, gitlab: GitLabServer) -> None:
    """A 400 'has already been taken' on create raises TransientError (the retry reads it)."""
    gitlab.fail(400, method="POST", body={"message": {"key": [f"({KEY}) has already been taken"]}})

    with pytest.raises(TransientError, match="created meanwhile"):
        target(runtime, gitlab).write(ROTATION, SecretValue(VALUE))


def test_throttling_is_transient_with_the_delay_asked(
    runtime: Runtime, gitlab: GitLabServer, clock: StepClock, recorder: Recorder
) -> None:
    """429 with Retry-After (or only RateLimit-Reset) is a TransientError with that delay."""
    gitlab.fail(429, headers={"Retry-After": "17"}, body={"message": "Retry later"})
    with pytest.raises(TransientError, match="rate limit") as caught:
        target(runtime, gitlab).write(ROTATION, SecretValue(VALUE))
    assert caught.value.delay == 17.0
    assert recorder.calls[-1] == ("gitlab", "variables.get", "throttled")

    reset = int(clock.now.timestamp()) + 42
    gitlab.fail(429, headers={"RateLimit-Reset": str(reset)}, body={"message": "Retry later"})
    with pytest.raises(TransientError) as caught:
        target(runtime, gitlab).write(ROTATION, SecretValue(VALUE))
    assert caught.value.delay == 42.0


def test_a_server_error_is_transient(runtime: Runtime, gitlab: GitLabServer) -> None:
    """A 502 on the write raises TransientError."""
    gitlab.fail(502, method="POST", body={"message": "502 Bad Gateway"})

    with pytest.raises(TransientError, match="HTTP 502"):
        target(runtime, gitlab).write(ROTATION, SecretValue(VALUE))


def test_a_refused_connection_is_transient(runtime: Runtime) -> None:
    """No listener: TransientError saying there was no answer."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = GitLabCiConfig(project=PROJECT, key=KEY, url=url)
        with pytest.raises(TransientError, match="no answer"):
            GitLabCiTarget(config, runtime, "p").write(ROTATION, SecretValue(VALUE))


# -- nothing leaks


def test_the_value_travels_only_in_request_bodies(
    runtime: Runtime, gitlab: GitLabServer, project: Project, caplog: pytest.LogCaptureFixture
) -> None:
    """The value is never in a URL, a header, a log line, an error, describe() or check()."""
    caplog.set_level(logging.DEBUG)
    seed(project, masked=True, raw=True)
    messages: list[str] = []

    def attempt(action: Any) -> None:
        try:
            action()
        except RotatorError as exc:
            messages.append(str(exc))

    tgt = target(runtime, gitlab)
    tgt.write(ROTATION, SecretValue(VALUE))
    tgt.restore(ROTATION, written=SecretValue(VALUE), previous=SecretValue(OLD))
    for status in (400, 401, 403, 404, 429, 500):
        gitlab.fail(status, method="PUT", body={"message": {"value": [f"{VALUE} refused"]}})
        attempt(lambda: tgt.write(ROTATION, SecretValue(VALUE)))
    attempt(lambda: tgt.write(ROTATION, SecretValue("short")))
    gitlab.ignore_writes = True
    attempt(lambda: tgt.write(ROTATION, SecretValue(VALUE)))
    texts = [*messages, caplog.text, tgt.describe(), tgt.check()]

    assert len(messages) == 8
    for seen in gitlab.requests:
        heads = " ".join(f"{k}: {v}" for k, v in seen.headers.items())
        for plain in (VALUE, OLD):
            assert plain not in seen.path and plain not in heads
    assert any(VALUE.encode() in r.body for r in gitlab.requests_to("PUT"))
    for plain in (VALUE, OLD, TOKEN):
        assert all(plain not in text for text in texts)


# -- check, permissions, reporting


def test_check_reads_the_variable_and_changes_nothing(
    runtime: Runtime, gitlab: GitLabServer, project: Project
) -> None:
    """check says whether the variable exists (with its flags) and sends only GETs."""
    absent = target(runtime, gitlab).check()
    seed(project, masked=True, protected=True, raw=True)
    present = target(runtime, gitlab).check()

    assert "absent, the first write creates it" in absent
    assert "masked=true, protected=true, raw=true" in present
    assert {r.method for r in gitlab.requests} == {"GET"}


def test_check_with_a_developer_token_is_denied(
    runtime: Runtime, gitlab: GitLabServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """check raises PermissionDeniedError when the token lacks the Maintainer role."""
    monkeypatch.setenv("GITLAB_TOKEN", DEVELOPER)

    with pytest.raises(PermissionDeniedError):
        target(runtime, gitlab).check()


def test_permissions_name_the_api_scope_and_the_maintainer_role(
    runtime: Runtime, gitlab: GitLabServer
) -> None:
    """The token needs the api scope (a grant) and the Maintainer role (a note)."""
    scope, role = target(runtime, gitlab).permissions()

    assert scope == Permission(
        "gitlab", ("api",), resource=f"projects/{PROJECT}", step="target: write the CI/CD variable"
    )
    assert role.actions == () and "Maintainer" in role.resource


def test_every_request_is_reported_with_a_fixed_operation(
    runtime: Runtime, gitlab: GitLabServer, recorder: Recorder
) -> None:
    """Each request is reported as provider gitlab with a known operation and outcome."""
    tgt = target(runtime, gitlab)
    tgt.write(ROTATION, SecretValue(VALUE))
    tgt.write(ROTATION, SecretValue(OLD))
    tgt.restore(ROTATION, written=SecretValue(OLD), previous=None)

    assert len(recorder.calls) == len(gitlab.requests)
    assert {op for _, op, _ in recorder.calls} == OPERATIONS
    for provider, operation, outcome in recorder.calls:
        assert provider == "gitlab" and outcome in OUTCOMES
        assert OPERATION_PATTERN.fullmatch(operation)
    assert recorder.calls[0] == ("gitlab", "variables.get", "permanent")  # the expected 404


def test_requests_are_paced(
    runtime: Runtime, gitlab: GitLabServer, clock: StepClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With gitlab=1, the second request right after the first waits its turn."""
    monkeypatch.setenv("ROTATOR_RATE_LIMITS", "gitlab=1")

    target(runtime, gitlab).check()
    target(runtime, gitlab).check()

    [waited] = clock.sleeps
    assert 0 < waited <= 1.0


def test_describe_names_project_key_scope_and_host(runtime: Runtime) -> None:
    """describe is gitlab-ci:PROJECT#KEY, with [SCOPE] and @HOST when not the defaults."""

    def described(**fields: Any) -> str:
        config = GitLabCiConfig(project=PROJECT, key=KEY, **fields)
        return GitLabCiTarget(config, runtime, "p").describe()

    assert described() == f"{KIND}:{PROJECT}#{KEY}"
    assert described(environment_scope="production") == f"{KIND}:{PROJECT}#{KEY}[production]"
    assert (
        described(url="https://gitlab.example.com/") == f"{KIND}:{PROJECT}#{KEY}@gitlab.example.com"
    )


# -- TLS


def test_https_with_ca_file_and_an_untrusted_certificate(
    runtime: Runtime, clock: StepClock, tmp_path: Path
) -> None:
    """With ca_file the write goes over TLS; without it the certificate is refused for good."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    for server in serve(clock, context, tokens={TOKEN: "maintainer"}):
        project = server.add_project(PROJECT)
        target(runtime, server, ca_file=str(ca_file)).write(ROTATION, SecretValue(VALUE))
        assert server.variable(project, KEY) is not None

        with pytest.raises(PermanentError, match="certificate was refused"):
            target(runtime, server).check()


# -- policy fields


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"key": "DB-PASSWORD"}, "pattern"),
        ({"key": "K" * 256}, "pattern"),
        ({"project": "payments"}, "group/project path"),
        ({"project": "payments/-api"}, "group/project path"),
        ({"project": 0}, "positive"),
        ({"project": "payments/api.git"}, ".git"),
        ({"project": True}, "numeric id or a group/project path"),
        ({"environment_scope": "prod\nuction"}, "environment_scope"),
        ({"variable_type": "secret"}, "env_var"),
        ({"url": "http://gitlab.example.com"}, "https"),
        ({"url": "https://gitlab.example.com/?x=1"}, "query"),
        ({"token_env": "GITLAB TOKEN"}, "environment variable name"),
        ({"auth": "job-token"}, "private-token"),
        ({"masked": "yes please"}, "boolean"),
    ],
)
def test_bad_fields_are_refused(fields: dict[str, Any], reason: str) -> None:
    """Each invalid policy is refused with a reason naming the problem."""
    base: dict[str, Any] = {"project": PROJECT, "key": KEY}
    with pytest.raises(ValidationError, match=reason):
        GitLabCiConfig(**{**base, **fields})


def test_defaults_and_a_numeric_project() -> None:
    """Defaults: scope *, masked, raw, unprotected, env_var, gitlab.com; an id becomes text."""
    config = GitLabCiConfig(project=1234, key=KEY)
    assert config.project == "1234"
    assert (config.environment_scope, config.masked, config.raw, config.protected) == (
        "*",
        True,
        True,
        False,
    )
    assert (config.variable_type, config.url, config.token_env, config.auth) == (
        "env_var",
        "https://gitlab.com",
        "GITLAB_TOKEN",
        "private-token",
    )


POLICY = """\
secrets:
  - name: payments-db
    store: {provider: aws-secretsmanager, secret_id: prod/payments/db}
    schedule: {every: 30d}
    grace: 1h
    targets:
      - kind: gitlab-ci
        project: payments/api
        key: DB_PASSWORD
        environment_scope: production
        protected: true
"""


def test_the_documented_policy_block_loads(tmp_path: Path) -> None:
    """The documented policy block validates into this target's Config."""
    path = tmp_path / "p.yaml"
    path.write_text(POLICY)

    [policy] = load_policies(path, registry())

    [spec] = policy.targets
    assert spec.kind == KIND
    assert spec.config == GitLabCiConfig(
        project="payments/api", key="DB_PASSWORD", environment_scope="production", protected=True
    )


def test_the_policy_in_the_docs_loads(tmp_path: Path) -> None:
    """The policy example at the end of docs/providers/gitlab.md is a valid policy."""
    text = (Path(__file__).parents[2] / "docs" / "providers" / "gitlab.md").read_text()
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
      - kind: gitlab-ci
        project: payments/api
        key: APP_TOKEN
        url: URL
"""


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


def _store() -> Any:
    import boto3

    sm = boto3.client("secretsmanager", region_name="us-east-1")
    sm.create_secret(Name="app", SecretString=OLD)
    return sm


def _current(sm: Any) -> str:
    value: str = sm.get_secret_value(SecretId="app", VersionStage="AWSCURRENT")["SecretString"]
    return value


@pytest.mark.usefixtures("aws_in_process")
def test_a_rotation_propagates_to_the_gitlab_variable(
    tmp_path: Path, gitlab: GitLabServer, project: Project
) -> None:
    """A random secret rotated in Secrets Manager lands in the variable, masked."""
    sm = _store()
    engine = _engine(tmp_path, gitlab.url)

    [outcome] = engine.run_once().outcomes

    assert outcome.result is Result.OK and outcome.state is State.GRACE
    variable = gitlab.variable(project, "APP_TOKEN")
    assert variable is not None
    assert variable.value == _current(sm) != OLD
    assert variable.masked


@pytest.mark.usefixtures("aws_in_process")
def test_a_failing_check_rolls_the_gitlab_variable_back(
    tmp_path: Path, gitlab: GitLabServer, project: Project
) -> None:
    """A verifier refusing the new key puts the previous value back in the variable."""
    sm = _store()
    project.variables.append(StoredVariable("APP_TOKEN", OLD, masked=True, raw=True))
    engine = _engine(tmp_path, gitlab.url, REFUSING)

    [outcome] = engine.run_once().outcomes

    assert outcome.state is State.ROLLED_BACK
    assert _current(sm) == OLD
    variable = gitlab.variable(project, "APP_TOKEN")
    assert variable is not None and variable.value == OLD
    assert len(gitlab.requests_to("PUT")) == 2


# -- the Target contract ------------------------------------------------------


class TestGitLabCiContract(TargetContract):
    """The Target contract over a project's CI/CD variable, against the local GitLab."""

    gitlab: GitLabServer
    project: Project

    @pytest.fixture
    def target(self, runtime: Runtime, gitlab: GitLabServer, project: Project) -> Target[Any]:
        self.gitlab, self.project = gitlab, project
        return target(runtime, gitlab)

    def carried(self, target: Target[Any]) -> SecretValue | None:
        found = self.gitlab.variable(self.project, KEY)
        return None if found is None else SecretValue(found.value)

    @contextmanager
    def unavailable(self, target: Target[Any]) -> Iterator[None]:
        self.gitlab.fail(503, times=1000)
        try:
            yield
        finally:
            self.gitlab.faults = FaultPlan(ANY_STATUS)
