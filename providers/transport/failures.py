"""Translate an outside system's failure without letting it say more than it should.

**Outcomes.** Each request an adapter makes is reported (see
:mod:`providers.metering`) as one of :data:`rotator.adapters.roles.OUTCOMES`,
judged from its HTTP status by :func:`status_outcome`, the one rule every
adapter shares:

- ``throttled``: 429;
- ``transient``: 408, and a 5xx but 501 (:func:`may_pass`). A 501 says the
  server does not do this at all, which no retry changes (the SDKs of AWS
  and Azure do not retry it either);
- ``ok``: a 2xx;
- ``permanent``: anything else, a redirect (3xx) included: an adapter
  never follows one, so the request did not do what it was sent for.

A provider adds what only it knows, passed in rather than written again:
the error codes that mean "slow down" or "may pass" (AWS's
``ThrottlingException``, Key Vault's ``ObjectIsBeingDeleted``), and the
statuses it retries itself (Kubernetes' 409). The errors an adapter raises
agree with these outcomes: ``TransientError`` exactly for ``throttled`` and
``transient`` (:func:`error_outcome` goes the other way).

**Vetting.** An error code or a request id is the one piece of an answer a
message may repeat, once :func:`vetted` has checked that, scrubbed, it still
looks like one.

**Defusing.** A translated SDK exception is raised ``from None``, but Python
keeps it as the new error's ``__context__`` whatever the adapter does, and
anything walking the chain (a debugger, an error tracker) can read it.
:func:`defuse` empties it first.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from contextlib import suppress
from typing import Literal

from rotator.adapters import redact
from rotator.errors import ProviderError, TransientError

Outcome = Literal["ok", "throttled", "transient", "permanent"]


def may_pass(status: int) -> bool:
    """Tell whether HTTP ``status`` is a failure that may pass: 408, 429, a 5xx but 501."""
    return status in (408, 429) or (status >= 500 and status != 501)


def status_outcome(
    status: int,
    code: str = "",
    *,
    throttling: Collection[str] = (),
    passing: Collection[str] = (),
    passing_statuses: Collection[int] = (),
) -> Outcome:
    """Return how an answer with HTTP ``status`` (and error ``code``, if any) ends (see the module).

    ``throttling`` and ``passing`` are the provider's error codes that make
    the answer ``throttled`` or ``transient`` whatever its status;
    ``passing_statuses`` the statuses it counts as transient besides the
    shared ones. An answer carrying any other error code is ``permanent``,
    even with a 2xx status.
    """
    if status == 429 or (code and code in throttling):
        return "throttled"
    if may_pass(status) or status in passing_statuses or (code and code in passing):
        return "transient"
    if code or not 200 <= status < 300:
        return "permanent"
    return "ok"


def error_outcome(error: ProviderError) -> Outcome:
    """Return how a request that ended in ``error`` (already translated) ends: transient or not."""
    return "transient" if isinstance(error, TransientError) else "permanent"


def vetted(raw: object, pattern: re.Pattern[str], limit: int) -> str:
    """Return ``raw`` as text if, scrubbed and cut to ``limit``, it is all ``pattern``; else ``""``.

    For an error code or a request id taken from an answer, which a server
    may fill with what it was sent: scrubbed first, a registered value
    echoed back is masked, no longer looks like a code, and is dropped.
    """
    text = redact.outside_text(str(raw or ""), limit)
    return text if pattern.fullmatch(text) else ""


#: Attributes in which SDK exceptions keep outside text, and what each is set to:
#: text (``message``) becomes the summary, ``kwargs`` (botocore's, which its
#: text is formatted from) an empty dict, anything else None. Between them:
#: hvac (``errors``, ``text``, ``json``), requests (``request``, ``response``),
#: botocore (``kwargs``, ``response``), the kubernetes client (``body``,
#: ``headers``, ``data``, ``reason``, ``http_resp``), urllib3 (``reason``) and
#: azure-core (``message``, ``exc_msg``, ``response``, ``error``, ``model``,
#: ``inner_exception``, ``exc_type``, ``exc_value``, ``exc_traceback``), psycopg
#: (``_pgconn``: the failed connection, its password included; ``_info``: the
#: server's error, which can quote the statement) and PyMySQL
#: (``original_exception``, ``traceback``: a failed connect's cause, whose frames
#: hold the connection and its password).
_TEXT_ATTRIBUTES = ("message", "exc_msg")
_HELD_ATTRIBUTES = (
    "_info",
    "_pgconn",
    "body",
    "data",
    "error",
    "errors",
    "exc_traceback",
    "exc_type",
    "exc_value",
    "headers",
    "http_resp",
    "inner_exception",
    "json",
    "model",
    "original_exception",
    "reason",
    "request",
    "response",
    "text",
    "traceback",
)


def defuse(exc: BaseException, summary: str) -> None:
    """Empty a translated SDK exception of everything that could hold a secret.

    Its text becomes ``summary`` (words of our own: an exception name, an
    operation, a vetted error code); what it kept of the answer or the
    request (a response whose request carries the body sent, a parsed error
    quoting a submitted value, an inner exception) is dropped; so are its
    own cause, context and notes, and its traceback, whose frames hold the
    request's parameters as local variables. An attribute a class does not
    let us set is left as it is.
    """
    exc.args = (summary,)
    for name in _TEXT_ATTRIBUTES:
        _replace(exc, name, summary)
    for name in _HELD_ATTRIBUTES:
        _replace(exc, name, None)
    if isinstance(getattr(exc, "kwargs", None), dict):
        _replace(exc, "kwargs", {})
    with suppress(AttributeError):
        del exc.__notes__
    exc.__cause__ = None
    exc.__context__ = None
    exc.__traceback__ = None


def _replace(exc: BaseException, name: str, empty: object) -> None:
    """Set attribute ``name`` of ``exc`` to ``empty`` if it holds something."""
    if getattr(exc, name, None) is None:
        return
    with suppress(AttributeError, TypeError):  # a read-only property, or a slot of a native class
        setattr(exc, name, empty)
