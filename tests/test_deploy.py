"""The container image (Dockerfile) and the Kubernetes manifests (deploy/kubernetes) fit rotator.

Everything here reads the shipped files as they are: the YAML with PyYAML, the
Dockerfile with a small parser of its instructions, the image's hashed lock
(deploy/image/requirements.txt) with tests/locks.py, the CLI through click's
own parser. Nothing is built or applied (there is no Docker engine or cluster
here); ``kubectl kustomize`` renders the manifests when kubectl is installed.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import click
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from rotator.adapters.discovery import registry
from rotator.cli.main import cli
from rotator.policy.loader import load_policies
from tests import locks

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
#: What the image installs besides rotator, pinned and hashed, and its path in the build context.
IMAGE_LOCK_SOURCE = "deploy/image/requirements.txt"
IMAGE_LOCK = ROOT / IMAGE_LOCK_SOURCE
KUBE = ROOT / "deploy" / "kubernetes"
#: The Kubernetes release whose schemas the manifests must satisfy: the oldest
#: one still commonly run (it has CronJob.timeZone and Job.podFailurePolicy).
KUBERNETES_VERSION = "1.29"
#: The two installs: the service (the default) and the CronJob alternative.
SERVICE_INSTALL = KUBE
ONESHOT_INSTALL = KUBE / "oneshot"
#: The extras the image must carry: every provider, Kubernetes targets, PostgreSQL.
#: The image installs every provider, PostgreSQL and MySQL (the ``all`` extra), not the sandbox;
#: its lock is resolved for them (the ``--extra`` of the command in the lock's header).
IMAGE_EXTRAS = {"all"}
METRICS_PORT = 9464
#: The namespace whose pods (Prometheus) may reach the metrics port, by the
#: label the API server sets on every namespace.
MONITORING_NAMESPACE = {"kubernetes.io/metadata.name": "monitoring"}
#: Environment variables whose value is a credential (or, for ROTATOR_STATE,
#: a database URL that carries one): never a literal in a manifest.
CREDENTIAL_ENV = {
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "VAULT_TOKEN",
    "VAULT_SECRET_ID",
    "ROTATOR_STATE",
}
AWS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")
PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
URL_WITH_PASSWORD = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s/:@]+:[^\s/@]+@")
BUILD_TOOLS = re.compile(
    r"\b(?:gcc|g\+\+|clang|cc|make|cmake|build-essential|python3?-dev|libpq-dev|pip)\b"
)


# -- the Kubernetes manifests ---------------------------------------------------


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _kustomization_files() -> list[Path]:
    return sorted(KUBE.rglob("kustomization.yaml"))


def _manifest_files() -> list[Path]:
    files = [*KUBE.rglob("*.yaml"), *KUBE.rglob("*.yml")]
    return sorted(p for p in files if p.name not in {"kustomization.yaml", "kustomization.yml"})


def _objects() -> list[tuple[Path, dict[str, Any]]]:
    return [(path, doc) for path in _manifest_files() for doc in _documents(path)]


def _name(obj: dict[str, Any]) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def _render(directory: Path) -> list[dict[str, Any]]:
    """Collect what kustomize would emit for ``directory`` (resources and components)."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    objects: list[dict[str, Any]] = []
    for entry in [*kustomization.get("resources", []), *kustomization.get("components", [])]:
        path = (directory / entry).resolve()
        objects.extend(_render(path) if path.is_dir() else _documents(path))
    return objects


def _pod_template(obj: dict[str, Any]) -> dict[str, Any] | None:
    if obj["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
        template: dict[str, Any] = obj["spec"]["template"]
        return template
    if obj["kind"] == "CronJob":
        template = obj["spec"]["jobTemplate"]["spec"]["template"]
        return template
    return None


def _workloads() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """Every workload as (kind/name, the object, its pod template)."""
    found = []
    for _, obj in _objects():
        template = _pod_template(obj)
        if template is not None:
            found.append((_name(obj), obj, template))
    return found


def _workload(kind: str) -> tuple[dict[str, Any], dict[str, Any]]:
    [(obj, template)] = [(o, t) for _, o, t in _workloads() if o["kind"] == kind]
    return obj, template


def _rotator_container(template: dict[str, Any]) -> dict[str, Any]:
    """The container running the image's entrypoint (``rotator``), not an init helper."""
    containers: list[dict[str, Any]] = template["spec"]["containers"]
    [container] = [c for c in containers if c["name"] == "rotator"]
    return container


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in container.get("env", [])}


