"""docs/design.md agrees with the code: the exception tree drawn there, the invariants cited."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import providers
import rotator
from rotator.errors import RotatorError

ROOT = Path(__file__).resolve().parent.parent
DESIGN = ROOT / "docs" / "design.md"
#: One line of the drawn tree: its branches, then the class name, then what it means.
TREE_LINE = re.compile(r"^(?P<indent>(?:│   |    )*)(?:├── |└── )?(?P<name>\w+)")
#: A citation of an invariant, in code, tests or docs: ``invariant`` and its number.
CITATION = re.compile(r"\binvariants? (\d+)\b", re.IGNORECASE)
#: A numbered invariant in docs/design.md: ``4. **One rotation of a secret at a time.**``
NUMBERED = re.compile(r"^(\d+)\. \*\*", re.MULTILINE)


def _section(title: str) -> str:
    text = DESIGN.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def drawn_tree() -> dict[str, str | None]:
    """Return each class drawn in "The exception tree" with the class drawn as its parent."""
    block = _section("The exception tree").split("```\n")[1]
    parents: dict[str, str | None] = {}
    path: list[str] = []
    for line in block.splitlines():
        match = TREE_LINE.match(line)
        assert match, f"not a line of the tree: {line!r}"
        depth = len(match["indent"]) // 4 + (1 if line[len(match["indent"]) :][:1] in "├└" else 0)
        name = match["name"]
        assert name not in parents, f"{name} is drawn twice"
        del path[depth:]
        parents[name] = path[-1] if path else None
        path.append(name)
    return parents


def code_tree() -> dict[str, str | None]:
    """Return every RotatorError subclass of rotator and providers with its parent class."""
    for package in (rotator, providers):
        for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if not module.name.endswith("__main__"):
                importlib.import_module(module.name)
    parents: dict[str, str | None] = {RotatorError.__name__: None}
    waiting = [RotatorError]
    while waiting:
        parent = waiting.pop()
        for child in parent.__subclasses__():
            if child.__module__.split(".")[0] not in ("rotator", "providers"):
                continue  # a test's own subclass
            assert child.__name__ not in parents, f"two RotatorError classes named {child.__name__}"
            parents[child.__name__] = parent.__name__
            waiting.append(child)
    return parents


def test_the_drawn_exception_tree_is_the_class_hierarchy() -> None:
    """Every class is drawn under its parent, and every drawn class exists where it is drawn."""
    drawn, found = drawn_tree(), code_tree()

    assert sorted(set(found) - set(drawn)) == [], "classes missing from docs/design.md"
    assert sorted(set(drawn) - set(found)) == [], "drawn in docs/design.md but not in the code"
    assert drawn == found


def test_the_tree_parser_sees_the_nesting() -> None:
    """The drawing is read as a tree, not as a list (else the comparison above proves little)."""
    drawn = drawn_tree()

    assert drawn["RotatorError"] is None
    assert drawn["TokenRejectedError"] == "PermissionDeniedError"
    assert drawn["StillInUseError"] == "RotatorError"
    assert drawn["ConflictRetry"] == "TransientError"


def _citations() -> dict[str, set[int]]:
    """Return, per line citing an invariant, the numbers it cites (docs/design.md left out)."""
    files = [ROOT / "README.md"]
    for folder in ("rotator", "providers", "tests", "docs", "benchmarks", "deploy"):
        files += [
            p for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".md", ".yaml", ".yml")
        ]
    cited: dict[str, set[int]] = {}
    for path in files:
        if path == DESIGN:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            numbers = {int(n) for n in CITATION.findall(line)}
            if numbers:
                cited[f"{path.relative_to(ROOT)}:{number}: {line.strip()}"] = numbers
    return cited


def test_every_cited_invariant_is_numbered_in_design() -> None:
    """An "invariant N" anywhere is a numbered statement of docs/design.md, and says where."""
    numbered = {int(n) for n in NUMBERED.findall(_section("The invariants"))}
    cited = _citations()

    assert numbered == set(range(1, len(numbered) + 1)), "invariants are numbered 1, 2, 3..."
    assert cited, "nothing cites an invariant: the search is broken"
    for where, numbers in cited.items():
        assert numbers <= numbered, f"{where}: no such invariant in docs/design.md"
        assert "docs/design.md" in where, f"{where}: cite it as 'invariant N of docs/design.md'"
