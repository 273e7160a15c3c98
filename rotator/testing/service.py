"""An outside system kept in memory, which the reference adapters call and a test looks into.

A :class:`MemoryService` holds what a real provider would: versioned secrets
(for :class:`~rotator.testing.reference.MemoryStore`), credentials it issued
(for :class:`~rotator.testing.reference.MemoryIssuer`), places consumers read
a value from (for :class:`~rotator.testing.reference.MemoryTarget`), and
values a consumer accepts (for
:class:`~rotator.testing.reference.MemoryVerifier`). A test uses its public
methods as another writer, a consumer or an operator would, behind the
adapters' backs, and turns :attr:`~MemoryService.outage` or
:attr:`~MemoryService.denied` on to make every adapter call fail.

Adapters find their service by name (the ``service`` field of their policy
block), so a policy file can point the engine at one: :func:`service` returns
the one of that name, made on first use; :func:`forget` drops it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from rotator.adapters import Clock, SecretValue
from rotator.errors import NotFoundError, PermissionDeniedError, TransientError

#: The provider name every reference adapter's errors carry.
PROVIDER = "memory"


def _wall_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class StoredVersion:
    """One version of a secret: its value, when it was written, and by which rotation."""

    value: SecretValue
    created_at: datetime
    #: The rotation that staged it; ``None`` for a value someone else wrote.
    rotation_id: str | None = None
    #: The current version when it was staged: promote refuses if that changed.
    base: str | None = None


@dataclass
class StoredSecret:
    """A secret's versions and labels: which is current, which previous, which pending."""

    versions: dict[str, StoredVersion] = field(default_factory=dict)
    current: str | None = None
    previous: str | None = None
    #: Rotation ids whose staged version is pending.
    pending: set[str] = field(default_factory=set)
    #: The version each rotation staged, by rotation id.
    staged: dict[str, str] = field(default_factory=dict)
    #: The version each promoted rotation replaced (``None``: it replaced nothing).
    replaced: dict[str, str | None] = field(default_factory=dict)
    #: How many versions were ever written (ids are never reused).
    written: int = 0

    def add(self, version: StoredVersion) -> str:
        """Keep ``version`` under a new id; return the id."""
        self.written += 1
        version_id = f"v{self.written}"
        self.versions[version_id] = version
        return version_id


@dataclass
class IssuedCredential:
    """A credential the service issued: its value, the rotation it was minted for, its state."""

    value: SecretValue
    #: The policy (secret) the credential was minted for: an issuer sees only its own.
    owner: str
    rotation_id: str
    active: bool = True
    last_used: datetime | None = None


