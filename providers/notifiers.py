"""Notifiers ``webhook``, ``slack`` and ``exec``: how people hear about alerts.

A policy file declares its notifiers once, by name, at its top; the engine
reads the ``kind`` and ``events`` keys and hands the remaining fields to the
kind's ``Config``. Each ``send`` makes exactly one delivery attempt: the
engine retries with backoff and deduplicates on ``Alert.key``, so nothing
here loops or sleeps. ``send`` raises ``TransientError`` when trying again
may help (HTTP 408, 429 and a 5xx but 501, a timeout, a refused or lost connection,
exit status 75, a command outliving its timeout), with ``delay`` set from
``Retry-After`` when the receiver sent one; ``PermanentError`` otherwise
(``PermissionDeniedError`` for 401/403 or a command that is not executable,
``NotFoundError`` for 404/410 or a command that does not exist).

**webhook** POSTs ``alert.as_dict()`` as compact JSON, with
``X-Rotator-Alert-Key`` and ``Idempotency-Key`` carrying ``alert.key`` (a
retried alert carries the same key, so a receiver can drop the repeat), and,
when ``secret_env`` names a variable holding an HMAC key, the signature of
the ``webhook`` target (``X-Rotator-Timestamp``, ``X-Rotator-Signature:
sha256=<HMAC-SHA256(key, "<timestamp>.<body>")>``). Unsigned alerts can be
forged by anyone who can reach the receiver: sign them unless the receiver
is on a trusted network. URL checks, TLS, the ban on redirects and the
proxy (``HTTPS_PROXY``/``NO_PROXY``, or the ``proxy`` field) are those of the
``webhook`` target (:mod:`providers.transport.http`).

**slack** POSTs a message in Slack's incoming-webhook format (``text``, the
notification fallback, and ``blocks``) to the URL held in the environment
variable ``url_env``: that URL is the credential (its path is the token),
so it never appears in a policy, a description, a message or a log line.
Any https:// URL (or http:// to loopback) is accepted, so Slack-compatible
receivers such as Mattermost work too. Slack answers 200 ``ok``, or a status
with a plain-text code (``no_service``, ``channel_is_archived``...) that is
turned into a message saying what to do.

**exec** runs ``command`` (no shell) with the alert's JSON on its standard
input, its output discarded, in the small environment of the ``exec``
target (:mod:`providers.transport.commands`) plus ``ROTATOR_ALERT_EVENT``,
``ROTATOR_ALERT_SEVERITY``, ``ROTATOR_ALERT_KEY``, ``ROTATOR_SECRET`` (empty
when the alert is about no secret) and ``ROTATOR_NOTIFIER``.

Every attempt is reported through :func:`providers.metering.report`: provider
``webhook``, ``slack`` or ``exec``, operation ``alert.post`` (``alert.run``
for exec).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Mapping
from datetime import UTC, timedelta
from typing import Any, ClassVar
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from providers.metering import report
from providers.transport.commands import (
    CommandConfig,
    environment,
    exit_outcome,
    raise_for_exit,
    run,
)
from providers.transport.http import (
    POST_RESERVED,
    EndpointConfig,
    Reply,
    TransportConfig,
    checked_headers,
    checked_url,
    hmac_key,
    refusal,
    request_once,
    request_outcome,
    signature_headers,
    tls_context,
    without_query,
)
from rotator.adapters import Alert, AlertEvent, Notifier, Runtime, Severity, redact
from rotator.errors import PermanentError, TransientError

WEBHOOK = "webhook"
SLACK = "slack"
EXEC = "exec"
OP_POST = "alert.post"
OP_RUN = "alert.run"
#: The operation exec errors name (``exec:alert: command page-oncall (alert) ...``).
PHASE = "alert"

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Headers the webhook notifier sets itself, which a policy may not set.
_NOTIFIER_RESERVED = POST_RESERVED | {"idempotency-key", "user-agent"}
#: Longest alert key sent as is in a header; a longer one is sent as its SHA-256.
_MAX_HEADER_KEY = 256

log = logging.getLogger(__name__)


def _env_name(field: str, value: str) -> str:
    """Return ``value`` if it can name an environment variable; ValueError naming ``field``."""
    if not _ENV_NAME.fullmatch(value):
        raise ValueError(f"{field} {value!r} is not an environment variable name")
    return value


def _json(alert: Alert) -> bytes:
    """Return the alert as the compact JSON the webhook and exec notifiers send."""
    return json.dumps(alert.as_dict(), separators=(",", ":")).encode("utf-8")


def _printable_key(key: str) -> str:
    """Return ``key`` if it is short printable ASCII (a header can carry it), else its SHA-256."""
    if len(key) <= _MAX_HEADER_KEY and all(" " <= c <= "~" for c in key):
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def _post(
    runtime: Runtime,
    provider: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    timeout: timedelta,
    ca_file: str | None,
    proxy: str | None,
) -> Reply:
    """POST ``body`` once and report the attempt; raises only for an unusable ``ca_file``."""
    context = tls_context(runtime, ca_file, provider, OP_POST)
    reply = request_once(
        url, "POST", headers, body, timeout.total_seconds(), context, runtime.clock(), proxy
    )
    report(runtime, provider, OP_POST, request_outcome(reply))
    return reply


def _retry_later(reply: Reply, where: str, provider: str, hint: str = "") -> TransientError:
    """Return the TransientError of a 408, 429, 5xx (not 501) or lost request, delayed as asked."""
    said = f" {reply.said()}" if reply.status is not None else f": {reply.said()}"
    return TransientError(
        f"{where}{said}{hint}; try again later",
        provider=provider,
        operation=OP_POST,
        delay=reply.retry_after,
    )


# -- webhook ------------------------------------------------------------------


class WebhookNotifierConfig(EndpointConfig):
    """Policy fields of the ``webhook`` notifier; the URL, TLS and timeout ones are the target's."""

    #: Name of the environment variable holding the HMAC key; unset: alerts go unsigned.
    secret_env: str | None = None
    #: Extra static headers, never secret (policies are not secret).
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("secret_env")
    @classmethod
    def _env_ok(cls, value: str | None) -> str | None:
        return None if value is None else _env_name("secret_env", value)

    @field_validator("headers")
    @classmethod
    def _headers_ok(cls, value: dict[str, str]) -> dict[str, str]:
        return checked_headers(value, _NOTIFIER_RESERVED)


