"""Notifiers ``webhook``, ``slack`` and ``exec``: how people hear about alerts (placeholder)."""

from __future__ import annotations

from rotator.errors import PermanentError
from rotator.interfaces import Alert, Notifier, ProviderConfig


class _Placeholder(ProviderConfig):
    """Fields of a notifier not written yet."""

    url: str = ""


class WebhookNotifier(Notifier[_Placeholder]):
    """POSTs the alert as JSON signed with HMAC-SHA256."""

    kind = "webhook"
    Config = _Placeholder

    def describe(self) -> str:
        """Return ``webhook:<url>``."""
        return f"webhook:{self.config.url}"

    def send(self, alert: Alert) -> None:
        """Deliver the alert."""
        raise PermanentError("not written yet")


class SlackNotifier(WebhookNotifier):
    """Posts the alert to a Slack incoming webhook."""

    kind = "slack"


class ExecNotifier(WebhookNotifier):
    """Runs a command with the alert as JSON on stdin."""

    kind = "exec"
