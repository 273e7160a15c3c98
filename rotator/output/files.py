"""Files rotator writes whole: a summary, the audit anchor, a starter policy.

A reader never sees half a file, and a link planted at the file's name (or a
name guessed for the temporary file) is never written through.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def replace_file(target: Path, text: str, *, private: bool = False) -> None:
    """Put ``text`` at ``target`` whole: a new file beside it, then renamed over it.

    The temporary file has a random name and is created exclusively (never
    through a link someone planted), and the rename replaces a link at
    ``target`` instead of writing where it points. ``private`` keeps it
    readable by its owner only; otherwise the umask decides, as for any file.
    """
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            if not private:
                os.fchmod(stream.fileno(), 0o666 & ~_umask())  # mkstemp makes it 0600
            stream.write(text)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def create_file(target: Path, text: str) -> None:
    """Put ``text`` at ``target`` whole, only if nothing is there yet.

    Written beside it under a random name, then hard-linked to ``target``:
    the link fails if anything (a file, a directory, a link, even a dangling
    one) took the name in between, so nothing is ever overwritten, and a
    reader sees the whole text or no file.

    Raises:
        FileExistsError: something is at ``target``; nothing was written.
        OSError: the directory cannot be written (it is left as it was).
    """
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            os.fchmod(stream.fileno(), 0o666 & ~_umask())  # mkstemp makes it 0600
            stream.write(text)
        os.link(temporary, target)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temporary)


def _umask() -> int:
    """Return the process's umask (setting a stricter one for a moment, never a looser one)."""
    mask = os.umask(0o077)
    os.umask(mask)
    return mask
