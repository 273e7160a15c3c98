"""The summary of a one-shot run, for pipelines: JSON for artifacts, Markdown for job pages.

``rotator run --once --summary FILE`` writes :meth:`RunSummary.as_dict` as
JSON (an artifact a later job or an auditor reads); ``--summary-markdown
FILE`` appends :meth:`RunSummary.markdown` (GitHub Actions shows whatever is
appended to ``$GITHUB_STEP_SUMMARY`` on the run's page; GitLab can publish
the file). Both say the same: when, who, the exit code, counts by result,
and one row per secret handled. Like every output of rotator they hold
identifiers and rotator's own messages, never a value.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rotator import __version__
from rotator.engine.report import Outcome, Result, RunReport
from rotator.output.escaping import markdown_cell, markdown_code
from rotator.output.files import replace_file

#: Rows shown in the Markdown table at most (a job page is not a database).
MARKDOWN_ROWS = 200
_ICONS = {
    Result.OK: "✅",
    Result.FAILED: "❌",
    Result.ATTENTION: "⚠️",
    Result.WAITING: "⏳",
    Result.SKIPPED: "⏭️",
}


def outcomes_as_json(report: RunReport) -> list[dict[str, Any]]:
    """Return each secret's outcome as a JSON-ready mapping (what ``run --once --json`` prints)."""
    return [outcome_as_dict(o) for o in report.outcomes]


def outcome_as_dict(o: Outcome) -> dict[str, Any]:
    """Return one secret's outcome: its result, state, rotation id and rotator's message."""
    return {
        "secret": o.secret,
        "result": o.result.value,
        "state": o.state.value if o.state else None,
        "rotation_id": o.rotation_id,
        "message": o.message,
    }


@dataclass(frozen=True)
class RunSummary:
    """What a one-shot run did, ready to be written for a pipeline."""

    report: RunReport
    started_at: datetime
    finished_at: datetime
    actor: str
    interrupted: bool = False

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON-ready summary."""
        counts = Counter(o.result.value for o in self.report.outcomes)
        return {
            "rotator": __version__,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "seconds": round((self.finished_at - self.started_at).total_seconds(), 3),
            "actor": self.actor,
            "exit_code": self.report.exit_code,
            "interrupted": self.interrupted,
            "counts": {r.value: counts.get(r.value, 0) for r in Result},
            "outcomes": outcomes_as_json(self.report),
        }

    def markdown(self) -> str:
        """Return the summary as Markdown: a headline, counts, then a table of secrets."""
        data = self.as_dict()
        counts = data["counts"]
        verdict = "failed" if self.report.exit_code else "succeeded"
        lines = [
            f"### rotator run --once {verdict}",
            "",
            f"{len(self.report.outcomes)} secret(s) handled in {data['seconds']:g}s: "
            + ", ".join(f"{counts[r.value]} {r.value}" for r in Result if counts[r.value])
            + (" (interrupted: the next run resumes)" if self.interrupted else ""),
            "",
        ]
        if not self.report.outcomes:
            lines[2] = "Nothing was due."
            return "\n".join(lines) + "\n"
        lines += ["| | secret | result | state | rotation | detail |", "|---|---|---|---|---|---|"]
        # Failures first, then what needs a person: they are what the reader came for.
        first = (Result.FAILED, Result.ATTENTION)
        ordered = sorted(
            self.report.outcomes, key=lambda o: first.index(o.result) if o.result in first else 2
        )
        for o in ordered[:MARKDOWN_ROWS]:
            lines.append(
                f"| {_ICONS[o.result]} | {markdown_code(o.secret)} | {o.result.value} | "
                f"{o.state.value if o.state else '-'} | "
                f"{markdown_cell((o.rotation_id or '-')[:12])} | {markdown_cell(o.message)} |"
            )
        if len(ordered) > MARKDOWN_ROWS:
            lines.append(f"\n{len(ordered) - MARKDOWN_ROWS} more in the JSON summary.")
        return "\n".join(lines) + "\n"

    def write_json(self, path: str) -> None:
        """Write the JSON summary to ``path`` (whole, through a temporary file)."""
        replace_file(Path(path), json.dumps(self.as_dict(), indent=2) + "\n")

    def append_markdown(self, path: str) -> None:
        """Append the Markdown summary to ``path`` (a job summary file collects many)."""
        with open(path, "a", encoding="utf-8") as stream:
            stream.write(self.markdown())
