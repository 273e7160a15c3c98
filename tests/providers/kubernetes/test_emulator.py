"""The Kubernetes API emulator answers like the API server: paths, Status errors, patches, RBAC."""

from __future__ import annotations

import base64
import json
import os
import queue
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("kubernetes")

from kubernetes import client, config

from rotator.sandbox.kubernetes import KubernetesEmulator, Rule, merge_patch
from tests.providers.kubernetes.helpers import KEY, NAMESPACE, OLD, SECRET

SECRETS = f"/api/v1/namespaces/{NAMESPACE}/secrets"
DEPLOYMENT = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/payments-api"
SMP = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
REPO = Path(__file__).resolve().parents[3]


def http(
    kube: KubernetesEmulator,
    method: str,
    path: str,
    body: Any = None,
    *,
    content_type: str = "application/json",
    token: str | None = "",
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Send one raw request; return (status, JSON body, headers). ``token=None`` sends none."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(kube.url + path, data=data, method=method)
    request.add_header("Content-Type", content_type)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token or kube.token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers)


def core_api(kube: KubernetesEmulator) -> Any:
    """Return a real CoreV1Api configured from the emulator's kubeconfig file."""
    configuration = client.Configuration()
    load: Any = config.load_kube_config  # untyped in the client
    load(config_file=str(kube.kubeconfig_path), client_configuration=configuration)
    return client.CoreV1Api(client.ApiClient(configuration))


def version(kube: KubernetesEmulator) -> str:
    """Return the stored Secret's resourceVersion."""
    secret = kube.secret(NAMESPACE, SECRET)
    assert secret is not None
    return str(secret["metadata"]["resourceVersion"])


def test_the_kubeconfig_file_loads_with_the_real_client(kube: KubernetesEmulator) -> None:
    """The generated kubeconfig gives the client the emulator's address and a working token."""
    secret = core_api(kube).read_namespaced_secret(SECRET, NAMESPACE)

    assert secret.metadata.name == SECRET
    assert base64.b64decode(secret.data[KEY]).decode() == OLD


def test_no_token_is_401_with_a_status_body(kube: KubernetesEmulator) -> None:
    """A request without a bearer token is 401 with the API server's Status object."""
    status, body, _ = http(kube, "GET", f"{SECRETS}/{SECRET}", token=None)

    assert status == 401
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }


def test_a_missing_secret_is_a_not_found_status(kube: KubernetesEmulator) -> None:
    """GET of a missing Secret is 404 NotFound naming it, with details."""
    status, body, _ = http(kube, "GET", f"{SECRETS}/absent")

    assert status == 404
    assert body["message"] == 'secrets "absent" not found'
    assert body["details"] == {"name": "absent", "kind": "secrets"}


def test_unknown_paths_and_verbs(kube: KubernetesEmulator) -> None:
    """An unknown path is 404 and a verb a path does not serve is 405."""
    assert http(kube, "GET", "/api/v1/nodes")[0] == 404
    assert http(kube, "DELETE", DEPLOYMENT)[0] == 405


def test_create_twice_is_already_exists(kube: KubernetesEmulator) -> None:
    """A second create of the same name is 409 AlreadyExists."""
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "fresh"}}
    assert http(kube, "POST", SECRETS, secret)[0] == 201

    status, body, _ = http(kube, "POST", SECRETS, secret)

    assert (status, body["reason"]) == (409, "AlreadyExists")


def test_create_in_a_missing_namespace_is_not_found(kube: KubernetesEmulator) -> None:
    """Creating in a namespace that does not exist is 404 naming the namespace."""
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "fresh"}}

    status, body, _ = http(kube, "POST", "/api/v1/namespaces/nowhere/secrets", secret)

    assert (status, body["message"]) == (404, 'namespaces "nowhere" not found')


def test_a_change_bumps_the_resource_version_and_a_no_op_does_not(
    kube: KubernetesEmulator,
) -> None:
    """A patch that changes the Secret gets a new resourceVersion; the same patch again keeps it."""
    first = version(kube)
    patch = {"metadata": {"annotations": {"a": "b"}}}

    http(kube, "PATCH", f"{SECRETS}/{SECRET}", patch, content_type=SMP)
    second = version(kube)
    http(kube, "PATCH", f"{SECRETS}/{SECRET}", patch, content_type=MERGE)

    assert int(second) > int(first)
    assert version(kube) == second


def test_a_stale_resource_version_in_a_patch_is_a_conflict(kube: KubernetesEmulator) -> None:
    """A patch naming an old resourceVersion is 409 Conflict with the API server's message."""
    patch = {"metadata": {"resourceVersion": "1"}, "data": {KEY: "eA=="}}

    status, body, _ = http(kube, "PATCH", f"{SECRETS}/{SECRET}", patch, content_type=SMP)

    assert (status, body["reason"]) == (409, "Conflict")
    assert "the object has been modified" in body["message"]


