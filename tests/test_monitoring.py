"""The shipped Prometheus rules and Grafana dashboard, checked against the exported metrics."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from rotator.journal.records import Rotation, SecretSummary
from rotator.lifecycle import State
from rotator.service.metrics import Metrics
from tests.conftest import START, FakeClock

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "rotator-rules.yaml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "rotator-rules.test.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "rotator-dashboard.json"

#: Series Prometheus itself adds to every target.
PROMETHEUS_SERIES = frozenset({"up"})
SEVERITIES = frozenset({"critical", "warning", "info"})

#: PromQL functions and aggregation operators (Prometheus 2.x and 3.x).
PROMQL_FUNCTIONS = frozenset(
    """
    abs absent absent_over_time acos acosh asin asinh atan atanh avg_over_time ceil
    changes clamp clamp_max clamp_min cos cosh count_over_time day_of_month day_of_week
    day_of_year days_in_month deg delta deriv double_exponential_smoothing exp floor
    histogram_avg histogram_count histogram_fraction histogram_quantile histogram_stddev
    histogram_stdvar histogram_sum holt_winters hour idelta increase info irate label_join
    label_replace last_over_time ln log10 log2 mad_over_time max_over_time min_over_time
    minute month pi predict_linear present_over_time quantile_over_time rad rate resets
    round scalar sgn sin sinh sort sort_by_label sort_by_label_desc sort_desc sqrt
    stddev_over_time stdvar_over_time sum_over_time tan tanh time timestamp vector year
    avg bottomk count count_values group limit_ratio limitk max min quantile stddev stdvar
    sum topk start end
    """.split()  # noqa: SIM905
)
#: PromQL keywords: binary operators, modifiers and the words before a label list.
PROMQL_KEYWORDS = frozenset(
    """
    and or unless atan2 by without on ignoring group_left group_right offset bool inf nan
    """.split()  # noqa: SIM905
)

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GRAFANA_VARIABLES = re.compile(r"\$(?:\{\w+(?::\w+)?\}|\w+)")
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIERS = re.compile(r"(?<![\w:.])([A-Za-z_:][\w:]*)(\s*\()?")
_LABEL_VALUES = re.compile(r"^\s*label_values\((?:(?P<selector>.*),)?\s*\w+\s*\)\s*$", re.S)


def promql_names(expr: str) -> tuple[set[str], set[str]]:
    """Return the metric names and the function names a PromQL expression uses."""
    text = _STRINGS.sub(" ", expr)
    text = _GRAFANA_VARIABLES.sub(" ", text)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    metrics: set[str] = set()
    functions: set[str] = set()
    for match in _IDENTIFIERS.finditer(text):
        name, call = match.group(1), match.group(2)
        if name.lower() in PROMQL_KEYWORDS:
            continue
        (functions if call else metrics).add(name)
    return metrics, functions


def exported_series() -> dict[str, set[str]]:
    """Return every family the service exports, mapped to its sample names.

    One sample of each event is fed and a journal is observed in which a
    secret is in grace, so that every family has at least one series.
    """
    clock = FakeClock(START)
    metrics = Metrics(clock)
    metrics.rotation_finished("db-password", "aws-secretsmanager", "rolled_back", 12.5)
    metrics.provider_request("aws-secretsmanager", "PutSecretValue", "throttled")
    metrics.config_reload("failed")
    metrics.alert("rotation-failed", "sent")
    metrics.audit_verified(True, 12)
    grace = Rotation(
        id="r-db-password",
        secret="db-password",
        state=State.GRACE,
        trigger="schedule",
        created_at=START - timedelta(hours=3),
        updated_at=START - timedelta(hours=2),
        promoted_at=START - timedelta(hours=2),
        grace_deadline=START + timedelta(hours=22),
    )
    metrics.observe_journal(
        {"db-password": "aws-secretsmanager"},
        {"db-password": SecretSummary(START - timedelta(hours=2), grace, [grace])},
        {"db-password": START + timedelta(days=30)},
        needs_attention=1,
    )
    payload, _ = metrics.render()
    families: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(payload.decode()):
        families.setdefault(family.name, set()).update(s.name for s in family.samples)
    return families


@pytest.fixture(scope="module")
def series() -> dict[str, set[str]]:
    """The families the service exports, with their sample names."""
    return exported_series()


@pytest.fixture(scope="module")
def known_names(series: dict[str, set[str]]) -> set[str]:
    """Every series name a query may use: exported samples, ``up``, recorded rules."""
    recorded = {rule["record"] for rule in _rules() if "record" in rule}
    return {name for names in series.values() for name in names} | PROMETHEUS_SERIES | recorded


def _rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def _alerts() -> list[dict[str, Any]]:
    return [rule for rule in _rules() if "alert" in rule]


def _dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Yield every panel, including those nested in collapsed rows."""
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _dashboard_queries() -> list[tuple[str, str]]:
    """Return (where, PromQL) for every panel target and query variable."""
    dashboard = _dashboard()
    queries = [
        (f"panel {panel['title']!r} target {target['refId']}", target["expr"])
        for panel in _panels(dashboard["panels"])
        for target in panel.get("targets", [])
    ]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]
        text = query["query"] if isinstance(query, dict) else query
        label_values = _LABEL_VALUES.match(text)
        assert label_values, f"variable {variable['name']}: not a label_values() query: {text}"
        selector = label_values.group("selector")
        assert selector, f"variable {variable['name']}: label_values() without a metric"
        queries.append((f"variable {variable['name']}", selector))
    return queries


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(
                "CI=true but promtool is not on PATH (.ci/run installs Debian's prometheus)"
            )
        pytest.skip("promtool is not on PATH (Debian: apt-get install prometheus)")
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