class WebhookNotifier(Notifier[WebhookNotifierConfig]):
    """POSTs the alert as JSON, signed with HMAC-SHA256 when ``secret_env`` is set."""

    kind = "webhook"
    #: httpx carries the requests (:mod:`providers.transport.http`).
    Config = WebhookNotifierConfig
    example: ClassVar[Mapping[str, object]] = {
        "url": "https://alerts.example.com/hooks/rotator",
        "secret_env": "ROTATOR_ALERT_HMAC_KEY",
    }
    docs = "docs/notifiers.md#webhook"

    def describe(self) -> str:
        """Return ``webhook:<url>`` (without its query)."""
        return f"{WEBHOOK}:{without_query(self.config.url)}"

    def send(self, alert: Alert) -> None:
        """POST the alert once.

        Raises:
            TransientError: 408, 429, a 5xx but 501, a timeout or no connection
                (``delay`` from ``Retry-After``).
            PermissionDeniedError: 401 or 403.
            NotFoundError: 404 or 410.
            PermanentError: ``secret_env`` is unset, any other answer (a
                redirect included), or the certificate was refused.
        """
        body = _json(alert)
        key = _printable_key(alert.key)
        headers = {
            **self.config.headers,
            "Content-Type": "application/json",
            "User-Agent": "rotator-notifier",
            "X-Rotator-Event": alert.event.value,
            "X-Rotator-Alert-Key": key,
            # An IETF Idempotency-Key is a structured-field string: quoted.
            "Idempotency-Key": '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"',
        }
        if self.config.secret_env is not None:
            secret = hmac_key(self.config.secret_env, "the HMAC key of alerts", WEBHOOK, OP_POST)
            stamp = int(self.runtime.clock().timestamp())
            headers.update(signature_headers(secret, stamp, body))
        where = without_query(self.config.url)
        reply = _post(
            self.runtime,
            WEBHOOK,
            self.config.url,
            headers,
            body,
            self.config.timeout,
            self.config.ca_file,
            self.config.proxy,
        )
        outcome = request_outcome(reply)
        if outcome == "ok":
            log.debug("notifier %s: %s alert delivered to %s", self.secret, alert.event, where)
            return
        if outcome == "permanent":
            denied = (
                "the receiver refused the alert (does it hold the same HMAC key?)"
                if self.config.secret_env is not None
                else "the receiver refused the alert (does it expect a signature? set secret_env)"
            )
            raise refusal(reply, where, WEBHOOK, OP_POST, denied)
        raise _retry_later(reply, where, WEBHOOK)


