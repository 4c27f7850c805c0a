"""The archive: ArchiveLogExporter writes collector-format OTLP JSON lines, archive reads them.

Everything goes through the real OTel SDK (LoggerProvider, processors, TracerProvider).
"""

from __future__ import annotations

import gzip
import itertools
import json
import logging
import math
import os
import re
import shutil
import stat
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor, ReadableLogRecord
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    InMemoryLogRecordExporter,
    LogRecordExporter,
    LogRecordExportResult,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from otel_audit import _archive_exporter
from otel_audit._archive_exporter import ArchiveLogExporter
from otel_audit.archive import ArchivedEvent, ArchiveReadError, iter_archive_files, read_events
from otel_audit.archive._otlp_json import encode_logs_line

RESOURCE = {"service.name": "billing", "service.instance.id": "i-1"}
TRACE_HEX = "5b8efff798038103d269b633813fc60c"
BACKUP_NAME = re.compile(r"audit-\d{8}T\d{9}Z(-\d+)?\.jsonl")

# Every attribute type the SDK allows; decoded values are what the reader returns.
ATTRIBUTES: dict[str, Any] = {
    "audit.action": "user.role_changed",
    "audit.unicode": "Zoë ✓ 日本",
    "audit.success": False,
    "audit.seq": 9_007_199_254_740_993,  # > 2**53: wrong if it ever went through a float
    "audit.min": -(2**63),
    "audit.ratio": 0.1,
    "audit.blob": b"\x00\xffraw",
    "user.roles": ("admin", "auditor"),
    "audit.flags": (True, False),
    "audit.counts": (1, -2, 3),
    "audit.weights": (0.5, 1e-300),
    "audit.empty": (),
}
BODIES: list[Any] = [
    "User 42 changed role",
    {"role": {"old": "viewer", "new": "admin"}, "n": 3, "ok": True},
    ["a", 1, 2.5, True, None, b"\x01"],
    {"deep": [{"x": [1, [2, [3]]]}], "empty": {}, "none": None},
    b"\x00\x01binary",
    7,
    -1.5,
    True,
    None,
    [],
]


def decoded(value: Any) -> Any:
    """What the reader returns for ``value``: sequences become lists, recursively."""
    if isinstance(value, (tuple, list)):
        return [decoded(item) for item in value]
    if isinstance(value, dict):
        return {key: decoded(item) for key, item in value.items()}
    return value


def make_provider(
    processor: LogRecordProcessor, resource: dict[str, Any] | None = None
) -> LoggerProvider:
    provider = LoggerProvider(resource=Resource(resource or RESOURCE), shutdown_on_exit=False)
    provider.add_log_record_processor(processor)
    return provider


def emit_seq(provider: LoggerProvider, seqs: Sequence[int], **extra: Any) -> None:
    logger = provider.get_logger("otel_audit.test")
    for seq in seqs:
        logger.emit(
            event_name="audit.test", body=f"event {seq}", attributes={"audit.seq": seq, **extra}
        )


def archive_to(directory: Path, **options: Any) -> tuple[ArchiveLogExporter, LoggerProvider]:
    exporter = ArchiveLogExporter(directory, **options)
    return exporter, make_provider(SimpleLogRecordProcessor(exporter))


def seqs_read(path: Path) -> list[Any]:
    errors: list[ArchiveReadError] = []
    seqs = [event.attributes["audit.seq"] for event in read_events(path, errors=errors)]
    assert errors == []
    return seqs


def captured_batch(emit: Callable[[LoggerProvider], None]) -> tuple[ReadableLogRecord, ...]:
    """The SDK's own ReadableLogRecords for what ``emit`` logs."""
    memory = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    emit(make_provider(SimpleLogRecordProcessor(memory)))
    return memory.get_finished_logs()


