"""Audit archives: OTLP JSON lines, written by the library's exporter or the collector.

The archive side of otel_audit has its own public API and imports nothing from the capture
side (middleware, ``record()``, the emitter): a tool that only reads archives needs only
this package and the OpenTelemetry SDK.

``read_events(path)`` yields every archived log record as an :class:`ArchivedEvent`,
oldest file first; damaged data is reported as :class:`ArchiveReadError`, never dropped
silently. ``decode_any_value`` decodes one OTLP/JSON ``AnyValue``.

Integrity: every event carries ``audit.seq`` and a hash chain over its
:func:`canonical_form` (:func:`chain_hash`; :class:`ChainState` hands them out on the
writer's side). ``verify_events(read_events(path), key=...)`` checks them and returns a
:class:`VerifyReport` of :class:`Finding` objects, each naming its file and line.
"""

from __future__ import annotations

from ._integrity import ChainState, canonical_form, chain_hash
from ._model import ArchivedEvent, ArchiveReadError
from ._otlp_json import decode_any_value
from ._reader import iter_archive_files, read_events
from ._verify import Finding, FindingKind, InstanceReport, VerifyReport, verify_events

__all__ = [
    "ArchiveReadError",
    "ArchivedEvent",
    "ChainState",
    "Finding",
    "FindingKind",
    "InstanceReport",
    "VerifyReport",
    "canonical_form",
    "chain_hash",
    "decode_any_value",
    "iter_archive_files",
    "read_events",
    "verify_events",
]
