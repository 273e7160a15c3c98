"""How the Vault emulator speaks Vault: error and reply envelopes, Go's formats, ids, times."""

from __future__ import annotations

import json
import secrets
import string
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

JSONDict = dict[str, Any]


# Vault's built-in system defaults (default_lease_ttl and max_lease_ttl): 768h, i.e. 32 days.
SYSTEM_DEFAULT_TTL = 768 * 3600


SYSTEM_MAX_TTL = 768 * 3600


VAULT_VERSION = "1.17.0+ent"


_BASE62 = string.ascii_letters + string.digits


class VaultError(Exception):
    """A failed request, carried to the HTTP layer and rendered as Vault renders it."""

    def __init__(self, status: int, errors: list[str], body: JSONDict | None = None) -> None:
        super().__init__(errors[0] if errors else f"HTTP {status}")
        self.status = status
        self.errors = errors
        self.body = body

    @classmethod
    def respond(cls, status: int, message: str) -> VaultError:
        """An error a backend answered with ``logical.ErrorResponse``: the message verbatim."""
        return cls(status, [message])

    @classmethod
    def internal(cls, status: int, message: str) -> VaultError:
        """An error a backend returned as a Go ``error``: Vault wraps it in a go-multierror."""
        return cls(status, [multierror(message)])

    @classmethod
    def not_found(cls) -> VaultError:
        """A plain 404: a read of nothing, which Vault sends as ``{"errors":[]}``."""
        return cls(404, [])


def multierror(message: str) -> str:
    """Format one error the way hashicorp/go-multierror does (Vault's request pipeline uses it)."""
    return f"1 error occurred:\n\t* {message}\n\n"


def permission_denied() -> VaultError:
    """An unknown, expired or revoked token, or a token used outside its namespace."""
    return VaultError.respond(403, "permission denied")


def acl_denied() -> VaultError:
    """A valid token whose policies do not grant the operation (Vault appends to a multierror)."""
    return VaultError.internal(403, "permission denied")


@dataclass
class Reply:
    """A successful (or full-envelope) answer of one handler."""

    data: JSONDict | None = None
    auth: JSONDict | None = None
    warnings: list[str] | None = None
    status: int = 200
    raw: JSONDict | None = None
    no_content: bool = False


def no_content(warnings: list[str] | None = None) -> Reply:
    """A 204, or a 200 carrying only warnings when there are any (as Vault does)."""
    return Reply(no_content=not warnings, warnings=warnings or None)


def go_quote(text: str) -> str:
    """Quote a string like Go's ``%q`` does for the printable ASCII ids used here."""
    return json.dumps(text, ensure_ascii=False)


def go_time(moment: datetime) -> str:
    """Format an instant like Go's ``time.RFC3339Nano`` in UTC: trailing zeros trimmed, ``Z``."""
    utc = moment.astimezone(UTC)
    fraction = f"{utc.microsecond:06d}000".rstrip("0")
    base = utc.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{fraction}Z" if fraction else f"{base}Z"


GO_ZERO_TIME = "0001-01-01T00:00:00Z"


def go_duration(seconds: float) -> str:
    """Format whole seconds like Go's ``time.Duration.String`` (``0s``, ``90s`` -> ``1m30s``)."""
    total = int(seconds)
    sign = "-" if total < 0 else ""
    total = abs(total)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{sign}{minutes}m{secs}s"
    return f"{sign}{secs}s"


def base62(length: int) -> str:
    """Random base62 characters, the alphabet of Vault's token and accessor ids."""
    return "".join(secrets.choice(_BASE62) for _ in range(length))


def new_uuid() -> str:
    """A random UUID string (Vault's request ids, role ids, secret ids)."""
    return str(uuid.uuid4())


def seconds_between(later: datetime, earlier: datetime) -> float:
    """Signed seconds from ``earlier`` to ``later``."""
    return (later - earlier).total_seconds()


def after(moment: datetime, seconds: float) -> datetime:
    """``moment`` plus some seconds."""
    return moment + timedelta(seconds=seconds)


def truncate_seconds(moment: datetime) -> datetime:
    """Drop sub-second precision, as Vault's TTL arithmetic does."""
    return moment.replace(microsecond=0)
