"""What a database credential looks like stored: the AWS RDS JSON object, or a bare password.

The JSON object is the one AWS Secrets Manager keeps for RDS (``engine``,
``host``, ``port``, ``username``, ``password``, ``dbname``), so consumers and
libraries that read that shape work unchanged; with ``value: password`` the
store holds the password alone. The admin credential is read in the same
shape, or as a URL (``postgresql://user:password@host/db``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from providers.databases.policy import DatabasePasswordConfig
from rotator.adapters import SecretValue, redact


@dataclass(frozen=True)
class Login:
    """A user and its password: what a consumer (or rotator's admin) logs in with."""

    username: str
    password: SecretValue
    #: The database the credential names, if it names one.
    database: str | None = None


def render(config: DatabasePasswordConfig, login: Login) -> SecretValue:
    """Return the value to store for ``login``, in the shape the policy asks for."""
    if config.value == "password":
        return login.password
    document: dict[str, object] = {
        "engine": config.engine,
        "host": config.host,
        "port": config.server_port,
        "username": login.username,
        "password": login.password.text(),
    }
    if config.database is not None:
        document["dbname"] = config.database
    return SecretValue(json.dumps(document))


def parse(config: DatabasePasswordConfig, value: SecretValue) -> Login | None:
    """Return the login a stored value holds, or ``None`` if it is not of the policy's shape."""
    if config.value == "password":
        plain = value.reveal()
        return Login(config.username, value) if isinstance(plain, str) and plain else None
    found = value.fields("username", "password")
    if found is None or not found[1]:
        return None
    return Login(found[0], SecretValue(found[1]), config.database)


def admin_login(text: str) -> Login | None:
    """Read an admin credential: a JSON object (the RDS shape) or a URL; ``None`` if neither.

    Its password is registered for redaction before anything else is done with it.
    """
    if text.lstrip().startswith("{"):
        found = SecretValue(text).fields("username", "password")
        if found is None or not found[0] or not found[1]:
            return None
        try:
            dbname = json.loads(text).get("dbname")
        except ValueError:
            return None
        return Login(found[0], SecretValue(found[1]), dbname if isinstance(dbname, str) else None)
    redact.register_url(text)
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if not parts.scheme or not parts.username or parts.password is None:
        return None
    database = unquote(parts.path.lstrip("/")) or None
    return Login(unquote(parts.username), SecretValue(unquote(parts.password)), database)
