"""MySQL and MariaDB passwords, in the form that keeps the plaintext out of the server's logs.

MariaDB writes ``ALTER USER ... IDENTIFIED BY 'plaintext'`` verbatim to its
general log (MySQL 8 rewrites it as ``<secret>``; MariaDB does not). For the
``mysql_native_password`` plugin a client can compute the stored hash
itself, ``'*' + HEX(SHA1(SHA1(password)))``, and send
``IDENTIFIED BY PASSWORD '<hash>'``: the log then holds only the hash, and a
login with the plaintext works.
"""

from __future__ import annotations

import hashlib

from rotator.adapters import SecretValue


def native_password_hash(password: SecretValue) -> str:
    """Return the ``mysql_native_password`` hash of ``password`` (``*`` and 40 hex digits)."""
    once = hashlib.sha1(password.text().encode(), usedforsecurity=False).digest()
    return "*" + hashlib.sha1(once, usedforsecurity=False).hexdigest().upper()
