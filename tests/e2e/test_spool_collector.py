"""The collector side of the ``spool`` transport, with the real otelcol-audit and VictoriaLogs.

Spool segments are written here in the contract layout (``<root>/<instance>/seg-*.jsonl``
once closed, ``*.jsonl.open`` while written), each line an OTLP/JSON request made by the
project's encoder from real SDK log records. The collector must deliver every closed
segment's events to the archive and VictoriaLogs exactly as written (already-clean events
leave its processors unchanged), never read an open segment, delete what it has read, and
not deliver anything twice across a restart.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

from otel_audit.archive import ArchivedEvent, read_events
from otel_audit.archive._otlp_json import encode_logs_line

from .harness import AuditStack, poll

pytestmark = pytest.mark.e2e

SERVICE = "spool-e2e"
# The first second of 2026 in ns: fixed, so that written and archived times can be compared.
BASE_TIME_NS = 1_767_225_600_000_000_000
PATIENCE = 60.0


def _events(instance: str, seqs: Sequence[int]) -> tuple[ReadableLogRecord, ...]:
    """Clean audit events (as the library emits them after redaction) from a real SDK logger."""
    memory = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    provider = LoggerProvider(
        resource=Resource.create({"service.name": SERVICE, "service.instance.id": instance})
    )
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    logger = provider.get_logger("otel_audit", "1.0")
    for seq in seqs:
        prev = _hash(instance, seq - 1)
        logger.emit(
            event_name="audit.http.request",
            timestamp=BASE_TIME_NS + seq * 1_000_000,
            observed_timestamp=BASE_TIME_NS + seq * 1_000_000 + 17,
            severity_number=SeverityNumber.INFO,
            severity_text="INFO",
            body="GET /orders/{order_id}",
            attributes={
                "audit.event.id": str(uuid.uuid4()),
                "audit.action": "http.request",
                "audit.outcome": "success",
                "audit.seq": seq,
                "audit.chain.prev": prev,
                "audit.chain.hash": _hash(instance, seq),
                "user.id": "u-1f3a",
                "tenant.id": "acme",
                "http.route": "/orders/{order_id}",
                "http.request.method": "GET",
                "http.response.status_code": 200,
                "url.path": f"/orders/{seq}",
                # A secret parameter already masked in-process: the collector leaves it.
                "url.query": "page=2&token=[REDACTED:secret_key]",
                "audit.actor.scopes": ("orders:read", "orders:write"),
                # 4096 characters the library's cap allows: 8192 bytes in UTF-8.
                "audit.resource.id": "é" * 4096,
                "http.response.body.size": 1234,
            },
        )
    records = memory.get_finished_logs()
    provider.shutdown()
    return records


def _hash(instance: str, seq: int) -> str:
    return "sha256:" + hashlib.sha256(f"{instance}/{seq}".encode()).hexdigest()


def _line(records: Sequence[ReadableLogRecord]) -> bytes:
    def fail(_record: ReadableLogRecord, error: Exception) -> None:
        raise error

    return (encode_logs_line(records, on_error=fail) + "\n").encode()


def _write_segment(folder: Path, index: int, lines: Sequence[bytes], *, close: bool) -> Path:
    """One segment in the contract layout; closed = written as .open, fsync'd, renamed."""
    folder.mkdir(parents=True, exist_ok=True)
    name = folder / f"seg-20260101T000000.{index:06d}Z-{index:06d}.jsonl"
    open_name = name.with_name(name.name + ".open")
    with open_name.open("wb") as file:
        file.write(b"".join(lines))
        file.flush()
        os.fsync(file.fileno())
    if not close:
        return open_name
    open_name.rename(name)
    return name