def _mounts(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {mount["mountPath"]: mount for mount in container.get("volumeMounts", [])}


def _volume(template: dict[str, Any], name: str) -> dict[str, Any]:
    volumes: list[dict[str, Any]] = template["spec"].get("volumes", [])
    [volume] = [v for v in volumes if v["name"] == name]
    return volume


def _port(container: dict[str, Any], port: int | str) -> int:
    """Resolve a probe's or Service's port (a number, or a named container port)."""
    if isinstance(port, int):
        return port
    [number] = [p["containerPort"] for p in container["ports"] if p["name"] == port]
    return int(number)


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


# -- the Dockerfile ---------------------------------------------------------------


def _instructions() -> list[tuple[str, str]]:
    """The Dockerfile as (KEYWORD, arguments), continuations joined, comments dropped."""
    instructions = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # also inside a continuation, as Docker does
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, rest = (pending + line).partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continuation"
    return instructions


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for keyword, rest in _instructions():
        if keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword, rest))
    return stages


def _final_stage() -> list[tuple[str, str]]:
    return _stages()[-1]


def _image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, rest in _final_stage():
        if keyword == "ENV":
            words = shlex.split(rest)
            if "=" not in words[0]:  # the legacy form: ENV NAME value
                env[words[0]] = " ".join(words[1:])
                continue
            for word in words:
                name, _, value = word.partition("=")
                env[name] = value
    return env


def _exec_form(keyword: str) -> list[str]:
    [value] = [rest for kw, rest in _final_stage() if kw == keyword]
    words = json.loads(value)
    assert isinstance(words, list), f"{keyword} is not in exec (JSON) form: {value}"
    return [str(word) for word in words]


def _sqlite_directory(url: str) -> str:
    assert url.startswith("sqlite:///"), url
    return str(PurePosixPath(url.removeprefix("sqlite:///")).parent)


# -- the CLI ----------------------------------------------------------------------


def _parse(argv: list[str]) -> dict[str, Any]:
    """Parse a rotator command line with click's own parser, as the CLI would; return its params."""
    name, *rest = argv
    group = click.Context(cli)
    command = cli.get_command(group, name)
    known = cli.list_commands(group)
    assert command is not None, f"rotator has no command {name!r} (has {known})"
    context = command.make_context(f"rotator {name}", list(rest))
    return dict(context.params)


def _invocations() -> list[tuple[str, dict[str, Any]]]:
    """The rotator container of every workload, with where it comes from."""
    return [(where, _rotator_container(template)) for where, _, template in _workloads()]


def _templates() -> list[tuple[str, dict[str, Any]]]:
    return [(where, template) for where, _, template in _workloads()]


def _ids(cases: list[tuple[str, Any]]) -> list[str]:
    return [where for where, _ in cases]


# -- tests: the manifests ------------------------------------------------------------


@pytest.mark.parametrize("path", _manifest_files(), ids=lambda p: str(p.relative_to(KUBE)))
def test_manifest_validates_against_the_kubernetes_schemas(path: Path) -> None:
    """Every object in the manifest file is valid for Kubernetes 1.29, unknown fields refused."""
    kubernetes_validate = pytest.importorskip(
        "kubernetes_validate",
        reason="kubernetes-validate is not installed (it belongs in the test extra)",
    )
    documents = _documents(path)
    assert documents, f"{path} holds no object"
    for document in documents:
        try:
            version = kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(part) for part in exc.path)
            pytest.fail(f"{path.name}: {_name(document)}: {where}: {exc.message}")
        assert version == KUBERNETES_VERSION


def test_every_object_is_named_and_in_the_rotator_namespace() -> None:
    """Each object has a name, and every namespaced one says namespace rotator (kubectl -f too)."""
    objects = _objects()
    assert len(objects) >= 7
    for path, obj in objects:
        assert obj["metadata"].get("name"), f"{path}: an object without a name"
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace") == "rotator", f"{path}: {_name(obj)}"


def test_kustomizations_list_every_manifest_once_and_only_existing_files() -> None:
    """Each manifest file is a resource of exactly one kustomization, and every entry exists."""
    listed: list[Path] = []
    for kustomization_file in _kustomization_files():
        directory = kustomization_file.parent
        kustomization = yaml.safe_load(kustomization_file.read_text())
        for field in ("resources", "components"):
            entries = kustomization.get(field, [])
            assert len(entries) == len(set(entries)), f"{kustomization_file}: duplicate {field}"
            for entry in entries:
                path = (directory / entry).resolve()
                assert path.exists(), f"{kustomization_file}: {field} entry {entry} does not exist"
                if path.is_dir():
                    child = yaml.safe_load((path / "kustomization.yaml").read_text())
                    wanted = "Component" if field == "components" else "Kustomization"
                    assert child["kind"] == wanted, f"{kustomization_file}: {entry} is no {wanted}"
                else:
                    assert field == "resources", f"{kustomization_file}: file {entry} as component"
                    # kustomize's load restrictor: a file must lie under its kustomization.
                    assert path.is_relative_to(directory), f"{kustomization_file}: {entry}"
                    listed.append(path)
    assert sorted(listed) == _manifest_files()


