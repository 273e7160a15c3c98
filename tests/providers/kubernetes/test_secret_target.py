"""The kubernetes-secret target, driven through the real kubernetes client against the emulator."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

pytest.importorskip("kubernetes")

from providers.kubernetes.client import OPERATIONS, KubeSession, session
from providers.kubernetes.secret import (
    CREATED_FOR,
    KIND,
    MANAGED_BY,
    RESTARTED_AT,
    RESTARTED_FOR,
    RESTORED_FOR,
    ROTATION_ID,
    KubernetesSecretConfig,
    KubernetesSecretTarget,
)
from rotator.adapters import Target
from rotator.adapters.discovery import Registry, registry
from rotator.adapters.secret import SecretValue
from rotator.adapters.values import OUTCOMES, Runtime
from rotator.errors import (
    ConflictError,
    NotFoundError,
    PermanentError,
    PermissionDeniedError,
    PolicyError,
    RotatorError,
    TransientError,
)
from rotator.policy.loader import load_policies
from rotator.sandbox.kubernetes import KubernetesEmulator, Rule
from rotator.service.metrics import OPERATION_PATTERN
from rotator.testing import TargetContract
from tests.providers.kubernetes.helpers import (
    KEY,
    NAMESPACE,
    NEW,
    OLD,
    SECRET,
    WORKLOADS,
    Clock,
    Recorder,
    changes,
    target,
    template_annotations,
)
from tests.providers.threads import run_together

pytestmark = pytest.mark.usefixtures("kube_env")

ROTATION = "0f3c2a9d8e7b4c1a9f0e1d2c3b4a5f60"
SECRET_PATH = f"/api/v1/namespaces/{NAMESPACE}/secrets/{SECRET}"


def b64(text: str) -> str:
    """Return the base64 form a Secret's data holds."""
    return base64.b64encode(text.encode()).decode()


# -- write


def test_write_patches_only_the_key_and_annotates(
    kube: KubernetesEmulator, runtime: Runtime
) -> None:
    """The key gets the new value, the other key stays, and the Secret names the rotation."""
    target(runtime).write(ROTATION, SecretValue(NEW))

    assert kube.secret_data(NAMESPACE, SECRET) == {"username": "payments", KEY: NEW}
    secret = kube.secret(NAMESPACE, SECRET)
    assert secret is not None
    assert secret["metadata"]["annotations"] == {ROTATION_ID: ROTATION}
    [patch] = kube.requests_to("PATCH", SECRET_PATH)
    assert patch.content_type == "application/strategic-merge-patch+json"
    assert KEY in patch.body.decode() and "username" not in patch.body.decode()


def test_write_restarts_every_workload_as_kubectl_does(
    kube: KubernetesEmulator, runtime: Runtime, clock: Clock
) -> None:
    """Each workload's pod template gets restartedAt (RFC 3339 from the clock) and the marker."""
    target(runtime).write(ROTATION, SecretValue(NEW))

    for item in WORKLOADS:
        annotations = template_annotations(kube, item)
        assert annotations[RESTARTED_AT] == "2026-03-01T09:30:00Z", item
        assert annotations[RESTARTED_FOR] == f"{ROTATION} {SECRET}/{KEY}", item
        kind, _, name = item.partition("/")
        workload = kube.workload(kind, NAMESPACE, name)
        assert workload is not None and workload["metadata"]["generation"] == 2, item
    patches = [r for r in kube.requests if r.method == "PATCH" and "/apis/apps/v1/" in r.path]
    assert {r.content_type for r in patches} == {"application/strategic-merge-patch+json"}
    assert len(patches) == len(WORKLOADS)


def test_replay_changes_nothing_and_restarts_nothing(
    kube: KubernetesEmulator, runtime: Runtime
) -> None:
    """Writing the same rotation's value again sends no write at all."""
    tgt = target(runtime)
    tgt.write(ROTATION, SecretValue(NEW))
    before = kube.secret(NAMESPACE, SECRET)
    seen = len(kube.requests)

    tgt.write(ROTATION, SecretValue(NEW))

    assert changes(kube, seen) == []
    assert kube.secret(NAMESPACE, SECRET) == before