class MemoryService:
    """An outside system kept in memory: secrets, issued credentials, places consumers read.

    Thread-safe: the engine calls adapters from several threads. Every
    adapter call passes :meth:`answer` first, which fails it while
    :attr:`outage` or :attr:`denied` is set.
    """

    def __init__(self, name: str, clock: Clock = _wall_clock) -> None:
        self.name = name
        self.clock = clock
        #: While true, every adapter call fails as an unreachable system's does (retryable).
        self.outage = False
        #: While true, every adapter call is refused as rotator's identity lacked the right.
        self.denied = False
        self.lock = threading.RLock()
        self.secrets: dict[str, StoredSecret] = {}
        self.credentials: dict[str, IssuedCredential] = {}
        #: How many credentials were ever issued (refs are never reused).
        self.issued = 0
        self.places: dict[str, list[SecretValue | None]] = {}
        #: Places that refuse writes, as a read-only mount does (PermissionDeniedError).
        self.read_only: set[str] = set()
        self.accepted: list[SecretValue] = []

    @contextmanager
    def answer(self, operation: str) -> Iterator[None]:
        """Hold the service's lock for one adapter call, failing it during an outage or denial."""
        if self.outage:
            raise TransientError(
                f"service {self.name} is unavailable", provider=PROVIDER, operation=operation
            )
        if self.denied:
            raise PermissionDeniedError(
                f"service {self.name} refuses rotator's identity",
                provider=PROVIDER,
                operation=operation,
            )
        with self.lock:
            yield

    # -- secrets, as another writer or a consumer sees them

    def create_secret(self, name: str) -> None:
        """Make secret ``name`` exist, without a value (no-op if it exists)."""
        with self.lock:
            self.secrets.setdefault(name, StoredSecret())

    def delete_secret(self, name: str) -> None:
        """Remove secret ``name`` and every version of it."""
        with self.lock:
            self.secrets.pop(name, None)

    def secret(self, name: str, operation: str) -> StoredSecret:
        """Return secret ``name``; ``NotFoundError`` if it does not exist."""
        with self.lock:
            found = self.secrets.get(name)
        if found is None:
            raise NotFoundError(
                f"secret {name} does not exist in {self.name}",
                provider=PROVIDER,
                operation=operation,
            )
        return found

    def write(self, name: str, value: SecretValue) -> str:
        """Write ``value`` as the current version of ``name``, as someone else would; return its id.

        The secret is made if it does not exist. Its current version becomes
        the previous one.
        """
        with self.lock:
            found = self.secrets.setdefault(name, StoredSecret())
            version_id = found.add(StoredVersion(value, self.clock()))
            found.previous, found.current = found.current, version_id
            return version_id

    def read(self, name: str) -> SecretValue | None:
        """Return what consumers of ``name`` read: its current value (``None``: none)."""
        with self.lock:
            found = self.secrets.get(name)
            if found is None or found.current is None:
                return None
            return found.versions[found.current].value

    def offered(self, name: str, version_id: str) -> bool:
        """Tell whether consumers of ``name`` are offered ``version_id`` (current or previous)."""
        with self.lock:
            found = self.secrets.get(name)
            return found is not None and version_id in {found.current, found.previous}

    # -- credentials, as the system that honours them sees them

    def works(self, value: SecretValue) -> bool:
        """Tell whether a consumer presenting ``value`` is let in (an active credential has it)."""
        with self.lock:
            return any(c.active and c.value == value for c in self.credentials.values())

    def use(self, value: SecretValue) -> bool:
        """Let a consumer present ``value``: record the use if it works; tell whether it did."""
        with self.lock:
            for credential in self.credentials.values():
                if credential.active and credential.value == value:
                    credential.last_used = self.clock()
                    return True
            return False

    # -- places consumers read a value from (targets)

    def carried(self, place: str) -> SecretValue | None:
        """Return the value consumers reading ``place`` see now (``None``: nothing there)."""
        with self.lock:
            seen = self.places.get(place)
            return seen[-1] if seen else None

    def history(self, place: str) -> list[SecretValue | None]:
        """Return every value ``place`` carried, in order (``None`` where it was emptied)."""
        with self.lock:
            return list(self.places.get(place, []))

    def put(self, place: str, value: SecretValue | None) -> None:
        """Make ``place`` carry ``value`` (``None`` empties it); record it if it changed."""
        with self.lock:
            seen = self.places.setdefault(place, [])
            if (seen[-1] if seen else None) != value:
                seen.append(value)

    # -- what a consumer accepts (verifiers)

    def accept(self, value: SecretValue) -> None:
        """Make the consumer accept ``value`` besides the credentials the service issued."""
        with self.lock:
            self.accepted.append(value)

    def accepts(self, value: SecretValue) -> bool:
        """Tell whether a consumer lets ``value`` in: accepted by hand, or an active credential."""
        with self.lock:
            return value in self.accepted or self.use(value)


_SERVICES: dict[str, MemoryService] = {}
_SERVICES_LOCK = threading.Lock()


def service(name: str) -> MemoryService:
    """Return the service called ``name``, made (empty, on the wall clock) on first use."""
    with _SERVICES_LOCK:
        found = _SERVICES.get(name)
        if found is None:
            found = _SERVICES[name] = MemoryService(name)
        return found


def forget(name: str) -> None:
    """Drop the service called ``name`` (the next :func:`service` call makes an empty one)."""
    with _SERVICES_LOCK:
        _SERVICES.pop(name, None)