def test_default_install_is_the_service_and_oneshot_install_is_the_cronjob() -> None:
    """The default kustomization runs the Deployment only; oneshot/ runs the CronJob only."""
    service = {obj["kind"] for obj in _render(SERVICE_INSTALL)}
    oneshot = {obj["kind"] for obj in _render(ONESHOT_INSTALL)}
    shared = {"Namespace", "ServiceAccount", "ConfigMap", "NetworkPolicy"}
    assert service == shared | {"Deployment", "Service", "PodDisruptionBudget"}
    assert oneshot == shared | {"CronJob"}


@pytest.mark.parametrize("install", [SERVICE_INSTALL, ONESHOT_INSTALL], ids=["service", "oneshot"])
def test_kustomize_renders_the_install(install: Path) -> None:
    """``kubectl kustomize`` renders the same objects, all in namespace rotator, images set."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    result = subprocess.run(
        [kubectl, "kustomize", str(install)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    rendered = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    assert sorted(_name(o) for o in rendered) == sorted(_name(o) for o in _render(install))
    kustomization = yaml.safe_load((install / "kustomization.yaml").read_text())
    [image] = kustomization["images"]
    for obj in rendered:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "rotator", _name(obj)
        template = _pod_template(obj)
        if template is not None:
            spec = template["spec"]
            for container in [*spec.get("initContainers", []), *spec["containers"]]:
                assert container["image"] == f"{image['newName']}:{image['newTag']}"


def test_workloads_are_one_deployment_and_one_cronjob() -> None:
    """The manifests hold the service's Deployment and the one-shot CronJob, nothing else."""
    assert sorted(name.split("/")[0] for name, _, _ in _workloads()) == ["CronJob", "Deployment"]


@pytest.mark.parametrize(("where", "container"), _invocations(), ids=_ids(_invocations()))
def test_manifest_commands_and_flags_exist(where: str, container: dict[str, Any]) -> None:
    """The rotator command line a workload runs parses with the real CLI's options and types."""
    command = container.get("command")
    assert command in (None, ["rotator"]), f"{where} replaces rotator's entrypoint: {command}"
    argv = [str(arg) for arg in container["args"]]
    params = _parse(argv)
    assert argv[0] == "run"
    assert params["log_format"] == "json", f"{where}: logs must be JSON lines in a pod"


def test_dockerfile_entrypoint_and_command_exist() -> None:
    """The image's ENTRYPOINT is ``rotator`` and its CMD a command the CLI accepts."""
    assert _exec_form("ENTRYPOINT") == ["rotator"]
    command = _exec_form("CMD")
    assert command[0] in cli.list_commands(click.Context(cli))
    _parse(command)


@pytest.mark.parametrize(("where", "template"), _templates(), ids=_ids(_templates()))
def test_pods_are_hardened(where: str, template: dict[str, Any]) -> None:
    """Every pod and container runs non-root, read-only, unprivileged, no capabilities."""
    spec = template["spec"]
    pod = spec["securityContext"]
    assert pod["runAsNonRoot"] is True, where
    assert pod["runAsUser"] == _image_user()[0], where
    assert pod["seccompProfile"]["type"] == "RuntimeDefault", where
    assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC")
    assert all("hostPath" not in volume for volume in spec.get("volumes", [])), where
    for container in [*spec.get("initContainers", []), *spec["containers"]]:
        context = container["securityContext"]
        name = f"{where} container {container['name']}"
        assert context["runAsNonRoot"] is True, name
        assert context.get("runAsUser", pod["runAsUser"]) != 0, name
        assert context["readOnlyRootFilesystem"] is True, name
        assert context["allowPrivilegeEscalation"] is False, name
        assert context.get("privileged") is not True, name
        assert context["capabilities"]["drop"] == ["ALL"], name
        assert not context["capabilities"].get("add"), name
        assert context["seccompProfile"]["type"] == "RuntimeDefault", name
        assert container["resources"]["limits"]["memory"], name
        assert container["resources"]["requests"]["memory"], name