@pytest.mark.parametrize("body", BODIES, ids=lambda b: type(b).__name__)
def test_every_field_round_trips(tmp_path: Path, body: Any) -> None:
    """A record emitted in a real span reads back with every field, type and id intact."""
    exporter, provider = archive_to(tmp_path)
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("request") as span:
        provider.get_logger("otel_audit.test", "1.2.3").emit(
            event_name="audit.user.role_changed",
            timestamp=1_763_790_778_123_456_789,
            severity_number=SeverityNumber.WARN,
            severity_text="WARN",
            body=body,
            attributes=ATTRIBUTES,
        )
    provider.shutdown()
    context = span.get_span_context()

    errors: list[ArchiveReadError] = []
    [event] = read_events(tmp_path, errors=errors)

    assert errors == []
    assert event.event_name == "audit.user.role_changed"
    assert event.timestamp_ns == 1_763_790_778_123_456_789
    assert event.timestamp == datetime(2025, 11, 22, 5, 52, 58, 123456, tzinfo=timezone.utc)
    assert event.observed_timestamp_ns > event.timestamp_ns
    assert (event.severity_number, event.severity_text) == (13, "WARN")
    assert event.body == decoded(body)
    assert type(event.body) is type(decoded(body))
    assert event.attributes == decoded(ATTRIBUTES)
    assert all(type(event.attributes[k]) is type(decoded(v)) for k, v in ATTRIBUTES.items())
    assert event.resource == RESOURCE
    assert (event.scope_name, event.scope_version) == ("otel_audit.test", "1.2.3")
    assert event.trace_id == f"{context.trace_id:032x}"
    assert event.span_id == f"{context.span_id:016x}"
    assert event.flags == int(context.trace_flags)
    assert event.source == f"{exporter.path}:1"


FIXED_CONTEXT = trace.set_span_in_context(
    NonRecordingSpan(
        SpanContext(
            trace_id=int(TRACE_HEX, 16),
            span_id=0xEEE19B7EC3C1B174,
            is_remote=False,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )
    )
)


@pytest.mark.parametrize(
    ("emit_kwargs", "record_json"),
    [
        pytest.param(
            {
                "event_name": "audit.user.role_changed",
                "timestamp": 1763790778123456789,
                "context": FIXED_CONTEXT,
                "severity_number": SeverityNumber.WARN,
                "severity_text": "WARN",
                "body": "denied",
                "attributes": {"audit.seq": 42, "user.roles": ["admin"], "r": 0.5, "w": 2.0},
            },
            '{"timeUnixNano":"1763790778123456789","observedTimeUnixNano":"1763790778999999999",'
            '"severityNumber":13,"severityText":"WARN","body":{"stringValue":"denied"},'
            '"attributes":[{"key":"audit.seq","value":{"intValue":"42"}},'
            '{"key":"user.roles","value":{"arrayValue":{"values":[{"stringValue":"admin"}]}}},'
            '{"key":"r","value":{"doubleValue":0.5}},{"key":"w","value":{"doubleValue":2}}],'
            '"flags":1,"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",'
            '"eventName":"audit.user.role_changed"}',
            id="full",
        ),
        pytest.param(
            {"attributes": {"nan": math.nan, "inf": math.inf, "ninf": -math.inf}},
            '{"observedTimeUnixNano":"1763790778999999999","body":{},'
            '"attributes":[{"key":"nan","value":{"doubleValue":"NaN"}},'
            '{"key":"inf","value":{"doubleValue":"Infinity"}},'
            '{"key":"ninf","value":{"doubleValue":"-Infinity"}}]}',
            id="empty-body-non-finite",
        ),
        pytest.param(
            {"body": {"k": b"\x00\x01", "e": [], "m": {}}},
            '{"observedTimeUnixNano":"1763790778999999999","body":{"kvlistValue":{"values":['
            '{"key":"k","value":{"bytesValue":"AAE="}},{"key":"e","value":{"arrayValue":{}}},'
            '{"key":"m","value":{"kvlistValue":{}}}]}}}',
            id="kvlist-body",
        ),
    ],
)
def test_line_is_byte_exact_collector_json(
    tmp_path: Path, emit_kwargs: dict[str, Any], record_json: str
) -> None:
    """The written line is byte for byte what the collector's pdata JSON marshaler writes."""
    exporter, provider = archive_to(tmp_path)
    provider.get_logger("otel_audit", "0.1.0").emit(
        observed_timestamp=1763790778999999999, **emit_kwargs
    )
    provider.shutdown()

    assert exporter.path.read_text(encoding="utf-8") == (
        '{"resourceLogs":[{"resource":{"attributes":['
        '{"key":"service.name","value":{"stringValue":"billing"}},'
        '{"key":"service.instance.id","value":{"stringValue":"i-1"}}]},'
        '"scopeLogs":[{"scope":{"name":"otel_audit","version":"0.1.0"},'
        f'"logRecords":[{record_json}]}}]}}]}}\n'
    )


