"""The auditor's ready-made views over a real trail: VictoriaLogs answers, vmui shows tables.

The demo app (examples/app.py) runs zero-code instrumented and exports to otelcol-audit,
which archives the trail and sends it on to VictoriaLogs (real processes on loopback); the
demo's scripted session (examples/demo.py) plays logins good and bad, changes in two
tenants, denied accesses. Every view of ``otel_audit.query.views`` run on VictoriaLogs'
query API selects the rows the collector's archive says it should (worked out here in
Python from the archived events); one link opened in headless Chromium shows those rows,
field by field, in vmui's table.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest

from examples.demo import play_session
from examples.stack import ROOT, Stack
from otel_audit.archive import ArchivedEvent, read_events
from otel_audit.query.views import (
    CHANGE_ACTION,
    AuditView,
    denied_accesses,
    failed_logins_by_address,
    tenant_changes,
    trail,
    user_activity,
)

from .browser import CHROMIUM, logs_stack, png_size, run_chromium
from .harness import AUDIT_QUERY, LIVE_SERVICES, poll, start

pytestmark = pytest.mark.e2e

SERVICE_NAME = "demo-docs-views"
SCREENSHOT = ROOT / "test-artifacts" / "victorialogs-audit-view.png"
WINDOW = (1400, 900)
# One row of a table view: the columns in vmui's (alphabetical) order after _time.
Row = tuple[str, ...]
COLUMNS = ("_time", "action", "actor", "client", "outcome", "resource", "route", "tenant")


@dataclasses.dataclass(frozen=True)
class DemoTrail:
    stack: Stack
    events: list[ArchivedEvent]
    """The audit events in the collector's archive."""


@pytest.fixture(scope="module")
def demo_trail(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoTrail]:
    """The demo session's trail, archived by the collector and all of it in VictoriaLogs."""
    workdir = tmp_path_factory.mktemp("audit-views")
    with logs_stack(workdir / "stack") as stack:
        app = stack.zero_code_app(
            "examples.app:app", SERVICE_NAME, {"OTEL_TRACES_EXPORTER": "none"}
        )
        app = dataclasses.replace(app, health_url=f"{app.base_url}/docs")  # never audited
        start(app)
        try:
            play_session(app.base_url)
        finally:
            app.stop()  # the app flushes its audit trail to the collector as it exits
            LIVE_SERVICES.pop(app.log, None)

        def complete() -> list[ArchivedEvent] | None:
            events = [
                e for e in read_events(stack.archive_dir) if e.event_name.startswith("audit.")
            ]
            return events if events and len(stack.query_logs(AUDIT_QUERY)) == len(events) else None

        events = poll(complete, timeout=60, what="the archived trail, all of it in VictoriaLogs")
        yield DemoTrail(stack, events)


def nanos(rfc3339: str) -> int:
    """Unix nanoseconds of VictoriaLogs' ``_time`` text (RFC 3339, up to 9 fraction digits)."""
    match = re.fullmatch(r"(.{19})(?:\.(\d{1,9}))?Z", rfc3339)
    assert match, rfc3339
    seconds = datetime.fromisoformat(match[1]).replace(tzinfo=timezone.utc).timestamp()
    return int(seconds) * 1_000_000_000 + int((match[2] or "0").ljust(9, "0"))


def archived_row(event: ArchivedEvent) -> Row:
    """The table row an archived event should be: its fields, "" where it has none."""
    attributes = {key: str(value) for key, value in event.attributes.items()}
    kind, ident = attributes.get("audit.resource.type", ""), attributes.get("audit.resource.id")
    return (
        str(event.timestamp_ns),
        attributes.get("audit.action", ""),
        attributes.get("user.id", ""),
        attributes.get("client.address", ""),
        attributes.get("audit.outcome", ""),
        f"{kind}/{ident}" if ident else kind,
        attributes.get("http.route", ""),
        attributes.get("tenant.id", ""),
    )


def logs_row(hit: dict[str, str]) -> Row:
    """A row of a table view as VictoriaLogs' query API answers it (time in nanoseconds)."""
    return (str(nanos(hit["_time"])), *(hit.get(column, "") for column in COLUMNS[1:]))


def answer(stack: Stack, view: AuditView) -> list[dict[str, str]]:
    return stack.query_logs(view.logsql)


def selected(trail: DemoTrail, keep: Callable[[ArchivedEvent], bool]) -> list[Row]:
    """The archived events ``keep`` selects, as rows, newest first."""
    rows = [archived_row(event) for event in trail.events if keep(event)]
    return sorted(rows, key=lambda row: int(row[0]), reverse=True)