# -- slack --------------------------------------------------------------------


class SlackConfig(TransportConfig):
    """Policy fields of the ``slack`` notifier: where to find the webhook URL, never the URL."""

    #: Name of the environment variable holding the incoming-webhook URL (a secret).
    url_env: str

    @model_validator(mode="before")
    @classmethod
    def _no_url(cls, data: Any) -> Any:
        if isinstance(data, dict) and "url" in data:
            raise ValueError(
                "url: a Slack webhook URL is a credential (its path is the token) and "
                "policies are not secret; put it in an environment variable named by url_env"
            )
        return data

    @field_validator("url_env")
    @classmethod
    def _env_ok(cls, value: str) -> str:
        return _env_name("url_env", value)


#: What Slack's plain-text error codes mean, and what to do; ``{env}`` is url_env.
SLACK_CODES = {
    "invalid_payload": "Slack could not read the message (a bug in rotator: please report it)",
    "invalid_blocks": "Slack refused the message's blocks (a bug in rotator: please report it)",
    "invalid_blocks_format": "Slack refused the message's blocks (a bug in rotator: "
    "please report it)",
    "no_text": "Slack found no text in the message (a bug in rotator: please report it)",
    "user_not_found": "the user the webhook posts to does not exist",
    "action_prohibited": "an admin restriction forbids this webhook from posting there",
    "posting_to_general_channel_denied": "only admins may post to the channel this webhook "
    "posts to",
    "channel_not_found": "the webhook's channel does not exist any more; "
    "create a new incoming webhook and put its URL in {env}",
    "channel_is_archived": "the webhook's channel is archived; unarchive it, or create "
    "a new incoming webhook and put its URL in {env}",
    "no_service": "the incoming webhook does not exist any more (revoked, or its app "
    "removed); create a new one and put its URL in {env}",
    "no_service_id": "the webhook URL in {env} is incomplete",
    "no_team": "the webhook URL in {env} names no workspace",
    "team_disabled": "the Slack workspace is disabled",
    "invalid_token": "the webhook URL's token is not valid; create a new incoming webhook "
    "and put its URL in {env}",
    "rollup_error": "Slack failed on its side",
}

_EMOJI = {
    Severity.CRITICAL: ":rotating_light:",
    Severity.WARNING: ":warning:",
    Severity.INFO: ":information_source:",
}
_TITLES = {
    AlertEvent.ROTATION_FAILED: "Rotation failed",
    AlertEvent.NEEDS_ATTENTION: "Needs attention",
    AlertEvent.OLD_STILL_IN_USE: "Old credential still in use",
    AlertEvent.REVOKED_CREDENTIAL_USED: "Revoked credential used",
    AlertEvent.OVERDUE: "Rotation overdue",
    AlertEvent.ROTATION_DUE: "Rotation due (by hand)",
    AlertEvent.ROTATION_SUCCEEDED: "Rotation succeeded",
    AlertEvent.EMERGENCY: "Emergency rotation",
    AlertEvent.IDENTIFIER_LEAKED: "Identifier leaked (no secret part)",
    AlertEvent.AUDIT_CHAIN_BROKEN: "Audit chain broken",
    AlertEvent.JOURNAL_TAMPERED: "Journal tampered with",
}
# Slack's limits: a header's plain text, a section's text, a field's text,
# and what fits comfortably in a notification for the fallback.
_HEADER_MAX = 150
_SECTION_MAX = 3000
_FIELD_MAX = 2000
_FALLBACK_MAX = 3000
#: A trailing piece of an entity a clip may have cut (``&am``).
_CUT_ENTITY = re.compile(r"&[a-z]{0,3}$")