def mixed_batch() -> tuple[ReadableLogRecord, ...]:
    """Records from two resources and three scopes, interleaved, with every value type."""

    memory = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    main = make_provider(SimpleLogRecordProcessor(memory))
    other = make_provider(SimpleLogRecordProcessor(memory), {"service.name": "other"})
    for index, body in enumerate(BODIES):
        provider = other if index % 3 == 0 else main
        provider.get_logger(f"scope{index % 2}", "1").emit(
            event_name=f"audit.e{index}",
            body=body,
            attributes=ATTRIBUTES,
            severity_number=SeverityNumber.INFO,
            context=FIXED_CONTEXT,
        )
    return memory.get_finished_logs()


def test_line_reuses_cached_blocks_and_groups_like_otlp(tmp_path: Path) -> None:
    """The exporter's line, with cached resource/scope text, is the encoder's, grouped like OTLP."""
    batch = mixed_batch()
    exporter = ArchiveLogExporter(tmp_path)
    for _ in range(2):  # the second export uses the cached resource/scope text
        assert exporter.export(batch) is LogRecordExportResult.SUCCESS
    exporter.shutdown()

    expected = encode_logs_line(batch, on_error=lambda _record, error: pytest.fail(str(error)))
    lines = exporter.path.read_text(encoding="utf-8").splitlines()
    assert lines == [expected] * 2
    request = json.loads(expected)
    groups = [[len(s["logRecords"]) for s in r["scopeLogs"]] for r in request["resourceLogs"]]
    assert groups == [[2, 2], [3, 3]]  # other: e0 e3 e6 e9; main: e1 e2 e4 ...


def test_restart_appends_and_never_truncates(tmp_path: Path) -> None:
    """A second exporter on the same file appends after what the first one wrote."""
    exporter, provider = archive_to(tmp_path)
    emit_seq(provider, [1, 2])
    provider.shutdown()
    first = exporter.path.read_bytes()

    exporter, provider = archive_to(tmp_path)
    emit_seq(provider, [3])
    provider.shutdown()

    assert exporter.path.read_bytes().startswith(first)
    assert seqs_read(tmp_path) == [1, 2, 3]


def test_torn_last_line_is_reported_and_restart_does_not_glue_onto_it(tmp_path: Path) -> None:
    """A crash-torn last line is reported, the rest is read, and new lines start fresh."""
    exporter, provider = archive_to(tmp_path)
    emit_seq(provider, [1])
    provider.shutdown()
    whole_line = exporter.path.read_bytes()
    with exporter.path.open("ab") as archive:
        archive.write(whole_line[:57])  # a write cut short by a crash

    errors: list[ArchiveReadError] = []
    assert [e.attributes["audit.seq"] for e in read_events(tmp_path, errors=errors)] == [1]
    assert errors == [ArchiveReadError(f"{exporter.path}:2", "incomplete last line (torn write?)")]

    exporter, provider = archive_to(tmp_path)
    emit_seq(provider, [2])
    provider.shutdown()
    errors.clear()
    assert [e.attributes["audit.seq"] for e in read_events(tmp_path, errors=errors)] == [1, 2]
    assert [error.source for error in errors] == [f"{exporter.path}:2"]


@pytest.mark.parametrize("max_backups", [0, 3])
def test_rotation_by_size_keeps_every_record_once_in_order(
    tmp_path: Path, max_backups: int
) -> None:
    """Small max_bytes rotates into uniquely named files; max_backups prunes the oldest."""
    exporter, provider = archive_to(tmp_path, max_bytes=1500, max_backups=max_backups)
    emit_seq(provider, range(120))
    provider.shutdown()

    files = iter_archive_files(tmp_path)
    rotated = files[:-1]
    assert files[-1] == exporter.path
    assert all(BACKUP_NAME.fullmatch(path.name) for path in rotated)
    assert all(path.stat().st_size <= 1500 for path in files)
    seqs = seqs_read(tmp_path)
    if max_backups:
        assert len(rotated) == max_backups
        assert seqs == list(range(120 - len(seqs), 120))
        assert len(seqs) < 120
    else:
        assert len(rotated) > 10
        assert seqs == list(range(120))


