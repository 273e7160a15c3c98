"""The installation's fingerprint key, the keys derived from it, and the fingerprints it makes.

The journal never holds a secret value. It holds version ids, issuer refs
(an access key id, an API key id: identifiers, not secrets) and keyed
fingerprints: HMAC-SHA256 under a per-installation key kept beside the
database file with mode 0600, so a fingerprint cannot be brute-forced from
the database alone. From the same key are derived the key that seals rows
and the key that chains audit records (:mod:`rotator.journal.audit`).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from rotator.adapters.secret import SecretValue
from rotator.errors import JournalError
from rotator.journal.audit import chain_key, row_key


def default_key_file(url: str) -> Path:
    """Return where the key of the journal at ``url`` lives when no key file is named.

    Beside a SQLite database file; otherwise ``ROTATOR_KEY_FILE``, or
    ``rotator.key`` in the working directory.
    """
    database = sa.engine.make_url(url).database if url.startswith("sqlite") else None
    if database and database != ":memory:":
        return Path(database + ".key")
    return Path(os.environ.get("ROTATOR_KEY_FILE", "rotator.key"))


class Keys:
    """The fingerprint key of one journal, read (or made) once, and the keys derived from it."""

    def __init__(self, path: Path, *, journal: str, has_rotations: Callable[[], bool]) -> None:
        """Use the key file at ``path`` for the journal described as ``journal``.

        ``has_rotations`` tells whether the journal already records
        rotations: then a missing key file is an error, not a first start.
        """
        self.path = path
        self._journal = journal
        self._has_rotations = has_rotations
        self._key: bytes | None = None
        self._derived: tuple[bytes, bytes] | None = None
        self._lock = threading.Lock()

    def fingerprint_key(self) -> bytes:
        """Return the fingerprint key, creating its file on a journal that records nothing yet."""
        if self._key is not None:
            return self._key
        with self._lock:  # threads of one run: one of them makes the key
            if self._key is None:
                if not self.path.exists():
                    self._refuse_a_new_key()
                    _create_key_file(self.path)
                if self.path.stat().st_mode & 0o077:
                    raise JournalError(
                        f"fingerprint key {self.path} must be readable by its owner only"
                    )
                self._key = bytes.fromhex(self.path.read_text().strip())
        return self._key

    def _refuse_a_new_key(self) -> None:
        # A new key would make every recorded fingerprint unmatchable (leak
        # reports, read-back checks).
        if self._has_rotations():
            raise JournalError(
                f"fingerprint key {self.path} is missing, but the journal "
                f"{self._journal} already records rotations: restore the key "
                "file (or point ROTATOR_KEY_FILE at it) from where rotator first "
                "ran; every replica must share it"
            )

    def row(self) -> bytes:
        """Return the key that seals journal rows."""
        return self._derived_keys()[0]

    def chain(self) -> bytes:
        """Return the key that chains audit records."""
        return self._derived_keys()[1]

    def _derived_keys(self) -> tuple[bytes, bytes]:
        """The row and chain keys, derived once from the fingerprint key (every write uses them)."""
        if self._derived is None:
            key = self.fingerprint_key()
            self._derived = (row_key(key), chain_key(key))
        return self._derived

    def row_if_present(self) -> bytes | None:
        """Return the row key when the key file exists (reads never create it); None otherwise."""
        if self._key is None and not self.path.exists():
            return None
        try:
            return self.row()
        except (JournalError, OSError, ValueError):
            return None

    def fingerprint(self, value: SecretValue) -> str:
        """Return a keyed fingerprint of a value (HMAC-SHA256, 16 bytes, hex)."""
        digest = hmac.new(self.fingerprint_key(), value.text().encode(), hashlib.sha256)
        return digest.hexdigest()[:32]


def _create_key_file(path: Path) -> None:
    """Create the fingerprint key file whole, or leave the one another process made.

    The key is written to a private temporary file first and then linked into
    place: ``link`` fails if the name exists, so concurrent processes agree
    on one key, and no reader ever sees the file empty or half-written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # A random name (mkstemp: O_EXCL, mode 0600), so nobody who can write the
    # folder can take the name first, and a crashed start leaves no name in the way.
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    temporary = Path(name)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileExistsError):  # another process won: use its key
            os.link(temporary, path)
    finally:
        temporary.unlink()
