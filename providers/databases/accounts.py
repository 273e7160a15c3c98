"""What rotator does to a database server's accounts: the one interface each engine implements.

:class:`Accounts` is PostgreSQL's roles (:mod:`providers.databases.postgresql`)
or MySQL's and MariaDB's users (:mod:`providers.databases.mysql`), reached as
the admin credential's user. The issuers and their target
(:mod:`providers.databases.issuer`) speak only to this interface, so both
engines behave alike and one contract suite covers both.

Every method opens its own connection, and closes it, and raises only
:mod:`rotator.errors` exceptions whose messages the engine module wrote: a
driver's error text can quote the statement, so it is never copied.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import ClassVar

from providers.databases.policy import DatabasePasswordConfig
from providers.databases.value import Login
from providers.transport.failures import defuse
from rotator.adapters import Runtime, SecretValue
from rotator.errors import RotatorError, TransientError


class Accounts(ABC):
    """The accounts of one server, as rotator's admin user sees and changes them."""

    #: The provider name in error messages and request counts (``postgresql``, ``mysql``).
    provider: ClassVar[str]

    def __init__(
        self, config: DatabasePasswordConfig, runtime: Runtime, admin: Callable[[], Login]
    ) -> None:
        self.config = config
        self.runtime = runtime
        #: Reads the admin credential afresh (it may be another secret, rotated too).
        self.admin = admin

    @property
    def where(self) -> str:
        """Name the server in messages: ``host:port``."""
        return f"{self.config.host}:{self.config.server_port}"

    @staticmethod
    @abstractmethod
    def driver_error() -> type[Exception]:
        """Return the base class of the driver's errors (imported only when one is raised)."""

    @abstractmethod
    def translate(self, exc: Exception, operation: str, *, who: str, admin: bool) -> RotatorError:
        """Return the rotator error a driver's error stands for, written without its text.

        ``who`` is the login the connection was for; ``admin`` tells whether
        that is rotator's admin (a refused login is then a permission the
        policy lacks) or a consumer's credential (then a failed verification).
        """

    @contextmanager
    def translated(self, operation: str, *, who: str, admin: bool) -> Iterator[None]:
        """Turn a driver error raised within into a rotator error; count the outcome."""
        try:
            yield
        except self.driver_error() as exc:  # evaluated only once something is raised
            error = self.translate(exc, operation, who=who, admin=admin)
            outcome = "transient" if isinstance(error, TransientError) else "permanent"
            self.runtime.on_request(self.provider, operation, outcome)
            # The driver's text and traceback can quote the statement (a hash, a verifier).
            defuse(exc, f"{type(exc).__name__} during {operation}")
            raise error from None
        self.runtime.on_request(self.provider, operation, "ok")

    @abstractmethod
    def login_states(self, users: Sequence[str]) -> dict[str, bool | None]:
        """Tell of each user whether it may log in (True), is locked (False), or is absent (None).

        Raises:
            PermissionDeniedError: the admin credential is refused, or may not look.
            TransientError: the server did not answer; retry later.
            PermanentError: any other refusal.
        """

    @abstractmethod
    def set_password(self, user: str, password: SecretValue, *, unlock: bool) -> None:
        """Give ``user`` this password (and with ``unlock``, let it log in); never the plaintext.

        ``unlock`` is for the idle user of an alternating pair, locked by
        rotator at its last revoke; the one user of single-user is never
        unlocked: a lock there is a person's, during an incident.

        Raises:
            NotFoundError: no such user.
            PermissionDeniedError: the admin may not alter the user.
            TransientError: the server did not answer; retry later.
            PermanentError: any other refusal.
        """

    @abstractmethod
    def create_clone(self, clone: str, of: str, password: SecretValue) -> None:
        """Create ``clone`` with ``password`` and every privilege ``of`` holds.

        Raises:
            NotFoundError: ``of`` does not exist.
            ConflictError: ``clone`` exists already.
            PermissionDeniedError: the admin may not create users or grant what ``of`` holds.
            TransientError: the server did not answer; retry later.
            PermanentError: any other refusal.
        """

    @abstractmethod
    def lock(self, user: str) -> None:
        """Stop ``user`` logging in at all (its password and grants stay); no-op if absent.

        Raises:
            PermissionDeniedError: the admin may not alter the user.
            TransientError: the server did not answer; retry later.
            PermanentError: any other refusal.
        """

    @abstractmethod
    def try_login(self, login: Login) -> None:
        """Open a connection as ``login`` to the policy's database and run one query.

        Raises:
            VerificationError: the server refused the login.
            TransientError: the server did not answer; retry later.
            PermanentError: any other failure.
        """

    @abstractmethod
    def missing_privileges(self, users: Sequence[str]) -> list[str]:
        """Name each privilege the admin lacks to rotate ``users`` (the first is the original).

        Changes nothing. An empty list: the admin may do every step.

        Raises:
            PermissionDeniedError: the admin credential is refused.
            TransientError: the server did not answer; retry later.
            PermanentError: any other refusal.
        """

    @classmethod
    @abstractmethod
    def grants(cls, admin: str, users: Sequence[str]) -> list[str]:
        """Return the SQL giving ``admin`` the least privileges that rotating ``users`` needs.

        Rendered without calling the server (``rotator permissions``).
        """