@pytest.mark.parametrize("step_ms", [0, -1000], ids=["frozen", "backwards"])
def test_rotation_order_survives_a_frozen_or_backward_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step_ms: int
) -> None:
    """Backups sort in write order within one millisecond, after pruning, and if time steps back."""
    calls = itertools.count()

    class Clock:
        @staticmethod
        def now(tz: timezone) -> datetime:
            start = datetime(2026, 11, 22, 5, 52, 58, 123000, tzinfo=tz)
            return start + timedelta(milliseconds=step_ms * next(calls))

    monkeypatch.setattr(_archive_exporter, "datetime", Clock)
    exporter, provider = archive_to(tmp_path, max_bytes=1500, max_backups=3)
    emit_seq(provider, range(60))
    provider.shutdown()

    rotated = iter_archive_files(tmp_path)[:-1]
    assert len(rotated) == 3
    assert all(path.name.startswith("audit-20261122T055258123Z-") for path in rotated)
    seqs = seqs_read(tmp_path)
    assert seqs == list(range(60 - len(seqs), 60))
    assert len(seqs) > len(seqs_read(exporter.path))


def test_record_larger_than_max_bytes_is_written_alone(tmp_path: Path) -> None:
    """A line bigger than max_bytes is still archived, alone in its file, leaving no empty file."""
    _, provider = archive_to(tmp_path, max_bytes=100)
    emit_seq(provider, range(3))
    provider.shutdown()

    files = iter_archive_files(tmp_path)
    assert [len(path.read_bytes().splitlines()) for path in files] == [1, 1, 1]
    assert seqs_read(tmp_path) == [0, 1, 2]


# Verbatim output of the collector's plog.JSONMarshaler (pdata v1.70.0) for this data.
COLLECTOR_LINE = (
    '{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":'
    '{"stringValue":"billing"}},{"key":"pid","value":{"intValue":"4242"}}]},'
    '"scopeLogs":[{"scope":{"name":"otel_audit","version":"0.1.0"},"logRecords":['
    '{"timeUnixNano":"1763790778123456789","observedTimeUnixNano":"1763790778200000000",'
    '"severityNumber":17,"severityText":"ERROR","body":{"kvlistValue":{"values":['
    '{"key":"msg","value":{"stringValue":"denied"}},{"key":"n","value":{"intValue":"42"}},'
    '{"key":"tags","value":{"arrayValue":{"values":[{"stringValue":"a"},{"boolValue":true}]}}}'
    ']}},"attributes":[{"key":"audit.seq","value":{"intValue":"9007199254740993"}},'
    '{"key":"ratio","value":{"doubleValue":"NaN"}},{"key":"x","value":{"doubleValue":2}},'
    '{"key":"blob","value":{"bytesValue":"AAEC"}},{"key":"nothing","value":{}}],'
    '"flags":1,"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",'
    '"eventName":"audit.user.role_changed"},'
    '{"observedTimeUnixNano":"1763790778300000000","severityNumber":13,"body":{}}]}],'
    '"schemaUrl":"https://opentelemetry.io/schemas/1.26.0"}]}\n'
)


