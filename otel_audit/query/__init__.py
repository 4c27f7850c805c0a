"""The query engine: select, page, look up and count audit events in archives or VictoriaLogs.

It serves ``otel-audit query / stats / tail`` and the read-only ``audit_router``; it reads
through :mod:`otel_audit.archive` and imports nothing from the capture side.

Sources (:func:`open_source`, or pass any of these where a ``source`` is asked)::

    FileSource(["archive/", "spool/"])            archive files and folders, streamed
    VictoriaLogsSource("victorialogs+http://127.0.0.1:9428")   LogsQL over HTTP, streamed
    "victorialogs+http://...", "path", ["path", ...]           opened for you

Filters (:class:`EventFilter`; every set field must match)::

    EventFilter(user="u-42", tenant="acme", action="user.*", outcome="failure",
                resource_type=..., resource_id=..., route="/items/{item_id}",
                client="10.0.0.7", trace_id=<32 hex>, category="failed-login" | "denied",
                since=datetime | timedelta, until=..., pseudonym_key=b"...")
    EventFilter.parse(since="24h", until="2026-11-30T00:00:00Z", ...)   from text
    to_logsql(flt)                                the same selection as LogsQL

``user`` and ``tenant`` take the raw id; with ``pseudonym_key`` (:func:`load_pseudonym_key`)
its ``hmac-sha256:`` pseudonym matches too. Bad values raise :class:`FilterError`.

Calls (``flt`` defaults to everything; relative times count back from ``now``)::

    iter_events(source, flt)                      -> Iterator[ArchivedEvent]   (streamed)
    page_events(source, flt, limit=100, cursor=None, newest_first=False)
                                                  -> Page(events, total, next_cursor)
    get_event(source, event_id)                   -> ArchivedEvent | None
    compute_stats(source, flt, bucket=timedelta(hours=1)) -> AuditStats
    event_to_dict(event)                          -> the contract JSON object of one event

Pages are ordered by ``(timestamp, audit.event.id)``; ``next_cursor`` is opaque and stable
under appends; copies of one event (at-least-once delivery) are listed once while ``total``
counts records as stored. Errors: see :mod:`otel_audit.query._errors` (``QueryError`` and
below); damaged archive lines are reported through ``FileSource(on_error=...)``, or logged.
"""

from __future__ import annotations

from ._errors import BackendError, CursorError, FilterError, KeyFileError, QueryError, SourceError
from ._files import FileSource
from ._filter import (
    CATEGORIES,
    OUTCOMES,
    EventFilter,
    parse_duration,
    parse_time,
    pseudonym,
)
from ._logsql import to_logsql
from ._match import Matcher, compile_filter, is_denied, is_failed_login
from ._page import Page
from ._shape import event_id, event_to_dict, format_timestamp, sort_key
from ._source import (
    PSEUDONYMIZATION_KEY_ENV,
    Source,
    compute_stats,
    get_event,
    iter_events,
    load_pseudonym_key,
    open_source,
    page_events,
)
from ._stats import AuditStats
from ._tail import follow_files
from ._vlsource import VictoriaLogsSource

__all__ = [
    "CATEGORIES",
    "OUTCOMES",
    "PSEUDONYMIZATION_KEY_ENV",
    "AuditStats",
    "BackendError",
    "CursorError",
    "EventFilter",
    "FileSource",
    "FilterError",
    "KeyFileError",
    "Matcher",
    "Page",
    "QueryError",
    "Source",
    "SourceError",
    "VictoriaLogsSource",
    "compile_filter",
    "compute_stats",
    "event_id",
    "event_to_dict",
    "follow_files",
    "format_timestamp",
    "get_event",
    "is_denied",
    "is_failed_login",
    "iter_events",
    "load_pseudonym_key",
    "open_source",
    "page_events",
    "parse_duration",
    "parse_time",
    "pseudonym",
    "sort_key",
    "to_logsql",
]