# -- the extractor ---------------------------------------------------------------


def test_promql_names_finds_metrics_and_ignores_labels_functions_and_variables() -> None:
    """The name extractor keeps metric names and drops labels, keywords, strings and durations."""
    expr = (
        'sum by (secret, le) (rate(rotator_rotation_duration_seconds_bucket{job=~"$job",'
        ' outcome="rate(x)"}[$__rate_interval])) / on (secret) group_left (version)'
        " max without (instance) (rotator_build_info offset 1h) > bool 1e3"
        " unless ignoring(pod) namespace_job:recorded:ratio_rate5m and up"
    )
    metrics, functions = promql_names(expr)
    assert metrics == {
        "rotator_rotation_duration_seconds_bucket",
        "rotator_build_info",
        "namespace_job:recorded:ratio_rate5m",
        "up",
    }
    assert functions == {"sum", "rate", "max"}


# -- the metrics the service exports -------------------------------------------------------


def test_every_exported_family_has_a_sample(series: dict[str, set[str]]) -> None:
    """Each family the service registers got a sample, so the list of known names is complete."""
    assert len(series) >= 10
    empty = sorted(family for family, names in series.items() if not names)
    assert not empty, f"feed these families one sample in exported_series(): {empty}"


# -- the alerting and recording rules ------------------------------------------------------


@pytest.mark.parametrize("rule", _rules(), ids=lambda r: r.get("alert") or r.get("record"))
def test_rule_uses_only_exported_metrics(rule: dict[str, Any], known_names: set[str]) -> None:
    """Every name a rule queries is a series the service (or Prometheus) really has."""
    metrics, functions = promql_names(rule["expr"])
    assert metrics, f"no metric found in {rule['expr']!r}"
    assert metrics <= known_names, f"unknown series: {sorted(metrics - known_names)}"
    assert functions <= PROMQL_FUNCTIONS, (
        f"unknown functions: {sorted(functions - PROMQL_FUNCTIONS)}"
    )


@pytest.mark.parametrize("alert", _alerts(), ids=lambda r: r["alert"])
def test_alert_has_for_severity_and_annotations(alert: dict[str, Any]) -> None:
    """Every alert waits a `for`, carries a severity and explains itself with a runbook hint."""
    assert re.fullmatch(r"(\d+[smhd])+", str(alert.get("for", ""))), alert.get("for")
    assert alert.get("labels", {}).get("severity") in SEVERITIES
    annotations = alert.get("annotations", {})
    for key in ("summary", "description", "runbook"):
        assert str(annotations.get(key, "")).strip(), f"missing annotation {key}"
    assert "rotator " in annotations["runbook"], "the runbook names no rotator command"


