"""Target ``file``: a file that a process or a sidecar reads the credential from.

Three formats:

- ``raw``: the file holds the value's text and nothing else (a mapping value
  as compact sorted JSON), byte for byte, with no trailing newline;
- ``env``: ``KEY=value`` lines, as read by a POSIX shell (``. file``) and by
  systemd's ``EnvironmentFile=``. Only ``key``'s line is written; every other
  line (other keys, comments, blank lines) is kept byte for byte. A value
  made only of ``A-Za-z0-9_@%+=:,./-`` is written bare, which every reader
  (``docker --env-file`` and python-dotenv included) takes literally;
  another value is single-quoted, a ``'`` in it written shell-style as
  ``'\\''`` (which python-dotenv does not read: leave ``'`` out of the
  issuer's alphabet for it). A value with a line break or NUL is refused:
  one assignment per line is what keeps the file parseable;
- ``json``: a JSON object; only ``key`` is set (a mapping value as a nested
  object, a string as a string) and the other keys keep their values.

Every write is atomic: the new content goes to a temporary file in the same
directory, created exclusively with no more than the owner's bits of
``mode``, given its group and then exactly ``mode`` by ``fchown``/``fchmod``
(so the umask neither widens nor narrows it), written, fsynced and renamed
over the target, and the directory is fsynced. A reader sees the old file
or the new one, never an empty or partial one, nor one more readable than
``mode``. A symbolic link at ``path`` is refused rather than written
through. Writing what the file already holds (with the right mode and
group) does not touch it at all: same inode, same mtime, no event for a
file watcher.
A temporary file left behind by a write that crashed (it may hold a value)
is removed by the next write or restore.

Read-modify-write of an ``env`` or ``json`` file is serialised by an
exclusive ``flock`` on the directory (several secrets may share one env
file, and a one-shot run may overlap the service on one host) and, inside
the process, by a lock per directory.

``restore`` puts ``previous`` back when the file still carries the value
this rotation wrote. When there was no previous value, a ``raw`` file is
deleted, and an ``env``/``json`` file loses ``key`` but stays, even if
nothing else is left in it: a unit whose ``EnvironmentFile=`` vanished would
not start, while an empty env file is harmless. When ``written`` was lost in
a crash, ``previous`` is written back (it is what the store still holds as
current); with neither, the file is left as it is, since nothing proves that
this rotation put its content there.
"""

from __future__ import annotations

import errno
import fcntl
import grp
import json
import logging
import os
import re
import secrets
import shlex
import stat
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from rotator.adapters import ProviderConfig, SecretValue, Target
from rotator.errors import (
    NotFoundError,
    PermanentError,
    PermissionDeniedError,
    ProviderError,
    TransientError,
)

PROVIDER = "file"

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ENV_LINE = re.compile(r"^(?P<lead>[ \t]*(?:export[ \t]+)?)(?P<name>[A-Za-z_][A-Za-z0-9_]*)[ \t]*=")
_ENV_IGNORED = re.compile(r"^[ \t]*(?:#.*)?$")
# Characters no env reader treats specially: such a value is written bare.
_BARE = re.compile(r"^[A-Za-z0-9_@%+=:,./-]+$")
# Errors that may pass by themselves: a full disk, an I/O hiccup, a busy file.
_TRANSIENT_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EAGAIN, errno.EINTR, errno.EBUSY}
)

log = logging.getLogger(__name__)

_locks_guard = threading.Lock()
_dir_locks: dict[str, threading.Lock] = {}


