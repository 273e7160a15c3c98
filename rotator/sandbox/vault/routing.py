"""Routing primitives: a backend's routes, and everything a handler gets about one request."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from rotator.sandbox.vault.mounts import Mount, Namespace
from rotator.sandbox.vault.protocol import JSONDict, Reply

if TYPE_CHECKING:
    from rotator.sandbox.vault.state import Core, Token

Handler = Callable[["Call"], Reply]


@dataclass(frozen=True)
class Route:
    """One backend path: its pattern (relative to the mount) and what each operation does."""

    pattern: re.Pattern[str]
    operations: Mapping[str, Handler]
    exists: Callable[[Call], bool] | None = None
    unauthenticated: bool = False
    sudo: bool = False


def route(
    pattern: str,
    operations: Mapping[str, Handler],
    exists: Callable[[Call], bool] | None = None,
    *,
    unauthenticated: bool = False,
    sudo: bool = False,
) -> Route:
    """Build a Route from a regular expression matched against the whole relative path."""
    return Route(re.compile(pattern + r"\Z"), operations, exists, unauthenticated, sudo)


@dataclass
class Call:
    """Everything a handler needs about one request."""

    core: Core
    namespace: Namespace
    mount: Mount | None
    path: str
    relative: str
    params: dict[str, str]
    operation: str
    data: JSONDict
    token: Token | None
    now: datetime
    remote_addr: str
    content_type: str

    def param(self, name: str) -> str:
        """A named group of the route pattern (empty when it did not participate)."""
        return self.params.get(name) or ""
