"""A secret value that never shows itself by accident.

:class:`SecretValue` wraps a credential (a string, or a flat mapping such as
``{"AccessKeyId": ..., "SecretAccessKey": ...}``). Its ``repr`` and ``str``
are masked, and every value created is registered with
:mod:`rotator.output.redact`, so that the logging pipeline can scrub it from any
line, including lines written by an SDK at DEBUG level.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import NoReturn, Union

from rotator.output import redact

Plain = Union[str, Mapping[str, str]]

#: Fields of a mapping value that identify a credential rather than prove it
#: (an IAM access key id appears in CloudTrail and in every signed request).
#: They are not scrubbed from logs, so that a log can say which key was revoked.
PUBLIC_FIELDS = frozenset({"AccessKeyId"})


class SecretValue:
    """A credential value; masked when printed, registered for redaction."""

    __slots__ = ("_value",)

    def __init__(self, value: Plain) -> None:
        if isinstance(value, Mapping):
            value = {str(k): str(v) for k, v in value.items()}
            for name, leaf in value.items():
                if name not in PUBLIC_FIELDS:
                    redact.register(leaf)
            redact.register(json.dumps(value, sort_keys=True))
            redact.register(json.dumps(value))
            # The compact form text() returns: what hooks, headers and bodies carry.
            redact.register(json.dumps(value, sort_keys=True, separators=(",", ":")))
        else:
            redact.register(value)
        self._value: Plain = value

    def reveal(self) -> Plain:
        """Return the plain value; only adapters call this, at the moment they send it."""
        return self._value

    def text(self) -> str:
        """Return the value as one string (a mapping as compact sorted JSON)."""
        if isinstance(self._value, Mapping):
            return json.dumps(self._value, sort_keys=True, separators=(",", ":"))
        return self._value

    def fields(self, *names: str) -> tuple[str, ...] | None:
        """Return the named string fields of a mapping value, or ``None`` if any is missing.

        A string holding a JSON object counts as a mapping (a store may hand
        back a key pair as text).
        """
        plain: object = self._value
        if isinstance(plain, str):
            try:
                plain = json.loads(plain)
            except ValueError:
                return None
        if not isinstance(plain, Mapping):
            return None
        found = tuple(plain.get(name) for name in names)
        if not all(isinstance(v, str) for v in found):
            return None
        return tuple(str(v) for v in found)

    def is_mapping(self) -> bool:
        """Tell whether the value is a mapping of fields rather than one string."""
        return isinstance(self._value, Mapping)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretValue) and self.text() == other.text()

    def __hash__(self) -> int:
        return hash(self.text())

    def __repr__(self) -> str:
        return "SecretValue('**********')"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("SecretValue cannot be pickled")
