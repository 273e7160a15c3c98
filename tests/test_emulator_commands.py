"""The emulators' command lines seed what a policy needs: no Python to write first."""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from azure.identity import ManagedIdentityCredential
from azure.mgmt.apimanagement import ApiManagementClient
from kubernetes import client, config

AZURE = "6c0d2b1a-9e8f-4a7b-8c6d-5e4f3a2b1c0d"


@contextmanager
def serving(module: str, *args: str) -> Iterator[dict[str, str]]:
    """Run ``python -m MODULE ARGS``; yield the exports it prints; SIGTERM it, expect exit 0."""
    server = subprocess.Popen(
        [sys.executable, "-m", module, "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        exports: dict[str, str] = {}
        for line in server.stdout:
            name, _, value = line.removeprefix("export ").strip().partition("=")
            [exports[name]] = shlex.split(value)
            if module.endswith("kubernetes") or name == "IDENTITY_HEADER":
                break  # the last line it prints before serving
        yield exports
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_kubernetes_workloads_and_secrets_are_created_from_the_command_line() -> None:
    """``--deployment``/``--statefulset``/``--daemonset``/``--secret NS/NAME`` exist once served."""
    with serving(
        "rotator.sandbox.kubernetes",
        "--deployment",
        "shop/api",
        "--statefulset",
        "shop/db",
        "--daemonset",
        "ops/agent",
        "--secret",
        "shop/api-token",
    ) as exports:
        api = config.new_client_from_config(config_file=exports["KUBECONFIG"])
        apps = client.AppsV1Api(api)
        assert apps.read_namespaced_deployment("api", "shop").spec.replicas == 1
        # Read raw: the emulator's status lacks fields the client's models require of these.
        for read, name, namespace in (
            (apps.read_namespaced_stateful_set, "db", "shop"),
            (apps.read_namespaced_daemon_set, "agent", "ops"),
        ):
            answer = json.loads(read(name, namespace, _preload_content=False).data)
            assert answer["metadata"]["name"] == name
        assert client.CoreV1Api(api).read_namespaced_secret("api-token", "shop").type == "Opaque"


def test_a_bad_workload_place_is_refused_with_the_expected_form() -> None:
    """``--deployment api`` (no namespace) exits 2 saying what is expected."""
    refused = subprocess.run(
        [sys.executable, "-m", "rotator.sandbox.kubernetes", "--deployment", "api"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert refused.returncode == 2
    assert "expected NAMESPACE/NAME, such as demo/api, not 'api'" in refused.stderr


def test_apim_subscriptions_are_created_from_the_command_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``--apim-subscription SERVICE/SID`` makes one a management client can list keys of."""
    with serving(
        "rotator.sandbox.azure",
        "--apim-subscription",
        "shop-apim/partner",
        "--azure-subscription",
        AZURE,
        "--resource-group",
        "rg-shop",
    ) as exports:
        for name in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER"):
            monkeypatch.setenv(name, exports[name])
        monkeypatch.delenv("MSI_ENDPOINT", raising=False)
        management = ApiManagementClient(
            ManagedIdentityCredential(),
            AZURE,
            base_url=exports["AZURE_KEYVAULT_URL"],
            connection_verify=exports["REQUESTS_CA_BUNDLE"],
            retry_total=0,
        )
        keys = management.subscription.list_secrets("rg-shop", "shop-apim", "partner")
        assert keys.primary_key and keys.secondary_key
        assert keys.primary_key != keys.secondary_key
