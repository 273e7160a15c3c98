"""Layering rules that import-linter cannot express."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_schedule_module_touches_apscheduler() -> None:
    """APScheduler is imported by rotator/policy/cron.py and by no other module."""
    users = {
        str(p.relative_to(ROOT))
        for package in ("rotator", "providers")
        for p in (ROOT / package).rglob("*.py")
        if "apscheduler" in _imports(p)
    }
    assert users == {"rotator/policy/cron.py"}


def test_loading_policies_imports_no_sdk() -> None:
    """Loading the registry and a policy imports no provider SDK (they are imported lazily)."""
    code = (
        "import sys\n"
        "from rotator.adapters.discovery import registry\n"
        "from rotator.policy.loader import load_policies\n"
        "registry()\n"
        "load_policies('schedules')\n"
        "print(sorted(m for m in ('boto3', 'botocore', 'hvac', 'azure', 'moto', 'kubernetes') "
        "if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_no_provider_module_imports_another_modules_private_names() -> None:
    """Under providers/, no ``from X import _name``: what adapters share is public."""
    found = []
    for path in sorted((ROOT / "providers").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                found += [
                    f"{path.relative_to(ROOT)}: {node.module}.{alias.name}"
                    for alias in node.names
                    if alias.name.startswith("_") and not alias.name.startswith("__")
                ]
    assert found == []


def test_the_sdk_face_offers_every_name_providers_take_from_rotator() -> None:
    """What providers import from rotator (besides rotator.errors) is all in ``rotator.adapters``.

    So an adapter can import ``rotator.adapters`` and ``rotator.errors`` alone.
    rotator's version reaches adapters as ``USER_AGENT``; the AWS account's
    cache key is the one import the layering contract still tolerates.
    """
    import rotator.adapters as face

    taken: set[str] = set()
    for path in (ROOT / "providers").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.split(".")[0] == "rotator"
                and node.module != "rotator.errors"
            ):
                taken |= {alias.name for alias in node.names}
    replaced = {"__version__": "USER_AGENT", "AWS_ACCOUNT": None}
    needed = {replaced.get(name, name) for name in taken} - {None}
    assert needed <= set(face.__all__)
    assert all(hasattr(face, name) for name in face.__all__)


#: What shows a provider's format: an AWS key id's prefix, IAM's policy version,
#: the RBAC API group, an Azure role's actions, a Vault ACL rule.
PROVIDER_FORMATS = (
    "AKIA",
    "2012-10-17",
    "rbac.authorization.k8s.io",
    "Microsoft.KeyVault",
    "capabilities = [",
)


def test_the_core_knows_no_provider_format() -> None:
    """Permission documents and key formats live with the providers; only emulators know them."""
    found = {
        (str(p.relative_to(ROOT)), marker)
        for p in (ROOT / "rotator").rglob("*.py")
        if "sandbox" not in p.relative_to(ROOT).parts
        for marker in PROVIDER_FORMATS
        if marker in p.read_text()
    }
    assert found == set()