@pytest.mark.parametrize(("where", "template"), _templates(), ids=_ids(_templates()))
def test_grace_period_outlasts_the_shutdown_deadline(where: str, template: dict[str, Any]) -> None:
    """The kubelet's SIGKILL comes at least 10 s after rotator's --shutdown-deadline runs out."""
    params = _parse([str(arg) for arg in _rotator_container(template)["args"]])
    grace = template["spec"]["terminationGracePeriodSeconds"]
    assert grace - params["shutdown_deadline"] >= 10, where


def test_manifests_and_image_hold_no_literal_credential() -> None:
    """No key id, private key or password-bearing URL appears; credential env comes from refs."""
    texts = {path: path.read_text() for path in [*_manifest_files(), DOCKERFILE]}
    for path, text in texts.items():
        assert not AWS_KEY_ID.search(text), f"{path}: an AWS access key id"
        assert not PRIVATE_KEY.search(text), f"{path}: a private key"
    for path, obj in _objects():
        assert obj["kind"] != "Secret", f"{path}: Secrets are created by the operator"
        for text in _strings(obj):
            assert not URL_WITH_PASSWORD.search(text), f"{path}: {_name(obj)}: a URL password"
    image_env = _image_env()
    assert not (CREDENTIAL_ENV - {"ROTATOR_STATE"}) & set(image_env), "a credential in the image"
    assert not URL_WITH_PASSWORD.search(image_env["ROTATOR_STATE"]), "a URL password in the image"
    for where, _, template in _workloads():
        spec = template["spec"]
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            for name, entry in _env(container).items():
                if name in CREDENTIAL_ENV:
                    assert "value" not in entry, f"{where}: {name} is a literal"
        state = _env(_rotator_container(template))["ROTATOR_STATE"]
        assert state["valueFrom"]["secretKeyRef"]["name"], where


@pytest.mark.parametrize(("where", "template"), _templates(), ids=_ids(_templates()))
def test_fingerprint_key_comes_from_one_shared_secret(where: str, template: dict[str, Any]) -> None:
    """Each pod copies the journal's fingerprint key, owner-only, out of the same Secret."""
    spec = template["spec"]
    container = _rotator_container(template)
    key_file = PurePosixPath(_env(container)["ROTATOR_KEY_FILE"]["value"])
    assert str(key_file.parent) in _mounts(container), where
    secrets = [v for v in spec["volumes"] if "secret" in v]
    [secret] = secrets
    assert secret["secret"]["secretName"] == "rotator-fingerprint-key", where
    assert not secret["secret"].get("optional"), f"{where}: a missing key must stop the pod"
    assert secret["name"] not in {m["name"] for m in container["volumeMounts"]}, where
    [init] = [c for c in spec["initContainers"] if secret["name"] in _volume_names(c)]
    [item] = secret["secret"]["items"]
    [source] = [m["mountPath"] for m in init["volumeMounts"] if m["name"] == secret["name"]]
    script = " ".join(init["args"])
    assert f"{source}/{item['path']}" in script and str(key_file) in script, where
    mode = re.search(r"-m (0?[0-7]{3})\b", script)
    assert mode is not None and int(mode.group(1), 8) & 0o077 == 0, f"{where}: key file mode"


def _volume_names(container: dict[str, Any]) -> set[str]:
    return {mount["name"] for mount in container.get("volumeMounts", [])}


def test_configmap_policies_are_valid(tmp_path: Path) -> None:
    """The example policies in the ConfigMap load as rotator would load the mounted directory."""
    [configmap] = [o for _, o in _objects() if o["kind"] == "ConfigMap"]
    for name, text in configmap["data"].items():
        assert name.endswith((".yaml", ".yml")), f"{name}: rotator reads only *.yaml and *.yml"
        (tmp_path / name).write_text(text)
    assert load_policies(tmp_path)
    for where, _, template in _workloads():
        volume = _volume(template, "policies")
        assert volume["configMap"]["name"] == configmap["metadata"]["name"], where


def test_deployment_is_highly_available() -> None:
    """Two replicas, spread over nodes, with a PodDisruptionBudget keeping one up."""
    deployment, template = _workload("Deployment")
    labels = template["metadata"]["labels"]
    assert deployment["spec"]["replicas"] >= 2
    assert _selects(deployment["spec"]["selector"]["matchLabels"], labels)
    spread = template["spec"]["topologySpreadConstraints"]
    by_node = [c for c in spread if c["topologyKey"] == "kubernetes.io/hostname"]
    assert by_node and _selects(by_node[0]["labelSelector"]["matchLabels"], labels)
    [pdb] = [o for _, o in _objects() if o["kind"] == "PodDisruptionBudget"]
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]


