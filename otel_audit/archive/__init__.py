"""Audit archives: OTLP JSON lines, written by the library's exporter or the collector.

The archive side of otel_audit has its own public API and imports nothing from the capture
side (middleware, ``record()``, the emitter): a tool that only reads archives needs only
this package and the OpenTelemetry SDK.

``read_events(path)`` yields every archived log record as an :class:`ArchivedEvent`,
oldest file first; damaged data is reported as :class:`ArchiveReadError`, never dropped
silently. ``decode_any_value`` decodes one OTLP/JSON ``AnyValue``.
"""

from __future__ import annotations

from ._model import ArchivedEvent, ArchiveReadError
from ._otlp_json import decode_any_value
from ._reader import iter_archive_files, read_events

__all__ = [
    "ArchiveReadError",
    "ArchivedEvent",
    "decode_any_value",
    "iter_archive_files",
    "read_events",
]