def _clip(text: str, limit: int) -> str:
    """Return ``text`` scrubbed, then cut to ``limit`` characters, ending with an ellipsis if cut.

    Scrubbed first: a registered value cut in two would match none of its
    forms. (An alert's text keeps its lines, so this is not
    :func:`rotator.output.redact.outside_text`, which puts text on one line.)
    """
    text = redact.scrub(text)
    if len(text) <= limit:
        return text
    return _CUT_ENTITY.sub("", text[: limit - 1]) + "…"


def _mrkdwn(text: str, limit: int) -> str:
    """Return ``text`` escaped for Slack's mrkdwn and clipped to ``limit``.

    Slack reads ``<...>`` as a link or a mention (``<!channel>`` pages a
    whole channel), so ``&``, ``<`` and ``>`` of a summary are escaped,
    after scrubbing (escaping changes a value's form).
    """
    clean = redact.scrub(text)
    escaped = clean.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _clip(escaped, limit)


def slack_message(alert: Alert) -> dict[str, Any]:
    """Return the incoming-webhook payload of ``alert``: a fallback ``text`` and ``blocks``."""
    emoji = _EMOJI.get(alert.severity, ":bell:")
    title = _TITLES.get(alert.event, alert.event.value)
    at = alert.at if alert.at.tzinfo is not None else alert.at.replace(tzinfo=UTC)
    about = f" · {alert.secret}" if alert.secret else ""
    fallback = f"{emoji} {alert.event.value}{about}: {alert.summary}"
    header = f"{emoji} {title}" + (f": {alert.secret}" if alert.secret else "")
    fields = [
        ("Secret", alert.secret),
        ("Event", alert.event.value),
        ("Severity", alert.severity.value),
        ("Owner", alert.owner),
        ("Rotation", alert.rotation_id),
        ("Time", at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")),
    ]
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            # emoji: true makes Slack render a :shortcode: in plain text.
            "text": {"type": "plain_text", "text": _clip(header, _HEADER_MAX), "emoji": True},
        },
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": _mrkdwn(alert.summary, _SECTION_MAX)},
        },
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*{name}*\n" + _mrkdwn(value, _FIELD_MAX)}
                for name, value in fields
                if value
            ],
        },
    ]
    if alert.details:
        lines = "\n".join(
            ["Details", *(f"• {name}: {value}" for name, value in alert.details.items())]
        )
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": _mrkdwn(lines, _SECTION_MAX)}}
        )
    blocks.append(
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": "rotator · alert key " + _mrkdwn(alert.key, 200)}
            ],
        }
    )
    return {"text": _mrkdwn(fallback, _FALLBACK_MAX), "blocks": blocks}