def test_probes_metrics_and_service_use_the_listen_port() -> None:
    """Probes (/healthz, /readyz), Prometheus and the Service use the port rotator listens on."""
    _, template = _workload("Deployment")
    container = _rotator_container(template)
    listen = _env(container)["ROTATOR_LISTEN"]["value"]
    assert listen == f"0.0.0.0:{METRICS_PORT}"
    for probe, path in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")]:
        assert container[probe]["httpGet"]["path"] == path
        assert _port(container, container[probe]["httpGet"]["port"]) == METRICS_PORT
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(METRICS_PORT)
    assert annotations["prometheus.io/path"] == "/metrics"
    [service] = [o for _, o in _objects() if o["kind"] == "Service"]
    [port] = service["spec"]["ports"]
    assert service["spec"]["type"] == "ClusterIP"
    assert port["port"] == METRICS_PORT and _port(container, port["targetPort"]) == METRICS_PORT
    assert _selects(service["spec"]["selector"], template["metadata"]["labels"])
    _, cron_template = _workload("CronJob")
    assert not _selects(service["spec"]["selector"], cron_template["metadata"]["labels"])


def test_network_policy_lets_only_monitoring_reach_the_metrics_port() -> None:
    """One NetworkPolicy selects every rotator pod and allows ingress only to 9464 from monitoring.

    /metrics names every secret and its grace deadline, and rotator listens
    on 0.0.0.0 in a pod: without the policy any pod in the cluster could read it.
    """
    [policy] = [o for _, o in _objects() if o["kind"] == "NetworkPolicy"]
    selector = policy["spec"]["podSelector"]["matchLabels"]
    for kind in ("Deployment", "CronJob"):
        _, template = _workload(kind)
        assert _selects(selector, template["metadata"]["labels"]), kind
    assert set(policy["spec"].get("policyTypes", [])) == {"Ingress"}
    [rule] = policy["spec"]["ingress"]
    assert rule["from"] == [{"namespaceSelector": {"matchLabels": MONITORING_NAMESPACE}}]
    assert rule["ports"] == [{"port": METRICS_PORT, "protocol": "TCP"}]
    _, template = _workload("Deployment")
    assert _port(_rotator_container(template), "metrics") == METRICS_PORT


@pytest.mark.parametrize("install", [SERVICE_INSTALL, ONESHOT_INSTALL], ids=["service", "oneshot"])
def test_every_install_carries_the_network_policy(install: Path) -> None:
    """Both installs (the service and the CronJob) apply the NetworkPolicy."""
    assert [o["kind"] for o in _render(install)].count("NetworkPolicy") == 1


def test_cronjob_runs_once_and_its_deadline_covers_a_hung_provider(tmp_path: Path) -> None:
    """The CronJob never overlaps itself and outlasts a worst-case step, IAM and propagation."""
    from providers.aws.clients import client_config
    from providers.aws.iam import AccessKeyConfig
    from rotator.engine.retry import RetryPolicy

    cronjob, template = _workload("CronJob")
    job = cronjob["spec"]["jobTemplate"]["spec"]
    assert "--once" in _rotator_container(template)["args"]
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    assert cronjob["spec"]["startingDeadlineSeconds"] >= 10  # below 10 s runs can be missed
    assert template["spec"]["restartPolicy"] == "Never"
    assert isinstance(job["backoffLimit"], int)

    config: Any = client_config()
    sdk_attempts = config.retries["max_attempts"] + 1  # botocore counts retries
    per_call = sdk_attempts * (config.connect_timeout + config.read_timeout)
    per_call += sum(min(2**n, 20) for n in range(sdk_attempts - 1))  # standard-mode backoff
    retry = RetryPolicy()
    step = retry.attempts * per_call + sum(retry.delay(n, None) for n in range(1, retry.attempts))
    iam_verify = AccessKeyConfig.model_fields["verify_timeout"].default.total_seconds()
    [configmap] = [o for _, o in _objects() if o["kind"] == "ConfigMap"]
    for name, text in configmap["data"].items():
        (tmp_path / name).write_text(text)
    propagation = max(p.propagation_delay.total_seconds() for p in load_policies(tmp_path))
    assert job["activeDeadlineSeconds"] >= step + iam_verify + propagation
    assert job["activeDeadlineSeconds"] < 3600  # inside the hour between runs


# -- tests: the Dockerfile -------------------------------------------------------------