def test_merge_patch_merges_maps_and_null_deletes(kube: KubernetesEmulator) -> None:
    """A patch sets one key, removes another with null, and leaves the rest."""
    patch = {"data": {"extra": "eA==", "username": None}}

    status, _, _ = http(kube, "PATCH", f"{SECRETS}/{SECRET}", patch, content_type=SMP)

    assert status == 200
    assert kube.secret_data(NAMESPACE, SECRET) == {KEY: OLD, "extra": "x"}


def test_merge_patch_function_follows_rfc_7386() -> None:
    """RFC 7386's own example gives its documented result."""
    target = {"title": "Goodbye!", "author": {"givenName": "John", "familyName": "Doe"}}
    patch = {"title": "Hello!", "author": {"familyName": None}, "phoneNumber": "+01-123"}

    assert merge_patch(target, patch) == {
        "title": "Hello!",
        "author": {"givenName": "John"},
        "phoneNumber": "+01-123",
    }


def test_json_patch_is_unsupported_media_type(kube: KubernetesEmulator) -> None:
    """A JSON patch (a list, as the client sends it) is 415 through the real client."""
    with pytest.raises(client.ApiException) as caught:
        core_api(kube).patch_namespaced_secret(
            SECRET, NAMESPACE, [{"op": "remove", "path": "/data/username"}]
        )
    assert caught.value.status == 415
    assert json.loads(caught.value.body or "{}")["reason"] == "UnsupportedMediaType"


def test_string_data_is_folded_into_data(kube: KubernetesEmulator) -> None:
    """stringData is stored base64-encoded under data and never kept itself."""
    http(kube, "PATCH", f"{SECRETS}/{SECRET}", {"stringData": {"extra": "plain"}}, content_type=SMP)

    stored = kube.secret(NAMESPACE, SECRET)
    assert stored is not None and "stringData" not in stored
    assert kube.secret_data(NAMESPACE, SECRET) == {
        "username": "payments",
        KEY: OLD,
        "extra": "plain",
    }


def test_bad_base64_and_immutable_secrets_are_invalid(kube: KubernetesEmulator) -> None:
    """Non-base64 data and a change to an immutable Secret's data are 422 Invalid."""
    bad = http(kube, "PATCH", f"{SECRETS}/{SECRET}", {"data": {"k": "%%%"}}, content_type=SMP)
    kube.put_secret(NAMESPACE, SECRET, {KEY: OLD}, immutable=True)
    frozen = http(kube, "PATCH", f"{SECRETS}/{SECRET}", {"data": {KEY: "eA=="}}, content_type=SMP)

    assert (bad[0], bad[1]["reason"]) == (422, "Invalid")
    assert (frozen[0], frozen[1]["reason"]) == (422, "Invalid")
    assert kube.secret_data(NAMESPACE, SECRET) == {KEY: OLD}


def test_delete_honours_preconditions(kube: KubernetesEmulator) -> None:
    """A delete with a stale resourceVersion is 409; with the current one it succeeds."""
    stale = {"preconditions": {"resourceVersion": "1"}}
    current = {"preconditions": {"resourceVersion": version(kube)}}

    refused = http(kube, "DELETE", f"{SECRETS}/{SECRET}", stale)
    accepted = http(kube, "DELETE", f"{SECRETS}/{SECRET}", current)

    assert refused[0] == 409
    assert (accepted[0], accepted[1]["status"]) == (200, "Success")
    assert kube.secret(NAMESPACE, SECRET) is None


def test_dry_run_validates_without_storing(kube: KubernetesEmulator) -> None:
    """?dryRun=All answers the patched object but stores nothing."""
    before = kube.secret(NAMESPACE, SECRET)

    status, body, _ = http(
        kube, "PATCH", f"{SECRETS}/{SECRET}?dryRun=All", {"data": {"x": "eA=="}}, content_type=SMP
    )

    assert status == 200 and "x" in body["data"]
    assert kube.secret(NAMESPACE, SECRET) == before


def test_a_workload_template_patch_bumps_its_generation(kube: KubernetesEmulator) -> None:
    """Changing the pod template increments metadata.generation; a metadata-only patch does not."""
    template = {"spec": {"template": {"metadata": {"annotations": {"x": "1"}}}}}
    labels = {"metadata": {"labels": {"team": "payments"}}}

    http(kube, "PATCH", DEPLOYMENT, template, content_type=SMP)
    http(kube, "PATCH", DEPLOYMENT, labels, content_type=SMP)

    deployment = kube.workload("deployment", NAMESPACE, "payments-api")
    assert deployment is not None and deployment["metadata"]["generation"] == 2


