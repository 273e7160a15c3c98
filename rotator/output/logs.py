"""Logging: structlog, JSON for machines, console for people, secrets scrubbed.

One pipeline of small processors serves rotator's own events and the
standard-library records of the SDKs (botocore, urllib3, ...). The last
processor before rendering is :func:`scrub_secrets`, which masks every
registered secret value (see :mod:`rotator.output.redact`) and every value under a
key that names a secret.

SDK loggers are *held* (:class:`HoldSdkRecords`): their records below
WARNING are dropped whatever the level asked for (botocore prints request
and response bodies at DEBUG, and a freshly minted key is in a response
before any code of ours has seen it), and the others keep only their fixed
words. An SDK's message quotes what it could not parse (azure-identity
logged a managed-identity answer whole, access token included, when its
JSON was malformed): a token no code of ours has seen cannot be scrubbed,
so the arguments, exception and traceback of a held record are left out,
keeping only names, numbers and exception types.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from rotator.output import redact

#: Loggers of SDKs and their transports (and their children), held: never
#: below WARNING, and never their arguments (see :class:`HoldSdkRecords`).
SDK_LOGGERS = (
    # Older kubernetes clients log response bodies (Secret data) at DEBUG.
    "kubernetes",
    "botocore",
    "boto3",
    "urllib3",
    "s3transfer",
    "hvac",
    # azure.identity, azure.core, azure.keyvault, azure.mgmt...
    "azure",
    # What azure-identity's managed identity and service principals use.
    "msal",
    "msal_extensions",
    "requests",
    "oauthlib",
    "requests_oauthlib",
    "websocket",
    "httpx",
    "httpcore",
    "jwt",
    "werkzeug",
    "moto",
)
#: Keys whose values are masked whatever they hold.
SECRET_KEYS = frozenset(
    {
        "secret",
        "password",
        "token",
        "value",
        "secret_value",
        "secretaccesskey",
        "secret_access_key",
        "api_key",
        "client_secret",
    }
)
# "secret" is also the policy name we bind to every line; it is not a value.
_NAME_KEYS = frozenset({"secret"})


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return redact.scrub(value)
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_scrub(v) for v in value)
    return value


def is_held(name: str) -> bool:
    """Tell whether logger ``name`` is an SDK's (one of :data:`SDK_LOGGERS` or a child)."""
    return any(name == held or name.startswith(held + ".") for held in SDK_LOGGERS)


#: An argument of a held record kept as is: a name (``ManagedIdentityCredential``,
#: ``get_token``), never digits, quotes or anything a token is made of.
_NAME = re.compile(r"[A-Za-z_][A-Za-z_.]{0,63}")
#: A held record's message without arguments kept as is: plain words only.
_WORDS = re.compile(r"[A-Za-z ,.;:()'_-]{0,300}")
_WITHHELD = "<withheld>"


def _held_argument(value: object) -> object:
    """Return what a held record may show of one argument: a number, a name or a type."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, BaseException):
        return type(value).__name__
    if isinstance(value, str):
        return value if _NAME.fullmatch(value) else _WITHHELD
    return f"<{type(value).__name__}>"


def held_message(record: logging.LogRecord) -> str:
    """Return the message of an SDK's record with every argument reduced to a safe form.

    The format string is the SDK's own fixed text; each argument becomes a
    number, a plain name, an exception's type or ``<withheld>``. A message
    logged without arguments is kept only if it is plain words.
    """
    template = record.msg if isinstance(record.msg, str) else ""
    args = record.args
    if template and args:
        reduced: object
        if isinstance(args, Mapping):
            reduced = {key: _held_argument(value) for key, value in args.items()}
        else:
            reduced = tuple(_held_argument(value) for value in args)
        try:
            return template % reduced
        except (TypeError, ValueError, KeyError):
            return f"{template} (arguments withheld)"
    if template and _WORDS.fullmatch(template):
        return template
    return f"a message of {record.name} withheld (it may quote a request or an answer)"


class HoldSdkRecords(logging.Filter):
    """Drop an SDK's records below WARNING; strip the others to their fixed words.

    Set on rotator's handler, so every logger below an SDK's is held
    whatever level it was set to. What is left still goes through
    :func:`scrub_secrets`, as every line does.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Return False for a held record below WARNING; reduce any other held record."""
        if not is_held(record.name):
            return True
        if record.levelno < logging.WARNING:
            return False
        record.msg = held_message(record)
        record.args = None
        # An exception's text and a traceback's frames may hold a request or an answer.
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        return True


def scrub_secrets(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    """Mask registered secret values anywhere in the event, and secret-named keys."""
    for key, value in list(event_dict.items()):
        if key.lower() in SECRET_KEYS and key not in _NAME_KEYS and value is not None:
            event_dict[key] = redact.MASK
        else:
            event_dict[key] = _scrub(value)
    return event_dict


def configure(fmt: str | None = None, level: str = "info", stream: TextIO | None = None) -> None:
    """Set up structlog and the standard library for ``fmt`` ("json" or "console")."""
    stream = stream or sys.stderr
    if fmt is None:
        fmt = "console" if sys.stdout.isatty() else "json"
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        scrub_secrets,
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(
            colors=stream.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    )
    handler = logging.StreamHandler(stream)
    handler.addFilter(HoldSdkRecords())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    for name in SDK_LOGGERS:
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))
    structlog.configure(
        # An event below the level is dropped first, not scrubbed and stamped
        # to be dropped by the standard library after (a debug line per step).
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