def _image_user() -> tuple[int, int]:
    [user] = [rest for keyword, rest in _final_stage() if keyword == "USER"]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and gid.isdigit(), f"USER {user}: numeric, so runAsNonRoot can check it"
    return int(uid), int(gid)


def test_dockerfile_runs_as_a_numeric_non_root_user() -> None:
    """The final stage switches to a numeric UID and GID other than root, as the pods expect."""
    uid, gid = _image_user()
    assert uid != 0 and gid != 0
    for _, _, template in _workloads():
        assert template["spec"]["securityContext"]["runAsGroup"] == gid


def test_dockerfile_is_multistage_on_a_pinned_slim_python() -> None:
    """A builder and a final stage, both on the same python:3.11-slim tag, never latest."""
    stages = _stages()
    assert len(stages) >= 2
    bases = [stage[0][1].split()[0] for stage in stages]
    assert all(base.startswith("python:3.11-slim") for base in bases), bases
    assert len(set(bases)) == 1, "the venv's interpreter path must exist in the final image"


def test_dockerfile_final_stage_has_no_build_tools() -> None:
    """The final stage installs nothing: no compiler or pip, and copies only the builder's venv."""
    final = _final_stage()
    for keyword, rest in final:
        if keyword == "RUN":
            assert not BUILD_TOOLS.search(rest), rest
            assert "apt-get" not in rest and "apk " not in rest, rest
        if keyword in {"COPY", "ADD"}:
            words = rest.split()
            assert keyword == "COPY" and words[0].startswith("--from="), rest
            assert words[1:] == ["/opt/rotator/venv", "/opt/rotator/venv"], rest
    assert _image_env()["PATH"].startswith("/opt/rotator/venv/bin:")


def _pip_commands(stage: list[tuple[str, str]], subcommand: str) -> list[tuple[str, list[str]]]:
    """Return each ``pip SUBCOMMAND`` a stage runs as (the pip it runs, the words after it)."""
    found = []
    for keyword, rest in stage:
        if keyword != "RUN":
            continue
        words = shlex.split(rest)
        command: list[str] = []
        for word in [*words, "&&"]:
            if word not in {"&&", "||", ";", "|"}:
                command.append(word)
                continue
            for start, program in enumerate(command[:-1]):
                if PurePosixPath(program).name in {"pip", "pip3"}:
                    if command[start + 1] == subcommand:
                        found.append((program, command[start + 2 :]))
                    break
            command = []
    return found


def _copies(stage: list[tuple[str, str]]) -> list[tuple[list[str], str]]:
    """Return each COPY from the build context as (its sources, its destination)."""
    found = []
    for keyword, rest in stage:
        words = rest.split()
        if keyword == "COPY" and not words[0].startswith("--from="):
            found.append((words[:-1], words[-1]))
    return found


def _image_python() -> str:
    """Return the Python (``3.11``) of the image's base, ``python:3.11-slim-...``."""
    base = _final_stage()[0][1].split()[0]
    found = re.fullmatch(r"python:(\d+\.\d+)-slim\S*", base)
    assert found, f"the base is no python:X.Y-slim image: {base}"
    return found.group(1)


def _image_roots() -> list[Requirement]:
    """Return what the image lock must hold: rotator's dependencies, extras and build backend."""
    build = locks.project()["build-system"]["requires"]
    return [*locks.declared(IMAGE_EXTRAS), *(Requirement(text) for text in build)]


def test_dockerfile_installs_the_locked_dependencies_then_rotator_without_deps() -> None:
    """The builder installs the lock with hashes required, then its own wheel of rotator alone.

    Before the lock, ``pip install wheel[all]`` installed whatever versions
    resolved on the day of the build: two builds a month apart differed.
    """
    builder = _stages()[0]
    installs = _pip_commands(builder, "install")
    [first, *others] = installs
    lock_pip, words = first
    assert locks.option(words, "-r"), "the first install is not the lock's"
    assert "--require-hashes" in words, "the lock is installed without --require-hashes"
    assert locks.option(words, "--only-binary") == ":all:", "the lock may build from source"
    [destination] = [dest for sources, dest in _copies(builder) if IMAGE_LOCK_SOURCE in sources]
    assert locks.option(words, "-r") == destination, "installs another file than the lock"
    values = {":all:", destination}
    assert [w for w in words if not w.startswith("-") and w not in values] == []
    for name in ("--index-url", "--extra-index-url", "-i", "--find-links", "-f", "-e"):
        assert locks.option(words, name) is None, f"the lock's install takes {name}"
    [(build_pip, built)] = _pip_commands(builder, "wheel")
    assert build_pip == lock_pip, "rotator's wheel is built outside the venv the lock went into"
    assert {"--no-deps", "--no-build-isolation"} <= set(built), "a build fetches unhashed tools"
    wheels = locks.option(built, "--wheel-dir")
    assert wheels, "rotator's wheel goes to no known directory"
    assert others, "rotator itself is never installed"
    for pip, rest in others:
        assert pip == lock_pip, f"{pip}: installs into another environment"
        assert "--no-deps" in rest, f"pip install {' '.join(rest)}: installs unlocked packages"
        named = [w for w in rest if not w.startswith("-")]
        assert named == [f"{wheels}/rotator_keys-*.whl"], f"installs {named}, not rotator's wheel"