class SlackNotifier(Notifier[SlackConfig]):
    """Posts the alert to a Slack (or Slack-compatible) incoming webhook."""

    kind = "slack"
    #: httpx carries the requests (:mod:`providers.transport.http`).
    Config = SlackConfig
    example: ClassVar[Mapping[str, object]] = {"url_env": "SLACK_WEBHOOK_URL"}
    docs = "docs/notifiers.md#slack"

    def describe(self) -> str:
        """Return ``slack:<host>``: never the URL's path, which is its token."""
        url = os.environ.get(self.config.url_env, "").strip()
        if not url:
            return f"{SLACK}:${self.config.url_env} (not set)"
        return f"{SLACK}:{_host(url) or '(not a URL)'}"

    def _url(self) -> str:
        """Return the URL held in ``url_env``; PermanentError, never quoting it, if unusable."""
        env = self.config.url_env
        url = os.environ.get(env, "").strip()
        if not url:
            raise PermanentError(
                f"environment variable {env} (the Slack webhook URL) is not set",
                provider=SLACK,
                operation=OP_POST,
            )
        # The URL is a credential: mask it, its path and its token wherever they appear.
        parts = urlsplit(url)
        for text in (url, parts.path, parts.path.rstrip("/").rpartition("/")[2]):
            redact.register(text)
        try:
            checked_url(url)
        except ValueError:
            # The reason would quote the URL: say what is wrong without it.
            raise PermanentError(
                f"environment variable {env} does not hold a usable webhook URL: it must be "
                "https:// (http:// only to localhost), with no user, password or #fragment",
                provider=SLACK,
                operation=OP_POST,
            ) from None
        return url

    def send(self, alert: Alert) -> None:
        """POST the alert's message to the webhook once.

        Raises:
            TransientError: 408, 429, a 5xx but 501, a timeout or no connection
                (``delay`` from ``Retry-After``).
            PermissionDeniedError: 401 or 403 (``invalid_token``, ``action_prohibited``).
            NotFoundError: 404 or 410 (``no_service``, ``channel_is_archived``).
            PermanentError: ``url_env`` is unset or unusable, or any other answer.
        """
        url = self._url()
        where = _host(url)
        body = json.dumps(slack_message(alert), separators=(",", ":")).encode("utf-8")
        headers = {"Content-Type": "application/json", "User-Agent": "rotator-notifier"}
        c = self.config
        reply = _post(self.runtime, SLACK, url, headers, body, c.timeout, c.ca_file, c.proxy)
        outcome = request_outcome(reply)
        if outcome == "ok":
            log.debug("notifier %s: %s alert delivered to %s", self.secret, alert.event, where)
            return
        said = self._explained(reply)
        if outcome == "permanent":
            error = refusal(reply, where, SLACK, OP_POST, "Slack refused the webhook")
            if reply.status is None or not 400 <= reply.status < 500 or not said:
                raise error
            # The same class, with Slack's code and what it means instead of a generic word.
            raise type(error)(
                f"{where} answered HTTP {reply.status}{said}", provider=SLACK, operation=OP_POST
            )
        raise _retry_later(reply, where, SLACK, said)

    def _explained(self, reply: Reply) -> str:
        """Return ``" (code): what it means"`` for Slack's answer, or ``""`` without a code."""
        if not reply.hint:
            return ""
        meaning = SLACK_CODES.get(reply.hint)
        if meaning is None:
            return f" ({reply.hint})"
        return f" ({reply.hint}): {meaning.format(env=self.config.url_env)}"


def _host(url: str) -> str:
    """Return ``host`` or ``host:port`` of ``url``: what may be said of a secret URL."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{host}:{port}" if host and port else host


# -- exec ---------------------------------------------------------------------


class ExecNotifierConfig(CommandConfig):
    """Policy fields of the ``exec`` notifier: those of the ``exec`` target."""


class ExecNotifier(Notifier[ExecNotifierConfig]):
    """Runs a command with the alert as JSON on its standard input."""

    kind = "exec"
    Config = ExecNotifierConfig
    example: ClassVar[Mapping[str, object]] = {"command": ["/usr/local/bin/rotator-alert"]}
    docs = "docs/notifiers.md#exec"

    def describe(self) -> str:
        """Return ``exec:<program>`` (the arguments left out)."""
        return f"{EXEC}:{self.config.command[0]}"

    def send(self, alert: Alert) -> None:
        """Run the command once with the alert's JSON (and a newline) on stdin.

        Raises:
            TransientError: exit status 75, or the timeout passed (the
                command's process group is killed).
            NotFoundError: the command does not exist.
            PermissionDeniedError: the command is not executable.
            PermanentError: any other non-zero status, or killed by a signal.
        """
        env = environment(
            self.config,
            {
                "ROTATOR_ALERT_EVENT": alert.event.value,
                "ROTATOR_ALERT_SEVERITY": alert.severity.value,
                "ROTATOR_ALERT_KEY": _printable_key(alert.key),
                "ROTATOR_SECRET": alert.secret or "",
                "ROTATOR_NOTIFIER": self.secret,
            },
        )
        try:
            status = run(self.config, _json(alert) + b"\n", env, PHASE)
        except TransientError:
            report(self.runtime, EXEC, OP_RUN, "transient")
            raise
        except PermanentError:
            report(self.runtime, EXEC, OP_RUN, "permanent")
            raise
        report(self.runtime, EXEC, OP_RUN, exit_outcome(status))
        raise_for_exit(self.config, status, PHASE, PermanentError)
        log.debug("notifier %s: %s alert handed to its command", self.secret, alert.event)
