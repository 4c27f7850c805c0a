"""Read audit archives: OTLP JSON lines files, one ``ExportLogsServiceRequest`` per line.

Reads what :class:`otel_audit.ArchiveLogExporter` writes and what the OpenTelemetry
Collector's ``file`` exporter writes (``format: json``), including their rotated files and
gzip-compressed ``.jsonl.gz`` copies. ``read_events`` flattens every line into
:class:`ArchivedEvent` objects, oldest file first.

A damaged line (a write torn by a crash, garbage) is skipped and reported as an
:class:`ArchiveReadError`, never dropped silently: pass ``errors=[]`` to collect them, or
they are logged on the ``otel_audit`` logger.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from io import BufferedReader
from pathlib import Path
from typing import Any

__all__ = [
    "ArchiveReadError",
    "ArchivedEvent",
    "decode_any_value",
    "iter_archive_files",
    "read_events",
]

_logger = logging.getLogger("otel_audit")

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_SUFFIXES = (".jsonl", ".jsonl.gz")
# ArchiveLogExporter backups: audit-20261122T055258123Z.jsonl, audit-20261122T055258123Z-1.jsonl
_OWN_BACKUP = re.compile(r".+-(\d{8}T\d{9})Z(?:-(\d+))?\.jsonl(?:\.gz)?")
# Collector (lumberjack) backups: audit-2026-11-22T05-52-58.123.jsonl
_COLLECTOR_BACKUP = re.compile(
    r".+-(\d{4})-(\d{2})-(\d{2})T(\d{2})-(\d{2})-(\d{2})\.(\d{3})\.jsonl(?:\.gz)?"
)
_HEX_ID = {"traceId": re.compile(r"[0-9a-fA-F]{32}"), "spanId": re.compile(r"[0-9a-fA-F]{16}")}
_SEVERITY_NAMES = {
    f"SEVERITY_NUMBER_{name}{suffix}": number + offset
    for name, number in (
        ("TRACE", 1),
        ("DEBUG", 5),
        ("INFO", 9),
        ("WARN", 13),
        ("ERROR", 17),
        ("FATAL", 21),
    )
    for offset, suffix in enumerate(("", "2", "3", "4"))
} | {"SEVERITY_NUMBER_UNSPECIFIED": 0}
# What decoding malformed (but valid JSON) input can raise; anything else is a bug.
_DECODE_ERRORS = (ValueError, TypeError, KeyError, AttributeError, binascii.Error)


@dataclass(frozen=True)
class ArchiveReadError:
    """A part of an archive that could not be read, and why."""

    source: str
    """``file:line`` of the damaged line, or the file for file-level problems."""
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.message}"


@dataclass(frozen=True)
class ArchivedEvent:
    """One log record from an archive, with its resource and scope flattened in."""

    event_name: str
    timestamp_ns: int
    """``timeUnixNano``; 0 when the producer did not set it."""
    observed_timestamp_ns: int
    severity_number: int
    severity_text: str
    body: object
    attributes: dict[str, object]
    """Attribute values decoded to Python: arrays to lists, kvlists to dicts, bytes to bytes."""
    resource: dict[str, object]
    scope_name: str
    trace_id: str
    """Lowercase hex, or ``""``."""
    span_id: str
    source: str
    """``file:line`` the record was read from."""
    scope_version: str = ""
    flags: int = 0

    @property
    def timestamp(self) -> datetime:
        """When the event happened, as an aware UTC datetime (observed time if unset)."""
        nanos = self.timestamp_ns or self.observed_timestamp_ns
        # Integer arithmetic: float seconds would round away microseconds in 2026-era stamps.
        return _EPOCH + timedelta(microseconds=nanos // 1000)


def iter_archive_files(path: str | os.PathLike[str]) -> list[Path]:
    """The archive files at ``path`` in reading order.

    A file is returned as is. For a directory: every ``*.jsonl`` / ``*.jsonl.gz`` in it
    (not recursive), rotated backups first, oldest first by the timestamp in their name
    (our ``name-YYYYMMDDTHHMMSSmmmZ[-n]`` and the collector's
    ``name-YYYY-MM-DDTHH-MM-SS.mmm``), then live files by modification time.
    """
    root = Path(path)
    if not root.is_dir():
        if not root.exists():
            raise FileNotFoundError(f"no audit archive at {root}")
        return [root]
    files = [p for p in root.iterdir() if p.name.endswith(_SUFFIXES) and p.is_file()]
    return sorted(files, key=_reading_order)


def _reading_order(path: Path) -> tuple[int, str, int, str]:
    if own := _OWN_BACKUP.fullmatch(path.name):
        return (0, own[1], int(own[2] or 0), path.name)
    if theirs := _COLLECTOR_BACKUP.fullmatch(path.name):
        return (0, "{}{}{}T{}{}{}{}".format(*theirs.groups()), 0, path.name)
    # Live files have no stamp; the one written last is read last. Zero-padded so the
    # string compares like the number. A file rotated away meanwhile just sorts first.
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        mtime = 0
    return (1, f"{mtime:024d}", 0, path.name)


def read_events(
    path: str | os.PathLike[str], *, errors: list[ArchiveReadError] | None = None
) -> Iterator[ArchivedEvent]:
    """Yield every log record in the archive at ``path`` (file or directory), in order.

    Damaged lines and records are skipped. Each is appended to ``errors`` when given,
    otherwise logged as a warning on the ``otel_audit`` logger.
    """
    report: Callable[[ArchiveReadError], None] = (
        errors.append if errors is not None else _log_read_error
    )
    for file in iter_archive_files(path):
        yield from _read_file(file, report)


def _log_read_error(error: ArchiveReadError) -> None:
    _logger.warning("audit archive: skipped unreadable data at %s", error)


def _open_archive(file: Path) -> gzip.GzipFile | BufferedReader:
    if file.name.endswith(".gz"):
        return gzip.GzipFile(file, "rb")
    return open(file, "rb")


def _read_file(file: Path, report: Callable[[ArchiveReadError], None]) -> Iterator[ArchivedEvent]:
    try:
        with _open_archive(file) as stream:
            for number, raw in enumerate(stream, 1):
                if not raw.strip():
                    continue
                source = f"{file}:{number}"
                try:
                    request = json.loads(raw)
                except ValueError as error:  # includes UnicodeDecodeError
                    torn = "incomplete last line (torn write?)" if not raw.endswith(b"\n") else ""
                    report(ArchiveReadError(source, torn or f"not valid JSON: {error}"))
                    continue
                try:
                    events = _decode_request(request, source, report)
                except _DECODE_ERRORS as error:
                    report(ArchiveReadError(source, f"not an OTLP logs request: {error!r}"))
                    continue
                yield from events
    except (OSError, EOFError) as error:  # unreadable file, truncated gzip stream
        report(ArchiveReadError(str(file), f"could not read further: {error}"))


def _decode_request(
    request: Any, source: str, report: Callable[[ArchiveReadError], None]
) -> list[ArchivedEvent]:
    """Flatten one ExportLogsServiceRequest; a bad record is reported, its siblings kept."""
    if not isinstance(request, dict):
        raise TypeError(f"expected a JSON object, got {type(request).__name__}")
    events: list[ArchivedEvent] = []
    for resource_logs in _list(request, "resourceLogs"):
        resource = _decode_key_values(_object(resource_logs, "resource").get("attributes"))
        for scope_logs in _list(resource_logs, "scopeLogs"):
            scope = _object(scope_logs, "scope")
            for index, record in enumerate(_list(scope_logs, "logRecords")):
                try:
                    events.append(_decode_record(record, resource, scope, source))
                except _DECODE_ERRORS as error:
                    report(ArchiveReadError(source, f"skipped log record #{index}: {error!r}"))
    return events


def _list(parent: dict[str, Any], field: str) -> list[Any]:
    value = parent.get(field, [])
    if not isinstance(value, list):
        raise TypeError(f"{field} must be an array")
    return value


def _object(parent: dict[str, Any], field: str) -> dict[str, Any]:
    value = parent.get(field, {})
    if not isinstance(value, dict):
        raise TypeError(f"{field} must be an object")
    return value


def _decode_record(
    record: Any, resource: dict[str, object], scope: dict[str, Any], source: str
) -> ArchivedEvent:
    if not isinstance(record, dict):
        raise TypeError("log record must be an object")
    return ArchivedEvent(
        event_name=_string(record, "eventName"),
        timestamp_ns=_integer(record.get("timeUnixNano", 0)),
        observed_timestamp_ns=_integer(record.get("observedTimeUnixNano", 0)),
        severity_number=_severity(record.get("severityNumber", 0)),
        severity_text=_string(record, "severityText"),
        body=decode_any_value(record.get("body", {})),
        attributes=_decode_key_values(record.get("attributes")),
        resource=dict(resource),  # a copy per event: events must not share mutable state
        scope_name=_string(scope, "name"),
        trace_id=_hex_id(record, "traceId"),
        span_id=_hex_id(record, "spanId"),
        source=source,
        scope_version=_string(scope, "version"),
        flags=_integer(record.get("flags", 0)),
    )


def _string(parent: dict[str, Any], field: str) -> str:
    value = parent.get(field, "")
    if not isinstance(value, str):
        raise TypeError(f"{field} must be a string")
    return value


def _integer(value: Any) -> int:
    # Protobuf JSON writes 64-bit integers as strings and accepts numbers too.
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(f"expected an integer, got {value!r}")
    return int(value)


def _severity(value: Any) -> int:
    if isinstance(value, str) and value in _SEVERITY_NAMES:  # proto JSON allows enum names
        return _SEVERITY_NAMES[value]
    return _integer(value)


def _hex_id(record: dict[str, Any], field: str) -> str:
    value = _string(record, field)
    if value and not _HEX_ID[field].fullmatch(value):
        raise ValueError(f"{field} must be hex of the right length, got {value!r}")
    return value.lower()


def _decode_key_values(items: Any) -> dict[str, object]:
    if items is None:
        return {}
    if not isinstance(items, list):
        raise TypeError("attributes must be an array")
    decoded: dict[str, object] = {}
    for item in items:
        if not isinstance(item, dict):
            raise TypeError("attribute must be an object")
        decoded[_string(item, "key")] = decode_any_value(item.get("value", {}))
    return decoded


def decode_any_value(value: Any) -> object:  # noqa: PLR0911 - one return per AnyValue kind
    """Decode an OTLP/JSON ``AnyValue`` object to the Python value it encodes."""
    if not isinstance(value, dict):
        raise TypeError(f"AnyValue must be an object, got {value!r}")
    if not value:
        return None
    if "stringValue" in value:
        return _string(value, "stringValue")
    if "boolValue" in value:
        if not isinstance(value["boolValue"], bool):
            raise TypeError("boolValue must be true or false")
        return value["boolValue"]
    if "intValue" in value:
        return _integer(value["intValue"])
    if "doubleValue" in value:
        double = value["doubleValue"]
        # Numbers, or the strings "NaN", "Infinity", "-Infinity" (and numeric strings).
        if isinstance(double, bool) or not isinstance(double, (int, float, str)):
            raise TypeError(f"doubleValue must be a number, got {double!r}")
        return float(double)
    if "arrayValue" in value:
        return [decode_any_value(item) for item in _list(_object(value, "arrayValue"), "values")]
    if "kvlistValue" in value:
        return _decode_key_values(_object(value, "kvlistValue").get("values"))
    if "bytesValue" in value:
        return base64.b64decode(_string(value, "bytesValue"), validate=True)
    raise ValueError(f"unknown AnyValue kind {sorted(value)}")
