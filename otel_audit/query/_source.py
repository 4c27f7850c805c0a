"""The engine's entry points: open a source, then list, page, look up and count events."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol, runtime_checkable

from ..archive import ArchivedEvent
from ._errors import KeyFileError
from ._files import ErrorHandler, FileSource
from ._filter import EventFilter
from ._page import Page
from ._stats import DEFAULT_BUCKET, AuditStats
from ._victorialogs import SCHEME
from ._vlsource import VictoriaLogsSource

PSEUDONYMIZATION_KEY_ENV = "OTEL_AUDIT_PSEUDONYMIZATION_KEY"
"""The library's own variable for the key (``AuditConfig.pseudonymization_key``)."""


@runtime_checkable
class Source(Protocol):
    """Where events are read from: :class:`FileSource` or :class:`VictoriaLogsSource`."""

    def events(
        self, flt: EventFilter, *, now: datetime | None = None
    ) -> Iterator[ArchivedEvent]: ...

    def page(
        self,
        flt: EventFilter,
        *,
        limit: int = 100,
        cursor: str | None = None,
        newest_first: bool = False,
        now: datetime | None = None,
    ) -> Page: ...

    def get(self, event_id: str) -> ArchivedEvent | None: ...

    def stats(
        self, flt: EventFilter, *, bucket: timedelta = DEFAULT_BUCKET, now: datetime | None = None
    ) -> AuditStats: ...


SourceSpec = Source | str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
"""A source, a ``victorialogs+http://`` URL, or archive paths."""


def open_source(spec: SourceSpec, *, on_error: ErrorHandler | None = None) -> Source:
    """The source ``spec`` names: itself if it is one, VictoriaLogs for a
    ``victorialogs+http(s)://`` URL, else archive files and folders (``on_error`` receives
    their damaged lines)."""
    if isinstance(spec, Source):
        return spec
    if isinstance(spec, str) and spec.startswith(SCHEME):
        return VictoriaLogsSource(spec)
    if isinstance(spec, (str, os.PathLike)):
        return FileSource([spec], on_error=on_error)
    return FileSource(list(spec), on_error=on_error)


def iter_events(
    source: SourceSpec, flt: EventFilter | None = None, *, now: datetime | None = None
) -> Iterator[ArchivedEvent]:
    """Every selected record, streamed (files: in reading order; VictoriaLogs: oldest first).

    Relative times in ``flt`` are taken back from ``now`` (default: the current time).
    """
    return open_source(source).events(flt or EventFilter(), now=now)


def page_events(
    source: SourceSpec,
    flt: EventFilter | None = None,
    *,
    limit: int = 100,
    cursor: str | None = None,
    newest_first: bool = False,
    now: datetime | None = None,
) -> Page:
    """One page of the selected events, ordered by ``(timestamp, audit.event.id)``.

    Pass the page's ``next_cursor`` back as ``cursor`` (with the same ``newest_first``) for
    the next one. A cursor this engine did not make raises :class:`CursorError`.
    """
    return open_source(source).page(
        flt or EventFilter(), limit=limit, cursor=cursor, newest_first=newest_first, now=now
    )


def get_event(source: SourceSpec, event_id: str) -> ArchivedEvent | None:
    """The audit event whose ``audit.event.id`` is ``event_id`` (the first copy), or None."""
    return open_source(source).get(event_id)


def compute_stats(
    source: SourceSpec,
    flt: EventFilter | None = None,
    *,
    bucket: timedelta = DEFAULT_BUCKET,
    now: datetime | None = None,
) -> AuditStats:
    """Counts over the selected records (:class:`AuditStats`)."""
    return open_source(source).stats(flt or EventFilter(), bucket=bucket, now=now)


def load_pseudonym_key(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> bytes | None:
    """The pseudonymisation key from the file at ``path``, else ``OTEL_AUDIT_PSEUDONYMIZATION_KEY``
    (``env``, default ``os.environ``), else None. Surrounding whitespace is dropped and the
    text's UTF-8 bytes are the key, as the library reads the variable."""
    if path is not None:
        try:
            key = Path(path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            raise KeyFileError(f"cannot read the pseudonymisation key {path}: {error}") from None
        if not key:
            raise KeyFileError(f"the pseudonymisation key file {path} is empty")
        return key.encode()
    value = (os.environ if env is None else env).get(PSEUDONYMIZATION_KEY_ENV, "").strip()
    return value.encode() if value else None
