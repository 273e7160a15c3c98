"""Canary through a whole run: a GitLab that echoes every write, alerts to echoing receivers.

``run --once`` rotates a 400-character random value into a GitLab CI/CD
variable whose API stores each write, then refuses it with the whole request
in its 400 (the value straddling the 300-character cut of messages); the
rollback sends the live current value back, refused and echoed the same way.
Alerts go to a webhook and a Slack-like receiver that echo what they get,
and to a file. Then the logs at DEBUG, the journal's bytes, the audit
export, history, status, both summaries and every alert delivered are
searched for any 8-character piece of the new value, the current one and
rotator's own credentials (the GitLab token, the alerts' HMAC key, the
Slack URL's token): none is found.
"""

from __future__ import annotations

import json
import sys
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Rotator, client
from tests.echo_server import STRADDLE, Canned, Echo, as_json, found, running

CURRENT = "CuRrEnTvalue" + "9a8b7c6d5e4f3a2b1c0d" * 2
GITLAB_TOKEN = "glpat-OwnGitLabToken0123456789"
ALERT_KEY = "OwnAlertHmacKey0123456789abcdef"
SLACK_TOKEN = "slacktoken_abcdefghijklmnopqrstuvwx"
EVENTS = "[rotation-failed, needs-attention]"

POLICIES = """
notifiers:
  hook: {{kind: webhook, url: "{hook}/alerts", secret_env: ALERT_KEY, events: {events}}}
  chat: {{kind: slack, url_env: SLACK_URL, events: {events}}}
  file:
    kind: exec
    command: [{python}, -c, "import sys; open({alerts!r}, 'a').write(sys.stdin.read())"]
    events: {events}
defaults: {{schedule: {{every: 30d}}, grace: 0s, alerts: [hook, chat, file]}}
secrets:
  - name: app
    store: {{provider: aws-secretsmanager, secret_id: app}}
    issuer: {{kind: random, length: 400}}
    targets:
      - {{kind: gitlab-ci, project: payments/api, key: APP_TOKEN, url: "{gitlab}"}}
"""


class EchoingGitLab:
    """One variable: reads answer what was last written; every write is kept, then refused."""

    def __init__(self) -> None:
        self.value = CURRENT
        self.written: list[str] = []
        # "value: " comes first in the flattened message: the value straddles the cut.
        self.echo = Echo(
            lambda e, _p: as_json(400, {"message": {"value": [e]}}),
            at=STRADDLE - len("value: "),
            route=self.route,
        )

    def route(self, method: str, _path: str, _headers: Any, body: str) -> Canned | None:
        """Answer reads; keep a write's value (and echo around it) before it is refused."""
        if method == "GET":
            variable = {"key": "APP_TOKEN", "value": self.value, "masked": True, "raw": True}
            return as_json(200, variable)
        sent = json.loads(body).get("value") if body else None
        if isinstance(sent, str):
            self.value = sent
            self.written.append(sent)
            self.echo.needles = [sent]
        return None


@pytest.mark.e2e
def test_no_piece_of_any_value_or_own_credential_leaves_through_any_door(
    rotator_cli: Rotator,
) -> None:
    """Logs, journal, audit, history, status, summaries and alerts hold no 8 characters of one."""
    sm = client("secretsmanager")
    sm.create_secret(Name="app", SecretString=CURRENT)
    workdir = Path(rotator_cli.workdir)
    alerts = workdir / "alerts.jsonl"
    gitlab = EchoingGitLab()
    with ExitStack() as stack:
        stack.enter_context(running(gitlab.echo))
        hook = stack.enter_context(running(Echo(lambda e, _p: as_json(500, {"error": e}))))
        slack = stack.enter_context(
            running(Echo(lambda _e, p: (400, p.rsplit("/", 1)[1].encode(), {})))
        )
        rotator_cli.env.update(
            {
                "GITLAB_TOKEN": GITLAB_TOKEN,
                "ALERT_KEY": ALERT_KEY,
                "SLACK_URL": f"{slack.url}/services/T000/B000/{SLACK_TOKEN}",
                "ROTATOR_RATE_LIMITS": "gitlab=0",
                "ROTATOR_AUDIT_LOG": str(workdir / "audit.jsonl"),
            }
        )
        rotator_cli.config.write_text(
            POLICIES.format(
                hook=hook.url,
                gitlab=gitlab.echo.url,
                python=sys.executable,
                alerts=str(alerts),
                events=EVENTS,
            )
        )
        later = datetime.now(UTC) + timedelta(days=31)
        run = rotator_cli(
            "run",
            "--once",
            "--json",
            "--summary",
            str(workdir / "summary.json"),
            "--summary-markdown",
            str(workdir / "summary.md"),
            now=later,
            log_level="debug",
        )
        others = [
            rotator_cli(*args, now=later, log_level="debug")
            for args in (
                ("history", "app", "--json"),
                ("status", "--json"),
                ("audit", "export"),
                ("audit", "export", "--format", "csv"),
            )
        ]

    [new] = [v for v in gitlab.written if v != CURRENT][:1]
    assert len(new) == 400 and gitlab.written[-1] == CURRENT, "no rollback sent the value back"
    assert "GitLab refused the request" in run.stdout + run.stderr
    assert alerts.read_text() and hook.requests and slack.requests, "no alert was delivered"
    assert '"level": "debug"' in run.stderr or '"level":"debug"' in run.stderr

    texts = {
        "run": run.stdout + run.stderr,
        **{f"command {i}": r.stdout + r.stderr for i, r in enumerate(others)},
        "alerts file": alerts.read_text(),
        # What the receivers were sent (their own URL aside: the Slack one is its token).
        "alerts to the webhook": "\n".join(hook.bodies),
        "alerts to slack": "\n".join(slack.bodies),
    }
    for name in ("summary.json", "summary.md", "audit.jsonl"):
        path = workdir / name
        texts[name] = path.read_text() if path.exists() else ""
    texts["journal"] = b"".join(
        p.read_bytes() for p in workdir.glob("rotator.db*") if p.is_file()
    ).decode("latin-1")
    assert texts["summary.json"] and texts["audit.jsonl"]
    secrets = [new, CURRENT, GITLAB_TOKEN, ALERT_KEY, SLACK_TOKEN]
    leaks = {name: found(text, secrets) for name, text in texts.items()}
    assert not any(leaks.values()), {k: v[:3] for k, v in leaks.items() if v}
