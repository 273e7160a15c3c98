"""gitleaks reports (``gitleaks detect --report-format json``): one JSON array of findings.

Each element is decoded where it starts, so that a finding refused names
its own line. gitleaks reports a credential's public identifier as the
secret when its rule finds one (``aws-access-token``: the key id): what
the installed :class:`~rotator.adapters.scanning.CredentialFormat` s read
as an identifier is kept as one, never as a value.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

from rotator.adapters.scanning import CredentialFormat, is_identifier
from rotator.adapters.secret import SecretValue
from rotator.watch.findings import Finding, FindingFields, ReportError, json_type, printable

TOOL = "gitleaks"
#: What ``gitleaks --redact`` writes instead of the secret.
_REDACTED = "REDACTED"


def _line_of(text: str, position: int) -> int:
    return text.count("\n", 0, position) + 1


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


def _array_items(text: str, source: str) -> Iterator[tuple[int, object]]:
    """Yield ``(line, item)`` for each element of a top-level JSON array.

    Each element is decoded by the json module where it starts, so that a
    finding's own line is known when it has to be refused.
    """
    decoder = json.JSONDecoder()
    position = _skip_space(text, 0)
    if text[position : position + 1] != "[":
        hint = (
            " (trufflehog JSON lines? use --scanner trufflehog)"
            if text[position:][:1] == "{"
            else ""
        )
        raise ReportError(
            source,
            _line_of(text, position),
            f"a gitleaks JSON report is a JSON array of findings{hint}",
        )
    position = _skip_space(text, position + 1)
    if text[position : position + 1] == "]":
        position += 1
    else:
        while True:
            start = position
            try:
                item, position = decoder.raw_decode(text, position)
            except json.JSONDecodeError as exc:
                raise ReportError(
                    source, exc.lineno, f"not valid JSON: {exc.msg} (column {exc.colno})"
                ) from None
            yield _line_of(text, start), item
            position = _skip_space(text, position)
            following = text[position : position + 1]
            if following == ",":
                position = _skip_space(text, position + 1)
                continue
            if following == "]":
                position += 1
                break
            raise ReportError(
                source,
                _line_of(text, position),
                "not valid JSON: expected ',' or ']' after a finding"
                if following
                else "not valid JSON: the array is not closed",
            )
    rest = _skip_space(text, position)
    if rest < len(text):
        raise ReportError(
            source, _line_of(text, rest), "not valid JSON: extra data after the array"
        )


def parse(text: str, source: str, formats: Sequence[CredentialFormat]) -> Iterator[Finding]:
    """Parse ``gitleaks detect --report-format json`` output, finding by finding.

    Raises:
        ReportError: the report is not valid (names ``source`` and the line).
    """
    if text.strip() == "null":
        return
    for number, (line, item) in enumerate(_array_items(text, source), start=1):
        what = f"finding {number}"
        if not isinstance(item, dict):
            raise ReportError(source, line, f"{what} is a JSON {json_type(item)}, not an object")
        fields = FindingFields(item, source, line, what)
        secret = fields.text("Secret", required=True)
        fields.text("Match")  # type-checked only: it holds the secret too, and is never kept
        key_ids: tuple[str, ...] = ()
        values: tuple[SecretValue, ...] = ()
        # A rule that finds an identifier (aws-access-token) reports it as the secret.
        if is_identifier(formats, secret):
            key_ids = (secret,)
        else:
            values = (SecretValue(secret),)
        yield Finding(
            tool=TOOL,
            number=number,
            report_line=line,
            file=printable(fields.text("File")),
            line=fields.number("StartLine"),
            commit=printable(fields.text("Commit")),
            rule=printable(fields.text("RuleID") or fields.text("Description")),
            fingerprint=printable(fields.text("Fingerprint")),
            key_ids=key_ids,
            values=values,
            redacted=secret == _REDACTED or secret.endswith("..."),
        )
