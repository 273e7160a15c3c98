"""Logging: structlog, JSON for machines, console for people, secrets scrubbed.

One pipeline of small processors serves rotator's own events and the
standard-library records of the SDKs (botocore, urllib3, ...). The last
processor before rendering is :func:`scrub_secrets`, which masks every
registered secret value (see :mod:`rotator.redact`) and every value under a
key that names a secret. SDK loggers are held at WARNING whatever the level
asked for: botocore prints request and response bodies at DEBUG, and a
freshly minted key is in a response before any code of ours has seen it.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from rotator import redact

#: Loggers of SDKs and their transports, never allowed below WARNING.
SDK_LOGGERS = (
    # Older kubernetes clients log response bodies (Secret data) at DEBUG.
    "kubernetes",
    "botocore",
    "boto3",
    "urllib3",
    "s3transfer",
    "hvac",
    "azure",
    "requests",
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
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