def test_collector_written_line_is_read(tmp_path: Path) -> None:
    """A line as the collector's file exporter writes it decodes to the right values."""
    path = tmp_path / "audit-2026-11-22T05-52-58.123.jsonl"
    path.write_text(COLLECTOR_LINE, encoding="utf-8")
    errors: list[ArchiveReadError] = []
    first, second = read_events(tmp_path, errors=errors)

    assert errors == []
    assert first.event_name == "audit.user.role_changed"
    assert (first.timestamp_ns, first.observed_timestamp_ns) == (
        1763790778123456789,
        1763790778200000000,
    )
    assert (first.severity_number, first.severity_text) == (17, "ERROR")
    assert first.body == {"msg": "denied", "n": 42, "tags": ["a", True]}
    assert math.isnan(first.attributes.pop("ratio"))  # type: ignore[arg-type]
    assert first.attributes == {
        "audit.seq": 9007199254740993,
        "x": 2.0,
        "blob": b"\x00\x01\x02",
        "nothing": None,
    }
    assert type(first.attributes["x"]) is float
    assert first.resource == {"service.name": "billing", "pid": 4242}
    assert (first.scope_name, first.scope_version, first.flags) == ("otel_audit", "0.1.0", 1)
    assert (first.trace_id, first.span_id) == (
        "5b8efff798038103d269b633813fc60c",
        "eee19b7ec3c1b174",
    )
    assert (first.source, second.source) == (f"{path}:1", f"{path}:1")
    assert (second.event_name, second.severity_number, second.body) == ("", 13, None)
    assert second.timestamp == datetime(2025, 11, 22, 5, 52, 58, 300000, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("canonical", "variant"),
    [
        (
            f'"traceId":"{TRACE_HEX}"',
            f'"traceId":"{TRACE_HEX.upper()}"',
        ),
        ('"severityNumber":13', '"severityNumber":"SEVERITY_NUMBER_WARN"'),
        ('{"intValue":"42"}', '{"intValue":42}'),
        ('{"doubleValue":2}', '{"doubleValue":"2"}'),
    ],
    ids=["upper-hex-id", "enum-name", "int-as-number", "double-as-string"],
)
def test_reader_accepts_the_variants_the_collector_accepts(
    tmp_path: Path, canonical: str, variant: str
) -> None:
    """Spellings the collector's unmarshaler also accepts decode like the canonical one."""
    assert canonical in COLLECTOR_LINE
    (tmp_path / "canonical.jsonl").write_text(COLLECTOR_LINE, encoding="utf-8")
    (tmp_path / "variant.jsonl").write_text(COLLECTOR_LINE.replace(canonical, variant), "utf-8")

    def decode(name: str) -> list[tuple[Any, ...]]:
        errors: list[ArchiveReadError] = []
        events = list(read_events(tmp_path / name, errors=errors))
        assert errors == []
        return [(e.trace_id, e.severity_number, e.body, e.attributes.get("x")) for e in events]

    assert decode("variant.jsonl") == decode("canonical.jsonl")


def test_files_are_read_oldest_first_whoever_rotated_them(tmp_path: Path) -> None:
    """Backups (ours and the collector's) come in timestamp order, live files last."""
    names = [
        "audit-2026-11-21T23-00-00.000.jsonl.gz",  # collector (lumberjack) names
        "audit-20261122T055258123Z.jsonl",
        "audit-20261122T055258123Z-2.jsonl",
        "audit-20261122T055258123Z-10.jsonl",
        "audit-2026-11-22T05-52-58.124.jsonl",
        "spool.jsonl",
        "audit.jsonl",
    ]
    for mtime, name in enumerate(reversed(names)):  # mtimes contradict the names' order
        (tmp_path / name).touch()
        os.utime(tmp_path / name, ns=(0, (1_000 - mtime) * 10**9))
    (tmp_path / "notes.txt").touch()
    (tmp_path / "nested.jsonl").mkdir()

    assert [path.name for path in iter_archive_files(tmp_path)] == names
    assert iter_archive_files(tmp_path / "spool.jsonl") == [tmp_path / "spool.jsonl"]
    with pytest.raises(FileNotFoundError):
        iter_archive_files(tmp_path / "missing")


@pytest.mark.parametrize(
    ("bad_line", "message", "events_in_line"),
    [
        pytest.param(b"garbage\n", "not valid JSON", 0, id="garbage"),
        pytest.param(b"\xff\xfe{}\n", "not valid JSON", 0, id="not-utf8"),
        pytest.param(b"[1, 2]\n", "not an OTLP logs request", 0, id="not-an-object"),
        pytest.param(b'{"resourceLogs":{}}\n', "not an OTLP logs request", 0, id="bad-shape"),
        pytest.param(
            b'{"resourceLogs":[{"scopeLogs":[{"logRecords":['
            b'{"body":{"intValue":"x"}},{"eventName":"audit.ok"},{"traceId":"abc"}]}]}]}\n',
            "skipped log record",
            1,
            id="bad-records-good-sibling",
        ),
    ],
)
def test_corrupt_lines_are_reported_not_silently_skipped(
    tmp_path: Path, bad_line: bytes, message: str, events_in_line: int
) -> None:
    """Every damaged line or record is reported with file:line; good lines around it are read."""
    exporter, provider = archive_to(tmp_path)
    emit_seq(provider, [1])
    with exporter.path.open("ab") as archive:
        archive.write(bad_line)
    emit_seq(provider, [2])
    provider.shutdown()

    errors: list[ArchiveReadError] = []
    events = list(read_events(tmp_path, errors=errors))

    assert len(events) == 2 + events_in_line
    assert errors
    assert all(error.source == f"{exporter.path}:2" for error in errors)
    assert all(message in error.message for error in errors)


