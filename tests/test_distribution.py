"""The distribution name: rotator installs as ``rotator-keys``, not as PyPI's ``rotator``.

``pip install rotator`` resolves to another project ("Piped log rotation
utility", which also ships a ``rotator`` script). Every install instruction
in the repository must therefore name ``rotator-keys``; the import package
and the command stay ``rotator``.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DISTRIBUTION = "rotator-keys"

#: ``pip install`` (any flags) naming the bare ``rotator`` project, with or without extras.
_WRONG = re.compile(
    r"pip3?\s+install\b[^\n]*?(?<![\w./-])[\"']?rotator(?![\w-])(?:\[|[\"'\s=<>~!]|$)",
    re.MULTILINE,
)
_SUFFIXES = {".md", ".yml", ".yaml", ".py", ".toml", ".txt", ".sh", ".cfg", ""}


def _texts() -> list[Path]:
    """Every text file of the checkout, build and tool output excluded."""
    skip = {".git", ".venv", "node_modules", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
    return [
        p
        for p in ROOT.rglob("*")
        if p.is_file()
        and not skip & set(p.relative_to(ROOT).parts)
        and not any(part.endswith(".egg-info") for part in p.relative_to(ROOT).parts)
        and (p.suffix in _SUFFIXES or p.name in {"Dockerfile", "Makefile"})
        and p.stat().st_size < 2_000_000
    ]


def test_the_pattern_catches_the_wrong_install() -> None:
    """The check itself: it flags every way of installing PyPI's ``rotator`` and nothing else."""
    for wrong in (
        "pip install rotator",
        "pip install 'rotator[aws]'",
        'pip install --quiet "rotator[aws,vault]"',
        "pip3 install rotator==0.1.0",
        "pip install -U rotator\n",
    ):
        assert _WRONG.search(wrong), wrong
    for right in (
        "pip install 'rotator-keys[aws]'",
        "pip install rotator-keys==0.1.0",
        "pip install -e '.[aws]'",
        "pip install ./dist/rotator_keys-0.1.0-py3-none-any.whl",
        "pip install 'PyJWT[crypto]'",
    ):
        assert not _WRONG.search(right), right


def test_no_file_tells_users_to_pip_install_rotator() -> None:
    """README, docs, Dockerfile, pipelines and code install ``rotator-keys``, never ``rotator``."""
    found = [
        f"{path.relative_to(ROOT)}: {match.group(0).strip()}"
        for path in _texts()
        if path.name != "test_distribution.py"
        for match in _WRONG.finditer(path.read_text(errors="replace"))
    ]
    assert found == []


def test_pyproject_names_the_distribution_and_keeps_the_command() -> None:
    """The distribution is rotator-keys; the console script and import package stay ``rotator``."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == DISTRIBUTION
    assert project["scripts"] == {"rotator": "rotator.cli.main:main"}
    for extra in ("all", "test"):
        for requirement in project["optional-dependencies"][extra]:
            if requirement.startswith("rotator"):
                assert requirement.startswith(f"{DISTRIBUTION}["), requirement


@pytest.mark.parametrize("document", ["README.md", "docs/getting-started.md"])
def test_the_install_instructions_say_which_name_to_install(document: str) -> None:
    """README and the site's install section warn that the bare name on PyPI is another project."""
    text = (ROOT / document).read_text()
    assert f"pip install '{DISTRIBUTION}[aws]'" in text
    assert "unrelated" in text
