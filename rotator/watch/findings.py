"""A secret scanner's findings, as rotator keeps them: where, which rule, what leaked.

:class:`Finding` holds the leaked values masked (:class:`SecretValue`) and
the public identifiers found (which are not secrets); nothing here prints,
logs or raises a value. :class:`FindingFields` reads one finding's fields
with their types checked, refusing a wrong one with the finding's line.
The parsers of each scanner's format are :mod:`rotator.watch.gitleaks` and
:mod:`rotator.watch.trufflehog`; :mod:`rotator.watch.scanners` picks one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rotator.adapters.secret import SecretValue
from rotator.errors import ConfigError

#: Longest text taken from a report for display (file names, rule ids).
MAX_TEXT = 300


class ReportError(ConfigError):
    """A report that is not what its tool writes; refused before anything is compared."""

    def __init__(self, source: str, line: int, reason: str) -> None:
        self.source = source
        self.line = line
        self.reason = reason
        super().__init__(f"{source}:{line}: {reason}")


@dataclass(frozen=True)
class Finding:
    """One finding of a scanner: where it is, which rule found it, what leaked.

    ``values`` holds the leaked values (masked when printed); the comparison
    replaces each finding with a copy without them. ``key_ids`` holds the
    public identifiers found (what a provider's
    :class:`~rotator.adapters.scanning.CredentialFormat` reads as one, such
    as an access key id), which are not secrets.
    """

    tool: str
    number: int
    report_line: int
    file: str
    line: int | None
    commit: str
    rule: str
    fingerprint: str = ""
    verified: bool | None = None
    key_ids: tuple[str, ...] = ()
    values: tuple[SecretValue, ...] = field(default=(), repr=False, compare=False)
    redacted: bool = False

    @property
    def location(self) -> str:
        """Return ``file:line`` (or what is known of it)."""
        if not self.file:
            return "-"
        return f"{self.file}:{self.line}" if self.line is not None else self.file

    @property
    def short_commit(self) -> str:
        """Return the commit abbreviated as git does (empty outside a git scan)."""
        return self.commit[:7]

    @property
    def key_hint(self) -> str:
        """Return the first identifier found, shortened so it can be told apart but not copied."""
        if not self.key_ids:
            return ""
        key = self.key_ids[0]
        return f"{key[:4]}…{key[-4:]}"

    def reason(self, *, identifier_only: bool = False) -> str:
        """Return the reason recorded with the rotation this finding causes."""
        kind = "leak (identifier only)" if identifier_only else "leak"
        text = f"{kind}: {self.tool} {self.rule or 'finding'} at {self.location}"
        return text + (f" (commit {self.short_commit})" if self.commit else "")

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready mapping without any leaked value."""
        return {
            "finding": self.number,
            "report_line": self.report_line,
            "file": self.file,
            "line": self.line,
            "commit": self.commit,
            "rule": self.rule,
            "fingerprint": self.fingerprint or None,
            "key_id": self.key_hint or None,
            "verified": self.verified,
        }


@dataclass(frozen=True)
class Report:
    """A parsed scanner report: where it came from, which tool wrote it, its findings."""

    source: str
    tool: str
    findings: tuple[Finding, ...]


def json_type(value: object) -> str:
    """Name a decoded value's JSON type, for messages (never the value itself)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def printable(text: str) -> str:
    """Return report text fit for a terminal and the journal: no control characters, bounded."""
    clean = "".join(c if c.isprintable() else "?" for c in text)
    return clean if len(clean) <= MAX_TEXT else clean[: MAX_TEXT - 1] + "…"


@dataclass(frozen=True)
class FindingFields:
    """Typed access to one finding's fields; a wrong type is refused with the finding's line."""

    item: Mapping[str, Any]
    source: str
    line: int
    what: str

    def _refuse(self, reason: str) -> ReportError:
        """Return the error refusing this finding for ``reason``."""
        return ReportError(self.source, self.line, f"{self.what}: {reason}")

    def text(self, key: str, *, required: bool = False) -> str:
        """Return a string field ("" when absent); ``required``: present and not empty."""
        if key not in self.item:
            if required:
                raise self._refuse(f'has no "{key}" field')
            return ""
        value = self.item[key]
        if not isinstance(value, str):
            raise self._refuse(f'"{key}" must be a string, not {json_type(value)}')
        if required and not value:
            raise self._refuse(f'"{key}" is empty')
        return value

    def number(self, key: str) -> int | None:
        """Return an integer field (None when absent)."""
        if key not in self.item:
            return None
        value = self.item[key]
        if not isinstance(value, int) or isinstance(value, bool):
            raise self._refuse(f'"{key}" must be an integer, not {json_type(value)}')
        return value

    def flag(self, key: str) -> bool | None:
        """Return a true-or-false field (None when absent)."""
        if key not in self.item:
            return None
        value = self.item[key]
        if not isinstance(value, bool):
            raise self._refuse(f'"{key}" must be true or false, not {json_type(value)}')
        return value

    def mapping(self, key: str) -> Mapping[str, Any] | None:
        """Return an object field (None when absent or null)."""
        value = self.item.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self._refuse(f'"{key}" must be an object, not {json_type(value)}')
        return value