def test_rule_names_are_unique_and_alerts_cover_the_issue() -> None:
    """The rules file defines each name once and alerts on each condition issue 7 lists."""
    alerts = [rule["alert"] for rule in _alerts()]
    records = [rule["record"] for rule in _rules() if "record" in rule]
    assert len(set(alerts)) == len(alerts)
    assert len(set(records)) == len(records)
    assert {
        "RotatorRotationFailed",
        "RotatorSecretNeedsAttention",
        "RotatorSecretOverdue",
        "RotatorGraceDeadlinePassed",
        "RotatorDown",
        "RotatorProviderThrottled",
        "RotatorConfigReloadFailed",
    } <= set(alerts)


def test_every_alert_has_a_firing_unit_test() -> None:
    """Each alert is proven to fire, annotations rendered, by a case in rotator-rules.test.yaml."""
    document = yaml.safe_load(RULE_TESTS.read_text())
    assert document["rule_files"] == [RULES.name]
    fired = {
        case["alertname"]
        for test in document["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    missing = sorted({rule["alert"] for rule in _alerts()} - fired)
    assert not missing, f"no promtool test expects these to fire: {missing}"


def test_promtool_check_rules() -> None:
    """`promtool check rules` accepts the rules file."""
    result = _run(_promtool(), "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    """The alerts fire, and only fire, on the synthetic series of the promtool unit tests."""
    result = _run(_promtool(), "test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


# -- the Grafana dashboard -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "expr"), [pytest.param(w, e, id=w) for w, e in _dashboard_queries()]
)
def test_dashboard_query_uses_only_exported_metrics(
    where: str, expr: str, series: dict[str, set[str]]
) -> None:
    """Every name a dashboard query uses is exported, so the panel works without the rules."""
    exported = {name for names in series.values() for name in names} | PROMETHEUS_SERIES
    metrics, functions = promql_names(expr)
    assert metrics, f"{where}: no metric found in {expr!r}"
    assert metrics <= exported, f"{where}: unknown series {sorted(metrics - exported)}"
    assert functions <= PROMQL_FUNCTIONS, f"{where}: unknown functions {sorted(functions)}"


def test_dashboard_shows_every_exported_family(series: dict[str, set[str]]) -> None:
    """Each metric family the service exports appears in at least one dashboard query."""
    used = {name for _, expr in _dashboard_queries() for name in promql_names(expr)[0]}
    missing = sorted(family for family, names in series.items() if not names & used)
    assert not missing, f"no panel shows {missing}"


def test_dashboard_uses_the_datasource_variable_everywhere() -> None:
    """The dashboard has a Prometheus data source variable and every panel and target uses it."""
    dashboard = _dashboard()
    assert dashboard["schemaVersion"] >= 36
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    wanted = {"type": "prometheus", "uid": "${datasource}"}
    for panel in _panels(dashboard["panels"]):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == wanted, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == wanted, f"{panel['title']} {target['refId']}"
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == wanted, variable["name"]


def test_dashboard_panels_have_unique_ids_and_do_not_overlap() -> None:
    """Panel ids are unique and the panels tile the 24-column grid without overlapping."""
    panels = list(_panels(_dashboard()["panels"]))
    ids = [panel["id"] for panel in panels]
    assert len(set(ids)) == len(ids)
    cells: dict[tuple[int, int], str] = {}
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    """Every dashboard query is valid PromQL once Grafana's variables are filled in."""
    promtool = _promtool()

    def fill(match: re.Match[str]) -> str:
        return "5m" if match.group(0).lstrip("${").startswith("__") else "rotator"

    rules = [
        {"record": f"dashboard:query_{n}:check", "expr": _GRAFANA_VARIABLES.sub(fill, expr)}
        for n, (_, expr) in enumerate(_dashboard_queries())
    ]
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = _run(promtool, "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