def test_rules_refuse_with_the_rbac_message(kube: KubernetesEmulator) -> None:
    """A request the allow-list does not cover is 403 with the API server's wording."""
    kube.authorize_only(Rule(verbs={"get"}, resources={"secrets"}))

    status, body, _ = http(kube, "PATCH", f"{SECRETS}/{SECRET}", {"data": {}}, content_type=SMP)

    assert status == 403
    assert body["message"] == (
        'secrets "payments-db" is forbidden: User "rotator" cannot patch resource "secrets" '
        'in API group "" in the namespace "payments"'
    )
    assert http(kube, "GET", f"{SECRETS}/{SECRET}")[0] == 200


def test_a_rule_with_names_covers_only_those(kube: KubernetesEmulator) -> None:
    """A rule naming objects allows them only, and never a create (which has no name)."""
    kube.authorize_only(Rule(verbs={"*"}, resources={"secrets"}, names={SECRET}))

    assert kube.allowed("patch", "", "secrets", SECRET)
    assert not kube.allowed("patch", "", "secrets", "other")
    assert not kube.allowed("create", "", "secrets", "")


def test_self_subject_access_review_answers_from_the_rules(kube: KubernetesEmulator) -> None:
    """A SelfSubjectAccessReview says allowed for a granted verb and not for another."""
    kube.authorize_only(Rule(verbs={"patch"}, groups={"apps"}, resources={"deployments"}))
    path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"

    def review(verb: str) -> bool:
        attributes = {"namespace": NAMESPACE, "verb": verb, "group": "apps"}
        attributes |= {"resource": "deployments", "name": "payments-api"}
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes},
        }
        status, reply, _ = http(kube, "POST", path, body)
        assert status == 201
        return bool(reply["status"]["allowed"])

    assert review("patch") is True
    assert review("delete") is False


def test_faults_answer_with_status_and_retry_after_then_stop(kube: KubernetesEmulator) -> None:
    """An injected 429 carries its Retry-After header and applies only to the requests counted."""
    kube.inject_fault(429, method="GET", path_prefix=SECRETS, retry_after=3)

    status, body, headers = http(kube, "GET", f"{SECRETS}/{SECRET}")
    again = http(kube, "GET", f"{SECRETS}/{SECRET}")

    assert (status, body["reason"], headers["Retry-After"]) == (429, "TooManyRequests", "3")
    assert again[0] == 200


def test_clear_faults_drops_the_faults_still_waiting(kube: KubernetesEmulator) -> None:
    """After clear_faults, requests a fault still counted are served normally."""
    kube.inject_fault(503, count=1000)
    kube.inject_fault(500, method="GET", path_prefix=SECRETS, count=1000)
    assert http(kube, "GET", f"{SECRETS}/{SECRET}")[0] == 503

    kube.clear_faults()

    assert http(kube, "GET", f"{SECRETS}/{SECRET}")[0] == 200
    assert http(kube, "GET", f"{SECRETS}/{SECRET}")[0] == 200


def test_requests_are_recorded(kube: KubernetesEmulator) -> None:
    """Every request is recorded with its method, path, query, content type and body."""
    http(kube, "PATCH", f"{SECRETS}/{SECRET}?dryRun=All", {"data": {}}, content_type=SMP)

    [recorded] = kube.requests
    assert (recorded.method, recorded.path, recorded.query) == (
        "PATCH",
        f"{SECRETS}/{SECRET}",
        "dryRun=All",
    )
    assert recorded.content_type == SMP and recorded.body == b'{"data": {}}'
    assert recorded.authenticated


def test_command_line_serves_the_namespaces_asked_for_until_sigterm() -> None:
    """`python -m rotator.sandbox.kubernetes` prints KUBECONFIG, serves, cleans up on SIGTERM."""
    process = subprocess.Popen(
        [sys.executable, "-m", "rotator.sandbox.kubernetes", "--namespace", "payments"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        stdout = process.stdout
        lines: queue.Queue[str] = queue.Queue()

        def read_lines() -> None:
            """Forward the subprocess's output lines to the queue."""
            for line in stdout:
                lines.put(line.strip())

        threading.Thread(target=read_lines, daemon=True).start()
        name, _, value = lines.get(timeout=30).removeprefix("export ").partition("=")
        kubeconfig = Path(value)
        settings = json.loads(kubeconfig.read_text())
        request = urllib.request.Request(
            settings["clusters"][0]["cluster"]["server"] + "/api/v1/namespaces/payments"
        )
        request.add_header("Authorization", f"Bearer {settings['users'][0]['user']['token']}")
        with urllib.request.urlopen(request, timeout=10) as response:
            namespace = json.loads(response.read())
    finally:
        process.terminate()
        process.wait(timeout=20)
        if process.stdout is not None:
            process.stdout.close()
    assert name == "KUBECONFIG"
    assert namespace["metadata"]["name"] == "payments"
    assert process.returncode == 0
    assert not kubeconfig.exists()