def test_dockerignore_sends_every_file_the_dockerfile_copies() -> None:
    """Each COPY from the build context names a path .dockerignore lets through (the lock too)."""
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def sent(path: str) -> bool:
        parts = PurePosixPath(path).parts
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        verdict = True
        for pattern in patterns:
            keep = pattern.startswith("!")
            body = pattern.removeprefix("!").rstrip("/")
            if any(fnmatch.fnmatchcase(prefix, body) for prefix in prefixes):
                verdict = keep
        return verdict

    copied = [source for stage in _stages() for sources, _ in _copies(stage) for source in sources]
    assert IMAGE_LOCK_SOURCE in copied
    for source in copied:
        assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
        assert sent(source.rstrip("/")), f"COPY {source}: .dockerignore keeps it out of the build"
    assert not sent(".venv") and not sent("tests/test_deploy.py"), "the matcher lets all through"


def test_the_image_lock_pins_and_hashes_every_requirement() -> None:
    """Every line is ``name==version`` with sha256 hashes, no option or URL, and no rotator.

    rotator is built in the image from the tree being built: it has no
    published file whose hash the lock could hold.
    """
    requirements = locks.requirements(IMAGE_LOCK)
    assert len(requirements) >= 30
    for requirement in requirements:
        assert locks.LOCKED.fullmatch(requirement), f"unpinned, unhashed or odd: {requirement}"
    assert locks.PROJECT not in locks.pins(IMAGE_LOCK)


def test_the_image_lock_was_made_for_the_image() -> None:
    """The header's command resolves the image's extras for its Python, on Linux, wheels only."""
    words = locks.command(IMAGE_LOCK)
    assert set(locks.options(words, "--extra")) == IMAGE_EXTRAS
    assert locks.option(words, "--python-version") == _image_python(), "re-lock for the new base"
    platform = locks.option(words, "--python-platform") or ""
    assert re.fullmatch(r"(?:x86_64|aarch64)-manylinux_2_\d+", platform), platform
    assert locks.option(words, "--only-binary") == ":all:" and "--generate-hashes" in words
    assert locks.option(words, "-o") == str(IMAGE_LOCK.relative_to(ROOT))


def test_the_image_lock_satisfies_rotator_its_extras_and_its_build_backend() -> None:
    """Each dependency of rotator and of ``all`` (and setuptools) is locked at a version it allows.

    So is every package those need in turn, as far as this environment has
    their metadata (the ones installed here at the locked version): the lock
    is stale, and this fails, when pyproject.toml asks for something it lacks.
    """
    locked = locks.pins(IMAGE_LOCK)
    walked = locks.walk(_image_roots(), locked, _image_python())
    assert walked.problems == [], "re-lock (see the lock's header)"
    # What psycopg[binary] and PyJWT[crypto] add: the C build of libpq, the JWT signer.
    assert {"psycopg-binary", "cryptography"} <= set(locked)


def test_the_image_lock_holds_nothing_that_nothing_needs() -> None:
    """Every pin is needed by pyproject.toml or by another pin (the generator's ``# via``)."""
    unneeded = locks.unneeded(_image_roots(), locks.pins(IMAGE_LOCK))
    assert unneeded == set(), f"no longer needed: {sorted(unneeded)}; re-lock"


