"""Reading a secret scanner's report: which tool wrote it, and its findings.

``rotator leaks ingest`` reads gitleaks (``gitleaks detect --report-format
json``: one JSON array of findings) and trufflehog v3 (``trufflehog ...
--json``: one JSON object per line). What a credential's public identifier
looks like is asked of the installed providers
(:func:`rotator.adapters.scanning.credential_formats`).
"""

from __future__ import annotations

from collections.abc import Sequence

from rotator.adapters.scanning import CredentialFormat, credential_formats
from rotator.errors import ConfigError
from rotator.watch import gitleaks, trufflehog
from rotator.watch.findings import Report, ReportError

GITLEAKS = gitleaks.TOOL
TRUFFLEHOG = trufflehog.TOOL
TOOLS = (GITLEAKS, TRUFFLEHOG)


def parse_report(
    data: bytes,
    source: str,
    tool: str | None = None,
    formats: Sequence[CredentialFormat] | None = None,
) -> Report:
    """Parse a gitleaks or trufflehog report (``tool`` None: tell them apart by content).

    A JSON array is gitleaks; anything else is read as trufflehog's JSON
    lines (an empty input is trufflehog's answer when it finds nothing).
    ``formats`` tell a credential's public identifier from a secret (None:
    those the installed providers register).

    Raises:
        ReportError: the report is not valid; the message names ``source``,
            the line and the reason, never a value.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ReportError(source, line, f"not UTF-8 text (byte {exc.start + 1})") from None
    if tool is None:
        tool = detect(text)
    known = credential_formats() if formats is None else formats
    if tool == GITLEAKS:
        return Report(source, GITLEAKS, tuple(gitleaks.parse(text, source, known)))
    if tool == TRUFFLEHOG:
        return Report(source, TRUFFLEHOG, tuple(trufflehog.parse(text, source, known)))
    raise ConfigError(f"unknown report format {tool!r}: expected one of {', '.join(TOOLS)}")


def detect(text: str) -> str:
    """Tell which tool wrote a report: a JSON array is gitleaks, JSON lines trufflehog."""
    head = text.lstrip()
    # gitleaks is written in Go, which encodes a list never filled as null.
    if head.startswith("[") or head.rstrip() == "null":
        return GITLEAKS
    return TRUFFLEHOG
