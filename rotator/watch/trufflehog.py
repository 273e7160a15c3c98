"""trufflehog v3 reports (``trufflehog ... --json``): one finding object per line.

Log lines merged into the report (trufflehog's stderr) are skipped. A
finding's ``Raw`` is the secret, or a credential's public identifier where
the installed :class:`~rotator.adapters.scanning.CredentialFormat` s read
it as one; ``RawV2``, when present, may hold an identifier and its secret
together, and every form of that secret a store may hold is kept to compare.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from rotator.adapters.scanning import CredentialFormat, is_identifier, pair
from rotator.adapters.secret import SecretValue
from rotator.watch.findings import Finding, FindingFields, ReportError, json_type, printable

TOOL = "trufflehog"


def _is_log_line(item: Mapping[str, Any]) -> bool:
    """Tell a trufflehog log line (its stderr merged into the report) from a finding."""
    return (
        "msg" in item
        and "level" in item
        and not {"SourceMetadata", "DetectorName", "Raw"} & item.keys()
    )


def parse(text: str, source: str, formats: Sequence[CredentialFormat]) -> Iterator[Finding]:
    """Parse ``trufflehog ... --json`` output: one finding object per line.

    Raises:
        ReportError: a line is not a finding (names ``source`` and the line).
    """
    number = 0
    for line, raw_line in enumerate(text.split("\n"), start=1):
        body = raw_line.strip()
        if not body:
            continue
        try:
            item = json.loads(body)
        except json.JSONDecodeError as exc:
            indent = len(raw_line) - len(raw_line.lstrip())
            raise ReportError(
                source,
                line,
                f"not valid JSON: {exc.msg} (column {exc.colno + indent})" + _lines_hint(text),
            ) from None
        if not isinstance(item, dict):
            raise ReportError(
                source,
                line,
                f"a JSON {json_type(item)}, not an object: trufflehog --json writes one "
                "finding object per line" + _lines_hint(text),
            )
        if _is_log_line(item):
            continue
        number += 1
        yield _finding(FindingFields(item, source, line, f"finding {number}"), number, formats)


def _lines_hint(text: str) -> str:
    """Say what a whole report that is not JSON lines seems to be instead."""
    try:
        whole = json.loads(text)
    except ValueError:
        return ""
    if isinstance(whole, list):
        return " (the report is one JSON array: a gitleaks report? use --scanner gitleaks)"
    if isinstance(whole, dict):
        return " (the report is one JSON object over several lines, not trufflehog --json output)"
    return ""


def _finding(fields: FindingFields, number: int, formats: Sequence[CredentialFormat]) -> Finding:
    """Return one finding: its place, detector, identifiers and leaked values."""
    raw = fields.text("Raw", required=True)
    raw_v2 = fields.text("RawV2")
    detector = fields.text("DetectorName")
    verified = fields.flag("Verified")
    file, line, commit = _place(fields)
    key_ids: list[str] = []
    values: list[SecretValue] = []
    # Some detectors' Raw is an identifier (AWS: the key id); anything else is the secret.
    if is_identifier(formats, raw):
        key_ids.append(raw)
    else:
        values.append(SecretValue(raw))
    if raw_v2:
        values.append(SecretValue(raw_v2))
        both = pair(formats, raw_v2)
        if both is not None:
            if both.identifier not in key_ids:
                key_ids.append(both.identifier)
            # The secret part in every form the stores and the journal may hold it.
            values.extend(both.values)
    return Finding(
        tool=TOOL,
        number=number,
        report_line=fields.line,
        file=printable(file),
        line=line,
        commit=printable(commit),
        rule=printable(detector),
        verified=verified,
        key_ids=tuple(key_ids),
        values=tuple(values),
    )


def _place(fields: FindingFields) -> tuple[str, int | None, str]:
    """Return ``(file, line, commit)`` from ``SourceMetadata.Data.<source>``."""
    metadata = fields.mapping("SourceMetadata")
    if metadata is None:
        return "", None, ""
    data = FindingFields(metadata, fields.source, fields.line, f"{fields.what}: SourceMetadata")
    sources = data.mapping("Data")
    if not sources:
        return "", None, ""
    # One key names the source (Git, Github, Filesystem, ...); its object says where.
    kind = next(iter(sources))
    detail = FindingFields(
        sources, fields.source, fields.line, f"{fields.what}: SourceMetadata.Data"
    )
    place = detail.mapping(kind)
    if place is None:
        return "", None, ""
    where = f"{fields.what}: SourceMetadata.Data.{printable(kind)}"
    spot = FindingFields(place, fields.source, fields.line, where)
    return spot.text("file") or spot.text("link"), spot.number("line"), spot.text("commit")
