"""Shipped test tools for adapter authors: the role contract suites and reference adapters.

- :mod:`.store`, :mod:`.issuer`, :mod:`.target`, :mod:`.verifier`: one
  contract suite per role (``StoreContract``, ``IssuerContract``,
  ``TargetContract``, ``VerifierContract``), each a class of pytest tests an
  author subclasses with a fixture building the adapter under test and hooks
  that look at its system from outside (docs/providers/writing-an-adapter.md);
- :mod:`.reference`: a Store, an Issuer, a Target and a Verifier kept in
  memory that keep every promise of their role, usable as fakes;
- :mod:`.service`: the in-memory system those adapters call;
- :mod:`.values`: rotation ids, fresh values, and the check that a text
  hides them.

This package imports pytest, which a test run has; rotator itself never
imports it (an import-linter contract in pyproject.toml says so).
"""

import pytest

# The suites' asserts live here, not in the author's test module: have pytest
# rewrite them too, so a failing promise shows the values compared.
pytest.register_assert_rewrite(
    "rotator.testing.issuer",
    "rotator.testing.store",
    "rotator.testing.target",
    "rotator.testing.values",
    "rotator.testing.verifier",
)

from rotator.testing.issuer import IssuerContract  # noqa: E402
from rotator.testing.reference import (  # noqa: E402
    MemoryIssuer,
    MemoryStore,
    MemoryTarget,
    MemoryVerifier,
)
from rotator.testing.service import MemoryService, forget, service  # noqa: E402
from rotator.testing.store import StoreContract  # noqa: E402
from rotator.testing.target import TargetContract  # noqa: E402
from rotator.testing.values import assert_hidden, fresh_value, new_rotation_id  # noqa: E402
from rotator.testing.verifier import VerifierContract  # noqa: E402

__all__ = [
    "IssuerContract",
    "MemoryIssuer",
    "MemoryService",
    "MemoryStore",
    "MemoryTarget",
    "MemoryVerifier",
    "StoreContract",
    "TargetContract",
    "VerifierContract",
    "assert_hidden",
    "forget",
    "fresh_value",
    "new_rotation_id",
    "service",
]