def _record_objects(lines: Sequence[bytes]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event id, {resource, scope, record}) for every record in OTLP/JSON lines, as parsed."""
    for line in lines:
        if not line.strip():
            continue
        for resource_logs in json.loads(line)["resourceLogs"]:
            for scope_logs in resource_logs["scopeLogs"]:
                for record in scope_logs["logRecords"]:
                    ids = [a for a in record["attributes"] if a["key"] == "audit.event.id"]
                    yield (
                        ids[0]["value"]["stringValue"],
                        {
                            "resource": resource_logs["resource"],
                            "scope": scope_logs["scope"],
                            "record": record,
                        },
                    )


def _archive_lines(stack: AuditStack) -> list[bytes]:
    return [
        line
        for path in sorted(stack.archive_dir.glob("*.jsonl*"))
        for line in path.read_bytes().splitlines()
    ]


# Where a record was read from, not what it is.
_LOCATION_FIELDS = {"source", "source_file", "line_number"}


def _comparable(event: ArchivedEvent) -> dict[str, Any]:
    """Everything the event says (attributes, body, times, severity, resource, scope)."""
    return {
        name: value
        for name, value in dataclasses.asdict(event).items()
        if name not in _LOCATION_FIELDS
    }


def _by_id(events: Sequence[ArchivedEvent]) -> dict[str, dict[str, Any]]:
    return {str(event.attributes["audit.event.id"]): _comparable(event) for event in events}


class _Spool:
    """Segments written for one test, and what each of them holds."""

    def __init__(self, root: Path, expected_dir: Path) -> None:
        self.root = root
        self.expected_dir = expected_dir  # the same lines, never seen by the collector
        self.closed: list[Path] = []
        self.closed_lines: list[bytes] = []
        self.open_lines: list[bytes] = []
        self._index = 0

    def write(self, instance: str, batches: Sequence[Sequence[int]], *, close: bool = True) -> None:
        lines = [_line(_events(instance, seqs)) for seqs in batches]
        self._index += 1
        segment = _write_segment(self.root / instance, self._index, lines, close=close)
        copy = self.expected_dir / ("closed" if close else "open") / f"{self._index}.jsonl"
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(b"".join(lines))
        if close:
            self.closed.append(segment)
            self.closed_lines += lines
        else:
            self.open_lines += lines

    def expected(self, which: str = "closed") -> dict[str, dict[str, Any]]:
        return _by_id(list(read_events(self.expected_dir / which)))


@pytest.fixture
def spool(audit_stack: AuditStack, tmp_path: Path) -> _Spool:
    return _Spool(audit_stack.spool_dir, tmp_path / "expected")


def _wait_for_archive(stack: AuditStack, ids: set[str]) -> dict[str, dict[str, Any]]:
    def arrived() -> dict[str, dict[str, Any]] | None:
        archived = _by_id(stack.archive_events())
        return archived if ids <= set(archived) else None

    return poll(arrived, timeout=PATIENCE, what=f"{len(ids)} spool events in the archive")


def test_closed_segments_arrive_unchanged_and_are_deleted(
    audit_stack: AuditStack, spool: _Spool
) -> None:
    """Every closed segment's event reaches archive and VictoriaLogs as written; open ones never."""
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    # Several lines per segment, several records per line, two instances.
    spool.write(first, [[1, 2], [3], [4, 5]])
    spool.write(first, [[6, 7]])
    spool.write(second, [[1, 2, 3]])
    spool.write(first, [[8, 9]], close=False)  # being written: must not be read
    expected = spool.expected()
    assert len(expected) == 10

    archived = _wait_for_archive(audit_stack, set(expected))
    poll(
        lambda: not any(path.exists() for path in spool.closed),
        timeout=PATIENCE,
        what="the collector to delete the segments it read",
    )

    # Decoded: attributes, body, times, severity, resource and scope, all as written.
    for key, event in expected.items():
        changed = {name for name in event if archived[key][name] != event[name]}
        assert not changed, {name: (event[name], archived[key][name]) for name in changed}
    # Raw: each record object (with its resource and scope) parses to what was written;
    # nothing added (no redaction.* counts, no log.file.name), nothing rewritten.
    written = dict(_record_objects(spool.closed_lines))
    in_archive = dict(_record_objects(_archive_lines(audit_stack)))
    assert {key: in_archive[key] for key in written} == written

    # The open segment is untouched and none of its events was delivered.
    open_ids = set(spool.expected("open"))
    assert len(open_ids) == 2
    assert not open_ids & set(archived)
    assert list(spool.root.glob("*/*.open")), "the open segment was deleted"

    def in_victoria_logs() -> set[str] | None:
        found = {
            str(entry.get("audit.event.id"))
            for entry in audit_stack.logs(f'service.name:"{SERVICE}"')
        }
        return found if set(expected) <= found else None

    found = poll(in_victoria_logs, timeout=PATIENCE, what="the spool events in VictoriaLogs")
    assert not open_ids & found


def test_restart_does_not_deliver_twice(audit_stack: AuditStack, spool: _Spool) -> None:
    """Across a collector restart each spooled event is archived exactly once."""
    instance = str(uuid.uuid4())
    spool.write(instance, [[1, 2], [3]])
    _wait_for_archive(audit_stack, set(spool.expected()))

    audit_stack.restart("otelcol-audit", audit_stack.collector)
    spool.write(instance, [[4], [5, 6]])  # arrives while (or after) the new process starts
    expected = spool.expected()
    _wait_for_archive(audit_stack, set(expected))

    ids = [str(event.attributes["audit.event.id"]) for event in audit_stack.archive_events()]
    counts = {key: ids.count(key) for key in expected}
    assert counts == dict.fromkeys(expected, 1)


def test_library_spool_writer_segments_are_consumed(
    audit_stack: AuditStack, tmp_path: Path
) -> None:
    """Segments written by the library's SpoolWriter reach the archive unchanged and are deleted."""
    spool_module = pytest.importorskip("otel_audit._transport._spool")
    instance = str(uuid.uuid4())
    drops: list[tuple[str, int]] = []
    writer = spool_module.SpoolWriter(
        audit_stack.spool_dir, instance, on_drop=lambda reason, n: drops.append((reason, n))
    )
    lines = [_line(_events(instance, seqs)) for seqs in ([1, 2], [3], [4, 5, 6])]
    commits = [writer.append(line) for line in lines]
    assert all(commit is not None and commit.wait(30) for commit in commits)
    writer.close()  # closes the open segment: renamed to .jsonl, now the collector's
    assert drops == []

    expected_file = tmp_path / "expected.jsonl"
    expected_file.write_bytes(b"".join(lines))
    expected = _by_id(list(read_events(expected_file)))
    archived = _wait_for_archive(audit_stack, set(expected))
    assert {key: archived[key] for key in expected} == expected
    poll(
        lambda: not list(writer.directory.glob("*.jsonl")),
        timeout=PATIENCE,
        what="the collector to delete the library's closed segments",
    )