def test_value_already_there_from_elsewhere_is_left_alone(
    kube: KubernetesEmulator, runtime: Runtime
) -> None:
    """A Secret that already carries the value, not through this rotation, is neither written nor
    its workloads restarted."""
    kube.put_secret(NAMESPACE, SECRET, {KEY: NEW})

    target(runtime).write(ROTATION, SecretValue(NEW))

    assert changes(kube) == []
    assert RESTARTED_AT not in template_annotations(kube, WORKLOADS[0])


def test_replay_after_a_crash_finishes_only_the_missing_restarts(
    kube: KubernetesEmulator, runtime: Runtime
) -> None:
    """A write cut off after the Secret and the first restart restarts only the rest on replay."""
    kube.inject_fault(503, method="PATCH", path_prefix="/apis/apps/v1/namespaces/payments/state")
    tgt = target(runtime)
    with pytest.raises(TransientError):
        tgt.write(ROTATION, SecretValue(NEW))
    assert kube.secret_data(NAMESPACE, SECRET) == {"username": "payments", KEY: NEW}
    assert RESTARTED_FOR in template_annotations(kube, "deployment/payments-api")
    seen = len(kube.requests)

    tgt.write(ROTATION, SecretValue(NEW))

    assert changes(kube, seen) == [
        ("PATCH", f"/apis/apps/v1/namespaces/{NAMESPACE}/statefulsets/payments-ledger"),
        ("PATCH", f"/apis/apps/v1/namespaces/{NAMESPACE}/daemonsets/payments-agent"),
    ]


def test_missing_secret_is_created_as_rotators(kube: KubernetesEmulator, runtime: Runtime) -> None:
    """A missing Secret is created Opaque, labelled managed-by rotator, holding only the key."""
    target(runtime, name="payments-new", restart=()).write(ROTATION, SecretValue(NEW))

    secret = kube.secret(NAMESPACE, "payments-new")
    assert secret is not None
    assert secret["type"] == "Opaque"
    assert secret["metadata"]["labels"] == {MANAGED_BY: "rotator"}
    assert secret["metadata"]["annotations"] == {ROTATION_ID: ROTATION, CREATED_FOR: ROTATION}
    assert kube.secret_data(NAMESPACE, "payments-new") == {KEY: NEW}


def test_missing_secret_without_create_is_not_found(
    kube: KubernetesEmulator, runtime: Runtime
) -> None:
    """With create: false a missing Secret is a NotFoundError and nothing is created."""
    with pytest.raises(NotFoundError, match="create: false"):
        target(runtime, name="absent", create=False).write(ROTATION, SecretValue(NEW))
    assert changes(kube) == []


def test_missing_namespace_is_named(runtime: Runtime) -> None:
    """Creating a Secret in a namespace that does not exist says the namespace is missing."""
    with pytest.raises(NotFoundError, match="namespace nowhere does not exist"):
        target(runtime, namespace="nowhere", restart=()).write(ROTATION, SecretValue(NEW))


def test_missing_workload_fails_before_the_secret_changes(
    kube: KubernetesEmulator, runtime: Runtime
) -> None:
    """A restart target that does not exist is a NotFoundError, and the Secret keeps its value."""
    with pytest.raises(NotFoundError, match="deployments payments/ghost"):
        target(runtime, restart=("deployment/ghost",)).write(ROTATION, SecretValue(NEW))
    assert kube.secret_data(NAMESPACE, SECRET) == {"username": "payments", KEY: OLD}


def test_paused_deployment_fails_before_the_secret_changes(
    kube: KubernetesEmulator, runtime: Runtime
) -> None:
    """A paused Deployment (which would not roll) is a ConflictError and nothing is written."""
    kube.add_workload("deployment", NAMESPACE, "payments-api", paused=True)
    with pytest.raises(ConflictError, match="paused"):
        target(runtime).write(ROTATION, SecretValue(NEW))
    assert changes(kube) == []


def test_immutable_secret_is_refused_before_any_write(
    kube: KubernetesEmulator, runtime: Runtime
) -> None:
    """An immutable Secret is a PermanentError, and no patch is sent."""
    kube.put_secret(NAMESPACE, SECRET, {KEY: OLD}, immutable=True)
    with pytest.raises(PermanentError, match="immutable"):
        target(runtime).write(ROTATION, SecretValue(NEW))
    assert changes(kube) == []