def test_table_views_select_what_the_archive_holds(demo_trail: DemoTrail) -> None:
    """The trail, a user's activity, a tenant's changes, denied accesses: the archive's rows."""
    stack = demo_trail.stack

    def attribute(name: str) -> Callable[[ArchivedEvent], object]:
        return lambda event: event.attributes.get(name)

    action, user, tenant = attribute("audit.action"), attribute("user.id"), attribute("tenant.id")
    outcome, status = attribute("audit.outcome"), attribute("http.response.status_code")
    cases: list[tuple[AuditView, Callable[[ArchivedEvent], bool]]] = [
        (trail(), lambda event: True),
        (user_activity("u-alice"), lambda event: user(event) == "u-alice"),
        (
            tenant_changes("acme"),
            lambda event: (
                tenant(event) == "acme"
                and outcome(event) == "success"
                and bool(re.search(CHANGE_ACTION, str(action(event))))
            ),
        ),
        (
            denied_accesses(),
            lambda event: action(event) == "access.denied" or status(event) in (401, 403),
        ),
    ]
    for view, keep in cases:
        expected = selected(demo_trail, keep)
        assert expected, f"the demo session has nothing for {view.title!r}"
        assert [logs_row(hit) for hit in answer(stack, view)] == expected, view.title


def test_the_demo_session_shows_in_the_views(demo_trail: DemoTrail) -> None:
    """What the session did is where an auditor looks for it (independent of the archive)."""
    stack = demo_trail.stack
    changes = {
        (hit["action"], hit["resource"], hit["actor"])
        for hit in answer(stack, tenant_changes("acme"))
    }
    assert changes == {
        ("user.role_changed", "user/u-bob", "u-alice"),
        ("document.updated", "document/doc-1", "u-alice"),
        ("document.created", "document/doc-1", "u-alice"),
    }
    denied = Counter(
        (hit.get("actor", ""), hit["route"]) for hit in answer(stack, denied_accesses())
    )
    assert denied[("u-bob", "/admin/settings")] == 2  # access.denied and the 403 request
    failed = answer(stack, failed_logins_by_address())
    assert [(hit["client.address"], hit["failed_logins"]) for hit in failed] == [("127.0.0.1", "2")]
    archived = Counter(str(e.attributes.get("audit.action")) for e in demo_trail.events)
    assert archived["auth.login_failed"] == 2


class TableText(HTMLParser):
    """The header and body cell texts of vmui's result table (``table.vm-table``)."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0  # >0 inside the table
        self.header: list[str] = []
        self.rows: list[list[str]] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and "vm-table" in (dict(attrs).get("class") or "").split():
            self.depth = 1
        elif self.depth and tag == "tr":
            self.rows.append([])
        elif self.depth and tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if self.depth and tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append("".join(self.cell).strip())
            self.cell = None
        elif self.depth and tag == "table":
            self.depth = 0
            self.header, *self.rows = self.rows or [[]]

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)

    @classmethod
    def of(cls, dom: str) -> tuple[list[str], list[list[str]]]:
        parser = cls()
        parser.feed(dom)
        parser.close()
        return parser.header, parser.rows


def test_vmui_shows_a_tenants_changes_as_a_table(demo_trail: DemoTrail, tmp_path: Path) -> None:
    """The tenant-changes link, opened in Chromium, renders its rows field by field."""
    if not (CHROMIUM.is_file() and CHROMIUM.stat().st_mode & 0o111):
        pytest.fail(f"Chromium is missing at {CHROMIUM}: run scripts/install-browser.sh")
    stack = demo_trail.stack
    view = tenant_changes("acme")
    url = view.url(stack.logs_url, relative_time="last_1_hour")
    dom = run_chromium(tmp_path / "profile-dom", "--dump-dom", url).stdout
    SCREENSHOT.parent.mkdir(exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    run_chromium(
        tmp_path / "profile-screenshot",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        f"--screenshot={SCREENSHOT}",
        url,
    )

    header, rows = TableText.of(dom)
    assert header[: len(COLUMNS)] == list(COLUMNS), f"vmui's table at {url}: {header}"
    # Newest first, as vmui sorts by _time; a field the event lacks shows as "-".
    expected = [
        [hit["_time"], *(hit.get(column) or "-" for column in COLUMNS[1:])]
        for hit in answer(stack, view)
    ]
    assert len(expected) == 3
    assert [row[: len(COLUMNS)] for row in rows] == expected, f"vmui rendered {rows} at {url}"
    assert png_size(SCREENSHOT) == WINDOW
