"""docs/providers/writing-an-adapter.md: its example adapter passes the whole contract it claims."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from rotator.adapters import ProviderConfig, Quota, Target, rates
from rotator.testing import TargetContract

DOC = Path(__file__).resolve().parent.parent / "docs" / "providers" / "writing-an-adapter.md"


def python_blocks(text: str) -> list[str]:
    """Return the fenced ```python blocks of a Markdown text, in order."""
    return re.findall(r"^```python\n(.*?)^```$", text, re.S | re.M)


def test_the_example_target_passes_every_test_of_its_contract(tmp_path: Path) -> None:
    """The doc's adapter and its test, run by pytest as an author would, pass the contract."""
    text = DOC.read_text()
    blocks = python_blocks(text)
    assert len(blocks) == 2, "the doc's example is an adapter block and a test block"
    module = tmp_path / "test_example_adapter.py"
    module.write_text("\n\n".join(blocks))
    promised = len([name for name in dir(TargetContract) if name.startswith("test_")])
    assert f"runs the {promised} tests of `TargetContract`" in text, "the doc's count is stale"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(module)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(rf"\b{promised} passed\b", run.stdout), run.stdout


def test_the_quota_declaration_it_shows_gives_the_quotas_it_says() -> None:
    """The ``Quota`` fragment of "Quotas and settings" runs, and its ``quotas`` is as commented."""
    [fragment] = re.findall(r"^    ```python\n(.*?)^    ```$", DOC.read_text(), re.S | re.M)
    scope: dict[str, object] = {
        "Quota": Quota,
        "rates": rates,
        "Target": Target,
        "PagerConfig": type("PagerConfig", (ProviderConfig,), {}),
    }
    exec(textwrap.dedent(fragment), scope)  # the doc's own code, as a reader would paste it
    said = re.search(r"quotas = rates\(QUOTAS\)  # (\{.*\})", fragment)
    assert said is not None
    assert getattr(scope["PagerTarget"], "quotas") == ast.literal_eval(said[1])
