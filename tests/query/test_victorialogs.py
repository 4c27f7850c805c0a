"""The same queries against a real VictoriaLogs give the same answers as against the files.

The 100,000-event trail goes into VictoriaLogs through the real collector (otelcol-audit:
its otlpjsonfile receiver reads the archive lines, its otlp_http exporter sends protobuf to
VictoriaLogs' OTLP endpoint); then the filter cases, pages, look-ups, statistics and the
commands run against both and are compared.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from examples.stack import Service, Stack, binary, die_with_parent, http_post, stop_process
from otel_audit._transport._shipper_send import json_body, protobuf_request
from otel_audit.archive import ArchivedEvent
from otel_audit.query import (
    BackendError,
    EventFilter,
    VictoriaLogsSource,
    event_to_dict,
    sort_key,
    to_logsql,
)
from otel_audit.query._page import page_of_stream
from otel_audit.query._shape import EVENT_ID
from otel_audit.query._stats import StatsTally
from otel_audit.query._victorialogs import LogsQLClient, parse_time

from .cases import CASES, Case, now_of
from .conftest import Trail, keys, oracle
from .test_cli import cli
from .test_filters import selected
from .trail import PSEUDONYM_KEY, TIES, write_events

pytestmark = pytest.mark.e2e

LINES_PER_REQUEST = 50
COLLECTOR_CONFIG = """\
receivers:
  otlpjsonfile:
    include: [{folder}/*.jsonl]
    start_at: beginning
    max_log_size: 16MiB
    include_file_name: false  # as otelcol-audit.yaml's spool receiver: records as written
exporters:
  otlp_http/victorialogs:
    logs_endpoint: {url}/insert/opentelemetry/v1/logs
    encoding: proto
    compression: gzip
    sending_queue:
      enabled: false
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [otlpjsonfile]
      exporters: [otlp_http/victorialogs]
"""


def ingest(url: str, lines: list[bytes]) -> None:
    """POST a few lines to VictoriaLogs' OTLP endpoint (protobuf) and make them searchable."""
    body = protobuf_request([line.rstrip(b"\n") for line in lines]).SerializeToString()
    request = urllib.request.Request(
        f"{url}/insert/opentelemetry/v1/logs",
        data=body,
        headers={"Content-Type": "application/x-protobuf"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status in (200, 204)
    http_post(f"{url}/internal/force_flush")


def ingest_through_collector(workdir: Path, url: str, trail: Trail) -> None:
    """The trail's lines (merged into fewer requests) read by otelcol-audit into VictoriaLogs."""
    folder = workdir / "in"
    folder.mkdir()
    lines = [raw.rstrip(b"\n") for raw, _ in trail.lines]
    with (folder / "trail.jsonl").open("wb") as out:
        for start in range(0, len(lines), LINES_PER_REQUEST):
            out.write(json_body(lines[start : start + LINES_PER_REQUEST]) + b"\n")
    config = workdir / "collector.yaml"
    config.write_text(COLLECTOR_CONFIG.format(folder=folder, url=url))
    source = VictoriaLogsSource("victorialogs+" + url)
    log = workdir / "collector.log"
    with log.open("wb") as output:
        collector = subprocess.Popen(
            [str(binary("otelcol-audit")), "--config", str(config)],
            stdout=output,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent(),  # noqa: PLW1509 (only prctl, getppid, kill)
        )
    try:
        deadline = time.monotonic() + 180
        while (count := _searchable(url, source)) < len(trail.records):
            assert collector.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"{count} of {len(trail.records)} arrived"
            time.sleep(0.5)
    finally:
        stop_process(collector)


def _searchable(url: str, source: VictoriaLogsSource) -> int:
    http_post(f"{url}/internal/force_flush")
    return source.count(to_logsql(EventFilter()))


def started(workdir: Path) -> tuple[Service, str]:
    """A VictoriaLogs of its own in ``workdir``; returns it and its base URL."""
    stack = Stack(workdir)
    service = stack.victoria_logs()
    service.start()
    return service, stack.logs_url


@pytest.fixture(scope="module")
def backend(trail: Trail, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A VictoriaLogs holding the trail; yields its victorialogs+http:// source URL."""
    workdir = tmp_path_factory.mktemp("victorialogs")
    service, url = started(workdir)
    try:
        ingest_through_collector(workdir, url, trail)
        yield "victorialogs+" + url
    finally:
        service.stop()


def comparable(event: ArchivedEvent) -> dict[str, Any]:
    """The contract object without ``source`` (a file:line, or null for a backend)."""
    shaped = event_to_dict(event)
    del shaped["source"]
    return shaped


def test_every_record_arrived(trail: Trail, backend: str) -> None:
    """VictoriaLogs holds every record written, copies too (time and id of each compared)."""
    client = LogsQLClient(backend.removeprefix("victorialogs+"))
    rows = client.query(to_logsql(EventFilter()) + ' | fields _time, "audit.event.id"')
    got = Counter((parse_time(row["_time"]), row["audit.event.id"]) for row in rows)
    assert got == keys(trail.records)


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.id != "everything"], ids=lambda case: case.id
)
def test_filters_select_the_same_records(trail: Trail, backend: str, case: Case) -> None:
    """Every filter case: the same records as the oracle, in time order."""
    now = now_of(trail.now_ns)
    got = list(VictoriaLogsSource(backend).events(case.event_filter(trail.now_ns), now=now))
    args = case.oracle_args(trail.now_ns)
    assert keys(got) == keys(r for r in trail.records if oracle(r, **args))
    assert [e.timestamp_ns for e in got] == sorted(e.timestamp_ns for e in got)


@pytest.mark.parametrize(
    "fields",
    [
        {"user": "user-7"},
        {"action": "user.role_changed", "outcome": "error"},
        {"client": "10.0.0.1"},
    ],
    ids=["user", "role-changes", "client"],
)
def test_events_come_back_shaped_as_from_the_files(
    trail: Trail, backend: str, fields: dict[str, Any]
) -> None:
    """Attributes (typed back: ints, arrays), resource, severity, body, ids: all equal."""
    flt = EventFilter(**fields)
    from_files = sorted((comparable(e) for e in selected(trail, flt)), key=_order)
    from_backend = sorted(
        (comparable(e) for e in VictoriaLogsSource(backend).events(flt)), key=_order
    )
    assert from_backend == from_files
    assert from_files


def _order(shaped: dict[str, Any]) -> tuple[str, str]:
    return (shaped["timestamp"], shaped["event_id"] or "")


@pytest.mark.parametrize("newest_first", [False, True], ids=["oldest-first", "newest-first"])
@pytest.mark.parametrize("limit", [5, 100])
def test_pages_equal_the_files_pages(
    trail: Trail, backend: str, newest_first: bool, limit: int
) -> None:
    """Page by page, the same events, totals and end, ties on one instant included."""
    (tie, ties), *_ = Counter(r.timestamp_ns for r in trail.records).most_common(1)
    assert ties >= TIES
    instant = now_of(tie)
    for flt in (
        EventFilter(since=instant, until=instant + timedelta(microseconds=1)),
        EventFilter(category="failed-login", since=timedelta(days=1)),
    ):
        files = selected(trail, flt)
        source = VictoriaLogsSource(backend)
        now = now_of(trail.now_ns)
        cursor: str | None = None
        pages = 0
        while True:
            want = page_of_stream(
                files.__iter__,
                limit=limit,
                cursor=cursor,
                newest_first=newest_first,
            )
            got = source.page(flt, limit=limit, cursor=cursor, newest_first=newest_first, now=now)
            assert [sort_key(e) for e in got.events] == [sort_key(e) for e in want.events]
            assert (got.total, got.next_cursor) == (want.total, want.next_cursor)
            pages += 1
            cursor = got.next_cursor
            if cursor is None:
                break
        assert pages == max(1, -(-len(keys(files)) // limit))  # ceil: each page was full


def test_statistics_equal_the_files(trail: Trail, backend: str) -> None:
    """stats pipes on the server give the file tally's figures, dimension by dimension."""
    now = now_of(trail.now_ns)
    for flt, bucket in (
        (EventFilter(since=timedelta(days=10)), timedelta(hours=6)),
        (EventFilter(tenant="tenant-3", pseudonym_key=PSEUDONYM_KEY), timedelta(days=1)),
    ):
        want = StatsTally(bucket).add_all(selected(trail, flt)).result()
        got = VictoriaLogsSource(backend).stats(flt, bucket=bucket, now=now)
        assert got.to_dict() == want.to_dict()
        assert got.total and got.failed_logins and got.denied


def test_get_event_equals_the_files(trail: Trail, backend: str) -> None:
    """Looking an event up by id gives the same event; an unknown id gives None."""
    record = trail.records[4242]
    event_id = str(record.attributes["audit.event.id"])
    found = VictoriaLogsSource(backend).get(event_id)
    assert found is not None
    want = next(e for e in selected(trail, EventFilter()) if e.attributes.get(EVENT_ID) == event_id)
    assert comparable(found) == comparable(want)
    assert VictoriaLogsSource(backend).get("no-such-event") is None


def test_commands_answer_the_same_from_both(trail: Trail, backend: str) -> None:
    """`query --source` and `stats --source` print what they print for the files."""
    options = ["--tenant", "tenant-3", "--action", "user.*"]
    files = cli("query", *trail.paths, *options)
    server = cli("query", "--source", backend, *options)
    assert (files.code, server.code) == (0, 0), server.err

    def contents(run: Any) -> list[str]:  # each object without its source, keys sorted
        lines = run.json_lines()
        return sorted(json.dumps({**obj, "source": None}, sort_keys=True) for obj in lines)

    assert contents(server) == contents(files)
    assert contents(files)
    stats_files = cli("stats", *trail.paths, *options, "--format", "json")
    stats_server = cli("stats", "--source", backend, *options, "--format", "json")
    assert json.loads(stats_files.out) == json.loads(stats_server.out)


def test_a_query_the_server_refuses_is_one_line(backend: str) -> None:
    """VictoriaLogs' own error text comes back in one line."""
    client = LogsQLClient(backend.removeprefix("victorialogs+"))
    with pytest.raises(BackendError, match=r"answered 400: .*") as error:
        list(client.query("audit.action:in(("))
    assert "\n" not in str(error.value)


def test_tail_follows_the_backend(tmp_path: Path) -> None:
    """`tail -f --source` prints an event ingested after it started (live tailing)."""
    service, url = started(tmp_path / "vl")
    lines: queue.Queue[bytes] = queue.Queue()
    process = subprocess.Popen(
        [sys.executable, "-m", "otel_audit", "tail", "-f", "--source", "victorialogs+" + url,
         "--action", "tail.*", "--format", "json", "-n", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None and process.stderr is not None
        stdout = process.stdout

        def pump() -> None:
            for line in stdout:
                lines.put(line)

        threading.Thread(target=pump, daemon=True).start()
        archive = tmp_path / "new.jsonl"
        deadline = time.monotonic() + 30
        seen: dict[str, Any] | None = None
        while seen is None and time.monotonic() < deadline:
            # Live tailing starts when the request arrives: send until one is printed.
            write_events(
                archive,
                [_tail_event("skipped", "user.updated"), _tail_event("t", "tail.seen")],
                mode="w",
            )
            ingest(url, archive.read_bytes().splitlines(keepends=True))
            try:
                seen = json.loads(lines.get(timeout=2))
            except queue.Empty:
                continue
        assert seen is not None, "nothing printed within 30s"
        assert seen["attributes"]["audit.action"] == "tail.seen"
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(20)
        service.stop()
    assert code == 130
    assert process.stderr.read() == b""


def _tail_event(event_id: str, action: str) -> dict[str, Any]:
    return {
        "timestamp_ns": time.time_ns(),
        "attributes": {
            "audit.action": action,
            "audit.outcome": "success",
            "audit.event.id": event_id,
        },
    }