def test_the_lock_checks_catch_a_stale_lock(tmp_path: Path) -> None:
    """A lock missing a dependency, pinning one its specifier refuses, or holding an extra fails.

    Each is compared with the shipped lock, so this holds whether that is fresh or not.
    """
    text = IMAGE_LOCK.read_text()
    roots = _image_roots()
    python = _image_python()
    shipped = locks.pins(IMAGE_LOCK)
    known = set(locks.walk(roots, shipped, python).problems)

    def problems(edited: str) -> set[str]:
        path = tmp_path / "requirements.txt"
        path.write_text(edited)
        return set(locks.walk(roots, locks.pins(path), python).problems) - known

    without_hvac = re.sub(r"(?m)^hvac==.*\n(?:[ #].*\n)*", "", text)
    assert without_hvac != text
    found = problems(without_hvac)
    assert found and all(problem.startswith("hvac") for problem in found), found
    found = problems(re.sub(r"(?m)^pydantic==\S+", "pydantic==1.10.0", text))
    assert any(p.startswith("pydantic") and "1.10.0" in p for p in found), found
    unneeded = locks.unneeded(roots, shipped)
    path = tmp_path / "extra.txt"
    path.write_text(
        f"{text}left-pad==1.0 \\\n    --hash=sha256:{'0' * 64}\n    # via {locks.PROJECT}\n"
    )
    assert locks.unneeded(roots, locks.pins(path)) - unneeded == {"left-pad"}
    assert "hvac" in {root.name for root in roots}, "the demonstration needs hvac among them"
    fewer = [root for root in roots if root.name != "hvac"]
    assert locks.unneeded(fewer, shipped) - unneeded == {"hvac"}


def test_the_image_installs_what_every_adapter_needs() -> None:
    """Each installed adapter's extra is in the image's, and what it imports is in the image lock.

    The image once lacked ``github`` and ``azure-apim``, so GitHub Actions
    targets and APIM subscriptions, both advertised, could not run in it.
    """
    installed = locks.expanded(IMAGE_EXTRAS)
    assert "sandbox" not in installed, "local servers have no place in the production image"
    found = registry()
    adapters = [
        *found.stores.values(),
        *found.issuers.values(),
        *found.targets.values(),
        *found.verifiers.values(),
        *found.notifiers.values(),
    ]
    needed = {adapter.extra for adapter in adapters if adapter.extra}
    assert needed, "no adapter declares an extra: the registry did not load"
    assert needed <= installed, f"the image lacks {sorted(needed - installed)}"
    locked = locks.pins(IMAGE_LOCK)
    imported = {name for adapter in adapters for name in adapter.requires}
    assert len(imported) >= 5, "no adapter says what it imports: the registry did not load"
    for adapter in adapters:
        for name in adapter.requires:
            assert canonicalize_name(name) in locked, f"{adapter.__name__}: {name} is not locked"
    walked = locks.walk([Requirement(name) for name in sorted(imported)], locked, _image_python())
    assert walked.problems == [], "what an adapter imports needs packages the lock lacks"


def test_dockerfile_environment_defaults() -> None:
    """The image's defaults: policies, SQLite journal, listen address and Python settings."""
    env = _image_env()
    assert env["ROTATOR_CONFIG"] == "/etc/rotator/schedules"
    assert env["ROTATOR_STATE"] == "sqlite:////var/lib/rotator/rotator.db"
    assert env["ROTATOR_LISTEN"] == f"0.0.0.0:{METRICS_PORT}"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1" and env["PYTHONUNBUFFERED"] == "1"
    assert [rest for keyword, rest in _final_stage() if keyword == "EXPOSE"] == [str(METRICS_PORT)]
    created = " ".join(rest for keyword, rest in _final_stage() if keyword == "RUN")
    assert _sqlite_directory(env["ROTATOR_STATE"]) in created
    assert env["ROTATOR_CONFIG"] in created


@pytest.mark.parametrize(("where", "template"), _templates(), ids=_ids(_templates()))
def test_dockerfile_paths_are_the_pods_mounts(where: str, template: dict[str, Any]) -> None:
    """Policies, state, HOME and TMPDIR as the image sets them are mounted in the pods."""
    env = _image_env()
    container = _rotator_container(template)
    mounts = _mounts(container)
    overrides = {name: entry.get("value") for name, entry in _env(container).items()}
    config = mounts[env["ROTATOR_CONFIG"]]
    assert "configMap" in _volume(template, config["name"]), where
    assert overrides.get("ROTATOR_CONFIG", env["ROTATOR_CONFIG"]) == env["ROTATOR_CONFIG"]
    assert _sqlite_directory(env["ROTATOR_STATE"]) in mounts, where
    for variable in ("HOME", "TMPDIR"):
        assert variable not in overrides or overrides[variable] == env[variable], where
        mount = mounts[env[variable]]
        assert not mount.get("readOnly"), f"{where}: {variable} must be writable"
        assert "emptyDir" in _volume(template, mount["name"]), where


def test_click_rejects_an_unknown_flag() -> None:
    """The command-line check used above fails on a flag rotator does not have."""
    with pytest.raises(click.NoSuchOption):
        _parse(["run", "--no-such-flag"])