def test_corrupt_lines_are_logged_without_an_errors_list(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Without an errors list, a damaged line is logged as a warning on otel_audit."""
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b"garbage\n")

    with caplog.at_level(logging.WARNING, logger="otel_audit"):
        assert list(read_events(path)) == []

    assert [r.name for r in caplog.records] == ["otel_audit"]
    assert f"{path}:1" in caplog.text


@pytest.mark.parametrize("truncate", [False, True], ids=["complete", "truncated"])
def test_gzip_compressed_archives_are_read(tmp_path: Path, truncate: bool) -> None:
    """A .jsonl.gz backup is read before the live file; a truncated one is read and reported."""
    exporter, provider = archive_to(tmp_path / "work", fsync=False)
    emit_seq(provider, range(300))
    provider.shutdown()
    packed = gzip.compress(exporter.path.read_bytes())
    backup = tmp_path / "audit-20261122T055258123Z.jsonl.gz"
    backup.write_bytes(packed[: len(packed) // 2] if truncate else packed)
    shutil.move(exporter.path, tmp_path / "audit.jsonl")
    exporter, provider = archive_to(tmp_path)
    emit_seq(provider, [300])
    provider.shutdown()

    errors: list[ArchiveReadError] = []
    if truncate:
        seqs = [event.attributes["audit.seq"] for event in read_events(backup, errors=errors)]
        assert str(backup) in [error.source for error in errors]
        assert seqs == list(range(len(seqs)))
        assert 0 < len(seqs) < 300
    else:
        assert seqs_read(tmp_path) == [*range(300), *range(300), 300]


@pytest.mark.parametrize("when", ["before-start", "while-running"])
def test_export_fails_without_raising_when_directory_unusable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, when: str
) -> None:
    """An unusable archive directory yields FAILURE and a log, and recovers when fixed."""
    blocked = tmp_path / "blocked"
    directory = blocked / "archive"
    batch = captured_batch(lambda provider: emit_seq(provider, [1]))
    if when == "before-start":
        blocked.write_text("a regular file where a directory should be")
        exporter = ArchiveLogExporter(directory)
    else:
        exporter = ArchiveLogExporter(directory)
        assert exporter.export(batch) is LogRecordExportResult.SUCCESS
        shutil.rmtree(blocked)
        blocked.write_text("a regular file where a directory should be")

    with caplog.at_level(logging.ERROR, logger="otel_audit"):
        assert exporter.export(batch) is LogRecordExportResult.FAILURE
    assert "could not write 1 records" in caplog.text

    blocked.unlink()
    assert exporter.export(batch) is LogRecordExportResult.SUCCESS
    exporter.shutdown()
    assert seqs_read(directory) == [1]


def test_export_after_shutdown_fails(tmp_path: Path) -> None:
    """force_flush works before shutdown; exports after it fail; shutdown is idempotent."""
    exporter = ArchiveLogExporter(tmp_path)
    batch = captured_batch(lambda provider: emit_seq(provider, [1]))
    assert exporter.export(batch) is LogRecordExportResult.SUCCESS
    assert exporter.force_flush() is True
    exporter.shutdown()
    exporter.shutdown()

    assert exporter.export(batch) is LogRecordExportResult.FAILURE
    assert seqs_read(tmp_path) == [1]


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


def cyclic() -> list[Any]:
    loop: list[Any] = ["secret-body-content"]
    loop.append(loop)
    return loop


def nested(depth: int) -> Any:
    value: Any = "secret-body-content"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "bad_body", [cyclic(), nested(500), Unprintable()], ids=["cyclic", "too-deep", "unprintable"]
)
def test_bad_record_does_not_lose_the_rest_of_the_batch(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, bad_body: Any
) -> None:
    """A record that cannot be encoded is dropped and logged without its content; not its batch."""

    def emit(provider: LoggerProvider) -> None:
        logger = provider.get_logger("otel_audit.test")
        logger.emit(event_name="audit.a", attributes={"audit.seq": 1})
        logger.emit(event_name="audit.bad", body=bad_body, attributes={"audit.seq": 2})
        logger.emit(event_name="audit.c", attributes={"audit.seq": 3})

    exporter = ArchiveLogExporter(tmp_path)
    with caplog.at_level(logging.ERROR, logger="otel_audit"):
        result = exporter.export(captured_batch(emit))
    exporter.shutdown()

    assert result is LogRecordExportResult.FAILURE
    assert seqs_read(tmp_path) == [1, 3]
    assert "'audit.bad'" in caplog.text
    assert "secret-body-content" not in caplog.text


def batch_processor(exporter: LogRecordExporter) -> LogRecordProcessor:
    return BatchLogRecordProcessor(
        exporter, max_queue_size=10_000, max_export_batch_size=64, schedule_delay_millis=5
    )


@pytest.mark.parametrize(
    "processor_factory", [batch_processor, SimpleLogRecordProcessor], ids=["batch", "simple"]
)
def test_concurrent_emitters_lose_and_duplicate_nothing(
    tmp_path: Path, processor_factory: Callable[[LogRecordExporter], LogRecordProcessor]
) -> None:
    """8 threads emitting while files rotate: every record once, valid lines, per-thread order."""
    exporter = ArchiveLogExporter(tmp_path, max_bytes=32 * 1024, fsync=False)
    provider = make_provider(processor_factory(exporter))
    threads_count, per_thread = 8, 250

    def work(thread: int) -> None:
        emit_seq(provider, [thread * 10_000 + i for i in range(per_thread)], thread=thread)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    provider.shutdown()

    files = iter_archive_files(tmp_path)
    assert len(files) > 2
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            json.loads(line)
    seqs = seqs_read(tmp_path)
    expected = [t * 10_000 + i for t in range(threads_count) for i in range(per_thread)]
    assert Counter(seqs) == Counter(expected)
    for number in range(threads_count):
        mine = [s for s in seqs if s // 10_000 == number]
        assert mine == sorted(mine)


def test_new_directory_and_file_are_not_world_accessible(tmp_path: Path) -> None:
    """The archive directory is created 0o750 and the file 0o640 (before the umask)."""
    exporter = ArchiveLogExporter(tmp_path / "a" / "b")
    exporter.shutdown()

    assert stat.S_IMODE((tmp_path / "a" / "b").stat().st_mode) & 0o027 == 0
    assert stat.S_IMODE(exporter.path.stat().st_mode) & 0o137 == 0


@pytest.mark.parametrize(
    "options",
    [{"max_bytes": 0}, {"max_backups": -1}, {"file_name": "../audit.jsonl"}, {"file_name": ""}],
)
def test_invalid_options_are_rejected(tmp_path: Path, options: dict[str, Any]) -> None:
    """Nonsensical settings raise ValueError at construction."""
    with pytest.raises(ValueError, match=next(iter(options))):
        ArchiveLogExporter(tmp_path, **options)


@pytest.mark.parametrize(
    ("timestamp_ns", "observed_ns", "expected"),
    [
        (1_000_000_123_456, 5, datetime(1970, 1, 1, 0, 16, 40, 123, tzinfo=timezone.utc)),
        (0, 2_000_000_000, datetime(1970, 1, 1, 0, 0, 2, tzinfo=timezone.utc)),
    ],
)
def test_timestamp_falls_back_to_observed_time(
    timestamp_ns: int, observed_ns: int, expected: datetime
) -> None:
    """ArchivedEvent.timestamp is aware UTC, from the observed time when the event time is 0."""
    event = ArchivedEvent(
        event_name="audit.x",
        timestamp_ns=timestamp_ns,
        observed_timestamp_ns=observed_ns,
        severity_number=9,
        severity_text="",
        body=None,
        attributes={},
        resource={},
        scope_name="",
        trace_id="",
        span_id="",
        source="x:1",
    )
    assert event.timestamp == expected
