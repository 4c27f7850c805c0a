"""An audit event is visible in the VictoriaLogs web UI, in a real (headless) Chromium.

The event goes the production way: OTLP/HTTP into otelcol-audit, through its audit pipeline
(routing, redaction allow-list) to VictoriaLogs. Once the query API has it, Chromium opens
vmui at a URL that runs a LogsQL query for the event's id, and the test reads what the page
rendered (``--dump-dom``) and keeps a screenshot in test-artifacts/ for people to look at.

vmui (VictoriaLogs v1.43.1, app/vmui/packages/vmui/src) is a single-page app with a hash
router: its state is the query string after ``#/?`` (``query``, ``view``, ``g0.range_input``,
...); the query runs on load, over the last few minutes by default.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import uuid
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

from examples.stack import ROOT, Stack

from .browser import CHROMIUM, WINDOW, logs_stack, png_size, run_chromium
from .harness import poll

pytestmark = pytest.mark.e2e

SCREENSHOT = ROOT / "test-artifacts" / "victorialogs-ui.png"
EVENT_NAME = "audit.user.role_changed"
SERVICE_NAME = "otel-audit-browser-test"


def vmui_url(logs_url: str, logsql: str, view: str = "json") -> str:
    """The vmui page that runs ``logsql`` on load and shows the hits in ``view``.

    The JSON view renders every field of every hit as text, so the page itself shows the
    event id and event name (the default group view shows only the message).
    """
    state = urllib.parse.urlencode({"query": logsql, "view": view}, quote_via=urllib.parse.quote)
    return f"{logs_url}/select/vmui/?#/?{state}"


class ResultsText(HTMLParser):
    """The text of vmui's JSON results view (the ``<pre>`` in ``div.vm-json-view``) only.

    The query editor also holds the event id, so the whole page's text would prove nothing.
    """

    def __init__(self) -> None:
        super().__init__()
        self.in_view = False
        self.in_results = False
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if "vm-json-view" in (dict(attrs).get("class") or "").split():
            self.in_view = True
        elif self.in_view and tag == "pre":
            self.in_results = True

    def handle_endtag(self, tag: str) -> None:
        if self.in_results and tag == "pre":
            self.in_view = self.in_results = False

    def handle_data(self, data: str) -> None:
        if self.in_results:
            self.parts.append(data)

    @classmethod
    def of(cls, dom: str) -> str:
        parser = cls()
        parser.feed(dom)
        parser.close()
        return "".join(parser.parts)


def decode_hits(text: str) -> list[dict[str, Any]]:
    """The log entries of the JSON view: JSON objects one after another."""
    decoder, hits, position = json.JSONDecoder(), [], 0
    text = text.strip()
    while position < len(text):
        hit, position = decoder.raw_decode(text, position)
        hits.append(hit)
        while position < len(text) and text[position].isspace():
            position += 1
    return hits


def send_audit_event(stack: Stack, event_id: str) -> None:
    """One role-change audit record over OTLP/HTTP protobuf to the stack's collector."""
    provider = LoggerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
    exporter = OTLPLogExporter(endpoint=f"{stack.otlp_http_endpoint}/v1/logs", timeout=10)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    try:
        provider.get_logger("tests.e2e.test_browser").emit(
            timestamp=time.time_ns(),
            severity_number=SeverityNumber.INFO,
            severity_text="INFO",
            body="u-alice changed the role of user u-bob",
            attributes={
                "audit.event.id": event_id,
                "audit.action": "user.role_changed",
                "audit.outcome": "success",
                "audit.resource.type": "user",
                "audit.resource.id": "u-bob",
                "audit.changes": json.dumps({"role": {"old": "viewer", "new": "editor"}}),
                "user.id": "u-alice",
                "tenant.id": "acme",
            },
            event_name=EVENT_NAME,
        )
    finally:
        provider.shutdown()


def test_victorialogs_ui_shows_the_audit_event(tmp_path: Path) -> None:
    """vmui, opened in Chromium at a query for the event's id, renders that audit event."""
    if not (CHROMIUM.is_file() and CHROMIUM.stat().st_mode & 0o111):
        pytest.fail(f"Chromium is missing at {CHROMIUM}: run scripts/install-browser.sh")
    # Hex without dashes: no PII rule of the collector (card numbers, phones) can match it.
    event_id = f"ui-{uuid.uuid4().hex}"
    logsql = f'audit.event.id:="{event_id}"'

    with logs_stack(tmp_path / "stack") as stack:
        send_audit_event(stack, event_id)
        stored = poll(
            lambda: stack.query_logs(logsql),
            timeout=30,
            what=f"{event_id} in VictoriaLogs' query API",
        )
        assert stored[0]["event_name"] == EVENT_NAME

        url = vmui_url(stack.logs_url, logsql)
        dom = run_chromium(tmp_path / "profile-dom", "--dump-dom", url).stdout
        SCREENSHOT.parent.mkdir(exist_ok=True)
        SCREENSHOT.unlink(missing_ok=True)
        run_chromium(
            tmp_path / "profile-screenshot",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            f"--screenshot={SCREENSHOT}",
            url,
        )

    shown = ResultsText.of(dom)
    assert event_id in shown, f"vmui did not render {event_id} at {url}; results: {shown!r}"
    assert EVENT_NAME in shown, f"vmui did not render {EVENT_NAME}; results: {shown!r}"
    hits = decode_hits(shown)
    assert [(hit["audit.event.id"], hit["event_name"]) for hit in hits] == [(event_id, EVENT_NAME)]
    assert png_size(SCREENSHOT) == WINDOW
