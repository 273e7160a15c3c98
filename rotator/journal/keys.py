"""The installation's fingerprint key, the keys derived from it, and the fingerprints it makes.

The journal never holds a secret value. It holds version ids, issuer refs
(an access key id, an API key id: identifiers, not secrets) and keyed
fingerprints: HMAC-SHA256 under a per-installation key, mode 0600, so a
fingerprint cannot be brute-forced from the database alone. A SQLite journal
keeps it beside its file (made on first use); any other journal must be
given it (``--key-file``, ``ROTATOR_KEY_FILE``), the same file for every
run. From the same key are derived the key that seals rows and the key that
chains audit records (:mod:`rotator.journal.audit`).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import hmac
import os
import secrets
import shlex
import stat
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from rotator.adapters.secret import SecretValue
from rotator.errors import JournalError
from rotator.journal.audit import chain_key, row_key

#: What a key file holds, as the errors about one say it.
KEY_FORMAT = (
    "one line of 64 hexadecimal characters (32 random bytes; no fewer than 32 characters), "
    "as `python3 -c 'import secrets; print(secrets.token_hex(32))'` or "
    "`openssl rand -hex 32` write it"
)
#: Fewer random bytes than this make a key too weak to keep fingerprints from being guessed.
MINIMUM_KEY_BYTES = 16
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def make_key_command(path: Path | str) -> str:
    """Return the shell command that creates a key file at ``path``, private to its owner."""
    return (
        "(umask 077; python3 -c 'import secrets; print(secrets.token_hex(32))' "
        f"> {shlex.quote(str(path))})"
    )


def default_key_file(url: str) -> Path | None:
    """Return where the key of the journal at ``url`` lives when no key file is named.

    Beside a SQLite database file (``FILE.key``): whoever names the file
    finds its key. Any other journal (PostgreSQL, an in-memory SQLite) has
    no place every run shares, so None: its key file must be named.
    """
    database = sa.engine.make_url(url).database if url.startswith("sqlite") else None
    if database and database != ":memory:":
        return Path(database + ".key")
    return None


def _unnamed_key_message(journal: str) -> str:
    """Say that the journal needs a named key file, and how to make and share one."""
    return (
        f"journal {journal} needs its key file named: pass --key-file PATH or set "
        "ROTATOR_KEY_FILE. It keys the journal's fingerprints, seals and audit chain, so "
        "every replica and every one-shot run against this journal must use the same file. "
        f"Create it once: {make_key_command('rotator.key')}, keep it with the journal's "
        "backups, and give it to each replica and pipeline (a Kubernetes Secret, a pipeline "
        "secret)"
    )


class Keys:
    """The fingerprint key of one journal, read (or made) once, and the keys derived from it."""

    def __init__(
        self,
        path: Path | None,
        *,
        journal: str,
        has_rotations: Callable[[], bool],
        may_create: bool = True,
    ) -> None:
        """Use the key file at ``path`` (None: not named) for the journal described as ``journal``.

        ``has_rotations`` tells whether the journal already records
        rotations: then a missing key file is an error, not a first start.
        ``may_create`` is False where a key made on first use would not be
        the one the other runs use (any journal but a SQLite file): then
        :meth:`check` refuses a missing key file (the commands call it at
        start, so they never make one there).
        """
        self.path = path
        self._journal = journal
        self._has_rotations = has_rotations
        self._may_create = may_create
        self._key: bytes | None = None
        self._derived: tuple[bytes, bytes] | None = None
        self._lock = threading.Lock()

    def check(self, *, writing: bool) -> None:
        """Check the key file at start, before anything is acted on; raise JournalError if unusable.

        A key file that exists is read and checked whole (and kept: the
        run uses what was checked). A missing one is allowed only where it
        would be made on first use (``writing``, a SQLite journal that
        records nothing yet) or where reads go without it (not ``writing``).
        """
        path = self._named_path()
        if self._key is not None:
            return
        if path.exists() or path.is_symlink():
            self.fingerprint_key()
        elif writing and not self._may_create:
            raise JournalError(
                f"fingerprint key {path.absolute()} does not exist. Every run against the journal "
                f"{self._journal} must use the same key: copy the file from where rotator "
                f"runs against it (its replicas, its pipeline), or, for a new journal, create it "
                f"once with {make_key_command(path.absolute())} and share it with every replica"
            )
        elif writing:
            self._refuse_a_new_key(path)

    def _named_path(self) -> Path:
        """Return the key file's path, or raise JournalError when none is named."""
        if self.path is None:
            raise JournalError(_unnamed_key_message(self._journal))
        return self.path

    def fingerprint_key(self) -> bytes:
        """Return the fingerprint key, creating its file on a journal that records nothing yet."""
        if self._key is not None:
            return self._key
        path = self._named_path()
        with self._lock:  # threads of one run: one of them makes the key
            if self._key is None:
                if not path.exists() and not path.is_symlink():
                    self._refuse_a_new_key(path)
                    _create_key_file(path)
                self._key = read_key_file(path)
        return self._key

    def _refuse_a_new_key(self, path: Path) -> None:
        """Raise JournalError if the journal already records rotations (a new key cannot serve)."""
        # A new key would make every recorded fingerprint unmatchable (leak
        # reports, read-back checks).
        if self._has_rotations():
            raise JournalError(
                f"fingerprint key {path.absolute()} is missing, but the journal "
                f"{self._journal} already records rotations: restore the key "
                "file (or point --key-file or ROTATOR_KEY_FILE at it) from where rotator "
                "first ran; every replica must share it"
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
        if self._key is None and (self.path is None or not self.path.exists()):
            return None
        try:
            return self.row()
        except (JournalError, OSError, ValueError):
            return None

    def fingerprint(self, value: SecretValue) -> str:
        """Return a keyed fingerprint of a value (HMAC-SHA256, 16 bytes, hex)."""
        digest = hmac.new(self.fingerprint_key(), value.text().encode(), hashlib.sha256)
        return digest.hexdigest()[:32]


def read_key_file(path: Path) -> bytes:
    """Read and check a key file: private to its owner, and :data:`KEY_FORMAT`.

    Every problem is a JournalError naming the file and what is expected;
    none quotes what the file holds (it is the key, or close to it).
    """
    try:
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode):
            raise IsADirectoryError(errno.EISDIR, "not a regular file")
        if mode & 0o077:
            raise JournalError(
                f"fingerprint key {path.absolute()} may be read or written by its group or "
                f"others (mode {stat.S_IMODE(mode):04o}); it must be its owner's only: "
                f"chmod 600 {path.absolute()}"
            )
        raw = path.read_bytes()
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise JournalError(
            f"fingerprint key {path.absolute()} cannot be read ({why.lower()}); "
            f"rotator expects a file, readable by its user, holding {KEY_FORMAT}"
        ) from None
    text = raw.strip()
    if len(text) % 2 or len(text) < 2 * MINIMUM_KEY_BYTES or not _all_hex(text):
        raise JournalError(
            f"fingerprint key {path.absolute()} is not in the expected format: {KEY_FORMAT}; "
            "base64 and other encodings are not read"
        )
    return bytes.fromhex(text.decode("ascii"))


def _all_hex(text: bytes) -> bool:
    """Tell whether every byte of ``text`` is a hexadecimal digit."""
    return all(chr(byte) in _HEX_DIGITS for byte in text)


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
