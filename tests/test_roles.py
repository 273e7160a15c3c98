"""The roles' contracts: every method says what it raises; values of one type go by keyword."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

import pytest

import rotator.errors
from rotator.adapters.discovery import registry
from rotator.adapters.replica import StoreReplica
from rotator.adapters.roles import Adapter, Issuer, Notifier, Store, Target, Verifier

ROLES: tuple[type[Adapter[Any]], ...] = (Adapter, Store, Issuer, Target, Verifier, Notifier)
#: One line of a ``Raises:`` section: ``    NotFoundError: the secret does not exist.``
RAISED = re.compile(r"^\s{4}(\w+):", re.MULTILINE)


def _methods() -> list[tuple[str, Callable[..., Any]]]:
    return [
        (f"{role.__name__}.{name}", member)
        for role in ROLES
        for name, member in vars(role).items()
        if inspect.isfunction(member) and not name.startswith("_")
    ]


@pytest.mark.parametrize(("name", "method"), _methods(), ids=[n for n, _ in _methods()])
def test_every_role_method_says_what_it_raises(name: str, method: Callable[..., Any]) -> None:
    """A ``Raises:`` section naming errors of rotator's tree, or ``Raises nothing``."""
    doc = inspect.getdoc(method) or ""
    if "Raises nothing" in doc:
        return
    assert "\nRaises" in doc, f"{name} does not say what it raises"
    section = doc.split("\nRaises", 1)[1].split(":", 1)[1]
    raised = RAISED.findall(section)
    assert raised, f"{name}: the Raises section names no error"
    for error in raised:
        found = getattr(rotator.errors, error, None)
        assert isinstance(found, type), f"{name}: {error} is not in rotator.errors"
        assert issubclass(found, rotator.errors.RotatorError), f"{name}: {error}"


def _keyword_only(method: Callable[..., Any], *names: str) -> bool:
    parameters = inspect.signature(method).parameters
    return all(parameters[n].kind is inspect.Parameter.KEYWORD_ONLY for n in names)


def test_every_target_takes_the_written_and_previous_values_by_keyword() -> None:
    """Swapping them would put the new credential back; every installed target refuses it."""
    targets = [*registry().targets.values(), StoreReplica, Target]
    for target in targets:
        assert _keyword_only(target.restore, "written", "previous"), target


def test_every_issuer_takes_known_and_pending_by_keyword() -> None:
    """A rotation id is a ``str``, which is a ``Collection[str]``: ``known`` goes by keyword."""
    for issuer in [*registry().issuers.values(), Issuer]:
        assert _keyword_only(issuer.recover, "known", "pending"), issuer