def test_a_concurrent_change_is_read_again_and_redone(
    kube: KubernetesEmulator, runtime: Runtime
) -> None:
    """A 409 on the Secret patch makes the target read again and patch again, successfully."""
    kube.inject_fault(409, method="PATCH", path_prefix=SECRET_PATH)

    target(runtime).write(ROTATION, SecretValue(NEW))

    assert len(kube.requests_to("PATCH", SECRET_PATH)) == 2
    assert len(kube.requests_to("GET", SECRET_PATH)) == 2
    assert kube.secret_data(NAMESPACE, SECRET) == {"username": "payments", KEY: NEW}


def test_persistent_conflicts_end_as_a_transient_error(
    kube: KubernetesEmulator, runtime: Runtime
) -> None:
    """Three 409s in a row give up with a TransientError (the engine retries later)."""
    kube.inject_fault(409, method="PATCH", path_prefix=SECRET_PATH, count=3)
    with pytest.raises(TransientError, match="HTTP 409"):
        target(runtime).write(ROTATION, SecretValue(NEW))
    assert kube.secret_data(NAMESPACE, SECRET) == {"username": "payments", KEY: OLD}


# -- restore


def test_restore_puts_the_old_value_back_and_restarts(
    kube: KubernetesEmulator, runtime: Runtime, clock: Clock
) -> None:
    """After restore the key holds the previous value again and every workload restarted again."""
    tgt = target(runtime)
    tgt.write(ROTATION, SecretValue(NEW))
    clock.advance(90)

    tgt.restore(ROTATION, written=SecretValue(NEW), previous=SecretValue(OLD))

    assert kube.secret_data(NAMESPACE, SECRET) == {"username": "payments", KEY: OLD}
    secret = kube.secret(NAMESPACE, SECRET)
    assert secret is not None and secret["metadata"]["annotations"] == {RESTORED_FOR: ROTATION}
    for item in WORKLOADS:
        annotations = template_annotations(kube, item)
        assert annotations[RESTARTED_AT] == "2026-03-01T09:31:30Z", item
        assert annotations[RESTARTED_FOR] == f"{ROTATION} {SECRET}/{KEY} restored", item


def test_restore_twice_changes_nothing_the_second_time(
    kube: KubernetesEmulator, runtime: Runtime
) -> None:
    """A replayed restore sends no write."""
    tgt = target(runtime)
    tgt.write(ROTATION, SecretValue(NEW))
    tgt.restore(ROTATION, written=SecretValue(NEW), previous=SecretValue(OLD))
    seen = len(kube.requests)

    tgt.restore(ROTATION, written=SecretValue(NEW), previous=SecretValue(OLD))

    assert changes(kube, seen) == []


def test_restore_when_never_written_is_a_no_op(kube: KubernetesEmulator, runtime: Runtime) -> None:
    """Restoring a rotation that never wrote changes nothing and reads no workload."""
    before = kube.secret(NAMESPACE, SECRET)

    target(runtime).restore(ROTATION, written=SecretValue(NEW), previous=SecretValue(OLD))

    assert changes(kube) == []
    assert kube.secret(NAMESPACE, SECRET) == before
    assert [r.path for r in kube.requests] == [SECRET_PATH]


def test_restore_with_the_written_value_lost_uses_the_annotation(
    kube: KubernetesEmulator, runtime: Runtime
) -> None:
    """With written=None the rotation-id annotation proves the key is this rotation's."""
    tgt = target(runtime)
    tgt.write(ROTATION, SecretValue(NEW))

    tgt.restore(ROTATION, written=None, previous=SecretValue(OLD))

    assert kube.secret_data(NAMESPACE, SECRET) == {"username": "payments", KEY: OLD}


