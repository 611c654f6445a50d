"""docs/runbook.md against the code it describes.

Every alert links to a section of the runbook that exists and talks about it; every metric,
log event, setting and alert the runbook names is one Herald really has. The names are read
from the code (herald.metrics' registry, the log calls in src/herald, the Settings model), so
a rename in the code fails here until the runbook follows.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from prometheus_client import REGISTRY

import herald.metrics  # noqa: F401 - registers Herald's collectors
from herald.config import Settings

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "docs" / "runbook.md"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
SOURCE = ROOT / "src" / "herald"
RUNBOOK_URL = "https://github.com/herald/herald/blob/main/docs/runbook.md"

FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)
CODE_SPAN = re.compile(r"`([^`\n]+)`")
METRIC = re.compile(r"\b(?:herald|process|python)_[a-z0-9_]+")
ALERT_NAME = re.compile(r"\bHerald[A-Z][A-Za-z0-9]+\b")
# A log event is `namespace.name` (or `namespace.*`); file names look the same, so skip those.
EVENT = re.compile(r"^[a-z_]+\.(?:[a-z_]+|\*)$")
FILE_SUFFIXES = {"md", "yml", "yaml", "json", "py", "toml", "service", "env", "lock", "txt"}
# In fenced blocks, events appear in jq filters: select(.event == "worker.restarting").
EVENT_IN_FILTER = re.compile(r'\.event == "([^"]+)"')
SETTING = re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b")
LOG_LEVELS = {"debug", "info", "warning", "error", "exception", "critical"}

# Event names built with an f-string, and what they expand to. A new f-string event in the
# code fails `test_log_events_in_the_code_are_all_known` until it is listed here.
# notification.{outcome}: the outcomes of herald.notifications.delivery._record.
# {name}.failed: WorkerRuntime._every, for every name passed to add_periodic (found below).
TEMPLATE_EXPANSIONS = {"notification.{}": {"sent", "retrying", "failed"}}


# -- the runbook -----------------------------------------------------------------------------


def github_anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lowercase, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def test_github_anchor_follows_githubs_rules() -> None:
    assert github_anchor("HTTP 5xx") == "http-5xx"
    assert github_anchor("A provider failing or rate-limiting") == (
        "a-provider-failing-or-rate-limiting"
    )
    assert github_anchor("What's `herald check`, really?") == "whats-herald-check-really"
    assert github_anchor("Postgres / Redis away") == "postgres--redis-away"


def runbook() -> str:
    return RUNBOOK.read_text()


def prose(text: str) -> str:
    """The runbook without its fenced code blocks (a `# comment` there is not a heading)."""
    return FENCE.sub("", text)


def sections() -> dict[str, str]:
    """Anchor of every `##` section → its text, up to the next `##` heading."""
    found: dict[str, str] = {}
    anchor = None
    in_fence = False
    for line in runbook().splitlines(keepends=True):
        if line.startswith("```"):
            in_fence = not in_fence
        elif not in_fence and line.startswith("## "):
            anchor = github_anchor(line[3:])
            assert anchor not in found, f"two sections would have the anchor #{anchor}"
            found[anchor] = ""
        if anchor is not None:
            found[anchor] += line
    return found


def headings() -> list[str]:
    return [line for line in prose(runbook()).splitlines() if re.match(r"^#{1,6} ", line)]


def code_spans(text: str) -> list[str]:
    return CODE_SPAN.findall(prose(text))


def situation_sections() -> dict[str, str]:
    """The sections about a situation: all but the opening toolbox."""
    return {anchor: text for anchor, text in sections().items() if anchor != "the-toolbox"}


# -- the code --------------------------------------------------------------------------------

SAMPLE_SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
    "info": ("_info",),
}


def exported_sample_names() -> set[str]:
    """Every sample name the process exposes on /metrics: Herald's collectors, and the
    process and Python collectors prometheus_client registers by default."""
    names: set[str] = set()
    for family in REGISTRY.collect():
        names.update(family.name + suffix for suffix in SAMPLE_SUFFIXES[family.type])
    return names


def _string_values(node: ast.expr) -> list[ast.expr]:
    """`"a" if x else "b"` is two names; anything else is one expression."""
    if isinstance(node, ast.IfExp):
        return [*_string_values(node.body), *_string_values(node.orelse)]
    return [node]


def _template(node: ast.JoinedStr) -> str:
    return "".join(part.value if isinstance(part, ast.Constant) else "{}" for part in node.values)


def event_calls() -> tuple[set[str], set[str], set[str]]:
    """(constant event names, f-string templates, add_periodic names) found in src/herald.

    Log calls are `log.<level>(event, ...)` on structlog loggers, and the embedded servers'
    `report(level, event, message)`.
    """
    constants: set[str] = set()
    templates: set[str] = set()
    periodic: set[str] = set()
    for path in SOURCE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            event = None
            if (
                isinstance(func, ast.Attribute)
                and func.attr in LOG_LEVELS
                and isinstance(func.value, ast.Name)
                and func.value.id == "log"
            ):
                event = node.args[0]
            elif isinstance(func, ast.Name) and func.id == "report" and len(node.args) >= 2:
                event = node.args[1]
            elif isinstance(func, ast.Attribute) and func.attr == "add_periodic":
                name = node.args[0]
                assert isinstance(name, ast.Constant), f"{path}: add_periodic with a computed name"
                periodic.add(name.value)
            if event is None:
                continue
            for value in _string_values(event):
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    constants.add(value.value)
                elif isinstance(value, ast.JoinedStr):
                    templates.add(_template(value))
                else:
                    raise AssertionError(f"{path}: a log event that is not a string literal")
    return constants, templates, periodic


def logged_events() -> set[str]:
    constants, templates, periodic = event_calls()
    events = set(constants)
    for template in templates:
        if template == "{}.failed":
            events.update(f"{name}.failed" for name in periodic)
        else:
            events.update(template.format(value) for value in TEMPLATE_EXPANSIONS[template])
    return events


def test_log_events_in_the_code_are_all_known() -> None:
    constants, templates, periodic = event_calls()
    assert templates <= {"{}.failed", *TEMPLATE_EXPANSIONS}, templates
    # Not vacuous: the scan finds the events the runbook leans on most, of every kind.
    assert {"worker.restarting", "http.dependency_unavailable", "embedded.started"} <= constants
    assert "reconciler" in periodic
    assert {"notification.failed", "reconciler.failed"} <= logged_events()


# -- alerts → runbook ------------------------------------------------------------------------


def alert_rules() -> list[dict[str, object]]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_every_alert_links_to_a_runbook_section_about_it() -> None:
    known = sections()
    rules = alert_rules()
    assert len(rules) >= 10
    for rule in rules:
        name = rule["alert"]
        annotations = rule["annotations"]
        assert isinstance(annotations, dict)
        url = annotations.get("runbook_url", "")
        parts = urlsplit(url)
        assert url.startswith(RUNBOOK_URL + "#"), (name, url)
        assert parts.fragment in known, f"{name}: no heading with the anchor #{parts.fragment}"
        assert f"`{name}`" in known[parts.fragment], (
            f"{name} links to #{parts.fragment}, which does not name it"
        )


def test_alerts_the_runbook_names_exist() -> None:
    names = {rule["alert"] for rule in alert_rules()}
    named = set(ALERT_NAME.findall(runbook()))
    assert named - names == set(), "the runbook names alerts alerts.yml does not have"
    assert names - named == set(), "alerts the runbook never mentions"


def test_the_runbooks_own_links_point_at_its_headings() -> None:
    anchors = {github_anchor(h.lstrip("#")) for h in headings()}
    links = re.findall(r"\]\(#([^)]+)\)", runbook())
    assert links, "the runbook links its sections to each other"
    assert set(links) <= anchors, set(links) - anchors


# -- runbook → code --------------------------------------------------------------------------


def test_every_metric_the_runbook_names_is_exported() -> None:
    exported = exported_sample_names()
    named = set(METRIC.findall(runbook()))  # prose, code spans and command blocks alike
    assert named - exported == set(), "metrics /metrics does not expose (counters end _total)"
    # Not vacuous: the runbook covers every metric an alert watches, and many more.
    in_alerts = set(METRIC.findall(ALERTS.read_text()))
    assert in_alerts - named == set(), "metrics the alerts use that the runbook never names"
    assert len(named) >= 20, named


def runbook_events() -> set[str]:
    named = {
        span
        for span in code_spans(runbook())
        if EVENT.match(span) and span.rsplit(".", 1)[1] not in FILE_SUFFIXES
    }
    for block in FENCE.findall(runbook()):
        named.update(EVENT_IN_FILTER.findall(block))
    return named


def test_every_log_event_the_runbook_names_is_logged() -> None:
    events = logged_events()
    named = runbook_events()
    unknown = set()
    for name in named:
        if name.endswith(".*"):
            if not any(event.startswith(name[:-1]) for event in events):
                unknown.add(name)
        elif name not in events:
            unknown.add(name)
    assert not unknown, f"log events no code logs: {sorted(unknown)}"
    assert len(named) >= 30, named


def test_every_setting_the_runbook_names_exists() -> None:
    settings = {name.upper() for name in Settings.model_fields}
    named = set(SETTING.findall(runbook()))
    assert named - settings == set(), "settings that Herald does not have"
    assert {"RECONCILE_GRACE_SECONDS", "SHUTDOWN_GRACE_SECONDS", "DATABASE_URL"} <= named


@pytest.mark.parametrize(
    "part", ["**Alert", "**Metrics:**", "**Logs:**", "**Commands:**", "**Safe:**"]
)
def test_every_situation_says_what_fires_what_to_look_at_and_what_is_safe(part: str) -> None:
    for anchor, text in situation_sections().items():
        assert part in text, f"#{anchor} has no {part}"


def test_every_situation_names_real_metrics_and_log_events() -> None:
    exported = exported_sample_names()
    events = logged_events()
    assert len(situation_sections()) >= 12
    for anchor, text in situation_sections().items():
        metrics_part = text.split("**Metrics:**", 1)[1].split("**Logs:**", 1)[0]
        logs_part = text.split("**Logs:**", 1)[1].split("\n\n", 1)[0]
        assert set(METRIC.findall(metrics_part)) & exported, f"#{anchor}: no metric"
        assert {span for span in code_spans(logs_part) if span in events}, f"#{anchor}: no event"
