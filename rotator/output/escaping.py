"""Escaping for each output format, so that text from outside stays text.

Rotator prints names, paths, reasons and error messages that other people
and remote systems wrote (a policy file, an API's error, a scanner's
report). Wherever such text goes it must be shown, never obeyed: control
characters must not drive the terminal, a cell must not become a
spreadsheet formula, and a table cell must not become Markdown or HTML.
Rich markup is handled where the consoles are (:func:`rotator.cli.console.plain`).
"""

from __future__ import annotations

import re

#: C0 and C1 controls, DEL, and the Unicode marks that reorder or break lines
#: (a bidi override makes a terminal or a web page show text other than it is).
_CONTROLS = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

#: What makes a spreadsheet read a cell as a formula (OWASP "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

#: Characters that are Markdown or HTML in a GitHub-flavoured table cell.
_MARKDOWN = str.maketrans(
    {
        **{c: "\\" + c for c in "\\`*_[]~$|"},
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
    }
)


def printable(text: str) -> str:
    """Return ``text`` with control characters written as escapes (``\\x1b``), not obeyed."""
    return _CONTROLS.sub(_escape_control, text)


def _escape_control(found: re.Match[str]) -> str:
    char = found.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")


def csv_cell(value: object) -> object:
    """Return a CSV value a spreadsheet shows as text: a formula-like string gets a ``'`` first."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _one_line(text: str) -> str:
    """Return ``text`` on one line (a newline would end the table row) with controls escaped."""
    return printable(" ".join(text.split()))


def markdown_cell(text: str) -> str:
    """Return ``text`` for a GitHub-flavoured Markdown table cell: one line, literal, no HTML."""
    return _one_line(text).translate(_MARKDOWN)


def markdown_code(text: str) -> str:
    """Return ``text`` as an inline code span for a Markdown table cell.

    Inside a code span only ``|`` can be escaped, so text with a backslash
    or a backtick (which would end the span early) falls back to
    :func:`markdown_cell`.
    """
    line = _one_line(text)
    if not line or "\\" in line or "`" in line:
        return markdown_cell(text)
    return "`" + line.replace("|", "\\|") + "`"


def bytes_repr(value: object) -> str:
    """Return the repr of bytes a journal column held (SQLite keeps them where rotator writes text).

    For ``json.dumps(default=...)``: anything else JSON has no type for is
    a mistake, and still raises TypeError.
    """
    if isinstance(value, bytes):
        return repr(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