def test_restore_leaves_a_value_someone_else_wrote_since(
    kube: KubernetesEmulator, runtime: Runtime
) -> None:
    """If the key no longer holds what this rotation wrote, restore leaves it alone."""
    tgt = target(runtime)
    tgt.write(ROTATION, SecretValue(NEW))
    kube.put_secret(NAMESPACE, SECRET, {KEY: "someone-else-1234567"})
    seen = len(kube.requests)

    tgt.restore(ROTATION, written=SecretValue(NEW), previous=SecretValue(OLD))

    assert changes(kube, seen) == []
    assert kube.secret_data(NAMESPACE, SECRET) == {KEY: "someone-else-1234567"}


def test_restore_removes_a_key_the_write_added(kube: KubernetesEmulator, runtime: Runtime) -> None:
    """With previous=None the added key is removed and the other keys stay."""
    tgt = target(runtime, key="api-token")
    tgt.write(ROTATION, SecretValue(NEW))

    tgt.restore(ROTATION, written=SecretValue(NEW), previous=None)

    assert kube.secret_data(NAMESPACE, SECRET) == {"username": "payments", KEY: OLD}


def test_restore_deletes_a_secret_the_write_created(
    kube: KubernetesEmulator, runtime: Runtime
) -> None:
    """A Secret this rotation created, left empty by the undo, is deleted."""
    tgt = target(runtime, name="payments-new")
    tgt.write(ROTATION, SecretValue(NEW))

    tgt.restore(ROTATION, written=SecretValue(NEW), previous=None)

    assert kube.secret(NAMESPACE, "payments-new") is None
    marker = f"{ROTATION} payments-new/{KEY} restored"
    assert template_annotations(kube, WORKLOADS[0])[RESTARTED_FOR] == marker


def test_restore_after_a_crash_finishes_the_restarts(
    kube: KubernetesEmulator, runtime: Runtime
) -> None:
    """A restore cut off after the Secret was undone restarts the remaining workloads on replay."""
    tgt = target(runtime)
    tgt.write(ROTATION, SecretValue(NEW))
    kube.inject_fault(500, method="PATCH", path_prefix="/apis/apps/v1/namespaces/payments/daemon")
    with pytest.raises(TransientError):
        tgt.restore(ROTATION, written=SecretValue(NEW), previous=SecretValue(OLD))
    seen = len(kube.requests)

    tgt.restore(ROTATION, written=SecretValue(NEW), previous=SecretValue(OLD))

    assert changes(kube, seen) == [
        ("PATCH", f"/apis/apps/v1/namespaces/{NAMESPACE}/daemonsets/payments-agent")
    ]
    assert template_annotations(kube, "daemonset/payments-agent")[RESTARTED_FOR].endswith(
        "restored"
    )


# -- errors


def test_permission_denied_is_a_permission_error(
    kube: KubernetesEmulator, runtime: Runtime
) -> None:
    """A 403 on the Secret patch is a PermissionDeniedError naming the Secret, not the value."""
    kube.authorize_only(Rule(verbs={"get"}), Rule(verbs={"patch"}, groups={"apps"}))
    with pytest.raises(PermissionDeniedError) as caught:
        target(runtime).write(ROTATION, SecretValue(NEW))
    assert "secrets payments/payments-db: HTTP 403" in str(caught.value)
    assert "RBAC" in str(caught.value)
    assert kube.secret_data(NAMESPACE, SECRET) == {"username": "payments", KEY: OLD}