class FileConfig(ProviderConfig):
    """Policy fields of the ``file`` target."""

    #: Absolute path of the file consumers read.
    path: str = Field(min_length=2)
    #: ``raw`` (the value only), ``env`` (``KEY=value`` lines) or ``json`` (an object).
    format: Literal["raw", "env", "json"] = "raw"
    #: The variable (env) or key (json) that holds the value; not used by raw.
    key: str | None = Field(default=None, min_length=1, max_length=256)
    #: The file's permission bits, in octal; never group- or world-writable.
    mode: str = "0600"
    #: A group (name or number) to give the file, so that a consumer in it
    #: can read it with a mode such as ``0640``; the process must belong to it.
    group: str | int | None = None

    @field_validator("group")
    @classmethod
    def _group_named(cls, value: str | int | None) -> str | int | None:
        if isinstance(value, str) and not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\$?", value):
            raise ValueError(f"group {value!r} is not a group name or number")
        if isinstance(value, int) and value < 0:
            raise ValueError("a group number is not negative")
        return value

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not os.path.isabs(value):
            raise ValueError("path must be absolute, such as /run/secrets/app.env")
        if value.endswith("/") or "\0" in value:
            raise ValueError("path must name a file, not a directory")
        if os.path.normpath(value) != value:
            raise ValueError(f"path must be normalised (no '.', '..' or '//'): {value!r}")
        return value

    @field_validator("mode", mode="before")
    @classmethod
    def _quoted_mode(cls, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            # YAML reads an unquoted 0600 as the number 384, and 600 as six hundred.
            raise ValueError('write mode as a quoted octal string, such as "0600"')
        return value

    @field_validator("mode")
    @classmethod
    def _octal_mode(cls, value: str) -> str:
        if not re.fullmatch(r"0?[0-7]{3}", value):
            raise ValueError(f"mode must be octal permission bits such as '0600', not {value!r}")
        bits = int(value, 8)
        if bits & 0o022:
            raise ValueError(f"mode {value} lets the group or others write the file")
        if not bits & 0o400:
            raise ValueError(
                f"mode {value} does not let the owner read the file "
                "(rotator reads it back to merge keys and to restore)"
            )
        return value

    @model_validator(mode="after")
    def _key_fits_format(self) -> FileConfig:
        if self.format == "raw":
            if self.key is not None:
                raise ValueError(
                    "key is only used with format env or json; a raw file holds the value alone"
                )
        elif self.key is None:
            raise ValueError(f"format {self.format} needs key (the entry that holds the value)")
        elif self.format == "env" and not _ENV_NAME.fullmatch(self.key):
            raise ValueError(
                f"key {self.key!r} is not a variable name (letters, digits, _; not a digit first)"
            )
        return self

    def bits(self) -> int:
        """Return ``mode`` as permission bits."""
        return int(self.mode, 8)


def _env_quote(text: str) -> str:
    """Return ``text`` as a shell word: bare if it is safe, else single-quoted."""
    if _BARE.fullmatch(text):
        return text
    return "'" + text.replace("'", "'\\''") + "'"


def _env_value(line: str) -> str | None:
    """Return the value a ``KEY=...`` line assigns, shell-unquoted; None if unreadable."""
    rest = line.split("=", 1)[1].rstrip("\r\n")
    # The forms rotator writes, read without shlex (which is slow on long values).
    if _BARE.fullmatch(rest):
        return rest
    if len(rest) >= 2 and rest[0] == rest[-1] == "'" and "'" not in rest[1:-1]:
        return rest[1:-1]
    try:
        words = shlex.split(rest, comments=False, posix=True)
    except ValueError:
        return None
    if not words:
        return ""
    return words[0] if len(words) == 1 else None


def _json_value(value: SecretValue) -> Any:
    """Return what goes into a JSON object for ``value`` (a dict or a string)."""
    plain = value.reveal()
    return dict(plain) if not isinstance(plain, str) else plain


@contextmanager
def _os_errors(operation: str, where: str) -> Iterator[None]:
    """Translate an ``OSError`` into the error tree, naming the path and the reason."""
    try:
        yield
    except OSError as exc:
        raise _translate(exc, operation, where) from None


def _translate(exc: OSError, operation: str, where: str) -> ProviderError:
    reason = os.strerror(exc.errno) if exc.errno else type(exc).__name__
    message = f"{where}: {reason}"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return PermissionDeniedError(message, provider=PROVIDER, operation=operation)
    if exc.errno == errno.ENOENT:
        return NotFoundError(message, provider=PROVIDER, operation=operation)
    if exc.errno in _TRANSIENT_ERRNOS:
        return TransientError(message, provider=PROVIDER, operation=operation)
    return PermanentError(message, provider=PROVIDER, operation=operation)


class FileTarget(Target[FileConfig]):
    """Writes the credential into a file, atomically, keeping other keys of env/json files."""

    kind = "file"
    Config = FileConfig
    example: ClassVar[Mapping[str, object]] = {
        "path": "/run/secrets/app.env",
        "format": "env",
        "key": "DB_PASSWORD",
        "mode": "0600",
    }
    docs = "docs/targets.md"

    # -- plumbing ---------------------------------------------------------

    @property
    def _dir(self) -> str:
        return os.path.dirname(self.config.path)

    @property
    def _name(self) -> str:
        return os.path.basename(self.config.path)

    def _error(self, message: str, operation: str) -> PermanentError:
        return PermanentError(
            f"{self.config.path}: {message}", provider=PROVIDER, operation=operation
        )

    def _gid(self, operation: str) -> int | None:
        """Return the configured group's id, or None when no group is configured."""
        group = self.config.group
        if group is None:
            return None
        if isinstance(group, int):
            return group
        if group.isdigit():
            return int(group)
        try:
            return grp.getgrnam(group).gr_gid
        except KeyError:
            raise NotFoundError(
                f"group {group!r} does not exist", provider=PROVIDER, operation=operation
            ) from None

    @contextmanager
    def _locked_dir(self, operation: str) -> Iterator[int]:
        """Open the directory, lock it against other writers, and yield its descriptor."""
        with _locks_guard:
            lock = _dir_locks.setdefault(self._dir, threading.Lock())
        with lock:
            with _os_errors(operation, f"directory {self._dir}"):
                dfd = os.open(self._dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                try:
                    fcntl.flock(dfd, fcntl.LOCK_EX)
                except OSError as exc:
                    # Some network file systems cannot flock a directory; the
                    # lock of this process still serialises its own threads.
                    log.debug("no flock on %s (%s); process lock only", self._dir, exc.strerror)
                yield dfd
            finally:
                os.close(dfd)  # closing also releases the flock

    def _read(self, dfd: int | None, operation: str) -> tuple[bytes, os.stat_result] | None:
        """Return the file's bytes and status, or None if it does not exist."""
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
        try:
            fd = os.open(self._name if dfd is not None else self.config.path, flags, dir_fd=dfd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise self._error(
                    "is a symbolic link; rotator writes regular files only", operation
                ) from None
            raise _translate(exc, operation, self.config.path) from None
        try:
            with _os_errors(operation, self.config.path):
                status = os.fstat(fd)
                if not stat.S_ISREG(status.st_mode):
                    raise self._error("is not a regular file", operation)
                chunks = []
                while chunk := os.read(fd, 1 << 16):
                    chunks.append(chunk)
        finally:
            os.close(fd)
        return b"".join(chunks), status

    def _decode(self, data: bytes, operation: str) -> str:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise self._error("is not UTF-8 text", operation) from None

    def _env_lines(self, data: bytes, operation: str) -> list[str]:
        """Split an env file into lines (ends kept), refusing one that is not an assignment."""
        lines = self._decode(data, operation).splitlines(keepends=True)
        for number, line in enumerate(lines, start=1):
            if not (_ENV_LINE.match(line) or _ENV_IGNORED.fullmatch(line.rstrip("\r\n"))):
                # The line number, never the line: it may hold someone's secret.
                raise self._error(f"line {number} is not KEY=value, a comment or blank", operation)
        return lines

    def _json_document(self, data: bytes, operation: str) -> dict[str, Any]:
        text = self._decode(data, operation)
        if not text.strip():
            return {}
        try:
            document = json.loads(text)
        except ValueError:
            raise self._error("is not valid JSON", operation) from None
        if not isinstance(document, dict):
            raise self._error("does not hold a JSON object", operation)
        return document

    def _carried(self, data: bytes, operation: str) -> Any:
        """Return what the file carries for this target (raw bytes, env value, json entry).

        ``None`` when the key is absent (or, for env, its value cannot be read).
        """
        key = self.config.key
        if self.config.format == "raw":
            return data  # any bytes: a raw file has no format to parse
        if self.config.format == "json":
            return self._json_document(data, operation).get(str(key))
        value: str | None = None
        for line in self._env_lines(data, operation):
            found = _ENV_LINE.match(line)
            if found and found["name"] == key:
                value = _env_value(line)  # the shell keeps the last assignment
        return value

    def _wanted(self, value: SecretValue) -> Any:
        """Return what the file must carry for ``value`` (compare with ``_carried``)."""
        if self.config.format == "raw":
            return value.text().encode("utf-8")
        return _json_value(value) if self.config.format == "json" else value.text()

    def _render(self, existing: bytes | None, value: SecretValue | None, operation: str) -> bytes:
        """Return the file's new content: ``value`` set under key, or key removed if None."""
        if self.config.format == "raw":
            assert value is not None  # raw files are deleted, not rendered, to remove
            return value.text().encode("utf-8")
        if self.config.format == "json":
            document = self._json_document(existing or b"", operation)
            if value is None:
                document.pop(str(self.config.key), None)
            else:
                document[str(self.config.key)] = _json_value(value)
            return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
        return self._render_env(existing, value, operation)

    def _render_env(
        self, existing: bytes | None, value: SecretValue | None, operation: str
    ) -> bytes:
        lines = self._env_lines(existing or b"", operation)
        text = None if value is None else value.text()
        if text is not None and ("\n" in text or "\r" in text or "\0" in text):
            raise self._error(
                "the value holds a line break or NUL, which an env file cannot carry "
                "(use format json or raw)",
                operation,
            )
        out: list[str] = []
        placed = False
        for line in lines:
            found = _ENV_LINE.match(line)
            if not found or found["name"] != self.config.key:
                out.append(line)
                continue
            if text is None or placed:
                continue  # removing the key, or a duplicate that would override ours
            placed = True
            if _env_value(line) == text:
                out.append(line)  # already right, however it is quoted
            else:
                ending = line[len(line.rstrip("\r\n")) :] or "\n"
                out.append(f"{found['lead']}{self.config.key}={_env_quote(text)}{ending}")
        if text is not None and not placed:
            if out and not out[-1].endswith("\n"):
                out[-1] += "\n"
            out.append(f"{self.config.key}={_env_quote(text)}\n")
        return "".join(out).encode("utf-8")

    def _attributes_right(self, status: os.stat_result, gid: int | None) -> bool:
        """Tell whether the file has exactly ``mode`` (and the group, if one is configured)."""
        return stat.S_IMODE(status.st_mode) == self.config.bits() and (
            gid is None or status.st_gid == gid
        )

    def _replace(self, dfd: int, data: bytes, gid: int | None, operation: str) -> None:
        """Write ``data`` to a new file in the directory and rename it over the target."""
        temp = f".{self._name}.rotator-{secrets.token_hex(6)}.tmp"
        mode = self.config.bits()
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        with _os_errors(operation, f"directory {self._dir}"):
            # Owner bits only until the group is set: between the two calls the
            # file belongs to our default group, which ``mode`` did not mean.
            fd = os.open(temp, flags, mode & 0o700, dir_fd=dfd)
        try:
            with _os_errors(operation, self.config.path):
                try:
                    if gid is not None:
                        os.fchown(fd, -1, gid)
                    os.fchmod(fd, mode)  # exactly mode, whatever the umask
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view) :]
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(temp, self._name, src_dir_fd=dfd, dst_dir_fd=dfd)
                temp = ""
                os.fsync(dfd)
        finally:
            if temp:
                try:
                    os.unlink(temp, dir_fd=dfd)
                except OSError:
                    log.warning("could not remove temporary file %s in %s", temp, self._dir)

    def _sweep(self, dfd: int) -> None:
        """Remove temporary files a crashed write left (they may hold a value).

        Called with the directory locked, so no other writer is using them.
        """
        prefix = f".{self._name}.rotator-"
        try:
            names = os.listdir(dfd)
        except OSError:
            return
        for name in names:
            if name.startswith(prefix) and name.endswith(".tmp"):
                try:
                    os.unlink(name, dir_fd=dfd)
                except OSError:
                    log.warning("could not remove stale temporary file %s in %s", name, self._dir)

    def _remove(self, dfd: int, operation: str) -> None:
        with _os_errors(operation, self.config.path):
            try:
                os.unlink(self._name, dir_fd=dfd)
            except FileNotFoundError:
                return
            os.fsync(dfd)

    def _put(self, dfd: int, value: SecretValue | None, gid: int | None, operation: str) -> bool:
        """Make the file carry ``value`` (remove the key or the file if None); True if changed.

        Called with the directory locked. Nothing is written when the file
        already carries the value with the right mode and group.
        """
        self._sweep(dfd)
        found = self._read(dfd, operation)
        if value is None:
            if found is None:
                return False
            if self.config.format == "raw":
                self._remove(dfd, operation)
                return True
        elif (
            found is not None
            and self._carried(found[0], operation) == self._wanted(value)
            and self._attributes_right(found[1], gid)
        ):
            return False
        data = self._render(None if found is None else found[0], value, operation)
        if found is not None and found[0] == data and self._attributes_right(found[1], gid):
            return False
        self._replace(dfd, data, gid, operation)
        return True

    # -- Target -------------------------------------------------------------

    def describe(self) -> str:
        """Return ``file:<path>``, with ``#<key>`` for env and json files."""
        suffix = f"#{self.config.key}" if self.config.key else ""
        return f"{PROVIDER}:{self.config.path}{suffix}"

    def write(self, rotation_id: str, value: SecretValue) -> None:
        """Make the file carry ``value`` (atomically; untouched if it already does).

        Raises:
            NotFoundError: the directory (or the configured group) does not exist.
            PermissionDeniedError: the directory or file may not be written.
            PermanentError: the file is a symlink, not a regular file, not
                UTF-8, not in its format, or an env value holds a line break.
            TransientError: the disk is full or an I/O error occurred.
        """
        gid = self._gid("write")
        with self._locked_dir("write") as dfd:
            changed = self._put(dfd, value, gid, "write")
        log.debug("file target %s %s", self.describe(), "written" if changed else "already current")

    def restore(
        self, rotation_id: str, *, written: SecretValue | None, previous: SecretValue | None
    ) -> None:
        """Put ``previous`` back if the file carries ``written`` (see the module doc for None).

        Raises the errors ``write`` raises.
        """
        if written is None and previous is None:
            return  # nothing proves the file's content is this rotation's
        gid = self._gid("restore")
        with self._locked_dir("restore") as dfd:
            if written is not None:
                found = self._read(dfd, "restore")
                if found is None or self._carried(found[0], "restore") != self._wanted(written):
                    return  # this rotation's value is not there: never written, or replaced since
            changed = self._put(dfd, previous, gid, "restore")
        log.debug("file target %s %s", self.describe(), "restored" if changed else "unchanged")

    def check(self) -> str:
        """Check the directory is writable and the file, if any, readable and in its format.

        Changes nothing. Raises ``NotFoundError`` for a missing directory or
        group, ``PermissionDeniedError`` when access is lacking, and
        ``PermanentError`` for a file rotator could not update.
        """
        directory = self._dir
        if not os.path.isdir(directory):
            raise NotFoundError(
                f"directory {directory} does not exist", provider=PROVIDER, operation="check"
            )
        if not os.access(directory, os.W_OK | os.X_OK):
            raise PermissionDeniedError(
                f"directory {directory} is not writable by this process",
                provider=PROVIDER,
                operation="check",
            )
        self._gid("check")
        found = self._read(None, "check")
        if found is None:
            return f"directory writable; {self._name} absent (created on first write)"
        self._carried(found[0], "check")  # parses it in its format, or raises
        return f"directory writable; {self._name} readable as {self.config.format}"