def test_an_unknown_token_is_a_permission_error(
    kube: KubernetesEmulator, runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kubeconfig whose token the API server does not know gives PermissionDeniedError (401)."""
    path = kube.write_kubeconfig(tmp_path / "config", token="not-a-known-token")
    monkeypatch.setenv("KUBECONFIG", str(path))
    with pytest.raises(PermissionDeniedError, match="HTTP 401"):
        target(runtime).write(ROTATION, SecretValue(NEW))


def test_a_server_error_is_transient_with_its_retry_after(
    kube: KubernetesEmulator, runtime: Runtime, recorder: Recorder
) -> None:
    """A 503 with Retry-After is a TransientError with that delay, counted as transient."""
    kube.inject_fault(503, method="GET", path_prefix=SECRET_PATH, retry_after=7)
    with pytest.raises(TransientError) as caught:
        target(runtime).write(ROTATION, SecretValue(NEW))
    assert caught.value.delay == 7.0
    assert "HTTP 503" in str(caught.value)
    assert recorder.calls == [("kubernetes", "secrets.get", "transient")]


def test_throttling_is_transient_and_counted_as_throttled(
    kube: KubernetesEmulator, runtime: Runtime, recorder: Recorder
) -> None:
    """A 429 is a TransientError with its Retry-After and the request is counted as throttled."""
    kube.inject_fault(429, method="PATCH", path_prefix=SECRET_PATH, retry_after=1)
    with pytest.raises(TransientError) as caught:
        target(runtime).write(ROTATION, SecretValue(NEW))
    assert caught.value.delay == 1.0
    assert ("kubernetes", "secrets.patch", "throttled") in recorder.calls


def test_an_unreachable_api_server_is_transient(
    kube: KubernetesEmulator, runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused connection is a TransientError."""
    with KubernetesEmulator() as gone:
        path = gone.write_kubeconfig(tmp_path / "config")
    monkeypatch.setenv("KUBECONFIG", str(path))
    with pytest.raises(TransientError, match="could not reach the API server"):
        target(runtime).write(ROTATION, SecretValue(NEW))


def test_a_missing_kubeconfig_is_a_permanent_error(
    runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No kubeconfig at all is a PermanentError that says where credentials come from."""
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    with pytest.raises(PermanentError, match="KUBECONFIG"):
        target(runtime).write(ROTATION, SecretValue(NEW))


def test_in_a_pod_the_service_account_is_used(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With KUBERNETES_SERVICE_HOST set the in-cluster loader runs (here: no token file)."""
    if Path("/var/run/secrets/kubernetes.io/serviceaccount/token").exists():
        pytest.skip("running inside a real pod")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    with pytest.raises(PermanentError, match="service-account token"):
        target(runtime).write(ROTATION, SecretValue(NEW))


def test_a_context_picks_the_kubeconfig_context(
    kube: KubernetesEmulator, runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The policy's context is used instead of the kubeconfig's current (broken) one."""
    good = kube.kubeconfig(context="good")
    path = kube.write_kubeconfig(tmp_path / "config", context="bad", token="wrong", extra=[good])
    monkeypatch.setenv("KUBECONFIG", str(path))
    with pytest.raises(PermissionDeniedError):
        target(runtime).write(ROTATION, SecretValue(NEW))

    target(runtime, context="good").write(ROTATION, SecretValue(NEW))

    assert kube.secret_data(NAMESPACE, SECRET) == {"username": "payments", KEY: NEW}


# -- check


def test_check_asks_self_subject_access_reviews(kube: KubernetesEmulator, runtime: Runtime) -> None:
    """check reads, asks SelfSubjectAccessReview for each patch, reports it, and writes nothing."""
    report = target(runtime).check()

    assert "SelfSubjectAccessReview" in report
    assert "patch secrets/payments-db" in report and "patch deployments/payments-api" in report
    reviews = kube.requests_to("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews")
    assert len(reviews) == 1 + len(WORKLOADS)
    assert '"verb": "patch"' in reviews[0].body.decode()
    assert changes(kube) == []


def test_check_reports_what_is_denied(kube: KubernetesEmulator, runtime: Runtime) -> None:
    """A permission the rules do not grant is a PermissionDeniedError naming it."""
    kube.authorize_only(Rule(verbs={"get"}), Rule(verbs={"patch"}, resources={"secrets"}))
    with pytest.raises(PermissionDeniedError) as caught:
        target(runtime).check()
    message = str(caught.value)
    assert "patch deployments/payments-api" in message
    assert "patch secrets/payments-db" not in message


def test_check_of_a_secret_to_create_checks_namespace_and_create(
    kube: KubernetesEmulator, runtime: Runtime
) -> None:
    """For a missing Secret, check reads the namespace and asks for create and delete."""
    report = target(runtime, name="payments-new", restart=()).check()

    assert "will be created" in report
    assert "create secrets" in report and "delete secrets/payments-new" in report
    assert kube.requests_to("GET", f"/api/v1/namespaces/{NAMESPACE}")[-1].path.endswith(NAMESPACE)


def test_check_without_namespace_access_still_checks_the_rest(
    kube: KubernetesEmulator, runtime: Runtime
) -> None:
    """A namespaced Role cannot grant reading the namespace: check says so and goes on."""
    kube.authorize_only(Rule(resources={"secrets"}), Rule(groups={"apps"}))

    report = target(runtime, name="payments-new").check()

    assert "namespace not readable" in report
    assert "create secrets" in report


def test_check_of_a_missing_namespace_is_not_found(runtime: Runtime) -> None:
    """check says the namespace does not exist when the Secret would have to be created there."""
    with pytest.raises(NotFoundError, match="namespace nowhere does not exist"):
        target(runtime, namespace="nowhere").check()


# -- secrets stay secret


def test_the_value_never_reaches_messages_logs_or_urls(
    kube: KubernetesEmulator,
    runtime: Runtime,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A canary value is in no exception text, log line, URL or query, whatever fails."""
    canary = "canary-Zq7xY2vK9pLm4Rt8"
    forms = (canary, b64(canary))
    caplog.set_level(logging.DEBUG)
    raised: list[BaseException] = []
    faults: list[tuple[int, str | None, str]] = [
        (403, "PATCH", SECRET_PATH),
        (422, "PATCH", SECRET_PATH),
        (500, "PATCH", "/apis/apps/v1/"),
        (429, "GET", SECRET_PATH),
    ]
    for status, method, prefix in faults:
        kube.inject_fault(status, method=method, path_prefix=prefix)
        try:
            target(runtime).write(ROTATION, SecretValue(canary))
        except RotatorError as exc:
            raised.append(exc)
    target(runtime).write(ROTATION, SecretValue(canary))
    kube.inject_fault(503, method="PATCH", path_prefix=SECRET_PATH)
    try:
        target(runtime).restore(ROTATION, written=SecretValue(canary), previous=SecretValue(OLD))
    except RotatorError as exc:
        raised.append(exc)
    target(runtime).restore(ROTATION, written=SecretValue(canary), previous=SecretValue(OLD))

    assert len(raised) == 5
    texts = [str(e) for e in raised] + [repr(e) for e in raised]
    texts += [str(e.__context__) for e in raised if e.__context__ is not None]
    texts += [caplog.text]
    texts += [r.path + "?" + r.query for r in kube.requests]
    for text in texts:
        for form in forms:
            assert form not in text
    # The value did travel, in request bodies only.
    assert any(b64(canary).encode() in r.body for r in kube.requests)


# -- metering, sessions, configuration


def test_every_request_is_reported_with_a_fixed_operation(
    kube: KubernetesEmulator, runtime: Runtime, recorder: Recorder
) -> None:
    """Each request is reported once, as provider kubernetes with a known operation name."""
    tgt = target(runtime, name="payments-new")
    tgt.check()
    tgt.write(ROTATION, SecretValue(NEW))
    tgt.restore(ROTATION, written=SecretValue(NEW), previous=None)

    assert len(recorder.calls) == len(kube.requests)
    for provider, operation, outcome in recorder.calls:
        assert provider == "kubernetes"
        assert operation in OPERATIONS and OPERATION_PATTERN.fullmatch(operation)
        assert outcome in OUTCOMES
    assert ("kubernetes", "secrets.get", "permanent") in recorder.calls  # the 404 probe
    assert ("kubernetes", "secrets.create", "ok") in recorder.calls
    assert ("kubernetes", "secrets.delete", "ok") in recorder.calls
    assert ("kubernetes", "daemonsets.patch", "ok") in recorder.calls


def test_one_session_per_runtime_and_context_across_threads(runtime: Runtime) -> None:
    """Threads asking for the session at once all get the same one."""
    found: list[KubeSession] = []
    failures = run_together(lambda _: found.append(session(runtime, None)), list(range(8)))

    assert failures == []
    assert len({id(s) for s in found}) == 1
    assert session(runtime, None) is found[0]


def test_the_rate_limit_paces_requests(
    kube: KubernetesEmulator, clock: Clock, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ROTATOR_RATE_LIMITS=kubernetes=1 a burst of requests waits on the runtime's sleeper."""
    monkeypatch.setenv("ROTATOR_RATE_LIMITS", "kubernetes=1")
    runtime = Runtime(clock=clock, sleep=clock.sleep, cache={}, on_request=recorder)

    target(runtime).write(ROTATION, SecretValue(NEW))

    # Burst 1: the first request goes at once, every later one waits for its token.
    assert len(clock.slept) == len(kube.requests) - 1
    assert all(s > 0 for s in clock.slept)


def test_describe_names_namespace_secret_key_and_context(runtime: Runtime) -> None:
    """describe is kubernetes-secret:NS/NAME#KEY, with @CONTEXT when one is set."""
    assert target(runtime).describe() == "kubernetes-secret:payments/payments-db#password"
    described = target(runtime, context="prod").describe()
    assert described == "kubernetes-secret:payments/payments-db#password@prod"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("restart", ["deploy/payments-api"]),
        ("restart", ["deployment"]),
        ("restart", ["deployment/Payments_API"]),
        ("restart", ["deployment/a", "deployment/a"]),
        ("key", ".."),
        ("key", "pass word"),
        ("namespace", "Payments"),
        ("name", "payments/db"),
    ],
)
def test_bad_fields_are_refused(field: str, value: object) -> None:
    """A malformed restart entry, key, namespace or name fails policy validation."""
    fields: dict[str, object] = {"namespace": NAMESPACE, "name": SECRET, "key": KEY}
    fields[field] = value
    with pytest.raises(ValidationError):
        KubernetesSecretConfig.model_validate(fields)


def test_defaults_create_and_restart_nothing() -> None:
    """create defaults to true, restart to none, context to the kubeconfig's own."""
    config = KubernetesSecretConfig.model_validate(
        {"namespace": NAMESPACE, "name": SECRET, "key": KEY}
    )
    assert (config.create, config.restart, config.context) == (True, (), None)


POLICY = """\
secrets:
  - name: payments-db
    store: {provider: aws-secretsmanager, secret_id: prod/payments/db}
    schedule: {every: 30d}
    grace: 1h
    targets:
      - kind: kubernetes-secret
        namespace: payments
        name: payments-db
        key: password
        restart: [deployment/payments-api]
"""


def with_target() -> Registry:
    """Return the installed registry plus this target (its entry point may not be installed)."""
    base = registry()
    return Registry(
        base.stores,
        base.issuers,
        {**base.targets, KIND: KubernetesSecretTarget},
        base.verifiers,
    )


def test_the_documented_policy_block_loads(tmp_path: Path) -> None:
    """The policy block of the issue validates into this target's Config."""
    path = tmp_path / "p.yaml"
    path.write_text(POLICY)

    [policy] = load_policies(path, with_target())

    [spec] = policy.targets
    assert spec.kind == KIND
    assert spec.config == KubernetesSecretConfig(
        namespace="payments",
        name="payments-db",
        key="password",
        restart=("deployment/payments-api",),
    )


def test_a_bad_restart_entry_is_a_located_policy_problem(tmp_path: Path) -> None:
    """A malformed restart entry is refused with the file, the line and the expected form."""
    path = tmp_path / "p.yaml"
    path.write_text(POLICY.replace("deployment/payments-api", "pod/payments-api-0"))

    with pytest.raises(PolicyError) as caught:
        load_policies(path, with_target())

    [problem] = caught.value.problems
    assert problem.line == 11
    assert "deployment/NAME" in problem.reason


# -- the Target contract ------------------------------------------------------

#: A key the seeded Secret does not hold yet.
CONTRACT_KEY = "api-token"


class TestKubernetesSecretContract(TargetContract):
    """The Target contract over a key of a Secret, through the real client and the emulator."""

    kube: KubernetesEmulator

    @pytest.fixture
    def target(self, kube: KubernetesEmulator, runtime: Runtime) -> Target[Any]:
        self.kube = kube
        return target(runtime, key=CONTRACT_KEY)

    def carried(self, target: Target[Any]) -> SecretValue | None:
        data = self.kube.secret_data(NAMESPACE, SECRET) or {}
        found = data.get(CONTRACT_KEY)
        return None if found is None else SecretValue(found)

    @contextmanager
    def unavailable(self, target: Target[Any]) -> Iterator[None]:
        self.kube.inject_fault(503, count=1000)
        try:
            yield
        finally:
            self.kube.clear_faults()
